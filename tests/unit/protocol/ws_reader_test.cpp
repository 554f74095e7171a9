// The client frame reader: every RFC 6455 rule it enforces, with bytes arriving whole, one at a time and
// in odd pieces; fragmentation, interleaved control frames, masking, permessage-deflate, and that an
// idle reader holds no memory.
#include "protocol/ws_reader.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <cstring>
#include <vector>

namespace aw::protocol {
namespace {

using Kind = Reader::Kind;

constexpr std::uint8_t kCont = 0x0, kText = 0x1, kBinary = 0x2, kClose = 0x8, kPing = 0x9, kPong = 0xA;

struct FrameSpec {
  std::uint8_t opcode = kText;
  std::string payload;
  bool fin = true;
  bool mask = true;
  std::uint8_t rsv = 0;  // bits 0x40, 0x20, 0x10
  std::array<std::uint8_t, 4> key = {0x37, 0xfa, 0x21, 0x3d};
};

// A client frame as a browser would send it: masked, minimal length encoding.
std::string frame(const FrameSpec& f) {
  std::string out;
  out.push_back(static_cast<char>((f.fin ? 0x80 : 0) | f.rsv | f.opcode));
  const std::uint8_t m = f.mask ? 0x80 : 0;
  const std::size_t n = f.payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(m | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(m | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(m | 127));
    for (int s = 56; s >= 0; s -= 8)
      out.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> s) & 0xff));
  }
  if (f.mask) {
    for (auto k : f.key) out.push_back(static_cast<char>(k));
    for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(f.payload[i] ^ f.key[i % 4]));
  } else {
    out.append(f.payload);
  }
  return out;
}

std::string text(std::string_view s, bool fin = true) {
  return frame({kText, std::string(s), fin});
}
std::string binary(std::string_view s, bool fin = true) {
  return frame({kBinary, std::string(s), fin});
}
std::string cont(std::string_view s, bool fin = true) {
  return frame({kCont, std::string(s), fin});
}
std::string control(std::uint8_t op, std::string_view s) {
  return frame({op, std::string(s)});
}
std::string close_frame(std::uint16_t code, std::string_view reason = {}) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xff));
  p.append(reason);
  return control(kClose, p);
}

// Raw deflate with a sync flush and its 00 00 ff ff tail stripped, as RFC 7692 senders do.
std::string deflate_payload(std::string_view s) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&zs, static_cast<uLong>(s.size())) + 16, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
  zs.avail_in = static_cast<uInt>(s.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
  out.resize(out.size() - zs.avail_out);
  deflateEnd(&zs);
  EXPECT_EQ(out.substr(out.size() - 4), std::string("\x00\x00\xff\xff", 4));
  out.resize(out.size() - 4);
  return out;
}

struct Got {
  Kind kind;
  std::string payload;
  std::uint16_t code = 0;
  bool operator==(const Got&) const = default;
};

std::ostream& operator<<(std::ostream& os, const Got& g) {
  return os << "{kind " << static_cast<int>(g.kind) << ", " << g.payload.size() << " bytes, code " << g.code
            << "}";
}

// Feeds `bytes` in pieces of `piece` bytes, each in a buffer of its own that is scribbled over once the
// reader has had it (as the shared read buffer is by the next read), collecting what the reader yields.
std::vector<Got> feed(Reader& r, std::string_view bytes, std::size_t piece = SIZE_MAX) {
  std::vector<Got> out;
  while (!bytes.empty()) {
    std::size_t n = std::min(piece, bytes.size());
    std::string buffer(bytes.substr(0, n));
    bytes.remove_prefix(n);
    char* data = buffer.data();
    std::size_t size = buffer.size();
    for (;;) {
      Reader::Result res = r.next(data, size);
      if (res.kind == Kind::need_more) break;
      out.push_back({res.kind, std::string(res.payload), res.code});
      if (res.kind == Kind::fail) {
        EXPECT_NE(res.error, nullptr);
        return out;
      }
    }
    EXPECT_EQ(size, 0u);
    std::memset(buffer.data(), 0xAA, buffer.size());
  }
  return out;
}

std::vector<Got> feed_whole(std::string_view bytes, std::uint64_t max = 1 << 20, bool deflate = false) {
  Reader r(max, deflate);
  return feed(r, bytes);
}

Got failure(std::uint16_t code) {
  return {Kind::fail, "", code};
}

