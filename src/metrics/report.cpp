#include "metrics/report.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <cstdio>
#include <utility>

#include "protocol/json_span.hpp"

namespace aw::metrics {
namespace {

// A shared broker's instances with their state and figures since start.
boost::json::object broker_json(const std::vector<broker::InstanceHealth>& instances) {
  boost::json::array list;
  for (const auto& i : instances)
    list.push_back({{"name", i.name},
                    {"state", i.up ? "up" : "down"},
                    {"batches", i.batches},
                    {"events", i.events},
                    {"errors", i.errors},
                    {"reconnects", i.reconnects},
                    {"commit_seconds_sum", static_cast<double>(i.commit_us_sum) / 1e6},
                    {"watched_channels", i.watched},
                    {"messages_received", i.messages},
                    {"gaps_backfilled", i.gaps_backfilled}});
  return {{"kind", "redis"}, {"instances", std::move(list)}};
}

}  // namespace

std::string stats_json(const StatsInput& in) {
  const auto& c = in.counters;
  boost::json::array busiest;
  for (const auto& ch : in.hub.busiest)
    busiest.push_back({{"agent_id", ch.agent_id},
                       {"connections", ch.subscribers},
                       {"last_seq", ch.last_seq},
                       {"history_events", ch.history_events}});
  boost::json::array lagging;
  for (const auto& l : in.lagging)
    lagging.push_back({{"session_id", l.session_id},
                       {"agent_id", l.agent_id},
                       {"queued_bytes", l.queued_bytes},
                       {"queued_events", l.queued_events},
                       {"seq_behind", l.seq_behind}});
  boost::json::object o{
      {"connections",
       {{"live", c.live_connections},
        {"accepted", c.connections_accepted},
        {"closed", c.connections_closed},
        {"timed_out", c.connections_timed_out},
        {"dropped_slow", c.connections_dropped_slow},
        {"rejected", c.connections_rejected},
        {"open", c.connections_open},
        {"max", c.connections_max},
        {"refused_max", c.connections_refused_max},
        {"refused_per_ip", c.connections_refused_per_ip},
        {"accept_errors", c.accept_errors},
        {"busiest_agents", std::move(busiest)},
        {"lagging", std::move(lagging)}}},
      {"messages", {{"in", c.messages_in}, {"out", c.messages_out}, {"merged", c.messages_merged}}},
      {"bytes", {{"in", c.bytes_in}, {"out", c.bytes_out}, {"queued", c.queued_bytes}}},
      {"rate_limits",
       {{"handshakes_refused", c.handshakes_rate_limited},
        {"requests_refused", c.requests_rate_limited},
        {"connections_closed", c.connections_rate_limited},
        {"addresses", c.rate_limit_addresses}}},
      {"publishes", in.hub.publishes},
      {"publish_failures", in.hub.publish_failures},
      {"state_conflicts", in.hub.state_conflicts},
      {"http_requests", c.http_requests},
      {"tls",
       {{"handshakes", c.tls_handshakes},
        {"handshake_failures", c.tls_handshake_failures},
        {"writes", c.tls_writes},
        {"write_segments", c.tls_write_segments}}},
      {"channels", in.hub.channels},
      {"history", {{"events", in.hub.history_events}, {"bytes", in.hub.history_bytes}}},
      {"store",
       {{"kind", !in.broker_instances.empty() ? "redis"
                 : in.durable                 ? "sqlite"
                                              : "memory"},
        {"bytes", in.store.bytes},
        {"events", in.store.events}}},
      {"threads", in.threads},
      {"uptime_seconds", c.uptime_ms / 1000},
  };
  if (!in.broker_instances.empty()) o["broker"] = broker_json(in.broker_instances);
  return boost::json::serialize(o);
}

namespace {

void metric(std::string& out, const char* name, const char* type, const char* help, std::uint64_t value) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  out.append(name).append(" ").append(std::to_string(value)).append("\n");
}

// One line per instance of a shared broker: `name{instance="redis://..."} value`.
template <typename Value>
void per_instance(std::string& out, const char* name, const char* type, const char* help,
                  const std::vector<broker::InstanceHealth>& instances, Value value) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  for (const auto& i : instances) {
    // Instance names are redis://host:port/db, which need no escaping inside a label value.
    out.append(name).append("{instance=\"").append(i.name).append("\"} ").append(value(i)).append("\n");
  }
}

