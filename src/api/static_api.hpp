// The dashboard's files: `GET /` is web-dir/index.html and `GET /ui/...` the files beside it. Served from
// disk so a deployment can swap the front end without rebuilding the server.
#pragma once
#include <string>

#include "api/router.hpp"

namespace aw::api {

void add_static_routes(Router& router, std::string web_dir);

// The content type for a file name, by extension: a string with static storage.
std::string_view content_type_for(std::string_view name);

}  // namespace aw::api
