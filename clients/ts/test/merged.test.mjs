// Merged messages (seqs first_seq..seq in one envelope, which the server sends a subscriber that fell
// behind): the ordering rules and AgentView, without a server — frames are fed through a scripted
// WebSocket class.
import { test } from "node:test";
import assert from "node:assert/strict";

import { AgentView, AgentwireClient, deltaCount, firstSeqOf } from "../dist/index.js";
import { recorder, waitFor } from "./util.mjs";

/** A WebSocket the test drives: `FakeSocket.last` is the latest one opened; `feed` delivers a frame. */
class FakeSocket {
  static opened = [];
  constructor(url) {
    this.url = url;
    this.readyState = 1;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    this.sent = [];
    FakeSocket.opened.push(this);
  }
  send(data) {
    this.sent.push(data);
  }
  close() {
    this.readyState = 3;
  }
  terminate() {
    this.readyState = 3;
  }
  feed(envelope) {
    this.onmessage?.({ data: JSON.stringify(envelope) });
  }
}

const TS = "2026-11-25T19:38:41.812Z";

function connected(seq, extra = {}) {
  return {
    type: "connected", agent_id: "agent-7", ts: TS,
    data: { session_id: "s", epoch: "E", seq, resumed: false, recovered: false, replayed: 0,
      heartbeat_interval: 30, idle_timeout: 90, server_version: "fake", ...extra },
  };
}

function delta(seq, index, text, merged) {
  const env = { type: "stream", agent_id: "agent-7", seq, ts: TS,
    data: { stream_id: "st_1", workflow_id: "wf_1", index, delta: text } };
  if (merged) {
    env.first_seq = merged.first_seq;
    env.data.count = merged.count;
  }
  return env;
}

function progress(seq, percent, first_seq) {
  const env = { type: "progress", agent_id: "agent-7", seq, ts: TS, data: { workflow_id: "wf_1", percent, message: "m" } };
  if (first_seq !== undefined) env.first_seq = first_seq;
  return env;
}

/** A subscription on a fresh FakeSocket that has said `connected` at `seq`. */
async function subscribed(seq, options = {}) {
  const rec = recorder();
  const before = FakeSocket.opened.length;
  const client = new AgentwireClient({ url: "http://fake.invalid", WebSocket: FakeSocket, backoff: { initialDelayMs: 60_000 } });
  const sub = client.subscribe("agent-7", { ...rec.handlers, ...options });
  const socket = await waitFor(() => FakeSocket.opened[before], { what: "the socket to open" });
  socket.feed(connected(seq));
  await sub.ready;
  return { sub, rec, socket, client };
}

test("a merged message whose first_seq is the next seq is no gap; the position moves to its seq", async () => {
  const { sub, rec, socket, client } = await subscribed(8);
  socket.feed(progress(9, 10));
  socket.feed(progress(12, 40, 10));  // stands for 10, 11, 12
  socket.feed(delta(13, 0, "x"));
  socket.feed(delta(16, 1, "yz", { first_seq: 14, count: 3 }));
  assert.deepEqual(rec.errors, []);
  assert.deepEqual(rec.seqs(), [9, 12, 13, 16]);
  assert.deepEqual(rec.events.map(firstSeqOf), [9, 10, 13, 14]);
  assert.deepEqual(sub.position, { seq: 16, epoch: "E" });
  assert.equal(sub.state, "live");
  assert.equal(FakeSocket.opened.length, 1 + FakeSocket.opened.indexOf(socket));  // no reconnect
  client.close();
});

test("a merged message already delivered is dropped by its seq; one overlapping the position is new", async () => {
  const { sub, rec, socket, client } = await subscribed(10);
  socket.feed(progress(10, 5, 7));   // 7..10: all delivered before
  socket.feed(progress(12, 50, 9));  // 9..12: overlaps; 11 and 12 are new (cannot happen on one connection)
  socket.feed(progress(12, 60, 11)); // seq 12 again
  socket.feed(progress(13, 70));
  assert.deepEqual(rec.errors, []);
  assert.deepEqual(rec.seqs(), [12, 13]);
  assert.deepEqual(sub.position, { seq: 13, epoch: "E" });
  assert.equal(sub.state, "live");
  client.close();
});

