#!/usr/bin/env node
// Publishes a simulated AI-agent run to an agentwire server: a workflow is created, gets requirements,
// walks through its phases with progress, and streams a model's answer token by token. Watch it live on
// the dashboard (http://127.0.0.1:8080/?agent=agent-7) or with any subscriber.
//
//   node examples/node/simulate_agent.mjs --url http://127.0.0.1:8080 --agent agent-7
//
// Plain Node.js 18+ (global fetch); no install, no build. Every write carries an Idempotency-Key and is
// retried while the server is unreachable or restarting, so a restart mid-run neither loses nor doubles
// an event.
//
// Options:
//   --url URL            server (default http://127.0.0.1:8080, or AGENTWIRE_URL)
//   --agent ID           agent id (default agent-7)
//   --name NAME          workflow name (default "Build a todo app")
//   --token-delay MS     wait between streamed tokens (default 60)
//   --step-delay MS      wait between phases and progress steps (default 400)
//   --fail-in PHASE      fail the workflow in this phase instead of completing it
//   --runs N             run N workflows one after the other (default 1)
//   --retries N          attempts per write while the server is away (default 30, about a minute)
//   --api-key KEY        for a server with keys: sent as Authorization: Bearer (default AGENTWIRE_API_KEY);
//                        an API key with the workflows scope, or a JWT carrying it
//   --quiet              print only the workflow id at the end

import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";

const PHASES = ["requirements", "design", "implementation", "testing", "deployment"];

const ANSWERS = {
  design:
    "Plan: a single-page app with three views — list, editor and settings. " +
    "State lives in one store; every change is saved to the server through a small REST API " +
    "(GET/POST/PATCH /todos). Offline edits queue up and replay when the connection returns.",
  implementation:
    "```ts\nexport interface Todo { id: string; title: string; done: boolean }\n\n" +
    "export async function toggle(todo: Todo): Promise<Todo> {\n" +
    "  const res = await fetch(`/todos/${todo.id}`, { method: 'PATCH', body: JSON.stringify({ done: !todo.done }) });\n" +
    "  if (!res.ok) throw new Error(`toggle failed: ${res.status}`);\n  return res.json();\n}\n```",
  testing: "Ran 42 tests: 42 passed. Coverage 91%. The offline queue survives a reload and replays in order.",
  deployment: "Deployed build 1.4.0 to production behind the load balancer; health checks are green.",
};

class AgentwireError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.name = "AgentwireError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
  get retryable() {
    return this.status === 0 || this.status >= 502;
  }
}

function usage(message) {
  if (message) console.error(`simulate_agent: ${message}`);
  console.error("usage: node examples/node/simulate_agent.mjs [--url URL] [--agent ID] [--name NAME] [--token-delay MS] [--step-delay MS] [--fail-in PHASE] [--runs N] [--retries N] [--api-key KEY] [--quiet]");
  process.exit(2);
}

let options;
try {
  options = parseArgs({
    options: {
      url: { type: "string", default: process.env.AGENTWIRE_URL ?? "http://127.0.0.1:8080" },
      agent: { type: "string", default: "agent-7" },
      name: { type: "string", default: "Build a todo app" },
      "token-delay": { type: "string", default: "60" },
      "step-delay": { type: "string", default: "400" },
      "fail-in": { type: "string" },
      runs: { type: "string", default: "1" },
      retries: { type: "string", default: "30" },
      "api-key": { type: "string", default: process.env.AGENTWIRE_API_KEY },
      quiet: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  }).values;
} catch (e) {
  usage(e.message);
}
if (options.help) usage();
const base = options.url.replace(/\/+$/, "");
const tokenDelay = Number(options["token-delay"]);
const stepDelay = Number(options["step-delay"]);
const runs = Number(options.runs);
const failIn = options["fail-in"];
const retries = Number(options.retries);
if (!/^[A-Za-z0-9_.:-]{1,128}$/.test(options.agent)) usage("--agent must be 1-128 characters of [A-Za-z0-9_.:-]");
if (!Number.isFinite(tokenDelay) || !Number.isFinite(stepDelay) || tokenDelay < 0 || stepDelay < 0) usage("delays are milliseconds");
if (!Number.isInteger(runs) || runs < 1) usage("--runs must be a positive integer");
if (!Number.isInteger(retries) || retries < 0) usage("--retries must be a non-negative integer");
if (failIn !== undefined && !PHASES.includes(failIn)) usage(`--fail-in must be one of ${PHASES.join(", ")}`);

const say = (...args) => {
  if (!options.quiet) console.log(...args);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One HTTP call; the JSON answer or an AgentwireError. */
async function call(method, path, body, idempotencyKey) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  if (options["api-key"]) headers.Authorization = `Bearer ${options["api-key"]}`;
  let res;
  try {
    res = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
  } catch (e) {
    throw new AgentwireError(0, "network_error", `${method} ${path}: ${e.cause?.code ?? e.message}`);
  }
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const { code = "http_error", message = `HTTP ${res.status}`, ...details } = json?.error ?? {};
    throw new AgentwireError(res.status, code, message, details);
  }
  return json;
}

