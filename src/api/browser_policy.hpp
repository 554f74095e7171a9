// What a browser may do, decided from a request's head before it is routed or upgraded (so a WebSocket
// on any path is covered): the Host header must name an allowed host (421 host_forbidden: a DNS name
// rebound to this address is not one); a request whose Origin is not the server's own must come from an
// allowed origin (403 origin_forbidden); an allowed cross-origin request gets CORS headers on its answer,
// and its preflight (OPTIONS) is answered here with 204. Requests without Origin (curl, backends) are
// not browsers' and pass the origin check.
#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/http_types.hpp"
#include "config/options.hpp"

namespace aw::api {

struct BrowserRequest {
  std::string_view method;
  std::optional<std::string_view> host;    // the Host header, when there is one
  std::optional<std::string_view> origin;  // the Origin header, when there is one
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct BrowserVerdict {
  std::optional<Response> answer;  // the request goes no further: a refusal, or a preflight's 204
  HeaderList cors_headers;         // to add to the answer of an allowed cross-origin request
};

BrowserVerdict check_browser_request(const BrowserRequest& req, const config::Options& options);

// The Host header names an allowed host: --allowed-hosts, or by default (see Options::allowed_hosts).
bool host_allowed(std::string_view host_header, const config::Options& options);

// The origin is in --allowed-origins: listed exactly (after normalising case and default port), `null`
// only when listed, anything else when `*` is.
bool origin_allowed(std::string_view origin, const config::Options& options);

// The Origin names the host and port the request was sent to (its Host header): the server's own pages.
bool is_same_origin(std::string_view origin, std::optional<std::string_view> host_header);

}  // namespace aw::api
