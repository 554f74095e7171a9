// End to end: the real agentwire binary serves the built dashboard (web/dist) to Debian's headless
// Chromium; events published over HTTP must show up on the page — phase stepper, progress bar, streamed
// AI output — and the page must ride out a server restart (SIGTERM, same port and data dir): it shows
// reconnecting, then catches up with what was published meanwhile and is live again. Opened after a run
// finished, it shows the finished output's text (fetched when shown), one event row per stream, a failed
// workflow's stepper red only up to where it failed, and the agents in the picker, a page at a time.
//
// Needs: build/agentwire (or AGENTWIRE_BIN), web/dist (cd web && npm ci && npm run build), chromium
// (/usr/bin/chromium or CHROMIUM_BIN). Writes docs/dashboard.png (or $DASHBOARD_SCREENSHOT).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { AgentwireServer } from "../../clients/ts/test/server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const REPO = resolve(here, "..", "..");
const WEB_DIST = join(REPO, "web", "dist");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
// The picture in the READMEs; DASHBOARD_SCREENSHOT sends it elsewhere (e.g. to keep a CI checkout clean).
const SCREENSHOT = resolve(process.env.DASHBOARD_SCREENSHOT || join(REPO, "docs", "dashboard.png"));
const STEP_TIMEOUT = 15_000;

const CHROMIUM_FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let srv;
let context;
let page;
let profile;
let api;
const problems = [];
/** GET /api/streams/{id} the page made, by stream id. */
const streamFetches = new Map();

