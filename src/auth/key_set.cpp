#include "auth/key_set.hpp"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>

#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "auth/base64url.hpp"

namespace aw::auth {
namespace {

struct Free {
  void operator()(BIO* p) const { BIO_free(p); }
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
  void operator()(BIGNUM* p) const { BN_free(p); }
};
template <class T>
using Owned = std::unique_ptr<T, Free>;

std::string pem_of(EVP_PKEY* pkey) {
  Owned<BIO> bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PUBKEY(bio.get(), pkey) != 1) return {};
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

// The key as a Key: its type and the algorithms it may verify (RS256/384/512 for RSA; ES256, ES384 or
// ES512 for an EC key, by its curve).
Key key_of(EVP_PKEY* pkey, std::string kid, const std::string& what) {
  Key k;
  k.kid = std::move(kid);
  switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
      k.type = Key::Type::rsa;
      k.algs = {"RS256", "RS384", "RS512"};
      break;
    case EVP_PKEY_EC: {
      k.type = Key::Type::ec;
      char group[64] = {};
      std::size_t len = 0;
      EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group, &len);
      std::string_view g(group, len);
      if (g == "prime256v1" || g == "P-256")
        k.algs = {"ES256"};
      else if (g == "secp384r1" || g == "P-384")
        k.algs = {"ES384"};
      else if (g == "secp521r1" || g == "P-521")
        k.algs = {"ES512"};
      else
        throw KeyError(what + ": EC key on curve " + std::string(g) +
                       " (P-256, P-384 or P-521 are used by JWS)");
      break;
    }
    default:
      throw KeyError(what + ": not an RSA or EC public key");
  }
  k.material = pem_of(pkey);
  if (k.material.empty()) throw KeyError(what + ": the key cannot be written as PEM");
  return k;
}

Owned<BIGNUM> bignum(const boost::json::object& jwk, const char* name, const std::string& what) {
  const auto* v = jwk.if_contains(name);
  auto bytes = v && v->is_string() ? base64url_decode(v->get_string()) : std::nullopt;
  if (!bytes || bytes->empty())
    throw KeyError(what + ": member \"" + name + "\" is missing or not base64url");
  return Owned<BIGNUM>(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes->data()),
                                 static_cast<int>(bytes->size()), nullptr));
}

std::string member(const boost::json::object& o, const char* name) {
  const auto* v = o.if_contains(name);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

Owned<EVP_PKEY> from_params(const char* type, OSSL_PARAM_BLD* bld, const std::string& what) {
  Owned<OSSL_PARAM> params(OSSL_PARAM_BLD_to_param(bld));
  Owned<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, nullptr));
  EVP_PKEY* pkey = nullptr;
  if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
      EVP_PKEY_fromdata(ctx.get(), &pkey, EVP_PKEY_PUBLIC_KEY, params.get()) != 1 || !pkey)
    throw KeyError(what + ": OpenSSL does not take the key");
  return Owned<EVP_PKEY>(pkey);
}

Key jwk_rsa(const boost::json::object& jwk, std::string kid, const std::string& what) {
  auto n = bignum(jwk, "n", what);
  auto e = bignum(jwk, "e", what);
  Owned<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
      !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
    throw KeyError(what + ": OpenSSL does not take the key");
  auto pkey = from_params("RSA", bld.get(), what);
  return key_of(pkey.get(), std::move(kid), what);
}

Key jwk_ec(const boost::json::object& jwk, std::string kid, const std::string& what) {
  std::string crv = member(jwk, "crv");
  const char* group = nullptr;
  std::size_t size = 0;
  if (crv == "P-256") group = "prime256v1", size = 32;
  if (crv == "P-384") group = "secp384r1", size = 48;
  if (crv == "P-521") group = "secp521r1", size = 66;
  if (!group) throw KeyError(what + ": EC key with crv \"" + crv + "\" (P-256, P-384 or P-521)");
  auto x = base64url_decode(member(jwk, "x"));
  auto y = base64url_decode(member(jwk, "y"));
  if (!x || !y || x->size() != size || y->size() != size)
    throw KeyError(what + ": EC key with missing or malformed x/y");
  std::string point = "\x04" + *x + *y;  // the uncompressed point (SEC 1 §2.3.3)
  Owned<OSSL_PARAM_BLD> bld(OSSL_PARAM_BLD_new());
  if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(), point.size()))
    throw KeyError(what + ": OpenSSL does not take the key");
  auto pkey = from_params("EC", bld.get(), what);
  return key_of(pkey.get(), std::move(kid), what);
}

