// HTTP requests and responses as the API sees them: plain structs, so handlers are request → response
// functions that know nothing of sockets or Beast.
#pragma once
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aw::api {

struct Request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // without the query
  std::string query;   // after '?', undecoded
  std::string content_type;
  std::string authorization;  // the Authorization header's value (a credential: never logged)
  std::string idempotency_key;
  bool has_idempotency_key = false;
  std::string body;
};

struct Response {
  unsigned status = 200;
  // Owned, not a view: a view is one temporary away from garbage headers (commit 68da5d4 fixed exactly
  // that), and api_test keeps it a std::string.
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

// Called exactly once per request, from any thread.
using Reply = std::function<void(Response)>;

}  // namespace aw::api
