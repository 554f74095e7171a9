// loopback-floor: what the kernel alone costs per small write over many loopback TCP connections.
//
// The "channels" scenario sends each event to another of 10,000 subscribers: one write per publish,
// each to a socket whose state has long left the cache. This program does only that, with no server
// in between: it opens N connected pairs, writes M-byte messages to the server ends in turn on one core
// and reads them on another, and reports writes per second. That is the ceiling for any server's
// publishes/s over N channels on the machine (the writer's core does the loopback receive path too).
//
//   loopback-floor [--sockets N] [--bytes M] [--seconds S] [--writer-cpu C] [--reader-cpu C]
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

struct Options {
  int sockets = 9000;
  int bytes = 300;
  double seconds = 3;
  int writer_cpu = 0;
  int reader_cpu = 1;
};

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void pin(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "loopback-floor: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--sockets")
      o.sockets = std::atoi(value());
    else if (a == "--bytes")
      o.bytes = std::atoi(value());
    else if (a == "--seconds")
      o.seconds = std::atof(value());
    else if (a == "--writer-cpu")
      o.writer_cpu = std::atoi(value());
    else if (a == "--reader-cpu")
      o.reader_cpu = std::atoi(value());
    else {
      std::fprintf(stderr,
                   "usage: loopback-floor [--sockets N] [--bytes M] [--seconds S] [--writer-cpu C] "
                   "[--reader-cpu C]\n");
      std::exit(a == "--help" ? 0 : 2);
    }
  }
  if (o.sockets < 1 || o.bytes < 1 || o.seconds <= 0) {
    std::fprintf(stderr, "loopback-floor: --sockets, --bytes and --seconds must be positive\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  // Two descriptors per pair, plus a few.
  rlimit lim{};
  getrlimit(RLIMIT_NOFILE, &lim);
  const rlim_t need = static_cast<rlim_t>(o.sockets) * 2 + 16;
  if (lim.rlim_cur < need) {
    lim.rlim_cur = std::min(need, lim.rlim_max);
    setrlimit(RLIMIT_NOFILE, &lim);
    if (lim.rlim_cur < need) {
      std::fprintf(stderr, "loopback-floor: needs %llu open files, the limit is %llu\n",
                   static_cast<unsigned long long>(need), static_cast<unsigned long long>(lim.rlim_cur));
      return 1;
    }
  }

  int listener = socket(AF_INET, SOCK_STREAM, 0);
  if (listener < 0) die("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) die("bind");
  if (listen(listener, 1024) < 0) die("listen");
  socklen_t len = sizeof addr;
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);

  std::vector<int> writers, readers;
  for (int i = 0; i < o.sockets; ++i) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (c < 0) die("socket");
    if (connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) die("connect");
    int s = accept(listener, nullptr, nullptr);
    if (s < 0) die("accept");
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c, F_SETFL, O_NONBLOCK);
    writers.push_back(s);
    readers.push_back(c);
  }

  std::atomic<long long> received{0};
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    pin(o.reader_cpu);
    int ep = epoll_create1(0);
    for (int fd : readers) {
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.fd = fd;
      epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    std::vector<epoll_event> events(1024);
    std::vector<char> buf(1 << 16);
    while (!stop.load(std::memory_order_relaxed)) {
      int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), 100);
      for (int i = 0; i < n; ++i) {
        ssize_t k;
        while ((k = read(events[static_cast<std::size_t>(i)].data.fd, buf.data(), buf.size())) > 0)
          received.fetch_add(k, std::memory_order_relaxed);
      }
    }
    close(ep);
  });

  pin(o.writer_cpu);
  std::vector<char> message(static_cast<std::size_t>(o.bytes), 'x');
  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto until =
      start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(o.seconds));
  long long written = 0;
  std::size_t next = 0;
  // At most this many messages in flight, so that no socket's buffer fills and a write never blocks.
  const long long window = std::min<long long>(o.sockets, 4096);
  while (clock::now() < until) {
    for (int b = 0; b < 64; ++b) {
      if (send(writers[next], message.data(), message.size(), 0) != static_cast<ssize_t>(message.size()))
        die("send");
      next = (next + 1) % writers.size();
      ++written;
    }
    while ((written - received.load(std::memory_order_relaxed) / o.bytes) > window) sched_yield();
  }
  const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
  stop = true;
  reader.join();
  std::printf("loopback-floor: %d sockets, %d-byte writes: %.0f writes/s (%.2f us of wall time each)\n",
              o.sockets, o.bytes, written / elapsed, elapsed * 1e6 / static_cast<double>(written));
  return 0;
}
