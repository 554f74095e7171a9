"""`agentwire token` (issue 15, item 7): mints a subscriber token for development and tests. The server
accepts it for the agents it names and refuses it for others; its claims are read back with python3-jwt,
an implementation that shares nothing with the server's libjwt."""

from __future__ import annotations

import subprocess
import time

import jwt
import pytest

from awtest import binary_path, clean_env, http_request, recv_json, run, ws_connect

SECRET = "token-command-secret-of-at-least-32-bytes-xyz"


def mint(*args, env=None):
    return subprocess.run([binary_path(), "token", *args], capture_output=True, text=True, timeout=30,
                          env=clean_env(env))


@pytest.fixture
def secret_file(tmp_path):
    f = tmp_path / "secret"
    f.write_text(SECRET + "\n")  # as `echo` writes it: the newline is not part of the secret
    return f


def upgrade_status(server, agent: str, token: str) -> tuple[int, object]:
    """The answer to an upgrade with the token in Authorization: the status and the JSON body."""
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
               "Sec-WebSocket-Version": "13", "Authorization": f"Bearer {token}"}
    st, _, body = http_request(server.host, server.port, "GET", f"/ws/agents/{agent}", headers=headers)
    return st, body


def test_server_accepts_a_minted_token_for_its_agents_and_refuses_others(start_server, secret_file):
    server = start_server("--auth-secret-file", str(secret_file))
    r = mint("--secret-file", str(secret_file), "--agents", "agent-7,team-a:*", "--ttl", "1h")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert token.count(".") == 2 and "\n" not in token

    async def main():
        for agent in ("agent-7", "team-a:build"):
            async with ws_connect(server, f"/ws/agents/{agent}", subprotocols=["bearer", token]) as ws:
                assert ws.subprotocol == "bearer"
                assert (await recv_json(ws))["type"] == "connected"

    run(main())
    for agent in ("agent-8", "team-b:build"):
        st, body = upgrade_status(server, agent, token)
        assert st == 403 and body["error"]["code"] == "agent_forbidden", (agent, st, body)


def test_claims_are_what_was_asked(secret_file):
    before = int(time.time())
    r = mint("--secret-file", str(secret_file), "--agents", "agent-7", "--ttl", "15m", "--scopes", "publish,read",
             "--sub", "alice", "--kid", "k-2026", "--alg", "HS384", "--audience", "aw", "--issuer", "backend")
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip()
    assert jwt.get_unverified_header(token) == {"alg": "HS384", "typ": "JWT", "kid": "k-2026"}
    c = jwt.decode(token, SECRET, algorithms=["HS384"], audience="aw", issuer="backend")
    assert c["sub"] == "alice" and c["agents"] == ["agent-7"] and c["scope"] == "publish read"
    assert before <= c["iat"] <= int(time.time()) and c["exp"] == c["iat"] + 900


def test_scopes_as_a_list_or_as_the_claim_writes_them(secret_file):
    for given in ("publish,read", "publish read", "publish, read"):
        r = mint("--secret-file", str(secret_file), "--agents", "a", "--scopes", given)
        assert r.returncode == 0, (given, r.stderr)
        assert jwt.decode(r.stdout.strip(), SECRET, algorithms=["HS256"])["scope"] == "publish read"


def test_secret_from_the_environment(start_server):
    server = start_server(env={"AGENTWIRE_AUTH_SECRET": SECRET})
    r = mint("--agents", "agent-7", env={"AGENTWIRE_AUTH_SECRET": SECRET})
    assert r.returncode == 0, r.stderr
    assert jwt.decode(r.stdout.strip(), SECRET, algorithms=["HS256"])["exp"] > time.time() + 3500  # 1h by default
    assert upgrade_status(server, "agent-7", r.stdout.strip())[0] == 101
    assert upgrade_status(server, "agent-9", r.stdout.strip())[0] == 403


def test_a_token_of_another_secret_is_refused(start_server, secret_file, tmp_path):
    server = start_server("--auth-secret-file", str(secret_file))
    other = tmp_path / "other"
    other.write_text("another-secret-of-at-least-32-bytes-0123456")
    token = mint("--secret-file", str(other), "--agents", "agent-7").stdout.strip()
    st, body = upgrade_status(server, "agent-7", token)
    assert st == 401 and body["error"]["code"] == "token_invalid", (st, body)


def test_errors_exit_2_with_a_message(secret_file, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    s = str(secret_file)
    cases = {
        "no secret": (["--agents", "a"], "AGENTWIRE_AUTH_SECRET"),
        "missing file": (["--secret-file", str(tmp_path / "nope"), "--agents", "a"], "--secret-file"),
        "empty file": (["--secret-file", str(empty), "--agents", "a"], "empty"),
        "allows nothing": (["--secret-file", s], "agents"),
        "bad ttl": (["--secret-file", s, "--agents", "a", "--ttl", "soon"], "--ttl"),
        "zero ttl": (["--secret-file", s, "--agents", "a", "--ttl", "0"], "--ttl"),
        "ttl too long": (["--secret-file", s, "--agents", "a", "--ttl", "400d"], "ttl"),
        "unknown scope": (["--secret-file", s, "--agents", "a", "--scopes", "publish,write"], "write"),
        "empty agent": (["--secret-file", s, "--agents", "a,,b"], "empty"),
        "inner star": (["--secret-file", s, "--agents", "a*b"], "*"),
        "rsa alg": (["--secret-file", s, "--agents", "a", "--alg", "RS256"], "HS256"),
        "alg none": (["--secret-file", s, "--agents", "a", "--alg", "none"], "HS256"),
        "unknown flag": (["--secret-file", s, "--agents", "a", "--agent", "b"], "--agent"),
        "value missing": (["--secret-file", s, "--agents"], "--agents"),
        "stray argument": (["--secret-file", s, "--agents", "a", "extra"], "extra"),
    }
    for what, (args, needle) in cases.items():
        r = mint(*args)
        assert r.returncode == 2, (what, r.stdout, r.stderr)
        assert r.stdout == "", what  # nothing that looks like a token
        assert r.stderr.startswith("agentwire token: ") and needle in r.stderr, (what, r.stderr)


def test_help():
    r = mint("--help")
    assert r.returncode == 0 and "--secret-file" in r.stdout and "--agents" in r.stdout


def test_a_plain_get_tells_why_a_token_is_refused(start_server, secret_file):
    """Browsers cannot see a refused upgrade's status; the clients ask the route over plain HTTP instead
    (docs/protocol.md, Tokens): 401/403 with the code for a refused token, 426 for an accepted one."""
    server = start_server("--auth-secret-file", str(secret_file))
    token = mint("--secret-file", str(secret_file), "--agents", "agent-7").stdout.strip()

    def plain_get(agent, headers):
        st, _, body = http_request(server.host, server.port, "GET", f"/ws/agents/{agent}", headers=headers)
        return st, body["error"]["code"]

    assert plain_get("agent-7", {"Authorization": f"Bearer {token}"}) == (426, "upgrade_required")
    assert plain_get("agent-8", {"Authorization": f"Bearer {token}"}) == (403, "agent_forbidden")
    assert plain_get("agent-7", {}) == (401, "token_missing")
    forged = token.rsplit(".", 1)[0] + ".c2lnbmVkLWJ5LW5vYm9keQ"  # a signature no key made
    assert plain_get("agent-7", {"Authorization": f"Bearer {forged}"}) == (401, "token_invalid")
