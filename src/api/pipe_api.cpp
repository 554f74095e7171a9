#include "api/pipe_api.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <deque>

#include "api/command_response.hpp"
#include "api/errors.hpp"
#include "api/idempotency_key.hpp"
#include "api/media_type.hpp"
#include "core/utf8.hpp"
#include "protocol/json_rules.hpp"
#include "workflow/limits.hpp"

namespace aw::api {
using hub::PublishResult;
namespace {

using workflow::StreamStatus;
using workflow::WorkflowService;

// Appends in flight before reading pauses: enough to keep the hub busy, little enough to bound memory.
constexpr std::size_t kMaxOutstanding = 64;
// A line of NDJSON longer than this is refused (it could never be a sensible delta).
constexpr std::size_t kMaxLineBytes = 1 << 20;

// Lives on its connection's thread: every completion from the hub is brought back there first.
class PipeSink final : public BodySink, public std::enable_shared_from_this<PipeSink> {
 public:
  PipeSink(WorkflowService& service, SinkContext ctx, bool ndjson)
      : service_(service), ctx_(std::move(ctx)), ndjson_(ndjson) {}

  void open(const std::string& workflow_id, const std::string& idempotency_key) {
    stream_id_ = service_.open_stream(workflow_id, idempotency_key,
                                      on_connection([this](const PublishResult& r) { on_open(r); }));
  }

  void on_data(std::string_view piece) override {
    if (failure_) return;  // the answer is decided; the rest of the body is read and dropped
    if (ndjson_) return take_lines(piece);
    // A piece may end inside a character: the tail waits for the next piece.
    pending_.append(piece);
    std::size_t cut = complete_utf8_prefix(pending_);
    if (cut == 0) return;
    std::string delta = pending_.substr(0, cut);
    pending_.erase(0, cut);
    push(std::move(delta));
  }

  bool wants_more() const override { return failure_ || outstanding_ + waiting_.size() < kMaxOutstanding; }

  void on_end(Reply reply) override {
    if (!failure_) {
      if (ndjson_ && !pending_.empty())
        take_line(std::exchange(pending_, {}));
      else if (!pending_.empty())
        fail(error_response(400, "bad_utf8", "the body ends inside a UTF-8 character"));
    }
    body_ = Body::ended;
    reply_ = std::move(reply);
    finish_if_done();
  }

  void on_malformed(Response why, Reply reply) override {
    if (!failure_) fail(std::move(why));
    body_ = Body::ended;
    reply_ = std::move(reply);
    finish_if_done();
  }

  void on_abort() override {
    body_ = Body::broken;
    if (!failure_)
      fail(error_response(400, "publisher_disconnected", "the connection broke before the body ended"));
    finish_if_done();
  }

 private:
  // The stream's life, as far as this sink has taken it.
  enum class State : std::uint8_t {
    opening,  // the open is on its way; deltas wait for it
    open,     // deltas are appended as they come
    refused,  // the open was refused: there is nothing to end
    ending,   // the body is over and every append answered: the end is on its way
    done,     // answered (or, with the body broken, ended with nobody to tell)
  };
  enum class Body : std::uint8_t {
    arriving,
    ended,   // complete or malformed: `reply_` waits for the answer
    broken,  // the connection broke: nobody waits for an answer
  };

  void on_open(const PublishResult& r) {
    if (r.status != PublishResult::Status::ok) {
      // The stream never existed: its refusal is the answer, whatever else went wrong meanwhile.
      state_ = State::refused;
      waiting_.clear();
      fail(command_response(r, 201));
    } else {
      state_ = State::open;
      while (!waiting_.empty()) {
        submit(std::move(waiting_.front()));
        waiting_.pop_front();
      }
    }
    finish_if_done();
    ctx_.wake();  // reading may have paused for the deltas that waited
  }

  // Wraps a hub callback so that it runs on the connection's thread with this sink alive.
  hub::PublishCallback on_connection(std::function<void(const PublishResult&)> fn) {
    return [self = shared_from_this(), fn = std::move(fn)](const PublishResult& r) {
      self->ctx_.run_on_connection([self, fn, r] { fn(r); });
    };
  }

  void take_lines(std::string_view piece) {
    pending_.append(piece);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending_.find('\n', start)) != std::string::npos && !failure_; start = nl + 1)
      take_line(pending_.substr(start, nl - start));
    pending_.erase(0, start);
    if (pending_.size() > kMaxLineBytes)
      fail(error_response(400, "bad_ndjson", "an NDJSON line is over 1 MiB"));
  }

