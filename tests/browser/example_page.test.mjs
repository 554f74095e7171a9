// examples/browser/index.html, served from another origin by a plain file server (as "anything" would),
// follows an agent on the real agentwire server through the built client in clients/ts/dist.
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

before(async () => {
  if (!existsSync(CLIENT_DIST)) return;
  srv = await new AgentwireServer().start();
  files = await fileServer();
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
