// The AI output stream routes: open a stream on a workflow, append deltas, end it, read it (with the
// text it ended with), list a workflow's streams. The
// streamed-body route (`POST /api/workflows/{id}/streams/pipe`) lives in the transport layer and uses
// the same WorkflowService calls.
#pragma once
#include "api/router.hpp"
#include "workflow/workflow_service.hpp"

namespace aw::api {

void add_stream_routes(Router& router, workflow::WorkflowService& service);

}  // namespace aw::api
