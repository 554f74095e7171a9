#include "api/errors.hpp"

#include "protocol/json_span.hpp"

namespace aw::api {

Response error_response(unsigned status, std::string_view code, std::string_view message) {
  Response r;
  r.status = status;
  r.body = "{\"error\":{\"code\":";
  json::append_quoted(r.body, code);
  r.body.append(",\"message\":");
  json::append_quoted(r.body, message);
  r.body.append("}}");
  return r;
}

}  // namespace aw::api
