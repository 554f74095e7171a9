// Events as the batch script encodes them (batch_script.hpp): the same bytes are a Stream entry's
// field `e` and, one after another, a pub/sub message, so replay and live delivery read them alike.
#pragma once
#include <string_view>

#include "broker/broker.hpp"

namespace aw::broker::redis {

struct DecodedEvent {
  EventPtr event;
  StateChange change;  // its seq, the state version after it and its (non-cold) state records
};

// Reads the first encoded event of `encoded` and drops it from the front. False when what is there is
// not one (lengths past the end, a header that is not numbers): the caller treats the input as corrupt.
bool decode_event(std::string_view agent_id, std::string_view& encoded, DecodedEvent& out);

}  // namespace aw::broker::redis
