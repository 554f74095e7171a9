#include "transport/http_session.hpp"

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
// Requests read ahead of their answers; past this, reading pauses until answers go out.
constexpr std::size_t kMaxPipeline = 128;

const std::string kServerHeader = std::string("Server: agentwire/") + AGENTWIRE_VERSION + "\r\n";

// Our answers are small and their headers few: formatting them here lets several answers share one
// write, which Beast's serializer (one message per write) does not.
std::string serialize(const api::Response& res, unsigned version, bool keep_alive, bool head) {
  std::string out;
  out.reserve(160 + res.body.size());
  out.append(version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ").append(std::to_string(res.status)).push_back(' ');
  auto reason = http::obsolete_reason(static_cast<http::status>(res.status));
  out.append(reason.data(), reason.size()).append("\r\n");
  out.append(kServerHeader);
  out.append("Content-Type: ").append(res.content_type).append("\r\n");
  out.append("Content-Length: ").append(std::to_string(res.body.size())).append("\r\n");
  for (const auto& [k, v] : res.headers) out.append(k).append(": ").append(v).append("\r\n");
  if (!keep_alive) out.append("Connection: close\r\n");
  else if (version == 10) out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
  if (!head) out.append(res.body);
  return out;
}

}  // namespace

HttpSession::HttpSession(tcp::socket&& socket, Shard& shard, ServerContext& ctx)
    : stream_(std::move(socket)), shard_(shard), ctx_(ctx) {
  shard_.connections.insert(this);
}

HttpSession::~HttpSession() { shard_.connections.erase(this); }

void HttpSession::run() { do_read(); }

void HttpSession::do_read() {
  if (closed_ || reading_ || no_more_reads_ || pending_upgrade_ || slots_.size() >= kMaxPipeline) return;
  reading_ = true;
  parser_.emplace();
  parser_->body_limit(ctx_.options.max_body_bytes);
  parser_->header_limit(kHeaderLimit);
  stream_.expires_after(kIdleTimeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void HttpSession::on_read(beast::error_code ec, std::size_t) {
  reading_ = false;
  if (closed_) return;
  if (ec == http::error::end_of_stream || ec == net::error::eof || ec == beast::error::timeout ||
      ec == net::error::operation_aborted || ec == net::error::connection_reset) {
    // Answers still owed are written first; then the connection closes.
    no_more_reads_ = true;
    if (ec == beast::error::timeout || ec == net::error::connection_reset) return close();
    return write_ready();
  }
  // The rest of a rejected request cannot be skipped reliably, so these answers end the connection.
  if (ec) {
    no_more_reads_ = true;
    if (ec == http::error::body_limit) {
      return reply_now(api::error_response(413, "body_too_large", "request body exceeds " +
                                                                      std::to_string(ctx_.options.max_body_bytes) +
                                                                      " bytes"),
                       false, false);
    }
    if (ec == http::error::header_limit) {
      return reply_now(api::error_response(431, "headers_too_large", "request headers exceed 16 KiB"), false, false);
    }
    return reply_now(api::error_response(400, "bad_request", "malformed HTTP request: " + ec.message()), false,
                     false);
  }
  handle(parser_->release());
  do_read();
}

std::uint64_t HttpSession::reserve_slot() {
  slots_.emplace_back();
  return next_slot_++;
}

void HttpSession::reply_now(const api::Response& res, bool keep_alive, bool head) {
  complete(reserve_slot(), res, keep_alive, head);
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
  if (!keep_alive) no_more_reads_ = true;

  if (path.substr(0, 4) == "/ws/") {
    auto t = api::parse_subscribe_target(path, query);
    bool served = t.kind == api::SubscribeTarget::Kind::agent ||
                  (t.kind == api::SubscribeTarget::Kind::echo && ctx_.options.enable_echo);
    if (served) {
      if (req.method() != http::verb::get) {
        auto res = api::error_response(405, "method_not_allowed", "WebSocket routes take GET");
        res.headers.emplace_back("Allow", "GET");
        return reply_now(res, keep_alive, head);
      }
      if (t.error) {
        ctx_.counters.connections_rejected.fetch_add(1, std::memory_order_relaxed);
        return reply_now(*t.error, keep_alive, head);
      }
      if (!beast::websocket::is_upgrade(req)) {
        auto res = api::error_response(426, "upgrade_required", "this route needs a WebSocket upgrade");
        res.headers.emplace_back("Upgrade", "websocket");
        return reply_now(res, keep_alive, head);
      }
      // The socket changes hands only after every earlier answer has been written.
      pending_upgrade_ = std::move(req);
      return write_ready();
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
  std::uint64_t slot = reserve_slot();
  // Handlers may answer from another thread (a publish answers from the hub's writer): come back here.
  ctx_.router.handle(r, [self = shared_from_this(), slot, keep_alive, head](api::Response res) {
    net::post(self->stream_.get_executor(), [self, slot, res = std::move(res), keep_alive, head] {
      self->complete(slot, res, keep_alive, head);
    });
  });
}

void HttpSession::complete(std::uint64_t slot, const api::Response& res, bool keep_alive, bool head) {
  if (closed_ || slot < first_slot_) return;
  Slot& s = slots_[slot - first_slot_];
  s.bytes = serialize(res, version_, keep_alive, head);
  s.close_after = !keep_alive;
  s.ready = true;
  write_ready();
}

void HttpSession::write_ready() {
  if (closed_ || writing_) return;
  // Every answer that is ready, in order, in one write.
  while (!slots_.empty() && slots_.front().ready && !close_after_write_) {
    out_.append(slots_.front().bytes);
    close_after_write_ = slots_.front().close_after;
    slots_.pop_front();
    ++first_slot_;
  }
  if (out_.empty()) {
    if (!slots_.empty()) return;  // waiting for a handler
    if (pending_upgrade_) return upgrade(std::move(*std::exchange(pending_upgrade_, std::nullopt)));
    if (no_more_reads_ && !reading_) close();
    return;
  }
  writing_ = true;
  stream_.expires_after(kIdleTimeout);
  net::async_write(stream_, net::buffer(out_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
    self->on_write(ec);
  });
}

void HttpSession::on_write(beast::error_code ec) {
  writing_ = false;
  out_.clear();
  if (ec || close_after_write_) return close();
  write_ready();
  do_read();  // reading may have paused at the pipeline limit
}

void HttpSession::upgrade(http::request<http::string_body>&& req) {
  std::string_view target = req.target();
  auto qpos = target.find('?');
  auto t = api::parse_subscribe_target(target.substr(0, qpos),
                                       qpos == std::string_view::npos ? std::string_view() : target.substr(qpos + 1));
  stream_.expires_never();
  closed_ = true;  // the socket now belongs to the WebSocket session
  auto ws = std::make_shared<WebSocketSession>(stream_.release_socket(), shard_, ctx_, std::move(t));
  ws->run(std::move(req));
}

void HttpSession::close() {
  if (closed_) return;
  closed_ = true;
  beast::error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.close();
}

void HttpSession::on_shutdown() {
  // Answers owed still go out; idle keep-alive connections are dropped.
  no_more_reads_ = true;
  if (slots_.empty() && !writing_) close();
}

}  // namespace aw::transport
