// A token bucket for rate limits: `per_s` tokens a second, at most `burst` held, one taken per action.
// It has no clock of its own: every call is given the time (milliseconds on a steady clock), so a test
// can drive it with any time it likes, and one bucket costs 16 bytes (the rule lives with the caller).
#pragma once
#include <cstdint>

namespace aw {

struct RateRule {
  double per_s = 0;  // tokens added a second; 0: no limit
  double burst = 1;  // the most held at once, and what a new bucket starts with

  bool limits() const noexcept { return per_s > 0; }
  // How long an emptied bucket takes to fill up again.
  std::int64_t refill_ms() const noexcept;
};

class TokenBucket {
 public:
  // Takes one token if there is one. A bucket never used is full.
  bool take(const RateRule& rule, std::int64_t now_ms) noexcept;
  // Milliseconds until take() would succeed (0: now).
  std::int64_t ms_until_token(const RateRule& rule, std::int64_t now_ms) const noexcept;
  // Full again: the bucket is then the same as a new one, and can be forgotten.
  bool full(const RateRule& rule, std::int64_t now_ms) const noexcept;

 private:
  // The tokens missing from a full bucket at `now_ms` (counting the refill since the last take).
  double debt_at(const RateRule& rule, std::int64_t now_ms) const noexcept;

  // Tokens missing from a full bucket at last_ms_: a default bucket is a full one.
  double debt_ = 0;
  std::int64_t last_ms_ = 0;
};

}  // namespace aw
