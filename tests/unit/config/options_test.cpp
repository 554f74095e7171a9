// Options: defaults, flags, environment variables and validation.
#include "config/options.hpp"

#include <gtest/gtest.h>

#include <map>

namespace aw::config {
namespace {

ParseOutcome parse(std::vector<const char*> args, Options& o, std::map<std::string, std::string> env = {}) {
  args.insert(args.begin(), "agentwire");
  return parse_options(static_cast<int>(args.size()), args.data(), o,
                       [&env](const char* name) -> const char* {
                         auto it = env.find(name);
                         return it == env.end() ? nullptr : it->second.c_str();
                       });
}

TEST(Options, DefaultsMatchTheDocs) {
  Options o;
  ASSERT_EQ(parse({}, o).kind, ParseOutcome::Kind::run);
  EXPECT_EQ(o.listen_host, "127.0.0.1");
  EXPECT_EQ(o.listen_port, 8080);
  EXPECT_EQ(o.data_dir, "./data");
  EXPECT_EQ(o.max_body_bytes, 1u << 20);
  EXPECT_EQ(o.max_message_bytes, 64u << 10);
  EXPECT_EQ(o.max_queue_bytes, 4u << 20);
  EXPECT_EQ(o.heartbeat_interval_ms, 30000);
  EXPECT_EQ(o.idle_timeout_ms, 90000);
  EXPECT_EQ(o.history_size, 1000u);
  EXPECT_FALSE(o.enable_echo);
  EXPECT_FALSE(o.compression);
  EXPECT_GE(o.effective_threads(), 1u);
}

TEST(Options, FlagsInBothSpellings) {
  Options o;
  auto r = parse({"--listen", "0.0.0.0:9000", "--max-body-bytes=64K", "--heartbeat-interval", "0.5",
                  "--idle-timeout", "2", "--enable-echo", "--threads", "3"},
                 o);
  ASSERT_EQ(r.kind, ParseOutcome::Kind::run) << r.message;
  EXPECT_EQ(o.listen_host, "0.0.0.0");
  EXPECT_EQ(o.listen_port, 9000);
  EXPECT_EQ(o.max_body_bytes, 65536u);
  EXPECT_EQ(o.heartbeat_interval_ms, 500);
  EXPECT_EQ(o.idle_timeout_ms, 2000);
  EXPECT_TRUE(o.enable_echo);
  EXPECT_EQ(o.effective_threads(), 3u);
}

TEST(Options, EnvironmentAppliesAndFlagsWin) {
  Options o;
  auto r = parse(
      {"--max-queue-bytes", "2M"}, o,
      {{"AGENTWIRE_MAX_QUEUE_BYTES", "1M"}, {"AGENTWIRE_LOG_LEVEL", "warn"}, {"AGENTWIRE_COMPRESSION", "1"}});
  ASSERT_EQ(r.kind, ParseOutcome::Kind::run) << r.message;
  EXPECT_EQ(o.max_queue_bytes, 2u << 20);
  EXPECT_EQ(o.log_level, "warn");
  EXPECT_TRUE(o.compression);
}

TEST(Options, RejectsBadValuesClearly) {
  for (std::vector<const char*> args : std::vector<std::vector<const char*>>{
           {"--listen", "nope"},
           {"--listen", "1.2.3.4:70000"},
           {"--max-body-bytes", "lots"},
           {"--heartbeat-interval", "-1"},
           {"--heartbeat-interval", "10", "--idle-timeout", "5"},
           {"--log-level", "loud"},
           {"--store", "redis"},
           {"--bogus"},
           {"stray"},
           {"--data-dir"},
       }) {
    Options o;
    auto r = parse(args, o);
    EXPECT_EQ(r.kind, ParseOutcome::Kind::error) << args[0];
    EXPECT_FALSE(r.message.empty());
  }
  Options o;
  auto env = parse({}, o, {{"AGENTWIRE_THREADS", "many"}});
  EXPECT_EQ(env.kind, ParseOutcome::Kind::error);
  EXPECT_NE(env.message.find("AGENTWIRE_THREADS"), std::string::npos);
}

TEST(Options, WhatOneAgentKeepsIsBoundedAndItsSnapshotFitsAClientsQueue) {
  Options o;
  ASSERT_EQ(parse({}, o).kind, ParseOutcome::Kind::run);
  EXPECT_EQ(o.max_workflows_per_agent, 100u);
  EXPECT_EQ(o.max_metadata_bytes, 64u << 10);
  EXPECT_EQ(o.max_requirements_bytes, 64u << 10);
  EXPECT_EQ(o.max_open_streams_per_workflow, 8u);
  EXPECT_EQ(o.max_open_streams_per_agent, 32u);
  EXPECT_EQ(o.effective_max_snapshot_bytes(), 2u << 20);  // half of --max-queue-bytes
  Options small;
  ASSERT_EQ(parse({"--max-queue-bytes", "256K"}, small).kind, ParseOutcome::Kind::run);
  EXPECT_EQ(small.effective_max_snapshot_bytes(), 128u << 10);
  Options set;
  ASSERT_EQ(parse({"--max-snapshot-bytes", "1M", "--max-workflows-per-agent", "5",
                   "--max-open-streams-per-agent", "2"},
                  set)
                .kind,
            ParseOutcome::Kind::run);
  EXPECT_EQ(set.effective_max_snapshot_bytes(), 1u << 20);
  EXPECT_EQ(set.max_workflows_per_agent, 5u);
  Options bad;
  auto r = parse({"--max-snapshot-bytes", "3M"}, bad);
  EXPECT_EQ(r.kind, ParseOutcome::Kind::error);
  EXPECT_NE(r.message.find("--max-queue-bytes"), std::string::npos) << r.message;
  Options zero;
  EXPECT_EQ(parse({"--max-workflows-per-agent", "0"}, zero).kind, ParseOutcome::Kind::error);
}

TEST(Options, HeaderTimeout) {
  Options o;
  ASSERT_EQ(parse({}, o).kind, ParseOutcome::Kind::run);
  EXPECT_EQ(o.header_timeout_ms, 10000);  // far under the 60 s keep-alive idle timeout
  ASSERT_EQ(parse({"--header-timeout", "2.5"}, o).kind, ParseOutcome::Kind::run);
  EXPECT_EQ(o.header_timeout_ms, 2500);
  ASSERT_EQ(parse({}, o, {{"AGENTWIRE_HEADER_TIMEOUT", "3"}}).kind, ParseOutcome::Kind::run);
  EXPECT_EQ(o.header_timeout_ms, 3000);
  for (auto bad : {"0", "-1", "soon"}) {
    auto r = parse({"--header-timeout", bad}, o);
    EXPECT_EQ(r.kind, ParseOutcome::Kind::error) << bad;
    EXPECT_NE(r.message.find("--header-timeout"), std::string::npos) << r.message;
  }
}

TEST(Options, ConnectionLimitsAndWebFileBound) {
  Options o;
  ASSERT_EQ(parse({}, o).kind, ParseOutcome::Kind::run);
  EXPECT_EQ(o.max_connections, 100'000u);
  EXPECT_EQ(o.max_connections_per_ip, 1000u);
  EXPECT_EQ(o.max_web_file_bytes, 4u << 20);
  ASSERT_EQ(parse({"--max-connections", "5", "--max-connections-per-ip", "0"}, o).kind,
            ParseOutcome::Kind::run);
  EXPECT_EQ(o.max_connections, 5u);
  EXPECT_EQ(o.max_connections_per_ip, 0u);  // no per-address limit
  ASSERT_EQ(parse({"--max-web-file-bytes", "2K"}, o).kind, ParseOutcome::Kind::run);
  EXPECT_EQ(o.max_web_file_bytes, 2048u);
  ASSERT_EQ(parse({}, o, {{"AGENTWIRE_MAX_CONNECTIONS_PER_IP", "7"}}).kind, ParseOutcome::Kind::run);
  EXPECT_EQ(o.max_connections_per_ip, 7u);
  const std::pair<const char*, const char*> bad[] = {{"--max-connections", "0"},
                                                     {"--max-connections", "10000001"},
                                                     {"--max-connections-per-ip", "-1"},
                                                     {"--max-connections-per-ip", "many"},
                                                     {"--max-web-file-bytes", "100"}};
  for (auto [flag, value] : bad) {
    auto r = parse({flag, value}, o);
    EXPECT_EQ(r.kind, ParseOutcome::Kind::error) << flag << " " << value;
    EXPECT_NE(r.message.find(flag), std::string::npos) << r.message;
  }
}

TEST(Options, HelpNamesEveryFlag) {
  Options o;
  auto r = parse({"--help"}, o);
  EXPECT_EQ(r.kind, ParseOutcome::Kind::help);
  for (auto flag : {"--listen", "--data-dir", "--threads", "--max-body-bytes", "--max-message-bytes",
                    "--max-queue-bytes", "--heartbeat-interval", "--idle-timeout", "--log-level",
                    "--enable-echo", "--compression", "--header-timeout", "--max-connections",
                    "--max-connections-per-ip", "--max-web-file-bytes", "AGENTWIRE_LISTEN"})
    EXPECT_NE(r.message.find(flag), std::string::npos) << flag;
}

TEST(Options, AuthKeysAndTheirRules) {
  Options o;
  EXPECT_FALSE(o.auth_enabled());
  ASSERT_EQ(parse({"--auth-public-key", "a.pem", "--auth-public-key=b.pem", "--auth-jwks-file", "k.json",
                   "--auth-audience", "aw", "--auth-issuer", "idp"},
                  o)
                .kind,
            ParseOutcome::Kind::run);
  EXPECT_EQ(o.auth_public_keys, (std::vector<std::string>{"a.pem", "b.pem"}));
  EXPECT_EQ(o.auth_jwks_file, "k.json");
  EXPECT_EQ(o.auth_audience, "aw");
  EXPECT_EQ(o.auth_issuer, "idp");
  EXPECT_TRUE(o.auth_enabled());

  Options e;
  ASSERT_EQ(parse({}, e, {{"AGENTWIRE_AUTH_SECRET", "s3cret"}}).kind, ParseOutcome::Kind::run);
  EXPECT_EQ(e.auth_secret, "s3cret");
  EXPECT_TRUE(e.auth_enabled());

  Options both;
  auto r = parse({"--auth-secret-file", "f"}, both, {{"AGENTWIRE_AUTH_SECRET", "s"}});
  EXPECT_EQ(r.kind, ParseOutcome::Kind::error);
  EXPECT_NE(r.message.find("--auth-secret-file"), std::string::npos);
  Options aud;
  r = parse({"--auth-audience", "aw"}, aud);
  EXPECT_EQ(r.kind, ParseOutcome::Kind::error);
  EXPECT_NE(r.message.find("--auth-audience"), std::string::npos);
  EXPECT_NE(help_text().find("--auth-secret-file"), std::string::npos);
  EXPECT_NE(help_text().find("AGENTWIRE_AUTH_SECRET"), std::string::npos);
}

TEST(Options, AllowedOriginsAndHosts) {
  Options o;
  ASSERT_EQ(parse({}, o).kind, ParseOutcome::Kind::run);
  EXPECT_TRUE(o.allowed_origins.empty());
  EXPECT_TRUE(o.allowed_hosts.empty());
  ASSERT_EQ(parse({"--allowed-origins", "HTTPS://App.Example.com:443, http://localhost:5173/,null",
                   "--allowed-hosts=Agentwire.Example.com,::1,10.0.0.5"},
                  o)
                .kind,
            ParseOutcome::Kind::run);
  EXPECT_EQ(o.allowed_origins,
            (std::vector<std::string>{"https://app.example.com", "http://localhost:5173", "null"}));
  EXPECT_EQ(o.allowed_hosts, (std::vector<std::string>{"agentwire.example.com", "[::1]", "10.0.0.5"}));
  Options e;
  ASSERT_EQ(parse({}, e, {{"AGENTWIRE_ALLOWED_ORIGINS", "*"}, {"AGENTWIRE_ALLOWED_HOSTS", "*"}}).kind,
            ParseOutcome::Kind::run);
  EXPECT_EQ(e.allowed_origins, std::vector<std::string>{"*"});
  EXPECT_EQ(e.allowed_hosts, std::vector<std::string>{"*"});
  for (std::vector<const char*> bad : {std::vector<const char*>{"--allowed-origins", "example.com"},
                                       {"--allowed-origins", "http://a.example/path"},
                                       {"--allowed-origins", "http:///"},
                                       {"--allowed-origins", "http://a.example,"},
                                       {"--allowed-origins", ""},
                                       {"--allowed-hosts", "example.com:8080"},
                                       {"--allowed-hosts", "cafe:80"},
                                       {"--allowed-hosts", "a,,b"},
                                       {"--allowed-hosts", "http://example.com"}}) {
    Options b;
    auto r = parse(bad, b);
    EXPECT_EQ(r.kind, ParseOutcome::Kind::error) << bad[0] << " " << bad[1];
    EXPECT_NE(r.message.find(bad[0]), std::string::npos) << r.message;
  }
}

TEST(Options, RateLimits) {
  Options o;
  ASSERT_EQ(parse({}, o).kind, ParseOutcome::Kind::run);
  // The defaults operations.md documents: handshakes and messages limited, HTTP requests not.
  EXPECT_EQ(o.max_handshakes_per_ip_per_s, 20u);
  EXPECT_EQ(o.handshake_burst_per_ip, 200u);
  EXPECT_EQ(o.max_messages_per_connection_per_s, 100u);
  EXPECT_EQ(o.message_burst_per_connection, 1000u);
  EXPECT_EQ(o.max_requests_per_ip_per_s, 0u);
  EXPECT_EQ(o.request_burst_per_ip, 1000u);
  EXPECT_EQ(o.rate_limit_max_addresses, 100000u);
  EXPECT_FALSE(o.limits_loopback());  // exempt from the defaults
  Options set;
  ASSERT_EQ(
      parse({"--max-handshakes-per-ip-per-s", "0", "--max-requests-per-ip-per-s=50", "--rate-limit-loopback"},
            set, {{"AGENTWIRE_MESSAGE_BURST_PER_CONNECTION", "7"}})
          .kind,
      ParseOutcome::Kind::run);
  EXPECT_EQ(set.max_handshakes_per_ip_per_s, 0u);
  EXPECT_EQ(set.max_requests_per_ip_per_s, 50u);
  EXPECT_EQ(set.message_burst_per_connection, 7u);
  EXPECT_TRUE(set.limits_loopback());
  // A limit set explicitly applies to loopback too, unless loopback is exempted by name.
  for (const char* flag : {"--max-handshakes-per-ip-per-s", "--handshake-burst-per-ip",
                           "--max-requests-per-ip-per-s", "--request-burst-per-ip"}) {
    Options explicit_limit;
    ASSERT_EQ(parse({flag, "5"}, explicit_limit).kind, ParseOutcome::Kind::run) << flag;
    EXPECT_TRUE(explicit_limit.limits_loopback()) << flag;
    Options exempted;
    ASSERT_EQ(parse({flag, "5", "--rate-limit-loopback=false"}, exempted).kind, ParseOutcome::Kind::run)
        << flag;
    EXPECT_FALSE(exempted.limits_loopback()) << flag;
  }
  Options from_env;
  ASSERT_EQ(parse({}, from_env, {{"AGENTWIRE_MAX_HANDSHAKES_PER_IP_PER_S", "5"}}).kind,
            ParseOutcome::Kind::run);
  EXPECT_TRUE(from_env.limits_loopback());
  Options message_limit_only;  // per connection, not per address: loopback stays exempt from the others
  ASSERT_EQ(parse({"--max-messages-per-connection-per-s", "5"}, message_limit_only).kind,
            ParseOutcome::Kind::run);
  EXPECT_FALSE(message_limit_only.limits_loopback());
  // A burst holds at least one; a table at least one address.
  for (const char* flag : {"--handshake-burst-per-ip", "--message-burst-per-connection",
                           "--request-burst-per-ip", "--rate-limit-max-addresses"}) {
    Options bad;
    auto r = parse({flag, "0"}, bad);
    EXPECT_EQ(r.kind, ParseOutcome::Kind::error) << flag;
    EXPECT_NE(r.message.find(flag), std::string::npos) << r.message;
  }
}

TEST(Options, ApiKeysAdminListenerAndAnonymousExposure) {
  Options o;
  EXPECT_FALSE(o.keys_configured());
  EXPECT_FALSE(o.allow_anonymous);
  EXPECT_TRUE(o.admin_listen_host.empty());
  ASSERT_EQ(
      parse({"--api-keys-file", "keys.json", "--admin-listen", "[::1]:9090", "--allow-anonymous"}, o).kind,
      ParseOutcome::Kind::run);
  EXPECT_EQ(o.api_keys_file, "keys.json");
  EXPECT_TRUE(o.keys_configured());
  EXPECT_FALSE(o.auth_enabled());  // subscribers' token keys are another thing
  EXPECT_EQ(o.admin_listen_host, "::1");
  EXPECT_EQ(o.admin_listen_port, 9090);
  EXPECT_TRUE(o.allow_anonymous);

  Options e;
  ASSERT_EQ(parse({}, e, {{"AGENTWIRE_API_KEYS_FILE", "k"}, {"AGENTWIRE_ALLOW_ANONYMOUS", "1"}}).kind,
            ParseOutcome::Kind::run);
  EXPECT_EQ(e.api_keys_file, "k");
  EXPECT_TRUE(e.allow_anonymous);

  for (auto bad : std::vector<std::vector<const char*>>{
           {"--api-keys-file="},
           {"--admin-listen", "9090"},
           {"--admin-listen", "h:70000"},
           {"--allow-anonymous=maybe"},
           {"--listen", "127.0.0.1:9000", "--admin-listen", "127.0.0.1:9000"}}) {
    Options b;
    EXPECT_EQ(parse(bad, b).kind, ParseOutcome::Kind::error) << bad[0];
  }
  auto help = help_text();
  for (auto word : {"--api-keys-file", "--admin-listen", "--allow-anonymous", "loopback"})
    EXPECT_NE(help.find(word), std::string::npos) << word;
}

TEST(Options, BrokersAreRedisUrlsRepeatableOrCommaSeparated) {
  Options o;
  ASSERT_EQ(parse({}, o).kind, ParseOutcome::Kind::run);
  EXPECT_TRUE(o.brokers.empty());
  EXPECT_EQ(o.broker_timeout_ms, 2000);
  auto r = parse({"--broker", "redis://10.0.0.5:6379,redis://r2:6380/3", "--broker", "redis://[::1]:7000",
                  "--broker-timeout", "0.5"},
                 o);
  ASSERT_EQ(r.kind, ParseOutcome::Kind::run) << r.message;
  ASSERT_EQ(o.brokers.size(), 3u);
  EXPECT_EQ(o.brokers[0].host, "10.0.0.5");
  EXPECT_EQ(o.brokers[0].port, 6379);
  EXPECT_EQ(o.brokers[1].db, 3u);
  EXPECT_EQ(o.brokers[1].text, "redis://r2:6380/3");
  EXPECT_EQ(o.brokers[2].host, "[::1]");
  EXPECT_EQ(o.broker_timeout_ms, 500);
  for (const char* bad : {"http://x:1", "redis://x", "redis://x:0", "redis://x:6379/16", "redis://:6379",
                          "redis://a:1,,redis://b:2", "redis://a:1,redis://a:1"}) {
    Options b;
    auto br = parse({"--broker", bad}, b);
    EXPECT_EQ(br.kind, ParseOutcome::Kind::error) << bad;
    EXPECT_NE(br.message.find("--broker"), std::string::npos) << br.message;
  }
}

}  // namespace
}  // namespace aw::config
