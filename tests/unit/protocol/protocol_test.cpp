// Envelopes, frames, raw JSON slices and the parsing of publisher and client messages.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "core/utf8.hpp"
#include "protocol/client_message.hpp"
#include "protocol/envelope.hpp"
#include "protocol/json_rules.hpp"
#include "protocol/json_span.hpp"
#include "protocol/publish_request.hpp"
#include "protocol/ws_frame.hpp"

namespace aw {
namespace {

TEST(JsonSpan, SlicesMembersVerbatim) {
  std::string_view body =
      R"({"type":"x", "data" : {"b": 1.50, "s": "h\"é}", "n": [1, {"d": "}"}]} , "z": null})";
  auto span = protocol::member_span(body, "data");
  ASSERT_TRUE(span);
  EXPECT_EQ(*span, R"({"b": 1.50, "s": "h\"é}", "n": [1, {"d": "}"}]})");
  EXPECT_EQ(*protocol::member_span(body, "z"), "null");
  EXPECT_EQ(*protocol::member_span(body, "type"), "\"x\"");
  EXPECT_FALSE(protocol::member_span(body, "missing"));
  EXPECT_EQ(*protocol::member_span(R"({"a":1,"a":2})", "a"), "2");  // last wins
  // Keys are compared as parsers read them.
  EXPECT_EQ(*protocol::member_span(R"({"d\u0061ta":{"b":2},"x\"":3})", "data"), R"({"b":2})");
  EXPECT_EQ(*protocol::member_span(R"({"x\"":3})", "x\""), "3");
}

TEST(JsonRules, RefusesWhatParsersWouldReadTwoWays) {
  EXPECT_FALSE(protocol::check_json_rules(R"({"a":{"b":[1,{"c":1.5e308,"d":-1e-400}]},"b":2})"));
  EXPECT_FALSE(protocol::check_json_rules(R"([{"a":1},{"a":2},{"a":{"a":{"a":3}}}])"));
  EXPECT_FALSE(protocol::check_json_rules(R"({"a":1,"A":2,"a ":3,"\u00e9":4,"\u00c9":5})"));
  struct Case {
    std::string text;
    const char* code;
  } cases[] = {
      {R"({"n":1e400})", "number_out_of_range"},
      {R"({"n":-1e400})", "number_out_of_range"},
      {R"([1.8e308])", "number_out_of_range"},
      {"[1" + std::string(400, '0') + "]", "number_out_of_range"},
      {R"({"a":{"b":[{"c":-2e999}]}})", "number_out_of_range"},
      {R"({"a":1,"a":2})", "duplicate_key"},
      {R"({"data":{"a":1},"d\u0061ta":{"b":2}})", "duplicate_key"},
      {R"({"x":{"k":1,"m":2,"k":3}})", "duplicate_key"},
      {R"([{"ok":1},{"\u00e9":1,"é":2}])", "duplicate_key"},
      {R"({"a":{"b":1},"c":{"b":1},"b":{"a":1,"a":1}})", "duplicate_key"},
      {R"({"a":1)", "bad_json"},
      {R"({"n":1e99999999999999999})", "bad_json"},
  };
  for (const auto& c : cases) {
    auto problem = protocol::check_json_rules(c.text);
    ASSERT_TRUE(problem) << c.text;
    EXPECT_EQ(problem->code, c.code) << c.text;
  }
  // Many keys in one object cost n log n, and a nested object's keys do not clash with its parent's.
  std::string wide = "{";
  for (int i = 0; i < 20000; ++i) wide += "\"k" + std::to_string(i) + "\":{\"k0\":0},";
  wide += "\"k7\":1}";
  auto problem = protocol::check_json_rules(wide);
  ASSERT_TRUE(problem);
  EXPECT_EQ(problem->code, "duplicate_key");
  EXPECT_NE(problem->message.find("k7"), std::string::npos);
  wide.replace(wide.size() - 7, 7, "\"z\":1}");
  EXPECT_FALSE(protocol::check_json_rules(wide));
}

