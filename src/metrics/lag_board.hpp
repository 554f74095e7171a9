// The subscribers furthest behind, for stats and /metrics: each shard publishes its worst few at every
// sweep, and readers merge them. Lag is what a subscriber has queued and not yet handed to the kernel.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace aw::metrics {

struct SubscriberLag {
  std::string session_id;
  std::string agent_id;
  std::uint64_t queued_bytes = 0;
  std::uint64_t queued_events = 0;
  std::uint64_t seq_behind =
      0;  // newest seq handed to the subscriber minus the oldest still queued, plus one
};

class LagBoard {
 public:
  explicit LagBoard(unsigned shards) : per_shard_(shards) {}

  // Replaces what `shard` reported last time.
  void publish(unsigned shard, std::vector<SubscriberLag> worst);
  // The `n` furthest behind over all shards, by queued bytes.
  std::vector<SubscriberLag> top(std::size_t n) const;

 private:
  mutable std::mutex mutex_;
  std::vector<std::vector<SubscriberLag>> per_shard_;
};

}  // namespace aw::metrics
