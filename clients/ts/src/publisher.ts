// The HTTP side: publish events, read history and stats, and drive workflows and their AI output
// streams — a thin layer over fetch that turns error answers into AgentwireError.

import { AgentwireError, checkAgentId, errorFor } from "./errors.js";
import type {
  AgentList,
  AgentSummary,
  HistoryPage,
  Phase,
  PublishResult,
  StreamAppended,
  StreamEndResult,
  StreamInfo,
  StreamListing,
  StreamOpened,
  Workflow,
  WorkflowList,
  WorkflowStreamList,
} from "./types.js";

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface PublisherOptions {
  /** Base URL of the server (http:// or https://; ws:// and wss:// are accepted too). Default: the page's origin. */
  url?: string;
  /** fetch to use (default: the global one; Node.js 18+ has it). */
  fetch?: FetchLike;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /**
   * For a server with keys: sent as `Authorization: Bearer <apiKey>` on every request — an API key with
   * the scopes the calls need (publish, workflows, read, admin), or a JWT carrying them. 401 rejects with
   * AuthenticationError, 403 with PermissionDeniedError; neither is retried.
   */
  apiKey?: string;
  /** A request without an answer after this long fails with code `timeout` (ms, default 10000). */
  timeoutMs?: number;
  /**
   * Retries of a write that got no answer or a 503, with the same Idempotency-Key (one is generated when
   * the caller gave none), so a retried event is never published twice. Default 0.
   */
  retries?: number;
  /** Wait before the first retry, doubling each time (ms, default 200). */
  retryDelayMs?: number;
}

/** Options of each write. */
export interface WriteOptions {
  /** A retry with the same key gets the original answer back instead of publishing again. */
  idempotencyKey?: string;
}

export interface HistoryOptions {
  /** Events after this seq (default 0: from the oldest kept). */
  since?: number;
  /** 1..1000 (default 100). */
  limit?: number;
}

export interface AgentsOptions {
  /** 1..1000 (the server's default when absent). */
  limit?: number;
  /** Agents after this id: the `next` of the page before. */
  after?: string;
}

export interface NewWorkflowRequest {
  agent_id: string;
  name: string;
  metadata?: Record<string, unknown>;
}

export interface RequirementsRequest {
  text?: string;
  items?: Array<Record<string, unknown> | string>;
}

function httpBase(url: string): string {
  return url.replace(/^ws(s?):\/\//i, "http$1://").replace(/\/+$/, "");
}

function defaultOrigin(): string {
  const loc = (globalThis as { location?: { origin?: string } }).location;
  if (loc?.origin && /^https?:/.test(loc.origin)) return loc.origin;
  throw new Error("agentwire: pass `url` (e.g. http://127.0.0.1:8080): there is no page origin to default to");
}

function newIdempotencyKey(): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto;
  if (c?.randomUUID) return c.randomUUID();
  let key = "";
  for (let i = 0; i < 32; i++) key += Math.floor(Math.random() * 16).toString(16);
  return key;
}

const seg = encodeURIComponent;

export class Publisher {
  readonly url: string;
  private readonly fetchImpl: FetchLike;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryDelayMs: number;

  constructor(options: PublisherOptions = {}) {
    this.url = httpBase(options.url ?? defaultOrigin());
    const f = options.fetch ?? (globalThis as { fetch?: FetchLike }).fetch;
    if (!f) throw new Error("agentwire: no fetch available: pass `fetch` in the publisher options");
    this.fetchImpl = options.fetch ?? ((input, init) => f(input, init));
    this.headers = { ...(options.headers ?? {}) };
    if (options.apiKey !== undefined) {
      if (typeof options.apiKey !== "string" || options.apiKey === "" || /[\r\n]/.test(options.apiKey)) {
        throw new Error("agentwire: apiKey must be a non-empty string on one line");
      }
      this.headers.Authorization = `Bearer ${options.apiKey}`;
    }
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.retries = Math.max(0, options.retries ?? 0);
    this.retryDelayMs = options.retryDelayMs ?? 200;
  }

  // ---- events ----

  /** Publishes `{type, data}` on the agent's channel; resolves to its seq. */
  async publish(agentId: string, type: string, data: unknown = {}, options: WriteOptions = {}): Promise<PublishResult> {
    checkAgentId(agentId);
    return this.write("POST", `/api/agents/${seg(agentId)}/events`, { type, data }, options);
  }

