#include "transport/websocket_session.hpp"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstring>
#include <random>
#include <utility>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "protocol/client_message.hpp"
#include "protocol/coalesce.hpp"
#include "protocol/deflate.hpp"
#include "protocol/envelope.hpp"
#include "protocol/ws_control.hpp"
#include "protocol/ws_frame.hpp"
#include "protocol/ws_handshake.hpp"

namespace aw::transport {
using metrics::ShardCounters;
using metrics::SubscriberLag;
namespace {

// A peer that does not finish a close handshake in this time is cut off.
constexpr std::int64_t kCloseGraceMs = 5000;
// Client bytes land in a buffer of this size, one per shard thread.
constexpr std::size_t kScratchBytes = 64 * 1024;
// Reads per wake-up before other connections get their turn (the wait fires again at once).
constexpr int kReadsPerWake = 4;
// The queued segment that is a snapshot (CorkedSocket::holds): one at a time per connection.
constexpr std::uint8_t kSnapshotKind = 1;
// A subscriber hears that its token is about to expire this long before (or halfway through a shorter life).
constexpr std::int64_t kTokenWarningMs = 30'000;

// The shard thread's read buffer: whatever a read brings is handled before the next read, and only
// an incomplete frame is copied out of it (into the connection's reader).
char* scratch() {
  thread_local std::unique_ptr<char[]> buffer(new char[kScratchBytes]);
  return buffer.get();
}

constexpr const char* kSlowReason = "slow consumer: outbound queue full";

std::uint64_t new_session_id() {
  // Ids must be unique, not secret: one engine per thread, seeded from the OS.
  thread_local std::mt19937_64 engine = [] {
    std::random_device rd;
    std::seed_seq seed{rd(), rd(), rd(), rd()};
    return std::mt19937_64(seed);
  }();
  return engine();
}

// The first heartbeat comes after a random half to whole interval: clients that connected together
// (a deploy, a reconnect storm) then do not all get their pings in the same sweep, for ever after.
std::int64_t first_heartbeat_delay_ms(std::int64_t interval_ms) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const std::int64_t half = interval_ms / 2;
  return interval_ms - half + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(half + 1));
}

std::string describe_read_error(const boost::system::error_code& ec) {
  if (ec == net::error::operation_aborted) return "aborted";
  if (ec == net::error::eof || ec == net::error::connection_reset) return "connection_lost";
  return "error " + ec.message();
}

// The ws_disconnect reason for a frame the reader refused.
std::string describe_failure(const protocol::Reader::Result& r) {
  if (r.code == protocol::close_code::too_big) return "message_too_big";
  if (r.code == protocol::close_code::invalid_payload && std::strstr(r.error, "UTF-8")) return "invalid_utf8";
  return std::string("error ") + r.error;
}

}  // namespace

WebSocketSession::WebSocketSession(tcp::socket&& socket, Shard& shard, ServerContext& ctx)
    : sock_(std::move(socket), shard.ioc),
      shard_(shard),
      ctx_(ctx),
      reader_(ctx.options.max_message_bytes),
      session_id_(new_session_id()) {
  shard_.connections.insert(this);
}

WebSocketSession::WebSocketSession(std::unique_ptr<TlsLink> tls, Shard& shard, ServerContext& ctx)
    : sock_(std::move(tls), shard.ioc, shard.counters),
      shard_(shard),
      ctx_(ctx),
      reader_(ctx.options.max_message_bytes),
      session_id_(new_session_id()) {
  shard_.connections.insert(this);
}

WebSocketSession::~WebSocketSession() {
  if (channel_) ctx_.hub.leave(channel_, shard_.index, this);
  shard_.connections.erase(this);
}

std::string WebSocketSession::session_id() const {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 0; i < 16; ++i) out[static_cast<std::size_t>(i)] = kHex[(session_id_ >> (60 - 4 * i)) & 0xf];
  return out;
}

std::string_view WebSocketSession::agent_id() const noexcept {
  return channel_ ? std::string_view(channel_->agent_id) : std::string_view("(echo)");
}

