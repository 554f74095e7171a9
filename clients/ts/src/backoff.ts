// Reconnect delays: exponential backoff with full jitter (a uniformly random wait between 0 and the
// exponential cap), so a thousand clients dropped by one restart do not all come back in the same instant.

export interface BackoffOptions {
  /** Cap of the first wait, in ms (default 500). */
  initialDelayMs?: number;
  /** The cap never grows past this, in ms (default 15000). */
  maxDelayMs?: number;
  /** Growth of the cap per failed attempt (default 2). */
  factor?: number;
  /** Source of randomness in [0, 1); injectable for tests (default Math.random). */
  random?: () => number;
}

export class Backoff {
  private readonly initial: number;
  private readonly max: number;
  private readonly factor: number;
  private readonly random: () => number;
  private attempt = 0;

  constructor(options: BackoffOptions = {}) {
    this.initial = Math.max(0, options.initialDelayMs ?? 500);
    this.max = Math.max(this.initial, options.maxDelayMs ?? 15_000);
    this.factor = Math.max(1, options.factor ?? 2);
    this.random = options.random ?? Math.random;
  }

  /** Failed attempts since the last reset. */
  get attempts(): number {
    return this.attempt;
  }

  /** The cap for the next wait, without the jitter. */
  cap(): number {
    return Math.min(this.max, this.initial * Math.pow(this.factor, this.attempt));
  }

  /** The next wait in ms (full jitter: uniform in [0, cap]); counts an attempt. */
  next(): number {
    const delay = Math.floor(this.random() * (this.cap() + 1));
    this.attempt += 1;
    return Math.min(delay, this.max);
  }

  reset(): void {
    this.attempt = 0;
  }
}
