#include "api/streams_api.hpp"

#include "api/command_response.hpp"
#include "api/errors.hpp"
#include "api/idempotency_key.hpp"
#include "api/json_body.hpp"

namespace aw::api {
namespace {

using Need = JsonBody::Need;
using workflow::WorkflowService;

// Stream answers are small status objects, so they also carry the event's seq.
hub::PublishCallback answer(Reply reply, unsigned ok_status) {
  return reply_with(std::move(reply), ok_status, true);
}

// POST /api/workflows/{workflow_id}/streams (the body may be empty)
void open(WorkflowService& service, const Request& req, const Params& params, Reply reply) {
  if (auto err = check_idempotency_key(req)) return reply(std::move(*err));
  JsonBody body(req.body, {}, true);
  if (!body.ok()) return reply(body.error());
  service.open_stream(std::string(params.get("workflow_id")), req.idempotency_key,
                      answer(std::move(reply), 201));
}

// POST /api/streams/{stream_id}/append {"delta", "index"?}
void append(WorkflowService& service, const Request& req, const Params& params, Reply reply) {
  if (auto err = check_idempotency_key(req)) return reply(std::move(*err));
  JsonBody body(req.body, {"delta", "index"});
  auto delta = body.string("delta", Need::required);
  auto index = body.count("index", Need::optional);
  if (!body.ok()) return reply(body.error());
  if (delta->empty()) return reply(error_response(400, "bad_field", "delta must not be empty"));
  service.append(std::string(params.get("stream_id")), std::move(*delta), index, req.idempotency_key,
                 answer(std::move(reply), 202));
}

// POST /api/streams/{stream_id}/end {"status": "completed" | "failed", "reason"?}
void end(WorkflowService& service, const Request& req, const Params& params, Reply reply) {
  if (auto err = check_idempotency_key(req)) return reply(std::move(*err));
  JsonBody body(req.body, {"status", "reason"});
  auto status_name = body.string("status", Need::required);
  auto reason = body.string("reason", Need::optional);
  if (!body.ok()) return reply(body.error());
  auto status = workflow::parse_stream_status(*status_name);
  if (!status || *status == workflow::StreamStatus::streaming)
    return reply(
        error_response(400, "bad_field", "status must be completed or failed, not '" + *status_name + "'"));
  service.end(std::string(params.get("stream_id")), *status, std::move(reason), req.idempotency_key,
              answer(std::move(reply), 200));
}

// GET /api/streams/{stream_id}
void get(WorkflowService& service, const Params& params, Reply reply) {
  std::string id(params.get("stream_id"));
  std::optional<std::string> st;
  try {
    st = service.get_stream(id);
  } catch (const workflow::DirectoryUnavailable&) {
    return reply(directory_unavailable_response());
  }
  if (!st) return reply(error_response(404, "stream_not_found", "no stream " + id));
  Response res;
  res.body = std::move(*st);
  reply(std::move(res));
}

// GET /api/workflows/{workflow_id}/streams
void list(WorkflowService& service, const Params& params, Reply reply) {
  std::string id(params.get("workflow_id"));
  std::optional<std::string> streams;
  try {
    streams = service.workflow_streams(id);
  } catch (const workflow::DirectoryUnavailable&) {
    return reply(directory_unavailable_response());
  }
  if (!streams) return reply(error_response(404, "workflow_not_found", "no workflow " + id));
  Response res;
  res.body = std::move(*streams);
  reply(std::move(res));
}

}  // namespace

void add_stream_routes(Router& router, WorkflowService& service) {
  WorkflowService* s = &service;
  router.add("POST", "/api/workflows/{workflow_id}/streams",
             Access::need(auth::Scope::workflows, Access::Agent::workflow),
             [s](const Request& req, const Params& p, Reply r) { open(*s, req, p, std::move(r)); });
  router.add("GET", "/api/workflows/{workflow_id}/streams",
             Access::need(auth::Scope::read, Access::Agent::workflow),
             [s](const Request&, const Params& p, Reply r) { list(*s, p, std::move(r)); });
  router.add("POST", "/api/streams/{stream_id}/append",
             Access::need(auth::Scope::workflows, Access::Agent::stream),
             [s](const Request& req, const Params& p, Reply r) { append(*s, req, p, std::move(r)); });
  router.add("POST", "/api/streams/{stream_id}/end",
             Access::need(auth::Scope::workflows, Access::Agent::stream),
             [s](const Request& req, const Params& p, Reply r) { end(*s, req, p, std::move(r)); });
  router.add("GET", "/api/streams/{stream_id}", Access::need(auth::Scope::read, Access::Agent::stream),
             [s](const Request&, const Params& p, Reply r) { get(*s, p, std::move(r)); });
}

}  // namespace aw::api
