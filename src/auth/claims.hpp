// The claims a subscriber's token must carry and the rules they are checked by: `sub` and `exp`
// required, `nbf`/`iat` honoured with a leeway for clock skew, `aud`/`iss` when configured, and the
// `agents` allow-list, and the scopes the token grants over the HTTP API (`scope`, a space-separated
// string as in RFC 8693, or `scopes`, an array; neither: `read` only). Works on the verified payload;
// knows nothing of signatures.
#pragma once
#include <boost/json/object.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "auth/scopes.hpp"

namespace aw::auth {

// Clocks of the token's issuer and of this server may disagree by this much (nbf and iat only: a token
// is expired at its exp, exactly, so that "expires at" means what it says).
inline constexpr std::int64_t kLeewaySeconds = 30;

struct ClaimRules {
  std::string audience;  // empty: aud is not checked
  std::string issuer;    // empty: iss is not checked
};

struct Claims {
  std::string sub;
  std::int64_t exp = 0;  // seconds since the epoch
  std::vector<std::string> agents;
  Scopes scopes = Scopes::of(Scope::read);  // names that are not scopes of ours are ignored
};

struct ClaimCheck {
  enum class Code { ok, invalid, expired } code = Code::ok;
  std::string message;  // why, when not ok (never the token)
  Claims claims;
};

ClaimCheck check_claims(const boost::json::object& payload, const ClaimRules& rules, std::int64_t now_s);

}  // namespace aw::auth
