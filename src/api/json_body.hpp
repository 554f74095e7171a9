// Reading the JSON bodies of the workflow routes: the body must be a JSON object, every member must be
// one the route knows, and each field is read with its type checked. The first problem becomes the
// route's 400 answer (`bad_json` for the body, `number_out_of_range` or `duplicate_key` for a body that
// breaks protocol/json_rules, `bad_field` naming the field); later reads then return nothing, so a handler
// reads all its fields and checks once.
#pragma once
#include <boost/json.hpp>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "api/http_types.hpp"

namespace aw::api {

class JsonBody {
 public:
  enum class Need { required, optional };

  // An empty body reads as {} when `empty_is_object` (routes whose every field is optional).
  JsonBody(std::string_view body, std::initializer_list<std::string_view> known_fields,
           bool empty_is_object = false);

  bool ok() const noexcept { return !error_; }
  // The 400 for the first problem found; only when !ok().
  Response error() const;

  // null counts as absent.
  std::optional<std::string> string(std::string_view key, Need need);
  std::optional<double> number(std::string_view key, Need need);
  std::optional<std::uint64_t> count(std::string_view key, Need need);  // a non-negative integer
  std::optional<boost::json::object> object(std::string_view key, Need need);
  std::optional<boost::json::array> array(std::string_view key, Need need);

 private:
  const boost::json::value* member(std::string_view key, Need need);
  void fail(std::string code, std::string message);

  boost::json::object object_;
  std::optional<std::pair<std::string, std::string>> error_;  // code, message
};

}  // namespace aw::api
