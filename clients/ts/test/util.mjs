// Small waiting helpers: every wait is on a condition with a generous upper bound, never a bare sleep.

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `predicate` until it returns something truthy; throws after `timeoutMs` naming `what`. */
export async function waitFor(predicate, { timeoutMs = 15_000, what = "condition", intervalMs = 10 } = {}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Records what a subscription delivers and the states it goes through. */
export function recorder() {
  const rec = {
    events: [],
    snapshots: [],
    states: [],
    errors: [],
    handlers: {
      onEvent: (ev) => rec.events.push(ev),
      onSnapshot: (s) => rec.snapshots.push(s),
      onStateChange: (state, change) => rec.states.push({ state, at: Date.now(), change }),
      onError: (e) => rec.errors.push(e),
    },
    seqs: () => rec.events.map((e) => e.seq),
    lastState: () => rec.states.at(-1)?.state,
  };
  return rec;
}

/** Throws unless `seqs` is exactly from..to in order. */
export function assertContiguous(seqs, from, to) {
  const want = [];
  for (let s = from; s <= to; s++) want.push(s);
  const got = JSON.stringify(seqs);
  if (got !== JSON.stringify(want)) {
    throw new Error(`expected seqs ${from}..${to} each once in order, got ${got}`);
  }
}
