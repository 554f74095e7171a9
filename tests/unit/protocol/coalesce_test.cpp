// Merging for lagging subscribers: which events merge, what the merged message says, and that nothing
// else is ever merged away.
#include "protocol/coalesce.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "protocol/envelope.hpp"

namespace aw {
namespace {

namespace json = boost::json;

EventPtr delta(std::uint64_t seq, int index, std::string_view text, std::string_view stream = "st_1") {
  json::object d{{"stream_id", stream}, {"workflow_id", "wf_1"}, {"index", index}, {"delta", text}};
  return protocol::make_event("agent-1", seq, "stream", 1000 + static_cast<std::int64_t>(seq),
                              json::serialize(d), "", true);
}

EventPtr progress(std::uint64_t seq, int percent, std::string_view workflow = "wf_1") {
  json::object d{{"workflow_id", workflow}, {"percent", percent}, {"message", "m"}};
  return protocol::make_event("agent-1", seq, "progress", 1000 + static_cast<std::int64_t>(seq),
                              json::serialize(d), "", true);
}

json::object envelope_of(const Event& ev) {
  return json::parse(ev.envelope()).as_object();
}

TEST(Coalesce, ConsecutiveDeltasOfOneStreamMergeIntoOneMessage) {
  auto a = delta(5, 0, "Hello");
  auto b = delta(6, 1, ", wor");
  auto ab = protocol::coalesce(*a, *b);
  ASSERT_TRUE(ab);
  auto c = delta(7, 2, "ld \xE2\x9C\x93");  // UTF-8 survives the round trip
  auto abc = protocol::coalesce(*ab, *c);
  ASSERT_TRUE(abc);

  EXPECT_EQ(abc->seq, 7u);
  EXPECT_EQ(abc->first_seq, 5u);
  EXPECT_EQ(abc->ts_ms, c->ts_ms);
  auto env = envelope_of(*abc);
  EXPECT_EQ(env.at("type"), "stream");
  EXPECT_EQ(env.at("seq"), 7);
  EXPECT_EQ(env.at("first_seq"), 5);
  const auto& data = env.at("data").as_object();
  EXPECT_EQ(data.at("stream_id"), "st_1");
  EXPECT_EQ(data.at("workflow_id"), "wf_1");
  EXPECT_EQ(data.at("index"), 0);
  EXPECT_EQ(data.at("count"), 3);
  EXPECT_EQ(data.at("delta"), "Hello, world \xE2\x9C\x93");
  // The frame is a complete text frame around the envelope.
  EXPECT_EQ(static_cast<unsigned char>(abc->frame()[0]), 0x81);
}

TEST(Coalesce, EventsThatStandAloneAreMarkedAsSuch) {
  auto a = delta(5, 0, "x");
  EXPECT_EQ(a->first_seq, 0u);
  EXPECT_FALSE(envelope_of(*a).contains("first_seq"));
}

TEST(Coalesce, DeltasOfOtherStreamsOrWithAGapDoNotMerge) {
  EXPECT_FALSE(protocol::coalesce(*delta(5, 0, "a"), *delta(6, 0, "b", "st_2")));
  EXPECT_FALSE(protocol::coalesce(*delta(5, 0, "a"), *delta(6, 2, "b")));  // index gap
  EXPECT_FALSE(protocol::coalesce(*delta(5, 0, "a"), *delta(7, 1, "b")));  // seq gap
  EXPECT_FALSE(protocol::coalesce(*delta(5, 0, "a"), *progress(6, 10)));
}

TEST(Coalesce, StreamStartsEndsAndForeignStreamEventsNeverMerge) {
  auto start = protocol::make_event("agent-1", 4, "stream", 1,
                                    R"({"stream_id":"st_1","workflow_id":"wf_1","started":true})", "", true);
  auto end = protocol::make_event(
      "agent-1", 6, "stream", 1,
      R"({"stream_id":"st_1","workflow_id":"wf_1","status":"completed","deltas":1,"done":true})", "", true);
  auto foreign = protocol::make_event("agent-1", 6, "stream", 1,
                                      R"({"stream_id":"st_1","index":1,"delta":"b","extra":1})", "", true);
  EXPECT_FALSE(protocol::coalesce(*start, *delta(5, 0, "a")));
  EXPECT_FALSE(protocol::coalesce(*delta(5, 0, "a"), *end));
  EXPECT_FALSE(protocol::coalesce(*delta(5, 0, "a"), *foreign));
  auto not_object = protocol::make_event("agent-1", 6, "stream", 1, R"([1,2])", "", true);
  EXPECT_FALSE(protocol::coalesce(*delta(5, 0, "a"), *not_object));
}

TEST(Coalesce, AMergedDeltaStopsGrowingAtTheLimit) {
  auto a = delta(5, 0, std::string(10, 'a'));
  EXPECT_TRUE(protocol::coalesce(*a, *delta(6, 1, std::string(6, 'b')), 16));
  EXPECT_FALSE(protocol::coalesce(*a, *delta(6, 1, std::string(7, 'b')), 16));
}

TEST(Coalesce, ProgressKeepsOnlyTheLatestOfOneWorkflow) {
  auto a = progress(10, 10);
  auto b = progress(11, 20);
  auto ab = protocol::coalesce(*a, *b);
  ASSERT_TRUE(ab);
  auto abc = protocol::coalesce(*ab, *progress(12, 30));
  ASSERT_TRUE(abc);
  EXPECT_EQ(abc->first_seq, 10u);
  EXPECT_EQ(abc->seq, 12u);
  auto env = envelope_of(*abc);
  EXPECT_EQ(env.at("first_seq"), 10);
  EXPECT_EQ(env.at("data").at("percent"), 30);
  EXPECT_FALSE(protocol::coalesce(*progress(10, 10, "wf_1"), *progress(11, 20, "wf_2")));
}

TEST(Coalesce, PhaseChangesRequirementsAndGenericEventsNeverMerge) {
  for (std::string type : {"phase_changed", "requirements_submitted", "workflow_created", "bulk"}) {
    auto a = protocol::make_event("agent-1", 1, type, 1, R"({"workflow_id":"wf_1"})", "", true);
    auto b = protocol::make_event("agent-1", 2, type, 2, R"({"workflow_id":"wf_1"})", "", true);
    EXPECT_FALSE(protocol::coalesce(*a, *b)) << type;
  }
}

TEST(Coalesce, GenericEventsShapedLikeTheDomainsNeverMerge) {
  // What POST /api/agents/{id}/events makes: not mergeable, however much it looks like progress or a delta.
  auto generic_progress = [](std::uint64_t seq) {
    return protocol::make_event("agent-1", seq, "progress", 1, R"({"workflow_id":"wf_1","percent":5})");
  };
  EXPECT_FALSE(protocol::coalesce(*generic_progress(1), *generic_progress(2)));
  EXPECT_FALSE(protocol::coalesce(*progress(1, 5), *generic_progress(2)));
  EXPECT_FALSE(protocol::coalesce(*generic_progress(1), *progress(2, 5)));
  auto generic_delta = protocol::make_event(
      "agent-1", 6, "stream", 1, R"({"stream_id":"st_1","workflow_id":"wf_1","index":1,"delta":"b"})");
  EXPECT_FALSE(protocol::coalesce(*delta(5, 0, "a"), *generic_delta));
  // The same shapes from the domain do merge, and what they merge into may merge again.
  auto merged = protocol::coalesce(*progress(1, 5), *progress(2, 6));
  ASSERT_TRUE(merged);
  EXPECT_TRUE(merged->mergeable);
  EXPECT_TRUE(protocol::coalesce(*merged, *progress(3, 7)));
}

}  // namespace
}  // namespace aw
