// Claim rules: sub and exp required, nbf/iat with leeway, aud/iss when configured, the agents claim.
#include "auth/claims.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

namespace aw::auth {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;

ClaimCheck check(std::string_view json, ClaimRules rules = {}) {
  return check_claims(boost::json::parse(json).as_object(), rules, kNow);
}

std::string with(std::string extra = "") {
  return R"({"sub":"u","exp":)" + std::to_string(kNow + 60) + R"(,"agents":["a"])" + extra + "}";
}

TEST(Claims, AValidSetPasses) {
  auto c = check(with());
  ASSERT_EQ(c.code, ClaimCheck::Code::ok) << c.message;
  EXPECT_EQ(c.claims.sub, "u");
  EXPECT_EQ(c.claims.exp, kNow + 60);
  EXPECT_EQ(c.claims.agents, std::vector<std::string>{"a"});
}

TEST(Claims, SubIsRequired) {
  EXPECT_EQ(check(R"({"exp":1900000000,"agents":[]})").code, ClaimCheck::Code::invalid);
  EXPECT_EQ(check(R"({"sub":"","exp":1900000000})").code, ClaimCheck::Code::invalid);
  EXPECT_EQ(check(R"({"sub":7,"exp":1900000000})").code, ClaimCheck::Code::invalid);
}

TEST(Claims, ExpIsRequiredAndExact) {
  EXPECT_EQ(check(R"({"sub":"u"})").code, ClaimCheck::Code::invalid);
  EXPECT_EQ(check(R"({"sub":"u","exp":"soon"})").code, ClaimCheck::Code::invalid);
  EXPECT_EQ(check(R"({"sub":"u","exp":)" + std::to_string(kNow) + "}").code, ClaimCheck::Code::expired);
  EXPECT_EQ(check(R"({"sub":"u","exp":)" + std::to_string(kNow - 1) + "}").code, ClaimCheck::Code::expired);
  EXPECT_EQ(check(R"({"sub":"u","exp":)" + std::to_string(kNow + 1) + "}").code, ClaimCheck::Code::ok);
  EXPECT_EQ(check(R"({"sub":"u","exp":)" + std::to_string(kNow) + ".5}").code, ClaimCheck::Code::expired);
  EXPECT_EQ(check(R"({"sub":"u","exp":1e300})").code, ClaimCheck::Code::invalid);
}

TEST(Claims, NbfAndIatHaveLeeway) {
  auto at = [](const char* name, std::int64_t t) {
    return with(std::string(",\"") + name + "\":" + std::to_string(t));
  };
  for (const char* name : {"nbf", "iat"}) {
    EXPECT_EQ(check(at(name, kNow + kLeewaySeconds)).code, ClaimCheck::Code::ok) << name;
    EXPECT_EQ(check(at(name, kNow + kLeewaySeconds + 1)).code, ClaimCheck::Code::invalid) << name;
    EXPECT_EQ(check(at(name, kNow - 1000)).code, ClaimCheck::Code::ok) << name;
    EXPECT_EQ(check(with(std::string(",\"") + name + "\":\"x\"")).code, ClaimCheck::Code::invalid) << name;
  }
}

TEST(Claims, AudienceAndIssuerWhenConfigured) {
  ClaimRules rules{"aw", "https://idp"};
  EXPECT_EQ(check(with(R"(,"aud":"aw","iss":"https://idp")"), rules).code, ClaimCheck::Code::ok);
  EXPECT_EQ(check(with(R"(,"aud":["x","aw"],"iss":"https://idp")"), rules).code, ClaimCheck::Code::ok);
  EXPECT_EQ(check(with(R"(,"aud":["x"],"iss":"https://idp")"), rules).code, ClaimCheck::Code::invalid);
  EXPECT_EQ(check(with(R"(,"iss":"https://idp")"), rules).code, ClaimCheck::Code::invalid);
  EXPECT_EQ(check(with(R"(,"aud":"aw")"), rules).code, ClaimCheck::Code::invalid);
  EXPECT_EQ(check(with(R"(,"aud":"aw","iss":"https://other")"), rules).code, ClaimCheck::Code::invalid);
  // Not configured: not checked.
  EXPECT_EQ(check(with(R"(,"aud":"other","iss":"x")")).code, ClaimCheck::Code::ok);
}

TEST(Claims, AgentsMustBeAListOfStrings) {
  auto none = check(R"({"sub":"u","exp":1900000000})");
  EXPECT_EQ(none.code, ClaimCheck::Code::ok);
  EXPECT_TRUE(none.claims.agents.empty());
  EXPECT_EQ(check(R"({"sub":"u","exp":1900000000,"agents":"a"})").code, ClaimCheck::Code::invalid);
  EXPECT_EQ(check(R"({"sub":"u","exp":1900000000,"agents":["a",1]})").code, ClaimCheck::Code::invalid);
}

TEST(Claims, ScopesFromScopeOrScopesElseReadOnly) {
  EXPECT_EQ(check(with()).claims.scopes, Scopes::of(Scope::read));
  auto spaced = check(with(R"(,"scope":"openid publish  admin")"));
  ASSERT_EQ(spaced.code, ClaimCheck::Code::ok) << spaced.message;
  EXPECT_EQ(spaced.claims.scopes.names(), "publish admin");
  auto listed = check(with(R"(,"scopes":["workflows","other"])"));
  ASSERT_EQ(listed.code, ClaimCheck::Code::ok);
  EXPECT_EQ(listed.claims.scopes.names(), "workflows");
  auto both = check(with(R"(,"scope":"read","scopes":["publish"])"));
  EXPECT_EQ(both.claims.scopes.names(), "publish read");
  // Present but naming none of ours: no scope at all (not the default read).
  EXPECT_TRUE(check(with(R"(,"scope":"openid")")).claims.scopes.empty());
  EXPECT_EQ(check(with(R"(,"scope":["read"])")).code, ClaimCheck::Code::invalid);
  EXPECT_EQ(check(with(R"(,"scopes":"read")")).code, ClaimCheck::Code::invalid);
  EXPECT_EQ(check(with(R"(,"scopes":[1])")).code, ClaimCheck::Code::invalid);
}

}  // namespace
}  // namespace aw::auth
