// HDR-style log-linear histogram: values < 256 are exact, above that every power of two is split
// into 128 buckets (relative error < 0.8%). Fixed 7424 counters, O(1) record, mergeable.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace awb {

class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr int kSub = 1 << kSubBits;                   // 128
  static constexpr int kBuckets = (64 - kSubBits + 1) * kSub;  // 7424

  void record(uint64_t v) {
    ++counts_[index(v)];
    ++count_;
    sum_ += v;
    if (v > max_) max_ = v;
    if (v < min_) min_ = v;
  }
  void merge(const Histogram& o) {
    for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    count_ += o.count_;
    sum_ += o.sum_;
    max_ = std::max(max_, o.max_);
    min_ = std::min(min_, o.min_);
  }
  void reset() { *this = Histogram(); }

  uint64_t count() const { return count_; }
  uint64_t max() const { return count_ ? max_ : 0; }
  uint64_t min() const { return count_ ? min_ : 0; }
  double mean() const { return count_ ? double(sum_) / double(count_) : 0.0; }

  // Value at quantile q in [0,1]: the highest value equivalent to the bucket holding the
  // ceil(q*count)-th sample (capped at the observed max).
  uint64_t quantile(double q) const {
    if (!count_) return 0;
    uint64_t target = uint64_t(std::ceil(q * double(count_)));
    if (target < 1) target = 1;
    if (target > count_) target = count_;
    uint64_t cum = 0;
    for (int i = 0; i < kBuckets; ++i) {
      cum += counts_[i];
      if (cum >= target) return std::min(highest_equivalent(i), max_);
    }
    return max_;
  }

  static int index(uint64_t v) {
    if (v < uint64_t(2 * kSub)) return int(v);
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - kSubBits;
    return (shift + 1) * kSub + int((v >> shift) - kSub);
  }
  static uint64_t highest_equivalent(int idx) {
    if (idx < 2 * kSub) return uint64_t(idx);
    int shift = idx / kSub - 1;
    uint64_t sub = uint64_t(idx % kSub + kSub);
    return ((sub + 1) << shift) - 1;
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t count_ = 0, sum_ = 0, max_ = 0, min_ = UINT64_MAX;
};

}  // namespace awb
