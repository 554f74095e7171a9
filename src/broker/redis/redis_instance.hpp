// One Redis instance of a shared broker as the hub's writer uses it: a blocking hiredis connection with
// a timeout on every answer, (re)connected on demand (at most one attempt per 200 ms while it is
// down), and the batch script loaded with SCRIPT LOAD and run with EVALSHA (loaded again on NOSCRIPT,
// e.g. after Redis restarted). A batch may be sent before the one before it is answered (eval_send,
// eval_take): Redis runs them in the order sent, and any other command first reads the answers still
// to come, so every answer reaches its own caller. Writer thread only.
#pragma once
#include <hiredis/hiredis.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace aw::broker::redis {

struct Endpoint {
  std::string host;
  std::uint16_t port = 6379;
  unsigned db = 0;
  std::string name;  // redis://host:port/db
};

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

class RedisInstance {
 public:
  RedisInstance(Endpoint endpoint, std::chrono::milliseconds timeout);
  ~RedisInstance();
  RedisInstance(const RedisInstance&) = delete;
  RedisInstance& operator=(const RedisInstance&) = delete;

  // Runs one command (sent again once on a new connection when the old one turns out to be dead, so
  // only for commands that may run twice); throws BrokerError(unavailable) when Redis cannot be
  // reached or did not answer in time, BrokerError(failed) for an error reply.
  Reply command(const std::vector<std::string_view>& args);
  // EVALSHA of `script` (loaded on first use and again on NOSCRIPT) with the given arguments; never
  // sent twice (a batch whose answer was lost may have been stored: its publishers get 503).
  Reply eval(const std::string& script, const std::vector<std::string_view>& args);
  // eval() in two halves: sends it and returns a ticket at once; eval_take(ticket) waits for its answer
  // (with the same script and arguments: a server that forgot the script runs it again). Tickets are
  // taken in the order they were sent; one not taken is dropped by the next take. Both throw as eval()
  // does; a ticket sent on a connection that was lost since answers unavailable.
  std::uint64_t eval_send(const std::string& script, const std::vector<std::string_view>& args);
  Reply eval_take(std::uint64_t ticket, const std::string& script, const std::vector<std::string_view>& args);
  // Whether eval_take(ticket) should be called now: its answer is there, the connection is gone, or
  // it was sent a timeout ago (eval_take then fails it, unless the answer comes in time); waits at most
  // `wait` for the answer.
  bool answered(std::uint64_t ticket, std::chrono::microseconds wait);

  // The instance's generation: a random id stored once in it (`aw:generation`), read once per connection.
  // Data lost with a restart takes it along, so a new one names the new history: the epoch of a channel
  // no node has published to yet derives from it (RedisBroker::epoch_for), the same on every node,
  // without writing anything per channel.
  const std::string& generation();
  // Sends the commands in one go, then reads their answers in order (never sent twice); throws as
  // command() does, for the first error reply too.
  std::vector<Reply> pipeline(const std::vector<std::vector<std::string>>& commands);

  const Endpoint& endpoint() const noexcept { return endpoint_; }
  bool up() const noexcept { return up_.load(std::memory_order_relaxed); }

  // Figures for stats and metrics: written by the writer thread, read by any.
  struct Figures {
    std::atomic<std::uint64_t> batches{0};
    std::atomic<std::uint64_t> events{0};
    std::atomic<std::uint64_t> errors{0};
    std::atomic<std::uint64_t> reconnects{0};
    std::atomic<std::uint64_t> commit_us_sum{0};
    std::atomic<std::uint64_t> gaps_backfilled{0};
  };
  Figures& figures() noexcept { return figures_; }
  const Figures& figures() const noexcept { return figures_; }

 private:
  Reply command_once_more(const std::vector<std::string_view>& args);  // command() uncounted
  Reply eval_loaded(const std::string& script, const std::vector<std::string_view>& args);
  redisContext* connection();  // connected, or throws
  void drop();
  Reply send(const std::vector<std::string_view>& args);
  // Reads the answers still to come for the first `count` of what eval_send sent; false when the
  // connection was lost on the way (all of them not read then answer unavailable).
  bool read_outstanding(std::size_t count);
  void record_eval(std::chrono::steady_clock::time_point started);

  Endpoint endpoint_;
  std::chrono::milliseconds timeout_;
  redisContext* ctx_ = nullptr;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::string script_sha_;  // of the script last loaded on this connection's server
  std::string generation_;  // read on this connection
  std::atomic<bool> up_{false};
  bool connected_once_ = false;
  Figures figures_;
  // What eval_send sent, in order, and each one's answer once read.
  struct Outstanding {
    std::uint64_t ticket = 0;
    std::chrono::steady_clock::time_point sent;
    Reply reply;                      // read
    std::optional<std::string> lost;  // or: the connection was lost first (why)
  };
  std::deque<Outstanding> outstanding_;
  std::uint64_t next_ticket_ = 1;
};

}  // namespace aw::broker::redis
