// Tests for the shared broker on Redis against real redis-server processes, each started by the test on a
// free loopback port in its own temporary directory (AOF, appendfsync always), never the system service:
// numbering across batches, Idempotency-Key duplicates, the epoch set once, replay ranges, history trimmed
// by size, state records, channels spread over two instances, an unreachable Redis, a restarted one, and
// the per-instance figures stats and metrics show. Skipped with a message when redis-server is missing.
#include "broker/redis/redis_broker.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "broker/redis/reply.hpp"

namespace aw::broker::redis {
namespace {

using namespace std::chrono_literals;

std::optional<std::string> redis_server_path() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/usr/local/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = dir + "/redis-server";
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

std::uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// One redis-server of the test's own; stopped (SIGKILL) and its directory removed with the object.
class RedisServer {
 public:
  explicit RedisServer(const std::string& binary)
      : binary_(binary),
        port_(free_port()),
        dir_(std::filesystem::temp_directory_path() / ("aw-redis-XXXXXX")) {
    std::string templ = dir_.string();
    dir_ = ::mkdtemp(templ.data());
    start();
  }
  ~RedisServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  void start() {
    const std::string port = std::to_string(port_);
    const std::string dir = dir_.string();
    pid_ = ::fork();
    if (pid_ == 0) {
      // Only async-signal-safe calls between fork and exec: the parent may have threads (a broker's).
      const int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execl(binary_.c_str(), binary_.c_str(), "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "yes", "--appendfsync", "always", "--dir", dir.c_str(), "--daemonize", "no",
              static_cast<char*>(nullptr));
      ::_exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!answers()) {
      if (std::chrono::steady_clock::now() > deadline)
        FAIL() << "redis-server on port " << port_ << " never answered";
      std::this_thread::sleep_for(10ms);  // polling for the PONG
    }
  }
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  Endpoint endpoint(unsigned db = 0) const {
    return {"127.0.0.1", port_, db, "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db)};
  }
  // EXISTS key, on a connection of the test's own.
  bool exists(const std::string& key) const {
    redisContext* c = redisConnect("127.0.0.1", port_);
    auto* r = static_cast<redisReply*>(redisCommand(c, "EXISTS %b", key.data(), key.size()));
    const bool found = r != nullptr && r->integer == 1;
    freeReplyObject(r);
    redisFree(c);
    return found;
  }
  // An integer-answering command (e.g. PTTL), on a connection of the test's own.
  long long integer(const std::vector<std::string>& args) const {
    redisContext* c = redisConnect("127.0.0.1", port_);
    std::vector<const char*> argv;
    std::vector<std::size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lens.data()));
    const long long n = r != nullptr && r->type == REDIS_REPLY_INTEGER ? r->integer : -100;
    freeReplyObject(r);
    redisFree(c);
    return n;
  }

 private:
  bool answers() const {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    bool ok = false;
    if (c != nullptr && c->err == 0) {
      auto* r = static_cast<redisReply*>(redisCommand(c, "PING"));
      ok = r != nullptr && r->type == REDIS_REPLY_STATUS;
      freeReplyObject(r);
    }
    if (c != nullptr) redisFree(c);
    return ok;
  }

