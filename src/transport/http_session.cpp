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
// Streamed bodies are read in pieces of at most this size.
constexpr std::size_t kChunkBytes = 16 * 1024;
// Room for a burst of pipelined requests in one read (see do_read).
constexpr std::size_t kReadBurstBytes = 16 * 1024;

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

bool HttpSession::can_read() const noexcept {
  return !closed_ && !reading_ && !no_more_reads_ && !pending_upgrade_ && !sink_ && slots_.size() < kMaxPipeline;
}

void HttpSession::new_header_parser() {
  // The header first: the route decides whether the body is read whole or piped as it arrives.
  header_parser_.emplace();
  header_parser_->header_limit(kHeaderLimit);
  header_parser_->body_limit(boost::none);  // each route applies its own limit
}

void HttpSession::do_read() {
  // Requests already in the buffer (pipelined behind the one just read) are taken here, without a
  // trip through the event loop each: a burst that arrived in one read reaches the hub in one go, so
  // it shares one commit and every subscriber gets it in one write.
  while (can_read() && buffer_.size() > 0) {
    if (!header_parser_) new_header_parser();
    beast::error_code ec;
    std::size_t n = header_parser_->put(buffer_.data(), ec);
    buffer_.consume(n);
    if (ec == http::error::need_more) break;  // the rest of the header is still on its way
    reading_ = true;
    if (!on_header(ec)) return;  // the body is on its way, or reading stopped
  }
  if (!can_read()) return;
  reading_ = true;
  if (!header_parser_) new_header_parser();
  // Beast reads into the buffer's spare room (at least 512 bytes), and a buffer sized by the first
  // request would take a pipelining publisher's requests one per read, each through the event loop
  // and its own commit. A connection that keeps making requests gets room for a burst; the first
  // request (often a WebSocket upgrade) gets none, so subscribers do not pay for it.
  if (next_slot_ > 0 && buffer_.capacity() < kReadBurstBytes) buffer_.reserve(kReadBurstBytes);
  stream_.expires_after(kIdleTimeout);
  http::async_read_header(stream_, buffer_, *header_parser_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (self->on_header(ec)) self->do_read();
  });
}

bool HttpSession::read_failed(beast::error_code ec) {
  if (!ec) return false;
  no_more_reads_ = true;
  if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted) {
    // Answers still owed are written first; then the connection closes.
    write_ready();
    return true;
  }
  if (ec == beast::error::timeout || ec == net::error::connection_reset) {
    close();
    return true;
  }
  // The rest of a rejected request cannot be skipped reliably, so these answers end the connection.
  if (ec == http::error::body_limit) {
    reply_now(api::error_response(413, "body_too_large",
                                  "request body exceeds " + std::to_string(ctx_.options.max_body_bytes) + " bytes"),
              false, false);
  } else if (ec == http::error::header_limit) {
    reply_now(api::error_response(431, "headers_too_large", "request headers exceed 16 KiB"), false, false);
  } else {
    reply_now(api::error_response(400, "bad_request", "malformed HTTP request: " + ec.message()), false, false);
  }
  return true;
}

bool HttpSession::on_header(beast::error_code ec) {
  if (closed_) return false;
  if (read_failed(ec)) {
    reading_ = false;
    header_parser_.reset();
    return false;
  }
  const auto& head = header_parser_->get();
  if (beast::iequals(head[http::field::expect], "100-continue")) {
    // The client waits for this before sending a large or streamed body.
    Slot interim;
    interim.ready = true;
    interim.bytes = "HTTP/1.1 100 Continue\r\n\r\n";
    slots_.push_back(std::move(interim));
    ++next_slot_;
    write_ready();
  }
  std::string_view target = head.target();
  api::Params params;
  if (auto* handler = ctx_.router.match_streaming(head.method_string(), target.substr(0, target.find('?')), params)) {
    reading_ = false;
    start_streaming(*handler, params);
    return false;
  }
  // Beast checks Content-Length against the limit while parsing the header, which had none: do it here.
  if (auto length = header_parser_->content_length(); length && *length > ctx_.options.max_body_bytes) {
    reading_ = false;
    header_parser_.reset();
    read_failed(http::error::body_limit);
    return false;
  }
  parser_.emplace(std::move(*header_parser_));
  header_parser_.reset();
  parser_->body_limit(ctx_.options.max_body_bytes);
  parser_->eager(true);
  if (!parser_->is_done() && buffer_.size() > 0) {
    // The body (or its start) arrived with the header.
    beast::error_code body_ec;
    std::size_t n = parser_->put(buffer_.data(), body_ec);
    buffer_.consume(n);
    if (body_ec && body_ec != http::error::need_more) {
      reading_ = false;
      read_failed(body_ec);
      return false;
    }
  }
  if (parser_->is_done()) {
    reading_ = false;
    handle(parser_->release());
    return true;
  }
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
  return false;
}

