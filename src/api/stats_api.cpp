#include "api/stats_api.hpp"

#include <boost/json.hpp>

#include "metrics/report.hpp"

namespace aw::api {
namespace {

constexpr std::size_t kBusiestAgents = 10;
constexpr std::size_t kLaggingSubscribers = 10;

metrics::StatsInput gather(Context& ctx) {
  return {ctx.counters.totals(),  ctx.hub.stats(kBusiestAgents),   ctx.hub.store_stats(),
          ctx.hub.durable(),      ctx.options.effective_threads(), ctx.counters.lag.top(kLaggingSubscribers),
          ctx.hub.broker_health()};
}

}  // namespace

void add_stats_routes(Router& router, Context& ctx) {
  router.add("GET", "/api/websocket/stats", Access::need(auth::Scope::admin, Access::Agent::every),
             [&ctx](const Request&, const Params&, Reply reply) {
               Response res;
               res.body = metrics::stats_json(gather(ctx));
               reply(std::move(res));
             });
  router.add("GET", "/metrics", Access::need(auth::Scope::admin, Access::Agent::every),
             [&ctx](const Request&, const Params&, Reply reply) {
               Response res;
               res.content_type = "text/plain; version=0.0.4";
               res.body = metrics::prometheus_text(gather(ctx));
               reply(std::move(res));
             });
  router.add("GET", "/healthz", Access::open(), [&ctx](const Request&, const Params&, Reply reply) {
    Response res;
    auto instances = ctx.hub.broker_health();
    if (instances.empty()) {
      res.body = "{\"status\":\"ok\"}";
    } else {
      // Subscribers are still served while a Redis instance is down; publishes to its agents get 503.
      bool all_up = true;
      boost::json::array list;
      for (const auto& i : instances) {
        all_up = all_up && i.up;
        list.push_back(boost::json::object{{"name", i.name}, {"state", i.up ? "up" : "down"}});
      }
      res.body = boost::json::serialize(boost::json::object{
          {"status", all_up ? "ok" : "degraded"}, {"broker", ctx.hub.broker_name()}, {"instances", list}});
    }
    reply(std::move(res));
  });
}

}  // namespace aw::api
