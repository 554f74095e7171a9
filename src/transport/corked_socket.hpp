// A TCP socket that corks writes: a socket with frames queued joins its shard's flush line
// (FlushQueue), and when its turn comes everything queued by then leaves in non-blocking gather-writes
// (each takes up to 64 segments, and no more once 256 KiB are gathered). The line is worked off 64
// sockets per loop turn, with deliveries and reads running between turns, and its first turn waits up
// to 1 ms for deliveries already posted to the shard; a socket with 64 KiB queued writes at once
// instead of waiting for its turn. So a subscriber with many queued frames costs one syscall per turn,
// not one per frame. What the kernel does not take waits here, and that backlog is what the
// slow-consumer limit measures. Everything the WebSocket session sends goes through it: the handshake
// answer, broadcast frames (shared bytes, never copied), session messages and control frames, each
// queued whole and in order. Reads go straight to socket().
//
// On a TLS connection the same queue leaves through the connection's TLS stream instead: each flush
// copies what is queued (up to one TLS record, 16 KiB) into one buffer and writes it as one record,
// since the stream would make each buffer of a gather-write a record (and a syscall) of its own. Reads
// then go through tls(), not socket().
#pragma once
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <memory>
#include <string_view>
#include <vector>

#include "core/event.hpp"
#include "metrics/counters.hpp"
#include "transport/flush_queue.hpp"
#include "transport/tls_link.hpp"

