#include "workflow/workflow_index.hpp"

namespace aw::workflow {

namespace {

void forget_time(std::map<std::string, std::multiset<std::int64_t>, std::less<>>& agents,
                 const std::string& agent_id, std::int64_t updated_ms) {
  auto agent = agents.find(agent_id);
  if (agent == agents.end()) return;
  if (auto t = agent->second.find(updated_ms); t != agent->second.end()) agent->second.erase(t);
  if (agent->second.empty()) agents.erase(agent);
}

}  // namespace

void WorkflowIndex::add_workflow(std::string_view workflow_id, std::string_view agent_id,
                                 std::int64_t updated_ms) {
  std::lock_guard lock(mutex_);
  auto [it, fresh] = workflows_.try_emplace(std::string(workflow_id));
  if (!fresh) forget_time(agents_, it->second.agent_id, it->second.updated_ms);
  it->second = {std::string(agent_id), updated_ms};
  auto agent = agents_.find(agent_id);
  if (agent == agents_.end())
    agent = agents_.emplace(std::string(agent_id), std::multiset<std::int64_t>()).first;
  agent->second.insert(updated_ms);
}

void WorkflowIndex::remove_workflow(std::string_view workflow_id) {
  std::lock_guard lock(mutex_);
  auto it = workflows_.find(std::string(workflow_id));
  if (it == workflows_.end()) return;
  forget_time(agents_, it->second.agent_id, it->second.updated_ms);
  workflows_.erase(it);
}

std::vector<WorkflowIndex::AgentSummary> WorkflowIndex::agents_after(
    std::string_view after, std::size_t limit, bool& more,
    const std::function<bool(std::string_view)>& visible) const {
  std::vector<AgentSummary> out;
  more = false;
  std::lock_guard lock(mutex_);
  for (auto it = agents_.upper_bound(after); it != agents_.end(); ++it) {
    if (visible && !visible(it->first)) continue;
    if (out.size() == limit) {
      more = true;
      break;
    }
    out.push_back({it->first, it->second.size(), *it->second.rbegin()});
  }
  return out;
}

std::optional<std::string> WorkflowIndex::agent_of_workflow(std::string_view workflow_id) const {
  std::lock_guard lock(mutex_);
  auto it = workflows_.find(std::string(workflow_id));
  if (it == workflows_.end()) return std::nullopt;
  return it->second.agent_id;
}

void WorkflowIndex::add_stream(std::string_view stream_id, std::string_view agent_id, bool open,
                               std::int64_t last_activity_ms) {
  std::lock_guard lock(mutex_);
  streams_.insert_or_assign(std::string(stream_id), std::string(agent_id));
  if (open) {
    open_.insert_or_assign(std::string(stream_id), last_activity_ms);
  } else {
    open_.erase(std::string(stream_id));
  }
}

void WorkflowIndex::touch_stream(std::string_view stream_id, std::int64_t at_ms) {
  std::lock_guard lock(mutex_);
  if (auto it = open_.find(std::string(stream_id)); it != open_.end()) it->second = at_ms;
}

void WorkflowIndex::remove_stream(std::string_view stream_id) {
  std::lock_guard lock(mutex_);
  streams_.erase(std::string(stream_id));
  open_.erase(std::string(stream_id));
}

std::optional<std::string> WorkflowIndex::agent_of_stream(std::string_view stream_id) const {
  std::lock_guard lock(mutex_);
  auto it = streams_.find(std::string(stream_id));
  if (it == streams_.end()) return std::nullopt;
  return it->second;
}

std::vector<WorkflowIndex::IdleStream> WorkflowIndex::idle_streams(std::int64_t before_ms) const {
  std::vector<IdleStream> out;
  std::lock_guard lock(mutex_);
  for (const auto& [id, last] : open_) {
    if (last >= before_ms) continue;
    if (auto it = streams_.find(id); it != streams_.end()) out.push_back({id, it->second});
  }
  return out;
}

std::size_t WorkflowIndex::workflow_count() const {
  std::lock_guard lock(mutex_);
  return workflows_.size();
}

std::size_t WorkflowIndex::open_stream_count() const {
  std::lock_guard lock(mutex_);
  return open_.size();
}

}  // namespace aw::workflow
