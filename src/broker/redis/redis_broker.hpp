// The shared broker: channels numbered, stored and replayed in Redis, so any number of nodes serve any
// agent. Each agent lives on one of the instances, picked by a stable (jump consistent) hash of its id.
// A batch is one script run per instance it touches (batch_script.hpp), which applies each workflow
// command only if the channel's state version is still the one it was decided against; reads are
// XRANGE/HMGET and a small state script on the writer's blocking connection (RedisInstance); live
// events, with their state records, arrive over pub/sub on the broker's own io thread (LiveLink) and
// go to the listener.
#pragma once
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <thread>

#include "broker/broker.hpp"
#include "broker/redis/directory.hpp"
#include "broker/redis/live_link.hpp"
#include "broker/redis/redis_instance.hpp"

namespace aw::broker::redis {

struct RedisBrokerOptions {
  std::vector<Endpoint> endpoints;
  std::chrono::milliseconds timeout{2000};
  std::size_t history_size = 1000;  // Stream length kept per channel (about)
  std::int64_t history_ttl_ms = 0;  // Stream and idempotency keys expire this long after their event
};

class RedisBroker final : public Broker {
 public:
  explicit RedisBroker(RedisBrokerOptions options);
  ~RedisBroker() override;

  std::vector<ChannelPosition> load_channels() override { return {}; }  // loaded when needed
  void load_recent(std::int64_t, const std::function<void(std::string_view, EventPtr)>&) override {}
  std::optional<ChannelPosition> find_channel(std::string_view agent_id) override;
  void replay(std::string_view agent_id, std::uint64_t after_seq,
              const std::function<bool(EventPtr event)>& visit) override;
  std::vector<store::StateRecord> load_state(std::string_view agent_id) override;
  std::optional<std::uint64_t> seq_of_key(std::string_view agent_id, std::string_view key) override;
  VersionedState load_versioned_state(std::string_view agent_id, std::optional<std::uint64_t> known) override;
  std::optional<std::string> load_cold_record(std::string_view agent_id, std::string_view kind,
                                              std::string_view id) override;
  void commit(Batch& batch) override;
  bool pipelines_commits() const noexcept override { return true; }
  std::unique_ptr<CommitTicket> send_commit(Batch& batch) override;
  void finish_commit(Batch& batch, std::unique_ptr<CommitTicket> sent) override;
  bool commit_answered(const CommitTicket& sent, std::chrono::microseconds wait) override;
  void trim(std::size_t, std::int64_t) override {}  // MAXLEN and expiry trim as they go
  store::StoreStats stats() override { return {}; }
  bool durable() const noexcept override { return true; }
  std::string_view name() const noexcept override { return "redis"; }

  bool shared() const noexcept override { return true; }
  ChannelPosition open_channel(std::string_view agent_id, const std::string& candidate_epoch) override;
  void watch(std::string_view agent_id) override;
  void unwatch(std::string_view agent_id) override;
  void set_listener(BrokerListener* listener) override;
  std::vector<InstanceHealth> health() override;
  void count_backfill(std::string_view agent_id) override;
  std::optional<std::string> find_name(std::string_view id) override { return directory_.find(id); }
  std::vector<ListedChannel> listed_channels(std::string_view after, std::size_t limit) override {
    return directory_.listed(after, limit);
  }
  std::vector<IdleName> claim_idle(std::int64_t before_ms, std::int64_t now_ms, std::size_t limit) override {
    return directory_.claim_idle(before_ms, now_ms, limit);
  }

  // The instance an agent lives on, of `n`.
  static std::size_t instance_of(std::string_view agent_id, std::size_t n);

 private:
  RedisInstance& instance(std::string_view agent_id);
  // The epoch of a channel no node has published to yet: the same on every node (writer thread).
  std::string epoch_for(std::string_view agent_id);
  void on_message(std::string_view agent_id, std::string_view payload);

  RedisBrokerOptions options_;
  std::vector<std::unique_ptr<RedisInstance>> instances_;  // writer thread
  Directory directory_{instances_};                        // writer thread
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::vector<std::unique_ptr<LiveLink>> links_;  // io thread
  std::string live_prefix_;
  BrokerListener* listener_ = nullptr;  // io thread
  std::thread thread_;
};

}  // namespace aw::broker::redis
