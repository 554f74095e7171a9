// A channel's recent events in memory: the last N within a TTL, contiguous in seq, so a resume point is
// found by arithmetic. Also remembers the idempotency keys of the events it counts.
//
// Bytes are bounded apart from the count: past `max_bytes` (or when the hub's total budget asks) the
// oldest events leave memory but keep their place, as stubs (seq, time, key), so the count, the TTL
// and duplicate detection work as before; what a stub stood for is read back from the store.
#pragma once
#include <cstdint>
#include <deque>
#include <limits>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/event.hpp"

namespace aw::hub {

class HistoryRing {
 public:
  HistoryRing(std::size_t capacity, std::int64_t ttl_ms,
              std::uint64_t max_bytes = std::numeric_limits<std::uint64_t>::max())
      : capacity_(capacity), ttl_ms_(ttl_ms), max_bytes_(max_bytes) {}

  // Appends the next event; its seq must be last_seq()+1 unless the ring is empty.
  void push(EventPtr ev);

  // Drops events older than now_ms - ttl.
  void expire(std::int64_t now_ms);

  // Lets the oldest event still in memory go (it becomes a stub); returns the bytes it held, 0 if none.
  std::uint64_t release_oldest();
  // Commit time of the oldest event still in memory.
  std::optional<std::int64_t> oldest_held_ts() const;

  // Events with seq > since, oldest first, at most `limit`; nullopt when some of them are not in memory
  // (since+1 is older than the oldest event held) or since is ahead of `latest`.
  std::optional<std::vector<EventPtr>> since(std::uint64_t since, std::uint64_t latest,
                                             std::size_t limit = SIZE_MAX) const;

  std::optional<std::uint64_t> seq_for_key(const std::string& idempotency_key) const;

  // Forgets every event (a channel whose numbering moved on elsewhere, see Hub::resync).
  void clear() {
    slots_.clear();
    first_seq_ = 0;
    released_ = 0;
    keys_.clear();
    stub_keys_.clear();
    bytes_ = 0;
  }

  std::size_t size() const noexcept { return slots_.size(); }  // events counted, held or not
  std::size_t held() const noexcept { return slots_.size() - released_; }
  std::uint64_t first_seq() const noexcept { return slots_.empty() ? 0 : first_seq_; }
  // The first event still in memory (0 when none).
  std::uint64_t first_held_seq() const noexcept { return held() == 0 ? 0 : first_seq_ + released_; }
  std::uint64_t bytes() const noexcept { return bytes_; }  // frames of the events in memory

 private:
  struct Slot {
    EventPtr event;  // null once released
    std::int64_t ts_ms;
  };
  void pop_front();

  std::size_t capacity_;
  std::int64_t ttl_ms_;
  std::uint64_t max_bytes_;
  std::deque<Slot> slots_;
  std::uint64_t first_seq_ = 0;  // of slots_.front()
  std::size_t released_ = 0;     // slots_[0, released_) are stubs
  std::unordered_map<std::string, std::uint64_t> keys_;
  std::unordered_map<std::uint64_t, std::string> stub_keys_;  // seq -> key, for stubs that had one
  std::uint64_t bytes_ = 0;
};

}  // namespace aw::hub
