// Server → client envelopes: `{"type", "agent_id", "seq"?, "ts", "data"}`. Only channel events carry a
// top-level seq; session messages (connected, heartbeat, pong, error, snapshot) carry positions in data.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "core/event.hpp"

namespace aw::protocol {

inline constexpr std::string_view kServerVersion = AGENTWIRE_VERSION;

// Builds an event with its envelope and WebSocket frame encoded once. `data` is raw JSON, used verbatim.
// `mergeable`: see Event::mergeable.
EventPtr make_event(std::string_view agent_id, std::uint64_t seq, std::string_view type, std::int64_t ts_ms,
                    std::string_view data, std::string idempotency_key = {}, bool mergeable = false);

// An event that stands for the channel's events first_seq..seq (merged for a subscriber that fell behind,
// see protocol/coalesce): the envelope carries `first_seq` as well. Never stored, never replayed.
EventPtr make_merged_event(std::string_view agent_id, std::uint64_t first_seq, std::uint64_t seq,
                           std::string_view type, std::int64_t ts_ms, std::string_view data);

// A session message envelope with `data_json` (a JSON object) verbatim.
std::string session_envelope(std::string_view type, std::string_view agent_id, std::string_view data_json);

struct ConnectedInfo {
  std::string_view session_id;
  std::string_view agent_id;
  std::string_view epoch;
  std::uint64_t seq = 0;   // latest seq of the channel when the session joined
  bool resumed = false;    // the client asked to resume (sent `since`)
  bool recovered = false;  // ... and every missed event follows
  std::uint64_t replayed = 0;
  std::int64_t heartbeat_interval_ms = 0;  // sent in seconds, fractions kept (0.5)
  std::int64_t idle_timeout_ms = 0;
};
std::string connected(const ConnectedInfo& info);

std::string heartbeat(std::string_view agent_id);
std::string pong(std::string_view agent_id);
std::string error(std::string_view agent_id, std::string_view code, std::string_view message);
// The subscriber's token expires at `exp_s` (seconds since the epoch), `in_ms` from now: a `refresh` with a
// new token keeps the connection (token_expiring), or did (token_refreshed).
std::string token_expiring(std::string_view agent_id, std::int64_t exp_s, std::int64_t in_ms);
std::string token_refreshed(std::string_view agent_id, std::int64_t exp_s, std::int64_t in_ms);

// `state_json` is the channel's current state (an object) as the domain describes it.
std::string snapshot(std::string_view agent_id, std::uint64_t seq, std::string_view epoch, bool recovered,
                     std::string_view state_json);

}  // namespace aw::protocol
