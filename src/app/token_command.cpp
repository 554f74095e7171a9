#include "app/token_command.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>

#include "auth/key_set.hpp"
#include "auth/token_minter.hpp"
#include "core/clock.hpp"

namespace aw::app {
namespace {

constexpr const char* kUsage =
    "usage: agentwire token --secret-file FILE --agents 'agent-7,team-a/*' [--ttl 1h]\n"
    "                       [--scopes publish,read] [--sub NAME] [--kid KID] [--alg HS256|HS384|HS512]\n"
    "                       [--audience AUD] [--issuer ISS]\n"
    "\n"
    "Prints a JWT signed with the server's HMAC secret, for development and tests (production backends mint\n"
    "their users' tokens themselves: see docs/websocket-guide.md).\n"
    "\n"
    "  --secret-file FILE  the HMAC secret, as the server's --auth-secret-file (a trailing newline is not\n"
    "                      part of it); else the AGENTWIRE_AUTH_SECRET environment variable\n"
    "  --agents LIST       agents the token allows: ids or prefixes ending in * (the agents claim)\n"
    "  --ttl DURATION      lifetime: 90s, 15m, 1h, 1h30m, 7d (default 1h, at most 366d)\n"
    "  --scopes LIST       HTTP API scopes: publish, workflows, read, admin (the scope claim);\n"
    "                      without it the token may read; with it, include read to subscribe\n"
    "  --sub NAME          who the token is for (default dev)\n"
    "  --kid KID           key id in the header (for servers with several keys)\n"
    "  --alg ALG           HS256 (default), HS384 or HS512 (any case)\n"
    "  --audience AUD      aud claim (when the server runs with --auth-audience)\n"
    "  --issuer ISS        iss claim (when the server runs with --auth-issuer)\n"
    "A token needs --agents, --scopes or both. Errors exit with code 2.\n";

int fail(const std::string& message) {
  std::fprintf(stderr, "agentwire token: %s\n", message.c_str());
  return 2;
}

}  // namespace

int token_main(int argc, char** argv) {
  static const char* const kFlags[] = {"secret-file", "agents", "ttl",      "scopes", "sub",
                                       "kid",         "alg",    "audience", "issuer"};
  std::map<std::string, std::string, std::less<>> given;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (arg.rfind("--", 0) != 0) return fail("unexpected argument '" + std::string(arg) + "' (see --help)");
    arg.remove_prefix(2);
    std::string name(arg.substr(0, arg.find('=')));
    bool known = false;
    for (const char* f : kFlags) known = known || name == f;
    if (!known) return fail("unknown option --" + name + " (see --help)");
    if (given.count(name)) return fail("--" + name + " given twice");
    if (auto eq = arg.find('='); eq != std::string_view::npos)
      given[name] = std::string(arg.substr(eq + 1));
    else if (i + 1 < argc)
      given[name] = argv[++i];
    else
      return fail("--" + name + " needs a value");
  }
  auto value = [&](const char* name) {
    auto it = given.find(name);
    return it == given.end() ? std::string() : it->second;
  };

  auth::TokenRequest request;
  auth::KeySources sources;
  sources.secret_file = value("secret-file");
  if (sources.secret_file.empty() && given.count("secret-file"))
    return fail("--secret-file needs a file name");
  if (sources.secret_file.empty())
    if (const char* env = std::getenv("AGENTWIRE_AUTH_SECRET")) sources.secret = env;
  try {
    request.secret = auth::hmac_secret(sources, "--secret-file");
  } catch (const auth::KeyError& e) {
    return fail(e.what());
  }
  if (request.secret.empty())
    return fail("no HMAC secret: give --secret-file FILE or set AGENTWIRE_AUTH_SECRET");
  if (request.secret.size() < auth::kMinSecretBytes)
    std::fprintf(stderr,
                 "agentwire token: warning: the secret is shorter than %zu bytes (openssl rand -base64 48)\n",
                 auth::kMinSecretBytes);

  if (given.count("agents")) request.agents = auth::split_list(value("agents"));
  if (given.count("scopes")) {
    // As a list ("publish,read") or as the claim writes it ("publish read").
    std::string scopes = value("scopes");
    std::replace(scopes.begin(), scopes.end(), ' ', ',');
    request.scopes = auth::split_list(scopes);
    std::erase(request.scopes, std::string());
  }
  if (given.count("ttl")) {
    auto ttl = auth::parse_ttl(value("ttl"));
    if (!ttl) return fail("--ttl: '" + value("ttl") + "' is not a duration like 90s, 15m, 1h30m or 7d");
    request.ttl_s = *ttl;
  }
  if (given.count("sub")) request.sub = value("sub");
  if (given.count("alg")) request.alg = value("alg");
  request.kid = value("kid");
  request.audience = value("audience");
  request.issuer = value("issuer");
  try {
    std::string token = auth::mint_token(request, now_unix_ms() / 1000);
    std::printf("%s\n", token.c_str());
    return 0;
  } catch (const std::exception& e) {  // MintError, or libjwt failing
    return fail(e.what());
  }
}

}  // namespace aw::app
