#include "hub/hub.hpp"

#include <algorithm>
#include <chrono>
#include <future>
#include <queue>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/random_id.hpp"
#include "protocol/envelope.hpp"

namespace aw::hub {
using broker::BrokerError;
using store::StateRecord;
namespace {

// FNV-1a, 64 bits: spreads a salt and an agent id over an epoch's 16 hex digits.
std::uint64_t fnv1a(std::string_view a, std::string_view b) {
  std::uint64_t h = 14695981039346656037ULL;
  for (std::string_view part : {a, b}) {
    for (unsigned char c : part) h = (h ^ c) * 1099511628211ULL;
  }
  return h;
}

}  // namespace

Hub::Hub(HubOptions options, broker::Broker& broker, ShardDispatcher& shards, ChannelStateFactory state)
    : options_(options),
      broker_(broker),
      shards_(shards),
      state_factory_(std::move(state)),
      epoch_salt_(random_hex_id(8)),
      shared_(broker.shared()) {
  if (shared_) broker_.set_listener(this);
}

std::string Hub::new_epoch(std::string_view agent_id) const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::uint64_t h = fnv1a(epoch_salt_, agent_id);
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4) out[static_cast<std::size_t>(i)] = kHex[h & 0xf];
  return out;
}

Hub::~Hub() {
  stop();
}

void Hub::start() {
  const std::int64_t now = now_unix_ms();
  const std::int64_t min_ts = now - options_.history_ttl_ms;
  for (auto& pos : broker_.load_channels()) {
    auto ch = make_channel(pos.agent_id, pos.epoch, pos.last_seq);
    ch->stored = true;
    if (ch->state) ch->state->apply(broker_.load_state(pos.agent_id));
    channels_.emplace(pos.agent_id, std::move(ch));
  }
  // One pass over the retained events, in commit order (each channel's in seq order); a channel's
  // history ring keeps its newest history_size. A run of one channel's events is looked up once.
  Channel* ch = nullptr;
  broker_.load_recent(min_ts, [&](std::string_view agent_id, EventPtr event) {
    if (ch == nullptr || ch->agent_id != agent_id) {
      auto it = channels_.find(agent_id);
      ch = it != channels_.end() ? it->second.get() : nullptr;
      if (ch == nullptr) return;  // an event without its channel row: cannot happen, and unusable anyway
    }
    ch->last_event_ms = std::max(ch->last_event_ms, event->ts_ms);
    const std::uint64_t before = ch->history.bytes();
    ch->history.push(std::move(event));
    history_bytes_ += ch->history.bytes() - before;
  });
  enforce_memory_budget();
  const std::size_t loaded = channels_.size();
  evict_idle(now);  // what has had no event within the TTL comes back from the broker when needed
  log::info("hub_started", {{"channels", std::to_string(channels_.size())},
                            {"channels_stored", std::to_string(loaded)},
                            {"store", std::string(broker_.name())}});
  {
    std::lock_guard lock(queue_mutex_);
    writer_running_ = true;
  }
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
  if (shared_) broker_.set_listener(nullptr);
}

std::shared_ptr<Channel> Hub::make_channel(std::string agent_id, std::string epoch, std::uint64_t last_seq) {
  auto ch =
      std::make_shared<Channel>(std::move(agent_id), std::move(epoch), last_seq, options_.history_size,
                                options_.history_ttl_ms, options_.history_max_bytes, shards_.shard_count());
  if (state_factory_) ch->state = state_factory_(ch->agent_id);
  ch->live = !shared_;
  return ch;
}

std::shared_ptr<Channel> Hub::find_channel(std::string_view agent_id) {
  std::lock_guard lock(channels_mutex_);
  auto it = channels_.find(agent_id);
  return it == channels_.end() ? nullptr : it->second;
}

