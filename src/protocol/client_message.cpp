#include "protocol/client_message.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

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
  } else {
    m.error_code = "unknown_type";
    m.error_message = "unknown message type \"" + std::string(t.substr(0, 64)) + "\"; expected ping or snapshot";
  }
  return m;
}

}  // namespace aw::protocol
