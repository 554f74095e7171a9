#include "worker.hpp"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>

namespace awb {

namespace {

// With --url https://, a connection's bytes go through OpenSSL; these keep read()/write()'s
// conventions (-1 with errno EAGAIN when it would block, 0 at the end) so the loops stay the same.
ssize_t tls_result(ssl_st* ssl, int r) {
  switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      errno = EAGAIN;
      return -1;
    case SSL_ERROR_ZERO_RETURN:
      return 0;
    case SSL_ERROR_SYSCALL:
      if (errno == 0) return 0;  // EOF without close_notify
      return -1;
    default:
      errno = EPROTO;
      return -1;
  }
}

ssize_t io_read(ssl_st* ssl, int fd, char* p, size_t n) {
  if (!ssl) return read(fd, p, n);
  size_t got = 0;
  errno = 0;
  if (SSL_read_ex(ssl, p, n, &got) == 1) return ssize_t(got);
  return tls_result(ssl, 0);
}

ssize_t io_write(ssl_st* ssl, int fd, const char* p, size_t n) {
  if (!ssl) return write(fd, p, n);
  size_t put = 0;
  errno = 0;
  if (SSL_write_ex(ssl, p, n, &put) == 1) return ssize_t(put);
  return tls_result(ssl, 0);
}

// One step of a client handshake: 1 done, 0 waiting for the socket, -1 failed.
int tls_step(ssl_st* ssl) {
  int r = SSL_do_handshake(ssl);
  if (r == 1) return 1;
  int e = SSL_get_error(ssl, r);
  return e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

void free_tls(ssl_st*& ssl) {
  if (ssl) SSL_free(ssl);
  ssl = nullptr;
}

}  // namespace

namespace {
enum : uint8_t { kKindSub = 1, kKindHttp = 2, kKindEvent = 3, kKindTimer = 4 };
constexpr size_t kScratchInit = 256 * 1024;
constexpr uint64_t kMaxFrame = 64ull << 20;

bool is_control_type(std::string_view t) {
  return t == "heartbeat" || t == "pong" || t == "connected";
}
}  // namespace

Worker::Worker(int id, int nworkers, const Config& cfg, const std::vector<Worker*>* all)
    : id_(id),
      nworkers_(nworkers),
      cfg_(cfg),
      all_(all),
      rng_(uint64_t(mono_ns()) ^ (uint64_t(id + 1) * 0x9E3779B97F4A7C15ull) ^ uint64_t(getpid())) {
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  evfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  tfd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  ev_handle_.kind = kKindEvent;
  timer_handle_.kind = kKindTimer;
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.ptr = &ev_handle_;
  epoll_ctl(ep_, EPOLL_CTL_ADD, evfd_, &e);
  e.data.ptr = &timer_handle_;
  epoll_ctl(ep_, EPOLL_CTL_ADD, tfd_, &e);
  scratch_.resize(kScratchInit);
  final_seq.assign(cfg_.channels.size(), 0);
  http_.resize(cfg_.http_conns);
  for (uint32_t i = 0; i < http_.size(); ++i) {
    http_[i].kind = kKindHttp;
    http_[i].idx = i;
    http_[i].ring.assign(cfg_.pipeline, 0);
  }
}

Worker::~Worker() {
  stop();
  for (auto& s : subs) {
    free_tls(s.ssl);
    if (s.fd >= 0) close(s.fd);
  }
  for (auto& h : http_) {
    free_tls(h.ssl);
    if (h.fd >= 0) close(h.fd);
  }
  if (ep_ >= 0) close(ep_);
  if (evfd_ >= 0) close(evfd_);
  if (tfd_ >= 0) close(tfd_);
}

void Worker::start() {
  thread_ = std::thread([this] { run(); });
}

void Worker::stop() {
  if (!thread_.joinable()) return;
  post([this] { quit_ = true; });
  thread_.join();
}

void Worker::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    tasks_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  ssize_t r = write(evfd_, &one, sizeof one);
  (void)r;
}

void Worker::run_tasks() {
  uint64_t v;
  ssize_t r = read(evfd_, &v, sizeof v);
  (void)r;
  std::vector<std::function<void()>> batch;
  {
    std::lock_guard<std::mutex> lk(mu_);
    batch.swap(tasks_);
  }
  now_ = mono_ns();
  for (auto& f : batch) f();
}

void Worker::note_error(const std::string& e) {
  if (first_error.empty()) first_error = e;
}

