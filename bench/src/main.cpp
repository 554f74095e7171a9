// agentwire-bench: load generator for agentwire (and peers speaking the same protocol).
//
//   agentwire-bench <idle|fanout|channels|resume> --url http://127.0.0.1:8080 [options]
//
// See bench/README.md for what each scenario measures.
#include <arpa/inet.h>
#include <dirent.h>
#include <netdb.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "histogram.hpp"
#include "mute_subs.hpp"
#include "util.hpp"
#include "worker.hpp"

using namespace awb;

namespace {

const char* kUsage = R"(usage: agentwire-bench <scenario> --url http://HOST:PORT [options]

scenarios:
  idle      open --connections WebSockets, wait for all `connected`, report server RSS per connection
  fanout    1 channel x --connections subscribers; publish for --duration; report delivered msg/s
  channels  --channels channels x 1 subscriber; publishes round-robin; report publishes/s, delivered/s
  resume    --connections clients subscribe, disconnect, --missed events are published, all reconnect
            with ?since=S&epoch=E; report time until every client has all missed events

options:
  --url URL                 server base URL (default http://127.0.0.1:8080); https:// speaks TLS
                            (certificate not verified) on every connection
  --connections N           subscribers (idle 10000, fanout 1000, resume 1000; channels: = --channels)
  --channels N              channels (channels 10000; idle/resume 1; fanout is always 1)
  --rate R                  publishes per second, 0 = as fast as possible (default 0)
  --duration S              publishing time in seconds (default 5)
  --inflight N              max publishes not yet fully delivered at --rate 0
                            (default fanout 32, channels 512)
  --pipeline N              max unanswered requests per HTTP connection (default 32)
  --http-conns N            HTTP publishing connections per thread (fanout/resume 1, channels 4)
  --payload-bytes N         approximate size of the event's data JSON (default 200)
  --slow N                  fanout: N more subscribers that never read (a 4 KiB window); they are not
                            measured, but afterwards reported: closed by the server (1008 or other)
                            or still open, with the server's RSS before and after publishing
  --stream                  fanout/channels: publish token deltas into an AI output stream per channel
                            (POST /api/streams/{id}/append, after creating a workflow and opening a
                            stream) instead of generic events
  --threads N               event-loop threads (default 1)
  --source-ips N            bind connection i to 127.0.0.(1 + i%N) (default: as many as needed)
  --connect-concurrency N   connections being set up at once, per thread (default 256)
  --connect-timeout S       (default 60)
  --drain-timeout S         wait for deliveries after publishing stops (default 10)
  --server-pid PID          server process for RSS (idle); default: the process listening on the port
  --settle S                pause after connecting, before measuring (RSS / publishing) (default 1)
  --missed N                resume: events published while disconnected, per channel (default 100)
  --prefix STR              agent id prefix (default: unique per run)
  --json                    print one JSON object on stdout (human-readable lines go to stderr)
exit status: 0 all good; 1 messages lost/duplicated/out of order or other failures; 2 usage/setup error
)";

struct Options {
  std::string scenario;
  std::string url = "http://127.0.0.1:8080";
  uint64_t connections = 0;
  uint64_t channels = 0;
  double rate = 0;
  double duration = 5;
  uint64_t inflight = 0;
  uint32_t pipeline = 32;
  uint32_t http_conns = 0;
  uint64_t payload = 200;
  int threads = 1;
  uint32_t source_ips = 0;
  uint32_t connect_concurrency = 256;
  double connect_timeout = 60;
  double drain_timeout = 10;
  int server_pid = 0;
  double settle = 1;
  uint64_t missed = 100;
  uint64_t pre = 3;
  std::string prefix;
  bool json = false;
  bool stream = false;  // publish AI output stream deltas (/api/streams/{id}/append) instead of events
  uint64_t slow = 0;    // fanout: subscribers that never read
};

[[noreturn]] void usage_error(const std::string& msg) {
  fprintf(stderr, "agentwire-bench: %s\n\n%s", msg.c_str(), kUsage);
  exit(2);
}

Options parse_args(int argc, char** argv) {
  Options o;
  if (argc < 2) usage_error("missing scenario");
  o.scenario = argv[1];
  if (o.scenario == "-h" || o.scenario == "--help") {
    fputs(kUsage, stdout);
    exit(0);
  }
  if (o.scenario != "idle" && o.scenario != "fanout" && o.scenario != "channels" && o.scenario != "resume")
    usage_error("unknown scenario '" + o.scenario + "'");
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    std::string v;
    auto eq = a.find('=');
    bool has_eq = eq != std::string::npos && a.rfind("--", 0) == 0;
    if (has_eq) {
      v = a.substr(eq + 1);
      a = a.substr(0, eq);
    }
    auto val = [&]() -> std::string {
      if (has_eq) return v;
      if (i + 1 >= argc) usage_error("missing value for " + a);
      return argv[++i];
    };
    auto num = [&]() -> double {
      std::string s = val();
      char* end = nullptr;
      double d = strtod(s.c_str(), &end);
      if (s.empty() || *end || d < 0) usage_error("bad number for " + a + ": " + s);
      return d;
    };
    if (a == "--url")
      o.url = val();
    else if (a == "--connections")
      o.connections = uint64_t(num());
    else if (a == "--channels")
      o.channels = uint64_t(num());
    else if (a == "--rate")
      o.rate = num();
    else if (a == "--duration")
      o.duration = num();
    else if (a == "--inflight")
      o.inflight = uint64_t(num());
    else if (a == "--pipeline")
      o.pipeline = uint32_t(num());
    else if (a == "--http-conns")
      o.http_conns = uint32_t(num());
    else if (a == "--payload-bytes")
      o.payload = uint64_t(num());
    else if (a == "--threads")
      o.threads = int(num());
    else if (a == "--source-ips")
      o.source_ips = uint32_t(num());
    else if (a == "--connect-concurrency")
      o.connect_concurrency = uint32_t(num());
    else if (a == "--connect-timeout")
      o.connect_timeout = num();
    else if (a == "--drain-timeout")
      o.drain_timeout = num();
    else if (a == "--server-pid")
      o.server_pid = int(num());
    else if (a == "--settle")
      o.settle = num();
    else if (a == "--missed")
      o.missed = uint64_t(num());
    else if (a == "--prefix")
      o.prefix = val();
    else if (a == "--json")
      o.json = true;
    else if (a == "--stream")
      o.stream = true;
    else if (a == "--slow")
      o.slow = uint64_t(num());
    else if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      exit(0);
    } else
      usage_error("unknown option " + a);
  }
  if (o.threads < 1 || o.threads > 64) usage_error("--threads must be 1..64");
  if (o.pipeline < 1) usage_error("--pipeline must be >= 1");
  if (o.connect_concurrency < 1) usage_error("--connect-concurrency must be >= 1");
  const std::string& s = o.scenario;
  if (!o.connections) o.connections = s == "idle" ? 10000 : s == "fanout" ? 1000 : s == "resume" ? 1000 : 0;
  if (!o.channels) o.channels = s == "channels" ? 10000 : 1;
  if (s == "fanout") o.channels = 1;
  if (s == "channels") o.connections = o.channels;
  if (!o.inflight) {
    // Fan-out: 32 publishes on their way, whatever the number of subscribers. Fewer for more
    // subscribers (this used to be 32000/connections, 8 at 10k) starves a server that delivers faster
    // than the publisher's window refills: the measure becomes the window, not the server.
    o.inflight = s == "channels" ? 512 : 32;
  }
  if (!o.http_conns) o.http_conns = s == "channels" ? 4 : 1;
  if (o.connections < 1 || o.channels < 1) usage_error("need at least one connection and channel");
  if (o.slow && s != "fanout") usage_error("--slow is for the fanout scenario");
  if (o.prefix.empty()) {
    o.prefix = "b" + std::to_string(getpid()) + "-" + std::to_string((mono_ns() / 1000000) % 1000000);
  }
  for (char ch : o.prefix)
    if (!isalnum(uint8_t(ch)) && ch != '_' && ch != '.' && ch != ':' && ch != '-')
      usage_error("--prefix may only contain [A-Za-z0-9_.:-]");
  return o;
}

