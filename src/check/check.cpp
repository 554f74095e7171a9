#include "check/check.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <optional>
#include <stdexcept>

#include "core/random_id.hpp"

namespace aw::check {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace json = boost::json;
using tcp = net::ip::tcp;

struct Target {
  std::string host;
  std::string port;
  bool tls = false;
};

Target parse_url(std::string url) {
  Target t;
  if (url.rfind("https://", 0) == 0) {
    t.tls = true;
    url = url.substr(8);
  } else if (url.rfind("http://", 0) == 0) {
    url = url.substr(7);
  } else {
    throw std::invalid_argument("base URL must start with http:// or https:// (got " + url + ")");
  }
  if (auto slash = url.find('/'); slash != std::string::npos) url = url.substr(0, slash);
  auto colon = url.rfind(':');
  if (colon == std::string::npos) {
    t.host = url;
    t.port = t.tls ? "443" : "80";
  } else {
    t.host = url.substr(0, colon);
    t.port = url.substr(colon + 1);
  }
  if (t.host.empty()) throw std::invalid_argument("base URL has no host");
  return t;
}

// One WebSocket connection, over TCP or TLS: what the steps do with it.
class WsConnection {
 public:
  virtual ~WsConnection() = default;
  virtual std::string read(std::chrono::milliseconds timeout) = 0;
  virtual void close() = 0;
};

template <class Next>
class WsOver : public WsConnection {
 public:
  explicit WsOver(Next next) : ws_(std::move(next)) {}
  websocket::stream<Next>& ws() { return ws_; }
  std::string read(std::chrono::milliseconds timeout) override {
    beast::get_lowest_layer(ws_).expires_after(timeout);
    beast::flat_buffer buffer;
    ws_.read(buffer);
    return beast::buffers_to_string(buffer.data());
  }
  void close() override { ws_.close(websocket::close_code::normal); }

 private:
  websocket::stream<Next> ws_;
};

// One step's failure, with what was expected.
struct StepFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class Checker {
 public:
  Checker(const CheckOptions& o, std::ostream& out) : o_(o), out_(out), target_(parse_url(o.base_url)) {
    timeout_ = std::chrono::milliseconds(static_cast<long>(o.timeout_s * 1000));
    agent_ = o.agent_id.empty() ? "agentwire-check-" + random_hex_id(6) : o.agent_id;
    if (target_.tls) {
      SSL_CTX_set_min_proto_version(tls_.native_handle(), TLS1_2_VERSION);
      tls_.set_verify_mode(net::ssl::verify_peer);
      tls_.set_default_verify_paths();
      if (!o.ca_file.empty()) tls_.load_verify_file(o.ca_file);  // throws: reported as the setup's failure
    }
  }

  int run() {
    out_ << "agentwire check " << o_.base_url << "  agent " << agent_ << "\n";
    step("health", [&] {
      auto [status, body] = request(http::verb::get, "/healthz", "");
      if (status != 200) throw StepFailed("GET /healthz answered " + std::to_string(status));
      return std::string("200 OK");
    });
    step("connect", [&] {
      ws_ = connect_ws("/ws/agents/" + agent_);
      auto hello = read_json(*ws_);
      if (hello.at("type") != "connected") throw StepFailed("first frame is not connected");
      epoch_ = std::string(hello.at("data").at("epoch").as_string());
      auto version = std::string(hello.at("data").at("server_version").as_string());
      return "connected, epoch " + epoch_ + ", server " + version;
    });
    std::uint64_t seq = 0;
    step("publish", [&] {
      seq = publish(R"({"type":"check","data":{"step":"publish"}})");
      return "202, seq " + std::to_string(seq);
    });
    step("receive", [&] {
      for (;;) {
        auto ev = read_json(*ws_);
        if (ev.at("type") == "heartbeat") continue;
        if (ev.at("type") != "check")
          throw StepFailed("unexpected frame of type " + json::serialize(ev.at("type")));
        if (ev.at("seq").to_number<std::uint64_t>() != seq) throw StepFailed("received seq does not match");
        return "event seq " + std::to_string(seq) + " arrived";
      }
    });
    std::uint64_t missed = 0;
    step("resume", [&] {
      ws_->close();
      ws_.reset();
      missed = publish(R"({"type":"check","data":{"step":"resume"}})");
      auto ws = connect_ws("/ws/agents/" + agent_ + "?since=" + std::to_string(seq) + "&epoch=" + epoch_);
      auto hello = read_json(*ws);
      if (!hello.at("data").at("recovered").as_bool())
        throw StepFailed("server did not recover the missed event");
      auto ev = read_json(*ws);
      while (ev.at("type") == "heartbeat") ev = read_json(*ws);
      if (ev.at("seq").to_number<std::uint64_t>() != missed) throw StepFailed("replayed seq does not match");
      ws->close();
      return "missed seq " + std::to_string(missed) + " replayed";
    });
    step("stats", [&] {
      auto [status, body] = request(http::verb::get, "/api/websocket/stats", "");
      // Stats need the admin scope: a deploy checked with a publishing key is fine without them.
      if ((status == 401 || status == 403) && !http_bearer().empty()) {
        skipped_ = true;
        return "skipped: GET /api/websocket/stats answered " + std::to_string(status) +
               " (needs the admin scope) " + body;
      }
      if (status != 200)
        throw StepFailed("GET /api/websocket/stats answered " + std::to_string(status) + ": " + body);
      auto v = json::parse(body);
      return "live connections " + json::serialize(v.at("connections").at("live")) + ", publishes " +
             json::serialize(v.at("publishes"));
    });
    out_ << (failed_ != 0  ? std::to_string(failed_) + " check(s) failed"
             : skips_ == 0 ? "all checks passed"
                           : "all checks passed (" + std::to_string(skips_) + " skipped)")
         << "\n";
    return failed_ == 0 ? 0 : 1;
  }

