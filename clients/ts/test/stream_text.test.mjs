// Finished AI output against the real agentwire binary: a stream's text once it has ended (also after a
// restart), a workflow's stream list, the agents list with paging, and AgentView filling an ended
// stream's text lazily — once — when a snapshot carried only its summary.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";

import { AgentView, AgentwireClient, AgentwireError, Publisher } from "../dist/index.js";
import { AgentwireServer } from "./server.mjs";
import { waitFor } from "./util.mjs";

let srv;
let pub;
const clients = [];
before(async () => {
  srv = await new AgentwireServer().start();
  pub = new Publisher({ url: srv.url });
});
after(async () => {
  for (const c of clients) c.close();
  await srv?.dispose();
});

function client() {
  const c = new AgentwireClient({ url: srv.url });
  clients.push(c);
  return c;
}

/** A workflow of `agent` with one stream that streamed `pieces` and ended with `status`. */
async function finishedStream(agent, pieces, status = "completed") {
  const wf = await pub.createWorkflow({ agent_id: agent, name: `job of ${agent}` });
  const st = await pub.openStream(wf.id);
  for (const [i, piece] of pieces.entries()) await pub.appendStream(st.stream_id, piece, { index: i });
  await pub.endStream(st.stream_id, status, status === "failed" ? { reason: "model error" } : {});
  return { wf, streamId: st.stream_id };
}

test("a finished stream keeps its text: streamText and getStream, also after a restart", async () => {
  const pieces = ["The plan: ", "three services, ", "one queue ✓"];
  const { streamId } = await finishedStream("agent-tx1", pieces);
  const c = client();
  assert.equal(await c.streamText(streamId), pieces.join(""));
  assert.equal(await pub.streamText(streamId), pieces.join(""));
  const info = await pub.getStream(streamId);
  assert.equal(info.status, "completed");
  assert.equal(info.text, pieces.join(""));
  assert.equal(info.deltas, 3);

  await srv.restart();
  assert.equal(await c.streamText(streamId), pieces.join(""));
});

test("an open stream's text is what it has so far; an unknown stream is stream_not_found", async () => {
  const wf = await pub.createWorkflow({ agent_id: "agent-tx2", name: "open one" });
  const st = await pub.openStream(wf.id);
  await pub.appendStream(st.stream_id, "so far", { index: 0 });
  assert.equal(await client().streamText(st.stream_id), "so far");
  await assert.rejects(client().streamText("st_0000000000000000"), (e) => e instanceof AgentwireError && e.status === 404);
});

test("workflowStreams lists a workflow's streams in start order, with summaries and no text", async () => {
  const wf = await pub.createWorkflow({ agent_id: "agent-tx3", name: "two streams" });
  const a = await pub.openStream(wf.id);
  await pub.appendStream(a.stream_id, "first", { index: 0 });
  await pub.endStream(a.stream_id, "failed", { reason: "cut off" });
  const b = await pub.openStream(wf.id);
  await pub.appendStream(b.stream_id, "second", { index: 0 });
  const list = await client().workflowStreams(wf.id);
  assert.deepEqual(list.map((s) => [s.stream_id, s.workflow_id, s.status]), [
    [a.stream_id, wf.id, "failed"],
    [b.stream_id, wf.id, "streaming"],
  ]);
  assert.equal(list[0].reason, "cut off");
  assert.equal(list[0].deltas, 1);
  for (const s of list) assert.equal(s.text, undefined);
  await assert.rejects(client().workflowStreams("wf_0000000000000000"), (e) => e instanceof AgentwireError && e.status === 404);
});

