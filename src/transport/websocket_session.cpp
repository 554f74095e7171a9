#include "transport/websocket_session.hpp"

#include <boost/asio/post.hpp>
#include <boost/beast/websocket.hpp>
#include <random>

#include "core/clock.hpp"
#include "core/log.hpp"
#include "core/random_id.hpp"
#include "protocol/client_message.hpp"
#include "protocol/coalesce.hpp"
#include "protocol/deflate.hpp"
#include "protocol/envelope.hpp"
#include "protocol/ws_frame.hpp"

namespace aw::transport {
namespace {

// A peer that does not finish a close handshake in this time is cut off.
constexpr std::int64_t kCloseGraceMs = 5000;
constexpr auto kHandshakeTimeout = std::chrono::seconds(10);

std::string describe_close(const beast::error_code& ec, const websocket::close_reason& theirs) {
  if (ec == websocket::error::closed) return "client_closed code=" + std::to_string(theirs.code);
  if (ec == websocket::error::message_too_big) return "message_too_big";
  if (ec == websocket::error::bad_frame_payload) return "invalid_utf8";
  if (ec == net::error::operation_aborted) return "aborted";
  if (ec == net::error::eof || ec == net::error::connection_reset) return "connection_lost";
  return "error " + ec.message();
}

}  // namespace

WebSocketSession::WebSocketSession(tcp::socket&& socket, Shard& shard, ServerContext& ctx,
                                   api::SubscribeTarget target)
    : ws_(std::move(socket)), shard_(shard), ctx_(ctx), target_(std::move(target)), session_id_(random_hex_id(8)) {
  boost::system::error_code ec;
  auto ep = ws_.next_layer().next_layer().remote_endpoint(ec);
  if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
  shard_.connections.insert(this);
}

WebSocketSession::~WebSocketSession() {
  if (channel_) ctx_.hub.leave(channel_, shard_.index, this);
  shard_.connections.erase(this);
}

void WebSocketSession::run(http::request<http::string_body> req) {
  ws_.next_layer().set_owner(std::weak_ptr<void>(shared_from_this()));
  ws_.next_layer().set_flush_queue(&shard_.flush_queue);
  started_ms_ = last_activity_ms_ = now_unix_ms();
  close_deadline_ms_ = started_ms_ + std::chrono::milliseconds(kHandshakeTimeout).count();

  const Options& o = ctx_.options;
  ws_.read_message_max(o.max_message_bytes);
  ws_.auto_fragment(false);
  websocket::stream_base::timeout t{};
  t.handshake_timeout = kHandshakeTimeout;
  t.idle_timeout = websocket::stream_base::none();  // our sweep handles idleness and heartbeats
  t.keep_alive_pings = false;
  ws_.set_option(t);
  if (o.compression) {
    websocket::permessage_deflate pmd;
    pmd.server_enable = true;
    pmd.client_enable = false;
    // Each message compressed on its own: then one compressed frame per event serves every subscriber.
    pmd.server_no_context_takeover = true;
    ws_.set_option(pmd);
  }
  ws_.set_option(websocket::stream_base::decorator([this](websocket::response_type& res) {
    res.set(http::field::server, std::string("agentwire/") + AGENTWIRE_VERSION);
    // Runs after Beast negotiated the extensions: learn whether this client takes compressed frames.
    // A client that asked for a smaller server window gets uncompressed frames (always allowed).
    std::string_view ext = res[http::field::sec_websocket_extensions];
    deflate_ = ext.substr(0, 18) == "permessage-deflate" && ext.find("server_max_window_bits") == std::string_view::npos;
  }));
  // Pongs (and pings) from the client count as signs of life.
  ws_.control_callback([this](websocket::frame_type, beast::string_view) { last_activity_ms_ = now_unix_ms(); });
  ws_.async_accept(req, [self = shared_from_this()](beast::error_code ec) { self->on_accept(ec); });
}

namespace {
// The first heartbeat comes after a random half to whole interval: clients that connected together
// (a deploy, a reconnect storm) then do not all get their pings in the same sweep, for ever after.
std::int64_t first_heartbeat_delay_ms(std::int64_t interval_ms) {
  thread_local std::minstd_rand rng{std::random_device{}()};
  const std::int64_t half = interval_ms / 2;
  return interval_ms - half + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(half + 1));
}
}  // namespace

