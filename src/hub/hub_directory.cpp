// The hub and a shared broker's directory: finding the channel behind a workflow or stream id that
// another node made, listing the agents every node made workflows for, and claiming idle streams so
// that one node ends each. All on the writer, the only thread that uses the broker's connections.
#include <set>

#include "hub/hub.hpp"

namespace aw::hub {

std::optional<std::string> Hub::locate(std::string_view id) {
  std::optional<std::string> agent;
  run_on_writer([&] {
    agent = broker_.find_name(id);
    if (!agent) return;
    // In memory, its state missed what made the id (that is why the caller asks): bring it in step.
    if (auto ch = find_channel(*agent)) {
      sync_channel(*ch);
      return;
    }
    if (!channel_on_writer(*agent, false)) agent.reset();  // the broker forgot the channel itself
  });
  return agent;
}

std::vector<broker::ListedChannel> Hub::listed_channels(std::string_view after, std::size_t limit) {
  std::vector<broker::ListedChannel> out;
  run_on_writer([&] { out = broker_.listed_channels(after, limit); });
  return out;
}

std::vector<broker::IdleName> Hub::claim_idle(std::int64_t before_ms, std::int64_t now_ms,
                                              std::size_t limit) {
  std::vector<broker::IdleName> out;
  run_on_writer([&] {
    out = broker_.claim_idle(before_ms, now_ms, limit);
    std::set<std::string_view> agents;
    for (const auto& idle : out) agents.insert(idle.agent_id);
    for (std::string_view agent : agents) {
      if (auto ch = find_channel(agent)) sync_channel(*ch);
    }
  });
  return out;
}

}  // namespace aw::hub
