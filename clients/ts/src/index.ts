// @agentwire/client: follow AI agents live over WebSocket, publish over HTTP. Works in browsers (the
// global WebSocket) and in Node.js (the `ws` package, injected or loaded on first use).

export { AgentwireClient, toWebSocketUrl, type ClientOptions } from "./client.js";
export {
  Subscription,
  ServerMessageError,
  type ConnectionState,
  type StateChange,
  type StateListener,
  type StartFrom,
  type SubscribeOptions,
  type SubscriptionHandlers,
} from "./subscription.js";
export {
  Publisher,
  type PublisherOptions,
  type WriteOptions,
  type HistoryOptions,
  type AgentsOptions,
  type NewWorkflowRequest,
  type RequirementsRequest,
} from "./publisher.js";
export {
  AgentwireError,
  AuthenticationError,
  PermissionDeniedError,
  isValidAgentId,
  type TokenProvider,
} from "./errors.js";
export { Backoff, type BackoffOptions } from "./backoff.js";
export type { WebSocketConstructor, WebSocketLike } from "./websocket.js";
export { AgentView, type AgentViewOptions, type StreamTextSource, type WorkflowView, type StreamView } from "./view.js";
export * from "./types.js";
