// The reference the JSON fuzz targets compare against: Boost.JSON's parse, plus what a parsed value
// forgets — whether an object, at any depth, named a key twice (escaped spellings included) and whether
// a number was too large for a double: what protocol/json_rules refuses.
#pragma once
#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <cmath>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace aw::fuzz {

struct JsonReference {
  std::optional<boost::json::value> value;  // nullopt: Boost.JSON refuses the text
  bool duplicate_key = false;               // in any object
  bool non_finite = false;
};

namespace detail {

// A basic_parser handler that only notes each object's keys, as decoded.
struct ObjectKeys {
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);
  using ec_t = boost::json::error_code;
  using sv = boost::json::string_view;

  std::string key;
  std::vector<std::set<std::string>> open;  // the keys of each object being read
  bool duplicate = false;

  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_object_begin(ec_t&) { return open.emplace_back(), true; }
  bool on_object_end(std::size_t, ec_t&) { return open.pop_back(), true; }
  bool on_array_begin(ec_t&) { return true; }
  bool on_array_end(std::size_t, ec_t&) { return true; }
  bool on_key_part(sv s, std::size_t, ec_t&) { return key.append(s.data(), s.size()), true; }
  bool on_key(sv s, std::size_t, ec_t&) {
    key.append(s.data(), s.size());
    duplicate |= !open.back().insert(key).second;
    key.clear();
    return true;
  }
  bool on_string_part(sv, std::size_t, ec_t&) { return true; }
  bool on_string(sv, std::size_t, ec_t&) { return true; }
  bool on_number_part(sv, ec_t&) { return true; }
  bool on_int64(std::int64_t, sv, ec_t&) { return true; }
  bool on_uint64(std::uint64_t, sv, ec_t&) { return true; }
  bool on_double(double, sv, ec_t&) { return true; }
  bool on_bool(bool, ec_t&) { return true; }
  bool on_null(ec_t&) { return true; }
  bool on_comment_part(sv, ec_t&) { return true; }
  bool on_comment(sv, ec_t&) { return true; }
};

inline bool has_non_finite(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::double_:
      return !std::isfinite(v.get_double());
    case boost::json::kind::array:
      for (const auto& e : v.get_array())
        if (has_non_finite(e)) return true;
      return false;
    case boost::json::kind::object:
      for (const auto& m : v.get_object())
        if (has_non_finite(m.value())) return true;
      return false;
    default:
      return false;
  }
}

}  // namespace detail

inline JsonReference json_reference(std::string_view text, std::size_t max_depth = 64) {
  JsonReference ref;
  boost::json::parse_options opts;
  opts.max_depth = max_depth;
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(text, ec, {}, opts);
  if (ec) return ref;
  ref.value = std::move(v);
  ref.non_finite = detail::has_non_finite(*ref.value);
  boost::json::basic_parser<detail::ObjectKeys> keys(opts);
  keys.write_some(false, text.data(), text.size(), ec);
  ref.duplicate_key = keys.handler().duplicate;
  return ref;
}

}  // namespace aw::fuzz
