#include "core/random_id.hpp"

#include <mutex>
#include <random>

namespace aw {

std::string random_hex_id(std::size_t bytes) {
  // One seeded engine is enough: ids must be unique, not secret.
  static std::mutex mutex;
  static std::mt19937_64 engine{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes * 2);
  std::lock_guard lock(mutex);
  for (std::size_t i = 0; i < bytes; ++i) {
    auto b = static_cast<unsigned>(engine() & 0xff);
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

}  // namespace aw
