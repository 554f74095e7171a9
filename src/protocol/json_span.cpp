#include "protocol/json_span.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cstdio>

namespace aw::protocol {
namespace {

bool is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void skip_ws(std::string_view s, std::size_t& i) {
  while (i < s.size() && is_ws(s[i])) ++i;
}

// Positions i on the closing quote's successor; i starts at the opening quote.
bool skip_string(std::string_view s, std::size_t& i) {
  ++i;
  while (i < s.size()) {
    char c = s[i];
    if (c == '\\') {
      i += 2;
      continue;
    }
    ++i;
    if (c == '"') return true;
  }
  return false;
}

// Skips one value of any kind (the input is known to be valid JSON).
bool skip_value(std::string_view s, std::size_t& i) {
  if (i >= s.size()) return false;
  char c = s[i];
  if (c == '"') return skip_string(s, i);
  if (c == '{' || c == '[') {
    int depth = 0;
    while (i < s.size()) {
      char d = s[i];
      if (d == '"') {
        if (!skip_string(s, i)) return false;
        continue;
      }
      if (d == '{' || d == '[') ++depth;
      if (d == '}' || d == ']') {
        --depth;
        if (depth == 0) {
          ++i;
          return true;
        }
      }
      ++i;
    }
    return false;
  }
  // number, true, false, null
  while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && !is_ws(s[i])) ++i;
  return true;
}

// A key as parsers read it: `"d\u0061ta"` is `data`. `quoted` is the key with its quotes.
std::string unescape(std::string_view quoted) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(quoted, ec);
  return !ec && v.is_string() ? std::string(v.get_string()) : std::string();
}

}  // namespace

std::optional<std::string_view> member_span(std::string_view s, std::string_view key) {
  std::size_t i = 0;
  skip_ws(s, i);
  if (i >= s.size() || s[i] != '{') return std::nullopt;
  ++i;
  std::optional<std::string_view> found;
  while (true) {
    skip_ws(s, i);
    if (i >= s.size() || s[i] == '}') break;
    if (s[i] != '"') return std::nullopt;
    std::size_t key_start = i + 1;
    if (!skip_string(s, i)) return std::nullopt;
    std::string_view raw_key = s.substr(key_start, i - 1 - key_start);
    skip_ws(s, i);
    if (i >= s.size() || s[i] != ':') return std::nullopt;
    ++i;
    skip_ws(s, i);
    std::size_t value_start = i;
    if (!skip_value(s, i)) return std::nullopt;
    const bool escaped = raw_key.find('\\') != std::string_view::npos;
    const std::string_view quoted = s.substr(key_start - 1, raw_key.size() + 2);
    if (escaped ? unescape(quoted) == key : raw_key == key) found = s.substr(value_start, i - value_start);
    skip_ws(s, i);
    if (i < s.size() && s[i] == ',') ++i;
  }
  return found;
}

void append_quoted(std::string& out, std::string_view text) {
  out.push_back('"');
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out.append("\\\"");
        break;
      case '\\':
        out.append("\\\\");
        break;
      case '\n':
        out.append("\\n");
        break;
      case '\r':
        out.append("\\r");
        break;
      case '\t':
        out.append("\\t");
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out.append(buf);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

}  // namespace aw::protocol
