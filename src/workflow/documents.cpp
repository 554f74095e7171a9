#include "workflow/documents.hpp"

#include <charconv>
#include <cstdio>

#include "core/clock.hpp"

namespace aw::workflow {
namespace json = boost::json;
namespace {

json::value optional_string(const std::optional<std::string>& s) {
  return s ? json::value(json::string(*s)) : json::value(nullptr);
}

std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// Readers for stored records: a missing or mistyped member makes the record unreadable.
bool read(const json::object& o, std::string_view key, std::string& out) {
  const json::value* v = o.if_contains(key);
  if (!v || !v->is_string()) return false;
  out = std::string(v->get_string());
  return true;
}

bool read(const json::object& o, std::string_view key, std::optional<std::string>& out) {
  const json::value* v = o.if_contains(key);
  if (!v || v->is_null()) {
    out.reset();
    return true;
  }
  if (!v->is_string()) return false;
  out = std::string(v->get_string());
  return true;
}

template <typename Int>
bool read(const json::object& o, std::string_view key, Int& out) {
  const json::value* v = o.if_contains(key);
  if (!v) return false;
  if (auto* i = v->if_int64()) {
    out = static_cast<Int>(*i);
    return true;
  }
  if (auto* u = v->if_uint64()) {
    out = static_cast<Int>(*u);
    return true;
  }
  return false;
}

}  // namespace

std::string_view stream_status_name(StreamStatus status) noexcept {
  switch (status) {
    case StreamStatus::streaming:
      return "streaming";
    case StreamStatus::completed:
      return "completed";
    case StreamStatus::failed:
      return "failed";
  }
  return "streaming";
}

std::optional<StreamStatus> parse_stream_status(std::string_view name) noexcept {
  for (StreamStatus s : {StreamStatus::streaming, StreamStatus::completed, StreamStatus::failed})
    if (stream_status_name(s) == name) return s;
  return std::nullopt;
}

json::value timestamp_json(std::int64_t unix_ms) {
  if (unix_ms == 0) return nullptr;
  return json::string(format_timestamp(unix_ms));
}

// ---- workflow ----

namespace {

// The members the stored record and the public JSON share; they differ only in how times are written.
json::object workflow_fields(const Workflow& wf) {
  json::object o;
  o["id"] = wf.id;
  o["agent_id"] = wf.agent_id;
  o["number"] = wf.number;
  o["name"] = wf.name;
  o["metadata"] = wf.metadata;
  o["phase"] = phase_name(wf.phase);
  o["phase_reason"] = optional_string(wf.phase_reason);
  o["progress"] = wf.progress;
  o["progress_message"] = optional_string(wf.progress_message);
  return o;
}

json::object requirements_fields(const Requirements& req) {
  json::object o;
  o["text"] = optional_string(req.text);
  o["items"] = req.items;
  o["revision"] = req.revision;
  return o;
}

}  // namespace

std::string workflow_record(const Workflow& wf) {
  json::object o = workflow_fields(wf);
  o["created_at_ms"] = wf.created_at_ms;
  o["updated_at_ms"] = wf.updated_at_ms;
  return json::serialize(o);
}

std::optional<Workflow> parse_workflow_record(std::string_view text) {
  auto o = parse_object(text);
  if (!o) return std::nullopt;
  Workflow wf;
  std::string phase;
  bool ok = read(*o, "id", wf.id) && read(*o, "agent_id", wf.agent_id) && read(*o, "number", wf.number) &&
            read(*o, "name", wf.name) && read(*o, "phase", phase) &&
            read(*o, "phase_reason", wf.phase_reason) && read(*o, "progress", wf.progress) &&
            read(*o, "progress_message", wf.progress_message) &&
            read(*o, "created_at_ms", wf.created_at_ms) && read(*o, "updated_at_ms", wf.updated_at_ms);
  auto p = parse_phase(phase);
  const json::value* metadata = o->if_contains("metadata");
  if (!ok || !p || !metadata || !metadata->is_object()) return std::nullopt;
  wf.phase = *p;
  wf.metadata = metadata->get_object();
  return wf;
}

json::object workflow_json(const Workflow& wf, const Requirements* req,
                           const std::vector<const Stream*>& streams) {
  json::object o = workflow_fields(wf);
  o["requirements"] = req ? json::value(requirements_json(*req)) : json::value(nullptr);
  json::array list;
  list.reserve(streams.size());
  for (const Stream* st : streams) list.push_back(stream_summary_json(*st));
  o["streams"] = std::move(list);
  o["created_at"] = timestamp_json(wf.created_at_ms);
  o["updated_at"] = timestamp_json(wf.updated_at_ms);
  return o;
}

// ---- requirements ----

std::string requirements_record(const Requirements& req) {
  json::object o = requirements_fields(req);
  o["submitted_at_ms"] = req.submitted_at_ms;
  return json::serialize(o);
}

std::optional<Requirements> parse_requirements_record(std::string_view text) {
  auto o = parse_object(text);
  if (!o) return std::nullopt;
  Requirements req;
  const json::value* items = o->if_contains("items");
  if (!read(*o, "text", req.text) || !read(*o, "revision", req.revision) ||
      !read(*o, "submitted_at_ms", req.submitted_at_ms) || !items || !items->is_array())
    return std::nullopt;
  req.items = items->get_array();
  return req;
}

json::object requirements_json(const Requirements& req) {
  json::object o = requirements_fields(req);
  o["submitted_at"] = timestamp_json(req.submitted_at_ms);
  return o;
}

// ---- streams ----

std::string stream_record(const Stream& st) {
  json::object o;
  o["stream_id"] = st.id;
  o["workflow_id"] = st.workflow_id;
  o["status"] = stream_status_name(st.status);
  o["reason"] = optional_string(st.reason);
  o["started_at_ms"] = st.started_at_ms;
  o["ended_at_ms"] = st.ended_at_ms;
  o["deltas"] = st.deltas;
  o["length"] = st.length;
  o["bytes"] = st.bytes;
  return json::serialize(o);
}

std::optional<Stream> parse_stream_record(std::string_view text) {
  auto o = parse_object(text);
  if (!o) return std::nullopt;
  Stream st;
  std::string status;
  bool ok = read(*o, "stream_id", st.id) && read(*o, "workflow_id", st.workflow_id) &&
            read(*o, "status", status) && read(*o, "reason", st.reason) &&
            read(*o, "started_at_ms", st.started_at_ms) && read(*o, "ended_at_ms", st.ended_at_ms) &&
            read(*o, "deltas", st.deltas) && read(*o, "length", st.length) && read(*o, "bytes", st.bytes);
  auto s = parse_stream_status(status);
  if (!ok || !s) return std::nullopt;
  st.status = *s;
  return st;
}

std::string delta_record_id(std::string_view stream_id, std::uint64_t index) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%010llu", static_cast<unsigned long long>(index));
  std::string id(stream_id);
  id.push_back('/');
  id.append(digits);
  return id;
}

