// The dashboard on a server with a key (issue 15, item 7): opened with ?token= it subscribes with the
// token (as the bearer subprotocol, not in the WebSocket's URL) and shows the agent live; its HTTP GETs
// carry the token as Authorization: Bearer; a token that does not allow the agent, or none, shows the
// refusal's code in the connection state instead of retrying for ever.
//
// Needs what dashboard.test.mjs needs: build/agentwire (or AGENTWIRE_BIN), web/dist, chromium.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { AgentwireServer } from "../../clients/ts/test/server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const WEB_DIST = join(resolve(here, "..", ".."), "web", "dist");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const STEP_TIMEOUT = 15_000;
const SECRET = "dashboard-secret-of-at-least-32-bytes-01234";

const b64url = (s) => Buffer.from(s).toString("base64url");
function mint(claims) {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify({ sub: "dev", iat: now, exp: now + 600, ...claims }))}`;
  return `${input}.${createHmac("sha256", SECRET).update(input).digest("base64url")}`;
}

let srv;
let context;
let dir;
let api;

before(async () => {
  assert.ok(existsSync(join(WEB_DIST, "index.html")), `no ${WEB_DIST}/index.html: run \`npm ci && npm run build\` in web/`);
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}`);
  dir = mkdtempSync(join(tmpdir(), "agentwire-dashboard-token-"));
  writeFileSync(join(dir, "secret"), SECRET);
  srv = await new AgentwireServer({ flags: ["--web-dir", WEB_DIST, "--auth-secret-file", join(dir, "secret")] }).start();
  const { Publisher } = await import(join(WEB_DIST, "client", "index.js"));
  api = new Publisher({ url: srv.url, apiKey: mint({ agents: ["*"], scope: "publish workflows read admin" }) });
  context = await chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
});

after(async () => {
  await context?.close();
  await srv?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function open(query) {
  const page = await context.newPage();
  const sockets = [];
  const gets = [];
  const problems = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));
  page.on("request", (r) => {
    if (new URL(r.url()).pathname.startsWith("/api/")) gets.push({ url: r.url(), headers: r.headers() });
  });
  page.on("pageerror", (e) => problems.push(e.message));
  await page.goto(`${srv.url}/?${query}`);
  return { page, sockets, gets, problems };
}

async function waitState(page, state) {
  await page.waitForFunction((s) => document.getElementById("connection")?.dataset.state === s, state, { timeout: STEP_TIMEOUT });
}

test("with ?token= the dashboard follows the agent live; the token is never in the WebSocket's URL", async () => {
  const token = mint({ agents: ["agent-7"], scope: "read" });
  const { page, sockets, gets, problems } = await open(`agent=agent-7&token=${token}`);
  await waitState(page, "live");
  const wf = await api.createWorkflow({ agent_id: "agent-7", name: "with a token" });
  await page.waitForSelector(`article.workflow[data-workflow-id="${wf.id}"]`, { timeout: STEP_TIMEOUT });
  assert.ok(sockets.length >= 1 && sockets.every((u) => !u.includes("token")), JSON.stringify(sockets));
  // The agent picker's GET /api/agents carries it as Authorization: Bearer.
  const agents = gets.find((g) => new URL(g.url).pathname === "/api/agents");
  assert.ok(agents, JSON.stringify(gets.map((g) => g.url)));
  assert.equal(agents.headers.authorization, `Bearer ${token}`);
  assert.deepEqual(problems, []);
  await page.close();
});

test("a token for another agent, or none, shows the refusal's code", async () => {
  for (const [query, code] of [[`agent=agent-8&token=${mint({ agents: ["agent-7"] })}`, "agent_forbidden"], ["agent=agent-7", "token_missing"]]) {
    const { page } = await open(query);
    await waitState(page, "closed");
    assert.match(await page.textContent("#connection-text"), new RegExp(code));
    await page.close();
  }
});
