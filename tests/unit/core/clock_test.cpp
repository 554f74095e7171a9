// Envelope timestamps: RFC 3339, UTC, milliseconds, whatever the second the formatter saw last.
#include "core/clock.hpp"

#include <gtest/gtest.h>

namespace aw {
namespace {

TEST(Clock, FormatsUtcWithMilliseconds) {
  EXPECT_EQ(format_timestamp(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_timestamp(1795712400123), "2026-11-26T17:00:00.123Z");
  EXPECT_EQ(format_timestamp(951782400005), "2000-02-29T00:00:00.005Z");  // leap day
  EXPECT_EQ(format_timestamp(-1), "1969-12-31T23:59:59.999Z");
}

TEST(Clock, CachedSecondNeverLeaksIntoAnother) {
  // Alternating seconds and repeated ones: the per-second cache must follow every change.
  const std::int64_t a = 1795712400000;  // 2026-11-26T17:00:00
  EXPECT_EQ(format_timestamp(a + 999), "2026-11-26T17:00:00.999Z");
  EXPECT_EQ(format_timestamp(a + 1000), "2026-11-26T17:00:01.000Z");
  EXPECT_EQ(format_timestamp(a + 1), "2026-11-26T17:00:00.001Z");
  EXPECT_EQ(format_timestamp(a + 86400000), "2026-11-27T17:00:00.000Z");
  std::string out = "ts=";
  append_timestamp(out, a + 86400000 + 42);
  EXPECT_EQ(out, "ts=2026-11-27T17:00:00.042Z");
}

}  // namespace
}  // namespace aw
