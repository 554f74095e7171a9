#include "workflow/decisions.hpp"

#include <algorithm>
#include <cmath>

#include "core/agent_id.hpp"
#include "core/utf8.hpp"
#include "workflow/limits.hpp"
#include "workflow/snapshot_size.hpp"

namespace aw::workflow {
using hub::Decision;
using store::StateRecord;
namespace json = boost::json;
namespace {

using Refusal = Decision::Refusal;

Decision no_state() {
  return Decision::refuse(Refusal::invalid, "workflows_unavailable",
                          "this server runs without the workflow domain");
}

Decision bad_field(std::string message) {
  return Decision::refuse(Refusal::invalid, "bad_field", std::move(message));
}

Decision workflow_finished(const Workflow& wf, std::string_view what) {
  json::object details{{"phase", phase_name(wf.phase)}};
  return Decision::refuse(Refusal::conflict, "workflow_finished",
                          "workflow " + wf.id + " is " + std::string(phase_name(wf.phase)) +
                              ": it takes no more " + std::string(what),
                          json::serialize(details));
}

std::optional<Decision> check_text(const std::optional<std::string>& text, std::string_view field,
                                   std::size_t max_bytes) {
  if (text && text->size() > max_bytes)
    return bad_field(std::string(field) + " must be at most " + std::to_string(max_bytes) + " bytes");
  return std::nullopt;
}

json::value optional_string(const std::optional<std::string>& s) {
  return s ? json::value(json::string(*s)) : json::value(nullptr);
}

StateRecord record(const AgentState& state, std::string_view kind, std::string id, std::string json) {
  return {state.agent_id(), std::string(kind), std::move(id), std::move(json)};
}

// A finishing request that adds no more than this always goes through, whatever the room: a workflow
// cancelled or a stream ended without a reason, so that room can always be freed.
constexpr std::int64_t kFinishingSlackBytes = 64;

// Refuses a request that would take the agent's snapshot past its bound: growth stops short of the
// finishing reserve, finishing may use it. `growth` is the change to the snapshot's size (may be < 0).
std::optional<Decision> check_room(const AgentState& state, std::int64_t growth, bool finishing,
                                   const Limits& limits) {
  if (growth <= 0 || (finishing && growth <= kFinishingSlackBytes)) return std::nullopt;
  const std::uint64_t now = state.snapshot_bytes();
  const std::uint64_t after = now + static_cast<std::uint64_t>(growth);
  const std::uint64_t max = limits.max_snapshot_bytes;
  const std::uint64_t bound = finishing ? max : max - std::min(max, finishing_reserve(max));
  if (after <= bound) return std::nullopt;
  json::object details{{"max_bytes", max}, {"bytes", now}, {"needed", growth}};
  return Decision::refuse(
      Refusal::conflict, "snapshot_full",
      "agent " + state.agent_id() + " holds " + std::to_string(now) + " bytes of state and this needs " +
          std::to_string(growth) + " more; a snapshot of it must stay within " + std::to_string(bound) +
          " bytes (--max-snapshot-bytes" + (finishing ? ")" : ", less what is kept for finishing)") +
          ": delete finished workflows, end streams or send less",
      json::serialize(details));
}

std::int64_t change(std::uint64_t before, std::uint64_t after) {
  return static_cast<std::int64_t>(after) - static_cast<std::int64_t>(before);
}

Decision too_large(std::string_view code, std::string_view what, std::size_t bytes, std::size_t max) {
  json::object details{{"max_bytes", max}, {"bytes", bytes}};
  return Decision::refuse(
      Refusal::invalid, std::string(code),
      std::string(what) + " takes " + std::to_string(bytes) + " bytes as JSON, over " + std::to_string(max),
      json::serialize(details));
}

// The event, its records and the caller's answer in one go.
Decision decided(std::string_view type, const json::object& data, std::vector<StateRecord> records,
                 std::string reply) {
  Decision d;
  d.type = std::string(type);
  d.data = json::serialize(data);
  d.records = std::move(records);
  d.reply_json = std::move(reply);
  return d;
}

// The stream's end as subscribers and the publisher see it.
json::object end_summary(const Stream& st, StreamStatus status, const std::optional<std::string>& reason) {
  return {{"stream_id", st.id},
          {"workflow_id", st.workflow_id},
          {"status", stream_status_name(status)},
          {"reason", optional_string(reason)},
          {"deltas", st.deltas},
          {"length", st.length},
          {"bytes", st.bytes}};
}

Decision end_stream(const AgentState& state, const Stream& st, StreamStatus status,
                    const std::optional<std::string>& reason, std::int64_t now_ms) {
  // Field by field: copying `st` whole would copy its text (up to 1 MiB) only to drop it.
  Stream ended;
  ended.id = st.id;
  ended.workflow_id = st.workflow_id;
  ended.started_at_ms = st.started_at_ms;
  ended.deltas = st.deltas;
  ended.length = st.length;
  ended.bytes = st.bytes;
  ended.status = status;
  ended.reason = reason;
  ended.ended_at_ms = now_ms;
  std::vector<StateRecord> records;
  records.push_back(record(state, kStreamKind, st.id, stream_record(ended)));
  for (auto& id : state.delta_record_ids(st.id))
    records.push_back(record(state, kDeltaKind, std::move(id), {}));
  // The text it ended with stays, in this commit (an end the quota cannot hold ends nothing); written
  // after the deltas are erased so that it reuses their pages and a text that fit as deltas fits whole.
  records.push_back(record(state, kStreamTextKind, st.id, delta_record(st.text)));
  json::object summary = end_summary(st, status, reason);
  std::string reply = json::serialize(summary);
  summary["done"] = true;
  Decision d = decided(kStream, summary, std::move(records), std::move(reply));
  d.directory.closed.push_back(st.id);
  return d;
}

}  // namespace

Decision workflow_not_found(const std::string& workflow_id) {
  return Decision::refuse(Refusal::not_found, "workflow_not_found", "no workflow " + workflow_id);
}

Decision stream_not_found(const std::string& stream_id) {
  return Decision::refuse(Refusal::not_found, "stream_not_found", "no stream " + stream_id);
}

Decision decide_create(const AgentState* state, const std::string& workflow_id, const NewWorkflow& request,
                       std::int64_t now_ms, const Limits& limits) {
  if (!state) return no_state();
  if (request.agent_id != state->agent_id() || !is_valid_agent_id(request.agent_id))
    return Decision::refuse(Refusal::invalid, "bad_agent_id",
                            "agent_id must be 1-128 characters of [A-Za-z0-9_.:-]");
  if (request.name.empty() || request.name.size() > kMaxNameBytes)
    return bad_field("name must be 1-" + std::to_string(kMaxNameBytes) + " bytes");
  if (state->find_workflow(workflow_id))
    return Decision::refuse(Refusal::conflict, "workflow_exists",
                            "workflow " + workflow_id + " already exists");
  if (std::size_t bytes = json::serialize(request.metadata).size(); bytes > limits.max_metadata_bytes)
    return too_large("metadata_too_large", "metadata", bytes, limits.max_metadata_bytes);
  if (state->workflow_count() >= limits.max_workflows_per_agent) {
    json::object details{{"max", limits.max_workflows_per_agent}};
    return Decision::refuse(
        Refusal::conflict, "too_many_workflows",
        "agent " + state->agent_id() + " keeps " + std::to_string(state->workflow_count()) +
            " workflows, its limit (--max-workflows-per-agent): delete finished ones first",
        json::serialize(details));
  }

  Workflow wf;
  wf.id = workflow_id;
  wf.agent_id = request.agent_id;
  wf.number = state->last_number() + 1;
  wf.name = request.name;
  wf.metadata = request.metadata;
  wf.created_at_ms = now_ms;
  wf.updated_at_ms = now_ms;
  if (auto full = check_room(*state, static_cast<std::int64_t>(workflow_share(wf, nullptr)), false, limits))
    return *full;
  json::object doc = workflow_json(wf, nullptr, {});
  std::string reply = json::serialize(doc);
  Decision d =
      decided(kWorkflowCreated, doc,
              {record(*state, kWorkflowKind, wf.id, workflow_record(wf)),
               record(*state, kCounterKind, std::string(kWorkflowNumberId), std::to_string(wf.number))},
              std::move(reply));
  d.directory.added.push_back(wf.id);
  d.directory.counted = 1;
  d.directory.listed = true;
  return d;
}

Decision decide_requirements(const AgentState* state, const std::string& workflow_id,
                             const NewRequirements& request, std::int64_t now_ms, const Limits& limits) {
  if (!state) return no_state();
  const Workflow* current = state->find_workflow(workflow_id);
  if (!current) return workflow_not_found(workflow_id);
  if (!request.text && request.items.empty()) return bad_field("requirements need text, items or both");
  if (request.text && request.text->empty()) return bad_field("text must not be empty");
  for (const json::value& item : request.items)
    if (!item.is_object() && !item.is_string()) return bad_field("each item must be an object or a string");
  if (is_final(current->phase)) return workflow_finished(*current, "requirements");
  const std::size_t bytes =
      (request.text ? json_text_bytes(*request.text) + 2 : 0) + json::serialize(request.items).size();
  if (bytes > limits.max_requirements_bytes)
    return too_large("requirements_too_large", "requirements (text and items)", bytes,
                     limits.max_requirements_bytes);

  Requirements req;
  req.text = request.text;
  req.items = request.items;
  const Requirements* previous = state->find_requirements(workflow_id);
  req.revision = previous ? previous->revision + 1 : 1;
  req.submitted_at_ms = now_ms;
  Workflow wf = *current;
  wf.updated_at_ms = now_ms;
  const std::int64_t growth = change(state->workflow_bytes(workflow_id), workflow_share(wf, &req));
  if (auto full = check_room(*state, growth, false, limits)) return *full;

  json::object data{{"workflow_id", workflow_id}, {"requirements", requirements_json(req)}};
  std::string reply = json::serialize(workflow_json(wf, &req, state->streams_of(workflow_id)));
  Decision d = decided(kRequirementsSubmitted, data,
                       {record(*state, kRequirementsKind, workflow_id, requirements_record(req)),
                        record(*state, kWorkflowKind, workflow_id, workflow_record(wf))},
                       std::move(reply));
  d.directory.listed = true;
  return d;
}

Decision decide_phase(const AgentState* state, const std::string& workflow_id, Phase to,
                      const std::optional<std::string>& reason, std::int64_t now_ms, const Limits& limits) {
  if (!state) return no_state();
  const Workflow* current = state->find_workflow(workflow_id);
  if (!current) return workflow_not_found(workflow_id);
  if (auto bad = check_text(reason, "reason", kMaxMessageBytes)) return *bad;
  if (!can_move(current->phase, to)) {
    json::array allowed;
    for (Phase p : allowed_next(current->phase)) allowed.emplace_back(phase_name(p));
    std::string message = "workflow " + workflow_id + " cannot move from " +
                          std::string(phase_name(current->phase)) + " to " + std::string(phase_name(to));
    message += allowed.empty() ? " (it is finished)" : "";
    json::object details{
        {"from", phase_name(current->phase)}, {"to", phase_name(to)}, {"allowed", std::move(allowed)}};
    return Decision::refuse(Refusal::conflict, "illegal_transition", std::move(message),
                            json::serialize(details));
  }

  Workflow wf = *current;
  wf.phase = to;
  wf.phase_reason = reason;
  wf.updated_at_ms = now_ms;
  const Requirements* req = state->find_requirements(workflow_id);
  const std::int64_t growth = change(state->workflow_bytes(workflow_id), workflow_share(wf, req));
  if (auto full = check_room(*state, growth, is_final(to), limits)) return *full;
  json::object data{{"workflow_id", workflow_id},
                    {"from", phase_name(current->phase)},
                    {"to", phase_name(to)},
                    {"reason", optional_string(reason)}};
  std::string reply = json::serialize(
      workflow_json(wf, state->find_requirements(workflow_id), state->streams_of(workflow_id)));
  Decision d = decided(kPhaseChanged, data, {record(*state, kWorkflowKind, workflow_id, workflow_record(wf))},
                       std::move(reply));
  d.directory.listed = true;
  return d;
}

Decision decide_progress(const AgentState* state, const std::string& workflow_id, double percent,
                         const std::optional<std::string>& message, std::int64_t now_ms,
                         const Limits& limits) {
  if (!state) return no_state();
  const Workflow* current = state->find_workflow(workflow_id);
  if (!current) return workflow_not_found(workflow_id);
  if (!std::isfinite(percent) || percent < 0 || percent > 100)
    return bad_field("percent must be a number from 0 to 100");
  if (auto bad = check_text(message, "message", kMaxMessageBytes)) return *bad;
  if (is_final(current->phase)) return workflow_finished(*current, "progress");

  Workflow wf = *current;
  wf.progress = static_cast<int>(std::floor(percent));
  wf.progress_message = message;
  wf.updated_at_ms = now_ms;
  const Requirements* req = state->find_requirements(workflow_id);
  const std::int64_t growth = change(state->workflow_bytes(workflow_id), workflow_share(wf, req));
  if (auto full = check_room(*state, growth, false, limits)) return *full;
  json::object data{
      {"workflow_id", workflow_id}, {"percent", wf.progress}, {"message", optional_string(message)}};
  std::string reply = json::serialize(
      workflow_json(wf, state->find_requirements(workflow_id), state->streams_of(workflow_id)));
  Decision d = decided(kProgress, data, {record(*state, kWorkflowKind, workflow_id, workflow_record(wf))},
                       std::move(reply));
  d.mergeable = true;  // only the latest progress matters to a subscriber that fell behind
  d.directory.listed = true;
  return d;
}

Decision decide_delete(const AgentState* state, const std::string& workflow_id) {
  if (!state) return no_state();
  const Workflow* current = state->find_workflow(workflow_id);
  if (!current) return workflow_not_found(workflow_id);
  if (!is_final(current->phase)) {
    json::object details{{"phase", phase_name(current->phase)}};
    return Decision::refuse(
        Refusal::conflict, "workflow_active",
        "workflow " + workflow_id + " is in phase " + std::string(phase_name(current->phase)) +
            ": cancel it (POST /api/workflows/" + workflow_id + "/cancel) before deleting it",
        json::serialize(details));
  }
  std::vector<StateRecord> records;
  records.push_back(record(*state, kWorkflowKind, workflow_id, {}));
  if (state->find_requirements(workflow_id))
    records.push_back(record(*state, kRequirementsKind, workflow_id, {}));
  json::array streams;
  broker::DirectoryChange gone;
  gone.removed.push_back(workflow_id);
  gone.counted = -1;
  gone.listed = true;
  for (const Stream* st : state->streams_of(workflow_id)) {
    streams.emplace_back(st->id);
    gone.removed.push_back(st->id);
    if (st->status == StreamStatus::streaming) gone.closed.push_back(st->id);
    records.push_back(record(*state, kStreamKind, st->id, {}));
    if (st->status != StreamStatus::streaming) records.push_back(record(*state, kStreamTextKind, st->id, {}));
    for (auto& id : state->delta_record_ids(st->id))
      records.push_back(record(*state, kDeltaKind, std::move(id), {}));
  }
  json::object data{{"workflow_id", workflow_id}, {"streams", std::move(streams)}};
  json::object reply{{"workflow_id", workflow_id}, {"deleted", true}};
  Decision d = decided(kWorkflowDeleted, data, std::move(records), json::serialize(reply));
  d.directory = std::move(gone);
  return d;
}

Decision decide_open_stream(const AgentState* state, const std::string& workflow_id,
                            const std::string& stream_id, std::int64_t now_ms, const Limits& limits) {
  if (!state) return no_state();
  const Workflow* wf = state->find_workflow(workflow_id);
  if (!wf) return workflow_not_found(workflow_id);
  if (is_final(wf->phase)) return workflow_finished(*wf, "streams");
  if (state->find_stream(stream_id))
    return Decision::refuse(Refusal::conflict, "stream_exists", "stream " + stream_id + " already exists");

  const std::size_t of_workflow = state->open_streams_of(workflow_id);
  if (of_workflow >= limits.max_open_streams_per_workflow ||
      state->open_stream_count() >= limits.max_open_streams_per_agent) {
    const bool per_workflow = of_workflow >= limits.max_open_streams_per_workflow;
    json::object details{
        {"max", per_workflow ? limits.max_open_streams_per_workflow : limits.max_open_streams_per_agent},
        {"per", per_workflow ? "workflow" : "agent"}};
    return Decision::refuse(
        Refusal::conflict, "too_many_streams",
        std::string(per_workflow ? "workflow " + workflow_id : "agent " + state->agent_id()) +
            " has as many open streams as it may (" +
            (per_workflow ? "--max-open-streams-per-workflow" : "--max-open-streams-per-agent") +
            "): end one first",
        json::serialize(details));
  }

  Stream st;
  st.id = stream_id;
  st.workflow_id = workflow_id;
  // Strictly after the agent's latest start, so lists and snapshots order streams as they were opened.
  st.started_at_ms = std::max(now_ms, state->last_stream_start_ms() + 1);
  if (auto full = check_room(*state, static_cast<std::int64_t>(stream_share(st)), false, limits))
    return *full;
  json::object data{{"stream_id", stream_id}, {"workflow_id", workflow_id}, {"started", true}};
  json::object reply{{"stream_id", stream_id}, {"workflow_id", workflow_id}, {"status", "streaming"}};
  Decision d = decided(kStream, data, {record(*state, kStreamKind, stream_id, stream_record(st))},
                       json::serialize(reply));
  d.directory.added.push_back(stream_id);
  d.directory.active.push_back(stream_id);
  return d;
}

Decision decide_append(const AgentState* state, const std::string& stream_id, std::string_view delta,
                       std::optional<std::uint64_t> expected_index, const Limits& limits) {
  if (!state) return no_state();
  const Stream* st = state->find_stream(stream_id);
  if (!st) return stream_not_found(stream_id);
  if (delta.empty()) return bad_field("delta must not be empty");
  if (!is_valid_utf8(delta))
    return Decision::refuse(Refusal::invalid, "bad_utf8", "delta is not valid UTF-8");
  if (st->status != StreamStatus::streaming) {
    json::object details{{"status", stream_status_name(st->status)}};
    return Decision::refuse(
        Refusal::conflict, "stream_ended",
        "stream " + stream_id + " has ended (" + std::string(stream_status_name(st->status)) + ")",
        json::serialize(details));
  }
  if (expected_index && *expected_index != st->deltas) {
    json::object details{{"expected", st->deltas}};
    return Decision::refuse(Refusal::conflict, "index_mismatch",
                            "stream " + stream_id + " expects index " + std::to_string(st->deltas) +
                                ", not " + std::to_string(*expected_index),
                            json::serialize(details));
  }
  if (st->bytes + delta.size() > kMaxStreamTextBytes) {
    json::object details{{"max_bytes", kMaxStreamTextBytes}, {"bytes", st->bytes}};
    return Decision::refuse(Refusal::conflict, "stream_too_long",
                            "stream " + stream_id + " would exceed " + std::to_string(kMaxStreamTextBytes) +
                                " bytes; end it and open another",
                            json::serialize(details));
  }

  if (auto full = check_room(*state, static_cast<std::int64_t>(json_text_bytes(delta)), false, limits))
    return *full;

  const std::uint64_t index = st->deltas;
  json::object data{
      {"stream_id", stream_id}, {"workflow_id", st->workflow_id}, {"index", index}, {"delta", delta}};
  json::object reply{{"stream_id", stream_id}, {"index", index}};
  Decision d = decided(kStream, data,
                       {record(*state, kDeltaKind, delta_record_id(stream_id, index), delta_record(delta))},
                       json::serialize(reply));
  d.mergeable = true;  // consecutive deltas may reach a lagging subscriber as one
  // Its last activity, for the idle timeout on any node.
  d.directory.active.push_back(stream_id);
  return d;
}

Decision decide_end(const AgentState* state, const std::string& stream_id, StreamStatus status,
                    const std::optional<std::string>& reason, std::int64_t now_ms, const Limits& limits) {
  if (!state) return no_state();
  const Stream* st = state->find_stream(stream_id);
  if (!st) return stream_not_found(stream_id);
  if (status == StreamStatus::streaming) return bad_field("status must be completed or failed");
  if (auto bad = check_text(reason, "reason", kMaxMessageBytes)) return *bad;
  if (st->status != StreamStatus::streaming) {
    json::object details{{"status", stream_status_name(st->status)}};
    return Decision::refuse(
        Refusal::conflict, "stream_ended",
        "stream " + stream_id + " has already ended (" + std::string(stream_status_name(st->status)) + ")",
        json::serialize(details));
  }
  Stream ended;  // what its share becomes: the summary with the reason, no text
  ended.id = st->id;
  ended.workflow_id = st->workflow_id;
  ended.status = status;
  ended.reason = reason;
  ended.started_at_ms = st->started_at_ms;
  ended.ended_at_ms = now_ms;
  const std::int64_t growth = change(state->stream_bytes(stream_id), stream_share(ended));
  if (auto full = check_room(*state, growth, true, limits)) return *full;
  return end_stream(*state, *st, status, reason, now_ms);
}

Decision decide_expire(const AgentState* state, const std::string& stream_id, std::int64_t idle_before_ms,
                       std::int64_t now_ms) {
  if (!state) return no_state();
  const Stream* st = state->find_stream(stream_id);
  if (!st) return stream_not_found(stream_id);
  if (st->status != StreamStatus::streaming || state->last_activity(stream_id) >= idle_before_ms)
    return Decision::refuse(Refusal::conflict, "stream_active", "stream " + stream_id + " is not idle");
  return end_stream(*state, *st, StreamStatus::failed, std::string(kIdleTimeoutReason), now_ms);
}

}  // namespace aw::workflow
