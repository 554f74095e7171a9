// Who may call the HTTP API and subscribe: the credential in `Authorization: Bearer <x>` is an API key
// (matched by its hash, see auth/api_keys) or a JWT (auth/verifier), and becomes a Principal; a route's
// Access is then checked against it: 401 token_missing / token_invalid / token_expired (with
// WWW-Authenticate, as for subscribers), 403 scope_missing (naming the scope) or 403 agent_forbidden.
// With no key configured at all every request is anonymous and allowed everything.
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

#include "api/access.hpp"
#include "api/http_types.hpp"
#include "auth/api_keys.hpp"
#include "auth/principal.hpp"
#include "auth/verifier.hpp"
#include "workflow/workflow_index.hpp"
#include "workflow/workflow_service.hpp"

namespace aw::api {

struct Authentication {
  std::shared_ptr<const auth::Principal> principal;  // set when accepted
  std::optional<Response> refusal;                   // 401, when not
};

class Credentials {
 public:
  // Any may be null: no token keys, no API keys, no workflows to resolve ids with.
  Credentials(const auth::Verifier* verifier, const auth::ApiKeySet* keys,
              const workflow::WorkflowIndex* workflows = nullptr);

  // Owners of ids this node's index lacks are then asked of the service (a shared broker's directory).
  void find_owners_with(const workflow::WorkflowService* service) noexcept { owners_ = service; }

  // Whether any key is configured (else every request is anonymous).
  bool required() const noexcept { return verifier_ != nullptr || keys_ != nullptr; }

  // The bearer credential itself (empty: none given).
  Authentication authenticate(std::string_view credential, std::int64_t now_s) const;
  // From an Authorization header's value (empty: no header).
  Authentication authenticate_header(std::string_view authorization, std::int64_t now_s) const;

  // What `principal` may not do on a route with `access`, or nullopt. `id` is the path's agent,
  // workflow or stream id, as the route's Access says.
  std::optional<Response> check(const Access& access, const auth::Principal& principal,
                                std::string_view id) const;

 private:
  const auth::Verifier* verifier_;
  const auth::ApiKeySet* keys_;
  const workflow::WorkflowIndex* workflows_;
  const workflow::WorkflowService* owners_ = nullptr;
};

// 403 scope_missing, naming the scope.
Response scope_refusal(auth::Scope scope);
// 403 agent_forbidden when `principal` may not touch `agent`: for routes whose handler finds the agent.
std::optional<Response> agent_refusal(const auth::Principal* principal, std::string_view agent);

}  // namespace aw::api
