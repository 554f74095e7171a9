// permessage-deflate (RFC 7692) for broadcasts. A server that negotiated server_no_context_takeover
// compresses each message on its own, so the compressed frame is the same for every subscriber and is
// built once per event, not once per subscriber.
#pragma once
#include <string>
#include <string_view>

#include "core/event.hpp"

namespace aw::protocol {

// The compressed WebSocket text frame (RSV1 set) of `payload`, deflated without context takeover
// and with a 32 KiB window.
std::string make_deflated_text_frame(std::string_view payload);

// The event's compressed frame, built on first use and shared afterwards (thread-safe).
const std::string& deflated_frame(const Event& ev);

}  // namespace aw::protocol
