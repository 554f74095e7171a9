// Web origins and host names as browsers send them (the Origin and Host headers), parsed and normalised
// so that --allowed-origins and --allowed-hosts compare with what arrives whatever its case or port.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aw {

struct WebOrigin {
  std::string scheme;      // lower case
  std::string host;        // lower case, no trailing dot; an IPv6 address keeps its brackets
  std::uint16_t port = 0;  // as given, or the scheme's default (0 when the scheme has none)
  // "scheme://host[:port]" without the scheme's default port: the form browsers send.
  std::string serialized() const;
};

// `scheme://host[:port]` and nothing more (no path, user or query); nullopt otherwise, "null" included.
std::optional<WebOrigin> parse_web_origin(std::string_view text);

struct HostAndPort {
  std::string host;  // normalised as in WebOrigin
  std::optional<std::uint16_t> port;
};

// A Host header value ("Example.COM:8080", "[::1]:80", "localhost."); nullopt when it is not host[:port].
std::optional<HostAndPort> parse_host_header(std::string_view value);

// A host name or IP address without a port (an --allowed-hosts entry), normalised; nullopt otherwise.
std::optional<std::string> normalize_host_name(std::string_view name);

// 80 for http and ws, 443 for https and wss, 0 for other schemes.
std::uint16_t default_port(std::string_view scheme) noexcept;

}  // namespace aw
