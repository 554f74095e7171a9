#include "protocol/ws_frame.hpp"

namespace aw::protocol {

std::size_t frame_header_size(std::size_t n) noexcept {
  if (n < 126) return 2;
  if (n <= 0xffff) return 4;
  return 10;
}

void append_text_frame_header(std::string& out, std::size_t n) {
  out.push_back(static_cast<char>(0x81));  // FIN + text
  if (n < 126) {
    out.push_back(static_cast<char>(n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(126));
    out.push_back(static_cast<char>((n >> 8) & 0xff));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(127));
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((n >> shift) & 0xff));
  }
}

std::string make_text_frame(std::string_view payload) {
  std::string out;
  out.reserve(frame_header_size(payload.size()) + payload.size());
  append_text_frame_header(out, payload.size());
  out.append(payload);
  return out;
}

}  // namespace aw::protocol
