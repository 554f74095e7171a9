// The browser checks on any Host, Origin and Content-Type bytes: origins and hosts that parse are
// normalised for good (parsing the normal form gives it back); an answer is only ever 204, 403 or 421,
// a refusal's body is JSON (valid UTF-8) whatever bytes it quotes and carries no CORS header; a request
// without Origin gets no CORS headers and no 403; CORS headers go only with an allowed foreign origin;
// a 415 names what is accepted in a JSON body.
#include <string>

#include "api/browser_policy.hpp"
#include "api/media_type.hpp"
#include "core/web_origin.hpp"
#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "json_reference.hpp"
#include "utf8_reference.hpp"

namespace {

using namespace aw::api;

bool is_json(const std::string& body) {
  return aw::fuzz::reference_utf8(body) && aw::fuzz::json_reference(body).value.has_value();
}

bool has_cors(const Response& r) {
  for (const auto& [k, v] : r.headers)
    if (k.starts_with("Access-Control-")) return true;
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  aw::fuzz::FuzzInput in(data, size);
  const std::string method = in.pick<const char*>({"GET", "POST", "OPTIONS", "DELETE", "HEAD", "options"});
  const std::uint8_t shape = in.byte();
  aw::config::Options options;
  if (shape & 1) options.allowed_origins = {"http://localhost:5173", "null"};
  if (shape & 2) options.allowed_origins.push_back("*");
  if (shape & 4) options.allowed_hosts = {"agentwire.example.com"};
  if (shape & 8) options.allowed_hosts.push_back("*");
  if (shape & 16) options.auth_secret = "k";
  if (shape & 32) options.listen_host = "::1";
  const std::string host = in.text(256);
  const std::string origin = in.text(256);
  const std::string content_type = in.rest();

  if (auto o = aw::parse_web_origin(origin)) {
    auto again = aw::parse_web_origin(o->serialized());
    FUZZ_CHECK(again && again->serialized() == o->serialized());
  }
  if (auto h = aw::parse_host_header(host)) {
    FUZZ_CHECK(!h->host.empty());
    auto again = aw::parse_host_header(h->port ? h->host + ":" + std::to_string(*h->port) : h->host);
    FUZZ_CHECK(again && again->host == h->host && again->port == h->port);
  }
  if (auto n = aw::normalize_host_name(host)) FUZZ_CHECK(aw::normalize_host_name(*n) == n);

  for (bool with_origin : {false, true}) {
    BrowserRequest req{method, shape & 64 ? std::nullopt : std::optional<std::string_view>(host),
                       with_origin ? std::optional<std::string_view>(origin) : std::nullopt};
    BrowserVerdict v = check_browser_request(req, options);
    if (v.answer) {
      const unsigned s = v.answer->status;
      FUZZ_CHECK(s == 204 || s == 403 || s == 421);
      if (s != 204) {
        FUZZ_CHECK(is_json(v.answer->body));
        FUZZ_CHECK(!has_cors(*v.answer) && v.cors_headers.empty());
      } else {
        FUZZ_CHECK(with_origin && method == "OPTIONS" && has_cors(*v.answer));
      }
      if (!with_origin) FUZZ_CHECK(s == 421);
    }
    if (!with_origin) FUZZ_CHECK(v.cors_headers.empty());
    if (!v.cors_headers.empty())
      FUZZ_CHECK(origin_allowed(origin, options) && !is_same_origin(origin, req.host));
  }

  auto refusal = check_media_type(content_type, {"text/plain", "application/json"});
  if (refusal) {
    FUZZ_CHECK(refusal->status == 415 && is_json(refusal->body));
  } else {
    const std::string type = media_type(content_type);
    FUZZ_CHECK(type == "text/plain" || type == "application/json");
  }
  return 0;
}