// The same results however the bytes are cut.
void expect_same_in_any_pieces(std::string_view bytes, const std::vector<Got>& expected,
                               std::uint64_t max = 1 << 20, bool deflate = false) {
  for (std::size_t piece : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{7}, std::size_t{64},
                            std::size_t{1000}, SIZE_MAX}) {
    Reader r(max, deflate);
    EXPECT_EQ(feed(r, bytes, piece), expected) << "pieces of " << piece << " bytes";
  }
}

// ---- messages and masking -------------------------------------------------------------------------------

TEST(WsReader, UnfragmentedTextAndBinary) {
  expect_same_in_any_pieces(text("hello") + binary(std::string("\x00\xff\x80", 3)),
                            {{Kind::text, "hello"}, {Kind::binary, std::string("\x00\xff\x80", 3)}});
}

TEST(WsReader, EmptyMessages) {
  expect_same_in_any_pieces(text("") + binary(""), {{Kind::text, ""}, {Kind::binary, ""}});
}

TEST(WsReader, UnmasksEveryLengthEncodingWithAnyKey) {
  for (std::size_t n : {1u, 3u, 7u, 8u, 9u, 125u, 126u, 127u, 1000u, 65535u, 65536u, 70000u}) {
    std::string payload(n, '\0');
    for (std::size_t i = 0; i < n; ++i) payload[i] = static_cast<char>('a' + i % 26);
    for (std::array<std::uint8_t, 4> key :
         {std::array<std::uint8_t, 4>{0, 0, 0, 0}, {0xff, 0x01, 0x80, 0x7f}}) {
      std::string bytes = frame({kBinary, payload, true, true, 0, key});
      Reader r(1 << 20);
      EXPECT_EQ(feed(r, bytes), (std::vector<Got>{{Kind::binary, payload}})) << n;
      Reader r2(1 << 20);
      EXPECT_EQ(feed(r2, bytes, 4093), (std::vector<Got>{{Kind::binary, payload}})) << n;
    }
  }
}

TEST(WsReader, WholeMessageInOneReadIsHandedOutWithoutACopy) {
  std::string bytes = text("no copy");
  Reader r(1024);
  char* data = bytes.data();
  std::size_t size = bytes.size();
  auto res = r.next(data, size);
  ASSERT_EQ(res.kind, Kind::text);
  EXPECT_EQ(res.payload, "no copy");
  EXPECT_GE(res.payload.data(), bytes.data());
  EXPECT_LE(res.payload.data() + res.payload.size(), bytes.data() + bytes.size());
  EXPECT_EQ(r.buffered_bytes(), 0u);
}

TEST(WsReader, SeveralMessagesInOneRead) {
  std::string bytes;
  std::vector<Got> expected;
  for (int i = 0; i < 20; ++i) {
    // Appended rather than `"m" + std::to_string(i)`: GCC 12 at -O3 warns falsely (-Wrestrict) on that.
    std::string message = "m";
    message += std::to_string(i);
    bytes += text(message);
    expected.push_back({Kind::text, message});
  }
  expect_same_in_any_pieces(bytes, expected);
}

// ---- fragmentation and control frames -------------------------------------------------------------------

TEST(WsReader, FragmentedMessagesAreJoined) {
  expect_same_in_any_pieces(text("Hel", false) + cont("lo, ", false) + cont("world"),
                            {{Kind::text, "Hello, world"}});
  expect_same_in_any_pieces(binary("ab", false) + cont("", false) + cont("cd"), {{Kind::binary, "abcd"}});
  // Empty fragments around the data.
  expect_same_in_any_pieces(text("", false) + cont("x", false) + cont(""), {{Kind::text, "x"}});
}

TEST(WsReader, ControlFramesMayComeBetweenFragments) {
  std::string bytes = text("one ", false) + control(kPing, "p1") + cont("two ", false) + control(kPong, "") +
                      control(kPing, std::string(125, 'z')) + cont("three") + text("next");
  expect_same_in_any_pieces(bytes, {{Kind::ping, "p1"},
                                    {Kind::pong, ""},
                                    {Kind::ping, std::string(125, 'z')},
                                    {Kind::text, "one two three"},
                                    {Kind::text, "next"}});
}

TEST(WsReader, PingPongAndClosePayloads) {
  expect_same_in_any_pieces(
      control(kPing, "are you there") + control(kPong, "yes") + close_frame(1000, "bye"),
      {{Kind::ping, "are you there"}, {Kind::pong, "yes"}, {Kind::close, "bye", 1000}});
}

TEST(WsReader, UnmaskedFrameIsAProtocolError) {
  EXPECT_EQ(feed_whole(frame({kText, "hi", true, false})), std::vector<Got>{failure(1002)});
  EXPECT_EQ(feed_whole(frame({kPing, "", true, false})), std::vector<Got>{failure(1002)});
}

