// Merging for a subscriber that fell behind. When its socket takes no more and the event waiting last
// in its queue has not started to leave, the next event may take that one's place as one message that
// stands for both (seqs first_seq..seq, contiguous, so the client still sees every seq accounted for):
//  - `stream` deltas of one stream with consecutive indexes: texts concatenated, `count` says how many;
//  - `progress` of one workflow: only the latest value matters, so it replaces the earlier ones.
// Only events the workflow domain marked mergeable (Event::mergeable) are considered. Nothing else merges:
// phase changes, requirements, stream starts and ends and generic events — even a generic `progress` or
// `stream` shaped like the domain's — always go out as published (or the subscriber is closed with 1008
// when even they do not fit; never silently).
#pragma once
#include <cstddef>

#include "core/event.hpp"

namespace aw::protocol {

// A merged delta stops growing here; later deltas start another message.
inline constexpr std::size_t kMaxMergedDeltaBytes = 16 * 1024;

// The event that stands for `queued` (itself possibly merged) followed by `next`; null when they do not
// merge. `next` must be the event right after `queued` in the subscriber's queue.
EventPtr coalesce(const Event& queued, const Event& next, std::size_t max_delta_bytes = kMaxMergedDeltaBytes);

}  // namespace aw::protocol
