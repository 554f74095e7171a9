// What the hub sees of a WebSocket session: something on a shard thread that takes shared events.
#pragma once
#include <cstdint>
#include <functional>

#include "core/event.hpp"

namespace aw::hub {

class Subscriber {
 public:
  virtual ~Subscriber() = default;

  // Called on the subscriber's shard thread, in seq order, never twice for one seq.
  virtual void deliver(const EventPtr& ev) = 0;
  // On the shard thread: events after delivered_seq are lost for good (a shared broker trimmed them
  // before this node could read them), so what follows would be a gap. The subscriber must start over
  // (a WebSocket session closes with 1012, and its client resumes into a snapshot).
  virtual void history_lost() {}
  // Where the state deliver() reads on every event begins, when it is not at the start of this
  // object (128 bytes from there are prefetched; see LocalSubscribers::deliver). Asked once, on join.
  virtual const void* delivery_state() const noexcept { return this; }

  // Highest seq handed to deliver() or replayed at join; the hub uses it to drop a live event that a
  // replay already covered.
  std::uint64_t delivered_seq = 0;
  // Where this subscriber sits in its channel's shard-local list (O(1) removal).
  std::size_t slot = 0;
};

// Runs work on a shard's thread. The transport implements it with one io_context per shard.
class ShardDispatcher {
 public:
  virtual ~ShardDispatcher() = default;
  virtual unsigned shard_count() const noexcept = 0;
  virtual void post(unsigned shard, std::function<void()> work) = 0;
};

}  // namespace aw::hub
