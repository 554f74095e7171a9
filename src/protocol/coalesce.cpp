#include "protocol/coalesce.hpp"

#include <boost/json.hpp>
#include <optional>
#include <string_view>

#include "protocol/envelope.hpp"

namespace aw::protocol {
namespace {

namespace json = boost::json;

std::optional<json::object> parse_object(std::string_view text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.as_object());
}

// A delta as the workflow service publishes it (or a merge of such): anything else is not ours to merge.
struct Delta {
  json::object data;
  std::int64_t index = 0;
  std::int64_t count = 1;
};

std::optional<Delta> as_delta(std::string_view text, bool may_be_merged) {
  auto data = parse_object(text);
  if (!data) return std::nullopt;
  for (const auto& kv : *data) {
    std::string_view k = kv.key();
    bool known = k == "stream_id" || k == "workflow_id" || k == "index" || k == "delta" ||
                 (may_be_merged && k == "count");
    if (!known) return std::nullopt;  // a start, an end, or someone else's event named "stream"
  }
  const json::value* id = data->if_contains("stream_id");
  const json::value* index = data->if_contains("index");
  const json::value* delta = data->if_contains("delta");
  if (!id || !id->is_string() || !index || !index->is_int64() || index->as_int64() < 0 || !delta ||
      !delta->is_string())
    return std::nullopt;
  Delta d;
  d.index = index->as_int64();
  if (const json::value* count = data->if_contains("count")) {
    if (!count->is_int64() || count->as_int64() < 1) return std::nullopt;
    d.count = count->as_int64();
  }
  d.data = std::move(*data);
  return d;
}

EventPtr merge_deltas(const Event& queued, const Event& next, std::size_t max_delta_bytes) {
  auto a = as_delta(queued.data(), true);
  auto b = as_delta(next.data(), false);
  if (!a || !b) return nullptr;
  if (a->data.at("stream_id") != b->data.at("stream_id")) return nullptr;
  const json::value* wa = a->data.if_contains("workflow_id");
  const json::value* wb = b->data.if_contains("workflow_id");
  if ((wa == nullptr) != (wb == nullptr) || (wa && *wa != *wb)) return nullptr;
  if (b->index != a->index + a->count) return nullptr;
  const json::string& ta = a->data.at("delta").as_string();
  const json::string& tb = b->data.at("delta").as_string();
  if (ta.size() + tb.size() > max_delta_bytes) return nullptr;

  json::object merged;
  merged["stream_id"] = a->data.at("stream_id");
  if (wa) merged["workflow_id"] = *wa;
  merged["index"] = a->index;
  json::string text = ta;
  text.append(tb);
  merged["delta"] = std::move(text);
  merged["count"] = a->count + 1;
  return make_merged_event(next.agent_id(), queued.first_seq != 0 ? queued.first_seq : queued.seq, next.seq,
                           next.type(), next.ts_ms, json::serialize(merged));
}

EventPtr merge_progress(const Event& queued, const Event& next) {
  auto a = parse_object(queued.data());
  auto b = parse_object(next.data());
  if (!a || !b) return nullptr;
  const json::value* wa = a->if_contains("workflow_id");
  const json::value* wb = b->if_contains("workflow_id");
  if (!wa || !wb || !wa->is_string() || *wa != *wb) return nullptr;
  return make_merged_event(next.agent_id(), queued.first_seq != 0 ? queued.first_seq : queued.seq, next.seq,
                           next.type(), next.ts_ms, next.data());
}

}  // namespace

EventPtr coalesce(const Event& queued, const Event& next, std::size_t max_delta_bytes) {
  if (!queued.mergeable || !next.mergeable) return nullptr;  // a generic publish, whatever it looks like
  if (next.seq != queued.seq + 1 || next.type() != queued.type() || next.agent_id() != queued.agent_id())
    return nullptr;
  if (next.type() == "stream") return merge_deltas(queued, next, max_delta_bytes);
  if (next.type() == "progress") return merge_progress(queued, next);
  return nullptr;
}

}  // namespace aw::protocol
