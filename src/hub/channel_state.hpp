// The current state of one agent's channel, folded from its events, for snapshots. The workflow domain
// provides it; the hub owns one per channel and calls it under the channel's lock, so the state and
// the seq a snapshot reports always agree.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/event.hpp"

namespace aw {

class ChannelState {
 public:
  virtual ~ChannelState() = default;
  // Called once per committed event, in seq order.
  virtual void apply(const Event& ev) = 0;
  // A JSON object describing the channel now.
  virtual std::string snapshot_json() const = 0;
};

using ChannelStateFactory = std::function<std::unique_ptr<ChannelState>(std::string_view agent_id)>;

}  // namespace aw