std::shared_ptr<Channel> Hub::channel_on_writer(std::string_view agent_id, bool create) {
  if (auto ch = find_channel(agent_id)) return ch;
  std::shared_ptr<Channel> ch;
  std::optional<broker::ChannelPosition> pos;
  // A shared broker registers a new channel's epoch at once, so every node tells its clients the same.
  if (shared_ && create) {
    pos = broker_.open_channel(agent_id, new_epoch(agent_id));
  } else {
    pos = broker_.find_channel(agent_id);
  }
  if (pos) {
    // Let go of earlier: the broker has its numbering and its state; its events are read when asked for.
    ch = make_channel(std::move(pos->agent_id), std::move(pos->epoch), pos->last_seq);
    ch->stored = true;
    if (shared_) {
      // The state with the version and position it belongs to, read together.
      broker::VersionedState vs = broker_.load_versioned_state(agent_id, std::nullopt);
      ch->last_seq = std::max(ch->last_seq, vs.last_seq);
      adopt_state(*ch, vs);
    } else if (ch->state) {
      ch->state->apply(broker_.load_state(agent_id));
    }
  } else if (create) {
    ch = make_channel(std::string(agent_id), new_epoch(agent_id), 0);
  } else {
    return nullptr;
  }
  std::lock_guard lock(channels_mutex_);
  channels_.emplace(ch->agent_id, ch);
  return ch;
}

JoinResult Hub::join(std::string_view agent_id, unsigned shard, Subscriber* sub,
                     const std::optional<Position>& since) {
  JoinResult r;
  // In memory, and the replay (if any) too: no need for the writer.
  for (;;) {
    auto ch = find_channel(agent_id);
    if (!ch) break;
    std::unique_lock lock(ch->mutex);
    if (ch->evicted) continue;  // let go of just now: look again
    if (!ch->live) break;       // the writer brings it in step with the broker first
    if (!join_locked(*ch, shard, sub, since, nullptr, r)) break;
    lock.unlock();
    ch->local[shard].add(sub);
    return r;
  }
  run_on_writer([&] {
    std::shared_ptr<Channel> ch;
    try {
      ch = channel_on_writer(agent_id, true);
    } catch (const BrokerError& e) {
      // Without the store's numbering a new epoch is the truthful answer: a client resumes by snapshot.
      log::error("store_read_failed", {{"agent_id", std::string(agent_id)}, {"error", e.what()}});
      ch = make_channel(std::string(agent_id), random_hex_id(8), 0);
      std::lock_guard lock(channels_mutex_);
      channels_.emplace(ch->agent_id, ch);
    }
    if (!ch->live) make_live(*ch);
    std::vector<EventPtr> stored;
    if (since && since->seq < ch->last_seq &&
        (since->epoch == ch->epoch || (since->epoch.empty() && since->seq == 0))) {
      stored = read_stored(*ch, since->seq, options_.history_size);
    }
    std::lock_guard lock(ch->mutex);
    join_locked(*ch, shard, sub, since, &stored, r);
  });
  r.channel->local[shard].add(sub);
  return r;
}

bool Hub::join_locked(Channel& ch, unsigned shard, Subscriber* sub, const std::optional<Position>& since,
                      const std::vector<EventPtr>* stored, JoinResult& r) {
  r.channel = &ch;
  r.epoch = ch.epoch;
  r.seq = ch.last_seq;
  r.recovered = false;
  r.replay.clear();
  if (since) {
    // Without an epoch a client can still ask for "everything from the start" (since=0).
    bool same_history = since->epoch == ch.epoch || (since->epoch.empty() && since->seq == 0);
    if (same_history) {
      if (auto events = ch.history.since(since->seq, ch.last_seq)) {
        r.recovered = true;
        r.replay = std::move(*events);
      } else if (since->seq < ch.last_seq) {
        if (stored == nullptr) return false;  // the store may have them: ask it on the writer thread
        // The store's part must start right after `since`, and memory must hold everything after it.
        if (!stored->empty() && stored->front()->seq == since->seq + 1) {
          if (auto rest = ch.history.since(stored->back()->seq, ch.last_seq)) {
            r.recovered = true;
            r.replay = *stored;
            r.replay.insert(r.replay.end(), rest->begin(), rest->end());
          }
        }
      }
    }
    if (!r.recovered) r.state_json = state_of(ch);
  }
  sub->delivered_seq = ch.last_seq;
  ++ch.shard_subscribers[shard];
  return true;
}

