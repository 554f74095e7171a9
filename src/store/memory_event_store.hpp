// The memory-only store (`--store memory`): nothing survives a restart, and every restart is a new
// epoch. For benchmarks and throwaway setups. It keeps no events (the hub's history is all there is),
// only each channel's epoch and last seq, so a channel the hub lets go of keeps its numbering, and the
// cold state records (finished stream text), which nothing else holds while the process runs.
#pragma once
#include <map>
#include <mutex>
#include <tuple>

#include "core/string_hash.hpp"
#include "store/event_store.hpp"

namespace aw::store {

class MemoryEventStore final : public EventStore {
 public:
  std::vector<StoredChannel> load_channels() override { return {}; }
  void load_events(std::int64_t, const std::function<void(StoredEvent&&)>&) override {}
  std::optional<StoredChannel> find_channel(std::string_view agent_id) override;
  void load_channel_events(std::string_view, std::uint64_t,
                           const std::function<bool(StoredEvent&&)>&) override {}
  std::vector<StateRecord> load_state(std::string_view) override { return {}; }
  std::optional<std::string> load_cold_record(std::string_view agent_id, std::string_view kind,
                                              std::string_view id) override;
  void append(const std::vector<StoredChannel>& new_channels, const std::vector<const Event*>& events,
              const std::vector<const StateRecord*>& records) override;
  void prune(std::size_t, std::int64_t) override {}
  StoreStats stats() override { return {}; }
  bool durable() const noexcept override { return false; }

 private:
  struct Numbering {
    std::string epoch;
    std::uint64_t last_seq = 0;
  };
  StringMap<Numbering> channels_;  // the hub's writer thread only, like append()
  using ColdKey = std::tuple<std::string, std::string, std::string>;  // agent, kind, id
  std::mutex cold_mutex_;                                             // load_cold_record() runs on any thread
  std::map<ColdKey, std::string, std::less<>> cold_;
};

}  // namespace aw::store
