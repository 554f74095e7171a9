// End to end: the real agentwire binary serves the built dashboard (web/dist) to Debian's headless
// Chromium; events published over HTTP must show up on the page — phase stepper, progress bar, streamed
// AI output — and the page must ride out a server restart (SIGTERM, same port and data dir): it shows
// reconnecting, then catches up with what was published meanwhile and is live again.
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
    // While the server is down, the browser logs each refused reconnect attempt: expected.
    if (m.type() === "error" && !/^WebSocket connection to .* failed/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  page.on("response", (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()} for ${r.url()}`);
  });
  page.on("requestfailed", (r) => {
    // While the server is down the WebSocket fails to connect: that is expected, files are not.
    if (!r.url().startsWith("ws")) problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
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

  // The event log lists what came, newest first.
  const firstLogType = await page.textContent("#event-log li:first-child .log-type");
  assert.equal(firstLogType, "stream");

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
