// API keys: the keys file's format and its refusals, SHA-256 hashing, lookup, key generation.
#include "auth/api_keys.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "auth/api_key_gen.hpp"
#include "auth/key_set.hpp"

namespace aw::auth {
namespace {

// FIPS 180-2's example: SHA-256("abc").
constexpr const char* kAbcSha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

std::string doc(std::string entries) {
  return "{\"keys\":[" + entries + "]}";
}

std::string entry(std::string name, std::string key, std::string scopes, std::string agents = "") {
  std::string e =
      "{\"name\":\"" + name + "\",\"sha256\":\"" + to_hex(sha256(key)) + "\",\"scopes\":" + scopes;
  if (!agents.empty()) e += ",\"agents\":" + agents;
  return e + "}";
}

std::string error_of(const std::string& json) {
  try {
    parse_api_keys(json, "--api-keys-file k.json");
  } catch (const KeyError& e) {
    return e.what();
  }
  return "";
}

TEST(ApiKeys, HashesWithSha256AsHex) {
  EXPECT_EQ(to_hex(sha256("abc")), kAbcSha256);
}

TEST(ApiKeys, ParsesEntriesWithScopesAndAgents) {
  auto keys = parse_api_keys(doc(entry("backend", "k1", R"(["publish","workflows"])") + "," +
                                 entry("ui", "k2", R"(["read"])", R"(["agent-7","team-a.*"])")),
                             "t");
  ASSERT_EQ(keys.size(), 2u);
  const Principal& backend = *keys[0].principal;
  EXPECT_EQ(backend.kind, Principal::Kind::api_key);
  EXPECT_EQ(backend.name, "backend");
  EXPECT_TRUE(backend.has(Scope::publish));
  EXPECT_TRUE(backend.has(Scope::workflows));
  EXPECT_FALSE(backend.has(Scope::read));
  EXPECT_FALSE(backend.has(Scope::admin));
  EXPECT_TRUE(backend.all_agents);
  EXPECT_TRUE(backend.allows("anyone"));
  const Principal& ui = *keys[1].principal;
  EXPECT_FALSE(ui.all_agents);
  EXPECT_TRUE(ui.allows("agent-7"));
  EXPECT_TRUE(ui.allows("team-a.x"));
  EXPECT_FALSE(ui.allows("agent-8"));
  EXPECT_FALSE(ui.allows_every_agent());
}

TEST(ApiKeys, UppercaseHexIsAccepted) {
  std::string upper = kAbcSha256;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  auto keys = parse_api_keys(doc(R"({"name":"a","sha256":")" + upper + R"(","scopes":["read"]})"), "t");
  ApiKeySet set(std::move(keys));
  EXPECT_TRUE(set.find("abc"));
}

TEST(ApiKeys, RefusalsNameTheFlagAndTheEntry) {
  const std::string h = to_hex(sha256("x"));
  struct Case {
    std::string json;
    std::string says;
  } cases[] = {
      {"{", "not JSON"},
      {"[]", "\"keys\""},
      {R"({"keys":{}})", "\"keys\""},
      {doc("7"), "entry 1 is not an object"},
      {doc(R"({"sha256":")" + h + R"(","scopes":["read"]})"), "needs a name"},
      {doc(R"({"name":"a","scopes":["read"]})"), "entry 1 (\"a\") needs sha256"},
      {doc(R"({"name":"a","sha256":"abc","scopes":["read"]})"), "sha256"},
      {doc(R"({"name":"a","sha256":")" + std::string(64, 'g') + R"(","scopes":["read"]})"), "sha256"},
      {doc(R"({"name":"a","sha256":")" + h + R"("})"), "needs scopes"},
      {doc(R"({"name":"a","sha256":")" + h + R"(","scopes":[]})"), "needs scopes"},
      {doc(R"({"name":"a","sha256":")" + h + R"(","scopes":["root"]})"), "scope"},
      {doc(R"({"name":"a","sha256":")" + h + R"(","scopes":["read"],"agents":"x"})"), "agents"},
      {doc(R"({"name":"a","sha256":")" + h + R"(","scopes":["read"],"agents":["a b"]})"), "agents"},
      {doc(R"({"name":"a","sha256":")" + h + R"(","scopes":["read"],"key":"awk_x"})"), "unknown member"},
      {doc(entry("a", "1", R"(["read"])") + "," + entry("a", "2", R"(["read"])")),
       "entry 2 (\"a\") repeats the name"},
      {doc(entry("a", "1", R"(["read"])") + "," + entry("b", "1", R"(["read"])")),
       "entry 2 (\"b\") repeats the sha256"},
  };
  for (const auto& c : cases) {
    std::string e = error_of(c.json);
    EXPECT_NE(e.find("--api-keys-file k.json"), std::string::npos) << c.json << " -> " << e;
    EXPECT_NE(e.find(c.says), std::string::npos) << c.json << " -> " << e;
  }
  EXPECT_EQ(error_of(doc("")), "");  // no keys at all is a valid (if useless) file
}

TEST(ApiKeys, AtMostTenThousandEntries) {
  std::string entries;
  for (std::size_t i = 0; i <= kMaxApiKeys; ++i) {
    if (i) entries += ",";
    entries += entry("k" + std::to_string(i), std::to_string(i), R"(["read"])");
  }
  EXPECT_NE(error_of(doc(entries)).find("more than 10000 keys"), std::string::npos);
}

TEST(ApiKeys, FindMatchesOnlyTheExactKeyAndReplaceSwapsTheSet) {
  ApiKeySet set(parse_api_keys(
      doc(entry("a", "key-a", R"(["read"])") + "," + entry("b", "key-b", R"(["admin"])")), "t"));
  ASSERT_TRUE(set.find("key-a"));
  EXPECT_EQ(set.find("key-a")->name, "a");
  EXPECT_EQ(set.find("key-b")->name, "b");
  EXPECT_FALSE(set.find("key-"));
  EXPECT_FALSE(set.find("key-aa"));
  EXPECT_FALSE(set.find(""));
  EXPECT_FALSE(set.find(to_hex(sha256("key-a"))));  // the hash itself is not a key
  set.replace(parse_api_keys(doc(entry("c", "key-c", R"(["read"])")), "t"));
  EXPECT_FALSE(set.find("key-a"));
  EXPECT_EQ(set.find("key-c")->name, "c");
  EXPECT_EQ(set.size(), 1u);
}

TEST(ApiKeyGen, KeysAreRandomPrefixedAndTheirEntryParses) {
  std::string bad;
  auto a = generate_api_key("backend", *parse_scope_list("publish,workflows", bad), std::nullopt);
  auto b = generate_api_key("backend", Scopes::of(Scope::read), std::vector<std::string>{"agent-7"});
  EXPECT_TRUE(a.key.starts_with("awk_"));
  EXPECT_EQ(a.key.size(), 4u + 43u);  // 32 bytes in base64url without padding
  EXPECT_NE(a.key, b.key);
  EXPECT_EQ(a.entry_json.find(a.key), std::string::npos);  // only its hash is in the entry
  ApiKeySet set(parse_api_keys(doc(a.entry_json + "," + R"({"name":"other","sha256":")" +
                                   to_hex(sha256(b.key)) + R"(","scopes":["read"],"agents":["agent-7"]})"),
                               "t"));
  auto p = set.find(a.key);
  ASSERT_TRUE(p);
  EXPECT_TRUE(p->has(Scope::publish) && p->has(Scope::workflows) && !p->has(Scope::read));
  EXPECT_TRUE(p->all_agents);
  auto v = boost::json::parse(b.entry_json).as_object();
  EXPECT_EQ(v.at("agents").as_array().size(), 1u);
  EXPECT_EQ(v.at("scopes").as_array().at(0).as_string(), "read");
}

TEST(Scopes, ParsedFromListsAndNamed) {
  std::string bad;
  auto s = parse_scope_list("publish, read", bad);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->names(), "publish read");
  EXPECT_FALSE(parse_scope_list("publish,root", bad));
  EXPECT_EQ(bad, "root");
  EXPECT_EQ(Scopes::all().names(), "publish workflows read admin");
  EXPECT_TRUE(Scopes().empty());
}

}  // namespace
}  // namespace aw::auth
