// Who may subscribe to `/ws/agents/{id}` when tokens are required: the token is found where a client
// can put it (`Sec-WebSocket-Protocol: bearer, <token>` for browsers, `Authorization: Bearer <token>`,
// or `?token=`), verified, and either allows the agent or gets the HTTP refusal, before any upgrade.
#pragma once
#include <optional>
#include <string>
#include <string_view>

#include "api/credentials.hpp"
#include "api/http_types.hpp"
#include "auth/verifier.hpp"

namespace aw::api {

struct SubscriberToken {
  std::string token;             // empty: none was given
  bool via_subprotocol = false;  // the client offered the `bearer` subprotocol: the answer selects it
};

// `protocols`: every Sec-WebSocket-Protocol value, comma-joined; `authorization`: the header, if any.
SubscriberToken find_subscriber_token(std::string_view protocols,
                                      std::optional<std::string_view> authorization, std::string_view query);

struct SubscriberAuth {
  std::optional<Response> refusal;  // 401/403 with a JSON error, when refused
  std::int64_t expires_s = 0;       // the token's exp, when accepted with a token
};

// `verifier` null: no key is configured and every subscriber is let in as before.
SubscriberAuth authorize_subscriber(const auth::Verifier* verifier, std::string_view agent_id,
                                    const SubscriberToken& token, std::int64_t now_s);

// With API keys too: the token may be an API key instead, which needs the `read` scope and must allow
// the agent (403 scope_missing / agent_forbidden). A JWT is checked as above, and needs `read` as well
// (a token without scope claims has it). `credentials` null or requiring nothing: everyone is let in.
SubscriberAuth authorize_subscriber(const Credentials* credentials, std::string_view agent_id,
                                    const SubscriberToken& token, std::int64_t now_s);

// The query without its token (for anything that logs a target): `token=...` becomes `token=REDACTED`.
std::string redact_token(std::string_view query);

}  // namespace aw::api
