"""Who may see and change what, as a property (issue 15, Proof): random HS256 tokens and API keys with
random scopes and agent allow-lists (exact names, `prefix*` patterns, `*`, none at all) against random
agents. Whatever the draw:

- a subscription the token does not allow is refused before the upgrade with 403 agent_forbidden, and
  one it allows is accepted;
- a subscriber never receives an event of an agent its token does not allow (events are published to
  every agent, each naming its agent, and every subscriber reads up to a marker on its own agent);
- a `refresh` with another token moves the connection only to a token allowing the same agent;
- a publisher (an API key or a token with random scopes) publishes or creates a workflow only where its
  scope and its agents allow it: every refusal is 401/403 and leaves the agent's history and workflows
  as they were, and every success is there.

Tokens are minted here with Python's hmac/hashlib and the allow-list rule is written here again, so the
server's libjwt and its pattern matching are checked against code they share nothing with. The draw is
seeded and the seed printed: AGENTWIRE_PROPERTY_SEED=<seed> replays a failure.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import secrets
import time

from awtest import apublish, assert_json_error, http_request, recv_json_skip, run, ws_connect

SECRET = "property-test-secret-of-at-least-32-bytes-0123"
ROUNDS = 5  # independent draws per run, each with its own tokens and agents


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(payload: dict, secret: str = SECRET) -> str:
    msg = (b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." +
           b64url(json.dumps(payload).encode())).encode()
    return msg.decode() + "." + b64url(hmac.new(secret.encode(), msg, hashlib.sha256).digest())


def allows(patterns: list[str] | None, agent: str) -> bool:
    """The allow-list rule of issue 15: an exact agent id, or a prefix ending in `*`."""
    for p in patterns or ():
        if p == agent or (p.endswith("*") and agent.startswith(p[:-1])):
            return True
    return False


def draw_agents(rng: random.Random, n: int) -> list[str]:
    """Agent ids that share prefixes, so prefix patterns catch some and miss others."""
    stems = ["team-a.", "team-b.", "team-ab.", "x:", "agent-", "agent-1", ""]
    alphabet = "abc019_-"
    out: set[str] = set()
    while len(out) < n:
        out.add(rng.choice(stems) + "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 3))))
    return sorted(out)


def draw_patterns(rng: random.Random, agents: list[str]) -> list[str] | None:
    if rng.random() < 0.08:
        return None  # no agents claim: a genuine token that allows nothing
    patterns = []
    for _ in range(rng.randint(0, 4)):
        kind = rng.random()
        agent = rng.choice(agents)
        if kind < 0.45:
            patterns.append(agent)  # exact
        elif kind < 0.85:
            patterns.append(agent[: rng.randint(0, len(agent))] + "*")  # a prefix of a real agent
        elif kind < 0.9:
            patterns.append("*")
        else:
            patterns.append(agent + rng.choice(["x", "-", "."]))  # a near miss
    return patterns


def upgrade_headers(extra: dict) -> dict:
    h = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
         "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
    h.update(extra)
    return h


def token_places(rng: random.Random, token: str) -> tuple[str, dict, list | None]:
    """(query, headers, subprotocols): one of the three places a token may be."""
    where = rng.choice(["subprotocol", "authorization", "query"])
    if where == "subprotocol":
        return "", {}, ["bearer", token]
    if where == "authorization":
        return "", {"Authorization": f"Bearer {token}"}, None
    return f"?token={token}", {}, None


def one_round(server, rng: random.Random):
    agents = draw_agents(rng, rng.randint(6, 10))
    tokens = []
    for i in range(rng.randint(5, 8)):
        patterns = draw_patterns(rng, agents)
        claims = {"sub": f"user-{i}", "exp": int(time.time()) + 600}
        if patterns is not None:
            claims["agents"] = patterns
        tokens.append((hs256(claims), patterns))
    pairs = [(t, a) for t in range(len(tokens)) for a in agents]
    rng.shuffle(pairs)
    pairs = pairs[:60]

    # Refused where not allowed: 403 agent_forbidden before the upgrade, wherever the token is.
    allowed_pairs = []
    for t, agent in pairs:
        token, patterns = tokens[t]
        if allows(patterns, agent):
            allowed_pairs.append((t, agent))
            continue
        query, headers, subprotocols = token_places(rng, token)
        if subprotocols:
            headers = {"Sec-WebSocket-Protocol": ", ".join(subprotocols)}
        status, _, body = http_request(server.host, server.port, "GET", f"/ws/agents/{agent}{query}",
                                       headers=upgrade_headers(headers))
        err = assert_json_error(status, body, 403)
        assert err["code"] == "agent_forbidden", (patterns, agent, body)

    async def subscribe_and_publish():
        subs = []
        try:
            for t, agent in allowed_pairs:
                token, patterns = tokens[t]
                query, headers, subprotocols = token_places(rng, token)
                kwargs = {"extra_headers": headers} if headers else {}
                if subprotocols:
                    kwargs["subprotocols"] = subprotocols
                ws = await ws_connect(server, f"/ws/agents/{agent}{query}", **kwargs)
                hello = await recv_json_skip(ws, what=f"connected for {agent}")
                assert hello["type"] == "connected" and hello["agent_id"] == agent, hello
                subs.append((ws, t, agent))

            # A refresh with another drawn token: taken only when that token allows the same agent.
            for ws, t, agent in rng.sample(subs, min(len(subs), 6)):
                other, other_patterns = tokens[rng.randrange(len(tokens))]
                await ws.send(json.dumps({"type": "refresh", "token": other}))
                answer = await recv_json_skip(ws, what="the refresh answer")
                if allows(other_patterns, agent):
                    assert answer["type"] == "token_refreshed", (other_patterns, agent, answer)
                else:
                    assert answer["type"] == "error" and answer["data"]["code"] == "agent_forbidden", (
                        other_patterns, agent, answer)

            # Every agent gets events; then a marker each, after which a subscriber has seen all it will.
            for agent in agents:
                for k in range(rng.randint(1, 2)):
                    await apublish(server, agent, "probe", {"for": agent, "k": k})
            for agent in agents:
                await apublish(server, agent, "marker", {"for": agent})
            for ws, t, agent in subs:
                _, patterns = tokens[t]
                while True:
                    msg = await recv_json_skip(ws, what=f"events of {agent}")
                    if "seq" not in msg:
                        continue  # a session message
                    assert msg["agent_id"] == agent and msg["data"]["for"] == agent, (agent, msg)
                    assert allows(patterns, msg["agent_id"]), (patterns, msg)
                    if msg["type"] == "marker":
                        break
        finally:
            await asyncio.gather(*(ws.close() for ws, _, _ in subs), return_exceptions=True)
        return len(subs)

    subscribed = run(subscribe_and_publish())
    return len(pairs) - len(allowed_pairs), subscribed


def test_subscribers_only_ever_see_agents_their_token_allows(start_server, tmp_path):
    seed = int(os.environ.get("AGENTWIRE_PROPERTY_SEED") or random.randrange(1 << 32))
    print(f"property seed: {seed} (AGENTWIRE_PROPERTY_SEED={seed} replays this draw)")
    rng = random.Random(seed)
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    server = start_server("--auth-secret-file", str(secret))
    # With a key the HTTP API needs a credential too: events are published as a backend would.
    server.credential = hs256({"sub": "publisher", "exp": int(time.time()) + 3600, "agents": ["*"],
                               "scope": "publish read admin"})
    refused = subscribed = 0
    for _ in range(ROUNDS):
        r, s = one_round(server, rng)
        refused += r
        subscribed += s
    print(f"{refused} subscriptions refused, {subscribed} subscribers checked")
    # The draw exercised both sides of the rule.
    assert refused > 0 and subscribed > 0, (seed, refused, subscribed)


# ---- publishers ------------------------------------------------------------------------------------------

SCOPES = ("publish", "workflows", "read", "admin")


def draw_scopes(rng: random.Random) -> list[str]:
    """One to four scopes (a key file entry needs at least one)."""
    return [s for s in SCOPES if rng.random() < 0.5] or [rng.choice(SCOPES)]


def history_of(server, reader: str, agent: str) -> tuple[int, int]:
    """(latest seq, workflows) of `agent`, read with a key that may read everything."""
    h = {"Authorization": f"Bearer {reader}"}
    status, _, page = server.http("GET", f"/api/agents/{agent}/events?since=0", headers=h)
    assert status == 200, (status, page)
    status, _, wfs = server.http("GET", f"/api/agents/{agent}/workflows?limit=200", headers=h)
    assert status == 200, (status, wfs)
    return page["latest"], len(wfs["workflows"])


def test_publishers_change_only_what_their_scope_and_agents_allow(start_server, tmp_path):
    seed = int(os.environ.get("AGENTWIRE_PROPERTY_SEED") or random.randrange(1 << 32))
    print(f"property seed: {seed} (AGENTWIRE_PROPERTY_SEED={seed} replays this draw)")
    rng = random.Random(seed)
    agents = draw_agents(rng, 8)
    reader = secrets.token_urlsafe(24)
    entries = [{"name": "reader", "sha256": hashlib.sha256(reader.encode()).hexdigest(), "scopes": ["read"]}]
    # (credential, scopes, agents or None for every agent, kind)
    credentials = []
    for i in range(8):
        key = secrets.token_urlsafe(24)
        scopes = draw_scopes(rng)
        patterns = None if rng.random() < 0.25 else (draw_patterns(rng, agents) or [])
        entry = {"name": f"key-{i}", "sha256": hashlib.sha256(key.encode()).hexdigest(), "scopes": scopes}
        if patterns is not None:
            entry["agents"] = patterns
        entries.append(entry)
        credentials.append((key, set(scopes), patterns, "key"))
    for i in range(8):
        scopes = draw_scopes(rng)
        patterns = draw_patterns(rng, agents)
        claims = {"sub": f"pub-{i}", "exp": int(time.time()) + 600}
        if patterns is not None:
            claims["agents"] = patterns
        if rng.random() < 0.8:
            claims["scope"] = " ".join(scopes)
        else:
            scopes = ["read"]  # a token without scope or scopes claims may only read
        credentials.append((hs256(claims), set(scopes), patterns if patterns is not None else [], "token"))
    # Credentials the server must not take at all: a key it does not know, a token signed with another secret.
    credentials.append((secrets.token_urlsafe(24), set(SCOPES), None, "unknown"))
    credentials.append((hs256({"sub": "x", "exp": int(time.time()) + 600, "agents": ["*"],
                              "scope": "publish workflows"}, secret="another-secret-of-at-least-32-bytes!!"),
                        set(SCOPES), None, "unknown"))
    keys_file = tmp_path / "api-keys.json"
    keys_file.write_text(json.dumps({"keys": entries}))
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    server = start_server("--auth-secret-file", str(secret), "--api-keys-file", str(keys_file))

    allowed_count = refused_count = 0
    for _ in range(150):
        credential, scopes, patterns, kind = rng.choice(credentials)
        agent = rng.choice(agents)
        route = rng.choice(["publish", "workflow"])
        need = "publish" if route == "publish" else "workflows"
        agent_ok = patterns is None or allows(patterns, agent)
        before = history_of(server, reader, agent)
        h = {"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}
        if route == "publish":
            body = json.dumps({"type": "probe", "data": {"n": rng.randrange(1000)}})
            status, _, answer = server.http("POST", f"/api/agents/{agent}/events", body, h)
        else:
            body = json.dumps({"agent_id": agent, "name": f"wf-{rng.randrange(1000)}"})
            status, _, answer = server.http("POST", "/api/workflows", body, h)
        after = history_of(server, reader, agent)
        what = (seed, kind, sorted(scopes), patterns, agent, route, status, answer)
        if kind == "unknown":
            err = assert_json_error(status, answer, 401)
            assert err["code"] in ("token_invalid", "token_missing"), what
        elif need in scopes and agent_ok:
            assert status in (201, 202), what
            allowed_count += 1
            if route == "publish":
                assert after == (before[0] + 1, before[1]), what
            else:
                assert after[1] == before[1] + 1 and after[0] > before[0], what
            continue
        else:
            err = assert_json_error(status, answer, 403)
            # The scope is checked before the agent (operations.md, Scopes).
            assert err["code"] == ("agent_forbidden" if need in scopes else "scope_missing"), what
        refused_count += 1
        assert after == before, what  # a refused publish changed nothing
    print(f"{allowed_count} changes allowed, {refused_count} refused")
    assert allowed_count > 0 and refused_count > 0, (seed, allowed_count, refused_count)
