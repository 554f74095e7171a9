// The memory-only store (`--store memory`): nothing survives a restart, and every restart is a new
// epoch. For benchmarks and throwaway setups.
#pragma once
#include "store/event_store.hpp"

namespace aw {

class MemoryEventStore final : public EventStore {
 public:
  std::vector<StoredChannel> load_channels() override { return {}; }
  void load_events(std::int64_t, const std::function<void(StoredEvent&&)>&) override {}
  std::vector<StateRecord> load_state(std::string_view) override { return {}; }
  void append(const std::vector<StoredChannel>&, const std::vector<const Event*>&,
              const std::vector<const StateRecord*>&) override {}
  void prune(std::size_t, std::int64_t) override {}
  StoreStats stats() override { return {}; }
  bool durable() const noexcept override { return false; }
};

}  // namespace aw
