// The listening socket: accepts connections and hands each to a shard, round-robin, as an HTTP session.
#pragma once
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <memory>
#include <optional>

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

 private:
  void do_accept();

  ShardPool& pool_;
  ServerContext& ctx_;
  std::optional<tcp::acceptor> acceptor_;
  std::uint16_t port_ = 0;
};

}  // namespace aw::transport
