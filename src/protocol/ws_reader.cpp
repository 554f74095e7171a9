#include "protocol/ws_reader.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstring>

namespace aw::protocol {
namespace {

constexpr std::uint8_t kContinuation = 0x0;
constexpr std::uint8_t kText = 0x1;
constexpr std::uint8_t kBinary = 0x2;
constexpr std::uint8_t kClose = 0x8;
constexpr std::uint8_t kPing = 0x9;
constexpr std::uint8_t kPong = 0xA;

// Deflate can make incompressible data slightly larger (5 bytes per stored block of up to 64 KiB):
// a compressed message may exceed the limit by this much and still inflate to no more than it.
std::uint64_t compressed_limit(std::uint64_t max) noexcept {
  std::uint64_t slack = (max >> 6) + 64;
  return max > UINT64_MAX - slack ? UINT64_MAX : max + slack;
}

// XORs `n` bytes with the 4-byte mask, starting at mask byte `pos` (updated), 8 bytes at a time.
void unmask(char* p, std::size_t n, const std::uint8_t (&mask)[4], std::uint8_t& pos) noexcept {
  std::size_t i = 0;
  for (; i < n && pos != 0; ++i, pos = (pos + 1) & 3) p[i] = static_cast<char>(p[i] ^ mask[pos]);
  if (n - i >= 8) {
    const std::uint8_t m8[8] = {mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3]};
    std::uint64_t m;
    std::memcpy(&m, m8, 8);
    for (; i + 8 <= n; i += 8) {
      std::uint64_t w;
      std::memcpy(&w, p + i, 8);
      w ^= m;
      std::memcpy(p + i, &w, 8);
    }
  }
  for (; i < n; ++i, pos = (pos + 1) & 3) p[i] = static_cast<char>(p[i] ^ mask[pos]);
}

enum class InflateStatus { ok, too_big, bad_data };

// Inflates one permessage-deflate message on its own (no context takeover): the sender stripped the
// 00 00 ff ff that ends its sync flush (RFC 7692 §7.2.2); it is put back here. The zlib state lives
// only for this call.
InflateStatus inflate_message(std::string_view in, std::uint64_t max, std::string& out) {
  z_stream zs{};
  if (inflateInit2(&zs, -15) != Z_OK) return InflateStatus::bad_data;
  static const unsigned char kTail[4] = {0x00, 0x00, 0xff, 0xff};
  out.resize(static_cast<std::size_t>(std::min<std::uint64_t>(max + 1, in.size() * 4 + 64)));
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  InflateStatus status = InflateStatus::ok;
  bool ended = false;
  auto run = [&](const unsigned char* p, std::size_t n) {
    zs.next_in = const_cast<Bytef*>(p);
    zs.avail_in = static_cast<uInt>(n);
    for (;;) {
      if (zs.avail_out == 0) {
        std::size_t used = out.size();
        if (used > max) return InflateStatus::too_big;
        std::size_t grown = static_cast<std::size_t>(std::min<std::uint64_t>(max + 1, used * 2));
        out.resize(grown);
        zs.next_out = reinterpret_cast<Bytef*>(out.data() + used);
        zs.avail_out = static_cast<uInt>(grown - used);
      }
      int rc = inflate(&zs, Z_SYNC_FLUSH);
      if (rc == Z_STREAM_END) {
        ended = true;  // a final block: whatever follows it is ignored
        return InflateStatus::ok;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) return InflateStatus::bad_data;
      if (zs.avail_out > 0) return zs.avail_in == 0 ? InflateStatus::ok : InflateStatus::bad_data;
    }
  };
  status = run(reinterpret_cast<const unsigned char*>(in.data()), in.size());
  if (status == InflateStatus::ok && !ended) status = run(kTail, sizeof kTail);
  std::size_t produced = out.size() - zs.avail_out;
  inflateEnd(&zs);
  if (status != InflateStatus::ok) return status;
  if (produced > max) return InflateStatus::too_big;
  out.resize(produced);
  return InflateStatus::ok;
}

}  // namespace

