// The service through a real hub: commands are decided on the writer thread, their state is readable
// right after, appends keep their order, duplicates describe the original, idle streams expire, and
// everything comes back after a restart on the same SQLite file.
#include "workflow/workflow_service.hpp"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <future>
#include <memory>

#include "broker/store_broker.hpp"
#include "store/memory_event_store.hpp"
#include "store/sqlite/sqlite_event_store.hpp"

namespace aw::workflow {
using hub::Decision;
using hub::PublishCallback;
using hub::PublishResult;
using store::FsyncMode;
using store::SqliteEventStore;
namespace {

namespace json = boost::json;
using Status = PublishResult::Status;

// No subscribers in these tests, so nothing is ever posted; run it inline if it were.
class InlineShards final : public hub::ShardDispatcher {
 public:
  unsigned shard_count() const noexcept override { return 1; }
  void post(unsigned, std::function<void()> work) override { work(); }
};

// A hub, its index and the service, over a given store.
struct Node {
  Node(store::EventStore& store, std::atomic<std::int64_t>& now, std::int64_t idle_timeout_ms = 60'000)
      : clock([&now] { return now.load(); }),
        broker(store, "test"),
        hub(hub::HubOptions{}, broker, shards, agent_state_factory(index, clock)),
        service(hub, index, {idle_timeout_ms, {}}, clock) {
    hub.start();
  }
  ~Node() { hub.stop(); }

  Clock clock;
  InlineShards shards;
  WorkflowIndex index;
  broker::StoreBroker broker;
  hub::Hub hub;
  WorkflowService service;
};

// Waits for one command's result.
template <typename Call>
PublishResult await(Call call) {
  auto done = std::make_shared<std::promise<PublishResult>>();
  auto result = done->get_future();
  call([done](const PublishResult& r) { done->set_value(r); });
  if (result.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << "no result within 10 s";
    return {Status::shutting_down, 0, {}, {}};
  }
  return result.get();
}

json::object reply_of(const PublishResult& r) {
  EXPECT_EQ(r.status, Status::ok) << r.decision.error_code << " " << r.decision.error_message << " "
                                  << r.message;
  return json::parse(r.decision.reply_json.empty() ? "{}" : r.decision.reply_json).as_object();
}

std::string create(WorkflowService& s, const std::string& agent, const std::string& name,
                   std::string key = {}) {
  auto r = await([&](PublishCallback cb) { s.create({agent, name, {}}, std::move(key), std::move(cb)); });
  return std::string(reply_of(r)["id"].as_string());
}

class WorkflowServiceTest : public ::testing::Test {
 protected:
  std::atomic<std::int64_t> now_{1'700'000'000'000};
  store::MemoryEventStore store_;
  Node node_{store_, now_, 1000};
  WorkflowService& service_ = node_.service;
};

TEST_F(WorkflowServiceTest, CreatedWorkflowsCanBeReadAndListed) {
  std::string a = create(service_, "agent-7", "first");
  std::string b = create(service_, "agent-7", "second");
  create(service_, "agent-8", "elsewhere");
  EXPECT_EQ(a.rfind("wf_", 0), 0u);
  auto got = service_.get(a);
  ASSERT_TRUE(got);
  EXPECT_EQ(json::parse(*got).as_object()["name"], "first");

  auto page = json::parse(service_.list("agent-7", 1, 0)).as_object();
  ASSERT_EQ(page["workflows"].as_array().size(), 1u);
  EXPECT_EQ(page["workflows"].as_array()[0].as_object()["id"].as_string(), a);
  ASSERT_TRUE(page["next_cursor"].is_string());
  std::uint64_t cursor = std::stoull(std::string(page["next_cursor"].as_string()));
  page = json::parse(service_.list("agent-7", 1, cursor)).as_object();
  ASSERT_EQ(page["workflows"].as_array().size(), 1u);
  EXPECT_EQ(page["workflows"].as_array()[0].as_object()["id"].as_string(), b);
  EXPECT_TRUE(page["next_cursor"].is_null());
  page = json::parse(service_.list("nobody", 10, 0)).as_object();
  EXPECT_TRUE(page["workflows"].as_array().empty());
}

TEST_F(WorkflowServiceTest, UnknownIdsAreRefusedWithoutSubmitting) {
  bool called = false;
  service_.change_phase("wf_nope", Phase::design, std::nullopt, {}, [&](const PublishResult& r) {
    called = true;
    EXPECT_EQ(r.status, Status::refused);
    EXPECT_EQ(r.decision.error_code, "workflow_not_found");
  });
  EXPECT_TRUE(called);  // synchronously
  called = false;
  service_.append("st_nope", "x", std::nullopt, {}, [&](const PublishResult& r) {
    called = true;
    EXPECT_EQ(r.decision.error_code, "stream_not_found");
    EXPECT_EQ(r.decision.refusal, Decision::Refusal::not_found);
  });
  EXPECT_TRUE(called);
  EXPECT_FALSE(service_.get("wf_nope"));
  EXPECT_FALSE(service_.get_stream("st_nope"));
}

TEST_F(WorkflowServiceTest, AppendsSubmittedBackToBackKeepTheirOrder) {
  std::string wf = create(service_, "agent-7", "streams");
  std::string stream_id;
  auto opened = await([&](PublishCallback cb) { stream_id = service_.open_stream(wf, {}, std::move(cb)); });
  EXPECT_EQ(reply_of(opened)["stream_id"].as_string(), stream_id);

  constexpr int kPieces = 200;
  std::vector<std::promise<PublishResult>> results(kPieces);
  std::string expected;
  for (int i = 0; i < kPieces; ++i) {
    std::string piece = std::to_string(i) + ",";
    expected += piece;
    service_.append(stream_id, piece, std::nullopt, {}, [&results, i](const PublishResult& r) {
      results[static_cast<std::size_t>(i)].set_value(r);
    });
  }
  std::uint64_t last_seq = 0;
  for (int i = 0; i < kPieces; ++i) {
    PublishResult r = results[static_cast<std::size_t>(i)].get_future().get();
    EXPECT_EQ(reply_of(r)["index"], i);
    EXPECT_GT(r.seq, last_seq);
    last_seq = r.seq;
  }
  auto st = json::parse(*service_.get_stream(stream_id)).as_object();
  EXPECT_EQ(st["text"].as_string(), expected);
  EXPECT_EQ(st["index"], kPieces);

  auto ended = await([&](PublishCallback cb) {
    service_.end(stream_id, StreamStatus::completed, std::nullopt, {}, std::move(cb));
  });
  EXPECT_EQ(reply_of(ended)["length"], expected.size());
  st = json::parse(*service_.get_stream(stream_id)).as_object();
  EXPECT_EQ(st["status"], "completed");
  // the text it ended with, read back from the store (not held in memory)
  EXPECT_EQ(st["text"].as_string(), expected);
  EXPECT_FALSE(st.contains("index"));
}

TEST_F(WorkflowServiceTest, StreamsOpenedWithinOneMillisecondAreListedAsOpened) {
  // The clock stands still here: every stream opens in the same millisecond, and random ids must not
  // decide the order of the list.
  std::string wf = create(service_, "agent-7", "many streams");
  std::vector<std::string> opened;
  for (int i = 0; i < 8; ++i) {
    std::string id;
    reply_of(await([&](PublishCallback cb) { id = service_.open_stream(wf, {}, std::move(cb)); }));
    opened.push_back(id);
  }
  auto listed = json::parse(*service_.workflow_streams(wf)).as_object()["streams"].as_array();
  ASSERT_EQ(listed.size(), opened.size());
  for (std::size_t i = 0; i < opened.size(); ++i)
    EXPECT_EQ(listed[i].as_object()["stream_id"].as_string(), opened[i]) << i;
}

TEST_F(WorkflowServiceTest, ARetriedCreateDescribesTheOriginalWorkflow) {
  std::string first = create(service_, "agent-7", "once", "key-1");
  auto again = await([&](PublishCallback cb) {
    service_.create({"agent-7", "once", {}}, "key-1", std::move(cb));
  });
  EXPECT_EQ(again.status, Status::duplicate);
  EXPECT_EQ(json::parse(again.decision.reply_json).as_object()["id"].as_string(), first);
  EXPECT_EQ(json::parse(service_.list("agent-7", 10, 0)).as_object()["workflows"].as_array().size(), 1u);
}

TEST_F(WorkflowServiceTest, ARetriedPhaseChangeIsNotAppliedTwice) {
  std::string wf = create(service_, "agent-7", "w");
  auto first = await([&](PublishCallback cb) {
    service_.change_phase(wf, Phase::design, std::nullopt, "k", std::move(cb));
  });
  EXPECT_EQ(first.status, Status::ok);
  auto again = await([&](PublishCallback cb) {
    service_.change_phase(wf, Phase::design, std::nullopt, "k", std::move(cb));
  });
  EXPECT_EQ(again.status, Status::duplicate);
  EXPECT_EQ(again.seq, first.seq);
  EXPECT_EQ(json::parse(again.decision.reply_json).as_object()["phase"], "design");
}

TEST_F(WorkflowServiceTest, IdleStreamsAreEndedAsFailed) {
  std::string wf = create(service_, "agent-7", "w");
  std::string stream_id;
  await([&](PublishCallback cb) { stream_id = service_.open_stream(wf, {}, std::move(cb)); });
  EXPECT_EQ(service_.expire_idle_streams(now_ + 1000), 0u);  // exactly the timeout: not yet
  now_ += 500;
  await([&](PublishCallback cb) { service_.append(stream_id, "a", std::nullopt, {}, std::move(cb)); });
  EXPECT_EQ(service_.expire_idle_streams(now_ + 999), 0u);
  EXPECT_EQ(service_.expire_idle_streams(now_ + 1001), 1u);
  // The expiry runs on the writer thread; a read after the next command sees it.
  await([&](PublishCallback cb) { service_.report_progress(wf, 10, std::nullopt, {}, std::move(cb)); });
  auto st = json::parse(*service_.get_stream(stream_id)).as_object();
  EXPECT_EQ(st["status"], "failed");
  EXPECT_EQ(st["reason"], "idle_timeout");
  EXPECT_EQ(service_.expire_idle_streams(now_ + 100'000), 0u);
}

TEST_F(WorkflowServiceTest, RefusalsComeBackWithTheirDetails) {
  std::string wf = create(service_, "agent-7", "w");
  auto r = await([&](PublishCallback cb) {
    service_.change_phase(wf, Phase::completed, std::nullopt, {}, std::move(cb));
  });
  EXPECT_EQ(r.status, Status::refused);
  EXPECT_EQ(r.decision.refusal, Decision::Refusal::conflict);
  EXPECT_EQ(json::parse(r.decision.error_details_json).as_object()["allowed"],
            (json::array{"design", "failed", "cancelled"}));
  r = await([&](PublishCallback cb) { service_.remove(wf, {}, std::move(cb)); });
  EXPECT_EQ(r.decision.error_code, "workflow_active");
  await([&](PublishCallback cb) { service_.cancel(wf, "no longer needed", {}, std::move(cb)); });
  r = await([&](PublishCallback cb) { service_.remove(wf, {}, std::move(cb)); });
  EXPECT_EQ(r.status, Status::ok);
  EXPECT_FALSE(service_.get(wf));
}

TEST(WorkflowServiceRestart, WorkflowsAndOpenStreamTextSurviveARestart) {
  std::string dir = (std::filesystem::temp_directory_path() / "aw-workflow-test-XXXXXX").string();
  ASSERT_NE(mkdtemp(dir.data()), nullptr);
  const std::string path = (std::filesystem::path(dir) / "events.db").string();
  std::atomic<std::int64_t> now{1'700'000'000'000};
  std::string wf, open_id, done_id;
  {
    SqliteEventStore store(path, FsyncMode::normal, 0);
    Node node(store, now);
    wf = create(node.service, "agent-7", "survives");
    await([&](PublishCallback cb) { node.service.change_phase(wf, Phase::design, "ok", {}, std::move(cb)); });
    await([&](PublishCallback cb) {
      node.service.submit_requirements(wf, {"reqs", {"R1"}}, {}, std::move(cb));
    });
    await([&](PublishCallback cb) { done_id = node.service.open_stream(wf, {}, std::move(cb)); });
    await([&](PublishCallback cb) {
      node.service.append(done_id, "finished", std::nullopt, {}, std::move(cb));
    });
    await([&](PublishCallback cb) {
      node.service.end(done_id, StreamStatus::completed, std::nullopt, {}, std::move(cb));
    });
    await([&](PublishCallback cb) { open_id = node.service.open_stream(wf, {}, std::move(cb)); });
    for (const char* piece : {"half ", "way ", "th\xc3\xa9re"})
      await(
          [&](PublishCallback cb) { node.service.append(open_id, piece, std::nullopt, {}, std::move(cb)); });
  }
  {
    SqliteEventStore store(path, FsyncMode::normal, 0);
    Node node(store, now);
    auto got = node.service.get(wf);
    ASSERT_TRUE(got);
    auto doc = json::parse(*got).as_object();
    EXPECT_EQ(doc["phase"], "design");
    EXPECT_EQ(doc["requirements"].as_object()["text"], "reqs");
    EXPECT_EQ(doc["streams"].as_array().size(), 2u);
    auto open = json::parse(*node.service.get_stream(open_id)).as_object();
    EXPECT_EQ(open["text"], "half way th\xc3\xa9re");
    EXPECT_EQ(open["index"], 3);
    auto done = json::parse(*node.service.get_stream(done_id)).as_object();
    EXPECT_EQ(done["status"], "completed");
    EXPECT_EQ(done["length"], 8);
    EXPECT_EQ(done["text"], "finished");  // kept in the store, read back on demand

    auto snap = node.hub.snapshot("agent-7");
    ASSERT_TRUE(snap);
    auto state = json::parse(snap->state_json).as_object();
    ASSERT_EQ(state["streams"].as_array().size(), 1u);
    EXPECT_EQ(state["streams"].as_array()[0].as_object()["text"], "half way th\xc3\xa9re");

    // The numbering and the stream both go on where they stopped.
    auto r = await(
        [&](PublishCallback cb) { node.service.append(open_id, "!", std::nullopt, {}, std::move(cb)); });
    EXPECT_EQ(reply_of(r)["index"], 3);
    EXPECT_EQ(json::parse(*node.service.get_stream(open_id)).as_object()["text"], "half way th\xc3\xa9re!");
    std::string second = create(node.service, "agent-7", "next");
    EXPECT_EQ(json::parse(*node.service.get(second)).as_object()["number"], 2);
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace aw::workflow
