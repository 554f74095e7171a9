#include "hub/hub.hpp"

#include <algorithm>
#include <chrono>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/random_id.hpp"
#include "protocol/envelope.hpp"

namespace aw {
namespace {

// The calling thread's choice made with Hub::defer_wakes_on_this_thread.
struct DeferredWakes {
  const Hub* hub = nullptr;
  Hub::WakeDeferrer defer;
  bool scheduled = false;  // a wake is handed to `defer` and has not run yet
};
thread_local DeferredWakes t_deferred_wakes;

}  // namespace

Hub::Hub(HubOptions options, EventStore& store, ShardDispatcher& shards, ChannelStateFactory state)
    : options_(options), store_(store), shards_(shards), state_factory_(std::move(state)) {}

Hub::~Hub() { stop(); }

void Hub::start() {
  const std::int64_t min_ts = now_unix_ms() - options_.history_ttl_ms;
  for (auto& sc : store_.load_channels()) {
    auto ch = std::make_unique<Channel>(sc.agent_id, sc.epoch, sc.last_seq, options_.history_size,
                                        options_.history_ttl_ms, shards_.shard_count());
    ch->stored = true;
    if (state_factory_) {
      ch->state = state_factory_(sc.agent_id);
      ch->state->apply(store_.load_state(sc.agent_id));
    }
    channels_.emplace(sc.agent_id, std::move(ch));
  }
  // One pass over the stored events, in commit order (each channel's in seq order); a channel's history
  // ring keeps its newest history_size. A run of one channel's events is looked up once.
  Channel* ch = nullptr;
  store_.load_events(min_ts, [&](StoredEvent&& se) {
    if (ch == nullptr || ch->agent_id != se.agent_id) {
      auto it = channels_.find(se.agent_id);
      ch = it != channels_.end() ? it->second.get() : nullptr;
      if (ch == nullptr) return;  // an event without its channel row: cannot happen, and unusable anyway
    }
    ch->history.push(protocol::make_event(std::move(se.agent_id), se.seq, std::move(se.type), se.ts_ms,
                                          std::move(se.data), std::move(se.idempotency_key)));
  });
  log::info("hub_started", {{"channels", std::to_string(channels_.size())},
                            {"store", store_.durable() ? "sqlite" : "memory"}});
  writer_ = std::thread([this] { writer_loop(); });
}

void Hub::stop() {
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_ && !writer_.joinable()) return;
    stopping_ = true;
  }
  queue_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void Hub::publish(std::string agent_id, std::string type, std::string data, std::string idempotency_key,
                  PublishCallback done) {
  Command command;
  command.decide = [type = std::move(type), data = std::move(data)](const ChannelState*) mutable {
    Decision d;
    d.type = std::move(type);
    d.data = std::move(data);
    return d;
  };
  submit(std::move(agent_id), std::move(command), std::move(idempotency_key), std::move(done));
}

void Hub::submit(std::string agent_id, Command command, std::string idempotency_key, PublishCallback done) {
  std::unique_lock lock(queue_mutex_);
  if (stopping_) {
    lock.unlock();
    done({PublishResult::Status::shutting_down, 0, "server is shutting down", {}});
    return;
  }
  if (queue_.size() >= options_.max_pending) {
    lock.unlock();
    publish_failures_.fetch_add(1, std::memory_order_relaxed);
    done({PublishResult::Status::overloaded, 0, "too many publishes waiting to be stored", {}});
    return;
  }
  queue_.push_back({std::move(agent_id), std::move(command), std::move(idempotency_key), std::move(done)});
  bool was_empty = queue_.size() == 1;
  lock.unlock();
  // A queue that was not empty has its wake coming already (or the writer is busy and will look again).
  if (!was_empty) return;
  DeferredWakes& deferred = t_deferred_wakes;
  if (deferred.hub != this || !deferred.defer) {
    queue_cv_.notify_one();
    return;
  }
  if (deferred.scheduled) return;
  deferred.scheduled = true;
  deferred.defer([this] {
    t_deferred_wakes.scheduled = false;
    queue_cv_.notify_one();
  });
}

void Hub::defer_wakes_on_this_thread(WakeDeferrer defer) {
  t_deferred_wakes = DeferredWakes{this, std::move(defer), false};
}