void WebSocketSession::run(const http::request<http::string_body>& req, api::SubscribeTarget target,
                           std::string_view early) {
  sock_.set_owner(std::weak_ptr<void>(shared_from_this()));
  sock_.set_flush_queue(&shard_.flush_queue);
  started_ms_ = last_activity_ms_ = now_unix_ms();
  echo_ = target.kind == api::SubscribeTarget::Kind::echo;

  protocol::UpgradeRequest up;
  up.version = req.version();
  up.get = req.method() == http::verb::get;
  up.has_host = req.find(http::field::host) != req.end();
  auto field = [&req](http::field f) -> std::optional<std::string_view> {
    auto it = req.find(f);
    if (it == req.end()) return std::nullopt;
    return std::string_view(it->value());
  };
  up.connection = field(http::field::connection);
  up.upgrade = field(http::field::upgrade);
  up.key = field(http::field::sec_websocket_key);
  up.ws_version = field(http::field::sec_websocket_version);
  std::string extensions;
  for (auto [it, end] = req.equal_range(http::field::sec_websocket_extensions); it != end; ++it) {
    if (!extensions.empty()) extensions.append(", ");
    extensions.append(it->value());
  }
  up.extensions = extensions;
  if (target.bearer_subprotocol) up.subprotocol = "bearer";
  protocol::HandshakeAnswer answer = protocol::answer_upgrade(up, ctx_.options.compression);
  send_own(std::move(answer.response));

  boost::system::error_code ec;
  auto ep = sock_.remote_endpoint(ec);
  std::string remote = ec ? std::string() : ep.address().to_string() + ":" + std::to_string(ep.port());
  if (!answer.accepted) {
    // The refusal leaves, then the connection closes (state_ starts as draining).
    log::info("ws_handshake_failed", {{"remote", remote}, {"error", answer.error}});
    deadline_ms_ = started_ms_ + kCloseGraceMs;
    sock_.shutdown_when_drained();
    return wait_readable();
  }

  state_ = State::open;
  deflate_bits_ = static_cast<std::uint8_t>(answer.deflate_window_bits);
  reader_.set_deflate(answer.deflate);
  deadline_ms_ = last_activity_ms_ + first_heartbeat_delay_ms(ctx_.options.heartbeat_interval_ms);
  if (target.token_expires_s != 0) set_token_expiry(target.token_expires_s, started_ms_);
  counted_ = true;
  ctx_.counters.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  ctx_.counters.live_connections.fetch_add(1, std::memory_order_relaxed);
  if (!echo_) join_channel(target);
  log::info("ws_connect", {{"session", session_id()},
                           {"agent", std::string(agent_id())},
                           {"remote", remote},
                           {"shard", std::to_string(shard_.index)}});
  // Frames the client sent right behind its upgrade request, read ahead by the HTTP session.
  while (!early.empty() && state_ != State::closed) {
    std::size_t n = std::min(early.size(), kScratchBytes);
    std::memcpy(scratch(), early.data(), n);
    early.remove_prefix(n);
    if (state_ != State::draining) consume(scratch(), n);
  }
  if (state_ != State::closed) wait_readable();
}

void WebSocketSession::join_channel(const api::SubscribeTarget& target) {
  hub::JoinResult j = ctx_.hub.join(target.agent_id, shard_.index, this, target.since);
  channel_ = j.channel;
  const std::string id = session_id();
  protocol::ConnectedInfo info;
  info.session_id = id;
  info.agent_id = target.agent_id;
  info.epoch = j.epoch;
  info.seq = j.seq;
  info.resumed = target.since.has_value();
  info.recovered = j.recovered;
  info.replayed = j.replay.size();
  info.heartbeat_interval_ms = ctx_.options.heartbeat_interval_ms;
  info.idle_timeout_ms = ctx_.options.idle_timeout_ms;
  send_text(protocol::connected(info));
  // The replay goes out before anything live: live events are delivered by later handlers on this
  // thread, and the hub skips those the replay covered.
  // Droppable like everything but the handshake answer: a client dropped as slow resumes from what it got.
  for (const EventPtr& ev : j.replay) send_frame(ev, frame_of(*ev), true, ev->seq, ev.get());
  if (target.since && !j.recovered)
    send_text(protocol::snapshot(target.agent_id, j.seq, j.epoch, false, j.state_json), kSnapshotKind);
}

void WebSocketSession::deliver(const EventPtr& ev) {
  if (state_ != State::open || slow_) return;
  if (sock_.backlogged() && merge_into_queue(ev)) return;
  std::string_view frame = frame_of(*ev);
  if (sock_.queued_bytes() + frame.size() > ctx_.options.max_queue_bytes) return drop_slow();
  send_frame(ev, frame, true, ev->seq, ev.get());
}

