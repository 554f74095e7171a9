// When corked sockets leave. A socket with something queued waits in a round-robin line; the line is
// worked off a few sockets per loop turn, with deliveries and reads running in between. So while the
// line is long (one event to 10,000 subscribers), the events published meanwhile join the writes of the
// subscribers not yet reached instead of waiting for another pass: under load each write carries more
// frames and the syscalls per event fall, without holding anything back when the server is idle.
#pragma once
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace aw::transport {

namespace net = boost::asio;
class CorkedSocket;

class FlushQueue {
 public:
  // `pending` counts deliveries posted to this shard and not yet run.
  FlushQueue(net::io_context& ioc, const std::atomic<std::uint32_t>& pending)
      : ioc_(ioc), pending_(pending) {}

  // Puts `socket` at the end of the line; `keep` holds its owner alive until its turn.
  void add(std::shared_ptr<void> keep, CorkedSocket* socket);

  // Sockets flushed per loop turn: large enough that the turn's overhead is noise next to the sends,
  // small enough that a delivery or an HTTP read waits at most a few hundred microseconds.
  static constexpr std::size_t kSocketsPerTurn = 64;

 private:
  void run();
  void post_run();

  // Longest the line waits, when it starts, for deliveries already queued behind it.
  static constexpr std::chrono::microseconds kMaxDelay{1000};

  net::io_context& ioc_;
  const std::atomic<std::uint32_t>& pending_;
  std::vector<std::pair<std::shared_ptr<void>, CorkedSocket*>> line_;
  std::size_t next_ = 0;  // first socket of line_ not yet flushed
  bool scheduled_ = false;
  bool deferring_ = false;
  std::chrono::steady_clock::time_point first_{};  // when the line's first turn was due
};

}  // namespace aw::transport