// ---------------------------------------------------------------------------------------------
// Output

std::string fmt_num(double v) {
  if (!std::isfinite(v)) return "null";
  char b[64];
  snprintf(b, sizeof b, "%.4f", v);
  std::string s = b;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    uint8_t u = uint8_t(ch);
    if (ch == '"' || ch == '\\') {
      o += '\\';
      o += ch;
    } else if (u < 0x20) {
      char b[8];
      snprintf(b, sizeof b, "\\u%04x", u);
      o += b;
    } else {
      o += ch;
    }
  }
  return o;
}

class J {
 public:
  J& num(const char* k, double v) { return raw(k, fmt_num(v)); }
  J& u(const char* k, uint64_t v) { return raw(k, std::to_string(v)); }
  J& str(const char* k, const std::string& v) { return raw(k, "\"" + json_escape(v) + "\""); }
  J& b(const char* k, bool v) { return raw(k, v ? "true" : "false"); }
  J& obj(const char* k, const J& v) { return raw(k, v.str()); }
  J& raw(const char* k, const std::string& v) {
    if (!body_.empty()) body_ += ',';
    body_ += '"';
    body_ += k;
    body_ += "\":";
    body_ += v;
    return *this;
  }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

FILE* g_human = stdout;

void say(const char* f, ...) __attribute__((format(printf, 1, 2)));
void say(const char* f, ...) {
  va_list ap;
  va_start(ap, f);
  vfprintf(g_human, f, ap);
  va_end(ap);
  fputc('\n', g_human);
  fflush(g_human);
}

double ms(uint64_t ns) {
  return double(ns) / 1e6;
}

J hist_json_ms(const Histogram& h) {
  J j;
  j.u("count", h.count())
      .num("p50", ms(h.quantile(0.5)))
      .num("p90", ms(h.quantile(0.9)))
      .num("p99", ms(h.quantile(0.99)))
      .num("p999", ms(h.quantile(0.999)))
      .num("max", ms(h.max()))
      .num("mean", h.mean() / 1e6);
  return j;
}

// ---------------------------------------------------------------------------------------------
// System helpers

long read_rss_kb(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return strtol(line.c_str() + 6, nullptr, 10);
  }
  return -1;
}

