// permessage-deflate (RFC 7692) for broadcasts. A server that negotiated server_no_context_takeover
// compresses each message on its own, so the compressed frame is the same for every subscriber with the
// same window size and is built once per event and window size in use, not once per subscriber.
#pragma once
#include <string>
#include <string_view>

#include "core/event.hpp"

namespace aw::protocol {

// The compressed WebSocket text frame (RSV1 set) of `payload`, deflated without context takeover and
// with a window of 2^window_bits bytes (9..15: zlib's raw deflate has no 8-bit window).
std::string make_deflated_text_frame(std::string_view payload, int window_bits = 15);

// The event's compressed frame for a window of `window_bits`, built on first use and shared afterwards
// (thread-safe).
const std::string& deflated_frame(const Event& ev, int window_bits = 15);

}  // namespace aw::protocol
