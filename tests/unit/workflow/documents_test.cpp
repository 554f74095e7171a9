// Stored records round-trip exactly; public JSON has the fields clients rely on.
#include "workflow/documents.hpp"

#include <gtest/gtest.h>

namespace aw::workflow {
namespace {

namespace json = boost::json;

Workflow sample_workflow() {
  Workflow wf;
  wf.id = "wf_1";
  wf.agent_id = "agent-7";
  wf.number = 3;
  wf.name = "Build the \"login\" page";
  wf.metadata = {{"team", "web"}, {"priority", 2}};
  wf.phase = Phase::testing;
  wf.phase_reason = "tests written";
  wf.progress = 55;
  wf.progress_message = "unit tests pass";
  wf.created_at_ms = 1'700'000'000'000;
  wf.updated_at_ms = 1'700'000'000'500;
  return wf;
}

TEST(Documents, WorkflowRecordRoundTrips) {
  Workflow wf = sample_workflow();
  auto back = parse_workflow_record(workflow_record(wf));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, wf.id);
  EXPECT_EQ(back->agent_id, wf.agent_id);
  EXPECT_EQ(back->number, wf.number);
  EXPECT_EQ(back->name, wf.name);
  EXPECT_EQ(back->metadata, wf.metadata);
  EXPECT_EQ(back->phase, wf.phase);
  EXPECT_EQ(back->phase_reason, wf.phase_reason);
  EXPECT_EQ(back->progress, wf.progress);
  EXPECT_EQ(back->progress_message, wf.progress_message);
  EXPECT_EQ(back->created_at_ms, wf.created_at_ms);
  EXPECT_EQ(back->updated_at_ms, wf.updated_at_ms);

  wf.phase_reason.reset();
  wf.progress_message.reset();
  back = parse_workflow_record(workflow_record(wf));
  ASSERT_TRUE(back);
  EXPECT_FALSE(back->phase_reason);
  EXPECT_FALSE(back->progress_message);
}

TEST(Documents, UnreadableRecordsAreRejected) {
  EXPECT_FALSE(parse_workflow_record(""));
  EXPECT_FALSE(parse_workflow_record("[]"));
  EXPECT_FALSE(parse_workflow_record("{\"id\":\"wf_1\"}"));
  std::string text = workflow_record(sample_workflow());
  auto pos = text.find("\"testing\"");
  ASSERT_NE(pos, std::string::npos);
  EXPECT_FALSE(parse_workflow_record(text.replace(pos, 9, "\"unknown\"")));
  EXPECT_FALSE(parse_stream_record("{}"));
  EXPECT_FALSE(parse_requirements_record("{\"text\":1}"));
}

TEST(Documents, RequirementsRecordRoundTrips) {
  Requirements req;
  req.text = "Users log in with email";
  req.items = {json::object{{"id", "R1"}, {"must", true}}, "a plain item"};
  req.revision = 2;
  req.submitted_at_ms = 42;
  auto back = parse_requirements_record(requirements_record(req));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->text, req.text);
  EXPECT_EQ(back->items, req.items);
  EXPECT_EQ(back->revision, 2u);
  EXPECT_EQ(back->submitted_at_ms, 42);
}

TEST(Documents, StreamRecordKeepsCountsButNeverText) {
  Stream st;
  st.id = "st_1";
  st.workflow_id = "wf_1";
  st.status = StreamStatus::failed;
  st.reason = "idle_timeout";
  st.started_at_ms = 10;
  st.ended_at_ms = 20;
  st.deltas = 4;
  st.length = 7;
  st.bytes = 9;
  st.text = "secret text";
  std::string record = stream_record(st);
  EXPECT_EQ(record.find("secret"), std::string::npos);
  auto back = parse_stream_record(record);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->id, "st_1");
  EXPECT_EQ(back->workflow_id, "wf_1");
  EXPECT_EQ(back->status, StreamStatus::failed);
  EXPECT_EQ(back->reason, "idle_timeout");
  EXPECT_EQ(back->started_at_ms, 10);
  EXPECT_EQ(back->ended_at_ms, 20);
  EXPECT_EQ(back->deltas, 4u);
  EXPECT_EQ(back->length, 7u);
  EXPECT_EQ(back->bytes, 9u);
  EXPECT_TRUE(back->text.empty());
}

TEST(Documents, DeltaRecordIdsSortByIndex) {
  EXPECT_EQ(delta_record_id("st_1", 7), "st_1/0000000007");
  EXPECT_LT(delta_record_id("st_1", 9), delta_record_id("st_1", 10));
  auto id = parse_delta_record_id("st_1/0000000123");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->stream_id, "st_1");
  EXPECT_EQ(id->index, 123u);
  EXPECT_FALSE(parse_delta_record_id("st_1"));
  EXPECT_FALSE(parse_delta_record_id("st_1/"));
  EXPECT_FALSE(parse_delta_record_id("st_1/12x"));
  EXPECT_FALSE(parse_delta_record_id("/1"));
}

TEST(Documents, DeltaRecordsKeepEveryCharacter) {
  const std::string delta = "line \"one\"\n\ttab \\ w\xc3\xb6rld";
  EXPECT_EQ(parse_delta_record(delta_record(delta)), delta);
  EXPECT_FALSE(parse_delta_record("42"));
}

TEST(Documents, PublicWorkflowJsonHasTheClientFields) {
  Workflow wf = sample_workflow();
  Requirements req;
  req.text = "t";
  req.revision = 1;
  req.submitted_at_ms = 1'700'000'000'000;
  Stream st;
  st.id = "st_1";
  st.workflow_id = wf.id;
  st.started_at_ms = 1'700'000'000'100;
  st.text = "not in summaries";
  json::object o = workflow_json(wf, &req, {&st});
  for (const char* key : {"id", "agent_id", "number", "name", "metadata", "phase", "phase_reason", "progress",
                          "progress_message", "requirements", "streams", "created_at", "updated_at"})
    EXPECT_TRUE(o.contains(key)) << key;
  EXPECT_EQ(o["phase"], "testing");
  EXPECT_EQ(o["progress"], 55);
  EXPECT_EQ(o["created_at"], "2023-11-14T22:13:20.000Z");
  EXPECT_EQ(o["requirements"].as_object()["revision"], 1);
  auto& streams = o["streams"].as_array();
  ASSERT_EQ(streams.size(), 1u);
  EXPECT_EQ(streams[0].as_object()["status"], "streaming");
  EXPECT_EQ(streams[0].as_object()["ended_at"], nullptr);
  EXPECT_FALSE(streams[0].as_object().contains("text"));
  EXPECT_EQ(workflow_json(wf, nullptr, {})["requirements"], nullptr);
}

TEST(Documents, OpenStreamJsonCarriesTextAndNextIndex) {
  Stream st;
  st.id = "st_1";
  st.workflow_id = "wf_1";
  st.text = "Hello";
  st.deltas = 2;
  st.length = 5;
  st.bytes = 5;
  st.started_at_ms = 1;
  json::object o = open_stream_json(st);
  EXPECT_EQ(o["text"], "Hello");
  EXPECT_EQ(o["index"], 2);
  EXPECT_EQ(o["workflow_id"], "wf_1");
  EXPECT_EQ(o["stream_id"], "st_1");
  EXPECT_TRUE(o.contains("started_at"));
}

}  // namespace
}  // namespace aw::workflow
