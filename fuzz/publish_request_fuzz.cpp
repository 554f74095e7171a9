// The publish body (`{"type": ..., "data": {...}}`) against Boost.JSON: accepted exactly when Boost.JSON
// reads a valid body whose type is one a publisher may use (not a session message, not a workflow event,
// not progress naming a workflow), with the same type and data that parses to the value Boost.JSON reads
// (the last of duplicate keys); refused with the code the reference gives, or with what protocol/json_rules
// refuses exactly when the reference sees it: a key given twice in any object (`duplicate_key`), a number
// no double holds (`number_out_of_range`).
#include <string>

#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "json_reference.hpp"
#include "protocol/publish_request.hpp"

namespace {

using aw::protocol::PublishParse;

// What the body should give, from Boost.JSON's reading of it.
PublishParse expected_parse(const boost::json::value& v) {
  PublishParse r;
  const auto* obj = v.if_object();
  if (!obj) return r.error_code = "bad_json", r;
  const auto* type = obj->if_contains("type");
  if (!type || !type->is_string()) return r.error_code = "bad_type", r;
  std::string t(type->get_string());
  if (!aw::protocol::is_valid_event_type(t)) return r.error_code = "bad_type", r;
  const auto* data = obj->if_contains("data");
  if (data && !data->is_object()) return r.error_code = "bad_data", r;
  if (aw::protocol::is_session_message_type(t)) return r.error_code = "reserved_type", r;
  // Workflow events, and progress that names a workflow, come only from the workflow routes.
  if (aw::protocol::is_workflow_event_type(t)) return r.error_code = "reserved_type", r;
  if (t == "progress" && data && data->as_object().contains("workflow_id"))
    return r.error_code = "reserved_type", r;
  r.ok = true;
  r.request.type = t;
  return r;
}

bool parses_to(std::string_view text, const boost::json::value& expected) {
  boost::system::error_code ec;
  boost::json::parse_options opts;
  opts.max_depth = 64;
  auto v = boost::json::parse(text, ec, {}, opts);
  return !ec && v == expected;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string body(reinterpret_cast<const char*>(data), size);
  PublishParse got = aw::protocol::parse_publish_request(body);
  FUZZ_CHECK(got.ok == got.error_code.empty());
  auto ref = aw::fuzz::json_reference(body);
  if (!ref.value) {
    // Refused; usually bad_json, but a stricter refusal met before the syntax error may speak first.
    FUZZ_CHECK(!got.ok);
    return 0;
  }
  PublishParse want = expected_parse(*ref.value);
  // Issue 13: what every parser would not read the same way is refused, and only that.
  FUZZ_CHECK((got.error_code == "duplicate_key" || got.error_code == "number_out_of_range") ==
             (ref.duplicate_key || ref.non_finite));
  if (ref.duplicate_key || ref.non_finite) return 0;
  FUZZ_CHECK(got.ok == want.ok);
  FUZZ_CHECK(got.error_code == want.error_code);
  if (got.ok) {
    FUZZ_CHECK(got.request.type == want.request.type);
    const auto* sent = ref.value->as_object().if_contains("data");
    // Boost.JSON 1.81 reads 0e400 as NaN, which equals nothing: then the data need only parse.
    if (ref.non_finite)
      FUZZ_CHECK(aw::fuzz::json_reference(got.request.data).value.has_value());
    else
      FUZZ_CHECK(parses_to(got.request.data, sent ? *sent : boost::json::value(boost::json::object())));
  }
  return 0;
}