  std::string binary_;
  std::uint16_t port_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

RedisBrokerOptions options_for(std::vector<Endpoint> endpoints, std::size_t history_size = 1000) {
  RedisBrokerOptions o;
  o.endpoints = std::move(endpoints);
  o.timeout = 1000ms;
  o.history_size = history_size;
  o.history_ttl_ms = 3'600'000;
  return o;
}

// A batch of `drafts` events per channel, with optional Idempotency-Keys.
Batch batch_of(const std::vector<std::string>& agents, std::size_t drafts,
               const std::string& epoch = "epoch-1", const std::vector<std::string>& keys = {}) {
  Batch b;
  b.ts_ms = 1'700'000'000'000;
  for (std::size_t c = 0; c < agents.size(); ++c) {
    b.channels.push_back({agents[c], epoch, 0, false});
    for (std::size_t d = 0; d < drafts; ++d) {
      Draft dr;
      dr.channel = c;
      dr.type = "update";
      dr.data = "{\"n\":" + std::to_string(d) + "}";
      if (d < keys.size()) dr.idempotency_key = keys[d];
      b.drafts.push_back(std::move(dr));
    }
  }
  return b;
}

std::vector<std::uint64_t> seqs_of(const Batch& b) {
  std::vector<std::uint64_t> out;
  for (const Draft& d : b.drafts) out.push_back(d.event ? d.event->seq : 0);
  return out;
}

std::vector<std::uint64_t> replayed(RedisBroker& broker, const std::string& agent, std::uint64_t after,
                                    std::size_t stop_after = SIZE_MAX) {
  std::vector<std::uint64_t> out;
  broker.replay(agent, after, [&](EventPtr ev) {
    out.push_back(ev->seq);
    return out.size() < stop_after;
  });
  return out;
}

class RedisBrokerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    binary_ = redis_server_path();
    if (!binary_) GTEST_SKIP() << "redis-server is not installed (scripts/deps.sh test installs it)";
    redis_ = std::make_unique<RedisServer>(*binary_);
  }
  std::optional<std::string> binary_;
  std::unique_ptr<RedisServer> redis_;
};

TEST_F(RedisBrokerTest, CommitNumbersEachChannelAcrossBatches) {
  RedisBroker broker(options_for({redis_->endpoint()}));
  Batch first = batch_of({"a", "b"}, 3);
  broker.commit(first);
  EXPECT_EQ(seqs_of(first), (std::vector<std::uint64_t>{1, 2, 3, 1, 2, 3}));
  EXPECT_EQ(first.channels[0].last_seq, 3u);
  EXPECT_TRUE(first.channels[0].registered);
  EXPECT_EQ(first.drafts[1].event->data(), "{\"n\":1}");
  EXPECT_EQ(first.drafts[1].event->agent_id(), "a");
  Batch second = batch_of({"a"}, 2);
  broker.commit(second);
  EXPECT_EQ(seqs_of(second), (std::vector<std::uint64_t>{4, 5}));
  auto pos = broker.find_channel("a");
  ASSERT_TRUE(pos);
  EXPECT_EQ(pos->last_seq, 5u);
  EXPECT_EQ(broker.find_channel("b")->last_seq, 3u);
  EXPECT_FALSE(broker.find_channel("never"));
}

