// `POST /api/workflows/{workflow_id}/streams/pipe`: a streamed request body (chunked) becomes an AI
// output stream while it arrives. text/plain: every piece received is a delta; application/x-ndjson:
// one {"delta": "..."} per line. The stream ends completed when the body ends, failed when the
// publisher's connection breaks or a piece is refused.
#pragma once
#include "api/router.hpp"
#include "workflow/workflow_service.hpp"

namespace aw::api {

void add_pipe_route(Router& router, workflow::WorkflowService& service);

}  // namespace aw::api
