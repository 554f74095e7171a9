#include "config/exposure.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstring>

namespace aw::config {
namespace {

bool is_loopback(const sockaddr* a) {
  if (a->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(a);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (a->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(a);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    // ::ffff:127.x.y.z
    return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

std::string refusal(const char* flag, const std::string& host) {
  return "refusing to listen on " + host + " (" + flag +
         ") with no key configured: anyone who can reach it could read and publish every agent's events. "
         "Configure --api-keys-file and/or --auth-secret-file, --auth-public-key or --auth-jwks-file; or "
         "listen on 127.0.0.1; or pass --allow-anonymous to serve it open on purpose";
}

}  // namespace

bool is_loopback_host(const std::string& host) {
  if (host.empty()) return false;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) return false;
  bool all = true;
  for (addrinfo* p = res; p; p = p->ai_next) all = all && is_loopback(p->ai_addr);
  freeaddrinfo(res);
  return all;
}

std::string exposure_error(const Options& o) {
  if (o.keys_configured() || o.allow_anonymous) return {};
  if (!is_loopback_host(o.listen_host)) return refusal("--listen", o.listen_host);
  if (!o.admin_listen_host.empty() && !is_loopback_host(o.admin_listen_host))
    return refusal("--admin-listen", o.admin_listen_host);
  return {};
}

bool exposed_anonymously(const Options& o) {
  if (o.keys_configured()) return false;
  return !is_loopback_host(o.listen_host) ||
         (!o.admin_listen_host.empty() && !is_loopback_host(o.admin_listen_host));
}

}  // namespace aw::config
