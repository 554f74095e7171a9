#include "api/errors.hpp"

#include "protocol/json_span.hpp"

namespace aw::api {

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
  json::append_quoted(r.body, code);
  r.body.append(",\"message\":");
  json::append_quoted(r.body, message);
  // "{...}" -> ",..." appended inside the error object
  if (details_json.size() > 2) r.body.append(",").append(details_json.substr(1, details_json.size() - 2));
  r.body.append("}}");
  return r;
}

}  // namespace aw::api
