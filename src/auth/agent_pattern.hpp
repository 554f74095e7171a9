// The `agents` allow-list of a token: exact agent ids ("agent-7") or a prefix ending in `*` ("team-a/*",
// or "*" for every agent). Nothing else in a pattern is special.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace aw::auth {

bool agent_matches(std::string_view pattern, std::string_view agent) noexcept;
bool agent_allowed(const std::vector<std::string>& patterns, std::string_view agent) noexcept;

}  // namespace aw::auth