void WebSocketSession::history_lost() {
  // What it was sent is all true; what follows would skip events. It reconnects with since/epoch,
  // cannot be replayed the lost ones, and gets a snapshot instead.
  close_with(protocol::close_code::service_restart, "history_gap");
}

bool WebSocketSession::merge_into_queue(const EventPtr& ev) {
  const Segment* last = sock_.unsent_back();
  if (!last || !last->event) return false;
  EventPtr merged = protocol::coalesce(*last->event, *ev);
  if (!merged) return false;
  std::string_view frame = frame_of(*merged);
  if (sock_.queued_bytes() - last->bytes.size() + frame.size() > ctx_.options.max_queue_bytes) {
    drop_slow();
    return true;
  }
  const Event* raw = merged.get();
  const bool droppable = last->droppable;
  sock_.replace_back({std::move(merged), frame, droppable, 0, raw->first_seq, raw});
  ShardCounters::bump(shard_.counters.messages_merged, 1);
  return true;
}

void WebSocketSession::drop_slow() {
  // Never close from inside the fan-out loop over this channel: do it on a later turn.
  slow_ = true;
  ctx_.counters.connections_dropped_slow.fetch_add(1, std::memory_order_relaxed);
  net::post(sock_.get_executor(),
            [self = shared_from_this()] { self->close_with(protocol::close_code::policy, kSlowReason); });
}

std::optional<SubscriberLag> WebSocketSession::lag() {
  if (echo_ || state_ != State::open || !channel_) return std::nullopt;
  auto [events, oldest] = sock_.queued_events();
  SubscriberLag l;
  l.session_id = session_id();
  l.agent_id = channel_->agent_id;
  l.queued_bytes = queued_bytes();
  l.queued_events = events;
  l.seq_behind = oldest == 0 ? 0 : delivered_seq - oldest + 1;
  return l;
}

std::string_view WebSocketSession::frame_of(const Event& ev) const {
  return deflate_bits_ ? std::string_view(protocol::deflated_frame(ev, deflate_bits_)) : ev.frame();
}

void WebSocketSession::send_frame(std::shared_ptr<const void> keep, std::string_view frame, bool droppable,
                                  std::uint64_t seq, const Event* event) {
  sock_.enqueue(std::move(keep), frame, droppable, seq, event);
  ShardCounters::bump(shard_.counters.messages_out, 1);
  ShardCounters::bump(shard_.counters.bytes_out, frame.size());
}

bool WebSocketSession::send_text(std::string payload, std::uint8_t kind) {
  auto frame = std::make_shared<const std::string>(protocol::make_text_frame(payload));
  std::string_view bytes(*frame);
  if (!send_reply(std::move(frame), bytes, kind)) return false;
  ShardCounters::bump(shard_.counters.messages_out, 1);
  ShardCounters::bump(shard_.counters.bytes_out, bytes.size());
  return true;
}

bool WebSocketSession::send_reply(std::shared_ptr<const void> keep, std::string_view frame,
                                  std::uint8_t kind) {
  if (slow_) return false;
  const std::size_t queued = sock_.queued_bytes();
  // A reply larger than the limit still goes to a client that has taken everything else.
  if (queued > 0 && queued + frame.size() > ctx_.options.max_queue_bytes) {
    drop_slow();
    return false;
  }
  sock_.enqueue(std::move(keep), frame, true, 0, nullptr, kind);
  return true;
}

void WebSocketSession::send_own(std::string frame) {
  auto owned = std::make_shared<const std::string>(std::move(frame));
  std::string_view bytes(*owned);
  sock_.enqueue(std::move(owned), bytes, false);
}

void WebSocketSession::wait_readable() {
  if (sock_.tls()) return read_tls();
  if (sock_.backlogged() && (slow_ || (echo_ && state_ == State::open))) {
    // The client does not read what it is sent (its echoes, or the close frame of a client dropped as
    // slow): read nothing more from it until that has left; then only its close reply is looked for.
    sock_.socket().async_wait(tcp::socket::wait_write,
                              in(wait_memory_, [self = shared_from_this()](boost::system::error_code ec) {
                                if (ec) return self->on_readable(ec);
                                self->wait_readable();
                              }));
    return;
  }
  sock_.socket().async_wait(
      tcp::socket::wait_read,
      in(wait_memory_, [self = shared_from_this()](boost::system::error_code ec) { self->on_readable(ec); }));
}

