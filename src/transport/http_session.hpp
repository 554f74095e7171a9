// One HTTP/1.1 connection: reads requests (keep-alive and pipelined), hands them to the API router, and
// writes the answers back in request order. Pipelined requests are read and handled while earlier ones
// are still being answered, so publishes on one connection share the hub's group commits, and answers
// that are ready together leave in one write. WebSocket upgrades become WebSocket sessions.
#pragma once
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "api/body_sink.hpp"
#include "api/http_types.hpp"
#include "api/router.hpp"
#include "transport/server_context.hpp"
#include "transport/shard.hpp"

namespace aw::transport {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

class HttpSession final : public Connection, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, Shard& shard, ServerContext& ctx);
  ~HttpSession() override;

  void run();
  void on_sweep(std::int64_t) override {}
  void on_shutdown() override;

 private:
  // One answer, in request order; ready once the handler has replied.
  struct Slot {
    bool ready = false;
    bool close_after = false;
    std::string bytes;
  };

  bool can_read() const noexcept;
  void new_header_parser();
  // Reads requests: those already buffered at once, then waits for more.
  void do_read();
  // A request's header is in: routes it, and reads or takes its body. True when the whole request has
  // been handled here (the caller goes on reading), false when an asynchronous step took over.
  bool on_header(beast::error_code ec);
  void on_read(beast::error_code ec, std::size_t bytes);
  // Answers a failed read; returns true when there was an error.
  bool read_failed(beast::error_code ec);
  // A route that takes its body as it arrives: feed the sink piece by piece.
  void start_streaming(const api::StreamingHandler& handler, const api::Params& params);
  void read_body_piece();
  void on_body_piece(beast::error_code ec);
  void handle(http::request<http::string_body>&& req);
  void upgrade(http::request<http::string_body>&& req);
  // Takes a slot for the next answer; `complete` fills it.
  std::uint64_t reserve_slot();
  void complete(std::uint64_t slot, const api::Response& res, bool keep_alive, bool head);
  void reply_now(const api::Response& res, bool keep_alive, bool head);
  void write_ready();
  void on_write(beast::error_code ec);
  void close();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> header_parser_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::optional<http::request_parser<http::buffer_body>> body_parser_;  // streaming routes
  std::shared_ptr<api::BodySink> sink_;
  std::unique_ptr<char[]> chunk_;  // streaming reads land here; only sessions that stream have one
  std::uint64_t sink_slot_ = 0;
  bool sink_paused_ = false;
  Shard& shard_;
  ServerContext& ctx_;
  unsigned version_ = 11;
  std::deque<Slot> slots_;         // answers not yet written, oldest first
  std::uint64_t first_slot_ = 0;   // id of slots_.front()
  std::uint64_t next_slot_ = 0;
  std::string out_;                // the write in flight
  std::optional<http::request<http::string_body>> pending_upgrade_;  // waits for earlier answers
  bool reading_ = false;
  bool writing_ = false;
  bool no_more_reads_ = false;     // end of stream, an error, or Connection: close
  bool close_after_write_ = false;
  bool closed_ = false;
};

}  // namespace aw::transport
