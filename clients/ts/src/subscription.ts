// One agent's channel followed over WebSocket, for as long as the caller wants it: reconnects with
// backoff, resumes from the last delivered seq, applies snapshots, and notices a dead connection from
// missing heartbeats. Events reach the caller in seq order, each once (a merged message, standing for
// seqs first_seq..seq, counts for all of them).

import { Backoff, type BackoffOptions } from "./backoff.js";
import { AgentwireError, checkToken, errorFor, type TokenProvider } from "./errors.js";
import type {
  ChannelEvent,
  ConnectedInfo,
  ErrorData,
  Position,
  SnapshotEvent,
  SubscriptionItem,
} from "./types.js";
import { firstSeqOf } from "./types.js";
import { OPEN, messageText, type WebSocketConstructor, type WebSocketLike } from "./websocket.js";

/**
 * - `connecting`: before the first connection is established (also while retrying it);
 * - `live`: the first connection is up and events flow;
 * - `reconnecting`: the connection was lost; waiting or trying to get it back;
 * - `resumed`: connected again; what was missed follows (replayed, or as a snapshot);
 * - `closed`: closed by `close()` (or given up after `maxReconnectAttempts`); final.
 */
export type ConnectionState = "connecting" | "live" | "reconnecting" | "resumed" | "closed";

export interface StateChange {
  state: ConnectionState;
  previous: ConnectionState;
  /** Why the connection was lost (reconnecting, connecting after a failure, closed). */
  reason?: string;
  /** Failed attempts in a row so far (reconnecting). */
  attempt?: number;
  /** Wait before the next attempt, ms (reconnecting). */
  delayMs?: number;
  /** The server's `connected` data (live, resumed). */
  connected?: ConnectedInfo;
  /** Why a subscription gave up (closed). */
  error?: unknown;
}

export type StateListener = (state: ConnectionState, change: StateChange) => void;

/** Where to start on the first connection. */
export type StartFrom =
  /** Only events published from now on. */
  | "live"
  /** A `snapshot` of the agent's current state first, then every event after it. */
  | "snapshot"
  /** Every event after this position (e.g. one saved earlier); a snapshot if that is no longer possible. */
  | Position;

export interface SubscriptionHandlers {
  /** Each channel event, in seq order, exactly once. */
  onEvent?: (event: ChannelEvent) => void;
  /** A snapshot: the agent's whole current state; forget what earlier events built. */
  onSnapshot?: (snapshot: SnapshotEvent) => void;
  /** Every change of the connection state. */
  onStateChange?: StateListener;
  /** Each successful connection (the server's `connected` data). */
  onConnected?: (info: ConnectedInfo) => void;
  /** Problems that do not stop the subscription: server `error` envelopes, bad frames, handler exceptions. */
  onError?: (error: unknown) => void;
}

export interface SubscribeOptions extends SubscriptionHandlers {
  /** Default "live". */
  start?: StartFrom;
  /** This subscription's token instead of the client's. */
  token?: string;
  /** This subscription's token provider instead of the client's. */
  tokenProvider?: TokenProvider;
}

/**
 * With a `tokenProvider`, how many upgrades in a row may be refused with 401 (asking the provider again
 * each time) before the subscription gives up with AuthenticationError: a provider that keeps handing out
 * expired tokens must not make the client retry for ever.
 */
export const MAX_AUTH_ATTEMPTS = 3;

/** Connection settings shared by a client's subscriptions. */
export interface ConnectionSettings {
  /** ws:// or wss:// base URL of the server, without a trailing slash. */
  wsUrl: string;
  resolveWebSocket: () => Promise<WebSocketConstructor>;
  backoff: BackoffOptions;
  /** A connection that has not said `connected` within this time is abandoned (ms). */
  connectTimeoutMs: number;
  /** No frame for this many heartbeat intervals: the connection is dead. */
  heartbeatTimeoutFactor: number;
  /** Heartbeat interval assumed when the server does not say (seconds). */
  defaultHeartbeatIntervalS: number;
  /** Give up after this many failed attempts in a row. */
  maxReconnectAttempts: number;
  /** http(s) base URL, to ask why an upgrade was refused (browsers do not show a refused upgrade's status). */
  httpUrl?: string;
  token?: string;
  tokenProvider?: TokenProvider;
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

type Timer = ReturnType<typeof setTimeout>;

/** An unbounded queue feeding one async iterator. */
class ItemQueue<T> {
  private readonly items: T[] = [];
  private readonly waiting: Array<{ resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void }> = [];
  private ended = false;
  private error: unknown = undefined;

