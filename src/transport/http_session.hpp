// One HTTP/1.1 connection: reads requests (keep-alive and pipelined), hands them to the API router, and
// writes the answers back in request order. Pipelined requests are read and handled while earlier ones
// are still being answered, so publishes on one connection share the hub's group commits, and answers
// that are ready together leave in one write. WebSocket upgrades become WebSocket sessions; streamed
// bodies (the pipe route) are fed to their sink as they arrive, reading paused while the sink is full.
#pragma once
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/body_sink.hpp"
#include "api/http_types.hpp"
#include "api/router.hpp"
#include "api/subscribe_target.hpp"
#include "transport/http_stream.hpp"
#include "transport/server_context.hpp"
#include "transport/shard.hpp"

namespace aw::transport {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

class HttpSession final : public Connection, public std::enable_shared_from_this<HttpSession> {
 public:
  // `peer`: the client's address, which the per-address rate limits count by.
  HttpSession(tcp::socket&& socket, Shard& shard, ServerContext& ctx, const net::ip::address& peer);
  ~HttpSession() override;

  // Reads requests; on a TLS port, after the handshake.
  void run();
  // Enforces the header timeout: a request head not complete in time gets 408 and the connection closes
  // (a TLS handshake not complete in time: the connection closes).
  void on_sweep(std::int64_t now_ms) override;
  void on_shutdown() override;

 private:
  // Where the reading side is; writing (one write in flight, see writing_) goes on beside any of these.
  enum class State : std::uint8_t {
    handshaking,   // a TLS connection's handshake is in flight (due within the header timeout)
    idle,          // between requests, nothing read in flight: reading resumes unless the pipeline is full
    reading_head,  // a read for a request head is in flight
    reading_body,  // a read for a whole body (the plain routes) is in flight
    streaming,     // a streamed body is being fed to its sink (a read for the next piece in flight)
    sink_full,     // a streamed body waits for its sink to take more; the sink's wake resumes reading
    upgrading,     // a WebSocket upgrade waits for the earlier answers to leave
    draining,      // no more requests: the answers owed leave, then the socket closes
    closed,        // the socket is closed, or belongs to a WebSocket session now
  };

  // One answer, in request order; ready once the handler has replied.
  struct Slot {
    bool ready = false;
    std::string bytes;
  };

  struct PendingUpgrade {
    http::request<http::string_body> request;
    api::SubscribeTarget target;
  };

  void on_handshake(beast::error_code ec);
  bool can_read() const noexcept;
  void new_header_parser();
  // Reads requests: those already buffered at once, then waits for more.
  void do_read();
  void on_head_bytes(beast::error_code ec, std::size_t bytes);
  // A request's head is in (or failed): checks it, routes it, and reads or takes its body.
  void on_header(beast::error_code ec);
  // Refuses a request from its head alone: the body is not read, so the answer ends the connection.
  void refuse_head(const api::Response& res);
  // Answers a request from its head alone, keeping the connection when there is no body to skip.
  void answer_head(const api::Response& res);
  // One more action of this client under `limit`: the 429 rate_limited answer when it is over (with
  // Retry-After), else nothing.
  std::optional<api::Response> over_rate(AddressRateLimit* limit, std::atomic<std::uint64_t>& refused);
  void on_body(beast::error_code ec);
  // A read failed: answers what can be answered and stops reading.
  void read_failed(beast::error_code ec);
  // A route that takes its body as it arrives: feed the sink piece by piece.
  void start_streaming(const api::StreamingHandler& handler, const api::Params& params);
  void read_body_piece();
  void on_body_piece(beast::error_code ec);
  void resume_body();
  void end_body();
  void body_failed(beast::error_code ec);
  void handle(http::request<http::string_body>&& msg);
  // A request for a WebSocket route: refused here, or queued for the upgrade. False when the path is
  // not a WebSocket route after all.
  bool route_websocket(http::request<http::string_body>&& msg, bool keep_alive, bool head);
  void upgrade();
  // Takes a slot for the next answer.
  std::uint64_t reserve_slot();
  // What a handler answers through: the answer is brought back to this connection's thread and fills
  // the slot.
  api::Reply answer_to(std::uint64_t slot, bool keep_alive, bool head);
  void complete(std::uint64_t slot, const api::Response& res, bool keep_alive, bool head);
  void reply_now(const api::Response& res, bool keep_alive, bool head);
  void write_ready();
  void on_write(beast::error_code ec);
  void close();

  HttpStream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::request_parser<http::buffer_body>> body_parser_;  // streaming routes
  api::Request request_;  // the request being read, built once from its head and handed over when routed
  // CORS headers for the answers to the request being read (an allowed cross-origin one); else empty.
  std::vector<std::pair<std::string, std::string>> cors_headers_;
  std::shared_ptr<api::BodySink> sink_;
  std::unique_ptr<char[]> chunk_;  // streaming reads land here; only sessions that stream have one
  // Holds the session while reading waits for the sink (no read in flight holds it then).
  std::shared_ptr<HttpSession> self_while_sink_full_;
  std::uint64_t sink_slot_ = 0;
  Shard& shard_;
  ServerContext& ctx_;
  net::ip::address peer_;
  State state_ = State::idle;
  bool writing_ = false;  // a write is in flight (one at a time; answers queue in slots_)
  unsigned version_ = 11;
  std::int64_t head_deadline_ms_;  // when the request head being read must be complete; 0: none started
  std::deque<Slot> slots_;         // answers not yet written, oldest first
  std::uint64_t first_slot_ = 0;   // id of slots_.front()
  std::uint64_t next_slot_ = 0;
  std::string out_;                                // the write in flight
  std::optional<PendingUpgrade> pending_upgrade_;  // waits for earlier answers
};

}  // namespace aw::transport
