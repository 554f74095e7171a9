// The pub/sub side of one Redis instance: one async hiredis connection on the broker's io_context that
// SUBSCRIBEs to the live channel of every watched agent, hands their messages to a callback, and after
// a lost connection reconnects (100 ms doubling to 1 s), subscribes to all of them again and says so
// per agent, since what was published meanwhile never arrives. Everything but the constructor runs on
// the io_context's thread; watch()/unwatch() are posted there from the hub's writer.
#pragma once
#include <hiredis/async.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker/redis/redis_instance.hpp"

namespace aw::broker::redis {

class LiveLink {
 public:
  struct Callbacks {
    std::function<void(std::string_view agent_id, std::string_view payload)> message;
    std::function<void(const std::string& agent_id)> resubscribed;
  };
  // `channel_prefix` + "{agent}:live" names an agent's pub/sub channel.
  LiveLink(boost::asio::io_context& io, Endpoint endpoint, std::string channel_prefix, Callbacks callbacks);
  ~LiveLink();

  void start();  // io thread
  void stop();   // io thread
  // io thread; `subscribed` is set once Redis confirmed (or at once when the link is down).
  void watch(const std::string& agent_id, std::shared_ptr<std::promise<void>> subscribed);
  void unwatch(const std::string& agent_id);
  bool up() const noexcept { return up_.load(std::memory_order_relaxed); }

  // Figures for stats and metrics: written on the io thread, read by any.
  struct Figures {
    std::atomic<std::uint64_t> reconnects{0};
    std::atomic<std::uint64_t> watched{0};  // agents watched now
    std::atomic<std::uint64_t> messages{0};
  };
  const Figures& figures() const noexcept { return figures_; }

 private:
  struct Watch {
    bool confirmed = false;
    bool after_reconnect = false;  // tell the hub once confirmed
    // UNSUBSCRIBE sent and not answered yet: hiredis drops the channel's callback with the answer, so
    // a watch meanwhile subscribes again only after it (`rewatch`).
    bool leaving = false;
    bool rewatch = false;
    std::vector<std::shared_ptr<std::promise<void>>> waiters;
  };
  void connect();
  void retry_later();
  void on_connected(int status);
  void on_disconnected();
  void on_reply(redisReply* reply);
  void subscribe(const std::vector<std::string>& agents);
  std::string channel_of(const std::string& agent_id) const;

  boost::asio::io_context& io_;
  boost::asio::steady_timer retry_;
  Endpoint endpoint_;
  std::string prefix_;
  Callbacks callbacks_;
  redisAsyncContext* ac_ = nullptr;
  bool connected_ = false;
  bool stopping_ = false;
  bool lost_once_ = false;  // a connection existed before: what follows is a resubscription
  std::chrono::milliseconds backoff_{100};
  std::unordered_map<std::string, Watch> watched_;
  std::atomic<bool> up_{false};
  Figures figures_;
};

}  // namespace aw::broker::redis