before(async () => {
  assert.ok(existsSync(join(WEB_DIST, "index.html")), `no ${WEB_DIST}/index.html: run \`npm ci && npm run build\` in web/`);
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_BIN)`);
  // The dashboard's own build of the client, used here from Node for the HTTP side.
  const { Publisher } = await import(join(WEB_DIST, "client", "index.js"));
  srv = await new AgentwireServer({ flags: ["--web-dir", WEB_DIST] }).start();
  api = new Publisher({ url: srv.url, timeoutMs: 5000 });
  profile = mkdtempSync(join(tmpdir(), "agentwire-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_FLAGS,
    viewport: { width: 1280, height: 860 },
    colorScheme: "light",
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    // While the server is down, the browser logs each refused reconnect attempt, and the refused GET with
    // which the client asks why the attempt failed (a browser hides a refused upgrade's status): expected.
    const down = /^WebSocket connection to .* failed/.test(m.text()) || m.text() === "Failed to load resource: net::ERR_CONNECTION_REFUSED";
    if (m.type() === "error" && !down) problems.push(`console error: ${m.text()}`);
  });
  page.on("request", (r) => {
    const m = /\/api\/streams\/([^/?]+)$/.exec(new URL(r.url()).pathname);
    if (m && r.method() === "GET") streamFetches.set(m[1], (streamFetches.get(m[1]) ?? 0) + 1);
  });
  page.on("response", (r) => {
    // The client's GET of /ws/agents/… after a failed attempt answers 426 when the token is not the reason.
    const asked = r.status() === 426 && new URL(r.url()).pathname.startsWith("/ws/agents/");
    if (r.status() >= 400 && !asked) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  page.on("requestfailed", (r) => {
    // While the server is down the WebSocket fails to connect, and so does the client's GET of the same
    // route asking why: that is expected, files are not.
    const route = new URL(r.url()).pathname.startsWith("/ws/agents/");
    if (!r.url().startsWith("ws") && !route) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
});

after(async () => {
  await context?.close();
  await srv?.dispose();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

// ---- helpers ----

const card = (id) => `article.workflow[data-workflow-id="${id}"]`;

async function waitState(states, timeout = STEP_TIMEOUT) {
  const wanted = Array.isArray(states) ? states : [states];
  await page.waitForFunction(
    (w) => w.includes(document.getElementById("connection")?.dataset.state),
    wanted,
    { timeout },
  );
}

async function currentStep(id) {
  return page.$eval(`${card(id)} li.step.current`, (li) => li.dataset.step);
}

async function waitCurrentStep(id, step) {
  await page.waitForFunction(
    ([sel, s]) => document.querySelector(`${sel} li.step.current`)?.dataset.step === s,
    [card(id), step],
    { timeout: STEP_TIMEOUT },
  );
}

async function waitProgress(id, pct) {
  await page.waitForFunction(
    ([sel, p]) => document.querySelector(`${sel} .progress-bar`)?.style.width === `${p}%`,
    [card(id), pct],
    { timeout: STEP_TIMEOUT },
  );
}

async function streamText(streamId) {
  return page.$eval(`pre.stream-text[data-stream-id="${streamId}"]`, (pre) => pre.textContent);
}

async function waitStreamText(streamId, text) {
  await page.waitForFunction(
    ([id, t]) => document.querySelector(`pre.stream-text[data-stream-id="${id}"]`)?.textContent === t,
    [streamId, text],
    { timeout: STEP_TIMEOUT },
  );
}

/** The stream ids of the event log's stream rows, top to bottom. */
async function streamRows() {
  return page.$$eval("#event-log li.type-stream", (lis) => lis.map((li) => li.dataset.streamId));
}

const RED = "rgb(220, 38, 38)";
const GREEN = "rgb(22, 163, 74)";
const GREY = "rgb(226, 232, 240)";
/** A workflow failed in design: its steps' classes and the colour of the line into each, and of the ✕. */
const STOPPED_AT_DESIGN = [
  ["requirements", "done"],
  ["design", "stopped", RED],
  ["implementation", "skipped", GREY],
  ["testing", "skipped", GREY],
  ["deployment", "skipped", GREY],
  ["failed", "current", GREY, RED],
];

/** [step, state, colour of the line into it (none for the first), colour of the ✕ dot (the last)]. */
async function stepColours(id) {
  return page.$$eval(`${card(id)} li.step`, (lis) =>
    lis.map((li, i) => {
      const state = ["done", "stopped", "skipped", "unknown", "current", "upcoming"].find((c) => li.classList.contains(c));
      const row = [li.dataset.step, state];
      if (i > 0) row.push(getComputedStyle(li, "::before").backgroundColor);
      if (li.classList.contains("failed")) row.push(getComputedStyle(li.querySelector(".step-dot")).backgroundColor);
      return row;
    }),
  );
}

async function publishWhenUp(fn) {
  const deadline = Date.now() + STEP_TIMEOUT;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (!e.retryable || Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50)); // pacing only: between retries
    }
  }
}

// ---- the test ----

test("the dashboard follows an agent live and rides out a server restart", async () => {
  const agent = "agent-ui-1";
  await page.goto(`${srv.url}/?agent=${agent}`);
  assert.equal(await page.inputValue("#agent-input"), agent);
  await waitState("live");
  // The page asked for a snapshot on connecting: with nothing there yet it says so.
  await page.waitForFunction(() => document.getElementById("empty")?.textContent?.startsWith("No workflows"), null, {
    timeout: STEP_TIMEOUT,
  });

  // 1. A workflow appears, with its phase, progress and requirements.
  const wf = await api.createWorkflow({ agent_id: agent, name: "Build the billing service" }, { idempotencyKey: "ui-create-1" });
  await page.waitForSelector(card(wf.id), { timeout: STEP_TIMEOUT });
  assert.equal(await currentStep(wf.id), "requirements");
  await api.submitRequirements(wf.id, { text: "Invoices, refunds and a monthly report.", items: ["invoices", "refunds", "reports"] });
  await page.waitForSelector(`${card(wf.id)} .requirements details`, { timeout: STEP_TIMEOUT });
  await api.changePhase(wf.id, "design");
  await waitCurrentStep(wf.id, "design");
  assert.deepEqual(
    await page.$$eval(`${card(wf.id)} li.step`, (lis) => lis.map((li) => [li.dataset.step, li.classList.contains("done")])),
    [
      ["requirements", true],
      ["design", false],
      ["implementation", false],
      ["testing", false],
      ["deployment", false],
      ["completed", false],
    ],
  );
  assert.equal(await page.getAttribute(`${card(wf.id)} li.step.current`, "aria-current"), "step");
  await api.reportProgress(wf.id, 40, { message: "designing the schema" });
  await waitProgress(wf.id, 40);
  assert.equal(await page.textContent(`${card(wf.id)} .progress-text`), "40% · designing the schema");
  assert.equal(await page.getAttribute(`${card(wf.id)} .progress`, "aria-valuenow"), "40");

  // 2. AI output streams in, piece by piece.
  const stream = await api.openStream(wf.id);
  const pieces = ["The billing ", "service has ", "three parts:", "\n1. invoices"];
  let expected = "";
  for (const [i, delta] of pieces.entries()) {
    await api.appendStream(stream.stream_id, delta, { index: i });
    expected += delta;
    await waitStreamText(stream.stream_id, expected);
  }
  assert.equal(await page.getAttribute(`.stream[data-stream-id="${stream.stream_id}"]`, "data-status"), "streaming");

  // 3. The server restarts. The page notices, and catches up with what was published meanwhile.
  await srv.stop();
  await waitState(["reconnecting"]);
  assert.match(await page.textContent("#connection-text"), /reconnecting/);
  await srv.start();
  const more = ["\n2. refunds", "\n3. reports"];
  for (const [i, delta] of more.entries()) {
    await publishWhenUp(() => api.appendStream(stream.stream_id, delta, { index: pieces.length + i, idempotencyKey: `ui-more-${i}` }));
    expected += delta;
  }
  await publishWhenUp(() => api.changePhase(wf.id, "implementation", { idempotencyKey: "ui-phase-impl" }));
  await publishWhenUp(() => api.reportProgress(wf.id, 70, { message: "writing code", idempotencyKey: "ui-progress-70" }));
  await waitState(["resumed", "live"]);
  await waitStreamText(stream.stream_id, expected);
  await waitCurrentStep(wf.id, "implementation");
  await waitProgress(wf.id, 70);
  assert.equal(await page.textContent(`${card(wf.id)} .progress-text`), "70% · writing code");

  // 4. After the restart, live events still arrive.
  await api.appendStream(stream.stream_id, "\nDone.", { index: pieces.length + more.length });
  expected += "\nDone.";
  await waitStreamText(stream.stream_id, expected);
  await api.endStream(stream.stream_id, "completed");
  await page.waitForSelector(`.stream[data-stream-id="${stream.stream_id}"][data-status="completed"]`, { timeout: STEP_TIMEOUT });
  assert.equal(await streamText(stream.stream_id), expected);

  // 5. Failed and completed workflows look different.
  const failing = await api.createWorkflow({ agent_id: agent, name: "Migrate the legacy ledger" });
  await api.changePhase(failing.id, "design");
  await api.reportProgress(failing.id, 25);
  await api.changePhase(failing.id, "failed", { reason: "schema conflict" });
  await page.waitForSelector(`${card(failing.id)}[data-phase="failed"] li.step.current.failed`, { timeout: STEP_TIMEOUT });
  assert.equal(await page.getAttribute(`${card(failing.id)} li.step.stopped`, "data-step"), "design");
  assert.equal(await page.textContent(`${card(failing.id)} .phase-badge`), "Failed");

  const done = await api.createWorkflow({ agent_id: agent, name: "Nightly report job" });
  for (const phase of ["design", "implementation", "testing", "deployment"]) await api.changePhase(done.id, phase);
  await api.reportProgress(done.id, 100, { message: "shipped" });
  await api.changePhase(done.id, "completed");
  await page.waitForSelector(`${card(done.id)}[data-phase="completed"]`, { timeout: STEP_TIMEOUT });
  assert.equal(await page.$$eval(`${card(done.id)} li.step.done`, (lis) => lis.length), 6);
  await waitProgress(done.id, 100);

  // 6. A fourth workflow mid-stream for the picture.
  const live = await api.createWorkflow({ agent_id: agent, name: "Write the API docs" });
  await api.submitRequirements(live.id, { text: "Document every route with an example." });
  await api.changePhase(live.id, "design");
  await api.changePhase(live.id, "implementation");
  await api.changePhase(live.id, "testing");
  await api.reportProgress(live.id, 62, { message: "checking the examples" });
  const st2 = await api.openStream(live.id);
  const doc = ["## POST /api/workflows\n", "Creates a workflow for an agent. ", "Answers 201 with the workflow:\n", '{"id": "wf_…", "phase": "requirements"}'];
  for (const [i, d] of doc.entries()) await api.appendStream(st2.stream_id, d, { index: i });
  await waitStreamText(st2.stream_id, doc.join(""));
  await waitProgress(live.id, 62);

  // The event log lists what came, newest first, a stream's start, deltas and end in one row that grew.
  const firstLogType = await page.textContent("#event-log li:first-child .log-type");
  assert.equal(firstLogType, "stream");
  assert.deepEqual(await streamRows(), [st2.stream_id, stream.stream_id]);
  assert.match(await page.textContent(`#event-log li[data-stream-id="${stream.stream_id}"] .log-text`), /^completed · 7 pieces/);
  assert.match(await page.textContent(`#event-log li[data-stream-id="${st2.stream_id}"] .log-text`), /^streaming · 4 pieces/);
  // The failing workflow, seen failing: red up to the step it stopped at, grey after it.
  assert.deepEqual(await stepColours(failing.id), STOPPED_AT_DESIGN);
  // Streams this page saw whole were never fetched.
  assert.equal(streamFetches.size, 0);

  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  // Transitions finished, the caret not blinking: the same picture every run.
  await page.screenshot({ path: SCREENSHOT, fullPage: true, animations: "disabled" });
  assert.deepEqual(problems, [], problems.join("\n"));
});