void WebSocketSession::on_accept(beast::error_code ec) {
  if (ec) {
    state_ = State::closed;
    log::info("ws_handshake_failed", {{"remote", remote_}, {"error", ec.message()}});
    return;
  }
  state_ = State::open;
  last_activity_ms_ = now_unix_ms();
  next_heartbeat_ms_ = last_activity_ms_ + first_heartbeat_delay_ms(ctx_.options.heartbeat_interval_ms);
  ctx_.counters.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  ctx_.counters.live_connections.fetch_add(1, std::memory_order_relaxed);
  if (target_.kind == api::SubscribeTarget::Kind::agent) join_channel();
  log::info("ws_connect", {{"session", session_id_},
                           {"agent", target_.kind == api::SubscribeTarget::Kind::echo ? "(echo)" : target_.agent_id},
                           {"remote", remote_},
                           {"shard", std::to_string(shard_.index)}});
  do_read();
}

void WebSocketSession::join_channel() {
  JoinResult j = ctx_.hub.join(target_.agent_id, shard_.index, this, target_.since);
  channel_ = j.channel;
  protocol::ConnectedInfo info;
  info.session_id = session_id_;
  info.agent_id = target_.agent_id;
  info.epoch = j.epoch;
  info.seq = j.seq;
  info.resumed = target_.since.has_value();
  info.recovered = j.recovered;
  info.replayed = j.replay.size();
  info.heartbeat_interval_ms = ctx_.options.heartbeat_interval_ms;
  info.idle_timeout_ms = ctx_.options.idle_timeout_ms;
  send_text(protocol::connected(info));
  // The replay goes out before anything live: live events are delivered by later handlers on this
  // thread, and the hub skips those the replay covered.
  for (const EventPtr& ev : j.replay) send_frame(ev, frame_of(*ev), false, ev->seq, ev.get());
  if (target_.since && !j.recovered)
    send_text(protocol::snapshot(target_.agent_id, j.seq, j.epoch, false, j.state_json));
}

void WebSocketSession::deliver(const EventPtr& ev) {
  if (state_ != State::open || slow_) return;
  CorkedSocket& sock = ws_.next_layer();
  if (sock.backlogged() && merge_into_queue(ev)) return;
  std::string_view frame = frame_of(*ev);
  if (sock.queued_bytes() + frame.size() > ctx_.options.max_queue_bytes) return drop_slow();
  send_frame(ev, frame, true, ev->seq, ev.get());
}

bool WebSocketSession::merge_into_queue(const EventPtr& ev) {
  CorkedSocket& sock = ws_.next_layer();
  const Segment* last = sock.unsent_back();
  if (!last || !last->event) return false;
  EventPtr merged = protocol::coalesce(*last->event, *ev);
  if (!merged) return false;
  std::string_view frame = frame_of(*merged);
  if (sock.queued_bytes() - last->bytes.size() + frame.size() > ctx_.options.max_queue_bytes) {
    drop_slow();
    return true;
  }
  const Event* raw = merged.get();
  const bool droppable = last->droppable;
  sock.replace_back({std::move(merged), frame, droppable, raw->first_seq, raw});
  ShardCounters::bump(shard_.counters.messages_merged, 1);
  return true;
}

void WebSocketSession::drop_slow() {
  // Never close from inside the fan-out loop over this channel: do it on a later turn.
  slow_ = true;
  ctx_.counters.connections_dropped_slow.fetch_add(1, std::memory_order_relaxed);
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    self->close_with(websocket::close_code::policy_error, "slow consumer: outbound queue full");
  });
}

std::optional<SubscriberLag> WebSocketSession::lag() {
  if (target_.kind != api::SubscribeTarget::Kind::agent || state_ != State::open) return std::nullopt;
  auto [events, oldest] = ws_.next_layer().queued_events();
  SubscriberLag l;
  l.session_id = session_id_;
  l.agent_id = target_.agent_id;
  l.queued_bytes = queued_bytes();
  l.queued_events = events;
  l.seq_behind = oldest == 0 ? 0 : delivered_seq - oldest + 1;
  return l;
}

std::string_view WebSocketSession::frame_of(const Event& ev) const {
  return deflate_ ? std::string_view(protocol::deflated_frame(ev)) : std::string_view(ev.frame);
}

void WebSocketSession::send_frame(std::shared_ptr<const void> keep, std::string_view frame, bool droppable,
                                  std::uint64_t seq, const Event* event) {
  ws_.next_layer().enqueue(std::move(keep), frame, droppable, seq, event);
  ShardCounters::bump(shard_.counters.messages_out, 1);
  ShardCounters::bump(shard_.counters.bytes_out, frame.size());
}

void WebSocketSession::send_text(std::string payload) {
  auto frame = std::make_shared<const std::string>(ws::make_text_frame(payload));
  std::string_view bytes(*frame);
  send_frame(std::move(frame), bytes, false);
}

