// One HTTP/1.1 connection: reads requests (keep-alive and pipelined, one at a time in order), hands
// them to the API router, and turns WebSocket upgrades into WebSocket sessions.
#pragma once
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <optional>

#include "api/http_types.hpp"
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
  void do_read();
  void on_read(beast::error_code ec, std::size_t bytes);
  void handle(http::request<http::string_body>&& req);
  void upgrade(http::request<http::string_body>&& req);
  void send(api::Response res, bool keep_alive, bool head);
  void on_write(beast::error_code ec, bool keep_alive);
  void close();

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Shard& shard_;
  ServerContext& ctx_;
  unsigned version_ = 11;
  bool closed_ = false;
};

}  // namespace aw::transport