std::vector<EventPtr> Hub::read_stored(Channel& ch, std::uint64_t after, std::size_t limit) {
  std::uint64_t first_held;
  std::uint64_t last_seq;
  {
    std::lock_guard lock(ch.mutex);
    first_held = ch.history.first_held_seq();
    last_seq = ch.last_seq;
  }
  // Only what retention keeps (the newest history_size, within the TTL): the store may still hold a
  // little more until its next prune, and resume must not depend on when that runs.
  const std::uint64_t oldest_kept = last_seq > options_.history_size ? last_seq - options_.history_size : 0;
  const std::int64_t min_ts = now_unix_ms() - options_.history_ttl_ms;
  std::vector<EventPtr> out;
  std::uint64_t bytes = 0;
  try {
    broker_.replay(ch.agent_id, std::max(after, oldest_kept), [&](EventPtr ev) {
      if ((first_held != 0 && ev->seq >= first_held) || out.size() >= limit) return false;
      if (ev->ts_ms < min_ts) return out.empty();  // aged out: skip it (only before the first kept)
      bytes += ev->frame().size();
      // More than one read may hold: a resume gets a snapshot instead, a page ends early (but moves on).
      if (bytes > options_.max_stored_read_bytes && !out.empty()) return false;
      out.push_back(std::move(ev));
      return true;
    });
  } catch (const BrokerError& e) {
    log::error("store_read_failed", {{"agent_id", ch.agent_id}, {"error", e.what()}});
    out.clear();
  }
  return out;
}

void Hub::leave(Channel* ch, unsigned shard, Subscriber* sub) {
  ch->local[shard].remove(sub);
  bool last = false;
  {
    std::lock_guard lock(ch->mutex);
    last = --ch->shard_subscribers[shard] == 0 && ch->subscriber_count() == 0;
  }
  if (!last) return;
  // Tell the writer, which decides whether the channel leaves memory (a channel without events: at once).
  std::unique_lock lock(queue_mutex_);
  left_.push_back(ch->agent_id);
  const bool wake = left_.size() == 1;
  lock.unlock();
  if (wake) queue_cv_.notify_one();
}

std::string Hub::state_of(Channel& ch) const {
  return ch.state ? ch.state->snapshot_json() : "{}";
}

Hub::Snapshot Hub::snapshot(Channel* ch) {
  std::lock_guard lock(ch->mutex);
  return {ch->last_seq, ch->epoch, state_of(*ch)};
}

std::optional<Hub::Snapshot> Hub::snapshot(std::string_view agent_id) {
  std::shared_ptr<Channel> ch = find_channel(agent_id);
  if (!ch || (shared_ && !ch->live)) {
    run_on_writer([&] {
      try {
        ch = channel_on_writer(agent_id, false);
      } catch (const BrokerError& e) {
        log::error("store_read_failed", {{"agent_id", std::string(agent_id)}, {"error", e.what()}});
      }
      if (ch && !ch->live) refresh(*ch);
    });
  }
  if (!ch) return std::nullopt;
  return snapshot(ch.get());
}

