// The workflow domain's documents — a workflow, its requirements, an AI output stream — with the two
// JSON shapes each has: the record stored in the state table (timestamps in ms, exactly what is needed
// to rebuild it) and the public JSON that clients see (RFC 3339 timestamps, nested requirements and
// stream summaries).
#pragma once
#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "workflow/phase.hpp"

namespace aw::workflow {

// State record kinds; stream deltas are one record each until the stream ends (see agent_state.hpp).
inline constexpr std::string_view kWorkflowKind = "workflow";
inline constexpr std::string_view kRequirementsKind = "requirements";
inline constexpr std::string_view kStreamKind = "stream";
inline constexpr std::string_view kDeltaKind = "stream_delta";
// An ended stream's whole text (a JSON string literal, as delta records hold), written in the commit that
// ends it and erased with its workflow. Cold (see event_store.hpp): never loaded at start-up nor held in
// memory; GET /api/streams/{id} reads it from the store when asked.
inline constexpr std::string_view kStreamTextKind = "~stream_text";
// The highest workflow number given so far, kept so a number is never handed out twice, even after the
// workflow that had it was deleted.
inline constexpr std::string_view kCounterKind = "counter";
inline constexpr std::string_view kWorkflowNumberId = "workflow_number";

struct Workflow {
  std::string id;
  std::string agent_id;
  std::uint64_t number = 0;  // 1, 2, 3 … per agent in creation order; orders listings and pages
  std::string name;
  boost::json::object metadata;
  Phase phase = kFirstPhase;
  std::optional<std::string> phase_reason;  // why the last phase change happened, when told
  int progress = 0;                         // whole percent, 0..100
  std::optional<std::string> progress_message;
  std::int64_t created_at_ms = 0;
  std::int64_t updated_at_ms = 0;
};

// The latest submission; a new one replaces it and raises `revision`.
struct Requirements {
  std::optional<std::string> text;
  boost::json::array items;  // structured items (objects or strings) as the publisher sent them
  std::uint64_t revision = 0;
  std::int64_t submitted_at_ms = 0;
};

enum class StreamStatus { streaming, completed, failed };
std::string_view stream_status_name(StreamStatus status) noexcept;
std::optional<StreamStatus> parse_stream_status(std::string_view name) noexcept;

struct Stream {
  std::string id;
  std::string workflow_id;
  StreamStatus status = StreamStatus::streaming;
  std::optional<std::string> reason;  // why it failed, when told (or "idle_timeout")
  std::int64_t started_at_ms = 0;
  std::int64_t ended_at_ms = 0;  // 0 while streaming
  std::uint64_t deltas = 0;      // pieces so far; also the index the next delta gets
  std::uint64_t length = 0;      // code points so far
  std::uint64_t bytes = 0;       // UTF-8 bytes so far
  std::string text;              // while streaming only: an ended stream's text is a cold record
};

// ---- stored records ----
std::string workflow_record(const Workflow& wf);
std::optional<Workflow> parse_workflow_record(std::string_view json);
std::string requirements_record(const Requirements& req);
std::optional<Requirements> parse_requirements_record(std::string_view json);
// The stream's metadata and counts (never its text: that lives in delta records while it streams).
std::string stream_record(const Stream& st);
std::optional<Stream> parse_stream_record(std::string_view json);

// Delta record ids sort by index within a stream: "<stream_id>/<index, 10 digits>".
std::string delta_record_id(std::string_view stream_id, std::uint64_t index);
struct DeltaId {
  std::string stream_id;
  std::uint64_t index = 0;
};
std::optional<DeltaId> parse_delta_record_id(std::string_view id);
std::string delta_record(std::string_view delta);  // a JSON string literal
std::optional<std::string> parse_delta_record(std::string_view json);

// ---- public JSON ----
boost::json::object requirements_json(const Requirements& req);
// A stream as a workflow lists it: status and counts, no text.
boost::json::object stream_summary_json(const Stream& st);
// An open stream in a snapshot: its text so far and the index its next delta will carry.
boost::json::object open_stream_json(const Stream& st);
// `streams` in start order.
boost::json::object workflow_json(const Workflow& wf, const Requirements* req,
                                  const std::vector<const Stream*>& streams);

// RFC 3339 timestamp as a JSON value; null for 0 (not happened yet).
boost::json::value timestamp_json(std::int64_t unix_ms);

}  // namespace aw::workflow