void Worker::run() {
  std::vector<epoll_event> evs(1024);
  while (!quit_) {
    int n = epoll_wait(ep_, evs.data(), int(evs.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      break;
    }
    now_ = mono_ns();
    for (int i = 0; i < n; ++i) {
      Handle* h = static_cast<Handle*>(evs[size_t(i)].data.ptr);
      uint32_t e = evs[size_t(i)].events;
      switch (h->kind) {
        case kKindSub:
          on_sub_event(*static_cast<Sub*>(h), e);
          break;
        case kKindHttp:
          on_http_event(*static_cast<HttpConn*>(h), e);
          break;
        case kKindEvent:
          run_tasks();
          break;
        case kKindTimer: {
          uint64_t x;
          ssize_t r = read(tfd_, &x, sizeof x);
          (void)r;
          break;
        }
        default:
          break;
      }
    }
    if (plan_.mode != PubMode::None || outstanding_) pump_publish();
    if (connect_cursor_ < connect_order_.size()) pump_connects();
    publish_progress();
  }
  publish_progress();
}

void Worker::publish_progress() {
  auto rl = std::memory_order_relaxed;
  progress.connected.store(c.connected, rl);
  progress.connect_failed.store(c.connect_failed, rl);
  progress.closed.store(c.closed_unexpected, rl);
  progress.received.store(c.received, rl);
  progress.sent.store(c.sent, rl);
  progress.http_errors.store(c.http_errors, rl);
  progress.outstanding.store(outstanding_, rl);
  progress.complete.store(c.complete, rl);
  progress.acked.store(c.acked, std::memory_order_release);
}

// Sockets are edge-triggered: a read shorter than the buffer means the socket is drained (data
// arriving later raises a new edge), which spares epoll re-polling every ready socket.
void Worker::set_events(int fd, Handle* h, uint32_t ev) {
  epoll_event e{};
  e.events = ev | EPOLLET;
  e.data.ptr = h;
  epoll_ctl(ep_, EPOLL_CTL_MOD, fd, &e);
}

void Worker::ensure_scratch(size_t need) {
  if (scratch_.size() < need) scratch_.resize(std::max(scratch_.size() * 2, need));
}

int Worker::bind_source(int fd, uint32_t index) {
  if (cfg_.source_ips <= 1) return 0;
  int one = 1;
  setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = 0;
  a.sin_addr.s_addr = htonl((127u << 24) + 1u + index % cfg_.source_ips);
  return bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
}

// ---------------------------------------------------------------------------------------------
// Subscribers

void Worker::add_subs(const std::vector<std::pair<uint32_t, uint32_t>>& index_channel) {
  subs.clear();
  subs.reserve(index_channel.size());  // never grows afterwards: epoll holds pointers
  for (auto [idx, ch] : index_channel) {
    subs.emplace_back();
    Sub& s = subs.back();
    s.kind = kKindSub;
    s.index = idx;
    s.channel = ch;
  }
}

void Worker::connect_subs(bool resume) {
  connect_order_.clear();
  for (uint32_t i = 0; i < subs.size(); ++i) {
    Sub& s = subs[i];
    if (s.state == kOpen || s.state == kConnecting || s.state == kHandshake) continue;
    if (resume && !s.counted) continue;  // never got a session: nothing to resume
    s.resuming = resume;
    connect_order_.push_back(i);
  }
  connect_cursor_ = 0;
  pump_connects();
  publish_progress();
}

void Worker::pump_connects() {
  while (connect_cursor_ < connect_order_.size() && connecting_ < cfg_.connect_concurrency) {
    start_connect(subs[connect_order_[connect_cursor_++]]);
  }
}

void Worker::start_connect(Sub& s) {
  s.got_connected = false;
  s.in_frag = false;
  s.closing = false;
  s.complete = false;
  s.inbuf.clear();
  s.outbuf.clear();
  s.fragbuf.clear();
  s.t_start = mono_ns();
  ++connecting_;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    sub_failed(s, std::string("socket: ") + strerror(errno));
    return;
  }
  s.fd = fd;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (bind_source(fd, s.index) != 0) {
    sub_failed(s, std::string("bind: ") + strerror(errno));
    return;
  }
  int r = connect(fd, reinterpret_cast<const sockaddr*>(&cfg_.server), sizeof cfg_.server);
  if (r != 0 && errno != EINPROGRESS) {
    sub_failed(s, std::string("connect: ") + strerror(errno));
    return;
  }
  s.state = kConnecting;
  epoll_event e{};
  e.events = EPOLLOUT | EPOLLET;
  e.data.ptr = &s;
  epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e);
}

void Worker::sub_failed(Sub& s, const std::string& why) {
  note_error("subscriber " + std::to_string(s.index) + ": " + why);
  free_tls(s.ssl);
  if (s.fd >= 0) close(s.fd);
  s.fd = -1;
  s.state = kFailed;
  ++c.connect_failed;
  if (connecting_) --connecting_;
}

void Worker::drop_sub(Sub& s, SubState st) {
  free_tls(s.ssl);
  if (s.fd >= 0) close(s.fd);
  s.fd = -1;
  s.state = st;
}

