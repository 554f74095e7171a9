// The client against the real agentwire binary: delivery, resume across a restart, snapshots after an
// epoch change, dead-connection detection, the async iterator.
import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { WebSocket as WsWebSocket } from "ws";

import { AgentView, AgentwireClient, Publisher, isCustomEvent } from "../dist/index.js";
import { AgentwireServer } from "./server.mjs";
import { assertContiguous, recorder, sleep, waitFor } from "./util.mjs";

const servers = [];
const clients = [];
after(async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.dispose();
});

async function server(options) {
  const s = new AgentwireServer(options);
  servers.push(s);
  return s.start();
}

function client(srv, options = {}) {
  const c = new AgentwireClient({ url: srv.url, ...options });
  clients.push(c);
  return c;
}

/** Publishes until the server acknowledges, with one Idempotency-Key, so the event exists exactly once. */
async function publishUntilAcked(pub, agent, type, data, key) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await pub.publish(agent, type, data, { idempotencyKey: key });
    } catch (e) {
      if (!e.retryable || Date.now() > deadline) throw e;
      await sleep(25); // pacing only: between retries
    }
  }
}

describe("delivery", () => {
  test("connected makes the subscription live; events arrive in order, typed, each once", async () => {
    const srv = await server();
    const rec = recorder();
    const sub = client(srv).subscribe("agent-d1", rec.handlers);
    const info = await sub.ready;
    assert.equal(sub.state, "live");
    assert.equal(info.resumed, false);
    assert.equal(typeof info.epoch, "string");
    assert.ok(info.heartbeat_interval > 0);
    assert.deepEqual(sub.position, { seq: 0, epoch: info.epoch });

    const pub = new Publisher({ url: srv.url });
    for (let i = 1; i <= 20; i++) {
      const r = await pub.publish("agent-d1", i % 2 ? "progress" : "tick", { percent: i, i });
      assert.equal(r.seq, i);
    }
    await waitFor(() => rec.events.length === 20, { what: "20 events" });
    assertContiguous(rec.seqs(), 1, 20);
    const first = rec.events[0];
    assert.equal(first.type, "progress");
    assert.equal(first.agent_id, "agent-d1");
    assert.equal(first.data.percent, 1);
    assert.ok(isCustomEvent(rec.events[1], "tick"));
    assert.deepEqual(sub.position, { seq: 20, epoch: info.epoch });
    assert.deepEqual(rec.states.map((s) => s.state), ["live"]);
    sub.close();
    assert.equal(sub.state, "closed");
    assert.deepEqual(rec.states.map((s) => s.state), ["live", "closed"]);
  });

  test("an injected WebSocket class (ws) works like the one loaded on demand", async () => {
    const srv = await server();
    const rec = recorder();
    const sub = client(srv, { WebSocket: WsWebSocket }).subscribe("agent-d2", rec.handlers);
    await sub.ready;
    await new Publisher({ url: srv.url }).publish("agent-d2", "progress", { percent: 5 });
    await waitFor(() => rec.events.length === 1, { what: "the event" });
    assert.equal(rec.events[0].data.percent, 5);
    sub.close();
  });

  test("async iterator: yields events in order; leaving the loop closes the subscription", async () => {
    const srv = await server();
    const sub = client(srv).subscribe("agent-d3");
    await sub.ready;
    const pub = new Publisher({ url: srv.url });
    const publishing = (async () => {
      for (let i = 1; i <= 5; i++) await pub.publish("agent-d3", "progress", { percent: i * 10 });
    })();
    const got = [];
    for await (const ev of sub) {
      got.push(ev.seq);
      if (got.length === 5) break;
    }
    await publishing;
    assert.deepEqual(got, [1, 2, 3, 4, 5]);
    assert.equal(sub.state, "closed");
  });

  test("start from a saved position: the events missed since are replayed", async () => {
    const srv = await server();
    const pub = new Publisher({ url: srv.url });
    const c = client(srv);
    const first = recorder();
    const sub1 = c.subscribe("agent-d4", first.handlers);
    await sub1.ready;
    for (let i = 0; i < 3; i++) await pub.publish("agent-d4", "progress", { percent: i });
    await waitFor(() => first.events.length === 3, { what: "3 events" });
    const saved = sub1.position;
    sub1.close();
    for (let i = 3; i < 8; i++) await pub.publish("agent-d4", "progress", { percent: i });

    const second = recorder();
    const sub2 = c.subscribe("agent-d4", { ...second.handlers, start: saved });
    const info = await sub2.ready;
    assert.equal(info.resumed, true);
    assert.equal(info.recovered, true);
    assert.equal(info.replayed, 5);
    await waitFor(() => second.events.length === 5, { what: "5 replayed events" });
    assertContiguous(second.seqs(), 4, 8);
    assert.equal(second.snapshots.length, 0);
    sub2.close();
  });

  test("a server error envelope is reported and the subscription carries on", async () => {
    const srv = await server();
    const rec = recorder();
    const sub = client(srv).subscribe("agent-d5", rec.handlers);
    await sub.ready;
    assert.ok(sub.ping());
    // Reach into the socket to send what a correct client never would.
    const raw = sub["socket"];
    raw.send("{not json");
    await waitFor(() => rec.errors.length === 1, { what: "the error envelope" });
    assert.equal(rec.errors[0].name, "ServerMessageError");
    await new Publisher({ url: srv.url }).publish("agent-d5", "progress", { percent: 1 });
    await waitFor(() => rec.events.length === 1, { what: "an event after the error" });
    assert.equal(sub.state, "live");
    sub.close();
  });
});

