// What the HTTP handlers work with: the hub, the counters and the options.
#pragma once
#include "config/options.hpp"
#include "hub/hub.hpp"
#include "metrics/counters.hpp"

namespace aw::api {

struct Context {
  hub::Hub& hub;
  metrics::Counters& counters;
  const config::Options& options;
};

}  // namespace aw::api
