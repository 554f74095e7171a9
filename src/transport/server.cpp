#include "transport/server.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <future>

#include "core/log.hpp"
#include "transport/http_session.hpp"
#include "transport/refusal.hpp"

namespace aw::transport {
namespace {

// After a failed accept for want of descriptors or memory: wait, doubling, so the loop does not spin
// on a listening socket that stays readable.
constexpr std::chrono::milliseconds kFirstBackoff{10};
constexpr std::chrono::milliseconds kMaxBackoff{1000};
constexpr auto kFailureLogInterval = std::chrono::seconds(1);
// Refusals each hold a descriptor for up to a couple of seconds; past this many at once, a refused
// connection is closed without an answer.
constexpr std::uint32_t kMaxRefusalsInFlight = 64;

bool out_of_resources(const boost::system::error_code& ec) {
  if (ec.category() != boost::system::system_category()) return false;
  int e = ec.value();
  return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

}  // namespace

Server::Server(ShardPool& pool, ServerContext& ctx) : pool_(pool), ctx_(ctx) {
  acceptor_.emplace(pool.shard(0).ioc);
  retry_timer_.emplace(pool.shard(0).ioc);
}

std::uint64_t Server::descriptor_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return UINT64_MAX;
  return rl.rlim_cur;
}

std::uint64_t Server::effective_max_connections(std::uint64_t configured, std::uint64_t fd_limit) {
  if (fd_limit == UINT64_MAX) return configured;
  const std::uint64_t reserve = std::clamp<std::uint64_t>(fd_limit / 4, 32, 128);
  return std::max<std::uint64_t>(1, std::min(configured, fd_limit > reserve ? fd_limit - reserve : 1));
}

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

  const std::uint64_t fd_limit = descriptor_limit();
  const std::uint64_t max = effective_max_connections(ctx_.options.max_connections, fd_limit);
  log::info("connection_limits",
            {{"max_connections", std::to_string(max)},
             {"max_connections_per_ip", std::to_string(ctx_.options.max_connections_per_ip)},
             {"fd_limit", fd_limit == UINT64_MAX ? "unlimited" : std::to_string(fd_limit)}});
  pool_.gate().set_limits(max, ctx_.options.max_connections_per_ip);
  over_max_answer_ = std::make_shared<const std::string>(
      Refusal::answer(503, "too_many_connections",
                      "the server holds its maximum of connections (--max-connections); retry later"));
  over_per_ip_answer_ = std::make_shared<const std::string>(Refusal::answer(
      429, "too_many_connections_from_address",
      "this address holds its maximum of connections (--max-connections-per-ip); close some"));

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
    if (ec == net::error::operation_aborted || !acceptor_) return;
    if (ec) return on_accept_error(ec);
    if (backoff_.count() > 0) {
      // Descriptors are back. Said within the same one line a second as the failures: a server that
      // flaps at its limit (refusals freeing a descriptor now and then) does not log twice as much.
      backoff_ = std::chrono::milliseconds(0);
      auto now = std::chrono::steady_clock::now();
      if (now - last_failure_log_ >= kFailureLogInterval) {
        log::info("accept_resumed", {{"failures", std::to_string(unlogged_failures_)}});
        last_failure_log_ = now;
        unlogged_failures_ = 0;
      }
    }
    on_accepted(shard, std::move(socket));
    do_accept();
  });
}

void Server::on_accepted(Shard& shard, tcp::socket socket) {
  boost::system::error_code ec;
  auto peer = socket.remote_endpoint(ec);
  if (ec) return;  // the peer is already gone; the socket closes here
  ConnectionSlot slot;
  switch (pool_.gate().admit(peer.address(), slot)) {
    case ConnectionGate::Verdict::admitted:
      break;
    case ConnectionGate::Verdict::over_max:
      return refuse(shard, std::move(socket), over_max_answer_);
    case ConnectionGate::Verdict::over_per_ip:
      return refuse(shard, std::move(socket), over_per_ip_answer_);
  }
  socket.set_option(tcp::no_delay(true), ec);
  // The session is created on its shard's thread, where it will live.
  net::post(shard.ioc, [&shard, this, s = std::move(socket), slot = std::move(slot),
                        address = peer.address()]() mutable {
    auto session = std::make_shared<HttpSession>(std::move(s), shard, ctx_, address);
    shard.connections.attach(session.get(), std::move(slot));
    session->run();
  });
}

void Server::refuse(Shard& shard, tcp::socket socket, const std::shared_ptr<const std::string>& answer) {
  // A TLS client cannot read a plain answer, and one sent through TLS would cost a handshake per
  // refused connection: on a TLS port a refused connection just closes.
  if (ctx_.tls) return;
  // Each refusal holds a descriptor a little while: past the bound, a refused connection just closes.
  if (refusals_in_flight_.load(std::memory_order_relaxed) >= kMaxRefusalsInFlight) return;
  refusals_in_flight_.fetch_add(1, std::memory_order_relaxed);
  net::post(shard.ioc, [&shard, this, s = std::move(socket), answer]() mutable {
    std::make_shared<Refusal>(std::move(s), shard, answer, refusals_in_flight_)->run();
  });
}

void Server::on_accept_error(const boost::system::error_code& ec) {
  ctx_.counters.accept_errors.fetch_add(1, std::memory_order_relaxed);
  ++unlogged_failures_;
  const bool resources = out_of_resources(ec);
  if (resources) backoff_ = std::clamp(backoff_ * 2, kFirstBackoff, kMaxBackoff);
  // At most one line a second, however fast accepts fail: it says how many failed since the last one.
  auto now = std::chrono::steady_clock::now();
  if (now - last_failure_log_ >= kFailureLogInterval) {
    log::warn("accept_failed", {{"error", ec.message()},
                                {"failures", std::to_string(unlogged_failures_)},
                                {"retry_ms", std::to_string(resources ? backoff_.count() : 0)}});
    last_failure_log_ = now;
    unlogged_failures_ = 0;
  }
  // A failure of one connection (it was reset before we took it) is no reason to wait.
  if (!resources) return do_accept();
  retry_timer_->expires_after(backoff_);
  retry_timer_->async_wait([this](const boost::system::error_code& wait_ec) {
    if (!wait_ec) do_accept();
  });
}

void Server::stop_accepting() {
  if (!acceptor_) return;
  std::promise<void> done;
  net::post(acceptor_->get_executor(), [this, &done] {
    boost::system::error_code ignored;
    acceptor_->close(ignored);
    acceptor_.reset();
    retry_timer_.reset();
    done.set_value();
  });
  done.get_future().wait();
}

}  // namespace aw::transport
