// Hash maps keyed by std::string that are looked up by std::string_view, without building a string
// for each lookup (agent ids are often past the short-string buffer, so that would allocate).
#pragma once
#include <boost/unordered/unordered_flat_map.hpp>
#include <boost/unordered/unordered_map.hpp>
#include <functional>
#include <string>
#include <string_view>

namespace aw {

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

// Node-based: references to keys and values stay valid while other entries are added.
// (Boost's rather than std's: libstdc++ keeps no hash in the nodes for a user hash, so walking a bucket
// rehashes each next node's key, a string compare and two cache misses per node on a cold table.)
template <typename Value>
using StringMap = boost::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

// Open addressing, for maps that are looked up on every publish and whose values are pointers, so
// entries moving on a rehash does not matter: one cache line of metadata is probed before any key.
template <typename Value>
using FlatStringMap = boost::unordered_flat_map<std::string, Value, StringHash, std::equal_to<>>;

}  // namespace aw