TEST(JsonSpan, QuotesAndEscapes) {
  std::string out;
  protocol::append_quoted(out, "a\"b\\c\n\x01é");
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\n\\u0001é\"");
}

TEST(WsFrame, HeaderSizesFollowRfc6455) {
  EXPECT_EQ(protocol::make_text_frame(std::string(125, 'x')).substr(0, 2), std::string("\x81\x7d"));
  auto mid = protocol::make_text_frame(std::string(126, 'x'));
  EXPECT_EQ(mid.substr(0, 4), std::string("\x81\x7e\x00\x7e", 4));
  EXPECT_EQ(mid.size(), 130u);
  auto big = protocol::make_text_frame(std::string(70000, 'x'));
  EXPECT_EQ(big.substr(0, 10), std::string("\x81\x7f\x00\x00\x00\x00\x00\x01\x11\x70", 10));
  EXPECT_EQ(big.size(), 70010u);
}

TEST(Envelope, EventIsFramedOnceWithDataVerbatim) {
  auto ev = protocol::make_event("agent-7", 42, "progress", 0, R"({"b": 1.50})");
  EXPECT_EQ(
      ev->envelope(),
      R"({"type":"progress","agent_id":"agent-7","seq":42,"ts":"1970-01-01T00:00:00.000Z","data":{"b": 1.50}})");
  EXPECT_EQ(ev->frame(), protocol::make_text_frame(ev->envelope()));
  EXPECT_EQ(ev->agent_id(), "agent-7");
  EXPECT_EQ(ev->type(), "progress");
  EXPECT_EQ(ev->data(), R"({"b": 1.50})");
  EXPECT_EQ(ev->bytes.size(), ev->frame().size());  // one block: the names are read from the envelope
}

TEST(Envelope, EventKeepsNamesTheEnvelopeHadToEscapeInTheirOwnSpelling) {
  // Published names are plain; the store hands back whatever it holds.
  const std::string type = "say \"hi\"";
  const std::string agent = "a\\b\n";
  auto ev = protocol::make_event(agent, 3, type, 0, "[1]", "key-1");
  EXPECT_EQ(ev->type(), type);
  EXPECT_EQ(ev->agent_id(), agent);
  EXPECT_EQ(ev->data(), "[1]");
  EXPECT_EQ(ev->idempotency_key, "key-1");
  EXPECT_EQ(ev->frame(), protocol::make_text_frame(ev->envelope()));
  auto env = boost::json::parse(ev->envelope()).as_object();
  EXPECT_EQ(env.at("type").as_string(), type);
  EXPECT_EQ(env.at("agent_id").as_string(), agent);
  // A copy reads its own bytes.
  Event copy = *ev;
  ev.reset();
  EXPECT_EQ(copy.agent_id(), agent);
  EXPECT_EQ(copy.data(), "[1]");
  // Only one of the two escaped; a merged event's first_seq moves everything after it.
  auto merged = protocol::make_merged_event("plain", 1, 9, type, 0, "{}");
  EXPECT_EQ(merged->agent_id(), "plain");
  EXPECT_EQ(merged->type(), type);
  EXPECT_EQ(merged->data(), "{}");
  EXPECT_EQ(merged->first_seq, 1u);
}

TEST(Envelope, ConnectedCarriesTheSessionFacts) {
  protocol::ConnectedInfo info;
  info.session_id = "s1";
  info.agent_id = "a";
  info.epoch = "e1";
  info.seq = 9;
  info.heartbeat_interval_ms = 30000;
  info.idle_timeout_ms = 2500;
  std::string c = protocol::connected(info);
  for (auto part : {"\"type\":\"connected\"", "\"session_id\":\"s1\"", "\"epoch\":\"e1\"", "\"seq\":9",
                    "\"heartbeat_interval\":30,", "\"idle_timeout\":2.5,", "\"server_version\":"})
    EXPECT_NE(c.find(part), std::string::npos) << part << " missing in " << c;
}

