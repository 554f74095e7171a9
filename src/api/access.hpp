// What a route needs from whoever calls it, given where the route is registered so that no route can
// forget it: a scope (or none: open to anyone, as /healthz and the dashboard's files), and where the
// agent it touches comes from, to be checked against the caller's allow-list.
#pragma once
#include <cstdint>
#include <optional>

#include "auth/scopes.hpp"

namespace aw::api {

struct Access {
  enum class Agent : std::uint8_t {
    none,      // the route touches no one agent
    path,      // {agent_id} in the path
    workflow,  // {workflow_id} in the path: the workflow's agent
    stream,    // {stream_id} in the path: the stream's agent
    handler,   // only the handler knows (a body field, a filtered list): it checks, with agent_refusal()
    every,     // the route shows every agent (stats, metrics): the caller must be allowed them all
  };
  std::optional<auth::Scope> scope;  // nullopt: open, no credential needed
  Agent agent = Agent::none;

  static Access open() { return {}; }
  static Access need(auth::Scope scope, Agent agent = Agent::none) { return {scope, agent}; }
};

}  // namespace aw::api
