// The shares of the snapshot: documents serialized as the snapshot writes them, counters at their widest.
#include "workflow/snapshot_size.hpp"

namespace aw::workflow {
namespace json = boost::json;
namespace {

// Three counters a document carries, each charged as if it had 20 digits.
constexpr std::uint64_t kCounterSlack = 3 * 20;

// The stream without its text (copying a megabyte to measure the rest would be waste).
Stream shell_of(const Stream& st) {
  Stream shell;
  shell.id = st.id;
  shell.workflow_id = st.workflow_id;
  shell.status = st.status;
  shell.reason = st.reason;
  shell.started_at_ms = st.started_at_ms;
  shell.ended_at_ms = st.ended_at_ms;
  shell.deltas = st.deltas;
  shell.length = st.length;
  shell.bytes = st.bytes;
  return shell;
}

}  // namespace

std::uint64_t json_text_bytes(std::string_view text) noexcept {
  std::uint64_t n = 0;
  for (unsigned char c : text) {
    if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
      n += 2;
    else if (c < 0x20)
      n += 6;  // \u00XX
    else
      n += 1;
  }
  return n;
}

std::uint64_t workflow_share(const Workflow& wf, const Requirements* req) {
  return json::serialize(workflow_json(wf, req, {})).size() + 1;  // + the comma between workflows
}

std::uint64_t stream_share(const Stream& st) {
  const Stream shell = shell_of(st);
  std::uint64_t n = json::serialize(stream_summary_json(shell)).size() + 1 + kCounterSlack;
  if (st.status == StreamStatus::streaming)
    n += json::serialize(open_stream_json(shell)).size() + 1 + kCounterSlack + json_text_bytes(st.text);
  return n;
}

}  // namespace aw::workflow
