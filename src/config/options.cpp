#include "config/options.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <thread>

#include "core/log.hpp"
#include "core/web_origin.hpp"

namespace aw::config {
namespace {

enum class Kind { text, size, seconds, count, flag };

struct Spec {
  const char* name;  // flag without "--"
  Kind kind;
  const char* help;
  std::function<std::string(Options&, std::string_view)> set;  // returns an error or ""
};

bool parse_u64(std::string_view s, std::uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// "65536", "64K", "4M", "1G" (binary units).
bool parse_size(std::string_view s, std::uint64_t& out) {
  std::uint64_t mult = 1;
  if (!s.empty()) {
    char u = s.back();
    if (u == 'K' || u == 'k') mult = 1ULL << 10;
    if (u == 'M' || u == 'm') mult = 1ULL << 20;
    if (u == 'G' || u == 'g') mult = 1ULL << 30;
    if (mult != 1) s.remove_suffix(1);
  }
  std::uint64_t v;
  if (!parse_u64(s, v) || v > UINT64_MAX / mult) return false;
  out = v * mult;
  return true;
}

// Seconds, fractions allowed ("0.5"), as milliseconds.
bool parse_seconds(std::string_view s, std::int64_t& ms) {
  if (s.empty() || s.size() > 32) return false;
  std::string copy(s);
  char* end = nullptr;
  double v = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || !std::isfinite(v) || v <= 0 || v > 365.0 * 24 * 3600) return false;
  ms = static_cast<std::int64_t>(std::llround(v * 1000));
  return ms > 0;
}

std::string set_size(std::uint64_t& field, std::string_view v, std::uint64_t min, const char* name) {
  std::uint64_t n;
  if (!parse_size(v, n) || n < min)
    return std::string("--") + name + " must be a size of at least " + std::to_string(min) +
           " bytes (e.g. 65536, 64K, 4M)";
  field = n;
  return {};
}

std::string set_count(std::uint64_t& field, std::string_view v, std::uint64_t min, std::uint64_t max,
                      const char* name) {
  std::uint64_t n;
  if (!parse_u64(v, n) || n < min || n > max)
    return std::string("--") + name + " must be " + std::to_string(min) + ".." + std::to_string(max);
  field = n;
  return {};
}

std::string set_seconds(std::int64_t& field, std::string_view v, const char* name) {
  if (!parse_seconds(v, field)) return std::string("--") + name + " must be a positive number of seconds";
  return {};
}

std::string set_path(std::string& field, std::string_view v, const char* name) {
  if (v.empty()) return std::string("--") + name + " must not be empty";
  field = std::string(v);
  return {};
}

// A comma-separated list, each item trimmed; empty items are an error.
std::optional<std::vector<std::string_view>> split_list(std::string_view v) {
  std::vector<std::string_view> out;
  while (true) {
    auto comma = v.find(',');
    std::string_view item = v.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.empty()) return std::nullopt;
    out.push_back(item);
    if (comma == std::string_view::npos) return out;
    v.remove_prefix(comma + 1);
  }
}

std::string set_origins(Options& o, std::string_view v) {
  const std::string usage =
      "--allowed-origins takes a comma-separated list of origins scheme://host[:port] (e.g. "
      "https://app.example.com,http://localhost:5173), null, or * for any";
  auto items = split_list(v);
  if (!items) return usage;
  std::vector<std::string> out;
  for (auto item : *items) {
    if (item == "*" || item == "null") {
      out.emplace_back(item);
      continue;
    }
    // "http://localhost:5173/" as copied from an address bar is the same origin.
    if (item.back() == '/') item.remove_suffix(1);
    auto origin = parse_web_origin(item);
    if (!origin) return usage + "; not an origin: '" + std::string(item) + "'";
    out.push_back(origin->serialized());
  }
  o.allowed_origins = std::move(out);
  return {};
}

std::string set_hosts(Options& o, std::string_view v) {
  const std::string usage =
      "--allowed-hosts takes a comma-separated list of host names or IP addresses without ports (e.g. "
      "agentwire.example.com,10.0.0.5), or * for any";
  auto items = split_list(v);
  if (!items) return usage;
  std::vector<std::string> out;
  for (auto item : *items) {
    if (item == "*") {
      out.emplace_back(item);
      continue;
    }
    auto host = normalize_host_name(item);
    if (!host) return usage + "; not a host name: '" + std::string(item) + "'";
    out.push_back(std::move(*host));
  }
  o.allowed_hosts = std::move(out);
  return {};
}

std::optional<RedisUrl> parse_redis_url(std::string_view v) {
  constexpr std::string_view kScheme = "redis://";
  if (v.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  v.remove_prefix(kScheme.size());
  RedisUrl url;
  auto slash = v.find('/');
  std::string_view authority = v.substr(0, slash);
  if (slash != std::string_view::npos) {
    std::uint64_t db;
    if (!parse_u64(v.substr(slash + 1), db) || db > 15) return std::nullopt;
    url.db = static_cast<unsigned>(db);
  }
  auto colon = authority.rfind(':');
  if (colon == std::string_view::npos) return std::nullopt;
  std::string_view host = authority.substr(0, colon);
  std::uint64_t port;
  if (!parse_u64(authority.substr(colon + 1), port) || port == 0 || port > 65535) return std::nullopt;
  if (host.empty() || host.find_first_of("/@?# ") != std::string_view::npos) return std::nullopt;
  url.host = std::string(host);
  url.port = static_cast<std::uint16_t>(port);
  url.text = "redis://" + url.host + ":" + std::to_string(port) + "/" + std::to_string(url.db);
  return url;
}

std::string add_brokers(Options& o, std::string_view v) {
  const std::string usage =
      "--broker takes redis://host:port[/db] (db 0..15), repeatable or comma-separated (e.g. "
      "redis://10.0.0.5:6379,redis://10.0.0.6:6379)";
  auto items = split_list(v);
  if (!items) return usage;
  for (auto item : *items) {
    auto url = parse_redis_url(item);
    if (!url) return usage + "; not a Redis URL: '" + std::string(item) + "'";
    for (const auto& known : o.brokers) {
      if (known.text == url->text) return "--broker names " + url->text + " twice";
    }
    o.brokers.push_back(std::move(*url));
  }
  return {};
}

const std::vector<Spec>& specs() {
  static const std::vector<Spec> all = {
      {"listen", Kind::text,
       "host:port to listen on (default 127.0.0.1:8080); with no key configured only a loopback address, "
       "unless --allow-anonymous",
       [](Options& o, std::string_view v) -> std::string {
         auto colon = v.rfind(':');
         std::uint64_t port;
         if (colon == std::string_view::npos || colon == 0 || !parse_u64(v.substr(colon + 1), port) ||
             port > 65535)
           return "--listen must be host:port, e.g. 127.0.0.1:8080 (port 0 picks a free port)";
         std::string_view host = v.substr(0, colon);
         if (host.size() > 2 && host.front() == '[' && host.back() == ']')
           host = host.substr(1, host.size() - 2);
         o.listen_host = std::string(host);
         o.listen_port = static_cast<std::uint16_t>(port);
         return {};
       }},
      {"data-dir", Kind::text, "directory of the event log (default ./data)",
       [](Options& o, std::string_view v) -> std::string {
         if (v.empty()) return "--data-dir must not be empty";
         o.data_dir = std::string(v);
         return {};
       }},
      {"store", Kind::text, "sqlite (durable, default) or memory (nothing survives a restart)",
       [](Options& o, std::string_view v) -> std::string {
         if (v != "sqlite" && v != "memory") return "--store must be sqlite or memory";
         o.store = std::string(v);
         return {};
       }},
      {"fsync", Kind::text,
       "normal (default: an acknowledged event survives kill -9), always (also power loss), off",
       [](Options& o, std::string_view v) -> std::string {
         if (v != "normal" && v != "always" && v != "off") return "--fsync must be normal, always or off";
         o.fsync = std::string(v);
         return {};
       }},
      {"store-max-bytes", Kind::size,
       "quota on the database size; publishes get 503 when full (default 0: none)",
       [](Options& o, std::string_view v) { return set_size(o.store_max_bytes, v, 0, "store-max-bytes"); }},
      {"broker", Kind::text,
       "Redis instance(s) shared by many nodes, redis://host:port[/db], repeatable or comma-separated; "
       "each agent's channel lives on one by a stable hash of its id; numbering, history and "
       "idempotency move there from the local store (default: none, the embedded store)",
       add_brokers},
      {"broker-timeout", Kind::seconds,
       "seconds to wait for a Redis answer before a publish gets 503 broker_unavailable (default 2)",
       [](Options& o, std::string_view v) { return set_seconds(o.broker_timeout_ms, v, "broker-timeout"); }},
      {"threads", Kind::count, "io threads (default: one per core)",
       [](Options& o, std::string_view v) -> std::string {
         std::uint64_t n;
         if (!parse_u64(v, n) || n > 256) return "--threads must be 0..256 (0 = one per core)";
         o.threads = static_cast<unsigned>(n);
         return {};
       }},
      {"max-body-bytes", Kind::size, "largest HTTP request body; larger get 413 (default 1M)",
       [](Options& o, std::string_view v) { return set_size(o.max_body_bytes, v, 64, "max-body-bytes"); }},
      {"max-message-bytes", Kind::size,
       "largest client WebSocket message; larger close with 1009 (default 64K)",
       [](Options& o, std::string_view v) {
         return set_size(o.max_message_bytes, v, 64, "max-message-bytes");
       }},
      {"max-queue-bytes", Kind::size,
       "outbound backlog per connection before a slow client is closed with 1008 (default 4M)",
       [](Options& o, std::string_view v) {
         return set_size(o.max_queue_bytes, v, 1024, "max-queue-bytes");
       }},
      {"max-connections", Kind::count,
       "connections (HTTP and WebSocket) held at once; more get 503 (default 100000, lowered to the "
       "file descriptor limit less a reserve)",
       [](Options& o, std::string_view v) -> std::string {
         std::uint64_t n;
         if (!parse_u64(v, n) || n < 1 || n > 10'000'000) return "--max-connections must be 1..10000000";
         o.max_connections = n;
         return {};
       }},
      {"max-connections-per-ip", Kind::count,
       "connections one client address (IPv4, or IPv6 /64) may hold; more get 429 "
       "(default 1000, 0 = no limit)",
       [](Options& o, std::string_view v) -> std::string {
         std::uint64_t n;
         if (!parse_u64(v, n) || n > 10'000'000)
           return "--max-connections-per-ip must be 0..10000000 (0 = no limit)";
         o.max_connections_per_ip = n;
         return {};
       }},
      {"heartbeat-interval", Kind::seconds, "seconds between ping + heartbeat envelope (default 30)",
       [](Options& o, std::string_view v) {
         return set_seconds(o.heartbeat_interval_ms, v, "heartbeat-interval");
       }},
      {"idle-timeout", Kind::seconds,
       "seconds of client silence before the connection is closed (default 90)",
       [](Options& o, std::string_view v) { return set_seconds(o.idle_timeout_ms, v, "idle-timeout"); }},
      {"history-size", Kind::count, "events per channel kept for resume (default 1000)",
       [](Options& o, std::string_view v) -> std::string {
         std::uint64_t n;
         if (!parse_u64(v, n) || n > 10'000'000) return "--history-size must be 0..10000000";
         o.history_size = static_cast<std::size_t>(n);
         return {};
       }},
      {"history-ttl", Kind::seconds, "seconds an event is kept for resume (default 86400)",
       [](Options& o, std::string_view v) { return set_seconds(o.history_ttl_ms, v, "history-ttl"); }},
      {"history-max-bytes", Kind::size,
       "event bytes one channel holds in memory for resume; older ones are read from disk (default 16M)",
       [](Options& o, std::string_view v) {
         return set_size(o.history_max_bytes, v, 1024, "history-max-bytes");
       }},
      {"history-memory-budget", Kind::size,
       "event bytes all channels together hold in memory; the oldest leave first (default 256M)",
       [](Options& o, std::string_view v) {
         return set_size(o.history_memory_budget, v, 1024, "history-memory-budget");
       }},
      {"web-dir", Kind::text, "directory of the dashboard served at / (default: web/dist of the source tree)",
       [](Options& o, std::string_view v) -> std::string {
         if (v.empty()) return "--web-dir must not be empty";
         o.web_dir = std::string(v);
         return {};
       }},
      {"max-web-file-bytes", Kind::size,
       "largest dashboard file served from --web-dir; larger get 500 (default 4M)",
       [](Options& o, std::string_view v) {
         return set_size(o.max_web_file_bytes, v, 1024, "max-web-file-bytes");
       }},
      {"stream-idle-timeout", Kind::seconds,
       "seconds an AI output stream may go without a delta before it is ended as failed (default 60)",
       [](Options& o, std::string_view v) {
         return set_seconds(o.stream_idle_timeout_ms, v, "stream-idle-timeout");
       }},
      {"max-workflows-per-agent", Kind::count,
       "workflows one agent keeps (any phase); more get 409 too_many_workflows (default 100)",
       [](Options& o, std::string_view v) {
         return set_count(o.max_workflows_per_agent, v, 1, 1'000'000, "max-workflows-per-agent");
       }},
      {"max-metadata-bytes", Kind::size, "largest workflow metadata, as JSON; larger get 400 (default 64K)",
       [](Options& o, std::string_view v) {
         return set_size(o.max_metadata_bytes, v, 2, "max-metadata-bytes");
       }},
      {"max-requirements-bytes", Kind::size,
       "largest requirements submission (text and items, as JSON); larger get 400 (default 64K)",
       [](Options& o, std::string_view v) {
         return set_size(o.max_requirements_bytes, v, 2, "max-requirements-bytes");
       }},
      {"max-open-streams-per-workflow", Kind::count,
       "AI output streams open at once in one workflow; more get 409 too_many_streams (default 8)",
       [](Options& o, std::string_view v) {
         return set_count(o.max_open_streams_per_workflow, v, 1, 100'000, "max-open-streams-per-workflow");
       }},
      {"max-open-streams-per-agent", Kind::count,
       "AI output streams open at once on one agent; more get 409 too_many_streams (default 32)",
       [](Options& o, std::string_view v) {
         return set_count(o.max_open_streams_per_agent, v, 1, 100'000, "max-open-streams-per-agent");
       }},
      {"max-snapshot-bytes", Kind::size,
       "an agent's whole state as one snapshot message; what would pass it gets 409 snapshot_full "
       "(default and most: half of --max-queue-bytes)",
       [](Options& o, std::string_view v) {
         return set_size(o.max_snapshot_bytes, v, 16 << 10, "max-snapshot-bytes");
       }},
      {"header-timeout", Kind::seconds,
       "seconds a client has to send a complete request head; later gets 408 and a close (default 10)",
       [](Options& o, std::string_view v) { return set_seconds(o.header_timeout_ms, v, "header-timeout"); }},
      {"max-handshakes-per-ip-per-s", Kind::count,
       "WebSocket handshakes a second one client address (IPv4, or IPv6 /64) may start, on average; more "
       "get 429 rate_limited with Retry-After (default 20, 0 = no limit; loopback peers are exempt from "
       "the defaults, not from a limit you set)",
       [](Options& o, std::string_view v) {
         o.per_address_limits_set = true;
         return set_count(o.max_handshakes_per_ip_per_s, v, 0, 1'000'000, "max-handshakes-per-ip-per-s");
       }},
      {"handshake-burst-per-ip", Kind::count,
       "WebSocket handshakes one client address may start at once before its rate applies (default 200)",
       [](Options& o, std::string_view v) {
         o.per_address_limits_set = true;
         return set_count(o.handshake_burst_per_ip, v, 1, 10'000'000, "handshake-burst-per-ip");
       }},
      {"max-messages-per-connection-per-s", Kind::count,
       "messages a second a WebSocket client may send, on average; more get an error envelope "
       "rate_limited and a close with 1008 (default 100, 0 = no limit)",
       [](Options& o, std::string_view v) {
         return set_count(o.max_messages_per_connection_per_s, v, 0, 1'000'000,
                          "max-messages-per-connection-per-s");
       }},
      {"message-burst-per-connection", Kind::count,
       "messages a WebSocket client may send at once before its rate applies (default 1000)",
       [](Options& o, std::string_view v) {
         return set_count(o.message_burst_per_connection, v, 1, 10'000'000, "message-burst-per-connection");
       }},
      {"max-requests-per-ip-per-s", Kind::count,
       "HTTP requests a second one client address may make, on average; more get 429 rate_limited with "
       "Retry-After (default 0 = no limit: publishers are few addresses)",
       [](Options& o, std::string_view v) {
         o.per_address_limits_set = true;
         return set_count(o.max_requests_per_ip_per_s, v, 0, 10'000'000, "max-requests-per-ip-per-s");
       }},
      {"request-burst-per-ip", Kind::count,
       "HTTP requests one client address may make at once before its rate applies (default 1000)",
       [](Options& o, std::string_view v) {
         o.per_address_limits_set = true;
         return set_count(o.request_burst_per_ip, v, 1, 100'000'000, "request-burst-per-ip");
       }},
      {"rate-limit-max-addresses", Kind::count,
       "client addresses each per-address rate limit tracks at once; while full of limited addresses, new "
       "ones get 429 too (default 100000)",
       [](Options& o, std::string_view v) {
         return set_count(o.rate_limit_max_addresses, v, 1, 100'000'000, "rate-limit-max-addresses");
       }},
      {"rate-limit-loopback", Kind::flag,
       "apply the per-address rate limits to loopback peers too, or with =false never (default: loopback "
       "is exempt from the default limits, as a proxy on the same host puts every user under one address, "
       "and limited by any per-address limit set explicitly)",
       [](Options& o, std::string_view v) -> std::string {
         if (v != "true" && v != "false" && v != "1" && v != "0")
           return "--rate-limit-loopback takes true or false";
         o.rate_limit_loopback = v == "true" || v == "1";
         return {};
       }},
      {"log-level", Kind::text, "debug, info (default), warn, error or off",
       [](Options& o, std::string_view v) -> std::string {
         log::Level l;
         if (!log::parse_level(v, l)) return "--log-level must be debug, info, warn, error or off";
         o.log_level = std::string(v);
         return {};
       }},
      {"enable-echo", Kind::flag, "serve /ws/echo (echoes every message) for conformance suites",
       [](Options& o, std::string_view v) -> std::string {
         if (v != "true" && v != "false" && v != "1" && v != "0") return "--enable-echo takes true or false";
         o.enable_echo = v == "true" || v == "1";
         return {};
       }},
      {"compression", Kind::flag, "negotiate permessage-deflate when the client offers it",
       [](Options& o, std::string_view v) -> std::string {
         if (v != "true" && v != "false" && v != "1" && v != "0") return "--compression takes true or false";
         o.compression = v == "true" || v == "1";
         return {};
       }},
      {"allowed-origins", Kind::text,
       "web origins (scheme://host[:port], comma-separated; null; * for any) whose pages may call the API "
       "and open WebSockets; others get 403 origin_forbidden, the server's own origin is always allowed "
       "(default: none)",
       set_origins},
      {"allowed-hosts", Kind::text,
       "host names the Host header may name (comma-separated, port ignored; * for any); others get 421 "
       "host_forbidden, against DNS rebinding (default: localhost, 127.0.0.1, [::1] and a literal listen "
       "address while no key is configured; any host once one is)",
       set_hosts},
      {"auth-secret-file", Kind::text,
       "file holding the HMAC secret subscriber tokens (HS256/384/512) are signed with; with any --auth-* "
       "key, "
       "/ws/agents/{id} needs a token (AGENTWIRE_AUTH_SECRET may hold the secret itself instead)",
       [](Options& o, std::string_view v) { return set_path(o.auth_secret_file, v, "auth-secret-file"); }},
      {"auth-public-key", Kind::text,
       "PEM public key (RSA: RS256/384/512, EC: ES256/384/512) for subscriber tokens; repeatable; its kid "
       "is the file name without extension",
       [](Options& o, std::string_view v) -> std::string {
         if (v.empty()) return "--auth-public-key must not be empty";
         o.auth_public_keys.emplace_back(v);
         return {};
       }},
      {"auth-jwks-file", Kind::text,
       "JWKS file (RSA, EC and oct keys, selected by kid) for subscriber tokens",
       [](Options& o, std::string_view v) { return set_path(o.auth_jwks_file, v, "auth-jwks-file"); }},
      {"auth-audience", Kind::text, "tokens must name this in aud (default: aud not checked)",
       [](Options& o, std::string_view v) { return set_path(o.auth_audience, v, "auth-audience"); }},
      {"auth-issuer", Kind::text, "tokens must have this iss (default: iss not checked)",
       [](Options& o, std::string_view v) { return set_path(o.auth_issuer, v, "auth-issuer"); }},
      {"tls-cert", Kind::text,
       "PEM certificate chain (leaf first): the port then speaks TLS 1.2+ only, https:// and wss://; "
       "needs --tls-key; both are read again on SIGHUP (default: plain HTTP)",
       [](Options& o, std::string_view v) { return set_path(o.tls_cert, v, "tls-cert"); }},
      {"tls-key", Kind::text, "PEM private key (unencrypted) of --tls-cert",
       [](Options& o, std::string_view v) { return set_path(o.tls_key, v, "tls-key"); }},
      {"api-keys-file", Kind::text,
       "JSON file of HTTP API keys, stored as SHA-256 hashes, each with scopes (publish, workflows, read, "
       "admin) and optionally agents; with it or any --auth-* key every API route needs Authorization: "
       "Bearer <key or token> (make keys with `agentwire api-key`; reread on SIGHUP)",
       [](Options& o, std::string_view v) { return set_path(o.api_keys_file, v, "api-keys-file"); }},
      {"admin-listen", Kind::text,
       "host:port of a second listener serving only /healthz, stats and metrics, without credentials "
       "(default: none; the main port then needs the admin scope for stats and metrics)",
       [](Options& o, std::string_view v) -> std::string {
         auto colon = v.rfind(':');
         std::uint64_t port;
         if (colon == std::string_view::npos || colon == 0 || !parse_u64(v.substr(colon + 1), port) ||
             port > 65535)
           return "--admin-listen must be host:port, e.g. 127.0.0.1:9090";
         std::string_view host = v.substr(0, colon);
         if (host.size() > 2 && host.front() == '[' && host.back() == ']')
           host = host.substr(1, host.size() - 2);
         o.admin_listen_host = std::string(host);
         o.admin_listen_port = static_cast<std::uint16_t>(port);
         return {};
       }},
      {"allow-anonymous", Kind::flag,
       "with no key configured (no --api-keys-file, no --auth-* key) the server refuses to listen on a "
       "non-loopback address, since anyone reaching it could read and publish everything; this flag "
       "allows it (a warning is logged)",
       [](Options& o, std::string_view v) -> std::string {
         if (v != "true" && v != "false" && v != "1" && v != "0")
           return "--allow-anonymous takes true or false";
         o.allow_anonymous = v == "true" || v == "1";
         return {};
       }},
  };
  return all;
}

std::string env_name(const char* flag) {
  std::string n = "AGENTWIRE_";
  for (const char* p = flag; *p; ++p) n.push_back(*p == '-' ? '_' : static_cast<char>(std::toupper(*p)));
  return n;
}

}  // namespace

std::uint64_t Options::effective_max_snapshot_bytes() const {
  return max_snapshot_bytes != 0 ? max_snapshot_bytes : max_queue_bytes / 2;
}

unsigned Options::effective_threads() const {
  if (threads > 0) return threads;
  unsigned n = std::thread::hardware_concurrency();
  return n == 0 ? 1 : n;
}

std::string help_text() {
  std::string h =
      "agentwire: real-time updates for AI-agent workflows over WebSocket\n\n"
      "usage: agentwire [options]\n"
      "       agentwire check [--token JWT] [--api-key KEY] URL    check a running server (check --help)\n"
      "       agentwire token --secret-file FILE --agents LIST      mint a dev token (token --help)\n\n"
      "Every option can also be set with an environment variable, shown in brackets.\n\n";
  for (const auto& s : specs()) {
    std::string flag = std::string("  --") + s.name + (s.kind == Kind::flag ? "" : " VALUE");
    flag.resize(std::max<std::size_t>(30, flag.size() + 2), ' ');  // long names keep a gap too
    h += flag + s.help + " [" + env_name(s.name) + "]\n";
  }
  h += "  (AGENTWIRE_AUTH_SECRET)     the HMAC secret itself, instead of --auth-secret-file\n";
  h += "  --help                      this text\n  --version                   the server version\n";
  return h;
}

ParseOutcome parse_options(int argc, const char* const* argv, Options& out,
                           const std::function<const char*(const char*)>& getenv) {
  auto env = getenv ? getenv : [](const char* n) -> const char* { return std::getenv(n); };
  for (const auto& s : specs()) {
    if (const char* v = env(env_name(s.name).c_str()); v && *v) {
      if (auto err = s.set(out, v); !err.empty())
        return {ParseOutcome::Kind::error, env_name(s.name) + ": " + err};
    }
  }
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") return {ParseOutcome::Kind::help, help_text()};
    if (arg == "--version") return {ParseOutcome::Kind::version, AGENTWIRE_VERSION};
    if (arg.substr(0, 2) != "--")
      return {ParseOutcome::Kind::error, "unexpected argument '" + std::string(arg) + "'"};
    arg.remove_prefix(2);
    std::string_view value;
    bool has_value = false;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    const Spec* spec = nullptr;
    for (const auto& s : specs())
      if (arg == s.name) spec = &s;
    if (!spec) return {ParseOutcome::Kind::error, "unknown option --" + std::string(arg) + " (see --help)"};
    if (!has_value) {
      if (spec->kind == Kind::flag) {
        value = "true";
      } else if (i + 1 < argc) {
        value = argv[++i];
      } else {
        return {ParseOutcome::Kind::error, "--" + std::string(arg) + " needs a value"};
      }
    }
    if (auto err = spec->set(out, value); !err.empty()) return {ParseOutcome::Kind::error, err};
  }
  if (const char* secret = env("AGENTWIRE_AUTH_SECRET"); secret && *secret) {
    if (!out.auth_secret_file.empty())
      return {ParseOutcome::Kind::error,
              "give the HMAC secret once: --auth-secret-file or AGENTWIRE_AUTH_SECRET"};
    out.auth_secret = secret;
  }
  if ((!out.auth_audience.empty() || !out.auth_issuer.empty()) && !out.auth_enabled())
    return {ParseOutcome::Kind::error,
            "--auth-audience and --auth-issuer need a key: --auth-secret-file, --auth-public-key or "
            "--auth-jwks-file"};
  if (out.tls_cert.empty() != out.tls_key.empty())
    return {ParseOutcome::Kind::error, out.tls_cert.empty()
                                           ? "--tls-key needs --tls-cert (give both or neither)"
                                           : "--tls-cert needs --tls-key (give both or neither)"};
  if (!out.admin_listen_host.empty() && out.admin_listen_port != 0 &&
      out.admin_listen_port == out.listen_port)
    return {ParseOutcome::Kind::error, "--admin-listen must use another port than --listen"};
  if (out.idle_timeout_ms <= out.heartbeat_interval_ms)
    return {ParseOutcome::Kind::error, "--idle-timeout must be longer than --heartbeat-interval"};
  if (out.max_snapshot_bytes > out.max_queue_bytes / 2)
    return {ParseOutcome::Kind::error,
            "--max-snapshot-bytes must be at most half of --max-queue-bytes (" +
                std::to_string(out.max_queue_bytes / 2) +
                "): a snapshot must fit in a client's queue with room for live events"};
  return {};
}

}  // namespace aw::config
