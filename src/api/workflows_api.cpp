#include "api/workflows_api.hpp"

#include "api/command_response.hpp"
#include "api/credentials.hpp"
#include "api/errors.hpp"
#include "api/idempotency_key.hpp"
#include "api/json_body.hpp"
#include "core/agent_id.hpp"

namespace aw::api {
namespace {

using Need = JsonBody::Need;
using workflow::WorkflowService;

// POST /api/workflows {"agent_id", "name", "metadata"?}
void create(WorkflowService& service, const Request& req, const Params& params, Reply reply) {
  if (auto err = check_idempotency_key(req)) return reply(std::move(*err));
  JsonBody body(req.body, {"agent_id", "name", "metadata"});
  auto agent_id = body.string("agent_id", Need::required);
  auto name = body.string("name", Need::required);
  auto metadata = body.object("metadata", Need::optional);
  if (!body.ok()) return reply(body.error());
  if (!is_valid_agent_id(*agent_id)) return reply(bad_agent_id_response());
  if (auto refusal = agent_refusal(params.principal.get(), *agent_id)) return reply(std::move(*refusal));
  workflow::NewWorkflow request{std::move(*agent_id), std::move(*name),
                                metadata ? std::move(*metadata) : boost::json::object()};
  service.create(std::move(request), req.idempotency_key, reply_with(std::move(reply), 201));
}

// GET /api/workflows/{workflow_id}
void get(WorkflowService& service, const Params& params, Reply reply) {
  std::string id(params.get("workflow_id"));
  std::optional<std::string> wf;
  try {
    wf = service.get(id);
  } catch (const workflow::DirectoryUnavailable&) {
    return reply(directory_unavailable_response());
  }
  if (!wf) return reply(error_response(404, "workflow_not_found", "no workflow " + id));
  Response res;
  res.body = std::move(*wf);
  reply(std::move(res));
}

// GET /api/agents/{agent_id}/workflows?limit=&cursor=
void list(WorkflowService& service, const Request& req, const Params& params, Reply reply) {
  std::string_view agent_id = params.get("agent_id");
  if (!is_valid_agent_id(agent_id)) return reply(bad_agent_id_response());
  std::uint64_t limit = kDefaultWorkflowPage;
  std::uint64_t after = 0;
  if (auto l = query_param(req.query, "limit"); l) {
    auto n = parse_count(*l);
    if (!n || *n < 1 || *n > kMaxWorkflowPage)
      return reply(error_response(400, "bad_limit",
                                  "limit must be an integer from 1 to " + std::to_string(kMaxWorkflowPage)));
    limit = *n;
  }
  if (auto c = query_param(req.query, "cursor"); c) {
    auto n = parse_count(*c);
    if (!n)
      return reply(error_response(400, "bad_cursor", "cursor must be the next_cursor of an earlier page"));
    after = *n;
  }
  Response res;
  try {
    res.body = service.list(agent_id, static_cast<std::size_t>(limit), after);
  } catch (const workflow::DirectoryUnavailable&) {
    return reply(directory_unavailable_response());
  }
  reply(std::move(res));
}

// GET /api/agents?limit=&after=
// Only the agents the caller may see: a restricted key or token lists its own.
void agents(WorkflowService& service, const Request& req, const Params& params, Reply reply) {
  std::uint64_t limit = kDefaultAgentPage;
  if (auto l = query_param(req.query, "limit"); l) {
    auto n = parse_count(*l);
    if (!n || *n < 1 || *n > kMaxAgentPage)
      return reply(error_response(400, "bad_limit",
                                  "limit must be an integer from 1 to " + std::to_string(kMaxAgentPage)));
    limit = *n;
  }
  std::string after;
  if (auto a = query_param(req.query, "after"); a) {
    if (!is_valid_agent_id(*a))
      return reply(
          error_response(400, "bad_after", "after must be an agent id (the next of an earlier page)"));
    after = std::move(*a);
  }
  Response res;
  const auth::Principal* who = params.principal.get();
  if (!who) return reply(error_response(500, "internal", "the agents list was reached without a caller"));
  try {
    if (who->allows_every_agent()) {
      res.body = service.agents(after, static_cast<std::size_t>(limit));
    } else {
      res.body = service.agents(after, static_cast<std::size_t>(limit),
                                [who](std::string_view agent) { return who->allows(agent); });
    }
  } catch (const workflow::DirectoryUnavailable&) {
    return reply(directory_unavailable_response());
  }
  reply(std::move(res));
}

// POST /api/workflows/{workflow_id}/requirements {"text"?, "items"?}
void requirements(WorkflowService& service, const Request& req, const Params& params, Reply reply) {
  if (auto err = check_idempotency_key(req)) return reply(std::move(*err));
  JsonBody body(req.body, {"text", "items"});
  auto text = body.string("text", Need::optional);
  auto items = body.array("items", Need::optional);
  if (!body.ok()) return reply(body.error());
  workflow::NewRequirements request{std::move(text), items ? std::move(*items) : boost::json::array()};
  service.submit_requirements(std::string(params.get("workflow_id")), std::move(request), req.idempotency_key,
                              reply_with(std::move(reply), 200));
}

// POST /api/workflows/{workflow_id}/phase {"phase", "reason"?}
void phase(WorkflowService& service, const Request& req, const Params& params, Reply reply) {
  if (auto err = check_idempotency_key(req)) return reply(std::move(*err));
  JsonBody body(req.body, {"phase", "reason"});
  auto name = body.string("phase", Need::required);
  auto reason = body.string("reason", Need::optional);
  if (!body.ok()) return reply(body.error());
  auto to = workflow::parse_phase(*name);
  if (!to)
    return reply(error_response(400, "bad_field",
                                "phase must be one of " + workflow::phase_names() + ", not '" + *name + "'"));
  service.change_phase(std::string(params.get("workflow_id")), *to, std::move(reason), req.idempotency_key,
                       reply_with(std::move(reply), 200));
}

// POST /api/workflows/{workflow_id}/progress {"percent", "message"?}
void progress(WorkflowService& service, const Request& req, const Params& params, Reply reply) {
  if (auto err = check_idempotency_key(req)) return reply(std::move(*err));
  JsonBody body(req.body, {"percent", "message"});
  auto percent = body.number("percent", Need::required);
  auto message = body.string("message", Need::optional);
  if (!body.ok()) return reply(body.error());
  service.report_progress(std::string(params.get("workflow_id")), *percent, std::move(message),
                          req.idempotency_key, reply_with(std::move(reply), 200));
}

// POST /api/workflows/{workflow_id}/cancel {"reason"?} (the body may be empty)
void cancel(WorkflowService& service, const Request& req, const Params& params, Reply reply) {
  if (auto err = check_idempotency_key(req)) return reply(std::move(*err));
  JsonBody body(req.body, {"reason"}, true);
  auto reason = body.string("reason", Need::optional);
  if (!body.ok()) return reply(body.error());
  service.cancel(std::string(params.get("workflow_id")), std::move(reason), req.idempotency_key,
                 reply_with(std::move(reply), 200));
}

// DELETE /api/workflows/{workflow_id}
void remove(WorkflowService& service, const Request& req, const Params& params, Reply reply) {
  if (auto err = check_idempotency_key(req)) return reply(std::move(*err));
  service.remove(std::string(params.get("workflow_id")), req.idempotency_key,
                 reply_with(std::move(reply), 200));
}

}  // namespace

void add_workflow_routes(Router& router, WorkflowService& service) {
  WorkflowService* s = &service;
  router.add("POST", "/api/workflows", Access::need(auth::Scope::workflows, Access::Agent::handler),
             [s](const Request& req, const Params& p, Reply r) { create(*s, req, p, std::move(r)); });
  router.add("GET", "/api/workflows/{workflow_id}", Access::need(auth::Scope::read, Access::Agent::workflow),
             [s](const Request&, const Params& p, Reply r) { get(*s, p, std::move(r)); });
  router.add("DELETE", "/api/workflows/{workflow_id}",
             Access::need(auth::Scope::admin, Access::Agent::workflow),
             [s](const Request& req, const Params& p, Reply r) { remove(*s, req, p, std::move(r)); });
  router.add("GET", "/api/agents", Access::need(auth::Scope::read, Access::Agent::handler),
             [s](const Request& req, const Params& p, Reply r) { agents(*s, req, p, std::move(r)); });
  router.add("GET", "/api/agents/{agent_id}/workflows", Access::need(auth::Scope::read, Access::Agent::path),
             [s](const Request& req, const Params& p, Reply r) { list(*s, req, p, std::move(r)); });
  router.add("POST", "/api/workflows/{workflow_id}/requirements",
             Access::need(auth::Scope::workflows, Access::Agent::workflow),
             [s](const Request& req, const Params& p, Reply r) { requirements(*s, req, p, std::move(r)); });
  router.add("POST", "/api/workflows/{workflow_id}/phase",
             Access::need(auth::Scope::workflows, Access::Agent::workflow),
             [s](const Request& req, const Params& p, Reply r) { phase(*s, req, p, std::move(r)); });
  router.add("POST", "/api/workflows/{workflow_id}/progress",
             Access::need(auth::Scope::workflows, Access::Agent::workflow),
             [s](const Request& req, const Params& p, Reply r) { progress(*s, req, p, std::move(r)); });
  router.add("POST", "/api/workflows/{workflow_id}/cancel",
             Access::need(auth::Scope::workflows, Access::Agent::workflow),
             [s](const Request& req, const Params& p, Reply r) { cancel(*s, req, p, std::move(r)); });
}

}  // namespace aw::api
