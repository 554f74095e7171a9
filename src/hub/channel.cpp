#include "hub/channel.hpp"

namespace aw {

void LocalSubscribers::add(Subscriber* s) {
  s->slot = list.size();
  list.push_back(s);
}

void LocalSubscribers::remove(Subscriber* s) {
  std::size_t i = s->slot;
  if (i >= list.size() || list[i] != s) return;
  list[i] = list.back();
  list[i]->slot = i;
  list.pop_back();
}

void LocalSubscribers::deliver(const EventPtr& ev) {
  // Subscribers never leave the list from inside deliver(): a session that must close does so later.
  for (Subscriber* s : list) {
    if (ev->seq <= s->delivered_seq) continue;  // already sent in its replay
    s->delivered_seq = ev->seq;
    s->deliver(ev);
  }
}

Channel::Channel(std::string id, std::string ep, std::uint64_t last, std::size_t history_size,
                 std::int64_t history_ttl_ms, unsigned shards)
    : agent_id(std::move(id)),
      epoch(std::move(ep)),
      last_seq(last),
      history(history_size, history_ttl_ms),
      shard_subscribers(shards, 0),
      next_seq(last + 1),
      local(shards) {}

std::uint32_t Channel::subscriber_count() const {
  std::uint32_t n = 0;
  for (auto c : shard_subscribers) n += c;
  return n;
}

}  // namespace aw
