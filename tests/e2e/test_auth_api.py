"""The HTTP API needs a key or a token, and the server is secure by default (issue 15, items 2 and 3).

With --api-keys-file (keys stored as SHA-256 hashes) or any token key, every API route needs
`Authorization: Bearer <API key or JWT>` carrying the route's scope (publish, workflows, read, admin) and,
for routes about one agent, allowing that agent: 401 token_missing / token_invalid / token_expired, 403
scope_missing / agent_forbidden. /healthz and the dashboard's files stay open; --admin-listen serves health,
stats and metrics without credentials. With no key at all the server refuses non-loopback addresses unless
--allow-anonymous is given.

Tokens are minted here with Python's hmac/hashlib; key hashes with hashlib: nothing is shared with the
server's code.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

import awtest
from awtest import assert_json_error, http_request, recv_json, recv_json_skip, run, wait_until, ws_connect

SECRET = "api-test-secret-of-at-least-32-bytes-0123"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(payload: dict, secret: str = SECRET) -> str:
    msg = (b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64url(json.dumps(payload).encode())).encode()
    return msg.decode() + "." + b64url(hmac.new(secret.encode(), msg, hashlib.sha256).digest())


def token(agents=("agent-7",), ttl=300, **extra) -> str:
    now = int(time.time())
    c = {"sub": "user-1", "exp": now + ttl, "iat": now}
    if agents is not None:
        c["agents"] = list(agents)
    c.update(extra)
    return hs256(c)


def new_key() -> str:
    return "awk_" + b64url(secrets.token_bytes(32))


def entry(name, key, scopes, agents=None) -> dict:
    e = {"name": name, "sha256": hashlib.sha256(key.encode()).hexdigest(), "scopes": list(scopes)}
    if agents is not None:
        e["agents"] = list(agents)
    return e


# name -> (scopes, agents)
KEY_SPECS = {
    "all": (["publish", "workflows", "read", "admin"], None),
    "pub": (["publish"], None),
    "wf": (["workflows"], None),
    "reader": (["read"], None),
    "admin": (["admin"], None),
    "team": (["publish", "workflows", "read", "admin"], ["team-a.*"]),
    "seven": (["read", "publish"], ["agent-7"]),
}


def write_keys(path: Path, keys: dict, only=None):
    entries = [entry(n, keys[n], *KEY_SPECS[n]) for n in (only or KEY_SPECS)]
    path.write_text(json.dumps({"keys": entries}, indent=1))


@pytest.fixture
def keyed(start_server, tmp_path):
    """A server with API keys and an HMAC token secret; returns (server, keys by name, keys file)."""
    keys = {n: new_key() for n in KEY_SPECS}
    kf = tmp_path / "api-keys.json"
    write_keys(kf, keys)
    sf = tmp_path / "secret"
    sf.write_text(SECRET)
    s = start_server("--api-keys-file", str(kf), "--auth-secret-file", str(sf))
    return s, keys, kf


def upgrade_headers() -> dict:
    return {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": base64.b64encode(secrets.token_bytes(16)).decode()}


def auth(credential: str) -> dict:
    return {"Authorization": f"Bearer {credential}", "Content-Type": "application/json"}


def call(server, method, path, credential=None, body=None):
    headers = auth(credential) if credential is not None else {"Content-Type": "application/json"}
    if body is not None and not isinstance(body, (str, bytes)):
        body = json.dumps(body)
    return http_request(server.host, server.port, method, path, body, headers)


def refused(server, method, path, credential, status, code, body=None):
    st, hdrs, resp = call(server, method, path, credential, body)
    err = assert_json_error(st, resp, status)
    assert err["code"] == code, (method, path, resp)
    if status == 401:
        assert hdrs.get("www-authenticate", "").startswith('Bearer realm="agentwire"'), hdrs
    if credential:
        assert credential not in json.dumps(resp), "a refusal must never quote the credential"
    return err


def ok(server, method, path, credential, body=None, status=None):
    st, _, resp = call(server, method, path, credential, body)
    assert st < 300 if status is None else st == status, (method, path, st, resp)
    return resp


def make_workflow(server, credential, agent="agent-9"):
    wf = ok(server, "POST", "/api/workflows", credential, {"agent_id": agent, "name": "w"}, 201)
    return wf["id"]


def open_stream(server, credential, workflow_id):
    st = ok(server, "POST", f"/api/workflows/{workflow_id}/streams", credential, {})
    return st["stream_id"]


# ---- 401: who are you ------------------------------------------------------------------------------------


def test_missing_credential_is_401_token_missing(keyed):
    s, _, _ = keyed
    refused(s, "POST", "/api/agents/agent-7/events", None, 401, "token_missing", {"type": "t"})
    refused(s, "GET", "/api/agents/agent-7/events", None, 401, "token_missing")
    refused(s, "GET", "/api/agents", None, 401, "token_missing")
    st, hdrs, body = http_request(s.host, s.port, "GET", "/api/agents", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert assert_json_error(st, body, 401)["code"] == "token_missing"
    # A refused request leaves the server answering the next one.
    assert ok(s, "GET", "/healthz", None)["status"] == "ok"


def test_unknown_key_and_bad_token_are_401_token_invalid(keyed):
    s, keys, _ = keyed
    refused(s, "GET", "/api/agents/agent-7/events", new_key(), 401, "token_invalid")
    refused(s, "GET", "/api/agents/agent-7/events", keys["all"] + "x", 401, "token_invalid")
    refused(s, "GET", "/api/agents/agent-7/events", hs256({"sub": "u", "exp": int(time.time()) + 60}, "another-secret-of-32-bytes-or-more-000"), 401, "token_invalid")
    refused(s, "GET", "/api/agents/agent-7/events", "a" * 9000, 401, "token_invalid")


def test_expired_token_is_401_token_expired(keyed):
    s, _, _ = keyed
    refused(s, "GET", "/api/agents/agent-7/events", token(ttl=-10, scope="read"), 401, "token_expired")


# ---- 403: scopes -----------------------------------------------------------------------------------------


def test_each_scope_opens_its_routes_and_no_others(keyed):
    s, keys, _ = keyed
    wf = make_workflow(s, keys["all"])
    stream = open_stream(s, keys["all"], wf)
    # (method, path, body, scope)
    routes = [
        ("POST", "/api/agents/agent-9/events", {"type": "note", "data": {}}, "publish"),
        ("GET", "/api/agents/agent-9/events", None, "read"),
        ("POST", "/api/workflows", {"agent_id": "agent-9", "name": "x"}, "workflows"),
        ("GET", f"/api/workflows/{wf}", None, "read"),
        ("GET", "/api/agents", None, "read"),
        ("GET", "/api/agents/agent-9/workflows", None, "read"),
        ("POST", f"/api/workflows/{wf}/progress", {"percent": 10}, "workflows"),
        ("GET", f"/api/workflows/{wf}/streams", None, "read"),
        ("POST", f"/api/streams/{stream}/append", {"delta": "hi"}, "workflows"),
        ("GET", f"/api/streams/{stream}", None, "read"),
        ("GET", "/api/websocket/stats", None, "admin"),
        ("GET", "/metrics", None, "admin"),
    ]
    holder = {"publish": "pub", "workflows": "wf", "read": "reader", "admin": "admin"}
    for method, path, body, scope in routes:
        ok(s, method, path, keys[holder[scope]], body)
        for other, name in holder.items():
            if other == scope:
                continue
            err = refused(s, method, path, keys[name], 403, "scope_missing", body)
            assert err["scope"] == scope and scope in err["message"], (path, err)
    # Deleting a workflow is admin's.
    refused(s, "DELETE", f"/api/workflows/{wf}", keys["wf"], 403, "scope_missing")
    ok(s, "POST", f"/api/workflows/{wf}/cancel", keys["wf"], {})
    ok(s, "DELETE", f"/api/workflows/{wf}", keys["admin"])
    # The pipe is a workflow command; its refusal comes before any body is read.
    wf2 = make_workflow(s, keys["all"])
    st, _, body = http_request(s.host, s.port, "POST", f"/api/workflows/{wf2}/streams/pipe", "text", {"Authorization": f"Bearer {keys['reader']}", "Content-Type": "text/plain"})
    assert assert_json_error(st, body, 403)["code"] == "scope_missing"
    st, _, body = http_request(s.host, s.port, "POST", f"/api/workflows/{wf2}/streams/pipe", "text", {"Authorization": f"Bearer {keys['wf']}", "Content-Type": "text/plain"})
    assert st == 200, body


def test_healthz_and_the_dashboard_stay_open(keyed):
    s, _, _ = keyed
    assert ok(s, "GET", "/healthz", None)["status"] == "ok"
    st, _, _ = call(s, "GET", "/")
    assert st not in (401, 403)


# ---- 403: agents -----------------------------------------------------------------------------------------


def test_agent_allow_list_by_agent_workflow_and_stream_id(keyed):
    s, keys, _ = keyed
    other_wf = make_workflow(s, keys["all"], "agent-9")
    other_stream = open_stream(s, keys["all"], other_wf)
    team = keys["team"]
    # By the agent in the path.
    refused(s, "POST", "/api/agents/agent-9/events", team, 403, "agent_forbidden", {"type": "t"})
    refused(s, "GET", "/api/agents/agent-9/events", team, 403, "agent_forbidden")
    refused(s, "GET", "/api/agents/agent-9/workflows", team, 403, "agent_forbidden")
    ok(s, "POST", "/api/agents/team-a.x/events", team, {"type": "t"})
    # By the agent in the body.
    refused(s, "POST", "/api/workflows", team, 403, "agent_forbidden", {"agent_id": "agent-9", "name": "x"})
    own_wf = make_workflow(s, team, "team-a.x")
    # By workflow id: the workflow's agent is looked up first; the refusal does not name it.
    for method, path, body in [
        ("GET", f"/api/workflows/{other_wf}", None),
        ("POST", f"/api/workflows/{other_wf}/phase", {"phase": "planning"}),
        ("POST", f"/api/workflows/{other_wf}/cancel", {}),
        ("POST", f"/api/workflows/{other_wf}/streams", {}),
        ("GET", f"/api/workflows/{other_wf}/streams", None),
        ("DELETE", f"/api/workflows/{other_wf}", None),
    ]:
        err = refused(s, method, path, team, 403, "agent_forbidden", body)
        assert "agent-9" not in err["message"], err
    st, _, body = http_request(s.host, s.port, "POST", f"/api/workflows/{other_wf}/streams/pipe", "text", {"Authorization": f"Bearer {team}", "Content-Type": "text/plain"})
    assert assert_json_error(st, body, 403)["code"] == "agent_forbidden"
    # By stream id.
    refused(s, "POST", f"/api/streams/{other_stream}/append", team, 403, "agent_forbidden", {"delta": "x"})
    refused(s, "POST", f"/api/streams/{other_stream}/end", team, 403, "agent_forbidden", {"status": "completed"})
    refused(s, "GET", f"/api/streams/{other_stream}", team, 403, "agent_forbidden")
    # Nothing changed on the other agent's workflow.
    wf = ok(s, "GET", f"/api/workflows/{other_wf}", keys["all"])
    assert json.dumps(wf).count("cancelled") == 0, wf
    # Its own agent works throughout.
    ok(s, "GET", f"/api/workflows/{own_wf}", team)
    own_stream = open_stream(s, team, own_wf)
    ok(s, "POST", f"/api/streams/{own_stream}/append", team, {"delta": "x"})
    # An unknown id is the route's own 404, not a refusal.
    st, _, body = call(s, "GET", "/api/workflows/wf_nope", team)
    assert st == 404, body
    # Stats and metrics show every agent: a key restricted to some is refused them.
    refused(s, "GET", "/api/websocket/stats", team, 403, "agent_forbidden")
    refused(s, "GET", "/metrics", team, 403, "agent_forbidden")


def test_agents_list_shows_only_what_the_caller_may_see(keyed):
    s, keys, _ = keyed
    for agent in ("agent-7", "agent-9", "team-a.x", "team-a.y"):
        make_workflow(s, keys["all"], agent)

    def listed(credential):
        return sorted(a["agent_id"] for a in ok(s, "GET", "/api/agents", credential)["agents"])

    assert listed(keys["reader"]) == ["agent-7", "agent-9", "team-a.x", "team-a.y"]
    assert listed(keys["team"]) == ["team-a.x", "team-a.y"]
    assert listed(keys["seven"]) == ["agent-7"]
    assert listed(token(agents=["agent-9"])) == ["agent-9"]
    # Paging stays within what may be seen.
    page = ok(s, "GET", "/api/agents?limit=1", keys["team"])
    assert [a["agent_id"] for a in page["agents"]] == ["team-a.x"] and page["next"] == "team-a.x"
    page = ok(s, "GET", "/api/agents?limit=1&after=team-a.x", keys["team"])
    assert [a["agent_id"] for a in page["agents"]] == ["team-a.y"] and page["next"] is None


# ---- tokens as API credentials ----------------------------------------------------------------------------


def test_token_scopes_from_scope_or_scopes_and_read_without_either(keyed):
    s, _, _ = keyed
    publish = {"type": "note", "data": {}}
    # Neither claim: read only.
    plain = token(agents=["agent-7"])
    ok(s, "GET", "/api/agents/agent-7/events", plain)
    err = refused(s, "POST", "/api/agents/agent-7/events", plain, 403, "scope_missing", publish)
    assert err["scope"] == "publish"
    # scope: a space-separated string (RFC 8693); names that are not ours are ignored.
    spaced = token(agents=["agent-7"], scope="openid publish workflows")
    ok(s, "POST", "/api/agents/agent-7/events", spaced, publish)
    refused(s, "GET", "/api/agents/agent-7/events", spaced, 403, "scope_missing")
    # scopes: an array.
    listed = token(agents=["agent-7"], scopes=["read", "publish"])
    ok(s, "POST", "/api/agents/agent-7/events", listed, publish)
    ok(s, "GET", "/api/agents/agent-7/events", listed)
    # A browser app submitting requirements as its user: its token's agents bound what it may touch.
    app = token(agents=["agent-7"], scope="workflows read")
    wf = make_workflow(s, app, "agent-7")
    ok(s, "POST", f"/api/workflows/{wf}/requirements", app, {"text": "build it"})
    refused(s, "POST", "/api/workflows", app, 403, "agent_forbidden", {"agent_id": "agent-8", "name": "x"})
    # A token without an agents claim allows no agent.
    refused(s, "GET", "/api/agents/agent-7/events", token(agents=None, scope="read"), 403, "agent_forbidden")
    # A malformed scope claim makes the token invalid.
    refused(s, "GET", "/api/agents/agent-7/events", token(scope=["read"]), 401, "token_invalid")


# ---- subscribers with API keys ----------------------------------------------------------------------------


def test_subscribers_may_use_an_api_key_with_read(keyed):
    s, keys, _ = keyed

    async def main():
        async with ws_connect(s, f"/ws/agents/agent-7?token={keys['seven']}") as ws:
            assert (await recv_json(ws))["type"] == "connected"
            await asyncio.to_thread(ok, s, "POST", "/api/agents/agent-7/events", keys["pub"], {"type": "note", "data": {"n": 1}})
            ev = await recv_json_skip(ws)
            assert ev["type"] == "note" and ev["data"] == {"n": 1}

    run(main())
    for query, status, code in [
        (f"token={keys['pub']}", 403, "scope_missing"),
        (f"token={keys['team']}", 403, "agent_forbidden"),
        (f"token={new_key()}", 401, "token_invalid"),
        ("", 401, "token_missing"),
    ]:
        st, _, body = http_request(s.host, s.port, "GET", f"/ws/agents/agent-7?{query}", headers=upgrade_headers())
        assert assert_json_error(st, body, status)["code"] == code, (query, body)


def test_api_keys_alone_also_guard_subscribers(start_server, tmp_path):
    keys = {n: new_key() for n in KEY_SPECS}
    kf = tmp_path / "k.json"
    write_keys(kf, keys)
    s = start_server("--api-keys-file", str(kf))
    st, _, body = http_request(s.host, s.port, "GET", "/ws/agents/agent-7", headers=upgrade_headers())
    assert assert_json_error(st, body, 401)["code"] == "token_missing"
    # Without a token key a JWT is just an unknown credential.
    refused(s, "GET", "/api/agents/agent-7/events", token(scope="read"), 401, "token_invalid")
    ok(s, "GET", "/api/agents/agent-7/events", keys["reader"])


# ---- the keys file ---------------------------------------------------------------------------------------


def test_sighup_reloads_the_keys_a_revoked_key_stops_and_subscribers_stay(keyed):
    s, keys, kf = keyed

    async def main():
        async with ws_connect(s, f"/ws/agents/agent-7?token={keys['seven']}") as ws:
            assert (await recv_json(ws))["type"] == "connected"
            await asyncio.to_thread(ok, s, "POST", "/api/agents/agent-7/events", keys["pub"], {"type": "a", "data": {}})
            assert (await recv_json_skip(ws))["type"] == "a"
            # Revoke "pub" and "seven" (the subscriber's own key); add a new one.
            fresh = new_key()
            keys["fresh"] = fresh
            KEY_SPECS_FRESH = {"fresh": (["publish"], ["agent-7"])}
            entries = [entry(n, keys[n], *KEY_SPECS[n]) for n in ("all", "reader")]
            entries.append(entry("fresh", fresh, *KEY_SPECS_FRESH["fresh"]))
            kf.write_text(json.dumps({"keys": entries}))
            reloads = s.log.count("event=api_keys_reloaded")
            s.settle()
            s.proc.send_signal(signal.SIGHUP)
            await asyncio.to_thread(wait_until, lambda: s.log.count("event=api_keys_reloaded") > reloads, 15, "api_keys_reloaded")
            await asyncio.to_thread(refused, s, "POST", "/api/agents/agent-7/events", keys["pub"], 401, "token_invalid", {"type": "b"})
            await asyncio.to_thread(ok, s, "POST", "/api/agents/agent-7/events", fresh, {"type": "c", "data": {}})
            # The connected subscriber is not disturbed: it gets the event the new key published.
            assert (await recv_json_skip(ws))["type"] == "c"

    run(main())
    # A new connection with the revoked key is refused.
    st, _, body = http_request(s.host, s.port, "GET", f"/ws/agents/agent-7?token={keys['seven']}", headers=upgrade_headers())
    assert assert_json_error(st, body, 401)["code"] == "token_invalid"


def test_a_broken_keys_file_on_reload_keeps_the_old_keys(keyed):
    s, keys, kf = keyed
    kf.write_text('{"keys": [{"name": "x"}]}')
    s.settle()
    s.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "event=api_keys_reload_failed" in s.log, 15, "api_keys_reload_failed")
    line = [l for l in s.log.splitlines() if "api_keys_reload_failed" in l][0]
    assert "--api-keys-file" in line and "entry 1" in line, line
    ok(s, "GET", "/api/agents/agent-7/events", keys["reader"])


BAD_FILES = {
    "not_json": ("{", "not JSON"),
    "no_keys": ('{"key": []}', '"keys"'),
    "no_hash": ('{"keys": [{"name": "a", "scopes": ["read"]}]}', "sha256"),
    "plain_key_not_hash": ('{"keys": [{"name": "a", "sha256": "awk_secret", "scopes": ["read"]}]}', "sha256"),
    "bad_scope": ('{"keys": [{"name": "a", "sha256": "' + "0" * 64 + '", "scopes": ["root"]}]}', "scope"),
    "no_scopes": ('{"keys": [{"name": "a", "sha256": "' + "0" * 64 + '", "scopes": []}]}', "scopes"),
    "bad_agents": ('{"keys": [{"name": "a", "sha256": "' + "0" * 64 + '", "scopes": ["read"], "agents": "agent-7"}]}', "agents"),
    "unknown_member": ('{"keys": [{"name": "a", "sha256": "' + "0" * 64 + '", "scope": ["read"]}]}', "unknown member"),
    "same_name": ('{"keys": [{"name": "a", "sha256": "' + "0" * 64 + '", "scopes": ["read"]}, {"name": "a", "sha256": "' + "1" * 64 + '", "scopes": ["read"]}]}', "entry 2"),
    "missing_file": (None, "cannot read"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_keys_file_stops_the_start_naming_flag_and_entry(tmp_path, case):
    text, expected = BAD_FILES[case]
    kf = tmp_path / "keys.json"
    if text is not None:
        kf.write_text(text)
    p = subprocess.run([awtest.binary_path(), "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"), "--api-keys-file", str(kf)],
                       capture_output=True, text=True, timeout=30, env=awtest.clean_env())
    assert p.returncode == 2, p.stderr
    assert "--api-keys-file" in p.stderr and expected in p.stderr, p.stderr
    assert "event=listening" not in p.stderr


def test_api_key_command_prints_a_key_the_server_accepts(start_server, tmp_path):
    p = subprocess.run([awtest.binary_path(), "api-key", "--name", "backend", "--scopes", "publish,read", "--agents", "agent-7,team-a.*"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    key = re.search(r"^key:\s+(awk_[A-Za-z0-9_-]{43})$", p.stdout, re.M).group(1)
    e = json.loads(re.search(r"^entry:\s+(\{.*\})$", p.stdout, re.M).group(1))
    assert e == {"name": "backend", "sha256": hashlib.sha256(key.encode()).hexdigest(), "scopes": ["publish", "read"], "agents": ["agent-7", "team-a.*"]}
    assert key not in json.dumps(e)
    kf = tmp_path / "keys.json"
    kf.write_text(json.dumps({"keys": [e]}))
    s = start_server("--api-keys-file", str(kf))
    ok(s, "POST", "/api/agents/team-a.1/events", key, {"type": "t"})
    refused(s, "POST", "/api/agents/agent-8/events", key, 403, "agent_forbidden", {"type": "t"})
    # Two runs never print the same key.
    again = subprocess.run([awtest.binary_path(), "api-key", "--name", "b", "--scopes", "read"], capture_output=True, text=True, timeout=30)
    assert key not in again.stdout
    bad = subprocess.run([awtest.binary_path(), "api-key", "--name", "b", "--scopes", "root"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "root" in bad.stderr


# ---- --admin-listen ---------------------------------------------------------------------------------------


def test_admin_listen_serves_health_stats_and_metrics_without_credentials(keyed, start_server, tmp_path):
    _, keys, kf = keyed
    s = start_server("--api-keys-file", str(kf), "--admin-listen", "127.0.0.1:0")
    m = wait_until(lambda: re.search(r"event=admin_listening\b.*\bport=(\d+)", s.log), 15, "admin_listening")
    admin_port = int(m.group(1))
    assert admin_port != s.port
    for path in ("/healthz", "/api/websocket/stats", "/metrics"):
        st, _, body = http_request(s.host, admin_port, "GET", path)
        assert st == 200, (path, body)
    # Nothing else is served there, WebSocket included.
    for method, path in (("GET", "/api/agents/agent-7/events"), ("POST", "/api/agents/agent-7/events"), ("GET", "/api/agents"), ("GET", "/ws/agents/agent-7")):
        st, _, body = http_request(s.host, admin_port, method, path, "{}" if method == "POST" else None,
                                   upgrade_headers() if path.startswith("/ws") else {})
        assert st == 404, (method, path, st, body)
    # The main port still wants admin for them.
    refused(s, "GET", "/api/websocket/stats", None, 401, "token_missing")
    refused(s, "GET", "/metrics", keys["reader"], 403, "scope_missing")
    ok(s, "GET", "/metrics", keys["admin"])


# ---- secure by default ------------------------------------------------------------------------------------


def start_and_wait(args, tmp_path):
    return subprocess.run([awtest.binary_path(), "--data-dir", str(tmp_path / "d"), *args], capture_output=True, text=True, timeout=30, env=awtest.clean_env())


@pytest.mark.parametrize("listen", [["--listen", "0.0.0.0:0"], ["--listen", "[::]:0"], ["--admin-listen", "0.0.0.0:0", "--listen", "127.0.0.1:0"]])
def test_anonymous_server_refuses_a_non_loopback_address(tmp_path, listen):
    p = start_and_wait(listen, tmp_path)
    assert p.returncode == 2, p.stderr
    assert "refusing to listen" in p.stderr and "--allow-anonymous" in p.stderr and "--api-keys-file" in p.stderr, p.stderr
    assert "event=listening" not in p.stderr


def test_allow_anonymous_serves_open_with_a_warning(start_server):
    s = start_server("--listen", "0.0.0.0:0", "--allow-anonymous")
    assert "level=warn" in s.log and "event=anonymous_exposed" in s.log, s.log
    ok(s, "POST", "/api/agents/agent-7/events", None, {"type": "t"})


def test_with_keys_a_non_loopback_address_needs_no_flag(keyed, start_server):
    _, keys, kf = keyed
    s = start_server("--listen", "0.0.0.0:0", "--api-keys-file", str(kf))
    assert "anonymous_exposed" not in s.log
    refused(s, "GET", "/api/agents", None, 401, "token_missing")
    ok(s, "GET", "/api/agents", keys["reader"])


def test_loopback_needs_nothing_and_help_says_so(server):
    ok(server, "POST", "/api/agents/agent-7/events", None, {"type": "t"})
    assert "anonymous_exposed" not in server.log
    h = subprocess.run([awtest.binary_path(), "--help"], capture_output=True, text=True, timeout=30).stdout
    for flag in ("--api-keys-file", "--admin-listen", "--allow-anonymous", "AGENTWIRE_API_KEYS_FILE", "AGENTWIRE_ALLOW_ANONYMOUS"):
        assert flag in h, flag
    assert "loopback" in h


def test_a_refresh_needs_the_read_scope_like_the_handshake(keyed):
    s, _, _ = keyed

    async def main():
        async with ws_connect(s, f"/ws/agents/agent-7?token={token(ttl=600)}") as ws:
            assert (await recv_json(ws))["type"] == "connected"
            await ws.send(json.dumps({"type": "refresh", "token": token(ttl=900, scope="publish")}))
            err = await recv_json_skip(ws, what="the refused refresh")
            assert err["type"] == "error" and err["data"]["code"] == "scope_missing", err
            exp = int(time.time()) + 1200
            await ws.send(json.dumps({"type": "refresh", "token": token(ttl=1200, scope="read publish")}))
            ok = await recv_json_skip(ws, what="token_refreshed")
            assert ok["type"] == "token_refreshed" and ok["data"]["exp"] >= exp, ok

    run(main())


def test_the_keys_file_is_bounded(tmp_path):
    """A keys file over 1 MiB (about 9,600 entries; parse_api_keys also stops at 10,000) stops the start."""
    many = {"keys": [{"name": f"k{i}", "sha256": hashlib.sha256(str(i).encode()).hexdigest(), "scopes": ["read"]}
                     for i in range(10_001)]}
    kf = tmp_path / "many.json"
    kf.write_text(json.dumps(many, separators=(",", ":")))
    assert kf.stat().st_size > 1 << 20
    p = start_and_wait(["--listen", "127.0.0.1:0", "--api-keys-file", str(kf)], tmp_path)
    assert p.returncode == 2 and "--api-keys-file" in p.stderr and "1 MiB" in p.stderr, p.stderr
    assert "event=listening" not in p.stderr
