// The hub: seq assignment, group commits, idempotency, resume decisions, store failures, commands.
#include "hub/hub.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "broker/store_broker.hpp"
#include "store/memory_event_store.hpp"

namespace aw::hub {
using store::MemoryEventStore;
using store::StateRecord;
using store::StoredChannel;
using store::StoredEvent;
namespace {

// Collects posted work; the test drains it on its own thread, playing the part of the shard threads.
class QueueDispatcher final : public ShardDispatcher {
 public:
  unsigned shard_count() const noexcept override { return 2; }
  void post(unsigned, std::function<void()> work) override {
    std::lock_guard lock(mutex_);
    work_.push_back(std::move(work));
  }
  std::size_t drain() {
    std::vector<std::function<void()>> work;
    {
      std::lock_guard lock(mutex_);
      work.swap(work_);
    }
    for (auto& w : work) w();
    return work.size();
  }

 private:
  std::mutex mutex_;
  std::vector<std::function<void()>> work_;
};

struct RecordingSubscriber final : Subscriber {
  std::vector<std::uint64_t> seqs;
  void deliver(const EventPtr& ev) override { seqs.push_back(ev->seq); }
};

// A store that can be told to fail its next appends.
class FlakyStore final : public store::EventStore {
 public:
  std::vector<StoredChannel> load_channels() override { return {}; }
  void load_events(std::int64_t, const std::function<void(StoredEvent&&)>&) override {}
  std::optional<StoredChannel> find_channel(std::string_view) override { return std::nullopt; }
  void load_channel_events(std::string_view, std::uint64_t,
                           const std::function<bool(StoredEvent&&)>&) override {}
  std::vector<StateRecord> load_state(std::string_view) override { return {}; }
  void append(const std::vector<StoredChannel>&, const std::vector<const Event*>& events,
              const std::vector<const StateRecord*>&) override {
    if (fail_next > 0) {
      --fail_next;
      throw store::StoreError("injected failure", full);
    }
    appended += events.size();
    ++commits;
  }
  void prune(std::size_t, std::int64_t) override {}
  store::StoreStats stats() override { return {}; }
  bool durable() const noexcept override { return true; }

  int fail_next = 0;
  bool full = false;
  // Written by the hub's writer thread, read by the test.
  std::atomic<std::size_t> appended{0};
  std::atomic<std::size_t> commits{0};
};

PublishResult publish_sync(Hub& hub, const std::string& agent, const std::string& type = "t",
                           const std::string& key = "") {
  std::promise<PublishResult> p;
  auto f = p.get_future();
  hub.publish(agent, type, "{\"k\":1}", key, [&p](const PublishResult& r) { p.set_value(r); });
  EXPECT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  return f.get();
}

class HubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.history_size = 5;
    hub_ = std::make_unique<Hub>(options_, broker_, shards_);
    hub_->start();
  }
  void TearDown() override { hub_->stop(); }

  HubOptions options_;
  FlakyStore store_;
  broker::StoreBroker broker_{store_, "flaky"};
  QueueDispatcher shards_;
  std::unique_ptr<Hub> hub_;
};

TEST_F(HubTest, SeqStartsAtOnePerAgentAndGrowsByOne) {
  EXPECT_EQ(publish_sync(*hub_, "a").seq, 1u);
  EXPECT_EQ(publish_sync(*hub_, "a").seq, 2u);
  EXPECT_EQ(publish_sync(*hub_, "b").seq, 1u);
  EXPECT_EQ(publish_sync(*hub_, "a").seq, 3u);
  EXPECT_EQ(store_.appended, 4u);
}

TEST_F(HubTest, DeferredWakeCommitsABurstTogether) {
  std::vector<std::function<void()>> wakes;
  hub_->defer_wakes_on_this_thread(
      [&wakes](std::function<void()> wake) { wakes.push_back(std::move(wake)); });
  std::mutex m;
  std::condition_variable cv;
  int done = 0;
  for (int i = 0; i < 3; ++i) {
    hub_->publish("a", "t", "{}", "", [&](const PublishResult& r) {
      EXPECT_EQ(r.status, PublishResult::Status::ok);
      std::lock_guard lock(m);
      ++done;
      cv.notify_all();
    });
  }
  ASSERT_EQ(wakes.size(), 1u);  // one wake for the burst, not one per publish
  EXPECT_EQ(store_.commits, 0u);
  wakes.front()();
  {
    std::unique_lock lock(m);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return done == 3; }));
  }
  EXPECT_EQ(store_.commits, 1u);
  hub_->defer_wakes_on_this_thread({});  // this thread outlives the hub
  EXPECT_EQ(publish_sync(*hub_, "a").seq, 4u);
}

