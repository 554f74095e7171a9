// Who may call a route: the credential (API key or JWT) becomes a principal, the route's Access is checked
// against it; the scope each route is registered with.
#include "api/credentials.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "api/router.hpp"
#include "auth/base64url.hpp"

namespace aw::api {
namespace {

using auth::Scope;

std::string entry(std::string name, std::string key, std::string scopes, std::string agents = "") {
  std::string e = "{\"name\":\"" + name + "\",\"sha256\":\"" + auth::to_hex(auth::sha256(key)) +
                  "\",\"scopes\":" + scopes;
  if (!agents.empty()) e += ",\"agents\":" + agents;
  return e + "}";
}

auth::ApiKeySet keys() {
  return auth::ApiKeySet(auth::parse_api_keys(
      "{\"keys\":[" + entry("reader", "k-read", R"(["read"])") + "," +
          entry("team", "k-team", R"(["publish","read","admin"])", R"(["team-a.*"])") + "]}",
      "t"));
}

Response route(const Router& r, std::string method, std::string path, std::string authorization) {
  Request req;
  req.method = std::move(method);
  req.path = std::move(path);
  req.authorization = std::move(authorization);
  Response out;
  out.status = 0;
  r.handle(req, [&out](Response res) { out = std::move(res); });
  return out;
}

std::string code_of(const Response& r) {
  return std::string(boost::json::parse(r.body).at("error").at("code").as_string());
}

class Guarded : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ok = [](const Request&, const Params&, Reply reply) { reply(Response{}); };
    router.guard_with(&credentials);
    router.add("GET", "/api/agents/{agent_id}/events", Access::need(Scope::read, Access::Agent::path), ok);
    router.add("POST", "/api/agents/{agent_id}/events", Access::need(Scope::publish, Access::Agent::path),
               ok);
    router.add("GET", "/metrics", Access::need(Scope::admin, Access::Agent::every), ok);
    router.add("GET", "/healthz", Access::open(), ok);
  }
  auth::ApiKeySet key_set = keys();
  Credentials credentials{nullptr, &key_set};
  Router router;
};

TEST_F(Guarded, MissingAndUnknownCredentialsAre401WithWwwAuthenticate) {
  auto missing = route(router, "GET", "/api/agents/a/events", "");
  EXPECT_EQ(missing.status, 401u);
  EXPECT_EQ(code_of(missing), "token_missing");
  ASSERT_EQ(missing.headers.size(), 1u);
  EXPECT_EQ(missing.headers[0].second, "Bearer realm=\"agentwire\"");
  EXPECT_EQ(code_of(route(router, "GET", "/api/agents/a/events", "Basic eDp5")), "token_missing");
  auto unknown = route(router, "GET", "/api/agents/a/events", "Bearer k-nope");
  EXPECT_EQ(unknown.status, 401u);
  EXPECT_EQ(code_of(unknown), "token_invalid");
  EXPECT_EQ(unknown.body.find("k-nope"), std::string::npos);
  EXPECT_EQ(route(router, "GET", "/api/agents/a/events", "bearer   k-read ").status, 200u);
}

TEST_F(Guarded, ScopeThenAgentAreChecked) {
  auto no_scope = route(router, "POST", "/api/agents/a/events", "Bearer k-read");
  EXPECT_EQ(no_scope.status, 403u);
  EXPECT_EQ(code_of(no_scope), "scope_missing");
  EXPECT_EQ(boost::json::parse(no_scope.body).at("error").at("scope").as_string(), "publish");
  auto other_agent = route(router, "POST", "/api/agents/b/events", "Bearer k-team");
  EXPECT_EQ(other_agent.status, 403u);
  EXPECT_EQ(code_of(other_agent), "agent_forbidden");
  EXPECT_EQ(route(router, "POST", "/api/agents/team-a.1/events", "Bearer k-team").status, 200u);
  // A route showing every agent refuses a key restricted to some, even with the scope.
  EXPECT_EQ(code_of(route(router, "GET", "/metrics", "Bearer k-team")), "agent_forbidden");
  EXPECT_EQ(code_of(route(router, "GET", "/metrics", "Bearer k-read")), "scope_missing");
}

TEST_F(Guarded, OpenRoutesNeedNothing) {
  EXPECT_EQ(route(router, "GET", "/healthz", "").status, 200u);
  EXPECT_EQ(route(router, "GET", "/healthz", "Bearer garbage").status, 200u);
}

TEST(Credentials, WithoutKeysEveryoneIsAnonymousWithEverything) {
  Credentials none(nullptr, nullptr);
  EXPECT_FALSE(none.required());
  auto a = none.authenticate("", 0);
  ASSERT_TRUE(a.principal);
  EXPECT_EQ(a.principal->kind, auth::Principal::Kind::anonymous);
  EXPECT_TRUE(a.principal->has(Scope::admin));
  EXPECT_TRUE(a.principal->allows("anything"));
}

TEST(Credentials, TokensCarryTheirScopesAndAgents) {
  auth::Key k;
  k.material = "secret-secret-secret-secret-secret";
  k.algs = {"HS256"};
  auth::Verifier v({k}, {});
  Credentials c(&v, nullptr);
  // A token signed elsewhere is token_invalid; one that is not JWT-shaped too (no keys file here).
  EXPECT_EQ(code_of(*c.authenticate("x.y.z", 0).refusal), "token_invalid");
  EXPECT_EQ(code_of(*c.authenticate("awk_abc", 0).refusal), "token_invalid");
  EXPECT_EQ(code_of(*c.authenticate("", 0).refusal), "token_missing");
}

TEST(AgentRefusal, OnlyForAPrincipalThatDoesNotAllowTheAgent) {
  auth::Principal p;
  p.agents = {"agent-7"};
  EXPECT_FALSE(agent_refusal(&p, "agent-7"));
  EXPECT_TRUE(agent_refusal(&p, "agent-8"));
  EXPECT_TRUE(agent_refusal(nullptr, "agent-7"));  // no caller known: refused, never let through
  EXPECT_EQ(agent_refusal(&p, "agent-8")->status, 403u);
}

}  // namespace
}  // namespace aw::api
