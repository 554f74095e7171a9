#include "api/static_api.hpp"

#include <fstream>
#include <sstream>

#include "api/errors.hpp"

namespace aw::api {
namespace {

// Path segments are plain names: no "..", no hidden files, nothing a URL could use to climb out.
bool safe_segment(std::string_view s) {
  if (s.empty() || s.size() > 128 || s.front() == '.') return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-' || c == '.';
    if (!ok) return false;
  }
  return true;
}

Response serve_file(const std::string& web_dir, const std::string& relative) {
  std::ifstream in(web_dir + "/" + relative, std::ios::binary);
  if (!in) return error_response(404, "not_found", "no file " + relative + " (is the dashboard built? see --web-dir)");
  std::ostringstream body;
  body << in.rdbuf();
  Response r;
  r.content_type = content_type_for(relative);
  r.body = body.str();
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

}  // namespace

std::string_view content_type_for(std::string_view name) {
  auto dot = name.rfind('.');
  std::string_view ext = dot == std::string_view::npos ? "" : name.substr(dot + 1);
  if (ext == "html") return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs") return "text/javascript; charset=utf-8";
  if (ext == "css") return "text/css; charset=utf-8";
  if (ext == "json" || ext == "map") return "application/json";
  if (ext == "svg") return "image/svg+xml";
  if (ext == "png") return "image/png";
  if (ext == "ico") return "image/x-icon";
  return "application/octet-stream";
}

void add_static_routes(Router& router, std::string web_dir) {
  router.add("GET", "/", [web_dir](const Request&, const Params&, Reply reply) {
    reply(serve_file(web_dir, "index.html"));
  });
  auto serve = [web_dir](const Request& req, const Params&, Reply reply) {
    // Everything after /ui/, checked segment by segment.
    std::string relative;
    auto parts = split_path(req.path);
    for (std::size_t i = 1; i < parts.size(); ++i) {
      if (!safe_segment(parts[i])) return reply(error_response(404, "not_found", "no such file"));
      if (!relative.empty()) relative += '/';
      relative.append(parts[i]);
    }
    reply(serve_file(web_dir, relative));
  };
  router.add("GET", "/ui/{a}", serve);
  router.add("GET", "/ui/{a}/{b}", serve);
  router.add("GET", "/ui/{a}/{b}/{c}", serve);
}

}  // namespace aw::api
