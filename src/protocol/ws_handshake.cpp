#include "protocol/ws_handshake.hpp"

#include <openssl/evp.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include "protocol/json_span.hpp"

namespace aw::protocol {
namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const std::string kServerHeader = std::string("Server: agentwire/") + AGENTWIRE_VERSION + "\r\n";

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) noexcept {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits on `sep` outside double quotes.
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  bool quoted = false;
  std::size_t start = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"') quoted = !quoted;
    if (s[i] == sep && !quoted) {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  out.push_back(trim(s.substr(start)));
  return out;
}

// A comma-separated token list (Connection, Upgrade) containing `token`, case-insensitively.
bool has_token(std::string_view list, std::string_view token) {
  for (std::string_view t : split(list, ','))
    if (iequals(t, token)) return true;
  return false;
}

// A window-bits value: 8..15, optionally quoted.
std::optional<int> window_bits(std::string_view v) {
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  if (v.empty() || v.size() > 2 || v[0] == '0') return std::nullopt;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  if (n < 8 || n > 15) return std::nullopt;
  return n;
}

// A refusal as every HTTP error of the server answers: a JSON body {"error": {"code", "message"}}.
std::string refusal(unsigned version, int status, std::string_view reason, std::string_view code,
                    std::string_view message, bool want_version) {
  std::string body = "{\"error\":{\"code\":";
  append_quoted(body, code);
  body.append(",\"message\":");
  append_quoted(body, message);
  body.append("}}");
  std::string out = version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out.append(std::to_string(status)).append(" ").append(reason).append("\r\n");
  out.append(kServerHeader);
  if (want_version) out.append("Sec-WebSocket-Version: 13\r\n");
  out.append("Content-Type: application/json\r\n");
  out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  out.append("Connection: close\r\n\r\n");
  out.append(body);
  return out;
}

constexpr std::string_view kBase64Alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

// Digest and encoding from OpenSSL rather than our own: never hand-written crypto.
std::string sha1(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha1(), nullptr) != 1 || size != 20)
    throw std::runtime_error("SHA-1 is not available from OpenSSL");
  return std::string(reinterpret_cast<const char*>(digest), size);
}

std::string base64(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');  // EVP_EncodeBlock writes a final NUL
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(data.data()), static_cast<int>(data.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

bool valid_key(std::string_view key) noexcept {
  // 16 bytes are 22 base64 digits and "==" (RFC 4648 §4); the last digit carries 2 bits and 4 zero
  // bits, so it is one of A, Q, g, w (RFC 4648 §3.5: a canonical encoding).
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (std::size_t i = 0; i < 22; ++i) {
    std::size_t digit = kBase64Alphabet.find(key[i]);
    if (digit == std::string_view::npos) return false;
    if (i == 21 && (digit & 0x0f) != 0) return false;
  }
  return true;
}

std::string sec_websocket_accept(std::string_view key) {
  std::string input(key);
  input.append(kGuid);
  return base64(sha1(input));
}

DeflateAgreement negotiate_deflate(std::string_view offers) {
  if (trim(offers).empty()) return {};
  for (std::string_view offer : split(offers, ',')) {
    std::vector<std::string_view> parts = split(offer, ';');
    if (!iequals(parts[0], "permessage-deflate")) continue;
    bool ok = true;
    bool server_nct = false, client_nct = false, server_bits = false, client_bits = false;
    int window = 15;
    for (std::size_t i = 1; i < parts.size() && ok; ++i) {
      std::string_view p = parts[i];
      std::size_t eq = p.find('=');
      std::string_view name = trim(p.substr(0, eq));
      std::optional<std::string_view> value;
      if (eq != std::string_view::npos) value = trim(p.substr(eq + 1));
      // Each parameter at most once, with a valid value, or the offer is declined (RFC 7692 §7.1).
      if (iequals(name, "server_no_context_takeover")) {
        ok = !value && !std::exchange(server_nct, true);
      } else if (iequals(name, "client_no_context_takeover")) {
        ok = !value && !std::exchange(client_nct, true);
      } else if (iequals(name, "server_max_window_bits")) {
        // zlib's raw deflate cannot use an 8-bit window (it would silently use 9): such an offer is declined.
        std::optional<int> bits = value ? window_bits(*value) : std::nullopt;
        ok = bits && *bits >= 9 && !std::exchange(server_bits, true);
        if (ok) window = *bits;
      } else if (iequals(name, "client_max_window_bits")) {
        // We inflate with the full window, which reads anything smaller: no need to answer it.
        ok = (!value || window_bits(*value)) && !std::exchange(client_bits, true);
      } else {
        ok = false;
      }
    }
    if (!ok) continue;
    DeflateAgreement agreed;
    agreed.extension = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    agreed.server_window_bits = window;
    // An offer that names the server's window is accepted by naming it back (RFC 7692 §7.1.2.1).
    if (server_bits) agreed.extension.append("; server_max_window_bits=").append(std::to_string(window));
    return agreed;
  }
  return {};
}

HandshakeAnswer answer_upgrade(const UpgradeRequest& req, bool compression) {
  HandshakeAnswer a;
  auto refuse = [&](const char* why, int status = 400) {
    a.error = why;
    a.response = status == 400 ? refusal(req.version, 400, "Bad Request", "bad_handshake", why, false)
                               : refusal(req.version, status, "Upgrade Required",
                                         "unsupported_websocket_version", why, true);
    return a;
  };
  // The same checks, in the same order and with the same words, as Beast's websocket accept.
  if (req.version != 11) return refuse("The WebSocket handshake was not HTTP/1.1");
  if (!req.get) return refuse("The WebSocket handshake method was not GET");
  if (!req.has_host) return refuse("The WebSocket handshake Host field is missing");
  if (!req.connection) return refuse("The WebSocket handshake Connection field is missing");
  if (!has_token(*req.connection, "upgrade"))
    return refuse("The WebSocket handshake Connection field is missing the upgrade token");
  if (!req.upgrade) return refuse("The WebSocket handshake Upgrade field is missing");
  if (!has_token(*req.upgrade, "websocket"))
    return refuse("The WebSocket handshake Upgrade field is missing the websocket token");
  if (!req.key) return refuse("The WebSocket handshake Sec-WebSocket-Key field is missing");
  if (!valid_key(*req.key)) return refuse("The WebSocket handshake Sec-WebSocket-Key field is invalid");
  if (!req.ws_version) return refuse("The WebSocket handshake Sec-WebSocket-Version field is missing");
  if (*req.ws_version != "13")
    return refuse("The WebSocket handshake Sec-WebSocket-Version field is invalid", 426);

  DeflateAgreement agreed = compression ? negotiate_deflate(req.extensions) : DeflateAgreement{};
  const std::string& extension = agreed.extension;
  a.accepted = true;
  a.deflate = !extension.empty();
  a.deflate_window_bits = a.deflate ? agreed.server_window_bits : 0;
  a.response.reserve(256);
  a.response.append("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
  a.response.append("Sec-WebSocket-Accept: ").append(sec_websocket_accept(*req.key)).append("\r\n");
  if (a.deflate) a.response.append("Sec-WebSocket-Extensions: ").append(extension).append("\r\n");
  if (!req.subprotocol.empty())
    a.response.append("Sec-WebSocket-Protocol: ").append(req.subprotocol).append("\r\n");
  a.response.append(kServerHeader).append("\r\n");
  return a;
}

}  // namespace aw::protocol