TEST_F(HubTest, LiveEventsReachSubscribersInOrder) {
  RecordingSubscriber sub;
  JoinResult j = hub_->join("a", 0, &sub, std::nullopt);
  EXPECT_EQ(j.seq, 0u);
  for (int i = 0; i < 3; ++i) publish_sync(*hub_, "a");
  publish_sync(*hub_, "other");
  shards_.drain();
  EXPECT_EQ(sub.seqs, (std::vector<std::uint64_t>{1, 2, 3}));
  hub_->leave(j.channel, 0, &sub);
  publish_sync(*hub_, "a");
  shards_.drain();
  EXPECT_EQ(sub.seqs.size(), 3u);
}

TEST_F(HubTest, ResumeReplaysWhatWasMissed) {
  for (int i = 0; i < 4; ++i) publish_sync(*hub_, "a");
  RecordingSubscriber first;
  JoinResult j1 = hub_->join("a", 0, &first, std::nullopt);
  hub_->leave(j1.channel, 0, &first);

  RecordingSubscriber sub;
  JoinResult j = hub_->join("a", 1, &sub, Position{2, j1.epoch});
  EXPECT_TRUE(j.recovered);
  ASSERT_EQ(j.replay.size(), 2u);
  EXPECT_EQ(j.replay[0]->seq, 3u);
  EXPECT_EQ(j.replay[1]->seq, 4u);
  EXPECT_EQ(j.seq, 4u);
}

TEST_F(HubTest, ResumeFailsOnOtherEpochTooOldOrAhead) {
  for (int i = 0; i < 8; ++i) publish_sync(*hub_, "a");  // history holds 4..8
  RecordingSubscriber s1, s2, s3, s4;
  auto epoch = hub_->snapshot("a")->epoch;
  EXPECT_FALSE(hub_->join("a", 0, &s1, Position{7, "not-the-epoch"}).recovered);
  EXPECT_FALSE(hub_->join("a", 0, &s2, Position{2, epoch}).recovered);
  EXPECT_FALSE(hub_->join("a", 0, &s3, Position{9, epoch}).recovered);
  auto ok = hub_->join("a", 0, &s4, Position{3, epoch});
  EXPECT_TRUE(ok.recovered);
  EXPECT_EQ(ok.replay.size(), 5u);
  EXPECT_EQ(ok.state_json, "");
}

TEST_F(HubTest, LiveEventAlreadyReplayedIsNotDeliveredTwice) {
  RecordingSubscriber early;
  hub_->join("a", 0, &early, std::nullopt);
  publish_sync(*hub_, "a");  // its delivery is posted but not yet run
  RecordingSubscriber late;
  auto j = hub_->join("a", 0, &late, Position{0, ""});
  ASSERT_TRUE(j.recovered);
  ASSERT_EQ(j.replay.size(), 1u);
  shards_.drain();
  EXPECT_EQ(early.seqs, (std::vector<std::uint64_t>{1}));
  EXPECT_TRUE(late.seqs.empty());  // seq 1 came in its replay
}

TEST_F(HubTest, IdempotencyKeyAnswersWithTheOriginalSeq) {
  auto first = publish_sync(*hub_, "a", "t", "key-1");
  auto again = publish_sync(*hub_, "a", "t", "key-1");
  EXPECT_EQ(first.status, PublishResult::Status::ok);
  EXPECT_EQ(again.status, PublishResult::Status::duplicate);
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_EQ(publish_sync(*hub_, "b", "t", "key-1").status, PublishResult::Status::ok);  // per agent
  EXPECT_EQ(store_.appended, 2u);
}

