// The workflow domain's entry point for the HTTP API (and the streamed-body pipe): every change is a
// Command on the owning agent's channel, decided on the hub's writer thread against the agent's state
// and stored with its event in one commit, so nothing is ever half-applied; reads look at the state
// under the channel's lock.
//
// Each command's `done` runs exactly once: on the hub's writer thread, or right away on the calling
// thread when the id names no workflow or stream or the hub refuses the command at the door
// (overloaded, shutting down). Its PublishResult is ok (seq, reply_json), duplicate (an Idempotency-Key seen
// before; reply_json then describes the original where that can be known), refused (the Decision says
// why) or a store failure.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "hub/hub.hpp"
#include "store/event_store.hpp"
#include "workflow/agent_state.hpp"
#include "workflow/decisions.hpp"
#include "workflow/limits.hpp"
#include "workflow/workflow_index.hpp"

namespace aw::workflow {

// A shared broker's directory could not be asked who owns an id: the caller answers 503
// broker_unavailable (not 404: the id may well exist).
class DirectoryUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct WorkflowServiceOptions {
  std::int64_t stream_idle_timeout_ms = 60'000;  // a model silent this long has died or been forgotten
  Limits limits;                                 // what one agent may keep
};

class WorkflowService {
 public:
  // `index` is the one the hub's agent_state_factory feeds. Ended streams' text is read through the
  // hub's broker (SQLite, or Redis with many nodes).
  WorkflowService(hub::Hub& hub, WorkflowIndex& index, WorkflowServiceOptions options, Clock clock);

  void create(NewWorkflow request, std::string idempotency_key, hub::PublishCallback done);
  void submit_requirements(std::string workflow_id, NewRequirements request, std::string idempotency_key,
                           hub::PublishCallback done);
  void change_phase(std::string workflow_id, Phase to, std::optional<std::string> reason,
                    std::string idempotency_key, hub::PublishCallback done);
  void report_progress(std::string workflow_id, double percent, std::optional<std::string> message,
                       std::string idempotency_key, hub::PublishCallback done);
  // A phase change to cancelled.
  void cancel(std::string workflow_id, std::optional<std::string> reason, std::string idempotency_key,
              hub::PublishCallback done);
  void remove(std::string workflow_id, std::string idempotency_key, hub::PublishCallback done);

  // Returns the id the new stream gets once `done` reports ok (on a duplicate, reply_json names the
  // original). Appends may be submitted once `done` has reported ok; from one thread, in the order
  // they are submitted, they get indexes 0, 1, 2, …
  std::string open_stream(std::string workflow_id, std::string idempotency_key, hub::PublishCallback done);
  // `delta` must be valid UTF-8 on its own: a caller cutting a byte stream into pieces must cut between
  // characters.
  void append(std::string stream_id, std::string delta, std::optional<std::uint64_t> expected_index,
              std::string idempotency_key, hub::PublishCallback done);
  void end(std::string stream_id, StreamStatus status, std::optional<std::string> reason,
           std::string idempotency_key, hub::PublishCallback done);
  // Ends, as failed, every open stream nothing reached for the idle timeout; returns how many it asked
  // to end. Call it periodically. With a shared broker, on every node: the broker's record of each open
  // stream's last activity decides, and one node claims each idle stream (Broker::claim_idle).
  std::size_t expire_idle_streams(std::int64_t now_ms);

  // The agent owning a workflow (a stream): this node's index, else, with a shared broker, its directory
  // (which brings the agent's channel into memory here). nullopt when none does. The reads below and
  // the credentials check use these; they throw DirectoryUnavailable, as the reads below do.
  std::optional<std::string> owner_of_workflow(std::string_view workflow_id) const;
  std::optional<std::string> owner_of_stream(std::string_view stream_id) const;

  // The workflow's public JSON, or nullopt when it does not exist.
  std::optional<std::string> get(std::string_view workflow_id) const;
  // A stream: its summary plus `workflow_id` and `text` (so far, or what it ended with: read from the
  // store, null for a stream that ended before ended text was kept), and `index` while it streams.
  std::optional<std::string> get_stream(std::string_view stream_id) const;
  // {"workflow_id", "streams": [summary with workflow_id, no text, ...]} in start order, or nullopt when
  // the workflow does not exist.
  std::optional<std::string> workflow_streams(std::string_view workflow_id) const;
  // {"agents": [{"agent_id", "workflows", "updated"}...], "next": agent id | null}: agents that have
  // workflows, with ids above `after`, by id, at most `limit`.
  // With `visible`, only the agents it accepts.
  std::string agents(std::string_view after, std::size_t limit,
                     const std::function<bool(std::string_view)>& visible = {}) const;
  // {"agent_id", "workflows": [...], "next_cursor": "<n>" | null}: the agent's workflows numbered above
  // `after_number`, oldest first, at most `limit`.
  std::string list(std::string_view agent_id, std::size_t limit, std::uint64_t after_number) const;

  const WorkflowServiceOptions& options() const noexcept { return options_; }

 private:
  using Decide = std::function<hub::Decision(const AgentState*)>;
  void submit(std::string agent_id, Decide decide, std::string idempotency_key, hub::PublishCallback done);
  // `done`, but a duplicate's reply_json is the workflow as it is now (empty `workflow_id`: the one the
  // original create made).
  hub::PublishCallback describe_duplicates(std::string agent_id, std::string workflow_id,
                                           hub::PublishCallback done) const;
  // `done`, but a duplicate's reply_json is the original event's data (stream commands).
  hub::PublishCallback replay_duplicates(std::string agent_id, hub::PublishCallback done) const;
  void workflow_command(std::string workflow_id, std::string idempotency_key, hub::PublishCallback done,
                        std::function<hub::Decision(const AgentState*, const std::string&)> decide);
  void stream_command(const std::string& stream_id, std::string idempotency_key, hub::PublishCallback done,
                      Decide decide);
  std::optional<std::string> owner(std::optional<std::string> local, std::string_view id) const;
  // The owner of `id` for a command, or `done` answered (404 `not_found`, 503 broker_unavailable).
  std::optional<std::string> owner_for_command(bool workflow, const std::string& id,
                                               hub::PublishCallback& done) const;
  std::size_t expire_claimed_streams(std::int64_t idle_before_ms, std::int64_t now_ms);
  std::string listed_agents(std::string_view after, std::size_t limit,
                            const std::function<bool(std::string_view)>& visible) const;
  std::optional<std::string> original_event_data(std::string_view agent_id, std::uint64_t seq) const;

  hub::Hub& hub_;
  WorkflowIndex& index_;
  WorkflowServiceOptions options_;
  Clock clock_;
};

}  // namespace aw::workflow