  push(item: T): void {
    if (this.ended) return;
    const waiter = this.waiting.shift();
    if (waiter) waiter.resolve({ value: item, done: false });
    else this.items.push(item);
  }

  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    for (const w of this.waiting.splice(0)) {
      if (error !== undefined) w.reject(error);
      else w.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) return Promise.resolve({ value: this.items.shift() as T, done: false });
    if (this.ended) {
      if (this.error !== undefined) {
        const e = this.error;
        this.error = undefined;
        return Promise.reject(e);
      }
      return Promise.resolve({ value: undefined, done: true });
    }
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }
}

/** The server's `error` envelope, passed to `onError`. */
export class ServerMessageError extends Error {
  readonly code: string;
  constructor(data: ErrorData) {
    super(data.message);
    this.name = "ServerMessageError";
    this.code = data.code;
  }
}

export class Subscription implements AsyncIterable<SubscriptionItem> {
  readonly agentId: string;
  /** Resolves at the first `connected`; rejects if the subscription closes before. */
  readonly ready: Promise<ConnectedInfo>;

  private readonly settings: ConnectionSettings;
  private readonly handlers: SubscriptionHandlers;
  private readonly backoff: Backoff;
  private readonly listeners = new Set<StateListener>();
  private readonly queues = new Set<ItemQueue<SubscriptionItem>>();

  private currentState: ConnectionState = "connecting";
  private pos: Position | null = null;
  private info: ConnectedInfo | null = null;
  /** A snapshot is still owed to the caller (start "snapshot", until one was delivered). */
  private needSnapshot: boolean;
  /** Events are held back until the snapshot that is on its way. */
  private awaitingSnapshot = false;
  private held: ChannelEvent[] = [];

  private socket: WebSocketLike | null = null;
  /** The current socket has said `connected`. */
  private joined = false;
  /** The current socket asked to resume (sent since). */
  private resuming = false;
  private everConnected = false;
  private closing = false;
  private attemptGeneration = 0;
  private connectTimer: Timer | null = null;
  private deadTimer: Timer | null = null;
  private retryTimer: Timer | null = null;
  private heartbeatMs: number;
  private readonly token: string | undefined;
  private readonly tokenProvider: TokenProvider | undefined;
  /** Upgrades refused with 401 in a row. */
  private authFailures = 0;
  private refreshing = false;
  private exp: number | null = null;
  private refreshes = 0;
  private resolveReady!: (info: ConnectedInfo) => void;
  private rejectReady!: (e: unknown) => void;
  /** The browser says the network is back: skip the rest of the backoff wait (a live connection stays). */
  private readonly onOnline = (): void => {
    if (this.retryTimer !== null) this.reconnectNow();
  };

