#include "broker/redis/directory.hpp"

#include <algorithm>
#include <charconv>
#include <map>

#include "broker/redis/redis_broker.hpp"
#include "broker/redis/reply.hpp"
#include "core/log.hpp"

namespace aw::broker::redis {
namespace {

constexpr std::string_view kListing = "aw:listing";
constexpr std::string_view kCounts = "aw:listing:counts";
constexpr std::string_view kActive = "aw:active";

// One agent's listing entry moved by a count change and a time, atomically (two nodes may change the
// same agent at once); gone when its count reaches 0.
// KEYS[1] listing, KEYS[2] counts; ARGV agent, change, updated ms.
constexpr std::string_view kListScript = R"lua(
local cur = redis.call('HGET', KEYS[2], ARGV[1])
local n, t = 0, 0
if cur then
  local sp = string.find(cur, ' ')
  n = tonumber(string.sub(cur, 1, sp - 1))
  t = tonumber(string.sub(cur, sp + 1))
end
n = n + tonumber(ARGV[2])
if tonumber(ARGV[3]) > t then t = tonumber(ARGV[3]) end
if n <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[1], ARGV[1])
else
  redis.call('HSET', KEYS[2], ARGV[1], string.format('%d %d', n, t))
  redis.call('ZADD', KEYS[1], 0, ARGV[1])
end
return n
)lua";

// Open ids last active before ARGV[1], at most ARGV[3], each claimed by moving its activity to ARGV[2]:
// one node takes each, and takes it again only after it has stayed idle that long once more.
// KEYS[1] active.
constexpr std::string_view kClaimScript = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], m) end
return due
)lua";

std::string dir_key(std::string_view id) {
  std::string k = "aw:dir:{";
  k.append(id).append("}");
  return k;
}

std::string active_member(std::string_view id, std::string_view agent_id) {
  std::string m(id);
  m.append(" ").append(agent_id);
  return m;
}

}  // namespace

RedisInstance& Directory::instance_of(std::string_view id) {
  return *instances_[RedisBroker::instance_of(id, instances_.size())];
}

void Directory::write_added(const Batch& batch) {
  std::vector<std::vector<std::vector<std::string>>> commands(instances_.size());
  for (const Draft& d : batch.drafts) {
    for (const std::string& id : d.directory.added) {
      commands[RedisBroker::instance_of(id, instances_.size())].push_back(
          {"SET", dir_key(id), batch.channels[d.channel].agent_id});
    }
  }
  for (std::size_t i = 0; i < commands.size(); ++i) {
    if (!commands[i].empty()) instances_[i]->pipeline(commands[i]);
  }
}

void Directory::write_stored(const Batch& batch) noexcept {
  const std::size_t n = instances_.size();
  std::vector<std::vector<std::vector<std::string>>> commands(n);
  const std::string now = std::to_string(batch.ts_ms);
  // Per channel: its listing's count change and whether it changed, summed over the batch.
  std::map<std::size_t, std::pair<int, bool>> listing;
  for (const Draft& d : batch.drafts) {
    const DirectoryChange& c = d.directory;
    if (!d.event || c.empty()) continue;  // not stored (a duplicate), or nothing to write
    const std::string& agent = batch.channels[d.channel].agent_id;
    auto& home = commands[RedisBroker::instance_of(agent, n)];
    for (const std::string& id : c.removed)
      commands[RedisBroker::instance_of(id, n)].push_back({"DEL", dir_key(id)});
    for (const std::string& id : c.active)
      home.push_back({"ZADD", std::string(kActive), now, active_member(id, agent)});
    for (const std::string& id : c.closed)
      home.push_back({"ZREM", std::string(kActive), active_member(id, agent)});
    if (c.counted != 0 || c.listed) {
      auto& [count, changed] = listing[d.channel];
      count += c.counted;
      changed = true;
    }
  }
  for (const auto& [channel, change] : listing) {
    const std::string& agent = batch.channels[channel].agent_id;
    commands[RedisBroker::instance_of(agent, n)].push_back({"EVAL", std::string(kListScript), "2",
                                                            std::string(kListing), std::string(kCounts),
                                                            agent, std::to_string(change.first), now});
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (commands[i].empty()) continue;
    try {
      instances_[i]->pipeline(commands[i]);
    } catch (const std::exception& e) {
      log::warn("directory_write_failed", {{"broker", instances_[i]->endpoint().name}, {"error", e.what()}});
    }
  }
}

std::optional<std::string> Directory::find(std::string_view id) {
  Reply r = instance_of(id).command({"GET", dir_key(id)});
  if (r->type != REDIS_REPLY_STRING) return std::nullopt;
  return std::string(r->str, r->len);
}

std::vector<ListedChannel> Directory::listed(std::string_view after, std::size_t limit) {
  const std::string from = after.empty() ? std::string("-") : "(" + std::string(after);
  const std::string count = std::to_string(limit);
  std::vector<ListedChannel> out;
  // Each instance's first `limit` after `after`, merged: the first `limit` of all are among them.
  for (auto& inst : instances_) {
    Reply ids = inst->command({"ZRANGEBYLEX", kListing, from, "+", "LIMIT", "0", count});
    if (ids->type != REDIS_REPLY_ARRAY || ids->elements == 0) continue;
    std::vector<std::string_view> args{"HMGET", kCounts};
    for (std::size_t i = 0; i < ids->elements; ++i) args.push_back(reply_text(ids->element[i]));
    Reply counts = inst->command(args);
    if (counts->type != REDIS_REPLY_ARRAY || counts->elements != ids->elements)
      throw BrokerError("redis: unexpected answer: HMGET listing", BrokerError::Kind::failed);
    for (std::size_t i = 0; i < ids->elements; ++i) {
      std::string_view entry = reply_text(counts->element[i]);
      auto sp = entry.find(' ');
      ListedChannel c{std::string(reply_text(ids->element[i])), 0, 0};
      if (sp == std::string_view::npos || !parse_number(entry.substr(0, sp), c.count) ||
          !parse_number(entry.substr(sp + 1), c.updated_ms) || c.count == 0)
        continue;  // removed between the two reads
      out.push_back(std::move(c));
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.agent_id < b.agent_id; });
  if (out.size() > limit) out.resize(limit);
  return out;
}

std::vector<IdleName> Directory::claim_idle(std::int64_t before_ms, std::int64_t now_ms, std::size_t limit) {
  std::vector<IdleName> out;
  const std::string before = std::to_string(before_ms);
  const std::string now = std::to_string(now_ms);
  const std::string most = std::to_string(limit);
  for (auto& inst : instances_) {
    if (out.size() >= limit) break;
    Reply r = inst->command({"EVAL", kClaimScript, "1", kActive, before, now, most});
    if (r->type != REDIS_REPLY_ARRAY) continue;
    for (std::size_t i = 0; i < r->elements; ++i) {
      std::string_view m = reply_text(r->element[i]);
      auto sp = m.find(' ');
      if (sp == std::string_view::npos) continue;
      out.push_back({std::string(m.substr(0, sp)), std::string(m.substr(sp + 1))});
    }
  }
  return out;
}

}  // namespace aw::broker::redis
