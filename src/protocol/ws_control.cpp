#include "protocol/ws_control.hpp"

#include "core/utf8.hpp"
#include "protocol/ws_frame.hpp"
#include "protocol/ws_reader.hpp"

namespace aw::protocol {

std::string make_frame(std::uint8_t op, std::string_view payload) {
  std::string out;
  out.reserve(frame_header_size(payload.size()) + payload.size());
  append_text_frame_header(out, payload.size());
  out[0] = static_cast<char>(0x80 | op);  // FIN + opcode; the length bytes are the same for any opcode
  out.append(payload);
  return out;
}

std::string make_close_frame(std::uint16_t code, std::string_view reason) {
  if (code == close_code::no_status) return make_frame(opcode::close, {});
  constexpr std::size_t kMaxReason = 125 - 2;
  // Cut to fit, never inside a character.
  reason = reason.substr(0, complete_utf8_prefix(reason.substr(0, kMaxReason)));
  std::string payload;
  payload.reserve(2 + reason.size());
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xff));
  payload.append(reason);
  return make_frame(opcode::close, payload);
}

}  // namespace aw::protocol
