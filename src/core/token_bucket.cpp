#include "core/token_bucket.hpp"

#include <algorithm>
#include <cmath>

namespace aw {

std::int64_t RateRule::refill_ms() const noexcept {
  if (per_s <= 0) return 0;
  return static_cast<std::int64_t>(std::ceil(burst * 1000.0 / per_s));
}

double TokenBucket::debt_at(const RateRule& rule, std::int64_t now_ms) const noexcept {
  // A clock read earlier on another thread may be behind last_ms_: no refill then, never a negative one.
  const double elapsed_ms = static_cast<double>(std::max<std::int64_t>(now_ms - last_ms_, 0));
  return std::max(0.0, debt_ - elapsed_ms * rule.per_s / 1000.0);
}

bool TokenBucket::take(const RateRule& rule, std::int64_t now_ms) noexcept {
  const double debt = debt_at(rule, now_ms);
  if (debt + 1.0 > rule.burst) return false;
  debt_ = debt + 1.0;
  last_ms_ = std::max(last_ms_, now_ms);
  return true;
}

std::int64_t TokenBucket::ms_until_token(const RateRule& rule, std::int64_t now_ms) const noexcept {
  const double missing = debt_at(rule, now_ms) + 1.0 - rule.burst;
  if (missing <= 0 || rule.per_s <= 0) return 0;
  return static_cast<std::int64_t>(std::ceil(missing * 1000.0 / rule.per_s));
}

bool TokenBucket::full(const RateRule& rule, std::int64_t now_ms) const noexcept {
  return debt_at(rule, now_ms) <= 0;
}

}  // namespace aw