  /** Events after `since`, oldest first, at most `limit`. */
  async history(agentId: string, options: HistoryOptions = {}): Promise<HistoryPage> {
    checkAgentId(agentId);
    const q = new URLSearchParams();
    if (options.since !== undefined) q.set("since", String(options.since));
    if (options.limit !== undefined) q.set("limit", String(options.limit));
    const query = q.toString();
    return this.request("GET", `/api/agents/${seg(agentId)}/events${query ? "?" + query : ""}`);
  }

  /** Every event after `since` still kept, walking the pages. */
  async *allHistory(agentId: string, since = 0): AsyncGenerator<HistoryPage["events"][number]> {
    for (;;) {
      const page = await this.history(agentId, { since, limit: 1000 });
      for (const ev of page.events) yield ev;
      if (page.events.length === 0 || page.next_since >= page.latest) return;
      since = page.next_since;
    }
  }

  /** GET /api/websocket/stats. */
  stats(): Promise<Record<string, unknown>> {
    return this.request("GET", "/api/websocket/stats");
  }

  /** GET /healthz. */
  health(): Promise<{ status: string }> {
    return this.request("GET", "/healthz");
  }

  // ---- workflows ----

  async createWorkflow(request: NewWorkflowRequest, options: WriteOptions = {}): Promise<Workflow> {
    checkAgentId(request.agent_id);
    return this.write("POST", "/api/workflows", request, options);
  }

  getWorkflow(workflowId: string): Promise<Workflow> {
    return this.request("GET", `/api/workflows/${seg(workflowId)}`);
  }

  async listWorkflows(agentId: string, options: { limit?: number; cursor?: string } = {}): Promise<WorkflowList> {
    checkAgentId(agentId);
    const q = new URLSearchParams();
    if (options.limit !== undefined) q.set("limit", String(options.limit));
    if (options.cursor !== undefined) q.set("cursor", options.cursor);
    const query = q.toString();
    return this.request("GET", `/api/agents/${seg(agentId)}/workflows${query ? "?" + query : ""}`);
  }

  submitRequirements(workflowId: string, requirements: RequirementsRequest, options: WriteOptions = {}): Promise<Workflow> {
    return this.write("POST", `/api/workflows/${seg(workflowId)}/requirements`, requirements, options);
  }

  /** Moves the workflow to `phase` (forward one step, or failed / cancelled). */
  changePhase(workflowId: string, phase: Phase, options: WriteOptions & { reason?: string } = {}): Promise<Workflow> {
    const body: Record<string, unknown> = { phase };
    if (options.reason !== undefined) body.reason = options.reason;
    return this.write("POST", `/api/workflows/${seg(workflowId)}/phase`, body, options);
  }

  reportProgress(workflowId: string, percent: number, options: WriteOptions & { message?: string } = {}): Promise<Workflow> {
    const body: Record<string, unknown> = { percent };
    if (options.message !== undefined) body.message = options.message;
    return this.write("POST", `/api/workflows/${seg(workflowId)}/progress`, body, options);
  }

  cancelWorkflow(workflowId: string, options: WriteOptions & { reason?: string } = {}): Promise<Workflow> {
    const body: Record<string, unknown> = {};
    if (options.reason !== undefined) body.reason = options.reason;
    return this.write("POST", `/api/workflows/${seg(workflowId)}/cancel`, body, options);
  }

  /** Deletes a finished workflow (completed, failed or cancelled) with its requirements and streams. */
  deleteWorkflow(workflowId: string, options: WriteOptions = {}): Promise<{ workflow_id: string; deleted: true }> {
    return this.write("DELETE", `/api/workflows/${seg(workflowId)}`, undefined, options);
  }

  // ---- AI output streams ----

  openStream(workflowId: string, options: WriteOptions = {}): Promise<StreamOpened> {
    return this.write("POST", `/api/workflows/${seg(workflowId)}/streams`, undefined, options);
  }

  /** Appends a piece of output; `index`, when given, must be the index it gets (guards against reordering). */
  appendStream(streamId: string, delta: string, options: WriteOptions & { index?: number } = {}): Promise<StreamAppended> {
    const body: Record<string, unknown> = { delta };
    if (options.index !== undefined) body.index = options.index;
    return this.write("POST", `/api/streams/${seg(streamId)}/append`, body, options);
  }

