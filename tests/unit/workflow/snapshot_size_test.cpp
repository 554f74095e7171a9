// The snapshot's size as AgentState keeps it: always at least what a snapshot of the state takes, not
// much more, and the bounds decisions check it against.
#include "workflow/snapshot_size.hpp"

#include <gtest/gtest.h>

#include <string>

#include "protocol/envelope.hpp"
#include "workflow/decisions.hpp"

namespace aw::workflow {
using hub::Decision;
namespace {

namespace json = boost::json;
using Refusal = Decision::Refusal;

TEST(SnapshotSize, TextBytesAreWhatBoostJsonWrites) {
  std::string all;
  for (int c = 1; c < 0x80; ++c) all.push_back(static_cast<char>(c));
  all += "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  for (std::size_t i = 0; i < all.size(); ++i) {
    std::string piece = all.substr(i, 1);
    if (static_cast<unsigned char>(piece[0]) >= 0x80) break;
    EXPECT_EQ(json_text_bytes(piece) + 2, json::serialize(json::string(piece)).size()) << i;
  }
  EXPECT_EQ(json_text_bytes(all) + 2, json::serialize(json::string(all)).size());
}

class SnapshotBound : public ::testing::Test {
 protected:
  void commit(const Decision& d) {
    ASSERT_EQ(d.refusal, Refusal::none) << d.error_code << ": " << d.error_message;
    state_.apply(d.records);
  }
  // The snapshot message itself must never be larger than the bound kept.
  void expect_bounded() {
    std::string message =
        protocol::snapshot(state_.agent_id(), 1234567, "0123456789abcdef", true, state_.snapshot_json());
    EXPECT_LE(message.size() + 10, state_.snapshot_bytes());
    // ... and the bound is not so loose that it refuses much that would fit.
    EXPECT_LE(state_.snapshot_bytes(), message.size() + kSnapshotFrameBytes + 250 * streams_);
  }

