#include "transport/http_session.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "api/browser_policy.hpp"
#include "api/errors.hpp"
#include "api/subscriber_auth.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "transport/tls_context.hpp"
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
// The most one read for a request head takes in.
constexpr std::size_t kMaxHeadRead = 64 * 1024;

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
  // 204 has no content, and says nothing about its length (RFC 9110 8.6).
  if (res.status != 204) {
    out.append("Content-Type: ").append(res.content_type).append("\r\n");
    out.append("Content-Length: ").append(std::to_string(res.body.size())).append("\r\n");
  }
  for (const auto& [k, v] : res.headers) out.append(k).append(": ").append(v).append("\r\n");
  if (!keep_alive)
    out.append("Connection: close\r\n");
  else if (version == 10)
    out.append("Connection: keep-alive\r\n");
  out.append("\r\n");
  if (!head) out.append(res.body);
  return out;
}

// The request as the API sees it, from its head: the one place the target is split.
api::Request to_api_request(const http::request_header<>& head) {
  api::Request r;
  std::string_view target = head.target();
  auto qpos = target.find('?');
  r.method = std::string(head.method_string());
  r.path = std::string(target.substr(0, qpos));
  if (qpos != std::string_view::npos) r.query = std::string(target.substr(qpos + 1));
  r.content_type = std::string(head[http::field::content_type]);
  r.authorization = std::string(head[http::field::authorization]);
  if (auto it = head.find("Idempotency-Key"); it != head.end()) {
    r.has_idempotency_key = true;
    r.idempotency_key = std::string(it->value());
  }
  return r;
}

// Conformance that request smuggling exploits: an answer when the head must be refused.
std::optional<api::Response> check_framing(const http::request_parser<http::empty_body>& parser) {
  const auto& head = parser.get();
  // Beast frames a body by Transfer-Encoding only when it ends in chunked; any other coding would leave
  // the body to be read as the next request.
  if (head.find(http::field::transfer_encoding) != head.end() && !parser.chunked())
    return api::error_response(400, "bad_transfer_encoding", "Transfer-Encoding must end in chunked");
  auto hosts = head.count(http::field::host);
  if (hosts > 1 || (hosts == 0 && head.version() >= 11))
    return api::error_response(400, "bad_host", "an HTTP/1.1 request needs exactly one Host header");
  return std::nullopt;
}

// What the browser policy needs from a head.
api::BrowserRequest browser_request(const http::request_header<>& head) {
  auto value = [&](http::field f) -> std::optional<std::string_view> {
    auto it = head.find(f);
    if (it == head.end()) return std::nullopt;
    return std::string_view(it->value());
  };
  return {head.method_string(), value(http::field::host), value(http::field::origin)};
}

// A streamed body that broke its own framing (as opposed to a connection that broke).
HttpStream make_stream(tcp::socket&& socket, const ServerContext& ctx) {
  if (ctx.tls) return HttpStream(std::move(socket), ctx.tls->current());
  return HttpStream(std::move(socket));
}

bool is_malformed_body(beast::error_code ec) {
  return ec.category() == beast::error_code(http::error::bad_chunk).category() &&
         ec != http::error::partial_message && ec != http::error::end_of_stream;
}

}  // namespace

HttpSession::HttpSession(tcp::socket&& socket, Shard& shard, ServerContext& ctx, const net::ip::address& peer)
    : stream_(make_stream(std::move(socket), ctx)),
      shard_(shard),
      ctx_(ctx),
      peer_(peer),
      // The first request's head is due from the moment the connection is accepted.
      head_deadline_ms_(now_unix_ms() + ctx.options.header_timeout_ms) {
  shard_.connections.insert(this);
}

HttpSession::~HttpSession() {
  shard_.connections.erase(this);
}

void HttpSession::run() {
  if (!stream_.tls()) return do_read();
  // The handshake counts against the first request's header timeout: the sweep closes a connection
  // that has not finished it by then (a client that never sends its ClientHello holds nothing for long).
  state_ = State::handshaking;
  stream_.lowest().expires_after(std::chrono::milliseconds(ctx_.options.header_timeout_ms));
  stream_.tls()->stream.async_handshake(
      net::ssl::stream_base::server,
      [self = shared_from_this()](beast::error_code ec) { self->on_handshake(ec); });
}

