// AgentState: rebuilding from records in any order, the snapshot it gives, and what it tells the index.
#include "workflow/agent_state.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace aw::workflow {
using store::StateRecord;
namespace {

namespace json = boost::json;

class AgentStateTest : public ::testing::Test {
 protected:
  WorkflowIndex index_;
  std::int64_t now_ = 5000;
  AgentState state_{"agent-7", index_, [this] { return now_; }};

  StateRecord workflow(const std::string& id, std::uint64_t number, Phase phase = Phase::design) {
    Workflow wf;
    wf.id = id;
    wf.agent_id = "agent-7";
    wf.number = number;
    wf.name = "workflow " + id;
    wf.phase = phase;
    wf.created_at_ms = 1000 + static_cast<std::int64_t>(number);
    wf.updated_at_ms = wf.created_at_ms;
    return {"agent-7", std::string(kWorkflowKind), id, workflow_record(wf)};
  }
  StateRecord stream(const std::string& id, const std::string& workflow_id, std::int64_t started,
                     StreamStatus status = StreamStatus::streaming) {
    Stream st;
    st.id = id;
    st.workflow_id = workflow_id;
    st.status = status;
    st.started_at_ms = started;
    if (status != StreamStatus::streaming) {
      st.ended_at_ms = started + 1;
      st.deltas = 3;
      st.length = 10;
      st.bytes = 10;
    }
    return {"agent-7", std::string(kStreamKind), id, stream_record(st)};
  }
  StateRecord delta(const std::string& stream_id, std::uint64_t index, const std::string& text) {
    return {"agent-7", std::string(kDeltaKind), delta_record_id(stream_id, index), delta_record(text)};
  }
  StateRecord erase(std::string_view kind, const std::string& id) {
    return {"agent-7", std::string(kind), id, {}};
  }
  json::object snapshot() { return json::parse(state_.snapshot_json()).as_object(); }
};

TEST_F(AgentStateTest, EmptyStateSnapshotsAsEmptyLists) {
  EXPECT_EQ(state_.snapshot_json(), R"({"workflows":[],"streams":[]})");
  EXPECT_EQ(state_.last_number(), 0u);
}

TEST_F(AgentStateTest, WorkflowsAreListedByNumber) {
  state_.apply({workflow("wf_b", 2), workflow("wf_c", 3), workflow("wf_a", 1)});
  auto snap = snapshot();
  auto& wfs = snap["workflows"].as_array();
  ASSERT_EQ(wfs.size(), 3u);
  EXPECT_EQ(wfs[0].as_object().at("id"), "wf_a");
  EXPECT_EQ(wfs[1].as_object().at("id"), "wf_b");
  EXPECT_EQ(wfs[2].as_object().at("id"), "wf_c");
  EXPECT_EQ(state_.last_number(), 3u);
  EXPECT_EQ(index_.agent_of_workflow("wf_b"), "agent-7");
}

TEST_F(AgentStateTest, PagesFollowNumbers) {
  for (int i = 1; i <= 5; ++i)
    state_.apply({workflow("wf_" + std::to_string(i), static_cast<std::uint64_t>(i))});
  bool more = false;
  auto page = state_.workflows_after(0, 2, more);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0]->number, 1u);
  EXPECT_TRUE(more);
  page = state_.workflows_after(2, 2, more);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0]->number, 3u);
  EXPECT_TRUE(more);
  page = state_.workflows_after(4, 2, more);
  ASSERT_EQ(page.size(), 1u);
  EXPECT_FALSE(more);
  page = state_.workflows_after(UINT64_MAX, 2, more);
  EXPECT_TRUE(page.empty());
}