describe("resume", () => {
  test("server restarted mid-stream (SIGTERM, same port and data dir): nothing lost, nothing repeated", async () => {
    const srv = await server();
    const agent = "agent-r1";
    const pub = new Publisher({ url: srv.url, timeoutMs: 5000 });
    const rec = recorder();
    const c = client(srv, { backoff: { initialDelayMs: 100, maxDelayMs: 200 } });
    const sub = c.subscribe(agent, rec.handlers);
    const info = await sub.ready;

    const total = 80;
    const before = 40;
    for (let i = 0; i < before; i++) await publishUntilAcked(pub, agent, "progress", { percent: i, i }, `r1-${i}`);
    await waitFor(() => rec.events.length >= before, { what: `${before} events before the restart` });
    // The client may not reconnect until the rest is published: what it misses is known by construction,
    // not by how long its backoff happens to last on this machine.
    let openGate;
    const gate = new Promise((resolve) => (openGate = resolve));
    const connect = sub["connect"].bind(sub);
    sub["connect"] = async () => {
      await gate;
      return connect();
    };
    const restarting = srv.restart();
    await waitFor(() => sub.state === "reconnecting", { what: "the client to notice the restart" });
    // Published from the moment the client is gone, through the restart (retried until acknowledged).
    let acked = before;
    const publishing = (async () => {
      for (let i = before; i < total; i++) {
        const r = await publishUntilAcked(pub, agent, "progress", { percent: i, i }, `r1-${i}`);
        assert.ok(r.seq >= 1);
        acked++;
      }
    })();
    await restarting;
    assert.equal(srv.port, new URL(sub["settings"].wsUrl).port * 1);
    await publishing;
    assert.equal(acked, total);
    openGate();
    await waitFor(() => rec.events.length >= total, { what: `the ${total - before} events replayed`, timeoutMs: 20_000 });
    // A marker published live, last: once it has arrived, anything extra before it would have too.
    await publishUntilAcked(pub, agent, "marker", { i: total }, "r1-marker");
    await waitFor(() => rec.events.length >= total + 1, { what: `${total} events and the marker`, timeoutMs: 20_000 });

    assertContiguous(rec.seqs(), 1, total + 1);
    assert.equal(rec.events.at(-1).type, "marker");
    assert.deepEqual(rec.events.map((e) => e.data.i), [...Array(total + 1).keys()]);
    assert.equal(rec.snapshots.length, 0, "the history survived: no snapshot needed");
    const states = rec.states.map((s) => s.state);
    assert.deepEqual(states.slice(0, 3), ["live", "reconnecting", "resumed"], `states: ${states}`);
    const resumed = rec.states.find((s) => s.state === "resumed").change.connected;
    assert.equal(resumed.epoch, info.epoch, "the epoch survives a restart");
    assert.equal(resumed.recovered, true);
    assert.equal(resumed.replayed, total - before, "the events published while the client was away are replayed");
    assert.equal(sub.state, "resumed");
    sub.close();
  });

  test("history lost (memory store restarted): a snapshot resets the position, then events flow again", async () => {
    const srv = await server({ flags: ["--store", "memory"] });
    const agent = "agent-r2";
    const rec = recorder();
    const sub = client(srv, { backoff: { initialDelayMs: 50, maxDelayMs: 200 } }).subscribe(agent, rec.handlers);
    const first = await sub.ready;
    const pub = new Publisher({ url: srv.url });
    for (let i = 0; i < 3; i++) await pub.publish(agent, "progress", { percent: i });
    await waitFor(() => rec.events.length === 3, { what: "3 events" });

    await srv.restart();
    await waitFor(() => rec.snapshots.length === 1, { what: "a snapshot after the epoch changed" });
    const snap = rec.snapshots[0];
    assert.notEqual(snap.data.epoch, first.epoch);
    assert.equal(snap.data.seq, 0);
    assert.deepEqual(snap.data.state, { workflows: [], streams: [] });
    assert.deepEqual(sub.position, { seq: 0, epoch: snap.data.epoch });

    for (let i = 0; i < 2; i++) await pub.publish(agent, "progress", { percent: 10 + i });
    await waitFor(() => rec.events.length === 5, { what: "2 events in the new epoch" });
    assert.deepEqual(rec.seqs(), [1, 2, 3, 1, 2]);
    assert.deepEqual(sub.position, { seq: 2, epoch: snap.data.epoch });
    sub.close();
  });
});

