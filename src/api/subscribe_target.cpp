#include "api/subscribe_target.hpp"

#include "api/errors.hpp"
#include "api/router.hpp"
#include "core/agent_id.hpp"

namespace aw::api {

SubscribeTarget parse_subscribe_target(std::string_view path, std::string_view query) {
  SubscribeTarget t;
  auto parts = split_path(path);
  if (parts.size() == 2 && parts[0] == "ws" && parts[1] == "echo") {
    t.kind = SubscribeTarget::Kind::echo;
    return t;
  }
  if (parts.size() < 2 || parts[0] != "ws" || parts[1] != "agents") return t;
  t.kind = SubscribeTarget::Kind::agent;
  // "/ws/agents/" and "/ws/agents/a/b" are bad agent ids, not unknown routes.
  if (parts.size() == 3) t.agent_id = percent_decode(parts[2]);
  if (parts.size() != 3 || !is_valid_agent_id(t.agent_id)) {
    t.error = bad_agent_id_response();
    return t;
  }
  auto since = query_param(query, "since");
  auto epoch = query_param(query, "epoch");
  if (epoch && epoch->size() > kMaxEpochLength) {
    t.error = error_response(400, "bad_epoch", "epoch must be at most 64 characters");
    return t;
  }
  if (since) {
    auto seq = parse_count(*since);
    if (!seq) {
      t.error = error_response(400, "bad_since", "since must be a non-negative integer (the last seq seen)");
      return t;
    }
    t.since = Position{*seq, epoch.value_or("")};
  } else if (epoch) {
    t.error = error_response(400, "bad_since", "epoch is only meaningful together with since");
    return t;
  }
  return t;
}

}  // namespace aw::api