  void take_line(std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) return;
    // A key twice or a number out of range has its own answer; other faults are bad_ndjson below.
    if (auto problem = protocol::check_json_rules(line); problem && problem->code != "bad_json")
      return fail(error_response(400, problem->code, problem->message));
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    const boost::json::value* delta = nullptr;
    if (!ec && v.is_object()) delta = v.as_object().if_contains("delta");
    if (!delta || !delta->is_string() || delta->as_string().empty())
      return fail(error_response(400, "bad_ndjson",
                                 "each line must be a JSON object with a non-empty string \"delta\""));
    push(std::string(delta->as_string()));
  }

  void push(std::string delta) {
    // Refused here rather than by the hub: with appends in flight, a smaller delta after a refused one
    // would still fit, and the stream would keep a hole.
    if (bytes_ + delta.size() > workflow::kMaxStreamTextBytes) {
      return fail(error_response(409, "stream_too_long",
                                 "the piped body exceeds the " +
                                     std::to_string(workflow::kMaxStreamTextBytes) +
                                     " bytes a stream may hold; end it and open another",
                                 "{\"max_bytes\":" + std::to_string(workflow::kMaxStreamTextBytes) +
                                     ",\"bytes\":" + std::to_string(bytes_) + "}"));
    }
    bytes_ += delta.size();
    if (state_ == State::open)
      submit(std::move(delta));
    else
      waiting_.push_back(std::move(delta));
  }

  void submit(std::string delta) {
    ++outstanding_;
    service_.append(stream_id_, std::move(delta), std::nullopt, "",
                    on_connection([this](const PublishResult& r) {
                      --outstanding_;
                      if (r.status != PublishResult::Status::ok && !failure_) fail(command_response(r, 202));
                      finish_if_done();
                      ctx_.wake();
                    }));
  }

  // The answer is decided: nothing more is taken from the body. Deltas taken before still reach the
  // stream (those waiting for the open too), so it keeps every piece before the refused one.
  void fail(Response why) {
    failure_ = std::move(why);
    pending_.clear();
  }

  // Once the body has ended (or broken) and every append is answered: end the stream and answer.
  void finish_if_done() {
    // An open still on its way must be answered first: a stream opened after we gave up would stay
    // open until the idle timeout.
    if (body_ == Body::arriving || outstanding_ > 0) return;
    if (state_ == State::refused) return answer(std::move(*failure_));
    if (state_ != State::open) return;
    state_ = State::ending;
    auto status = failure_ ? StreamStatus::failed : StreamStatus::completed;
    std::optional<std::string> reason;
    if (failure_) reason = body_ == Body::broken ? "publisher disconnected" : "the piped body was refused";
    service_.end(stream_id_, status, reason, "", on_connection([this](const PublishResult& r) {
                   answer(failure_ ? std::move(*failure_) : command_response(r, 200, true));
                 }));
  }

  void answer(Response res) {
    state_ = State::done;
    if (reply_ && body_ == Body::ended) reply_(std::move(res));
    reply_ = nullptr;
  }

  WorkflowService& service_;
  SinkContext ctx_;
  bool ndjson_;
  State state_ = State::opening;
  Body body_ = Body::arriving;
  std::string stream_id_;
  std::string pending_;              // bytes not yet a delta: a partial character or line
  std::deque<std::string> waiting_;  // deltas received before the stream was open
  std::size_t outstanding_ = 0;      // appends not yet answered
  std::size_t bytes_ = 0;            // text taken into the stream so far
  std::optional<Response> failure_;  // the answer, once something was refused
  Reply reply_;
};

}  // namespace

void add_pipe_route(Router& router, WorkflowService& service) {
  WorkflowService* s = &service;
  router.add_streaming(
      "POST", "/api/workflows/{workflow_id}/streams/pipe",
      Access::need(auth::Scope::workflows, Access::Agent::workflow),
      [s](const Request& req, const Params& params, SinkContext ctx,
          Reply reply) -> std::shared_ptr<BodySink> {
        if (auto err = check_idempotency_key(req)) {
          reply(std::move(*err));
          return nullptr;
        }
        // Text (each piece a delta) or NDJSON (a delta a line), said explicitly like JSON elsewhere.
        if (auto refusal = check_media_type(req.content_type,
                                            {"text/plain", "application/x-ndjson", "application/ndjson"})) {
          reply(std::move(*refusal));
          return nullptr;
        }
        const std::string type = media_type(req.content_type);
        bool ndjson = type == "application/x-ndjson" || type == "application/ndjson";
        auto sink = std::make_shared<PipeSink>(*s, std::move(ctx), ndjson);
        sink->open(std::string(params.get("workflow_id")), req.idempotency_key);
        return sink;
      });
}

}  // namespace aw::api
