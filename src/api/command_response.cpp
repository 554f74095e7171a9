#include "api/command_response.hpp"

#include "api/events_api.hpp"

namespace aw::api {
using hub::PublishResult;
namespace {

// `{...}` + seq → `{...,"seq":N}`.
std::string with_seq_member(const std::string& object_json, std::uint64_t seq) {
  std::string out = object_json.substr(0, object_json.size() - 1);
  if (out.size() > 1) out.push_back(',');
  out.append("\"seq\":").append(std::to_string(seq)).push_back('}');
  return out;
}

}  // namespace

Response command_response(const PublishResult& r, unsigned ok_status, bool with_seq) {
  using S = PublishResult::Status;
  const std::string& reply = r.decision.reply_json;
  if (r.status == S::ok && reply.size() >= 2) {
    Response res;
    res.status = ok_status;
    res.body = with_seq ? with_seq_member(reply, r.seq) : reply;
    return res;
  }
  if (r.status == S::duplicate && reply.size() >= 2) {
    Response res;
    res.status = 200;
    res.body = reply;
    res.headers.emplace_back("Idempotent-Replayed", "true");
    return res;
  }
  return publish_response(r);
}

hub::PublishCallback reply_with(Reply reply, unsigned ok_status, bool with_seq) {
  return [reply = std::move(reply), ok_status, with_seq](const PublishResult& r) {
    reply(command_response(r, ok_status, with_seq));
  };
}

}  // namespace aw::api
