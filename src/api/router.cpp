#include "api/router.hpp"

#include <charconv>

#include "api/errors.hpp"
#include "api/media_type.hpp"
#include "core/clock.hpp"

namespace aw::api {

std::string_view Params::get(std::string_view name) const {
  for (const auto& [k, v] : values)
    if (k == name) return v;
  return {};
}

PathSegments split_path(std::string_view path) {
  PathSegments out;
  std::size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    std::size_t j = path.find('/', i);
    if (j == std::string_view::npos) j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

void Router::add(std::string method, std::string_view pattern, Access access, Handler handler) {
  Route r{std::move(method), {}, access, std::move(handler)};
  for (auto s : split_path(pattern)) r.segments.emplace_back(s);
  routes_.push_back(std::move(r));
}

namespace {
bool is_param(const std::string& seg) noexcept {
  return seg.size() > 2 && seg.front() == '{' && seg.back() == '}';
}
}  // namespace

bool Router::fits(const std::vector<std::string>& segments, const PathSegments& path) {
  if (segments.size() != path.size()) return false;
  for (std::size_t i = 0; i < path.size(); ++i)
    if (!is_param(segments[i]) && segments[i] != path[i]) return false;
  return true;
}

void Router::capture(const std::vector<std::string>& segments, const PathSegments& path, Params& params) {
  params.values.clear();
  for (std::size_t i = 0; i < path.size(); ++i) {
    const std::string& seg = segments[i];
    if (is_param(seg)) params.values.emplace_back(seg.substr(1, seg.size() - 2), percent_decode(path[i]));
  }
}

void Router::handle(const Request& req, Reply reply) const {
  const auto path = split_path(req.path);
  std::string allow;
  for (const auto& r : routes_) {
    if (!fits(r.segments, path)) continue;
    if (r.method == req.method || (req.method == "HEAD" && r.method == "GET")) {
      Params params;
      capture(r.segments, path, params);
      // Who asks comes first: a caller without the right to a route learns nothing more of it.
      if (auto refusal = admit(r.access, req, params)) return reply(std::move(*refusal));
      // Every plain route takes JSON (the pipe, which takes text, is a streaming route).
      if (auto refusal = check_json_body(req)) return reply(std::move(*refusal));
      r.handler(req, params, std::move(reply));
      return;
    }
    if (!allow.empty()) allow += ", ";
    allow += r.method;
  }
  if (!allow.empty()) {
    auto res = error_response(405, "method_not_allowed", req.method + " is not allowed on " + req.path);
    res.headers.emplace_back("Allow", allow);
    reply(std::move(res));
    return;
  }
  reply(error_response(404, "not_found", "no route for " + req.path));
}

std::optional<Response> Router::admit(const Access& access, const Request& req, Params& params) const {
  if (!credentials_ || !credentials_->required()) {
    params.principal = auth::anonymous_principal();
    return std::nullopt;
  }
  if (!access.scope) return std::nullopt;
  auto a = credentials_->authenticate_header(req.authorization, now_unix_ms() / 1000);
  if (a.refusal) return std::move(a.refusal);
  std::string_view id;
  switch (access.agent) {
    case Access::Agent::path:
      id = params.get("agent_id");
      break;
    case Access::Agent::workflow:
      id = params.get("workflow_id");
      break;
    case Access::Agent::stream:
      id = params.get("stream_id");
      break;
    default:
      break;
  }
  if (auto refusal = credentials_->check(access, *a.principal, id)) return refusal;
  params.principal = std::move(a.principal);
  return std::nullopt;
}

void Router::add_streaming(std::string method, std::string_view pattern, Access access,
                           StreamingHandler handler) {
  // The transport calls the handler itself (see match_streaming): the check goes in front of it here.
  StreamingHandler guarded = [this, access, handler = std::move(handler)](
                                 const Request& req, const Params& params, SinkContext ctx,
                                 Reply reply) -> std::shared_ptr<BodySink> {
    Params admitted = params;
    if (auto refusal = admit(access, req, admitted)) {
      reply(std::move(*refusal));
      return nullptr;
    }
    return handler(req, admitted, std::move(ctx), std::move(reply));
  };
  StreamingRoute r{method, {}, std::move(guarded)};
  for (auto s : split_path(pattern)) r.segments.emplace_back(s);
  // Listed with the plain routes too, so that another method on this path gets 405, not 404. The
  // transport hands matching requests to the streaming handler before the plain router sees them.
  routes_.push_back({std::move(method), r.segments, access, [](const Request&, const Params&, Reply reply) {
                       reply(error_response(500, "internal", "streaming route reached the plain router"));
                     }});
  streaming_.push_back(std::move(r));
}

const StreamingHandler* Router::match_streaming(std::string_view method, std::string_view path,
                                                Params& params) const {
  if (streaming_.empty()) return nullptr;
  const auto parts = split_path(path);
  for (const auto& r : streaming_) {
    if (r.method == method && fits(r.segments, parts)) {
      capture(r.segments, parts, params);
      return &r.handler;
    }
  }
  return nullptr;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::optional<std::uint64_t> parse_count(std::string_view text) {
  std::uint64_t out = 0;
  if (text.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return out;
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  std::size_t i = 0;
  while (i <= query.size()) {
    std::size_t amp = query.find('&', i);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(i, amp - i);
    std::size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    if (key == name)
      return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    i = amp + 1;
  }
  return std::nullopt;
}

}  // namespace aw::api