void WebSocketSession::read_tls() {
  sock_.tls()->stream.async_read_some(
      sock_.tls_read_room(),
      [self = shared_from_this()](boost::system::error_code ec, std::size_t n) { self->on_tls_read(ec, n); });
}

void WebSocketSession::on_tls_read(boost::system::error_code ec, std::size_t n) {
  if (state_ == State::closed) return;
  // A client that closed TCP without close_notify has still said all it had to say.
  if (ec == net::ssl::error::stream_truncated) ec = net::error::eof;
  if (ec) return read_failed(ec);
  // While draining, what the client sends is discarded until its close_notify or EOF.
  if (state_ != State::draining) consume(static_cast<char*>(sock_.tls_read_room().data()), n);
  if (state_ != State::closed) read_tls();
}

void WebSocketSession::on_readable(boost::system::error_code ec) {
  if (state_ == State::closed) return;
  if (!ec) ec = read_available();
  if (ec) return read_failed(ec);
  if (state_ != State::closed) wait_readable();
}

boost::system::error_code WebSocketSession::read_available() {
  if (sock_.tls()) return {};  // a TLS connection's read is always in flight: nothing waits unread
  char* buffer = scratch();
  boost::system::error_code ec;
  for (int i = 0; i < kReadsPerWake; ++i) {
    // The socket is non-blocking (CorkedSocket): this takes what the kernel holds, or would_block.
    std::size_t n = sock_.socket().read_some(net::buffer(buffer, kScratchBytes), ec);
    if (ec == net::error::would_block || ec == net::error::try_again) return {};
    if (ec) return ec;
    // While draining, what the client sends is discarded: reading it to the end lets the connection
    // close with FIN (unread bytes would make it a reset, which can destroy our close frame).
    if (state_ != State::draining) consume(buffer, n);
    // A client just dropped as slow gets no more reads this turn: wait_readable() decides on the next.
    if (state_ == State::closed || slow_ || n < kScratchBytes) return {};
  }
  return {};
}

void WebSocketSession::read_failed(boost::system::error_code ec) {
  if (state_ == State::closed) return;
  if (state_ == State::open || state_ == State::closing)
    end(ec == net::error::operation_aborted && close_reason_ ? std::string(close_reason_)
                                                             : describe_read_error(ec));
  close_socket();
}

void WebSocketSession::consume(char* data, std::size_t size) {
  bool alive = false;
  while (state_ == State::open || state_ == State::closing) {
    // Over its limit, a client gets its close now: the rest of what it sent is parsed but not acted on.
    if (slow_ && state_ == State::open) close_with(protocol::close_code::policy, kSlowReason);
    protocol::Reader::Result r = reader_.next(data, size);
    switch (r.kind) {
      case protocol::Reader::Kind::need_more:
        if (alive) {
          last_activity_ms_ = now_unix_ms();
          pinged_ = false;
        }
        return;
      case protocol::Reader::Kind::text:
      case protocol::Reader::Kind::binary:
        alive = true;
        // After our close frame, messages are no longer taken.
        if (state_ == State::open) handle_message(r.kind, r.payload);
        break;
      case protocol::Reader::Kind::ping:
        alive = true;
        if (state_ == State::open) {
          auto pong =
              std::make_shared<const std::string>(protocol::make_frame(protocol::opcode::pong, r.payload));
          std::string_view bytes(*pong);
          send_reply(std::move(pong), bytes);
        }
        break;
      case protocol::Reader::Kind::pong:
        alive = true;  // an answer to our heartbeat ping
        break;
      case protocol::Reader::Kind::close:
        if (state_ == State::open) {
          // The client starts the close: answer with its code, then the server closes TCP.
          send_own(protocol::make_close_frame(r.code));
          end("client_closed code=" + std::to_string(r.code));
        } else {
          end(close_reason_ ? close_reason_ : "closed");
        }
        sock_.shutdown_when_drained();
        return;
      case protocol::Reader::Kind::fail:
        if (state_ == State::open) {
          send_own(protocol::make_close_frame(r.code, r.error));
          end(describe_failure(r));
        } else {
          end(close_reason_ ? close_reason_ : "closed");
        }
        sock_.shutdown_when_drained();
        return;
    }
  }
}

