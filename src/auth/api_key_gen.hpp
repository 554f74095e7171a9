// Making a new API key: `awk_` and 32 random bytes (OpenSSL's RAND_bytes) in base64url, and the entry
// for --api-keys-file that holds its SHA-256 (the key itself is shown once and stored nowhere).
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "auth/scopes.hpp"

namespace aw::auth {

inline constexpr const char* kApiKeyPrefix = "awk_";
inline constexpr std::size_t kApiKeyRandomBytes = 32;

struct NewApiKey {
  std::string key;         // give it to the client
  std::string entry_json;  // put it in the keys file's "keys" array
};

// `agents` nullopt: the key may touch every agent. Throws std::runtime_error when the system's random
// source fails.
NewApiKey generate_api_key(const std::string& name, Scopes scopes,
                           const std::optional<std::vector<std::string>>& agents);

// `agentwire api-key --name N --scopes publish,workflows [--agents 'agent-7,team-a/*']`; argv[0] is
// "api-key". Prints the key and the entry; returns the process exit code.
int api_key_main(int argc, char** argv);

}  // namespace aw::auth
