#include "protocol/envelope.hpp"

#include <algorithm>
#include <cstdio>

#include "core/clock.hpp"
#include "protocol/json_span.hpp"
#include "protocol/ws_frame.hpp"

namespace aw::protocol {
namespace {

void append_head(std::string& out, std::string_view type, std::string_view agent_id) {
  out.append("{\"type\":");
  append_quoted(out, type);
  out.append(",\"agent_id\":");
  append_quoted(out, agent_id);
}

void append_ts(std::string& out, std::int64_t ts_ms) {
  out.append(",\"ts\":\"");
  append_timestamp(out, ts_ms);
  out.push_back('"');
}

// Milliseconds as a JSON number of seconds: 30000 -> 30, 500 -> 0.5, 1250 -> 1.25.
std::string seconds(std::int64_t ms) {
  std::string out = std::to_string(ms / 1000);
  if (std::int64_t frac = ms % 1000; frac != 0) {
    char buf[8];
    std::snprintf(buf, sizeof buf, ".%03lld", static_cast<long long>(frac));
    std::string f(buf);
    while (f.back() == '0') f.pop_back();
    out += f;
  }
  return out;
}

}  // namespace

namespace {

// Appends `name` quoted and returns where its own spelling lies in `out`: inside the quotes, unless
// escaping changed it (the caller then keeps the spelling elsewhere; size 0 here says so).
TextSpan append_name(std::string& out, std::string_view name) {
  const std::size_t at = out.size() + 1;
  append_quoted(out, name);
  if (out.size() - at - 1 != name.size()) return TextSpan{0, 0};
  return TextSpan{static_cast<std::uint32_t>(at), static_cast<std::uint32_t>(name.size())};
}

constexpr std::size_t kScratchKeepBytes = 64 * 1024;

EventPtr build_event(std::string_view agent_id, std::uint64_t first_seq, std::uint64_t seq,
                     std::string_view type, std::int64_t ts_ms, std::string_view data,
                     std::string idempotency_key, bool mergeable) {
  // The envelope is put together in a scratch buffer first, as the frame header's size depends on its
  // length; the event then takes one exact allocation for all its bytes.
  thread_local std::string body;
  body.clear();
  body.append("{\"type\":");
  TextSpan type_at = append_name(body, type);
  body.append(",\"agent_id\":");
  TextSpan agent_id_at = append_name(body, agent_id);
  body.append(",\"seq\":").append(std::to_string(seq));
  if (first_seq != 0) body.append(",\"first_seq\":").append(std::to_string(first_seq));
  append_ts(body, ts_ms);
  body.append(",\"data\":");
  TextSpan data_at{static_cast<std::uint32_t>(body.size()), static_cast<std::uint32_t>(data.size())};
  body.append(data).push_back('}');

  auto ev = std::make_shared<Event>();
  const std::size_t header = frame_header_size(body.size());
  const bool type_escaped = type_at.size != type.size();
  const bool agent_id_escaped = agent_id_at.size != agent_id.size();
  ev->bytes.reserve(header + body.size() + (type_escaped ? type.size() : 0) +
                    (agent_id_escaped ? agent_id.size() : 0));
  append_text_frame_header(ev->bytes, body.size());
  ev->bytes.append(body);
  ev->frame_size = static_cast<std::uint32_t>(ev->bytes.size());
  ev->payload_offset = static_cast<std::uint32_t>(header);
  auto place = [&](TextSpan at, bool escaped, std::string_view text) {
    if (!escaped) return TextSpan{static_cast<std::uint32_t>(at.offset + header), at.size};
    TextSpan own{static_cast<std::uint32_t>(ev->bytes.size()), static_cast<std::uint32_t>(text.size())};
    ev->bytes.append(text);
    return own;
  };
  ev->type_at = place(type_at, type_escaped, type);
  ev->agent_id_at = place(agent_id_at, agent_id_escaped, agent_id);
  ev->data_at = TextSpan{static_cast<std::uint32_t>(data_at.offset + header), data_at.size};
  ev->seq = seq;
  ev->first_seq = first_seq;
  ev->ts_ms = ts_ms;
  ev->idempotency_key = std::move(idempotency_key);
  ev->mergeable = mergeable;
  // One large event must not pin its size in the thread's scratch for good.
  if (body.capacity() > kScratchKeepBytes) std::string().swap(body);
  return ev;
}

}  // namespace

EventPtr make_event(std::string_view agent_id, std::uint64_t seq, std::string_view type, std::int64_t ts_ms,
                    std::string_view data, std::string idempotency_key, bool mergeable) {
  return build_event(agent_id, 0, seq, type, ts_ms, data, std::move(idempotency_key), mergeable);
}

EventPtr make_merged_event(std::string_view agent_id, std::uint64_t first_seq, std::uint64_t seq,
                           std::string_view type, std::int64_t ts_ms, std::string_view data) {
  return build_event(agent_id, first_seq, seq, type, ts_ms, data, {}, true);  // it may merge again
}

std::string session_envelope(std::string_view type, std::string_view agent_id, std::string_view data_json) {
  std::string out;
  out.reserve(80 + agent_id.size() + data_json.size());
  append_head(out, type, agent_id);
  append_ts(out, now_unix_ms());
  out.append(",\"data\":").append(data_json).push_back('}');
  return out;
}

std::string connected(const ConnectedInfo& c) {
  std::string d = "{\"session_id\":";
  append_quoted(d, c.session_id);
  d.append(",\"epoch\":");
  append_quoted(d, c.epoch);
  d.append(",\"seq\":").append(std::to_string(c.seq));
  d.append(",\"resumed\":").append(c.resumed ? "true" : "false");
  d.append(",\"recovered\":").append(c.recovered ? "true" : "false");
  d.append(",\"replayed\":").append(std::to_string(c.replayed));
  d.append(",\"heartbeat_interval\":").append(seconds(c.heartbeat_interval_ms));
  d.append(",\"idle_timeout\":").append(seconds(c.idle_timeout_ms));
  d.append(",\"server_version\":");
  append_quoted(d, kServerVersion);
  d.push_back('}');
  return session_envelope("connected", c.agent_id, d);
}

std::string heartbeat(std::string_view agent_id) {
  return session_envelope("heartbeat", agent_id, "{}");
}

std::string pong(std::string_view agent_id) {
  return session_envelope("pong", agent_id, "{}");
}

std::string error(std::string_view agent_id, std::string_view code, std::string_view message) {
  std::string d = "{\"code\":";
  append_quoted(d, code);
  d.append(",\"message\":");
  append_quoted(d, message);
  d.push_back('}');
  return session_envelope("error", agent_id, d);
}

namespace {

std::string token_lifetime(std::string_view type, std::string_view agent_id, std::int64_t exp_s,
                           std::int64_t in_ms) {
  std::string d = "{\"exp\":" + std::to_string(exp_s) +
                  ",\"expires_in\":" + seconds(std::max<std::int64_t>(in_ms, 0)) + "}";
  return session_envelope(type, agent_id, d);
}

}  // namespace

std::string token_expiring(std::string_view agent_id, std::int64_t exp_s, std::int64_t in_ms) {
  return token_lifetime("token_expiring", agent_id, exp_s, in_ms);
}

std::string token_refreshed(std::string_view agent_id, std::int64_t exp_s, std::int64_t in_ms) {
  return token_lifetime("token_refreshed", agent_id, exp_s, in_ms);
}

std::string snapshot(std::string_view agent_id, std::uint64_t seq, std::string_view epoch, bool recovered,
                     std::string_view state_json) {
  std::string d = "{\"seq\":";
  d.append(std::to_string(seq)).append(",\"epoch\":");
  append_quoted(d, epoch);
  d.append(",\"recovered\":").append(recovered ? "true" : "false");
  d.append(",\"state\":").append(state_json).push_back('}');
  return session_envelope("snapshot", agent_id, d);
}

}  // namespace aw::protocol