// The process owning a socket that listens on `port` (IPv4 or IPv6), or 0.
int find_listener_pid(int port) {
  std::vector<std::string> inodes;
  for (const char* path : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream f(path);
    std::string line;
    std::getline(f, line);
    while (std::getline(f, line)) {
      std::istringstream ss(line);
      std::string sl, local, remote, st, q, tr, rt, uid, to, inode;
      ss >> sl >> local >> remote >> st >> q >> tr >> rt >> uid >> to >> inode;
      auto colon = local.rfind(':');
      if (colon == std::string::npos || st != "0A") continue;
      if (strtol(local.c_str() + colon + 1, nullptr, 16) == port) inodes.push_back("socket:[" + inode + "]");
    }
  }
  if (inodes.empty()) return 0;
  DIR* proc = opendir("/proc");
  if (!proc) return 0;
  int found = 0;
  while (dirent* de = readdir(proc)) {
    int pid = atoi(de->d_name);
    if (pid <= 0 || pid == getpid()) continue;
    std::string fddir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = opendir(fddir.c_str());
    if (!d) continue;
    while (dirent* fe = readdir(d)) {
      char buf[64];
      ssize_t n = readlink((fddir + "/" + fe->d_name).c_str(), buf, sizeof buf - 1);
      if (n <= 0) continue;
      buf[n] = 0;
      if (std::find(inodes.begin(), inodes.end(), buf) != inodes.end()) {
        found = pid;
        break;
      }
    }
    closedir(d);
    if (found) break;
  }
  closedir(proc);
  return found;
}

double process_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

bool raise_nofile(uint64_t need, std::string& note) {
  rlimit rl{};
  getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur >= need) return true;
  rlimit want = rl;
  want.rlim_cur = need;
  if (want.rlim_max < need) want.rlim_max = need;
  if (setrlimit(RLIMIT_NOFILE, &want) == 0) return true;
  want.rlim_max = rl.rlim_max;
  want.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &want);
  note = "could not raise RLIMIT_NOFILE to " + std::to_string(need) + " (hard limit " +
         std::to_string(rl.rlim_max) + ")";
  return false;
}

uint64_t ephemeral_ports() {
  std::ifstream f("/proc/sys/net/ipv4/ip_local_port_range");
  uint64_t lo = 32768, hi = 60999;
  f >> lo >> hi;
  return hi > lo ? hi - lo + 1 : 28000;
}

// ---------------------------------------------------------------------------------------------

struct ConnectResult {
  uint64_t target = 0, ok = 0, failed = 0;
  double seconds = 0;
  Histogram hist;
};

struct PublishResult {
  uint64_t sent = 0, acked = 0, errors = 0;
  double seconds = 0;
  std::vector<uint64_t> final_seq;
};

struct DeliveryResult {
  Expectation exp;
  Counters c;  // summed
  double seconds = 0;
  Histogram latency;
  bool drained = false;
};

class Runner {
 public:
  explicit Runner(Options o) : o_(std::move(o)) {}
  int run();

 private:
  bool setup();
  void assign_subs(const std::function<uint32_t(uint64_t)>& channel_of);
  bool wait_for(const std::function<bool()>& pred, double timeout_s);
  bool setup_post(const std::string& path, const std::string& body, const std::string& key,
                  std::string& value);
  template <class M>
  uint64_t sum(M Progress::*m) {
    uint64_t s = 0;
    for (auto& w : workers_) s += (w->progress.*m).load(std::memory_order_acquire);
    return s;
  }
  ConnectResult connect_phase(bool resume, uint64_t target);
  PublishResult publish_phase(PubMode mode, double rate, double duration, uint64_t count,
                              uint64_t deliveries_per_publish);
  DeliveryResult drain_phase(const std::vector<uint64_t>& final_seq, int64_t start_ns);
  Counters sum_counters();
  void report_connect(const char* what, const ConnectResult& r, J& j);
  void report_delivery(const PublishResult& p, const DeliveryResult& d, J& j, bool with_latency);
  void report_generator(double cpu_s, double wall_s, J& j);
  void report_slow(MuteSubscribers& mute, int pid, long rss_before, J& j);
  void error(const std::string& e) {
    errors_.push_back(e);
    ok_ = false;
  }

  int scenario_idle(J& j);
  int scenario_fanout(J& j, bool fanout);
  int scenario_resume(J& j);

  Options o_;
  Config cfg_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Worker*> ptrs_;
  std::vector<std::string> errors_;
  std::vector<std::string> notes_;
  bool ok_ = true;
  int port_ = 0;
};