void broker_metrics(std::string& out, const std::vector<broker::InstanceHealth>& in) {
  if (in.empty()) return;
  using I = broker::InstanceHealth;
  auto n = [](std::uint64_t I::*field) { return [field](const I& i) { return std::to_string(i.*field); }; };
  per_instance(out, "agentwire_broker_up", "gauge", "1 while the node is connected to the Redis instance.",
               in, [](const I& i) { return std::string(i.up ? "1" : "0"); });
  per_instance(out, "agentwire_broker_batches_total", "counter", "Batch scripts the Redis instance ran.", in,
               n(&I::batches));
  per_instance(out, "agentwire_broker_events_total", "counter", "Events numbered and stored in the instance.",
               in, n(&I::events));
  per_instance(out, "agentwire_broker_errors_total", "counter",
               "Redis commands and scripts that failed or got no answer in time.", in, n(&I::errors));
  per_instance(out, "agentwire_broker_reconnects_total", "counter",
               "Connections to the instance (writer or pub/sub) made again after one was lost.", in,
               n(&I::reconnects));
  // With agentwire_broker_batches_total as the count: the mean commit time is their ratio.
  per_instance(out, "agentwire_broker_commit_seconds_total", "counter",
               "Seconds from sending batch scripts to their answers, summed.", in, [](const I& i) {
                 char sum[32];
                 std::snprintf(sum, sizeof sum, "%.6f", static_cast<double>(i.commit_us_sum) / 1e6);
                 return std::string(sum);
               });
  per_instance(out, "agentwire_broker_watched_channels", "gauge",
               "Channels this node subscribes to in the instance's pub/sub (those with local subscribers).",
               in, n(&I::watched));
  per_instance(out, "agentwire_broker_messages_received_total", "counter",
               "Pub/sub messages received from the instance.", in, n(&I::messages));
  per_instance(out, "agentwire_broker_gaps_backfilled_total", "counter",
               "Gaps pub/sub left in a watched channel that were read back from the instance's Stream.", in,
               n(&I::gaps_backfilled));
}

}  // namespace