TEST_F(HubTest, FailedCommitPublishesNothingAndReusesNoSeq) {
  RecordingSubscriber sub;
  hub_->join("a", 0, &sub, std::nullopt);
  EXPECT_EQ(publish_sync(*hub_, "a").seq, 1u);
  store_.fail_next = 1;
  auto failed = publish_sync(*hub_, "a");
  EXPECT_EQ(failed.status, PublishResult::Status::store_failed);
  store_.fail_next = 1;
  store_.full = true;
  EXPECT_EQ(publish_sync(*hub_, "a").status, PublishResult::Status::store_full);
  auto next = publish_sync(*hub_, "a");
  EXPECT_EQ(next.status, PublishResult::Status::ok);
  EXPECT_EQ(next.seq, 2u);  // the failed ones handed no seq out
  shards_.drain();
  EXPECT_EQ(sub.seqs, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(hub_->history("a", 0, 100).events.size(), 2u);
}

TEST_F(HubTest, HistoryPagesAndReportsGaps) {
  for (int i = 0; i < 8; ++i) publish_sync(*hub_, "a");
  auto page = hub_->history("a", 0, 2);
  EXPECT_FALSE(page.complete);  // 1..3 were pruned from the ring of 5
  ASSERT_EQ(page.events.size(), 2u);
  EXPECT_EQ(page.events[0]->seq, 4u);
  auto tail = hub_->history("a", 6, 100);
  EXPECT_TRUE(tail.complete);
  ASSERT_EQ(tail.events.size(), 2u);
  EXPECT_EQ(tail.events[1]->seq, 8u);
  EXPECT_TRUE(hub_->history("nobody", 0, 10).events.empty());
}

// Counts records applied; commands read it to decide.
class CountingState final : public ChannelState {
 public:
  void apply(const std::vector<StateRecord>& records) override { count += records.size(); }
  std::string snapshot_json() const override { return "{\"count\":" + std::to_string(count) + "}"; }
  std::size_t count = 0;
};

TEST(HubCommands, StatefulCommandsSeeEarlierEventsOfTheirChannel) {
  FlakyStore store;
  QueueDispatcher shards;
  broker::StoreBroker broker(store, "test");
  Hub hub({}, broker, shards, [](std::string_view) { return std::make_unique<CountingState>(); });
  hub.start();
  // Queue many commands at once so that they would share a commit if allowed to.
  std::vector<std::promise<PublishResult>> results(20);
  std::vector<std::size_t> seen(20, 999);
  for (std::size_t i = 0; i < results.size(); ++i) {
    Command c;
    c.stateful = true;
    c.decide = [&seen, i](const ChannelState* s) {
      seen[i] = static_cast<const CountingState*>(s)->count;
      Decision d;
      d.type = "counted";
      d.data = "{}";
      d.records.push_back({"a", "counter", std::to_string(i), "{}"});
      return d;
    };
    hub.submit("a", std::move(c), "", [&results, i](const PublishResult& r) { results[i].set_value(r); });
  }
  for (std::size_t i = 0; i < results.size(); ++i) {
    auto r = results[i].get_future().get();
    EXPECT_EQ(r.status, PublishResult::Status::ok);
    EXPECT_EQ(r.seq, i + 1);
    EXPECT_EQ(seen[i], i) << "command " << i << " did not see the records of the commands before it";
  }
  EXPECT_EQ(hub.snapshot("a")->state_json, "{\"count\":20}");
  hub.stop();
}

TEST(HubCommands, RefusalPublishesNothing) {
  FlakyStore store;
  QueueDispatcher shards;
  broker::StoreBroker broker(store, "test");
  Hub hub({}, broker, shards);
  hub.start();
  Command c;
  c.decide = [](const ChannelState*) {
    return Decision::refuse(Decision::Refusal::conflict, "nope", "not now", "{\"allowed\":[]}");
  };
  std::promise<PublishResult> p;
  hub.submit("a", std::move(c), "", [&p](const PublishResult& r) { p.set_value(r); });
  auto r = p.get_future().get();
  EXPECT_EQ(r.status, PublishResult::Status::refused);
  EXPECT_EQ(r.decision.error_code, "nope");
  EXPECT_EQ(store.appended, 0u);
  EXPECT_EQ(publish_sync(hub, "a").seq, 1u);
  hub.stop();
}

TEST(HubStop, AnswersEveryQueuedPublish) {
  MemoryEventStore store;
  QueueDispatcher shards;
  broker::StoreBroker broker(store, "test");
  Hub hub({}, broker, shards);
  hub.start();
  std::atomic<int> answered{0};
  for (int i = 0; i < 1000; ++i) hub.publish("a", "t", "{}", "", [&](const PublishResult&) { ++answered; });
  hub.stop();
  EXPECT_EQ(answered.load(), 1000);
  hub.publish("a", "t", "{}", "", [&](const PublishResult& r) {
    EXPECT_EQ(r.status, PublishResult::Status::shutting_down);
    ++answered;
  });
  EXPECT_EQ(answered.load(), 1001);
}

// Idle channels and memory bounds, over the memory store (which keeps each channel's numbering).
class HubEvictionTest : public ::testing::Test {
 protected:
  void start(HubOptions options) {
    options.prune_interval_ms = 10;
    hub_ = std::make_unique<Hub>(options, broker_, shards_);
    hub_->start();
  }
  void TearDown() override {
    if (hub_) hub_->stop();
  }
  void wait_for_channels(std::size_t n) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (hub_->stats(0).channels != n && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(hub_->stats(0).channels, n);
  }

  MemoryEventStore store_;
  broker::StoreBroker broker_{store_, "memory"};
  QueueDispatcher shards_;
  std::unique_ptr<Hub> hub_;
};

TEST_F(HubEvictionTest, SubscribeOnlyChannelLeavesWithItsLastSubscriberAndKeepsItsEpoch) {
  start({});
  RecordingSubscriber sub;
  JoinResult j = hub_->join("ghost", 0, &sub, std::nullopt);
  const std::string epoch = j.epoch;
  EXPECT_EQ(hub_->stats(0).channels, 1u);
  hub_->leave(j.channel, 0, &sub);
  wait_for_channels(0);
  RecordingSubscriber again;
  JoinResult k = hub_->join("ghost", 1, &again, std::nullopt);
  EXPECT_EQ(k.epoch, epoch);
  EXPECT_EQ(publish_sync(*hub_, "ghost").seq, 1u);
  hub_->leave(k.channel, 1, &again);
}

TEST_F(HubEvictionTest, IdleChannelLeavesAndItsNumberingComesBack) {
  HubOptions options;
  options.history_ttl_ms = 50;
  start(options);
  for (int i = 0; i < 3; ++i) publish_sync(*hub_, "a");
  RecordingSubscriber sub;
  JoinResult first = hub_->join("a", 0, &sub, std::nullopt);
  const std::string epoch = first.epoch;
  hub_->leave(first.channel, 0, &sub);
  wait_for_channels(0);
  EXPECT_EQ(publish_sync(*hub_, "a").seq, 4u);
  RecordingSubscriber later;
  JoinResult j = hub_->join("a", 1, &later, std::nullopt);
  EXPECT_EQ(j.epoch, epoch);
  EXPECT_EQ(j.seq, 4u);
  hub_->leave(j.channel, 1, &later);
}

TEST_F(HubEvictionTest, MemoryBudgetLetsTheOldestEventsGoFirst) {
  HubOptions options;
  options.history_memory_budget = 64 * 1024;
  start(options);
  const std::string data = "{\"pad\":\"" + std::string(4000, 'p') + "\"}";
  for (int i = 0; i < 20; ++i) {
    for (const char* agent : {"x", "y"}) {
      std::promise<PublishResult> p;
      hub_->publish(agent, "t", data, "", [&p](const PublishResult& r) { p.set_value(r); });
      ASSERT_EQ(p.get_future().get().status, PublishResult::Status::ok);
    }
  }
  HubStats stats = hub_->stats(0);
  EXPECT_LE(stats.history_bytes, options.history_memory_budget);
  EXPECT_LT(stats.history_events, 40u);
  // Both channels keep their newest events; the memory store cannot give back the older ones.
  HistoryPage page = hub_->history("x", 19, 10);
  ASSERT_EQ(page.events.size(), 1u);
  EXPECT_EQ(page.events[0]->seq, 20u);
  page = hub_->history("y", 0, 100);
  EXPECT_FALSE(page.complete);
  ASSERT_FALSE(page.events.empty());
  EXPECT_EQ(page.events.back()->seq, 20u);
}

}  // namespace
}  // namespace aw::hub
