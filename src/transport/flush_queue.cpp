#include "transport/flush_queue.hpp"

#include <boost/asio/post.hpp>

#include "transport/corked_socket.hpp"

namespace aw::transport {

void FlushQueue::add(std::shared_ptr<void> keep, CorkedSocket* socket) {
  dirty_.emplace_back(std::move(keep), socket);
  if (!scheduled_) {
    scheduled_ = true;
    net::post(ioc_, [this] { run(); });
  }
}

void FlushQueue::run() {
  auto now = std::chrono::steady_clock::now();
  // The budget starts when the pass that dirtied the sockets is over, not when it began: delivering one
  // event to 10k subscribers takes longer than the budget itself.
  if (!deferring_) {
    deferring_ = true;
    first_ = now;
  }
  if (pending_.load(std::memory_order_relaxed) > 0 && now - first_ < kMaxDelay) {
    // More events for this shard are queued behind us: let them join the same writes.
    net::post(ioc_, [this] { run(); });
    return;
  }
  scheduled_ = false;
  deferring_ = false;
  running_.swap(dirty_);
  for (auto& [keep, socket] : running_) socket->flush_scheduled();
  running_.clear();
}

}  // namespace aw::transport
