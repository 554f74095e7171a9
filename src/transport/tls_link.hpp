// One connection's TLS: the OpenSSL stream over its TCP stream, and the context it was made from
// (kept alive by the connection, whatever reloads happen meanwhile). An HTTP session makes it and
// hands it to the WebSocket session on an upgrade.
#pragma once
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <memory>

namespace aw::transport {

namespace net = boost::asio;

struct TlsLink {
  TlsLink(std::shared_ptr<net::ssl::context> ctx, net::ip::tcp::socket&& socket)
      : context(std::move(ctx)), stream(std::move(socket), *context) {}

  std::shared_ptr<net::ssl::context> context;  // declared first: outlives the stream made from it
  net::ssl::stream<boost::beast::tcp_stream> stream;
};

}  // namespace aw::transport