bool is_valid_close_code(std::uint16_t c) noexcept {
  return (c >= 1000 && c <= 1003) || (c >= 1007 && c <= 1011) || (c >= 3000 && c <= 4999);
}

Reader::Result Reader::fail(std::uint16_t code, const char* why) noexcept {
  failed_ = code;
  return {Kind::fail, {}, code, why};
}

void Reader::release() noexcept {
  switch (handed_) {
    case Handed::nothing:
      return;
    case Handed::message:
      held_.reset();
      break;
    case Handed::control:
      held_->resize(control_at_);
      break;
  }
  handed_ = Handed::nothing;
  // An idle connection holds no buffer.
  if (held_ && held_->empty()) held_.reset();
}

Reader::Result Reader::check_start() {
  // The first two bytes say almost everything: they are checked before the rest arrives.
  const std::uint8_t b0 = hdr_[0];
  const std::uint8_t b1 = hdr_[1];
  const std::uint8_t op = b0 & 0x0f;
  const std::uint8_t len7 = b1 & 0x7f;
  if (b0 & 0x30) return fail(close_code::protocol_error, "RSV2/RSV3 set");
  switch (op) {
    case kContinuation:
      if (msg_opcode_ == 0) return fail(close_code::protocol_error, "continuation without a message");
      break;
    case kText:
    case kBinary:
      if (msg_opcode_ != 0) return fail(close_code::protocol_error, "new message inside a fragmented one");
      break;
    case kClose:
    case kPing:
    case kPong:
      if (!(b0 & 0x80)) return fail(close_code::protocol_error, "fragmented control frame");
      if (len7 > 125) return fail(close_code::protocol_error, "control frame over 125 bytes");
      break;
    default:
      return fail(close_code::protocol_error, "unknown opcode");
  }
  // RSV1 marks a compressed message: only with permessage-deflate, only on its first frame.
  if ((b0 & 0x40) && (!deflate_ || (op != kText && op != kBinary)))
    return fail(close_code::protocol_error, "RSV1 set");
  if (!(b1 & 0x80)) return fail(close_code::protocol_error, "unmasked client frame");
  hdr_need_ = static_cast<std::uint8_t>(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + 4);
  return {};
}

Reader::Result Reader::read_length() {
  const std::uint8_t b0 = hdr_[0];
  const std::uint8_t len7 = hdr_[1] & 0x7f;
  std::uint64_t len = len7;
  if (len7 == 126) {
    len = (std::uint64_t{hdr_[2]} << 8) | hdr_[3];
    if (len < 126) return fail(close_code::protocol_error, "frame length not minimally encoded");
  } else if (len7 == 127) {
    len = 0;
    for (int i = 2; i < 10; ++i) len = (len << 8) | hdr_[i];
    if (len >> 63) return fail(close_code::protocol_error, "64-bit frame length with the top bit set");
    if (len <= 0xffff) return fail(close_code::protocol_error, "frame length not minimally encoded");
  }
  remaining_ = len;
  const std::uint8_t op = b0 & 0x0f;
  if (op >= kClose) return {};
  // A data frame: refused from its header, before any of it is buffered (msg_size_ never exceeds the
  // limit, so the subtraction cannot wrap).
  const bool first = op != kContinuation;
  const bool compressed = first ? (b0 & 0x40) != 0 : compressed_;
  const std::uint64_t limit = compressed ? compressed_limit(max_) : max_;
  if (len > limit - (first ? 0 : msg_size_)) return fail(close_code::too_big, "message too big");
  return {};
}

void Reader::start_frame() {
  const std::uint8_t b0 = hdr_[0];
  std::memcpy(mask_, hdr_ + hdr_len_ - 4, 4);
  mask_pos_ = 0;
  opcode_ = b0 & 0x0f;
  fin_ = (b0 & 0x80) != 0;
  hdr_len_ = 0;
  hdr_need_ = 2;
  in_payload_ = true;
  if (opcode_ >= kClose) {
    control_at_ = held_size();
    return;
  }
  if (opcode_ != kContinuation) {
    msg_opcode_ = opcode_;
    compressed_ = (b0 & 0x40) != 0;
    msg_size_ = 0;
    utf8_.reset();
  }
  msg_size_ += remaining_;
}

