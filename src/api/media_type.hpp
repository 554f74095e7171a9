// Which body formats a route takes, from the Content-Type a request says its body has. A body in a
// format the route does not take gets 415 unsupported_media_type naming what it takes: a JSON route
// refuses a `text/plain` or form-encoded body (the "simple requests" a page may send cross-origin
// without asking first), whatever the bytes would parse as.
#pragma once
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "api/http_types.hpp"

namespace aw::api {

// The media type without its parameters, lower case: "Application/JSON; charset=utf-8" → "application/json".
std::string media_type(std::string_view content_type);

// 415 naming `accepted` unless the Content-Type is one of them.
std::optional<Response> check_media_type(std::string_view content_type,
                                         std::initializer_list<std::string_view> accepted);

// A request with a body on a JSON route: its Content-Type must be application/json. Without a body
// (an empty cancel, a GET) the Content-Type does not matter.
std::optional<Response> check_json_body(const Request& req);

}  // namespace aw::api
