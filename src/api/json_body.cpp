#include "api/json_body.hpp"

#include <algorithm>

#include "api/errors.hpp"
#include "protocol/json_rules.hpp"

namespace aw::api {
namespace json = boost::json;

JsonBody::JsonBody(std::string_view body, std::initializer_list<std::string_view> known_fields,
                   bool empty_is_object) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos && empty_is_object) return;
  // The same depth as json::parse allows below.
  if (auto problem = protocol::check_json_rules(body, json::parse_options().max_depth)) {
    fail(problem->code, problem->message);
    return;
  }
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) {
    fail("bad_json", "body is not valid JSON: " + ec.message());
  } else if (!v.is_object()) {
    fail("bad_json", "body must be a JSON object");
  } else {
    object_ = std::move(v.as_object());
    for (const auto& kv : object_) {
      if (std::find(known_fields.begin(), known_fields.end(), kv.key()) != known_fields.end()) continue;
      fail("bad_field", "unknown field '" + std::string(kv.key()) + "'");
      break;
    }
  }
}

Response JsonBody::error() const {
  return error_response(400, error_->first, error_->second);
}

void JsonBody::fail(std::string code, std::string message) {
  if (!error_) error_.emplace(std::move(code), std::move(message));
}

const json::value* JsonBody::member(std::string_view key, Need need) {
  if (error_) return nullptr;
  const json::value* v = object_.if_contains(key);
  if (v && !v->is_null()) return v;
  if (need == Need::required) fail("bad_field", std::string(key) + " is required");
  return nullptr;
}

std::optional<std::string> JsonBody::string(std::string_view key, Need need) {
  const json::value* v = member(key, need);
  if (!v) return std::nullopt;
  if (!v->is_string()) {
    fail("bad_field", std::string(key) + " must be a string");
    return std::nullopt;
  }
  return std::string(v->get_string());
}

std::optional<double> JsonBody::number(std::string_view key, Need need) {
  const json::value* v = member(key, need);
  if (!v) return std::nullopt;
  if (!v->is_number()) {
    fail("bad_field", std::string(key) + " must be a number");
    return std::nullopt;
  }
  return v->to_number<double>();
}

std::optional<std::uint64_t> JsonBody::count(std::string_view key, Need need) {
  const json::value* v = member(key, need);
  if (!v) return std::nullopt;
  if (auto* u = v->if_uint64()) return *u;
  if (auto* i = v->if_int64(); i && *i >= 0) return static_cast<std::uint64_t>(*i);
  fail("bad_field", std::string(key) + " must be a non-negative integer");
  return std::nullopt;
}

std::optional<json::object> JsonBody::object(std::string_view key, Need need) {
  const json::value* v = member(key, need);
  if (!v) return std::nullopt;
  if (!v->is_object()) {
    fail("bad_field", std::string(key) + " must be a JSON object");
    return std::nullopt;
  }
  return v->get_object();
}

std::optional<json::array> JsonBody::array(std::string_view key, Need need) {
  const json::value* v = member(key, need);
  if (!v) return std::nullopt;
  if (!v->is_array()) {
    fail("bad_field", std::string(key) + " must be an array");
    return std::nullopt;
  }
  return v->get_array();
}

}  // namespace aw::api
