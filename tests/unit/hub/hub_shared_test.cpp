// The hub with a shared broker (a fake one, in memory): commands decided against a versioned state are
// decided again on a conflict (bounded), refusals are confirmed against the broker's state, and a batch
// stored in part answers each publish for itself.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "hub/hub.hpp"
#include "protocol/envelope.hpp"

namespace aw::hub {
using broker::BrokerError;
using store::StateRecord;
namespace {

class NullDispatcher final : public ShardDispatcher {
 public:
  unsigned shard_count() const noexcept override { return 1; }
  void post(unsigned, std::function<void()>) override {}
};

// A broker shared with "other nodes": the test changes a channel behind the hub's back with
// other_node_sets(). Numbering, the state version and check-and-apply work as the Redis script's do.
class FakeSharedBroker final : public broker::Broker {
 public:
  struct Channel {
    std::string epoch = "e";
    std::uint64_t seq = 0;
    std::uint64_t version = 0;
    std::map<std::string, std::string> state;  // id -> json (one kind: "k")
    std::vector<EventPtr> events;
  };

  std::vector<broker::ChannelPosition> load_channels() override { return {}; }
  void load_recent(std::int64_t, const std::function<void(std::string_view, EventPtr)>&) override {}
  std::optional<broker::ChannelPosition> find_channel(std::string_view agent) override {
    std::lock_guard lock(mutex);
    auto it = channels.find(std::string(agent));
    if (it == channels.end()) return std::nullopt;
    return broker::ChannelPosition{std::string(agent), it->second.epoch, it->second.seq};
  }
  void replay(std::string_view agent, std::uint64_t after,
              const std::function<bool(EventPtr)>& visit) override {
    std::vector<EventPtr> events;
    {
      std::lock_guard lock(mutex);
      events = channels[std::string(agent)].events;
    }
    for (auto& ev : events)
      if (ev->seq > after && !visit(ev)) return;
  }
  std::vector<StateRecord> load_state(std::string_view agent) override {
    std::lock_guard lock(mutex);
    return records_of(agent, channels[std::string(agent)]);
  }
  broker::VersionedState load_versioned_state(std::string_view agent,
                                              std::optional<std::uint64_t> known) override {
    std::lock_guard lock(mutex);
    ++state_reads;
    if (unreadable) throw BrokerError("down", BrokerError::Kind::unavailable);
    Channel& c = channels[std::string(agent)];
    broker::VersionedState vs{c.epoch, c.seq, c.version, known != c.version, {}};
    if (vs.changed) vs.records = records_of(agent, c);
    return vs;
  }
  std::optional<std::uint64_t> seq_of_key(std::string_view agent, std::string_view key) override {
    std::lock_guard lock(mutex);
    auto it = keys.find(std::string(agent) + "/" + std::string(key));
    if (it == keys.end()) return std::nullopt;
    return it->second;
  }
  broker::ChannelPosition open_channel(std::string_view agent, const std::string&) override {
    std::lock_guard lock(mutex);
    Channel& c = channels[std::string(agent)];
    return {std::string(agent), c.epoch, c.seq};
  }
  void commit(broker::Batch& batch) override {
    std::lock_guard lock(mutex);
    ++commits;
    unfinished_at_commit.push_back(unfinished);
    bool stored_any = false;
    for (auto& d : batch.drafts) {
      broker::BatchChannel& bc = batch.channels[d.channel];
      if (failing.count(bc.agent_id) != 0) {
        d.failed = BrokerError::Kind::unavailable;
        continue;
      }
      stored_any = true;
      if (before_commit) before_commit(bc.agent_id);
      Channel& c = channels[bc.agent_id];
      if (d.decided_at && *d.decided_at != c.version) {
        d.conflict = true;
        ++conflicts;
        continue;
      }
      d.event = protocol::make_event(bc.agent_id, ++c.seq, d.type, batch.ts_ms, d.data, "", false);
      c.events.push_back(d.event);
      for (auto& r : d.records) c.state[r.id] = r.json;
      if (!d.records.empty()) ++c.version;
      d.state_version = c.version;
      bc.last_seq = c.seq;
      bc.epoch = c.epoch;
    }
    if (!stored_any) throw BrokerError("every instance is down", BrokerError::Kind::unavailable);
  }
  // Pipelined, as Redis is when `pipelined`: a batch is stored when sent (Redis runs them in the order
  // sent); its answer is there once `answers_held` is false.
  bool pipelines_commits() const noexcept override { return pipelined; }
  std::unique_ptr<broker::CommitTicket> send_commit(broker::Batch& batch) override {
    if (send_fails) throw BrokerError("cannot send", BrokerError::Kind::unavailable);
    commit(batch);
    std::lock_guard lock(mutex);
    ++sends;
    most_unfinished = std::max(most_unfinished, ++unfinished);
    return std::make_unique<broker::CommitTicket>();
  }
  void finish_commit(broker::Batch&, std::unique_ptr<broker::CommitTicket> sent) override {
    EXPECT_NE(sent, nullptr);
    std::lock_guard lock(mutex);
    --unfinished;
  }
  // Waits (up to 10 s) until `n` batches were sent.
  bool sent_at_least(int n) {
    for (int i = 0; i < 2000; ++i) {
      if (std::lock_guard lock(mutex); sends >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return false;
  }
  bool commit_answered(const broker::CommitTicket&, std::chrono::microseconds wait) override {
    if (!answers_held) return true;
    std::this_thread::sleep_for(wait);
    return false;
  }
  void trim(std::size_t, std::int64_t) override {}
  store::StoreStats stats() override { return {}; }
  bool durable() const noexcept override { return true; }
  std::string_view name() const noexcept override { return "fake"; }
  bool shared() const noexcept override { return true; }
  void set_listener(broker::BrokerListener* l) override { listener = l; }

  // Another node commits an event that sets state record `id` to `json` (or, with `id` empty, one that
  // changes no state); returns it with its state change, as pub/sub would carry them.
  std::pair<EventPtr, broker::StateChange> other_node_sets(const std::string& agent, const std::string& id,
                                                           const std::string& json) {
    Channel& c = channels[agent];
    EventPtr ev = protocol::make_event(agent, ++c.seq, "other", 0, "{}", "", false);
    c.events.push_back(ev);
    broker::StateChange change{c.seq, c.version, {}};
    if (!id.empty()) {
      c.state[id] = json;
      change.version = ++c.version;
      change.records.push_back({agent, "k", id, json});
    }
    return {ev, change};
  }

  static std::vector<StateRecord> records_of(std::string_view agent, const Channel& c) {
    std::vector<StateRecord> out;
    for (auto& [id, json] : c.state) out.push_back({std::string(agent), "k", id, json});
    return out;
  }

  std::mutex mutex;  // the hub's writer and the test
  std::map<std::string, Channel> channels;
  std::map<std::string, std::uint64_t> keys;              // "agent/key" -> seq
  std::set<std::string> failing;                          // agents whose instance is down
  std::function<void(const std::string&)> before_commit;  // runs under `mutex`
  broker::BrokerListener* listener = nullptr;
  bool unreadable = false;
  int commits = 0;
  std::vector<int> unfinished_at_commit;  // per commit: batches sent and not finished before it
  bool pipelined = false;
  std::atomic<bool> send_fails{false};
  std::atomic<bool> answers_held{false};
  int sends = 0;
  int unfinished = 0;
  int most_unfinished = 0;
  int conflicts = 0;
  int state_reads = 0;
};

// The records as a map; the test's commands read "phase".
class MapState final : public ChannelState {
 public:
  void apply(const std::vector<StateRecord>& records) override {
    for (auto& r : records) values[r.id] = r.json;
  }
  std::string snapshot_json() const override { return get("phase"); }
  std::string get(const std::string& id) const {
    auto it = values.find(id);
    return it == values.end() ? "" : it->second;
  }
  std::map<std::string, std::string> values;
};

// Moves "phase" from `from` to `to`; refuses when it is not at `from`. Counts its decisions.
Command move_phase(std::string from, std::string to, int* decisions) {
  Command c;
  c.stateful = true;
  c.decide = [from, to, decisions](const ChannelState* s) {
    ++*decisions;
    if (static_cast<const MapState*>(s)->get("phase") != from)
      return Decision::refuse(Decision::Refusal::conflict, "illegal_transition", "not at " + from);
    Decision d;
    d.type = "phase_changed";
    d.data = "{}";
    d.records.push_back({"a", "k", "phase", to});
    return d;
  };
  return c;
}

PublishResult submit_sync(Hub& hub, const std::string& agent, Command c) {
  std::promise<PublishResult> p;
  auto f = p.get_future();
  hub.submit(agent, std::move(c), "", [&p](const PublishResult& r) { p.set_value(r); });
  EXPECT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  return f.get();
}

class HubShared : public ::testing::Test {
 protected:
  void SetUp() override {
    broker_.channels["a"].state["phase"] = "design";
    broker_.channels["a"].version = 1;
  }
  void start(HubOptions options = {}) {
    hub_ = std::make_unique<Hub>(options, broker_, shards_,
                                 [](std::string_view) { return std::make_unique<MapState>(); });
    hub_->start();
  }
  void TearDown() override {
    if (hub_) hub_->stop();
  }
  std::string phase_seen_by_reads() {
    std::string phase;
    hub_->with_state("a",
                     [&](const ChannelState* s) { phase = static_cast<const MapState*>(s)->get("phase"); });
    return phase;
  }

  FakeSharedBroker broker_;
  NullDispatcher shards_;
  std::unique_ptr<Hub> hub_;
};

TEST_F(HubShared, TheCommonPathReadsNothingBeforeItsCommit) {
  start();
  int decisions = 0;
  EXPECT_EQ(submit_sync(*hub_, "a", move_phase("design", "implementation", &decisions)).status,
            PublishResult::Status::ok);
  const int reads = broker_.state_reads;  // the load of the channel
  EXPECT_EQ(submit_sync(*hub_, "a", move_phase("implementation", "testing", &decisions)).status,
            PublishResult::Status::ok);
  EXPECT_EQ(broker_.state_reads, reads);
  EXPECT_EQ(decisions, 2);
  EXPECT_EQ(broker_.conflicts, 0);
}

TEST_F(HubShared, AConflictIsDecidedAgainAgainstTheBrokersState) {
  start();
  int decisions = 0;
  ASSERT_EQ(phase_seen_by_reads(), "design");  // loaded here at version 1
  {
    std::lock_guard lock(broker_.mutex);
    broker_.other_node_sets("a", "phase", "implementation");
  }
  // Decided against this node's "design": legal here, a conflict in the broker; decided again against
  // "implementation": refused, as it would be on any node.
  PublishResult r = submit_sync(*hub_, "a", move_phase("design", "implementation", &decisions));
  EXPECT_EQ(r.status, PublishResult::Status::refused);
  EXPECT_EQ(r.decision.error_code, "illegal_transition");
  EXPECT_EQ(decisions, 2);
  EXPECT_EQ(broker_.conflicts, 1);
  EXPECT_EQ(broker_.channels["a"].seq, 1u);  // only the other node's event
  // The next one from here is decided against the fresh state at once.
  EXPECT_EQ(submit_sync(*hub_, "a", move_phase("implementation", "testing", &decisions)).status,
            PublishResult::Status::ok);
  EXPECT_EQ(broker_.conflicts, 1);
  EXPECT_EQ(phase_seen_by_reads(), "testing");
}

TEST_F(HubShared, ARefusalIsConfirmedAgainstTheBrokersState) {
  start();
  ASSERT_EQ(phase_seen_by_reads(), "design");
  {
    std::lock_guard lock(broker_.mutex);
    broker_.other_node_sets("a", "phase", "implementation");
  }
  // This node still holds "design", where moving from implementation is refused: the broker's state
  // says otherwise, so it is decided again there and goes through.
  int decisions = 0;
  PublishResult r = submit_sync(*hub_, "a", move_phase("implementation", "testing", &decisions));
  EXPECT_EQ(r.status, PublishResult::Status::ok);
  EXPECT_EQ(decisions, 2);
  EXPECT_EQ(broker_.channels["a"].state["phase"], "testing");
}

TEST_F(HubShared, ARefusedRetryWhoseKeyTheBrokerHoldsIsItsDuplicate) {
  start();
  ASSERT_EQ(phase_seen_by_reads(), "design");
  {
    // Another node stored the move with key "k" (this node never held that event).
    std::lock_guard lock(broker_.mutex);
    broker_.other_node_sets("a", "phase", "implementation");
    broker_.keys["a/k"] = 1;
  }
  int decisions = 0;
  std::promise<PublishResult> p;
  hub_->submit("a", move_phase("design", "implementation", &decisions), "k",
               [&p](const PublishResult& r) { p.set_value(r); });
  // Decided here as legal: the broker's conflict, then refused against its state, then known by key.
  PublishResult r = p.get_future().get();
  EXPECT_EQ(r.status, PublishResult::Status::duplicate);
  EXPECT_EQ(r.seq, 1u);
  EXPECT_EQ(broker_.channels["a"].seq, 1u);
}

struct NullSubscriber final : Subscriber {
  void deliver(const EventPtr&) override {}
};

// A live channel (one local subscriber) hears other nodes' events with their state changes.
class HubSharedLive : public HubShared {
 protected:
  void SetUp() override {
    HubShared::SetUp();
    start();
    channel_ = hub_->join("a", 0, &sub_, std::nullopt).channel;
  }
  void TearDown() override {
    hub_->leave(channel_, 0, &sub_);
    HubShared::TearDown();
  }
  void hear(std::vector<std::pair<EventPtr, broker::StateChange>> heard) {
    std::vector<EventPtr> events;
    std::vector<broker::StateChange> changes;
    for (auto& [ev, change] : heard) {
      events.push_back(ev);
      changes.push_back(change);
    }
    broker_.listener->on_events("a", std::move(events), std::move(changes));
  }
  // The channel's snapshot once it reaches `seq` (the writer takes what was heard on its own time).
  Hub::Snapshot snapshot_at(std::uint64_t seq) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      Hub::Snapshot s = hub_->snapshot(channel_);
      if (s.seq >= seq || std::chrono::steady_clock::now() > deadline) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling the writer's progress
    }
  }
  int reads() {
    std::lock_guard lock(broker_.mutex);
    return broker_.state_reads;
  }