void Worker::sub_lost(Sub& s, const std::string& why) {
  if (!s.got_connected) {
    sub_failed(s, why);
    return;
  }
  if (!s.closing) {
    ++c.closed_unexpected;
    note_error("subscriber " + std::to_string(s.index) + " lost: " + why);
  }
  drop_sub(s, kClosed);
}

void Worker::on_sub_event(Sub& s, uint32_t ev) {
  if (s.fd < 0) return;
  if (s.state == kConnecting) {
    if (!s.ssl && (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
      int err = 0;
      socklen_t l = sizeof err;
      getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &l);
      if (err) {
        sub_failed(s, std::string("connect: ") + strerror(err));
        return;
      }
      if (!cfg_.tls) return send_handshake(s);
      s.ssl = SSL_new(cfg_.tls);
      SSL_set_fd(s.ssl, s.fd);
      SSL_set_connect_state(s.ssl);
      set_events(s.fd, &s, EPOLLIN | EPOLLOUT);
    }
    if (s.ssl) {
      int r = tls_step(s.ssl);
      if (r < 0) return sub_failed(s, "TLS handshake failed");
      if (r > 0) send_handshake(s);
    }
    return;
  }
  if (ev & EPOLLOUT) flush_sub(s);
  if (s.fd >= 0 && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) read_sub(s);
}

void Worker::send_handshake(Sub& s) {
  uint8_t key_raw[16];
  uint64_t a = rng_.next(), b = rng_.next();
  memcpy(key_raw, &a, 8);
  memcpy(key_raw + 8, &b, 8);
  std::string key = base64(key_raw, 16);
  s.accept = ws_accept_for(key);
  std::string req;
  req.reserve(256 + s.epoch.size());
  req += "GET /ws/agents/";
  req += cfg_.channels[s.channel];
  if (s.resuming) {
    req += "?since=";
    req += std::to_string(s.since);
    req += "&epoch=";
    for (char ch : s.epoch) {  // server-issued token, percent-encoded outside the unreserved set
      uint8_t u = uint8_t(ch);
      if (isalnum(u) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
        req += ch;
      } else {
        static const char* hex = "0123456789ABCDEF";
        req += '%';
        req += hex[u >> 4];
        req += hex[u & 15];
      }
    }
  }
  req += " HTTP/1.1\r\nHost: ";
  req += cfg_.host;
  req += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
  req += key;
  req += "\r\nSec-WebSocket-Version: 13\r\n\r\n";
  s.state = kHandshake;
  set_events(s.fd, &s, EPOLLIN);
  send_sub(s, req.data(), req.size());
}

void Worker::send_sub(Sub& s, const char* p, size_t n) {
  if (s.fd < 0) return;
  if (s.outbuf.empty()) {
    ssize_t w = io_write(s.ssl, s.fd, p, n);
    if (w < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        sub_lost(s, std::string("write: ") + strerror(errno));
        return;
      }
      w = 0;
    }
    if (size_t(w) == n) return;
    s.outbuf.assign(p + w, n - size_t(w));
    set_events(s.fd, &s, EPOLLIN | EPOLLOUT);
    return;
  }
  s.outbuf.append(p, n);
}

void Worker::flush_sub(Sub& s) {
  if (s.outbuf.empty() || s.fd < 0) return;
  ssize_t w = io_write(s.ssl, s.fd, s.outbuf.data(), s.outbuf.size());
  if (w < 0) {
    if (errno != EAGAIN && errno != EINTR) sub_lost(s, std::string("write: ") + strerror(errno));
    return;
  }
  s.outbuf.erase(0, size_t(w));
  if (s.outbuf.empty()) set_events(s.fd, &s, EPOLLIN);
}

void Worker::send_control(Sub& s, uint8_t op, const char* p, size_t n) {
  if (n > 125) n = 125;
  char f[2 + 4 + 125];
  f[0] = char(0x80 | op);
  f[1] = char(0x80 | n);
  uint32_t m = uint32_t(rng_.next());
  memcpy(f + 2, &m, 4);
  for (size_t i = 0; i < n; ++i) f[6 + i] = char(p[i] ^ f[2 + (i & 3)]);
  send_sub(s, f, 6 + n);
}

void Worker::read_sub(Sub& s) {
  for (;;) {
    size_t off = s.inbuf.size();
    if (off) {
      ensure_scratch(off + 65536);
      memcpy(scratch_.data(), s.inbuf.data(), off);
    }
    size_t room = scratch_.size() - off;
    ssize_t r = io_read(s.ssl, s.fd, scratch_.data() + off, room);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      sub_lost(s, std::string("read: ") + strerror(errno));
      return;
    }
    if (r == 0) {
      sub_lost(s, "closed by server");
      return;
    }
    now_ = mono_ns();
    ++c.reads;
    size_t n = off + size_t(r);
    size_t used = consume_sub(s, scratch_.data(), n);
    if (s.fd < 0) return;
    if (used < n)
      s.inbuf.assign(scratch_.data() + used, n - used);
    else
      s.inbuf.clear();
    // A TLS read returns one record at most: only EAGAIN says the socket is drained.
    if (!s.ssl && size_t(r) < room) return;
  }
}

