// The shared broker's directory (Draft::directory): which agent's channel an id (a workflow's, a
// stream's) leads to, the agents listed with how many things they hold, and the open ids by last
// activity, so that any node finds, lists and times out what another node made. Writer thread only,
// on the writer's connections (RedisInstance).
//
// Keys: `aw:dir:{<id>}` → agent id, on the instance the id hashes to (its own hash tag: Redis Cluster
// friendly); on the agent's instance, `aw:listing` (a sorted set of agent ids, score 0, paged by
// ZRANGEBYLEX) with `aw:listing:counts` (agent → "<count> <updated ms>"), and `aw:active` (a sorted
// set of "<id> <agent id>" by last activity in ms).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker/broker.hpp"
#include "broker/redis/redis_instance.hpp"

namespace aw::broker::redis {

class Directory {
 public:
  explicit Directory(std::vector<std::unique_ptr<RedisInstance>>& instances) : instances_(instances) {}

  // Before the batch is stored: its new ids lead to their channels (a batch that then fails leaves
  // entries naming what does not exist, which the agent's state answers with the usual 404). Throws
  // BrokerError, and then nothing of the batch is to be stored.
  void write_added(const Batch& batch);
  // After: for the drafts that were stored, removed ids, the listing and the activity. Never throws
  // (the batch is stored); a failure is logged and leaves the directory behind until the next change.
  void write_stored(const Batch& batch) noexcept;

  std::optional<std::string> find(std::string_view id);
  std::vector<ListedChannel> listed(std::string_view after, std::size_t limit);
  std::vector<IdleName> claim_idle(std::int64_t before_ms, std::int64_t now_ms, std::size_t limit);

 private:
  RedisInstance& instance_of(std::string_view id);

  std::vector<std::unique_ptr<RedisInstance>>& instances_;
};

}  // namespace aw::broker::redis
