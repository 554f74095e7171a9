// The opening handshake: the accept key (RFC 6455's own example), SHA-1 and base64 against their
// standards' vectors, the refusals Beast used to give (as JSON errors), and permessage-deflate negotiation.
#include "protocol/ws_handshake.hpp"

#include <gtest/gtest.h>

#include "protocol/ws_control.hpp"

namespace aw::protocol {
namespace {

std::string hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xf]);
  }
  return out;
}

UpgradeRequest valid_request() {
  UpgradeRequest r;
  r.connection = "keep-alive, Upgrade";
  r.upgrade = "websocket";
  r.key = "dGhlIHNhbXBsZSBub25jZQ==";
  r.ws_version = "13";
  return r;
}

TEST(WsHandshake, Sha1AndBase64Vectors) {
  EXPECT_EQ(hex(sha1("")), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  EXPECT_EQ(hex(sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  EXPECT_EQ(hex(sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
  EXPECT_EQ(hex(sha1(std::string(1000000, 'a'))), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foob"), "Zm9vYg==");
  EXPECT_EQ(base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
}

TEST(WsHandshake, AcceptKeyOfTheRfcExample) {
  EXPECT_EQ(sec_websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WsHandshake, Accepts) {
  HandshakeAnswer a = answer_upgrade(valid_request(), false);
  ASSERT_TRUE(a.accepted);
  EXPECT_FALSE(a.deflate);
  EXPECT_EQ(a.response.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
  EXPECT_NE(a.response.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), std::string::npos);
  EXPECT_NE(a.response.find("\r\nUpgrade: websocket\r\n"), std::string::npos);
  EXPECT_NE(a.response.find(std::string("\r\nServer: agentwire/") + AGENTWIRE_VERSION + "\r\n"),
            std::string::npos);
  EXPECT_EQ(a.response.find("Sec-WebSocket-Extensions"), std::string::npos);
  EXPECT_EQ(a.response.substr(a.response.size() - 4), "\r\n\r\n");
  // Tokens are case-insensitive and may come in lists.
  UpgradeRequest r = valid_request();
  r.connection = "UPGRADE";
  r.upgrade = "foo, WebSocket";
  EXPECT_TRUE(answer_upgrade(r, false).accepted);
}

TEST(WsHandshake, RefusalsAreBeastsAnswersAsJsonErrors) {
  auto refused = [](UpgradeRequest r, int status, std::string_view message) {
    HandshakeAnswer a = answer_upgrade(r, true);
    EXPECT_FALSE(a.accepted);
    EXPECT_EQ(a.response.rfind("HTTP/1.1 " + std::to_string(status) + " ", 0), 0u) << a.response;
    const std::string code = status == 400 ? "bad_handshake" : "unsupported_websocket_version";
    const std::string body =
        "{\"error\":{\"code\":\"" + code + "\",\"message\":\"" + std::string(message) + "\"}}";
    EXPECT_EQ(a.response.substr(a.response.size() - body.size()), body);
    EXPECT_NE(a.response.find("Content-Length: " + std::to_string(body.size()) + "\r\n"), std::string::npos);
    EXPECT_NE(a.response.find("\r\nContent-Type: application/json\r\n"), std::string::npos);
    EXPECT_STREQ(a.error, std::string(message).c_str());
    return a.response;
  };
  UpgradeRequest r = valid_request();
  r.key.reset();
  refused(r, 400, "The WebSocket handshake Sec-WebSocket-Key field is missing");
  r = valid_request();
  r.key = "dGhlIHNhbXBsZSBub25jZQ==x";
  refused(r, 400, "The WebSocket handshake Sec-WebSocket-Key field is invalid");
  r = valid_request();
  r.ws_version.reset();
  refused(r, 400, "The WebSocket handshake Sec-WebSocket-Version field is missing");
  r = valid_request();
  r.ws_version = "8";
  std::string res = refused(r, 426, "The WebSocket handshake Sec-WebSocket-Version field is invalid");
  EXPECT_NE(res.find("\r\nSec-WebSocket-Version: 13\r\n"), std::string::npos);
  r = valid_request();
  r.connection = "keep-alive";
  refused(r, 400, "The WebSocket handshake Connection field is missing the upgrade token");
  r = valid_request();
  r.upgrade = "h2c";
  refused(r, 400, "The WebSocket handshake Upgrade field is missing the websocket token");
  r = valid_request();
  r.has_host = false;
  refused(r, 400, "The WebSocket handshake Host field is missing");
  r = valid_request();
  r.get = false;
  refused(r, 400, "The WebSocket handshake method was not GET");
  r = valid_request();
  r.version = 10;
  EXPECT_EQ(answer_upgrade(r, false).response.rfind("HTTP/1.0 400 ", 0), 0u);
}

// RFC 6455 §4.2.1: the key is the base64 of 16 bytes; anything else is refused with 400.
TEST(WsHandshake, KeyMustBeBase64OfSixteenBytes) {
  EXPECT_TRUE(valid_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(valid_key(base64(std::string(16, '\xff'))));
  EXPECT_TRUE(valid_key(base64(std::string(16, '\0'))));
  const char* bad[] = {
      "",
      "x",
      "dGhlIHNhbXBsZSBub25jZQ=",                           // 23 characters
      "dGhlIHNhbXBsZSBub25jZQ==x",                         // 25
      "dGhlIHNhbXBsZSBub25jZQ",                            // no padding
      "dGhlIHNhbXBsZSBub25jZQAA",                          // no padding, 24 characters
      "dGhlIHNhbXBsZSBub25j",                              // 15 bytes ("dGhlIHNhbXBsZSBub25j" is 20 digits)
      "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",  // 32 bytes
      "dGhlIHNhbXBsZSBub25jZR==",                          // pad bits set: not the encoding of any 16 bytes
      "dGhlIHNhbXBsZSBub25jZ===",                          // padding where a digit belongs
      "dGhlIHNhbXBs ZSBub25jZQ==",                         // a space inside
      "dGhlIHNhbXBsZSBub25jZQ-=",                          // URL-safe alphabet is not base64
      "dGhl_HNhbXBsZSBub25jZQ==",
      "MTIzNDU2Nzg5MDEyMzQ1Njc=",  // base64 of 17 bytes
      "MTIzNDU2Nzg5MDEyMzQ1Ng",    // 16 bytes but unpadded
  };
  for (const char* key : bad) EXPECT_FALSE(valid_key(key)) << key;
  EXPECT_FALSE(valid_key(std::string_view("dGhlIHNhbXBsZSBub25jZQ\0=", 24)));

  UpgradeRequest r = valid_request();
  r.key = "not base64 at all!";
  HandshakeAnswer a = answer_upgrade(r, false);
  EXPECT_FALSE(a.accepted);
  EXPECT_EQ(a.response.rfind("HTTP/1.1 400 ", 0), 0u) << a.response;
  EXPECT_STREQ(a.error, "The WebSocket handshake Sec-WebSocket-Key field is invalid");
  r.key = "AAAAAAAAAAAAAAAAAAAAAA==";
  EXPECT_TRUE(answer_upgrade(r, false).accepted);
}

TEST(WsHandshake, DeflateNegotiation) {
  const std::string kAnswer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
  auto answer = [](std::string_view offers) { return negotiate_deflate(offers).extension; };
  // What browsers, Python websockets and Node ws offer.
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits"), kAnswer);
  EXPECT_EQ(answer("permessage-deflate"), kAnswer);
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=10; server_no_context_takeover"), kAnswer);
  EXPECT_EQ(answer("permessage-deflate; client_no_context_takeover"), kAnswer);
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=15"), kAnswer + "; server_max_window_bits=15");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=\"15\""),
            kAnswer + "; server_max_window_bits=15");
  EXPECT_EQ(negotiate_deflate("permessage-deflate").server_window_bits, 15);
  // A smaller server window, 9 to 14 bits, is honoured and named back (what Autobahn 13.3 and 13.5 ask).
  for (int bits = 9; bits <= 14; ++bits) {
    DeflateAgreement a =
        negotiate_deflate("permessage-deflate; server_max_window_bits=" + std::to_string(bits));
    EXPECT_EQ(a.extension, kAnswer + "; server_max_window_bits=" + std::to_string(bits));
    EXPECT_EQ(a.server_window_bits, bits);
  }
  // 8 bits cannot be honoured (zlib's raw deflate would use 9): that offer is declined, the next one taken.
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=8"), "");
  DeflateAgreement next = negotiate_deflate(
      "permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=9");
  EXPECT_EQ(next.extension, kAnswer + "; server_max_window_bits=9");
  EXPECT_EQ(next.server_window_bits, 9);
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=8, permessage-deflate"), kAnswer);
  // Malformed offers are declined.
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits"), "");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=16"), "");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=09"), "");
  EXPECT_EQ(answer("permessage-deflate; server_max_window_bits=10; server_max_window_bits=10"), "");
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=7"), "");
  EXPECT_EQ(answer("permessage-deflate; client_max_window_bits=16"), "");
  EXPECT_EQ(answer("permessage-deflate; server_no_context_takeover; server_no_context_takeover"), "");
  EXPECT_EQ(answer("permessage-deflate; server_no_context_takeover=1"), "");
  EXPECT_EQ(answer("permessage-deflate; unknown_param"), "");
  EXPECT_EQ(answer("x-webkit-deflate-frame"), "");
  EXPECT_EQ(answer(""), "");
  EXPECT_EQ(answer("foo, permessage-deflate"), kAnswer);

  UpgradeRequest r = valid_request();
  r.extensions = "permessage-deflate; client_max_window_bits";
  HandshakeAnswer on = answer_upgrade(r, true);
  EXPECT_TRUE(on.deflate);
  EXPECT_EQ(on.deflate_window_bits, 15);
  r.extensions = "permessage-deflate; server_max_window_bits=11";
  EXPECT_EQ(answer_upgrade(r, true).deflate_window_bits, 11);
  r.extensions = "permessage-deflate; client_max_window_bits";
  EXPECT_NE(on.response.find("\r\nSec-WebSocket-Extensions: " + kAnswer + "\r\n"), std::string::npos);
  HandshakeAnswer off = answer_upgrade(r, false);
  EXPECT_FALSE(off.deflate);
  EXPECT_EQ(off.response.find("Sec-WebSocket-Extensions"), std::string::npos);
}

TEST(WsControl, Frames) {
  EXPECT_EQ(make_frame(opcode::pong, "hi"), std::string("\x8a\x02hi", 4));
  EXPECT_EQ(make_frame(opcode::binary, std::string(200, 'b')).substr(0, 4),
            std::string("\x82\x7e\x00\xc8", 4));
  EXPECT_EQ(make_close_frame(1009), std::string("\x88\x02\x03\xf1", 4));
  EXPECT_EQ(make_close_frame(1005), std::string("\x88\x00", 2));
  EXPECT_EQ(make_close_frame(1001, "bye"), std::string("\x88\x05\x03\xe9"
                                                       "bye",
                                                       7));
  // A long reason is cut to fit a control frame, not in the middle of a character.
  std::string reason(122, 'r');
  reason += "\xc3\xa9";
  std::string f = make_close_frame(1000, reason);
  EXPECT_EQ(static_cast<unsigned char>(f[1]), 2 + 122);
  // A character that ends exactly at the limit stays.
  std::string fits(121, 'r');
  fits += "\xc3\xa9";
  EXPECT_EQ(static_cast<unsigned char>(make_close_frame(1000, fits + "tail")[1]), 2 + 123);
  EXPECT_EQ(kEmptyPingFrame, std::string("\x89\x00", 2));
}

}  // namespace
}  // namespace aw::protocol
