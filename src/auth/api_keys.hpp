// The API keys of `--api-keys-file`: one JSON document,
//   {"keys": [{"name": "backend", "sha256": "<64 hex>", "scopes": ["publish", "workflows"],
//              "agents": ["team-a/*"]}]}
// Only the SHA-256 of each key is stored, never the key; `agents` is optional (absent: every agent).
// A presented key is hashed and compared with every entry in constant time. The set is replaced whole
// on SIGHUP while requests are being authenticated.
#pragma once
#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/principal.hpp"

namespace aw::auth {

using Sha256 = std::array<unsigned char, 32>;

Sha256 sha256(std::string_view data);
std::string to_hex(const Sha256& digest);

struct ApiKey {
  Sha256 hash{};
  std::shared_ptr<const Principal> principal;  // kind api_key, named as the entry
};

// At most this many entries: each request compares with all of them.
inline constexpr std::size_t kMaxApiKeys = 10'000;

// Entries of a keys document; throws KeyError naming `what` (the flag and file) and the entry.
std::vector<ApiKey> parse_api_keys(std::string_view json, const std::string& what);
std::vector<ApiKey> load_api_keys(const std::string& path);

class ApiKeySet {
 public:
  explicit ApiKeySet(std::vector<ApiKey> keys);

  // The principal of `key`, or null when no entry has its hash.
  std::shared_ptr<const Principal> find(std::string_view key) const;

  void replace(std::vector<ApiKey> keys);
  std::size_t size() const;

 private:
  // Swapped whole on SIGHUP (a mutex, not atomic<shared_ptr>: see Verifier).
  mutable std::mutex mutex_;
  std::shared_ptr<const std::vector<ApiKey>> keys_;
};

}  // namespace aw::auth
