#include "transport/refusal.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>
#include <chrono>

#include "api/errors.hpp"

namespace aw::transport {
namespace {

// Long enough for a client on a slow link to read the answer and close; short enough that refused
// connections, each a descriptor, do not pile up.
constexpr auto kLinger = std::chrono::seconds(2);

}  // namespace

Refusal::Refusal(net::ip::tcp::socket&& socket, Shard& shard, std::shared_ptr<const std::string> answer,
                 std::atomic<std::uint32_t>& in_flight)
    : stream_(std::move(socket)), shard_(shard), answer_(std::move(answer)), in_flight_(in_flight) {
  shard_.connections.insert(this);
}

Refusal::~Refusal() {
  shard_.connections.erase(this);
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
}

std::string Refusal::answer(unsigned status, std::string_view code, std::string_view message) {
  api::Response res = api::error_response(status, code, message);
  auto reason = boost::beast::http::obsolete_reason(static_cast<boost::beast::http::status>(status));
  std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
  out.append(reason.data(), reason.size()).append("\r\n");
  out.append("Server: agentwire/" AGENTWIRE_VERSION "\r\n");
  out.append("Content-Type: ").append(res.content_type).append("\r\n");
  out.append("Content-Length: ").append(std::to_string(res.body.size())).append("\r\n");
  out.append("Retry-After: 1\r\nConnection: close\r\n\r\n");
  out.append(res.body);
  return out;
}

void Refusal::run() {
  stream_.expires_after(kLinger);
  net::async_write(stream_, net::buffer(*answer_),
                   [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                     if (ec) return self->close();
                     boost::system::error_code ignored;
                     self->stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
                     self->drain();
                   });
}

void Refusal::drain() {
  // The linger set in run() still holds: a client that never closes is cut off when it ends.
  stream_.async_read_some(net::buffer(sink_),
                          [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                            if (ec) return self->close();
                            self->drain();
                          });
}

void Refusal::close() {
  boost::system::error_code ignored;
  stream_.socket().close(ignored);
}

}  // namespace aw::transport
