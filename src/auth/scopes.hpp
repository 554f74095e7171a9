// What a credential may do over the HTTP API: `publish` (generic events), `workflows` (workflow and
// stream commands), `read` (history, GET routes, subscribing) and `admin` (stats, metrics, deleting a
// workflow). Each scope stands alone: admin does not imply the others.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace aw::auth {

enum class Scope : std::uint8_t { publish = 1, workflows = 2, read = 4, admin = 8 };

// A set of scopes, one bit each.
class Scopes {
 public:
  constexpr Scopes() = default;
  static constexpr Scopes all() { return Scopes(0x0F); }
  static constexpr Scopes of(Scope s) { return Scopes(static_cast<std::uint8_t>(s)); }

  constexpr bool has(Scope s) const noexcept { return (bits_ & static_cast<std::uint8_t>(s)) != 0; }
  constexpr bool empty() const noexcept { return bits_ == 0; }
  constexpr void add(Scope s) noexcept { bits_ |= static_cast<std::uint8_t>(s); }
  constexpr bool operator==(const Scopes&) const = default;

  // "publish workflows": the names, space-separated, in the order of the enum.
  std::string names() const;

 private:
  constexpr explicit Scopes(std::uint8_t bits) : bits_(bits) {}
  std::uint8_t bits_ = 0;
};

const char* scope_name(Scope s) noexcept;
std::optional<Scope> parse_scope(std::string_view name) noexcept;

// "publish,workflows" or "publish workflows" (the command line, RFC 8693's scope claim); nullopt and
// `bad` set when a name is not a scope.
std::optional<Scopes> parse_scope_list(std::string_view list, std::string& bad);

}  // namespace aw::auth
