// Token verification: signatures by kid and alg, alg none and alg/key-type mismatches refused, keys from
// PEM and JWKS, the agent check. Tokens are minted with libjwt here (the black-box tests mint their own).
#include "auth/verifier.hpp"

#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <memory>

#include "auth/base64url.hpp"

namespace aw::auth {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kSecret = "unit-test-secret-unit-test-secret-0123";

std::string payload(std::int64_t exp = kNow + 60, std::string agents = R"(["agent-7","team-*"])") {
  return R"({"sub":"u","exp":)" + std::to_string(exp) + R"(,"agents":)" + agents + "}";
}

std::string mint(jwt_alg_t alg, const std::string& key, std::string claims = payload(),
                 std::string kid = "") {
  jwt_t* jwt = nullptr;
  jwt_new(&jwt);
  jwt_add_grants_json(jwt, claims.c_str());
  if (!kid.empty()) jwt_add_header(jwt, "kid", kid.c_str());
  jwt_set_alg(jwt, alg, reinterpret_cast<const unsigned char*>(key.data()), static_cast<int>(key.size()));
  char* s = jwt_encode_str(jwt);
  std::string out = s ? s : "";
  free(s);
  jwt_free(jwt);
  return out;
}

std::string b64url(std::string_view s) {
  std::string out(4 * ((s.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  out.resize(static_cast<std::size_t>(n));
  while (!out.empty() && out.back() == '=') out.pop_back();
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return out;
}

struct KeyPem {
  std::string priv, pub;
};

KeyPem make_key(const char* type) {
  EVP_PKEY* k = std::string_view(type) == "RSA" ? EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", size_t{2048})
                                                : EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  auto pem = [k](bool priv) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (priv)
      PEM_write_bio_PrivateKey(bio, k, nullptr, nullptr, 0, nullptr, nullptr);
    else
      PEM_write_bio_PUBKEY(bio, k);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return s;
  };
  KeyPem out{pem(true), pem(false)};
  EVP_PKEY_free(k);
  return out;
}

Key hmac(std::string kid = "") {
  Key k;
  k.kid = std::move(kid);
  k.material = kSecret;
  k.algs = {"HS256", "HS384", "HS512"};
  return k;
}

TEST(Base64Url, DecodesWithAndWithoutPadding) {
  EXPECT_EQ(base64url_decode("aGk"), "hi");
  EXPECT_EQ(base64url_decode("aGk="), "hi");
  EXPECT_EQ(base64url_decode("-_8"), std::string("\xfb\xff", 2));
  EXPECT_EQ(base64url_decode(""), "");
  EXPECT_FALSE(base64url_decode("a+b/"));
  EXPECT_FALSE(base64url_decode("a"));
  EXPECT_FALSE(base64url_decode("a.b"));
}

TEST(Verifier, HmacTokensOfEveryHsAlg) {
  Verifier v({hmac()}, {});
  for (auto alg : {JWT_ALG_HS256, JWT_ALG_HS384, JWT_ALG_HS512}) {
    auto verdict = v.authorize(mint(alg, kSecret), "agent-7", kNow);
    EXPECT_TRUE(verdict.ok()) << jwt_alg_str(alg) << ": " << verdict.message;
  }
  EXPECT_EQ(v.authorize(mint(JWT_ALG_HS256, kSecret + "x"), "agent-7", kNow).code, Verdict::Code::invalid);
}

TEST(Verifier, MissingMalformedExpiredForbidden) {
  Verifier v({hmac()}, {});
  EXPECT_EQ(v.authorize("", "agent-7", kNow).code, Verdict::Code::missing);
  for (const char* bad : {"x", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.", "e30.e30.e30"})
    EXPECT_EQ(v.authorize(bad, "agent-7", kNow).code, Verdict::Code::invalid) << bad;
  EXPECT_EQ(v.authorize(std::string(kMaxTokenBytes + 1, 'a'), "agent-7", kNow).code, Verdict::Code::invalid);
  EXPECT_EQ(v.authorize(mint(JWT_ALG_HS256, kSecret, payload(kNow - 1)), "agent-7", kNow).code,
            Verdict::Code::expired);
  auto forbidden = v.authorize(mint(JWT_ALG_HS256, kSecret), "agent-8", kNow);
  EXPECT_EQ(forbidden.code, Verdict::Code::forbidden);
  EXPECT_STREQ(forbidden.code_name(), "agent_forbidden");
  EXPECT_TRUE(v.authorize(mint(JWT_ALG_HS256, kSecret), "team-x", kNow).ok());
}

TEST(Verifier, AlgNoneIsRefused) {
  Verifier v({hmac()}, {});
  std::string token = b64url(R"({"alg":"none"})") + "." + b64url(payload()) + ".";
  EXPECT_EQ(v.authorize(token, "agent-7", kNow).code, Verdict::Code::invalid);
  token = b64url(R"({"alg":"none"})") + "." + b64url(payload()) + ".c2ln";
  EXPECT_EQ(v.authorize(token, "agent-7", kNow).code, Verdict::Code::invalid);
}

TEST(Verifier, KidSelectsTheKey) {
  Key a = hmac("a");
  Key b = hmac("b");
  b.material = kSecret + "-b";
  Verifier v({a, b}, {});
  EXPECT_TRUE(v.authorize(mint(JWT_ALG_HS256, kSecret, payload(), "a"), "agent-7", kNow).ok());
  EXPECT_TRUE(v.authorize(mint(JWT_ALG_HS256, kSecret + "-b", payload(), "b"), "agent-7", kNow).ok());
  // Signed with a's secret but naming b: b alone is tried.
  EXPECT_EQ(v.authorize(mint(JWT_ALG_HS256, kSecret, payload(), "b"), "agent-7", kNow).code,
            Verdict::Code::invalid);
  EXPECT_EQ(v.authorize(mint(JWT_ALG_HS256, kSecret, payload(), "c"), "agent-7", kNow).code,
            Verdict::Code::invalid);
  // Without a kid every key of the alg is tried.
  EXPECT_TRUE(v.authorize(mint(JWT_ALG_HS256, kSecret + "-b"), "agent-7", kNow).ok());
}

TEST(Verifier, AlgMustFitTheKeyType) {
  KeyPem rsa = make_key("RSA");
  Verifier v({public_key_from_pem(rsa.pub, "r", "test")}, {});
  EXPECT_TRUE(v.authorize(mint(JWT_ALG_RS256, rsa.priv), "agent-7", kNow).ok());
  EXPECT_TRUE(v.authorize(mint(JWT_ALG_RS512, rsa.priv, payload(), "r"), "agent-7", kNow).ok());
  // The public key used as an HMAC secret: the classic confusion. No HMAC key is configured, so no key.
  EXPECT_EQ(v.authorize(mint(JWT_ALG_HS256, rsa.pub), "agent-7", kNow).code, Verdict::Code::invalid);
  const Key stored = public_key_from_pem(rsa.pub, "r", "test");
  EXPECT_EQ(v.authorize(mint(JWT_ALG_HS256, stored.material), "agent-7", kNow).code, Verdict::Code::invalid);
  EXPECT_EQ(v.authorize(mint(JWT_ALG_ES256, make_key("EC").priv), "agent-7", kNow).code,
            Verdict::Code::invalid);
}

TEST(Verifier, EcKeysVerifyEs256) {
  KeyPem ec = make_key("EC");
  Key k = public_key_from_pem(ec.pub, "e", "test");
  EXPECT_EQ(k.type, Key::Type::ec);
  EXPECT_EQ(k.algs, std::vector<std::string>{"ES256"});
  Verifier v({k}, {});
  EXPECT_TRUE(v.authorize(mint(JWT_ALG_ES256, ec.priv), "agent-7", kNow).ok());
  EXPECT_EQ(v.authorize(mint(JWT_ALG_ES256, make_key("EC").priv), "agent-7", kNow).code,
            Verdict::Code::invalid);
}

TEST(Verifier, KeysCanBeReplaced) {
  Verifier v({hmac()}, {});
  std::string token = mint(JWT_ALG_HS256, kSecret);
  EXPECT_TRUE(v.authorize(token, "agent-7", kNow).ok());
  Key other = hmac();
  other.material = "another-secret-another-secret-another";
  v.replace_keys({other});
  EXPECT_EQ(v.key_count(), 1u);
  EXPECT_EQ(v.authorize(token, "agent-7", kNow).code, Verdict::Code::invalid);
}

TEST(KeySet, JwksKeysAndErrors) {
  auto keys = parse_jwks(R"({"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQ","alg":"HS384"},
                                      {"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"}]})",
                         "jwks");
  ASSERT_EQ(keys.size(), 1u);  // the encryption key is skipped
  EXPECT_EQ(keys[0].kid, "h");
  EXPECT_EQ(keys[0].material, "secret-secret-secret");
  EXPECT_EQ(keys[0].algs, std::vector<std::string>{"HS384"});
  for (const char* bad :
       {"", "[]", R"({"keys":{}})", R"({"keys":[]})", R"({"keys":[1]})",
        R"({"keys":[{"kty":"RSA","kid":"x"}]})", R"({"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]})",
        R"({"keys":[{"kty":"EC","crv":"secp256k1"}]})", R"({"keys":[{"kty":"OKP"}]})",
        R"({"keys":[{"kty":"oct","k":"c2VjcmV0","alg":"RS256"}]})"}) {
    try {
      parse_jwks(bad, "--auth-jwks-file f");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const KeyError& e) {
      EXPECT_NE(std::string(e.what()).find("--auth-jwks-file"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(public_key_from_pem("not a key", "k", "--auth-public-key f"), KeyError);
}

TEST(KeySet, LoadKeysNamesTheFlag) {
  KeySources s;
  s.secret_file = "/nonexistent/secret";
  try {
    load_keys(s);
    ADD_FAILURE();
  } catch (const KeyError& e) {
    EXPECT_NE(std::string(e.what()).find("--auth-secret-file"), std::string::npos);
  }
  KeySources env;
  env.secret = "from-the-environment\n";
  auto keys = load_keys(env);
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].material, "from-the-environment");
}

}  // namespace
}  // namespace aw::auth
