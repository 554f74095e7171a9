// The agentwire protocol as TypeScript types: the envelopes the server sends over WebSocket, the
// workflow documents they carry, and the answers of the HTTP API. See docs/protocol.md of the server.

/** A workflow's phase. The pipeline runs requirements → … → completed; failed and cancelled end it early. */
export type Phase =
  | "requirements"
  | "design"
  | "implementation"
  | "testing"
  | "deployment"
  | "completed"
  | "failed"
  | "cancelled";

/** The phases in pipeline order (without the two ways out, failed and cancelled). */
export const PIPELINE: readonly Phase[] = [
  "requirements",
  "design",
  "implementation",
  "testing",
  "deployment",
  "completed",
] as const;

/** Phases nothing follows. */
export const FINAL_PHASES: readonly Phase[] = ["completed", "failed", "cancelled"] as const;

export function isFinalPhase(phase: Phase): boolean {
  return FINAL_PHASES.includes(phase);
}

/** The latest requirements submitted for a workflow; each submission replaces the last. */
export interface Requirements {
  text: string | null;
  items: unknown[];
  revision: number;
  submitted_at: string | null;
}

export type StreamStatus = "streaming" | "completed" | "failed";

/** A stream as a workflow lists it: status and counts, no text. */
export interface StreamSummary {
  stream_id: string;
  status: StreamStatus;
  deltas: number;
  length: number;
  bytes: number;
  reason: string | null;
  started_at: string | null;
  ended_at: string | null;
}

export interface Workflow {
  id: string;
  agent_id: string;
  /** 1, 2, 3 … per agent in creation order. */
  number: number;
  name: string;
  metadata: Record<string, unknown>;
  phase: Phase;
  phase_reason: string | null;
  /** Whole percent, 0..100. */
  progress: number;
  progress_message: string | null;
  requirements: Requirements | null;
  streams: StreamSummary[];
  created_at: string | null;
  updated_at: string | null;
}

/** An AI output stream still in progress, as a snapshot carries it: the text so far. */
export interface OpenStream {
  stream_id: string;
  workflow_id: string;
  /** The index the next delta will carry. */
  index: number;
  text: string;
  length: number;
  bytes: number;
  started_at: string | null;
}

/** An agent's current state, as `snapshot` envelopes carry it. */
export interface AgentState {
  workflows: Workflow[];
  streams: OpenStream[];
}

/** Where a subscriber stands in a channel: the last seq it received, in which epoch (history lifetime). */
export interface Position {
  seq: number;
  epoch: string;
}

// ---------------------------------------------------------------------------------------------------
// Envelopes

interface Envelope<T extends string, D> {
  type: T;
  agent_id: string;
  /** RFC 3339 time the server stamped. */
  ts: string;
  data: D;
}

/** A channel event: numbered 1, 2, 3 … per agent, no gaps, no reuse. */
export interface ChannelEnvelope<T extends string, D> extends Envelope<T, D> {
  seq: number;
  /**
   * Only on a merged message: the server sent one message for the events `first_seq`..`seq` (to a
   * subscriber that fell behind). Only consecutive `stream` deltas of one stream (texts concatenated,
   * `data.count` of them) and `progress` of one workflow (the latest value) merge. Absent: just `seq`.
   */
  first_seq?: number;
}

export interface RequirementsSubmittedData {
  workflow_id: string;
  requirements: Requirements;
}

export interface PhaseChangedData {
  workflow_id: string;
  from: Phase;
  to: Phase;
  reason: string | null;
}

export interface ProgressData {
  workflow_id: string;
  percent: number;
  message: string | null;
}

/** The first event of a stream. */
export interface StreamStarted {
  stream_id: string;
  workflow_id: string;
  started: true;
}

/** A piece of AI output; `index` is 0, 1, 2 … within the stream. */
export interface StreamDelta {
  stream_id: string;
  workflow_id: string;
  index: number;
  delta: string;
  /**
   * Only on a merged delta: it stands for this many consecutive deltas from `index` on (`delta` is their
   * texts concatenated), so the stream's next delta carries `index + count`. Absent: 1.
   */
  count?: number;
}

/** The last event of a stream. */
export interface StreamEnded {
  stream_id: string;
  workflow_id: string;
  status: "completed" | "failed";
  reason: string | null;
  deltas: number;
  length: number;
  bytes: number;
  done: true;
}

export type StreamData = StreamStarted | StreamDelta | StreamEnded;

export interface WorkflowDeletedData {
  workflow_id: string;
  streams: string[];
}

export type WorkflowCreatedEvent = ChannelEnvelope<"workflow_created", Workflow>;
export type RequirementsSubmittedEvent = ChannelEnvelope<"requirements_submitted", RequirementsSubmittedData>;
export type PhaseChangedEvent = ChannelEnvelope<"phase_changed", PhaseChangedData>;
export type ProgressEvent = ChannelEnvelope<"progress", ProgressData>;
export type StreamEvent = ChannelEnvelope<"stream", StreamData>;
export type WorkflowDeletedEvent = ChannelEnvelope<"workflow_deleted", WorkflowDeletedData>;

/** The event types the workflow domain publishes. */
export type WorkflowEvent =
  | WorkflowCreatedEvent
  | RequirementsSubmittedEvent
  | PhaseChangedEvent
  | ProgressEvent
  | StreamEvent
  | WorkflowDeletedEvent;

export type WorkflowEventType = WorkflowEvent["type"];

export const WORKFLOW_EVENT_TYPES: readonly WorkflowEventType[] = [
  "workflow_created",
  "requirements_submitted",
  "phase_changed",
  "progress",
  "stream",
  "workflow_deleted",
] as const;

declare const customTypeBrand: unique symbol;

