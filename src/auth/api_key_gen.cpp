#include "auth/api_key_gen.hpp"

#include <openssl/rand.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>
#include <cstdio>
#include <stdexcept>
#include <string_view>

#include "auth/api_keys.hpp"
#include "auth/base64url.hpp"

namespace aw::auth {
namespace {

constexpr const char* kUsage =
    "usage: agentwire api-key --name NAME --scopes publish,workflows,read,admin [--agents "
    "'agent-7,team-a/*']\n"
    "Prints a new API key and the entry to add to the \"keys\" array of --api-keys-file (only its SHA-256\n"
    "is stored: keep the key itself somewhere safe, it is not shown again). Without --agents the key may\n"
    "touch every agent. Send SIGHUP to the server after editing the file.\n";

int usage_error(const std::string& message) {
  std::fprintf(stderr, "agentwire api-key: %s\n%s", message.c_str(), kUsage);
  return 2;
}

}  // namespace

NewApiKey generate_api_key(const std::string& name, Scopes scopes,
                           const std::optional<std::vector<std::string>>& agents) {
  unsigned char random[kApiKeyRandomBytes];
  if (RAND_bytes(random, sizeof random) != 1) throw std::runtime_error("the random source failed");
  NewApiKey out;
  out.key =
      kApiKeyPrefix + base64url_encode(std::string_view(reinterpret_cast<char*>(random), sizeof random));
  boost::json::array scope_names;
  for (Scope s : {Scope::publish, Scope::workflows, Scope::read, Scope::admin})
    if (scopes.has(s)) scope_names.emplace_back(scope_name(s));
  boost::json::object entry{{"name", name}, {"sha256", to_hex(sha256(out.key))}, {"scopes", scope_names}};
  if (agents) {
    boost::json::array list;
    for (const auto& a : *agents) list.emplace_back(a);
    entry["agents"] = std::move(list);
  }
  out.entry_json = boost::json::serialize(entry);
  return out;
}

int api_key_main(int argc, char** argv) {
  std::string name;
  std::optional<Scopes> scopes;
  std::optional<std::vector<std::string>> agents;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (i + 1 >= argc) return usage_error(std::string(arg) + " needs a value");
    std::string_view value = argv[++i];
    if (arg == "--name") {
      name = std::string(value);
    } else if (arg == "--scopes") {
      std::string bad;
      scopes = parse_scope_list(value, bad);
      if (!scopes) return usage_error("'" + bad + "' is not a scope (publish, workflows, read, admin)");
    } else if (arg == "--agents") {
      agents.emplace();
      while (!value.empty()) {
        auto comma = value.find(',');
        if (auto a = value.substr(0, comma); !a.empty()) agents->emplace_back(a);
        value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
      }
    } else {
      return usage_error("unknown option " + std::string(arg));
    }
  }
  if (name.empty()) return usage_error("--name is required");
  if (!scopes || scopes->empty()) return usage_error("--scopes needs at least one scope");
  NewApiKey key = generate_api_key(name, *scopes, agents);
  // The entry is checked as the server will check it, so what is printed is always accepted.
  try {
    parse_api_keys("{\"keys\":[" + key.entry_json + "]}", "api-key");
  } catch (const std::exception& e) {
    return usage_error(e.what());
  }
  std::printf("key:   %s\nentry: %s\n", key.key.c_str(), key.entry_json.c_str());
  return 0;
}

}  // namespace aw::auth
