#include "auth/scopes.hpp"

namespace aw::auth {
namespace {

constexpr Scope kAll[] = {Scope::publish, Scope::workflows, Scope::read, Scope::admin};

}  // namespace

const char* scope_name(Scope s) noexcept {
  switch (s) {
    case Scope::publish:
      return "publish";
    case Scope::workflows:
      return "workflows";
    case Scope::read:
      return "read";
    case Scope::admin:
      return "admin";
  }
  return "?";
}

std::optional<Scope> parse_scope(std::string_view name) noexcept {
  for (Scope s : kAll)
    if (name == scope_name(s)) return s;
  return std::nullopt;
}

std::string Scopes::names() const {
  std::string out;
  for (Scope s : kAll) {
    if (!has(s)) continue;
    if (!out.empty()) out.push_back(' ');
    out.append(scope_name(s));
  }
  return out;
}

std::optional<Scopes> parse_scope_list(std::string_view list, std::string& bad) {
  Scopes out;
  while (!list.empty()) {
    auto cut = list.find_first_of(", ");
    std::string_view name = list.substr(0, cut);
    list = cut == std::string_view::npos ? std::string_view() : list.substr(cut + 1);
    if (name.empty()) continue;
    auto s = parse_scope(name);
    if (!s) {
      bad = std::string(name.substr(0, 64));
      return std::nullopt;
    }
    out.add(*s);
  }
  return out;
}

}  // namespace aw::auth
