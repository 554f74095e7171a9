// The entry point: a client holds the server address and connection settings, and opens one
// Subscription per agent it follows.

import type { BackoffOptions } from "./backoff.js";
import { checkAgentId, checkToken, type TokenProvider } from "./errors.js";
import { Publisher, type AgentsOptions, type PublisherOptions } from "./publisher.js";
import { Subscription, type ConnectionSettings, type SubscribeOptions } from "./subscription.js";
import type { AgentList, StreamListing } from "./types.js";
import { resolveWebSocket, type WebSocketConstructor } from "./websocket.js";

export interface ClientOptions {
  /**
   * The server: http(s):// or ws(s)://host:port (a path prefix is kept). Default: the page's origin, so a
   * page served by agentwire itself needs nothing.
   */
  url?: string;
  /** A WebSocket class to use instead of the global one (e.g. `WebSocket` from the `ws` package). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect delays: exponential backoff with full jitter. */
  backoff?: BackoffOptions;
  /** Abandon a connection attempt that has not said `connected` within this time (ms, default 10000). */
  connectTimeoutMs?: number;
  /** A connection with no frame for this many heartbeat intervals is dead (default 2.5). */
  heartbeatTimeoutFactor?: number;
  /** Heartbeat interval to assume until the server says (s, default 30). */
  defaultHeartbeatIntervalS?: number;
  /** Give up (state `closed`) after this many failed attempts in a row (default: never). */
  maxReconnectAttempts?: number;
  /**
   * For a server with keys: a subscriber token (a JWT whose `agents` claim allows the agents followed),
   * sent as the WebSocket subprotocol `bearer, <token>` (browsers cannot set headers on a WebSocket).
   */
  token?: string;
  /**
   * Instead of `token`: asked before every connection attempt and on every `token_expiring` (its answer
   * goes back as `refresh`, keeping the connection open). Typically a call to your backend.
   */
  tokenProvider?: TokenProvider;
  /**
   * `Authorization: Bearer` on the client's HTTP calls and its publishers (default: a fixed `token`); also
   * the subscriptions' credential when there is no `token` or `tokenProvider` (a key with the read scope
   * may subscribe). Keep API keys out of browsers: give pages short-lived tokens.
   */
  apiKey?: string;
}

function pageOrigin(): string | undefined {
  const loc = (globalThis as { location?: { origin?: string } }).location;
  return loc?.origin && /^https?:/.test(loc.origin) ? loc.origin : undefined;
}

/** http://h:p/x → ws://h:p/x, https → wss; ws(s) kept; no trailing slash. */
export function toWebSocketUrl(url: string): string {
  const trimmed = url.replace(/\/+$/, "");
  if (/^wss?:\/\//i.test(trimmed)) return trimmed;
  if (/^https?:\/\//i.test(trimmed)) return trimmed.replace(/^http/i, "ws");
  throw new Error(`agentwire: url must start with http://, https://, ws:// or wss://, not ${url}`);
}

export class AgentwireClient {
  /** The server's base URL as given (or the page's origin). */
  readonly url: string;
  private readonly settings: ConnectionSettings;
  private readonly subscriptions = new Set<Subscription>();
  private wsCtor: Promise<WebSocketConstructor> | null = null;
  /** For the reads (stream text, lists), made on first use. */
  private reader: Publisher | null = null;
  /** The HTTP calls' bearer: the API key, else a fixed token. */
  private readonly httpKey: string | undefined;

  constructor(options: ClientOptions = {}) {
    const url = options.url ?? pageOrigin();
    if (!url) throw new Error("agentwire: pass `url` (e.g. http://127.0.0.1:8080): there is no page origin to default to");
    this.url = url;
    const injected = options.WebSocket;
    if (options.token !== undefined && options.tokenProvider !== undefined) {
      throw new Error("agentwire: give token or tokenProvider, not both");
    }
    if (options.token !== undefined) checkToken(options.token);
    if (options.apiKey !== undefined) checkToken(options.apiKey);
    this.httpKey = options.apiKey ?? options.token;
    this.settings = {
      wsUrl: toWebSocketUrl(url),
      resolveWebSocket: () => (this.wsCtor ??= resolveWebSocket(injected)),
      backoff: options.backoff ?? {},
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
      heartbeatTimeoutFactor: options.heartbeatTimeoutFactor ?? 2.5,
      defaultHeartbeatIntervalS: options.defaultHeartbeatIntervalS ?? 30,
      maxReconnectAttempts: options.maxReconnectAttempts ?? Infinity,
      httpUrl: url,
      // Without a token, the API key subscribes too (a key with the read scope may: a service following agents).
      token: options.token ?? (options.tokenProvider ? undefined : options.apiKey),
      tokenProvider: options.tokenProvider,
    };
  }

  /**
   * Follows an agent's channel until `close()`: handlers and/or `for await (const item of subscription)`.
   * Throws AgentwireError `bad_agent_id` for an id the server would refuse.
   */
  subscribe(agentId: string, options: SubscribeOptions = {}): Subscription {
    checkAgentId(agentId);
    const sub = new Subscription(agentId, this.settings, {
      ...options,
      onStateChange: (state, change) => {
        if (state === "closed") this.subscriptions.delete(sub);
        options.onStateChange?.(state, change);
      },
    });
    if (sub.state !== "closed") this.subscriptions.add(sub);
    return sub;
  }

  /** A Publisher for the same server. */
  /** A Publisher for the same server, with the client's API key unless `options` names another. */
  publisher(options: Omit<PublisherOptions, "url"> = {}): Publisher {
    return new Publisher({ apiKey: this.httpKey, ...options, url: this.url });
  }

  /**
   * A stream's text, whatever its status: what a finished stream ended with (snapshots carry only open
   * streams' text). Null only from a server that did not keep it. See Publisher.streamText.
   */
  streamText(streamId: string): Promise<string | null> {
    return this.http().streamText(streamId);
  }

  /** A workflow's streams in the order they started: summaries, no text. */
  workflowStreams(workflowId: string): Promise<StreamListing[]> {
    return this.http().workflowStreams(workflowId);
  }

  /** One page of the agents that have workflows, by id; pass `next` back as `after` for the next page. */
  agents(options: AgentsOptions = {}): Promise<AgentList> {
    return this.http().agents(options);
  }

  private http(): Publisher {
    return (this.reader ??= new Publisher({ url: this.url, apiKey: this.httpKey }));
  }

  /** Closes every subscription of this client. */
  close(): void {
    for (const sub of [...this.subscriptions]) sub.close();
    this.subscriptions.clear();
  }
}
