// Path and query parsing, against small references: split_path yields the non-empty segments between
// slashes; percent_decode undoes percent-encoding of any bytes; query_param finds an encoded value
// among others; parse_count reads exactly the decimal numbers that fit 64 bits; a subscribe target is a
// valid agent or a 400 whose body is JSON; the router answers every method and path once, and its
// 404/405 bodies are JSON (valid UTF-8) whatever bytes the path held.
#include <algorithm>
#include <limits>
#include <string>

#include "api/router.hpp"
#include "api/subscribe_target.hpp"
#include "core/agent_id.hpp"
#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "json_reference.hpp"
#include "utf8_reference.hpp"

namespace {

using namespace aw::api;

std::string percent_encode(std::string_view s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    out.push_back('%');
    out.push_back(hex[c >> 4]);
    out.push_back(hex[c & 15]);
  }
  return out;
}

std::optional<std::uint64_t> reference_count(std::string_view s) {
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

bool is_json_error(const Response& res) {
  return aw::fuzz::reference_utf8(res.body) && aw::fuzz::json_reference(res.body).value.has_value();
}

const Router& router() {
  // Built in place: a router stays where it was made (its streaming routes refer to it).
  static Router r;
  static const bool built = [] {
    auto ok = [](const Request&, const Params&, Reply reply) { reply(Response{}); };
    using aw::auth::Scope;
    r.add("GET", "/api/agents/{agent_id}/events", Access::need(Scope::read, Access::Agent::path), ok);
    r.add("POST", "/api/agents/{agent_id}/events", Access::need(Scope::publish, Access::Agent::path), ok);
    r.add("GET", "/api/workflows/{workflow_id}", Access::need(Scope::read, Access::Agent::workflow), ok);
    r.add_streaming("POST", "/api/workflows/{workflow_id}/streams/pipe",
                    Access::need(Scope::workflows, Access::Agent::workflow),
                    [](const Request&, const Params&, SinkContext, Reply) { return nullptr; });
    return true;
  }();
  (void)built;
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  aw::fuzz::FuzzInput in(data, size);
  const std::string method = in.pick<const char*>({"GET", "POST", "HEAD", "PUT", "DELETE", "get", ""});
  const std::string path = in.text(512);
  const std::string query = in.text(512);
  const std::string name = in.text(32);
  const std::string value = in.rest();

  std::size_t seg_bytes = 0;
  for (auto seg : split_path(path)) {
    FUZZ_CHECK(!seg.empty() && seg.find('/') == std::string_view::npos);
    seg_bytes += seg.size();
  }
  FUZZ_CHECK(seg_bytes + static_cast<std::size_t>(std::count(path.begin(), path.end(), '/')) == path.size());

  FUZZ_CHECK(percent_decode(percent_encode(value)) == value);
  FUZZ_CHECK(percent_decode(query).size() <= query.size());
  if (name.find_first_of("&=") == std::string::npos && !name.empty()) {
    std::string q = "x" + name + "=1&" + name + "=" + percent_encode(value) + "&" + name + "=2";
    FUZZ_CHECK(query_param(q, name) == value);
  }
  FUZZ_CHECK(parse_count(value) == reference_count(value));

  SubscribeTarget target = parse_subscribe_target(path, query);
  if (target.error) {
    FUZZ_CHECK(target.kind == SubscribeTarget::Kind::agent && target.error->status == 400);
    FUZZ_CHECK(is_json_error(*target.error));
  } else if (target.kind == SubscribeTarget::Kind::agent) {
    FUZZ_CHECK(aw::is_valid_agent_id(target.agent_id));
  }

  Request req;
  req.method = method;
  req.path = path;
  req.query = query;
  int replies = 0;
  router().handle(req, [&](Response res) {
    ++replies;
    if (res.status == 404 || res.status == 405) FUZZ_CHECK(is_json_error(res));
  });
  FUZZ_CHECK(replies == 1);
  Params params;
  router().match_streaming(method, path, params);
  return 0;
}
