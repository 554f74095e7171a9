#include "api/static_api.hpp"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

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

// Closes a descriptor when it goes out of scope.
struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Opened without blocking: a FIFO (or a device) opens at once instead of waiting for a writer.
constexpr int kOpenFlags = O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;

// Where openat2 is missing (Linux before 5.6): one component at a time, following no symlink at all.
int open_each_component(int dir, const std::string& relative) {
  int at = dir;  // ours to close once it is not `dir`
  std::size_t start = 0;
  for (std::size_t slash; (slash = relative.find('/', start)) != std::string::npos; start = slash + 1) {
    std::string name = relative.substr(start, slash - start);
    int next = ::openat(at, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (at != dir) ::close(at);
    if (next < 0) return -1;
    at = next;
  }
  int fd = ::openat(at, relative.c_str() + start, kOpenFlags | O_NOFOLLOW);
  int saved = errno;
  if (at != dir) ::close(at);
  errno = saved;
  return fd;
}

// Opens web_dir/relative for reading, never outside web_dir: RESOLVE_BENEATH refuses a path that a
// symlink (or anything else) would take out of it; symlinks that stay inside are followed.
int open_beneath(const std::string& web_dir, const std::string& relative) {
  Fd dir(::open(web_dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (dir.fd < 0) return -1;
  open_how how{};
  how.flags = kOpenFlags;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  int fd = static_cast<int>(::syscall(SYS_openat2, dir.fd, relative.c_str(), &how, sizeof how));
  if (fd < 0 && errno == ENOSYS) fd = open_each_component(dir.fd, relative);
  int saved = errno;  // for the caller, past the close of `dir`
  ::close(std::exchange(dir.fd, -1));
  errno = saved;
  return fd;
}

Response not_found(const std::string& relative) {
  return error_response(404, "not_found", "no file " + relative + " (is the dashboard built? see --web-dir)");
}

Response serve_file(const std::string& web_dir, const std::string& relative, std::uint64_t max_bytes) {
  Fd file(open_beneath(web_dir, relative));
  if (file.fd < 0) {
    if (errno == EMFILE || errno == ENFILE)
      return error_response(503, "unavailable", "the server is out of file descriptors; retry later");
    return not_found(relative);
  }
  // Only regular files: a directory, a FIFO or a device under the web dir is not a page.
  struct stat st {};
  if (::fstat(file.fd, &st) != 0 || !S_ISREG(st.st_mode)) return not_found(relative);
  auto size = static_cast<std::uint64_t>(st.st_size);
  if (size > max_bytes)
    return error_response(
        500, "file_too_large",
        relative + " is larger than --max-web-file-bytes (" + std::to_string(max_bytes) + ")");
  // A regular file of bounded size, read in one go: reads from the page cache, never a wait on a peer.
  Response r;
  r.body.resize(size);
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::read(file.fd, r.body.data() + got, size - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return error_response(500, "read_failed", "could not read " + relative);
    if (n == 0) break;  // the file shrank since fstat
    got += static_cast<std::size_t>(n);
  }
  r.body.resize(got);
  r.content_type = content_type_for(relative);
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

void add_static_routes(Router& router, std::string web_dir, std::uint64_t max_file_bytes) {
  router.add("GET", "/", Access::open(),
             [web_dir, max_file_bytes](const Request&, const Params&, Reply reply) {
               reply(serve_file(web_dir, "index.html", max_file_bytes));
             });
  auto serve = [web_dir, max_file_bytes](const Request& req, const Params&, Reply reply) {
    // Everything after /ui/, checked segment by segment.
    std::string relative;
    auto parts = split_path(req.path);
    for (std::size_t i = 1; i < parts.size(); ++i) {
      if (!safe_segment(parts[i])) return reply(error_response(404, "not_found", "no such file"));
      if (!relative.empty()) relative += '/';
      relative.append(parts[i]);
    }
    reply(serve_file(web_dir, relative, max_file_bytes));
  };
  router.add("GET", "/ui/{a}", Access::open(), serve);
  router.add("GET", "/ui/{a}/{b}", Access::open(), serve);
  router.add("GET", "/ui/{a}/{b}/{c}", Access::open(), serve);
}

}  // namespace aw::api
