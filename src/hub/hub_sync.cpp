// The hub with a shared broker (many nodes): a channel is kept in step with the broker only while it
// has local subscribers (it is live and watched). Its events come from any node over the broker's
// pub/sub, which is at most once: a seq jump, or a resubscription after a lost link, makes the writer
// read the missing range from the broker before delivering, so subscribers see no gap and no duplicate.
// State: each event comes with its state records and the channel's state version after it, applied in
// seq order; after a gap (the Stream has no records) the state is read again with the position it
// belongs to, so a snapshot is the same on every node.
#include <algorithm>
#include <deque>

#include "core/log.hpp"
#include "hub/hub.hpp"

namespace aw::hub {
using broker::BrokerError;
using store::StateRecord;

void Hub::on_events(std::string agent_id, std::vector<EventPtr> events,
                    std::vector<broker::StateChange> changes) {
  {
    std::lock_guard lock(queue_mutex_);
    if (stopping_ && !writer_running_) return;
    inbound_.push_back({std::move(agent_id), std::move(events), std::move(changes)});
    if (inbound_.size() > 1) return;  // the writer's wake is on its way
  }
  queue_cv_.notify_one();
}

void Hub::on_resubscribed(std::string agent_id) {
  on_events(std::move(agent_id), {}, {});
}

void Hub::take_inbound() {
  std::vector<Inbound> inbound;
  {
    std::lock_guard lock(queue_mutex_);
    inbound.swap(inbound_);
  }
  if (inbound.empty()) return;
  ShardDeliveries deliveries(shards_.shard_count());
  for (Inbound& in : inbound) {
    auto ch = find_channel(in.agent_id);
    if (!ch || !ch->live) continue;  // nobody here watches it any more
    // A resubscription (or events without their state changes): read what was missed, state too.
    if (in.events.empty() || in.changes.size() != in.events.size()) {
      if (!resync(*ch, deliveries)) behind_.push_back(ch->agent_id);
      continue;
    }
    for (std::size_t i = 0; i < in.events.size(); ++i)
      record_in_order(*ch, in.events[i], in.changes[i].records, in.changes[i].version, deliveries);
  }
  post_deliveries(deliveries);
  enforce_memory_budget();
}

void Hub::record_in_order(Channel& ch, const EventPtr& ev, const std::vector<StateRecord>& records,
                          std::uint64_t state_version, ShardDeliveries& deliveries) {
  // Only this thread changes last_seq, so reading it without the lock is safe here.
  if (ev->seq <= ch.last_seq) return;  // seen already (our own commit, or read while catching up)
  if (ev->seq > ch.last_seq + 1) {
    // The missed events are read without their records. When the version says they changed no state
    // (this event's own change accounts for all of it), they are all there is to read; else the state
    // they made is read with them (resync, which reaches this event too: it was stored before anyone
    // heard of it).
    const bool state_unmoved = state_version == ch.state_version + (records.empty() ? 0 : 1);
    if (!(state_unmoved ? catch_up(ch, ev->seq, deliveries) : resync(ch, deliveries))) {
      // The gap could not be read: nothing after it is recorded until it can (retry_behind).
      behind_.push_back(ch.agent_id);
      return;
    }
  }
  if (ev->seq != ch.last_seq + 1) {
    if (ev->seq <= ch.last_seq) return;
    std::lock_guard lock(ch.mutex);
    history_gap_locked(ch, ev->seq, deliveries);
  }
  record(ch, ev, records, deliveries);
  ch.state_version = state_version;
}

bool Hub::catch_up(Channel& ch, std::uint64_t before_seq, ShardDeliveries& deliveries) {
  std::vector<EventPtr> missed;
  try {
    broker_.replay(ch.agent_id, ch.last_seq, [&](EventPtr ev) {
      if (ev->seq >= before_seq || missed.size() >= options_.history_size) return false;
      missed.push_back(std::move(ev));
      return true;
    });
  } catch (const BrokerError& e) {
    log::error("broker_read_failed", {{"agent_id", ch.agent_id}, {"error", e.what()}});
    return false;
  }
  if (!missed.empty() && missed.back()->seq > ch.last_seq) broker_.count_backfill(ch.agent_id);
  static const std::vector<StateRecord> kNoRecords;
  for (const EventPtr& ev : missed) {
    if (ev->seq <= ch.last_seq) continue;
    if (ev->seq != ch.last_seq + 1) {
      std::lock_guard lock(ch.mutex);
      history_gap_locked(ch, ev->seq, deliveries);
    }
    record(ch, ev, kNoRecords, deliveries);
  }
  return true;
}

void Hub::retry_behind() {
  if (behind_.empty()) return;
  std::vector<std::string> behind;
  behind.swap(behind_);
  std::sort(behind.begin(), behind.end());
  behind.erase(std::unique(behind.begin(), behind.end()), behind.end());
  ShardDeliveries deliveries(shards_.shard_count());
  for (const std::string& id : behind) {
    auto ch = find_channel(id);
    if (!ch || !ch->live) continue;
    if (!resync(*ch, deliveries)) behind_.push_back(id);
  }
  post_deliveries(deliveries);
}

bool Hub::resync(Channel& ch, ShardDeliveries& deliveries) {
  broker::VersionedState vs;
  try {
    vs = broker_.load_versioned_state(ch.agent_id, ch.state_version);
  } catch (const BrokerError& e) {
    log::error("broker_read_failed", {{"agent_id", ch.agent_id}, {"error", e.what()}});
    return false;
  }
  std::unique_ptr<ChannelState> fresh;
  if (vs.changed && state_factory_) {
    fresh = state_factory_(ch.agent_id);
    fresh->apply(vs.records);
  }
  // The events up to the state's position (the newest history_size of them: all the ring keeps)...
  std::deque<EventPtr> missed;
  try {
    broker_.replay(ch.agent_id, ch.last_seq, [&](EventPtr ev) {
      if (ev->seq > vs.last_seq) return false;
      missed.push_back(std::move(ev));
      if (missed.size() > options_.history_size) missed.pop_front();
      return true;
    });
  } catch (const BrokerError& e) {
    log::error("broker_read_failed", {{"agent_id", ch.agent_id}, {"error", e.what()}});
    return false;
  }
  // ... recorded and the state swapped in under one lock, so a join or snapshot never sees a seq
  // with a state of another position.
  if (!missed.empty() && missed.back()->seq > ch.last_seq) broker_.count_backfill(ch.agent_id);
  static const std::vector<StateRecord> kNoRecords;
  {
    std::lock_guard lock(ch.mutex);
    for (const EventPtr& ev : missed) {
      if (ev->seq <= ch.last_seq) continue;
      if (ev->seq != ch.last_seq + 1) history_gap_locked(ch, ev->seq, deliveries);
      record_locked(ch, ev, kNoRecords, deliveries);
    }
    if (fresh) ch.state.swap(fresh);
  }
  ch.state_version = vs.version;
  return true;
}

void Hub::adopt_state(Channel& ch, broker::VersionedState& vs) {
  ch.state_version = vs.version;
  if (!vs.changed || !state_factory_) return;
  // Built aside and swapped in, so a reader under the lock sees the old state or the new one whole.
  std::unique_ptr<ChannelState> fresh = state_factory_(ch.agent_id);
  fresh->apply(vs.records);
  std::lock_guard lock(ch.mutex);
  ch.state.swap(fresh);
}

void Hub::refresh_or_throw(Channel& ch) {
  broker::VersionedState vs = broker_.load_versioned_state(ch.agent_id, ch.state_version);
  adopt_state(ch, vs);
  std::lock_guard lock(ch.mutex);
  history_bytes_ -= ch.history.bytes();
  ch.history.clear();
  if (vs.epoch.empty()) return;  // the broker does not know it
  ch.epoch = std::move(vs.epoch);
  ch.last_seq = vs.last_seq;
  ch.stored = true;
}

void Hub::refresh(Channel& ch) {
  try {
    refresh_or_throw(ch);
  } catch (const BrokerError& e) {
    log::error("broker_read_failed", {{"agent_id", ch.agent_id}, {"error", e.what()}});
  }
}

void Hub::make_live(Channel& ch) {
  // Subscribed first, then the position read: whatever is published after it arrives over pub/sub.
  broker_.watch(ch.agent_id);
  refresh(ch);
  std::lock_guard lock(ch.mutex);
  ch.live = true;
}

void Hub::let_go_live(Channel& ch) {
  {
    std::lock_guard lock(ch.mutex);
    if (!ch.live || ch.subscriber_count() != 0) return;
    ch.live = false;
    history_bytes_ -= ch.history.bytes();
    ch.history.clear();
  }
  broker_.unwatch(ch.agent_id);
}

void Hub::history_gap_locked(Channel& ch, std::uint64_t next_seq, ShardDeliveries& deliveries) {
  // The broker no longer has what came between (its Stream was trimmed past it while this node could
  // not listen): the history starts over at `next_seq`, and the subscribers that were promised every
  // event are told to start over too, from a snapshot (protocol.md: close 1012).
  log::warn("broker_gap", {{"agent_id", ch.agent_id},
                           {"from", std::to_string(ch.last_seq + 1)},
                           {"to", std::to_string(next_seq - 1)}});
  history_bytes_ -= ch.history.bytes();
  ch.history.clear();
  for (unsigned s = 0; s < ch.shard_subscribers.size(); ++s) {
    if (ch.shard_subscribers[s] != 0) deliveries[s].push_back({ch.shared_from_this(), nullptr, next_seq - 1});
  }
}

}  // namespace aw::hub
