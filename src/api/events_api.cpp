#include "api/events_api.hpp"

#include "api/errors.hpp"
#include "api/idempotency_key.hpp"
#include "core/agent_id.hpp"
#include "protocol/json_span.hpp"
#include "protocol/publish_request.hpp"

namespace aw::api {
using hub::Decision;
using hub::PublishResult;
namespace {

std::optional<Response> check_agent(std::string_view agent_id) {
  if (is_valid_agent_id(agent_id)) return std::nullopt;
  return bad_agent_id_response();
}

void publish(Context& ctx, const Request& req, const Params& params, Reply reply) {
  std::string agent_id(params.get("agent_id"));
  if (auto err = check_agent(agent_id)) return reply(std::move(*err));
  if (auto err = check_idempotency_key(req)) return reply(std::move(*err));
  auto parsed = protocol::parse_publish_request(req.body);
  if (!parsed.ok) return reply(error_response(400, parsed.error_code, parsed.error_message));
  ctx.hub.publish(std::move(agent_id), std::move(parsed.request.type), std::move(parsed.request.data),
                  req.idempotency_key,
                  [reply = std::move(reply)](const PublishResult& r) { reply(publish_response(r)); });
}

void history(Context& ctx, const Request& req, const Params& params, Reply reply) {
  std::string_view agent_id = params.get("agent_id");
  if (auto err = check_agent(agent_id)) return reply(std::move(*err));
  std::uint64_t since = 0;
  std::uint64_t limit = kDefaultHistoryLimit;
  if (auto s = query_param(req.query, "since"); s) {
    auto n = parse_count(*s);
    if (!n) return reply(error_response(400, "bad_since", "since must be a non-negative integer"));
    since = *n;
  }
  if (auto l = query_param(req.query, "limit"); l) {
    auto n = parse_count(*l);
    if (!n || *n < 1 || *n > kMaxHistoryLimit)
      return reply(error_response(400, "bad_limit", "limit must be an integer from 1 to 1000"));
    limit = *n;
  }

  hub::HistoryPage page = ctx.hub.history(agent_id, since, static_cast<std::size_t>(limit));
  Response res;
  std::string& b = res.body;
  b.reserve(128 + page.events.size() * 256);
  b.append("{\"agent_id\":");
  protocol::append_quoted(b, agent_id);
  b.append(",\"epoch\":");
  protocol::append_quoted(b, page.epoch);
  b.append(",\"latest\":").append(std::to_string(page.latest));
  b.append(",\"oldest\":").append(std::to_string(page.oldest));
  b.append(",\"complete\":").append(page.complete ? "true" : "false");
  std::uint64_t next = page.events.empty() ? since : page.events.back()->seq;
  b.append(",\"next_since\":").append(std::to_string(next));
  b.append(",\"events\":[");
  for (std::size_t i = 0; i < page.events.size(); ++i) {
    if (i) b.push_back(',');
    b.append(page.events[i]->envelope());  // the same bytes subscribers received
  }
  b.append("]}");
  reply(std::move(res));
}

}  // namespace

Response publish_response(const PublishResult& r) {
  using S = PublishResult::Status;
  switch (r.status) {
    case S::ok: {
      Response res;
      res.status = 202;
      res.body.append("{\"seq\":").append(std::to_string(r.seq)).push_back('}');
      return res;
    }
    case S::duplicate: {
      Response res;
      res.status = 202;
      res.body = "{\"seq\":" + std::to_string(r.seq) + ",\"duplicate\":true}";
      return res;
    }
    case S::refused: {
      const Decision& d = r.decision;
      unsigned status = d.refusal == Decision::Refusal::not_found  ? 404
                        : d.refusal == Decision::Refusal::conflict ? 409
                                                                   : 400;
      return error_response(status, d.error_code, d.error_message, d.error_details_json);
    }
    case S::store_full:
      return error_response(503, "store_full", r.message);
    case S::store_failed:
      return error_response(503, "store_unavailable", r.message);
    case S::broker_unavailable:
      return error_response(503, "broker_unavailable", r.message);
    case S::contended:
      return error_response(503, "state_contended", r.message);
    case S::overloaded:
      return error_response(503, "overloaded", r.message);
    case S::shutting_down:
      return error_response(503, "shutting_down", r.message);
  }
  return error_response(500, "internal", "unexpected publish result");
}

void add_event_routes(Router& router, Context& ctx) {
  router.add(
      "POST", "/api/agents/{agent_id}/events", Access::need(auth::Scope::publish, Access::Agent::path),
      [&ctx](const Request& req, const Params& p, Reply reply) { publish(ctx, req, p, std::move(reply)); });
  router.add(
      "GET", "/api/agents/{agent_id}/events", Access::need(auth::Scope::read, Access::Agent::path),
      [&ctx](const Request& req, const Params& p, Reply reply) { history(ctx, req, p, std::move(reply)); });
}

}  // namespace aw::api