TEST(PublishRequest, AcceptsValidBodies) {
  auto r = protocol::parse_publish_request(R"({"type":"phase.changed","data":{"to": "design", "n": 1e3}})");
  ASSERT_TRUE(r.ok) << r.error_message;
  EXPECT_EQ(r.request.type, "phase.changed");
  EXPECT_EQ(r.request.data, R"({"to": "design", "n": 1e3})");
  auto no_data = protocol::parse_publish_request(R"({"type":"x"})");
  ASSERT_TRUE(no_data.ok);
  EXPECT_EQ(no_data.request.data, "{}");
  // Only the top-level members count, wherever they stand; escapes in keys and the type are decoded;
  // whitespace around the object is fine.
  auto nested = protocol::parse_publish_request(
      " {\"meta\":{\"type\":5,\"data\":[]},\"data\":{\"type\":[1]},\"\\u0074ype\":\"b\\u002Ec\"}\n");
  ASSERT_TRUE(nested.ok) << nested.error_message;
  EXPECT_EQ(nested.request.type, "b.c");
  EXPECT_EQ(nested.request.data, R"({"type":[1]})");
  // Types are bounded by length, exactly.
  EXPECT_TRUE(protocol::parse_publish_request(R"({"type":")" + std::string(64, 't') + "\"}").ok);
  auto long_type = protocol::parse_publish_request(R"({"type":")" + std::string(100000, 't') + "\"}");
  EXPECT_EQ(long_type.error_code, "bad_type");
}

