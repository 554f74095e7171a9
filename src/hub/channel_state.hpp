// The current domain state of one agent's channel (its workflows, its token streams), for snapshots
// and for commands that must check it. The workflow domain provides it; the hub owns one per channel,
// feeds it the state records committed with each event, and reads it under the channel's lock, so the
// state and the seq a snapshot reports always agree.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/event_store.hpp"

namespace aw::hub {

class ChannelState {
 public:
  virtual ~ChannelState() = default;
  // Records committed (or loaded at start-up), in commit order. Empty json erases a record.
  virtual void apply(const std::vector<store::StateRecord>& records) = 0;
  // A JSON object describing the channel now.
  virtual std::string snapshot_json() const = 0;
  // True when it holds no record at all, so the channel may leave memory and come back from the store
  // as it was. A state that cannot tell keeps its channel in memory.
  virtual bool empty() const { return false; }
};

using ChannelStateFactory = std::function<std::unique_ptr<ChannelState>(std::string_view agent_id)>;

}  // namespace aw::hub