bool Runner::setup() {
  // URL: http://host[:port][/...]
  std::string u = o_.url;
  bool tls = false;
  if (u.rfind("http://", 0) == 0) {
    u = u.substr(7);
  } else if (u.rfind("ws://", 0) == 0) {
    u = u.substr(5);
  } else if (u.rfind("https://", 0) == 0 || u.rfind("wss://", 0) == 0) {
    u = u.substr(u.find("://") + 3);
    tls = true;
  } else if (u.find("://") != std::string::npos) {
    fprintf(stderr, "agentwire-bench: only http:// and https:// URLs are supported\n");
    return false;
  }
  if (tls) {
    if (o_.slow) {
      fprintf(stderr, "agentwire-bench: --slow needs an http:// URL\n");
      return false;
    }
    // A load generator measures, it does not authenticate: the server's certificate is not verified.
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    cfg_.tls = ctx;
  }
  auto slash = u.find('/');
  if (slash != std::string::npos) u = u.substr(0, slash);
  std::string host = u;
  port_ = tls ? 443 : 80;
  auto colon = u.rfind(':');
  if (colon != std::string::npos) {
    host = u.substr(0, colon);
    port_ = atoi(u.c_str() + colon + 1);
  }
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || !res) {
    fprintf(stderr, "agentwire-bench: cannot resolve '%s' (IPv4 only)\n", host.c_str());
    return false;
  }
  cfg_.server = *reinterpret_cast<sockaddr_in*>(res->ai_addr);
  cfg_.server.sin_port = htons(uint16_t(port_));
  freeaddrinfo(res);
  cfg_.host = u;

  uint64_t http_total = uint64_t(o_.http_conns) * uint64_t(o_.threads);
  uint64_t total = o_.connections + http_total;
  bool loopback = (ntohl(cfg_.server.sin_addr.s_addr) >> 24) == 127;
  if (o_.source_ips == 0) {
    uint64_t per_ip = ephemeral_ports() * 9 / 10;
    o_.source_ips = loopback ? uint32_t((total + per_ip - 1) / per_ip) : 1;
    if (o_.source_ips < 1) o_.source_ips = 1;
  }
  if (o_.source_ips > 1 && !loopback) {
    fprintf(stderr, "agentwire-bench: --source-ips needs a 127.x.x.x server address\n");
    return false;
  }
  if (o_.source_ips > 254) o_.source_ips = 254;
  cfg_.source_ips = o_.source_ips;
  std::string note;
  if (!raise_nofile(total + 64, note)) {
    fprintf(stderr,
            "agentwire-bench: %s; %llu connections need that many descriptors. Raise the limit "
            "(ulimit -n, needs CAP_SYS_RESOURCE above the hard limit) or use fewer connections.\n",
            note.c_str(), (unsigned long long)total);
    return false;
  }

  cfg_.connect_concurrency = std::max<uint32_t>(1, o_.connect_concurrency / uint32_t(o_.threads));
  cfg_.pipeline = o_.pipeline;
  cfg_.http_conns = o_.http_conns;
  // data = {"t":<~16 digits>,"pad":"<pad>"} = 31 bytes + pad
  cfg_.pad.assign(o_.payload > 31 ? size_t(o_.payload - 31) : 0, 'x');
  cfg_.channels.reserve(o_.channels);
  cfg_.pub_heads.reserve(o_.channels);
  if (o_.stream) {
    cfg_.body_a = "{\"delta\":\"t=";
    cfg_.body_b = " ";
    cfg_.body_c = "\"}";
  }
  for (uint64_t i = 0; i < o_.channels; ++i) {
    std::string id = o_.prefix + "-" + o_.scenario.substr(0, 1) + std::to_string(i);
    std::string path = "/api/agents/" + id + "/events";
    if (o_.stream) {
      // A workflow and an open stream per channel, before any subscriber connects.
      std::string wf, st;
      if (!setup_post("/api/workflows", "{\"agent_id\":\"" + id + "\",\"name\":\"bench\"}", "\"id\":", wf) ||
          !setup_post("/api/workflows/" + wf + "/streams", "{}", "\"stream_id\":", st)) {
        fprintf(stderr,
                "agentwire-bench: --stream setup failed for %s (does the server have workflow routes?)\n",
                id.c_str());
        return false;
      }
      path = "/api/streams/" + st + "/append";
    }
    cfg_.pub_heads.push_back("POST " + path + " HTTP/1.1\r\nHost: " + cfg_.host +
                             "\r\nContent-Type: application/json\r\nContent-Length: ");
    cfg_.channels.push_back(std::move(id));
  }
  for (int t = 0; t < o_.threads; ++t) {
    workers_.push_back(std::make_unique<Worker>(t, o_.threads, cfg_, &ptrs_));
    ptrs_.push_back(workers_.back().get());
  }
  for (auto& w : workers_) w->start();
  return true;
}

void Runner::assign_subs(const std::function<uint32_t(uint64_t)>& channel_of) {
  std::vector<std::vector<std::pair<uint32_t, uint32_t>>> per(workers_.size());
  for (uint64_t i = 0; i < o_.connections; ++i)
    per[i % workers_.size()].emplace_back(uint32_t(i), channel_of(i));
  for (size_t t = 0; t < workers_.size(); ++t) {
    Worker* w = workers_[t].get();
    auto& v = per[t];
    w->call([w, &v] { w->add_subs(v); });
  }
}

// One blocking HTTP/1.1 POST for setup (not on any measured path); takes the string value after `key`
// from a 2xx answer.
bool Runner::setup_post(const std::string& path, const std::string& body, const std::string& key,
                        std::string& value) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool ok = false;
  SSL* ssl = nullptr;
  bool connected = connect(fd, reinterpret_cast<const sockaddr*>(&cfg_.server), sizeof cfg_.server) == 0;
  if (connected && cfg_.tls) {
    ssl = SSL_new(cfg_.tls);
    SSL_set_fd(ssl, fd);
    connected = SSL_connect(ssl) == 1;
  }
  // Blocking: SSL_write/SSL_read or write/read, whole.
  auto put = [&](const std::string& r) {
    if (!ssl) return write(fd, r.data(), r.size()) == ssize_t(r.size());
    size_t n = 0;
    return SSL_write_ex(ssl, r.data(), r.size(), &n) == 1 && n == r.size();
  };
  auto get = [&](char* b, size_t n) -> ssize_t {
    if (!ssl) return read(fd, b, n);
    size_t got = 0;
    return SSL_read_ex(ssl, b, n, &got) == 1 ? ssize_t(got) : 0;
  };
  if (connected) {
    std::string req = "POST " + path + " HTTP/1.1\r\nHost: " + cfg_.host +
                      "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                      std::to_string(body.size()) + "\r\n\r\n" + body;
    if (put(req)) {
      std::string resp;
      char buf[4096];
      ssize_t n;
      while ((n = get(buf, sizeof buf)) > 0) resp.append(buf, size_t(n));
      std::string_view v;
      ok = resp.rfind("HTTP/1.1 2", 0) == 0 && find_str(resp.data(), resp.data() + resp.size(), key, v);
      if (ok) value = std::string(v);
    }
  }
  if (ssl) SSL_free(ssl);
  close(fd);
  return ok;
}

