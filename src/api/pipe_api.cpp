#include "api/pipe_api.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <deque>

#include "api/command_response.hpp"
#include "api/errors.hpp"
#include "api/idempotency_key.hpp"
#include "core/utf8.hpp"

namespace aw::api {
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
    stream_id_ = service_.open_stream(workflow_id, idempotency_key, on_connection([this](const PublishResult& r) {
      open_answered_ = true;
      if (r.status != PublishResult::Status::ok) {
        fail(command_response(r, 201));
      } else {
        opened_ = true;
        while (!waiting_.empty()) {
          submit(std::move(waiting_.front()));
          waiting_.pop_front();
        }
      }
      finish_if_done();
    }));
  }

  void on_data(std::string_view piece) override {
    if (failed_) return;  // the answer is decided; the rest of the body is read and dropped
    if (ndjson_) return take_lines(piece);
    // A piece may end inside a character: the tail waits for the next piece.
    pending_.append(piece);
    std::size_t cut = complete_utf8_prefix(pending_);
    if (cut == 0) return;
    std::string delta = pending_.substr(0, cut);
    pending_.erase(0, cut);
    push(std::move(delta));
  }

  bool wants_more() const override { return failed_ || outstanding_ + waiting_.size() < kMaxOutstanding; }

  void on_end(Reply reply) override {
    if (!failed_) {
      if (ndjson_ && !pending_.empty()) take_line(std::exchange(pending_, {}));
      else if (!pending_.empty())
        fail(error_response(400, "bad_utf8", "the body ends inside a UTF-8 character"));
    }
    reply_ = std::move(reply);
    body_done_ = true;
    finish_if_done();
  }

  void on_abort() override {
    aborted_ = true;
    body_done_ = true;
    if (!failed_) fail(error_response(400, "publisher_disconnected", "the connection broke before the body ended"));
    finish_if_done();
  }

 private:
  // Wraps a hub callback so that it runs on the connection's thread with this sink alive.
  PublishCallback on_connection(std::function<void(const PublishResult&)> fn) {
    return [self = shared_from_this(), fn = std::move(fn)](const PublishResult& r) {
      self->ctx_.run_on_connection([self, fn, r] { fn(r); });
    };
  }

  void take_lines(std::string_view piece) {
    pending_.append(piece);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending_.find('\n', start)) != std::string::npos && !failed_; start = nl + 1)
      take_line(pending_.substr(start, nl - start));
    pending_.erase(0, start);
    if (pending_.size() > kMaxLineBytes) fail(error_response(400, "bad_ndjson", "an NDJSON line is over 1 MiB"));
  }

  void take_line(std::string line) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) return;
    boost::system::error_code ec;
    auto v = boost::json::parse(line, ec);
    const boost::json::value* delta = nullptr;
    if (!ec && v.is_object()) delta = v.as_object().if_contains("delta");
    if (!delta || !delta->is_string() || delta->as_string().empty())
      return fail(error_response(400, "bad_ndjson", "each line must be a JSON object with a non-empty string \"delta\""));
    push(std::string(delta->as_string()));
  }

  void push(std::string delta) {
    if (opened_) submit(std::move(delta));
    else waiting_.push_back(std::move(delta));
  }

  void submit(std::string delta) {
    ++outstanding_;
    ++deltas_;
    service_.append(stream_id_, std::move(delta), std::nullopt, "", on_connection([this](const PublishResult& r) {
      --outstanding_;
      if (r.status != PublishResult::Status::ok && !failed_) fail(command_response(r, 202));
      finish_if_done();
      ctx_.wake();
    }));
  }

  void fail(Response why) {
    failed_ = true;
    failure_ = std::move(why);
    waiting_.clear();
  }

  // Once the body has ended (or broken) and every append is answered: end the stream and answer.
  void finish_if_done() {
    // An open still on its way must be answered first: a stream opened after we gave up would stay
    // open until the idle timeout.
    if (!body_done_ || outstanding_ > 0 || ending_ || !open_answered_) return;
    ending_ = true;
    if (!opened_) return answer(std::move(failure_));
    auto status = failed_ ? StreamStatus::failed : StreamStatus::completed;
    std::optional<std::string> reason;
    if (failed_) reason = aborted_ ? "publisher disconnected" : "the piped body was refused";
    service_.end(stream_id_, status, reason, "", on_connection([this](const PublishResult& r) {
      answer(failed_ ? std::move(failure_) : command_response(r, 200, true));
    }));
  }

  void answer(Response res) {
    if (reply_ && !aborted_) reply_(std::move(res));
    reply_ = nullptr;
  }

  WorkflowService& service_;
  SinkContext ctx_;
  bool ndjson_;
  std::string stream_id_;
  std::string pending_;              // bytes not yet a delta: a partial character or line
  std::deque<std::string> waiting_;  // deltas received before the stream was open
  std::size_t outstanding_ = 0;
  std::size_t deltas_ = 0;
  bool opened_ = false;
  bool open_answered_ = false;
  bool failed_ = false;
  bool aborted_ = false;
  bool body_done_ = false;
  bool ending_ = false;
  Response failure_;
  Reply reply_;
};

}  // namespace

void add_pipe_route(Router& router, WorkflowService& service) {
  WorkflowService* s = &service;
  router.add_streaming(
      "POST", "/api/workflows/{workflow_id}/streams/pipe",
      [s](const Request& req, const Params& params, SinkContext ctx, Reply reply) -> std::shared_ptr<BodySink> {
        if (auto err = check_idempotency_key(req)) {
          reply(std::move(*err));
          return nullptr;
        }
        std::string type = req.content_type.substr(0, req.content_type.find(';'));
        bool ndjson = type == "application/x-ndjson" || type == "application/ndjson";
        if (!ndjson && type != "text/plain" && !type.empty()) {
          reply(error_response(415, "unsupported_media_type",
                               "pipe takes text/plain (each piece is a delta) or application/x-ndjson"));
          return nullptr;
        }
        auto sink = std::make_shared<PipeSink>(*s, std::move(ctx), ndjson);
        sink->open(std::string(params.get("workflow_id")), req.idempotency_key);
        return sink;
      });
}

}  // namespace aw::api
