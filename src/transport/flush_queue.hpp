// When corked sockets leave: once per loop pass, after everything the pass queued. While more
// deliveries for this shard are already waiting, the flush waits for them too (up to a short time
// budget), so a subscriber takes several events in one write instead of one write per event.
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
  FlushQueue(net::io_context& ioc, const std::atomic<std::uint32_t>& pending) : ioc_(ioc), pending_(pending) {}

  // Schedules `socket` for the next flush; `keep` holds its owner alive until then.
  void add(std::shared_ptr<void> keep, CorkedSocket* socket);

 private:
  void run();

  // Longest a flush waits for queued deliveries: small next to the latency we promise.
  static constexpr std::chrono::microseconds kMaxDelay{1000};

  net::io_context& ioc_;
  const std::atomic<std::uint32_t>& pending_;
  std::vector<std::pair<std::shared_ptr<void>, CorkedSocket*>> dirty_;
  std::vector<std::pair<std::shared_ptr<void>, CorkedSocket*>> running_;
  bool scheduled_ = false;
  bool deferring_ = false;
  std::chrono::steady_clock::time_point first_{};  // when the first flush attempt of this round ran
};

}  // namespace aw::transport
