// One epoll event loop (one per --threads) owning a slice of the WebSocket subscribers and its own
// HTTP/1.1 publishing connections. The coordinating main thread talks to it only through
// call()/post() (tasks run inside the loop) and reads a few relaxed atomic progress counters.
#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

#include "histogram.hpp"
#include "util.hpp"

struct ssl_ctx_st;
struct ssl_st;

namespace awb {

struct Config {
  ssl_ctx_st* tls = nullptr;  // https:// URL: every connection speaks TLS through this context
  sockaddr_in server{};
  std::string host;                    // Host header value
  uint32_t source_ips = 1;             // > 1: bind connection i to 127.0.0.(1 + i % source_ips)
  uint32_t connect_concurrency = 256;  // per worker: connections being set up at once
  uint32_t pipeline = 32;              // per HTTP connection: requests without answer
  uint32_t http_conns = 1;             // per worker
  std::string pad;                     // "xxxx..." filler in published data
  std::vector<std::string> channels;   // agent ids
  std::vector<std::string> pub_heads;  // per channel: request line + headers up to "Content-Length: "
  // The publish body around the send timestamp and the pad: an event by default, a stream delta
  // ({"delta":"t=<ns> <pad>"}) with --stream.
  std::string body_a = "{\"type\":\"bench\",\"data\":{\"t\":";
  std::string body_b = ",\"pad\":\"";
  std::string body_c = "\"}}";
};

enum class PubMode : uint8_t { None, Count, Rate, Max };

struct PubPlan {
  PubMode mode = PubMode::None;
  std::vector<uint32_t> channels;       // round-robin over these
  uint64_t count = 0;                   // Count: number of publishes
  double rate = 0;                      // Rate: publishes per second (this worker)
  int64_t start_ns = 0, end_ns = 0;     // Rate/Max
  uint64_t inflight = 0;                // Max: publishes not yet fully delivered (all workers)
  uint64_t deliveries_per_publish = 1;  // Max: subscribers per published event
};

struct Handle {
  uint8_t kind;
};

enum SubState : uint8_t { kIdle, kConnecting, kHandshake, kOpen, kClosed, kFailed };

struct Sub : Handle {
  int fd = -1;
  ssl_st* ssl = nullptr;  // TLS: set once the TCP connect completed (the handshake runs in kConnecting)
  uint32_t index = 0;     // global subscriber index
  uint32_t channel = 0;   // index into Config::channels
  SubState state = kIdle;
  bool got_connected = false;  // `connected` envelope received in the current session
  bool counted = false;        // took part in the current measurement (connected at least once)
  bool resuming = false;
  bool recovered = false;
  bool complete = false;
  bool in_frag = false;
  bool closing = false;          // we initiated the close
  uint64_t expect_from = 0;      // events with seq > expect_from are expected
  uint64_t last = 0;             // highest seq accepted
  uint64_t holes = 0;            // seqs skipped below `last` and not yet seen
  uint64_t lat_from = 0;         // latency recorded only for seq > lat_from
  uint64_t since = 0;            // resume position (seq) recorded at disconnect
  uint64_t target = UINT64_MAX;  // complete when last >= target
  uint64_t replayed = 0;         // from the `connected` envelope
  int64_t t_start = 0;           // connect() issued
  std::string epoch;
  std::string accept;   // expected Sec-WebSocket-Accept
  std::string inbuf;    // unparsed tail (partial frame)
  std::string outbuf;   // unsent bytes
  std::string fragbuf;  // fragmented message
};

struct HttpConn : Handle {
  int fd = -1;
  ssl_st* ssl = nullptr;
  uint8_t state = 0;  // 0 down, 1 connecting, 2 up, 3 TLS handshake
  bool want_out = false;
  uint32_t idx = 0;
  std::string out;
  size_t out_off = 0;
  std::string in;
  std::vector<uint32_t> ring;  // channel of each outstanding request, in order
  uint32_t head = 0, count = 0;
};

struct Counters {
  uint64_t connected = 0, connect_failed = 0, closed_unexpected = 0;
  uint64_t received = 0, duplicates = 0, out_of_order = 0, gaps = 0, parse_errors = 0;
  uint64_t control_frames = 0, snapshots = 0, server_errors = 0, pings = 0, reads = 0, no_timestamp = 0;
  uint64_t not_recovered = 0, replayed_total = 0, complete = 0;
  uint64_t sent = 0, acked = 0, http_errors = 0, resent = 0;
  int64_t last_connected_ns = 0, last_receive_ns = 0, first_receive_ns = 0, last_ack_ns = 0;
  int64_t last_complete_ns = 0, pub_end_ns = 0;
};

struct Expectation {
  uint64_t expected = 0;    // sum over counted subs of final - expect_from
  uint64_t subs = 0;        // counted subs
  uint64_t incomplete = 0;  // subs whose last < final
  uint64_t beyond = 0;      // seqs received above the acknowledged final seq
};

struct alignas(64) Progress {
  std::atomic<uint64_t> connected{0}, connect_failed{0}, closed{0}, received{0};
  std::atomic<uint64_t> sent{0}, acked{0}, http_errors{0}, outstanding{0}, complete{0};
  std::atomic<bool> pub_active{false};
};

class Worker {
 public:
  Worker(int id, int nworkers, const Config& cfg, const std::vector<Worker*>* all);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void start();
  void stop();  // ends the loop and joins

