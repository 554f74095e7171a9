// The workflow routes: create, read, list, requirements, phase, progress, cancel and delete, and the
// list of agents that have workflows. Each is a
// request → response function over the WorkflowService; the service and the hub decide, these only
// read the body and the path and turn the outcome into HTTP.
#pragma once
#include "api/router.hpp"
#include "workflow/workflow_service.hpp"

namespace aw::api {

inline constexpr std::size_t kDefaultWorkflowPage = 50;
inline constexpr std::size_t kMaxWorkflowPage = 200;
inline constexpr std::size_t kDefaultAgentPage = 100;
inline constexpr std::size_t kMaxAgentPage = 1000;

void add_workflow_routes(Router& router, workflow::WorkflowService& service);

}  // namespace aw::api
