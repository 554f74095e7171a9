#include "protocol/deflate.hpp"

#include <zlib.h>

#include <algorithm>
#include <stdexcept>

#include "protocol/ws_frame.hpp"

namespace aw::protocol {

std::string make_deflated_text_frame(std::string_view payload, int window_bits) {
  z_stream zs{};
  // Raw deflate (negative window bits), as RFC 7692 requires; level 6 is zlib's balance of size and time.
  if (deflateInit2(&zs, 6, Z_DEFLATED, -window_bits, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("deflateInit2 failed");
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(payload.size())) + 16);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(payload.data()));
  zs.avail_in = static_cast<uInt>(payload.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_SYNC_FLUSH);
  std::size_t produced = out.size() - zs.avail_out;
  deflateEnd(&zs);
  if (rc != Z_OK || produced < 4) throw std::runtime_error("deflate failed");
  // A sync flush ends with 00 00 ff ff, which the receiver appends back (RFC 7692 §7.2.1).
  out.resize(produced - 4);
  std::string frame;
  frame.reserve(frame_header_size(out.size()) + out.size());
  append_text_frame_header(frame, out.size());
  frame[0] = static_cast<char>(0xC1);  // FIN + RSV1 (compressed) + text
  frame.append(out);
  return frame;
}

const std::string& deflated_frame(const Event& ev, int window_bits) {
  window_bits = std::clamp(window_bits, DeflatedFrames::kMinWindowBits, DeflatedFrames::kMaxWindowBits);
  LazyBytes& slot = ev.deflated.at(window_bits);
  std::call_once(slot.once, [&] { slot.bytes = make_deflated_text_frame(ev.envelope(), window_bits); });
  return slot.bytes;
}

}  // namespace aw::protocol
