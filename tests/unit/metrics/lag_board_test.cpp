// The lag board: each shard's report replaces its last one; readers get the worst over all shards.
#include "metrics/lag_board.hpp"

#include <gtest/gtest.h>

namespace aw::metrics {
namespace {

SubscriberLag lag(std::string id, std::uint64_t bytes) {
  return {std::move(id), "a", bytes, 1, 1};
}

TEST(LagBoard, MergesShardsWorstFirst) {
  LagBoard board(2);
  board.publish(0, {lag("s1", 10), lag("s2", 500)});
  board.publish(1, {lag("s3", 200)});
  auto top = board.top(2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].session_id, "s2");
  EXPECT_EQ(top[1].session_id, "s3");
}

TEST(LagBoard, ANewReportReplacesTheOld) {
  LagBoard board(1);
  board.publish(0, {lag("s1", 10)});
  board.publish(0, {});
  EXPECT_TRUE(board.top(10).empty());
}

}  // namespace
}  // namespace aw::metrics
