#include "hub/channel.hpp"

namespace aw::hub {

namespace {
// How many subscribers ahead deliver() prefetches: enough to cover a memory access while it hands the
// event to the ones in between.
constexpr std::size_t kPrefetchAhead = 8;
}  // namespace

void LocalSubscribers::add(Subscriber* s) {
  s->slot = list.size();
  list.push_back({s, s->delivery_state()});
}

void LocalSubscribers::remove(Subscriber* s) {
  std::size_t i = s->slot;
  if (i >= list.size() || list[i].subscriber != s) return;
  list[i] = list.back();
  list[i].subscriber->slot = i;
  list.pop_back();
}

void LocalSubscribers::deliver(const EventPtr& ev) {
  // Subscribers never leave the list from inside deliver(): a session that must close does so later.
  // Thousands of subscribers do not stay in cache, and handing an event to each one is otherwise a
  // chain of cache misses: the memory of those a few places ahead is fetched while these are served.
  const std::size_t n = list.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i + kPrefetchAhead < n) {
      const Entry& ahead = list[i + kPrefetchAhead];
      const char* state = static_cast<const char*>(ahead.state);
      __builtin_prefetch(ahead.subscriber);
      __builtin_prefetch(state);
      __builtin_prefetch(state + 64);
    }
    Subscriber* s = list[i].subscriber;
    if (ev->seq <= s->delivered_seq) continue;  // already sent in its replay
    s->delivered_seq = ev->seq;
    s->deliver(ev);
  }
}

void LocalSubscribers::history_lost(std::uint64_t gap_to) {
  // A copy: a subscriber told may leave the list (its session ends) before this returns.
  std::vector<Entry> told = list;
  for (const Entry& e : told) {
    if (e.subscriber->delivered_seq < gap_to) e.subscriber->history_lost();
  }
}

Channel::Channel(std::string id, std::string ep, std::uint64_t last, std::size_t history_size,
                 std::int64_t history_ttl_ms, std::uint64_t history_max_bytes, unsigned shards)
    : agent_id(std::move(id)),
      epoch(std::move(ep)),
      last_seq(last),
      history(history_size, history_ttl_ms, history_max_bytes),
      shard_subscribers(shards, 0),
      local(shards) {}

std::uint32_t Channel::subscriber_count() const {
  std::uint32_t n = 0;
  for (auto c : shard_subscribers) n += c;
  return n;
}

}  // namespace aw::hub
