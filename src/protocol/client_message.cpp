#include "protocol/client_message.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "core/utf8.hpp"

namespace aw::protocol {

ClientMessage parse_client_message(std::string_view text) {
  ClientMessage m;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec);
  if (ec) {
    m.error_code = "bad_json";
    m.error_message = "message is not valid JSON: " + ec.message();
    return m;
  }
  const auto* obj = v.if_object();
  const boost::json::value* type = obj ? obj->if_contains("type") : nullptr;
  if (!type || !type->is_string()) {
    m.error_code = "bad_message";
    m.error_message = "message must be an object with a string \"type\"";
    return m;
  }
  std::string_view t = type->get_string();
  if (t == "ping") {
    m.kind = ClientMessage::Kind::ping;
  } else if (t == "snapshot") {
    m.kind = ClientMessage::Kind::snapshot;
  } else if (t == "refresh") {
    const boost::json::value* token = obj->if_contains("token");
    if (!token || !token->is_string() || token->get_string().empty()) {
      m.error_code = "bad_message";
      m.error_message = "refresh needs a string \"token\"";
      return m;
    }
    m.kind = ClientMessage::Kind::refresh;
    m.token = std::string(token->get_string());
  } else {
    m.error_code = "unknown_type";
    // The type is echoed back cut to 64 bytes, at a character boundary: the envelope stays UTF-8.
    std::string_view shown = t.substr(0, complete_utf8_prefix(t.substr(0, 64)));
    m.error_message =
        "unknown message type \"" + std::string(shown) + "\"; expected ping, snapshot or refresh";
  }
  return m;
}

}  // namespace aw::protocol
