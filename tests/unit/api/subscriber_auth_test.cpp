// Where a subscriber's token is found, what a refusal looks like, and the token kept out of logged targets.
#include "api/subscriber_auth.hpp"

#include <gtest/gtest.h>

#include "protocol/client_message.hpp"
#include "protocol/ws_handshake.hpp"

namespace aw::api {
namespace {

TEST(SubscriberToken, FromTheBearerSubprotocol) {
  auto t = find_subscriber_token("bearer, abc.def.ghi", std::nullopt, "");
  EXPECT_TRUE(t.via_subprotocol);
  EXPECT_EQ(t.token, "abc.def.ghi");
  t = find_subscriber_token("chat,bearer,tok", std::nullopt, "token=q");
  EXPECT_TRUE(t.via_subprotocol);
  EXPECT_EQ(t.token, "tok");
  // bearer offered without a token: selected, and the token may come from elsewhere.
  t = find_subscriber_token("bearer", std::nullopt, "token=q");
  EXPECT_TRUE(t.via_subprotocol);
  EXPECT_EQ(t.token, "q");
  t = find_subscriber_token("chat, tok", std::nullopt, "");
  EXPECT_FALSE(t.via_subprotocol);
  EXPECT_TRUE(t.token.empty());
}

TEST(SubscriberToken, FromAuthorizationThenQuery) {
  EXPECT_EQ(find_subscriber_token("", std::string_view("Bearer h.t.x"), "token=q").token, "h.t.x");
  EXPECT_EQ(find_subscriber_token("", std::string_view("bearer  h.t.x "), "").token, "h.t.x");
  EXPECT_EQ(find_subscriber_token("", std::string_view("Basic dXNlcg=="), "token=q").token, "q");
  EXPECT_EQ(find_subscriber_token("", std::nullopt, "since=3&token=a%2Eb").token, "a.b");
  EXPECT_TRUE(find_subscriber_token("", std::nullopt, "since=3").token.empty());
}

TEST(SubscriberToken, NoVerifierLetsEveryoneIn) {
  auto a = authorize_subscriber(static_cast<const auth::Verifier*>(nullptr), "agent-7", {}, 0);
  EXPECT_FALSE(a.refusal);
  EXPECT_EQ(a.expires_s, 0);
}

TEST(SubscriberToken, RefusalsAreJsonWithWwwAuthenticate) {
  auth::Key k;
  k.material = "secret-secret-secret-secret-secret";
  k.algs = {"HS256"};
  auth::Verifier v({k}, {});
  auto missing = authorize_subscriber(&v, "agent-7", {}, 0);
  ASSERT_TRUE(missing.refusal);
  EXPECT_EQ(missing.refusal->status, 401u);
  EXPECT_NE(missing.refusal->body.find("\"token_missing\""), std::string::npos);
  ASSERT_EQ(missing.refusal->headers.size(), 1u);
  EXPECT_EQ(missing.refusal->headers[0].first, "WWW-Authenticate");
  auto invalid = authorize_subscriber(&v, "agent-7", {"x.y.z", false}, 0);
  ASSERT_TRUE(invalid.refusal);
  EXPECT_NE(invalid.refusal->body.find("\"token_invalid\""), std::string::npos);
  EXPECT_EQ(invalid.refusal->body.find("x.y.z"), std::string::npos);
}

TEST(SubscriberToken, RedactedFromQueries) {
  EXPECT_EQ(redact_token("token=abc"), "token=REDACTED");
  EXPECT_EQ(redact_token("since=1&token=abc&epoch=e"), "since=1&token=REDACTED&epoch=e");
  EXPECT_EQ(redact_token("since=1"), "since=1");
  EXPECT_EQ(redact_token(""), "");
  EXPECT_EQ(redact_token("xtoken=1"), "xtoken=1");
}

TEST(SubscriberToken, RefreshMessagesAndTheSelectedSubprotocol) {
  auto m = protocol::parse_client_message(R"({"type":"refresh","token":"a.b.c"})");
  EXPECT_EQ(m.kind, protocol::ClientMessage::Kind::refresh);
  EXPECT_EQ(m.token, "a.b.c");
  for (const char* bad :
       {R"({"type":"refresh"})", R"({"type":"refresh","token":""})", R"({"type":"refresh","token":1})"}) {
    m = protocol::parse_client_message(bad);
    EXPECT_EQ(m.kind, protocol::ClientMessage::Kind::invalid) << bad;
    EXPECT_EQ(m.error_code, "bad_message") << bad;
  }
  protocol::UpgradeRequest up;
  up.connection = "Upgrade";
  up.upgrade = "websocket";
  up.key = "dGhlIHNhbXBsZSBub25jZQ==";
  up.ws_version = "13";
  up.subprotocol = "bearer";
  auto answer = protocol::answer_upgrade(up, false);
  ASSERT_TRUE(answer.accepted);
  EXPECT_NE(answer.response.find("\r\nSec-WebSocket-Protocol: bearer\r\n"), std::string::npos);
  up.subprotocol = {};
  EXPECT_EQ(protocol::answer_upgrade(up, false).response.find("Sec-WebSocket-Protocol"), std::string::npos);
}

}  // namespace
}  // namespace aw::api
