#include "transport/server.hpp"

#include <boost/asio/post.hpp>
#include <future>

#include "core/log.hpp"
#include "transport/http_session.hpp"

namespace aw::transport {

Server::Server(ShardPool& pool, ServerContext& ctx) : pool_(pool), ctx_(ctx) { acceptor_.emplace(pool.shard(0).ioc); }

void Server::start(const std::string& host, std::uint16_t port) {
  boost::system::error_code ec;
  auto address = net::ip::make_address(host, ec);
  if (ec) throw std::system_error(ec, "listen address '" + host + "' is not an IP address");
  tcp::endpoint endpoint(address, port);
  acceptor_->open(endpoint.protocol());
  acceptor_->set_option(net::socket_base::reuse_address(true));
  acceptor_->bind(endpoint, ec);
  if (ec) throw std::system_error(ec, "cannot listen on " + host + ":" + std::to_string(port));
  acceptor_->listen(net::socket_base::max_listen_connections);
  port_ = acceptor_->local_endpoint().port();
  // Before any connection's handler: each loop wakes the hub's writer once per burst of publishes.
  for (unsigned i = 0; i < pool_.shard_count(); ++i) {
    net::io_context& ioc = pool_.shard(i).ioc;
    net::post(ioc, [&ioc, &hub = ctx_.hub] {
      hub.defer_wakes_on_this_thread([&ioc](std::function<void()> wake) { net::post(ioc, std::move(wake)); });
    });
  }
  net::post(acceptor_->get_executor(), [this] { do_accept(); });
}

void Server::do_accept() {
  if (!acceptor_) return;  // stopped
  Shard& shard = pool_.next();
  acceptor_->async_accept(shard.ioc, [this, &shard](boost::system::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      // Typically EMFILE: log and keep accepting rather than stop serving.
      log::warn("accept_failed", {{"error", ec.message()}});
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      // The session is created on its shard's thread, where it will live.
      net::post(shard.ioc, [&shard, this, s = std::move(socket)]() mutable {
        std::make_shared<HttpSession>(std::move(s), shard, ctx_)->run();
      });
    }
    do_accept();
  });
}

void Server::stop_accepting() {
  if (!acceptor_) return;
  std::promise<void> done;
  net::post(acceptor_->get_executor(), [this, &done] {
    boost::system::error_code ignored;
    acceptor_->close(ignored);
    acceptor_.reset();
    done.set_value();
  });
  done.get_future().wait();
}

}  // namespace aw::transport
