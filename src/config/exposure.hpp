// Secure by default: with no key of any kind configured, the server serves whoever reaches it, so it
// listens only on loopback unless --allow-anonymous says otherwise.
#pragma once
#include <string>

#include "config/options.hpp"

namespace aw::config {

// Whether `host` (an address or a name) means this machine only: 127.0.0.0/8, ::1, or a name all of
// whose addresses are those. A name that does not resolve is not.
bool is_loopback_host(const std::string& host);

// Why the server must not start as configured (an anonymous server on a non-loopback --listen or
// --admin-listen without --allow-anonymous), or "".
std::string exposure_error(const Options& options);

// Whether the server runs anonymous on a non-loopback address because --allow-anonymous allowed it.
bool exposed_anonymously(const Options& options);

}  // namespace aw::config
