// Server-to-client frames built one at a time (RFC 6455 §5.2: unmasked, never fragmented): control
// frames and echoed messages. Broadcast events are framed once for everyone elsewhere (ws_frame,
// deflate).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace aw::protocol {

namespace opcode {
inline constexpr std::uint8_t text = 0x1;
inline constexpr std::uint8_t binary = 0x2;
inline constexpr std::uint8_t close = 0x8;
inline constexpr std::uint8_t ping = 0x9;
inline constexpr std::uint8_t pong = 0xA;
}  // namespace opcode

// A final frame with `opcode` carrying `payload`.
std::string make_frame(std::uint8_t opcode, std::string_view payload);

// A close frame with `code` and `reason` (cut to the 123 bytes a control frame leaves for it, at a
// character boundary); 1005 (no status) gives an empty close frame.
std::string make_close_frame(std::uint16_t code, std::string_view reason = {});

// An empty ping, the heartbeat's frame: the same two bytes for every connection.
inline constexpr std::string_view kEmptyPingFrame{"\x89\x00", 2};

}  // namespace aw::protocol
