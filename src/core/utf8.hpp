// The one UTF-8 validator of the server (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF),
// used wherever text reaches a client: WebSocket text frames and close reasons, and AI output deltas,
// which a browser would otherwise refuse with 1007.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace aw {

// Incremental validation for bytes that arrive in pieces. Fails as soon as a byte cannot continue any
// well-formed sequence, so a bad message is refused before it ends.
class Utf8Validator {
 public:
  // False once the bytes so far cannot be the start of valid UTF-8.
  bool feed(std::string_view bytes) noexcept;
  // Nothing is left half done: the bytes so far are valid UTF-8 as they stand.
  bool complete() const noexcept { return need_ == 0; }
  void reset() noexcept { need_ = 0; }

 private:
  std::uint8_t need_ = 0;   // continuation bytes still expected
  std::uint8_t lo_ = 0x80;  // the range the next continuation byte must fall in
  std::uint8_t hi_ = 0xBF;
};

// Whole-string form of Utf8Validator.
bool is_valid_utf8(std::string_view text) noexcept;

// The longest prefix of `bytes` that does not end inside a character: what can be sent now when a byte
// stream is cut into deltas, the rest waiting for the next bytes. Only the last 3 bytes are examined.
std::size_t complete_utf8_prefix(std::string_view bytes) noexcept;

// Unicode code points in valid UTF-8 text (what a user would call its length in characters).
std::uint64_t count_code_points(std::string_view text) noexcept;

}  // namespace aw