TEST_F(AgentStateTest, UpdatesReplaceAndErasuresRemove) {
  state_.apply({workflow("wf_a", 1, Phase::requirements)});
  state_.apply({workflow("wf_a", 1, Phase::design)});
  ASSERT_TRUE(state_.find_workflow("wf_a"));
  EXPECT_EQ(state_.find_workflow("wf_a")->phase, Phase::design);
  state_.apply({erase(kWorkflowKind, "wf_a")});
  EXPECT_FALSE(state_.find_workflow("wf_a"));
  EXPECT_FALSE(index_.agent_of_workflow("wf_a"));
  EXPECT_EQ(snapshot()["workflows"].as_array().size(), 0u);
}

TEST_F(AgentStateTest, OpenStreamTextGrowsWithEachDelta) {
  state_.apply({workflow("wf_a", 1), stream("st_1", "wf_a", 100)});
  state_.apply({delta("st_1", 0, "Hel")});
  state_.apply({delta("st_1", 1, "lo, w\xc3\xb6rld")});
  const Stream* st = state_.find_stream("st_1");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->text, "Hello, w\xc3\xb6rld");
  EXPECT_EQ(st->deltas, 2u);
  EXPECT_EQ(st->length, 12u);
  EXPECT_EQ(st->bytes, 13u);

  auto snap = snapshot();
  auto& streams = snap["streams"].as_array();
  ASSERT_EQ(streams.size(), 1u);
  auto& s = streams[0].as_object();
  EXPECT_EQ(s.at("stream_id"), "st_1");
  EXPECT_EQ(s.at("workflow_id"), "wf_a");
  EXPECT_EQ(s.at("text"), "Hello, w\xc3\xb6rld");
  EXPECT_EQ(s.at("index"), 2);
  auto& wf_streams = snap["workflows"].as_array()[0].as_object().at("streams").as_array();
  ASSERT_EQ(wf_streams.size(), 1u);
  EXPECT_EQ(wf_streams[0].as_object().at("deltas"), 2);
}

TEST_F(AgentStateTest, AnEndedStreamLeavesTheSnapshotAndDropsItsText) {
  state_.apply({workflow("wf_a", 1), stream("st_1", "wf_a", 100), delta("st_1", 0, "abc")});
  state_.apply(
      {stream("st_1", "wf_a", 100, StreamStatus::completed), erase(kDeltaKind, delta_record_id("st_1", 0))});
  const Stream* st = state_.find_stream("st_1");
  ASSERT_TRUE(st);
  EXPECT_EQ(st->status, StreamStatus::completed);
  EXPECT_TRUE(st->text.empty());
  EXPECT_EQ(snapshot()["streams"].as_array().size(), 0u);
  EXPECT_EQ(index_.agent_of_stream("st_1"), "agent-7");  // still known: appends get 409, not 404
  EXPECT_EQ(index_.open_stream_count(), 0u);
  // A late delta (there are none after the end, but a reordered load could bring one) changes nothing.
  state_.apply({delta("st_1", 5, "zzz")});
  EXPECT_TRUE(state_.find_stream("st_1")->text.empty());
}

TEST_F(AgentStateTest, StartUpRecordsInAnyOrderRebuildTheSameState) {
  std::vector<StateRecord> records = {workflow("wf_a", 1),
                                      workflow("wf_b", 2),
                                      stream("st_1", "wf_a", 100),
                                      stream("st_2", "wf_b", 200),
                                      stream("st_done", "wf_b", 50, StreamStatus::failed),
                                      {"agent-7", std::string(kRequirementsKind), "wf_a",
                                       requirements_record(Requirements{"text", {}, 1, 9})}};
  for (int i = 0; i < 6; ++i)
    records.push_back(delta("st_1", static_cast<std::uint64_t>(i), std::to_string(i)));
  records.push_back(delta("st_2", 0, "x"));

  AgentState reference("agent-7", index_, [this] { return now_; });
  reference.apply(records);
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    std::shuffle(records.begin(), records.end(), rng);
    WorkflowIndex index;
    AgentState shuffled("agent-7", index, [this] { return now_; });
    shuffled.apply(records);
    EXPECT_EQ(shuffled.snapshot_json(), reference.snapshot_json()) << "round " << round;
    EXPECT_EQ(index.open_stream_count(), 2u);
  }
  EXPECT_EQ(reference.find_stream("st_1")->text, "012345");
  // Open streams by start time.
  auto snap = json::parse(reference.snapshot_json()).as_object();
  auto& streams = snap["streams"].as_array();
  ASSERT_EQ(streams.size(), 2u);
  EXPECT_EQ(streams[0].as_object().at("stream_id"), "st_1");
  EXPECT_EQ(streams[1].as_object().at("stream_id"), "st_2");
}

