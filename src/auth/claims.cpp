#include "auth/claims.hpp"

#include <cmath>
#include <optional>

namespace aw::auth {
namespace {

// NumericDate (RFC 7519 §2): seconds, possibly fractional; nullopt when absent, an error when not a number.
struct Date {
  bool present = false;
  bool valid = true;
  std::int64_t seconds = 0;
};

Date numeric_date(const boost::json::object& o, const char* name) {
  Date d;
  const auto* v = o.if_contains(name);
  if (!v) return d;
  d.present = true;
  if (v->is_int64()) {
    d.seconds = v->get_int64();
  } else if (v->is_uint64() && v->get_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    d.seconds = static_cast<std::int64_t>(v->get_uint64());
  } else if (v->is_double() && std::isfinite(v->get_double()) && std::fabs(v->get_double()) < 1e15) {
    d.seconds = static_cast<std::int64_t>(std::floor(v->get_double()));
  } else {
    d.valid = false;
  }
  return d;
}

ClaimCheck refuse(ClaimCheck::Code code, std::string message) {
  ClaimCheck c;
  c.code = code;
  c.message = std::move(message);
  return c;
}

}  // namespace

ClaimCheck check_claims(const boost::json::object& payload, const ClaimRules& rules, std::int64_t now_s) {
  using Code = ClaimCheck::Code;
  ClaimCheck out;
  const auto* sub = payload.if_contains("sub");
  if (!sub || !sub->is_string() || sub->get_string().empty())
    return refuse(Code::invalid, "the token has no sub claim (a non-empty string)");
  out.claims.sub = std::string(sub->get_string());

  Date exp = numeric_date(payload, "exp");
  if (!exp.present || !exp.valid) return refuse(Code::invalid, "the token has no exp claim (a NumericDate)");
  Date nbf = numeric_date(payload, "nbf");
  if (!nbf.valid) return refuse(Code::invalid, "the token's nbf claim is not a NumericDate");
  Date iat = numeric_date(payload, "iat");
  if (!iat.valid) return refuse(Code::invalid, "the token's iat claim is not a NumericDate");
  if (nbf.present && nbf.seconds > now_s + kLeewaySeconds)
    return refuse(Code::invalid, "the token is not valid yet (nbf)");
  if (iat.present && iat.seconds > now_s + kLeewaySeconds)
    return refuse(Code::invalid, "the token was issued in the future (iat)");
  if (exp.seconds <= now_s) return refuse(Code::expired, "the token has expired");
  out.claims.exp = exp.seconds;

  if (!rules.issuer.empty()) {
    const auto* iss = payload.if_contains("iss");
    if (!iss || !iss->is_string() || iss->get_string() != rules.issuer)
      return refuse(Code::invalid, "the token's iss is not the configured issuer");
  }
  if (!rules.audience.empty()) {
    // aud is a string or an array of strings (RFC 7519 §4.1.3): one of them must be ours.
    const auto* aud = payload.if_contains("aud");
    bool ours = false;
    if (aud && aud->is_string()) ours = aud->get_string() == rules.audience;
    if (aud && aud->is_array())
      for (const auto& a : aud->get_array())
        ours = ours || (a.is_string() && a.get_string() == rules.audience);
    if (!ours) return refuse(Code::invalid, "the token's aud does not name the configured audience");
  }

  // Scopes: other names (an identity provider's own) are ignored, so one token can serve several APIs.
  const auto* scope = payload.if_contains("scope");
  const auto* scopes = payload.if_contains("scopes");
  if (scope || scopes) out.claims.scopes = Scopes();
  if (scope) {
    if (!scope->is_string())
      return refuse(Code::invalid, "the token's scope claim must be a space-separated string");
    std::string_view list = scope->get_string();
    while (!list.empty()) {
      auto cut = list.find(' ');
      if (auto s = parse_scope(list.substr(0, cut))) out.claims.scopes.add(*s);
      list = cut == std::string_view::npos ? std::string_view() : list.substr(cut + 1);
    }
  }
  if (scopes) {
    if (!scopes->is_array())
      return refuse(Code::invalid, "the token's scopes claim must be an array of strings");
    for (const auto& s : scopes->get_array()) {
      if (!s.is_string()) return refuse(Code::invalid, "the token's scopes claim must hold only strings");
      if (auto known = parse_scope(s.get_string())) out.claims.scopes.add(*known);
    }
  }

  const auto* agents = payload.if_contains("agents");
  // No agents claim: the token is genuine but allows no agent (403, not 401).
  if (!agents) return out;
  if (!agents->is_array())
    return refuse(Code::invalid,
                  "the token's agents claim must be an array of agent ids or prefixes ending in *");
  for (const auto& a : agents->get_array()) {
    if (!a.is_string()) return refuse(Code::invalid, "the token's agents claim must hold only strings");
    out.claims.agents.emplace_back(a.get_string());
  }
  return out;
}

}  // namespace aw::auth
