#include "core/agent_id.hpp"

namespace aw {

bool is_valid_agent_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > kMaxAgentIdLength) return false;
  for (char c : id) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace aw
