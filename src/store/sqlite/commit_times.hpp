#pragma once
// When the stored events were committed, by rowid range: what age pruning needs instead of an index on
// events.ts_ms.
//
// That index cost every commit a B-tree insert per event and a WAL page: about a sixth of a publish's
// server time over 10k channels. Events are appended in rowid order and a batch carries one commit
// time, so times rise with rowids except when the wall clock steps back. A list of rowid ranges with
// their oldest and newest times (one range per second of commits) says which rows an age cut may touch;
// the delete itself still checks ts_ms, so a range only has to be a bound, never exact.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace aw::store {

class CommitTimes {
 public:
  struct Range {
    std::int64_t first_id;
    std::int64_t last_id;
    std::int64_t min_ts_ms;  // no row in the range is older
    std::int64_t max_ts_ms;  // none is newer
  };

  // At most this many ranges are kept (a day of commits is 86,400 seconds): past it, neighbours merge
  // two by two, which keeps every bound true and only makes a cut look at more rows.
  static constexpr std::size_t kMaxRanges = 1 << 17;

  // A row appended after every row added so far.
  void add(std::int64_t id, std::int64_t ts_ms);

  // The ranges that may hold a row older than `cutoff_ms`, in rowid order.
  std::vector<Range> older_than(std::int64_t cutoff_ms) const;
  // Once every row older than `cutoff_ms` is deleted: forgets the ranges that held only such rows and
  // raises the others' oldest time to the cutoff.
  void cut(std::int64_t cutoff_ms);
  // Once no row below `min_id` is left (pruned by count): forgets what lies below it.
  void forget_below(std::int64_t min_id);
  void clear() noexcept { ranges_.clear(); }

  const std::deque<Range>& ranges() const noexcept { return ranges_; }

 private:
  static constexpr std::int64_t kRangeMs = 1000;
  void coarsen();

  std::deque<Range> ranges_;  // in rowid order, not overlapping
};

}  // namespace aw::store