bool Hub::with_state(std::string_view agent_id, const std::function<void(const ChannelState*)>& read) {
  // Embedded: channels with domain state never leave memory, so memory has every one there is.
  std::shared_ptr<Channel> ch = find_channel(agent_id);
  if (shared_) {
    // Another node may have moved the state on: one look at the version (and the state when it moved)
    // on the writer, which is the only one to change it. A live channel's events up to that state are
    // recorded too, so its next snapshot agrees.
    run_on_writer([&] {
      try {
        ch = channel_on_writer(agent_id, false);
        if (!ch) return;
        if (!ch->live) return refresh_or_throw(*ch);
        ShardDeliveries deliveries(shards_.shard_count());
        if (!resync(*ch, deliveries)) behind_.push_back(ch->agent_id);
        post_deliveries(deliveries);
      } catch (const BrokerError& e) {
        // What this node holds is the best answer there is while the broker cannot be read.
        log::error("broker_read_failed", {{"agent_id", std::string(agent_id)}, {"error", e.what()}});
      }
    });
  }
  if (!ch) return false;
  std::lock_guard lock(ch->mutex);
  read(ch->state.get());
  return true;
}

bool Hub::history_from_memory(Channel& ch, std::uint64_t since, std::size_t limit, HistoryPage& page) {
  if (!ch.live) return false;  // behind a shared broker: ask it
  page.epoch = ch.epoch;
  page.latest = ch.last_seq;
  page.oldest = ch.history.first_held_seq();
  page.complete = true;
  page.events.clear();
  if (since >= ch.last_seq) return true;
  auto events = ch.history.since(since, ch.last_seq, limit);
  if (!events) return false;
  page.events = std::move(*events);
  return true;
}

HistoryPage Hub::history(std::string_view agent_id, std::uint64_t since, std::size_t limit) {
  HistoryPage page;
  if (auto ch = find_channel(agent_id)) {
    std::lock_guard lock(ch->mutex);
    if (history_from_memory(*ch, since, limit, page)) return page;
  }
  // Older than memory holds, or a channel not in memory: the store has the rest.
  page = HistoryPage{};
  run_on_writer([&] {
    std::shared_ptr<Channel> ch;
    try {
      ch = channel_on_writer(agent_id, false);
    } catch (const BrokerError& e) {
      log::error("store_read_failed", {{"agent_id", std::string(agent_id)}, {"error", e.what()}});
    }
    if (!ch) {
      page.complete = true;
      return;
    }
    if (!ch->live) refresh(*ch);
    {
      std::lock_guard lock(ch->mutex);
      if (history_from_memory(*ch, since, limit, page)) return;
    }
    std::vector<EventPtr> stored = read_stored(*ch, since, limit);
    std::vector<EventPtr> oldest = read_stored(*ch, 0, 1);
    const std::uint64_t oldest_stored = oldest.empty() ? 0 : oldest.front()->seq;
    std::lock_guard lock(ch->mutex);
    if (!ch->live) {
      page.epoch = ch->epoch;
      page.latest = ch->last_seq;
    }
    const std::uint64_t first_held = ch->history.first_held_seq();
    // The first event either side can give after `since` (0: none).
    const std::uint64_t first = stored.empty() ? first_held : stored.front()->seq;
    page.oldest =
        oldest_stored != 0 && (first_held == 0 || oldest_stored < first_held) ? oldest_stored : first_held;
    page.complete = first == since + 1;
    page.events = std::move(stored);
    // Memory continues where the store's part ends, when it holds what comes next.
    std::uint64_t cursor =
        page.events.empty() ? (first == 0 ? ch->last_seq : first - 1) : page.events.back()->seq;
    if (page.events.size() < limit && cursor < ch->last_seq && first_held != 0 && cursor + 1 >= first_held) {
      if (auto rest = ch->history.since(cursor, ch->last_seq, limit - page.events.size())) {
        page.events.insert(page.events.end(), rest->begin(), rest->end());
      }
    }
  });
  return page;
}

std::vector<std::shared_ptr<Channel>> Hub::all_channels() {
  std::vector<std::shared_ptr<Channel>> all;
  std::lock_guard lock(channels_mutex_);
  all.reserve(channels_.size());
  for (auto& [id, ch] : channels_) all.push_back(ch);
  return all;
}