void HttpSession::on_handshake(beast::error_code ec) {
  if (state_ != State::handshaking) return;  // timed out or closed meanwhile
  state_ = State::idle;
  if (ec) {
    // Plain HTTP on the TLS port, an old protocol version, a scanner: counted, and logged at debug only
    // (the internet sends plenty of these).
    ctx_.counters.tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
    log::debug("tls_handshake_failed", {{"error", ec.message()}});
    return close();
  }
  ctx_.counters.tls_handshakes.fetch_add(1, std::memory_order_relaxed);
  do_read();
}

bool HttpSession::can_read() const noexcept {
  return state_ == State::idle && slots_.size() < kMaxPipeline;
}

void HttpSession::new_header_parser() {
  // The head first: the route decides whether the body is read whole or piped as it arrives.
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
    if (ec == http::error::need_more) break;  // the rest of the head is still on its way
    on_header(ec);
  }
  if (!can_read()) return;
  if (!header_parser_) new_header_parser();
  // Part of a head is here: the rest is due within the header timeout.
  if (head_deadline_ms_ == 0 && buffer_.size() > 0)
    head_deadline_ms_ = now_unix_ms() + ctx_.options.header_timeout_ms;
  // A buffer sized by the first request would take a pipelining publisher's requests one per read,
  // each through the event loop and its own commit. A connection that keeps making requests gets room
  // for a burst; the first request (often a WebSocket upgrade) gets none, so subscribers do not pay for it.
  if (next_slot_ > 0 && buffer_.capacity() < kReadBurstBytes) buffer_.reserve(kReadBurstBytes);
  state_ = State::reading_head;
  stream_.lowest().expires_after(kIdleTimeout);
  stream_.async_read_some(
      buffer_.prepare(beast::read_size(buffer_, kMaxHeadRead)),
      [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_head_bytes(ec, n); });
}

void HttpSession::on_head_bytes(beast::error_code ec, std::size_t bytes) {
  if (state_ != State::reading_head) return;  // timed out (the 408 is on its way) or closed
  state_ = State::idle;
  if (ec) return read_failed(ec);
  buffer_.commit(bytes);
  if (head_deadline_ms_ == 0) head_deadline_ms_ = now_unix_ms() + ctx_.options.header_timeout_ms;
  do_read();
}

void HttpSession::read_failed(beast::error_code ec) {
  state_ = State::draining;
  if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted) {
    // Answers still owed are written first; then the connection closes.
    return write_ready();
  }
  // A TLS client that closed without close_notify has still sent its requests whole.
  if (ec == net::ssl::error::stream_truncated) return write_ready();
  if (ec == beast::error::timeout || ec == net::error::connection_reset ||
      ec.category() == net::error::get_ssl_category())
    return close();
  // The rest of a rejected request cannot be skipped reliably, so these answers end the connection.
  if (ec == http::error::body_limit) {
    reply_now(
        api::error_response(413, "body_too_large",
                            "request body exceeds " + std::to_string(ctx_.options.max_body_bytes) + " bytes"),
        false, false);
  } else if (ec == http::error::bad_transfer_encoding) {
    reply_now(api::error_response(400, "bad_transfer_encoding", "Transfer-Encoding must end in chunked"),
              false, false);
  } else if (ec == http::error::header_limit) {
    reply_now(api::error_response(431, "headers_too_large", "request headers exceed 16 KiB"), false, false);
  } else {
    reply_now(api::error_response(400, "bad_request", "malformed HTTP request: " + ec.message()), false,
              false);
  }
}

void HttpSession::refuse_head(const api::Response& res) {
  header_parser_.reset();
  state_ = State::draining;
  reply_now(res, false, false);
}

void HttpSession::answer_head(const api::Response& res) {
  const auto& head = header_parser_->get();
  // Without a body there is nothing to skip: the connection can stay for the next request.
  bool bodiless = !header_parser_->chunked() && header_parser_->content_length().value_or(0) == 0;
  if (!bodiless || !head.keep_alive()) return refuse_head(res);
  bool is_head = head.method() == http::verb::head;
  header_parser_.reset();
  reply_now(res, true, is_head);
}