TEST_F(RedisBrokerTest, AnIdempotencyKeySeenBeforeAnswersWithItsSeq) {
  RedisBroker broker(options_for({redis_->endpoint()}));
  Batch first = batch_of({"a"}, 2, "e", {"k1", ""});
  broker.commit(first);
  EXPECT_EQ(seqs_of(first), (std::vector<std::uint64_t>{1, 2}));
  // Again in a later batch, and twice within one: each answers with the first seq, nothing is numbered.
  Batch again = batch_of({"a"}, 3, "e", {"k1", "k2", "k2"});
  broker.commit(again);
  EXPECT_FALSE(again.drafts[0].event);
  EXPECT_EQ(again.drafts[0].duplicate_of, 1u);
  ASSERT_TRUE(again.drafts[1].event);
  EXPECT_EQ(again.drafts[1].event->seq, 3u);
  EXPECT_EQ(again.drafts[1].event->idempotency_key, "k2");
  EXPECT_FALSE(again.drafts[2].event);
  EXPECT_EQ(again.drafts[2].duplicate_of, 3u);
  EXPECT_EQ(replayed(broker, "a", 0), (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_F(RedisBrokerTest, EveryNodeNamesAnUnpublishedChannelAlikeAndTheFirstPublishKeepsIt) {
  RedisBroker node1(options_for({redis_->endpoint()}));
  RedisBroker node2(options_for({redis_->endpoint()}));
  const std::string epoch = node1.open_channel("a", "first").epoch;
  EXPECT_FALSE(epoch.empty());
  EXPECT_EQ(node2.open_channel("a", "second").epoch, epoch);
  EXPECT_FALSE(node1.find_channel("a"));  // opening wrote nothing
  Batch b = batch_of({"a"}, 1, "third");
  node2.commit(b);
  EXPECT_EQ(b.channels[0].epoch, epoch);
  EXPECT_EQ(node1.find_channel("a")->epoch, epoch);
  EXPECT_EQ(node1.open_channel("a", "fourth").epoch, epoch);
  EXPECT_NE(node1.open_channel("c", "").epoch, epoch);  // another channel, another name
}

TEST_F(RedisBrokerTest, ReplayReadsTheRangeAfterASeqAndStopsWhenAsked) {
  RedisBroker broker(options_for({redis_->endpoint()}));
  for (int i = 0; i < 3; ++i) {
    Batch b = batch_of({"a"}, 100);
    broker.commit(b);
  }
  auto all = replayed(broker, "a", 0);
  ASSERT_EQ(all.size(), 300u);  // more than one page of XRANGE (256)
  for (std::size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i], i + 1);
  EXPECT_EQ(replayed(broker, "a", 297), (std::vector<std::uint64_t>{298, 299, 300}));
  EXPECT_EQ(replayed(broker, "a", 10, 2), (std::vector<std::uint64_t>{11, 12}));
  EXPECT_TRUE(replayed(broker, "a", 300).empty());
  EXPECT_TRUE(replayed(broker, "nobody", 0).empty());
}

TEST_F(RedisBrokerTest, HistoryIsTrimmedBySizeButNumberingGoesOn) {
  RedisBroker broker(options_for({redis_->endpoint()}, 10));
  for (int i = 0; i < 10; ++i) {
    Batch b = batch_of({"a"}, 100);
    broker.commit(b);
  }
  auto kept = replayed(broker, "a", 0);
  // MAXLEN ~ trims whole Stream nodes: at least the newest 10 stay, most of the 1,000 go.
  ASSERT_GE(kept.size(), 10u);
  EXPECT_LT(kept.size(), 500u);
  EXPECT_EQ(kept.back(), 1000u);
  for (std::size_t i = 1; i < kept.size(); ++i) EXPECT_EQ(kept[i], kept[i - 1] + 1);
  EXPECT_EQ(broker.find_channel("a")->last_seq, 1000u);
  Batch next = batch_of({"a"}, 1);
  broker.commit(next);
  EXPECT_EQ(seqs_of(next), (std::vector<std::uint64_t>{1001}));
}

TEST_F(RedisBrokerTest, TheStreamOutlivesItsLastEventByTheTtlWithoutAnExpiryPerPublish) {
  RedisBroker broker(options_for({redis_->endpoint()}));  // --history-ttl 3,600 s: 450 s of slack
  constexpr long long ttl = 3'600'000, slack = ttl / 8;
  Batch first = batch_of({"t"}, 1);
  broker.commit(first);
  const long long set = redis_->integer({"PTTL", "aw:{t}:events"});
  EXPECT_GT(set, ttl);
  EXPECT_LE(set, ttl + slack);
  // More than the TTL is still left 1 s later: the expiry is not written again (it is what was left).
  redis_->integer({"PEXPIRE", "aw:{t}:events", "2000000"});
  Batch soon = batch_of({"t"}, 1);
  soon.ts_ms = first.ts_ms + 1000;
  broker.commit(soon);
  EXPECT_LE(redis_->integer({"PTTL", "aw:{t}:events"}), 2'000'000);
  // Once less than the TTL would be left after an event, the expiry is pushed out again.
  Batch later = batch_of({"t"}, 1);
  later.ts_ms = first.ts_ms + slack + 1000;
  broker.commit(later);
  EXPECT_GT(redis_->integer({"PTTL", "aw:{t}:events"}), ttl);
  EXPECT_EQ(seqs_of(later), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(replayed(broker, "t", 0), (std::vector<std::uint64_t>{1, 2, 3}));
}

TEST_F(RedisBrokerTest, LoadStateHasTheRecordsSetAndNotTheErasedOrColdOnes) {
  RedisBroker broker(options_for({redis_->endpoint()}));
  Batch b = batch_of({"a"}, 1);
  b.drafts[0].records = {{"a", "workflow", "w1", "{\"phase\":\"design\"}"},
                         {"a", "workflow", "w2", "{\"phase\":\"review\"}"},
                         {"a", std::string(1, store::kColdKindPrefix) + "text", "s1", "\"cold\""}};
  broker.commit(b);
  Batch c = batch_of({"a"}, 1);
  c.drafts[0].records = {{"a", "workflow", "w1", "{\"phase\":\"implementation\"}"},
                         {"a", "workflow", "w2", ""}};
  broker.commit(c);
  auto state = broker.load_state("a");
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].agent_id, "a");
  EXPECT_EQ(state[0].kind, "workflow");
  EXPECT_EQ(state[0].id, "w1");
  EXPECT_EQ(state[0].json, "{\"phase\":\"implementation\"}");
  EXPECT_TRUE(broker.load_state("nobody").empty());
}

TEST_F(RedisBrokerTest, TwoInstancesEachHoldTheAgentsInstanceOfPicks) {
  RedisServer second(*binary_);
  RedisBroker broker(options_for({redis_->endpoint(), second.endpoint()}));
  std::vector<std::string> agents;
  for (int i = 0; i < 40; ++i) agents.push_back("spread-" + std::to_string(i));
  Batch b = batch_of(agents, 2);
  broker.commit(b);
  std::size_t on[2] = {0, 0};
  for (const auto& a : agents) {
    const std::size_t i = RedisBroker::instance_of(a, 2);
    ASSERT_LT(i, 2u);
    ++on[i];
    const std::string meta = "aw:{" + a + "}:meta";
    EXPECT_EQ(redis_->exists(meta), i == 0) << a;
    EXPECT_EQ(second.exists(meta), i == 1) << a;
    EXPECT_EQ(broker.find_channel(a)->last_seq, 2u) << a;
  }
  EXPECT_GE(on[0], 5u);
  EXPECT_GE(on[1], 5u);
  for (const auto& a : agents) {
    EXPECT_EQ(RedisBroker::instance_of(a, 1), 0u);
    EXPECT_EQ(RedisBroker::instance_of(a, 2), RedisBroker::instance_of(a, 2));  // stable
    // Adding a third instance moves an agent only to the new one (jump consistent hash).
    const std::size_t three = RedisBroker::instance_of(a, 3);
    EXPECT_TRUE(three == RedisBroker::instance_of(a, 2) || three == 2u) << a;
  }
  auto health = broker.health();
  ASSERT_EQ(health.size(), 2u);
  EXPECT_EQ(health[0].events + health[1].events, 80u);
  EXPECT_EQ(health[0].events, 2 * on[0]);
}

// A script that runs for about 300 ms.
constexpr const char* kSlowScript = R"lua(
local t0 = redis.call('TIME')
repeat
  local t = redis.call('TIME')
until (t[1] - t0[1]) * 1000000 + (t[2] - t0[2]) > 300000
return ARGV[1]
)lua";

