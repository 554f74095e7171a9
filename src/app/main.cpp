// The composition root: reads the options, builds the store, shards, hub, API and server, runs until
// SIGTERM or SIGINT, then shuts down in order. The only place that names concrete types.
#include <sys/resource.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <thread>

#include "api/credentials.hpp"
#include "api/events_api.hpp"
#include "api/pipe_api.hpp"
#include "api/static_api.hpp"
#include "api/stats_api.hpp"
#include "api/streams_api.hpp"
#include "api/workflows_api.hpp"
#include "app/control_signals.hpp"
#include "app/token_command.hpp"
#include "auth/api_key_gen.hpp"
#include "auth/api_keys.hpp"
#include "auth/verifier.hpp"
#include "broker/redis/redis_broker.hpp"
#include "broker/store_broker.hpp"
#include "check/check.hpp"
#include "config/exposure.hpp"
#include "config/options.hpp"
#include "core/clock.hpp"
#include "core/log.hpp"
#include "hub/hub.hpp"
#include "store/memory_event_store.hpp"
#include "store/sqlite/sqlite_event_store.hpp"
#include "transport/server.hpp"
#include "transport/shard.hpp"
#include "transport/tls_context.hpp"
#include "workflow/workflow_service.hpp"

namespace {

// Many connections need many descriptors: take what the hard limit allows.
void raise_fd_limit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

std::unique_ptr<aw::broker::Broker> open_broker(const aw::config::Options& o, aw::store::EventStore& store) {
  if (o.brokers.empty()) return std::make_unique<aw::broker::StoreBroker>(store, o.store);
  aw::broker::redis::RedisBrokerOptions ro;
  for (const auto& url : o.brokers) ro.endpoints.push_back({url.host, url.port, url.db, url.text});
  ro.timeout = std::chrono::milliseconds(o.broker_timeout_ms);
  ro.history_size = o.history_size;
  ro.history_ttl_ms = o.history_ttl_ms;
  return std::make_unique<aw::broker::redis::RedisBroker>(std::move(ro));
}

std::unique_ptr<aw::store::EventStore> open_store(const aw::config::Options& o) {
  // With a shared broker the events and state live in Redis; the local store is not used.
  if (o.store == "memory" || !o.brokers.empty()) return std::make_unique<aw::store::MemoryEventStore>();
  std::filesystem::create_directories(o.data_dir);
  aw::store::FsyncMode mode = o.fsync == "always" ? aw::store::FsyncMode::always
                              : o.fsync == "off"  ? aw::store::FsyncMode::off
                                                  : aw::store::FsyncMode::normal;
  // The history size lets the store trim a fast channel between the hub's prunes (disk stays bounded).
  return std::make_unique<aw::store::SqliteEventStore>(
      (std::filesystem::path(o.data_dir) / "events.db").string(), mode, o.store_max_bytes, o.history_size);
}

// The dashboard: --web-dir, else web/dist of the source tree the binary was built in (build/agentwire).
std::string web_dir(const aw::config::Options& o, const char* argv0) {
  if (!o.web_dir.empty()) return o.web_dir;
  std::error_code ec;
  auto exe = std::filesystem::canonical("/proc/self/exe", ec);
  if (ec) exe = std::filesystem::absolute(argv0, ec);
  return (exe.parent_path().parent_path() / "web" / "dist").string();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string_view(argv[1]) == "check") return aw::check::check_main(argc - 1, argv + 1);
  if (argc > 1 && std::string_view(argv[1]) == "token") return aw::app::token_main(argc - 1, argv + 1);
  if (argc > 1 && std::string_view(argv[1]) == "api-key") return aw::auth::api_key_main(argc - 1, argv + 1);
  aw::config::Options options;
  auto parsed = aw::config::parse_options(argc, argv, options);
  using Kind = aw::config::ParseOutcome::Kind;
  switch (parsed.kind) {
    case Kind::help:
      std::fputs(parsed.message.c_str(), stdout);
      return 0;
    case Kind::version:
      std::printf("agentwire %s\n", parsed.message.c_str());
      return 0;
    case Kind::error:
      std::fprintf(stderr, "agentwire: %s\n", parsed.message.c_str());
      return 2;
    case Kind::run:
      break;
  }
  aw::log::Level level;
  aw::log::parse_level(options.log_level, level);
  aw::log::set_level(level);
  raise_fd_limit();
  // Secure by default: no keys means loopback only, unless --allow-anonymous.
  if (auto why = aw::config::exposure_error(options); !why.empty()) {
    std::fprintf(stderr, "agentwire: %s\n", why.c_str());
    return 2;
  }
  if (aw::config::exposed_anonymously(options))
    aw::log::warn("anonymous_exposed",
                  {{"host", options.listen_host},
                   {"why",
                    "--allow-anonymous: no key is configured and the address is not loopback, so "
                    "anyone who can reach it may read and publish every agent's events"}});