describe("snapshots and workflows", () => {
  test("start with a snapshot; AgentView follows workflows, phases, progress and streamed text", async (t) => {
    const srv = await server();
    const pub = new Publisher({ url: srv.url });
    const agent = "agent-w1";
    let wf;
    try {
      wf = await pub.createWorkflow({ agent_id: agent, name: "Build a todo app", metadata: { team: "web" } });
    } catch (e) {
      if (e.status === 404) return t.skip("the server has no workflow routes");
      throw e;
    }
    await pub.submitRequirements(wf.id, { text: "A todo app", items: ["add", "remove"] });
    await pub.changePhase(wf.id, "design");
    await pub.reportProgress(wf.id, 40, { message: "sketching" });
    const st = await pub.openStream(wf.id);
    await pub.appendStream(st.stream_id, "Hello", { index: 0 });
    await pub.appendStream(st.stream_id, ", wor", { index: 1 });

    const view = new AgentView();
    const rec = recorder();
    const sub = client(srv).subscribe(agent, {
      ...rec.handlers,
      start: "snapshot",
      onEvent: (e) => (rec.events.push(e), view.apply(e)),
      onSnapshot: (s) => (rec.snapshots.push(s), view.apply(s)),
    });
    await waitFor(() => rec.snapshots.length === 1, { what: "the initial snapshot" });
    const state = rec.snapshots[0].data.state;
    assert.equal(state.workflows.length, 1);
    assert.equal(state.workflows[0].phase, "design");
    assert.equal(state.workflows[0].progress, 40);
    assert.equal(state.workflows[0].requirements.text, "A todo app");
    assert.equal(state.streams[0].text, "Hello, wor");
    assert.equal(view.streams.get(st.stream_id).text, "Hello, wor");

    await pub.appendStream(st.stream_id, "ld!", { index: 2 });
    await pub.endStream(st.stream_id, "completed");
    await pub.changePhase(wf.id, "implementation", { reason: "design approved" });
    await pub.reportProgress(wf.id, 75.9);
    await waitFor(() => rec.events.length === 4, { what: "4 events after the snapshot" });
    assert.deepEqual(rec.events.map((e) => e.type), ["stream", "stream", "phase_changed", "progress"]);
    const [delta, end, phase] = rec.events;
    assert.equal(delta.data.delta, "ld!");
    assert.equal(end.data.done, true);
    assert.equal(end.data.status, "completed");
    assert.equal(phase.data.from, "design");
    assert.equal(phase.data.to, "implementation");

    const v = view.workflows.get(wf.id);
    assert.equal(v.phase, "implementation");
    assert.equal(v.phase_reason, "design approved");
    assert.equal(v.progress, 75);
    const stream = view.streams.get(st.stream_id);
    assert.equal(stream.text, "Hello, world!");
    assert.equal(stream.status, "completed");
    const server_view = await pub.getWorkflow(wf.id);
    assert.equal(server_view.phase, v.phase);
    assert.equal(server_view.progress, v.progress);

    // A snapshot on request resets nothing that matters and keeps the ended stream's text.
    assert.ok(sub.requestSnapshot());
    await waitFor(() => rec.snapshots.length === 2, { what: "the requested snapshot" });
    assert.equal(view.streams.get(st.stream_id).text, "Hello, world!");
    assert.equal(view.workflows.get(wf.id).phase, "implementation");
    sub.close();
  });
});

