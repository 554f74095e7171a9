// An event on an agent's channel, encoded once when it is published and shared from then on.
#pragma once
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace aw {

// A value computed on first use and shared from then on; copies start empty (they are recomputed).
struct LazyBytes {
  LazyBytes() = default;
  LazyBytes(const LazyBytes&) {}
  LazyBytes& operator=(const LazyBytes&) { return *this; }
  mutable std::once_flag once;
  mutable std::string bytes;
};

// An event's frame compressed for permessage-deflate, once per server window size in use (RFC 7692
// server_max_window_bits, 9 to 15 bits): the full window is what nearly every client takes; the smaller
// ones get a table of their own only when a subscriber first needs one. Copies start empty.
struct DeflatedFrames {
  static constexpr int kMinWindowBits = 9;
  static constexpr int kMaxWindowBits = 15;
  using Smaller = std::array<LazyBytes, kMaxWindowBits - kMinWindowBits>;

  DeflatedFrames() = default;
  DeflatedFrames(const DeflatedFrames&) {}
  DeflatedFrames& operator=(const DeflatedFrames&) { return *this; }
  ~DeflatedFrames() { delete smaller.load(std::memory_order_relaxed); }

  // The slot for `window_bits` (9..15).
  LazyBytes& at(int window_bits) const {
    if (window_bits >= kMaxWindowBits) return full;
    Smaller* table = smaller.load(std::memory_order_acquire);
    if (!table) {
      auto fresh = std::make_unique<Smaller>();
      // Another thread may have installed one meanwhile: theirs is kept, ours freed.
      if (smaller.compare_exchange_strong(table, fresh.get(), std::memory_order_acq_rel))
        table = fresh.release();
    }
    return (*table)[static_cast<std::size_t>(std::max(window_bits, kMinWindowBits) - kMinWindowBits)];
  }

  mutable LazyBytes full;
  mutable std::atomic<Smaller*> smaller{nullptr};
};

// Where a piece of text lies in an event's bytes.
struct TextSpan {
  std::uint32_t offset = 0;
  std::uint32_t size = 0;
};

// Channels keep up to a thousand of these each, so an event is one shared object and one block of
// bytes: the WebSocket frame, whose envelope already holds the agent id, the type and the data
// verbatim. Only protocol::make_event builds one (it knows the envelope's layout).
struct Event {
  std::uint64_t seq = 0;
  // Set on an event merged for a lagging subscriber: it stands for first_seq..seq. 0 otherwise.
  std::uint64_t first_seq = 0;
  std::int64_t ts_ms = 0;       // wall clock at publish
  std::string idempotency_key;  // empty when the publisher sent none

  // The WebSocket text frame (unmasked header + envelope JSON), sent as-is to every subscriber; after it
  // in `bytes`, rarely, an agent id or type that the envelope had to escape, in its own spelling.
  std::string bytes;
  std::uint32_t frame_size = 0;
  std::uint32_t payload_offset = 0;  // where the envelope JSON starts
  TextSpan agent_id_at;
  TextSpan type_at;
  TextSpan data_at;  // the published `data` JSON, verbatim
  // Set only by the workflow domain, on the events it knows a lagging subscriber may get merged
  // (protocol/coalesce): a generic publish always arrives as published, whatever its type and data.
  bool mergeable = false;

  // The same frame compressed for permessage-deflate subscribers; built on first use (protocol/deflate).
  DeflatedFrames deflated;

  std::string_view frame() const noexcept { return std::string_view(bytes.data(), frame_size); }
  std::string_view envelope() const noexcept { return frame().substr(payload_offset); }
  std::string_view agent_id() const noexcept { return text(agent_id_at); }
  std::string_view type() const noexcept { return text(type_at); }
  std::string_view data() const noexcept { return text(data_at); }

 private:
  std::string_view text(TextSpan at) const noexcept {
    return std::string_view(bytes.data() + at.offset, at.size);
  }
};

using EventPtr = std::shared_ptr<const Event>;

// A position in a channel's history: the last seq seen and the epoch that numbering belongs to.
struct Position {
  std::uint64_t seq = 0;
  std::string epoch;
};

}  // namespace aw
