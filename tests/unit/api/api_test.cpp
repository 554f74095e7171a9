// Routing, query parsing, subscribe targets, static files and the mapping of publish results to HTTP.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <type_traits>

#include "api/errors.hpp"
#include "api/events_api.hpp"
#include "api/router.hpp"
#include "api/static_api.hpp"
#include "api/subscribe_target.hpp"
#include "core/agent_id.hpp"
#include "core/utf8.hpp"

namespace aw::api {
using hub::PublishResult;
namespace {

Response route(const Router& r, std::string method, std::string path) {
  Request req;
  req.method = std::move(method);
  req.path = std::move(path);
  Response out;
  r.handle(req, [&out](Response res) { out = std::move(res); });
  return out;
}

TEST(Router, MatchesParamsAndSeparates404From405) {
  Router r;
  std::string seen;
  r.add("POST", "/api/agents/{agent_id}/events", Access::open(),
        [&](const Request&, const Params& p, Reply reply) {
          seen = std::string(p.get("agent_id"));
          reply(Response{202, "application/json", "{}", {}});
        });
  EXPECT_EQ(route(r, "POST", "/api/agents/a%3A1/events").status, 202u);
  EXPECT_EQ(seen, "a:1");
  auto wrong = route(r, "DELETE", "/api/agents/a/events");
  EXPECT_EQ(wrong.status, 405u);
  ASSERT_EQ(wrong.headers.size(), 1u);
  EXPECT_EQ(wrong.headers[0].second, "POST");
  EXPECT_EQ(route(r, "POST", "/api/agents/a/other").status, 404u);
  EXPECT_NE(route(r, "GET", "/nope").body.find("\"code\":\"not_found\""), std::string::npos);
}

TEST(Router, ErrorBodiesStayUtf8WhateverThePathBytes) {
  Router r;
  r.add("POST", "/api/x", Access::open(),
        [](const Request&, const Params&, Reply reply) { reply(Response{}); });
  auto missing = route(r, "GET", "/nope/\xff%FF\xc3(");
  EXPECT_TRUE(is_valid_utf8(missing.body)) << missing.body;
  EXPECT_NE(missing.body.find("/nope/%FF%FF%C3("), std::string::npos) << missing.body;
  auto wrong = route(r, "GET", "/api/x");
  EXPECT_EQ(wrong.status, 405u);
  // Valid UTF-8 is quoted as it is.
  auto accented = route(r, "GET", "/caf\xc3\xa9");
  EXPECT_NE(accented.body.find("/caf\xc3\xa9"), std::string::npos) << accented.body;
}

TEST(Router, TakesTheFirstFittingRouteWithItsOwnParamsAndAnyPathLength) {
  Router r;
  std::vector<std::pair<std::string, std::string>> seen;
  auto record = [&](const Request&, const Params& p, Reply reply) {
    seen.assign(p.values.begin(), p.values.end());
    reply(Response{200, "application/json", "{}", {}});
  };
  // Same shape, one literal apart: the params are those of the route taken, not of one tried before.
  r.add("GET", "/api/{kind}/{id}/events", Access::open(), record);
  r.add("GET", "/api/workflows/{workflow_id}/documents", Access::open(), record);
  EXPECT_EQ(route(r, "GET", "/api/workflows/w%201/documents").status, 200u);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first, "workflow_id");
  EXPECT_EQ(seen[0].second, "w 1");
  EXPECT_EQ(route(r, "GET", "/api/agents/a1/events").status, 200u);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], (std::pair<std::string, std::string>("kind", "agents")));
  EXPECT_EQ(seen[1], (std::pair<std::string, std::string>("id", "a1")));
  // More segments than the router keeps inline.
  std::string deep = "/api";
  for (int i = 0; i < 20; ++i) deep += "/s" + std::to_string(i);
  EXPECT_EQ(split_path(deep).size(), 21u);
  EXPECT_EQ(split_path(deep)[20], "s19");
  EXPECT_EQ(route(r, "GET", deep).status, 404u);
  EXPECT_EQ(split_path("//a///b/").size(), 2u);
}

