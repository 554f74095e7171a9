// Hosts, origins, CORS and body media types: what a browser's request gets from its head alone.
#include "api/browser_policy.hpp"

#include <gtest/gtest.h>

#include "api/media_type.hpp"
#include "core/web_origin.hpp"

namespace aw::api {
namespace {

std::optional<std::string> header(const Response& r, std::string_view name) {
  for (const auto& [k, v] : r.headers)
    if (k == name) return v;
  return std::nullopt;
}

std::optional<std::string> header(const HeaderList& h, std::string_view name) {
  for (const auto& [k, v] : h)
    if (k == name) return v;
  return std::nullopt;
}

TEST(WebOrigin, ParsedAndNormalised) {
  auto o = parse_web_origin("HTTPS://App.Example.com:443");
  ASSERT_TRUE(o);
  EXPECT_EQ(o->serialized(), "https://app.example.com");
  EXPECT_EQ(parse_web_origin("http://localhost:5173")->serialized(), "http://localhost:5173");
  EXPECT_EQ(parse_web_origin("http://[::1]:8080")->host, "[::1]");
  EXPECT_EQ(parse_web_origin("http://127.0.0.1")->port, 80);
  for (const char* bad : {"null", "", "example.com", "http://", "http://a/b", "http://a:99999", "http://u@a",
                          "http://a?x", "1http://a", "http://a b", "http://[::1"})
    EXPECT_FALSE(parse_web_origin(bad)) << bad;
}

TEST(WebOrigin, HostHeadersAndNames) {
  auto h = parse_host_header("LocalHost.:8080");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->host, "localhost");
  EXPECT_EQ(h->port, 8080);
  EXPECT_EQ(parse_host_header("[::1]")->host, "[::1]");
  EXPECT_FALSE(parse_host_header("[::1]")->port);
  EXPECT_FALSE(parse_host_header("a:b"));
  EXPECT_FALSE(parse_host_header("a/b"));
  EXPECT_FALSE(parse_host_header(""));
  for (const char* empty_label : {".", "a..", "..a", ".a", "a..b:80"})
    EXPECT_FALSE(parse_host_header(empty_label)) << empty_label;
  EXPECT_EQ(normalize_host_name("::1"), "[::1]");
  EXPECT_EQ(normalize_host_name("Agentwire.Example.COM"), "agentwire.example.com");
  EXPECT_FALSE(normalize_host_name("example.com:8080"));
  EXPECT_FALSE(normalize_host_name("a:1"));  // hex digits and one colon: a name and a port
  EXPECT_FALSE(normalize_host_name("[a:1]"));
  EXPECT_FALSE(normalize_host_name(""));
}

TEST(BrowserPolicy, DefaultHostsWhileAnonymousAreLoopbackAndALiteralListenAddress) {
  config::Options o;
  o.listen_host = "10.1.2.3";
  for (const char* ok : {"localhost", "LOCALHOST:8080", "127.0.0.1:1", "[::1]:8080", "10.1.2.3:8080"})
    EXPECT_TRUE(host_allowed(ok, o)) << ok;
  for (const char* bad : {"evil.example", "127.0.0.1.nip.io", "10.1.2.4", "", "local host"})
    EXPECT_FALSE(host_allowed(bad, o)) << bad;
  o.listen_host = "myhost";  // a name could be rebound: only literal addresses join the default
  EXPECT_FALSE(host_allowed("myhost", o));
  // With a key configured a rebound page has nothing to use: any host by default.
  o.auth_secret = "k";
  EXPECT_TRUE(host_allowed("evil.example", o));
}

TEST(BrowserPolicy, ListedHostsReplaceTheDefault) {
  config::Options o;
  o.allowed_hosts = {"agentwire.example.com"};
  EXPECT_TRUE(host_allowed("Agentwire.Example.com:443", o));
  EXPECT_FALSE(host_allowed("localhost", o));
  o.allowed_hosts = {"*"};
  EXPECT_TRUE(host_allowed("anything at all", o));
}

TEST(BrowserPolicy, ARefusedHostIs421BeforeAnything) {
  config::Options o;
  auto v = check_browser_request({"GET", "rebound.example:8080", "http://rebound.example:8080"}, o);
  ASSERT_TRUE(v.answer);
  EXPECT_EQ(v.answer->status, 421u);
  EXPECT_NE(v.answer->body.find("\"host_forbidden\""), std::string::npos);
  // HTTP/1.0 without Host is no browser's.
  EXPECT_FALSE(check_browser_request({"GET", std::nullopt, std::nullopt}, o).answer);
}

TEST(BrowserPolicy, SameOriginAndNoOriginPassWithoutCors) {
  config::Options o;
  auto same = check_browser_request({"POST", "127.0.0.1:8080", "http://127.0.0.1:8080"}, o);
  EXPECT_FALSE(same.answer);
  EXPECT_TRUE(same.cors_headers.empty());
  EXPECT_FALSE(check_browser_request({"POST", "localhost", "http://localhost"}, o).answer);
  EXPECT_FALSE(check_browser_request({"POST", "localhost:80", "http://LOCALHOST"}, o).answer);
  auto none = check_browser_request({"POST", "127.0.0.1:8080", std::nullopt}, o);
  EXPECT_FALSE(none.answer);
  EXPECT_TRUE(none.cors_headers.empty());
  EXPECT_TRUE(is_same_origin("http://127.0.0.1:8080", std::string_view("127.0.0.1:8080")));
  EXPECT_FALSE(is_same_origin("http://127.0.0.1:8081", std::string_view("127.0.0.1:8080")));
  EXPECT_FALSE(is_same_origin("http://localhost:8080", std::string_view("127.0.0.1:8080")));
  EXPECT_FALSE(is_same_origin("https://127.0.0.1", std::string_view("127.0.0.1:80")));
  EXPECT_FALSE(is_same_origin("null", std::string_view("127.0.0.1:8080")));
}

TEST(BrowserPolicy, AForeignOriginIs403UnlessListed) {
  config::Options o;
  for (const char* origin : {"http://evil.example", "null", "http://127.0.0.1:9999", "garbage"}) {
    auto v = check_browser_request({"GET", "127.0.0.1:8080", origin}, o);
    ASSERT_TRUE(v.answer) << origin;
    EXPECT_EQ(v.answer->status, 403u) << origin;
    EXPECT_NE(v.answer->body.find("\"origin_forbidden\""), std::string::npos);
    EXPECT_TRUE(v.cors_headers.empty());
  }
  o.allowed_origins = {"https://app.example.com", "http://localhost:5173"};
  EXPECT_TRUE(origin_allowed("https://APP.example.com:443", o));
  EXPECT_TRUE(origin_allowed("http://localhost:5173", o));
  EXPECT_FALSE(origin_allowed("http://app.example.com", o));
  EXPECT_FALSE(origin_allowed("https://app.example.com:8443", o));
  EXPECT_FALSE(origin_allowed("null", o));
  o.allowed_origins = {"*"};
  EXPECT_TRUE(origin_allowed("http://anything.example", o));
  EXPECT_FALSE(origin_allowed("null", o));  // sandboxed pages and files: only when named
  o.allowed_origins = {"null"};
  EXPECT_TRUE(origin_allowed("null", o));
}

TEST(BrowserPolicy, AnAllowedCrossOriginRequestGetsCorsHeaders) {
  config::Options o;
  o.allowed_origins = {"http://localhost:5173"};
  auto v = check_browser_request({"POST", "127.0.0.1:8080", "http://localhost:5173"}, o);
  EXPECT_FALSE(v.answer);
  EXPECT_EQ(header(v.cors_headers, "Access-Control-Allow-Origin"), "http://localhost:5173");
  EXPECT_EQ(header(v.cors_headers, "Vary"), "Origin");
  EXPECT_TRUE(header(v.cors_headers, "Access-Control-Expose-Headers"));
  EXPECT_FALSE(header(v.cors_headers, "Access-Control-Allow-Credentials"));
}

TEST(BrowserPolicy, PreflightIsAnsweredFor204OnlyForAllowedOrigins) {
  config::Options o;
  o.allowed_origins = {"http://localhost:5173"};
  auto v = check_browser_request({"OPTIONS", "127.0.0.1:8080", "http://localhost:5173"}, o);
  ASSERT_TRUE(v.answer);
  EXPECT_EQ(v.answer->status, 204u);
  EXPECT_TRUE(v.answer->body.empty());
  EXPECT_EQ(header(*v.answer, "Access-Control-Allow-Origin"), "http://localhost:5173");
  EXPECT_EQ(header(*v.answer, "Vary"), "Origin");
  auto methods = header(*v.answer, "Access-Control-Allow-Methods");
  ASSERT_TRUE(methods);
  EXPECT_NE(methods->find("POST"), std::string::npos);
  EXPECT_NE(methods->find("DELETE"), std::string::npos);
  auto headers = header(*v.answer, "Access-Control-Allow-Headers");
  ASSERT_TRUE(headers);
  for (const char* h : {"Authorization", "Content-Type", "Idempotency-Key"})
    EXPECT_NE(headers->find(h), std::string::npos) << h;
  EXPECT_TRUE(header(*v.answer, "Access-Control-Max-Age"));
  auto refused = check_browser_request({"OPTIONS", "127.0.0.1:8080", "http://evil.example"}, o);
  ASSERT_TRUE(refused.answer);
  EXPECT_EQ(refused.answer->status, 403u);
  EXPECT_FALSE(header(*refused.answer, "Access-Control-Allow-Origin"));
  // Not a browser's preflight: the router answers (405 with Allow).
  EXPECT_FALSE(check_browser_request({"OPTIONS", "127.0.0.1:8080", std::nullopt}, o).answer);
}

TEST(MediaType, JsonRoutesTakeJsonBodiesOnly) {
  EXPECT_EQ(media_type(" Application/JSON ; charset=utf-8"), "application/json");
  Request r;
  r.body = R"({"type":"t"})";
  for (const char* ok : {"application/json", "application/json; charset=utf-8", "APPLICATION/JSON"}) {
    r.content_type = ok;
    EXPECT_FALSE(check_json_body(r)) << ok;
  }
  for (const char* bad : {"", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                          "multipart/form-data; boundary=x", "application/jsonp", "application/ld+json"}) {
    r.content_type = bad;
    auto refusal = check_json_body(r);
    ASSERT_TRUE(refusal) << bad;
    EXPECT_EQ(refusal->status, 415u);
    EXPECT_NE(refusal->body.find("\"unsupported_media_type\""), std::string::npos);
    EXPECT_NE(refusal->body.find("\"accepted\":[\"application/json\"]"), std::string::npos) << refusal->body;
  }
  // No body: nothing to misread.
  r.body.clear();
  r.content_type = "text/plain";
  EXPECT_FALSE(check_json_body(r));
}

TEST(MediaType, ThePipeNamesItsOwnFormats) {
  auto refusal = check_media_type("image/png", {"text/plain", "application/x-ndjson"});
  ASSERT_TRUE(refusal);
  EXPECT_NE(refusal->body.find("\"accepted\":[\"text/plain\",\"application/x-ndjson\"]"), std::string::npos);
  EXPECT_FALSE(check_media_type("text/plain; charset=utf-8", {"text/plain", "application/x-ndjson"}));
}

}  // namespace
}  // namespace aw::api