/** A write: one Idempotency-Key, retried with backoff (full jitter) while the server is away. */
async function write(method, path, body) {
  const key = randomUUID();
  for (let attempt = 0; ; attempt++) {
    try {
      return await call(method, path, body, key);
    } catch (e) {
      if (!(e instanceof AgentwireError) || !e.retryable || attempt >= retries) throw e;
      const wait = Math.min(2000, 100 * 2 ** attempt) * Math.random();
      say(`  … ${e.message}; retrying in ${Math.round(wait)} ms`);
      await sleep(wait);
    }
  }
}

/** Cuts text into token-sized pieces (words with their spacing), as a model would emit them. */
function tokens(text) {
  return text.match(/\s*\S+|\s+/g) ?? [];
}

async function streamAnswer(workflowId, text) {
  const { stream_id } = await write("POST", `/api/workflows/${workflowId}/streams`);
  let index = 0;
  for (const token of tokens(text)) {
    await write("POST", `/api/streams/${stream_id}/append`, { delta: token, index });
    index++;
    if (tokenDelay > 0) await sleep(tokenDelay);
  }
  const end = await write("POST", `/api/streams/${stream_id}/end`, { status: "completed" });
  say(`  streamed ${end.deltas} tokens (${end.length} characters) in ${stream_id}`);
}

async function runOnce(n) {
  const name = runs > 1 ? `${options.name} #${n}` : options.name;
  const wf = await write("POST", "/api/workflows", {
    agent_id: options.agent,
    name,
    metadata: { simulated: true, started_by: "examples/node/simulate_agent.mjs" },
  });
  say(`workflow ${wf.id} "${name}" for ${options.agent}`);
  await sleep(stepDelay);
  await write("POST", `/api/workflows/${wf.id}/requirements`, {
    text: "A todo app that works offline and syncs when back online.",
    items: [
      { id: "R1", text: "Add, edit, complete and delete todos" },
      { id: "R2", text: "Works offline; syncs on reconnect" },
      { id: "R3", text: "Loads in under a second" },
    ],
  });
  say("  requirements submitted");

  let percent = 0;
  for (const phase of PHASES.slice(1)) {
    await sleep(stepDelay);
    await write("POST", `/api/workflows/${wf.id}/phase`, { phase, reason: `${phase} started` });
    say(`  phase → ${phase}`);
    if (phase === failIn) {
      await sleep(stepDelay);
      await write("POST", `/api/workflows/${wf.id}/phase`, { phase: "failed", reason: `simulated failure in ${phase}` });
      say("  phase → failed");
      return wf.id;
    }
    await write("POST", `/api/workflows/${wf.id}/progress`, { percent, message: `${phase}: starting` });
    await streamAnswer(wf.id, ANSWERS[phase]);
    percent += 25;
    await write("POST", `/api/workflows/${wf.id}/progress`, { percent, message: `${phase}: done` });
    say(`  progress ${percent}%`);
  }
  await sleep(stepDelay);
  await write("POST", `/api/workflows/${wf.id}/phase`, { phase: "completed", reason: "all phases done" });
  say("  phase → completed");
  return wf.id;
}

try {
  const ids = [];
  for (let n = 1; n <= runs; n++) ids.push(await runOnce(n));
  if (options.quiet) console.log(ids.join("\n"));
} catch (e) {
  if (e instanceof AgentwireError) {
    console.error(`simulate_agent: ${e.status || "no answer"} ${e.code}: ${e.message}`);
    if (e.status === 404 && e.code === "not_found") console.error("simulate_agent: does this server have the workflow routes (POST /api/workflows)?");
    process.exit(1);
  }
  throw e;
}
