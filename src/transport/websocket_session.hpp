// One WebSocket connection: an agent channel subscriber (`/ws/agents/{id}`) or, when enabled, an echo
// endpoint (`/ws/echo`) for conformance suites. The protocol is our own (protocol/ws_handshake,
// protocol/ws_reader): broadcast frames arrive through deliver() and go straight into the corked
// socket's bounded queue, as do session messages and control frames; client frames are read straight
// from the socket when it is readable.
//
// Memory is what an idle connection costs, so: no read is pending while idle but a wait for
// readability (bytes land in a per-thread scratch buffer and only an incomplete frame is kept), no
// timer (the shard's sweep drives heartbeats and deadlines), and no strings held for the connection's
// life (the agent id is the channel's, the session id a number).
#pragma once
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <string_view>

#include "api/subscribe_target.hpp"
#include "core/token_bucket.hpp"
#include "hub/subscriber.hpp"
#include "protocol/ws_reader.hpp"
#include "transport/corked_socket.hpp"
#include "transport/op_memory.hpp"
#include "transport/server_context.hpp"
#include "transport/shard.hpp"

namespace aw::transport {

namespace http = boost::beast::http;

class WebSocketSession final : public hub::Subscriber,
                               public Connection,
                               public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(tcp::socket&& socket, Shard& shard, ServerContext& ctx);
  // A TLS connection: reads and writes go through its TLS stream.
  WebSocketSession(std::unique_ptr<TlsLink> tls, Shard& shard, ServerContext& ctx);
  ~WebSocketSession() override;

  // Answers the upgrade request the HTTP session read; `early` holds bytes the client sent after it
  // (read ahead by the HTTP session), which are taken as the first WebSocket bytes.
  void run(const http::request<http::string_body>& req, api::SubscribeTarget target, std::string_view early);

  void deliver(const EventPtr& ev) override;
  void history_lost() override;
  const void* delivery_state() const noexcept override { return sock_.enqueue_state(); }
  void on_sweep(std::int64_t now_ms) override;
  void on_shutdown() override;
  std::size_t queued_bytes() const noexcept override { return sock_.queued_bytes(); }
  std::optional<metrics::SubscriberLag> lag() override;

 private:
  enum class State : std::uint8_t {
    open,      // subscribed; reading client frames
    closing,   // we sent a close frame: waiting (until the deadline) for the client's
    draining,  // ended: what is queued leaves, then FIN; reads are discarded until EOF or the deadline
    closed,    // the socket is closed
  };

  void join_channel(const api::SubscribeTarget& target);
  // Waits for the socket to become readable (or, on the echo route while the client does not read
  // what it is sent, writable first).
  void wait_readable();
  void on_readable(boost::system::error_code ec);
  // A TLS connection keeps one read in flight instead (TLS may hold bytes the socket no longer shows).
  void read_tls();
  void on_tls_read(boost::system::error_code ec, std::size_t n);
  // Reads and handles what the socket holds now (a few reads at most); the error that ended reading.
  boost::system::error_code read_available();
  // Reading ended with `ec`: the connection is over.
  void read_failed(boost::system::error_code ec);
  // Runs the bytes through the frame reader and acts on what it yields.
  void consume(char* data, std::size_t size);
  void handle_message(protocol::Reader::Kind kind, std::string_view payload);
  void handle_client_message(protocol::Reader::Kind kind, std::string_view payload);
  // One more message under --max-messages-per-connection-per-s; false when it is over (the client got
  // an error envelope rate_limited and a close with 1008).
  bool within_message_rate();
  // The token (checked before the upgrade) expires at `exp_s`: when to warn and when to close.
  void set_token_expiry(std::int64_t exp_s, std::int64_t now);
  // A `refresh` message: a new token allowing this agent moves the expiry; a bad one gets an error.
  void refresh_token(const std::string& token);
  // The sweep's look at the token: a token_expiring message when due, a 4001 close once expired. False
  // when the connection is no longer open.
  bool check_token(std::int64_t now);
  // Queues a session message (connected, pong, error, snapshot, heartbeat): framed here, sent unshared.
  // Like every reply it counts against --max-queue-bytes (see send_reply).
  bool send_text(std::string payload, std::uint8_t kind = 0);
  // Queues a reply of this connection's own (a session message, a pong, an echo, a heartbeat ping) if
  // it fits under --max-queue-bytes with what is queued; otherwise the client is dropped as slow and
  // nothing is queued. False when it was not queued.
  bool send_reply(std::shared_ptr<const void> keep, std::string_view frame, std::uint8_t kind = 0);
  // Queues a frame that must leave whatever the backlog: the handshake answer, a close frame.
  void send_own(std::string frame);
  // The event's frame as this client takes it: compressed or not.
  std::string_view frame_of(const Event& ev) const;
  void send_frame(std::shared_ptr<const void> keep, std::string_view frame, bool droppable,
                  std::uint64_t seq = 0, const Event* event = nullptr);
  // While the client lags: lets `ev` take the place of the event queued last when the two merge
  // (protocol/coalesce). True when `ev` needs nothing more.
  bool merge_into_queue(const EventPtr& ev);
  // The queue is full: close with 1008 on a later turn (at once when reading); nothing more is queued
  // meanwhile, and nothing more the client sent is handled.
  void drop_slow();
  // The client has been silent (no message, no pong) for the idle timeout, counted as on_sweep() says.
  bool is_idle(std::int64_t now, std::int64_t interval) const noexcept;
  // Starts a close handshake; the socket is cut if it has not finished by the deadline.
  void close_with(std::uint16_t code, const char* reason);
  // The connection is over for the hub and the stats: leaves the channel, counts, logs. What is
  // queued (a close frame) still leaves, then FIN; the socket closes on EOF or at the deadline.
  void end(std::string_view reason);
  // Closes the socket now.
  void close_socket();
  std::string session_id() const;
  std::string_view agent_id() const noexcept;

  CorkedSocket sock_;
  // What deliver() reads besides the socket's queue follows it, so that delivery_state() and the 128
  // bytes after it hold all of it.
  State state_ =
      State::draining;  // until the handshake is accepted: a refusal leaves, then the socket closes
  bool echo_ = false;
  bool slow_ = false;  // its queue overflowed; a close is on its way
  // permessage-deflate negotiated: broadcasts go out compressed with this window (9..15 bits); 0: off.
  std::uint8_t deflate_bits_ = 0;
  bool counted_ = false;  // it was accepted: its end is counted and logged
  // A heartbeat ping went out since the client last sent anything: its silence can count from there.
  bool pinged_ = false;
  Shard& shard_;
  ServerContext& ctx_;
  OpMemory wait_memory_;  // the one wait wait_readable() has pending
  protocol::Reader reader_;
  hub::Channel* channel_ = nullptr;
  std::uint64_t session_id_;
  const char* close_reason_ = nullptr;  // why we closed it, when we did
  std::int64_t started_ms_ = 0;
  std::int64_t last_activity_ms_ = 0;
  // open: when the next heartbeat is due; closing, draining: when the socket is cut.
  std::int64_t deadline_ms_ = 0;
  // When the subscriber's token expires (0: it needs none) and when it is told so.
  std::int64_t token_expires_ms_ = 0;
  std::int64_t token_warn_ms_ = 0;
  bool token_warned_ = false;
  TokenBucket message_rate_;  // the client's messages (not control frames: the queue bounds their pongs)
};

}  // namespace aw::transport
