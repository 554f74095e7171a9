// One WebSocket connection: an agent channel subscriber (`/ws/agents/{id}`) or, when enabled, an echo
// endpoint (`/ws/echo`) for conformance suites. Broadcast frames arrive through deliver() and go
// straight into the corked socket's bounded queue; Beast does the handshake, reading and control frames.
#pragma once
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <algorithm>
#include <memory>

#include "api/subscribe_target.hpp"
#include "hub/subscriber.hpp"
#include "transport/corked_socket.hpp"
#include "transport/server_context.hpp"
#include "transport/shard.hpp"

namespace aw::transport {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

// The buffer client messages are read into. Beast prepares min(1536, max_size() - size()) bytes before
// each read, so every idle connection's pending read would hold 1.5 KB; capping max_size() a little
// above what is held makes it prepare small steps (a large message just takes more of them), and
// read_message_max still bounds the message.
class LeanReadBuffer : public beast::flat_buffer {
 public:
  static constexpr std::size_t kStep = 128;
  std::size_t max_size() const noexcept { return std::min(beast::flat_buffer::max_size(), size() + kStep); }
};

class WebSocketSession final : public Subscriber,
                               public Connection,
                               public std::enable_shared_from_this<WebSocketSession> {
 public:
  WebSocketSession(tcp::socket&& socket, Shard& shard, ServerContext& ctx, api::SubscribeTarget target);
  ~WebSocketSession() override;

  // Accepts the upgrade request already read by the HTTP session.
  void run(http::request<http::string_body> req);

  void deliver(const EventPtr& ev) override;
  void on_sweep(std::int64_t now_ms) override;
  void on_shutdown() override;
  std::size_t queued_bytes() const noexcept override { return ws_.next_layer().queued_bytes(); }
  std::optional<SubscriberLag> lag() override;

 private:
  enum class State { handshaking, open, closing, closed };

  void on_accept(beast::error_code ec);
  void join_channel();
  void do_read();
  void on_read(beast::error_code ec, std::size_t bytes);
  void handle_client_message();
  // Queues a session message (connected, pong, error, ...): framed here, sent unshared.
  void send_text(std::string payload);
  // The event's frame as this client takes it: compressed or not.
  std::string_view frame_of(const Event& ev) const;
  void send_frame(std::shared_ptr<const void> keep, std::string_view frame, bool droppable, std::uint64_t seq = 0,
                  const Event* event = nullptr);
  // While the client lags: lets `ev` take the place of the event queued last when the two merge
  // (protocol/coalesce). True when `ev` needs nothing more.
  bool merge_into_queue(const EventPtr& ev);
  // The queue is full: close with 1008 on a later turn; nothing more is queued meanwhile.
  void drop_slow();
  // Starts a close handshake; the socket is cut if it has not finished by the deadline.
  void close_with(websocket::close_code code, std::string_view reason);
  void finish(beast::error_code ec);

  websocket::stream<CorkedSocket> ws_;
  LeanReadBuffer buffer_;
  Shard& shard_;
  ServerContext& ctx_;
  api::SubscribeTarget target_;
  std::string session_id_;
  std::string remote_;
  Channel* channel_ = nullptr;
  State state_ = State::handshaking;
  bool slow_ = false;         // its queue overflowed; a close is on its way
  bool deflate_ = false;      // permessage-deflate negotiated: broadcasts go out compressed
  std::string close_reason_;  // why we closed it, when we did
  std::int64_t started_ms_ = 0;
  std::int64_t last_activity_ms_ = 0;
  std::int64_t next_heartbeat_ms_ = 0;
  std::int64_t close_deadline_ms_ = 0;
};

}  // namespace aw::transport
