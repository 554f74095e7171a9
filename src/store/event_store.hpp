// The durable side of a channel's history. The hub writes every event here, in group commits, before
// the publish is acknowledged; at start-up it reads channels and recent history back.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "core/event.hpp"

namespace aw::store {

// A channel as the store knows it: its history epoch and the highest seq ever stored (kept even after
// the events themselves are pruned, so seq never goes back).
struct StoredChannel {
  std::string agent_id;
  std::string epoch;
  std::uint64_t last_seq = 0;
};

struct StoredEvent {
  std::string agent_id;
  std::uint64_t seq = 0;
  std::string type;
  std::int64_t ts_ms = 0;
  std::string data;
  std::string idempotency_key;
};

// A piece of an agent's domain state (a workflow, a token stream), stored in the same commit as the
// event that changed it, so state and history never disagree. An empty `json` erases the record.
// A record whose kind starts with kColdKindPrefix is cold: stored and erased like the others, but never
// loaded by load_state() (it may be large and is needed rarely); load_cold_record() reads one.
inline constexpr char kColdKindPrefix = '~';

struct StateRecord {
  std::string agent_id;
  std::string kind;  // e.g. "workflow", "stream"
  std::string id;
  std::string json;
};

struct StoreStats {
  std::uint64_t bytes = 0;   // database + WAL on disk
  std::uint64_t events = 0;  // events currently stored
};

// A failed write: nothing of the batch was stored. `full` tells a full disk/quota from other failures.
class StoreError : public std::runtime_error {
 public:
  StoreError(const std::string& what, bool full) : std::runtime_error(what), full_(full) {}
  bool full() const noexcept { return full_; }

 private:
  bool full_;
};

class EventStore {
 public:
  virtual ~EventStore() = default;

  // Every channel ever written.
  virtual std::vector<StoredChannel> load_channels() = 0;

  // Calls `visit` for every stored event with ts_ms >= min_ts_ms, in commit order, so each channel's
  // events come in seq order. One pass over the whole log rather than a query per channel: the caller
  // keeps what it wants of each channel (the hub's history ring keeps the newest).
  virtual void load_events(std::int64_t min_ts_ms, const std::function<void(StoredEvent&&)>& visit) = 0;

  // One channel as stored, for a channel the hub let go of and needs again: its epoch and exact last seq
  // (never lower than any seq it stored), or nullopt when it was never registered.
  virtual std::optional<StoredChannel> find_channel(std::string_view agent_id) = 0;

  // Calls `visit` for the stored events of one channel with seq > after_seq, in seq order, until it
  // returns false or none are left: for resume and history past what the hub holds in memory.
  virtual void load_channel_events(std::string_view agent_id, std::uint64_t after_seq,
                                   const std::function<bool(StoredEvent&&)>& visit) = 0;

  // Every state record of one channel, cold ones excepted.
  virtual std::vector<StateRecord> load_state(std::string_view agent_id) = 0;

  // One cold record's json, or nullopt when none is stored. Unlike the rest, callable from any thread at
  // any time: it sees every commit append() has returned from. A store that keeps none answers nullopt.
  virtual std::optional<std::string> load_cold_record(std::string_view /*agent_id*/,
                                                      std::string_view /*kind*/, std::string_view /*id*/) {
    return std::nullopt;
  }

  // One group commit, all or nothing: registers `new_channels` (epoch, last_seq 0), stores `events`
  // (each channel's last_seq becomes its highest seq) and upserts (or, with empty json, erases)
  // `records`. Returns only when the commit is as durable as the store's fsync mode promises. Throws
  // StoreError when nothing was stored.
  virtual void append(const std::vector<StoredChannel>& new_channels, const std::vector<const Event*>& events,
                      const std::vector<const StateRecord*>& records) = 0;

  // Retention: per channel keep at most `keep_per_channel` newest events and none older than min_ts_ms.
  virtual void prune(std::size_t keep_per_channel, std::int64_t min_ts_ms) = 0;

  virtual StoreStats stats() = 0;

  // True when events survive a restart (false for the memory-only store).
  virtual bool durable() const noexcept = 0;
};

}  // namespace aw::store
