#include "transport/flush_queue.hpp"

#include <boost/asio/post.hpp>

#include "transport/corked_socket.hpp"

namespace aw::transport {

void FlushQueue::add(std::shared_ptr<void> keep, CorkedSocket* socket) {
  line_.emplace_back(std::move(keep), socket);
  if (!scheduled_) post_run();
}

void FlushQueue::post_run() {
  scheduled_ = true;
  net::post(ioc_, [this] { run(); });
}

void FlushQueue::run() {
  scheduled_ = false;
  if (next_ == 0) {
    // A new line: if deliveries are already queued behind us, let them join it first (briefly). The
    // budget starts now, after the pass that filled the line: delivering one event to 10k
    // subscribers takes longer than the budget itself.
    auto now = std::chrono::steady_clock::now();
    if (!deferring_) {
      deferring_ = true;
      first_ = now;
    }
    if (pending_.load(std::memory_order_relaxed) > 0 && now - first_ < kMaxDelay) return post_run();
    deferring_ = false;
  }
  // Indexes, not iterators: a flush may put a socket back in line (its close frame, say).
  std::size_t end = std::min(line_.size(), next_ + kSocketsPerTurn);
  for (; next_ < end; ++next_) {
    auto* socket = line_[next_].second;
    socket->flush_scheduled();
    line_[next_].first.reset();
  }
  if (next_ == line_.size()) {
    line_.clear();
    next_ = 0;
    // A burst to many subscribers leaves a large line behind: give the memory back.
    if (line_.capacity() > 4096) line_.shrink_to_fit();
    return;
  }
  if (next_ >= 1024 && next_ * 2 >= line_.size()) {
    // Under steady load the line never runs empty (flushed sockets queue again at its end): drop the
    // part already done so it does not grow without bound.
    line_.erase(line_.begin(), line_.begin() + static_cast<std::ptrdiff_t>(next_));
    next_ = 0;
  }
  // More in line: yield to deliveries and I/O first, so what they queue joins the writes still ahead.
  post_run();
}

}  // namespace aw::transport
