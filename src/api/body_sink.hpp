// Requests whose body is used while it is still arriving: `POST /api/workflows/{id}/streams/pipe` turns
// each piece of a chunked upload into a stream delta at once, so an LLM proxy can pipe its output in.
// The transport feeds the sink on the connection's thread; the sink answers through `Reply`.
#pragma once
#include <functional>
#include <memory>
#include <string_view>

#include "api/http_types.hpp"

namespace aw::api {

class BodySink {
 public:
  virtual ~BodySink() = default;
  // The next piece of the body, in order.
  virtual void on_data(std::string_view piece) = 0;
  // False while the sink has too much in hand; the transport stops reading until `wake` is called.
  virtual bool wants_more() const = 0;
  // The body is complete: the sink answers through `reply` (once its work is done).
  virtual void on_end(Reply reply) = 0;
  // The body broke its own framing (a malformed chunk): the sink ends what it started, as refused, and
  // answers `why` through `reply`.
  virtual void on_malformed(Response why, Reply reply) = 0;
  // The connection broke before the body ended; nobody waits for an answer.
  virtual void on_abort() = 0;
};

// What the transport gives a sink: a way to run code on the connection's thread (completions arrive
// from the hub's writer thread), and the wake-up for a paused read.
struct SinkContext {
  std::function<void(std::function<void()>)> run_on_connection;
  std::function<void()> wake;
};

}  // namespace aw::api
