// The whole token flow of the examples: examples/backend/token_server.py (your backend) mints a token for
// its user and serves examples/browser/, whose token provider fetches it; the page follows the agent on an
// agentwire server with the same secret, renews its token on token_expiring without reconnecting, and an
// agent the user may not watch is refused by the backend before agentwire is asked.
//
// Needs: build/agentwire (or AGENTWIRE_BIN), clients/ts/dist (cd clients/ts && npm ci && npm run build),
// chromium, /usr/bin/python3.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { AgentwireServer, binaryPath } from "../../clients/ts/test/server.mjs";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLIENT_DIST = join(REPO, "clients", "ts", "dist", "index.js");
const BACKEND = join(REPO, "examples", "backend", "token_server.py");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const SECRET = "example-backend-secret-of-at-least-32-bytes-0";
const TTL_S = 6; // token_expiring comes halfway through a life this short: the refresh is seen within seconds
const STEP_TIMEOUT = 20_000;

let srv;
let backend;
let backendUrl;
const minted = [];
let context;
let dir;

function publisherKey() {
  const b64 = (s) => Buffer.from(s).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: "test-publisher", iat: now, exp: now + 600, agents: ["*"], scope: "publish workflows read admin" };
  const input = `${b64(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64(JSON.stringify(claims))}`;
  return `${input}.${createHmac("sha256", SECRET).update(input).digest("base64url")}`;
}

before(async () => {
  if (!existsSync(CLIENT_DIST)) return;
  dir = mkdtempSync(join(tmpdir(), "agentwire-example-token-"));
  const secretFile = join(dir, "secret");
  writeFileSync(secretFile, SECRET + "\n");
  backend = spawn("/usr/bin/python3", [BACKEND, "--port", "0", "--secret-file", secretFile, "--ttl", String(TTL_S)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  backendUrl = await new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => reject(new Error("token_server did not start")), STEP_TIMEOUT);
    let out = "";
    backend.stdout.setEncoding("utf8");
    backend.stdout.on("data", (chunk) => {
      out += chunk;
      const lines = out.split("\n");
      out = lines.pop(); // an unfinished line waits for the rest
      for (const line of lines) if (line.startsWith("minted")) minted.push(line);
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)\//.exec(chunk);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1]);
      }
    });
    backend.once("exit", (code) => reject(new Error(`token_server exited with ${code}`)));
  });
  // A server that checks origins must be told about the page's (the backend serves it).
  const help = execFileSync(binaryPath(), ["--help"], { encoding: "utf8" });
  const origins = help.includes("--allowed-origins") ? ["--allowed-origins", backendUrl] : [];
  srv = await new AgentwireServer({ flags: ["--auth-secret-file", secretFile, ...origins] }).start();
  context = await chromium.launchPersistentContext(join(dir, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
});

after(async () => {
  await context?.close();
  backend?.kill("SIGTERM");
  await srv?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function openPage(agent) {
  const page = await context.newPage();
  const errors = [];
  const sockets = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("websocket", (ws) => sockets.push(ws.url()));
  const server = encodeURIComponent(srv.url);
  await page.goto(`${backendUrl}/examples/browser/?server=${server}&agent=${agent}&token_url=/token`);
  return { page, errors, sockets };
}

test("the backend's token opens the subscription and is renewed on token_expiring", async (t) => {
  if (!existsSync(CLIENT_DIST)) return t.skip("clients/ts/dist is not built (cd clients/ts && npm ci && npm run build)");
  const { Publisher } = await import(CLIENT_DIST);
  const api = new Publisher({ url: srv.url, apiKey: publisherKey() });
  const { page, errors, sockets } = await openPage("agent-7");
  await page.waitForFunction(() => document.getElementById("state")?.dataset.state === "live", null, { timeout: STEP_TIMEOUT });
  assert.equal(minted.length, 1, minted.join("\n"));
  const wf = await api.createWorkflow({ agent_id: "agent-7", name: "Token flow" });
  await page.waitForSelector(`.wf[data-workflow-id="${wf.id}"]`, { timeout: STEP_TIMEOUT });
  // token_expiring → the provider fetches a new token → refresh: a second token, and still the same socket.
  const waitStart = Date.now();
  while (minted.length < 2) {
    assert.ok(Date.now() - waitStart < STEP_TIMEOUT, "no second token within the timeout");
    await page.waitForTimeout(50); // pacing only: between polls of the backend's output
  }
  await page.waitForFunction(() => document.getElementById("state")?.dataset.state === "live", null, { timeout: STEP_TIMEOUT });
  await api.reportProgress(wf.id, 70, { message: "after the refresh" });
  await page.waitForFunction((id) => document.querySelector(`.wf[data-workflow-id="${id}"]`)?.textContent.includes("after the refresh"), wf.id, { timeout: STEP_TIMEOUT });
  assert.equal(sockets.length, 1, `one WebSocket for the whole run: ${JSON.stringify(sockets)}`);
  assert.ok(!sockets[0].includes("token"), sockets[0]);
  assert.deepEqual(errors, []);
  await page.close();
});

test("an agent the backend's user may not watch gets no token", async (t) => {
  if (!existsSync(CLIENT_DIST)) return t.skip("clients/ts/dist is not built");
  const res = await fetch(`${backendUrl}/token?agent=agent-8`);
  assert.equal(res.status, 403);
  assert.equal((await res.json()).error.code, "agent_forbidden");
  const escaped = await fetch(`${backendUrl}/examples/browser/../../src/app/main.cpp`);
  assert.equal(escaped.status, 404); // the backend serves the page and the client, nothing else
});
