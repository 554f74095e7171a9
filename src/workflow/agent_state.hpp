// One agent's workflows and AI output streams as the hub holds them: rebuilt from the state records at
// start-up, updated by the records each command commits, read by commands (on the hub's writer thread)
// and by snapshots and GET routes (under the channel's lock).
//
// Stream text: each delta is its own small record ("stream_delta", "<stream>/<index>") written with
// its event, and the stream's records collapse into one summary when it ends. So an append costs one
// short insert whatever the length of the text so far — rewriting a growing text record on every delta
// would make a long answer quadratic — and after a restart the text is rebuilt from those records, not
// from the event log, whose retention may already have dropped the first deltas.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "hub/channel_state.hpp"
#include "workflow/documents.hpp"
#include "workflow/workflow_index.hpp"

namespace aw::workflow {

// Wall-clock milliseconds; injectable so tests control time.
using Clock = std::function<std::int64_t()>;

class AgentState final : public hub::ChannelState {
 public:
  // `index` learns every workflow and stream applied here; `clock` stamps stream activity.
  AgentState(std::string agent_id, WorkflowIndex& index, Clock clock);

  void apply(const std::vector<store::StateRecord>& records) override;
  // {"workflows": [every workflow, by number], "streams": [every open stream with its text so far]}
  std::string snapshot_json() const override;
  // No workflow, stream or counter: the agent never used the workflow routes (nothing in the index).
  bool empty() const override;

  const std::string& agent_id() const noexcept { return agent_id_; }
  const Workflow* find_workflow(std::string_view id) const;
  const Requirements* find_requirements(std::string_view workflow_id) const;
  const Stream* find_stream(std::string_view id) const;
  // The workflow's streams in the order they started.
  std::vector<const Stream*> streams_of(std::string_view workflow_id) const;
  // The highest workflow number ever given (0 when none); never goes down, deletes included.
  std::uint64_t last_number() const;
  // The latest start time of any stream this agent has had (0 when none): a new stream starts after it,
  // so that start times order streams exactly, even two opened within one millisecond.
  std::int64_t last_stream_start_ms() const noexcept { return last_stream_start_ms_; }
  // Workflows numbered above `after_number`, at most `limit`, by number; `more` tells if others follow.
  std::vector<const Workflow*> workflows_after(std::uint64_t after_number, std::size_t limit,
                                               bool& more) const;
  // Every delta record an open stream holds, to erase when it ends or its workflow goes.
  std::vector<std::string> delta_record_ids(std::string_view stream_id) const;
  // The public JSON of a workflow with its current requirements and streams.
  boost::json::object workflow_json(const Workflow& wf) const;

  // Last time a delta (or the open) reached this open stream, by `clock`.
  std::int64_t last_activity(std::string_view stream_id) const;

  // An upper bound on the size of this state's snapshot message, kept as records apply
  // (workflow/snapshot_size): what Limits::max_snapshot_bytes is checked against.
  std::uint64_t snapshot_bytes() const noexcept { return snapshot_bytes_; }
  // The shares of one workflow and one stream in it (0 when unknown).
  std::uint64_t workflow_bytes(std::string_view workflow_id) const;
  std::uint64_t stream_bytes(std::string_view stream_id) const;
  std::size_t workflow_count() const noexcept { return workflows_.size(); }
  // Streams still streaming: of the agent, of one workflow.
  std::size_t open_stream_count() const noexcept { return open_streams_; }
  std::size_t open_streams_of(std::string_view workflow_id) const;

 private:
  void apply_workflow(const store::StateRecord& r);
  void apply_requirements(const store::StateRecord& r);
  void apply_stream(const store::StateRecord& r);
  void apply_delta(const store::StateRecord& r);
  void apply_counter(const store::StateRecord& r);
  void append_text(Stream& st, std::string_view delta);
  void unlist_stream(const Stream& st);  // out of streams_by_workflow_
  void forget_stream(const std::string& id);
  void size_workflow(const std::string& id);
  void size_stream(const Stream& st);
  using Shares = std::map<std::string, std::uint64_t, std::less<>>;
  void set_share(Shares& shares, const std::string& id, std::uint64_t bytes);
  void drop_share(Shares& shares, std::string_view id);

  std::string agent_id_;
  WorkflowIndex& index_;
  Clock clock_;
  std::map<std::string, Workflow, std::less<>> workflows_;
  std::set<std::pair<std::uint64_t, std::string>> by_number_;  // (number, id)
  std::uint64_t numbered_ = 0;                                 // the counter record
  std::int64_t last_stream_start_ms_ = 0;
  std::map<std::string, Requirements, std::less<>> requirements_;
  std::map<std::string, Stream, std::less<>> streams_;
  // workflow id → (started_at_ms, stream id)
  std::map<std::string, std::set<std::pair<std::int64_t, std::string>>, std::less<>> streams_by_workflow_;
  // Deltas read ahead of an earlier index at start-up (the store promises no order): index → text.
  std::map<std::string, std::map<std::uint64_t, std::string>, std::less<>> early_deltas_;
  std::map<std::string, std::int64_t, std::less<>> last_activity_;
  Shares workflow_shares_;
  Shares stream_shares_;
  std::uint64_t snapshot_bytes_;
  std::size_t open_streams_ = 0;
};

// For the hub: one AgentState per channel, all feeding `index`. `index` must outlive the hub.
hub::ChannelStateFactory agent_state_factory(WorkflowIndex& index, Clock clock);

}  // namespace aw::workflow
