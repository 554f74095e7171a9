// Takes a fuzz input apart: a few leading bytes choose the run's parameters (limits, modes, the seed of
// the slicing), the rest is the data under test. Short inputs read as zeros, so every input is usable.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace aw::fuzz {

class FuzzInput {
 public:
  FuzzInput(const std::uint8_t* data, std::size_t size) : data_(reinterpret_cast<const char*>(data), size) {}

  std::uint8_t byte() {
    if (data_.empty()) return 0;
    auto b = static_cast<std::uint8_t>(data_.front());
    data_.remove_prefix(1);
    return b;
  }
  bool flag() { return byte() & 1; }
  std::uint32_t u32() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = (v << 8) | byte();
    return v;
  }
  template <typename T, std::size_t N>
  T pick(const T (&choices)[N]) {
    return choices[byte() % N];
  }
  // A string up to `max` bytes that ends at the first '\0' (libFuzzer's mutations insert them freely).
  std::string text(std::size_t max) {
    std::size_t n = std::min({data_.find('\0'), data_.size(), max});
    std::string s(data_.substr(0, n));
    data_.remove_prefix(std::min(data_.size(), n + 1));
    return s;
  }
  std::string rest() {
    std::string s(data_);
    data_ = {};
    return s;
  }

 private:
  std::string_view data_;
};

// `total` bytes cut into pieces of 1..`max_piece` bytes, chosen by `seed`.
inline std::vector<std::size_t> random_slices(std::size_t total, std::uint32_t seed, std::size_t max_piece) {
  std::minstd_rand rng(seed | 1);
  std::vector<std::size_t> sizes;
  while (total > 0) {
    std::size_t n = std::min<std::size_t>(total, 1 + rng() % max_piece);
    sizes.push_back(n);
    total -= n;
  }
  return sizes;
}

}  // namespace aw::fuzz
