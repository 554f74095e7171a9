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

  /** Worth trying again with the same Idempotency-Key: no answer, or the server is briefly unable. */
  get retryable(): boolean {
    return this.status === 0 || this.status === 503 || this.status === 502 || this.status === 504;
  }
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
