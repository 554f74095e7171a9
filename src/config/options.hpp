// Every setting of the server in one struct: each has a default and a reason, can be given as a flag
// (`--heartbeat-interval 30`) or an environment variable (AGENTWIRE_HEARTBEAT_INTERVAL=30), and is
// validated at start-up. Flags win over the environment.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace aw::config {

// One Redis instance of --broker: redis://host:port[/db].
struct RedisUrl {
  std::string host;
  std::uint16_t port = 6379;
  unsigned db = 0;
  std::string text;  // as given, normalized: for logs and stats
};

struct Options {
  std::string listen_host = "127.0.0.1";  // loopback by default: exposing it is a decision
  std::uint16_t listen_port = 8080;
  std::string data_dir = "./data";              // the SQLite event log lives here
  std::string store = "sqlite";                 // "sqlite" (durable) or "memory" (nothing survives a restart)
  std::string fsync = "normal";                 // normal: survives kill -9; always: survives power loss; off
  std::uint64_t store_max_bytes = 0;            // quota on the database; 0 = no quota
  std::vector<RedisUrl> brokers;                // --broker: many nodes share these; empty = embedded store
  std::int64_t broker_timeout_ms = 2000;        // a Redis answer later than this: 503 broker_unavailable
  unsigned threads = 0;                         // io threads; 0 = one per core
  std::uint64_t max_body_bytes = 1 << 20;       // HTTP request bodies; larger get 413
  std::uint64_t max_message_bytes = 64 << 10;   // client WebSocket messages; larger close with 1009
  std::uint64_t max_queue_bytes = 4 << 20;      // per-connection outbound backlog before 1008
  std::uint64_t max_connections = 100'000;      // HTTP + WebSocket; lowered to the descriptor limit
  std::uint64_t max_connections_per_ip = 1000;  // per IPv4 address or IPv6 /64; 0 = no limit
  std::int64_t heartbeat_interval_ms = 30'000;  // ping + heartbeat envelope; under common proxy idle cuts
  std::int64_t idle_timeout_ms = 90'000;        // three missed heartbeats
  std::size_t history_size = 1000;              // events per channel kept for resume
  std::int64_t history_ttl_ms = 24LL * 3600 * 1000;
  std::uint64_t history_max_bytes = 16ULL << 20;       // event bytes one channel holds in memory for resume
  std::uint64_t history_memory_budget = 256ULL << 20;  // ... and all channels together; older go to disk
  std::int64_t stream_idle_timeout_ms = 60'000;  // an AI output stream this long without a delta has died
  // What one agent may keep. Together they bound its snapshot, which must reach every client whole.
  std::uint64_t max_workflows_per_agent = 100;      // a dashboard's worth; finished ones can be deleted
  std::uint64_t max_metadata_bytes = 64 << 10;      // a workflow's metadata, as JSON
  std::uint64_t max_requirements_bytes = 64 << 10;  // one requirements submission, as JSON
  std::uint64_t max_open_streams_per_workflow = 8;  // models answering at once for one workflow
  std::uint64_t max_open_streams_per_agent = 32;
  std::uint64_t max_snapshot_bytes = 0;  // an agent's whole state as one snapshot; 0 = half the queue
  // A request head (request line and headers) must be complete this long after its first byte (after the
  // accept for a connection's first request): far under the 60 s keep-alive idle timeout, so a client
  // trickling a head in byte by byte (slowloris) cannot hold a descriptor for long.
  std::int64_t header_timeout_ms = 10'000;
  // Rate limits, token buckets (0 = no limit). Handshakes: far above a browser's reconnect storm (each
  // tab, several agents, backing off). Messages: a subscriber sends pings, snapshot and refresh requests,
  // a few a minute. HTTP: off, since publishers are few addresses sending many events each.
  std::uint64_t max_handshakes_per_ip_per_s = 20;
  std::uint64_t handshake_burst_per_ip = 200;
  std::uint64_t max_messages_per_connection_per_s = 100;
  std::uint64_t message_burst_per_connection = 1000;
  std::uint64_t max_requests_per_ip_per_s = 0;
  std::uint64_t request_burst_per_ip = 1000;
  // Addresses each per-address table holds at once (about 60 bytes each): the bound on its memory.
  std::uint64_t rate_limit_max_addresses = 100'000;
  // Loopback peers are a proxy or tools on the same host, for which one address is every user: exempt
  // from the default per-address limits. An operator who sets one of those limits (or
  // --rate-limit-loopback) gets it for loopback too; --rate-limit-loopback=false keeps loopback exempt.
  std::optional<bool> rate_limit_loopback;
  bool per_address_limits_set = false;  // a per-address rate limit flag or variable was given

