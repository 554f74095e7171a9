#include "workflow/workflow_service.hpp"

#include <limits>

#include "core/log.hpp"
#include "core/random_id.hpp"

namespace aw::workflow {
using hub::ChannelState;
using hub::Decision;
using hub::PublishCallback;
using hub::PublishResult;
namespace json = boost::json;
namespace {

// 64 random bits: a collision is negligible (and refused by the decision if it happened), and the id
// stays short enough to read in a log line.
std::string new_workflow_id() {
  return "wf_" + random_hex_id(8);
}
std::string new_stream_id() {
  return "st_" + random_hex_id(8);
}

PublishResult refused(Decision decision) {
  return {PublishResult::Status::refused, 0, {}, std::move(decision)};
}

const AgentState* as_agent_state(const ChannelState* state) {
  return dynamic_cast<const AgentState*>(state);
}

}  // namespace

WorkflowService::WorkflowService(hub::Hub& hub, WorkflowIndex& index, WorkflowServiceOptions options,
                                 Clock clock)
    : hub_(hub), index_(index), options_(options), clock_(std::move(clock)) {}

void WorkflowService::submit(std::string agent_id, Decide decide, std::string idempotency_key,
                             PublishCallback done) {
  hub::Command command;
  command.stateful = true;
  command.decide = [decide = std::move(decide)](const ChannelState* state) {
    return decide(as_agent_state(state));
  };
  hub_.submit(std::move(agent_id), std::move(command), std::move(idempotency_key), std::move(done));
}

std::optional<std::string> WorkflowService::original_event_data(std::string_view agent_id,
                                                                std::uint64_t seq) const {
  if (seq == 0) return std::nullopt;
  hub::HistoryPage page = hub_.history(agent_id, seq - 1, 1);
  if (page.events.empty() || page.events.front()->seq != seq) return std::nullopt;
  return std::string(page.events.front()->data());
}

PublishCallback WorkflowService::describe_duplicates(std::string agent_id, std::string workflow_id,
                                                     PublishCallback done) const {
  return [this, agent_id = std::move(agent_id), workflow_id = std::move(workflow_id),
          done = std::move(done)](const PublishResult& result) {
    if (result.status != PublishResult::Status::duplicate) return done(result);
    PublishResult r = result;
    std::string id = workflow_id;
    if (id.empty()) {  // a create: the original event names the workflow it made
      if (auto data = original_event_data(agent_id, result.seq)) {
        boost::system::error_code ec;
        json::value v = json::parse(*data, ec);
        if (!ec && v.is_object())
          if (auto* s = v.as_object().if_contains("id"); s && s->is_string())
            id = std::string(s->get_string());
      }
    }
    // Runs on the writer thread, which never holds a channel lock between commands.
    if (!id.empty())
      if (auto wf = get(id)) r.decision.reply_json = std::move(*wf);
    done(r);
  };
}

PublishCallback WorkflowService::replay_duplicates(std::string agent_id, PublishCallback done) const {
  return [this, agent_id = std::move(agent_id), done = std::move(done)](const PublishResult& result) {
    if (result.status != PublishResult::Status::duplicate) return done(result);
    PublishResult r = result;
    if (auto data = original_event_data(agent_id, result.seq)) r.decision.reply_json = std::move(*data);
    done(r);
  };
}

void WorkflowService::create(NewWorkflow request, std::string idempotency_key, PublishCallback done) {
  std::string agent_id = request.agent_id;
  auto decide = [this, request = std::move(request), id = new_workflow_id()](const AgentState* state) {
    return decide_create(state, id, request, clock_(), options_.limits);
  };
  PublishCallback reply =
      idempotency_key.empty() ? std::move(done) : describe_duplicates(agent_id, {}, std::move(done));
  submit(std::move(agent_id), std::move(decide), std::move(idempotency_key), std::move(reply));
}

std::optional<std::string> WorkflowService::owner(std::optional<std::string> local,
                                                  std::string_view id) const {
  if (local || !hub_.shared()) return local;
  try {
    return hub_.locate(id);
  } catch (const broker::BrokerError& e) {
    throw DirectoryUnavailable(e.what());
  }
}

std::optional<std::string> WorkflowService::owner_of_workflow(std::string_view workflow_id) const {
  return owner(index_.agent_of_workflow(workflow_id), workflow_id);
}

std::optional<std::string> WorkflowService::owner_of_stream(std::string_view stream_id) const {
  return owner(index_.agent_of_stream(stream_id), stream_id);
}

std::optional<std::string> WorkflowService::owner_for_command(bool workflow, const std::string& id,
                                                              PublishCallback& done) const {
  std::optional<std::string> agent_id;
  try {
    agent_id = workflow ? owner_of_workflow(id) : owner_of_stream(id);
  } catch (const DirectoryUnavailable& e) {
    done({PublishResult::Status::broker_unavailable, 0, "the message broker cannot be reached", {}});
    return std::nullopt;
  }
  if (!agent_id) done(refused(workflow ? workflow_not_found(id) : stream_not_found(id)));
  return agent_id;
}

void WorkflowService::workflow_command(
    std::string workflow_id, std::string idempotency_key, PublishCallback done,
    std::function<Decision(const AgentState*, const std::string&)> decide) {
  auto agent_id = owner_for_command(true, workflow_id, done);
  if (!agent_id) return;
  if (!idempotency_key.empty()) done = describe_duplicates(*agent_id, workflow_id, std::move(done));
  submit(
      std::move(*agent_id),
      [decide = std::move(decide), workflow_id](const AgentState* state) {
        return decide(state, workflow_id);
      },
      std::move(idempotency_key), std::move(done));
}

void WorkflowService::submit_requirements(std::string workflow_id, NewRequirements request,
                                          std::string idempotency_key, PublishCallback done) {
  workflow_command(std::move(workflow_id), std::move(idempotency_key), std::move(done),
                   [this, request = std::move(request)](const AgentState* state, const std::string& id) {
                     return decide_requirements(state, id, request, clock_(), options_.limits);
                   });
}

void WorkflowService::change_phase(std::string workflow_id, Phase to, std::optional<std::string> reason,
                                   std::string idempotency_key, PublishCallback done) {
  workflow_command(std::move(workflow_id), std::move(idempotency_key), std::move(done),
                   [this, to, reason = std::move(reason)](const AgentState* state, const std::string& id) {
                     return decide_phase(state, id, to, reason, clock_(), options_.limits);
                   });
}

void WorkflowService::report_progress(std::string workflow_id, double percent,
                                      std::optional<std::string> message, std::string idempotency_key,
                                      PublishCallback done) {
  workflow_command(
      std::move(workflow_id), std::move(idempotency_key), std::move(done),
      [this, percent, message = std::move(message)](const AgentState* state, const std::string& id) {
        return decide_progress(state, id, percent, message, clock_(), options_.limits);
      });
}

void WorkflowService::cancel(std::string workflow_id, std::optional<std::string> reason,
                             std::string idempotency_key, PublishCallback done) {
  change_phase(std::move(workflow_id), Phase::cancelled, std::move(reason), std::move(idempotency_key),
               std::move(done));
}

void WorkflowService::remove(std::string workflow_id, std::string idempotency_key, PublishCallback done) {
  auto agent_id = owner_for_command(true, workflow_id, done);
  if (!agent_id) return;
  submit(
      std::move(*agent_id),
      [workflow_id](const AgentState* state) { return decide_delete(state, workflow_id); },
      std::move(idempotency_key), std::move(done));
}

void WorkflowService::stream_command(const std::string& stream_id, std::string idempotency_key,
                                     PublishCallback done, Decide decide) {
  auto agent_id = owner_for_command(false, stream_id, done);
  if (!agent_id) return;
  if (!idempotency_key.empty()) done = replay_duplicates(*agent_id, std::move(done));
  submit(std::move(*agent_id), std::move(decide), std::move(idempotency_key), std::move(done));
}

std::string WorkflowService::open_stream(std::string workflow_id, std::string idempotency_key,
                                         PublishCallback done) {
  std::string stream_id = new_stream_id();
  auto agent_id = owner_for_command(true, workflow_id, done);
  if (!agent_id) return stream_id;
  if (!idempotency_key.empty()) done = replay_duplicates(*agent_id, std::move(done));
  submit(
      std::move(*agent_id),
      [this, workflow_id = std::move(workflow_id), stream_id](const AgentState* state) {
        return decide_open_stream(state, workflow_id, stream_id, clock_(), options_.limits);
      },
      std::move(idempotency_key), std::move(done));
  return stream_id;
}

void WorkflowService::append(std::string stream_id, std::string delta,
                             std::optional<std::uint64_t> expected_index, std::string idempotency_key,
                             PublishCallback done) {
  stream_command(stream_id, std::move(idempotency_key), std::move(done),
                 [this, stream_id, delta = std::move(delta), expected_index](const AgentState* state) {
                   return decide_append(state, stream_id, delta, expected_index, options_.limits);
                 });
}

void WorkflowService::end(std::string stream_id, StreamStatus status, std::optional<std::string> reason,
                          std::string idempotency_key, PublishCallback done) {
  stream_command(stream_id, std::move(idempotency_key), std::move(done),
                 [this, stream_id, status, reason = std::move(reason)](const AgentState* state) {
                   return decide_end(state, stream_id, status, reason, clock_(), options_.limits);
                 });
}

std::size_t WorkflowService::expire_idle_streams(std::int64_t now_ms) {
  const std::int64_t idle_before = now_ms - options_.stream_idle_timeout_ms;
  // Other nodes feed streams this node's index does not see: the broker's activity decides.
  if (hub_.shared()) return expire_claimed_streams(idle_before, now_ms);
  auto idle = index_.idle_streams(idle_before);
  for (auto& [stream_id, agent_id] : idle) {
    // The decision checks again on the writer thread: an append may have arrived since. (Bindings are
    // captured by init-capture: clang 14, which builds the TSan and fuzz targets, cannot name them.)
    submit(
        agent_id,
        [this, stream_id = stream_id, idle_before](const AgentState* state) {
          return decide_expire(state, stream_id, idle_before, clock_());
        },
        {},
        [stream_id = stream_id, agent_id = agent_id](const PublishResult& r) {
          if (r.status == PublishResult::Status::ok) {
            log::info("stream_expired", {{"agent_id", agent_id}, {"stream_id", stream_id}});
          } else if (r.status != PublishResult::Status::refused) {
            log::warn("stream_expire_failed", {{"stream_id", stream_id}, {"error", r.message}});
          }
        });
  }
  return idle.size();
}

std::size_t WorkflowService::expire_claimed_streams(std::int64_t idle_before_ms, std::int64_t now_ms) {
  // At most this many per check (a check runs every timeout/4, at most every second).
  constexpr std::size_t kClaimsPerCheck = 256;
  std::vector<broker::IdleName> idle;
  try {
    idle = hub_.claim_idle(idle_before_ms, now_ms, kClaimsPerCheck);
  } catch (const broker::BrokerError& e) {
    log::warn("stream_expire_failed", {{"error", e.what()}});
    return 0;
  }
  for (auto& claimed : idle) {
    // The broker saw it idle and this node holds the claim: the decision only checks that it still
    // streams (its state here was read again, and a stale one loses to the version check).
    submit(
        claimed.agent_id,
        [this, stream_id = claimed.id](const AgentState* state) {
          return decide_expire(state, stream_id, std::numeric_limits<std::int64_t>::max(), clock_());
        },
        {},
        [stream_id = claimed.id, agent_id = claimed.agent_id](const PublishResult& r) {
          if (r.status == PublishResult::Status::ok) {
            log::info("stream_expired", {{"agent_id", agent_id}, {"stream_id", stream_id}});
          } else if (r.status != PublishResult::Status::refused) {
            log::warn("stream_expire_failed", {{"stream_id", stream_id}, {"error", r.message}});
          }
        });
  }
  return idle.size();
}

std::optional<std::string> WorkflowService::get(std::string_view workflow_id) const {
  auto agent_id = owner_of_workflow(workflow_id);
  if (!agent_id) return std::nullopt;
  std::optional<std::string> out;
  hub_.with_state(*agent_id, [&](const ChannelState* s) {
    const AgentState* state = as_agent_state(s);
    if (!state) return;
    if (const Workflow* wf = state->find_workflow(workflow_id))
      out = json::serialize(state->workflow_json(*wf));
  });
  return out;
}

std::optional<std::string> WorkflowService::get_stream(std::string_view stream_id) const {
  auto agent_id = owner_of_stream(stream_id);
  if (!agent_id) return std::nullopt;
  std::optional<json::object> out;
  hub_.with_state(*agent_id, [&](const ChannelState* s) {
    const AgentState* state = as_agent_state(s);
    const Stream* st = state ? state->find_stream(stream_id) : nullptr;
    if (!st) return;
    json::object o = stream_summary_json(*st);
    o["workflow_id"] = st->workflow_id;
    if (st->status == StreamStatus::streaming) {
      o["index"] = st->deltas;
      o["text"] = st->text;
    }
    out = std::move(o);
  });
  if (!out) return std::nullopt;
  if (!out->contains("text")) {
    // Ended: its text was committed with its end, before the state said so; read outside the lock.
    json::value text = nullptr;
    try {
      if (auto record = hub_.load_cold_record(*agent_id, kStreamTextKind, stream_id))
        if (auto parsed = parse_delta_record(*record)) text = json::string(*parsed);
    } catch (const store::StoreError& e) {
      log::warn("stream_text_unreadable", {{"stream_id", std::string(stream_id)}, {"error", e.what()}});
    } catch (const broker::BrokerError& e) {
      log::warn("stream_text_unreadable", {{"stream_id", std::string(stream_id)}, {"error", e.what()}});
    }
    (*out)["text"] = std::move(text);
  }
  return json::serialize(*out);
}

std::optional<std::string> WorkflowService::workflow_streams(std::string_view workflow_id) const {
  auto agent_id = owner_of_workflow(workflow_id);
  if (!agent_id) return std::nullopt;
  std::optional<std::string> out;
  hub_.with_state(*agent_id, [&](const ChannelState* s) {
    const AgentState* state = as_agent_state(s);
    if (!state || !state->find_workflow(workflow_id)) return;
    json::array streams;
    for (const Stream* st : state->streams_of(workflow_id)) {
      json::object o = stream_summary_json(*st);
      o["workflow_id"] = st->workflow_id;
      if (st->status == StreamStatus::streaming) o["index"] = st->deltas;
      streams.push_back(std::move(o));
    }
    json::object o{{"workflow_id", workflow_id}, {"streams", std::move(streams)}};
    out = json::serialize(o);
  });
  return out;
}

std::string WorkflowService::agents(std::string_view after, std::size_t limit,
                                    const std::function<bool(std::string_view)>& visible) const {
  if (hub_.shared()) return listed_agents(after, limit, visible);
  bool more = false;
  auto page = index_.agents_after(after, limit, more, visible);
  json::array items;
  items.reserve(page.size());
  for (const auto& a : page)
    items.push_back(json::object{
        {"agent_id", a.agent_id}, {"workflows", a.workflows}, {"updated", timestamp_json(a.updated_ms)}});
  json::value next = nullptr;
  if (more && !page.empty()) next = json::string(page.back().agent_id);
  json::object o{{"agents", std::move(items)}, {"next", std::move(next)}};
  return json::serialize(o);
}

std::string WorkflowService::listed_agents(std::string_view after, std::size_t limit,
                                           const std::function<bool(std::string_view)>& visible) const {
  // The broker's listing (every node's agents), a chunk at a time until the page and one more are found.
  const std::size_t chunk = std::max<std::size_t>(limit + 1, 64);
  json::array items;
  std::string cursor(after);
  std::string last;
  bool more = false;
  for (;;) {
    std::vector<broker::ListedChannel> listed;
    try {
      listed = hub_.listed_channels(cursor, chunk);
    } catch (const broker::BrokerError& e) {
      throw DirectoryUnavailable(e.what());
    }
    for (const auto& a : listed) {
      if (visible && !visible(a.agent_id)) continue;
      if (items.size() == limit) {
        more = true;
        break;
      }
      items.push_back(json::object{
          {"agent_id", a.agent_id}, {"workflows", a.count}, {"updated", timestamp_json(a.updated_ms)}});
      last = a.agent_id;
    }
    if (more || listed.size() < chunk) break;
    cursor = listed.back().agent_id;
  }
  json::value next = nullptr;
  if (more && !items.empty()) next = json::string(last);
  json::object o{{"agents", std::move(items)}, {"next", std::move(next)}};
  return json::serialize(o);
}

std::string WorkflowService::list(std::string_view agent_id, std::size_t limit,
                                  std::uint64_t after_number) const {
  json::array items;
  json::value next_cursor = nullptr;
  hub_.with_state(agent_id, [&](const ChannelState* s) {
    const AgentState* state = as_agent_state(s);
    if (!state) return;
    bool more = false;
    auto page = state->workflows_after(after_number, limit, more);
    items.reserve(page.size());
    for (const Workflow* wf : page) items.push_back(state->workflow_json(*wf));
    if (more && !page.empty()) next_cursor = json::string(std::to_string(page.back()->number));
  });
  json::object o{
      {"agent_id", agent_id}, {"workflows", std::move(items)}, {"next_cursor", std::move(next_cursor)}};
  return json::serialize(o);
}

}  // namespace aw::workflow
