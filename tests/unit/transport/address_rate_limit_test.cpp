// The per-address rate limit: addresses counted as ConnectionGate counts them, loopback exempt unless
// asked, Retry-After in whole seconds, refilled addresses forgotten at the sweep, and the table's bound.
#include "transport/address_rate_limit.hpp"

#include <gtest/gtest.h>

namespace aw::transport {
namespace {

using boost::asio::ip::make_address;
using boost::asio::ip::make_address_v4;

TEST(AddressRateLimit, LimitsEachAddressOnItsOwn) {
  std::atomic<std::uint64_t> gauge{0};
  AddressRateLimit limit({1, 3}, 100, false, gauge);
  const std::int64_t t = 1'000'000;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limit.take(make_address("10.0.0.1"), t).allowed);
  auto refused = limit.take(make_address("::ffff:10.0.0.1"), t);  // the same client
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after_s, 1);
  EXPECT_TRUE(limit.take(make_address("10.0.0.2"), t).allowed);
  // IPv6 by /64: another address in the same /64 is the same client.
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limit.take(make_address("2001:db8::1"), t).allowed);
  EXPECT_FALSE(limit.take(make_address("2001:db8::ffff:2"), t).allowed);
  EXPECT_TRUE(limit.take(make_address("2001:db8:0:1::1"), t).allowed);
  EXPECT_EQ(gauge.load(), 4u);
  EXPECT_TRUE(limit.take(make_address("10.0.0.1"), t + 1000).allowed);
}

TEST(AddressRateLimit, RetryAfterRoundsUp) {
  std::atomic<std::uint64_t> gauge{0};
  AddressRateLimit limit({1, 1}, 100, true, gauge);
  EXPECT_TRUE(limit.take(make_address("10.1.1.1"), 0).allowed);
  EXPECT_EQ(limit.take(make_address("10.1.1.1"), 1).retry_after_s, 1);
  AddressRateLimit slower(RateRule{0.25, 1}, 100, true, gauge);  // one every 4 s
  EXPECT_TRUE(slower.take(7, 0).allowed);
  EXPECT_EQ(slower.take(7, 500).retry_after_s, 4);  // 3.5 s, rounded up
}

TEST(AddressRateLimit, LoopbackIsExemptUnlessAsked) {
  std::atomic<std::uint64_t> gauge{0};
  AddressRateLimit exempt({1, 1}, 100, false, gauge);
  for (const char* a : {"127.0.0.1", "127.0.0.9", "::1", "::ffff:127.0.0.1"})
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(exempt.take(make_address(a), 0).allowed) << a;
  EXPECT_EQ(gauge.load(), 0u);
  AddressRateLimit limited({1, 1}, 100, true, gauge);
  EXPECT_TRUE(limited.take(make_address("127.0.0.2"), 0).allowed);
  EXPECT_FALSE(limited.take(make_address("127.0.0.2"), 0).allowed);
}

TEST(AddressRateLimit, NoRateKeepsNothing) {
  std::atomic<std::uint64_t> gauge{0};
  AddressRateLimit off({0, 5}, 100, true, gauge);
  for (std::uint32_t i = 0; i < 1000; ++i) EXPECT_TRUE(off.take(make_address_v4(0x0a000000 + i), 0).allowed);
  EXPECT_EQ(off.tracked(), 0u);
  EXPECT_EQ(gauge.load(), 0u);
}

TEST(AddressRateLimit, ForgetsRefilledAddressesAndHoldsItsBound) {
  std::atomic<std::uint64_t> gauge{0};
  {
    // 2 a second, burst 4: refilled 2 s after the last take; the sweep runs every 2 s.
    AddressRateLimit limit({2, 4}, 50, true, gauge);
    std::int64_t t = 1'000'000;
    for (std::uint64_t c = 0; c < 50; ++c) EXPECT_TRUE(limit.take(c, t).allowed);
    EXPECT_EQ(limit.tracked(), 50u);
    // Full of addresses still limited: a new one is refused until the next sweep.
    auto refused = limit.take(1000, t + 10);
    EXPECT_FALSE(refused.allowed);
    EXPECT_EQ(refused.retry_after_s, 2);
    EXPECT_EQ(limit.tracked(), 50u);
    // Addresses that kept going stay; the rest are forgotten at the sweep, and new ones fit again.
    for (std::uint64_t c = 0; c < 10; ++c) EXPECT_TRUE(limit.take(c, t + 1900).allowed);
    EXPECT_TRUE(limit.take(1000, t + 2000).allowed);
    EXPECT_EQ(limit.tracked(), 11u);
    EXPECT_EQ(gauge.load(), 11u);
    // A forgotten address starts again with its whole burst.
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(limit.take(20, t + 2001).allowed);
    EXPECT_FALSE(limit.take(20, t + 2001).allowed);
    // Flooded by many addresses, a table never holds more than its bound.
    for (std::uint64_t c = 5000; c < 6000; ++c) limit.take(c, t + 2002);
    EXPECT_EQ(limit.tracked(), 50u);
    EXPECT_EQ(gauge.load(), 50u);
  }
  EXPECT_EQ(gauge.load(), 0u);  // a table gone takes its addresses off the gauge
}

}  // namespace
}  // namespace aw::transport
