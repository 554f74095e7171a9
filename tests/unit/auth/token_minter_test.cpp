// Minting tokens for `agentwire token`: what is minted verifies with the server's Verifier, carries the
// claims asked for, and requests that cannot become a useful token are refused with a reason.
#include "auth/token_minter.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "auth/base64url.hpp"
#include "auth/verifier.hpp"

namespace aw::auth {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kSecret = "unit-test-secret-unit-test-secret-0123";

TokenRequest request(std::vector<std::string> agents = {"agent-7", "team-a/*"}) {
  TokenRequest r;
  r.secret = kSecret;
  r.agents = std::move(agents);
  return r;
}

Verifier verifier(ClaimRules rules = {}) {
  KeySources sources;
  sources.secret = kSecret;
  return Verifier(load_keys(sources), std::move(rules));
}

boost::json::object part(const std::string& token, int index) {
  auto dot1 = token.find('.');
  auto dot2 = token.find('.', dot1 + 1);
  auto b64 = index == 0 ? token.substr(0, dot1) : token.substr(dot1 + 1, dot2 - dot1 - 1);
  return boost::json::parse(*base64url_decode(b64)).as_object();
}

TEST(TokenMinter, MintedTokenAllowsItsAgentsAndNoOthers) {
  auto token = mint_token(request(), kNow);
  auto v = verifier();
  EXPECT_TRUE(v.authorize(token, "agent-7", kNow).ok());
  EXPECT_TRUE(v.authorize(token, "team-a/x", kNow).ok());
  EXPECT_EQ(v.authorize(token, "agent-8", kNow).code, Verdict::Code::forbidden);
  EXPECT_EQ(v.authorize(token, "agent-7", kNow + 3600).code, Verdict::Code::expired);
  EXPECT_TRUE(v.authorize(token, "agent-7", kNow + 3599).ok());
}

TEST(TokenMinter, ClaimsAndHeaderCarryWhatWasAsked) {
  auto r = request({"agent-7"});
  r.sub = "alice";
  r.ttl_s = 90;
  r.scopes = {"publish", "read"};
  r.kid = "2026-12";
  r.alg = "HS512";
  r.audience = "agentwire";
  r.issuer = "backend";
  auto token = mint_token(r, kNow);
  auto header = part(token, 0);
  EXPECT_EQ(header.at("alg"), "HS512");
  EXPECT_EQ(header.at("kid"), "2026-12");
  auto claims = part(token, 1);
  EXPECT_EQ(claims.at("sub"), "alice");
  EXPECT_EQ(claims.at("iat").to_number<std::int64_t>(), kNow);
  EXPECT_EQ(claims.at("exp").to_number<std::int64_t>(), kNow + 90);
  EXPECT_EQ(claims.at("scope"), "publish read");
  EXPECT_EQ(claims.at("aud"), "agentwire");
  EXPECT_EQ(claims.at("iss"), "backend");
  EXPECT_EQ(claims.at("agents").as_array().size(), 1u);
  EXPECT_TRUE(verifier({"agentwire", "backend"}).authorize(token, "agent-7", kNow).ok());
}

TEST(TokenMinter, EveryHmacAlgVerifies) {
  for (const char* alg : {"HS256", "HS384", "HS512", "hs256"}) {
    auto r = request();
    r.alg = alg;
    EXPECT_TRUE(verifier().authorize(mint_token(r, kNow), "agent-7", kNow).ok()) << alg;
  }
}

TEST(TokenMinter, ScopesAloneMakeATokenWithoutAgents) {
  auto r = request({});
  r.scopes = {"admin"};
  auto claims = part(mint_token(r, kNow), 1);
  EXPECT_FALSE(claims.contains("agents"));
  EXPECT_EQ(claims.at("scope"), "admin");
}

TEST(TokenMinter, RefusesRequestsThatCannotBeUseful) {
  auto refused = [](TokenRequest r) { EXPECT_THROW(mint_token(r, kNow), MintError); };
  auto r = request();
  r.alg = "RS256";
  refused(r);
  r = request();
  r.alg = "none";
  refused(r);
  r = request();
  r.secret.clear();
  refused(r);
  r = request();
  r.ttl_s = 0;
  refused(r);
  r = request();
  r.ttl_s = kMaxTokenTtlSeconds + 1;
  refused(r);
  refused(request({}));               // allows nothing
  refused(request({"agent-7", ""}));  // a doubled comma
  refused(request({"team-*-x"}));     // * not at the end
  refused(request({"agent 7"}));
  r = request();
  r.scopes = {"write"};
  refused(r);
  r = request();
  r.sub.clear();
  refused(r);
}

TEST(TokenMinter, ParsesTtls) {
  EXPECT_EQ(parse_ttl("90"), 90);
  EXPECT_EQ(parse_ttl("90s"), 90);
  EXPECT_EQ(parse_ttl("15m"), 900);
  EXPECT_EQ(parse_ttl("1h"), 3600);
  EXPECT_EQ(parse_ttl("7d"), 7 * 86400);
  EXPECT_EQ(parse_ttl("1h30m"), 5400);
  EXPECT_EQ(parse_ttl("1d12h"), 36 * 3600);
  EXPECT_EQ(parse_ttl("400d"), 400 * 86400);  // refused at minting, with the range in the message
  for (const char* bad :
       {"", "h", "0", "0s0m", "-1h", "1.5h", "1w", "1hh", " 1h", "1h ", "99999999999999999999", "100000d"})
    EXPECT_FALSE(parse_ttl(bad).has_value()) << bad;
}

TEST(TokenMinter, SplitsLists) {
  EXPECT_EQ(split_list("agent-7,team-a/*"), (std::vector<std::string>{"agent-7", "team-a/*"}));
  EXPECT_EQ(split_list(" publish , read "), (std::vector<std::string>{"publish", "read"}));
  EXPECT_EQ(split_list("a,,b"), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_EQ(split_list("a"), (std::vector<std::string>{"a"}));
}

}  // namespace
}  // namespace aw::auth