bool Hub::evict_if_idle(const std::shared_ptr<Channel>& ch, std::int64_t now_ms) {
  std::lock_guard map_lock(channels_mutex_);
  std::lock_guard lock(ch->mutex);
  if (ch->evicted || ch->subscriber_count() != 0) return false;
  if (ch->last_event_ms != 0 && ch->last_event_ms >= now_ms - options_.history_ttl_ms) return false;
  if (ch->state && !ch->state->empty()) return false;
  // What it holds is in the store (every event is stored before it is recorded); a channel that never
  // had an event holds nothing anyone could miss.
  ch->evicted = true;
  history_bytes_ -= ch->history.bytes();
  channels_.erase(ch->agent_id);
  return true;
}

void Hub::evict_idle(std::int64_t now_ms) {
  std::size_t evicted = 0;
  for (const auto& ch : all_channels()) evicted += evict_if_idle(ch, now_ms) ? 1 : 0;
  if (evicted > 0) log::debug("channels_evicted", {{"channels", std::to_string(evicted)}});
}

void Hub::evict_left_channels(std::int64_t now_ms) {
  std::vector<std::string> left;
  {
    std::lock_guard lock(queue_mutex_);
    left.swap(left_);
  }
  for (const std::string& id : left) {
    auto ch = find_channel(id);
    if (!ch) continue;
    if (shared_) let_go_live(*ch);
    evict_if_idle(ch, now_ms);
  }
}

void Hub::enforce_memory_budget() {
  const std::uint64_t budget = options_.history_memory_budget;
  if (history_bytes_.load(std::memory_order_relaxed) <= budget) return;
  // Down to 7/8 of the budget, so the pass over every channel runs once per budget/8 of new events.
  const std::uint64_t target = budget - budget / 8;
  using Oldest = std::pair<std::int64_t, Channel*>;
  std::priority_queue<Oldest, std::vector<Oldest>, std::greater<>> heap;
  auto all = all_channels();
  for (const auto& ch : all) {
    std::lock_guard lock(ch->mutex);
    if (auto ts = ch->history.oldest_held_ts()) heap.emplace(*ts, ch.get());
  }
  while (history_bytes_.load(std::memory_order_relaxed) > target && !heap.empty()) {
    Channel* ch = heap.top().second;
    heap.pop();
    std::lock_guard lock(ch->mutex);
    history_bytes_ -= ch->history.release_oldest();
    if (auto ts = ch->history.oldest_held_ts()) heap.emplace(*ts, ch);
  }
}

void Hub::prune(std::int64_t now_ms) {
  for (const auto& ch : all_channels()) {
    std::lock_guard lock(ch->mutex);
    const std::uint64_t before = ch->history.bytes();
    ch->history.expire(now_ms);
    history_bytes_ += ch->history.bytes() - before;
  }
  evict_idle(now_ms);
  try {
    broker_.trim(options_.history_size, now_ms - options_.history_ttl_ms);
  } catch (const BrokerError& e) {
    log::error("store_prune_failed", {{"error", e.what()}});
  }
}

HubStats Hub::stats(std::size_t top) {
  HubStats s;
  auto all = all_channels();
  s.channels = all.size();
  std::vector<ChannelSummary> summaries;
  for (const auto& ch : all) {
    std::lock_guard lock(ch->mutex);
    ChannelSummary c{ch->agent_id, ch->subscriber_count(), ch->last_seq, ch->history.held()};
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
  s.state_conflicts = state_conflicts_.load(std::memory_order_relaxed);
  return s;
}

std::optional<std::string> Hub::load_cold_record(std::string_view agent_id, std::string_view kind,
                                                 std::string_view id) {
  if (broker_.cold_reads_any_thread()) return broker_.load_cold_record(agent_id, kind, id);
  std::optional<std::string> record;
  run_on_writer([&] { record = broker_.load_cold_record(agent_id, kind, id); });
  return record;
}

}  // namespace aw::hub
