// The byte stream under an HTTP session: plain TCP, or TLS over it. Either way it is an Asio async
// stream that Beast reads requests from and the session writes answers to, and its timeouts are the
// TCP stream's (a timeout closes the socket, which ends whatever TLS operation was waiting).
#pragma once
#include <boost/beast/core/tcp_stream.hpp>
#include <memory>
#include <optional>
#include <utility>

#include "transport/tls_link.hpp"

namespace aw::transport {

class HttpStream {
 public:
  using executor_type = boost::beast::tcp_stream::executor_type;

  explicit HttpStream(net::ip::tcp::socket&& socket) : tcp_(std::in_place, std::move(socket)) {}
  HttpStream(net::ip::tcp::socket&& socket, std::shared_ptr<net::ssl::context> ctx)
      : tls_(std::make_unique<TlsLink>(std::move(ctx), std::move(socket))) {}

  executor_type get_executor() noexcept { return lowest().get_executor(); }
  boost::beast::tcp_stream& lowest() noexcept { return tls_ ? tls_->stream.next_layer() : *tcp_; }
  // Null on a plain connection.
  TlsLink* tls() noexcept { return tls_.get(); }
  // The connection becomes a WebSocket session's: its TLS state goes along, or just its socket.
  std::unique_ptr<TlsLink> release_tls() noexcept { return std::move(tls_); }
  net::ip::tcp::socket release_socket() { return tcp_->release_socket(); }

  template <class MutableBuffers, class Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (tls_)
      tls_->stream.async_read_some(buffers, std::forward<Handler>(handler));
    else
      tcp_->async_read_some(buffers, std::forward<Handler>(handler));
  }

  template <class ConstBuffers, class Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (tls_)
      tls_->stream.async_write_some(buffers, std::forward<Handler>(handler));
    else
      tcp_->async_write_some(buffers, std::forward<Handler>(handler));
  }

 private:
  std::optional<boost::beast::tcp_stream> tcp_;  // plain connections
  std::unique_ptr<TlsLink> tls_;                 // TLS connections (its stream owns the TCP stream)
};

}  // namespace aw::transport
