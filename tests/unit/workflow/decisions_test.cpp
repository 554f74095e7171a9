// The rules of every workflow request, decided against an AgentState that is fed the records of each
// accepted decision — what the hub does after a commit, without the hub.
#include "workflow/decisions.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "workflow/limits.hpp"

namespace aw::workflow {
using hub::Decision;
namespace {

namespace json = boost::json;
using Refusal = Decision::Refusal;

class DecisionsTest : public ::testing::Test {
 protected:
  // Applies an accepted decision as a commit would; returns its event data.
  json::object commit(const Decision& d) {
    EXPECT_EQ(d.refusal, Refusal::none) << d.error_code << ": " << d.error_message;
    state_.apply(d.records);
    return json::parse(d.data).as_object();
  }
  std::string create(const std::string& id = "wf_1", const std::string& name = "Build login") {
    commit(decide_create(&state_, id, {"agent-7", name, {{"team", "web"}}}, now_));
    return id;
  }
  std::string open(const std::string& workflow_id, const std::string& stream_id = "st_1") {
    commit(decide_open_stream(&state_, workflow_id, stream_id, now_));
    return stream_id;
  }
  void move_to(const std::string& id, Phase to) { commit(decide_phase(&state_, id, to, std::nullopt, now_)); }
  static void expect_refused(const Decision& d, Refusal r, const std::string& code) {
    EXPECT_EQ(d.refusal, r) << d.error_code;
    EXPECT_EQ(d.error_code, code);
    EXPECT_FALSE(d.error_message.empty());
    EXPECT_TRUE(d.records.empty());
  }

