#include "auth/token_minter.hpp"

#include <jwt.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <memory>

namespace aw::auth {
namespace {

struct JwtFree {
  void operator()(jwt_t* p) const { jwt_free(p); }
};

jwt_alg_t hmac_alg(std::string alg) {
  for (char& c : alg) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (alg == "HS256") return JWT_ALG_HS256;
  if (alg == "HS384") return JWT_ALG_HS384;
  if (alg == "HS512") return JWT_ALG_HS512;
  throw MintError("alg must be HS256, HS384 or HS512 (got \"" + alg + "\")");
}

bool known_scope(std::string_view s) {
  for (auto known : kScopes)
    if (s == known) return true;
  return false;
}

void check_agents(const std::vector<std::string>& agents) {
  for (const auto& a : agents) {
    if (a.empty()) throw MintError("agents: an empty entry (a doubled or trailing comma?)");
    // Only a trailing * is special; one elsewhere would be taken literally and match nothing useful.
    if (auto star = a.find('*'); star != std::string::npos && star + 1 != a.size())
      throw MintError("agents: \"" + a +
                      "\" has a * that is not at its end (only prefixes like team-a/* match)");
    for (char c : a)
      if (static_cast<unsigned char>(c) <= ' ' || c == '"' || c == '\\')
        throw MintError("agents: \"" + a + "\" holds a blank, quote or control character");
  }
}

}  // namespace

std::string mint_token(const TokenRequest& r, std::int64_t now_s) {
  const jwt_alg_t alg = hmac_alg(r.alg);
  if (r.secret.empty()) throw MintError("the HMAC secret is empty");
  if (r.sub.empty()) throw MintError("sub must not be empty");
  if (r.ttl_s <= 0 || r.ttl_s > kMaxTokenTtlSeconds) throw MintError("ttl must be between 1 s and 366 days");
  if (r.agents.empty() && r.scopes.empty())
    throw MintError("the token would allow nothing: give agents (and/or scopes)");
  check_agents(r.agents);
  std::string scope;
  for (const auto& s : r.scopes) {
    if (!known_scope(s))
      throw MintError("scopes: \"" + s + "\" is not one of publish, workflows, read, admin");
    scope += (scope.empty() ? "" : " ") + s;
  }

  boost::json::object claims;
  claims["sub"] = r.sub;
  claims["iat"] = now_s;
  claims["exp"] = now_s + r.ttl_s;
  if (!r.agents.empty()) {
    boost::json::array agents;
    for (const auto& a : r.agents) agents.emplace_back(a);
    claims["agents"] = std::move(agents);
  }
  if (!scope.empty()) claims["scope"] = scope;
  if (!r.audience.empty()) claims["aud"] = r.audience;
  if (!r.issuer.empty()) claims["iss"] = r.issuer;

  jwt_t* raw = nullptr;
  if (jwt_new(&raw) != 0 || !raw) throw std::runtime_error("libjwt could not allocate a token");
  std::unique_ptr<jwt_t, JwtFree> jwt(raw);
  const std::string json = boost::json::serialize(claims);
  if (jwt_add_grants_json(jwt.get(), json.c_str()) != 0)
    throw std::runtime_error("libjwt refused the claims");
  if (!r.kid.empty() && jwt_add_header(jwt.get(), "kid", r.kid.c_str()) != 0)
    throw MintError("kid is not usable as a header value");
  if (jwt_set_alg(jwt.get(), alg, reinterpret_cast<const unsigned char*>(r.secret.data()),
                  static_cast<int>(r.secret.size())) != 0)
    throw std::runtime_error("libjwt refused the key");
  char* encoded = jwt_encode_str(jwt.get());
  if (!encoded) throw std::runtime_error("libjwt could not sign the token");
  std::string token(encoded);
  std::free(encoded);  // libjwt 1.10 hands out malloc'd strings
  return token;
}

std::optional<std::int64_t> parse_ttl(std::string_view text) {
  // Whole numbers each with an optional unit, added up: "90", "15m", "1h30m", "1d12h".
  std::int64_t total = 0;
  if (text.empty()) return std::nullopt;
  while (!text.empty()) {
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end == text.data() || n < 0 || n > kMaxTokenTtlSeconds) return std::nullopt;
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    std::int64_t unit = 1;
    if (!text.empty()) {
      const char u = text.front();
      unit = u == 's' ? 1 : u == 'm' ? 60 : u == 'h' ? 3600 : u == 'd' ? 86400 : 0;
      if (unit == 0) return std::nullopt;
      text.remove_prefix(1);
    }
    total += n * unit;
    // Far past the limit is not a ttl (and cannot overflow); just past it is told so at minting.
    if (total > 100 * kMaxTokenTtlSeconds) return std::nullopt;
  }
  if (total <= 0) return std::nullopt;
  return total;
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
  };
  for (;;) {
    auto comma = text.find(',');
    out.push_back(trim(text.substr(0, comma)));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace aw::auth
