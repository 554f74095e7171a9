#include "transport/shard.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <future>

#include "core/clock.hpp"
#include "core/log.hpp"

namespace aw::transport {

std::vector<Connection*> ConnectionSet::list() const {
  std::vector<Connection*> out;
  out.reserve(items_.size());
  for (const auto& [c, slot] : items_) out.push_back(c);
  return out;
}

void ConnectionSet::hand_over(Connection* from, Connection* to) {
  auto it = items_.find(from);
  if (it == items_.end()) return;
  ConnectionSlot slot = std::move(it->second);
  items_[to] = std::move(slot);
}

ShardPool::ShardPool(unsigned count, metrics::Counters& counters, std::int64_t sweep_interval_ms)
    : gate_(counters), sweep_interval_ms_(sweep_interval_ms), counters_(counters) {
  for (unsigned i = 0; i < count; ++i) shards_.push_back(std::make_unique<Shard>(i, counters.shard(i)));
}

ShardPool::~ShardPool() {
  destroy();
}

void ShardPool::destroy() {
  stop();
  shards_.clear();
}

void ShardPool::post(unsigned shard, std::function<void()> work) {
  Shard& s = *shards_[shard];
  s.pending_deliveries.fetch_add(1, std::memory_order_relaxed);
  net::post(s.ioc, [&s, work = std::move(work)] {
    s.pending_deliveries.fetch_sub(1, std::memory_order_relaxed);
    work();
  });
}

Shard& ShardPool::next() noexcept {
  return *shards_[next_.fetch_add(1, std::memory_order_relaxed) % shards_.size()];
}

void ShardPool::start() {
  work_.emplace();
  for (auto& s : shards_) {
    work_->push_back(net::make_work_guard(s->ioc));
    arm_sweep(*s);
    threads_.emplace_back([&ioc = s->ioc, i = s->index] {
      try {
        ioc.run();
      } catch (const std::exception& e) {
        log::error("shard_crashed", {{"shard", std::to_string(i)}, {"error", e.what()}});
        std::terminate();
      }
    });
  }
}

void ShardPool::arm_sweep(Shard& s) {
  // A timer this late means the thread stood still: what timed out meanwhile had no chance not to.
  constexpr std::int64_t kStallMs = 1000;
  s.sweep_timer.expires_after(std::chrono::milliseconds(sweep_interval_ms_));
  s.sweep_armed_ms = now_unix_ms();
  s.sweep_timer.async_wait([this, &s](const boost::system::error_code& ec) {
    if (ec) return;
    auto round = std::make_shared<SweepRound>();
    round->now_ms = now_unix_ms();
    if (round->now_ms - s.sweep_armed_ms > sweep_interval_ms_ + kStallMs) s.resumed_ms = round->now_ms;
    round->todo = s.connections.list();
    sweep_some(s, std::move(round));
  });
}

void ShardPool::sweep_some(Shard& s, std::shared_ptr<SweepRound> round) {
  // A few hundred connections per turn, then the loop runs what waits: sweeping 10k connections in one
  // go would hold every delivery on this shard back by milliseconds once per interval.
  constexpr std::size_t kPerTurn = 256;
  std::size_t end = std::min(round->todo.size(), round->next + kPerTurn);
  for (; round->next < end; ++round->next) {
    Connection* c = round->todo[round->next];
    // The list is from the start of the round: skip connections that have ended since.
    if (!s.connections.contains(c)) continue;
    c->on_sweep(round->now_ms);
    std::size_t q = c->queued_bytes();
    round->queued += q;
    if (q == 0) continue;
    if (auto l = c->lag()) round->worst.push_back(std::move(*l));
  }
  if (round->next < round->todo.size()) {
    net::post(s.ioc, [this, &s, round = std::move(round)]() mutable { sweep_some(s, std::move(round)); });
    return;
  }
  // Each shard reports its few worst; the stats merge them.
  constexpr std::size_t kWorstPerShard = 5;
  auto& worst = round->worst;
  std::size_t keep = std::min(kWorstPerShard, worst.size());
  std::partial_sort(worst.begin(), worst.begin() + keep, worst.end(),
                    [](const auto& a, const auto& b) { return a.queued_bytes > b.queued_bytes; });
  worst.resize(keep);
  counters_.lag.publish(s.index, std::move(worst));
  s.counters.queued_bytes.store(round->queued, std::memory_order_relaxed);
  arm_sweep(s);
}

void ShardPool::shutdown_all() {
  for (auto& s : shards_) {
    net::post(s->ioc, [&s] {
      for (Connection* c : s->connections.list()) c->on_shutdown();
    });
  }
}

std::size_t ShardPool::live_connections() {
  std::size_t total = 0;
  for (auto& s : shards_) {
    auto p = std::make_shared<std::promise<std::size_t>>();
    auto f = p->get_future();
    net::post(s->ioc, [&s, p] { p->set_value(s->connections.size()); });
    if (f.wait_for(std::chrono::seconds(1)) == std::future_status::ready)
      total += f.get();
    else
      total += 1;  // a shard that does not answer is not idle
  }
  return total;
}

void ShardPool::stop() {
  if (threads_.empty()) return;
  for (auto& s : shards_) {
    net::post(s->ioc, [&s] { s->sweep_timer.cancel(); });
  }
  work_.reset();
  for (auto& s : shards_) s->ioc.stop();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

}  // namespace aw::transport
