// What every connection needs from the rest of the server.
#pragma once
#include "api/credentials.hpp"
#include "api/router.hpp"
#include "auth/verifier.hpp"
#include "config/options.hpp"
#include "hub/hub.hpp"
#include "metrics/counters.hpp"
#include "transport/address_rate_limit.hpp"
#include "transport/tls_context.hpp"

namespace aw::transport {

struct ServerContext {
  const config::Options& options;
  hub::Hub& hub;
  const api::Router& router;
  metrics::Counters& counters;
  const auth::Verifier* verifier = nullptr;    // null: no key configured, subscribers need no token
  AddressRateLimit* handshake_rate = nullptr;  // --max-handshakes-per-ip-per-s; null: none
  AddressRateLimit* request_rate = nullptr;    // --max-requests-per-ip-per-s; null: none
  TlsContext* tls = nullptr;                   // null: the port speaks plain HTTP
  // Subscribers' tokens or API keys (null: subscribers need none); the router holds the same for HTTP.
  const api::Credentials* credentials = nullptr;
  bool websockets = true;  // false on --admin-listen, which serves only health, stats and metrics
};

}  // namespace aw::transport
