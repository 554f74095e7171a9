#include "store/sqlite/commit_times.hpp"

#include <algorithm>

namespace aw::store {

void CommitTimes::add(std::int64_t id, std::int64_t ts_ms) {
  if (!ranges_.empty()) {
    Range& last = ranges_.back();
    // The same second of commits, the clock not stepped back: the last range grows.
    if (ts_ms >= last.max_ts_ms && ts_ms - last.min_ts_ms < kRangeMs) {
      last.last_id = id;
      last.max_ts_ms = ts_ms;
      return;
    }
  }
  ranges_.push_back({id, id, ts_ms, ts_ms});
  if (ranges_.size() > kMaxRanges) coarsen();
}

std::vector<CommitTimes::Range> CommitTimes::older_than(std::int64_t cutoff_ms) const {
  std::vector<Range> out;
  for (const Range& r : ranges_) {
    if (r.min_ts_ms < cutoff_ms) out.push_back(r);
  }
  return out;
}

void CommitTimes::cut(std::int64_t cutoff_ms) {
  std::erase_if(ranges_, [cutoff_ms](const Range& r) { return r.max_ts_ms < cutoff_ms; });
  for (Range& r : ranges_) r.min_ts_ms = std::max(r.min_ts_ms, cutoff_ms);
}

void CommitTimes::forget_below(std::int64_t min_id) {
  while (!ranges_.empty() && ranges_.front().last_id < min_id) ranges_.pop_front();
  if (!ranges_.empty()) ranges_.front().first_id = std::max(ranges_.front().first_id, min_id);
}

void CommitTimes::coarsen() {
  std::deque<Range> merged;
  for (std::size_t i = 0; i < ranges_.size(); i += 2) {
    Range r = ranges_[i];
    if (i + 1 < ranges_.size()) {
      const Range& next = ranges_[i + 1];
      r.last_id = next.last_id;
      r.min_ts_ms = std::min(r.min_ts_ms, next.min_ts_ms);
      r.max_ts_ms = std::max(r.max_ts_ms, next.max_ts_ms);
    }
    merged.push_back(r);
  }
  ranges_.swap(merged);
}

}  // namespace aw::store
