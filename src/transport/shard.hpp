// Shards: one io_context and one thread per core. A connection lives its whole life on one shard, so
// its state needs no locks; the hub reaches a shard's subscribers by posting to its io_context.
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "hub/subscriber.hpp"
#include "metrics/counters.hpp"
#include "transport/connection_gate.hpp"
#include "transport/flush_queue.hpp"

namespace aw::transport {

namespace net = boost::asio;

// Anything living on a shard that the sweep and the shutdown must reach.
class Connection {
 public:
  virtual ~Connection() = default;
  // Periodic: heartbeats, idle timeouts, close deadlines. Must not destroy the connection inline.
  virtual void on_sweep(std::int64_t now_ms) = 0;
  // The server is stopping: close gracefully (WebSocket 1001) or drop.
  virtual void on_shutdown() = 0;
  // Outbound bytes waiting (for the queued-bytes gauge).
  virtual std::size_t queued_bytes() const noexcept { return 0; }
  // How far behind this connection is, when it is a subscriber with something queued.
  virtual std::optional<metrics::SubscriberLag> lag() { return std::nullopt; }
};

// The connections living on a shard, each with its place under the connection limits (none for a
// refusal). A connection inserts itself when made and erases itself when destroyed, which gives its
// place back.
class ConnectionSet {
 public:
  void insert(Connection* c) { items_.try_emplace(c); }
  void erase(Connection* c) { items_.erase(c); }
  bool contains(Connection* c) const { return items_.contains(c); }
  std::size_t size() const noexcept { return items_.size(); }
  std::vector<Connection*> list() const;
  // An accepted connection's place, taken on the acceptor's thread.
  void attach(Connection* c, ConnectionSlot slot) { items_[c] = std::move(slot); }
  // The socket changed hands (an HTTP session became a WebSocket session): so does its place.
  void hand_over(Connection* from, Connection* to);

 private:
  std::unordered_map<Connection*, ConnectionSlot> items_;
};

struct Shard {
  Shard(unsigned i, metrics::ShardCounters& c)
      : index(i), counters(c), sweep_timer(ioc), flush_queue(ioc, pending_deliveries) {}

  const unsigned index;
  metrics::ShardCounters& counters;
  // Declared before ioc so that it outlives the handlers (and sessions) the io_context destroys.
  ConnectionSet connections;  // this shard's thread only
  net::io_context ioc{1};
  net::steady_timer sweep_timer;
  std::atomic<std::uint32_t> pending_deliveries{0};  // posted by the hub, not yet run
  // When the sweep last found that this thread had stood still (its timer fired a second or more
  // late: SIGSTOP, an overloaded host): clients' silence before then is not held against them.
  std::int64_t resumed_ms = 0;
  std::int64_t sweep_armed_ms = 0;  // when the sweep timer was last armed
  FlushQueue flush_queue;
};

class ShardPool final : public hub::ShardDispatcher {
 public:
  ShardPool(unsigned count, metrics::Counters& counters, std::int64_t sweep_interval_ms);
  ~ShardPool() override;

  unsigned shard_count() const noexcept override { return static_cast<unsigned>(shards_.size()); }
  void post(unsigned shard, std::function<void()> work) override;

  Shard& shard(unsigned i) noexcept { return *shards_[i]; }
  // The connection limits; outlives every shard's connections.
  ConnectionGate& gate() noexcept { return gate_; }
  // Round-robin choice for a new connection.
  Shard& next() noexcept;

  void start();                    // one thread per shard, sweep timers armed
  void shutdown_all();             // posts on_shutdown to every connection
  std::size_t live_connections();  // sum over shards, asked on each shard's thread
  void stop();                     // stops the io_contexts and joins the threads
  // Destroys the shards and whatever their queues still hold; after stop(), before the hub goes.
  void destroy();

 private:
  // One sweep of a shard's connections, worked off in slices.
  struct SweepRound {
    std::int64_t now_ms = 0;
    std::vector<Connection*> todo;
    std::size_t next = 0;
    std::uint64_t queued = 0;
    std::vector<metrics::SubscriberLag> worst;
  };
  void arm_sweep(Shard& s);
  void sweep_some(Shard& s, std::shared_ptr<SweepRound> round);

  ConnectionGate gate_;  // before shards_: their connections give their places back to it
  std::vector<std::unique_ptr<Shard>> shards_;
  std::vector<std::thread> threads_;
  std::int64_t sweep_interval_ms_;
  metrics::Counters& counters_;
  std::atomic<unsigned> next_{0};
  std::optional<std::vector<net::executor_work_guard<net::io_context::executor_type>>> work_;
};

}  // namespace aw::transport