size_t Worker::consume_sub(Sub& s, char* p, size_t n) {
  size_t pos = 0;
  if (s.state == kHandshake) {
    const char* end = p + n;
    const char* he = find(p, end, "\r\n\r\n");
    if (!he) {
      if (n > 65536) sub_failed(s, "handshake response too large");
      return 0;
    }
    const char* eol = static_cast<const char*>(memchr(p, '\r', size_t(he - p) + 1));
    std::string status_line(p, size_t(eol - p));
    if (n < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
      sub_failed(s, "handshake refused: " + status_line);
      return n;
    }
    bool ok = false;
    for (const char* line = eol + 2; line < he;) {
      const char* le = find(line, he + 2, "\r\n");
      if (!le) break;
      if (ci_prefix(line, le, "sec-websocket-accept:")) {
        const char* v = skip_ws(line + 21, le);
        const char* ve = le;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) --ve;
        ok = std::string_view(v, size_t(ve - v)) == s.accept;
      }
      line = le + 2;
    }
    if (!ok) {
      sub_failed(s, "bad or missing Sec-WebSocket-Accept");
      return n;
    }
    s.state = kOpen;
    pos = size_t(he + 4 - p);
  }
  return pos + parse_frames(s, p + pos, n - pos);
}

size_t Worker::parse_frames(Sub& s, char* p, size_t n) {
  size_t pos = 0;
  while (n - pos >= 2) {
    uint8_t b0 = uint8_t(p[pos]), b1 = uint8_t(p[pos + 1]);
    bool fin = b0 & 0x80;
    uint8_t op = b0 & 0x0f;
    bool masked = b1 & 0x80;
    uint64_t len = b1 & 0x7f;
    size_t hdr = 2;
    if (len == 126) {
      if (n - pos < 4) break;
      len = (uint64_t(uint8_t(p[pos + 2])) << 8) | uint8_t(p[pos + 3]);
      hdr = 4;
    } else if (len == 127) {
      if (n - pos < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | uint8_t(p[pos + 2 + size_t(i)]);
      hdr = 10;
    }
    size_t mask_at = hdr;
    if (masked) hdr += 4;
    if (n - pos < hdr) break;
    if (len > kMaxFrame) {
      sub_lost(s, "frame too large");
      return n;
    }
    if (n - pos - hdr < len) break;
    char* payload = p + pos + hdr;
    if (masked) {  // servers must not mask, but tolerate it
      const char* m = p + pos + mask_at;
      for (size_t i = 0; i < len; ++i) payload[i] = char(payload[i] ^ m[i & 3]);
    }
    on_frame(s, fin, op, payload, size_t(len));
    if (s.fd < 0) return n;
    pos += hdr + size_t(len);
  }
  return pos;
}

void Worker::on_frame(Sub& s, bool fin, uint8_t op, const char* p, size_t n) {
  switch (op) {
    case 0x0:  // continuation
      if (!s.in_frag) {
        sub_lost(s, "unexpected continuation frame");
        return;
      }
      s.fragbuf.append(p, n);
      if (fin) {
        s.in_frag = false;
        on_message(s, s.fragbuf.data(), s.fragbuf.size());
        s.fragbuf.clear();
      }
      return;
    case 0x1:
    case 0x2:
      if (s.in_frag) {
        sub_lost(s, "new data frame inside a fragmented message");
        return;
      }
      if (fin) {
        on_message(s, p, n);
      } else {
        s.in_frag = true;
        s.fragbuf.assign(p, n);
      }
      return;
    case 0x8: {  // close: answer with the same status, then drop
      ++c.control_frames;
      send_control(s, 0x8, p, n >= 2 ? 2 : 0);
      std::string why = "close frame";
      if (n >= 2) why += " code " + std::to_string((uint8_t(p[0]) << 8) | uint8_t(p[1]));
      if (n > 2) why += " " + std::string(p + 2, n - 2);
      sub_lost(s, why);
      return;
    }
    case 0x9:
      ++c.pings;
      send_control(s, 0xA, p, n);
      return;
    case 0xA:
      return;
    default:
      sub_lost(s, "unknown opcode " + std::to_string(op));
      return;
  }
}

void Worker::on_connected(Sub& s, const char* p, const char* end) {
  uint64_t seq = 0, replayed = 0;
  if (!find_u64(p, end, "\"seq\":", seq)) {
    ++c.parse_errors;
    note_error("connected envelope without seq: " + std::string(p, std::min<size_t>(size_t(end - p), 300)));
  }
  std::string_view epoch;
  if (find_str(p, end, "\"epoch\":", epoch)) s.epoch.assign(epoch);
  const char* r = find(p, end, "\"recovered\":");
  bool recovered = r && *skip_ws(r + 12, end) == 't';
  find_u64(p, end, "\"replayed\":", replayed);

  s.got_connected = true;
  s.counted = true;
  if (s.resuming) {
    s.recovered = recovered;
    s.replayed = replayed;
    c.replayed_total += replayed;
    s.expect_from = s.since;
    if (recovered) {
      s.last = s.since;
    } else {
      ++c.not_recovered;
      s.last = seq;
    }
  } else {
    s.expect_from = seq;
    s.last = seq;
    s.since = seq;
  }
  s.holes = 0;
  ++c.connected;
  c.last_connected_ns = now_;
  connect_time.record(uint64_t(std::max<int64_t>(0, now_ - s.t_start)));
  if (connecting_) --connecting_;
  if (!s.complete && s.last >= s.target) {
    s.complete = true;
    ++c.complete;
    c.last_complete_ns = now_;
    complete_time.record(uint64_t(std::max<int64_t>(0, now_ - measure_start_ns)));
  }
}

void Worker::on_message(Sub& s, const char* p, size_t n) {
  const char* end = p + n;
  std::string_view type;
  const char* type_end = nullptr;  // closing quote of the type value
  if (n > 9 && memcmp(p, "{\"type\":\"", 9) == 0) {
    const char* q = p + 9;
    type_end = static_cast<const char*>(memchr(q, '"', n - 9));
    if (type_end) type = std::string_view(q, size_t(type_end - q));
  } else {
    find_str(p, end, "\"type\":", type);
  }
  if (!s.got_connected) {
    if (type != "connected") {
      ++c.parse_errors;
      note_error("first frame is not `connected`: " + std::string(p, std::min<size_t>(n, 300)));
    }
    on_connected(s, p, end);
    return;
  }
  if (!(type.size() == 5 && memcmp(type.data(), "bench", 5) == 0)) {
    if (type == "snapshot") {
      ++c.snapshots;
      return;
    }
    if (type == "error") {
      ++c.server_errors;
      note_error("server error frame: " + std::string(p, std::min<size_t>(n, 300)));
      return;
    }
    if (is_control_type(type)) {
      ++c.control_frames;
      return;
    }
  }
  // Fast path for the documented key order
  //   {"type":"T","agent_id":"A","seq":N,"ts":"TS","data":{"t":NS,...
  // with a plain substring search as the fallback for any other layout.
  constexpr std::string_view kAgent = ",\"agent_id\":\"";
  constexpr std::string_view kSeq = "\",\"seq\":";
  constexpr std::string_view kTs = ",\"ts\":\"";
  constexpr std::string_view kDataT = "\",\"data\":{\"t\":";
  uint64_t seq = 0;
  const char* after = nullptr;
  if (type_end && size_t(end - type_end) > 1 + kAgent.size() &&
      memcmp(type_end + 1, kAgent.data(), kAgent.size()) == 0) {
    const char* id = type_end + 1 + kAgent.size();
    const char* id_end = static_cast<const char*>(memchr(id, '"', size_t(end - id)));
    if (id_end && size_t(end - id_end) > kSeq.size() && memcmp(id_end, kSeq.data(), kSeq.size()) == 0)
      after = parse_u64(id_end + kSeq.size(), end, seq);
  }
  if (!after) after = find_u64(p, end, "\"seq\":", seq);
  if (!after) {
    ++c.parse_errors;
    return;
  }
  if (seq == s.last + 1) {
    s.last = seq;
  } else if (seq > s.last) {
    c.gaps += seq - s.last - 1;
    s.holes += seq - s.last - 1;
    s.last = seq;
  } else if (seq > s.expect_from && seq < s.last && s.holes > 0) {
    // late: fills a hole left earlier (without a per-seq bitmap a late message and a duplicate of
    // an older one can't be told apart; a hole that is open makes "late" the likely reading)
    --s.holes;
    ++c.out_of_order;
  } else {
    ++c.duplicates;
    return;
  }
  ++c.received;
  if (!c.first_receive_ns) c.first_receive_ns = now_;
  c.last_receive_ns = now_;
  if (seq > s.lat_from) {
    uint64_t t = 0;
    const char* tp = nullptr;
    if (size_t(end - after) > kTs.size() && memcmp(after, kTs.data(), kTs.size()) == 0) {
      const char* ts = after + kTs.size();
      const char* ts_end = static_cast<const char*>(memchr(ts, '"', size_t(end - ts)));
      if (ts_end && size_t(end - ts_end) > kDataT.size() && memcmp(ts_end, kDataT.data(), kDataT.size()) == 0)
        tp = parse_u64(ts_end + kDataT.size(), end, t);
    }
    if (!tp) tp = find_u64(after, end, "\"t\":", t);
    if (!tp) tp = find_u64(p, end, "\"t\":", t);
    if (!tp) tp = find_u64(p, end, "\"delta\":\"t=", t);  // --stream: the timestamp leads the delta
    if (tp) {
      int64_t d = now_ - int64_t(t);
      latency.record(d > 0 ? uint64_t(d) : 0);
    } else {
      ++c.no_timestamp;
    }
  }
  if (!s.complete && s.last >= s.target) {
    s.complete = true;
    ++c.complete;
    c.last_complete_ns = now_;
    complete_time.record(uint64_t(std::max<int64_t>(0, now_ - measure_start_ns)));
  }
}

void Worker::close_subs() {
  for (auto& s : subs) {
    if (s.fd < 0) continue;
    if (s.state == kOpen) {
      s.closing = true;
      static const char code[2] = {char(0x03), char(0xE8)};  // 1000
      send_control(s, 0x8, code, 2);
    }
    if (s.got_connected) s.since = s.last;
    drop_sub(s, kIdle);
    s.got_connected = false;
  }
  connect_order_.clear();
  connect_cursor_ = 0;
  connecting_ = 0;
  publish_progress();
}

void Worker::reset_measurement() {
  Counters keep = c;
  c = Counters();
  c.connected = keep.connected;
  c.connect_failed = keep.connect_failed;
  c.closed_unexpected = keep.closed_unexpected;
  c.last_connected_ns = keep.last_connected_ns;
  latency.reset();
  complete_time.reset();
  measure_start_ns = mono_ns();
  publish_progress();
}

void Worker::set_targets(const std::vector<uint64_t>& final_by_channel, bool latency_only_after) {
  measure_start_ns = mono_ns();
  for (auto& s : subs) {
    uint64_t f = final_by_channel[s.channel];
    s.target = f;
    s.complete = false;
    s.lat_from = latency_only_after ? f : 0;
  }
  c.complete = 0;
  complete_time.reset();
  connect_time.reset();
  c.connected = 0;
  c.connect_failed = 0;
  publish_progress();
}

Expectation Worker::expectation(const std::vector<uint64_t>& final_by_channel) const {
  Expectation e;
  for (const auto& s : subs) {
    if (!s.counted) continue;
    uint64_t f = final_by_channel[s.channel];
    ++e.subs;
    if (f > s.expect_from) e.expected += f - s.expect_from;
    if (s.last < f) ++e.incomplete;
    if (s.last > f) e.beyond += s.last - f;
  }
  return e;
}

// ---------------------------------------------------------------------------------------------
// HTTP publishing

void Worker::start_publish(PubPlan plan) {
  plan_ = std::move(plan);
  pub_sent_ = 0;
  chan_cursor_ = 0;
  progress.pub_active.store(true, std::memory_order_relaxed);
  int64_t tick = 1000000;
  if (plan_.mode == PubMode::Rate && plan_.rate > 0)
    tick = std::clamp<int64_t>(int64_t(1e9 / plan_.rate), 50000, 1000000);
  else if (plan_.mode == PubMode::Max && nworkers_ > 1)
    tick = 100000;
  arm_timer(tick);
  for (auto& h : http_)
    if (h.state == 0) http_connect(h);
  pump_publish();
  publish_progress();
}

void Worker::arm_timer(int64_t interval_ns) {
  itimerspec its{};
  its.it_interval.tv_sec = interval_ns / 1000000000;
  its.it_interval.tv_nsec = interval_ns % 1000000000;
  its.it_value = its.it_interval;
  timerfd_settime(tfd_, 0, &its, nullptr);
}

void Worker::finish_publish() {
  plan_.mode = PubMode::None;
  c.pub_end_ns = mono_ns();
  arm_timer(0);
  progress.pub_active.store(false, std::memory_order_relaxed);
}

void Worker::pump_publish() {
  if (plan_.mode == PubMode::None) {
    for (auto& h : http_)
      if (h.out_off < h.out.size() && h.state == 2) http_flush(h);
    return;
  }
  int64_t now = mono_ns();
  uint64_t allowed = 0;
  switch (plan_.mode) {
    case PubMode::Count:
      if (pub_sent_ >= plan_.count) {
        if (!outstanding_) {
          finish_publish();
          return;
        }
      } else {
        allowed = plan_.count - pub_sent_;
      }
      break;
    case PubMode::Rate: {
      if (now >= plan_.end_ns) {
        finish_publish();
        return;
      }
      if (now < plan_.start_ns) return;
      uint64_t due = uint64_t(double(now - plan_.start_ns) * plan_.rate / 1e9) + 1;
      allowed = due > pub_sent_ ? due - pub_sent_ : 0;
      break;
    }
    case PubMode::Max: {
      if (now >= plan_.end_ns) {
        finish_publish();
        return;
      }
      if (now < plan_.start_ns) return;
      uint64_t gs = c.sent, gd = c.received;
      for (Worker* w : *all_) {
        if (w == this) continue;
        gs += w->progress.sent.load(std::memory_order_relaxed);
        gd += w->progress.received.load(std::memory_order_relaxed);
      }
      uint64_t done = gd / std::max<uint64_t>(1, plan_.deliveries_per_publish);
      uint64_t inflight = gs > done ? gs - done : 0;
      allowed = plan_.inflight > inflight ? plan_.inflight - inflight : 0;
      break;
    }
    case PubMode::None:
      break;
  }
  const uint32_t nh = uint32_t(http_.size());
  while (allowed > 0 && !plan_.channels.empty()) {
    HttpConn* pick = nullptr;
    for (uint32_t k = 0; k < nh; ++k) {
      HttpConn& h = http_[(http_rr_ + k) % nh];
      if (h.state == 0) http_connect(h);
      if (h.state == 2 && h.count < cfg_.pipeline) {
        pick = &h;
        http_rr_ = (http_rr_ + k + 1) % nh;
        break;
      }
    }
    if (!pick) break;
    uint32_t ch = plan_.channels[chan_cursor_];
    if (++chan_cursor_ == plan_.channels.size()) chan_cursor_ = 0;
    append_request(*pick, ch);
    --allowed;
  }
  for (auto& h : http_)
    if (h.state == 2 && h.out_off < h.out.size()) http_flush(h);
}

void Worker::append_request(HttpConn& h, uint32_t ch) {
  char tb[24], lb[24];
  int tl = u64_to_str(uint64_t(mono_ns()), tb);
  size_t body = cfg_.body_a.size() + size_t(tl) + cfg_.body_b.size() + cfg_.pad.size() + cfg_.body_c.size();
  int ll = u64_to_str(body, lb);
  h.out.append(cfg_.pub_heads[ch]);
  h.out.append(lb, size_t(ll));
  h.out.append("\r\n\r\n", 4);
  h.out.append(cfg_.body_a);
  h.out.append(tb, size_t(tl));
  h.out.append(cfg_.body_b);
  h.out.append(cfg_.pad);
  h.out.append(cfg_.body_c);
  h.ring[(h.head + h.count) % cfg_.pipeline] = ch;
  ++h.count;
  ++outstanding_;
  ++pub_sent_;
  ++c.sent;
}

void Worker::http_connect(HttpConn& h) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    note_error(std::string("http socket: ") + strerror(errno));
    return;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  bind_source(fd, uint32_t(id_ * 1000) + h.idx);
  int r = connect(fd, reinterpret_cast<const sockaddr*>(&cfg_.server), sizeof cfg_.server);
  if (r != 0 && errno != EINPROGRESS) {
    note_error(std::string("http connect: ") + strerror(errno));
    close(fd);
    return;
  }
  h.fd = fd;
  h.state = 1;
  h.want_out = true;
  epoll_event e{};
  e.events = EPOLLIN | EPOLLOUT | EPOLLET;
  e.data.ptr = &h;
  epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &e);
}

