#include "auth/verifier.hpp"

#include <jwt.h>

#include <boost/json/parse.hpp>

#include "auth/agent_pattern.hpp"
#include "auth/base64url.hpp"

namespace aw::auth {
namespace {

constexpr const char* kAlgs[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                 "RS512", "ES256", "ES384", "ES512"};

Verdict refuse(Verdict::Code code, std::string message) {
  Verdict v;
  v.code = code;
  v.message = std::move(message);
  return v;
}

std::optional<boost::json::object> json_part(std::string_view b64) {
  auto bytes = base64url_decode(b64);
  if (!bytes) return std::nullopt;
  boost::system::error_code ec;
  auto v = boost::json::parse(*bytes, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

bool fits(const Key& k, std::string_view alg) {
  for (const auto& a : k.algs)
    if (a == alg) return true;
  return false;
}

// The signature of header.payload with `key`, by libjwt, which verifies with the alg the header names
// (already checked to be one the key's type is for).
bool signature_valid(const std::string& token, const Key& key, std::string_view alg) {
  jwt_t* jwt = nullptr;
  int rc = jwt_decode(&jwt, token.c_str(), reinterpret_cast<const unsigned char*>(key.material.data()),
                      static_cast<int>(key.material.size()));
  bool ok = rc == 0 && jwt && jwt_get_alg(jwt) == jwt_str_alg(std::string(alg).c_str());
  if (jwt) jwt_free(jwt);
  return ok;
}

}  // namespace

const char* Verdict::code_name() const noexcept {
  switch (code) {
    case Code::ok:
      return "ok";
    case Code::missing:
      return "token_missing";
    case Code::invalid:
      return "token_invalid";
    case Code::expired:
      return "token_expired";
    case Code::forbidden:
      return "agent_forbidden";
  }
  return "token_invalid";
}

Verifier::Verifier(std::vector<Key> keys, ClaimRules rules)
    : keys_(std::make_shared<const std::vector<Key>>(std::move(keys))), rules_(std::move(rules)) {}

void Verifier::replace_keys(std::vector<Key> keys) {
  auto fresh = std::make_shared<const std::vector<Key>>(std::move(keys));
  std::lock_guard lock(keys_mutex_);
  keys_.swap(fresh);
}

std::shared_ptr<const std::vector<Key>> Verifier::current_keys() const {
  std::lock_guard lock(keys_mutex_);
  return keys_;
}

std::size_t Verifier::key_count() const {
  return current_keys()->size();
}

Verdict Verifier::verify(std::string_view token, std::int64_t now_s) const {
  using Code = Verdict::Code;
  if (token.empty()) return refuse(Code::missing, "a token is required");
  if (token.size() > kMaxTokenBytes) return refuse(Code::invalid, "the token is longer than 8 KiB");
  auto dot1 = token.find('.');
  auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos || dot1 == 0 ||
      dot2 == dot1 + 1 || dot2 + 1 == token.size())
    return refuse(Code::invalid, "the token is not a signed JWT (header.payload.signature)");
  auto header = json_part(token.substr(0, dot1));
  if (!header) return refuse(Code::invalid, "the token's header is not base64url JSON");
  const auto* alg_v = header->if_contains("alg");
  std::string alg = alg_v && alg_v->is_string() ? std::string(alg_v->get_string()) : std::string();
  bool known = false;
  for (const char* a : kAlgs) known = known || alg == a;
  if (!known) return refuse(Code::invalid, "alg \"" + alg.substr(0, 16) + "\" is not accepted");
  const auto* kid_v = header->if_contains("kid");
  if (kid_v && !kid_v->is_string()) return refuse(Code::invalid, "the token's kid is not a string");
  std::string kid = kid_v ? std::string(kid_v->get_string()) : std::string();

  // Candidates: keys for this alg whose kid is the token's (a token without kid, or a key without one,
  // matches any).
  auto keys = current_keys();
  const std::string whole(token);
  bool candidate = false;
  bool verified = false;
  for (const Key& k : *keys) {
    if (!fits(k, alg) || (!kid.empty() && !k.kid.empty() && k.kid != kid)) continue;
    candidate = true;
    if (signature_valid(whole, k, alg)) {
      verified = true;
      break;
    }
  }
  if (!candidate)
    return refuse(Code::invalid, kid.empty()
                                     ? "no configured key verifies " + alg
                                     : "no configured key has kid \"" + kid.substr(0, 64) + "\" for " + alg);
  if (!verified) return refuse(Code::invalid, "the token's signature does not verify");

  auto payload = json_part(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload) return refuse(Code::invalid, "the token's payload is not a JSON object");
  ClaimCheck c = check_claims(*payload, rules_, now_s);
  Verdict v;
  v.code = c.code == ClaimCheck::Code::ok        ? Code::ok
           : c.code == ClaimCheck::Code::expired ? Code::expired
                                                 : Code::invalid;
  v.message = std::move(c.message);
  v.claims = std::move(c.claims);
  return v;
}

Verdict Verifier::authorize(std::string_view token, std::string_view agent, std::int64_t now_s) const {
  Verdict v = verify(token, now_s);
  if (v.ok() && !agent_allowed(v.claims.agents, agent))
    return refuse(Verdict::Code::forbidden, "the token does not allow agent " + std::string(agent));
  return v;
}

}  // namespace aw::auth
