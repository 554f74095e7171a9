// Small helpers for the agentwire load generator: clock, cheap scanning, SHA-1/base64 for the
// WebSocket handshake. Nothing here allocates on the hot path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

namespace awb {

inline int64_t mono_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

inline const char* find(const char* p, const char* end, std::string_view needle) {
  if (p >= end) return nullptr;
  return static_cast<const char*>(memmem(p, size_t(end - p), needle.data(), needle.size()));
}

inline const char* skip_ws(const char* p, const char* end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) ++p;
  return p;
}

// Parses an unsigned decimal at p (after optional whitespace). Returns the end or nullptr.
inline const char* parse_u64(const char* p, const char* end, uint64_t& out) {
  p = skip_ws(p, end);
  if (p >= end || *p < '0' || *p > '9') return nullptr;
  uint64_t v = 0;
  while (p < end && *p >= '0' && *p <= '9') v = v * 10 + uint64_t(*p++ - '0');
  out = v;
  return p;
}

// Finds `key` (e.g. "\"seq\":") and parses the unsigned number after it.
inline const char* find_u64(const char* p, const char* end, std::string_view key, uint64_t& out) {
  const char* k = find(p, end, key);
  if (!k) return nullptr;
  return parse_u64(k + key.size(), end, out);
}

// Finds `key` (e.g. "\"epoch\":") and returns the string value after it (no unescaping).
inline bool find_str(const char* p, const char* end, std::string_view key, std::string_view& out) {
  const char* k = find(p, end, key);
  if (!k) return false;
  const char* q = skip_ws(k + key.size(), end);
  if (q >= end || *q != '"') return false;
  ++q;
  const char* e = static_cast<const char*>(memchr(q, '"', size_t(end - q)));
  if (!e) return false;
  out = std::string_view(q, size_t(e - q));
  return true;
}

inline int u64_to_str(uint64_t v, char* buf) {  // buf >= 20 bytes
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = char('0' + v % 10);
    v /= 10;
  } while (v);
  for (int i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  return n;
}

inline bool ci_prefix(const char* p, const char* end, std::string_view prefix) {
  if (size_t(end - p) < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    char c = p[i];
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
    if (c != prefix[i]) return false;
  }
  return true;
}

// xorshift64* — masks and handshake keys only need to be unpredictable-ish, not secure.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed ? seed : 0x9E3779B97F4A7C15ull) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
};

inline std::string base64(const uint8_t* d, size_t n) {
  static const char* tbl = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((n + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t(d[i]) << 16) | (uint32_t(d[i + 1]) << 8) | d[i + 2];
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += tbl[v & 63];
  }
  if (i < n) {
    uint32_t v = uint32_t(d[i]) << 16;
    if (i + 1 < n) v |= uint32_t(d[i + 1]) << 8;
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += (i + 1 < n) ? tbl[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// Plain SHA-1 (only used for Sec-WebSocket-Accept, inputs are 60 bytes).
inline void sha1(const uint8_t* data, size_t len, uint8_t out[20]) {
  uint32_t h[5] = {0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u, 0xC3D2E1F0u};
  auto rol = [](uint32_t x, int k) { return (x << k) | (x >> (32 - k)); };
  uint64_t bits = uint64_t(len) * 8;
  size_t total = ((len + 8) / 64 + 1) * 64;
  uint8_t block[64];
  for (size_t off = 0; off < total; off += 64) {
    for (size_t i = 0; i < 64; ++i) {
      size_t idx = off + i;
      uint8_t b;
      if (idx < len)
        b = data[idx];
      else if (idx == len)
        b = 0x80;
      else if (idx >= total - 8)
        b = uint8_t(bits >> (8 * (total - 1 - idx)));
      else
        b = 0;
      block[i] = b;
    }
    uint32_t w[80];
    for (int i = 0; i < 16; ++i)
      w[i] = (uint32_t(block[4 * i]) << 24) | (uint32_t(block[4 * i + 1]) << 16) |
             (uint32_t(block[4 * i + 2]) << 8) | uint32_t(block[4 * i + 3]);
    for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      uint32_t f, k;
      if (i < 20) {
        f = (b & c) | (~b & d);
        k = 0x5A827999u;
      } else if (i < 40) {
        f = b ^ c ^ d;
        k = 0x6ED9EBA1u;
      } else if (i < 60) {
        f = (b & c) | (b & d) | (c & d);
        k = 0x8F1BBCDCu;
      } else {
        f = b ^ c ^ d;
        k = 0xCA62C1D6u;
      }
      uint32_t t = rol(a, 5) + f + e + k + w[i];
      e = d;
      d = c;
      c = rol(b, 30);
      b = a;
      a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
  }
  for (int i = 0; i < 5; ++i) {
    out[4 * i] = uint8_t(h[i] >> 24);
    out[4 * i + 1] = uint8_t(h[i] >> 16);
    out[4 * i + 2] = uint8_t(h[i] >> 8);
    out[4 * i + 3] = uint8_t(h[i]);
  }
}

inline std::string ws_accept_for(const std::string& key) {
  std::string s = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  uint8_t dig[20];
  sha1(reinterpret_cast<const uint8_t*>(s.data()), s.size(), dig);
  return base64(dig, 20);
}

}  // namespace awb
