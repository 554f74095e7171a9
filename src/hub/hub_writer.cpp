// The hub's writer thread: the queue publishers and waiting threads hand it work through, its loop, and
// its group commit in four stages (stage, store through the broker, record and post, answer).
#include <algorithm>
#include <chrono>
#include <future>
#include <optional>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "hub/hub.hpp"

namespace aw::hub {
using broker::BrokerError;
using store::StateRecord;
namespace {

// The calling thread's choice made with Hub::defer_wakes_on_this_thread.
struct DeferredWakes {
  const Hub* hub = nullptr;
  Hub::WakeDeferrer defer;
  bool scheduled = false;  // a wake is handed to `defer` and has not run yet
};
thread_local DeferredWakes t_deferred_wakes;
// The hub whose writer loop runs on this thread.
thread_local const Hub* t_writer_of = nullptr;

PublishResult failure_of(BrokerError::Kind kind) {
  switch (kind) {
    case BrokerError::Kind::full:
      return {PublishResult::Status::store_full, 0, "event store is full", {}};
    case BrokerError::Kind::unavailable:
      return {PublishResult::Status::broker_unavailable, 0, "the message broker cannot be reached", {}};
    case BrokerError::Kind::failed:
      break;
  }
  return {PublishResult::Status::store_failed, 0, "event store write failed", {}};
}

}  // namespace

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
  queue_.push_back(
      {{}, std::move(agent_id), std::move(command), std::move(idempotency_key), std::move(done)});
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

void Hub::run_on_writer(const std::function<void()>& task) {
  if (t_writer_of == this) return task();
  std::unique_lock lock(queue_mutex_);
  // Before start() or after the writer has finished nobody else uses the store; the lock serializes us.
  if (!writer_running_) return task();
  std::promise<void> finished;
  // A broker failure crosses threads as a deep copy made here: the exception object itself (its
  // message a copy-on-write string that libstdc++ shares between copies without instrumentation)
  // stays on this thread, and the waiting one throws its own.
  std::optional<BrokerError> broker_failure;
  Pending p;
  p.task = [&] {
    try {
      task();
      finished.set_value();
    } catch (const BrokerError& e) {
      broker_failure.emplace(std::string(e.what()), e.kind());
      finished.set_value();
    } catch (...) {
      finished.set_exception(std::current_exception());  // rethrown on the waiting thread
    }
  };
  queue_.push_back(std::move(p));
  lock.unlock();
  queue_cv_.notify_one();
  finished.get_future().get();
  if (broker_failure) throw BrokerError(std::string(broker_failure->what()), broker_failure->kind());
}

void Hub::writer_loop() {
  using namespace std::chrono;
  t_writer_of = this;
  std::int64_t next_prune = now_unix_ms() + options_.prune_interval_ms;
  std::vector<Pending> batch;
  for (;;) {
    bool left = false;
    {
      std::unique_lock lock(queue_mutex_);
      if (in_flight_ && queue_.empty()) {
        lock.unlock();
        if (await_in_flight()) finish_in_flight();
        lock.lock();
      }
      // Channels behind a broker that could not be read are tried again every 100 ms.
      std::int64_t wait_ms = std::max<std::int64_t>(1, next_prune - now_unix_ms());
      if (!behind_.empty()) wait_ms = std::min<std::int64_t>(wait_ms, 100);
      queue_cv_.wait_for(lock, milliseconds(wait_ms), [this] {
        return stopping_ || !queue_.empty() || !left_.empty() || !inbound_.empty();
      });
      if (queue_.empty() && stopping_) {
        if (in_flight_) continue;  // answered at the top of the loop first
        writer_running_ = false;
        break;
      }
      std::size_t n = std::min(options_.max_batch, queue_.size());
      for (std::size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      left = !left_.empty();
    }
    for (std::size_t from = 0; from < batch.size();) {
      if (batch[from].task) {
        finish_in_flight();
        batch[from++].task();
      } else {
        from = commit_batch(batch, from);
      }
    }
    batch.clear();
    if (shared_) {
      take_inbound();
      retry_behind();
    }
    std::int64_t now = now_unix_ms();
    // Channels leave memory here: none may be in a commit in flight.
    if (left || now >= next_prune) finish_in_flight();
    if (left) evict_left_channels(now);
    if (now >= next_prune) {
      prune(now);
      next_prune = now + options_.prune_interval_ms;
    }
  }
}

std::size_t Hub::commit_batch(std::vector<Pending>& batch, std::size_t from) {
  // A stateful command decides against the state after every earlier event, so what is in flight is
  // finished before it is staged.
  const bool pipelined = broker_.pipelines_commits() && plain_run(batch, from);
  if (!pipelined) finish_in_flight();
  Staging& s = staging_;
  s.batch.clear();
  s.batch.ts_ms = now_unix_ms();
  s.channels.clear();
  s.outcomes.clear();
  s.keys.clear();
  s.absent.clear();
  const std::size_t end = stage(batch, from);
  // Channels leave memory only between batches, on this thread, so the staged pointers stay valid.
  for (Channel* ch : s.channels) {
    if (ch != nullptr) ch->batch_slot = Channel::kNotInBatch;
  }
  if (pipelined) {
    send_staged(batch, from, end);
    return end;
  }
  PublishResult failure = store_staged();
  if (failure.status == PublishResult::Status::ok) record_staged();
  answer(batch, from, failure);
  decide_conflicted_again();
  return end;
}

bool Hub::plain_run(const std::vector<Pending>& batch, std::size_t from) {
  for (std::size_t i = from; i < batch.size() && !batch[i].task; ++i) {
    if (batch[i].command.stateful) return false;
  }
  return true;
}

void Hub::send_staged(std::vector<Pending>& batch, std::size_t from, std::size_t end) {
  InFlight next;
  next.pending.reserve(end - from);
  for (std::size_t i = from; i < end; ++i) next.pending.push_back(std::move(batch[i]));
  if (!staging_.batch.drafts.empty()) {
    try {
      next.sent = broker_.send_commit(staging_.batch);
    } catch (const BrokerError& e) {
      next.failure = nothing_stored(e);
    }
  }
  // Moved, not copied: the drafts stay where the broker's request pointed.
  std::swap(next.staging, staging_);
  finish_in_flight();  // the one before: the broker stores it first, and this one meanwhile
  in_flight_ = std::move(next);
}

bool Hub::await_in_flight() {
  if (!in_flight_->sent) return true;
  // Until the broker answers, a publish that comes is sent right behind it instead of waiting for it.
  for (;;) {
    if (broker_.commit_answered(*in_flight_->sent, std::chrono::microseconds(200))) return true;
    std::lock_guard lock(queue_mutex_);
    if (stopping_) return true;
    if (!queue_.empty()) return false;
  }
}

void Hub::finish_in_flight() {
  if (!in_flight_) return;
  InFlight f = std::move(*in_flight_);
  in_flight_.reset();
  std::swap(staging_, f.staging);
  const PublishResult failure = f.failure ? *f.failure : store_staged(std::move(f.sent));
  if (failure.status == PublishResult::Status::ok) record_staged();
  answer(f.pending, 0, failure);
  decide_conflicted_again();
}

PublishResult Hub::contended(const Pending& p) {
  log::warn("state_contended", {{"agent_id", p.agent_id}, {"attempts", std::to_string(p.attempts)}});
  publish_failures_.fetch_add(1, std::memory_order_relaxed);
  return {
      PublishResult::Status::contended, 0, "the agent's state kept changing on other nodes; try again", {}};
}

bool Hub::sync_channel(Channel& ch) {
  const std::uint64_t before = ch.state_version;
  if (!ch.live) {
    refresh_or_throw(ch);
  } else {
    ShardDeliveries deliveries(shards_.shard_count());
    const bool read = resync(ch, deliveries);
    post_deliveries(deliveries);  // the events it caught up with, before any of the commit under way
    if (!read) {
      behind_.push_back(ch.agent_id);
      throw BrokerError("the channel's state could not be read", BrokerError::Kind::unavailable);
    }
  }
  return ch.state_version != before;
}

void Hub::decide_conflicted_again() {
  if (conflicted_.empty()) return;
  std::vector<Pending> again;
  again.swap(conflicted_);
  // Each channel once: its events and state as the broker has them now.
  std::unordered_map<std::string, std::optional<BrokerError>> synced;
  std::size_t kept = 0;
  for (std::size_t i = 0; i < again.size(); ++i) {
    Pending& p = again[i];
    auto [it, fresh] = synced.try_emplace(p.agent_id);
    if (fresh) {
      try {
        sync_channel(*channel_on_writer(p.agent_id, true));
      } catch (const BrokerError& e) {
        it->second = e;
      }
    }
    if (it->second) {
      publish_failures_.fetch_add(1, std::memory_order_relaxed);
      p.done(failure_of(it->second->kind()));
    } else if (++p.attempts >= options_.max_decide_attempts) {
      p.done(contended(p));
    } else if (kept++ != i) {
      again[kept - 1] = std::move(p);
    }
  }
  again.resize(kept);
  for (std::size_t from = 0; from < again.size();) from = commit_batch(again, from);
}

std::size_t Hub::batch_channel(Channel& ch) {
  if (ch.batch_slot != Channel::kNotInBatch) return ch.batch_slot;
  ch.batch_slot = staging_.channels.size();
  staging_.channels.push_back(&ch);
  // Only this thread changes last_seq and epoch, so reading them without the lock is safe here.
  staging_.batch.channels.push_back({ch.agent_id, ch.epoch, ch.last_seq, ch.stored});
  return ch.batch_slot;
}

std::size_t Hub::absent_batch_channel(const std::string& agent_id) {
  auto [it, fresh] = staging_.absent.try_emplace(agent_id, staging_.channels.size());
  if (fresh) {
    staging_.channels.push_back(nullptr);
    staging_.batch.channels.push_back({agent_id, new_epoch(agent_id), 0, false});
  }
  return it->second;
}

std::size_t Hub::stage(std::vector<Pending>& batch, std::size_t from) {
  Staging& s = staging_;
  // A key already published earlier in this batch answers as a duplicate of that draft; `composite`
  // (agent and key) is what a fresh one is recorded under.
  auto earlier_in_batch = [&s](const Pending& p, std::string& composite, Outcome& o) {
    if (p.idempotency_key.empty()) return false;
    composite = p.agent_id + '\0' + p.idempotency_key;
    auto it = s.keys.find(composite);
    if (it == s.keys.end()) return false;
    o.kind = Outcome::Kind::duplicate_in_batch;
    o.draft = it->second;
    return true;
  };
  std::size_t end = from;
  for (; end < batch.size(); ++end) {
    Pending& p = batch[end];
    if (p.task) break;
    std::shared_ptr<Channel> held;
    try {
      // A shared broker numbers and checks keys itself: a plain publish needs no channel in memory.
      held = shared_ && !p.command.stateful ? find_channel(p.agent_id) : channel_on_writer(p.agent_id, true);
    } catch (const BrokerError& e) {
      log::error("store_read_failed", {{"agent_id", p.agent_id}, {"error", e.what()}});
      s.outcomes.emplace_back().kind = Outcome::Kind::unloadable;
      continue;
    }
    if (!held) {
      Outcome& o = s.outcomes.emplace_back();
      std::string composite;
      if (earlier_in_batch(p, composite, o)) continue;
      o.decision = p.command.decide(nullptr);
      if (o.decision.refusal != Decision::Refusal::none) {
        o.kind = Outcome::Kind::refused;
        continue;
      }
      o.draft = s.batch.drafts.size();
      if (!composite.empty()) s.keys.emplace(std::move(composite), o.draft);
      broker::Draft& d = s.batch.drafts.emplace_back();
      d.channel = absent_batch_channel(p.agent_id);
      d.type = std::move(o.decision.type);
      d.data = std::move(o.decision.data);
      d.idempotency_key = std::move(p.idempotency_key);
      d.mergeable = o.decision.mergeable;
      d.records = std::move(o.decision.records);
      d.directory = std::move(o.decision.directory);
      continue;
    }
    Channel& ch = *held;
    // A stateful command must see the state of every earlier event of its channel: commit those first.
    if (p.command.stateful && ch.batch_slot != Channel::kNotInBatch) break;
    Outcome& o = s.outcomes.emplace_back();
    std::string composite;
    if (earlier_in_batch(p, composite, o)) continue;
    if (!p.idempotency_key.empty()) {
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
    if (o.decision.refusal != Decision::Refusal::none && shared_ && p.command.stateful) {
      // A refusal is stored nowhere, so no version check confirms it: it must hold for the broker's
      // state, not only for this node's (one read, on this rare path only). And a retry of a command
      // already stored (whose event this node may never have held) answers as the duplicate it is.
      try {
        if (!p.idempotency_key.empty()) {
          if (auto seen = broker_.seq_of_key(p.agent_id, p.idempotency_key)) {
            o.kind = Outcome::Kind::duplicate_of_history;
            o.seq = *seen;
            continue;
          }
        }
        while (o.decision.refusal != Decision::Refusal::none && sync_channel(ch)) {
          if (++p.attempts >= options_.max_decide_attempts) {
            o.kind = Outcome::Kind::contended;
            break;
          }
          o.decision = p.command.decide(ch.state.get());
        }
      } catch (const BrokerError& e) {
        log::error("broker_read_failed", {{"agent_id", p.agent_id}, {"error", e.what()}});
        o.kind = Outcome::Kind::unloadable;
      }
      if (o.kind != Outcome::Kind::staged) continue;
    }
    if (o.decision.refusal != Decision::Refusal::none) {
      o.kind = Outcome::Kind::refused;
      continue;
    }
    o.draft = s.batch.drafts.size();
    if (!composite.empty()) s.keys.emplace(std::move(composite), o.draft);
    broker::Draft& d = s.batch.drafts.emplace_back();
    d.channel = batch_channel(ch);
    d.type = std::move(o.decision.type);
    d.data = std::move(o.decision.data);
    d.idempotency_key = std::move(p.idempotency_key);
    d.mergeable = o.decision.mergeable;
    d.records = std::move(o.decision.records);
    d.directory = std::move(o.decision.directory);
    // Optimistic: no read first; the broker stores it only if the state is still the one decided on.
    if (shared_ && p.command.stateful) d.decided_at = ch.state_version;
  }
  return end;
}

PublishResult Hub::nothing_stored(const BrokerError& e) {
  // Nothing was stored, so nothing is broadcast and the seqs are handed out again.
  const std::size_t events = staging_.batch.drafts.size();
  log::error("store_append_failed", {{"error", e.what()}, {"events", std::to_string(events)}});
  publish_failures_.fetch_add(events, std::memory_order_relaxed);
  return failure_of(e.kind());
}

PublishResult Hub::store_staged(std::unique_ptr<broker::CommitTicket> sent) {
  broker::Batch& b = staging_.batch;
  if (b.drafts.empty()) return {PublishResult::Status::ok, 0, {}, {}};
  try {
    if (sent) {
      broker_.finish_commit(b, std::move(sent));
    } else {
      broker_.commit(b);
    }
  } catch (const BrokerError& e) {
    return nothing_stored(e);
  }
  for (Channel* ch : staging_.channels) {
    if (ch != nullptr) ch->stored = true;
  }
  // A shared broker may have stored only part of it (an instance did not answer).
  const auto failed = std::count_if(b.drafts.begin(), b.drafts.end(), [](const auto& d) { return d.failed; });
  if (failed > 0)
    log::error("store_append_failed", {{"error", "part of the batch"}, {"events", std::to_string(failed)}});
  return {PublishResult::Status::ok, 0, {}, {}};
}

void Hub::record_staged() {
  // In seq order: each event into its channel's history and state, then one post per shard for the
  // whole batch, so each subscriber takes all of it before its socket flushes (a burst leaves in one
  // write) and a batch spread over many channels costs one hand-over per shard, not one per channel.
  ShardDeliveries deliveries(shards_.shard_count());
  std::size_t stored = 0;
  for (const broker::Draft& d : staging_.batch.drafts) {
    Channel* ch = staging_.channels[d.channel];
    if (!d.event) continue;  // a shared broker's duplicate, conflict or failed part
    ++stored;
    if (!shared_) {
      record(*ch, d.event, d.records, deliveries);
    } else if (ch != nullptr) {
      record_shared(*ch, staging_.batch.channels[d.channel].epoch, d, deliveries);
    }
  }
  post_deliveries(deliveries);
  enforce_memory_budget();
  publishes_.fetch_add(stored, std::memory_order_relaxed);
}

void Hub::answer(std::vector<Pending>& batch, std::size_t from, const PublishResult& failure) {
  const bool failed = failure.status != PublishResult::Status::ok;
  for (std::size_t i = 0; i < staging_.outcomes.size(); ++i) {
    Outcome& o = staging_.outcomes[i];
    PublishResult r{PublishResult::Status::ok, o.seq, {}, {}};
    switch (o.kind) {
      case Outcome::Kind::refused:
        r.status = PublishResult::Status::refused;
        r.decision = std::move(o.decision);
        break;
      case Outcome::Kind::duplicate_of_history:
        r.status = PublishResult::Status::duplicate;
        break;
      case Outcome::Kind::unloadable:
        r = {PublishResult::Status::store_failed, 0, "event store read failed", {}};
        publish_failures_.fetch_add(1, std::memory_order_relaxed);
        break;
      case Outcome::Kind::contended:
        r = contended(batch[from + i]);
        break;
      case Outcome::Kind::duplicate_in_batch:
      case Outcome::Kind::staged:
        if (failed) {
          r = failure;
          break;
        }
        if (broker::Draft& d = staging_.batch.drafts[o.draft]; d.conflict) {
          // Decided again once this commit is answered, with its key back (the draft took it).
          if (o.kind == Outcome::Kind::staged) batch[from + i].idempotency_key = std::move(d.idempotency_key);
          conflicted_.push_back(std::move(batch[from + i]));
          state_conflicts_.fetch_add(1, std::memory_order_relaxed);
          continue;
        } else if (d.failed) {
          r = failure_of(*d.failed);  // other parts of the batch were stored
          publish_failures_.fetch_add(1, std::memory_order_relaxed);
          break;
        }
        if (o.kind == Outcome::Kind::duplicate_in_batch) {
          const broker::Draft& d = staging_.batch.drafts[o.draft];
          r.status = PublishResult::Status::duplicate;
          r.seq = d.event ? d.event->seq : d.duplicate_of;
        } else if (const broker::Draft& d = staging_.batch.drafts[o.draft]; !d.event) {
          r.status = PublishResult::Status::duplicate;  // the shared broker knew its key
          r.seq = d.duplicate_of;
        } else {
          r.seq = d.event->seq;
          r.decision.reply_json = std::move(o.decision.reply_json);
        }
        break;
    }
    batch[from + i].done(r);
  }
}

void Hub::record(Channel& ch, const EventPtr& event, const std::vector<StateRecord>& records,
                 ShardDeliveries& deliveries) {
  std::lock_guard lock(ch.mutex);
  record_locked(ch, event, records, deliveries);
}

void Hub::record_locked(Channel& ch, const EventPtr& event, const std::vector<StateRecord>& records,
                        ShardDeliveries& deliveries) {
  const std::uint64_t before = ch.history.bytes();
  ch.history.push(event);
  history_bytes_ += ch.history.bytes() - before;  // modulo 2^64: the ring may have let events go
  ch.last_seq = event->seq;
  ch.last_event_ms = event->ts_ms;
  if (ch.state && !records.empty()) ch.state->apply(records);
  for (unsigned s = 0; s < ch.shard_subscribers.size(); ++s) {
    if (ch.shard_subscribers[s] != 0) deliveries[s].push_back({ch.shared_from_this(), event});
  }
}

void Hub::record_shared(Channel& ch, const std::string& epoch, const broker::Draft& d,
                        ShardDeliveries& deliveries) {
  if (ch.live) {
    record_in_order(ch, d.event, d.records, d.state_version, deliveries);
    return;
  }
  // Not watched here: only its state and the broker's epoch are kept; refresh() brings the rest. A
  // draft with records was checked against this state's version, so applying it gives the new one.
  std::lock_guard lock(ch.mutex);
  if (!d.records.empty() && d.decided_at == ch.state_version) {
    if (ch.state) ch.state->apply(d.records);
    ch.state_version = d.state_version;
  }
  ch.epoch = epoch;
}

void Hub::post_deliveries(ShardDeliveries& deliveries) {
  // Posting outside the channel locks is safe: only this thread posts, in seq order, each shard runs
  // its queue in order, and a subscriber that joined meanwhile skips what its join already covered.
  for (unsigned s = 0; s < deliveries.size(); ++s) {
    if (deliveries[s].empty()) continue;
    auto batch = std::make_shared<std::vector<Delivery>>(std::move(deliveries[s]));
    shards_.post(s, [s, batch = std::move(batch)] {
      for (const Delivery& d : *batch) {
        if (d.event) {
          d.channel->local[s].deliver(d.event);
        } else {
          d.channel->local[s].history_lost(d.gap_to);
        }
      }
    });
  }
}

}  // namespace aw::hub
