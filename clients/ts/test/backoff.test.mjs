// Backoff and small pure helpers: no server needed.
import { test } from "node:test";
import assert from "node:assert/strict";

import { AgentwireClient, AgentwireError, Backoff, isValidAgentId, toWebSocketUrl } from "../dist/index.js";

test("full jitter: each wait is uniform in [0, cap], the cap doubles up to the maximum", () => {
  const b = new Backoff({ initialDelayMs: 100, maxDelayMs: 1000, random: () => 0.999999 });
  const caps = [];
  for (let i = 0; i < 6; i++) caps.push(b.next());
  assert.deepEqual(caps, [100, 200, 400, 800, 1000, 1000]);
  b.reset();
  assert.equal(b.attempts, 0);
  assert.equal(new Backoff({ initialDelayMs: 100, random: () => 0 }).next(), 0);
});

test("full jitter spreads the waits over the whole range", () => {
  const b = new Backoff({ initialDelayMs: 1000, maxDelayMs: 1000 });
  const waits = Array.from({ length: 2000 }, () => b.next());
  assert.ok(waits.every((w) => w >= 0 && w <= 1000));
  const low = waits.filter((w) => w < 250).length;
  const high = waits.filter((w) => w > 750).length;
  assert.ok(low > 300 && high > 300, `not spread: ${low} below 250 ms, ${high} above 750 ms`);
});

test("URLs: http becomes ws, https becomes wss, a trailing slash goes", () => {
  assert.equal(toWebSocketUrl("http://127.0.0.1:8080/"), "ws://127.0.0.1:8080");
  assert.equal(toWebSocketUrl("https://example.test/aw"), "wss://example.test/aw");
  assert.equal(toWebSocketUrl("ws://h:1"), "ws://h:1");
  assert.throws(() => toWebSocketUrl("ftp://h"));
});

test("agent ids the server would refuse are refused before connecting", () => {
  assert.ok(isValidAgentId("agent-7.a_b:c"));
  assert.ok(!isValidAgentId(""));
  assert.ok(!isValidAgentId("a/b"));
  assert.ok(!isValidAgentId("x".repeat(129)));
  const client = new AgentwireClient({ url: "http://127.0.0.1:1" });
  assert.throws(() => client.subscribe("no spaces"), (e) => e instanceof AgentwireError && e.code === "bad_agent_id");
});
