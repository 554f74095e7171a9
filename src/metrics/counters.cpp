#include "metrics/counters.hpp"

#include "core/clock.hpp"

namespace aw::metrics {

Counters::Counters(unsigned shards)
    : lag(shards), count_(shards), shards_(new ShardCounters[shards]), started_ms_(now_unix_ms()) {}

CounterTotals Counters::totals() const {
  CounterTotals t;
  auto get = [](const std::atomic<std::uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  t.live_connections = get(live_connections);
  t.connections_accepted = get(connections_accepted);
  t.connections_closed = get(connections_closed);
  t.connections_timed_out = get(connections_timed_out);
  t.connections_dropped_slow = get(connections_dropped_slow);
  t.connections_rejected = get(connections_rejected);
  t.http_requests = get(http_requests);
  t.connections_open = get(connections_open);
  t.connections_max = get(connections_max);
  t.connections_refused_max = get(connections_refused_max);
  t.connections_refused_per_ip = get(connections_refused_per_ip);
  t.accept_errors = get(accept_errors);
  t.handshakes_rate_limited = get(handshakes_rate_limited);
  t.requests_rate_limited = get(requests_rate_limited);
  t.connections_rate_limited = get(connections_rate_limited);
  t.rate_limit_addresses = get(rate_limit_addresses);
  t.tls_handshakes = get(tls_handshakes);
  t.tls_handshake_failures = get(tls_handshake_failures);
  for (unsigned i = 0; i < count_; ++i) {
    t.messages_out += get(shards_[i].messages_out);
    t.messages_merged += get(shards_[i].messages_merged);
    t.bytes_out += get(shards_[i].bytes_out);
    t.messages_in += get(shards_[i].messages_in);
    t.bytes_in += get(shards_[i].bytes_in);
    t.queued_bytes += get(shards_[i].queued_bytes);
    t.tls_writes += get(shards_[i].tls_writes);
    t.tls_write_segments += get(shards_[i].tls_write_segments);
  }
  t.uptime_ms = now_unix_ms() - started_ms_;
  return t;
}

}  // namespace aw::metrics