TEST(WsReader, ReservedBits) {
  // RSV2 and RSV3 are never allowed; RSV1 only with permessage-deflate.
  EXPECT_EQ(feed_whole(frame({kText, "x", true, true, 0x20})), std::vector<Got>{failure(1002)});
  EXPECT_EQ(feed_whole(frame({kText, "x", true, true, 0x10}), 1024, true), std::vector<Got>{failure(1002)});
  EXPECT_EQ(feed_whole(frame({kText, "x", true, true, 0x40})), std::vector<Got>{failure(1002)});
  // With deflate: not on a continuation, not on a control frame.
  std::string first = frame({kText, deflate_payload("abc"), false, true, 0x40});
  EXPECT_EQ(feed_whole(first + frame({kCont, "", true, true, 0x40}), 1024, true),
            std::vector<Got>{failure(1002)});
  EXPECT_EQ(feed_whole(frame({kPing, "", true, true, 0x40}), 1024, true), std::vector<Got>{failure(1002)});
}

TEST(WsReader, UnknownOpcodes) {
  for (std::uint8_t op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF})
    EXPECT_EQ(feed_whole(frame({op, "x"})), std::vector<Got>{failure(1002)}) << int(op);
}

TEST(WsReader, ControlFramesMustBeFinalAndShort) {
  EXPECT_EQ(feed_whole(frame({kPing, "x", false})), std::vector<Got>{failure(1002)});
  EXPECT_EQ(feed_whole(frame({kClose, "", false})), std::vector<Got>{failure(1002)});
  EXPECT_EQ(feed_whole(control(kPing, std::string(126, 'a'))), std::vector<Got>{failure(1002)});
  EXPECT_EQ(feed_whole(control(kPong, std::string(126, 'a'))), std::vector<Got>{failure(1002)});
  // Refused from the first two bytes, before the payload arrives.
  std::string head = control(kPing, std::string(126, 'a')).substr(0, 2);
  EXPECT_EQ(feed_whole(head), std::vector<Got>{failure(1002)});
}

TEST(WsReader, ContinuationRules) {
  // A continuation with no message started.
  EXPECT_EQ(feed_whole(cont("x")), std::vector<Got>{failure(1002)});
  EXPECT_EQ(feed_whole(text("a") + cont("x")), (std::vector<Got>{{Kind::text, "a"}, failure(1002)}));
  // A new data frame while a fragmented message is open.
  EXPECT_EQ(feed_whole(text("a", false) + text("b")), std::vector<Got>{failure(1002)});
  EXPECT_EQ(feed_whole(binary("a", false) + binary("b")), std::vector<Got>{failure(1002)});
}

TEST(WsReader, LengthEncoding) {
  // A 64-bit length with the most significant bit set.
  std::string bad = "\x81\xff";
  bad += std::string("\x80\x00\x00\x00\x00\x00\x00\x01", 8) + "MASK";
  EXPECT_EQ(feed_whole(bad), std::vector<Got>{failure(1002)});
  // Lengths not in their shortest form.
  std::string long16 = std::string("\x81\xfe\x00\x05", 4) + std::string(4, '\0') + "hello";
  EXPECT_EQ(feed_whole(long16), std::vector<Got>{failure(1002)});
  std::string long64 =
      std::string("\x81\xff\x00\x00\x00\x00\x00\x00\x00\x05", 10) + std::string(4, '\0') + "hello";
  EXPECT_EQ(feed_whole(long64), std::vector<Got>{failure(1002)});
}

// ---- size limit -----------------------------------------------------------------------------------------

TEST(WsReader, MessageAtTheLimitPassesOverItFailsWith1009FromTheHeader) {
  EXPECT_EQ(feed_whole(text(std::string(1024, 'a')), 1024),
            (std::vector<Got>{{Kind::text, std::string(1024, 'a')}}));
  // Only the header of an oversized frame: refused before any payload is read.
  std::string big = text(std::string(2000, 'a'));
  Reader r(1024);
  EXPECT_EQ(feed(r, big.substr(0, 8)), std::vector<Got>{failure(1009)});
  EXPECT_EQ(r.buffered_bytes(), 0u);
  // A huge announced length: no allocation, just the refusal.
  std::string huge = std::string("\x82\xff\x00\x00\x00\x10\x00\x00\x00\x00", 10) + "MASK";
  EXPECT_EQ(feed_whole(huge, 1024), std::vector<Got>{failure(1009)});
}

