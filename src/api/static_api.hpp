// The dashboard's files: `GET /` is web-dir/index.html and `GET /ui/...` the files beside it. Served from
// disk so a deployment can swap the front end without rebuilding the server.
#pragma once
#include <cstdint>
#include <string>

#include "api/router.hpp"

namespace aw::api {

// Only regular files of at most `max_file_bytes` inside web_dir are served (no symlink out of it, no
// directory, FIFO or device); each is read in one go, never waiting on anything but the disk.
void add_static_routes(Router& router, std::string web_dir, std::uint64_t max_file_bytes);

// The content type for a file name, by extension: a string with static storage.
std::string_view content_type_for(std::string_view name);

}  // namespace aw::api
