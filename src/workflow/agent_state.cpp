#include "workflow/agent_state.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <tuple>

#include "core/log.hpp"
#include "core/utf8.hpp"
#include "workflow/snapshot_size.hpp"

namespace aw::workflow {
using store::StateRecord;
namespace json = boost::json;
namespace {

void log_unreadable(const StateRecord& r) {
  log::warn("state_record_unreadable", {{"agent_id", r.agent_id}, {"kind", r.kind}, {"id", r.id}});
}

}  // namespace

AgentState::AgentState(std::string agent_id, WorkflowIndex& index, Clock clock)
    : agent_id_(std::move(agent_id)),
      index_(index),
      clock_(std::move(clock)),
      snapshot_bytes_(kSnapshotFrameBytes) {}

bool AgentState::empty() const {
  return workflows_.empty() && requirements_.empty() && streams_.empty() && early_deltas_.empty() &&
         numbered_ == 0;
}

void AgentState::apply(const std::vector<StateRecord>& records) {
  for (const StateRecord& r : records) {
    if (r.kind == kWorkflowKind) {
      apply_workflow(r);
    } else if (r.kind == kRequirementsKind) {
      apply_requirements(r);
    } else if (r.kind == kStreamKind) {
      apply_stream(r);
    } else if (r.kind == kDeltaKind) {
      apply_delta(r);
    } else if (r.kind == kCounterKind) {
      apply_counter(r);
    }
  }
}

void AgentState::apply_workflow(const StateRecord& r) {
  auto it = workflows_.find(r.id);
  if (it != workflows_.end()) by_number_.erase({it->second.number, it->first});
  if (r.json.empty()) {
    if (it != workflows_.end()) workflows_.erase(it);
    drop_share(workflow_shares_, r.id);
    index_.remove_workflow(r.id);
    return;
  }
  auto wf = parse_workflow_record(r.json);
  if (!wf || wf->id != r.id) {
    if (it != workflows_.end()) by_number_.emplace(it->second.number, it->first);
    return log_unreadable(r);
  }
  by_number_.emplace(wf->number, wf->id);
  const std::int64_t updated = wf->updated_at_ms;
  workflows_.insert_or_assign(r.id, std::move(*wf));
  size_workflow(r.id);
  index_.add_workflow(r.id, agent_id_, updated);
}

void AgentState::apply_requirements(const StateRecord& r) {
  if (r.json.empty()) {
    if (auto it = requirements_.find(r.id); it != requirements_.end()) requirements_.erase(it);
    return size_workflow(r.id);
  }
  auto req = parse_requirements_record(r.json);
  if (!req) return log_unreadable(r);
  requirements_.insert_or_assign(r.id, std::move(*req));
  size_workflow(r.id);
}

void AgentState::apply_stream(const StateRecord& r) {
  if (r.json.empty()) return forget_stream(r.id);
  auto parsed = parse_stream_record(r.json);
  if (!parsed || parsed->id != r.id) return log_unreadable(r);
  auto [it, fresh] = streams_.try_emplace(r.id);
  Stream& st = it->second;
  if (!fresh) unlist_stream(st);
  if (!fresh && st.status == StreamStatus::streaming && !st.workflow_id.empty()) --open_streams_;
  if (parsed->status == StreamStatus::streaming) {
    // The record holds no text: keep what deltas already brought (they may be read first at start-up).
    parsed->text = std::move(st.text);
    parsed->deltas = st.deltas;
    parsed->length = st.length;
    parsed->bytes = st.bytes;
  } else {
    early_deltas_.erase(r.id);
    last_activity_.erase(r.id);
  }
  st = std::move(*parsed);
  // Moving an empty text in keeps the old buffer's capacity (libstdc++): an ended stream would hold on
  // to up to 1 MiB it no longer shows. Its text is a cold record in the store now.
  if (st.status != StreamStatus::streaming) std::string().swap(st.text);
  streams_by_workflow_[st.workflow_id].emplace(st.started_at_ms, st.id);
  const bool open = st.status == StreamStatus::streaming;
  if (open) ++open_streams_;
  size_stream(st);
  last_stream_start_ms_ = std::max(last_stream_start_ms_, st.started_at_ms);
  const std::int64_t now = clock_();
  if (open && fresh) last_activity_[st.id] = now;
  index_.add_stream(st.id, agent_id_, open, now);
}

void AgentState::apply_delta(const StateRecord& r) {
  if (r.json.empty()) return;  // erased when the stream ends; its text went with it
  auto id = parse_delta_record_id(r.id);
  auto delta = parse_delta_record(r.json);
  if (!id || !delta) return log_unreadable(r);
  auto [it, fresh] = streams_.try_emplace(id->stream_id);
  Stream& st = it->second;
  if (fresh) st.id = id->stream_id;  // its stream record comes later in this load
  if (st.status != StreamStatus::streaming || id->index < st.deltas) return;
  if (id->index > st.deltas) {
    early_deltas_[st.id].insert_or_assign(id->index, std::move(*delta));
    return;
  }
  append_text(st, *delta);
  if (auto early = early_deltas_.find(st.id); early != early_deltas_.end()) {
    auto& waiting = early->second;
    for (auto next = waiting.find(st.deltas); next != waiting.end(); next = waiting.find(st.deltas)) {
      append_text(st, next->second);
      waiting.erase(next);
    }
    if (waiting.empty()) early_deltas_.erase(early);
  }
  const std::int64_t now = clock_();
  last_activity_[st.id] = now;
  index_.touch_stream(st.id, now);
}

void AgentState::apply_counter(const StateRecord& r) {
  if (r.id != kWorkflowNumberId || r.json.empty()) return;
  std::uint64_t n = 0;
  auto [p, ec] = std::from_chars(r.json.data(), r.json.data() + r.json.size(), n);
  if (ec != std::errc() || p != r.json.data() + r.json.size()) return log_unreadable(r);
  numbered_ = std::max(numbered_, n);
}

void AgentState::append_text(Stream& st, std::string_view delta) {
  // Counters are charged at their widest already: only the text's share grows.
  if (auto share = stream_shares_.find(st.id); share != stream_shares_.end()) {
    const std::uint64_t more = json_text_bytes(delta);
    share->second += more;
    snapshot_bytes_ += more;
  }
  st.text.append(delta);
  st.bytes += delta.size();
  st.length += count_code_points(delta);
  ++st.deltas;
}

void AgentState::unlist_stream(const Stream& st) {
  auto by = streams_by_workflow_.find(st.workflow_id);
  if (by == streams_by_workflow_.end()) return;
  by->second.erase({st.started_at_ms, st.id});
  if (by->second.empty()) streams_by_workflow_.erase(by);
}

void AgentState::forget_stream(const std::string& id) {
  if (auto it = streams_.find(id); it != streams_.end()) {
    if (it->second.status == StreamStatus::streaming && !it->second.workflow_id.empty()) --open_streams_;
    unlist_stream(it->second);
    streams_.erase(it);
  }
  drop_share(stream_shares_, id);
  early_deltas_.erase(id);
  last_activity_.erase(id);
  index_.remove_stream(id);
}

const Workflow* AgentState::find_workflow(std::string_view id) const {
  auto it = workflows_.find(id);
  return it == workflows_.end() ? nullptr : &it->second;
}

const Requirements* AgentState::find_requirements(std::string_view workflow_id) const {
  auto it = requirements_.find(workflow_id);
  return it == requirements_.end() ? nullptr : &it->second;
}

const Stream* AgentState::find_stream(std::string_view id) const {
  auto it = streams_.find(id);
  // A stream known only from deltas (its record not read yet) is not a stream yet.
  if (it == streams_.end() || it->second.workflow_id.empty()) return nullptr;
  return &it->second;
}

std::vector<const Stream*> AgentState::streams_of(std::string_view workflow_id) const {
  std::vector<const Stream*> out;
  auto by = streams_by_workflow_.find(workflow_id);
  if (by == streams_by_workflow_.end()) return out;
  out.reserve(by->second.size());
  for (const auto& [started, id] : by->second)
    if (auto it = streams_.find(id); it != streams_.end()) out.push_back(&it->second);
  return out;
}

std::uint64_t AgentState::last_number() const {
  return std::max(numbered_, by_number_.empty() ? 0 : by_number_.rbegin()->first);
}

std::vector<const Workflow*> AgentState::workflows_after(std::uint64_t after_number, std::size_t limit,
                                                         bool& more) const {
  std::vector<const Workflow*> out;
  more = false;
  if (after_number == UINT64_MAX) return out;
  for (auto it = by_number_.lower_bound({after_number + 1, std::string()}); it != by_number_.end(); ++it) {
    if (out.size() == limit) {
      more = true;
      break;
    }
    out.push_back(&workflows_.find(it->second)->second);
  }
  return out;
}

std::vector<std::string> AgentState::delta_record_ids(std::string_view stream_id) const {
  std::vector<std::string> ids;
  auto it = streams_.find(stream_id);
  // An ended stream's delta records went with its end.
  if (it == streams_.end() || it->second.status != StreamStatus::streaming) return ids;
  ids.reserve(it->second.deltas);
  for (std::uint64_t i = 0; i < it->second.deltas; ++i) ids.push_back(delta_record_id(stream_id, i));
  if (auto early = early_deltas_.find(stream_id); early != early_deltas_.end())
    for (const auto& [index, text] : early->second) ids.push_back(delta_record_id(stream_id, index));
  return ids;
}

json::object AgentState::workflow_json(const Workflow& wf) const {
  return workflow::workflow_json(wf, find_requirements(wf.id), streams_of(wf.id));
}

std::int64_t AgentState::last_activity(std::string_view stream_id) const {
  auto it = last_activity_.find(stream_id);
  return it == last_activity_.end() ? 0 : it->second;
}

std::uint64_t AgentState::workflow_bytes(std::string_view workflow_id) const {
  auto it = workflow_shares_.find(workflow_id);
  return it == workflow_shares_.end() ? 0 : it->second;
}

std::uint64_t AgentState::stream_bytes(std::string_view stream_id) const {
  auto it = stream_shares_.find(stream_id);
  return it == stream_shares_.end() ? 0 : it->second;
}

std::size_t AgentState::open_streams_of(std::string_view workflow_id) const {
  std::size_t n = 0;
  for (const Stream* st : streams_of(workflow_id)) n += st->status == StreamStatus::streaming;
  return n;
}

void AgentState::size_workflow(const std::string& id) {
  if (const Workflow* wf = find_workflow(id))
    set_share(workflow_shares_, id, workflow_share(*wf, find_requirements(id)));
}

void AgentState::size_stream(const Stream& st) {
  set_share(stream_shares_, st.id, stream_share(st));
}

void AgentState::set_share(Shares& shares, const std::string& id, std::uint64_t bytes) {
  std::uint64_t& share = shares[id];
  snapshot_bytes_ = snapshot_bytes_ - share + bytes;
  share = bytes;
}

void AgentState::drop_share(Shares& shares, std::string_view id) {
  if (auto it = shares.find(id); it != shares.end()) {
    snapshot_bytes_ -= it->second;
    shares.erase(it);
  }
}

std::string AgentState::snapshot_json() const {
  json::array workflows;
  workflows.reserve(by_number_.size());
  for (const auto& [number, id] : by_number_) workflows.push_back(workflow_json(workflows_.find(id)->second));
  std::vector<const Stream*> open;
  for (const auto& [id, st] : streams_)
    if (st.status == StreamStatus::streaming && !st.workflow_id.empty()) open.push_back(&st);
  std::sort(open.begin(), open.end(), [](const Stream* a, const Stream* b) {
    return std::tie(a->started_at_ms, a->id) < std::tie(b->started_at_ms, b->id);
  });
  json::array streams;
  streams.reserve(open.size());
  for (const Stream* st : open) streams.push_back(open_stream_json(*st));
  json::object o;
  o["workflows"] = std::move(workflows);
  o["streams"] = std::move(streams);
  return json::serialize(o);
}

hub::ChannelStateFactory agent_state_factory(WorkflowIndex& index, Clock clock) {
  return [&index, clock = std::move(clock)](std::string_view agent_id) -> std::unique_ptr<hub::ChannelState> {
    return std::make_unique<AgentState>(std::string(agent_id), index, clock);
  };
}

}  // namespace aw::workflow