bool Runner::wait_for(const std::function<bool()>& pred, double timeout_s) {
  int64_t deadline = mono_ns() + int64_t(timeout_s * 1e9);
  while (!pred()) {
    if (mono_ns() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return true;
}

Counters Runner::sum_counters() {
  Counters t;
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    Counters c = w->call([w] { return w->c; });
    t.connected += c.connected;
    t.connect_failed += c.connect_failed;
    t.closed_unexpected += c.closed_unexpected;
    t.received += c.received;
    t.duplicates += c.duplicates;
    t.out_of_order += c.out_of_order;
    t.gaps += c.gaps;
    t.parse_errors += c.parse_errors;
    t.control_frames += c.control_frames;
    t.snapshots += c.snapshots;
    t.server_errors += c.server_errors;
    t.pings += c.pings;
    t.reads += c.reads;
    t.no_timestamp += c.no_timestamp;
    t.not_recovered += c.not_recovered;
    t.replayed_total += c.replayed_total;
    t.complete += c.complete;
    t.sent += c.sent;
    t.acked += c.acked;
    t.http_errors += c.http_errors;
    t.resent += c.resent;
    t.last_connected_ns = std::max(t.last_connected_ns, c.last_connected_ns);
    t.last_receive_ns = std::max(t.last_receive_ns, c.last_receive_ns);
    t.last_ack_ns = std::max(t.last_ack_ns, c.last_ack_ns);
    t.last_complete_ns = std::max(t.last_complete_ns, c.last_complete_ns);
    t.pub_end_ns = std::max(t.pub_end_ns, c.pub_end_ns);
    if (c.first_receive_ns && (!t.first_receive_ns || c.first_receive_ns < t.first_receive_ns))
      t.first_receive_ns = c.first_receive_ns;
  }
  return t;
}

ConnectResult Runner::connect_phase(bool resume, uint64_t target) {
  ConnectResult r;
  r.target = target;
  int64_t t0 = mono_ns();
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    w->call([w, resume] { w->connect_subs(resume); });
  }
  bool done = wait_for([&] { return sum(&Progress::connected) + sum(&Progress::connect_failed) >= target; },
                       o_.connect_timeout);
  int64_t last = 0;
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    w->call([&] {
      r.hist.merge(w->connect_time);
      r.ok += w->c.connected;
      r.failed += w->c.connect_failed;
      last = std::max(last, w->c.last_connected_ns);
      if (!w->first_error.empty()) errors_.push_back(w->first_error), w->first_error.clear();
    });
  }
  r.seconds = last > t0 ? double(last - t0) / 1e9 : 0;
  if (!done)
    error("connect timeout: " + std::to_string(r.ok) + " of " + std::to_string(target) + " connected after " +
          fmt_num(o_.connect_timeout) + " s");
  if (r.failed) error(std::to_string(r.failed) + " connections failed");
  return r;
}

PublishResult Runner::publish_phase(PubMode mode, double rate, double duration, uint64_t count,
                                    uint64_t deliveries_per_publish) {
  PublishResult r;
  int64_t start = mono_ns() + 2000000;
  int64_t end = start + int64_t(duration * 1e9);
  size_t T = workers_.size();
  for (size_t t = 0; t < T; ++t) {
    PubPlan p;
    p.mode = mode;
    p.start_ns = start;
    p.end_ns = end;
    p.rate = rate / double(T);
    p.inflight = o_.inflight;
    p.deliveries_per_publish = deliveries_per_publish;
    if (mode == PubMode::Count) {
      if (t != 0) continue;  // exact counts: one publisher
      for (uint32_t c = 0; c < cfg_.channels.size(); ++c) p.channels.push_back(c);
      p.count = count;
    } else if (cfg_.channels.size() == 1) {
      p.channels.push_back(0);
    } else {
      // channel c's subscriber lives in worker c % T: publish from the same worker
      for (uint32_t c = uint32_t(t); c < cfg_.channels.size(); c += uint32_t(T)) p.channels.push_back(c);
    }
    Worker* w = workers_[t].get();
    w->call([w, &p] { w->start_publish(std::move(p)); });
  }
  double limit = (mode == PubMode::Count ? 0 : duration) + o_.drain_timeout + 30;
  bool done = wait_for(
      [&] {
        for (auto& w : workers_)
          if (w->progress.pub_active.load(std::memory_order_relaxed) ||
              w->progress.outstanding.load(std::memory_order_relaxed))
            return false;
        return true;
      },
      limit);
  if (!done) error("publishing did not finish (answers missing)");
  int64_t last_ack = 0;
  r.final_seq.assign(cfg_.channels.size(), 0);
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    w->call([&] {
      for (size_t c = 0; c < r.final_seq.size(); ++c)
        r.final_seq[c] = std::max(r.final_seq[c], w->final_seq[c]);
      r.sent += w->c.sent;
      r.acked += w->c.acked;
      r.errors += w->c.http_errors;
      last_ack = std::max(last_ack, w->c.last_ack_ns);
    });
  }
  r.seconds = last_ack > start ? double(last_ack - start) / 1e9 : 0;
  if (r.errors) error(std::to_string(r.errors) + " publishes failed");
  return r;
}

