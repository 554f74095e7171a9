// A connection refused at a connection limit: it gets one HTTP answer (503 when the server is full,
// 429 when its address is) and is closed, without a session, before anything it sends is parsed. The
// answer goes out at once; what the client sent is read and dropped until it closes or a short linger
// ends, so the close does not reset the connection under the answer.
#pragma once
#include <array>
#include <atomic>
#include <boost/beast/core/tcp_stream.hpp>
#include <memory>
#include <string>

#include "transport/shard.hpp"

namespace aw::transport {

class Refusal final : public Connection, public std::enable_shared_from_this<Refusal> {
 public:
  // `in_flight` counts the refusals alive (the acceptor bounds them: each holds a descriptor).
  Refusal(net::ip::tcp::socket&& socket, Shard& shard, std::shared_ptr<const std::string> answer,
          std::atomic<std::uint32_t>& in_flight);
  ~Refusal() override;

  void run();
  void on_sweep(std::int64_t) override {}
  void on_shutdown() override { close(); }

  // The whole HTTP answer for a refusal: status, a JSON error body with `code`, and Connection: close.
  static std::string answer(unsigned status, std::string_view code, std::string_view message);

 private:
  void drain();
  void close();

  boost::beast::tcp_stream stream_;
  Shard& shard_;
  std::shared_ptr<const std::string> answer_;
  std::atomic<std::uint32_t>& in_flight_;
  std::array<char, 512> sink_{};
};

}  // namespace aw::transport
