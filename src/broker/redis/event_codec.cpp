#include "broker/redis/event_codec.hpp"

#include "broker/redis/reply.hpp"
#include "protocol/envelope.hpp"

namespace aw::broker::redis {
namespace {

// "<n1> <n2> ...\n" at the front of `in` as `count` numbers, dropped from it; false when the line is
// not exactly that.
bool numbers_line(std::string_view& in, std::uint64_t* out, int count) {
  auto nl = in.find('\n');
  if (nl == std::string_view::npos) return false;
  std::string_view head = in.substr(0, nl);
  in.remove_prefix(nl + 1);
  for (int k = 0; k < count; ++k) {
    auto sp = head.find(' ');
    if (!parse_number(head.substr(0, sp), out[k])) return false;
    head = sp == std::string_view::npos ? std::string_view() : head.substr(sp + 1);
  }
  return head.empty();
}

// Lengths that fit in what is left (each checked alone first, so that their sum cannot wrap).
bool fits(const std::uint64_t* len, int count, std::size_t left) {
  std::uint64_t sum = 0;
  for (int k = 0; k < count; ++k) {
    if (len[k] > left) return false;
    sum += len[k];
  }
  return sum <= left;
}

std::string_view take(std::string_view& in, std::uint64_t n) {
  std::string_view part = in.substr(0, n);
  in.remove_prefix(part.size());
  return part;
}

}  // namespace

bool decode_event(std::string_view agent_id, std::string_view& encoded, DecodedEvent& out) {
  // seq, state version, ts, mergeable, #type, #key, #data, records
  std::uint64_t f[8];
  if (!numbers_line(encoded, f, 8) || !fits(f + 4, 3, encoded.size())) return false;
  std::string_view type = take(encoded, f[4]);
  std::string_view idem = take(encoded, f[5]);
  std::string_view data = take(encoded, f[6]);
  out.event = protocol::make_event(agent_id, f[0], type, static_cast<std::int64_t>(f[2]), data,
                                   std::string(idem), f[3] == 1);
  out.change = StateChange{};
  out.change.seq = f[0];
  out.change.version = f[1];
  for (std::uint64_t r = 0; r < f[7]; ++r) {
    std::uint64_t len[3];
    if (!numbers_line(encoded, len, 3) || !fits(len, 3, encoded.size())) return false;
    store::StateRecord& rec = out.change.records.emplace_back();
    rec.agent_id = std::string(agent_id);
    rec.kind = std::string(take(encoded, len[0]));
    rec.id = std::string(take(encoded, len[1]));
    rec.json = std::string(take(encoded, len[2]));
  }
  return true;
}

}  // namespace aw::broker::redis