  // Subscriber token keys: a file that cannot be used stops the start, naming its flag.
  aw::auth::KeySources key_sources{options.auth_secret_file, options.auth_secret, options.auth_public_keys,
                                   options.auth_jwks_file};
  std::unique_ptr<aw::auth::Verifier> verifier;
  if (options.auth_enabled()) {
    try {
      verifier = std::make_unique<aw::auth::Verifier>(
          aw::auth::load_keys(key_sources), aw::auth::ClaimRules{options.auth_audience, options.auth_issuer});
    } catch (const aw::auth::KeyError& e) {
      std::fprintf(stderr, "agentwire: %s\n", e.what());
      return 2;
    }
  }
  // HTTP API keys: likewise.
  std::unique_ptr<aw::auth::ApiKeySet> api_keys;
  if (!options.api_keys_file.empty()) {
    try {
      api_keys = std::make_unique<aw::auth::ApiKeySet>(aw::auth::load_api_keys(options.api_keys_file));
    } catch (const aw::auth::KeyError& e) {
      std::fprintf(stderr, "agentwire: %s\n", e.what());
      return 2;
    }
  }

  // TLS: a certificate or key that cannot be used stops the start, naming its flag.
  std::unique_ptr<aw::transport::TlsContext> tls;
  if (options.tls_enabled()) {
    try {
      tls = std::make_unique<aw::transport::TlsContext>(options.tls_cert, options.tls_key);
    } catch (const aw::transport::TlsError& e) {
      std::fprintf(stderr, "agentwire: %s\n", e.what());
      return 2;
    }
  }