TEST(WsReader, FragmentedMessageOverTheLimitFailsAtTheFrameThatCrossesIt) {
  std::string first = text(std::string(600, 'x'), false);
  std::string second = cont(std::string(600, 'x'));
  Reader r(1024);
  EXPECT_EQ(feed(r, first), std::vector<Got>{});
  EXPECT_EQ(r.buffered_bytes(), 600u);
  EXPECT_EQ(feed(r, second.substr(0, 4)), std::vector<Got>{failure(1009)});
  // Control frames do not count towards the message.
  expect_same_in_any_pieces(
      text(std::string(1000, 'y'), false) + control(kPing, std::string(100, 'p')) + cont("1234"),
      {{Kind::ping, std::string(100, 'p')}, {Kind::text, std::string(1000, 'y') + "1234"}}, 1004);
}

// ---- UTF-8 ------------------------------------------------------------------------------------------------

TEST(WsReader, TextMustBeUtf8) {
  EXPECT_EQ(feed_whole(text("{\"s\":\"\xc3\x28\xff\"}")), std::vector<Got>{failure(1007)});
  for (std::string_view bad :
       {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80", "\x80", "\xe2\x82", "\xff"})
    EXPECT_EQ(feed_whole(text(bad)), std::vector<Got>{failure(1007)}) << testing::PrintToString(bad);
  // Binary messages are bytes.
  EXPECT_EQ(feed_whole(binary("\xc3\x28\xff")), (std::vector<Got>{{Kind::binary, "\xc3\x28\xff"}}));
  // Valid text, however it is cut.
  std::string good =
      "h\xc3\xa9llo \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xef\xbf\xbf \xf4\x8f\xbf\xbf";
  expect_same_in_any_pieces(text(good), {{Kind::text, good}});
  expect_same_in_any_pieces(
      text(good.substr(0, 2), false) + cont(good.substr(2, 11), false) + cont(good.substr(13)),
      {{Kind::text, good}});
}

TEST(WsReader, Utf8IsCheckedAcrossFragmentsAndFailsFast) {
  // A valid lead byte ends the first fragment; the second continues it wrongly.
  std::string bytes = text("{\"s\":\"\xe2", false) + cont("\x28\xa1\"}");
  expect_same_in_any_pieces(bytes, {failure(1007)});
  // Refused at the bad byte, before the message ends.
  EXPECT_EQ(feed_whole(text("ok \xff and more to come", false)), std::vector<Got>{failure(1007)});
  // A character left unfinished at the end of the message.
  EXPECT_EQ(feed_whole(text("abc\xe2\x82", false) + cont("")), std::vector<Got>{failure(1007)});
}

// ---- close frames -----------------------------------------------------------------------------------------

TEST(WsReader, CloseFramePayloads) {
  EXPECT_EQ(feed_whole(control(kClose, "")), (std::vector<Got>{{Kind::close, "", 1005}}));
  EXPECT_EQ(feed_whole(control(kClose, "\x03")), std::vector<Got>{failure(1002)});
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999})
    EXPECT_EQ(feed_whole(close_frame(code, "why")), (std::vector<Got>{{Kind::close, "why", code}})) << code;
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000, 65535})
    EXPECT_EQ(feed_whole(close_frame(code)), std::vector<Got>{failure(1002)}) << code;
  EXPECT_EQ(feed_whole(close_frame(1000, "caf\xc3\xa9")),
            (std::vector<Got>{{Kind::close, "caf\xc3\xa9", 1000}}));
  EXPECT_EQ(feed_whole(close_frame(1000, "bad \xff")), std::vector<Got>{failure(1007)});
  EXPECT_EQ(feed_whole(close_frame(1000, "cut \xc3")), std::vector<Got>{failure(1007)});
}

TEST(WsReader, CloseCodes) {
  EXPECT_TRUE(is_valid_close_code(1000));
  EXPECT_TRUE(is_valid_close_code(1011));
  EXPECT_FALSE(is_valid_close_code(1005));
  EXPECT_FALSE(is_valid_close_code(1006));
  EXPECT_FALSE(is_valid_close_code(1015));
  EXPECT_TRUE(is_valid_close_code(3000));
  EXPECT_FALSE(is_valid_close_code(5000));
}

// ---- permessage-deflate -----------------------------------------------------------------------------------