namespace aw::transport {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// Bytes queued on a socket: owned by `keep` (an event, a session message; null for static bytes).
struct Segment {
  std::shared_ptr<const void> keep;
  std::string_view bytes;
  bool droppable = false;
  std::uint8_t kind = 0;         // what its owner says it is, to find it again (0: nothing in particular)
  std::uint64_t seq = 0;         // the (first) seq of the event it carries, 0 for anything else
  const Event* event = nullptr;  // that event (owned by `keep`), for merging while the client lags
};

// A FIFO of segments that allocates nothing while empty — std::deque allocates ~600 B up front, which
// every idle connection would pay for ever — and pops from the front in O(1) amortized.
class SegmentQueue {
 public:
  bool empty() const noexcept { return head_ == items_.size(); }
  std::size_t size() const noexcept { return items_.size() - head_; }
  Segment& front() noexcept { return items_[head_]; }
  Segment& back() noexcept { return items_.back(); }
  Segment& operator[](std::size_t i) noexcept { return items_[head_ + i]; }
  const Segment& operator[](std::size_t i) const noexcept { return items_[head_ + i]; }
  auto begin() noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
  auto end() noexcept { return items_.end(); }
  void push_back(Segment s) { items_.push_back(std::move(s)); }
  void pop_back() {
    items_.pop_back();
    if (head_ == items_.size()) clear();
  }
  void pop_front() {
    items_[head_] = Segment{};  // release the bytes now
    if (++head_ == items_.size()) {
      clear();
    } else if (head_ >= 64 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() {
    items_.clear();
    head_ = 0;
    // A connection that once had a deep backlog gives the memory back when it drains.
    if (items_.capacity() > 256) items_.shrink_to_fit();
  }
  // Gives back all memory when empty: idle connections hold none (busy ones keep theirs between passes).
  void release() {
    if (!empty()) return;
    std::vector<Segment>().swap(items_);
    head_ = 0;
  }

 private:
  std::vector<Segment> items_;
  std::size_t head_ = 0;
};

class CorkedSocket {
 public:
  // Bound to the shard's io_context rather than a type-erased executor: each pending operation and the
  // socket itself are smaller by the size of one, which every idle connection pays.
  using executor_type = net::io_context::executor_type;
  using socket_type = net::basic_stream_socket<tcp, executor_type>;

  // Takes over the connection `socket` holds, on `ioc` (the shard's), non-blocking.
  CorkedSocket(tcp::socket&& socket, net::io_context& ioc);
  // Takes over a TLS connection (handshake done); its writes are counted in `counters`.
  CorkedSocket(std::unique_ptr<TlsLink> tls, net::io_context& ioc, metrics::ShardCounters& counters);
  ~CorkedSocket();

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  // The plain connection's socket (unused on a TLS connection).
  socket_type& socket() noexcept { return socket_; }
  // The TLS connection's stream, null on a plain one.
  TlsLink* tls() noexcept;
  // Where a TLS connection's reads land (one read in flight at a time).
  net::mutable_buffer tls_read_room() noexcept;
  tcp::endpoint remote_endpoint(boost::system::error_code& ec);

  // Keeps the owning session alive while a send or a posted flush is pending.
  void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }
  // The shard's flush queue; without one each socket posts its own flush.
  void set_flush_queue(FlushQueue* q) noexcept { flush_queue_ = q; }
  // Called by the flush queue.
  void flush_scheduled() {
    flush_posted_ = false;
    flush();
  }

  // Queues bytes owned by `keep` without copying them. Droppable segments are whole messages that a
  // slow-consumer close may discard before they start to leave.
  void enqueue(std::shared_ptr<const void> keep, std::string_view bytes, bool droppable,
               std::uint64_t seq = 0, const Event* event = nullptr, std::uint8_t kind = 0);

  // A segment of this kind is queued (whether or not it has started to leave).
  bool holds(std::uint8_t kind) const noexcept;

  // The kernel's buffer for this socket is full: the client is not keeping up (on a TLS connection:
  // a write is in flight and more than 64 KiB wait behind it).
  bool backlogged() const noexcept { return tls_ ? tls_backlogged() : waiting_; }
  // The last queued segment when none of it has left yet (it may still be replaced), else null.
  const Segment* unsent_back() noexcept;
  // Replaces the segment unsent_back() returned.
  void replace_back(Segment s);

  // Events queued and the seq of the oldest of them (0 when none): how far behind this client is.
  std::pair<std::uint64_t, std::uint64_t> queued_events() noexcept;

  // Discards droppable segments that have not started to leave.
  void drop_pending();

  std::size_t queued_bytes() const noexcept { return queued_bytes_; }
  // Where the state enqueue() reads begins (the queue, its size, the flags), for prefetching; what its
  // owner reads on the same path may follow this object.
  const void* enqueue_state() const noexcept { return &queue_; }
  // Nothing is queued: frees the queue's memory (called now and then, so that it is not freed and
  // allocated again on every pass of a busy connection).
  void trim();
  // A send failed or the socket was closed: nothing more will be sent.
  bool failed() const noexcept { return failed_; }

  // Nothing more will be queued: once everything queued has left, send FIN (the server closes the TCP
  // connection first after a WebSocket close, RFC 6455 §7.1.1). Reading still works until close().
  void shutdown_when_drained();

  // Closes the socket now; pending operations complete with operation_aborted.
  void close() noexcept;

 private:
  struct TlsState;
  void schedule_flush();
  // Sends what the kernel takes now; waits for writability when it takes no more.
  void flush();
  // The same through TLS: one record's worth copied into one buffer, one write in flight at a time.
  void flush_tls();
  void on_tls_written(const boost::system::error_code& ec, std::size_t n);
  bool tls_backlogged() const noexcept;
  void consume(std::size_t n);
  void fail();
  void drained();

  // A view of some entries of an iovec array, as an Asio buffer sequence.
  struct IovecView {
    const net::const_buffer* first;
    const net::const_buffer* last;
    const net::const_buffer* begin() const noexcept { return first; }
    const net::const_buffer* end() const noexcept { return last; }
  };
  socket_type socket_;
  std::unique_ptr<TlsState> tls_;  // TLS connections only: plain ones pay one pointer
  std::weak_ptr<void> owner_;
  FlushQueue* flush_queue_ = nullptr;
  SegmentQueue queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t sent_of_front_ = 0;  // bytes of queue_.front() already written
  bool waiting_ = false;           // the kernel's buffer was full: waiting for writability
  bool flush_posted_ = false;
  bool failed_ = false;
  bool shutdown_pending_ = false;  // send FIN once the queue is empty
};

}  // namespace aw::transport
