// The Publisher against the real agentwire binary: publish, idempotency, history, stats, workflow
// routes, and the AgentwireError every failure becomes.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { AgentwireError, Publisher } from "../dist/index.js";
import { AgentwireServer } from "./server.mjs";

let srv;
let pub;
before(async () => {
  srv = await new AgentwireServer().start();
  pub = new Publisher({ url: srv.url });
});
after(async () => {
  await srv?.dispose();
});

test("publish answers the seq; history returns the same envelopes", async () => {
  const a = await pub.publish("agent-p1", "progress", { percent: 10 });
  const b = await pub.publish("agent-p1", "note", { text: "héllo ✓" });
  assert.deepEqual([a.seq, b.seq], [1, 2]);
  const page = await pub.history("agent-p1", { since: 0, limit: 10 });
  assert.equal(page.latest, 2);
  assert.equal(page.complete, true);
  assert.deepEqual(page.events.map((e) => e.seq), [1, 2]);
  assert.equal(page.events[1].data.text, "héllo ✓");
  const all = [];
  for await (const ev of pub.allHistory("agent-p1")) all.push(ev.seq);
  assert.deepEqual(all, [1, 2]);
});

test("the same Idempotency-Key publishes once and answers the original seq", async () => {
  const first = await pub.publish("agent-p2", "progress", { percent: 1 }, { idempotencyKey: "k-1" });
  const again = await pub.publish("agent-p2", "progress", { percent: 1 }, { idempotencyKey: "k-1" });
  assert.equal(again.seq, first.seq);
  assert.equal(again.duplicate, true);
  const page = await pub.history("agent-p2");
  assert.equal(page.events.length, 1);
});

test("errors are AgentwireError(status, code, message)", async () => {
  await assert.rejects(pub.publish("bad id", "x"), (e) => e instanceof AgentwireError && e.code === "bad_agent_id");
  await assert.rejects(pub.publish("agent-p3", "", {}), (e) => e instanceof AgentwireError && e.status === 400 && typeof e.code === "string" && e.message.length > 0);
  await assert.rejects(pub.history("agent-p3", { limit: 5000 }), (e) => e.status === 400 && e.code === "bad_limit");
  await assert.rejects(pub.request("GET", "/api/nothing-here"), (e) => e.status === 404 && e.code === "not_found");
  await assert.rejects(pub.request("DELETE", "/api/agents/agent-p3/events"), (e) => e.status === 405 && e.code === "method_not_allowed");
});

test("no server: status 0, network_error, retryable", async () => {
  const nobody = new Publisher({ url: "http://127.0.0.1:9", timeoutMs: 2000 });
  await assert.rejects(nobody.publish("agent-p4", "x"), (e) => e instanceof AgentwireError && e.status === 0 && e.code === "network_error" && e.retryable);
  await assert.rejects(nobody.health(), (e) => e.code === "network_error");
});

test("stats and health", async () => {
  assert.deepEqual(await pub.health(), { status: "ok" });
  const stats = await pub.stats();
  assert.equal(typeof stats, "object");
});

test("workflow routes: create, requirements, phase, progress, stream, cancel, delete", async (t) => {
  let wf;
  try {
    wf = await pub.createWorkflow({ agent_id: "agent-p5", name: "Ship it" }, { idempotencyKey: "create-1" });
  } catch (e) {
    if (e.status === 404) return t.skip("the server has no workflow routes");
    throw e;
  }
  assert.equal(wf.phase, "requirements");
  assert.equal(wf.progress, 0);
  const same = await pub.createWorkflow({ agent_id: "agent-p5", name: "Ship it" }, { idempotencyKey: "create-1" });
  assert.equal(same.id, wf.id);

  const withReq = await pub.submitRequirements(wf.id, { text: "ship", items: [{ id: 1 }] });
  assert.equal(withReq.requirements.revision, 1);
  assert.equal((await pub.changePhase(wf.id, "design")).phase, "design");
  await assert.rejects(pub.changePhase(wf.id, "deployment"), (e) => {
    assert.ok(e instanceof AgentwireError);
    assert.equal(e.status, 409);
    assert.equal(e.code, "illegal_transition");
    assert.deepEqual(e.details.allowed, ["implementation", "failed", "cancelled"]);
    return true;
  });
  assert.equal((await pub.reportProgress(wf.id, 33.3, { message: "a third" })).progress, 33);

  const st = await pub.openStream(wf.id);
  assert.equal(st.status, "streaming");
  assert.equal((await pub.appendStream(st.stream_id, "Hi", { index: 0 })).index, 0);
  await assert.rejects(pub.appendStream(st.stream_id, "x", { index: 5 }), (e) => e.status === 409 && e.code === "index_mismatch");
  assert.equal((await pub.getStream(st.stream_id)).text, "Hi");
  const ended = await pub.endStream(st.stream_id, "completed");
  assert.equal(ended.status, "completed");
  assert.equal(ended.deltas, 1);

  const list = await pub.listWorkflows("agent-p5");
  assert.deepEqual(list.workflows.map((w) => w.id), [wf.id]);
  await assert.rejects(pub.deleteWorkflow(wf.id), (e) => e.status === 409 && e.code === "workflow_active");
  assert.equal((await pub.cancelWorkflow(wf.id, { reason: "enough" })).phase, "cancelled");
  assert.deepEqual(await pub.deleteWorkflow(wf.id), { workflow_id: wf.id, deleted: true });
  await assert.rejects(pub.getWorkflow(wf.id), (e) => e.status === 404 && e.code === "workflow_not_found");
});

test("retries: a write that gets no answer is retried with one Idempotency-Key", async () => {
  const keys = [];
  let calls = 0;
  const flaky = new Publisher({
    url: srv.url,
    retries: 3,
    retryDelayMs: 1,
    fetch: async (url, init) => {
      keys.push(init.headers["Idempotency-Key"]);
      if (++calls === 1) throw new TypeError("fetch failed");
      return fetch(url, init);
    },
  });
  const r = await flaky.publish("agent-p6", "progress", { percent: 1 });
  assert.equal(r.seq, 1);
  assert.equal(keys.length, 2);
  assert.ok(keys[0] && keys[0] === keys[1]);
});