  constructor(agentId: string, settings: ConnectionSettings, options: SubscribeOptions = {}) {
    this.agentId = agentId;
    this.settings = settings;
    this.handlers = options;
    this.backoff = new Backoff(settings.backoff);
    this.heartbeatMs = settings.defaultHeartbeatIntervalS * 1000;
    if (options.token !== undefined && options.tokenProvider !== undefined) {
      throw new Error("agentwire: give token or tokenProvider, not both");
    }
    if (options.token !== undefined) checkToken(options.token);
    const own = options.token !== undefined || options.tokenProvider !== undefined;
    this.token = own ? options.token : settings.token;
    this.tokenProvider = own ? options.tokenProvider : settings.tokenProvider;
    const start = options.start ?? "live";
    this.needSnapshot = start === "snapshot";
    if (typeof start === "object") this.pos = { seq: start.seq, epoch: start.epoch };
    if (options.onStateChange) this.listeners.add(options.onStateChange);
    this.ready = new Promise<ConnectedInfo>((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    this.ready.catch(() => undefined);  // not everyone waits for it
    const g = globalThis as { addEventListener?: (type: string, fn: () => void) => void };
    g.addEventListener?.("online", this.onOnline);
    void this.connect();
  }

  /** The connection state now. */
  get state(): ConnectionState {
    return this.currentState;
  }

  /** The last delivered seq and its epoch (save it to resume later with `start`); null before the first connection. */
  get position(): Position | null {
    return this.pos ? { ...this.pos } : null;
  }

  /** The latest `connected` data, or null before the first connection. */
  get connectedInfo(): ConnectedInfo | null {
    return this.info;
  }

  /** When the current connection's token expires (seconds since the epoch), once the server said so. */
  get tokenExp(): number | null {
    return this.exp;
  }

  /** How many `refresh` messages the server accepted (`token_refreshed`). */
  get tokenRefreshes(): number {
    return this.refreshes;
  }

  /** Listens to state changes; returns the function that stops listening. */
  onStateChange(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Asks the server for a snapshot of the agent's state; events wait behind it. False if not connected. */
  requestSnapshot(): boolean {
    if (!this.send({ type: "snapshot" })) return false;
    this.awaitingSnapshot = true;
    return true;
  }

  /** Sends an application-level ping (the server answers `pong`). False if not connected. */
  ping(): boolean {
    return this.send({ type: "ping" });
  }

  /** Drops the current connection (if any) and connects again right away, resuming. */
  reconnectNow(): void {
    if (this.closing) return;
    if (this.retryTimer !== null) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
      void this.connect();
    } else if (this.socket) {
      this.lost("reconnect requested", 0);
    }
  }

  /** Stops for good: closes the connection and ends every iterator. */
  close(): void {
    this.finish();
  }

  /** Channel events and snapshots, as they come. Leaving the loop closes the subscription. */
  [Symbol.asyncIterator](): AsyncIterator<SubscriptionItem> {
    const queue = new ItemQueue<SubscriptionItem>();
    if (this.closing) queue.end();
    else this.queues.add(queue);
    return {
      next: () => queue.next(),
      return: () => {
        this.queues.delete(queue);
        queue.end();
        this.close();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }

  // ---- connection lifecycle ----

  private async connect(): Promise<void> {
    const generation = ++this.attemptGeneration;
    this.retryTimer = null;
    let Ctor: WebSocketConstructor;
    try {
      Ctor = await this.settings.resolveWebSocket();
    } catch (e) {
      this.finish(e);
      return;
    }
    if (this.closing || generation !== this.attemptGeneration) return;

    // Resume from where we are, unless a snapshot is still owed: then start over with one.
    this.resuming = this.pos !== null && !this.needSnapshot;
    let url = `${this.settings.wsUrl}/ws/agents/${encodeURIComponent(this.agentId)}`;
    if (this.resuming && this.pos) {
      url += `?since=${this.pos.seq}`;
      if (this.pos.epoch) url += `&epoch=${encodeURIComponent(this.pos.epoch)}`;
    }
    let token: string | undefined;
    try {
      token = await this.fetchToken();
    } catch (e) {
      if (this.closing || generation !== this.attemptGeneration) return;
      this.report(e);
      this.lost(`the token provider failed: ${String(e)}`);
      return;
    }
    if (this.closing || generation !== this.attemptGeneration) return;
    let socket: WebSocketLike;
    try {
      // Browsers cannot set headers on a WebSocket: the token goes as the subprotocol list "bearer, <token>".
      socket = (token === undefined ? new Ctor(url) : new Ctor(url, ["bearer", token])) as WebSocketLike;
    } catch (e) {
      this.report(e);
      this.lost(`cannot open ${url}: ${String(e)}`);
      return;
    }
    this.socket = socket;
    this.joined = false;
    this.connectTimer = setTimeout(() => {
      if (this.socket === socket) this.lost(`no connected message within ${this.settings.connectTimeoutMs} ms`);
    }, this.settings.connectTimeoutMs);
    socket.onopen = () => undefined;
    socket.onmessage = (event) => {
      if (this.socket === socket) this.onFrame(event.data);
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      const reason = `closed by the server (${event.code}${event.reason ? " " + event.reason : ""})`;
      if (this.joined) this.lost(reason);
      else void this.refusedOrLost(generation, token, reason);
    };
    socket.onerror = (event) => {
      if (this.socket !== socket) return;
      if (this.joined) {
        this.lost("connection failed");
        return;
      }
      // `ws` names a refused upgrade's status in its error; browsers say nothing.
      const text = String((event as { message?: unknown })?.message ?? "");
      const m = /Unexpected server response: (\d+)/.exec(text);
      void this.refusedOrLost(generation, token, m ? `handshake answered HTTP ${m[1]}` : "connection failed", m ? Number(m[1]) : undefined);
    };
  }

  /** The provider's token (awaited), else the fixed one, else none. */
  private async fetchToken(): Promise<string | undefined> {
    if (!this.tokenProvider) return this.token;
    return checkToken(await this.tokenProvider());
  }

  /**
   * A connection that failed before `connected`: if the server refused the token (401) or what it allows
   * (403), end or retry as the refusal says; anything else is an ordinary lost connection.
   */
  private async refusedOrLost(generation: number, token: string | undefined, reason: string, status?: number): Promise<void> {
    this.dropSocket(false);
    let refusal: AgentwireError | null = null;
    if (status === undefined || status === 401 || status === 403) refusal = await this.askWhyRefused(token, status);
    if (this.closing || generation !== this.attemptGeneration || this.socket !== null || this.retryTimer !== null) return;
    if (refusal === null) {
      this.lost(reason);
      return;
    }
    if (refusal.status === 401 && this.tokenProvider && ++this.authFailures < MAX_AUTH_ATTEMPTS) {
      // An expired or rotated-out token: the provider may have a fresh one by the next attempt.
      this.lost(`refused: ${refusal.code}: ${refusal.message}`);
      return;
    }
    this.report(refusal);
    this.finish(refusal);
  }

  /**
   * The server's reason for refusing the upgrade: the same route asked over plain HTTP with the token as
   * `Authorization: Bearer` answers 401/403 with the JSON error (a token it accepts gets 426 instead).
   * Null when it was not a refusal of the credentials, or nobody answers.
   */
  private async askWhyRefused(token: string | undefined, status?: number): Promise<AgentwireError | null> {
    const fetchImpl = (globalThis as { fetch?: FetchLike }).fetch;
    const base = this.settings.httpUrl?.replace(/^ws(s?):\/\//i, "http$1://").replace(/\/+$/, "");
    if (fetchImpl && base) {
      const controller = typeof AbortController === "function" ? new AbortController() : undefined;
      const timer = controller ? setTimeout(() => controller.abort(), this.settings.connectTimeoutMs) : undefined;
      try {
        const headers: Record<string, string> = { Accept: "application/json" };
        if (token !== undefined) headers.Authorization = `Bearer ${token}`;
        const res = await fetchImpl(`${base}/ws/agents/${encodeURIComponent(this.agentId)}`, { headers, signal: controller?.signal });
        if (res.status === 401 || res.status === 403) {
          const body = (await res.json().catch(() => null)) as { error?: { code?: unknown; message?: unknown } } | null;
          const code = typeof body?.error?.code === "string" ? body.error.code : res.status === 401 ? "unauthorized" : "forbidden";
          const message = typeof body?.error?.message === "string" ? body.error.message : `HTTP ${res.status}`;
          return errorFor(res.status, code, message);
        }
        return null;
      } catch {
        // nobody answers (or CORS refused the question): fall back on the status, if any
      } finally {
        if (timer !== undefined) clearTimeout(timer);
      }
    }
    if (status === 401 || status === 403) {
      return errorFor(status, status === 401 ? "unauthorized" : "forbidden", `the server refused to subscribe to ${this.agentId} (HTTP ${status})`);
    }
    return null;
  }

  /** token_expiring: ask the provider for a new token and send it as `refresh`, off the event path. */
  private async refreshToken(): Promise<void> {
    if (!this.tokenProvider || this.refreshing) return;
    this.refreshing = true;
    const socket = this.socket;
    try {
      const token = await this.fetchToken();
      if (this.socket === socket && token !== undefined) this.send({ type: "refresh", token });
    } catch (e) {
      // The server closes with 4001 at exp; the reconnect asks the provider again.
      this.report(e);
    } finally {
      this.refreshing = false;
    }
  }

  /** The connection is gone (or judged dead): forget it and try again after a backoff wait. */
  private lost(reason: string, delayOverride?: number): void {
    this.dropSocket(false);
    if (this.closing) return;
    this.awaitingSnapshot = false;
    this.held = [];
    if (this.backoff.attempts >= this.settings.maxReconnectAttempts) {
      this.finish(new AgentwireError(0, "gave_up", `gave up after ${this.backoff.attempts} attempts: ${reason}`));
      return;
    }
    const attempt = this.backoff.attempts + 1;
    const delayMs = delayOverride ?? this.backoff.next();
    if (delayOverride !== undefined) this.backoff.next();
    this.setState(this.everConnected ? "reconnecting" : "connecting", { reason, attempt, delayMs });
    this.retryTimer = setTimeout(() => void this.connect(), delayMs);
  }

  private dropSocket(graceful: boolean): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    if (this.deadTimer !== null) clearTimeout(this.deadTimer);
    this.connectTimer = this.deadTimer = null;
    const socket = this.socket;
    this.socket = null;
    this.joined = false;
    if (!socket) return;
    // No-ops rather than null: `ws` throws on an 'error' event nobody listens to.
    const ignore = (): void => undefined;
    socket.onopen = ignore;
    socket.onmessage = ignore;
    socket.onclose = ignore;
    socket.onerror = ignore;
    try {
      if (graceful && socket.readyState === OPEN) socket.close(1000, "client closed");
      else if (socket.terminate) socket.terminate();
      else socket.close();
    } catch {
      // already closing or closed
    }
  }

  private finish(error?: unknown): void {
    if (this.closing) return;
    this.closing = true;
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.dropSocket(true);
    const g = globalThis as { removeEventListener?: (type: string, fn: () => void) => void };
    g.removeEventListener?.("online", this.onOnline);
    this.setState("closed", error === undefined ? { reason: "closed by the client" } : { reason: String(error), error });
    this.rejectReady(error ?? new AgentwireError(0, "closed", "subscription closed before it connected"));
    for (const q of this.queues) q.end(error);
    this.queues.clear();
  }

  private armDeadTimer(): void {
    if (this.deadTimer !== null) clearTimeout(this.deadTimer);
    const timeout = Math.ceil(this.heartbeatMs * this.settings.heartbeatTimeoutFactor);
    const socket = this.socket;
    this.deadTimer = setTimeout(() => {
      if (this.socket === socket) this.lost(`no heartbeat for ${timeout} ms`);
    }, timeout);
  }

  private send(message: object): boolean {
    const socket = this.socket;
    if (!socket || !this.joined || socket.readyState !== OPEN) return false;
    try {
      socket.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  // ---- what arrives ----

  private onFrame(data: unknown): void {
    if (this.joined) this.armDeadTimer();  // any frame is a sign of life
    const text = messageText(data);
    let msg: unknown;
    try {
      msg = text === null ? null : JSON.parse(text);
    } catch {
      msg = null;
    }
    if (!msg || typeof msg !== "object" || typeof (msg as { type?: unknown }).type !== "string") {
      this.report(new AgentwireError(0, "bad_frame", "the server sent a frame that is not a JSON envelope"));
      return;
    }
    const envelope = msg as { type: string; seq?: unknown; data?: unknown };
    switch (envelope.type) {
      case "connected":
        return this.onConnected(envelope.data as ConnectedInfo);
      case "snapshot":
        if (this.joined) this.onSnapshot(envelope as SnapshotEvent);
        return;
      case "heartbeat":
      case "pong":
        return;
      case "token_expiring":
      case "token_refreshed": {
        const exp = (envelope.data as { exp?: unknown } | undefined)?.exp;
        if (typeof exp === "number") this.exp = exp;
        if (envelope.type === "token_refreshed") this.refreshes++;
        else if (this.tokenProvider) void this.refreshToken();
        else this.report(new AgentwireError(0, "token_expiring", "the token expires soon and there is no tokenProvider to renew it"));
        return;
      }
      case "error":
        this.report(new ServerMessageError(envelope.data as ErrorData));
        return;
    }
    // Channel events carry a top-level seq; anything else is a session message this client predates.
    if (!this.joined || typeof envelope.seq !== "number") return;
    const event = envelope as ChannelEvent;
    if (this.awaitingSnapshot) this.held.push(event);
    else this.deliver(event);
  }

  private onConnected(info: ConnectedInfo): void {
    if (this.connectTimer !== null) clearTimeout(this.connectTimer);
    this.connectTimer = null;
    this.joined = true;
    this.info = info;
    this.authFailures = 0;
    this.exp = null;
    this.backoff.reset();
    if (typeof info.heartbeat_interval === "number" && info.heartbeat_interval > 0) {
      this.heartbeatMs = info.heartbeat_interval * 1000;
    }
    this.armDeadTimer();
    if (this.resuming) {
      // Recovered: the missed events follow. Otherwise the server sends a snapshot next.
      if (!info.recovered) this.awaitingSnapshot = true;
    } else {
      this.pos = { seq: info.seq, epoch: info.epoch };
      if (this.needSnapshot) this.requestSnapshot();
    }
    const state: ConnectionState = this.everConnected ? "resumed" : "live";
    this.everConnected = true;
    this.setState(state, { connected: info });
    this.call(this.handlers.onConnected, info);
    this.resolveReady(info);
  }

  private onSnapshot(snapshot: SnapshotEvent): void {
    this.pos = { seq: snapshot.data.seq, epoch: snapshot.data.epoch };
    this.awaitingSnapshot = false;
    this.needSnapshot = false;
    this.call(this.handlers.onSnapshot, snapshot);
    for (const q of this.queues) q.push(snapshot);
    const held = this.held;
    this.held = [];
    for (const event of held) {
      if (!this.socket) break;  // a gap in them dropped the connection
      this.deliver(event);
    }
  }

  private deliver(event: ChannelEvent): void {
    const pos = this.pos;
    if (pos) {
      if (event.seq <= pos.seq) return;  // already delivered (or covered by the snapshot)
      // A merged message stands for first_seq..seq: it follows on when first_seq is the next seq (one that
      // overlaps the position, first_seq <= pos < seq, is new too, not a gap).
      const first = firstSeqOf(event);
      if (first > pos.seq + 1) {
        // The server promises no gaps; should one appear anyway, resume from what we have.
        this.report(new AgentwireError(0, "gap", `expected seq ${pos.seq + 1}, got ${first}: resuming`));
        this.lost("gap in seq", 0);
        return;
      }
      this.pos = { seq: event.seq, epoch: pos.epoch };
    } else {
      this.pos = { seq: event.seq, epoch: this.info?.epoch ?? "" };
    }
    this.call(this.handlers.onEvent, event);
    for (const q of this.queues) q.push(event);
  }

  // ---- plumbing ----

  private setState(state: ConnectionState, detail: Omit<StateChange, "state" | "previous">): void {
    const previous = this.currentState;
    if (state === previous) return;
    this.currentState = state;
    const change: StateChange = { state, previous, ...detail };
    for (const listener of [...this.listeners]) this.call(listener, state, change);
  }

  private report(error: unknown): void {
    const onError = this.handlers.onError;
    if (!onError) return;
    try {
      onError(error);
    } catch {
      // an error handler that throws has nowhere left to go
    }
  }

  private call<A extends unknown[]>(fn: ((...args: A) => void) | undefined, ...args: A): void {
    if (!fn) return;
    try {
      fn(...args);
    } catch (e) {
      // The caller's bug must not break the stream of events.
      if (this.handlers.onError) this.report(e);
      else console.error("agentwire: a handler threw", e);
    }
  }
}
