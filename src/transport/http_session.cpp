#include "transport/http_session.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "api/errors.hpp"
#include "api/subscribe_target.hpp"
#include "core/log.hpp"
#include "transport/websocket_session.hpp"

namespace aw::transport {
namespace {

// A keep-alive connection with no request for this long is closed.
constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr std::uint32_t kHeaderLimit = 16 * 1024;

}  // namespace

HttpSession::HttpSession(tcp::socket&& socket, Shard& shard, ServerContext& ctx)
    : stream_(std::move(socket)), shard_(shard), ctx_(ctx) {
  shard_.connections.insert(this);
}

HttpSession::~HttpSession() { shard_.connections.erase(this); }

void HttpSession::run() { do_read(); }

void HttpSession::do_read() {
  parser_.emplace();
  parser_->body_limit(ctx_.options.max_body_bytes);
  parser_->header_limit(kHeaderLimit);
  stream_.expires_after(kIdleTimeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void HttpSession::on_read(beast::error_code ec, std::size_t) {
  if (closed_) return;
  if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
      ec == net::error::operation_aborted || ec == net::error::connection_reset) {
    return close();
  }
  // The rest of a rejected request cannot be skipped reliably, so these answers end the connection.
  if (ec == http::error::body_limit) {
    return send(api::error_response(413, "body_too_large",
                                    "request body exceeds " + std::to_string(ctx_.options.max_body_bytes) + " bytes"),
                false, false);
  }
  if (ec == http::error::header_limit) {
    return send(api::error_response(431, "headers_too_large", "request headers exceed 16 KiB"), false, false);
  }
  if (ec) {
    return send(api::error_response(400, "bad_request", "malformed HTTP request: " + ec.message()), false, false);
  }
  handle(parser_->release());
}

void HttpSession::handle(http::request<http::string_body>&& req) {
  ctx_.counters.http_requests.fetch_add(1, std::memory_order_relaxed);
  version_ = req.version();
  std::string_view target = req.target();
  auto qpos = target.find('?');
  std::string_view path = target.substr(0, qpos);
  std::string_view query = qpos == std::string_view::npos ? std::string_view() : target.substr(qpos + 1);
  bool keep_alive = req.keep_alive();
  bool head = req.method() == http::verb::head;

  if (path.substr(0, 4) == "/ws/") {
    auto t = api::parse_subscribe_target(path, query);
    bool served = t.kind == api::SubscribeTarget::Kind::agent ||
                  (t.kind == api::SubscribeTarget::Kind::echo && ctx_.options.enable_echo);
    if (served) {
      if (req.method() != http::verb::get) {
        auto res = api::error_response(405, "method_not_allowed", "WebSocket routes take GET");
        res.headers.emplace_back("Allow", "GET");
        return send(std::move(res), keep_alive, head);
      }
      if (t.error) {
        ctx_.counters.connections_rejected.fetch_add(1, std::memory_order_relaxed);
        return send(std::move(*t.error), keep_alive, head);
      }
      if (!beast::websocket::is_upgrade(req)) {
        auto res = api::error_response(426, "upgrade_required", "this route needs a WebSocket upgrade");
        res.headers.emplace_back("Upgrade", "websocket");
        return send(std::move(res), keep_alive, head);
      }
      stream_.expires_never();
      auto ws = std::make_shared<WebSocketSession>(stream_.release_socket(), shard_, ctx_, std::move(t));
      closed_ = true;  // the socket now belongs to the WebSocket session
      ws->run(std::move(req));
      return;
    }
  }

  api::Request r;
  r.method = std::string(req.method_string());
  r.path = std::string(path);
  r.query = std::string(query);
  r.content_type = std::string(req[http::field::content_type]);
  if (auto it = req.find("Idempotency-Key"); it != req.end()) {
    r.has_idempotency_key = true;
    r.idempotency_key = std::string(it->value());
  }
  r.body = std::move(req.body());
  // Handlers may answer from another thread (a publish answers from the hub's writer): come back here.
  ctx_.router.handle(r, [self = shared_from_this(), keep_alive, head](api::Response res) {
    net::post(self->stream_.get_executor(), [self, res = std::move(res), keep_alive, head]() mutable {
      self->send(std::move(res), keep_alive, head);
    });
  });
}

void HttpSession::send(api::Response res, bool keep_alive, bool head) {
  if (closed_) return;
  auto msg = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(res.status), version_);
  msg->set(http::field::server, std::string("agentwire/") + AGENTWIRE_VERSION);
  msg->set(http::field::content_type, res.content_type);
  for (auto& [k, v] : res.headers) msg->set(k, v);
  msg->keep_alive(keep_alive);
  msg->body() = std::move(res.body);
  msg->prepare_payload();
  if (head) msg->body().clear();
  stream_.expires_after(kIdleTimeout);
  http::async_write(stream_, *msg, [self = shared_from_this(), msg, keep_alive](beast::error_code ec, std::size_t) {
    self->on_write(ec, keep_alive);
  });
}

void HttpSession::on_write(beast::error_code ec, bool keep_alive) {
  if (ec || !keep_alive) return close();
  do_read();
}

void HttpSession::close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.close();
}

void HttpSession::on_shutdown() {
  // In-flight answers still go out; idle keep-alive connections are dropped.
  if (!closed_ && !parser_->is_header_done()) close();
}

}  // namespace aw::transport
