// One agent's channel: its seq counter, epoch, history and subscribers. Subscribers are kept per shard
// and touched only on that shard's thread; everything else is guarded by `mutex`. The hub holds it by
// shared_ptr: an idle channel leaves the hub's map (see Hub::evict_if_idle) while a delivery or a reader
// may still hold it.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hub/channel_state.hpp"
#include "hub/history_ring.hpp"
#include "hub/subscriber.hpp"

namespace aw::hub {

// Subscribers of one channel on one shard. Padded so shards do not share cache lines.
struct alignas(64) LocalSubscribers {
  struct Entry {
    Subscriber* subscriber;
    const void* state;  // its delivery_state()
  };
  std::vector<Entry> list;

  void add(Subscriber* s);
  void remove(Subscriber* s);
  // Hands `ev` to every subscriber that has not seen it yet.
  void deliver(const EventPtr& ev);
  // The events up to `gap_to` are lost: every subscriber that has not seen them all is told.
  void history_lost(std::uint64_t gap_to);
};

struct Channel : std::enable_shared_from_this<Channel> {
  Channel(std::string id, std::string epoch, std::uint64_t last_seq, std::size_t history_size,
          std::int64_t history_ttl_ms, std::uint64_t history_max_bytes, unsigned shards);

  const std::string agent_id;

  std::mutex mutex;
  // Guarded by mutex.
  std::string epoch;
  std::uint64_t last_seq = 0;  // the newest committed and broadcast event
  HistoryRing history;
  std::vector<std::uint32_t> shard_subscribers;  // how many subscribers each shard holds
  std::unique_ptr<ChannelState> state;           // may be null
  std::int64_t last_event_ms = 0;                // commit time of the newest event (0: none in memory)
  bool evicted = false;                          // out of the hub's map: a joiner must look it up again
  // In step with the broker: always with the embedded one; with a shared one only while watched (it
  // has local subscribers), else its history is empty and its position may be behind.
  bool live = true;

  // Writer thread only.
  bool stored = false;  // the broker knows this channel and its epoch
  // With a shared broker: the broker's state version that `state` corresponds to (what a command
  // decided against it is checked against when committed).
  std::uint64_t state_version = 0;
  static constexpr std::size_t kNotInBatch = static_cast<std::size_t>(-1);
  std::size_t batch_slot = kNotInBatch;  // its place in the commit being staged

  // Index = shard; each element only on its shard's thread.
  std::vector<LocalSubscribers> local;

  std::uint32_t subscriber_count() const;  // under mutex
};

}  // namespace aw::hub