 private:
  using TlsStream = beast::ssl_stream<beast::tcp_stream>;

  void step(const char* name, const std::function<std::string()>& body) {
    if (stop_) {
      out_ << "SKIP  " << name << "\n";
      return;
    }
    auto start = std::chrono::steady_clock::now();
    std::string detail;
    bool ok = true;
    try {
      detail = body();
    } catch (const boost::system::system_error& e) {
      ok = false;
      detail = e.code().message();  // what() would name Boost's source files
    } catch (const std::exception& e) {
      ok = false;
      detail = e.what();
    }
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    char timing[32];
    std::snprintf(timing, sizeof timing, "%8.2f ms", ms);
    const char* verdict = !ok ? "FAIL  " : skipped_ ? "SKIP  " : "PASS  ";
    if (ok && skipped_) ++skips_;
    skipped_ = false;
    out_ << verdict << name << std::string(10 - std::min<std::size_t>(9, std::strlen(name)), ' ') << timing
         << "  " << detail << "\n";
    if (!ok) {
      ++failed_;
      stop_ = true;  // later steps depend on earlier ones
    }
  }

  beast::tcp_stream open() {
    tcp::resolver resolver(ioc_);
    beast::tcp_stream stream(ioc_);
    stream.expires_after(timeout_);
    stream.connect(resolver.resolve(target_.host, target_.port));
    return stream;
  }

  // TLS 1.2+ with the certificate checked against the system's CAs (and --ca-file) and the host name.
  TlsStream open_tls() {
    TlsStream stream(open(), tls_);
    // SNI names a host, never an address (RFC 6066 §3).
    boost::system::error_code not_an_address;
    net::ip::make_address(target_.host, not_an_address);
    if (not_an_address) SSL_set_tlsext_host_name(stream.native_handle(), target_.host.c_str());
    stream.set_verify_callback(net::ssl::host_name_verification(target_.host));
    stream.handshake(net::ssl::stream_base::client);
    return stream;
  }

