// Routes `METHOD /path/{param}` to handlers. A path that matches no pattern is 404; one that matches a
// pattern under another method is 405 with an Allow header. Every route is registered with its Access
// (the scope it needs and where its agent comes from), checked against the caller's credential before
// the handler runs.
#pragma once
#include <boost/container/small_vector.hpp>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/access.hpp"
#include "api/body_sink.hpp"
#include "api/credentials.hpp"
#include "api/http_types.hpp"
#include "auth/principal.hpp"

namespace aw::api {

// Held inline: every request is routed, and our routes have at most a few segments and params.
using PathSegments = boost::container::small_vector<std::string_view, 8>;

struct Params {
  boost::container::small_vector<std::pair<std::string, std::string>, 2> values;
  // Who is asking, once admitted (anonymous when no key is configured; null on an open route).
  std::shared_ptr<const auth::Principal> principal;
  std::string_view get(std::string_view name) const;
};

using Handler = std::function<void(const Request&, const Params&, Reply)>;
// For routes that take their body as it arrives: `req` has no body yet. Returns the sink, or null after
// answering through `reply` (a request refused from its headers alone).
using StreamingHandler =
    std::function<std::shared_ptr<BodySink>(const Request& req, const Params&, SinkContext, Reply reply)>;

class Router {
 public:
  Router() = default;
  // Streaming routes' handlers refer to the router (for its credentials): it stays where it was made.
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Requests are checked against these from now on; without (or when they require nothing) every
  // request is anonymous and admitted.
  void guard_with(const Credentials* credentials) noexcept { credentials_ = credentials; }

  // `pattern` segments in braces capture one path segment, e.g. "/api/agents/{agent_id}/events".
  void add(std::string method, std::string_view pattern, Access access, Handler handler);
  void handle(const Request& req, Reply reply) const;

  void add_streaming(std::string method, std::string_view pattern, Access access, StreamingHandler handler);
  // The streaming route for this method and path, with its params; null when there is none.
  const StreamingHandler* match_streaming(std::string_view method, std::string_view path,
                                          Params& params) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    Access access;
    Handler handler;
  };
  // The refusal of a request that `access` does not let in, or nullopt with `params.principal` set.
  std::optional<Response> admit(const Access& access, const Request& req, Params& params) const;
  // Whether `path` fits the pattern: its literal segments only, so no param is decoded for a route
  // that is not taken.
  static bool fits(const std::vector<std::string>& segments, const PathSegments& path);
  static void capture(const std::vector<std::string>& segments, const PathSegments& path, Params& params);
  std::vector<Route> routes_;
  struct StreamingRoute {
    std::string method;
    std::vector<std::string> segments;
    StreamingHandler handler;
  };
  std::vector<StreamingRoute> streaming_;
  const Credentials* credentials_ = nullptr;
};

PathSegments split_path(std::string_view path);

// Query parameter by name, percent-decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

std::string percent_decode(std::string_view s);

// A non-negative decimal integer (query values such as since, limit, cursor); nullopt for anything else.
std::optional<std::uint64_t> parse_count(std::string_view text);

}  // namespace aw::api
