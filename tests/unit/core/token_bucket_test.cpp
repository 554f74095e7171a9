// The token bucket behind the rate limits, driven by a clock the test sets: a burst, then the rate, the
// wait it names, a full bucket again after the refill time, and a clock that goes back.
#include "core/token_bucket.hpp"

#include <gtest/gtest.h>

namespace aw {
namespace {

TEST(TokenBucket, TakesTheBurstThenTheRate) {
  const RateRule rule{10, 5};  // 10 a second, 5 at once
  TokenBucket b;
  std::int64_t now = 1'000'000;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.take(rule, now)) << i;
  EXPECT_FALSE(b.take(rule, now));
  EXPECT_EQ(b.ms_until_token(rule, now), 100);
  EXPECT_FALSE(b.take(rule, now + 99));
  EXPECT_TRUE(b.take(rule, now + 100));
  EXPECT_FALSE(b.take(rule, now + 100));
  // A second brings ten tokens, of which five are kept.
  now += 1100;
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(b.take(rule, now)) << i;
  EXPECT_FALSE(b.take(rule, now));
}

TEST(TokenBucket, SustainsExactlyTheRate) {
  const RateRule rule{20, 1};
  TokenBucket b;
  int taken = 0;
  // One try a millisecond for ten seconds: 20 a second, plus the first.
  for (std::int64_t t = 0; t <= 10'000; ++t) taken += b.take(rule, 5'000 + t) ? 1 : 0;
  EXPECT_EQ(taken, 201);
}

TEST(TokenBucket, IsFullAgainAfterTheRefillTime) {
  const RateRule rule{4, 8};
  EXPECT_EQ(rule.refill_ms(), 2000);
  TokenBucket b;
  EXPECT_TRUE(b.full(rule, 0));
  EXPECT_TRUE(b.take(rule, 10'000));
  EXPECT_FALSE(b.full(rule, 10'000));
  EXPECT_FALSE(b.full(rule, 10'249));
  EXPECT_TRUE(b.full(rule, 10'250));  // one token back at 4 a second
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(b.take(rule, 20'000));
  EXPECT_FALSE(b.full(rule, 21'999));
  EXPECT_TRUE(b.full(rule, 22'000));
  EXPECT_EQ(b.ms_until_token(rule, 22'000), 0);
}

TEST(TokenBucket, AClockBehindGivesNoTokens) {
  const RateRule rule{1, 1};
  TokenBucket b;
  EXPECT_TRUE(b.take(rule, 50'000));
  // Another thread's earlier reading: no refill, and no negative one either.
  EXPECT_FALSE(b.take(rule, 40'000));
  EXPECT_EQ(b.ms_until_token(rule, 40'000), 1000);
  EXPECT_TRUE(b.take(rule, 51'000));
}

TEST(TokenBucket, NoRateNoLimit) {
  EXPECT_FALSE((RateRule{0, 1}).limits());
  EXPECT_EQ((RateRule{0, 1}).refill_ms(), 0);
}

}  // namespace
}  // namespace aw
