#include "api/subscriber_auth.hpp"

#include "api/errors.hpp"
#include "api/router.hpp"

namespace aw::api {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

}  // namespace

SubscriberToken find_subscriber_token(std::string_view protocols,
                                      std::optional<std::string_view> authorization, std::string_view query) {
  SubscriberToken t;
  // Subprotocols are a comma-separated list: "bearer" and, right after it, the token.
  bool after_bearer = false;
  while (!protocols.empty()) {
    auto comma = protocols.find(',');
    std::string_view item = trim(protocols.substr(0, comma));
    protocols = comma == std::string_view::npos ? std::string_view() : protocols.substr(comma + 1);
    if (after_bearer) {
      t.token = std::string(item);
      break;
    }
    if (item == "bearer") {
      t.via_subprotocol = true;
      after_bearer = true;
    }
  }
  if (!t.token.empty()) return t;
  if (authorization) {
    std::string_view a = trim(*authorization);
    if (a.size() > 7 && iequals(a.substr(0, 7), "Bearer ")) {
      t.token = std::string(trim(a.substr(7)));
      if (!t.token.empty()) return t;
    }
  }
  if (auto q = query_param(query, "token")) t.token = std::move(*q);
  return t;
}

SubscriberAuth authorize_subscriber(const auth::Verifier* verifier, std::string_view agent_id,
                                    const SubscriberToken& token, std::int64_t now_s) {
  SubscriberAuth out;
  if (!verifier) return out;
  auth::Verdict v = verifier->authorize(token.token, agent_id, now_s);
  if (v.ok()) {
    out.expires_s = v.claims.exp;
    return out;
  }
  const unsigned status = v.code == auth::Verdict::Code::forbidden ? 403 : 401;
  Response res = error_response(status, v.code_name(), v.message);
  if (status == 401) {
    // RFC 6750 §3: how to authenticate, and (for a token that was given) what was wrong with it.
    res.headers.emplace_back("WWW-Authenticate", v.code == auth::Verdict::Code::missing
                                                     ? "Bearer realm=\"agentwire\""
                                                     : "Bearer realm=\"agentwire\", error=\"invalid_token\"");
  }
  out.refusal = std::move(res);
  return out;
}

SubscriberAuth authorize_subscriber(const Credentials* credentials, std::string_view agent_id,
                                    const SubscriberToken& token, std::int64_t now_s) {
  SubscriberAuth out;
  if (!credentials || !credentials->required()) return out;
  Authentication a = credentials->authenticate(token.token, now_s);
  if (a.refusal) {
    out.refusal = std::move(a.refusal);
    return out;
  }
  if (auto refusal =
          credentials->check(Access::need(auth::Scope::read, Access::Agent::path), *a.principal, agent_id)) {
    out.refusal = std::move(refusal);
    return out;
  }
  out.expires_s = a.principal->expires_s;
  return out;
}

std::string redact_token(std::string_view query) {
  std::string out;
  while (true) {
    auto amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    if (item.starts_with("token=")) item = "token=REDACTED";
    out.append(item);
    if (amp == std::string_view::npos) break;
    out.push_back('&');
    query.remove_prefix(amp + 1);
  }
  return out;
}

}  // namespace aw::api