DeliveryResult Runner::drain_phase(const std::vector<uint64_t>& final_seq, int64_t start_ns) {
  DeliveryResult d;
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    Expectation e = w->call([w, &final_seq] { return w->expectation(final_seq); });
    d.exp.expected += e.expected;
    d.exp.subs += e.subs;
  }
  d.drained = wait_for([&] { return sum(&Progress::received) >= d.exp.expected; }, o_.drain_timeout);
  // a short grace period to catch duplicates that follow the last expected message
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  d.exp = Expectation();
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    w->call([&] {
      Expectation e = w->expectation(final_seq);
      d.exp.expected += e.expected;
      d.exp.subs += e.subs;
      d.exp.incomplete += e.incomplete;
      d.exp.beyond += e.beyond;
      d.latency.merge(w->latency);
      if (!w->first_error.empty()) errors_.push_back(w->first_error), w->first_error.clear();
    });
  }
  d.c = sum_counters();
  d.seconds = d.c.last_receive_ns > start_ns ? double(d.c.last_receive_ns - start_ns) / 1e9 : 0;
  return d;
}

void Runner::report_connect(const char* what, const ConnectResult& r, J& j) {
  say("%-9s %llu/%llu connected in %.3f s (%.0f/s), per connection p50 %.2f ms p99 %.2f ms max %.2f ms, "
      "failed %llu",
      what, (unsigned long long)r.ok, (unsigned long long)r.target, r.seconds,
      r.seconds > 0 ? double(r.ok) / r.seconds : 0.0, ms(r.hist.quantile(0.5)), ms(r.hist.quantile(0.99)),
      ms(r.hist.max()), (unsigned long long)r.failed);
  J c;
  c.u("connections", r.target)
      .u("connected", r.ok)
      .u("failed", r.failed)
      .num("total_s", r.seconds)
      .num("per_s", r.seconds > 0 ? double(r.ok) / r.seconds : 0)
      .num("p50_ms", ms(r.hist.quantile(0.5)))
      .num("p99_ms", ms(r.hist.quantile(0.99)))
      .num("max_ms", ms(r.hist.max()));
  j.obj(what, c);
}

void Runner::report_delivery(const PublishResult& p, const DeliveryResult& d, J& j, bool with_latency) {
  uint64_t lost = d.exp.expected > d.c.received ? d.exp.expected - d.c.received : 0;
  double pub_rate = p.seconds > 0 ? double(p.acked) / p.seconds : 0;
  double del_rate = d.seconds > 0 ? double(d.c.received) / d.seconds : 0;
  say("publish   %llu sent, %llu answered 202 in %.3f s = %.0f publishes/s, errors %llu",
      (unsigned long long)p.sent, (unsigned long long)p.acked, p.seconds, pub_rate,
      (unsigned long long)p.errors);
  say("delivery  %llu of %llu expected in %.3f s = %.0f msg/s; lost %llu, duplicates %llu, out-of-order "
      "%llu, "
      "beyond-acked %llu, subscribers lost %llu%s",
      (unsigned long long)d.c.received, (unsigned long long)d.exp.expected, d.seconds, del_rate,
      (unsigned long long)lost, (unsigned long long)d.c.duplicates, (unsigned long long)d.c.out_of_order,
      (unsigned long long)d.exp.beyond, (unsigned long long)d.c.closed_unexpected,
      d.drained ? "" : " (drain timed out)");
  if (with_latency)
    say("latency   publish->receipt p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, max %.3f ms (n=%llu)",
        ms(d.latency.quantile(0.5)), ms(d.latency.quantile(0.99)), ms(d.latency.quantile(0.999)),
        ms(d.latency.max()), (unsigned long long)d.latency.count());
  J pj;
  pj.u("sent", p.sent)
      .u("acked", p.acked)
      .u("errors", p.errors)
      .num("seconds", p.seconds)
      .num("per_s", pub_rate);
  j.obj("publish", pj);
  J dj;
  dj.u("subscribers", d.exp.subs)
      .u("expected", d.exp.expected)
      .u("received", d.c.received)
      .u("lost", lost)
      .u("duplicates", d.c.duplicates)
      .u("out_of_order", d.c.out_of_order)
      .u("gaps", d.c.gaps)
      .u("beyond_acked", d.exp.beyond)
      .u("subscribers_lost", d.c.closed_unexpected)
      .u("snapshots", d.c.snapshots)
      .u("server_error_frames", d.c.server_errors)
      .u("parse_errors", d.c.parse_errors)
      .u("no_timestamp", d.c.no_timestamp)
      .u("reads", d.c.reads)
      .u("pings", d.c.pings)
      .num("seconds", d.seconds)
      .num("per_s", del_rate)
      .b("drained", d.drained);
  j.obj("delivery", dj);
  j.obj("latency_ms", hist_json_ms(d.latency));
  if (lost) error(std::to_string(lost) + " messages lost");
  if (d.c.duplicates) error(std::to_string(d.c.duplicates) + " duplicate messages");
  if (d.c.out_of_order) error(std::to_string(d.c.out_of_order) + " out-of-order messages");
  if (d.exp.beyond) error(std::to_string(d.exp.beyond) + " messages beyond the acknowledged seq");
  if (d.c.closed_unexpected) error(std::to_string(d.c.closed_unexpected) + " subscribers disconnected");
  if (d.c.parse_errors) error(std::to_string(d.c.parse_errors) + " unparsable frames");
  if (d.c.server_errors) error(std::to_string(d.c.server_errors) + " error frames from the server");
  if (d.c.no_timestamp)
    error(std::to_string(d.c.no_timestamp) +
          " events without the embedded \"t\" (data not delivered as published?)");
}

