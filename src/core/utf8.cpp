// The UTF-8 validator: a byte-at-a-time state machine with a fast path over ASCII runs.
#include "core/utf8.hpp"

#include <cstring>

namespace aw {

bool Utf8Validator::feed(std::string_view bytes) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const auto* end = p + bytes.size();
  while (p < end) {
    if (need_ == 0) {
      // ASCII runs, 8 bytes at a time.
      while (end - p >= 8) {
        std::uint64_t w;
        std::memcpy(&w, p, 8);
        if (w & 0x8080808080808080ull) break;
        p += 8;
      }
      if (p == end) break;
      unsigned char b = *p++;
      if (b < 0x80) continue;
      // RFC 3629 §4 (Unicode Table 3-7): the lead byte decides the range of the first continuation.
      lo_ = 0x80;
      hi_ = 0xBF;
      if (b >= 0xC2 && b <= 0xDF) {
        need_ = 1;
      } else if (b == 0xE0) {
        need_ = 2, lo_ = 0xA0;  // no overlongs
      } else if (b == 0xED) {
        need_ = 2, hi_ = 0x9F;  // no surrogates
      } else if (b >= 0xE1 && b <= 0xEF) {
        need_ = 2;
      } else if (b == 0xF0) {
        need_ = 3, lo_ = 0x90;  // no overlongs
      } else if (b >= 0xF1 && b <= 0xF3) {
        need_ = 3;
      } else if (b == 0xF4) {
        need_ = 3, hi_ = 0x8F;  // nothing above U+10FFFF
      } else {
        return false;
      }
    } else {
      unsigned char b = *p++;
      if (b < lo_ || b > hi_) return false;
      --need_;
      lo_ = 0x80;
      hi_ = 0xBF;
    }
  }
  return true;
}

bool is_valid_utf8(std::string_view text) noexcept {
  Utf8Validator v;
  return v.feed(text) && v.complete();
}

std::size_t complete_utf8_prefix(std::string_view bytes) noexcept {
  // Walk back over at most 3 continuation bytes to the lead byte of the last character.
  std::size_t n = bytes.size();
  std::size_t back = 0;
  while (back < 3 && back < n && (static_cast<unsigned char>(bytes[n - 1 - back]) & 0xC0) == 0x80) ++back;
  if (back == n) return n;  // nothing but continuation bytes: invalid anyway, let validation say so
  auto lead = static_cast<unsigned char>(bytes[n - 1 - back]);
  std::size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return back + 1 < need ? n - 1 - back : n;
}

std::uint64_t count_code_points(std::string_view text) noexcept {
  std::uint64_t n = 0;
  for (char c : text)
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace aw