Key hmac_key(std::string secret, std::string kid) {
  Key k;
  k.type = Key::Type::hmac;
  k.kid = std::move(kid);
  k.material = std::move(secret);
  k.algs = {"HS256", "HS384", "HS512"};
  return k;
}

// A JWK's "alg", when given, narrows what the key verifies.
void restrict_to_alg(Key& k, const std::string& alg, const std::string& what) {
  if (alg.empty()) return;
  for (const auto& a : k.algs)
    if (a == alg) {
      k.algs = {alg};
      return;
    }
  throw KeyError(what + ": alg \"" + alg + "\" does not fit the key's type");
}

}  // namespace

std::string read_key_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  auto size = std::filesystem::file_size(path, ec);
  if (ec) throw KeyError(what + ": cannot read " + path + ": " + ec.message());
  if (size > kMaxKeyFileBytes)
    throw KeyError(what + ": " + path + " is larger than a key file can be (1 MiB)");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  if (!in) throw KeyError(what + ": cannot read " + path);
  return s.str();
}

Key public_key_from_pem(std::string pem, std::string kid, const std::string& what) {
  Owned<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Owned<EVP_PKEY> pkey(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!pkey) throw KeyError(what + ": not a PEM public key (-----BEGIN PUBLIC KEY-----)");
  return key_of(pkey.get(), std::move(kid), what);
}

std::vector<Key> parse_jwks(std::string_view json, const std::string& what) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(json, ec);
  const auto* keys = !ec && doc.is_object() ? doc.get_object().if_contains("keys") : nullptr;
  if (!keys || !keys->is_array()) throw KeyError(what + ": not a JWKS document ({\"keys\": [...]})");
  std::vector<Key> out;
  for (const auto& v : keys->get_array()) {
    if (!v.is_object()) throw KeyError(what + ": every member of keys must be an object");
    const auto& jwk = v.get_object();
    std::string kty = member(jwk, "kty");
    std::string kid = member(jwk, "kid");
    std::string use = member(jwk, "use");
    if (!use.empty() && use != "sig") continue;  // an encryption key is not for us
    Key k;
    if (kty == "RSA") {
      k = jwk_rsa(jwk, kid, what);
    } else if (kty == "EC") {
      k = jwk_ec(jwk, kid, what);
    } else if (kty == "oct") {
      auto secret = base64url_decode(member(jwk, "k"));
      if (!secret || secret->empty()) throw KeyError(what + ": oct key with a missing or malformed k");
      k = hmac_key(std::move(*secret), kid);
    } else {
      throw KeyError(what + ": key type \"" + kty + "\" (RSA, EC or oct)");
    }
    restrict_to_alg(k, member(jwk, "alg"), what);
    out.push_back(std::move(k));
  }
  if (out.empty()) throw KeyError(what + ": the JWKS holds no signing key");
  return out;
}

std::string hmac_secret(const KeySources& sources, const std::string& flag) {
  std::string secret = sources.secret;
  if (!sources.secret_file.empty()) secret = read_key_file(sources.secret_file, flag);
  // A trailing newline (echo > file) is not part of the secret.
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (!sources.secret_file.empty() && secret.empty())
    throw KeyError(flag + ": " + sources.secret_file + " is empty");
  return secret;
}

std::vector<Key> load_keys(const KeySources& sources) {
  std::vector<Key> keys;
  if (std::string secret = hmac_secret(sources); !secret.empty())
    keys.push_back(hmac_key(std::move(secret), {}));
  for (const auto& path : sources.public_keys) {
    // A PEM key's kid is its file name without the extension: keys/2026-12.pem has kid "2026-12".
    keys.push_back(public_key_from_pem(read_key_file(path, "--auth-public-key"),
                                       std::filesystem::path(path).stem().string(),
                                       "--auth-public-key " + path));
  }
  if (!sources.jwks_file.empty()) {
    auto jwks = parse_jwks(read_key_file(sources.jwks_file, "--auth-jwks-file"),
                           "--auth-jwks-file " + sources.jwks_file);
    for (auto& k : jwks) keys.push_back(std::move(k));
  }
  return keys;
}

}  // namespace aw::auth
