#include "auth/principal.hpp"

#include "auth/agent_pattern.hpp"

namespace aw::auth {

bool Principal::allows(std::string_view agent) const noexcept {
  return all_agents || agent_allowed(agents, agent);
}

bool Principal::allows_every_agent() const noexcept {
  if (all_agents) return true;
  for (const auto& a : agents)
    if (a == "*") return true;
  return false;
}

std::shared_ptr<const Principal> anonymous_principal() {
  static const auto anonymous = [] {
    auto p = std::make_shared<Principal>();
    p->scopes = Scopes::all();
    p->all_agents = true;
    return std::shared_ptr<const Principal>(std::move(p));
  }();
  return anonymous;
}

}  // namespace aw::auth
