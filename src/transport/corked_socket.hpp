// A TCP stream that corks writes: frames queued during a loop pass leave together in one non-blocking
// gather-write at the end of the pass (or at once past 64 KiB), so a subscriber with many queued frames
// costs one syscall per pass, not one per frame. What the kernel does not take waits here, and that
// backlog is what the slow-consumer limit measures. It sits under Beast's websocket::stream, which keeps the protocol (handshake,
// reads, control frames, close); broadcast frames skip Beast and are queued here as shared bytes.
//
// Rules that keep the byte stream valid: every write is accepted whole and in call order (Beast's own
// pong and close frames stay intact between ours), and teardown waits until the queue has left.
#pragma once
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/websocket/teardown.hpp>
#include <array>
#include <vector>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/event.hpp"
#include "transport/flush_queue.hpp"

namespace aw::transport {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// Bytes queued on a socket: owned by `keep` (an event, a session message, a copy of Beast's write).
struct Segment {
  std::shared_ptr<const void> keep;
  std::string_view bytes;
  bool droppable = false;
  std::uint64_t seq = 0;          // the (first) seq of the event it carries, 0 for anything else
  const Event* event = nullptr;   // that event (owned by `keep`), for merging while the client lags
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

 private:
  std::vector<Segment> items_;
  std::size_t head_ = 0;
};

class CorkedSocket {
 public:
  using next_layer_type = tcp::socket;
  using executor_type = tcp::socket::executor_type;

  explicit CorkedSocket(tcp::socket&& socket);

  executor_type get_executor() noexcept { return socket_.get_executor(); }
  tcp::socket& next_layer() noexcept { return socket_; }

  // Keeps the owning session alive while a send or a posted flush is pending.
  void set_owner(std::weak_ptr<void> owner) { owner_ = std::move(owner); }
  // The shard's flush queue; without one each socket posts its own flush.
  void set_flush_queue(FlushQueue* q) noexcept { flush_queue_ = q; }
  // Called by the flush queue.
  void flush_scheduled() {
    flush_posted_ = false;
    flush();
  }

  template <class MutableBufferSequence, class ReadToken>
  auto async_read_some(const MutableBufferSequence& buffers, ReadToken&& token) {
    return socket_.async_read_some(buffers, std::forward<ReadToken>(token));
  }

  // Beast's writes: copied (they are small and rare: handshake, control frames, echo), accepted whole,
  // completed through a post as Asio requires.
  template <class ConstBufferSequence, class WriteToken>
  auto async_write_some(const ConstBufferSequence& buffers, WriteToken&& token) {
    return net::async_initiate<WriteToken, void(boost::system::error_code, std::size_t)>(
        [this](auto handler, const ConstBufferSequence& bufs) {
          boost::system::error_code ec = error_;
          std::size_t n = 0;
          if (!ec) {
            auto copy = std::make_shared<std::string>();
            copy->reserve(net::buffer_size(bufs));
            for (auto it = net::buffer_sequence_begin(bufs); it != net::buffer_sequence_end(bufs); ++it) {
              net::const_buffer b = *it;
              copy->append(static_cast<const char*>(b.data()), b.size());
            }
            n = copy->size();
            std::string_view view(*copy);
            enqueue(std::move(copy), view, /*droppable=*/false);
          }
          auto ex = net::get_associated_executor(handler, socket_.get_executor());
          net::post(ex, boost::beast::bind_front_handler(std::move(handler), ec, n));
        },
        token, buffers);
  }

  // Queues bytes owned by `keep` without copying them. Droppable segments are whole messages that a
  // slow-consumer close may discard before they start to leave.
  void enqueue(std::shared_ptr<const void> keep, std::string_view bytes, bool droppable, std::uint64_t seq = 0,
               const Event* event = nullptr);

  // The kernel's buffer for this socket is full: the client is not keeping up.
  bool backlogged() const noexcept { return waiting_; }
  // The last queued segment when none of it has left yet (it may still be replaced), else null.
  const Segment* unsent_back() noexcept;
  // Replaces the segment unsent_back() returned.
  void replace_back(Segment s);

  // Events queued and the seq of the oldest of them (0 when none): how far behind this client is.
  std::pair<std::uint64_t, std::uint64_t> queued_events() noexcept;

  // Discards droppable segments that have not started to leave.
  void drop_pending();

  std::size_t queued_bytes() const noexcept { return queued_bytes_; }
  bool failed() const noexcept { return static_cast<bool>(error_); }

  // Closes the socket now; pending operations complete with operation_aborted.
  void close() noexcept;

  // For Beast's close handshake: shut down once everything queued has been sent.
  using TeardownCallback = std::function<void(boost::system::error_code)>;
  void async_teardown(TeardownCallback done);

 private:
  void schedule_flush();
  // Sends what the kernel takes now; waits for writability when it takes no more.
  void flush();
  void consume(std::size_t n);
  void fail(const boost::system::error_code& ec);
  void finish_teardown();

  // A view of some entries of an iovec array, as an Asio buffer sequence.
  struct IovecView {
    const net::const_buffer* first;
    const net::const_buffer* last;
    const net::const_buffer* begin() const noexcept { return first; }
    const net::const_buffer* end() const noexcept { return last; }
  };
  tcp::socket socket_;
  std::weak_ptr<void> owner_;
  FlushQueue* flush_queue_ = nullptr;
  SegmentQueue queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t sent_of_front_ = 0;  // bytes of queue_.front() already written
  bool waiting_ = false;           // the kernel's buffer was full: waiting for writability
  bool flush_posted_ = false;
  boost::system::error_code error_;
  TeardownCallback teardown_;
};

// Beast finds these by argument-dependent lookup when it closes a websocket::stream<CorkedSocket>.
template <class TeardownHandler>
void async_teardown(boost::beast::role_type, CorkedSocket& s, TeardownHandler&& handler) {
  // std::function needs a copyable target; Beast's handlers are move-only, so share one.
  auto shared = std::make_shared<std::decay_t<TeardownHandler>>(std::forward<TeardownHandler>(handler));
  s.async_teardown([shared](boost::system::error_code ec) { std::move (*shared)(ec); });
}

inline void teardown(boost::beast::role_type role, CorkedSocket& s, boost::system::error_code& ec) {
  boost::beast::websocket::teardown(role, s.next_layer(), ec);
}

}  // namespace aw::transport
