// Shared permessage-deflate frames: valid RFC 7692 frames that inflate back to the envelope.
#include "protocol/deflate.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include "protocol/envelope.hpp"

namespace aw {
namespace {

std::string inflate_message(std::string_view compressed) {
  std::string in(compressed);
  in.append("\x00\x00\xff\xff", 4);  // the tail the sender stripped
  z_stream zs{};
  EXPECT_EQ(inflateInit2(&zs, -15), Z_OK);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = inflate(&zs, Z_SYNC_FLUSH);
  EXPECT_TRUE(rc == Z_OK || rc == Z_STREAM_END);
  out.resize(out.size() - zs.avail_out);
  inflateEnd(&zs);
  return out;
}

TEST(Deflate, FrameInflatesToTheEnvelope) {
  auto ev = protocol::make_event("a", 1, "t", 0, R"({"text":")" + std::string(5000, 'z') + R"("})");
  const std::string& frame = protocol::deflated_frame(*ev);
  ASSERT_GE(frame.size(), 4u);
  EXPECT_EQ(static_cast<unsigned char>(frame[0]), 0xC1);  // FIN, RSV1, text
  std::size_t len = static_cast<unsigned char>(frame[1]) & 0x7f;
  std::size_t header = 2;
  if (len == 126) {
    len = (static_cast<unsigned char>(frame[2]) << 8) | static_cast<unsigned char>(frame[3]);
    header = 4;
  }
  ASSERT_EQ(header + len, frame.size());
  EXPECT_LT(frame.size(), ev->frame().size() / 10);
  EXPECT_EQ(inflate_message(std::string_view(frame).substr(header)), ev->envelope());
  EXPECT_EQ(&protocol::deflated_frame(*ev), &frame);  // built once
}

}  // namespace
}  // namespace aw
