// Minting subscriber tokens for development and tests (`agentwire token`): an HMAC-signed JWT (HS256/384/512,
// by libjwt, the library the verifier uses) with the claims the server checks — sub, iat, exp, the agents
// allow-list, and optionally scope, kid, aud and iss. Production issuers mint in their own backend.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace aw::auth {

// The scopes a token or API key may carry (issue 15): generic publishing, the workflow and stream
// routes, reading (history, GET routes), and administration (stats, metrics, delete).
inline constexpr std::string_view kScopes[] = {"publish", "workflows", "read", "admin"};

// A token lives at most this long: `agentwire token` is for development, and exp must stay a sane date.
inline constexpr std::int64_t kMaxTokenTtlSeconds = 366LL * 24 * 3600;

struct TokenRequest {
  std::string secret;               // the HMAC secret's bytes
  std::string alg = "HS256";        // HS256, HS384 or HS512
  std::string sub = "dev";          // who the token is for
  std::vector<std::string> agents;  // the agents claim: exact ids or prefixes ending in *
  std::vector<std::string> scopes;  // the scope claim (space-separated), when not empty
  std::int64_t ttl_s = 3600;        // exp = now + ttl
  std::string kid;                  // header kid, when not empty
  std::string audience;             // aud, when not empty
  std::string issuer;               // iss, when not empty
};

// A request that cannot become a token; what() says which part and why.
struct MintError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// The signed token (compact JWS) for `request` at `now_s`. Throws MintError.
std::string mint_token(const TokenRequest& request, std::int64_t now_s);

// "90", "90s", "15m", "1h", "7d", "1h30m" as seconds; nullopt when not positive whole numbers each
// with one of those units (or none: seconds).
std::optional<std::int64_t> parse_ttl(std::string_view text);

// "agent-7,team-a/*" or "publish,read" as a list: split on commas, blanks around items trimmed; empty
// items are kept (as "") so that the caller can refuse them.
std::vector<std::string> split_list(std::string_view text);

}  // namespace aw::auth
