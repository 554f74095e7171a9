// Client messages on an agent channel against Boost.JSON: ping, snapshot and refresh (with its string
// token) exactly when the text is an object whose "type" is that string; otherwise the right error code, with
// a message that is valid UTF-8 (it goes back to the client inside an `error` envelope) and short whatever
// the input's size.
#include <string>

#include "fuzz_check.hpp"
#include "json_reference.hpp"
#include "protocol/client_message.hpp"
#include "utf8_reference.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using Kind = aw::protocol::ClientMessage::Kind;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto got = aw::protocol::parse_client_message(text);
  // Client messages are WebSocket text: valid UTF-8 by the time they are parsed.
  if (!aw::fuzz::reference_utf8(text)) return 0;

  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  const boost::json::object* obj = ec ? nullptr : v.if_object();
  const boost::json::value* type = obj ? obj->if_contains("type") : nullptr;
  if (ec) {
    FUZZ_CHECK(got.kind == Kind::invalid && got.error_code == "bad_json");
  } else if (!type || !type->is_string()) {
    FUZZ_CHECK(got.kind == Kind::invalid && got.error_code == "bad_message");
  } else if (type->get_string() == "ping") {
    FUZZ_CHECK(got.kind == Kind::ping);
  } else if (type->get_string() == "snapshot") {
    FUZZ_CHECK(got.kind == Kind::snapshot);
  } else if (type->get_string() == "refresh") {
    // A refresh carries its new token as a non-empty string; anything else is a bad message.
    const boost::json::value* token = obj->if_contains("token");
    if (token && token->is_string() && !token->get_string().empty())
      FUZZ_CHECK(got.kind == Kind::refresh && got.token == std::string_view(token->get_string()));
    else
      FUZZ_CHECK(got.kind == Kind::invalid && got.error_code == "bad_message");
  } else {
    FUZZ_CHECK(got.kind == Kind::invalid && got.error_code == "unknown_type");
  }
  if (got.kind == Kind::invalid) {
    FUZZ_CHECK(aw::fuzz::reference_utf8(got.error_message));
    FUZZ_CHECK(got.error_message.size() <= 256);
  }
  return 0;
}
