// What each piece of an agent's state adds to its snapshot message, as an upper bound that is cheap to
// keep up to date: AgentState sums the pieces as records apply, and decisions check the sum after a
// request against Limits::max_snapshot_bytes before they accept it. Counters (deltas, length, bytes,
// index) are charged at their widest (20 digits), so a stream's share does not need recomputing when a
// delta raises them; only its text grows, by the delta's size once escaped.
#pragma once
#include <cstdint>
#include <string_view>

#include "workflow/documents.hpp"

namespace aw::workflow {

// The snapshot envelope around the state (type, agent id, ts, seq, epoch, recovered) and the state's
// own `{"workflows":[],"streams":[]}`, with the WebSocket frame header: well over what they take.
inline constexpr std::uint64_t kSnapshotFrameBytes = 1024;

// The bytes `text` takes inside a JSON string as Boost.JSON writes it (quotes not counted).
std::uint64_t json_text_bytes(std::string_view text) noexcept;

// A workflow's document in the snapshot without its stream summaries (each stream's share has those).
std::uint64_t workflow_share(const Workflow& wf, const Requirements* req);

// A stream's summary in its workflow's document, plus, while it streams, its entry in `streams` with
// the text so far.
std::uint64_t stream_share(const Stream& st);

}  // namespace aw::workflow