  NullSubscriber sub_;
  Channel* channel_ = nullptr;
};

TEST_F(HubSharedLive, StateComesWithTheEventsAndNeedsNoRead) {
  const int before = reads();
  std::pair<EventPtr, broker::StateChange> heard;
  {
    std::lock_guard lock(broker_.mutex);
    heard = broker_.other_node_sets("a", "phase", "implementation");
  }
  hear({heard});
  EXPECT_EQ(snapshot_at(1).state_json, "implementation");
  EXPECT_EQ(reads(), before);
  // and a command decided here is decided against it, with no conflict
  int decisions = 0;
  EXPECT_EQ(submit_sync(*hub_, "a", move_phase("implementation", "testing", &decisions)).status,
            PublishResult::Status::ok);
  EXPECT_EQ(broker_.conflicts, 0);
  EXPECT_EQ(snapshot_at(2).state_json, "testing");
}

TEST_F(HubSharedLive, AGapThatChangedNoStateIsReadWithoutTheState) {
  const int before = reads();
  std::pair<EventPtr, broker::StateChange> heard;
  {
    std::lock_guard lock(broker_.mutex);
    broker_.other_node_sets("a", "", "");  // never heard: pub/sub lost it
    heard = broker_.other_node_sets("a", "phase", "implementation");
  }
  hear({heard});
  Hub::Snapshot s = snapshot_at(2);
  EXPECT_EQ(s.seq, 2u);
  EXPECT_EQ(s.state_json, "implementation");
  EXPECT_EQ(reads(), before);
}

TEST_F(HubSharedLive, AGapThatChangedTheStateReadsItWithItsPosition) {
  const int before = reads();
  std::pair<EventPtr, broker::StateChange> heard;
  {
    std::lock_guard lock(broker_.mutex);
    broker_.other_node_sets("a", "reason", "lost");  // never heard, and it changed the state
    heard = broker_.other_node_sets("a", "phase", "implementation");
  }
  hear({heard});
  Hub::Snapshot s = snapshot_at(2);
  EXPECT_EQ(s.seq, 2u);
  EXPECT_EQ(s.state_json, "implementation");
  EXPECT_EQ(reads(), before + 1);
  std::string reason;
  hub_->with_state("a",
                   [&](const ChannelState* st) { reason = static_cast<const MapState*>(st)->get("reason"); });
  EXPECT_EQ(reason, "lost");
}

TEST_F(HubShared, ConflictsAreRetriedABoundedNumberOfTimes) {
  HubOptions options;
  options.max_decide_attempts = 3;
  start(options);
  // Another node moves the state before every commit of ours: never stored, and not forever.
  broker_.before_commit = [this](const std::string& agent) {
    broker_.other_node_sets(agent, "other", std::to_string(broker_.commits));
  };
  int decisions = 0;
  PublishResult r = submit_sync(*hub_, "a", move_phase("design", "implementation", &decisions));
  EXPECT_EQ(r.status, PublishResult::Status::contended);
  EXPECT_EQ(decisions, 3);
  EXPECT_EQ(broker_.conflicts, 3);
  broker_.before_commit = nullptr;
  EXPECT_EQ(submit_sync(*hub_, "a", move_phase("design", "implementation", &decisions)).status,
            PublishResult::Status::ok);
}

TEST_F(HubShared, ABrokerThatCannotBeReadAfterAConflictAnswers503) {
  start();
  ASSERT_EQ(phase_seen_by_reads(), "design");
  broker_.before_commit = [this](const std::string& agent) {
    broker_.other_node_sets(agent, "phase", "implementation");
    broker_.unreadable = true;
  };
  int decisions = 0;
  PublishResult r = submit_sync(*hub_, "a", move_phase("design", "implementation", &decisions));
  EXPECT_EQ(r.status, PublishResult::Status::broker_unavailable);
  EXPECT_EQ(decisions, 1);
}

TEST_F(HubShared, ABatchStoredInPartAnswersEachPublishForItself) {
  start();
  broker_.failing = {"down"};
  std::vector<std::function<void()>> wakes;
  hub_->defer_wakes_on_this_thread(
      [&wakes](std::function<void()> wake) { wakes.push_back(std::move(wake)); });
  std::vector<std::promise<PublishResult>> results(4);
  const char* agents[] = {"up", "down", "up", "down"};
  for (int i = 0; i < 4; ++i)
    hub_->publish(agents[i], "t", "{}", "",
                  [&results, i](const PublishResult& r) { results[i].set_value(r); });
  ASSERT_EQ(wakes.size(), 1u);
  wakes.front()();
  hub_->defer_wakes_on_this_thread({});
  std::vector<PublishResult> got;
  for (auto& p : results) got.push_back(p.get_future().get());
  EXPECT_EQ(broker_.commits, 1);  // one commit, stored in part
  EXPECT_EQ(got[0].status, PublishResult::Status::ok);
  EXPECT_EQ(got[0].seq, 1u);
  EXPECT_EQ(got[2].status, PublishResult::Status::ok);
  EXPECT_EQ(got[2].seq, 2u);
  EXPECT_EQ(got[1].status, PublishResult::Status::broker_unavailable);
  EXPECT_EQ(got[3].status, PublishResult::Status::broker_unavailable);
  EXPECT_EQ(broker_.channels["up"].seq, 2u);
  // Nothing stored at all: every publish fails.
  broker_.failing = {"up", "down"};
  std::promise<PublishResult> none;
  hub_->publish("up", "t", "{}", "", [&none](const PublishResult& r) { none.set_value(r); });
  EXPECT_EQ(none.get_future().get().status, PublishResult::Status::broker_unavailable);
  EXPECT_EQ(broker_.channels["up"].seq, 2u);
}

// Publishes the test waits for, one by one.
struct Answers {
  std::vector<std::promise<PublishResult>> promises{8};
  std::vector<std::future<PublishResult>> futures;
  Answers() {
    for (auto& p : promises) futures.push_back(p.get_future());
  }
  PublishCallback callback(std::size_t i) {
    return [this, i](const PublishResult& r) { promises[i].set_value(r); };
  }
  bool answered(std::size_t i, std::chrono::milliseconds within) {
    return futures[i].wait_for(within) == std::future_status::ready;
  }
};

TEST_F(HubShared, PlainPublishesAreSentWhileTheBatchBeforeIsStillBeingStored) {
  broker_.pipelined = true;
  broker_.answers_held = true;
  start();
  Answers a;
  hub_->publish("p", "t", "{}", "", a.callback(0));
  // The first batch is sent and its answer held back; the next one is sent behind it, and that finishes
  // the first (its answer comes before the second's on the connection).
  ASSERT_TRUE(broker_.sent_at_least(1));
  hub_->publish("p", "t", "{}", "", a.callback(1));
  ASSERT_TRUE(a.answered(0, std::chrono::seconds(10)));
  EXPECT_EQ(a.futures[0].get().seq, 1u);
  EXPECT_EQ(broker_.most_unfinished, 2);
  EXPECT_FALSE(a.answered(1, std::chrono::milliseconds(50)));  // its answer is still held
  broker_.answers_held = false;
  ASSERT_TRUE(a.answered(1, std::chrono::seconds(10)));
  PublishResult second = a.futures[1].get();
  EXPECT_EQ(second.status, PublishResult::Status::ok);
  EXPECT_EQ(second.seq, 2u);
  EXPECT_EQ(broker_.unfinished, 0);
}

TEST_F(HubShared, AStatefulCommandIsDecidedOnlyAfterTheBatchInFlightIsFinished) {
  broker_.pipelined = true;
  broker_.answers_held = true;
  start();
  Answers a;
  hub_->publish("a", "t", "{}", "", a.callback(0));
  ASSERT_TRUE(broker_.sent_at_least(1));
  int decisions = 0;
  hub_->submit("a", move_phase("design", "implementation", &decisions), "", a.callback(1));
  ASSERT_TRUE(a.answered(1, std::chrono::seconds(10)));
  EXPECT_EQ(a.futures[1].get().status, PublishResult::Status::ok);
  ASSERT_TRUE(a.answered(0, std::chrono::seconds(10)));
  EXPECT_EQ(a.futures[0].get().seq, 1u);
  std::lock_guard lock(broker_.mutex);
  // The publish was sent alone; the command was committed (not pipelined) with nothing in flight.
  EXPECT_EQ(broker_.sends, 1);
  ASSERT_EQ(broker_.unfinished_at_commit.size(), 2u);
  EXPECT_EQ(broker_.unfinished_at_commit[1], 0);
  EXPECT_EQ(broker_.channels["a"].seq, 2u);
}

TEST_F(HubShared, ABatchThatCouldNotBeSentAnswers503AndTheNextIsSent) {
  broker_.pipelined = true;
  start();
  broker_.send_fails = true;
  Answers a;
  hub_->publish("p", "t", "{}", "", a.callback(0));
  ASSERT_TRUE(a.answered(0, std::chrono::seconds(10)));
  EXPECT_EQ(a.futures[0].get().status, PublishResult::Status::broker_unavailable);
  broker_.send_fails = false;
  hub_->publish("p", "t", "{}", "", a.callback(1));
  ASSERT_TRUE(a.answered(1, std::chrono::seconds(10)));
  PublishResult r = a.futures[1].get();
  EXPECT_EQ(r.status, PublishResult::Status::ok);
  EXPECT_EQ(r.seq, 1u);
}

// Runs what the hub posts to a shard at once, on the posting (writer) thread.
class InlineDispatcher final : public ShardDispatcher {
 public:
  unsigned shard_count() const noexcept override { return 1; }
  void post(unsigned, std::function<void()> work) override { work(); }
};

// What a subscriber was handed, for the test thread to look at.
struct RecordingSubscriber final : Subscriber {
  void deliver(const EventPtr& ev) override {
    std::lock_guard lock(mutex);
    seqs.push_back(ev->seq);
  }
  void history_lost() override {
    std::lock_guard lock(mutex);
    lost_after.push_back(seqs.empty() ? 0 : seqs.back());
  }
  std::mutex mutex;
  std::vector<std::uint64_t> seqs;
  std::vector<std::uint64_t> lost_after;  // the last seq it had been handed when told
};

// Events the broker trimmed before this node could read them: the subscribers that miss them are told
// (and close with 1012, to resume into a snapshot), instead of seeing a gap.
TEST(HubSharedGap, SubscribersWhoseEventsTheBrokerTrimmedAreToldToStartOver) {
  FakeSharedBroker broker;
  InlineDispatcher shards;
  Hub hub({}, broker, shards, [](std::string_view) { return std::make_unique<MapState>(); });
  hub.start();
  RecordingSubscriber sub;
  Channel* channel = hub.join("a", 0, &sub, std::nullopt).channel;
  ASSERT_NE(channel, nullptr);
  auto hear = [&](const std::pair<EventPtr, broker::StateChange>& heard) {
    broker.listener->on_events("a", {heard.first}, {heard.second});
  };
  auto handed = [&] {
    std::lock_guard lock(sub.mutex);
    return sub.seqs;
  };
  auto wait_for_seq = [&](std::uint64_t seq) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      auto seqs = handed();
      if (!seqs.empty() && seqs.back() >= seq) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // polling the writer's progress
    }
    FAIL() << "seq " << seq << " never delivered";
  };
  std::pair<EventPtr, broker::StateChange> heard;
  {
    std::lock_guard lock(broker.mutex);
    heard = broker.other_node_sets("a", "", "");
  }
  hear(heard);
  wait_for_seq(1);
  {
    std::lock_guard lock(broker.mutex);
    for (int i = 0; i < 3; ++i) broker.other_node_sets("a", "", "");  // 2, 3, 4: never heard
    heard = broker.other_node_sets("a", "", "");                      // 5
    auto& events = broker.channels["a"].events;                       // 2 and 3 trimmed away
    events.erase(events.begin() + 1, events.begin() + 3);
  }
  hear(heard);
  wait_for_seq(5);
  {
    std::lock_guard lock(sub.mutex);
    EXPECT_EQ(sub.lost_after, std::vector<std::uint64_t>{1});  // told once, right after what it had
  }
  // Missed events the broker still has are read back: no one is told.
  {
    std::lock_guard lock(broker.mutex);
    broker.other_node_sets("a", "", "");  // 6: never heard, still stored
    heard = broker.other_node_sets("a", "", "");
  }
  hear(heard);
  wait_for_seq(7);
  {
    std::lock_guard lock(sub.mutex);
    EXPECT_EQ(sub.lost_after.size(), 1u);
    EXPECT_EQ(sub.seqs.back(), 7u);
  }
  hub.leave(channel, 0, &sub);
  hub.stop();
}

}  // namespace
}  // namespace aw::hub
