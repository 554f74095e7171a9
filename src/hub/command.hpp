// A command runs on the hub's writer thread, where the channel's seq and state cannot change under it:
// it looks at the channel's current state and either decides on one event (plus the state records to
// store with it, in the same commit) or refuses. A plain publish is a command that always decides.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "broker/broker.hpp"
#include "hub/channel_state.hpp"

namespace aw::hub {

struct Decision {
  enum class Refusal { none, invalid, not_found, conflict } refusal = Refusal::none;
  std::string error_code;
  std::string error_message;
  std::string error_details_json;  // optional extra JSON object for the caller (e.g. allowed phases)

  std::string type;        // the event, when not refused
  std::string data;        // raw JSON object
  bool mergeable = false;  // Event::mergeable: only the workflow domain sets it
  std::vector<store::StateRecord> records;
  std::string reply_json;  // what the caller answers with (e.g. the new workflow), optional
  // What the event makes findable from other nodes (a shared broker's directory).
  broker::DirectoryChange directory;

  static Decision refuse(Refusal r, std::string code, std::string message, std::string details = {}) {
    Decision d;
    d.refusal = r;
    d.error_code = std::move(code);
    d.error_message = std::move(message);
    d.error_details_json = std::move(details);
    return d;
  }
};

struct Command {
  // Stateful commands read the state, so they never share a commit with an earlier event of the same
  // channel (whose records are not applied until that commit).
  bool stateful = false;
  // `state` is the channel's state (null when the hub has no state factory); read-only here.
  std::function<Decision(const ChannelState* state)> decide;
};

}  // namespace aw::hub