TEST_F(RedisBrokerTest, ScriptsSentBehindOneAnotherAreAnsweredInOrderAroundOtherCommands) {
  RedisInstance inst(redis_->endpoint(), 2000ms);
  const std::string echo = "return ARGV[1]";
  const std::uint64_t a = inst.eval_send(kSlowScript, {"a"});
  const std::uint64_t b = inst.eval_send(echo, {"b"});
  EXPECT_FALSE(inst.answered(a, 10ms));  // still running
  // A command sent now is answered after both: their answers are read first and kept.
  EXPECT_EQ(reply_text(inst.command({"ECHO", "c"}).get()), "c");
  EXPECT_TRUE(inst.answered(b, 0ms));
  EXPECT_EQ(reply_text(inst.eval_take(a, kSlowScript, {"a"}).get()), "a");
  EXPECT_EQ(reply_text(inst.eval_take(b, echo, {"b"}).get()), "b");
  EXPECT_EQ(inst.figures().batches.load(), 2u);
}

TEST_F(RedisBrokerTest, AnAnswerStillToComeIsWaitedForAtMostTheTimeGiven) {
  RedisInstance inst(redis_->endpoint(), 2000ms);
  const std::uint64_t t = inst.eval_send(kSlowScript, {"x"});
  EXPECT_FALSE(inst.answered(t, 10ms));
  bool there = false;
  for (int i = 0; i < 200 && !there; ++i) there = inst.answered(t, 50ms);
  EXPECT_TRUE(there);
  EXPECT_EQ(reply_text(inst.eval_take(t, kSlowScript, {"x"}).get()), "x");
}