TEST(Query, FindsAndDecodesParameters) {
  EXPECT_EQ(query_param("since=5&epoch=ab%20c", "epoch"), "ab c");
  EXPECT_EQ(query_param("since=5&epoch=x", "since"), "5");
  EXPECT_EQ(query_param("flag&x=1", "flag"), "");
  EXPECT_FALSE(query_param("since=5", "epoch"));
  EXPECT_FALSE(query_param("", "epoch"));
}

TEST(AgentId, FollowsTheAllowedAlphabet) {
  EXPECT_TRUE(is_valid_agent_id("agent-7"));
  EXPECT_TRUE(is_valid_agent_id("A.b:c_d-9"));
  EXPECT_TRUE(is_valid_agent_id(std::string(128, 'a')));
  EXPECT_FALSE(is_valid_agent_id(std::string(129, 'a')));
  EXPECT_FALSE(is_valid_agent_id(""));
  EXPECT_FALSE(is_valid_agent_id("a b"));
  EXPECT_FALSE(is_valid_agent_id("a/b"));
  EXPECT_FALSE(is_valid_agent_id("ä"));
}

TEST(SubscribeTarget, ParsesAgentAndResumePosition) {
  auto t = parse_subscribe_target("/ws/agents/agent-7", "since=12&epoch=abc");
  EXPECT_EQ(t.kind, SubscribeTarget::Kind::agent);
  EXPECT_FALSE(t.error);
  ASSERT_TRUE(t.since);
  EXPECT_EQ(t.since->seq, 12u);
  EXPECT_EQ(t.since->epoch, "abc");
  EXPECT_FALSE(parse_subscribe_target("/ws/agents/a", "").since);
  EXPECT_EQ(parse_subscribe_target("/ws/echo", "").kind, SubscribeTarget::Kind::echo);
  EXPECT_EQ(parse_subscribe_target("/ws/other/a", "").kind, SubscribeTarget::Kind::not_websocket_route);
}

TEST(SubscribeTarget, RejectsBadInputWith400) {
  for (auto [path, query] : std::vector<std::pair<const char*, const char*>>{
           {"/ws/agents/a%20b", ""},
           {"/ws/agents/a/b", ""},
           {"/ws/agents/", ""},
           {"/ws/agents/a", "since=-1"},
           {"/ws/agents/a", "since=abc"},
           {"/ws/agents/a", "since="},
           {"/ws/agents/a", "since=99999999999999999999999"},
           {"/ws/agents/a", "epoch=abc"},
       }) {
    auto t = parse_subscribe_target(path, query);
    ASSERT_TRUE(t.error) << path << "?" << query;
    EXPECT_EQ(t.error->status, 400u);
  }
  auto long_epoch = parse_subscribe_target("/ws/agents/a", "since=1&epoch=" + std::string(65, 'e'));
  ASSERT_TRUE(long_epoch.error);
  EXPECT_NE(long_epoch.error->body.find("bad_epoch"), std::string::npos);
}

TEST(PublishResponse, MapsEveryOutcome) {
  using S = PublishResult::Status;
  EXPECT_EQ(publish_response({S::ok, 3, {}, {}}).status, 202u);
  EXPECT_EQ(publish_response({S::ok, 3, {}, {}}).body, "{\"seq\":3}");
  EXPECT_EQ(publish_response({S::duplicate, 3, {}, {}}).body, "{\"seq\":3,\"duplicate\":true}");
  EXPECT_EQ(publish_response({S::store_full, 0, "full", {}}).status, 503u);
  EXPECT_EQ(publish_response({S::store_failed, 0, "x", {}}).status, 503u);
  EXPECT_EQ(publish_response({S::overloaded, 0, "x", {}}).status, 503u);
  PublishResult refused{S::refused,
                        0,
                        {},
                        hub::Decision::refuse(hub::Decision::Refusal::conflict, "illegal_transition", "no",
                                              R"({"allowed":["design"]})")};
  auto r = publish_response(refused);
  EXPECT_EQ(r.status, 409u);
  EXPECT_EQ(r.body, R"({"error":{"code":"illegal_transition","message":"no","allowed":["design"]}})");
}

