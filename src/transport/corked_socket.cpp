#include "transport/corked_socket.hpp"

namespace aw::transport {

namespace {
// How much one gather-write may carry, so one busy connection cannot hog its thread.
constexpr std::size_t kMaxWriteBytes = 256 * 1024;
}  // namespace

void CorkedSocket::enqueue(std::shared_ptr<const void> keep, std::string_view bytes, bool droppable) {
  if (error_ || bytes.empty()) return;
  queued_bytes_ += bytes.size();
  queue_.push_back({std::move(keep), bytes, droppable});
  schedule_flush();
}

void CorkedSocket::schedule_flush() {
  if (writing_ || flush_posted_) return;
  auto keep = owner_.lock();
  if (!keep) return;
  // Deferred to the end of this loop pass so that everything queued meanwhile leaves in one write.
  flush_posted_ = true;
  net::post(socket_.get_executor(), [this, keep = std::move(keep)] {
    flush_posted_ = false;
    flush();
  });
}

void CorkedSocket::flush() {
  if (writing_ || queue_.empty() || error_) return;
  auto keep = owner_.lock();
  if (!keep) return;
  auto done = [this, keep = std::move(keep)](const boost::system::error_code& ec, std::size_t n) {
    on_written(ec, n);
  };
  writing_ = true;
  if (queue_.size() == 1) {
    std::string_view b = queue_.front().bytes.substr(sent_of_front_);
    in_flight_ = 1;
    socket_.async_write_some(net::const_buffer(b.data(), b.size()), std::move(done));
    return;
  }
  if (!iov_) iov_ = std::make_unique<std::array<net::const_buffer, kMaxIovecs>>();
  auto& iov = *iov_;
  std::size_t count = 0;
  std::size_t bytes = 0;
  for (const auto& seg : queue_) {
    if (count == kMaxIovecs || bytes >= kMaxWriteBytes) break;
    std::string_view b = seg.bytes;
    if (count == 0) b.remove_prefix(sent_of_front_);
    iov[count++] = net::const_buffer(b.data(), b.size());
    bytes += b.size();
  }
  in_flight_ = count;
  socket_.async_write_some(IovecView{iov.data(), iov.data() + count}, std::move(done));
}

void CorkedSocket::on_written(const boost::system::error_code& ec, std::size_t n) {
  writing_ = false;
  if (ec) {
    error_ = ec;
    queue_.clear();
    queued_bytes_ = 0;
    if (teardown_) finish_teardown();
    return;
  }
  queued_bytes_ -= n;
  while (n > 0) {
    std::size_t left = queue_.front().bytes.size() - sent_of_front_;
    if (n < left) {
      sent_of_front_ += n;
      break;
    }
    n -= left;
    sent_of_front_ = 0;
    queue_.pop_front();
  }
  if (!queue_.empty()) {
    flush();
  } else if (teardown_) {
    finish_teardown();
  }
}

void CorkedSocket::drop_pending() {
  // The front segment may be half sent: it must finish, or the frame stream would be corrupt.
  std::size_t keep_front = (writing_ || sent_of_front_ > 0) && !queue_.empty() ? 1 : 0;
  if (writing_) keep_front = std::max(keep_front, in_flight_);
  std::deque<Segment> kept;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < queue_.size(); ++i) {
    if (i < keep_front || !queue_[i].droppable) {
      bytes += queue_[i].bytes.size() - (i == 0 ? sent_of_front_ : 0);
      kept.push_back(std::move(queue_[i]));
    }
  }
  queue_ = std::move(kept);
  queued_bytes_ = bytes;
}

void CorkedSocket::close() noexcept {
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  if (!error_) error_ = net::error::operation_aborted;
}

void CorkedSocket::async_teardown(TeardownCallback done) {
  teardown_ = std::move(done);
  if (!writing_ && (queue_.empty() || error_)) {
    // Always complete through a post, never inline.
    net::post(socket_.get_executor(), [this, keep = owner_.lock()] {
      if (teardown_) finish_teardown();
    });
  }
}

void CorkedSocket::finish_teardown() {
  auto handler = std::move(teardown_);
  teardown_ = nullptr;
  boost::system::error_code ec = error_ == net::error::operation_aborted ? boost::system::error_code{} : error_;
  if (!error_) {
    // The close handshake is over and everything queued has left: the server closes TCP first.
    boost::system::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    error_ = net::error::operation_aborted;
  }
  net::post(socket_.get_executor(), [h = std::move(handler), ec] { h(ec); });
}

}  // namespace aw::transport