TEST(PublishRequest, WorkflowEventTypesAreTheWorkflowRoutesAlone) {
  for (const char* type :
       {"workflow_created", "requirements_submitted", "phase_changed", "stream", "workflow_deleted"}) {
    EXPECT_TRUE(protocol::is_workflow_event_type(type)) << type;
    auto r = protocol::parse_publish_request(std::string(R"({"type":")") + type + R"(","data":{}})");
    EXPECT_FALSE(r.ok) << type;
    EXPECT_EQ(r.error_code, "reserved_type") << type;
  }
  // Near names are anyone's.
  for (const char* type : {"Stream", "stream.delta", "phase_changed2", "progress", "workflow"})
    EXPECT_FALSE(protocol::is_workflow_event_type(type)) << type;
  // Generic progress is fine; progress naming a workflow is the workflow route's.
  EXPECT_TRUE(protocol::parse_publish_request(R"({"type":"progress","data":{"percent":40}})").ok);
  EXPECT_TRUE(protocol::parse_publish_request(R"({"type":"progress"})").ok);
  EXPECT_TRUE(protocol::parse_publish_request(
                  R"({"type":"progress","data":{"job":{"workflow_id":"w"}},"workflow_id":1})")
                  .ok);
  for (const char* body : {R"({"type":"progress","data":{"workflow_id":"wf_1","percent":40}})",
                           R"({"data":{"percent":1,"workflow_id":null},"type":"progress"})",
                           R"({"type":"progress","data":{"a":[{}],"workfl\u006Fw_id":"w"}})"}) {
    auto r = protocol::parse_publish_request(body);
    EXPECT_EQ(r.error_code, "reserved_type") << body;
  }
}

TEST(PublishRequest, RejectsBadBodies) {
  struct Case {
    const char* body;
    const char* code;
  } cases[] = {
      {"", "bad_json"},
      {"{", "bad_json"},
      {"[1]", "bad_json"},
      {R"({"data":{}})", "bad_type"},
      {R"({"type":5})", "bad_type"},
      {R"({"type":""})", "bad_type"},
      {R"({"type":"has space"})", "bad_type"},
      {R"({"type":"x","data":[1]})", "bad_data"},
      {R"({"type":"connected"})", "reserved_type"},
      {R"({"type":"snapshot","data":{}})", "reserved_type"},
      {R"({"type":"pong"})", "reserved_type"},
      {R"({"type":"x","data":"s"})", "bad_data"},
      {R"({"type":"x","data":null})", "bad_data"},
      {"{\"type\":\"x\",\"data\":{\"s\":\"\xff\"}}", "bad_json"},  // invalid UTF-8
      {R"({"type":"x"} {})", "bad_json"},                          // something after the object
      {R"({"type":"x","data":{}}])", "bad_json"},
      {R"("type")", "bad_json"},
      {R"({"data":{"type":"x"}})", "bad_type"},  // a nested "type" is not the event's
      {R"({"type":{"type":"x"}})", "bad_type"},
      {R"({"type":["x"]})", "bad_type"},
      {R"({"type":"x","type":7})", "duplicate_key"},  // parsers would differ on which counts
      {R"({"type":"x","data":{},"data":1})", "duplicate_key"},
      {R"({"type":"x","data":{"a":[{"b":[[]]}]}, "data":[]})", "duplicate_key"},
      {R"({"type":"x","\u0074ype":"y"})", "duplicate_key"},
      {R"({"type":"x","data":{"a":1},"d\u0061ta":{"b":2}})", "duplicate_key"},
      {R"({"type":"x","data":{"a":{"b":1,"b":2}}})", "duplicate_key"},
      {R"({"type":"x","data":{"n":1e400}})", "number_out_of_range"},
      {R"({"type":"x","data":{"n":[-1e400]}})", "number_out_of_range"},
      {R"({"type":"x","other":1e400})", "number_out_of_range"},
  };
  for (const auto& c : cases) {
    auto r = protocol::parse_publish_request(c.body);
    EXPECT_FALSE(r.ok) << c.body;
    EXPECT_EQ(r.error_code, c.code) << c.body;
  }
}

TEST(ClientMessage, KnowsPingAndSnapshot) {
  using K = protocol::ClientMessage::Kind;
  EXPECT_EQ(protocol::parse_client_message(R"({"type":"ping"})").kind, K::ping);
  EXPECT_EQ(protocol::parse_client_message(R"({"type":"snapshot"})").kind, K::snapshot);
  auto bad = protocol::parse_client_message("nope");
  EXPECT_EQ(bad.kind, K::invalid);
  EXPECT_EQ(bad.error_code, "bad_json");
  EXPECT_EQ(protocol::parse_client_message(R"({"type":"dance"})").error_code, "unknown_type");
  EXPECT_EQ(protocol::parse_client_message(R"({"kind":"ping"})").error_code, "bad_message");
}

TEST(ClientMessage, AnUnknownTypeIsEchoedCutAtACharacterBoundary) {
  // 63 ASCII bytes, then characters of 4, 2 and 3 bytes: byte 64 falls inside the first of them.
  for (std::string tail : {"\xf0\x9f\x98\x80", "\xc3\xa9", "\xe2\x82\xac"}) {
    std::string type = std::string(63, 'x') + tail + tail;
    auto m = protocol::parse_client_message(R"({"type":")" + type + R"("})");
    ASSERT_EQ(m.error_code, "unknown_type");
    EXPECT_TRUE(is_valid_utf8(m.error_message)) << m.error_message;
    EXPECT_NE(m.error_message.find('"' + std::string(63, 'x') + '"'), std::string::npos) << m.error_message;
    // The error envelope that carries it is UTF-8 too.
    EXPECT_TRUE(is_valid_utf8(protocol::error("a", m.error_code, m.error_message)));
  }
  // A type of exactly 64 bytes is echoed whole.
  std::string exact = std::string(60, 'y') + "\xf0\x9f\x98\x80";
  auto m = protocol::parse_client_message(R"({"type":")" + exact + R"("})");
  EXPECT_NE(m.error_message.find('"' + exact + '"'), std::string::npos) << m.error_message;
}

}  // namespace
}  // namespace aw