  endStream(
    streamId: string,
    status: "completed" | "failed" = "completed",
    options: WriteOptions & { reason?: string } = {},
  ): Promise<StreamEndResult> {
    const body: Record<string, unknown> = { status };
    if (options.reason !== undefined) body.reason = options.reason;
    return this.write("POST", `/api/streams/${seg(streamId)}/end`, body, options);
  }

  /** A stream's summary and text: so far while it streams, what it ended with once ended. */
  getStream(streamId: string): Promise<StreamInfo> {
    return this.request("GET", `/api/streams/${seg(streamId)}`);
  }

  /**
   * A stream's text, whatever its status (an ended stream's is kept as long as its workflow); null only
   * from a server that did not keep it.
   */
  async streamText(streamId: string): Promise<string | null> {
    const info = await this.getStream(streamId);
    return typeof info.text === "string" ? info.text : null;
  }

  /** The workflow's streams in the order they started: summaries, no text. */
  async workflowStreams(workflowId: string): Promise<StreamListing[]> {
    const list = await this.request<WorkflowStreamList>("GET", `/api/workflows/${seg(workflowId)}/streams`);
    if (!Array.isArray(list?.streams)) throw new AgentwireError(200, "bad_response", "GET /api/workflows/…/streams: no `streams` list");
    return list.streams;
  }

  // ---- agents ----

  /** One page of the agents that have workflows, by id; pass `next` back as `after` for the next page. */
  agents(options: AgentsOptions = {}): Promise<AgentList> {
    const q = new URLSearchParams();
    if (options.limit !== undefined) q.set("limit", String(options.limit));
    if (options.after !== undefined) q.set("after", options.after);
    const query = q.toString();
    return this.request("GET", `/api/agents${query ? "?" + query : ""}`);
  }

  /** Every agent that has workflows, walking the pages. */
  async *allAgents(pageSize?: number): AsyncGenerator<AgentSummary> {
    let after: string | undefined;
    for (;;) {
      const page = await this.agents({ limit: pageSize, after });
      for (const agent of page.agents) yield agent;
      if (!page.next || page.agents.length === 0) return;
      after = page.next;
    }
  }

  // ---- plumbing ----

  private async write<T>(method: string, path: string, body: unknown, options: WriteOptions): Promise<T> {
    let key = options.idempotencyKey;
    if (key === undefined && this.retries > 0) key = newIdempotencyKey();
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.request<T>(method, path, body, key);
      } catch (e) {
        if (!(e instanceof AgentwireError) || !e.retryable || attempt >= this.retries) throw e;
        await new Promise((r) => setTimeout(r, this.retryDelayMs * Math.pow(2, attempt)));
      }
    }
  }

  /** One request; the parsed JSON answer, or an AgentwireError. */
  async request<T>(method: string, path: string, body?: unknown, idempotencyKey?: string): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json", ...this.headers };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (idempotencyKey !== undefined) headers["Idempotency-Key"] = idempotencyKey;
    const controller = typeof AbortController === "function" ? new AbortController() : undefined;
    const timer = controller ? setTimeout(() => controller.abort(), this.timeoutMs) : undefined;
    let response: Response;
    try {
      response = await this.fetchImpl(this.url + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: controller?.signal,
      });
    } catch (e) {
      const timedOut = controller?.signal.aborted === true;
      throw new AgentwireError(
        0,
        timedOut ? "timeout" : "network_error",
        timedOut ? `${method} ${path}: no answer within ${this.timeoutMs} ms` : `${method} ${path}: ${String(e)}`,
        {},
        { cause: e },
      );
    } finally {
      if (timer !== undefined) clearTimeout(timer);
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (!response.ok) {
      const err = (parsed as { error?: Record<string, unknown> } | undefined)?.error;
      if (err && typeof err.code === "string") {
        const { code, message, ...details } = err;
        throw errorFor(response.status, code, typeof message === "string" ? message : code, details);
      }
      throw errorFor(response.status, "http_error", `${method} ${path}: HTTP ${response.status} ${text.slice(0, 200)}`);
    }
    if (parsed === undefined) {
      throw new AgentwireError(response.status, "bad_response", `${method} ${path}: the answer is not JSON`);
    }
    return parsed as T;
  }
}
