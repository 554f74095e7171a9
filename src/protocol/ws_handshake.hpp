// The server's half of the WebSocket opening handshake (RFC 6455 §4.2) and of permessage-deflate
// negotiation (RFC 7692 §7.1): from the fields of an upgrade request, the HTTP answer to send. Refusals
// keep the statuses and words Boost.Beast gave before this replaced it (400, or 426 with
// Sec-WebSocket-Version: 13 for a version other than 13), in the JSON error body every HTTP error of the
// server has: code bad_handshake (400) or unsupported_websocket_version (426), the words as the message.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace aw::protocol {

// The request fields the handshake looks at; an absent header is nullopt.
struct UpgradeRequest {
  unsigned version = 11;  // HTTP/1.x: 10 or 11
  bool get = true;
  bool has_host = true;
  std::optional<std::string_view> connection;
  std::optional<std::string_view> upgrade;
  std::optional<std::string_view> key;         // Sec-WebSocket-Key
  std::optional<std::string_view> ws_version;  // Sec-WebSocket-Version
  std::string_view extensions;                 // every Sec-WebSocket-Extensions value, comma-joined
  std::string_view subprotocol;  // the one the server selects (Sec-WebSocket-Protocol); empty: none
};

struct HandshakeAnswer {
  bool accepted = false;
  bool deflate = false;         // permessage-deflate was agreed
  int deflate_window_bits = 0;  // ... with this server window (9..15 bits)
  std::string response;         // the whole HTTP response
  const char* error = nullptr;  // why it was refused
};

// `compression`: offer permessage-deflate to clients that ask for it (--compression).
HandshakeAnswer answer_upgrade(const UpgradeRequest& req, bool compression);

// A Sec-WebSocket-Key the server takes: the base64 of 16 bytes (RFC 6455 §4.1, §4.2.1), 24 characters.
bool valid_key(std::string_view key) noexcept;

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + the RFC's GUID)).
std::string sec_websocket_accept(std::string_view key);

// What permessage-deflate negotiation agreed: the Sec-WebSocket-Extensions answer (empty when no offer
// was acceptable) and the window the server compresses with.
struct DeflateAgreement {
  std::string extension;
  int server_window_bits = 15;
};

// The answer to the client's offers: the first permessage-deflate offer this server can honour, accepted
// with server_no_context_takeover (one compressed frame per event and window size serves every
// subscriber) and client_no_context_takeover (each client message inflates on its own, so an idle
// connection keeps no zlib state; RFC 7692 §7.1.1.2 lets the server add it). A server_max_window_bits of
// 9 to 15 is honoured and named back; 8 is declined (zlib's raw deflate has no 256-byte window).
DeflateAgreement negotiate_deflate(std::string_view offers);

// The raw 20-byte SHA-1 digest (FIPS 180-4) and standard base64 (RFC 4648 §4, padded), both from OpenSSL.
std::string sha1(std::string_view data);
std::string base64(std::string_view data);

}  // namespace aw::protocol
