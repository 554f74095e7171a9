// Hash maps keyed by std::string that are looked up by std::string_view, without building a string
// for each lookup (agent ids are often past the short-string buffer, so that would allocate).
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace aw {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

}  // namespace aw
