// Bounds on what publishers may store. Each protects the snapshot, which carries every workflow and the
// text of every open stream in one WebSocket message that must stay well under the per-connection
// queue limit (4 MiB by default) — a snapshot a client cannot receive is worse than a refused append.
#pragma once
#include <cstddef>

namespace aw::workflow {

inline constexpr std::size_t kMaxNameBytes = 256;      // a title, not a document
inline constexpr std::size_t kMaxMessageBytes = 2048;  // progress messages and phase/stream reasons
// Text kept per open stream: far above a model's answer (~100k tokens of English is ~400 KiB), far
// below what would make a snapshot too large to deliver.
inline constexpr std::size_t kMaxStreamTextBytes = 1 << 20;

}  // namespace aw::workflow
