// The dashboard over TLS: agentwire started with --tls-cert/--tls-key serves the built dashboard over
// https:// to Debian's headless Chromium, and the page follows an agent live over wss:// on the same port.
// The CA and the server certificate (127.0.0.1, localhost) are made here with the openssl command; the
// browser is told to accept the certificate (--ignore-certificate-errors, for the browser only), and curl
// checks the chain the server sends against the CA.
//
// Needs: build/agentwire (or AGENTWIRE_BIN), web/dist (cd web && npm ci && npm run build), chromium
// (/usr/bin/chromium or CHROMIUM_BIN), openssl and curl.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { AgentwireServer } from "../../clients/ts/test/server.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const WEB_DIST = join(resolve(here, "..", ".."), "web", "dist");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const STEP_TIMEOUT = 15_000;

let pki;
let srv;
let base;
let context;
let profile;
const problems = [];

function openssl(...args) {
  execFileSync("openssl", args, { cwd: pki, stdio: "ignore", timeout: 60_000 });
}

/** A POST over HTTPS trusting only the test CA: (status, parsed body). */
function post(path, body) {
  return new Promise((resolvePost, reject) => {
    const data = JSON.stringify(body);
    const req = request(
      `${base}${path}`,
      {
        method: "POST",
        ca: readFileSync(join(pki, "ca.pem")),
        headers: { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(data) },
        timeout: STEP_TIMEOUT,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c) => (text += c));
        res.on("end", () => resolvePost({ status: res.statusCode, body: JSON.parse(text) }));
      },
    );
    req.on("error", reject);
    req.end(data);
  });
}

before(async () => {
  assert.ok(existsSync(join(WEB_DIST, "index.html")), `no ${WEB_DIST}/index.html: run \`npm ci && npm run build\` in web/`);
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_BIN)`);
  pki = mkdtempSync(join(tmpdir(), "agentwire-pki-"));
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
    "-out", "ca.pem", "-days", "2", "-subj", "/CN=agentwire browser test CA");
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "server.key",
    "-out", "server.csr", "-subj", "/CN=localhost");
  writeFileSync(join(pki, "server.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n");
  openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "0x5151",
    "-days", "2", "-extfile", "server.ext", "-out", "server.pem");
  srv = await new AgentwireServer({
    flags: ["--web-dir", WEB_DIST, "--tls-cert", join(pki, "server.pem"), "--tls-key", join(pki, "server.key")],
  }).start();
  base = `https://localhost:${srv.port}`;
  profile = mkdtempSync(join(tmpdir(), "agentwire-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--ignore-certificate-errors"],
    viewport: { width: 1280, height: 860 },
  });
});

after(async () => {
  await context?.close();
  await srv?.dispose();
  if (profile) rmSync(profile, { recursive: true, force: true });
  if (pki) rmSync(pki, { recursive: true, force: true });
});

test("curl trusts the server's chain through the test CA", () => {
  const out = execFileSync("curl", ["-sS", "--max-time", "15", "--cacert", join(pki, "ca.pem"), `${base}/healthz`],
    { encoding: "utf8", timeout: 30_000 });
  assert.deepEqual(JSON.parse(out), { status: "ok" });
});

test("the dashboard opened over https follows an agent live over wss", async () => {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("console", (m) => m.type() === "error" && problems.push(`console error: ${m.text()}`));
  page.on("response", (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()} for ${r.url()}`));
  const sockets = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));

  const agent = "agent-tls-1";
  await page.goto(`${base}/?agent=${agent}`);
  assert.equal(new URL(page.url()).protocol, "https:");
  await page.waitForFunction(() => document.getElementById("connection")?.dataset.state === "live", null, {
    timeout: STEP_TIMEOUT,
  });
  assert.ok(sockets.length > 0 && sockets.every((u) => u.startsWith(`wss://localhost:${srv.port}/ws/agents/`)), String(sockets));

  // Live events arrive through the wss connection: a workflow appears, then its progress.
  const created = await post("/api/workflows", { agent_id: agent, name: "Served over TLS" });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const card = `article.workflow[data-workflow-id="${created.body.id}"]`;
  await page.waitForSelector(card, { timeout: STEP_TIMEOUT });
  const progress = await post(`/api/workflows/${created.body.id}/progress`, { percent: 60, message: "over wss" });
  assert.ok(progress.status < 300, JSON.stringify(progress.body));
  await page.waitForFunction((sel) => document.querySelector(`${sel} .progress-bar`)?.style.width === "60%", card, {
    timeout: STEP_TIMEOUT,
  });
  assert.deepEqual(problems, []);
});
