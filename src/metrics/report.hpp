// The counters as the stats JSON (`GET /api/websocket/stats`) and as Prometheus text (`GET /metrics`).
#pragma once
#include <string>

#include "hub/hub.hpp"
#include "metrics/counters.hpp"

namespace aw::metrics {

struct StatsInput {
  CounterTotals counters;
  hub::HubStats hub;
  store::StoreStats store;
  bool durable = false;
  unsigned threads = 0;
  std::vector<SubscriberLag> lagging;                    // furthest behind first
  std::vector<broker::InstanceHealth> broker_instances;  // a shared broker's (Redis) instances, else none
};

std::string stats_json(const StatsInput& in);
std::string prometheus_text(const StatsInput& in);

}  // namespace aw::metrics
