// Shared permessage-deflate frames: valid RFC 7692 frames that inflate back to the envelope.
#include "protocol/deflate.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include "protocol/envelope.hpp"

namespace aw {
namespace {

std::string inflate_message(std::string_view compressed, int window_bits = 15) {
  std::string in(compressed);
  in.append("\x00\x00\xff\xff", 4);  // the tail the sender stripped
  z_stream zs{};
  // A receiver that agreed on a smaller window inflates with only that much.
  EXPECT_EQ(inflateInit2(&zs, -window_bits), Z_OK);
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

// Text whose repeats lie far apart: a large window finds them, a small one must not reach that far.
std::string far_repeats() {
  std::string text;
  for (int i = 0; text.size() < 40000; ++i)
    text += "line " + std::to_string(i * 7919 % 10007) + " of a long log; ";
  return text + text;
}

TEST(Deflate, EachWindowSizeHasItsOwnFrameBuiltOnce) {
  auto ev = protocol::make_event("a", 1, "t", 0, R"({"text":")" + far_repeats() + R"("})");
  std::size_t full_size = 0;
  for (int bits = 9; bits <= 15; ++bits) {
    const std::string& frame = protocol::deflated_frame(*ev, bits);
    EXPECT_EQ(&protocol::deflated_frame(*ev, bits), &frame) << bits;  // built once per window size
    ASSERT_GE(frame.size(), 4u);
    EXPECT_EQ(static_cast<unsigned char>(frame[0]), 0xC1);
    std::size_t len = static_cast<unsigned char>(frame[1]) & 0x7f;
    std::size_t header = len == 126 ? 4 : len == 127 ? 10 : 2;
    // It inflates with no more window than was agreed.
    EXPECT_EQ(inflate_message(std::string_view(frame).substr(header), bits), ev->envelope()) << bits;
    if (bits == 15) full_size = frame.size();
  }
  EXPECT_EQ(&protocol::deflated_frame(*ev), &protocol::deflated_frame(*ev, 15));
  // The small window could not reach the repeats 40 KB back: its frame is larger.
  EXPECT_GT(protocol::deflated_frame(*ev, 9).size(), full_size);
  EXPECT_NE(&protocol::deflated_frame(*ev, 9), &protocol::deflated_frame(*ev, 10));
}

}  // namespace
}  // namespace aw
