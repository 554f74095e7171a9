// Verifies a subscriber's token: a JWS in compact form, signed with one of the configured keys (chosen
// by `kid` and alg; `alg: none` and an alg that does not fit the key's type are refused before any
// signature is checked), then its claims (auth/claims) and whether it allows the agent. Signatures are
// checked by libjwt on OpenSSL. The key set can be replaced while tokens are being verified (SIGHUP).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "auth/claims.hpp"
#include "auth/key_set.hpp"

namespace aw::auth {

// A token longer than this is refused without being parsed.
inline constexpr std::size_t kMaxTokenBytes = 8 * 1024;

struct Verdict {
  // The codes are the HTTP error codes: 401 token_missing/invalid/expired, 403 agent_forbidden.
  enum class Code { ok, missing, invalid, expired, forbidden } code = Code::ok;
  std::string message;  // why, when not ok; never contains the token
  Claims claims;

  bool ok() const noexcept { return code == Code::ok; }
  const char* code_name() const noexcept;
};

class Verifier {
 public:
  Verifier(std::vector<Key> keys, ClaimRules rules);

  // The token's signature and claims, at `now_s` (seconds since the epoch).
  Verdict verify(std::string_view token, std::int64_t now_s) const;
  // ... and whether its agents claim allows `agent`.
  Verdict authorize(std::string_view token, std::string_view agent, std::int64_t now_s) const;

  void replace_keys(std::vector<Key> keys);
  std::size_t key_count() const;

 private:
  std::shared_ptr<const std::vector<Key>> current_keys() const;

  // Swapped whole on SIGHUP while handshakes verify: a mutex rather than libstdc++'s
  // atomic<shared_ptr>, whose internal lock ThreadSanitizer cannot see (it reported a race on it).
  mutable std::mutex keys_mutex_;
  std::shared_ptr<const std::vector<Key>> keys_;
  const ClaimRules rules_;
};

}  // namespace aw::auth