std::optional<api::Response> HttpSession::over_rate(AddressRateLimit* limit,
                                                    std::atomic<std::uint64_t>& refused) {
  if (!limit || !limit->limits()) return std::nullopt;
  auto verdict = limit->take(peer_, now_steady_ms());
  if (verdict.allowed) return std::nullopt;
  refused.fetch_add(1, std::memory_order_relaxed);
  auto res = api::error_response(
      429, "rate_limited",
      "too many requests from this address; retry in " + std::to_string(verdict.retry_after_s) + " s");
  res.headers.emplace_back("Retry-After", std::to_string(verdict.retry_after_s));
  return res;
}

void HttpSession::on_header(beast::error_code ec) {
  head_deadline_ms_ = 0;  // the next head is due from its first byte
  if (ec) {
    header_parser_.reset();
    return read_failed(ec);
  }
  if (auto refusal = check_framing(*header_parser_)) return refuse_head(*refusal);
  // HTTP/1.0 has no chunked coding: such a body is read, but the connection ends after it (RFC 9112 6.1).
  if (header_parser_->get().version() < 11 && header_parser_->chunked())
    header_parser_->get().keep_alive(false);
  ctx_.counters.http_requests.fetch_add(1, std::memory_order_relaxed);
  const auto& head = header_parser_->get();
  version_ = head.version();
  // Hosts, origins and CORS, for every route and before any WebSocket upgrade.
  auto browser = api::check_browser_request(browser_request(head), ctx_.options);
  cors_headers_ = std::move(browser.cors_headers);
  if (browser.answer) {
    // A refused upgrade counts where the subscription route's own refusals do.
    if (browser.answer->status != 204 && beast::websocket::is_upgrade(head))
      ctx_.counters.connections_rejected.fetch_add(1, std::memory_order_relaxed);
    // At debug only: a page hammering a refused origin must not flood the log.
    if (browser.answer->status != 204 && log::enabled(log::Level::debug)) {
      auto field = [&](http::field f) { return std::string_view(head[f]); };
      log::debug("browser_refused", {{"status", std::to_string(browser.answer->status)},
                                     {"method", head.method_string()},
                                     {"host", field(http::field::host)},
                                     {"origin", field(http::field::origin)}});
    }
    return answer_head(*browser.answer);
  }
  request_ = to_api_request(head);
  // Handshakes have their own limit (route_websocket); health checks come from the load balancer.
  if (!request_.path.starts_with("/ws/") && request_.path != "/healthz") {
    if (auto refusal = over_rate(ctx_.request_rate, ctx_.counters.requests_rate_limited))
      return answer_head(*refusal);
  }
  api::Params params;
  if (auto* handler = ctx_.router.match_streaming(request_.method, request_.path, params))
    return start_streaming(*handler, params);
  // Beast checks Content-Length against the limit while parsing the head, which had none: do it here.
  if (auto length = header_parser_->content_length(); length && *length > ctx_.options.max_body_bytes) {
    header_parser_.reset();
    return read_failed(http::error::body_limit);
  }
  if (beast::iequals(head[http::field::expect], "100-continue")) {
    // The client waits for this before sending a large body.
    slots_.push_back({true, "HTTP/1.1 100 Continue\r\n\r\n"});
    ++next_slot_;
    write_ready();
  }
  parser_.emplace(std::move(*header_parser_));
  header_parser_.reset();
  parser_->body_limit(ctx_.options.max_body_bytes);
  parser_->eager(true);
  if (!parser_->is_done() && buffer_.size() > 0) {
    // The body (or its start) arrived with the head.
    beast::error_code body_ec;
    std::size_t n = parser_->put(buffer_.data(), body_ec);
    buffer_.consume(n);
    if (body_ec && body_ec != http::error::need_more) return read_failed(body_ec);
  }
  if (parser_->is_done()) return handle(parser_->release());
  state_ = State::reading_body;
  stream_.lowest().expires_after(kIdleTimeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body(ec); });
}

