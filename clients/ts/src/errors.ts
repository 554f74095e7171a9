// The one error type the client throws for answers from the server (and for requests that never got one).

/**
 * An error the server answered with (`{"error": {"code", "message", ...details}}`), or a request that got
 * no answer at all (`status` 0, code `network_error` or `timeout`).
 */
export class AgentwireError extends Error {
  /** HTTP status; 0 when no answer arrived. */
  readonly status: number;
  /** The server's error code, e.g. `bad_agent_id`, `workflow_not_found`, `illegal_transition`. */
  readonly code: string;
  /** Any further members of the error object (e.g. `from`, `to`, `allowed` for `illegal_transition`). */
  readonly details: Record<string, unknown>;

  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AgentwireError";
    this.status = status;
    this.code = code;
    this.details = details;
  }

  /**
   * Worth trying again later, unchanged (with the same Idempotency-Key): no answer, a timeout (408), a rate
   * limit (429: after its Retry-After), or a server that is briefly unable (502, 503 other than
   * `store_full`, 504). 401 and 403 are never retryable: the same credentials get the same answer.
   */
  get retryable(): boolean {
    const s = this.status;
    return s === 0 || s === 408 || s === 429 || s === 502 || s === 504 || (s === 503 && this.code !== "store_full");
  }
}

/**
 * 401: no usable credentials (`token_missing`, `token_invalid`, `token_expired`, or an API key's
 * equivalents). A subscription with a `tokenProvider` asks it again a few times before giving up with it.
 */
export class AuthenticationError extends AgentwireError {
  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(status, code, message, details);
    this.name = "AuthenticationError";
  }
}

/** 403: genuine credentials that do not allow this (`agent_forbidden`, a missing scope, a refused origin). */
export class PermissionDeniedError extends AgentwireError {
  constructor(status: number, code: string, message: string, details: Record<string, unknown> = {}) {
    super(status, code, message, details);
    this.name = "PermissionDeniedError";
  }
}

/** The typed error for a refusal: AuthenticationError for 401, PermissionDeniedError for 403. */
export function errorFor(status: number, code: string, message: string, details: Record<string, unknown> = {}): AgentwireError {
  if (status === 401) return new AuthenticationError(status, code, message, details);
  if (status === 403) return new PermissionDeniedError(status, code, message, details);
  return new AgentwireError(status, code, message, details);
}

/** Hands out a subscriber token (a JWT allowing the agent); asked before every connection and on `token_expiring`. */
export type TokenProvider = () => Promise<string> | string;

/** A JWT is base64url parts and dots; anything else cannot travel as a WebSocket subprotocol. */
export function checkToken(token: unknown): string {
  if (typeof token !== "string" || !/^[A-Za-z0-9_.~+/=-]+$/.test(token)) {
    throw new AgentwireError(0, "bad_token", "a token must be a non-empty string of base64url characters and dots (a JWT)");
  }
  return token;
}

const AGENT_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export function isValidAgentId(agentId: string): boolean {
  return AGENT_ID.test(agentId);
}

export function checkAgentId(agentId: string): void {
  if (!isValidAgentId(agentId)) {
    throw new AgentwireError(400, "bad_agent_id", "agent_id must be 1-128 characters of [A-Za-z0-9_.:-]");
  }
}