TEST(ParseCount, AcceptsOnlyPlainNonNegativeIntegers) {
  EXPECT_EQ(parse_count("0"), 0u);
  EXPECT_EQ(parse_count("18446744073709551615"), UINT64_MAX);
  for (auto bad : {"", "-1", "+1", "1.5", "1e3", " 1", "1 ", "abc", "18446744073709551616"})
    EXPECT_FALSE(parse_count(bad)) << bad;
}

TEST(StaticFiles, ServeWithTheirContentType) {
  // Each file with its own type (a view of a temporary here once sent garbage headers to the browser).
  const auto dir = std::filesystem::temp_directory_path() / ("aw-static-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "icon.svg") << "<svg/>";
  std::ofstream(dir / "index.html") << "<html></html>";
  Router router;
  add_static_routes(router, dir.string(), 1 << 20);
  auto fetch = [&](const std::string& path) { return route(router, "GET", path); };
  Response svg = fetch("/ui/icon.svg");
  Response html = fetch("/");
  EXPECT_EQ(svg.status, 200u);
  EXPECT_EQ(svg.content_type, "image/svg+xml");
  EXPECT_EQ(svg.body, "<svg/>");
  EXPECT_EQ(html.content_type, "text/html; charset=utf-8");
  EXPECT_EQ(fetch("/ui/missing.js").status, 404u);
  std::filesystem::remove_all(dir);
}

TEST(Response, OwnsItsContentType) {
  // A view here was one temporary away from garbage headers: keep the type owning.
  static_assert(std::is_same_v<decltype(Response::content_type), std::string>,
                "Response::content_type must own its bytes");
  Response res;
  {
    std::string built = std::string("text/plain; ") + "charset=utf-8";
    res.content_type = built;
    built.assign(built.size(), 'x');
  }
  EXPECT_EQ(res.content_type, "text/plain; charset=utf-8");
}

TEST(StaticFiles, OnlyRegularFilesInsideTheWebDir) {
  const auto root = std::filesystem::temp_directory_path() / ("aw-static-only-" + std::to_string(::getpid()));
  const auto dir = root / "web";
  std::filesystem::create_directories(dir / "sub");
  std::ofstream(root / "secret.txt") << "outside";
  std::ofstream(dir / "page.html") << "<p>in</p>";
  std::ofstream(dir / "big.js") << std::string(2048, 'x');
  std::filesystem::create_symlink(root / "secret.txt", dir / "out.txt");
  std::filesystem::create_symlink("../secret.txt", dir / "rel.txt");
  std::filesystem::create_directory_symlink(root, dir / "up");
  std::filesystem::create_symlink("page.html", dir / "alias.html");  // stays inside: followed
  ASSERT_EQ(::mkfifo((dir / "pipe.js").c_str(), 0600), 0);
  Router router;
  add_static_routes(router, dir.string(), 1024);
  auto fetch = [&](const std::string& path) { return route(router, "GET", path); };
  EXPECT_EQ(fetch("/ui/page.html").body, "<p>in</p>");
  EXPECT_EQ(fetch("/ui/alias.html").body, "<p>in</p>");
  for (const char* path : {"/ui/out.txt", "/ui/rel.txt", "/ui/up/secret.txt", "/ui/sub", "/ui/pipe.js"}) {
    Response r = fetch(path);  // the FIFO has no writer: a blocking open or read would hang here
    EXPECT_EQ(r.status, 404u) << path;
    EXPECT_EQ(r.body.find("outside"), std::string::npos) << path;
  }
  Response big = fetch("/ui/big.js");
  EXPECT_EQ(big.status, 500u);
  EXPECT_NE(big.body.find("file_too_large"), std::string::npos);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace aw::api