void Runner::report_generator(double cpu_s, double wall_s, J& j) {
  double util = wall_s > 0 ? cpu_s / wall_s : 0;
  say("generator %.2f CPU-s in %.2f s = %.0f%% of one core (%d thread%s)%s", cpu_s, wall_s, util * 100,
      o_.threads, o_.threads > 1 ? "s" : "",
      util > 0.9 * o_.threads ? " -- near saturation: the load generator may be the bottleneck" : "");
  if (util > 0.9 * o_.threads) notes_.push_back("load generator near CPU saturation during the measurement");
  J g;
  g.num("cpu_s", cpu_s).num("wall_s", wall_s).num("cpu_util", util).u("threads", uint64_t(o_.threads));
  j.obj("generator", g);
}

int Runner::scenario_idle(J& j) {
  int pid = o_.server_pid ? o_.server_pid : find_listener_pid(port_);
  long before = pid ? read_rss_kb(pid) : -1;
  assign_subs([&](uint64_t i) { return uint32_t(i % o_.channels); });
  ConnectResult cr = connect_phase(false, o_.connections);
  report_connect("connect", cr, j);
  std::this_thread::sleep_for(std::chrono::milliseconds(int64_t(o_.settle * 1000)));
  long after = pid ? read_rss_kb(pid) : -1;
  Counters c = sum_counters();
  J m;
  m.u("server_pid", uint64_t(pid));
  if (before >= 0 && after >= 0 && cr.ok) {
    double per = double(after - before) * 1024.0 / double(cr.ok);
    say("memory    server pid %d RSS %ld kB -> %ld kB: %.0f bytes per connection (%llu connections)", pid,
        before, after, per, (unsigned long long)cr.ok);
    m.num("rss_before_kb", double(before))
        .num("rss_after_kb", double(after))
        .num("bytes_per_connection", per);
  } else {
    say("memory    server RSS not available (pass --server-pid)");
    notes_.push_back("server RSS not available");
  }
  j.obj("memory", m);
  if (c.closed_unexpected) error(std::to_string(c.closed_unexpected) + " connections dropped while idle");
  return 0;
}

int Runner::scenario_fanout(J& j, bool fanout) {
  if (fanout)
    assign_subs([](uint64_t) { return 0u; });
  else
    assign_subs([](uint64_t i) { return uint32_t(i); });
  ConnectResult cr = connect_phase(false, o_.connections);
  report_connect("connect", cr, j);
  if (!cr.ok) return 1;
  MuteSubscribers mute;
  int pid = o_.server_pid ? o_.server_pid : find_listener_pid(port_);
  long rss_before = -1;
  if (o_.slow) {
    std::string err;
    if (!mute.open(cfg_.server, cfg_.host, cfg_.channels[0], o_.slow, err)) {
      error(err);
      return 1;
    }
    rss_before = pid ? read_rss_kb(pid) : -1;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(int64_t(o_.settle * 1000)));
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    w->call([w] { w->reset_measurement(); });
  }
  int64_t start = mono_ns() + 2000000;
  double cpu0 = process_cpu_s();
  PubMode mode = o_.rate > 0 ? PubMode::Rate : PubMode::Max;
  PublishResult pr = publish_phase(mode, o_.rate, o_.duration, 0, fanout ? cr.ok : 1);
  DeliveryResult dr = drain_phase(pr.final_seq, start);
  double wall = double(mono_ns() - start) / 1e9;
  report_delivery(pr, dr, j, true);
  report_generator(process_cpu_s() - cpu0, wall, j);
  if (o_.slow) report_slow(mute, pid, rss_before, j);
  return 0;
}

void Runner::report_slow(MuteSubscribers& mute, int pid, long rss_before, J& j) {
  long rss_after = pid ? read_rss_kb(pid) : -1;
  MuteSubscribers::Outcome o = mute.inspect(10);
  say("slow      %llu subscribers read nothing: closed by the server with 1008 %llu, closed otherwise %llu, "
      "still open %llu (%llu bytes were waiting for them); server RSS %ld kB before publishing, %ld kB after",
      (unsigned long long)mute.size(), (unsigned long long)o.closed_policy,
      (unsigned long long)o.closed_other, (unsigned long long)o.still_open, (unsigned long long)o.bytes_read,
      rss_before, rss_after);
  J sj;
  sj.u("subscribers", mute.size())
      .u("closed_1008", o.closed_policy)
      .u("closed_other", o.closed_other)
      .u("still_open", o.still_open)
      .u("bytes_read_after", o.bytes_read)
      .num("rss_before_kb", double(rss_before))
      .num("rss_after_kb", double(rss_after));
  j.obj("slow", sj);
}

