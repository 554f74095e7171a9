// The memory store keeps no events: the hub's history ring is all there is. It remembers each channel's
// epoch and last seq (~100 bytes a channel) so that numbering survives the hub letting a channel go.
#include "store/memory_event_store.hpp"

namespace aw::store {

std::optional<StoredChannel> MemoryEventStore::find_channel(std::string_view agent_id) {
  auto it = channels_.find(agent_id);
  if (it == channels_.end()) return std::nullopt;
  return StoredChannel{it->first, it->second.epoch, it->second.last_seq};
}

void MemoryEventStore::append(const std::vector<StoredChannel>& new_channels,
                              const std::vector<const Event*>& events,
                              const std::vector<const StateRecord*>& records) {
  for (const StoredChannel& c : new_channels) channels_.try_emplace(c.agent_id, Numbering{c.epoch, 0});
  for (const Event* e : events) {
    auto it = channels_.find(e->agent_id());
    if (it != channels_.end()) it->second.last_seq = std::max(it->second.last_seq, e->seq);
  }
  std::lock_guard lock(cold_mutex_);
  for (const StateRecord* r : records) {
    if (r->kind.empty() || r->kind.front() != kColdKindPrefix) continue;
    ColdKey key{r->agent_id, r->kind, r->id};
    if (r->json.empty()) {
      cold_.erase(key);
    } else {
      cold_.insert_or_assign(std::move(key), r->json);
    }
  }
}

std::optional<std::string> MemoryEventStore::load_cold_record(std::string_view agent_id,
                                                              std::string_view kind, std::string_view id) {
  std::lock_guard lock(cold_mutex_);
  auto it = cold_.find(ColdKey{agent_id, kind, id});
  if (it == cold_.end()) return std::nullopt;
  return it->second;
}

}  // namespace aw::store