void HttpSession::on_read(beast::error_code ec, std::size_t) {
  reading_ = false;
  if (closed_ || read_failed(ec)) return;
  handle(parser_->release());
  do_read();
}

void HttpSession::start_streaming(const api::StreamingHandler& handler, const api::Params& params) {
  ctx_.counters.http_requests.fetch_add(1, std::memory_order_relaxed);
  body_parser_.emplace(std::move(*header_parser_));
  header_parser_.reset();
  body_parser_->body_limit(boost::none);  // a stream's own limits apply to what the body becomes
  const auto& head = body_parser_->get();
  version_ = head.version();
  std::string_view target = head.target();
  api::Request r;
  r.method = std::string(head.method_string());
  r.path = std::string(target.substr(0, target.find('?')));
  r.content_type = std::string(head[http::field::content_type]);
  if (auto it = head.find("Idempotency-Key"); it != head.end()) {
    r.has_idempotency_key = true;
    r.idempotency_key = std::string(it->value());
  }
  sink_slot_ = reserve_slot();
  api::SinkContext sink_ctx;
  // The sink outlives this connection when it breaks (it still ends the stream), so it holds the
  // executor, not the session.
  sink_ctx.run_on_connection = [ex = stream_.get_executor()](std::function<void()> fn) { net::post(ex, std::move(fn)); };
  sink_ctx.wake = [weak = weak_from_this(), ex = stream_.get_executor()] {
    net::post(ex, [weak] {
      auto self = weak.lock();
      if (self && self->sink_paused_) {
        self->sink_paused_ = false;
        self->read_body_piece();
      }
    });
  };
  // Refused from the headers alone: the body is not read, so the answer closes the connection.
  auto refuse = [self = shared_from_this(), slot = sink_slot_](api::Response res) mutable {
    if (!self) return;  // answered once already
    auto ex = self->stream_.get_executor();
    net::post(ex, [self = std::move(self), slot, res = std::move(res)] { self->complete(slot, res, false, false); });
  };
  sink_ = handler(r, params, std::move(sink_ctx), refuse);
  if (!sink_) {
    no_more_reads_ = true;
    body_parser_.reset();
    return;
  }
  if (!chunk_) chunk_ = std::make_unique<char[]>(kChunkBytes);
  read_body_piece();
}

void HttpSession::read_body_piece() {
  if (closed_ || !sink_) return;
  if (!sink_->wants_more()) {
    sink_paused_ = true;
    return;
  }
  reading_ = true;
  auto& body = body_parser_->get().body();
  body.data = chunk_.get();
  body.size = kChunkBytes;
  stream_.expires_after(kIdleTimeout);
  http::async_read_some(stream_, buffer_, *body_parser_,
                        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body_piece(ec); });
}

void HttpSession::on_body_piece(beast::error_code ec) {
  reading_ = false;
  if (!sink_) return;
  if (ec == http::error::need_buffer) ec = {};
  std::size_t got = kChunkBytes - body_parser_->get().body().size;
  if (got > 0 && !ec) sink_->on_data(std::string_view(chunk_.get(), got));
  if (ec) {
    // The publisher went away mid-body: the sink ends what it started; nobody waits for an answer.
    sink_->on_abort();
    sink_.reset();
    body_parser_.reset();
    no_more_reads_ = true;
    return close();
  }
  if (body_parser_->is_done()) {
    auto keep_alive = body_parser_->get().keep_alive();
    auto slot = sink_slot_;
    auto sink = std::move(sink_);
    body_parser_.reset();
    sink->on_end([self = shared_from_this(), slot, keep_alive](api::Response res) mutable {
      if (!self) return;  // answered once already
    auto ex = self->stream_.get_executor();
      net::post(ex, [self = std::move(self), slot, res = std::move(res), keep_alive] {
        self->complete(slot, res, keep_alive, false);
      });
    });
    if (!keep_alive) no_more_reads_ = true;
    return do_read();
  }
  read_body_piece();
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
  // The reference to the session moves into the posted handler, so the last one is always dropped on
  // this shard's thread: a session destroyed on the writer thread would leave its shard's connection
  // set from there, racing the shard's sweep (found by ThreadSanitizer).
  ctx_.router.handle(r, [self = shared_from_this(), slot, keep_alive, head](api::Response res) mutable {
    if (!self) return;  // answered once already
    auto ex = self->stream_.get_executor();
    net::post(ex, [self = std::move(self), slot, res = std::move(res), keep_alive, head] {
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
  // Bytes read past the request are the client's first WebSocket frames.
  auto early = buffer_.cdata();
  auto ws = std::make_shared<WebSocketSession>(stream_.release_socket(), shard_, ctx_);
  ws->run(req, std::move(t), std::string_view(static_cast<const char*>(early.data()), early.size()));
  buffer_.clear();
  buffer_.shrink_to_fit();
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
