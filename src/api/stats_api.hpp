// `GET /api/websocket/stats` (JSON), `GET /metrics` (Prometheus text) and `GET /healthz`.
#pragma once
#include "api/context.hpp"
#include "api/router.hpp"

namespace aw::api {

void add_stats_routes(Router& router, Context& ctx);

}  // namespace aw::api