Channel& Hub::channel_for(std::string_view agent_id) {
  std::lock_guard lock(channels_mutex_);
  auto it = channels_.find(agent_id);
  if (it != channels_.end()) return *it->second;
  auto ch = std::make_unique<Channel>(std::string(agent_id), random_hex_id(8), 0, options_.history_size,
                                      options_.history_ttl_ms, shards_.shard_count());
  if (state_factory_) ch->state = state_factory_(agent_id);
  auto& ref = *ch;
  channels_.emplace(std::string(agent_id), std::move(ch));
  return ref;
}

Channel* Hub::find_channel(std::string_view agent_id) {
  std::lock_guard lock(channels_mutex_);
  auto it = channels_.find(agent_id);
  return it == channels_.end() ? nullptr : it->second.get();
}

void Hub::writer_loop() {
  using namespace std::chrono;
  std::int64_t next_prune = now_unix_ms() + options_.prune_interval_ms;
  std::vector<Pending> batch;
  for (;;) {
    {
      std::unique_lock lock(queue_mutex_);
      queue_cv_.wait_for(lock, milliseconds(std::max<std::int64_t>(1, next_prune - now_unix_ms())),
                         [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) break;
      std::size_t n = std::min(options_.max_batch, queue_.size());
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    for (std::size_t from = 0; from < batch.size();) from = commit_batch(batch, from);
    batch.clear();
    std::int64_t now = now_unix_ms();
    if (now >= next_prune) {
      prune(now);
      next_prune = now + options_.prune_interval_ms;
    }
  }
}

std::size_t Hub::commit_batch(std::vector<Pending>& batch, std::size_t from) {
  struct Staged {
    Channel* channel;
    EventPtr event;
    std::vector<StateRecord> records;
  };
  // Per publish: what became of it.
  struct Outcome {
    enum class Kind { staged, refused, duplicate_of_history, duplicate_in_batch } kind = Kind::staged;
    std::size_t staged_index = 0;
    std::uint64_t seq = 0;
    Decision decision;
  };

  std::vector<StoredChannel> new_channels;
  std::vector<const Event*> events;
  std::vector<const StateRecord*> records;
  std::vector<Staged> staged;
  std::vector<Outcome> outcomes;
  std::vector<std::pair<Channel*, std::uint64_t>> seq_before;  // to roll back on a failed commit
  std::unordered_map<std::string, std::size_t> batch_keys;     // agent \0 key -> staged index
  const std::int64_t now = now_unix_ms();
  staged.reserve(batch.size() - from);
  events.reserve(batch.size() - from);

  std::size_t end = from;
  for (; end < batch.size(); ++end) {
    Pending& p = batch[end];
    Channel& ch = channel_for(p.agent_id);
    bool touched = std::any_of(seq_before.begin(), seq_before.end(), [&](auto& e) { return e.first == &ch; });
    // A stateful command must see the state of every earlier event of its channel: commit those first.
    if (p.command.stateful && touched) break;
    Outcome& o = outcomes.emplace_back();
    std::string composite;
    if (!p.idempotency_key.empty()) {
      composite = p.agent_id + '\0' + p.idempotency_key;
      if (auto it = batch_keys.find(composite); it != batch_keys.end()) {
        o.kind = Outcome::Kind::duplicate_in_batch;
        o.staged_index = it->second;
        continue;
      }
      std::optional<std::uint64_t> seen;
      {
        std::lock_guard lock(ch.mutex);
        seen = ch.history.seq_for_key(p.idempotency_key);
      }
      if (seen) {
        o.kind = Outcome::Kind::duplicate_of_history;
        o.seq = *seen;
        continue;
      }
    }
    // Only this thread changes the state, so reading it without the lock is safe here.
    o.decision = p.command.decide(ch.state.get());
    if (o.decision.refusal != Decision::Refusal::none) {
      o.kind = Outcome::Kind::refused;
      continue;
    }
    if (!composite.empty()) batch_keys.emplace(std::move(composite), staged.size());
    if (!touched) {
      seq_before.emplace_back(&ch, ch.next_seq);
      if (!ch.stored) {
        std::lock_guard lock(ch.mutex);
        new_channels.push_back({ch.agent_id, ch.epoch, 0});
      }
    }
    std::uint64_t seq = ch.next_seq++;
    o.staged_index = staged.size();
    o.seq = seq;
    staged.push_back({&ch,
                      protocol::make_event(p.agent_id, seq, std::move(o.decision.type), now,
                                           std::move(o.decision.data), std::move(p.idempotency_key),
                                           o.decision.mergeable),
                      std::move(o.decision.records)});
  }
  for (auto& s : staged) {
    events.push_back(s.event.get());
    for (auto& r : s.records) records.push_back(&r);
  }

  PublishResult failure{PublishResult::Status::ok, 0, {}, {}};
  if (!events.empty()) {
    try {
      store_.append(new_channels, events, records);
    } catch (const StoreError& e) {
      failure = {e.full() ? PublishResult::Status::store_full : PublishResult::Status::store_failed, 0,
                 e.full() ? "event store is full" : "event store write failed", {}};
      log::error("store_append_failed", {{"error", e.what()}, {"events", std::to_string(events.size())}});
    }
  }

  if (failure.status != PublishResult::Status::ok) {
    // Nothing was stored, so nothing is broadcast and the seqs are handed out again.
    for (auto& [ch, seq] : seq_before) ch->next_seq = seq;
    publish_failures_.fetch_add(staged.size(), std::memory_order_relaxed);
  } else {
    for (auto& [ch, seq] : seq_before) ch->stored = true;
    // In seq order: each event into its channel's history and state, then one post per shard for the
    // whole batch, so each subscriber takes all of it before its socket flushes (a burst leaves in one
    // write) and a batch spread over many channels costs one hand-over per shard, not one per channel.
    ShardDeliveries deliveries(shards_.shard_count());
    for (auto& s : staged) record(*s.channel, s.event, s.records, deliveries);
    post_deliveries(deliveries);
    publishes_.fetch_add(staged.size(), std::memory_order_relaxed);
  }

  for (std::size_t i = from; i < end; ++i) {
    Outcome& o = outcomes[i - from];
    PublishResult r{PublishResult::Status::ok, o.seq, {}, {}};
    switch (o.kind) {
      case Outcome::Kind::refused:
        r.status = PublishResult::Status::refused;
        r.decision = std::move(o.decision);
        break;
      case Outcome::Kind::duplicate_of_history: r.status = PublishResult::Status::duplicate; break;
      case Outcome::Kind::duplicate_in_batch:
        if (failure.status != PublishResult::Status::ok) {
          r = failure;
        } else {
          r.status = PublishResult::Status::duplicate;
          r.seq = staged[o.staged_index].event->seq;
        }
        break;
      case Outcome::Kind::staged:
        if (failure.status != PublishResult::Status::ok) {
          r = failure;
        } else {
          r.decision.reply_json = std::move(o.decision.reply_json);
        }
        break;
    }
    batch[i].done(r);
  }
  return end;
}

void Hub::record(Channel& ch, const EventPtr& event, const std::vector<StateRecord>& records,
                 ShardDeliveries& deliveries) {
  std::lock_guard lock(ch.mutex);
  ch.history.push(event);
  ch.last_seq = event->seq;
  if (ch.state && !records.empty()) ch.state->apply(records);
  for (unsigned s = 0; s < ch.shard_subscribers.size(); ++s) {
    if (ch.shard_subscribers[s] != 0) deliveries[s].push_back({&ch, event});
  }
}

void Hub::post_deliveries(ShardDeliveries& deliveries) {
  // Posting outside the channel locks is safe: only this thread posts, in seq order, each shard runs
  // its queue in order, and a subscriber that joined meanwhile skips what its join already covered.
  for (unsigned s = 0; s < deliveries.size(); ++s) {
    if (deliveries[s].empty()) continue;
    auto batch = std::make_shared<std::vector<Delivery>>(std::move(deliveries[s]));
    shards_.post(s, [s, batch = std::move(batch)] {
      for (const Delivery& d : *batch) d.channel->local[s].deliver(d.event);
    });
  }
}

JoinResult Hub::join(std::string_view agent_id, unsigned shard, Subscriber* sub,
                     const std::optional<Position>& since) {
  Channel& ch = channel_for(agent_id);
  JoinResult r;
  r.channel = &ch;
  {
    std::lock_guard lock(ch.mutex);
    r.epoch = ch.epoch;
    r.seq = ch.last_seq;
    if (since) {
      // Without an epoch a client can still ask for "everything from the start" (since=0).
      bool same_history = since->epoch == ch.epoch || (since->epoch.empty() && since->seq == 0);
      if (same_history) {
        if (auto events = ch.history.since(since->seq, ch.last_seq)) {
          r.recovered = true;
          r.replay = std::move(*events);
        }
      }
      if (!r.recovered) r.state_json = state_of(ch);
    }
    sub->delivered_seq = ch.last_seq;
    ++ch.shard_subscribers[shard];
  }
  ch.local[shard].add(sub);
  return r;
}

void Hub::leave(Channel* ch, unsigned shard, Subscriber* sub) {
  ch->local[shard].remove(sub);
  std::lock_guard lock(ch->mutex);
  --ch->shard_subscribers[shard];
}

std::string Hub::state_of(Channel& ch) const { return ch.state ? ch.state->snapshot_json() : "{}"; }

Hub::Snapshot Hub::snapshot(Channel* ch) {
  std::lock_guard lock(ch->mutex);
  return {ch->last_seq, ch->epoch, state_of(*ch)};
}

std::optional<Hub::Snapshot> Hub::snapshot(std::string_view agent_id) {
  Channel* ch = find_channel(agent_id);
  if (!ch) return std::nullopt;
  return snapshot(ch);
}

bool Hub::with_state(std::string_view agent_id, const std::function<void(const ChannelState*)>& read) {
  Channel* ch = find_channel(agent_id);
  if (!ch) return false;
  std::lock_guard lock(ch->mutex);
  read(ch->state.get());
  return true;
}

HistoryPage Hub::history(std::string_view agent_id, std::uint64_t since, std::size_t limit) {
  HistoryPage page;
  Channel* ch = find_channel(agent_id);
  if (!ch) {
    page.complete = true;
    return page;
  }
  std::lock_guard lock(ch->mutex);
  page.epoch = ch->epoch;
  page.latest = ch->last_seq;
  page.oldest = ch->history.first_seq();
  std::uint64_t from = since;
  page.complete = true;
  if (since < ch->last_seq && (ch->history.size() == 0 || since + 1 < page.oldest)) {
    page.complete = false;
    from = page.oldest == 0 ? ch->last_seq : page.oldest - 1;
  }
  if (from < ch->last_seq) {
    if (auto events = ch->history.since(from, ch->last_seq, limit)) page.events = std::move(*events);
  }
  return page;
}

void Hub::prune(std::int64_t now_ms) {
  std::vector<Channel*> all;
  {
    std::lock_guard lock(channels_mutex_);
    all.reserve(channels_.size());
    for (auto& [id, ch] : channels_) all.push_back(ch.get());
  }
  for (Channel* ch : all) {
    std::lock_guard lock(ch->mutex);
    ch->history.expire(now_ms);
  }
  try {
    store_.prune(options_.history_size, now_ms - options_.history_ttl_ms);
  } catch (const StoreError& e) {
    log::error("store_prune_failed", {{"error", e.what()}});
  }
}

HubStats Hub::stats(std::size_t top) {
  HubStats s;
  std::vector<Channel*> all;
  {
    std::lock_guard lock(channels_mutex_);
    all.reserve(channels_.size());
    for (auto& [id, ch] : channels_) all.push_back(ch.get());
  }
  s.channels = all.size();
  std::vector<ChannelSummary> summaries;
  for (Channel* ch : all) {
    std::lock_guard lock(ch->mutex);
    ChannelSummary c{ch->agent_id, ch->subscriber_count(), ch->last_seq, ch->history.size()};
    s.subscribers += c.subscribers;
    s.history_events += c.history_events;
    s.history_bytes += ch->history.bytes();
    if (c.subscribers > 0) summaries.push_back(std::move(c));
  }
  std::size_t n = std::min(top, summaries.size());
  std::partial_sort(summaries.begin(), summaries.begin() + n, summaries.end(),
                    [](const auto& a, const auto& b) { return a.subscribers > b.subscribers; });
  summaries.resize(n);
  s.busiest = std::move(summaries);
  s.publishes = publishes_.load(std::memory_order_relaxed);
  s.publish_failures = publish_failures_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace aw