void HttpSession::on_body(beast::error_code ec) {
  if (state_ != State::reading_body) return;  // closed, or the server is stopping
  state_ = State::idle;
  if (ec) return read_failed(ec);
  handle(parser_->release());
  do_read();
}

void HttpSession::start_streaming(const api::StreamingHandler& handler, const api::Params& params) {
  body_parser_.emplace(std::move(*header_parser_));
  header_parser_.reset();
  body_parser_->body_limit(boost::none);  // a stream's own limits apply to what the body becomes
  if (beast::iequals(body_parser_->get()[http::field::expect], "100-continue")) {
    // The client waits for this before streaming; sent before the answer's slot so it leaves first.
    slots_.push_back({true, "HTTP/1.1 100 Continue\r\n\r\n"});
    ++next_slot_;
    write_ready();
  }
  sink_slot_ = reserve_slot();
  api::SinkContext sink_ctx;
  // The sink outlives this connection when it breaks (it still ends the stream), so it holds the
  // executor, not the session.
  auto ex = stream_.get_executor();
  sink_ctx.run_on_connection = [ex](std::function<void()> fn) { net::post(ex, std::move(fn)); };
  sink_ctx.wake = [weak = weak_from_this(), ex] {
    net::post(ex, [weak] {
      if (auto self = weak.lock()) self->resume_body();
    });
  };
  // A refusal from the head alone leaves the body unread, so that answer closes the connection.
  sink_ =
      handler(std::exchange(request_, {}), params, std::move(sink_ctx), answer_to(sink_slot_, false, false));
  if (!sink_) {
    body_parser_.reset();
    state_ = State::draining;
    return;
  }
  if (!chunk_) chunk_ = std::make_unique<char[]>(kChunkBytes);
  // Beast reads into the buffer's spare room: without room, a fast publisher's body would arrive 512
  // bytes a read, each its own delta, event and commit.
  if (buffer_.capacity() < kChunkBytes) buffer_.reserve(kChunkBytes);
  state_ = State::streaming;
  read_body_piece();
}

void HttpSession::read_body_piece() {
  // An empty body (Content-Length: 0, or only the last chunk) may be complete before any read.
  if (body_parser_->is_done()) return end_body();
  if (!sink_->wants_more()) {
    // Backpressure: no read is in flight to hold the session, so it holds itself until the wake.
    state_ = State::sink_full;
    self_while_sink_full_ = shared_from_this();
    return;
  }
  auto& body = body_parser_->get().body();
  body.data = chunk_.get();
  body.size = kChunkBytes;
  stream_.lowest().expires_after(kIdleTimeout);
  http::async_read_some(
      stream_, buffer_, *body_parser_,
      [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_body_piece(ec); });
}

void HttpSession::resume_body() {
  if (state_ != State::sink_full) return;  // a wake while reading, or after the end
  state_ = State::streaming;
  auto keep = std::move(self_while_sink_full_);
  read_body_piece();
}

void HttpSession::on_body_piece(beast::error_code ec) {
  if (state_ != State::streaming) return;  // closed meanwhile; the sink was ended then
  if (ec == http::error::need_buffer) ec = {};
  std::size_t got = kChunkBytes - body_parser_->get().body().size;
  // What arrived before a break or a malformed chunk is still the publisher's text.
  if (got > 0) sink_->on_data(std::string_view(chunk_.get(), got));
  if (ec) return body_failed(ec);
  read_body_piece();
}

void HttpSession::end_body() {
  bool keep_alive = body_parser_->get().keep_alive();
  auto sink = std::move(sink_);
  body_parser_.reset();
  state_ = keep_alive ? State::idle : State::draining;
  sink->on_end(answer_to(sink_slot_, keep_alive, false));
  do_read();
}

void HttpSession::body_failed(beast::error_code ec) {
  auto sink = std::move(sink_);
  body_parser_.reset();
  if (is_malformed_body(ec)) {
    // The rest of the body cannot be found reliably: the answer ends the connection.
    state_ = State::draining;
    sink->on_malformed(api::error_response(400, "bad_chunk", "malformed chunked body: " + ec.message()),
                       answer_to(sink_slot_, false, false));
    return;
  }
  // The publisher went away mid-body: the sink ends what it started; nobody waits for an answer.
  sink->on_abort();
  close();
}

