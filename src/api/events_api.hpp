// `POST /api/agents/{agent_id}/events` (publish) and `GET /api/agents/{agent_id}/events` (history).
#pragma once
#include "api/context.hpp"
#include "api/router.hpp"

namespace aw::api {

inline constexpr std::size_t kDefaultHistoryLimit = 100;
inline constexpr std::size_t kMaxHistoryLimit = 1000;

void add_event_routes(Router& router, Context& ctx);

// The answer to a finished publish: 202 {"seq"} or the error the failure deserves.
Response publish_response(const hub::PublishResult& result);

}  // namespace aw::api
