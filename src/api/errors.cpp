#include "api/errors.hpp"

#include "core/utf8.hpp"
#include "protocol/json_span.hpp"

namespace aw::api {
namespace {

// A message may quote the client's own bytes (a path with a raw 0xFF): when they are not UTF-8 the body
// would not be JSON to a strict parser, so every byte above 0x7F is shown percent-encoded, as in a URL.
void append_message(std::string& out, std::string_view message) {
  if (is_valid_utf8(message)) return protocol::append_quoted(out, message);
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string safe;
  safe.reserve(message.size() * 3);
  for (unsigned char c : message) {
    if (c < 0x80) {
      safe.push_back(static_cast<char>(c));
    } else {
      safe.push_back('%');
      safe.push_back(kHex[c >> 4]);
      safe.push_back(kHex[c & 0xF]);
    }
  }
  protocol::append_quoted(out, safe);
}

}  // namespace

Response error_response(unsigned status, std::string_view code, std::string_view message) {
  return error_response(status, code, message, {});
}

Response bad_agent_id_response() {
  return error_response(400, "bad_agent_id", "agent_id must be 1-128 characters of [A-Za-z0-9_.:-]");
}

Response error_response(unsigned status, std::string_view code, std::string_view message,
                        std::string_view details_json) {
  Response r;
  r.status = status;
  r.body = "{\"error\":{\"code\":";
  protocol::append_quoted(r.body, code);
  r.body.append(",\"message\":");
  append_message(r.body, message);
  // "{...}" -> ",..." appended inside the error object
  if (details_json.size() > 2) r.body.append(",").append(details_json.substr(1, details_json.size() - 2));
  r.body.append("}}");
  return r;
}

Response directory_unavailable_response() {
  return error_response(503, "broker_unavailable", "the message broker cannot be reached");
}

}  // namespace aw::api
