#include "broker/redis/live_link.hpp"

#include <algorithm>

#include "broker/redis/asio_hiredis.hpp"
#include "broker/redis/reply.hpp"
#include "core/log.hpp"

namespace aw::broker::redis {
namespace {

constexpr auto kMaxBackoff = std::chrono::milliseconds(1000);

}  // namespace

LiveLink::LiveLink(boost::asio::io_context& io, Endpoint endpoint, std::string channel_prefix,
                   Callbacks callbacks)
    : io_(io),
      retry_(io),
      endpoint_(std::move(endpoint)),
      prefix_(std::move(channel_prefix)),
      callbacks_(std::move(callbacks)) {}

LiveLink::~LiveLink() = default;

std::string LiveLink::channel_of(const std::string& agent_id) const {
  return prefix_ + "{" + agent_id + "}:live";
}

void LiveLink::start() {
  connect();
}

void LiveLink::stop() {
  stopping_ = true;
  retry_.cancel();
  if (ac_ != nullptr) {
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;
    redisAsyncFree(ac);
  }
  for (auto& [agent, w] : watched_) {
    for (auto& p : w.waiters) p->set_value();
  }
  watched_.clear();
  figures_.watched.store(0, std::memory_order_relaxed);
}

void LiveLink::connect() {
  if (stopping_) return;
  redisAsyncContext* ac = redisAsyncConnect(endpoint_.host.c_str(), endpoint_.port);
  if (ac == nullptr || ac->err != 0) {
    if (ac != nullptr) redisAsyncFree(ac);
    retry_later();
    return;
  }
  ac->data = this;
  attach_to_asio(ac, io_);
  redisAsyncSetConnectCallback(ac, [](const redisAsyncContext* c, int status) {
    static_cast<LiveLink*>(c->data)->on_connected(status);
  });
  redisAsyncSetDisconnectCallback(
      ac, [](const redisAsyncContext* c, int) { static_cast<LiveLink*>(c->data)->on_disconnected(); });
  ac_ = ac;
}

void LiveLink::retry_later() {
  if (stopping_) return;
  retry_.expires_after(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  retry_.async_wait([this](boost::system::error_code ec) {
    if (!ec) connect();
  });
}

void LiveLink::on_connected(int status) {
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback.
    ac_ = nullptr;
    retry_later();
    return;
  }
  connected_ = true;
  backoff_ = std::chrono::milliseconds(100);
  up_ = true;
  if (lost_once_) figures_.reconnects.fetch_add(1, std::memory_order_relaxed);
  log::info("broker_live_up", {{"broker", endpoint_.name}, {"channels", std::to_string(watched_.size())}});
  std::vector<std::string> agents;
  for (auto& [agent, w] : watched_) {
    w.after_reconnect = lost_once_;
    agents.push_back(agent);
  }
  subscribe(agents);
}

void LiveLink::on_disconnected() {
  ac_ = nullptr;  // hiredis frees it
  connected_ = false;
  if (up_.exchange(false)) log::warn("broker_live_down", {{"broker", endpoint_.name}});
  lost_once_ = true;
  // What was leaving is gone with the connection; the rest is subscribed again on reconnect.
  for (auto it = watched_.begin(); it != watched_.end();) {
    Watch& w = it->second;
    w.confirmed = false;
    if (w.leaving && !w.rewatch) {
      it = watched_.erase(it);
      continue;
    }
    w.leaving = w.rewatch = false;
    ++it;
  }
  figures_.watched.store(watched_.size(), std::memory_order_relaxed);
  retry_later();
}

void LiveLink::subscribe(const std::vector<std::string>& agents) {
  if (!connected_ || ac_ == nullptr || agents.empty()) return;
  // At most 512 channels per command, so a reconnect with many watched agents sends bounded commands.
  for (std::size_t from = 0; from < agents.size(); from += 512) {
    std::vector<std::string> channels{"SUBSCRIBE"};
    for (std::size_t i = from; i < std::min(agents.size(), from + 512); ++i)
      channels.push_back(channel_of(agents[i]));
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& c : channels) {
      argv.push_back(c.data());
      lens.push_back(c.size());
    }
    redisAsyncCommandArgv(
        ac_,
        [](redisAsyncContext* c, void* reply, void*) {
          if (c->data != nullptr) static_cast<LiveLink*>(c->data)->on_reply(static_cast<redisReply*>(reply));
        },
        nullptr, static_cast<int>(argv.size()), argv.data(), lens.data());
  }
}

void LiveLink::on_reply(redisReply* reply) {
  if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
  std::string_view kind = reply_text(reply->element[0]);
  std::string_view channel = reply_text(reply->element[1]);
  // prefix + "{" + agent + "}:live"
  if (channel.size() < prefix_.size() + 7) return;
  std::string_view agent = channel.substr(prefix_.size() + 1, channel.size() - prefix_.size() - 7);
  if (kind == "message") {
    figures_.messages.fetch_add(1, std::memory_order_relaxed);
    callbacks_.message(agent, reply_text(reply->element[2]));
    return;
  }
  auto it = watched_.find(std::string(agent));
  if (it == watched_.end()) return;
  Watch& w = it->second;
  if (kind == "unsubscribe") {
    if (!w.leaving) return;
    w.leaving = false;
    if (!w.rewatch) {
      watched_.erase(it);
      figures_.watched.store(watched_.size(), std::memory_order_relaxed);
      return;
    }
    w.rewatch = false;
    subscribe({it->first});
    return;
  }
  if (kind != "subscribe" || w.leaving) return;
  w.confirmed = true;
  for (auto& p : w.waiters) p->set_value();
  w.waiters.clear();
  if (w.after_reconnect) {
    w.after_reconnect = false;
    callbacks_.resubscribed(it->first);
  }
}

void LiveLink::watch(const std::string& agent_id, std::shared_ptr<std::promise<void>> subscribed) {
  auto [it, fresh] = watched_.try_emplace(agent_id);
  figures_.watched.store(watched_.size(), std::memory_order_relaxed);
  Watch& w = it->second;
  if (w.leaving) {
    w.rewatch = true;  // subscribed again once the UNSUBSCRIBE is answered
    w.waiters.push_back(std::move(subscribed));
    return;
  }
  if (!connected_ || w.confirmed) {
    subscribed->set_value();  // down: the resubscription after the reconnect tells the hub
    if (!connected_) w.after_reconnect = true;
    return;
  }
  w.waiters.push_back(std::move(subscribed));
  if (fresh) subscribe({agent_id});
}

void LiveLink::unwatch(const std::string& agent_id) {
  auto it = watched_.find(agent_id);
  if (it == watched_.end()) return;
  Watch& w = it->second;
  if (w.leaving) {
    w.rewatch = false;
    return;
  }
  for (auto& p : w.waiters) p->set_value();
  if (!connected_ || ac_ == nullptr || !w.confirmed) {
    // Down, or not confirmed yet: nothing to undo in Redis now (a pending SUBSCRIBE is answered and
    // then finds no entry; a reconnect subscribes only to what is watched).
    watched_.erase(it);
    figures_.watched.store(watched_.size(), std::memory_order_relaxed);
    return;
  }
  w.leaving = true;
  w.confirmed = false;
  w.waiters.clear();
  const std::string channel = channel_of(agent_id);
  const char* argv[] = {"UNSUBSCRIBE", channel.data()};
  std::size_t lens[] = {11, channel.size()};
  redisAsyncCommandArgv(ac_, nullptr, nullptr, 2, argv, lens);
}

}  // namespace aw::broker::redis