test("a merged message starting past the next seq is a gap: the subscription resumes from its position", async () => {
  const { sub, rec, socket, client } = await subscribed(8);
  const opened = FakeSocket.opened.length;
  socket.feed(progress(12, 40, 10));  // 9 is missing
  assert.deepEqual(rec.seqs(), []);
  assert.equal(rec.errors.length, 1);
  assert.equal(rec.errors[0].code, "gap");
  assert.deepEqual(sub.position, { seq: 8, epoch: "E" });
  const next = await waitFor(() => FakeSocket.opened[opened], { what: "the reconnect" });
  assert.match(next.url, /\?since=8&epoch=E$/);
  client.close();
});

test("AgentView assembles a stream's text across plain and merged deltas", async () => {
  const view = new AgentView();
  const { rec, socket, client } = await subscribed(4, { onEvent: (e) => view.apply(e) });
  void rec;
  socket.feed({ type: "workflow_created", agent_id: "agent-7", seq: 5, ts: TS,
    data: { id: "wf_1", agent_id: "agent-7", number: 1, name: "n", metadata: {}, phase: "requirements", phase_reason: null,
      progress: 0, progress_message: null, requirements: null, streams: [], created_at: TS, updated_at: TS } });
  socket.feed({ type: "stream", agent_id: "agent-7", seq: 6, ts: TS, data: { stream_id: "st_1", workflow_id: "wf_1", started: true } });
  socket.feed(delta(7, 0, "He"));
  socket.feed(delta(8, 1, "l"));
  socket.feed(delta(12, 2, "lo, wo", { first_seq: 9, count: 4 }));  // indexes 2..5
  socket.feed(delta(13, 6, "rl"));
  socket.feed(progress(16, 80, 14));
  socket.feed(delta(18, 7, "d!", { first_seq: 17, count: 2 }));     // indexes 7..8
  socket.feed(delta(19, 9, "\n"));
  const st = view.streams.get("st_1");
  assert.equal(st.text, "Hello, world!\n");
  assert.equal(st.index, 10);
  assert.equal(st.complete, true);
  assert.equal(view.seq, 19);
  assert.equal(view.workflows.get("wf_1").progress, 80);
  assert.deepEqual(view.workflows.get("wf_1").streams, ["st_1"]);
  client.close();
});

test("AgentView: a merged delta after a hole, and one over deltas it already has, mark the text incomplete", () => {
  const view = new AgentView();
  let seq = 0;
  const feed = (env) => view.apply({ ...env, seq: ++seq });
  feed(delta(0, 0, "a"));
  feed(delta(0, 3, "de", { first_seq: 0, count: 2 }));  // 1 and 2 never seen
  let st = view.streams.get("st_1");
  assert.equal(st.text, "ade");
  assert.equal(st.index, 5);
  assert.equal(st.complete, false);

  const other = new AgentView();
  other.apply(delta(1, 0, "ab", { first_seq: 0, count: 2 }));
  other.apply(delta(2, 1, "bcd", { first_seq: 1, count: 3 }));  // 1..3, though 1 was applied already
  st = other.streams.get("st_1");
  assert.equal(st.text, "ab");
  assert.equal(st.index, 4);
  assert.equal(st.complete, false);
  other.apply(delta(3, 4, "e"));
  assert.equal(st.text, "abe");
  assert.equal(st.index, 5);
});

test("first_seq defaults to seq, count to 1", () => {
  assert.equal(firstSeqOf(progress(7, 1)), 7);
  assert.equal(firstSeqOf(progress(7, 1, 3)), 3);
  for (const bad of [8, -1, 2.5, "3", null]) assert.equal(firstSeqOf({ ...progress(7, 1), first_seq: bad }), 7);
  assert.equal(deltaCount(delta(1, 0, "x").data), 1);
  assert.equal(deltaCount(delta(4, 0, "xyz", { first_seq: 2, count: 3 }).data), 3);
  for (const bad of [0, -2, 1.5, "3", null]) assert.equal(deltaCount({ ...delta(1, 0, "x").data, count: bad }), 1);

  const view = new AgentView();
  view.apply(delta(1, 0, "x"));
  view.apply(delta(2, 1, "y"));
  assert.equal(view.streams.get("st_1").index, 2);
  assert.equal(view.streams.get("st_1").text, "xy");
});