  WorkflowIndex index_;
  std::int64_t now_ = 1'700'000'000'000;
  AgentState state_{std::string(128, 'a'), index_, [this] { return now_; }};
  std::size_t streams_ = 0;
};

TEST_F(SnapshotBound, FollowsEveryKindOfChange) {
  const std::string agent = state_.agent_id();
  const std::string nasty = "\x01\"\\\n\x1f" + std::string(100, '\x02') + "\xc3\xa9";
  expect_bounded();
  commit(decide_create(&state_, "wf_1", {agent, nasty, {{"k", nasty}, {"n", 1.5e300}}}, now_));
  commit(decide_create(&state_, "wf_2", {agent, "two", {}}, now_));
  expect_bounded();
  commit(decide_requirements(&state_, "wf_1", {nasty, json::array{json::object{{"x", nasty}}, "s"}}, now_));
  commit(decide_phase(&state_, "wf_1", Phase::design, nasty, now_));
  commit(decide_progress(&state_, "wf_1", 50, nasty, now_));
  expect_bounded();
  for (int s = 0; s < 3; ++s) {
    std::string id = "st_" + std::to_string(s);
    commit(decide_open_stream(&state_, "wf_1", id, now_));
    ++streams_;
    for (int i = 0; i < 50; ++i) commit(decide_append(&state_, id, nasty, std::nullopt));
    expect_bounded();
  }
  commit(decide_end(&state_, "st_0", StreamStatus::failed, nasty, now_));
  commit(decide_phase(&state_, "wf_2", Phase::cancelled, std::nullopt, now_));
  commit(decide_delete(&state_, "wf_2"));
  expect_bounded();
  // A restart rebuilds the same bound from the records alone (here: the current ones, any order).
  commit(decide_phase(&state_, "wf_1", Phase::cancelled, std::nullopt, now_));
  commit(decide_delete(&state_, "wf_1"));
  EXPECT_EQ(state_.snapshot_bytes(), kSnapshotFrameBytes);
  EXPECT_EQ(state_.open_stream_count(), 0u);
}

TEST_F(SnapshotBound, EachLimitIsRefusedWithItsCode) {
  const std::string agent = state_.agent_id();
  Limits limits;
  limits.max_workflows_per_agent = 2;
  limits.max_metadata_bytes = 100;
  limits.max_requirements_bytes = 100;
  limits.max_open_streams_per_workflow = 2;
  limits.max_open_streams_per_agent = 3;
  limits.max_snapshot_bytes = 64 << 10;

  json::object big{{"k", std::string(100, 'x')}};
  Decision d = decide_create(&state_, "wf_1", {agent, "n", big}, now_, limits);
  EXPECT_EQ(d.error_code, "metadata_too_large");
  EXPECT_EQ(d.refusal, Refusal::invalid);
  commit(decide_create(&state_, "wf_1", {agent, "n", {{"k", std::string(80, 'x')}}}, now_, limits));
  commit(decide_create(&state_, "wf_2", {agent, "n", {}}, now_, limits));
  d = decide_create(&state_, "wf_3", {agent, "n", {}}, now_, limits);
  EXPECT_EQ(d.error_code, "too_many_workflows");
  EXPECT_EQ(d.refusal, Refusal::conflict);

  d = decide_requirements(&state_, "wf_1", {std::string(99, 't'), {}}, now_, limits);
  EXPECT_EQ(d.error_code, "requirements_too_large");
  commit(decide_requirements(&state_, "wf_1", {std::string(90, 't'), {}}, now_, limits));

  commit(decide_open_stream(&state_, "wf_1", "st_1", now_, limits));
  commit(decide_open_stream(&state_, "wf_1", "st_2", now_, limits));
  d = decide_open_stream(&state_, "wf_1", "st_3", now_, limits);
  EXPECT_EQ(d.error_code, "too_many_streams");
  commit(decide_open_stream(&state_, "wf_2", "st_3", now_, limits));
  d = decide_open_stream(&state_, "wf_2", "st_4", now_, limits);
  EXPECT_EQ(d.error_code, "too_many_streams");
  EXPECT_EQ(json::parse(d.error_details_json).at("per"), "agent");
  commit(decide_end(&state_, "st_3", StreamStatus::completed, std::nullopt, now_, limits));
  commit(decide_open_stream(&state_, "wf_2", "st_4", now_, limits));

  // Text grows until the snapshot would pass its bound less the finishing reserve.
  const std::string piece(4096, 'p');
  std::uint64_t appended = 0;
  for (;;) {
    d = decide_append(&state_, "st_1", piece, std::nullopt, limits);
    if (d.refusal != Refusal::none) break;
    commit(d);
    appended += piece.size();
  }
  EXPECT_EQ(d.error_code, "snapshot_full");
  EXPECT_EQ(d.refusal, Refusal::conflict);
  EXPECT_GT(appended, 40u << 10);
  EXPECT_LE(state_.snapshot_bytes(),
            limits.max_snapshot_bytes - finishing_reserve(limits.max_snapshot_bytes));
  // Growth of any kind is refused now; finishing is not, with a reason or without.
  EXPECT_EQ(decide_progress(&state_, "wf_1", 5, std::string(2000, 'm'), now_, limits).error_code,
            "snapshot_full");
  EXPECT_EQ(decide_create(&state_, "wf_3", {agent, std::string(200, 'n'), {}}, now_, limits).error_code,
            "too_many_workflows");
  commit(decide_end(&state_, "st_2", StreamStatus::failed, std::string(1000, '\x01'), now_, limits));
  commit(decide_phase(&state_, "wf_2", Phase::cancelled, std::nullopt, now_, limits));
  commit(decide_delete(&state_, "wf_2"));
  EXPECT_LE(state_.snapshot_bytes(), limits.max_snapshot_bytes);
  std::string message = protocol::snapshot(agent, 1, "e", false, state_.snapshot_json());
  EXPECT_LE(message.size(), limits.max_snapshot_bytes);
}

TEST_F(SnapshotBound, FinishingWithoutAReasonIsNeverRefused) {
  const std::string agent = state_.agent_id();
  Limits limits;
  limits.max_snapshot_bytes = 16 << 10;
  commit(decide_create(&state_, "wf_1", {agent, "n", {}}, now_, limits));
  commit(decide_open_stream(&state_, "wf_1", "st_1", now_, limits));
  while (true) {
    Decision d = decide_append(&state_, "st_1", std::string(500, '\x01'), std::nullopt, limits);
    if (d.refusal != Refusal::none) break;
    commit(d);
  }
  // Even with the reserve used up by a long reason, a plain cancel goes through.
  commit(decide_phase(&state_, "wf_1", Phase::design, std::nullopt, now_, limits));
  EXPECT_EQ(
      decide_phase(&state_, "wf_1", Phase::cancelled, std::string(2048, '\x01'), now_, limits).error_code,
      "snapshot_full");
  commit(decide_phase(&state_, "wf_1", Phase::cancelled, std::nullopt, now_, limits));
}

}  // namespace
}  // namespace aw::workflow
