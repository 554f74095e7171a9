// `agentwire check <base-url>`: an end-to-end check of a running deployment for operators after a
// deploy — health, connect, publish, receive, resume, stats — printing each step with its timing. On a
// server with keys it subscribes with a token and calls the HTTP API with an API key (or the token).
#pragma once
#include <iosfwd>
#include <string>

namespace aw::check {

struct CheckOptions {
  std::string base_url;     // http://host:port or https://host:port
  std::string agent_id;     // empty: a fresh "agentwire-check-<random>" channel
  double timeout_s = 10.0;  // per step
  std::string token;    // a subscriber JWT: the WebSocket's bearer subprotocol (and HTTP's, without a key)
  std::string api_key;  // HTTP's Authorization: Bearer
  std::string ca_file;  // https: a PEM file of CAs to trust besides the system's
};

// Runs every step, printing to `out`; returns the process exit code (0 when every step passed).
int run_check(const CheckOptions& options, std::ostream& out);

// `agentwire check [--agent ID] [--timeout S] [--token JWT] [--api-key KEY] <base-url>`; argv[0] is "check".
int check_main(int argc, char** argv);

}  // namespace aw::check