  WorkflowIndex index_;
  std::int64_t now_ = 1'700'000'000'000;
  AgentState state_{"agent-7", index_, [this] { return now_; }};
};

TEST_F(DecisionsTest, CreateMakesANumberedWorkflowInRequirements) {
  Decision d = decide_create(&state_, "wf_1", {"agent-7", "Build login", {{"team", "web"}}}, now_);
  EXPECT_EQ(d.type, "workflow_created");
  json::object data = commit(d);
  EXPECT_EQ(data["id"], "wf_1");
  EXPECT_EQ(data["agent_id"], "agent-7");
  EXPECT_EQ(data["name"], "Build login");
  EXPECT_EQ(data["phase"], "requirements");
  EXPECT_EQ(data["progress"], 0);
  EXPECT_EQ(data["number"], 1);
  EXPECT_EQ(data["metadata"].as_object()["team"], "web");
  EXPECT_EQ(json::parse(d.reply_json), json::value(data));
  ASSERT_EQ(d.records.size(), 2u);
  EXPECT_EQ(d.records[0].agent_id, "agent-7");
  EXPECT_EQ(d.records[0].kind, kWorkflowKind);
  EXPECT_EQ(d.records[1].kind, kCounterKind);
  EXPECT_EQ(d.records[1].json, "1");

  commit(decide_create(&state_, "wf_2", {"agent-7", "second", {}}, now_));
  EXPECT_EQ(state_.find_workflow("wf_2")->number, 2u);
}

TEST_F(DecisionsTest, CreateRefusesBadInput) {
  expect_refused(decide_create(&state_, "wf_1", {"agent-7", "", {}}, now_), Refusal::invalid, "bad_field");
  expect_refused(decide_create(&state_, "wf_1", {"agent-7", std::string(257, 'x'), {}}, now_),
                 Refusal::invalid, "bad_field");
  expect_refused(decide_create(&state_, "wf_1", {"someone-else", "n", {}}, now_), Refusal::invalid,
                 "bad_agent_id");
  create("wf_1");
  expect_refused(decide_create(&state_, "wf_1", {"agent-7", "again", {}}, now_), Refusal::conflict,
                 "workflow_exists");
}

TEST_F(DecisionsTest, WithoutStateEverythingIsRefused) {
  expect_refused(decide_create(nullptr, "wf_1", {"agent-7", "n", {}}, now_), Refusal::invalid,
                 "workflows_unavailable");
  expect_refused(decide_append(nullptr, "st_1", "x", std::nullopt), Refusal::invalid,
                 "workflows_unavailable");
}

TEST_F(DecisionsTest, RequirementsAreStoredWithARevision) {
  create();
  Decision d =
      decide_requirements(&state_, "wf_1", {"Log in with email", {json::object{{"id", "R1"}}, "R2"}}, now_);
  EXPECT_EQ(d.type, "requirements_submitted");
  json::object data = commit(d);
  EXPECT_EQ(data["workflow_id"], "wf_1");
  EXPECT_EQ(data["requirements"].as_object()["text"], "Log in with email");
  EXPECT_EQ(data["requirements"].as_object()["revision"], 1);
  EXPECT_EQ(data["requirements"].as_object()["items"].as_array().size(), 2u);
  EXPECT_EQ(json::parse(d.reply_json).as_object()["requirements"].as_object()["revision"], 1);

  data = commit(decide_requirements(&state_, "wf_1", {std::nullopt, {"only items"}}, now_));
  EXPECT_EQ(data["requirements"].as_object()["revision"], 2);
  EXPECT_EQ(data["requirements"].as_object()["text"], nullptr);
  EXPECT_EQ(state_.find_requirements("wf_1")->revision, 2u);
}

TEST_F(DecisionsTest, RequirementsRefusals) {
  create();
  expect_refused(decide_requirements(&state_, "wf_x", {"t", {}}, now_), Refusal::not_found,
                 "workflow_not_found");
  expect_refused(decide_requirements(&state_, "wf_1", {std::nullopt, {}}, now_), Refusal::invalid,
                 "bad_field");
  expect_refused(decide_requirements(&state_, "wf_1", {"", {}}, now_), Refusal::invalid, "bad_field");
  expect_refused(decide_requirements(&state_, "wf_1", {std::nullopt, {42}}, now_), Refusal::invalid,
                 "bad_field");
  move_to("wf_1", Phase::cancelled);
  expect_refused(decide_requirements(&state_, "wf_1", {"t", {}}, now_), Refusal::conflict,
                 "workflow_finished");
}

TEST_F(DecisionsTest, ThePipelineRunsToCompletion) {
  create();
  Phase from = Phase::requirements;
  for (Phase to :
       {Phase::design, Phase::implementation, Phase::testing, Phase::deployment, Phase::completed}) {
    Decision d = decide_phase(&state_, "wf_1", to, "because", now_);
    EXPECT_EQ(d.type, "phase_changed");
    json::object data = commit(d);
    EXPECT_EQ(data["from"].as_string(), phase_name(from));
    EXPECT_EQ(data["to"].as_string(), phase_name(to));
    EXPECT_EQ(data["reason"], "because");
    EXPECT_EQ(state_.find_workflow("wf_1")->phase, to);
    from = to;
  }
}

TEST_F(DecisionsTest, AnIllegalTransitionNamesTheAllowedPhases) {
  create();
  Decision d = decide_phase(&state_, "wf_1", Phase::testing, std::nullopt, now_);
  expect_refused(d, Refusal::conflict, "illegal_transition");
  json::object details = json::parse(d.error_details_json).as_object();
  EXPECT_EQ(details["allowed"], (json::array{"design", "failed", "cancelled"}));
  EXPECT_EQ(details["from"], "requirements");
  EXPECT_EQ(details["to"], "testing");
  EXPECT_EQ(state_.find_workflow("wf_1")->phase, Phase::requirements);

  move_to("wf_1", Phase::failed);
  d = decide_phase(&state_, "wf_1", Phase::design, std::nullopt, now_);
  expect_refused(d, Refusal::conflict, "illegal_transition");
  EXPECT_EQ(json::parse(d.error_details_json).as_object()["allowed"], json::array());
  expect_refused(decide_phase(&state_, "wf_x", Phase::design, std::nullopt, now_), Refusal::not_found,
                 "workflow_not_found");
}

TEST_F(DecisionsTest, ProgressIsAWholePercentFrom0To100) {
  create();
  json::object data = commit(decide_progress(&state_, "wf_1", 42.9, "halfway", now_));
  EXPECT_EQ(data["percent"], 42);
  EXPECT_EQ(data["message"], "halfway");
  EXPECT_EQ(state_.find_workflow("wf_1")->progress, 42);
  EXPECT_EQ(state_.find_workflow("wf_1")->progress_message, "halfway");
  commit(decide_progress(&state_, "wf_1", 100, std::nullopt, now_));
  EXPECT_EQ(state_.find_workflow("wf_1")->progress, 100);
  commit(decide_progress(&state_, "wf_1", 0, std::nullopt, now_));
  EXPECT_EQ(state_.find_workflow("wf_1")->progress, 0);
  for (double bad : {-0.5, 100.01, 1e300, std::numeric_limits<double>::quiet_NaN()})
    expect_refused(decide_progress(&state_, "wf_1", bad, std::nullopt, now_), Refusal::invalid, "bad_field");
  expect_refused(decide_progress(&state_, "wf_1", 1, std::string(3000, 'm'), now_), Refusal::invalid,
                 "bad_field");
  move_to("wf_1", Phase::cancelled);
  expect_refused(decide_progress(&state_, "wf_1", 50, std::nullopt, now_), Refusal::conflict,
                 "workflow_finished");
}

TEST_F(DecisionsTest, OnlyProgressAndDeltasMayBeMergedForALaggingSubscriber) {
  Decision created = decide_create(&state_, "wf_1", {"agent-7", "n", {}}, now_);
  EXPECT_FALSE(created.mergeable);
  commit(created);
  Decision opened = decide_open_stream(&state_, "wf_1", "st_1", now_);
  EXPECT_FALSE(opened.mergeable);
  commit(opened);
  Decision delta = decide_append(&state_, "st_1", "abc", std::nullopt);
  EXPECT_TRUE(delta.mergeable);
  commit(delta);
  Decision progress = decide_progress(&state_, "wf_1", 5, std::nullopt, now_);
  EXPECT_TRUE(progress.mergeable);
  commit(progress);
  EXPECT_FALSE(decide_phase(&state_, "wf_1", Phase::design, std::nullopt, now_).mergeable);
  EXPECT_FALSE(decide_end(&state_, "st_1", StreamStatus::completed, std::nullopt, now_).mergeable);
}

TEST_F(DecisionsTest, OnlyFinishedWorkflowsAreDeletedAndTheyTakeTheirStreamsAlong) {
  create();
  open("wf_1");
  commit(decide_append(&state_, "st_1", "abc", std::nullopt));
  Decision d = decide_delete(&state_, "wf_1");
  expect_refused(d, Refusal::conflict, "workflow_active");
  EXPECT_EQ(json::parse(d.error_details_json).as_object()["phase"], "requirements");

  move_to("wf_1", Phase::cancelled);
  d = decide_delete(&state_, "wf_1");
  EXPECT_EQ(d.type, "workflow_deleted");
  json::object data = commit(d);
  EXPECT_EQ(data["workflow_id"], "wf_1");
  EXPECT_EQ(data["streams"], (json::array{"st_1"}));
  EXPECT_FALSE(state_.find_workflow("wf_1"));
  EXPECT_FALSE(state_.find_stream("st_1"));
  EXPECT_FALSE(index_.agent_of_workflow("wf_1"));
  EXPECT_FALSE(index_.agent_of_stream("st_1"));
  // workflow, stream and its one delta record erased
  int erased = 0;
  for (const auto& r : d.records) erased += r.json.empty();
  EXPECT_EQ(erased, 3);
  expect_refused(decide_delete(&state_, "wf_1"), Refusal::not_found, "workflow_not_found");
  // The deleted workflow's number is not given again.
  create("wf_2");
  EXPECT_EQ(state_.find_workflow("wf_2")->number, 2u);
}

// What a shared broker's directory learns from each event: which ids lead to the agent, its count in
// the agents list, and which streams are open with their last activity.
TEST_F(DecisionsTest, EachEventSaysWhatTheDirectoryLearns) {
  using V = std::vector<std::string>;
  Decision made = decide_create(&state_, "wf_1", {"agent-7", "Build login", {}}, now_);
  EXPECT_EQ(made.directory.added, V{"wf_1"});
  EXPECT_EQ(made.directory.counted, 1);
  EXPECT_TRUE(made.directory.listed);
  commit(made);
  Decision phase = decide_phase(&state_, "wf_1", Phase::design, std::nullopt, now_);
  EXPECT_TRUE(phase.directory.added.empty());
  EXPECT_EQ(phase.directory.counted, 0);
  EXPECT_TRUE(phase.directory.listed);
  commit(phase);
  Decision opened = decide_open_stream(&state_, "wf_1", "st_1", now_);
  EXPECT_EQ(opened.directory.added, V{"st_1"});
  EXPECT_EQ(opened.directory.active, V{"st_1"});
  EXPECT_EQ(opened.directory.counted, 0);
  commit(opened);
  open("wf_1", "st_2");
  Decision fed = decide_append(&state_, "st_1", "abc", std::nullopt);
  EXPECT_EQ(fed.directory.active, V{"st_1"});
  EXPECT_TRUE(fed.directory.added.empty());
  commit(fed);
  Decision ended = decide_end(&state_, "st_2", StreamStatus::completed, std::nullopt, now_);
  EXPECT_EQ(ended.directory.closed, V{"st_2"});
  commit(ended);
  Decision expired = decide_expire(&state_, "st_1", std::numeric_limits<std::int64_t>::max(), now_);
  EXPECT_EQ(expired.directory.closed, V{"st_1"});
  // A refusal changes nothing anywhere.
  EXPECT_TRUE(decide_delete(&state_, "wf_1").directory.empty());
  open("wf_1", "st_3");
  move_to("wf_1", Phase::cancelled);
  Decision gone = decide_delete(&state_, "wf_1");
  EXPECT_EQ(gone.directory.removed, (V{"wf_1", "st_1", "st_2", "st_3"}));
  EXPECT_EQ(gone.directory.closed, (V{"st_1", "st_3"}));  // st_1's expiry was never committed
  EXPECT_EQ(gone.directory.counted, -1);
  EXPECT_TRUE(gone.directory.listed);
}

TEST_F(DecisionsTest, AStreamCountsItsDeltasFromZero) {
  create();
  Decision opened = decide_open_stream(&state_, "wf_1", "st_1", now_);
  EXPECT_EQ(opened.type, "stream");
  json::object data = commit(opened);
  EXPECT_EQ(data["started"], true);
  EXPECT_EQ(data["workflow_id"], "wf_1");
  EXPECT_EQ(json::parse(opened.reply_json).as_object()["stream_id"], "st_1");

  const char* pieces[] = {"Hel", "lo", ", w\xc3\xb6rld"};
  std::uint64_t expected = 0;
  for (const char* piece : pieces) {
    data = commit(decide_append(&state_, "st_1", piece, std::nullopt));
    EXPECT_EQ(data["index"], expected);
    EXPECT_EQ(data["delta"], piece);
    EXPECT_EQ(data["stream_id"], "st_1");
    ++expected;
  }
  EXPECT_EQ(state_.find_stream("st_1")->text, "Hello, w\xc3\xb6rld");

  Decision ended = decide_end(&state_, "st_1", StreamStatus::completed, std::nullopt, now_ + 5);
  data = commit(ended);
  EXPECT_EQ(data["done"], true);
  EXPECT_EQ(data["status"], "completed");
  EXPECT_EQ(data["deltas"], 3);
  EXPECT_EQ(data["length"], 12);
  EXPECT_EQ(data["bytes"], 13);
  EXPECT_FALSE(json::parse(ended.reply_json).as_object().contains("done"));
  // the stream record, the erasure of its three delta records, then the text it ended with (cold)
  ASSERT_EQ(ended.records.size(), 5u);
  EXPECT_EQ(ended.records[0].kind, kStreamKind);
  for (std::size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(ended.records[i].kind, kDeltaKind);
    EXPECT_TRUE(ended.records[i].json.empty());
  }
  EXPECT_EQ(ended.records[4].kind, kStreamTextKind);
  EXPECT_EQ(ended.records[4].kind.front(), store::kColdKindPrefix);
  EXPECT_EQ(parse_delta_record(ended.records[4].json), "Hello, w\xc3\xb6rld");
  const Stream* st = state_.find_stream("st_1");
  EXPECT_EQ(st->status, StreamStatus::completed);
  EXPECT_EQ(st->ended_at_ms, now_ + 5);
}

TEST_F(DecisionsTest, StreamRefusals) {
  create();
  expect_refused(decide_open_stream(&state_, "wf_x", "st_1", now_), Refusal::not_found, "workflow_not_found");
  open("wf_1");
  expect_refused(decide_open_stream(&state_, "wf_1", "st_1", now_), Refusal::conflict, "stream_exists");
  expect_refused(decide_append(&state_, "st_x", "a", std::nullopt), Refusal::not_found, "stream_not_found");
  expect_refused(decide_append(&state_, "st_1", "", std::nullopt), Refusal::invalid, "bad_field");
  expect_refused(decide_append(&state_, "st_1", "\xf0\x9f", std::nullopt), Refusal::invalid, "bad_utf8");

  commit(decide_append(&state_, "st_1", "a", 0));
  Decision d = decide_append(&state_, "st_1", "b", 0);
  expect_refused(d, Refusal::conflict, "index_mismatch");
  EXPECT_EQ(json::parse(d.error_details_json).as_object()["expected"], 1);
  commit(decide_append(&state_, "st_1", "b", 1));

  expect_refused(decide_end(&state_, "st_1", StreamStatus::streaming, std::nullopt, now_), Refusal::invalid,
                 "bad_field");
  commit(decide_end(&state_, "st_1", StreamStatus::failed, "model crashed", now_));
  EXPECT_EQ(state_.find_stream("st_1")->reason, "model crashed");
  d = decide_append(&state_, "st_1", "c", std::nullopt);
  expect_refused(d, Refusal::conflict, "stream_ended");
  EXPECT_EQ(json::parse(d.error_details_json).as_object()["status"], "failed");
  expect_refused(decide_end(&state_, "st_1", StreamStatus::completed, std::nullopt, now_), Refusal::conflict,
                 "stream_ended");
  expect_refused(decide_end(&state_, "st_x", StreamStatus::completed, std::nullopt, now_), Refusal::not_found,
                 "stream_not_found");

  move_to("wf_1", Phase::cancelled);
  expect_refused(decide_open_stream(&state_, "wf_1", "st_2", now_), Refusal::conflict, "workflow_finished");
}

TEST_F(DecisionsTest, AStreamHoldsAtMostItsLimit) {
  create();
  open("wf_1");
  std::string big(kMaxStreamTextBytes / 2, 'x');
  commit(decide_append(&state_, "st_1", big, std::nullopt));
  commit(decide_append(&state_, "st_1", big, std::nullopt));
  Decision d = decide_append(&state_, "st_1", "y", std::nullopt);
  expect_refused(d, Refusal::conflict, "stream_too_long");
  EXPECT_EQ(state_.find_stream("st_1")->bytes, kMaxStreamTextBytes);
}

TEST_F(DecisionsTest, OnlyAnIdleStreamExpires) {
  create();
  open("wf_1");  // activity at now_ by the state's clock
  expect_refused(decide_expire(&state_, "st_1", now_, now_), Refusal::conflict, "stream_active");
  json::object data = commit(decide_expire(&state_, "st_1", now_ + 1, now_ + 2));
  EXPECT_EQ(data["done"], true);
  EXPECT_EQ(data["status"], "failed");
  EXPECT_EQ(data["reason"], "idle_timeout");
  expect_refused(decide_expire(&state_, "st_1", now_ + 10, now_ + 10), Refusal::conflict, "stream_active");
}

}  // namespace
}  // namespace aw::workflow