test("choosing another agent in the form follows it and updates the URL", async () => {
  const other = "agent-ui-2";
  await api.createWorkflow({ agent_id: other, name: "Other agent's job" });
  await page.fill("#agent-input", other);
  await page.click("#agent-form button");
  await page.waitForFunction((a) => new URL(location.href).searchParams.get("agent") === a, other, { timeout: STEP_TIMEOUT });
  await page.waitForFunction(() => document.querySelectorAll("article.workflow").length === 1, null, { timeout: STEP_TIMEOUT });
  assert.equal(await page.textContent("article.workflow .wf-name"), "Other agent's job");
  await waitState(["live"]);
  assert.deepEqual(problems, [], problems.join("\n"));
});

test("opened after a run finished: the finished text, one row per stream, the failed stepper, the agent picker", async () => {
  // A run that finished before the page was opened: two outputs, one completed and one failed, and a
  // workflow that failed in design.
  const agent = "agent-ui-3";
  const run = await api.createWorkflow({ agent_id: agent, name: "Design the search index" });
  await api.changePhase(run.id, "design");
  // Twenty lines: the box is at its full height, so that what follows it is below the fold.
  const plan = Array.from({ length: 20 }, (_, i) => `${i + 1}. shard ${i} of the inverted index by tenant\n`);
  const outputs = [
    { pieces: [...plan, "Ranking: BM25."], status: "completed" },
    { pieces: ["Benchmark plan: ", "10k queries"], status: "failed" },
  ];
  for (const out of outputs) {
    const st = await api.openStream(run.id);
    for (const [i, d] of out.pieces.entries()) await api.appendStream(st.stream_id, d, { index: i });
    await api.endStream(st.stream_id, out.status, out.status === "failed" ? { reason: "model timeout" } : {});
    out.id = st.stream_id;
  }
  await api.changePhase(run.id, "failed", { reason: "no budget" });
  // A second workflow whose second output stays below the fold (under the first's full-height box).
  const below = await api.createWorkflow({ agent_id: agent, name: "Below the fold" });
  const tall = await api.openStream(below.id);
  for (const [i, d] of plan.entries()) await api.appendStream(tall.stream_id, d, { index: i });
  await api.endStream(tall.stream_id, "completed");
  const unshown = await api.openStream(below.id);
  await api.appendStream(unshown.stream_id, "never looked at", { index: 0 });
  await api.endStream(unshown.stream_id, "completed");

  await page.setViewportSize({ width: 1280, height: 600 });
  await page.goto(`${srv.url}/?agent=${agent}`);
  await waitState("live");
  await page.waitForSelector(card(run.id), { timeout: STEP_TIMEOUT });

  // 1. The finished outputs show the text they ended with, fetched once each, when shown.
  for (const out of outputs) {
    await page.locator(`.stream[data-stream-id="${out.id}"]`).scrollIntoViewIfNeeded();
    await waitStreamText(out.id, out.pieces.join(""));
    assert.equal(streamFetches.get(out.id), 1);
  }
  assert.equal(await page.getAttribute(`.stream[data-stream-id="${outputs[1].id}"]`, "data-status"), "failed");
  assert.match(await page.textContent(`.stream[data-stream-id="${outputs[1].id}"] .stream-status`), /failed · model timeout/);
  assert.equal(await page.$$eval("pre.stream-text", (pres) => pres.filter((p) => /pieces streamed/.test(p.textContent)).length), 0);

  // 2. The failed workflow's stepper: the page did not see it fail; it found where in the history.
  await page.waitForSelector(`${card(run.id)} li.step.stopped`, { timeout: STEP_TIMEOUT });
  assert.deepEqual(await stepColours(run.id), STOPPED_AT_DESIGN);

  // 3. The event log folds a stream's deltas into one row per stream, growing as they arrive.
  assert.deepEqual(await streamRows(), []);
  const next = await api.createWorkflow({ agent_id: agent, name: "Write the release notes" });
  const notes = await api.openStream(next.id);
  const words = ["Search ", "is ", "now ", "sharded."];
  for (const [i, d] of words.entries()) {
    await api.appendStream(notes.stream_id, d, { index: i });
    await page.waitForFunction(
      ([id, n]) => document.querySelector(`#event-log li[data-stream-id="${id}"] .log-text`)?.textContent?.startsWith(`streaming · ${n} piece`),
      [notes.stream_id, i + 1],
      { timeout: STEP_TIMEOUT },
    );
    assert.deepEqual(await streamRows(), [notes.stream_id]);
  }
  await api.endStream(notes.stream_id, "completed");
  await page.waitForFunction(
    (id) => document.querySelector(`#event-log li[data-stream-id="${id}"] .log-text`)?.textContent?.startsWith("completed · 4 pieces"),
    notes.stream_id,
    { timeout: STEP_TIMEOUT },
  );
  assert.deepEqual(await streamRows(), [notes.stream_id]);
  assert.match(await page.textContent(`#event-log li[data-stream-id="${notes.stream_id}"] .log-text`), /“Search is now sharded\.”$/);

  // 4. The agent picker lists the agents that have workflows, in order, and follows the one clicked.
  await page.waitForFunction(() => document.querySelectorAll("#agent-list a.agent-link").length >= 3, null, { timeout: STEP_TIMEOUT });
  const listed = await page.$$eval("#agent-list a.agent-link", (as) => as.map((a) => a.dataset.agentId));
  assert.deepEqual(listed, ["agent-ui-1", "agent-ui-2", "agent-ui-3"]);
  assert.equal(await page.getAttribute('#agent-list a[data-agent-id="agent-ui-3"]', "aria-current"), "true");
  assert.match(await page.textContent('#agent-list a[data-agent-id="agent-ui-1"] .agent-count'), /^4 workflows$/);
  await page.click('#agent-list a[data-agent-id="agent-ui-2"]');
  await page.waitForFunction(() => new URL(location.href).searchParams.get("agent") === "agent-ui-2", null, { timeout: STEP_TIMEOUT });
  await page.waitForFunction(() => document.querySelector("article.workflow .wf-name")?.textContent === "Other agent's job", null, {
    timeout: STEP_TIMEOUT,
  });
  assert.equal(await page.inputValue("#agent-input"), "agent-ui-2");
  assert.equal(await page.getAttribute('#agent-list a[data-agent-id="agent-ui-2"]', "aria-current"), "true");

  // 5. Past a page of agents, "More agents…" brings the next page.
  const many = Array.from({ length: 55 }, (_, i) => `agent-uz-${String(i).padStart(2, "0")}`);
  for (const id of many) await api.createWorkflow({ agent_id: id, name: "x" });
  await page.click("#agents-reload");
  await page.waitForFunction(() => document.querySelectorAll("#agent-list a.agent-link").length === 50, null, { timeout: STEP_TIMEOUT });
  await page.click("#agents-more");
  await page.waitForFunction(() => document.querySelectorAll("#agent-list a.agent-link").length === 58, null, { timeout: STEP_TIMEOUT });
  assert.equal(await page.isHidden("#agents-more"), true);
  const all = await page.$$eval("#agent-list a.agent-link", (as) => as.map((a) => a.dataset.agentId));
  assert.deepEqual(all, ["agent-ui-1", "agent-ui-2", "agent-ui-3", ...many]);

  // The output below the fold was never shown, so never fetched.
  assert.equal(streamFetches.get(unshown.stream_id), undefined);
  assert.deepEqual(problems, [], problems.join("\n"));
});