void Worker::on_http_event(HttpConn& h, uint32_t ev) {
  if (h.fd < 0) return;
  if (h.state == 1) {
    if (!(ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t l = sizeof err;
    getsockopt(h.fd, SOL_SOCKET, SO_ERROR, &err, &l);
    if (err) {
      http_down(h, std::string("http connect: ") + strerror(err));
      return;
    }
    if (cfg_.tls) {
      h.ssl = SSL_new(cfg_.tls);
      SSL_set_fd(h.ssl, h.fd);
      SSL_set_connect_state(h.ssl);
      h.state = 3;
      set_events(h.fd, &h, EPOLLIN | EPOLLOUT);
      return on_http_event(h, 0);
    }
    h.state = 2;
    h.want_out = false;
    set_events(h.fd, &h, EPOLLIN);
    http_flush(h);
    return;
  }
  if (h.state == 3) {
    int r = tls_step(h.ssl);
    if (r < 0) return http_down(h, "TLS handshake failed");
    if (r == 0) return;
    h.state = 2;
    h.want_out = false;
    set_events(h.fd, &h, EPOLLIN);
    http_flush(h);
    return;
  }
  if (ev & EPOLLOUT) http_flush(h);
  if (h.fd >= 0 && (ev & (EPOLLIN | EPOLLERR | EPOLLHUP))) http_read(h);
}

void Worker::http_flush(HttpConn& h) {
  if (h.fd < 0 || h.state != 2) return;
  while (h.out_off < h.out.size()) {
    ssize_t w = io_write(h.ssl, h.fd, h.out.data() + h.out_off, h.out.size() - h.out_off);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) break;
      http_down(h, std::string("http write: ") + strerror(errno));
      return;
    }
    h.out_off += size_t(w);
  }
  bool pending = h.out_off < h.out.size();
  if (!pending) {
    h.out.clear();
    h.out_off = 0;
  }
  if (pending != h.want_out) {
    h.want_out = pending;
    set_events(h.fd, &h, EPOLLIN | (pending ? EPOLLOUT : 0u));
  }
}