TEST_F(RedisBrokerTest, AnAnswerLateByTheTimeoutIsTakenAndFailsOrArrives) {
  RedisInstance inst(redis_->endpoint(), 100ms);
  const std::uint64_t t = inst.eval_send(kSlowScript, {"x"});
  std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(inst.answered(t, 0ms));  // not answered, but waited for as long as an answer is
  try {
    EXPECT_EQ(reply_text(inst.eval_take(t, kSlowScript, {"x"}).get()), "x");  // a slow machine
  } catch (const BrokerError& e) {
    EXPECT_EQ(e.kind(), BrokerError::Kind::unavailable) << e.what();
  }
}

TEST_F(RedisBrokerTest, AScriptTheServerForgotIsRunWhenItsAnswerIsTaken) {
  RedisInstance inst(redis_->endpoint(), 2000ms);
  const std::string echo = "return ARGV[1]";
  EXPECT_EQ(reply_text(inst.eval(echo, {"loaded"}).get()), "loaded");
  redis_->integer({"SCRIPT", "FLUSH"});
  const std::uint64_t t = inst.eval_send(echo, {"again"});  // NOSCRIPT: nothing of it ran
  EXPECT_EQ(reply_text(inst.eval_take(t, echo, {"again"}).get()), "again");
}

TEST_F(RedisBrokerTest, EveryBatchInFlightOnALostConnectionIsUnavailable) {
  RedisInstance inst(redis_->endpoint(), 2000ms);
  const std::uint64_t a = inst.eval_send(kSlowScript, {"a"});
  const std::uint64_t b = inst.eval_send("return 1", {});
  redis_->stop();
  for (std::uint64_t t : {a, b}) {
    try {
      inst.eval_take(t, "", {});
      ADD_FAILURE() << "ticket " << t << " answered";
    } catch (const BrokerError& e) {
      EXPECT_EQ(e.kind(), BrokerError::Kind::unavailable) << e.what();
    }
  }
  EXPECT_EQ(inst.figures().errors.load(), 2u);
}

TEST_F(RedisBrokerTest, AStoppedRedisIsUnavailableWithinTheTimeout) {
  RedisBroker broker(options_for({redis_->endpoint()}));
  Batch b = batch_of({"a"}, 1);
  broker.commit(b);
  redis_->stop();
  for (int attempt = 0; attempt < 3; ++attempt) {
    Batch again = batch_of({"a"}, 1);
    const auto started = std::chrono::steady_clock::now();
    try {
      broker.commit(again);
      ADD_FAILURE() << "commit to a stopped Redis succeeded";
    } catch (const BrokerError& e) {
      EXPECT_EQ(e.kind(), BrokerError::Kind::unavailable) << e.what();
    }
    // Within the 1 s timeout, with room for a busy machine.
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    EXPECT_THROW(broker.find_channel("a"), BrokerError);
  }
  EXPECT_GE(broker.health()[0].errors, 3u);
}

TEST_F(RedisBrokerTest, NothingListeningIsUnavailableToo) {
  RedisBrokerOptions o = options_for({{"127.0.0.1", free_port(), 0, "redis://127.0.0.1:1/0"}});
  RedisBroker broker(o);
  Batch b = batch_of({"a"}, 1);
  try {
    broker.commit(b);
    FAIL() << "commit without a Redis succeeded";
  } catch (const BrokerError& e) {
    EXPECT_EQ(e.kind(), BrokerError::Kind::unavailable) << e.what();
  }
  EXPECT_FALSE(broker.health()[0].up);
}

