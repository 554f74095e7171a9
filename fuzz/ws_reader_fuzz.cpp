// The WebSocket reader (client frames): the same bytes fed whole and cut into random slices give the
// same messages, control frames and failure; what it hands out respects the limits (message size,
// UTF-8 in text and close reasons, 125-byte control payloads, valid close codes); what it holds stays
// under the message limit; once failed it stays failed. The UTF-8 validator behind it agrees with a
// plain decoder on the same bytes, whole and fed in slices.
#include <string>
#include <vector>

#include "core/utf8.hpp"
#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "protocol/ws_reader.hpp"
#include "utf8_reference.hpp"

namespace {

using aw::protocol::Reader;

struct Seen {
  Reader::Kind kind;
  std::string payload;
  std::uint16_t code;
  bool operator==(const Seen&) const = default;
};

// Everything the reader yields for `bytes` fed in pieces of the given sizes, up to and with a failure.
std::vector<Seen> read_all(const std::string& bytes, const std::vector<std::size_t>& pieces,
                           std::uint64_t max, bool deflate) {
  Reader reader(max, deflate);
  // Held: a message's pieces (compressed ones may exceed the limit by deflate's slack) and a control frame.
  const std::uint64_t max_held = max + (max >> 6) + 64 + 125;
  std::vector<Seen> seen;
  std::size_t at = 0;
  for (std::size_t n : pieces) {
    std::string piece = bytes.substr(at, n);  // its own storage: the reader unmasks in place
    at += n;
    char* data = piece.data();
    std::size_t size = piece.size();
    for (;;) {
      Reader::Result r = reader.next(data, size);
      FUZZ_CHECK(reader.buffered_bytes() <= max_held);
      if (r.kind == Reader::Kind::need_more) {
        FUZZ_CHECK(size == 0);
        break;
      }
      seen.push_back({r.kind, std::string(r.payload), r.code});
      switch (r.kind) {
        case Reader::Kind::text:
          FUZZ_CHECK(aw::fuzz::reference_utf8(r.payload));
          [[fallthrough]];
        case Reader::Kind::binary:
          FUZZ_CHECK(r.payload.size() <= max);
          break;
        case Reader::Kind::ping:
        case Reader::Kind::pong:
          FUZZ_CHECK(r.payload.size() <= 125);
          break;
        case Reader::Kind::close:
          FUZZ_CHECK(r.payload.size() <= 123);
          FUZZ_CHECK(aw::fuzz::reference_utf8(r.payload));
          FUZZ_CHECK(r.code == aw::protocol::close_code::no_status ||
                     aw::protocol::is_valid_close_code(r.code));
          break;
        case Reader::Kind::fail: {
          FUZZ_CHECK(r.error != nullptr);
          FUZZ_CHECK(r.code == aw::protocol::close_code::protocol_error ||
                     r.code == aw::protocol::close_code::invalid_payload ||
                     r.code == aw::protocol::close_code::policy ||
                     r.code == aw::protocol::close_code::too_big);
          char* none = nullptr;
          std::size_t zero = 0;
          Reader::Result again = reader.next(none, zero);
          FUZZ_CHECK(again.kind == Reader::Kind::fail && again.code == r.code);
          return seen;
        }
        case Reader::Kind::need_more:
          break;
      }
    }
  }
  return seen;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  aw::fuzz::FuzzInput in(data, size);
  const bool deflate = in.flag();
  const std::uint64_t max = in.pick<std::uint64_t>({0, 1, 16, 125, 126, 1000, 65536, 1 << 20});
  const std::uint32_t seed = in.u32();
  const std::uint8_t max_piece = static_cast<std::uint8_t>(1 + in.byte() % 32);
  const std::string bytes = in.rest();

  auto whole = read_all(bytes, {bytes.size()}, max, deflate);
  auto sliced = read_all(bytes, aw::fuzz::random_slices(bytes.size(), seed, max_piece), max, deflate);
  FUZZ_CHECK(whole == sliced);
  auto bytewise = read_all(bytes, std::vector<std::size_t>(bytes.size(), 1), max, deflate);
  FUZZ_CHECK(whole == bytewise);

  const bool valid = aw::fuzz::reference_utf8(bytes);
  FUZZ_CHECK(aw::is_valid_utf8(bytes) == valid);
  aw::Utf8Validator incremental;
  bool fed = true;
  std::size_t at = 0;
  for (std::size_t n : aw::fuzz::random_slices(bytes.size(), seed, max_piece)) {
    fed = incremental.feed(std::string_view(bytes).substr(at, n));
    at += n;
    if (!fed) break;
  }
  FUZZ_CHECK((fed && incremental.complete()) == valid);
  return 0;
}