  try {
    // Signals are taken from here on (before any thread starts: see control_signals.hpp): a SIGTERM that
    // arrives as soon as we say "listening" is honoured once main_ioc runs.
    boost::asio::io_context main_ioc;
    int received = 0;
    std::function<void()> reload_keys;  // set below, once there is something to reload
    aw::app::ControlSignals signals(
        main_ioc,
        [&](int sig) {
          received = sig;
          main_ioc.stop();  // also ends the stream idle checks
        },
        [&] {
          if (reload_keys) reload_keys();
        });

    auto store = open_store(options);
    const unsigned threads = options.effective_threads();
    aw::metrics::Counters counters(threads);
    // The sweep drives heartbeats and timeouts: a few ticks per heartbeat, at most one per second.
    std::int64_t sweep_ms = std::clamp<std::int64_t>(options.heartbeat_interval_ms / 4, 50, 1000);
    aw::transport::ShardPool pool(threads, counters, sweep_ms);

    aw::hub::HubOptions hub_options;
    hub_options.history_size = options.history_size;
    hub_options.history_ttl_ms = options.history_ttl_ms;
    hub_options.history_max_bytes = options.history_max_bytes;
    hub_options.history_memory_budget = options.history_memory_budget;
    // A resume read back from the store never takes more than a client's queue could hold.
    hub_options.max_stored_read_bytes = options.max_queue_bytes;
    // Idle channels leave memory at the pruning pass: a few passes per TTL, at most one per 5 s.
    hub_options.prune_interval_ms = std::clamp<std::int64_t>(options.history_ttl_ms / 4, 100, 5000);
    aw::workflow::WorkflowIndex workflow_index;  // filled by each agent's state, so it outlives the hub
    auto agent_states = aw::workflow::agent_state_factory(workflow_index, aw::now_unix_ms);
    std::unique_ptr<aw::broker::Broker> broker = open_broker(options, *store);
    aw::hub::Hub hub(hub_options, *broker, pool, std::move(agent_states));
    hub.start();
    aw::workflow::WorkflowServiceOptions workflow_options;
    workflow_options.stream_idle_timeout_ms = options.stream_idle_timeout_ms;
    workflow_options.limits.max_workflows_per_agent = options.max_workflows_per_agent;
    workflow_options.limits.max_metadata_bytes = options.max_metadata_bytes;
    workflow_options.limits.max_requirements_bytes = options.max_requirements_bytes;
    workflow_options.limits.max_open_streams_per_workflow = options.max_open_streams_per_workflow;
    workflow_options.limits.max_open_streams_per_agent = options.max_open_streams_per_agent;
    workflow_options.limits.max_snapshot_bytes = options.effective_max_snapshot_bytes();
    aw::workflow::WorkflowService workflows(hub, workflow_index, workflow_options, aw::now_unix_ms);

    aw::api::Credentials credentials(verifier.get(), api_keys.get(), &workflow_index);
    credentials.find_owners_with(&workflows);
    aw::api::Router router;
    router.guard_with(&credentials);
    aw::api::Context api_ctx{hub, counters, options};
    aw::api::add_event_routes(router, api_ctx);
    aw::api::add_stats_routes(router, api_ctx);
    aw::api::add_workflow_routes(router, workflows);
    aw::api::add_stream_routes(router, workflows);
    aw::api::add_pipe_route(router, workflows);
    aw::api::add_static_routes(router, web_dir(options, argv[0]), options.max_web_file_bytes);

    const auto max_addresses = static_cast<std::size_t>(options.rate_limit_max_addresses);
    aw::transport::AddressRateLimit handshake_rate({static_cast<double>(options.max_handshakes_per_ip_per_s),
                                                    static_cast<double>(options.handshake_burst_per_ip)},
                                                   max_addresses, options.limits_loopback(),
                                                   counters.rate_limit_addresses);
    aw::transport::AddressRateLimit request_rate({static_cast<double>(options.max_requests_per_ip_per_s),
                                                  static_cast<double>(options.request_burst_per_ip)},
                                                 max_addresses, options.limits_loopback(),
                                                 counters.rate_limit_addresses);
    aw::transport::ServerContext server_ctx{
        options,         hub,           router,    counters,    verifier.get(),
        &handshake_rate, &request_rate, tls.get(), &credentials};
    aw::transport::Server server(pool, server_ctx);
    server.start(options.listen_host, options.listen_port);
    // --admin-listen: health, stats and metrics only, no credentials, no WebSocket.
    aw::api::Router admin_router;
    aw::api::add_stats_routes(admin_router, api_ctx);
    aw::transport::ServerContext admin_ctx{.options = options,
                                           .hub = hub,
                                           .router = admin_router,
                                           .counters = counters,
                                           .handshake_rate = &handshake_rate,
                                           .request_rate = &request_rate,
                                           .websockets = false};
    std::optional<aw::transport::Server> admin_server;
    if (!options.admin_listen_host.empty()) {
      admin_server.emplace(pool, admin_ctx);
      admin_server->start(options.admin_listen_host, options.admin_listen_port);
    }
    pool.start();
    aw::log::info("listening", {{"host", options.listen_host},
                                {"port", std::to_string(server.port())},
                                {"threads", std::to_string(threads)},
                                {"store", options.brokers.empty() ? options.store : "redis"},
                                {"data_dir", options.data_dir},
                                {"version", AGENTWIRE_VERSION},
                                {"auth_keys", std::to_string(verifier ? verifier->key_count() : 0)},
                                {"tls", tls ? "on" : "off"},
                                {"tls_serial", tls ? tls->serial() : ""},
                                {"api_keys", std::to_string(api_keys ? api_keys->size() : 0)}});
    if (admin_server)
      aw::log::info("admin_listening",
                    {{"host", options.admin_listen_host}, {"port", std::to_string(admin_server->port())}});

    // Streams left open without deltas are ended as failed: a few checks per timeout, at most one a second.
    boost::asio::steady_timer stream_timer(main_ioc);
    const std::chrono::milliseconds stream_check(
        std::clamp<std::int64_t>(options.stream_idle_timeout_ms / 4, 100, 1000));
    std::function<void()> check_streams = [&] {
      stream_timer.expires_after(stream_check);
      stream_timer.async_wait([&](const boost::system::error_code& ec) {
        if (ec) return;
        workflows.expire_idle_streams(aw::now_unix_ms());
        check_streams();
      });
    };
    check_streams();

    // SIGHUP reloads the token keys, the API keys and the TLS certificate (rotation and revocation
    // without a restart); files that cannot be used leave the old ones in place. Open connections keep
    // the certificate they started with.
    reload_keys = [&] {
      if (tls) {
        std::string error;
        if (tls->reload(error))
          aw::log::info("tls_reloaded", {{"serial", tls->serial()}, {"subject", tls->subject()}});
        else
          aw::log::error("tls_reload_failed", {{"error", error}});
      }
      if (verifier) {
        try {
          verifier->replace_keys(aw::auth::load_keys(key_sources));
          aw::log::info("auth_keys_reloaded", {{"keys", std::to_string(verifier->key_count())}});
        } catch (const aw::auth::KeyError& e) {
          aw::log::error("auth_keys_reload_failed", {{"error", e.what()}});
        }
      }
      if (api_keys) {
        try {
          api_keys->replace(aw::auth::load_api_keys(options.api_keys_file));
          aw::log::info("api_keys_reloaded", {{"keys", std::to_string(api_keys->size())}});
        } catch (const aw::auth::KeyError& e) {
          aw::log::error("api_keys_reload_failed", {{"error", e.what()}});
        }
      }
    };

    main_ioc.run();

    // Shutdown: stop accepting, close every WebSocket with 1001, give them a moment, then stop.
    aw::log::info("shutting_down", {{"signal", std::to_string(received)}});
    server.stop_accepting();
    if (admin_server) admin_server->stop_accepting();
    pool.shutdown_all();
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (std::chrono::steady_clock::now() < deadline && pool.live_connections() > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    hub.stop();
    pool.destroy();
    aw::log::info("stopped");
    return 0;
  } catch (const std::exception& e) {
    aw::log::error("fatal", {{"error", e.what()}});
    return 1;
  }
}
