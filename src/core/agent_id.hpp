// Agent ids name channels; they come from URLs, so they are validated before anything else sees them.
#pragma once
#include <string_view>

namespace aw {

inline constexpr std::size_t kMaxAgentIdLength = 128;

// 1..128 characters of [A-Za-z0-9_.:-].
bool is_valid_agent_id(std::string_view id) noexcept;

}  // namespace aw
