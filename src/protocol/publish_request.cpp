#include "protocol/publish_request.hpp"

#include <algorithm>
#include <boost/json/basic_parser_impl.hpp>

#include "protocol/json_rules.hpp"
#include "protocol/json_span.hpp"

namespace aw::protocol {

bool is_valid_event_type(std::string_view t) noexcept {
  if (t.empty() || t.size() > kMaxEventTypeLength) return false;
  for (char c : t) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

bool is_session_message_type(std::string_view t) noexcept {
  return t == "connected" || t == "heartbeat" || t == "snapshot" || t == "error" || t == "pong";
}

bool is_workflow_event_type(std::string_view t) noexcept {
  return t == "workflow_created" || t == "requirements_submitted" || t == "phase_changed" || t == "stream" ||
         t == "workflow_deleted";
}

namespace {

// What validation needs from a publish body, gathered while Boost.JSON's parser checks all of it
// (syntax, UTF-8, depth, JsonRules) without building a document: every publish goes through here.
class BodyScan {
 public:
  static constexpr std::size_t max_object_size = std::size_t(-1);
  static constexpr std::size_t max_array_size = std::size_t(-1);
  static constexpr std::size_t max_key_size = std::size_t(-1);
  static constexpr std::size_t max_string_size = std::size_t(-1);

  enum class Kind { absent, string, object, other };

  bool top_is_object = false;
  Kind type_kind = Kind::absent;
  Kind data_kind = Kind::absent;
  std::string type;                  // when type_kind is string (its first kMaxEventTypeLength + 1 bytes)
  bool data_names_workflow = false;  // `data` has a member "workflow_id"

  using ec_t = boost::json::error_code;
  using sv = boost::json::string_view;
  bool on_document_begin(ec_t&) { return true; }
  bool on_document_end(ec_t&) { return true; }
  JsonRules rules;

  bool on_object_begin(ec_t&) {
    rules.object_begin();
    if (depth_ == 0) {
      top_is_object = true;
    } else if (depth_ == 1) {
      in_data_ = next_ == Member::data;
      member_value(Kind::object);
    }
    ++depth_;
    return true;
  }
  bool on_object_end(std::size_t, ec_t& ec) {
    if (--depth_ == 1) in_data_ = false;
    return kept(rules.object_end(), ec);
  }
  bool on_array_begin(ec_t&) {
    if (depth_ == 1) member_value(Kind::other);
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t, ec_t&) { return --depth_, true; }
  bool on_key_part(sv part, std::size_t, ec_t&) {
    rules.key_part(part);
    if (depth_ == 1 || (depth_ == 2 && in_data_)) append_capped(key_, part);
    return true;
  }
  bool on_key(sv part, std::size_t, ec_t&) {
    rules.key(part);
    if (depth_ == 2 && in_data_) {
      append_capped(key_, part);
      if (key_ == "workflow_id") data_names_workflow = true;
      key_.clear();
      return true;
    }
    if (depth_ != 1) return true;
    append_capped(key_, part);
    next_ = key_ == "type" ? Member::type : key_ == "data" ? Member::data : Member::other;
    key_.clear();
    if (next_ == Member::type) type.clear();
    return true;
  }
  bool on_string_part(sv part, std::size_t, ec_t&) {
    if (depth_ == 1 && next_ == Member::type) append_capped(type, part);
    return true;
  }
  bool on_string(sv part, std::size_t, ec_t&) {
    if (depth_ == 1 && next_ == Member::type) append_capped(type, part);
    if (depth_ == 1) member_value(Kind::string);
    return true;
  }
  bool on_number_part(sv, ec_t&) { return true; }
  bool on_int64(std::int64_t, sv, ec_t&) { return scalar(); }
  bool on_uint64(std::uint64_t, sv, ec_t&) { return scalar(); }
  bool on_double(double d, sv, ec_t& ec) { return kept(rules.number(d), ec) && scalar(); }
  bool on_bool(bool, ec_t&) { return scalar(); }
  bool on_null(ec_t&) { return scalar(); }
  bool on_comment_part(sv, ec_t&) { return true; }
  bool on_comment(sv, ec_t&) { return true; }

 private:
  enum class Member { other, type, data };

  // A value of the top-level object's member whose key came last.
  void member_value(Kind kind) {
    if (next_ == Member::type) type_kind = kind;
    if (next_ == Member::data) data_kind = kind;
    next_ = Member::other;
  }
  static bool kept(bool ok, ec_t& ec) {
    if (!ok) ec = boost::json::error::syntax;  // the parse stops; rules.problem() says why
    return ok;
  }
  bool scalar() {
    if (depth_ == 1) member_value(Kind::other);
    return true;
  }
  // Only a short prefix matters (the keys we look for, a type's valid length), so a huge key or type
  // costs no memory.
  static void append_capped(std::string& out, sv part) {
    const std::size_t room = kMaxEventTypeLength + 1 - std::min(out.size(), kMaxEventTypeLength + 1);
    out.append(part.data(), std::min(part.size(), room));
  }

  int depth_ = 0;
  bool in_data_ = false;  // inside the top-level member "data" (an object)
  Member next_ = Member::other;
  std::string key_;
};

}  // namespace

PublishParse parse_publish_request(std::string_view body) {
  PublishParse r;
  boost::json::parse_options opts;
  opts.max_depth = 64;
  boost::json::basic_parser<BodyScan> parser(opts);
  boost::system::error_code ec;
  const std::size_t used = parser.write_some(false, body.data(), body.size(), ec);
  if (const auto& problem = parser.handler().rules.problem()) {
    r.error_code = problem->code;
    r.error_message = problem->message;
    return r;
  }
  if (!ec && used < body.size()) ec = boost::json::error::extra_data;
  if (ec) {
    r.error_code = "bad_json";
    r.error_message = "body is not valid JSON: " + ec.message();
    return r;
  }
  const BodyScan& scan = parser.handler();
  if (!scan.top_is_object) {
    r.error_code = "bad_json";
    r.error_message = "body must be a JSON object";
    return r;
  }
  if (scan.type_kind != BodyScan::Kind::string) {
    r.error_code = "bad_type";
    r.error_message = "\"type\" is required and must be a string";
    return r;
  }
  if (!is_valid_event_type(scan.type)) {
    r.error_code = "bad_type";
    r.error_message = "\"type\" must be 1-64 characters of [A-Za-z0-9_.:-]";
    return r;
  }
  if (scan.data_kind != BodyScan::Kind::absent && scan.data_kind != BodyScan::Kind::object) {
    r.error_code = "bad_data";
    r.error_message = "\"data\" must be a JSON object";
    return r;
  }
  if (is_session_message_type(scan.type)) {
    r.error_code = "reserved_type";
    r.error_message =
        "\"" + scan.type +
        "\" is a session message of the protocol (connected, heartbeat, snapshot, error, pong), not an event";
    return r;
  }
  if (is_workflow_event_type(scan.type)) {
    r.error_code = "reserved_type";
    r.error_message = "\"" + scan.type +
                      "\" events come only from the workflow routes (/api/workflows/...), so subscribers can "
                      "trust them; publish your own events under another type";
    return r;
  }
  if (scan.type == "progress" && scan.data_names_workflow) {
    r.error_code = "reserved_type";
    r.error_message =
        "progress of a workflow (data with \"workflow_id\") comes only from POST "
        "/api/workflows/{workflow_id}/progress; generic progress leaves workflow_id out";
    return r;
  }
  r.request.type = scan.type;
  if (scan.data_kind == BodyScan::Kind::object) {
    auto span = member_span(body, "data");
    if (!span) {
      r.error_code = "bad_data";
      r.error_message = "\"data\" could not be read";
      return r;
    }
    r.request.data = std::string(*span);
  } else {
    r.request.data = "{}";
  }
  r.ok = true;
  return r;
}

}  // namespace aw::protocol
