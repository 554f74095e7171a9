// Bounds on what publishers may store. Each protects the snapshot, which carries every workflow and the
// text of every open stream in one WebSocket message that must fit in a client's queue
// (--max-queue-bytes, 4 MiB by default) with room to spare — a snapshot a client cannot receive is worse
// than a refused request.
#pragma once
#include <cstddef>
#include <cstdint>

namespace aw::workflow {

inline constexpr std::size_t kMaxNameBytes = 256;      // a title, not a document
inline constexpr std::size_t kMaxMessageBytes = 2048;  // progress messages and phase/stream reasons
// Text kept per open stream: far above a model's answer (~100k tokens of English is ~400 KiB), far
// below what would make a snapshot too large to deliver.
inline constexpr std::size_t kMaxStreamTextBytes = 1 << 20;

// The bounds the operator sets (src/config/options: --max-workflows-per-agent, ...).
struct Limits {
  std::size_t max_workflows_per_agent = 100;      // kept ones, any phase; deleting finished ones frees room
  std::size_t max_metadata_bytes = 64 << 10;      // a workflow's metadata as JSON
  std::size_t max_requirements_bytes = 64 << 10;  // text and items of one submission as JSON
  std::size_t max_open_streams_per_workflow = 8;
  std::size_t max_open_streams_per_agent = 32;
  // The agent's whole state as a snapshot sends it (envelope included): at most half of a client's
  // queue, so a snapshot always fits beside live events.
  std::uint64_t max_snapshot_bytes = 2 << 20;
};

// Growth stops this far below max_snapshot_bytes; the rest is kept for what must always be possible:
// finishing a workflow (cancel, fail, complete) and ending a stream, even with a reason.
inline constexpr std::uint64_t finishing_reserve(std::uint64_t max_snapshot_bytes) {
  return max_snapshot_bytes / 8;
}

}  // namespace aw::workflow