void WebSocketSession::handle_message(protocol::Reader::Kind kind, std::string_view payload) {
  ShardCounters::bump(shard_.counters.messages_in, 1);
  ShardCounters::bump(shard_.counters.bytes_in, payload.size());
  if (echo_) {
    auto frame = std::make_shared<const std::string>(protocol::make_frame(
        kind == protocol::Reader::Kind::text ? protocol::opcode::text : protocol::opcode::binary, payload));
    std::string_view bytes(*frame);
    if (!send_reply(std::move(frame), bytes)) return;
    ShardCounters::bump(shard_.counters.messages_out, 1);
    ShardCounters::bump(shard_.counters.bytes_out, bytes.size());
    return;
  }
  if (!within_message_rate()) return;
  // A client that sends requests and does not read the answers is a slow consumer too (send_reply).
  handle_client_message(kind, payload);
}

bool WebSocketSession::within_message_rate() {
  const RateRule rule{static_cast<double>(ctx_.options.max_messages_per_connection_per_s),
                      static_cast<double>(ctx_.options.message_burst_per_connection)};
  if (!rule.limits() || message_rate_.take(rule, now_steady_ms())) return true;
  ctx_.counters.connections_rate_limited.fetch_add(1, std::memory_order_relaxed);
  // Sent whatever the backlog (as the close frame is): the client learns why before the close.
  send_own(protocol::make_text_frame(protocol::error(
      agent_id(), "rate_limited",
      "more than " + std::to_string(ctx_.options.max_messages_per_connection_per_s) +
          " messages a second (burst " + std::to_string(ctx_.options.message_burst_per_connection) + ")")));
  close_with(protocol::close_code::policy, "rate_limited");
  return false;
}

void WebSocketSession::handle_client_message(protocol::Reader::Kind kind, std::string_view text) {
  if (kind != protocol::Reader::Kind::text) {
    send_text(
        protocol::error(agent_id(), "bad_message", "binary messages are not supported; send JSON text"));
    return;
  }
  auto msg = protocol::parse_client_message(text);
  switch (msg.kind) {
    case protocol::ClientMessage::Kind::ping:
      send_text(protocol::pong(agent_id()));
      break;
    case protocol::ClientMessage::Kind::snapshot: {
      // One snapshot at a time: a request while one is still queued is answered by it, since the events
      // queued after it bring the client to the same state (and a burst of requests costs one snapshot).
      if (sock_.holds(kSnapshotKind)) break;
      auto snap = ctx_.hub.snapshot(channel_);
      send_text(protocol::snapshot(agent_id(), snap.seq, snap.epoch, false, snap.state_json), kSnapshotKind);
      break;
    }
    case protocol::ClientMessage::Kind::refresh:
      refresh_token(msg.token);
      break;
    case protocol::ClientMessage::Kind::invalid:
      send_text(protocol::error(agent_id(), msg.error_code, msg.error_message));
      break;
  }
}

void WebSocketSession::set_token_expiry(std::int64_t exp_s, std::int64_t now) {
  token_expires_ms_ = exp_s * 1000;
  // The warning comes kTokenWarningMs before the end, or halfway through a shorter life.
  token_warn_ms_ =
      token_expires_ms_ - std::min(kTokenWarningMs, std::max<std::int64_t>(token_expires_ms_ - now, 0) / 2);
  token_warned_ = false;
}

void WebSocketSession::refresh_token(const std::string& token) {
  if (!ctx_.verifier || token_expires_ms_ == 0) {
    send_text(
        protocol::error(agent_id(), "refresh_not_needed", "this server needs no token for this connection"));
    return;
  }
  const std::int64_t now = now_unix_ms();
  auth::Verdict v = ctx_.verifier->authorize(token, agent_id(), now / 1000);
  if (!v.ok()) {
    // The connection keeps its current token, and ends when that expires.
    send_text(protocol::error(agent_id(), v.code_name(), v.message));
    return;
  }
  // As at the handshake: subscribing is reading (a token without scope claims has read).
  if (!v.claims.scopes.has(auth::Scope::read)) {
    send_text(protocol::error(agent_id(), "scope_missing", "the new token lacks the read scope"));
    return;
  }
  set_token_expiry(v.claims.exp, now);
  send_text(protocol::token_refreshed(agent_id(), v.claims.exp, token_expires_ms_ - now));
}

