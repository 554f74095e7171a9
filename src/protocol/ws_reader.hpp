// The server side of RFC 6455 for what clients send: an incremental parser of client frames, fed with
// bytes as they arrive, that yields whole messages and control frames and enforces the protocol's
// rules (masking, reserved bits, opcodes, fragmentation, control frame limits, the message size limit,
// UTF-8 in text messages and close reasons, close codes). permessage-deflate (RFC 7692) messages are
// inflated each on their own: the handshake demands client_no_context_takeover, so no zlib state
// outlives a message.
//
// Memory: a reader holds nothing but itself while no frame is half received; the pieces of an
// incomplete message wait in one buffer that is freed as soon as the message has been handed out.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/utf8.hpp"

namespace aw::protocol {

// Close codes (RFC 6455 §7.4.1) the server sends or interprets.
namespace close_code {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t no_status = 1005;  // never sent: a close frame without a code
inline constexpr std::uint16_t invalid_payload = 1007;
inline constexpr std::uint16_t policy = 1008;
inline constexpr std::uint16_t too_big = 1009;
inline constexpr std::uint16_t service_restart = 1012;  // reconnect: e.g. the history had a gap
// Application codes (4000-4999): the subscriber's token expired and no refresh came in time.
inline constexpr std::uint16_t token_expired = 4001;
}  // namespace close_code

// A code a peer may put in a close frame: 1000-1003, 1007-1011, 3000-4999.
bool is_valid_close_code(std::uint16_t code) noexcept;

class Reader {
 public:
  // `max_message_bytes`: larger messages fail with 1009 (their size is checked when a frame header
  // announces it, before anything is buffered). `deflate`: permessage-deflate was negotiated.
  explicit Reader(std::uint64_t max_message_bytes, bool deflate = false) noexcept
      : max_(max_message_bytes), deflate_(deflate) {}

  // Set once the handshake has agreed permessage-deflate (or not), before the first byte is fed.
  void set_deflate(bool on) noexcept { deflate_ = on; }

  enum class Kind : std::uint8_t { need_more, text, binary, ping, pong, close, fail };

  struct Result {
    Kind kind = Kind::need_more;
    // text, binary: the whole message (inflated); ping, pong: the payload; close: the reason.
    std::string_view payload;
    // close: the peer's code (1005 when its frame had none); fail: the code to close with.
    std::uint16_t code = 0;
    // fail: what was wrong, for the log.
    const char* error = nullptr;
  };

  // Consumes bytes from the front of `data` (unmasking them in place) until a message or control frame
  // is complete, a rule is broken, or the bytes run out (need_more). The payload views stay valid until
  // the next call or until `data`'s storage changes, whichever comes first. After `fail` the reader is
  // done: further calls fail again.
  Result next(char*& data, std::size_t& size);

  // Bytes held for a frame or message not yet complete (0 while idle).
  std::size_t buffered_bytes() const noexcept { return held_size(); }

 private:
  Result fail(std::uint16_t code, const char* why) noexcept;
  // Header steps: the first two bytes, the length (before the mask), the frame's start.
  Result check_start();
  Result read_length();
  void start_frame();
  Result finish_control(std::string_view payload);
  Result finish_message(std::string_view payload);
  void release() noexcept;
  std::size_t held_size() const noexcept { return held_ ? held_->size() : 0; }
  std::string& hold() {
    if (!held_) held_ = std::make_unique<std::string>();
    return *held_;
  }

  std::uint64_t max_;
  std::uint64_t remaining_ = 0;  // payload bytes of the current frame not yet read
  std::uint64_t msg_size_ = 0;   // payload bytes of the current message so far (compressed, if it is)
  // Payload pieces that arrived in earlier calls: of the current message, then of a control frame
  // that interrupted it (which starts at control_at_).
  // Behind a pointer: every connection has a reader, few ever have anything held.
  std::unique_ptr<std::string> held_;
  std::size_t control_at_ = 0;
  std::uint8_t hdr_[14] = {};
  std::uint8_t hdr_len_ = 0;
  std::uint8_t hdr_need_ = 2;  // header bytes needed: 2, then the full size once known
  std::uint8_t mask_[4] = {};
  std::uint8_t mask_pos_ = 0;
  std::uint8_t opcode_ = 0;      // of the current frame
  std::uint8_t msg_opcode_ = 0;  // of the current message: 0 none, 1 text, 2 binary
  bool in_payload_ = false;      // the current frame's header has been read
  bool fin_ = false;
  bool compressed_ = false;  // the current message has RSV1 set
  bool deflate_ = false;
  std::uint16_t failed_ = 0;  // the close code of the failure, once failed
  // What the last call handed out from held_: dropped at the start of the next call.
  enum class Handed : std::uint8_t { nothing, message, control } handed_ = Handed::nothing;
  Utf8Validator utf8_;
};

}  // namespace aw::protocol