TEST_F(RedisBrokerTest, ACommitAfterARestartReconnectsAndNumberingContinues) {
  RedisBroker broker(options_for({redis_->endpoint()}));
  Batch b = batch_of({"a"}, 3);
  broker.commit(b);
  const std::string epoch = b.channels[0].epoch;
  redis_->stop();
  redis_->start();  // same port and directory: the AOF brings the channel back
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  std::optional<std::uint64_t> seq;
  while (!seq) {
    Batch again = batch_of({"a"}, 1);
    try {
      broker.commit(again);
      seq = again.drafts[0].event->seq;
      EXPECT_EQ(again.channels[0].epoch, epoch);
    } catch (const BrokerError& e) {
      ASSERT_EQ(e.kind(), BrokerError::Kind::unavailable) << e.what();
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "no commit after the restart: " << e.what();
      std::this_thread::sleep_for(50ms);  // pacing only: the writer retries a connection every 200 ms
    }
  }
  EXPECT_EQ(*seq, 4u);
  EXPECT_EQ(replayed(broker, "a", 0), (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_GE(broker.health()[0].reconnects, 1u);
}

TEST_F(RedisBrokerTest, ARedisBackSoonAfterTheLastConnectIsUsedAtOnce) {
  RedisBroker broker(options_for({redis_->endpoint()}));
  Batch b = batch_of({"a"}, 1);
  broker.commit(b);
  redis_->stop();
  redis_->start();
  // The batch sent on the dead connection fails (a script is never sent twice); the next one connects
  // again at once: only a failed connection attempt holds the next one back (200 ms), not the last
  // successful one.
  Batch lost = batch_of({"a"}, 1);
  EXPECT_THROW(broker.commit(lost), BrokerError);
  Batch next = batch_of({"a"}, 1);
  ASSERT_NO_THROW(broker.commit(next));
  EXPECT_EQ(next.drafts[0].event->seq, 2u);
}

// Hears what a shared broker tells its node.
class Listener final : public BrokerListener {
 public:
  void on_events(std::string agent_id, std::vector<EventPtr> events, std::vector<StateChange>) override {
    std::lock_guard lock(mutex_);
    for (auto& e : events) seen_.push_back(agent_id + ":" + std::to_string(e->seq));
  }
  void on_resubscribed(std::string agent_id) override {
    std::lock_guard lock(mutex_);
    seen_.push_back(agent_id + ":resubscribed");
  }
  std::vector<std::string> wait_for(std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    for (;;) {
      {
        std::lock_guard lock(mutex_);
        if (seen_.size() >= n || std::chrono::steady_clock::now() > deadline) return seen_;
      }
      std::this_thread::sleep_for(5ms);  // polling for the io thread's callbacks
    }
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> seen_;
};

TEST_F(RedisBrokerTest, AWatchedChannelHearsAnotherNodesEventsAndIsCounted) {
  // watch() waits for Redis's confirmation up to the timeout: generous, for a busy machine.
  RedisBrokerOptions slow = options_for({redis_->endpoint()});
  slow.timeout = 20s;
  RedisBroker watcher(slow);
  RedisBroker publisher(options_for({redis_->endpoint()}));
  Listener listener;
  watcher.set_listener(&listener);
  // The pub/sub link connects on its own thread; a watch before it is up would only be subscribed later.
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (!watcher.health()[0].up) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the pub/sub link never came up";
    std::this_thread::sleep_for(5ms);  // polling for the io thread's connect
  }
  watcher.watch("a");
  EXPECT_EQ(watcher.health()[0].watched, 1u);
  Batch b = batch_of({"a", "b"}, 2);
  publisher.commit(b);
  EXPECT_EQ(listener.wait_for(2), (std::vector<std::string>{"a:1", "a:2"}));
  auto w = watcher.health()[0];
  EXPECT_TRUE(w.up);
  EXPECT_EQ(w.messages, 1u);  // one PUBLISH per channel per batch
  EXPECT_EQ(w.events, 0u);
  auto p = publisher.health()[0];
  EXPECT_EQ(p.batches, 1u);
  EXPECT_EQ(p.events, 4u);
  EXPECT_EQ(p.errors, 0u);
  EXPECT_GT(p.commit_us_sum, 0u);
  watcher.count_backfill("a");
  EXPECT_EQ(watcher.health()[0].gaps_backfilled, 1u);
  watcher.unwatch("a");
  watcher.set_listener(nullptr);
}

}  // namespace
}  // namespace aw::broker::redis
