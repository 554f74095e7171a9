// Who is making a request, once authenticated: an API key (by its name), a token (by its sub), or
// nobody at all when the server runs without keys. Says which scopes it holds and which agents it may
// touch.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/scopes.hpp"

namespace aw::auth {

struct Principal {
  enum class Kind : std::uint8_t { anonymous, api_key, token } kind = Kind::anonymous;
  std::string name;  // the key's name or the token's sub; empty when anonymous
  Scopes scopes;
  bool all_agents = false;          // no allow-list (an API key without `agents`, anonymous)
  std::vector<std::string> agents;  // the allow-list otherwise: exact ids or prefixes ending in `*`
  std::int64_t expires_s = 0;       // a token's exp; 0 for keys

  bool has(Scope s) const noexcept { return scopes.has(s); }
  bool allows(std::string_view agent) const noexcept;
  // Whether every agent is allowed (no list, or a list holding "*"): what routes that show all agents need.
  bool allows_every_agent() const noexcept;
};

// Everything, every agent: the principal of every request when no key is configured.
std::shared_ptr<const Principal> anonymous_principal();

}  // namespace aw::auth
