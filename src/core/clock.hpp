// Wall-clock timestamps as they appear in envelopes (RFC 3339, UTC, milliseconds), and a steady clock
// for durations that must not jump with the wall clock (rate limits).
#pragma once
#include <cstdint>
#include <string>

namespace aw {

// Milliseconds since the Unix epoch.
std::int64_t now_unix_ms() noexcept;

// Milliseconds on a clock that never goes back (its origin is unspecified).
std::int64_t now_steady_ms() noexcept;

// "2026-11-25T17:00:00.123Z"
std::string format_timestamp(std::int64_t unix_ms);
// The same, appended to `out` (no string of its own).
void append_timestamp(std::string& out, std::int64_t unix_ms);

}  // namespace aw