  bool limits_loopback() const noexcept { return rate_limit_loopback.value_or(per_address_limits_set); }
  std::string log_level = "info";
  bool enable_echo = false;  // /ws/echo for RFC 6455 conformance suites
  bool compression = false;  // permessage-deflate when the client offers it
  std::string web_dir;       // the dashboard's files; empty = web/dist beside the binary's build dir
  std::uint64_t max_web_file_bytes = 4 << 20;  // a dashboard file is read whole into memory per request
  // Subscriber tokens (JWT). With any key, /ws/agents/{id} needs a token allowing the agent; the files
  // are read and checked at start (src/auth/key_set) and again on SIGHUP.
  std::string auth_secret_file;               // HMAC secret (HS256/384/512)
  std::string auth_secret;                    // the same, from AGENTWIRE_AUTH_SECRET only (never a flag)
  std::vector<std::string> auth_public_keys;  // PEM public keys (RS*, ES*), kid = file name stem
  std::string auth_jwks_file;                 // a JWKS document
  std::string auth_audience;                  // aud must name it, when set
  std::string auth_issuer;                    // iss must be it, when set
  // TLS on the listening port (both or neither): PEM certificate chain and private key, read at start
  // and again on SIGHUP. Without them the port speaks plain HTTP.
  std::string tls_cert;
  std::string tls_key;

  bool tls_enabled() const noexcept { return !tls_cert.empty(); }

  // Browsers (see src/api/browser_policy). Origins other than the server's own that may make requests
  // and open WebSockets, normalised ("scheme://host[:port]", "null", or "*" for any but null); none by
  // default. Host names the Host header may name ("*": any); empty = the default: loopback names and a
  // literal listen address while anonymous (against DNS rebinding), any host once a key is configured.
  std::vector<std::string> allowed_origins;
  std::vector<std::string> allowed_hosts;
  // HTTP API keys: with them (or any token key above) every API route needs a credential with the
  // route's scope; the file holds SHA-256 hashes only (src/auth/api_keys), reread on SIGHUP.
  std::string api_keys_file;
  // A second listener for /healthz, stats and metrics without credentials (a private network or a
  // sidecar); empty host: none.
  std::string admin_listen_host;
  std::uint16_t admin_listen_port = 0;
  // With no key of any kind the server is open to whoever reaches it: it then listens only on loopback
  // unless this says that is meant.
  bool allow_anonymous = false;

  bool auth_enabled() const noexcept {
    return !auth_secret_file.empty() || !auth_secret.empty() || !auth_public_keys.empty() ||
           !auth_jwks_file.empty();
  }
  // Whether any credential is required: a token key or API keys.
  bool keys_configured() const noexcept { return auth_enabled() || !api_keys_file.empty(); }

  unsigned effective_threads() const;
  // At most half of max_queue_bytes, so a snapshot always fits in a client's queue beside live events.
  std::uint64_t effective_max_snapshot_bytes() const;
};

struct ParseOutcome {
  enum class Kind { run, help, version, error } kind = Kind::run;
  std::string message;  // help text or error
};

// `getenv` is injectable so tests need not touch the process environment.
ParseOutcome parse_options(int argc, const char* const* argv, Options& out,
                           const std::function<const char*(const char*)>& getenv = nullptr);

std::string help_text();

}  // namespace aw::config