std::uint64_t HttpSession::reserve_slot() {
  slots_.emplace_back();
  return next_slot_++;
}

api::Reply HttpSession::answer_to(std::uint64_t slot, bool keep_alive, bool head) {
  // Handlers may answer from another thread (a publish answers from the hub's writer): come back here.
  // The reference to the session moves into the posted handler, so the last one is always dropped on
  // this shard's thread: a session destroyed on the writer thread would leave its shard's connection
  // set from there, racing the shard's sweep (found by ThreadSanitizer).
  return
      [self = shared_from_this(), slot, keep_alive, head, cors = cors_headers_](api::Response res) mutable {
        if (!self) return;  // answered once already
        res.headers.insert(res.headers.end(), cors.begin(), cors.end());
        auto ex = self->stream_.get_executor();
        net::post(ex, [self = std::move(self), slot, res = std::move(res), keep_alive, head] {
          self->complete(slot, res, keep_alive, head);
        });
      };
}

void HttpSession::reply_now(const api::Response& res, bool keep_alive, bool head) {
  complete(reserve_slot(), res, keep_alive, head);
}

void HttpSession::handle(http::request<http::string_body>&& msg) {
  bool keep_alive = msg.keep_alive();
  bool head = msg.method() == http::verb::head;
  if (!keep_alive) state_ = State::draining;
  if (ctx_.websockets && request_.path.starts_with("/ws/") &&
      route_websocket(std::move(msg), keep_alive, head))
    return;
  // Handed over, not kept: an idle keep-alive connection must not hold its last body.
  api::Request req = std::exchange(request_, {});
  req.body = std::move(msg.body());
  ctx_.router.handle(req, answer_to(reserve_slot(), keep_alive, head));
}

bool HttpSession::route_websocket(http::request<http::string_body>&& msg, bool keep_alive, bool head) {
  auto t = api::parse_subscribe_target(request_.path, request_.query);
  bool served = t.kind == api::SubscribeTarget::Kind::agent ||
                (t.kind == api::SubscribeTarget::Kind::echo && ctx_.options.enable_echo);
  if (!served) return false;
  if (msg.method() != http::verb::get) {
    auto res = api::error_response(405, "method_not_allowed", "WebSocket routes take GET");
    res.headers.emplace_back("Allow", "GET");
    reply_now(res, keep_alive, head);
    return true;
  }
  // Before the token is verified: a flood of handshakes costs a counter, not a signature check each.
  if (auto refusal = over_rate(ctx_.handshake_rate, ctx_.counters.handshakes_rate_limited)) {
    reply_now(*refusal, keep_alive, head);
    return true;
  }
  if (t.error) {
    ctx_.counters.connections_rejected.fetch_add(1, std::memory_order_relaxed);
    reply_now(*t.error, keep_alive, head);
    return true;
  }
  if (t.kind == api::SubscribeTarget::Kind::agent) {
    std::string protocols;
    for (auto [it, end] = msg.equal_range(http::field::sec_websocket_protocol); it != end; ++it) {
      if (!protocols.empty()) protocols.append(", ");
      protocols.append(it->value());
    }
    auto authz = msg.find(http::field::authorization);
    auto token = api::find_subscriber_token(
        protocols, authz == msg.end() ? std::nullopt : std::optional<std::string_view>(authz->value()),
        request_.query);
    // A client that offers `bearer` gets it selected (browsers fail a handshake that selects none),
    // whether or not a token is needed.
    t.bearer_subprotocol = token.via_subprotocol;
    auto verdict = api::authorize_subscriber(ctx_.credentials, t.agent_id, token, now_unix_ms() / 1000);
    if (verdict.refusal) {
      ctx_.counters.connections_rejected.fetch_add(1, std::memory_order_relaxed);
      reply_now(*verdict.refusal, keep_alive, head);
      return true;
    }
    t.token_expires_s = verdict.expires_s;
  }
  if (!beast::websocket::is_upgrade(msg)) {
    auto res = api::error_response(426, "upgrade_required", "this route needs a WebSocket upgrade");
    res.headers.emplace_back("Upgrade", "websocket");
    reply_now(res, keep_alive, head);
    return true;
  }
  // The socket changes hands only after every earlier answer has been written.
  state_ = State::upgrading;
  pending_upgrade_.emplace(PendingUpgrade{std::move(msg), std::move(t)});
  write_ready();
  return true;
}

