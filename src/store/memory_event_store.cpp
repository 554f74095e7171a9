// The memory store keeps no events: the hub's history ring is all there is. It remembers each channel's
// epoch and last seq (~100 bytes a channel) so that numbering survives the hub letting a channel go.
#include "store/memory_event_store.hpp"

namespace aw {

std::optional<StoredChannel> MemoryEventStore::find_channel(std::string_view agent_id) {
  auto it = channels_.find(agent_id);
  if (it == channels_.end()) return std::nullopt;
  return StoredChannel{it->first, it->second.epoch, it->second.last_seq};
}

void MemoryEventStore::append(const std::vector<StoredChannel>& new_channels,
                              const std::vector<const Event*>& events,
                              const std::vector<const StateRecord*>&) {
  for (const StoredChannel& c : new_channels) channels_.try_emplace(c.agent_id, Numbering{c.epoch, 0});
  for (const Event* e : events) {
    auto it = channels_.find(e->agent_id());
    if (it != channels_.end()) it->second.last_seq = std::max(it->second.last_seq, e->seq);
  }
}

}  // namespace aw
