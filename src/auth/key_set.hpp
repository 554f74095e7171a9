// The keys tokens are verified with: an HMAC secret (HS256/384/512), public keys from PEM files (RS*,
// ES*) and the keys of a JWKS file (RSA, EC and oct), each with the algorithms it may verify and its
// `kid`. Loaded once at start (and again on SIGHUP); a file that cannot be used is an error naming its
// flag. The key material never leaves this layer except to the JWT library.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace aw::auth {

struct Key {
  enum class Type { hmac, rsa, ec } type = Type::hmac;
  std::string kid;                // empty: the key has none (it is tried for tokens with any kid)
  std::string material;           // the secret's bytes, or the public key as PEM
  std::vector<std::string> algs;  // the JWS algorithms this key may verify
};

struct KeySources {
  std::string secret_file;               // --auth-secret-file
  std::string secret;                    // AGENTWIRE_AUTH_SECRET (the secret itself)
  std::vector<std::string> public_keys;  // --auth-public-key, repeatable
  std::string jwks_file;                 // --auth-jwks-file
  bool empty() const noexcept {
    return secret_file.empty() && secret.empty() && public_keys.empty() && jwks_file.empty();
  }
};

// A key file that cannot be used; what() names the flag and the file.
struct KeyError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// HMAC secrets shorter than this are refused: HS256 with a short secret can be brute-forced offline.
inline constexpr std::size_t kMinSecretBytes = 32;
// Key files are small; anything larger is not a key file.
inline constexpr std::size_t kMaxKeyFileBytes = 1 << 20;

std::vector<Key> load_keys(const KeySources& sources);

// The HMAC secret of `sources` (the file's bytes, else the value), without a trailing newline: empty when
// neither is given. `flag` names the file's flag in errors. For load_keys and `agentwire token`, so a
// token minted from a file verifies against a server reading the same file. Throws KeyError.
std::string hmac_secret(const KeySources& sources, const std::string& flag = "--auth-secret-file");

// A key file's bytes (at most kMaxKeyFileBytes); KeyError names `what` (the flag) and the path.
std::string read_key_file(const std::string& path, const std::string& what);

// Keys from a JWKS document ({"keys": [...]}), for load_keys and the tests. Throws KeyError.
std::vector<Key> parse_jwks(std::string_view json, const std::string& what);

// A public key in PEM (SubjectPublicKeyInfo) as a Key, for load_keys and the tests. Throws KeyError.
Key public_key_from_pem(std::string pem, std::string kid, const std::string& what);

}  // namespace aw::auth