std::optional<DeltaId> parse_delta_record_id(std::string_view id) {
  auto slash = id.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  DeltaId out{std::string(id.substr(0, slash)), 0};
  std::string_view digits = id.substr(slash + 1);
  auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out.index);
  if (ec != std::errc() || p != digits.data() + digits.size() || digits.empty()) return std::nullopt;
  return out;
}

std::string delta_record(std::string_view delta) {
  return json::serialize(json::string_view(delta.data(), delta.size()));  // no copy of a 1 MiB text first
}

std::optional<std::string> parse_delta_record(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_string()) return std::nullopt;
  return std::string(v.get_string());
}

json::object stream_summary_json(const Stream& st) {
  json::object o;
  o["stream_id"] = st.id;
  o["status"] = stream_status_name(st.status);
  o["deltas"] = st.deltas;
  o["length"] = st.length;
  o["bytes"] = st.bytes;
  o["reason"] = optional_string(st.reason);
  o["started_at"] = timestamp_json(st.started_at_ms);
  o["ended_at"] = timestamp_json(st.ended_at_ms);
  return o;
}

json::object open_stream_json(const Stream& st) {
  json::object o;
  o["stream_id"] = st.id;
  o["workflow_id"] = st.workflow_id;
  o["index"] = st.deltas;
  o["text"] = st.text;
  o["length"] = st.length;
  o["bytes"] = st.bytes;
  o["started_at"] = timestamp_json(st.started_at_ms);
  return o;
}

}  // namespace aw::workflow
