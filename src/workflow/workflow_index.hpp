// Which agent owns a workflow or a stream. Requests name only the workflow or stream id, but commands
// run on the agent's channel, so the id must lead to the agent before anything is submitted. Filled by
// AgentState::apply (at start-up and after each commit, under that channel's lock, on the hub's writer
// thread) and read by request threads, hence its own mutex — taken after a channel's lock, never
// before it. It also tracks when each open stream was last fed, for the idle timeout, and which agents
// have workflows (how many, last updated when), for the agents list.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace aw::workflow {

class WorkflowIndex {
 public:
  // Adds or updates a workflow; `updated_ms` is its updated_at.
  void add_workflow(std::string_view workflow_id, std::string_view agent_id, std::int64_t updated_ms);
  void remove_workflow(std::string_view workflow_id);
  std::optional<std::string> agent_of_workflow(std::string_view workflow_id) const;

  // `open` streams are candidates for the idle timeout, from `last_activity_ms` on.
  void add_stream(std::string_view stream_id, std::string_view agent_id, bool open,
                  std::int64_t last_activity_ms);
  void touch_stream(std::string_view stream_id, std::int64_t at_ms);
  void remove_stream(std::string_view stream_id);
  std::optional<std::string> agent_of_stream(std::string_view stream_id) const;

  struct IdleStream {
    std::string stream_id;
    std::string agent_id;
  };
  // Open streams last fed before `before_ms`.
  std::vector<IdleStream> idle_streams(std::int64_t before_ms) const;

  struct AgentSummary {
    std::string agent_id;
    std::size_t workflows = 0;
    std::int64_t updated_ms = 0;  // the latest updated_at of its workflows
  };
  // Agents that have workflows with ids above `after` (all when empty), by id, at most `limit`; `more`
  // tells if others follow.
  // With `visible`, only the agents it accepts (a caller's allow-list) are listed and counted.
  std::vector<AgentSummary> agents_after(std::string_view after, std::size_t limit, bool& more,
                                         const std::function<bool(std::string_view)>& visible = {}) const;

  std::size_t workflow_count() const;
  std::size_t open_stream_count() const;

 private:
  mutable std::mutex mutex_;
  struct WorkflowEntry {
    std::string agent_id;
    std::int64_t updated_ms = 0;
  };
  std::unordered_map<std::string, WorkflowEntry> workflows_;
  // agent id → the updated_at of each of its workflows (its size is the agent's workflow count)
  std::map<std::string, std::multiset<std::int64_t>, std::less<>> agents_;
  std::unordered_map<std::string, std::string> streams_;  // stream id → agent id, ended ones too
  std::unordered_map<std::string, std::int64_t> open_;    // open stream id → last activity
};

}  // namespace aw::workflow