void WebSocketSession::do_read() {
  ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_read(ec, n); });
}

void WebSocketSession::on_read(beast::error_code ec, std::size_t bytes) {
  if (ec) return finish(ec);
  last_activity_ms_ = now_unix_ms();
  ShardCounters::bump(shard_.counters.messages_in, 1);
  ShardCounters::bump(shard_.counters.bytes_in, bytes);

  if (target_.kind == api::SubscribeTarget::Kind::echo) {
    // Echo is sequential: one message back before the next is read.
    ws_.text(ws_.got_text());
    ws_.async_write(buffer_.data(), [self = shared_from_this()](beast::error_code wec, std::size_t) {
      if (wec) return self->finish(wec);
      self->buffer_.consume(self->buffer_.size());
      self->buffer_.shrink_to_fit();
      self->do_read();
    });
    return;
  }
  if (state_ == State::open) handle_client_message();
  buffer_.consume(buffer_.size());
  buffer_.shrink_to_fit();  // idle connections hold no message memory
  do_read();
}

void WebSocketSession::handle_client_message() {
  if (!ws_.got_text()) {
    send_text(protocol::error(target_.agent_id, "bad_message", "binary messages are not supported; send JSON text"));
    return;
  }
  auto data = buffer_.cdata();
  std::string_view text(static_cast<const char*>(data.data()), data.size());
  auto msg = protocol::parse_client_message(text);
  switch (msg.kind) {
    case protocol::ClientMessage::Kind::ping: send_text(protocol::pong(target_.agent_id)); break;
    case protocol::ClientMessage::Kind::snapshot: {
      auto snap = ctx_.hub.snapshot(channel_);
      send_text(protocol::snapshot(target_.agent_id, snap.seq, snap.epoch, false, snap.state_json));
      break;
    }
    case protocol::ClientMessage::Kind::invalid:
      send_text(protocol::error(target_.agent_id, msg.error_code, msg.error_message));
      break;
  }
}

void WebSocketSession::close_with(websocket::close_code code, std::string_view reason) {
  if (state_ != State::open) return;
  state_ = State::closing;
  close_reason_ = std::string(reason);
  close_deadline_ms_ = now_unix_ms() + kCloseGraceMs;
  // What has not started to leave is dropped, so the close frame is not stuck behind a backlog.
  if (code == websocket::close_code::policy_error) ws_.next_layer().drop_pending();
  ws_.async_close(websocket::close_reason(code, reason), [self = shared_from_this()](beast::error_code) {
    // The read loop sees the end of the connection and finishes it.
  });
}

void WebSocketSession::finish(beast::error_code ec) {
  bool was_open = state_ == State::open || state_ == State::closing;
  state_ = State::closed;
  if (channel_) {
    ctx_.hub.leave(channel_, shard_.index, this);
    channel_ = nullptr;
  }
  ws_.next_layer().close();
  if (!was_open) return;
  ctx_.counters.connections_closed.fetch_add(1, std::memory_order_relaxed);
  ctx_.counters.live_connections.fetch_sub(1, std::memory_order_relaxed);
  std::string reason = close_reason_.empty() ? describe_close(ec, ws_.reason()) : close_reason_;
  log::info("ws_disconnect", {{"session", session_id_},
                              {"agent", target_.agent_id},
                              {"reason", reason},
                              {"seconds", std::to_string((now_unix_ms() - started_ms_) / 1000)}});
}

void WebSocketSession::on_sweep(std::int64_t now) {
  switch (state_) {
    case State::handshaking:
    case State::closing:
      if (now > close_deadline_ms_) ws_.next_layer().close();  // the read loop then finishes
      return;
    case State::closed: return;
    case State::open: break;
  }
  if (now - last_activity_ms_ > ctx_.options.idle_timeout_ms) {
    ctx_.counters.connections_timed_out.fetch_add(1, std::memory_order_relaxed);
    close_with(websocket::close_code::going_away, "idle timeout");
    return;
  }
  if (now >= next_heartbeat_ms_) {
    next_heartbeat_ms_ = now + ctx_.options.heartbeat_interval_ms;
    // Browsers cannot see ping frames, so the heartbeat envelope goes along (not on the echo route).
    ws_.async_ping({}, [self = shared_from_this()](beast::error_code) {});
    if (target_.kind == api::SubscribeTarget::Kind::agent) send_text(protocol::heartbeat(target_.agent_id));
  }
}

void WebSocketSession::on_shutdown() {
  if (state_ == State::open) {
    close_with(websocket::close_code::going_away, "server shutting down");
  } else if (state_ == State::handshaking) {
    ws_.next_layer().close();
  }
}

}  // namespace aw::transport
