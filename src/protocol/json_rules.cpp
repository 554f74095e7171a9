// JsonRules and a SAX handler that keeps nothing but them, on Boost.JSON's parser.
#include "protocol/json_rules.hpp"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>
#include <cmath>

namespace aw::protocol {

void JsonRules::object_begin() {
  frames_.push_back(spans_.size());
}

void JsonRules::key_part(std::string_view part) {
  if (!in_key_) key_start_ = keys_.size(), in_key_ = true;
  keys_.append(part);
}

void JsonRules::key(std::string_view part) {
  key_part(part);
  spans_.emplace_back(key_start_, keys_.size() - key_start_);
  in_key_ = false;
}

bool JsonRules::object_end() {
  const std::size_t first = frames_.back();
  frames_.pop_back();
  auto text = [this](const std::pair<std::size_t, std::size_t>& s) {
    return std::string_view(keys_).substr(s.first, s.second);
  };
  // Sorted, a repeated key sits next to itself: n log n however many keys an object has. The spans
  // are dropped right after, so they are sorted in place.
  auto begin = spans_.begin() + static_cast<std::ptrdiff_t>(first);
  std::sort(begin, spans_.end(), [&](const auto& a, const auto& b) { return text(a) < text(b); });
  auto twice = std::adjacent_find(begin, spans_.end(),
                                  [&](const auto& a, const auto& b) { return text(a) == text(b); });
  if (twice != spans_.end()) {
    std::string_view name = text(*twice).substr(0, 64);
    problem_ =
        JsonProblem{"duplicate_key", "an object has the key \"" + std::string(name) +
                                         "\" twice (also when spelled with escapes); send each key once"};
    return false;
  }
  if (first < spans_.size()) {
    // Sorting moved the spans, not the text: the object's keys start at the lowest offset.
    keys_.resize(std::min_element(begin, spans_.end())->first);
    spans_.resize(first);
  }
  return true;
}

bool JsonRules::number(double value) {
  if (std::isfinite(value)) return true;
  problem_ = JsonProblem{"number_out_of_range", "a number does not fit a double (at most about 1.8e308)"};
  return false;
}

namespace {

// Checks the rules and nothing else.
class RulesOnly {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  JsonRules rules;

  using ec_t = boost::json::error_code;
  using sv = boost::json::string_view;
  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  bool on_object_begin(ec_t&) { return rules.object_begin(), true; }
  bool on_object_end(std::size_t, ec_t& ec) { return kept(rules.object_end(), ec); }
  bool on_array_begin(ec_t&) { return true; }
  bool on_array_end(std::size_t, ec_t&) { return true; }
  bool on_key_part(sv part, std::size_t, ec_t&) { return rules.key_part(part), true; }
  bool on_key(sv part, std::size_t, ec_t&) { return rules.key(part), true; }
  bool on_string_part(sv, std::size_t, ec_t&) { return true; }
  bool on_string(sv, std::size_t, ec_t&) { return true; }
  bool on_number_part(sv, ec_t&) { return true; }
  bool on_int64(std::int64_t, sv, ec_t&) { return true; }
  bool on_uint64(std::uint64_t, sv, ec_t&) { return true; }
  bool on_double(double d, sv, ec_t& ec) { return kept(rules.number(d), ec); }
  bool on_bool(bool, ec_t&) { return true; }
  bool on_null(ec_t&) { return true; }
  bool on_comment_part(sv, ec_t&) { return true; }
  bool on_comment(sv, ec_t&) { return true; }

 private:
  static bool kept(bool ok, ec_t& ec) {
    if (!ok) ec = boost::json::error::syntax;  // the parse stops; rules.problem() says why
    return ok;
  }
};

}  // namespace

std::optional<JsonProblem> check_json_rules(std::string_view text, std::size_t max_depth) {
  boost::json::parse_options opts;
  opts.max_depth = max_depth;
  boost::json::basic_parser<RulesOnly> parser(opts);
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(false, text.data(), text.size(), ec);
  if (const auto& problem = parser.handler().rules.problem()) return problem;
  if (!ec && used < text.size()) ec = boost::json::error::extra_data;
  if (ec) return JsonProblem{"bad_json", "body is not valid JSON: " + ec.message()};
  return std::nullopt;
}

}  // namespace aw::protocol
