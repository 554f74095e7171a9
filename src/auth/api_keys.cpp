#include "auth/api_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <boost/json/parse.hpp>
#include <set>

#include "auth/key_set.hpp"

namespace aw::auth {
namespace {

namespace json = boost::json;

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<Sha256> from_hex(std::string_view hex) {
  Sha256 out{};
  if (hex.size() != out.size() * 2) return std::nullopt;
  for (std::size_t i = 0; i < out.size(); ++i) {
    int hi = hex_digit(hex[2 * i]);
    int lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  return out;
}

// An allow-list entry: an agent id, or a prefix of one ending in `*` ("*" alone: every agent).
bool valid_agent_pattern(std::string_view p) {
  if (p == "*") return true;
  if (!p.empty() && p.back() == '*') p.remove_suffix(1);
  return !p.empty() && p.size() <= 128 &&
         p.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.:-/") ==
             std::string_view::npos;
}

ApiKey parse_entry(const json::value& v, std::size_t index, const std::string& what) {
  std::string where = what + ": entry " + std::to_string(index + 1);
  if (!v.is_object()) throw KeyError(where + " is not an object");
  const auto& o = v.get_object();
  for (const auto& member : o) {
    auto k = member.key();
    if (k != "name" && k != "sha256" && k != "scopes" && k != "agents")
      throw KeyError(where + " has an unknown member \"" + std::string(k.substr(0, 32)) +
                     "\" (name, sha256, scopes, agents)");
  }
  const auto* name = o.if_contains("name");
  if (!name || !name->is_string() || name->get_string().empty() || name->get_string().size() > 128)
    throw KeyError(where + " needs a name (a string of 1-128 characters)");
  auto principal = std::make_shared<Principal>();
  principal->kind = Principal::Kind::api_key;
  principal->name = std::string(name->get_string());
  where += " (\"" + principal->name + "\")";

  ApiKey key;
  const auto* hash = o.if_contains("sha256");
  std::optional<Sha256> digest;
  if (hash && hash->is_string()) digest = from_hex(hash->get_string());
  if (!digest)
    throw KeyError(where + " needs sha256: the key's SHA-256 as 64 hex digits (agentwire api-key prints it)");
  key.hash = *digest;

  const auto* scopes = o.if_contains("scopes");
  if (!scopes || !scopes->is_array() || scopes->get_array().empty())
    throw KeyError(where + " needs scopes: a non-empty array of publish, workflows, read, admin");
  for (const auto& s : scopes->get_array()) {
    auto scope = s.is_string() ? parse_scope(s.get_string()) : std::nullopt;
    if (!scope) throw KeyError(where + " has a scope that is not one of publish, workflows, read, admin");
    principal->scopes.add(*scope);
  }

  const auto* agents = o.if_contains("agents");
  principal->all_agents = agents == nullptr;
  if (agents) {
    if (!agents->is_array())
      throw KeyError(where + ": agents must be an array of agent ids or prefixes ending in *");
    for (const auto& a : agents->get_array()) {
      if (!a.is_string() || !valid_agent_pattern(a.get_string()))
        throw KeyError(where + ": agents must hold agent ids or prefixes ending in * (e.g. \"team-a/*\")");
      principal->agents.emplace_back(a.get_string());
    }
  }
  key.principal = std::move(principal);
  return key;
}

}  // namespace

Sha256 sha256(std::string_view data) {
  Sha256 out{};
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &n, EVP_sha256(), nullptr);
  return out;
}

std::string to_hex(const Sha256& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (unsigned char c : digest) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 0xF]);
  }
  return out;
}

std::vector<ApiKey> parse_api_keys(std::string_view text, const std::string& what) {
  boost::system::error_code ec;
  auto doc = json::parse(text, ec);
  if (ec) throw KeyError(what + ": not JSON (" + ec.message() + ")");
  const auto* keys = doc.is_object() ? doc.get_object().if_contains("keys") : nullptr;
  if (!keys || !keys->is_array())
    throw KeyError(what +
                   ": must be a JSON object {\"keys\": [{\"name\", \"sha256\", \"scopes\", \"agents\"?}]}");
  if (keys->get_array().size() > kMaxApiKeys)
    throw KeyError(what + ": more than " + std::to_string(kMaxApiKeys) + " keys");
  std::vector<ApiKey> out;
  std::set<std::string> names;
  std::set<Sha256> hashes;
  for (const auto& v : keys->get_array()) {
    ApiKey key = parse_entry(v, out.size(), what);
    std::string where =
        what + ": entry " + std::to_string(out.size() + 1) + " (\"" + key.principal->name + "\")";
    if (!names.insert(key.principal->name).second)
      throw KeyError(where + " repeats the name of another entry");
    if (!hashes.insert(key.hash).second) throw KeyError(where + " repeats the sha256 of another entry");
    out.push_back(std::move(key));
  }
  return out;
}

std::vector<ApiKey> load_api_keys(const std::string& path) {
  const std::string what = "--api-keys-file " + path;
  return parse_api_keys(read_key_file(path, "--api-keys-file"), what);
}

ApiKeySet::ApiKeySet(std::vector<ApiKey> keys)
    : keys_(std::make_shared<const std::vector<ApiKey>>(std::move(keys))) {}

std::shared_ptr<const Principal> ApiKeySet::find(std::string_view key) const {
  std::shared_ptr<const std::vector<ApiKey>> keys;
  {
    std::lock_guard lock(mutex_);
    keys = keys_;
  }
  const Sha256 presented = sha256(key);
  // Every entry is compared, in constant time each, so the time taken says nothing of which one matched.
  std::shared_ptr<const Principal> found;
  for (const auto& k : *keys)
    if (CRYPTO_memcmp(k.hash.data(), presented.data(), presented.size()) == 0) found = k.principal;
  return found;
}

void ApiKeySet::replace(std::vector<ApiKey> keys) {
  auto fresh = std::make_shared<const std::vector<ApiKey>>(std::move(keys));
  std::lock_guard lock(mutex_);
  keys_.swap(fresh);
}

std::size_t ApiKeySet::size() const {
  std::lock_guard lock(mutex_);
  return keys_->size();
}

}  // namespace aw::auth
