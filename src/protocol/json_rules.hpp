// What every JSON text we accept must be beyond RFC 8259 syntax, so that nothing we store, answer or
// broadcast can be read two ways: every number fits a double (`1e400` would become Infinity, which is not
// JSON), and no object has the same key twice (`{"a":1,"\u0061":2}`: parsers differ on which one counts).
// Checked in the same pass as the syntax, by a SAX handler that feeds JsonRules, or by check_json_rules.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aw::protocol {

// A body that breaks a rule: `code` is the API's error code, `message` says where.
struct JsonProblem {
  std::string code;  // "bad_json", "number_out_of_range" or "duplicate_key"
  std::string message;
};

// The rule-keeping part of a SAX handler: call these from its callbacks; a false return is the handler's
// false return (the parse stops), and problem() then says why.
class JsonRules {
 public:
  void object_begin();
  void key_part(std::string_view part);
  void key(std::string_view part);
  // False when the object that ends had a key twice (keys compared unescaped, as every parser reads them).
  bool object_end();
  // False for a number outside a double's range.
  bool number(double value);

  const std::optional<JsonProblem>& problem() const noexcept { return problem_; }

 private:
  std::string keys_;  // the keys of every open object, unescaped, back to back
  std::vector<std::pair<std::size_t, std::size_t>> spans_;  // (offset, size) in keys_ of each key
  std::vector<std::size_t> frames_;                         // where each open object's spans begin
  std::size_t key_start_ = 0;
  bool in_key_ = false;
  std::optional<JsonProblem> problem_;
};

// Syntax (with `max_depth`) and the rules, without building a document: nullopt when `text` is fine.
std::optional<JsonProblem> check_json_rules(std::string_view text, std::size_t max_depth = 64);

}  // namespace aw::protocol
