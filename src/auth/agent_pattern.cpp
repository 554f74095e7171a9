#include "auth/agent_pattern.hpp"

namespace aw::auth {

bool agent_matches(std::string_view pattern, std::string_view agent) noexcept {
  if (!pattern.empty() && pattern.back() == '*')
    return agent.starts_with(pattern.substr(0, pattern.size() - 1));
  return pattern == agent;
}

bool agent_allowed(const std::vector<std::string>& patterns, std::string_view agent) noexcept {
  for (const auto& p : patterns)
    if (agent_matches(p, agent)) return true;
  return false;
}

}  // namespace aw::auth
