#include "core/web_origin.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace aw {
namespace {

char lower(char c) noexcept {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_scheme(std::string_view s) noexcept {
  if (s.empty() || !std::isalpha(static_cast<unsigned char>(s.front()))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
}

// A registered name or IPv4 address: the characters of RFC 3986's reg-name without percent-escapes.
bool is_reg_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > 253 + 1) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' || c == '~';
  });
}

bool is_ipv6_literal(std::string_view s) noexcept {
  if (s.size() < 4 || s.front() != '[' || s.back() != ']') return false;
  // Every IPv6 address has two colons at least ("::"): "a:1" is a name and a port, not an address.
  if (std::count(s.begin(), s.end(), ':') < 2) return false;
  return std::all_of(s.begin() + 1, s.end() - 1, [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
  });
}

// Lower case, and "example.com." (the same name, fully qualified) as "example.com".
std::optional<std::string> normalized(std::string_view host) {
  if (!is_ipv6_literal(host) && !is_reg_name(host)) return std::nullopt;
  // An empty label ("a..b", ".a", "a..") names nothing: refused, so that one name has one normal form.
  if (host.front() == '.' || host.find("..") != std::string_view::npos) return std::nullopt;
  std::string out(host);
  std::transform(out.begin(), out.end(), out.begin(), lower);
  if (out.back() == '.') out.pop_back();
  return out;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  unsigned v = 0;
  if (s.empty() || s.size() > 5) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(v);
}

// "host[:port]" with host a name, an IPv4 address or a bracketed IPv6 address.
std::optional<HostAndPort> split_authority(std::string_view a) {
  std::string_view host = a;
  std::optional<std::string_view> port;
  if (!a.empty() && a.front() == '[') {
    auto close = a.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = a.substr(0, close + 1);
    std::string_view rest = a.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return std::nullopt;
      port = rest.substr(1);
    }
  } else if (auto colon = a.find(':'); colon != std::string_view::npos) {
    host = a.substr(0, colon);
    port = a.substr(colon + 1);
  }
  auto name = normalized(host);
  if (!name) return std::nullopt;
  HostAndPort out{std::move(*name), std::nullopt};
  if (port) {
    out.port = parse_port(*port);
    if (!out.port) return std::nullopt;
  }
  return out;
}

}  // namespace

std::uint16_t default_port(std::string_view scheme) noexcept {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  return 0;
}

std::string WebOrigin::serialized() const {
  std::string out = scheme + "://" + host;
  if (port != default_port(scheme)) out.append(":").append(std::to_string(port));
  return out;
}

std::optional<WebOrigin> parse_web_origin(std::string_view text) {
  auto sep = text.find("://");
  if (sep == std::string_view::npos || !is_scheme(text.substr(0, sep))) return std::nullopt;
  std::string_view authority = text.substr(sep + 3);
  if (authority.find_first_of("/?#@") != std::string_view::npos) return std::nullopt;
  auto hp = split_authority(authority);
  if (!hp) return std::nullopt;
  WebOrigin o;
  o.scheme = std::string(text.substr(0, sep));
  std::transform(o.scheme.begin(), o.scheme.end(), o.scheme.begin(), lower);
  o.host = std::move(hp->host);
  o.port = hp->port ? *hp->port : default_port(o.scheme);
  return o;
}

std::optional<HostAndPort> parse_host_header(std::string_view value) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  return split_authority(value);
}

std::optional<std::string> normalize_host_name(std::string_view name) {
  // A bare IPv6 address ("::1") as well as a bracketed one.
  if (name.find(':') != std::string_view::npos && name.front() != '[')
    return normalized("[" + std::string(name) + "]");
  return normalized(name);
}

}  // namespace aw
