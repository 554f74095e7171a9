// CommitTimes: the rowid ranges an age cut must look at. Ranges are bounds (the delete checks ts_ms
// itself), so what matters is that no row older than a cutoff falls outside older_than(cutoff).
#include "store/sqlite/commit_times.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <utility>
#include <vector>

namespace aw::store {
namespace {

// Rows (id, ts) that older_than(cutoff) must cover.
void expect_covered(const CommitTimes& times, const std::vector<std::pair<std::int64_t, std::int64_t>>& rows,
                    std::int64_t cutoff) {
  const auto ranges = times.older_than(cutoff);  // in rowid order
  for (const auto& [id, ts] : rows) {
    if (ts >= cutoff) continue;
    auto it = std::upper_bound(ranges.begin(), ranges.end(), id,
                               [](std::int64_t v, const CommitTimes::Range& r) { return v < r.first_id; });
    const bool covered = it != ranges.begin() && id <= std::prev(it)->last_id;
    ASSERT_TRUE(covered) << "row " << id << " (ts " << ts << ") is older than " << cutoff
                         << " but not in a range";
  }
}

TEST(CommitTimes, OneRangePerSecondOfCommits) {
  CommitTimes times;
  for (std::int64_t id = 1; id <= 100; ++id) times.add(id, 10'000 + id * 5);  // 0.5 s of commits
  for (std::int64_t id = 101; id <= 200; ++id) times.add(id, 11'000 + id);
  ASSERT_EQ(times.ranges().size(), 2u);
  EXPECT_EQ(times.ranges()[0].first_id, 1);
  EXPECT_EQ(times.ranges()[0].last_id, 100);
  EXPECT_EQ(times.ranges()[1].first_id, 101);
  EXPECT_EQ(times.older_than(10'005).size(), 0u);  // nothing is older than the first row
  EXPECT_EQ(times.older_than(10'006).size(), 1u);
  EXPECT_EQ(times.older_than(20'000).size(), 2u);
}

TEST(CommitTimes, AClockSteppingBackStartsARangeAndStaysCovered) {
  CommitTimes times;
  std::vector<std::pair<std::int64_t, std::int64_t>> rows{{1, 5000}, {2, 5100}, {3, 1000}, {4, 1200},
                                                          {5, 9000}, {6, 800},  {7, 9500}};
  for (auto [id, ts] : rows) times.add(id, ts);
  for (std::int64_t cutoff : {900, 1100, 1300, 5050, 6000, 9200, 10000}) expect_covered(times, rows, cutoff);
}

TEST(CommitTimes, ACutForgetsWhatWentAndBoundsWhatStays) {
  CommitTimes times;
  times.add(1, 1000);
  times.add(2, 1500);  // the same range as 1
  times.add(3, 3000);
  times.add(4, 3900);
  times.add(5, 6000);
  times.cut(1600);  // rows 1 and 2 are gone: their range too
  ASSERT_EQ(times.ranges().size(), 2u);
  EXPECT_EQ(times.ranges()[0].first_id, 3);
  times.cut(3500);  // row 3 is gone, row 4 stays: its range says nothing older than 3500 is left
  ASSERT_EQ(times.ranges().size(), 2u);
  EXPECT_EQ(times.ranges()[0].min_ts_ms, 3500);
  EXPECT_EQ(times.older_than(3500).size(), 0u);
  EXPECT_EQ(times.older_than(3901).size(), 1u);
}

TEST(CommitTimes, ForgetsRowsThatCountPruningTook) {
  CommitTimes times;
  for (std::int64_t id = 1; id <= 10; ++id) times.add(id, id * 2000);
  times.forget_below(4);
  ASSERT_EQ(times.ranges().size(), 7u);
  EXPECT_EQ(times.ranges().front().first_id, 4);
  times.forget_below(100);
  EXPECT_TRUE(times.ranges().empty());
}

TEST(CommitTimes, TooManyRangesMergeAndStillCoverEveryRow) {
  CommitTimes times;
  std::vector<std::pair<std::int64_t, std::int64_t>> rows;
  // Every row a second apart, with the clock stepping back now and then: more ranges than the cap.
  const auto n = static_cast<std::int64_t>(CommitTimes::kMaxRanges) + 1000;
  for (std::int64_t id = 1; id <= n; ++id) {
    const std::int64_t ts = id % 1000 == 0 ? id * 1000 - 500'000 : id * 1000;
    rows.emplace_back(id, ts);
    times.add(id, ts);
  }
  EXPECT_LE(times.ranges().size(), CommitTimes::kMaxRanges);
  for (std::size_t i = 1; i < times.ranges().size(); ++i) {
    EXPECT_GT(times.ranges()[i].first_id, times.ranges()[i - 1].last_id);  // in rowid order, no overlap
  }
  for (std::int64_t cutoff : {std::int64_t{1500}, std::int64_t{500'000}, n * 500, n * 1000}) {
    expect_covered(times, rows, cutoff);
  }
}

}  // namespace
}  // namespace aw::store