int Runner::scenario_resume(J& j) {
  const uint64_t K = o_.channels;
  assign_subs([&](uint64_t i) { return uint32_t(i % K); });
  // 1. a few events first, so that the resume position is not 0
  PublishResult pre = publish_phase(PubMode::Count, 0, 0, o_.pre * K, 1);
  // 2. subscribe and record epoch/seq from `connected`
  ConnectResult cr = connect_phase(false, o_.connections);
  report_connect("connect", cr, j);
  if (!cr.ok) return 1;
  // 3. disconnect everyone
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    w->call([w] { w->close_subs(); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // 4. publish the missed events
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    w->call([w] { w->reset_measurement(); });
  }
  PublishResult missed = publish_phase(PubMode::Count, 0, 0, o_.missed * K, 1);
  say("missed    %llu events published while disconnected (%llu per channel, %llu channels) in %.3f s",
      (unsigned long long)missed.acked, (unsigned long long)o_.missed, (unsigned long long)K, missed.seconds);
  // 5. everyone reconnects at once with ?since=S&epoch=E
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    w->call([w, &missed] { w->set_targets(missed.final_seq, true); });
  }
  int64_t t0 = mono_ns();
  ConnectResult rr = connect_phase(true, cr.ok);
  bool all = wait_for([&] { return sum(&Progress::complete) >= cr.ok; }, o_.drain_timeout);
  Histogram complete;
  uint64_t complete_n = 0;
  int64_t last_complete = 0;
  for (auto& wp : workers_) {
    Worker* w = wp.get();
    w->call([&] {
      complete.merge(w->complete_time);
      complete_n += w->c.complete;
      last_complete = std::max(last_complete, w->c.last_complete_ns);
    });
  }
  double all_s = last_complete > t0 ? double(last_complete - t0) / 1e9 : 0;
  report_connect("reconnect", rr, j);
  Counters c = sum_counters();
  say("resume    %llu/%llu clients had all %llu missed events %.3f s after reconnecting (per client p50 %.2f "
      "ms, "
      "p99 %.2f ms); recovered %llu, not recovered %llu, replayed %llu",
      (unsigned long long)complete_n, (unsigned long long)cr.ok, (unsigned long long)o_.missed, all_s,
      ms(complete.quantile(0.5)), ms(complete.quantile(0.99)), (unsigned long long)(rr.ok - c.not_recovered),
      (unsigned long long)c.not_recovered, (unsigned long long)c.replayed_total);
  // 6. one live event per channel after the replay: the switch from replay to live must work too
  PublishResult live = publish_phase(PubMode::Count, 0, 0, K, 1);
  // the publish line describes the missed events; errors of all three publishing phases count
  PublishResult shown = missed;
  shown.errors = pre.errors + missed.errors + live.errors;
  DeliveryResult dr = drain_phase(live.final_seq, t0);
  report_delivery(shown, dr, j, true);
  J rj;
  rj.u("clients", cr.ok)
      .u("missed_per_channel", o_.missed)
      .u("complete", complete_n)
      .num("all_complete_s", all_s)
      .num("complete_p50_ms", ms(complete.quantile(0.5)))
      .num("complete_p99_ms", ms(complete.quantile(0.99)))
      .num("complete_max_ms", ms(complete.max()))
      .u("not_recovered", c.not_recovered)
      .u("replayed", c.replayed_total);
  j.obj("resume", rj);
  if (!all) error("not every client received all missed events within " + fmt_num(o_.drain_timeout) + " s");
  if (c.not_recovered) error(std::to_string(c.not_recovered) + " clients were not recovered");
  if (c.replayed_total != rr.ok * o_.missed)
    error("connected.replayed adds up to " + std::to_string(c.replayed_total) + ", expected " +
          std::to_string(rr.ok * o_.missed));
  return 0;
}

int Runner::run() {
  if (o_.json) g_human = stderr;
  if (!setup()) return 2;
  say("agentwire-bench %s  url %s  connections %llu  channels %llu  rate %s  duration %s s  threads %d  "
      "source-ips %u  prefix %s",
      o_.scenario.c_str(), o_.url.c_str(), (unsigned long long)o_.connections,
      (unsigned long long)o_.channels, o_.rate > 0 ? fmt_num(o_.rate).c_str() : "max",
      fmt_num(o_.duration).c_str(), o_.threads, o_.source_ips, o_.prefix.c_str());
  J j;
  j.str("scenario", o_.scenario).str("url", o_.url);
  J params;
  params.u("connections", o_.connections)
      .u("channels", o_.channels)
      .num("rate", o_.rate)
      .num("duration_s", o_.duration)
      .u("inflight", o_.inflight)
      .u("pipeline", o_.pipeline)
      .u("http_conns", o_.http_conns)
      .u("payload_bytes", o_.payload)
      .b("stream", o_.stream)
      .u("threads", uint64_t(o_.threads))
      .u("source_ips", o_.source_ips)
      .u("missed", o_.missed)
      .str("prefix", o_.prefix);
  j.obj("params", params);
  if (o_.scenario == "idle")
    scenario_idle(j);
  else if (o_.scenario == "fanout")
    scenario_fanout(j, true);
  else if (o_.scenario == "channels")
    scenario_fanout(j, false);
  else
    scenario_resume(j);
  for (auto& w : workers_) w->stop();

  for (const auto& n : notes_) say("note      %s", n.c_str());
  for (const auto& e : errors_) say("error     %s", e.c_str());
  say("result    %s", ok_ ? "OK" : "FAILED");
  std::string errs = "[";
  for (size_t i = 0; i < errors_.size(); ++i) errs += (i ? ",\"" : "\"") + json_escape(errors_[i]) + "\"";
  errs += "]";
  j.raw("errors", errs).b("ok", ok_);
  if (o_.json) {
    fputs(j.str().c_str(), stdout);
    fputc('\n', stdout);
    fflush(stdout);
  }
  return ok_ ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  Options o = parse_args(argc, argv);
  Runner r(std::move(o));
  return r.run();
}
