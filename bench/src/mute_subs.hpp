// Subscribers that finish the WebSocket handshake and then read nothing: the slow consumers of the
// fan-out scenario's --slow option. They take no part in the measurement; afterwards they are read to
// see how the server dealt with them (a close frame and its code, or nothing: still buffering for them).
// Blocking sockets, used from the runner's thread only.
#pragma once
#include <netinet/in.h>

#include <cstdint>
#include <string>
#include <vector>

namespace awb {

class MuteSubscribers {
 public:
  MuteSubscribers() = default;
  MuteSubscribers(const MuteSubscribers&) = delete;
  MuteSubscribers& operator=(const MuteSubscribers&) = delete;
  ~MuteSubscribers();

  // Opens `n` subscriptions to /ws/agents/{agent} with a tiny receive window; false (and `error`) when
  // one cannot be opened.
  bool open(const sockaddr_in& server, const std::string& host, const std::string& agent, uint64_t n,
            std::string& error);

  struct Outcome {
    uint64_t closed_policy = 0;  // close frame 1008 (the server's slow-consumer policy)
    uint64_t closed_other = 0;   // another close code, or the connection ended without one
    uint64_t still_open = 0;     // no close frame within the time given: the server still serves it
    uint64_t bytes_read = 0;     // what they had been sent, read now
  };
  // Reads what each one was sent, looking for the server's close frame; `timeout_s` in all.
  Outcome inspect(double timeout_s);

  uint64_t size() const noexcept { return fds_.size(); }

 private:
  std::vector<int> fds_;
};

}  // namespace awb