bool WebSocketSession::check_token(std::int64_t now) {
  if (token_expires_ms_ == 0) return true;
  if (now >= token_expires_ms_) {
    close_with(protocol::close_code::token_expired, "token_expired");
    return false;
  }
  if (!token_warned_ && now >= token_warn_ms_) {
    token_warned_ = true;
    send_text(protocol::token_expiring(agent_id(), token_expires_ms_ / 1000, token_expires_ms_ - now));
  }
  return state_ == State::open;
}

void WebSocketSession::close_with(std::uint16_t code, const char* reason) {
  if (state_ != State::open) return;
  state_ = State::closing;
  close_reason_ = reason;
  deadline_ms_ = now_unix_ms() + kCloseGraceMs;
  // A slow client's backlog is dropped, so the close frame is not stuck behind it. (A client closed for
  // its message rate reads: it gets the answers it was owed.)
  if (slow_) sock_.drop_pending();
  send_own(protocol::make_close_frame(code, reason));
}

void WebSocketSession::end(std::string_view reason) {
  if (state_ != State::open && state_ != State::closing) return;
  state_ = State::draining;
  deadline_ms_ = now_unix_ms() + kCloseGraceMs;
  if (counted_) {
    ctx_.counters.connections_closed.fetch_add(1, std::memory_order_relaxed);
    ctx_.counters.live_connections.fetch_sub(1, std::memory_order_relaxed);
    log::info("ws_disconnect", {{"session", session_id()},
                                {"agent", std::string(agent_id())},
                                {"reason", std::string(reason)},
                                {"seconds", std::to_string((now_unix_ms() - started_ms_) / 1000)}});
  }
  if (channel_) {
    ctx_.hub.leave(channel_, shard_.index, this);
    channel_ = nullptr;
  }
}

void WebSocketSession::close_socket() {
  state_ = State::closed;
  sock_.close();
}

void WebSocketSession::on_sweep(std::int64_t now) {
  sock_.trim();
  switch (state_) {
    case State::closing:
      if (now > deadline_ms_) {
        end(close_reason_ ? close_reason_ : "closed");
        close_socket();  // the pending wait completes with operation_aborted; nothing is destroyed here
      }
      return;
    case State::draining:
      if (now > deadline_ms_) close_socket();
      return;
    case State::closed:
      return;
    case State::open:
      break;
  }
  if (!check_token(now)) return;
  const std::int64_t interval = ctx_.options.heartbeat_interval_ms;
  if (is_idle(now, interval)) {
    // Bytes waiting on the socket (a pong this thread had no turn to read) break the silence too.
    if (auto ec = read_available()) return read_failed(ec);
    if (state_ != State::open) return;
    if (is_idle(now, interval)) {
      ctx_.counters.connections_timed_out.fetch_add(1, std::memory_order_relaxed);
      close_with(protocol::close_code::going_away, "idle timeout");
      return;
    }
  }
  if (now >= deadline_ms_) {
    deadline_ms_ = now + interval;
    // The client's silence counts from one interval before the first ping it could answer: as before
    // when pings come on time, and not from before a stall of the server, when none came.
    if (!std::exchange(pinged_, true)) last_activity_ms_ = std::max(last_activity_ms_, now - interval);
    if (!send_reply(nullptr, protocol::kEmptyPingFrame)) return;
    // Browsers cannot see ping frames, so the heartbeat envelope goes along (not on the echo route).
    if (!echo_) send_text(protocol::heartbeat(agent_id()));
  }
}

bool WebSocketSession::is_idle(std::int64_t now, std::int64_t interval) const noexcept {
  // Silence is the client's only once it has had a ping to answer, and time the shard's thread stood
  // still (SIGSTOP, an overloaded host) is not its silence: it counts from one interval before the resume.
  const std::int64_t from = std::max(last_activity_ms_, shard_.resumed_ms - interval);
  return pinged_ && now - from > ctx_.options.idle_timeout_ms;
}

void WebSocketSession::on_shutdown() {
  if (state_ == State::open) close_with(protocol::close_code::going_away, "server shutting down");
}

}  // namespace aw::transport