  std::pair<unsigned, std::string> request(http::verb verb, const std::string& target,
                                           const std::string& body) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, target_.host);
    req.set(http::field::user_agent, "agentwire-check");
    if (!http_bearer().empty()) req.set(http::field::authorization, "Bearer " + http_bearer());
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    if (target_.tls) {
      auto stream = open_tls();
      auto answer = exchange(stream, req);
      beast::error_code ignored;
      stream.shutdown(ignored);  // close_notify; a server that just closes is fine too
      return answer;
    }
    auto stream = open();
    auto answer = exchange(stream, req);
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    return answer;
  }

  template <class Stream>
  std::pair<unsigned, std::string> exchange(Stream& stream, const http::request<http::string_body>& req) {
    beast::get_lowest_layer(stream).expires_after(timeout_);
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return {res.result_int(), res.body()};
  }

  std::uint64_t publish(const std::string& body) {
    auto [status, answer] = request(http::verb::post, "/api/agents/" + agent_ + "/events", body);
    if (status != 202) throw StepFailed("publish answered " + std::to_string(status) + ": " + answer);
    return json::parse(answer).at("seq").to_number<std::uint64_t>();
  }

  // The API key when given, else the token (a JWT may carry the scopes too).
  const std::string& http_bearer() const { return o_.api_key.empty() ? o_.token : o_.api_key; }
  // The token when given, else the API key (a key with the read scope may subscribe too).
  const std::string& ws_bearer() const { return o_.token.empty() ? o_.api_key : o_.token; }

  std::unique_ptr<WsConnection> connect_ws(const std::string& target) {
    if (target_.tls) {
      auto conn = std::make_unique<WsOver<TlsStream>>(open_tls());
      handshake(conn->ws(), target);
      return conn;
    }
    auto conn = std::make_unique<WsOver<beast::tcp_stream>>(open());
    handshake(conn->ws(), target);
    return conn;
  }

  template <class Ws>
  void handshake(Ws& ws, const std::string& target) {
    beast::get_lowest_layer(ws).expires_after(timeout_);
    if (!ws_bearer().empty()) {
      // As browsers send it: the subprotocol list "bearer, <token>", answered with "bearer".
      ws.set_option(websocket::stream_base::decorator([token = ws_bearer()](websocket::request_type& req) {
        req.set(http::field::sec_websocket_protocol, "bearer, " + token);
      }));
    }
    websocket::response_type res;
    try {
      ws.handshake(res, target_.host + ":" + target_.port, target);
    } catch (const boost::system::system_error&) {
      if (res.result_int() == 0 || res.result_int() == 101) throw;
      throw StepFailed("the upgrade answered " + std::to_string(res.result_int()) + ": " + res.body() +
                       (ws_bearer().empty() && res.result_int() == 401 ? " (give --token)" : ""));
    }
  }

  json::value read_json(WsConnection& ws) { return json::parse(ws.read(timeout_)); }

  const CheckOptions& o_;
  std::ostream& out_;
  Target target_;
  std::chrono::milliseconds timeout_{10000};
  std::string agent_;
  std::string epoch_;
  net::io_context ioc_;
  net::ssl::context tls_{net::ssl::context::tls_client};
  std::unique_ptr<WsConnection> ws_;
  int failed_ = 0;
  bool stop_ = false;
  bool skipped_ = false;  // the step could not run with the credentials given (not a failure)
  int skips_ = 0;
};

}  // namespace

int run_check(const CheckOptions& options, std::ostream& out) {
  try {
    return Checker(options, out).run();
  } catch (const std::exception& e) {
    out << "FAIL  setup     " << e.what() << "\n";
    return 1;
  }
}

int check_main(int argc, char** argv) {
  CheckOptions o;
  // From the environment unless given: a credential on the command line is visible to every local user (ps).
  if (const char* v = std::getenv("AGENTWIRE_TOKEN")) o.token = v;
  if (const char* v = std::getenv("AGENTWIRE_API_KEY")) o.api_key = v;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--agent" || a == "--timeout" || a == "--token" || a == "--api-key" || a == "--ca-file") &&
        i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "--agent")
        o.agent_id = v;
      else if (a == "--token")
        o.token = v;
      else if (a == "--api-key")
        o.api_key = v;
      else if (a == "--ca-file")
        o.ca_file = v;
      else
        o.timeout_s = std::atof(v.c_str());
    } else if (a == "--help" || a == "-h") {
      std::cout
          << "usage: agentwire check [--agent ID] [--timeout SECONDS] [--token JWT] [--api-key KEY]\n"
             "                       [--ca-file PEM] http(s)://host:port\n"
             "Checks a running agentwire end to end: health, connect, publish, receive, resume, stats.\n"
             "  --token JWT    a subscriber token allowing the agent, sent as the bearer subprotocol\n"
             "                 (and as Authorization: Bearer on HTTP calls when no --api-key is given)\n"
             "  --api-key KEY  Authorization: Bearer on HTTP calls: the publish scope, and admin for\n"
             "                 the stats step (skipped without it); subscribes too when no --token is\n"
             "                 given (a key with the read scope may)\n"
             "Both default to AGENTWIRE_TOKEN and AGENTWIRE_API_KEY (out of sight of ps).\n"
             "  --ca-file PEM  https: trust these CAs too (the system's are trusted; the certificate must\n"
             "                 name the URL's host)\n"
             "On a server with keys, --agent must be an agent the credentials allow.\n";
      return 0;
    } else if (o.base_url.empty() && a.rfind("--", 0) != 0) {
      o.base_url = a;
    } else {
      std::cerr << "agentwire check: unexpected argument '" << a << "' (see --help)\n";
      return 2;
    }
  }
  if (o.base_url.empty() || o.timeout_s <= 0) {
    std::cerr << "usage: agentwire check [--agent ID] [--timeout SECONDS] [--token JWT] [--api-key KEY] "
                 "[--ca-file PEM] http(s)://host:port\n";
    return 2;
  }
  return run_check(o, std::cout);
}

}  // namespace aw::check