  void post(std::function<void()> fn);
  template <class F>
  auto call(F&& f) -> decltype(f()) {
    using R = decltype(f());
    std::promise<R> p;
    auto fut = p.get_future();
    post([&] {
      if constexpr (std::is_void_v<R>) {
        f();
        p.set_value();
      } else {
        p.set_value(f());
      }
    });
    return fut.get();
  }

  // --- to be run inside the loop (via call/post) ---
  void add_subs(const std::vector<std::pair<uint32_t, uint32_t>>& index_channel);
  void connect_subs(bool resume);  // resume: ?since=<last seq>&epoch=<epoch>
  void close_subs();               // send close, drop sockets, remember resume position
  void reset_measurement();        // zero delivery/publish counters and histograms
  void set_targets(const std::vector<uint64_t>& final_by_channel, bool latency_only_after);
  void start_publish(PubPlan plan);
  Expectation expectation(const std::vector<uint64_t>& final_by_channel) const;

  // Results: read through call() or after stop().
  Counters c;
  Histogram latency;        // publish -> receipt, ns
  Histogram connect_time;   // connect() -> `connected` envelope, ns
  Histogram complete_time;  // resume: reconnect start -> last missed event, ns
  std::vector<Sub> subs;
  std::vector<uint64_t> final_seq;  // per channel: highest seq acknowledged by 202
  int64_t measure_start_ns = 0;
  std::string first_error;
  Progress progress;

 private:
  void run();
  void run_tasks();
  void publish_progress();
  void note_error(const std::string& e);

  void pump_connects();
  void start_connect(Sub& s);
  void on_sub_event(Sub& s, uint32_t ev);
  void send_handshake(Sub& s);
  void read_sub(Sub& s);
  size_t consume_sub(Sub& s, char* p, size_t n);
  size_t parse_frames(Sub& s, char* p, size_t n);
  void on_frame(Sub& s, bool fin, uint8_t op, const char* p, size_t n);
  void on_message(Sub& s, const char* p, size_t n);
  void on_connected(Sub& s, const char* p, const char* end);
  void send_sub(Sub& s, const char* p, size_t n);
  void send_control(Sub& s, uint8_t op, const char* p, size_t n);
  void flush_sub(Sub& s);
  void drop_sub(Sub& s, SubState st);
  void sub_failed(Sub& s, const std::string& why);
  void sub_lost(Sub& s, const std::string& why);
  void set_events(int fd, Handle* h, uint32_t ev);

  void http_connect(HttpConn& h);
  void on_http_event(HttpConn& h, uint32_t ev);
  void http_read(HttpConn& h);
  size_t parse_http(HttpConn& h, char* p, size_t n);
  void on_http_response(HttpConn& h, int status, const char* body, size_t len);
  void http_flush(HttpConn& h);
  void http_down(HttpConn& h, const std::string& why);
  void append_request(HttpConn& h, uint32_t ch);
  void pump_publish();
  void finish_publish();
  void arm_timer(int64_t interval_ns);
  int bind_source(int fd, uint32_t index);
  void ensure_scratch(size_t need);

  int id_;
  int nworkers_;
  const Config& cfg_;
  const std::vector<Worker*>* all_;
  int ep_ = -1, evfd_ = -1, tfd_ = -1;
  Handle ev_handle_{}, timer_handle_{};
  std::thread thread_;
  bool quit_ = false;
  std::mutex mu_;
  std::vector<std::function<void()>> tasks_;
  std::vector<char> scratch_;
  Rng rng_;
  int64_t now_ = 0;

  std::vector<uint32_t> connect_order_;
  size_t connect_cursor_ = 0;
  uint32_t connecting_ = 0;

  std::vector<HttpConn> http_;
  uint32_t http_rr_ = 0;
  PubPlan plan_;
  uint64_t pub_sent_ = 0;
  size_t chan_cursor_ = 0;
  uint64_t outstanding_ = 0;
};

}  // namespace awb