Reader::Result Reader::finish_control(std::string_view payload) {
  switch (opcode_) {
    case kPing:
      return {Kind::ping, payload};
    case kPong:
      return {Kind::pong, payload};
    default:
      break;
  }
  if (payload.empty()) return {Kind::close, {}, close_code::no_status};
  if (payload.size() == 1) return fail(close_code::protocol_error, "close frame payload of 1 byte");
  auto code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                         static_cast<unsigned char>(payload[1]));
  if (!is_valid_close_code(code)) return fail(close_code::protocol_error, "invalid close code");
  std::string_view reason = payload.substr(2);
  if (!is_valid_utf8(reason)) return fail(close_code::invalid_payload, "close reason is not UTF-8");
  return {Kind::close, reason, code};
}

Reader::Result Reader::finish_message(std::string_view payload) {
  const bool text = msg_opcode_ == kText;
  const bool compressed = compressed_;
  msg_opcode_ = 0;
  compressed_ = false;
  msg_size_ = 0;
  if (compressed) {
    std::string out;
    switch (inflate_message(payload, max_, out)) {
      case InflateStatus::ok:
        break;
      case InflateStatus::too_big:
        return fail(close_code::too_big, "message too big");
      case InflateStatus::bad_data:
        return fail(close_code::invalid_payload, "bad compressed data");
    }
    if (text && !is_valid_utf8(out)) return fail(close_code::invalid_payload, "invalid UTF-8");
    held_ = std::make_unique<std::string>(std::move(out));
    handed_ = Handed::message;
    payload = *held_;
  } else if (text && !utf8_.complete()) {
    return fail(close_code::invalid_payload, "invalid UTF-8");
  }
  return {text ? Kind::text : Kind::binary, payload};
}

Reader::Result Reader::next(char*& data, std::size_t& size) {
  if (failed_) return {Kind::fail, {}, failed_, "read after a failure"};
  release();
  for (;;) {
    if (!in_payload_) {
      while (hdr_len_ < hdr_need_) {
        if (size == 0) return {};
        hdr_[hdr_len_++] = static_cast<std::uint8_t>(*data++);
        --size;
        if (hdr_len_ == 2)
          if (Result r = check_start(); r.kind != Kind::need_more) return r;
        // The length is known before the mask arrives: check it at once.
        if (hdr_len_ == hdr_need_ - 4)
          if (Result r = read_length(); r.kind != Kind::need_more) return r;
      }
      start_frame();
    }

    const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, size));
    if (take == 0 && remaining_ > 0) return {};
    unmask(data, take, mask_, mask_pos_);
    std::string_view chunk(data, take);
    data += take;
    size -= take;
    remaining_ -= take;

    if (opcode_ >= kClose) {
      const bool whole_here = remaining_ == 0 && held_size() == control_at_;
      if (!whole_here) hold().append(chunk);
      if (remaining_ > 0) return {};
      in_payload_ = false;
      if (whole_here) return finish_control(chunk);
      handed_ = Handed::control;
      return finish_control(std::string_view(*held_).substr(control_at_));
    }

    if (msg_opcode_ == kText && !compressed_ && !utf8_.feed(chunk))
      return fail(close_code::invalid_payload, "invalid UTF-8");
    // A whole unfragmented message in this read is handed out where it lies, without a copy.
    const bool whole_here = remaining_ == 0 && fin_ && held_size() == 0 && take == msg_size_;
    if (!whole_here) hold().append(chunk);
    if (remaining_ > 0) return {};
    in_payload_ = false;
    if (!fin_) continue;
    if (whole_here) return finish_message(chunk);
    handed_ = Handed::message;
    return finish_message(*held_);
  }
}

}  // namespace aw::protocol
