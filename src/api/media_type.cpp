#include "api/media_type.hpp"

#include <algorithm>

#include "api/errors.hpp"
#include "protocol/json_span.hpp"

namespace aw::api {

std::string media_type(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  std::string out(type);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  return out;
}

std::optional<Response> check_media_type(std::string_view content_type,
                                         std::initializer_list<std::string_view> accepted) {
  const std::string type = media_type(content_type);
  if (std::find(accepted.begin(), accepted.end(), type) != accepted.end()) return std::nullopt;
  std::string names;
  std::string details = "{\"accepted\":[";
  for (auto a : accepted) {
    if (!names.empty()) {
      names.append(", ");
      details.push_back(',');
    }
    names.append(a);
    protocol::append_quoted(details, a);
  }
  details.append("]}");
  const std::string got =
      content_type.empty() ? "the request names none" : "not '" + std::string(content_type) + "'";
  return error_response(415, "unsupported_media_type",
                        "this route takes a body of Content-Type " + names + "; " + got, details);
}

std::optional<Response> check_json_body(const Request& req) {
  if (req.body.empty()) return std::nullopt;
  return check_media_type(req.content_type, {"application/json"});
}

}  // namespace aw::api