void Worker::http_down(HttpConn& h, const std::string& why) {
  free_tls(h.ssl);
  if (h.fd >= 0) close(h.fd);
  h.fd = -1;
  h.state = 0;
  h.want_out = false;
  h.out.clear();
  h.out_off = 0;
  h.in.clear();
  if (h.count) {
    // Requests that got no answer. In Count mode they are sent again (the exact number of events
    // matters there); otherwise they count as publish errors.
    if (plan_.mode == PubMode::Count) {
      pub_sent_ -= std::min<uint64_t>(pub_sent_, h.count);
      c.resent += h.count;
    } else {
      c.http_errors += h.count;
      note_error("http connection lost with " + std::to_string(h.count) + " requests unanswered: " + why);
    }
    c.sent -= std::min<uint64_t>(c.sent, plan_.mode == PubMode::Count ? h.count : 0);
    outstanding_ -= std::min<uint64_t>(outstanding_, h.count);
    h.count = 0;
    h.head = 0;
  }
}

void Worker::http_read(HttpConn& h) {
  for (;;) {
    size_t off = h.in.size();
    if (off) {
      ensure_scratch(off + 65536);
      memcpy(scratch_.data(), h.in.data(), off);
    }
    size_t room = scratch_.size() - off;
    ssize_t r = io_read(h.ssl, h.fd, scratch_.data() + off, room);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      http_down(h, std::string("http read: ") + strerror(errno));
      return;
    }
    if (r == 0) {
      http_down(h, "closed by server");
      return;
    }
    now_ = mono_ns();
    size_t n = off + size_t(r);
    size_t used = parse_http(h, scratch_.data(), n);
    if (h.fd < 0) return;
    if (used < n)
      h.in.assign(scratch_.data() + used, n - used);
    else
      h.in.clear();
    if (!h.ssl && size_t(r) < room) return;
  }
}

