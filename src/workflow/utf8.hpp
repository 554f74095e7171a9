// UTF-8 checks for model output. Every delta is forwarded to browsers inside a JSON text frame, so a
// piece that is not valid UTF-8 on its own (e.g. a chunk cut in the middle of a character) must be
// refused before it reaches a subscriber, who would otherwise close with 1007.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace aw::workflow {

// Well-formed UTF-8 as RFC 3629 defines it: no overlongs, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view text) noexcept;

// The longest prefix of `bytes` that does not end inside a character: what can be sent now when a byte
// stream is cut into deltas, the rest waiting for the next bytes. Only the last 3 bytes are examined.
std::size_t complete_utf8_prefix(std::string_view bytes) noexcept;

// Unicode code points in valid UTF-8 text (what a user would call its length in characters).
std::uint64_t count_code_points(std::string_view text) noexcept;

}  // namespace aw::workflow
