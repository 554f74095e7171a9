// The history ring: capacity, TTL, resume lookups and idempotency keys.
#include "hub/history_ring.hpp"

#include <gtest/gtest.h>

#include "protocol/envelope.hpp"

namespace aw::hub {
namespace {

EventPtr ev(std::uint64_t seq, std::int64_t ts = 1000, std::string key = "") {
  return protocol::make_event("a", seq, "t", ts, "{}", std::move(key));
}

TEST(HistoryRing, KeepsTheNewestUpToCapacity) {
  HistoryRing ring(3, 1'000'000);
  for (std::uint64_t s = 1; s <= 5; ++s) ring.push(ev(s));
  EXPECT_EQ(ring.size(), 3u);
  EXPECT_EQ(ring.first_seq(), 3u);
}

TEST(HistoryRing, SinceReturnsTheMissedEventsOrNothing) {
  HistoryRing ring(10, 1'000'000);
  for (std::uint64_t s = 1; s <= 5; ++s) ring.push(ev(s));
  auto r = ring.since(2, 5);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 3u);
  EXPECT_EQ((*r)[0]->seq, 3u);
  EXPECT_TRUE(ring.since(5, 5)->empty());
  EXPECT_TRUE(ring.since(0, 5));
  EXPECT_FALSE(ring.since(6, 5));  // ahead of latest
  auto limited = ring.since(0, 5, 2);
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->size(), 2u);
}

TEST(HistoryRing, SinceFailsWhenEventsWereEvicted) {
  HistoryRing ring(2, 1'000'000);
  for (std::uint64_t s = 1; s <= 5; ++s) ring.push(ev(s));
  EXPECT_FALSE(ring.since(2, 5));
  EXPECT_TRUE(ring.since(3, 5));
}

TEST(HistoryRing, ExpiresByAge) {
  HistoryRing ring(10, 100);
  ring.push(ev(1, 1000));
  ring.push(ev(2, 1050));
  ring.push(ev(3, 1200));
  ring.expire(1160);
  EXPECT_EQ(ring.size(), 1u);
  EXPECT_EQ(ring.first_seq(), 3u);
}

TEST(HistoryRing, ForgetsKeysOfEvictedEvents) {
  HistoryRing ring(2, 1'000'000);
  ring.push(ev(1, 1000, "k1"));
  ring.push(ev(2, 1000, "k2"));
  EXPECT_EQ(ring.seq_for_key("k1"), 1u);
  ring.push(ev(3, 1000));
  EXPECT_FALSE(ring.seq_for_key("k1"));
  EXPECT_EQ(ring.seq_for_key("k2"), 2u);
}

TEST(HistoryRing, TracksBytes) {
  HistoryRing ring(1, 1'000'000);
  ring.push(ev(1));
  auto one = ring.bytes();
  EXPECT_GT(one, 0u);
  ring.push(ev(2));
  EXPECT_EQ(ring.bytes(), one);
}

TEST(HistoryRing, ByteBoundReleasesTheOldestButKeepsTheirPlaceAndKeys) {
  const std::uint64_t one = ev(1)->frame().size();
  HistoryRing ring(4, 1'000'000, 2 * one);
  for (std::uint64_t s = 1; s <= 4; ++s) ring.push(ev(s, 1000, "k" + std::to_string(s)));
  EXPECT_EQ(ring.size(), 4u);  // counted, held or not
  EXPECT_EQ(ring.held(), 2u);
  EXPECT_EQ(ring.first_seq(), 1u);
  EXPECT_EQ(ring.first_held_seq(), 3u);
  EXPECT_LE(ring.bytes(), 2 * one);
  EXPECT_FALSE(ring.since(1, 4));  // seq 2 left memory
  ASSERT_TRUE(ring.since(2, 4));
  EXPECT_EQ(ring.since(2, 4)->front()->seq, 3u);
  EXPECT_EQ(ring.seq_for_key("k1"), 1u);  // a released event's key still answers duplicates
  ring.push(ev(5, 1000, "k5"));           // the count bound drops seq 1, a stub, and its key
  EXPECT_FALSE(ring.seq_for_key("k1"));
  EXPECT_EQ(ring.seq_for_key("k2"), 2u);
  EXPECT_EQ(ring.release_oldest(), one);
  EXPECT_EQ(ring.first_held_seq(), 5u);
  EXPECT_EQ(ring.oldest_held_ts(), 1000);
  ring.expire(1'002'000);
  EXPECT_EQ(ring.size(), 0u);
  EXPECT_EQ(ring.bytes(), 0u);
  EXPECT_FALSE(ring.seq_for_key("k5"));
}

}  // namespace
}  // namespace aw::hub
