// Server-wide counters. Per-message counters live per shard (each written by one thread only, on its
// own cache line) and are summed when read; rare events use shared atomics.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

#include "metrics/lag_board.hpp"

namespace aw::metrics {

struct alignas(64) ShardCounters {
  std::atomic<std::uint64_t> messages_out{0};
  std::atomic<std::uint64_t> bytes_out{0};
  std::atomic<std::uint64_t> messages_in{0};
  std::atomic<std::uint64_t> bytes_in{0};
  std::atomic<std::uint64_t> queued_bytes{0};  // outbound backlog of this shard's connections now
  // Events that joined a queued message of a lagging subscriber instead of being queued on their own.
  std::atomic<std::uint64_t> messages_merged{0};
  // Writes of WebSocket bytes into TLS connections: one per flush of a connection's queue (its frames
  // copied into one buffer, one TLS record of up to 16 KiB), and the queued segments they carried.
  std::atomic<std::uint64_t> tls_writes{0};
  std::atomic<std::uint64_t> tls_write_segments{0};

  // Single writer: a relaxed load+store is enough and cheaper than an atomic add.
  static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n) {
    c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
};

struct CounterTotals {
  std::uint64_t live_connections = 0;
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_closed = 0;
  std::uint64_t connections_timed_out = 0;
  std::uint64_t connections_dropped_slow = 0;
  std::uint64_t connections_rejected = 0;
  std::uint64_t messages_out = 0;
  std::uint64_t messages_merged = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t messages_in = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t queued_bytes = 0;
  std::uint64_t http_requests = 0;
  std::uint64_t connections_open = 0;
  std::uint64_t connections_max = 0;
  std::uint64_t connections_refused_max = 0;
  std::uint64_t connections_refused_per_ip = 0;
  std::uint64_t accept_errors = 0;
  std::uint64_t handshakes_rate_limited = 0;
  std::uint64_t requests_rate_limited = 0;
  std::uint64_t connections_rate_limited = 0;
  std::uint64_t rate_limit_addresses = 0;
  std::uint64_t tls_handshakes = 0;
  std::uint64_t tls_handshake_failures = 0;
  std::uint64_t tls_writes = 0;
  std::uint64_t tls_write_segments = 0;
  std::int64_t uptime_ms = 0;
};

class Counters {
 public:
  explicit Counters(unsigned shards);

  ShardCounters& shard(unsigned i) noexcept { return shards_[i]; }
  CounterTotals totals() const;

  std::atomic<std::uint64_t> live_connections{0};
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> connections_closed{0};
  std::atomic<std::uint64_t> connections_timed_out{0};
  std::atomic<std::uint64_t> connections_dropped_slow{0};
  std::atomic<std::uint64_t> connections_rejected{0};  // upgrade requests answered with an error
  std::atomic<std::uint64_t> http_requests{0};
  // Every connection holding a descriptor, HTTP and WebSocket alike, and the limits on them.
  std::atomic<std::uint64_t> connections_open{0};
  std::atomic<std::uint64_t> connections_max{0};             // --max-connections in force
  std::atomic<std::uint64_t> connections_refused_max{0};     // answered 503: the server was full
  std::atomic<std::uint64_t> connections_refused_per_ip{0};  // answered 429: the address was full
  std::atomic<std::uint64_t> accept_errors{0};               // accept() failed (mostly: out of descriptors)
  // Rate limits: handshakes and HTTP requests answered 429, connections closed for their message rate,
  // and the client addresses the per-address tables hold now.
  std::atomic<std::uint64_t> handshakes_rate_limited{0};
  std::atomic<std::uint64_t> requests_rate_limited{0};
  std::atomic<std::uint64_t> connections_rate_limited{0};
  std::atomic<std::uint64_t> rate_limit_addresses{0};
  std::atomic<std::uint64_t> tls_handshakes{0};          // TLS handshakes completed
  std::atomic<std::uint64_t> tls_handshake_failures{0};  // ... failed or timed out (plain HTTP among them)
  LagBoard lag;  // the subscribers furthest behind, refreshed by each shard's sweep

 private:
  unsigned count_;
  std::unique_ptr<ShardCounters[]> shards_;
  std::int64_t started_ms_;
};

}  // namespace aw::metrics
