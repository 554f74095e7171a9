#include "transport/corked_socket.hpp"

#include <array>
#include <boost/asio/post.hpp>
#include <string>

namespace aw::transport {

namespace {
// How much one gather-write may carry, so one busy connection cannot hog its thread.
constexpr std::size_t kMaxWriteBytes = 256 * 1024;
constexpr std::size_t kMaxIovecs = 64;
// Past this much corked, a socket writes at once instead of waiting for its turn in the flush line:
// bursts do not pile up in memory (or count against the slow-consumer limit) while the kernel could
// take them.
constexpr std::size_t kEagerFlushBytes = 64 * 1024;
// The most one TLS write carries: one record's plaintext (16 KiB), so a flush is one record and one
// syscall; more queued leaves in the next write as soon as this one completes.
constexpr std::size_t kTlsWriteBytes = 16 * 1024;
// Clients send little (pings, pongs, refreshes): one read lands here at a time.
constexpr std::size_t kTlsReadBytes = 4 * 1024;
}  // namespace

struct CorkedSocket::TlsState {
  TlsState(std::unique_ptr<TlsLink> l, metrics::ShardCounters& c) : link(std::move(l)), counters(c) {}
  std::unique_ptr<TlsLink> link;
  metrics::ShardCounters& counters;
  std::string out;  // the write in flight: queued bytes copied out of the queue (counted as queued)
  bool writing = false;
  bool shutting_down = false;  // close_notify on its way
  std::array<char, kTlsReadBytes> read_room;
};

CorkedSocket::CorkedSocket(tcp::socket&& socket, net::io_context& ioc) : socket_(ioc) {
  boost::system::error_code ec;
  auto protocol = socket.local_endpoint(ec).protocol();
  // The descriptor changes hands; should that fail, this socket stays closed and the first read ends
  // the session.
  if (!ec) {
    auto fd = socket.release(ec);
    if (!ec) socket_.assign(protocol, fd, ec);
  }
  socket_.non_blocking(true, ec);
}

CorkedSocket::CorkedSocket(std::unique_ptr<TlsLink> tls, net::io_context& ioc,
                           metrics::ShardCounters& counters)
    : socket_(ioc), tls_(std::make_unique<TlsState>(std::move(tls), counters)) {}

CorkedSocket::~CorkedSocket() = default;

TlsLink* CorkedSocket::tls() noexcept {
  return tls_ ? tls_->link.get() : nullptr;
}

net::mutable_buffer CorkedSocket::tls_read_room() noexcept {
  return net::buffer(tls_->read_room);
}

tcp::endpoint CorkedSocket::remote_endpoint(boost::system::error_code& ec) {
  if (tls_) return tls_->link->stream.next_layer().socket().remote_endpoint(ec);
  return socket_.remote_endpoint(ec);
}

void CorkedSocket::trim() {
  queue_.release();
  // An idle TLS connection holds no write buffer either.
  if (tls_ && !tls_->writing && tls_->out.empty() && tls_->out.capacity() > 0) std::string().swap(tls_->out);
}

bool CorkedSocket::tls_backlogged() const noexcept {
  return tls_->writing && queued_bytes_ > tls_->out.size() + kEagerFlushBytes;
}

void CorkedSocket::enqueue(std::shared_ptr<const void> keep, std::string_view bytes, bool droppable,
                           std::uint64_t seq, const Event* event, std::uint8_t kind) {
  if (failed_ || shutdown_pending_ || bytes.empty()) return;
  queued_bytes_ += bytes.size();
  queue_.push_back({std::move(keep), bytes, droppable, kind, seq, event});
  if (queued_bytes_ >= kEagerFlushBytes && !waiting_) return flush();
  schedule_flush();
}

bool CorkedSocket::holds(std::uint8_t kind) const noexcept {
  for (std::size_t i = 0; i < queue_.size(); ++i)
    if (queue_[i].kind == kind) return true;
  return false;
}

const Segment* CorkedSocket::unsent_back() noexcept {
  if (queue_.empty() || (queue_.size() == 1 && sent_of_front_ > 0)) return nullptr;
  return &queue_.back();
}

void CorkedSocket::replace_back(Segment s) {
  queued_bytes_ -= queue_.back().bytes.size();
  queued_bytes_ += s.bytes.size();
  queue_.back() = std::move(s);
}

void CorkedSocket::schedule_flush() {
  if (waiting_ || flush_posted_) return;
  auto keep = owner_.lock();
  if (!keep) return;
  // Deferred to this socket's turn in the shard's flush line, so that everything queued meanwhile
  // leaves in one write.
  flush_posted_ = true;
  if (flush_queue_) {
    flush_queue_->add(std::move(keep), this);
    return;
  }
  net::post(socket_.get_executor(), [this, keep = std::move(keep)] {
    flush_posted_ = false;
    flush();
  });
}

void CorkedSocket::flush() {
  if (tls_) return flush_tls();
  if (waiting_ || failed_) return;
  // Only used within this call, so one array per thread serves every connection.
  thread_local std::array<net::const_buffer, kMaxIovecs> iov;
  while (!queue_.empty()) {
    std::size_t count = 0;
    std::size_t bytes = 0;
    for (const auto& seg : queue_) {
      if (count == kMaxIovecs || bytes >= kMaxWriteBytes) break;
      std::string_view b = seg.bytes;
      if (count == 0) b.remove_prefix(sent_of_front_);
      iov[count++] = net::const_buffer(b.data(), b.size());
      bytes += b.size();
    }
    boost::system::error_code ec;
    std::size_t n = socket_.send(IovecView{iov.data(), iov.data() + count}, 0, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) break;
    if (ec) return fail();
    consume(n);
    if (n < bytes) break;  // the kernel's buffer is full
  }
  if (queue_.empty()) return drained();
  auto keep = owner_.lock();
  if (!keep) return;
  waiting_ = true;
  socket_.async_wait(tcp::socket::wait_write,
                     [this, keep = std::move(keep)](const boost::system::error_code& ec) {
                       waiting_ = false;
                       if (ec) return fail();
                       flush();
                     });
}

void CorkedSocket::flush_tls() {
  if (failed_ || tls_->writing) return;  // the write in flight flushes again when it completes
  std::string& out = tls_->out;
  if (out.empty()) {
    if (queue_.empty()) return drained();
    // Asio's TLS stream writes only the first buffer of a sequence per write, each as its own record:
    // the frames queued by now are copied into one buffer instead, to leave as one record.
    std::uint64_t segments = 0;
    while (!queue_.empty() && out.size() < kTlsWriteBytes) {
      std::string_view b = queue_.front().bytes.substr(sent_of_front_);
      const std::size_t take = std::min(b.size(), kTlsWriteBytes - out.size());
      out.append(b.data(), take);
      ++segments;
      if (take < b.size()) {
        sent_of_front_ += take;
        break;
      }
      sent_of_front_ = 0;
      queue_.pop_front();
    }
    metrics::ShardCounters::bump(tls_->counters.tls_writes, 1);
    metrics::ShardCounters::bump(tls_->counters.tls_write_segments, segments);
  }
  auto keep = owner_.lock();
  if (!keep) return;
  tls_->writing = true;
  tls_->link->stream.async_write_some(
      net::buffer(out), [this, keep = std::move(keep)](const boost::system::error_code& ec, std::size_t n) {
        on_tls_written(ec, n);
      });
}

void CorkedSocket::on_tls_written(const boost::system::error_code& ec, std::size_t n) {
  tls_->writing = false;
  if (failed_) return;
  if (ec) return fail();
  queued_bytes_ -= n;
  tls_->out.erase(0, n);  // all of it, unless the stream took less than a record
  if (!tls_->out.empty() || queue_.empty()) return flush_tls();
  // What was queued meanwhile waits for this socket's turn in the flush line, like a plain socket's
  // frames, so that more of it leaves in the next record.
  schedule_flush();
}

void CorkedSocket::consume(std::size_t n) {
  queued_bytes_ -= n;
  while (n > 0) {
    std::size_t left = queue_.front().bytes.size() - sent_of_front_;
    if (n < left) {
      sent_of_front_ += n;
      return;
    }
    n -= left;
    sent_of_front_ = 0;
    queue_.pop_front();
  }
}

void CorkedSocket::fail() {
  failed_ = true;
  if (tls_) std::string().swap(tls_->out);
  queue_.clear();
  queued_bytes_ = 0;
  sent_of_front_ = 0;
}

void CorkedSocket::drained() {
  if (!shutdown_pending_) return;
  shutdown_pending_ = false;
  boost::system::error_code ignored;
  if (!tls_) {
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    return;
  }
  // close_notify, then FIN once the client answers with its own (or the owner's deadline closes it).
  auto keep = owner_.lock();
  if (!keep || tls_->shutting_down) return;
  tls_->shutting_down = true;
  tls_->link->stream.async_shutdown([this, keep = std::move(keep)](const boost::system::error_code&) {
    boost::system::error_code ignored_ec;
    tls_->link->stream.next_layer().socket().shutdown(tcp::socket::shutdown_send, ignored_ec);
  });
}

std::pair<std::uint64_t, std::uint64_t> CorkedSocket::queued_events() noexcept {
  std::uint64_t count = 0;
  std::uint64_t oldest = 0;
  for (const auto& seg : queue_) {
    if (seg.seq == 0) continue;
    if (count++ == 0) oldest = seg.seq;
  }
  return {count, oldest};
}

void CorkedSocket::drop_pending() {
  // The front segment may be half sent: it must finish, or the frame stream would be corrupt.
  std::size_t keep_front = sent_of_front_ > 0 && !queue_.empty() ? 1 : 0;
  SegmentQueue kept;
  std::size_t bytes = 0;
  for (std::size_t i = 0; i < queue_.size(); ++i) {
    if (i < keep_front || !queue_[i].droppable) {
      bytes += queue_[i].bytes.size() - (i == 0 ? sent_of_front_ : 0);
      kept.push_back(std::move(queue_[i]));
    }
  }
  queue_ = std::move(kept);
  queued_bytes_ = bytes + (tls_ ? tls_->out.size() : 0);  // the TLS write in flight still counts
}

void CorkedSocket::shutdown_when_drained() {
  shutdown_pending_ = true;
  if (queue_.empty() && !failed_ && !(tls_ && tls_->writing)) drained();
}

void CorkedSocket::close() noexcept {
  boost::system::error_code ignored;
  if (tls_) {
    auto& lowest = tls_->link->stream.next_layer().socket();
    lowest.shutdown(tcp::socket::shutdown_both, ignored);
    lowest.close(ignored);
  }
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  shutdown_pending_ = false;
  fail();
}

}  // namespace aw::transport
