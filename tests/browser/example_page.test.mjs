// examples/browser/index.html, served from another origin by a plain file server (as "anything" would),
// follows an agent on the real agentwire server through the built client in clients/ts/dist: the server
// names that origin in --allowed-origins. A page from an origin it does not name is refused: its
// WebSocket fails, its JSON POST gets no answer it may read (the preflight is 403), and a text/plain
// "simple request" it may send without asking publishes nothing (403, and 415 even from an allowed page).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

import { AgentwireServer } from "../../clients/ts/test/server.mjs";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CLIENT_DIST = join(REPO, "clients", "ts", "dist", "index.js");
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".map": "application/json" };

let srv;
let files;
let elsewhere;
let context;
let profile;

/** Serves examples/ and clients/ts/dist/ of the repository, nothing else. */
function fileServer() {
  return new Promise((resolveServer) => {
    const server = createServer((req, res) => {
      const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname));
      const allowed = path.startsWith("/examples/browser/") || path.startsWith("/clients/ts/dist/");
      let file = join(REPO, path);
      if (path.endsWith("/")) file = join(file, "index.html");
      if (!allowed || !existsSync(file)) {
        res.writeHead(404).end("not found");
        return;
      }
      res.writeHead(200, { "Content-Type": TYPES[extname(file)] ?? "application/octet-stream" });
      res.end(readFileSync(file));
    });
    server.listen(0, "127.0.0.1", () => resolveServer(server));
  });
}

/** A page of an origin the server does not name: nothing on it but what the test evaluates. */
function otherOrigin() {
  return new Promise((resolveServer) => {
    const server = createServer((req, res) => {
      res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" }).end("<!doctype html><title>elsewhere</title>");
    });
    server.listen(0, "127.0.0.1", () => resolveServer(server));
  });
}

before(async () => {
  files = await fileServer();
  elsewhere = await otherOrigin();
  if (!existsSync(CLIENT_DIST)) return;
  srv = await new AgentwireServer({ flags: ["--allowed-origins", `http://127.0.0.1:${files.address().port}`] }).start();
  profile = mkdtempSync(join(tmpdir(), "agentwire-chromium-"));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await context?.close();
  files?.close();
  elsewhere?.close();
  await srv?.dispose();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

test("the minimal example page follows an agent from another origin", async (t) => {
  if (!existsSync(CLIENT_DIST)) return t.skip("clients/ts/dist is not built (cd clients/ts && npm ci && npm run build)");
  const { Publisher } = await import(CLIENT_DIST);
  const api = new Publisher({ url: srv.url });
  const agent = "agent-example-1";
  const wf = await api.createWorkflow({ agent_id: agent, name: "Example workflow" });

  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  const { port } = files.address();
  await page.goto(`http://127.0.0.1:${port}/examples/browser/?server=${encodeURIComponent(srv.url)}&agent=${agent}`);
  await page.waitForFunction(() => document.getElementById("state")?.dataset.state === "live", null, { timeout: 15_000 });
  await page.waitForSelector(`.wf[data-workflow-id="${wf.id}"]`, { timeout: 15_000 });

  await api.changePhase(wf.id, "design");
  await api.reportProgress(wf.id, 55, { message: "half way" });
  const st = await api.openStream(wf.id);
  await api.appendStream(st.stream_id, "streamed ");
  await api.appendStream(st.stream_id, "text");
  await page.waitForFunction(
    (id) => document.querySelector(`pre[data-stream-id="${id}"]`)?.textContent === "streamed text ▍",
    st.stream_id,
    { timeout: 15_000 },
  );
  assert.equal(await page.textContent(`.wf[data-workflow-id="${wf.id}"] strong`), "Example workflow — design");
  assert.equal(await page.getAttribute(`.wf[data-workflow-id="${wf.id}"] .bar > div`, "style"), "width: 55%;");
  assert.deepEqual(errors, []);
});

test("a page from an origin the server does not name can neither subscribe nor publish", async (t) => {
  if (!existsSync(CLIENT_DIST)) return t.skip("clients/ts/dist is not built (cd clients/ts && npm ci && npm run build)");
  const agent = "agent-example-foreign";
  const page = await context.newPage();
  const refused = [];
  page.on("response", (r) => {
    if (r.url().startsWith(srv.url)) refused.push(r.status());
  });
  await page.goto(`http://127.0.0.1:${elsewhere.address().port}/`);
  const got = await page.evaluate(
    async ({ server, agent }) => {
      const ws = await new Promise((resolve) => {
        const socket = new WebSocket(`${server.replace(/^http/, "ws")}/ws/agents/${agent}`);
        socket.onopen = () => resolve("open");
        socket.onerror = () => resolve("error");
      });
      const events = `${server}/api/agents/${agent}/events`;
      const attempt = async (init) => {
        try {
          const r = await fetch(events, init);
          return r.type === "opaque" ? "opaque" : r.status;
        } catch {
          return "blocked";
        }
      };
      // A JSON POST needs a preflight; a text/plain one is a "simple request" sent without asking.
      const json = await attempt({ method: "POST", headers: { "Content-Type": "application/json" }, body: '{"type":"forged"}' });
      const simple = await attempt({ method: "POST", mode: "no-cors", headers: { "Content-Type": "text/plain" }, body: '{"type":"forged"}' });
      const read = await attempt({ method: "GET" });
      return { ws, json, simple, read };
    },
    { server: srv.url, agent },
  );
  await page.close();
  assert.deepEqual(got, { ws: "error", json: "blocked", simple: "opaque", read: "blocked" });
  // What reached the server was refused there, not merely hidden from the page.
  assert.ok(refused.length > 0 && refused.every((s) => s === 403), `statuses seen: ${refused}`);
  const history = await (await fetch(`${srv.url}/api/agents/${agent}/events`)).json();
  assert.equal(history.latest, 0, "a refused page published an event");
});
