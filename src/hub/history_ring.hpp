// A channel's recent events in memory: the last N within a TTL, contiguous in seq, so a resume point is
// found by arithmetic. Also remembers the idempotency keys of the events it holds.
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/event.hpp"

namespace aw {

class HistoryRing {
 public:
  HistoryRing(std::size_t capacity, std::int64_t ttl_ms) : capacity_(capacity), ttl_ms_(ttl_ms) {}

  // Appends the next event; its seq must be last_seq()+1 unless the ring is empty.
  void push(EventPtr ev);

  // Drops events older than now_ms - ttl.
  void expire(std::int64_t now_ms);

  // Events with seq > since, oldest first, at most `limit`; nullopt when some of them are gone
  // (since+1 is older than the oldest event held) or since is ahead of `latest`.
  std::optional<std::vector<EventPtr>> since(std::uint64_t since, std::uint64_t latest,
                                             std::size_t limit = SIZE_MAX) const;

  std::optional<std::uint64_t> seq_for_key(const std::string& idempotency_key) const;

  std::size_t size() const noexcept { return events_.size(); }
  std::uint64_t first_seq() const noexcept { return events_.empty() ? 0 : events_.front()->seq; }
  std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  void pop_front();

  std::size_t capacity_;
  std::int64_t ttl_ms_;
  std::deque<EventPtr> events_;
  std::unordered_map<std::string, std::uint64_t> keys_;
  std::uint64_t bytes_ = 0;
};

}  // namespace aw
