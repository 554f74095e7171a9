// An event on an agent's channel, encoded once when it is published and shared from then on.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace aw {

// A value computed on first use and shared from then on; copies start empty (they are recomputed).
struct LazyBytes {
  LazyBytes() = default;
  LazyBytes(const LazyBytes&) {}
  LazyBytes& operator=(const LazyBytes&) { return *this; }
  mutable std::once_flag once;
  mutable std::string bytes;
};

struct Event {
  std::string agent_id;
  std::uint64_t seq = 0;
  // Set on an event merged for a lagging subscriber: it stands for first_seq..seq. 0 otherwise.
  std::uint64_t first_seq = 0;
  std::string type;
  std::int64_t ts_ms = 0;             // wall clock at publish
  std::string data;                   // the published `data` JSON, verbatim
  std::string idempotency_key;        // empty when the publisher sent none
  // The WebSocket text frame (unmasked header + envelope JSON), built once and sent as-is to every
  // subscriber; `payload_offset` is where the envelope JSON starts inside it.
  std::string frame;
  std::size_t payload_offset = 0;

  // The same frame compressed for permessage-deflate subscribers; built on first use (protocol/deflate).
  LazyBytes deflated;

  std::string_view envelope() const noexcept {
    return std::string_view(frame).substr(payload_offset);
  }
};

using EventPtr = std::shared_ptr<const Event>;

// A position in a channel's history: the last seq seen and the epoch that numbering belongs to.
struct Position {
  std::uint64_t seq = 0;
  std::string epoch;
};

}  // namespace aw
