// What each workflow request decides, given the agent's state as it is when the request's turn comes on
// the hub's writer thread: one event with the state records it changes (stored in the same commit) and
// the HTTP answer, or a refusal naming why. Pure functions of (state, request, time), so every rule is
// tested without a hub; the service wraps each into a Command.
#pragma once
#include <boost/json.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "hub/command.hpp"
#include "workflow/agent_state.hpp"
#include "workflow/limits.hpp"

namespace aw::workflow {

// Event types on the agent's channel.
inline constexpr std::string_view kWorkflowCreated = "workflow_created";
inline constexpr std::string_view kRequirementsSubmitted = "requirements_submitted";
inline constexpr std::string_view kPhaseChanged = "phase_changed";
inline constexpr std::string_view kProgress = "progress";
inline constexpr std::string_view kWorkflowDeleted = "workflow_deleted";
inline constexpr std::string_view kStream = "stream";

// Why a stream the idle timeout ended failed.
inline constexpr std::string_view kIdleTimeoutReason = "idle_timeout";

struct NewWorkflow {
  std::string agent_id;
  std::string name;
  boost::json::object metadata;
};

struct NewRequirements {
  std::optional<std::string> text;
  boost::json::array items;
};

// The refusals for ids no agent owns, also given before anything is submitted.
hub::Decision workflow_not_found(const std::string& workflow_id);
hub::Decision stream_not_found(const std::string& stream_id);

// `state` is null only when the hub runs without the workflow domain; every decision then refuses.
//
// `limits` bound what the agent keeps (see Limits): past one, a request is refused with 400
// `metadata_too_large` / `requirements_too_large`, or 409 `too_many_workflows` / `too_many_streams` /
// `snapshot_full`. Finishing (a final phase, a stream's end) is only refused for its reason's size, and
// never without a reason, so a publisher can always finish and delete to free room.
hub::Decision decide_create(const AgentState* state, const std::string& workflow_id,
                            const NewWorkflow& request, std::int64_t now_ms, const Limits& limits = {});
hub::Decision decide_requirements(const AgentState* state, const std::string& workflow_id,
                                  const NewRequirements& request, std::int64_t now_ms,
                                  const Limits& limits = {});
hub::Decision decide_phase(const AgentState* state, const std::string& workflow_id, Phase to,
                           const std::optional<std::string>& reason, std::int64_t now_ms,
                           const Limits& limits = {});
// `percent` 0..100; fractions are floored (a bar at 99.6 % is not done).
hub::Decision decide_progress(const AgentState* state, const std::string& workflow_id, double percent,
                              const std::optional<std::string>& message, std::int64_t now_ms,
                              const Limits& limits = {});
// Only finished workflows (completed, failed, cancelled) are deleted; with them go their requirements
// and streams.
hub::Decision decide_delete(const AgentState* state, const std::string& workflow_id);

hub::Decision decide_open_stream(const AgentState* state, const std::string& workflow_id,
                                 const std::string& stream_id, std::int64_t now_ms,
                                 const Limits& limits = {});
// `expected_index`, when given, must be the index this delta gets (a publisher's guard against reordering
// and double sends).
hub::Decision decide_append(const AgentState* state, const std::string& stream_id, std::string_view delta,
                            std::optional<std::uint64_t> expected_index, const Limits& limits = {});
// `status` completed or failed.
hub::Decision decide_end(const AgentState* state, const std::string& stream_id, StreamStatus status,
                         const std::optional<std::string>& reason, std::int64_t now_ms,
                         const Limits& limits = {});
// Ends the stream as failed if nothing reached it since `idle_before_ms`; refuses (conflict) otherwise.
hub::Decision decide_expire(const AgentState* state, const std::string& stream_id,
                            std::int64_t idle_before_ms, std::int64_t now_ms);

}  // namespace aw::workflow