TEST(WsReader, CompressedMessagesAreInflated) {
  std::string msg = R"({"type":"ping","pad":")" + std::string(3000, 'a') + R"("})";
  std::string z = deflate_payload(msg);
  ASSERT_LT(z.size(), msg.size());
  expect_same_in_any_pieces(frame({kText, z, true, true, 0x40}), {{Kind::text, msg}}, 1 << 20, true);
  // Fragmented: RSV1 on the first frame only; a control frame in between.
  std::string bytes = frame({kText, z.substr(0, 10), false, true, 0x40}) + control(kPing, "") +
                      frame({kCont, z.substr(10)}) + text("plain after");
  expect_same_in_any_pieces(bytes, {{Kind::ping, ""}, {Kind::text, msg}, {Kind::text, "plain after"}},
                            1 << 20, true);
  // Binary and empty messages too.
  expect_same_in_any_pieces(frame({kBinary, deflate_payload(std::string(100, '\0')), true, true, 0x40}),
                            {{Kind::binary, std::string(100, '\0')}}, 1 << 20, true);
  expect_same_in_any_pieces(frame({kText, deflate_payload(""), true, true, 0x40}), {{Kind::text, ""}},
                            1 << 20, true);
}

TEST(WsReader, CompressedMessageLimitsAndErrors) {
  // Small on the wire, over the limit once inflated.
  std::string z = deflate_payload(std::string(5000, 'a'));
  ASSERT_LT(z.size(), 1024u);
  EXPECT_EQ(feed_whole(frame({kText, z, true, true, 0x40}), 1024, true), std::vector<Got>{failure(1009)});
  EXPECT_EQ(feed_whole(frame({kText, deflate_payload(std::string(1024, 'a')), true, true, 0x40}), 1024, true),
            (std::vector<Got>{{Kind::text, std::string(1024, 'a')}}));
  // Invalid UTF-8 after inflating; data that does not inflate.
  EXPECT_EQ(feed_whole(frame({kText, deflate_payload("\xc3\x28"), true, true, 0x40}), 1024, true),
            std::vector<Got>{failure(1007)});
  EXPECT_EQ(feed_whole(frame({kText, "\xff\xff\xff\xff garbage", true, true, 0x40}), 1024, true),
            std::vector<Got>{failure(1007)});
  // Binary messages are not UTF-8 checked.
  EXPECT_EQ(feed_whole(frame({kBinary, deflate_payload("\xc3\x28"), true, true, 0x40}), 1024, true),
            (std::vector<Got>{{Kind::binary, "\xc3\x28"}}));
}

// ---- memory and failure -----------------------------------------------------------------------------------

TEST(WsReader, HoldsOnlyWhatIsIncompleteAndFreesItOnceHandedOut) {
  Reader r(1 << 20);
  EXPECT_EQ(feed(r, text("first part ", false)), std::vector<Got>{});
  EXPECT_EQ(r.buffered_bytes(), 11u);
  std::string rest = cont("and the rest");
  EXPECT_EQ(feed(r, rest.substr(0, 9)), std::vector<Got>{});
  EXPECT_EQ(r.buffered_bytes(), 11u + 3u);
  EXPECT_EQ(feed(r, rest.substr(9)), (std::vector<Got>{{Kind::text, "first part and the rest"}}));
  // The next call (here: no bytes at all) gives the buffer back.
  char* none = nullptr;
  std::size_t zero = 0;
  EXPECT_EQ(r.next(none, zero).kind, Kind::need_more);
  EXPECT_EQ(r.buffered_bytes(), 0u);
  // A control frame split across reads inside a fragmented message keeps the message's part.
  EXPECT_EQ(feed(r, text("abc", false)), std::vector<Got>{});
  std::string ping = control(kPing, "12345");
  EXPECT_EQ(feed(r, ping.substr(0, 8)), std::vector<Got>{});
  EXPECT_EQ(feed(r, ping.substr(8)), (std::vector<Got>{{Kind::ping, "12345"}}));
  EXPECT_EQ(r.next(none, zero).kind, Kind::need_more);
  EXPECT_EQ(r.buffered_bytes(), 3u);
  EXPECT_EQ(feed(r, cont("def")), (std::vector<Got>{{Kind::text, "abcdef"}}));
}

TEST(WsReader, StaysFailed) {
  Reader r(1024);
  EXPECT_EQ(feed(r, frame({kText, "x", true, false})), std::vector<Got>{failure(1002)});
  std::string more = text("ok");
  char* data = more.data();
  std::size_t size = more.size();
  auto res = r.next(data, size);
  EXPECT_EQ(res.kind, Kind::fail);
  EXPECT_EQ(res.code, 1002);
}

}  // namespace
}  // namespace aw::protocol