size_t Worker::parse_http(HttpConn& h, char* p, size_t n) {
  size_t pos = 0;
  while (pos < n) {
    const char* b = p + pos;
    const char* end = p + n;
    const char* he = find(b, end, "\r\n\r\n");
    if (!he) break;
    if (he - b < 12 || memcmp(b, "HTTP/1.", 7) != 0) {
      http_down(h, "malformed HTTP response");
      return n;
    }
    int status = (b[9] - '0') * 100 + (b[10] - '0') * 10 + (b[11] - '0');
    uint64_t cl = 0;
    bool close_after = false;
    const char* line = static_cast<const char*>(memchr(b, '\n', size_t(he - b)));
    line = line ? line + 1 : he;
    while (line < he) {
      const char* le = static_cast<const char*>(memchr(line, '\n', size_t(he + 2 - line)));
      if (!le) break;
      if (ci_prefix(line, le, "content-length:")) {
        parse_u64(line + 15, le, cl);
      } else if (ci_prefix(line, le, "connection:")) {
        if (find(line, le, "close") || find(line, le, "Close")) close_after = true;
      } else if (ci_prefix(line, le, "transfer-encoding:")) {
        http_down(h, "chunked HTTP responses are not supported");
        return n;
      }
      line = le + 1;
    }
    size_t total = size_t(he + 4 - b) + cl;
    if (n - pos < total) break;
    on_http_response(h, status, he + 4, cl);
    pos += total;
    if (close_after) {
      http_down(h, "server sent Connection: close");
      return n;
    }
  }
  return pos;
}

void Worker::on_http_response(HttpConn& h, int status, const char* body, size_t len) {
  if (!h.count) {
    ++c.http_errors;
    note_error("unsolicited HTTP response " + std::to_string(status));
    return;
  }
  uint32_t ch = h.ring[h.head];
  h.head = (h.head + 1) % cfg_.pipeline;
  --h.count;
  --outstanding_;
  if (status == 202 || status == 200 || status == 201) {
    uint64_t seq;
    if (find_u64(body, body + len, "\"seq\":", seq)) {
      if (seq > final_seq[ch]) final_seq[ch] = seq;
    } else {
      note_error("publish answer without seq: " + std::string(body, std::min<size_t>(len, 200)));
    }
    ++c.acked;
    c.last_ack_ns = now_;
  } else {
    ++c.http_errors;
    note_error("publish answered HTTP " + std::to_string(status) + ": " +
               std::string(body, std::min<size_t>(len, 200)));
  }
}

}  // namespace awb