void HttpSession::complete(std::uint64_t slot, const api::Response& res, bool keep_alive, bool head) {
  if (state_ == State::closed || slot < first_slot_) return;
  Slot& s = slots_[slot - first_slot_];
  s.bytes = serialize(res, version_, keep_alive, head);
  s.ready = true;
  write_ready();
}

void HttpSession::write_ready() {
  if (state_ == State::closed || writing_) return;
  // Every answer that is ready, in order, in one write.
  while (!slots_.empty() && slots_.front().ready) {
    out_.append(slots_.front().bytes);
    slots_.pop_front();
    ++first_slot_;
  }
  if (out_.empty()) {
    if (!slots_.empty()) return;  // waiting for a handler
    if (state_ == State::upgrading) return upgrade();
    if (state_ == State::draining) close();
    return;
  }
  writing_ = true;
  stream_.lowest().expires_after(kIdleTimeout);
  net::async_write(stream_, net::buffer(out_),
                   [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_write(ec); });
}

void HttpSession::on_write(beast::error_code ec) {
  writing_ = false;
  out_.clear();
  if (ec) return close();
  write_ready();
  do_read();  // reading may have paused at the pipeline limit
}

void HttpSession::upgrade() {
  auto pending = std::move(*std::exchange(pending_upgrade_, std::nullopt));
  stream_.lowest().expires_never();
  state_ = State::closed;  // the socket now belongs to the WebSocket session
  // Bytes read past the request are the client's first WebSocket frames.
  auto early = buffer_.cdata();
  auto ws = stream_.tls() ? std::make_shared<WebSocketSession>(stream_.release_tls(), shard_, ctx_)
                          : std::make_shared<WebSocketSession>(stream_.release_socket(), shard_, ctx_);
  shard_.connections.hand_over(this, ws.get());  // the socket's place under the connection limits
  ws->run(pending.request, std::move(pending.target),
          std::string_view(static_cast<const char*>(early.data()), early.size()));
  buffer_.clear();
  buffer_.shrink_to_fit();
}

void HttpSession::close() {
  if (state_ == State::closed) return;
  state_ = State::closed;
  // A streamed body cut short still ends its stream.
  if (auto sink = std::move(sink_)) sink->on_abort();
  beast::error_code ignored;
  stream_.lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.lowest().close();
  // Never destroyed inline: the caller may be the sweep or the shutdown, which hold no reference.
  if (self_while_sink_full_) net::post(stream_.get_executor(), [keep = std::move(self_while_sink_full_)] {});
}

void HttpSession::on_sweep(std::int64_t now_ms) {
  if (state_ == State::handshaking && head_deadline_ms_ != 0 && now_ms >= head_deadline_ms_) {
    ctx_.counters.tls_handshake_failures.fetch_add(1, std::memory_order_relaxed);
    return close();
  }
  if (state_ != State::reading_head || head_deadline_ms_ == 0 || now_ms < head_deadline_ms_) return;
  // Slowloris: a head trickling in (or never starting) would hold a descriptor until the idle timeout.
  // The read in flight stays; its completion sees the state and leaves, and the close ends it.
  header_parser_.reset();
  state_ = State::draining;
  reply_now(api::error_response(
                408, "request_timeout",
                "no complete request head within " + std::to_string(ctx_.options.header_timeout_ms) + " ms"),
            false, false);
}

void HttpSession::on_shutdown() {
  switch (state_) {
    case State::closed:
      return;
    case State::streaming:
    case State::sink_full:
      // A body still arriving cannot be finished in the time left: its stream ends failed.
      return close();
    default:
      // Answers owed still go out; idle keep-alive connections are dropped.
      state_ = State::draining;
      pending_upgrade_.reset();
      if (slots_.empty() && !writing_) close();
  }
}

}  // namespace aw::transport