TEST_F(AgentStateTest, DeltaRecordIdsCoverEveryStoredDelta) {
  state_.apply({workflow("wf_a", 1), stream("st_1", "wf_a", 1), delta("st_1", 0, "a"), delta("st_1", 1, "b"),
                delta("st_1", 3, "d")});  // index 2 missing: 3 waits
  auto ids = state_.delta_record_ids("st_1");
  EXPECT_EQ(ids, (std::vector<std::string>{delta_record_id("st_1", 0), delta_record_id("st_1", 1),
                                           delta_record_id("st_1", 3)}));
  EXPECT_EQ(state_.find_stream("st_1")->text, "ab");
}

TEST_F(AgentStateTest, StreamActivityFollowsTheClock) {
  state_.apply({workflow("wf_a", 1), stream("st_1", "wf_a", 1)});
  EXPECT_EQ(state_.last_activity("st_1"), 5000);
  EXPECT_EQ(index_.idle_streams(5001).size(), 1u);
  now_ = 9000;
  state_.apply({delta("st_1", 0, "a")});
  EXPECT_EQ(state_.last_activity("st_1"), 9000);
  EXPECT_TRUE(index_.idle_streams(9000).empty());
  EXPECT_EQ(index_.idle_streams(9001).size(), 1u);
}

TEST_F(AgentStateTest, DeletingAStreamForgetsIt) {
  state_.apply({workflow("wf_a", 1), stream("st_1", "wf_a", 1), delta("st_1", 0, "a")});
  state_.apply({erase(kStreamKind, "st_1"), erase(kDeltaKind, delta_record_id("st_1", 0))});
  EXPECT_FALSE(state_.find_stream("st_1"));
  EXPECT_FALSE(index_.agent_of_stream("st_1"));
  EXPECT_TRUE(state_.streams_of("wf_a").empty());
}

TEST_F(AgentStateTest, UnreadableRecordsAreSkipped) {
  state_.apply({{"agent-7", std::string(kWorkflowKind), "wf_x", "not json"},
                {"agent-7", std::string(kStreamKind), "st_x", "{}"},
                {"agent-7", std::string(kDeltaKind), "no-index", "\"a\""},
                {"agent-7", "someone_elses_kind", "id", "{}"},
                workflow("wf_a", 1)});
  EXPECT_FALSE(state_.find_workflow("wf_x"));
  EXPECT_FALSE(state_.find_stream("st_x"));
  EXPECT_TRUE(state_.find_workflow("wf_a"));
}

TEST_F(AgentStateTest, WorkflowNumbersNeverGoBack) {
  auto counter = [](std::string json) {
    return StateRecord{"agent-7", std::string(kCounterKind), std::string(kWorkflowNumberId), std::move(json)};
  };
  state_.apply({workflow("wf_a", 3)});
  EXPECT_EQ(state_.last_number(), 3u);
  state_.apply({counter("7")});
  EXPECT_EQ(state_.last_number(), 7u);
  state_.apply({counter("5"), counter("x"), erase(kWorkflowKind, "wf_a")});
  EXPECT_EQ(state_.last_number(), 7u);
}

TEST_F(AgentStateTest, FactoryMakesAgentStates) {
  auto factory = agent_state_factory(index_, [] { return std::int64_t{0}; });
  auto made = factory("agent-9");
  auto* state = dynamic_cast<AgentState*>(made.get());
  ASSERT_TRUE(state);
  EXPECT_EQ(state->agent_id(), "agent-9");
}

}  // namespace
}  // namespace aw::workflow
