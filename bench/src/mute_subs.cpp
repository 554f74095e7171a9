#include "mute_subs.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace awb {
namespace {

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

// Walks server frames (unmasked) without keeping their payloads; remembers a close frame's code.
class FrameScanner {
 public:
  // Feeds bytes; true once a close frame has been seen (its code in `code`, 0 if it had none).
  bool feed(const char* p, size_t n, int& code) {
    while (n > 0) {
      if (skip_ > 0) {
        size_t k = skip_ < n ? size_t(skip_) : n;
        skip_ -= k;
        p += k;
        n -= k;
        continue;
      }
      head_.push_back(*p++);
      --n;
      if (head_.size() < 2) continue;
      auto b0 = uint8_t(head_[0]), b1 = uint8_t(head_[1]);
      size_t need = 2 + ((b1 & 0x7f) == 126 ? 2 : (b1 & 0x7f) == 127 ? 8 : 0);
      if (head_.size() < need) continue;
      uint64_t len = b1 & 0x7f;
      if (len >= 126) {
        len = 0;
        for (size_t i = 2; i < need; ++i) len = (len << 8) | uint8_t(head_[i]);
      }
      if ((b0 & 0x0f) == 0x8) {  // close: its payload is small, keep it
        if (head_.size() < need + len) continue;
        code = len >= 2 ? (uint8_t(head_[need]) << 8) | uint8_t(head_[need + 1]) : 0;
        return true;
      }
      head_.clear();
      skip_ = len;
    }
    return false;
  }

 private:
  std::string head_;
  uint64_t skip_ = 0;
};

}  // namespace

MuteSubscribers::~MuteSubscribers() {
  for (int fd : fds_) close(fd);
}

bool MuteSubscribers::open(const sockaddr_in& server, const std::string& host, const std::string& agent,
                           uint64_t n, std::string& error) {
  for (uint64_t i = 0; i < n; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      error = std::string("slow subscriber socket: ") + strerror(errno);
      return false;
    }
    fds_.push_back(fd);
    int small = 4096;  // before connect: the window the server sees stays tiny
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, reinterpret_cast<const sockaddr*>(&server), sizeof server) != 0) {
      error = std::string("slow subscriber connect: ") + strerror(errno);
      return false;
    }
    std::string req = "GET /ws/agents/" + agent + " HTTP/1.1\r\nHost: " + host +
                      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    if (write(fd, req.data(), req.size()) != ssize_t(req.size())) {
      error = "slow subscriber: could not send the upgrade request";
      return false;
    }
    // Read the answer byte by byte up to its end, so that nothing after it (the first frames) is taken.
    std::string head;
    char ch;
    while (head.size() < 8192 && head.find("\r\n\r\n") == std::string::npos) {
      if (read(fd, &ch, 1) != 1) break;
      head.push_back(ch);
    }
    if (head.rfind("HTTP/1.1 101", 0) != 0) {
      error = "slow subscriber: upgrade refused: " + head.substr(0, head.find('\r'));
      return false;
    }
  }
  return true;
}

MuteSubscribers::Outcome MuteSubscribers::inspect(double timeout_s) {
  Outcome out;
  const int64_t deadline = now_ms() + int64_t(timeout_s * 1000);
  std::vector<char> buf(1 << 16);
  for (int fd : fds_) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    FrameScanner scan;
    int code = -1;
    bool ended = false;
    while (code < 0 && !ended) {
      ssize_t n = read(fd, buf.data(), buf.size());
      if (n > 0) {
        out.bytes_read += uint64_t(n);
        int c = 0;
        if (scan.feed(buf.data(), size_t(n), c)) code = c;
        continue;
      }
      if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        ended = true;
        break;
      }
      // Nothing more for a second: the server holds nothing more for it (or sends nothing more).
      int64_t left = deadline - now_ms();
      if (left <= 0) break;
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, int(left > 1000 ? 1000 : left)) == 0) break;
    }
    if (code == 1008)
      ++out.closed_policy;
    else if (code >= 0 || ended)
      ++out.closed_other;
    else
      ++out.still_open;
  }
  return out;
}

}  // namespace awb
