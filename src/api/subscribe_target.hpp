// `GET /ws/agents/{agent_id}?since=S&epoch=E`: the agent and the resume position, validated before any
// upgrade so a bad request gets an HTTP 400 with a JSON error instead of a WebSocket.
#pragma once
#include <optional>
#include <string>

#include "api/http_types.hpp"
#include "core/event.hpp"

namespace aw::api {

inline constexpr std::size_t kMaxEpochLength = 64;

struct SubscribeTarget {
  enum class Kind { agent, echo, not_websocket_route } kind = Kind::not_websocket_route;
  std::string agent_id;
  std::optional<Position> since;
  std::optional<Response> error;  // set when the route matched but the request is bad
  // Set by the token check (api/subscriber_auth): the answer selects the `bearer` subprotocol, and the
  // connection lasts until the token's exp (0: no token needed) unless a refresh extends it.
  bool bearer_subprotocol = false;
  std::int64_t token_expires_s = 0;
};

SubscribeTarget parse_subscribe_target(std::string_view path, std::string_view query);

}  // namespace aw::api
