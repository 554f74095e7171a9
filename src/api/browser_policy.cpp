#include "api/browser_policy.hpp"

#include <arpa/inet.h>

#include <algorithm>

#include "api/errors.hpp"
#include "core/web_origin.hpp"

namespace aw::api {
namespace {

// A preflight's answer may be cached this long (seconds): short enough that a changed list soon counts.
constexpr const char* kPreflightMaxAge = "600";
constexpr const char* kAllowedMethods = "GET, HEAD, POST, DELETE";
// What our clients send: API keys and tokens, JSON bodies, retry-safe publishes.
constexpr const char* kAllowedHeaders = "Authorization, Content-Type, Idempotency-Key";
// What our clients read from answers beyond the CORS-safelisted headers.
constexpr const char* kExposedHeaders = "Idempotent-Replayed, Retry-After, WWW-Authenticate";

bool listed(const std::vector<std::string>& list, std::string_view item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

bool is_ip_literal(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Without --allowed-hosts: any host once a key is configured (a rebound page has no key); while
// anonymous, the names of this machine's loopback and a literal listen address, which no rebound DNS
// name can be.
bool default_host_allowed(const std::string& host, const config::Options& options) {
  if (options.keys_configured()) return true;
  if (host == "localhost" || host == "127.0.0.1" || host == "[::1]") return true;
  if (!is_ip_literal(options.listen_host)) return false;
  auto listen = normalize_host_name(options.listen_host);
  return listen && *listen == host;
}

Response preflight_answer() {
  Response res;
  res.status = 204;
  res.headers.emplace_back("Access-Control-Allow-Methods", kAllowedMethods);
  res.headers.emplace_back("Access-Control-Allow-Headers", kAllowedHeaders);
  res.headers.emplace_back("Access-Control-Max-Age", kPreflightMaxAge);
  return res;
}

}  // namespace

bool host_allowed(std::string_view host_header, const config::Options& options) {
  if (listed(options.allowed_hosts, "*")) return true;
  auto hp = parse_host_header(host_header);
  if (!hp) return false;
  if (options.allowed_hosts.empty()) return default_host_allowed(hp->host, options);
  return listed(options.allowed_hosts, hp->host);
}

bool origin_allowed(std::string_view origin, const config::Options& options) {
  if (origin == "null") return listed(options.allowed_origins, "null");
  auto parsed = parse_web_origin(origin);
  if (!parsed) return false;
  return listed(options.allowed_origins, "*") || listed(options.allowed_origins, parsed->serialized());
}

bool is_same_origin(std::string_view origin, std::optional<std::string_view> host_header) {
  if (!host_header) return false;
  auto o = parse_web_origin(origin);
  auto h = parse_host_header(*host_header);
  if (!o || !h) return false;
  return o->host == h->host && o->port == h->port.value_or(default_port(o->scheme));
}

BrowserVerdict check_browser_request(const BrowserRequest& req, const config::Options& options) {
  BrowserVerdict v;
  // No Host at all is HTTP/1.0 (1.1 without one was refused already): no browser sends that.
  if (req.host && !host_allowed(*req.host, options)) {
    v.answer = error_response(
        421, "host_forbidden",
        "this server does not answer to Host '" + std::string(*req.host) + "': name it in --allowed-hosts");
    return v;
  }
  if (!req.origin || is_same_origin(*req.origin, req.host)) return v;
  if (!origin_allowed(*req.origin, options)) {
    v.answer = error_response(403, "origin_forbidden",
                              "pages from origin '" + std::string(*req.origin) +
                                  "' may not use this server: name it in --allowed-origins");
    return v;
  }
  v.cors_headers.emplace_back("Access-Control-Allow-Origin", std::string(*req.origin));
  v.cors_headers.emplace_back("Vary", "Origin");
  if (req.method == "OPTIONS") {
    v.answer = preflight_answer();
    v.answer->headers.insert(v.answer->headers.begin(), v.cors_headers.begin(), v.cors_headers.end());
  } else {
    v.cors_headers.emplace_back("Access-Control-Expose-Headers", kExposedHeaders);
  }
  return v;
}

}  // namespace aw::api
