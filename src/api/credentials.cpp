#include "api/credentials.hpp"

#include "api/errors.hpp"

namespace aw::api {
namespace {

// RFC 6750 §3: how to authenticate, and what was wrong with a credential that was given.
Response unauthorized(std::string_view code, std::string_view message, bool given) {
  Response res = error_response(401, code, message);
  res.headers.emplace_back("WWW-Authenticate", given ? "Bearer realm=\"agentwire\", error=\"invalid_token\""
                                                     : "Bearer realm=\"agentwire\"");
  return res;
}

bool looks_like_jwt(std::string_view s) {
  auto dot1 = s.find('.');
  return dot1 != std::string_view::npos && s.find('.', dot1 + 1) != std::string_view::npos;
}

Response forbidden_agent(std::string_view agent) {
  return error_response(403, "agent_forbidden",
                        "this key or token does not allow agent " + std::string(agent));
}

}  // namespace

Credentials::Credentials(const auth::Verifier* verifier, const auth::ApiKeySet* keys,
                         const workflow::WorkflowIndex* workflows)
    : verifier_(verifier), keys_(keys), workflows_(workflows) {}

Authentication Credentials::authenticate(std::string_view credential, std::int64_t now_s) const {
  Authentication out;
  if (!required()) {
    out.principal = auth::anonymous_principal();
    return out;
  }
  if (credential.empty()) {
    out.refusal =
        unauthorized("token_missing", "an API key or a token is required (Authorization: Bearer ...)", false);
    return out;
  }
  if (credential.size() > auth::kMaxTokenBytes) {
    out.refusal = unauthorized("token_invalid", "the credential is longer than 8 KiB", true);
    return out;
  }
  if (keys_) {
    if (auto p = keys_->find(credential)) {
      out.principal = std::move(p);
      return out;
    }
  }
  // Not a key: a token, when it has a token's shape and token keys are configured.
  if (!verifier_ || !looks_like_jwt(credential)) {
    out.refusal = unauthorized(
        "token_invalid", verifier_ ? "neither a known API key nor a token" : "not a known API key", true);
    return out;
  }
  auth::Verdict v = verifier_->verify(credential, now_s);
  if (!v.ok()) {
    out.refusal = unauthorized(v.code_name(), v.message, true);
    return out;
  }
  auto p = std::make_shared<auth::Principal>();
  p->kind = auth::Principal::Kind::token;
  p->name = std::move(v.claims.sub);
  p->scopes = v.claims.scopes;
  p->agents = std::move(v.claims.agents);
  p->expires_s = v.claims.exp;
  out.principal = std::move(p);
  return out;
}

Authentication Credentials::authenticate_header(std::string_view authorization, std::int64_t now_s) const {
  while (!authorization.empty() && (authorization.front() == ' ' || authorization.front() == '\t'))
    authorization.remove_prefix(1);
  while (!authorization.empty() && (authorization.back() == ' ' || authorization.back() == '\t'))
    authorization.remove_suffix(1);
  std::string_view credential;
  if (authorization.size() > 7) {
    std::string scheme(authorization.substr(0, 7));
    for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (scheme == "bearer ") credential = authorization.substr(7);
    while (!credential.empty() && credential.front() == ' ') credential.remove_prefix(1);
  }
  if (credential.empty() && !authorization.empty() && required()) {
    Authentication out;
    out.refusal =
        unauthorized("token_missing", "the Authorization header must be Bearer <API key or token>", false);
    return out;
  }
  return authenticate(credential, now_s);
}

std::optional<Response> Credentials::check(const Access& access, const auth::Principal& principal,
                                           std::string_view id) const {
  if (!access.scope) return std::nullopt;
  if (!principal.has(*access.scope)) return scope_refusal(*access.scope);
  switch (access.agent) {
    case Access::Agent::none:
    case Access::Agent::handler:
      return std::nullopt;
    case Access::Agent::path:
      if (!principal.allows(id)) return forbidden_agent(id);
      return std::nullopt;
    case Access::Agent::every:
      if (!principal.allows_every_agent())
        return error_response(403, "agent_forbidden",
                              "this route shows every agent: it needs a key or token allowing all agents");
      return std::nullopt;
    case Access::Agent::workflow:
    case Access::Agent::stream: {
      if (principal.all_agents) return std::nullopt;
      // An id that names nothing is the handler's 404 (ids are random: this tells nothing of others').
      if (!workflows_) return std::nullopt;
      auto agent = access.agent == Access::Agent::workflow ? workflows_->agent_of_workflow(id)
                                                           : workflows_->agent_of_stream(id);
      if (!agent && owners_ != nullptr) {
        try {
          agent = access.agent == Access::Agent::workflow ? owners_->owner_of_workflow(id)
                                                          : owners_->owner_of_stream(id);
        } catch (const workflow::DirectoryUnavailable&) {
          return directory_unavailable_response();
        }
      }
      // The refusal names the id asked about, not the agent behind it, which this caller may not know of.
      if (agent && !principal.allows(*agent))
        return error_response(403, "agent_forbidden",
                              std::string("this key or token does not allow the agent of ") +
                                  (access.agent == Access::Agent::workflow ? "workflow " : "stream ") +
                                  std::string(id));
      return std::nullopt;
    }
  }
  return std::nullopt;
}

Response scope_refusal(auth::Scope scope) {
  const char* name = auth::scope_name(scope);
  Response res = error_response(
      403, "scope_missing", std::string("this needs the ") + name + " scope, which the key or token lacks",
      std::string("{\"scope\":\"") + name + "\"}");
  res.headers.emplace_back(
      "WWW-Authenticate",
      std::string("Bearer realm=\"agentwire\", error=\"insufficient_scope\", scope=\"") + name + "\"");
  return res;
}

std::optional<Response> agent_refusal(const auth::Principal* principal, std::string_view agent) {
  if (principal && principal->allows(agent)) return std::nullopt;
  return forbidden_agent(agent);
}

}  // namespace aw::api
