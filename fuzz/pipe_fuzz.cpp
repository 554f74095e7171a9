// The piped stream route (`POST /api/workflows/{id}/streams/pipe`) through the real router, service and
// hub, its body cut into random pieces: an NDJSON body becomes as many deltas, and as many bytes, as its
// lines name (the same whatever the cuts), and any line that is not {"delta": "<non-empty string>"} gets
// a 400; a text/plain body becomes deltas of exactly the body's bytes when it is valid UTF-8, else a 400.
// (The stream's final answer reports its deltas and bytes.)
// Every body gets exactly one answer. (An empty body may be answered 200 or 400: issue 13 lets the route
// choose.)
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <string>

#include "api/pipe_api.hpp"
#include "api/router.hpp"
#include "broker/store_broker.hpp"
#include "core/clock.hpp"
#include "fuzz_check.hpp"
#include "fuzz_input.hpp"
#include "json_reference.hpp"
#include "store/memory_event_store.hpp"
#include "utf8_reference.hpp"
#include "workflow/workflow_service.hpp"

namespace {

using namespace aw;
using aw::hub::Hub;
using aw::hub::HubOptions;
using aw::hub::PublishResult;
using aw::hub::ShardDispatcher;
using aw::store::MemoryEventStore;

class InlineShards final : public ShardDispatcher {
 public:
  unsigned shard_count() const noexcept override { return 1; }
  void post(unsigned, std::function<void()> work) override { work(); }
};

// The connection's thread, as the fuzzer's thread: work the hub posts back waits here until run.
class Connection {
 public:
  void post(std::function<void()> fn) {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(fn));
    cv_.notify_one();
  }
  // Runs what has been posted; waits up to 10 s for something when `wait` is set. False on time-out.
  bool run(bool wait) {
    std::unique_lock lock(mu_);
    if (wait && !cv_.wait_for(lock, std::chrono::seconds(10), [&] { return !queue_.empty(); })) return false;
    while (!queue_.empty()) {
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      fn();
      lock.lock();
    }
    return true;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
};

struct Node {
  Node()
      : hub(HubOptions{}, broker, shards, workflow::agent_state_factory(index, now_unix_ms)),
        service(hub, index, {}, now_unix_ms) {
    hub.start();
    api::add_pipe_route(router, service);
  }
  ~Node() { hub.stop(); }

  // A fresh agent and workflow every so often: what one agent keeps (workflows, ended streams) is bounded.
  const std::string& workflow() {
    if (uses_++ % 64 == 0) {
      std::promise<PublishResult> done;
      service.create({"agent-fuzz-" + std::to_string(uses_ / 64), "pipe", {}}, "",
                     [&](const PublishResult& r) { done.set_value(r); });
      PublishResult r = done.get_future().get();
      FUZZ_CHECK(r.status == PublishResult::Status::ok);
      workflow_ = std::string(boost::json::parse(r.decision.reply_json).as_object()["id"].as_string());
    }
    return workflow_;
  }

  MemoryEventStore store;
  aw::broker::StoreBroker broker{store, "memory"};
  InlineShards shards;
  workflow::WorkflowIndex index;
  Hub hub;
  workflow::WorkflowService service;
  api::Router router;
  std::size_t uses_ = 0;
  std::string workflow_;
};

struct Expected {
  bool refused = false;
  std::string text;          // the deltas, concatenated
  std::uint64_t deltas = 0;  // NDJSON: how many (text/plain: as the pieces fall)
};

Expected expected_ndjson(std::string_view body) {
  Expected e;
  while (!body.empty()) {
    std::size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    auto ref = fuzz::json_reference(line);
    if (ref.duplicate_key || ref.non_finite) return {true, e.text, e.deltas};  // protocol/json_rules
    const boost::json::object* obj = ref.value ? ref.value->if_object() : nullptr;
    const boost::json::value* delta = obj ? obj->if_contains("delta") : nullptr;
    if (!delta || !delta->is_string() || delta->get_string().empty()) return {true, e.text, e.deltas};
    e.text += std::string(delta->get_string());
    ++e.deltas;
  }
  return e;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static Node node;
  fuzz::FuzzInput in(data, size);
  const bool ndjson = in.flag();
  const std::uint32_t seed = in.u32();
  const std::size_t max_piece = 1 + in.byte() % 64;
  const std::string body = in.rest();

  api::Request req;
  req.method = "POST";
  req.path = "/api/workflows/" + node.workflow() + "/streams/pipe";
  req.content_type = ndjson ? "application/x-ndjson" : "text/plain; charset=utf-8";
  api::Params params;
  const api::StreamingHandler* handler = node.router.match_streaming(req.method, req.path, params);
  FUZZ_CHECK(handler != nullptr);

  Connection conn;
  std::optional<api::Response> answer;
  int answers = 0;
  api::Reply reply = [&](api::Response res) {
    ++answers;
    answer = std::move(res);
  };
  api::SinkContext ctx{[&](std::function<void()> fn) { conn.post(std::move(fn)); }, [] {}};
  auto sink = (*handler)(req, params, ctx, reply);
  FUZZ_CHECK(sink != nullptr);
  std::size_t at = 0;
  for (std::size_t n : fuzz::random_slices(body.size(), seed, max_piece)) {
    conn.run(false);
    // The transport stops reading while the sink has too much in hand.
    while (!sink->wants_more()) FUZZ_CHECK(conn.run(true));
    sink->on_data(std::string_view(body).substr(at, n));
    at += n;
  }
  sink->on_end(reply);
  while (!answer) FUZZ_CHECK(conn.run(true));
  conn.run(false);
  FUZZ_CHECK(answers == 1);

  Expected want;
  if (ndjson)
    want = expected_ndjson(body);
  else
    want = {!fuzz::reference_utf8(body), body, 0};
  auto res = fuzz::json_reference(answer->body).value;
  FUZZ_CHECK(res && res->is_object());
  if (want.text.empty() && !want.refused) {
    FUZZ_CHECK(answer->status == 200 || answer->status == 400);
  } else if (want.refused) {
    FUZZ_CHECK(answer->status == 400);
  } else {
    FUZZ_CHECK(answer->status == 200);
    const boost::json::object& summary = res->as_object();
    FUZZ_CHECK(summary.contains("bytes") &&
               summary.at("bytes").to_number<std::uint64_t>() == want.text.size());
    if (ndjson) FUZZ_CHECK(summary.at("deltas").to_number<std::uint64_t>() == want.deltas);
  }
  return 0;
}
