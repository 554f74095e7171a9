// examples/node/simulate_agent.mjs against the real server, followed by this client: the run arrives
// complete, in order, once — also when the server restarts in the middle of it.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";

import { AgentView, AgentwireClient } from "../dist/index.js";
import { AgentwireServer, REPO_ROOT } from "./server.mjs";
import { recorder, waitFor } from "./util.mjs";

const SIMULATE = join(REPO_ROOT, "examples", "node", "simulate_agent.mjs");
const cleanup = [];
after(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

function simulate(args) {
  const proc = spawn(process.execPath, [SIMULATE, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stdout.on("data", (d) => (out += d));
  proc.stderr.on("data", (d) => (err += d));
  return {
    proc,
    done: new Promise((resolve) => proc.on("exit", (code) => resolve({ code, out, err }))),
  };
}

async function follow(srv, agent) {
  const view = new AgentView();
  const rec = recorder();
  const client = new AgentwireClient({ url: srv.url, backoff: { initialDelayMs: 100, maxDelayMs: 500 } });
  cleanup.push(() => client.close());
  const sub = client.subscribe(agent, {
    ...rec.handlers,
    start: "snapshot",
    onEvent: (e) => (rec.events.push(e), view.apply(e)),
    onSnapshot: (s) => (rec.snapshots.push(s), view.apply(s)),
  });
  await waitFor(() => rec.snapshots.length === 1, { what: "the first snapshot" });
  return { view, rec, sub };
}

function checkRun(view, rec, workflowIds) {
  const seqs = rec.seqs();
  seqs.forEach((s, i) => assert.equal(s, i + 1, `seq ${s} at position ${i}`));
  for (const id of workflowIds) {
    const wf = view.workflows.get(id);
    assert.ok(wf, `workflow ${id} seen`);
    assert.equal(wf.phase, "completed");
    assert.equal(wf.progress, 100);
    assert.equal(wf.requirements.items.length, 3);
    const streams = view.streamsOf(id);
    assert.equal(streams.length, 4, "one answer per phase after requirements");
    for (const st of streams) {
      assert.equal(st.status, "completed");
      assert.ok(st.complete && st.text.length > 40, `stream ${st.stream_id} text: ${JSON.stringify(st.text)}`);
    }
    assert.match(streams[2].text, /^Ran 42 tests/);
  }
}

test("simulate_agent.mjs publishes a whole run; the client sees every piece once, in order", async () => {
  const srv = await new AgentwireServer().start();
  cleanup.push(() => srv.dispose());
  const { view, rec } = await follow(srv, "agent-sim-1");
  const run = simulate(["--url", srv.url, "--agent", "agent-sim-1", "--token-delay", "0", "--step-delay", "0", "--quiet", "--runs", "2"]);
  const { code, out, err } = await run.done;
  assert.equal(code, 0, err);
  const ids = out.trim().split("\n");
  assert.equal(ids.length, 2);
  const page = await new AgentwireClient({ url: srv.url }).publisher().history("agent-sim-1", { limit: 1 });
  await waitFor(() => rec.events.length === page.latest, { what: `${page.latest} events` });
  checkRun(view, rec, ids);
});

test("simulate_agent.mjs rides out a server restart; nothing is lost or doubled", async () => {
  const srv = await new AgentwireServer().start();
  cleanup.push(() => srv.dispose());
  const { view, rec } = await follow(srv, "agent-sim-2");
  const run = simulate(["--url", srv.url, "--agent", "agent-sim-2", "--token-delay", "3", "--step-delay", "20", "--quiet"]);
  await waitFor(() => rec.events.length >= 40, { what: "the run to be under way" });
  await srv.restart();
  const { code, out, err } = await run.done;
  assert.equal(code, 0, err);
  const page = await new AgentwireClient({ url: srv.url }).publisher().history("agent-sim-2", { limit: 1 });
  await waitFor(() => rec.events.length === page.latest, { what: `${page.latest} events`, timeoutMs: 20_000 });
  checkRun(view, rec, [out.trim()]);
  assert.ok(rec.states.some((s) => s.state === "reconnecting"));
});

test("simulate_agent.mjs --fail-in stops the workflow as failed", async () => {
  const srv = await new AgentwireServer().start();
  cleanup.push(() => srv.dispose());
  const run = simulate(["--url", srv.url, "--agent", "agent-sim-3", "--token-delay", "0", "--step-delay", "0", "--quiet", "--fail-in", "testing"]);
  const { code, out, err } = await run.done;
  assert.equal(code, 0, err);
  const wf = await new AgentwireClient({ url: srv.url }).publisher().getWorkflow(out.trim());
  assert.equal(wf.phase, "failed");
  assert.equal(wf.phase_reason, "simulated failure in testing");
});

test("simulate_agent.mjs without a server fails with a clear message", async () => {
  const run = simulate(["--url", "http://127.0.0.1:9", "--retries", "1", "--quiet"]);
  const { code, err } = await run.done;
  assert.equal(code, 1);
  assert.match(err, /network_error|ECONNREFUSED/);
});
