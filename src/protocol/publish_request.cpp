#include "protocol/publish_request.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "protocol/json_span.hpp"

namespace aw::protocol {

bool is_valid_event_type(std::string_view t) noexcept {
  if (t.empty() || t.size() > kMaxEventTypeLength) return false;
  for (char c : t) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool is_session_message_type(std::string_view t) noexcept {
  return t == "connected" || t == "heartbeat" || t == "snapshot" || t == "error" || t == "pong";
}

PublishParse parse_publish_request(std::string_view body) {
  PublishParse r;
  boost::system::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 64;
  // Parsing validates the whole body (syntax and UTF-8) before anything is sliced out of it. The parsed
  // value lives only in this call: its nodes come from a buffer on the stack (and the heap only past
  // it), not from one allocation each.
  unsigned char scratch[4096];
  boost::json::monotonic_resource arena(scratch, sizeof scratch);
  boost::json::value v = boost::json::parse(body, ec, &arena, opts);
  if (ec) {
    r.error_code = "bad_json";
    r.error_message = "body is not valid JSON: " + ec.message();
    return r;
  }
  const auto* obj = v.if_object();
  if (!obj) {
    r.error_code = "bad_json";
    r.error_message = "body must be a JSON object";
    return r;
  }
  const auto* type = obj->if_contains("type");
  if (!type || !type->is_string()) {
    r.error_code = "bad_type";
    r.error_message = "\"type\" is required and must be a string";
    return r;
  }
  if (!is_valid_event_type(type->get_string())) {
    r.error_code = "bad_type";
    r.error_message = "\"type\" must be 1-64 characters of [A-Za-z0-9_.:-]";
    return r;
  }
  const auto* data = obj->if_contains("data");
  if (data && !data->is_object()) {
    r.error_code = "bad_data";
    r.error_message = "\"data\" must be a JSON object";
    return r;
  }
  if (is_session_message_type(type->get_string())) {
    r.error_code = "reserved_type";
    r.error_message = "\"" + std::string(type->get_string()) +
                      "\" is a session message of the protocol (connected, heartbeat, snapshot, error, pong), not an event";
    return r;
  }
  r.request.type = std::string(type->get_string());
  if (data) {
    auto span = json::member_span(body, "data");
    if (!span) {
      r.error_code = "bad_data";
      r.error_message = "\"data\" could not be read";
      return r;
    }
    r.request.data = std::string(*span);
  } else {
    r.request.data = "{}";
  }
  r.ok = true;
  return r;
}

}  // namespace aw::protocol