test("agents lists the agents that have workflows, by id, a page at a time", async () => {
  for (const agent of ["agent-ls-b", "agent-ls-a", "agent-ls-c"]) await pub.createWorkflow({ agent_id: agent, name: "x" });
  await pub.createWorkflow({ agent_id: "agent-ls-a", name: "y" });
  await pub.publish("agent-ls-events-only", "note", { text: "no workflow" });
  const c = client();
  const seen = [];
  let after;
  for (let pages = 0; pages < 100; pages++) {
    const page = await c.agents({ limit: 2, after });
    assert.ok(page.agents.length <= 2);
    seen.push(...page.agents);
    if (!page.next) break;
    after = page.next;
  }
  const ids = seen.map((a) => a.agent_id);
  assert.deepEqual(ids, [...ids].sort(), "sorted by id");
  assert.equal(new Set(ids).size, ids.length, "no agent twice");
  assert.ok(!ids.includes("agent-ls-events-only"), "an agent without workflows is not listed");
  const byId = new Map(seen.map((a) => [a.agent_id, a]));
  assert.equal(byId.get("agent-ls-a")?.workflows, 2);
  assert.equal(byId.get("agent-ls-b")?.workflows, 1);
  const walked = [];
  for await (const a of pub.allAgents(1)) walked.push(a.agent_id);
  assert.deepEqual(walked, ids);
  await assert.rejects(c.agents({ limit: 0 }), (e) => e instanceof AgentwireError && e.status === 400);
});

test("AgentView fills a finished stream's text lazily, once, when a snapshot carried only its summary", async () => {
  const pieces = ["Decided: ", "Postgres, ", "not Mongo."];
  const { wf, streamId } = await finishedStream("agent-tx4", pieces, "failed");
  const c = client();
  let fetches = 0;
  const source = {
    streamText: (id) => {
      fetches++;
      return c.streamText(id);
    },
  };
  const view = new AgentView({ textSource: source });
  const sub = c.subscribe("agent-tx4", { start: "snapshot", onSnapshot: (s) => view.apply(s), onEvent: (e) => view.apply(e) });
  await waitFor(() => view.streams.has(streamId), { what: "the snapshot" });
  const before = view.streams.get(streamId);
  assert.deepEqual([before.status, before.text, before.complete], ["failed", "", false]);
  assert.equal(view.needsText(streamId), true);
  assert.equal(fetches, 0, "nothing fetched before it is asked for");

  const [one, two] = await Promise.all([view.fillText(streamId), view.fillText(streamId)]);
  assert.equal(one, two);
  assert.deepEqual([one.text, one.complete, one.status, one.reason], [pieces.join(""), true, "failed", "model error"]);
  assert.equal(view.needsText(streamId), false);
  await view.fillText(streamId);
  assert.equal(fetches, 1, "fetched once");
  assert.deepEqual(view.streamsOf(wf.id).map((s) => s.text), [pieces.join("")]);
  sub.close();

  // Without a source, fillText leaves the stream as it is.
  const bare = new AgentView();
  const snap = await new Promise((resolve) => {
    const s2 = c.subscribe("agent-tx4", {
      start: "snapshot",
      onSnapshot: (s) => {
        s2.close();
        resolve(s);
      },
    });
  });
  bare.apply(snap);
  assert.equal((await bare.fillText(streamId)).complete, false);
});

test("AgentView does not fetch a stream whose text it saw whole", async () => {
  const c = client();
  let fetches = 0;
  const view = new AgentView({ textSource: { streamText: (id) => (fetches++, c.streamText(id)) } });
  let snapshots = 0;
  const sub = c.subscribe("agent-tx5", {
    start: "snapshot",
    onSnapshot: (s) => (snapshots++, view.apply(s)),
    onEvent: (e) => view.apply(e),
  });
  await waitFor(() => snapshots > 0, { what: "the snapshot" });
  const { streamId } = await finishedStream("agent-tx5", ["live ", "text"]);
  await waitFor(() => view.streams.get(streamId)?.status === "completed", { what: "the end of the stream" });
  assert.equal(view.needsText(streamId), false);
  assert.equal((await view.fillText(streamId)).text, "live text");
  assert.equal(fetches, 0);
  sub.close();
});