describe("dead connections", () => {
  test("a server that goes silent (SIGSTOP) is detected within 2.5 heartbeats; SIGCONT and it resumes", async (t) => {
    const srv = await server({ flags: ["--heartbeat-interval", "0.5", "--idle-timeout", "2"] });
    const agent = "agent-h1";
    const rec = recorder();
    const sub = client(srv, { backoff: { initialDelayMs: 100, maxDelayMs: 300 } }).subscribe(agent, rec.handlers);
    const info = await sub.ready;
    assert.equal(info.heartbeat_interval, 0.5);
    const pub = new Publisher({ url: srv.url });
    await pub.publish(agent, "progress", { percent: 1 });
    await waitFor(() => rec.events.length === 1, { what: "the first event" });
    // Heartbeats keep a quiet connection alive: counted as they arrive until they span well past the
    // client's 1.25 s dead-connection timeout, instead of a sleep standing for "long enough".
    let beats = 0;
    const onFrame = sub["onFrame"].bind(sub);
    sub["onFrame"] = (data) => {
      if (String(data).includes('"type":"heartbeat"')) beats++;
      return onFrame(data);
    };
    await waitFor(() => beats >= 4, { what: "four heartbeats (2 s at a 0.5 s interval)" });
    assert.equal(sub.state, "live");
    assert.ok(!rec.states.some((s) => s.state === "reconnecting"), "the quiet connection was kept");

    const stoppedAt = Date.now();
    srv.signal("SIGSTOP");
    try {
      const lost = await waitFor(() => rec.states.find((s) => s.state === "reconnecting"), {
        what: "the dead connection to be noticed",
        timeoutMs: 5000,
      });
      const elapsed = lost.at - stoppedAt;
      // The last frame came at most one interval before the stop: 2.5 × 0.5 s after it, plus timer slack
      // on a busy machine.
      t.diagnostic(`dead connection noticed ${elapsed} ms after SIGSTOP`);
      assert.ok(elapsed <= 1250 + 600, `noticed after ${elapsed} ms`);
      assert.match(lost.change.reason, /heartbeat/);
    } finally {
      srv.signal("SIGCONT");
    }
    await waitFor(() => sub.state === "resumed", { what: "resumed after SIGCONT", timeoutMs: 15_000 });
    await pub.publish(agent, "progress", { percent: 2 });
    await waitFor(() => rec.events.length === 2, { what: "an event after resuming" });
    assertContiguous(rec.seqs(), 1, 2);
    sub.close();
  });

  test("a server that is not there: connecting, retried with backoff, then up", async () => {
    const srv = await server();
    const port = srv.port;
    await srv.stop();
    const rec = recorder();
    const sub = client(srv, { backoff: { initialDelayMs: 50, maxDelayMs: 200 } }).subscribe("agent-h2", rec.handlers);
    // Retried with backoff: a count of failed attempts, not a time that should be enough for some.
    await waitFor(() => sub["backoff"].attempts >= 3, { what: "three failed attempts" });
    assert.equal(sub.state, "connecting");
    await srv.start();
    assert.equal(srv.port, port);
    await sub.ready;
    assert.equal(sub.state, "live");
    sub.close();
  });

  test("maxReconnectAttempts: gives up and closes, ending iterators with the error", async () => {
    const c = client({ url: "http://127.0.0.1:9" }, { maxReconnectAttempts: 2, backoff: { initialDelayMs: 10, maxDelayMs: 20 } });
    const sub = c.subscribe("agent-h3");
    await assert.rejects(sub.ready, (e) => e.code === "gave_up");
    assert.equal(sub.state, "closed");
    const it = sub[Symbol.asyncIterator]();
    assert.deepEqual(await it.next(), { value: undefined, done: true });
  });
});