std::string prometheus_text(const StatsInput& in) {
  const auto& c = in.counters;
  std::string out;
  out.reserve(4096);
  metric(out, "agentwire_connections", "gauge", "Live WebSocket connections.", c.live_connections);
  metric(out, "agentwire_connections_accepted_total", "counter", "WebSocket connections accepted.",
         c.connections_accepted);
  metric(out, "agentwire_connections_closed_total", "counter", "WebSocket connections closed.",
         c.connections_closed);
  metric(out, "agentwire_connections_timed_out_total", "counter", "Connections closed for idleness.",
         c.connections_timed_out);
  metric(out, "agentwire_connections_dropped_slow_total", "counter",
         "Connections closed because their outbound queue was full.", c.connections_dropped_slow);
  metric(out, "agentwire_connections_rejected_total", "counter", "Upgrade requests refused.",
         c.connections_rejected);
  metric(out, "agentwire_open_connections", "gauge", "Connections holding a descriptor, HTTP and WebSocket.",
         c.connections_open);
  metric(out, "agentwire_max_connections", "gauge", "The --max-connections in force.", c.connections_max);
  out.append(
      "# HELP agentwire_connections_refused_total Connections refused at a limit: 503 when the server "
      "was full (max), 429 when the client address was (per_ip).\n");
  out.append("# TYPE agentwire_connections_refused_total counter\n");
  out.append("agentwire_connections_refused_total{limit=\"max\"} ")
      .append(std::to_string(c.connections_refused_max))
      .append("\n");
  out.append("agentwire_connections_refused_total{limit=\"per_ip\"} ")
      .append(std::to_string(c.connections_refused_per_ip))
      .append("\n");
  metric(out, "agentwire_accept_errors_total", "counter", "Failed accepts (mostly: out of file descriptors).",
         c.accept_errors);
  out.append(
      "# HELP agentwire_rate_limited_total Refused over a rate limit: WebSocket handshakes and HTTP requests "
      "(429), and connections closed for their message rate (1008).\n");
  out.append("# TYPE agentwire_rate_limited_total counter\n");
  for (auto [limit, n] :
       {std::pair{"handshake", c.handshakes_rate_limited}, std::pair{"request", c.requests_rate_limited},
        std::pair{"message", c.connections_rate_limited}})
    out.append("agentwire_rate_limited_total{limit=\"")
        .append(limit)
        .append("\"} ")
        .append(std::to_string(n))
        .append("\n");
  metric(out, "agentwire_rate_limit_addresses", "gauge", "Client addresses the per-address rate limits hold.",
         c.rate_limit_addresses);
  metric(out, "agentwire_tls_handshakes_total", "counter", "TLS handshakes completed.", c.tls_handshakes);
  metric(out, "agentwire_tls_handshake_failures_total", "counter",
         "TLS handshakes that failed or timed out (plain HTTP on the TLS port among them).",
         c.tls_handshake_failures);
  metric(out, "agentwire_tls_writes_total", "counter",
         "Writes of WebSocket frames into TLS connections (one per flush of a connection's queue).",
         c.tls_writes);
  metric(out, "agentwire_messages_in_total", "counter", "WebSocket messages received.", c.messages_in);
  metric(out, "agentwire_messages_out_total", "counter", "WebSocket messages sent.", c.messages_out);
  metric(out, "agentwire_messages_merged_total", "counter",
         "Events merged into a queued message of a subscriber that fell behind (stream deltas, progress).",
         c.messages_merged);
  metric(out, "agentwire_bytes_in_total", "counter", "WebSocket payload bytes received.", c.bytes_in);
  metric(out, "agentwire_bytes_out_total", "counter", "WebSocket frame bytes queued for sending.",
         c.bytes_out);
  metric(out, "agentwire_queued_bytes", "gauge", "Outbound bytes waiting in connection queues.",
         c.queued_bytes);
  metric(out, "agentwire_publishes_total", "counter", "Events published and acknowledged.", in.hub.publishes);
  metric(out, "agentwire_publish_failures_total", "counter", "Publishes refused (store failure, overload).",
         in.hub.publish_failures);
  metric(out, "agentwire_state_conflicts_total", "counter",
         "Workflow and stream commands decided again: another node had changed the state (--broker).",
         in.hub.state_conflicts);
  metric(out, "agentwire_http_requests_total", "counter", "HTTP requests handled.", c.http_requests);
  metric(out, "agentwire_channels", "gauge", "Agent channels known.", in.hub.channels);
  metric(out, "agentwire_history_events", "gauge", "Events held in memory for resume.",
         in.hub.history_events);
  metric(out, "agentwire_history_bytes", "gauge", "Bytes of events held in memory for resume.",
         in.hub.history_bytes);
  metric(out, "agentwire_store_bytes", "gauge", "Size of the event store on disk.", in.store.bytes);
  metric(out, "agentwire_store_events", "gauge", "Events in the event store.", in.store.events);
  metric(out, "agentwire_uptime_seconds", "gauge", "Seconds since start.",
         static_cast<std::uint64_t>(c.uptime_ms / 1000));
  broker_metrics(out, in.broker_instances);
  if (!in.lagging.empty()) {
    out.append(
        "# HELP agentwire_subscriber_queued_bytes Outbound bytes queued for the subscribers furthest "
        "behind.\n");
    out.append("# TYPE agentwire_subscriber_queued_bytes gauge\n");
    for (const auto& l : in.lagging)
      out.append("agentwire_subscriber_queued_bytes{session=\"")
          .append(l.session_id)
          .append("\",agent_id=\"")
          .append(l.agent_id)
          .append("\"} ")
          .append(std::to_string(l.queued_bytes))
          .append("\n");
    out.append(
        "# HELP agentwire_subscriber_seq_behind Events the subscribers furthest behind have yet to "
        "receive.\n");
    out.append("# TYPE agentwire_subscriber_seq_behind gauge\n");
    for (const auto& l : in.lagging)
      out.append("agentwire_subscriber_seq_behind{session=\"")
          .append(l.session_id)
          .append("\",agent_id=\"")
          .append(l.agent_id)
          .append("\"} ")
          .append(std::to_string(l.seq_behind))
          .append("\n");
  }
  if (!in.hub.busiest.empty()) {
    out.append("# HELP agentwire_agent_connections Live connections of the busiest agents.\n");
    out.append("# TYPE agentwire_agent_connections gauge\n");
    for (const auto& ch : in.hub.busiest) {
      // Agent ids are [A-Za-z0-9_.:-], so they need no escaping inside a label value.
      out.append("agentwire_agent_connections{agent_id=\"").append(ch.agent_id).append("\"} ");
      out.append(std::to_string(ch.subscribers)).append("\n");
    }
  }
  return out;
}

}  // namespace aw::metrics
