// Credentials (issue 15, item 7) against the real server with a key: the token goes as the `bearer`
// subprotocol, a tokenProvider is asked again on every reconnect and on token_expiring (answered with
// refresh), refusals end the subscription with typed errors instead of retrying for ever, and the
// publisher's apiKey goes as Authorization: Bearer. Tokens are minted here with node:crypto (HS256).
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";

import { WebSocket as WsWebSocket } from "ws";

import { AgentwireClient, AgentwireError, AuthenticationError, PermissionDeniedError, Publisher } from "../dist/index.js";
import { MAX_AUTH_ATTEMPTS } from "../dist/subscription.js";
import { AgentwireServer, binaryPath, tempDir } from "./server.mjs";
import { recorder, waitFor } from "./util.mjs";

const SECRET = "ts-client-secret-of-at-least-32-bytes-0123456";
const FAST = { initialDelayMs: 50, maxDelayMs: 300 };

const b64url = (buf) => Buffer.from(buf).toString("base64url");

function mint({ agents = ["agent-7"], ttl = 300, sub = "user-1", ...extra } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64url(JSON.stringify({ sub, iat: now, exp: now + ttl, agents, ...extra }))}`;
  return `${input}.${createHmac("sha256", SECRET).update(input).digest("base64url")}`;
}

const expOf = (token) => JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString()).exp;

// The publisher's credentials: a JWT with every scope (HTTP routes take an API key or a token).
const PUBLISHER_KEY = mint({ agents: ["*"], ttl: 3600, sub: "publisher", scope: "publish workflows read admin" });

let srv;
const clients = [];
before(async () => {
  const dir = tempDir("agentwire-ts-auth-");
  const secret = join(dir, "secret");
  writeFileSync(secret, SECRET + "\n");
  srv = await new AgentwireServer({ flags: ["--auth-secret-file", secret] }).start();
});
after(async () => {
  for (const c of clients) c.close();
  await srv?.dispose();
});

function client(options) {
  const c = new AgentwireClient({ url: srv.url, backoff: FAST, ...options });
  clients.push(c);
  return c;
}

describe("subscribing with a token", () => {
  test("a token allowing the agent subscribes (as the bearer subprotocol) and events flow", async () => {
    const rec = recorder();
    const c = client({ token: mint(), apiKey: PUBLISHER_KEY });
    const sub = c.subscribe("agent-7", rec.handlers);
    await sub.ready;
    assert.equal(sub.state, "live");
    const { seq } = await c.publisher().publish("agent-7", "note", { n: 1 });
    await waitFor(() => rec.events.some((e) => e.seq === seq), { what: "the event" });
  });

  test("without a token the apiKey subscribes (here a JWT, as the server takes either)", async () => {
    const sub = client({ apiKey: mint() }).subscribe("agent-7");
    await sub.ready;
    assert.equal(sub.state, "live");
  });

  test("a token for another agent ends the subscription at once with PermissionDeniedError", async () => {
    let calls = 0;
    const rec = recorder();
    const sub = client({ tokenProvider: () => (calls++, mint({ agents: ["agent-8"] })) }).subscribe("agent-7", rec.handlers);
    const err = await sub.ready.then(() => null, (e) => e);
    assert.ok(err instanceof PermissionDeniedError, String(err));
    assert.ok(err instanceof AgentwireError);
    assert.equal(err.status, 403);
    assert.equal(err.code, "agent_forbidden");
    assert.equal(err.retryable, false);
    assert.equal(sub.state, "closed");
    assert.equal(calls, 1);
    assert.ok(rec.errors.includes(err));
  });

  test("no token, a forged one or an expired fixed one: AuthenticationError with the server's code", async () => {
    for (const [token, code] of [[undefined, "token_missing"], [mint().replace(/[^.]+$/, "c2lnbmVkLWJ5LW5vYm9keQ"), "token_invalid"], [mint({ ttl: -10 }), "token_expired"]]) {
      const sub = client({ token }).subscribe("agent-7");
      const err = await sub.ready.then(() => null, (e) => e);
      assert.ok(err instanceof AuthenticationError, `${code}: ${err}`);
      assert.deepEqual([err.status, err.code], [401, code]);
      assert.equal(sub.state, "closed");
    }
  });

  test("the iterator ends with the refusal too", async () => {
    const sub = client({ token: mint({ agents: ["other"] }) }).subscribe("agent-7");
    await assert.rejects(async () => {
      for await (const _ of sub) { /* nothing arrives */ }
    }, (e) => e instanceof PermissionDeniedError);
  });

  test("like a browser, which hides a refused upgrade's status: the refusal is found over HTTP", async () => {
    // A WebSocket that reports failures as browsers do: an empty error event, then close 1006.
    class BrowserLike {
      constructor(url, protocols) {
        this.inner = new WsWebSocket(url, protocols);
        this.inner.onopen = (e) => this.onopen?.(e);
        this.inner.onmessage = (e) => this.onmessage?.(e);
        this.inner.onerror = () => this.onerror?.({});
        this.inner.onclose = (e) => this.onclose?.({ code: e.code, reason: e.reason });
      }
      get readyState() { return this.inner.readyState; }
      send(data) { this.inner.send(data); }
      close(code, reason) { this.inner.close(code, reason); }
    }
    const forbidden = client({ WebSocket: BrowserLike, token: mint({ agents: ["agent-8"] }) }).subscribe("agent-7");
    const err = await forbidden.ready.then(() => null, (e) => e);
    assert.ok(err instanceof PermissionDeniedError && err.code === "agent_forbidden", String(err));
    const allowed = client({ WebSocket: BrowserLike, token: mint() }).subscribe("agent-7");
    await allowed.ready;
    assert.equal(allowed.state, "live");
  });

  test("a provider of expired tokens is asked MAX_AUTH_ATTEMPTS times, then AuthenticationError", async () => {
    let calls = 0;
    const sub = client({ tokenProvider: async () => (calls++, mint({ ttl: -60 })) }).subscribe("agent-7");
    const err = await sub.ready.then(() => null, (e) => e);
    assert.ok(err instanceof AuthenticationError, String(err));
    assert.equal(err.code, "token_expired");
    assert.equal(calls, MAX_AUTH_ATTEMPTS);
  });

  test("the provider is asked again on every reconnect", async () => {
    let calls = 0;
    const rec = recorder();
    const sub = client({ tokenProvider: async () => (calls++, mint()) }).subscribe("agent-7", rec.handlers);
    await sub.ready;
    assert.equal(calls, 1);
    sub.reconnectNow();
    await waitFor(() => rec.states.some((s) => s.state === "resumed"), { what: "the reconnect" });
    assert.equal(calls, 2);
    const { seq } = await new Publisher({ url: srv.url, apiKey: PUBLISHER_KEY }).publish("agent-7", "after", {});
    await waitFor(() => rec.events.some((e) => e.seq === seq), { what: "the event after the reconnect" });
  });

  test("token_expiring is answered with a refresh from the provider; the connection outlives the first token", async () => {
    const tokens = [mint({ ttl: 6 }), mint({ ttl: 600 })];
    let calls = 0;
    const rec = recorder();
    const sub = client({ tokenProvider: () => tokens[Math.min(calls++, 1)] }).subscribe("agent-7", rec.handlers);
    await sub.ready;
    await waitFor(() => sub.tokenRefreshes === 1, { what: "token_expiring, refresh, token_refreshed", timeoutMs: 20_000 });
    assert.equal(calls, 2);
    assert.equal(sub.tokenExp, expOf(tokens[1]));
    const firstExp = expOf(tokens[0]);
    await waitFor(() => Date.now() / 1000 > firstExp + 2, { what: "the first token's exp to pass", timeoutMs: 20_000 });
    const { seq } = await new Publisher({ url: srv.url, apiKey: PUBLISHER_KEY }).publish("agent-7", "still-here", {});
    await waitFor(() => rec.events.some((e) => e.seq === seq), { what: "the event on the same connection" });
    assert.ok(!rec.states.some((s) => s.state === "reconnecting"), JSON.stringify(rec.states.map((s) => s.state)));
  });

  test("a fixed token that expires: closed with 4001, the reconnect is refused, AuthenticationError", async () => {
    const rec = recorder();
    const sub = client({ token: mint({ ttl: 4 }) }).subscribe("agent-7", rec.handlers);
    await sub.ready;
    await waitFor(() => sub.state === "closed", { what: "the subscription to end", timeoutMs: 30_000 });
    assert.ok(rec.states.some((s) => /4001/.test(s.change.reason ?? "")), JSON.stringify(rec.states.map((s) => s.change.reason)));
    const last = rec.states.at(-1).change.error;
    assert.ok(last instanceof AuthenticationError && last.code === "token_expired", String(last));
  });
});

describe("HTTP credentials and errors", () => {
  test("apiKey is sent as Authorization: Bearer; 401/403 are typed, 429 is retryable", async () => {
    const seen = [];
    const answers = [[401, "token_expired"], [403, "scope_forbidden"], [429, "rate_limited"]];
    const fakeFetch = async (url, init) => {
      seen.push(init.headers.Authorization);
      const [status, code] = answers[seen.length - 1];
      return new Response(JSON.stringify({ error: { code, message: "no" } }), { status, headers: { "Content-Type": "application/json" } });
    };
    const pub = new Publisher({ url: "http://127.0.0.1:1", apiKey: "key-1", fetch: fakeFetch });
    const e401 = await pub.health().catch((e) => e);
    const e403 = await pub.health().catch((e) => e);
    const e429 = await pub.health().catch((e) => e);
    assert.deepEqual(seen, ["Bearer key-1", "Bearer key-1", "Bearer key-1"]);
    assert.ok(e401 instanceof AuthenticationError && !e401.retryable);
    assert.ok(e403 instanceof PermissionDeniedError && e403.code === "scope_forbidden" && !e403.retryable);
    assert.ok(e429 instanceof AgentwireError && e429.retryable);
    assert.equal(new AgentwireError(503, "store_full", "").retryable, false);
    assert.equal(new AgentwireError(503, "shutting_down", "").retryable, true);
  });

  test("the client's publisher carries the apiKey (else a fixed token); bad credentials are refused early", () => {
    const hdr = (p) => p.headers.Authorization;
    assert.equal(hdr(new AgentwireClient({ url: "http://x:1", apiKey: "k" }).publisher()), "Bearer k");
    assert.equal(hdr(new AgentwireClient({ url: "http://x:1", token: "t.o.k" }).publisher()), "Bearer t.o.k");
    assert.equal(hdr(new AgentwireClient({ url: "http://x:1" }).publisher()), undefined);
    assert.throws(() => new AgentwireClient({ url: "http://x:1", token: "a.b.c", tokenProvider: () => "d" }));
    assert.throws(() => new AgentwireClient({ url: "http://x:1", apiKey: "a key" }));
    assert.throws(() => new AgentwireClient({ url: "http://x:1", token: "not a token" }));
    assert.throws(() => new Publisher({ url: "http://x:1", apiKey: "two\nlines" }));
  });
});

describe("API keys (a build that has them)", () => {
  test("a key publishes and subscribes; one without the scope is PermissionDeniedError, not retried", async (t) => {
    if (!execFileSync(binaryPath(), ["--help"], { encoding: "utf8" }).includes("--api-keys-file")) return t.skip("this build has no API keys");
    const make = (name, scopes) => {
      const out = execFileSync(binaryPath(), ["api-key", "--name", name, "--scopes", scopes], { encoding: "utf8" });
      const field = (k) => out.split("\n").find((l) => l.startsWith(`${k}:`)).slice(k.length + 1).trim();
      return { key: field("key"), entry: JSON.parse(field("entry")) };
    };
    const writer = make("writer", "publish,read");
    const reader = make("reader", "read");
    const dir = tempDir("agentwire-ts-keys-");
    writeFileSync(join(dir, "keys.json"), JSON.stringify({ keys: [writer.entry, reader.entry] }));
    const keyed = await new AgentwireServer({ flags: ["--api-keys-file", join(dir, "keys.json")] }).start();
    try {
      const rec = recorder();
      const c = new AgentwireClient({ url: keyed.url, backoff: FAST, apiKey: writer.key });  // the key subscribes too
      clients.push(c);
      await c.subscribe("agent-7", rec.handlers).ready;
      const { seq } = await c.publisher().publish("agent-7", "note", {});
      await waitFor(() => rec.events.some((e) => e.seq === seq), { what: "the event" });
      let calls = 0;
      const counting = (url, init) => (calls++, fetch(url, init));
      const err = await new Publisher({ url: keyed.url, apiKey: reader.key, retries: 3, fetch: counting }).publish("agent-7", "note", {}).catch((e) => e);
      assert.ok(err instanceof PermissionDeniedError && err.status === 403 && !err.retryable, String(err));
      assert.equal(calls, 1);
    } finally {
      await keyed.dispose();
    }
  });
});
