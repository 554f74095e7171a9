// The listening socket: accepts connections and hands each to a shard, round-robin, as an HTTP session
// — or, past a connection limit, as a refusal. Running out of descriptors (EMFILE) does not spin: the
// acceptor backs off and logs at most one line a second, and the connections it has keep being served.
#pragma once
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "transport/server_context.hpp"
#include "transport/shard.hpp"

namespace aw::transport {

using tcp = net::ip::tcp;

class Server {
 public:
  Server(ShardPool& pool, ServerContext& ctx);

  // Binds and listens (throws std::system_error with a clear message on failure), then accepts on
  // shard 0's thread.
  void start(const std::string& host, std::uint16_t port);
  std::uint16_t port() const noexcept { return port_; }

  // Stops accepting and destroys the acceptor (before its io_context goes); connections already open
  // are left to the caller's shutdown.
  void stop_accepting();

  // RLIMIT_NOFILE's soft limit (UINT64_MAX: none).
  static std::uint64_t descriptor_limit();
  // --max-connections, lowered to the descriptor limit less a reserve (a quarter of it, 32 to 128) for
  // the store, the event loops, files served and refusals in flight.
  static std::uint64_t effective_max_connections(std::uint64_t configured, std::uint64_t fd_limit);

 private:
  void do_accept();
  void on_accepted(Shard& shard, tcp::socket socket);
  void on_accept_error(const boost::system::error_code& ec);
  void refuse(Shard& shard, tcp::socket socket, const std::shared_ptr<const std::string>& answer);

  ShardPool& pool_;
  ServerContext& ctx_;
  std::optional<tcp::acceptor> acceptor_;
  std::optional<net::steady_timer> retry_timer_;  // the back-off after a failed accept
  std::uint16_t port_ = 0;
  std::chrono::milliseconds backoff_{0};
  std::uint64_t unlogged_failures_ = 0;  // failed accepts since the last accept_failed line
  std::chrono::steady_clock::time_point last_failure_log_{};  // of accept_failed or accept_resumed
  std::atomic<std::uint32_t> refusals_in_flight_{0};
  std::shared_ptr<const std::string> over_max_answer_;
  std::shared_ptr<const std::string> over_per_ip_answer_;
};

}  // namespace aw::transport
