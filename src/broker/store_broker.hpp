// The embedded broker: one node numbers its channels itself and keeps their events in an EventStore
// (SQLite, or memory only), one group commit per batch. Single-threaded like the store behind it: the
// hub's writer thread (or start-up, before it runs) is its only caller.
#pragma once
#include "broker/broker.hpp"
#include "store/event_store.hpp"

namespace aw::broker {

class StoreBroker final : public Broker {
 public:
  // `name` is what logs and stats call it ("sqlite", "memory").
  StoreBroker(store::EventStore& store, std::string name);

  std::vector<ChannelPosition> load_channels() override;
  void load_recent(std::int64_t min_ts_ms,
                   const std::function<void(std::string_view agent_id, EventPtr event)>& visit) override;
  std::optional<ChannelPosition> find_channel(std::string_view agent_id) override;
  void replay(std::string_view agent_id, std::uint64_t after_seq,
              const std::function<bool(EventPtr event)>& visit) override;
  std::vector<store::StateRecord> load_state(std::string_view agent_id) override;
  std::optional<std::string> load_cold_record(std::string_view agent_id, std::string_view kind,
                                              std::string_view id) override {
    return store_.load_cold_record(agent_id, kind, id);
  }
  // The store reads cold records on its own connection, beside the writer.
  bool cold_reads_any_thread() const noexcept override { return true; }
  void commit(Batch& batch) override;
  void trim(std::size_t keep_per_channel, std::int64_t min_ts_ms) override;
  store::StoreStats stats() override { return store_.stats(); }
  bool durable() const noexcept override { return store_.durable(); }
  std::string_view name() const noexcept override { return name_; }

 private:
  store::EventStore& store_;
  const std::string name_;
  // Reused from batch to batch: the pointers append() takes.
  std::vector<store::StoredChannel> new_channels_;
  std::vector<const Event*> events_;
  std::vector<const store::StateRecord*> records_;
};

}  // namespace aw::broker