/**
 * The type of an event outside the workflow domain (one a publisher chose through the generic publish
 * API). At run time it is the plain string; it is typed apart so that `switch (event.type)` narrows
 * `event.data` for the workflow types. Test for one with `isCustomEvent(event, "my_type")`, print it with
 * `String(event.type)`.
 */
export interface CustomType {
  readonly [customTypeBrand]: true;
  toString(): string;
}

export interface CustomEvent<D = unknown> {
  type: CustomType;
  agent_id: string;
  seq: number;
  /** Never set on custom events (they do not merge); here so that every channel event has it. */
  first_seq?: number;
  ts: string;
  data: D;
}

/** Every event a channel delivers: a discriminated union over `type`. */
export type ChannelEvent = WorkflowEvent | CustomEvent;

/** True for a workflow-domain event; narrows to the typed union. */
export function isWorkflowEvent(event: SubscriptionItem): event is WorkflowEvent {
  return (WORKFLOW_EVENT_TYPES as readonly string[]).includes(String(event.type));
}

/** True when `event` has the custom type `type`; `D` is what you know its data to be. */
export function isCustomEvent<D = unknown>(event: SubscriptionItem, type: string): event is CustomEvent<D> {
  return String(event.type) === type && !(WORKFLOW_EVENT_TYPES as readonly string[]).includes(type);
}

export function isStreamDelta(data: StreamData): data is StreamDelta {
  return typeof (data as StreamDelta).delta === "string";
}

/** The first seq an event stands for: its `first_seq` when it is a merged message, else its `seq`. */
export function firstSeqOf(event: ChannelEvent): number {
  const first = event.first_seq;
  return typeof first === "number" && Number.isInteger(first) && first >= 0 && first <= event.seq ? first : event.seq;
}

/** How many deltas a delta message stands for: its `count` when merged, else 1. */
export function deltaCount(delta: StreamDelta): number {
  const count = delta.count;
  return typeof count === "number" && Number.isInteger(count) && count >= 1 ? count : 1;
}

export function isStreamEnd(data: StreamData): data is StreamEnded {
  return (data as StreamEnded).done === true;
}

export function isStreamStart(data: StreamData): data is StreamStarted {
  return (data as StreamStarted).started === true;
}

// ---- session messages (no top-level seq) ----

export interface ConnectedInfo {
  session_id: string;
  epoch: string;
  /** The channel's latest seq when this session joined. */
  seq: number;
  /** The client asked to resume (sent `since`). */
  resumed: boolean;
  /** … and every missed event follows (otherwise a snapshot does). */
  recovered: boolean;
  replayed: number;
  /** Seconds between heartbeats (fractions possible). */
  heartbeat_interval: number;
  /** Seconds of client silence before the server closes the connection. */
  idle_timeout: number;
  server_version: string;
}

export interface SnapshotData {
  seq: number;
  epoch: string;
  recovered: boolean;
  state: AgentState;
}

export interface ErrorData {
  code: string;
  message: string;
}

export type ConnectedMessage = Envelope<"connected", ConnectedInfo>;
/** The agent's current state; replaces everything known before. Its position is `data.seq`/`data.epoch`. */
export type SnapshotEvent = Envelope<"snapshot", SnapshotData>;
export type HeartbeatMessage = Envelope<"heartbeat", Record<string, never>>;
export type PongMessage = Envelope<"pong", Record<string, never>>;
export type ErrorMessage = Envelope<"error", ErrorData>;

export type SessionMessage = ConnectedMessage | SnapshotEvent | HeartbeatMessage | PongMessage | ErrorMessage;

/** What a subscription yields: channel events in seq order, and snapshots that reset the state. */
export type SubscriptionItem = ChannelEvent | SnapshotEvent;

// ---------------------------------------------------------------------------------------------------
// HTTP answers

export interface PublishResult {
  seq: number;
  /** The Idempotency-Key was seen before: `seq` is the original event's. */
  duplicate?: boolean;
}

export interface HistoryPage {
  agent_id: string;
  epoch: string;
  latest: number;
  oldest: number;
  /** False when events after `since` were already pruned. */
  complete: boolean;
  next_since: number;
  events: ChannelEvent[];
}

export interface WorkflowList {
  agent_id: string;
  workflows: Workflow[];
  next_cursor: string | null;
}

/** The answer to opening a stream. */
export interface StreamOpened {
  stream_id: string;
  workflow_id: string;
  status: "streaming";
  seq: number;
}

export interface StreamAppended {
  stream_id: string;
  index: number;
  seq: number;
}

export interface StreamEndResult extends Omit<StreamEnded, "done"> {
  seq?: number;
}

/** A stream as GET /api/workflows/{id}/streams lists it: its summary and workflow, `index` while it streams. */
export interface StreamListing extends StreamSummary {
  workflow_id: string;
  /** Only while it streams: the index the next delta will carry. */
  index?: number;
}

/**
 * GET /api/streams/{id}: its summary and its text — so far while it streams, what it ended with once
 * ended (kept as long as its workflow, up to 1 MiB). `text` is absent only from a server too old to keep it.
 */
export interface StreamInfo extends StreamListing {
  text?: string;
}

/** GET /api/workflows/{id}/streams. */
export interface WorkflowStreamList {
  workflow_id?: string;
  /** In the order they started; no text (fetch a stream's with `streamText`). */
  streams: StreamListing[];
}

/** An agent that has workflows, as GET /api/agents lists it. */
export interface AgentSummary {
  agent_id: string;
  /** How many workflows it has. */
  workflows: number;
  /** The latest updated_at of its workflows. */
  updated?: string | null;
}

/** GET /api/agents: one page of the agents that have workflows, by id. */
export interface AgentList {
  agents: AgentSummary[];
  /** Pass as `after` for the next page; null on the last. */
  next: string | null;
}
