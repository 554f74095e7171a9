// Server-to-client WebSocket frame headers (RFC 6455 §5.2). Server frames are unmasked, so one
// frame's bytes are the same for every subscriber: an event is framed once and shared.
#pragma once
#include <string>
#include <string_view>

namespace aw::protocol {

// Size of the header of an unmasked, final frame carrying `payload_size` bytes.
std::size_t frame_header_size(std::size_t payload_size) noexcept;

// Appends the header of an unmasked final text frame (opcode 0x1) to `out`.
void append_text_frame_header(std::string& out, std::size_t payload_size);

// Header + payload in one string.
std::string make_text_frame(std::string_view payload);

}  // namespace aw::protocol
