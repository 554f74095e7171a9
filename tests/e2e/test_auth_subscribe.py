"""Subscribers carry a token (issue 15, item 1): with a key configured, /ws/agents/{id} needs a JWT that
allows the agent, checked before the upgrade; tokens expiring mid-connection are warned about, refreshed
over the socket, or end the connection with 4001.

Tokens are minted here by an independent implementation: HS256/384 with Python's hmac/hashlib, RS256 and
ES256 with keys made by the `openssl` command at test time (which also signs), so the server's libjwt is
checked against code it shares nothing with.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import websockets

import awtest
from awtest import (
    IO_TIMEOUT,
    apublish,
    assert_json_error,
    await_closed,
    http_request,
    recv_json,
    recv_json_skip,
    run,
    wait_until,
    ws_connect,
)

SECRET = "test-secret-of-at-least-32-bytes-0123456789"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(agents=("agent-7",), ttl=300, **extra) -> dict:
    now = int(time.time())
    c = {"sub": "user-1", "exp": now + ttl, "iat": now, "agents": None if agents is None else list(agents)}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def signing_input(header: dict, payload: dict) -> bytes:
    return (b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())).encode()


def hs_token(payload: dict, secret: bytes | str = SECRET, alg="HS256", kid=None, header_extra=None) -> str:
    secret = secret.encode() if isinstance(secret, str) else secret
    header = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    header.update(header_extra or {})
    msg = signing_input(header, payload)
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    return msg.decode() + "." + b64url(hmac.new(secret, msg, digest).digest())


def openssl(*args, data: bytes | None = None) -> bytes:
    return subprocess.run(["openssl", *args], input=data, check=True, capture_output=True, timeout=30).stdout


def der_ecdsa_to_raw(der: bytes, size: int) -> bytes:
    """An ECDSA signature from DER (SEQUENCE of two INTEGERs) to JOSE's fixed-size r || s."""
    assert der[0] == 0x30
    i = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        n = der[i + 1]
        out += der[i + 2 : i + 2 + n].lstrip(b"\0").rjust(size, b"\0")
        i += 2 + n
    return out


class KeyPair:
    """An RSA or EC (P-256) key pair made by openssl, in `dir`, named `name` (its kid when a PEM file)."""

    def __init__(self, dir: Path, name: str, kind: str):
        self.kind = kind
        self.private = dir / f"{name}.key"
        self.public = dir / f"{name}.pem"
        if kind == "rsa":
            openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", str(self.private))
        else:
            openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", str(self.private))
        openssl("pkey", "-in", str(self.private), "-pubout", "-out", str(self.public))

    def token(self, payload: dict, kid=None, alg=None) -> str:
        alg = alg or ("RS256" if self.kind == "rsa" else "ES256")
        header = {"alg": alg, "typ": "JWT"}
        if kid is not None:
            header["kid"] = kid
        msg = signing_input(header, payload)
        sig = openssl("dgst", "-sha256", "-sign", str(self.private), data=msg)
        if self.kind == "ec":
            sig = der_ecdsa_to_raw(sig, 32)
        return msg.decode() + "." + b64url(sig)

    def jwk(self, kid: str) -> dict:
        der = openssl("pkey", "-pubin", "-in", str(self.public), "-outform", "DER")
        if self.kind == "ec":
            point = der[-65:]  # the uncompressed point ends a P-256 SubjectPublicKeyInfo
            assert point[0] == 4
            return {"kty": "EC", "crv": "P-256", "kid": kid, "x": b64url(point[1:33]), "y": b64url(point[33:])}
        text = openssl("rsa", "-pubin", "-in", str(self.public), "-noout", "-modulus").decode()
        n = bytes.fromhex(text.strip().split("=", 1)[1])
        return {"kty": "RSA", "kid": kid, "n": b64url(n), "e": b64url((65537).to_bytes(3, "big"))}


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    return {"dir": d, "rsa": KeyPair(d, "rsa-1", "rsa"), "ec": KeyPair(d, "ec-1", "ec"), "rsa2": KeyPair(d, "rsa-2", "rsa")}


@pytest.fixture
def hs_server(start_server, tmp_path):
    f = tmp_path / "secret"
    f.write_text(SECRET + "\n")
    s = start_server("--auth-secret-file", str(f))
    # With a key the HTTP API needs a credential too: the tests publish as a backend would.
    s.credential = hs_token(claims(agents=["*"], ttl=3600, scope="publish read"))
    return s


def upgrade_headers(extra=None) -> dict:
    h = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    h.update(extra or {})
    return h


def refused(server, path: str, status: int, code: str, headers=None):
    st, hdrs, body = http_request(server.host, server.port, "GET", path, headers=upgrade_headers(headers))
    err = assert_json_error(st, body, status)
    assert err["code"] == code, body
    if status == 401:
        assert hdrs.get("www-authenticate", "").startswith("Bearer"), hdrs
    return err


def upgraded(server, path: str, headers=None) -> dict:
    st, hdrs, body = http_request(server.host, server.port, "GET", path, headers=upgrade_headers(headers))
    assert st == 101, (st, body)
    return hdrs


# ---- without a key nothing changes --------------------------------------------------------------------


def test_without_keys_no_token_is_needed_and_bearer_is_still_answered(server):
    async def main():
        async with ws_connect(server, "/ws/agents/agent-7") as ws:
            assert (await recv_json(ws))["type"] == "connected"
        # A client that always sends its token as a subprotocol still connects (bearer is selected).
        async with ws_connect(server, "/ws/agents/agent-7", subprotocols=["bearer", "anything"]) as ws:
            assert ws.subprotocol == "bearer"
            assert (await recv_json(ws))["type"] == "connected"

    run(main())


# ---- refusals before the upgrade ----------------------------------------------------------------------


def test_refusals_and_messages_match_the_api_documents(hs_server):
    docs = json.loads((awtest.REPO_ROOT / "docs" / "openapi.json").read_text())
    responses = docs["paths"]["/ws/agents/{agent_id}"]["get"]["responses"]
    for status, code in (("401", "token_missing"), ("401", "token_invalid"), ("401", "token_expired"), ("403", "agent_forbidden")):
        assert code in json.dumps(responses[status]), (status, code)
    asyncapi = json.loads((awtest.REPO_ROOT / "docs" / "asyncapi.json").read_text())
    for name in ("token_expiring", "token_refreshed", "refresh"):
        assert name in asyncapi["components"]["messages"], name
    assert "4001" in asyncapi["info"]["description"]


def test_missing_token_is_401_token_missing(hs_server):
    refused(hs_server, "/ws/agents/agent-7", 401, "token_missing")
    refused(hs_server, "/ws/agents/agent-7?token=", 401, "token_missing")
    refused(hs_server, "/ws/agents/agent-7", 401, "token_missing", {"Authorization": "Basic dXNlcjpwdw=="})
    # Bad agent ids are still 400, before any token is looked at.
    st, _, body = http_request(hs_server.host, hs_server.port, "GET", "/ws/agents/a%20b", headers=upgrade_headers())
    assert st == 400, body


def test_invalid_tokens_are_401_token_invalid(hs_server):
    good = claims()
    bad = {
        "garbage": "not-a-token",
        "two parts": hs_token(good).rsplit(".", 1)[0],
        "wrong secret": hs_token(good, secret="another-secret-of-at-least-32-bytes!!"),
        "tampered payload": (lambda t: t.split(".")[0] + "." + b64url(json.dumps(claims(agents=["*"])).encode()) + "." + t.split(".")[2])(hs_token(good)),
        "alg none": b64url(b'{"alg":"none","typ":"JWT"}') + "." + b64url(json.dumps(good).encode()) + ".",
        "alg none signed": b64url(b'{"alg":"none"}') + "." + b64url(json.dumps(good).encode()) + "." + b64url(b"x"),
        "unknown alg": hs_token(good, header_extra={"alg": "HS999"}),
        "RS256 header on an HMAC signature": hs_token(good, header_extra={"alg": "RS256"}),
        "no sub": hs_token(claims(sub=None)),
        "no exp": hs_token(claims(exp=None)),
        "exp not a number": hs_token(claims(exp="tomorrow")),
        "nbf in the future": hs_token(claims(nbf=int(time.time()) + 600)),
        "iat in the future": hs_token(claims(iat=int(time.time()) + 600)),
        "agents not a list": hs_token({**claims(), "agents": "agent-7"}),
        "payload not an object": (lambda m: m + "." + b64url(hmac.new(SECRET.encode(), m.encode(), hashlib.sha256).digest()))(
            b64url(b'{"alg":"HS256"}') + "." + b64url(b"[1,2]")
        ),
    }
    for what, token in bad.items():
        err = refused(hs_server, f"/ws/agents/agent-7?token={token}", 401, "token_invalid")
        assert token not in err["message"], what
    # nbf and iat within the leeway (30 s of clock skew) are fine.
    upgraded(hs_server, "/ws/agents/agent-7?token=" + hs_token(claims(nbf=int(time.time()) + 10, iat=int(time.time()) + 10)))
    # HS384 and HS512 with the same secret are fine too.
    upgraded(hs_server, "/ws/agents/agent-7?token=" + hs_token(claims(), alg="HS384"))
    upgraded(hs_server, "/ws/agents/agent-7?token=" + hs_token(claims(), alg="HS512"))


def test_expired_token_is_401_token_expired(hs_server):
    refused(hs_server, "/ws/agents/agent-7?token=" + hs_token(claims(ttl=-5)), 401, "token_expired")
    # exp is exact: no leeway past it.
    refused(hs_server, "/ws/agents/agent-7?token=" + hs_token(claims(ttl=0)), 401, "token_expired")


def test_agents_claim_exact_and_prefix(hs_server):
    token = hs_token(claims(agents=["agent-7", "team-a:*"]))
    for agent in ("agent-7", "team-a:1", "team-a:x.y"):
        upgraded(hs_server, f"/ws/agents/{agent}?token={token}")
    for agent in ("agent-70", "agent-", "team-a", "team-b:1", "xteam-a:1"):
        refused(hs_server, f"/ws/agents/{agent}?token={token}", 403, "agent_forbidden")
    refused(hs_server, "/ws/agents/agent-7?token=" + hs_token(claims(agents=None)), 403, "agent_forbidden")
    refused(hs_server, "/ws/agents/agent-7?token=" + hs_token(claims(agents=[])), 403, "agent_forbidden")
    upgraded(hs_server, "/ws/agents/anything?token=" + hs_token(claims(agents=["*"])))


def test_audience_and_issuer_when_configured(start_server, tmp_path):
    f = tmp_path / "secret"
    f.write_text(SECRET)
    s = start_server("--auth-secret-file", str(f), "--auth-audience", "agentwire", "--auth-issuer", "https://idp.test")
    ok = dict(aud="agentwire", iss="https://idp.test")
    upgraded(s, "/ws/agents/agent-7?token=" + hs_token(claims(**ok)))
    upgraded(s, "/ws/agents/agent-7?token=" + hs_token(claims(aud=["other", "agentwire"], iss="https://idp.test")))
    for bad in (dict(ok, aud="other"), dict(ok, aud=None), dict(ok, iss="https://evil.test"), dict(ok, iss=None)):
        refused(s, "/ws/agents/agent-7?token=" + hs_token(claims(**bad)), 401, "token_invalid")


# ---- where the token may be ----------------------------------------------------------------------------


def test_token_as_subprotocol_header_and_query(hs_server):
    token = hs_token(claims())

    async def main():
        async with ws_connect(hs_server, "/ws/agents/agent-7", subprotocols=["bearer", token]) as ws:
            assert ws.subprotocol == "bearer"
            hello = await recv_json(ws)
            assert hello["type"] == "connected" and hello["agent_id"] == "agent-7"
        async with ws_connect(hs_server, "/ws/agents/agent-7", extra_headers={"Authorization": f"Bearer {token}"}) as ws:
            assert (await recv_json(ws))["type"] == "connected"
        async with ws_connect(hs_server, f"/ws/agents/agent-7?since=0&token={token}") as ws:
            assert ws.subprotocol is None
            assert (await recv_json(ws))["type"] == "connected"
            seq = await apublish(hs_server, "agent-7", "progress", {"p": 1})
            ev = await recv_json_skip(ws)
            assert ev["seq"] == seq
        # A refused subprotocol token is the same 401 over the same route.
        with pytest.raises(websockets.InvalidStatusCode) as e:
            async with ws_connect(hs_server, "/ws/agents/agent-7", subprotocols=["bearer", token + "x"]):
                pass
        assert e.value.status_code == 401

    run(main())
    hdrs = upgraded(hs_server, "/ws/agents/agent-7", {"Sec-WebSocket-Protocol": f"bearer, {token}"})
    assert hdrs.get("sec-websocket-protocol") == "bearer"
    refused(hs_server, "/ws/agents/agent-7", 401, "token_invalid", {"Sec-WebSocket-Protocol": "bearer, nonsense"})


def test_token_is_never_logged(start_server, tmp_path):
    f = tmp_path / "secret"
    f.write_text(SECRET)
    s = start_server("--auth-secret-file", str(f), "--log-level", "debug")
    s.credential = hs_token(claims(agents=["*"], ttl=3600, scope="publish"))
    good = hs_token(claims())
    upgraded(s, f"/ws/agents/agent-7?token={good}")
    expired = hs_token(claims(ttl=-5))
    refused(s, f"/ws/agents/agent-7?token={expired}", 401, "token_expired")
    refused(s, "/ws/agents/agent-7", 401, "token_invalid", {"Sec-WebSocket-Protocol": f"bearer, {expired}x"})
    s.publish("agent-7")  # something after the upgrades, so their lines are out
    wait_until(lambda: "ws_connect" in s.log, IO_TIMEOUT, "the ws_connect line")
    for t in (good, expired):
        assert t.split(".")[2] not in s.log and t.split(".")[1] not in s.log


# ---- public keys, JWKS, kid ----------------------------------------------------------------------------


def test_rs256_and_es256_from_pem_files(start_server, keys):
    s = start_server("--auth-public-key", str(keys["rsa"].public), "--auth-public-key", str(keys["ec"].public))
    payload = claims()
    upgraded(s, "/ws/agents/agent-7?token=" + keys["rsa"].token(payload))
    upgraded(s, "/ws/agents/agent-7?token=" + keys["rsa"].token(payload, kid="rsa-1"))  # kid = the file's stem
    upgraded(s, "/ws/agents/agent-7?token=" + keys["ec"].token(payload))
    upgraded(s, "/ws/agents/agent-7?token=" + keys["ec"].token(payload, kid="ec-1"))
    # A key not configured, a kid naming another key, an alg the key type is not for.
    refused(s, "/ws/agents/agent-7?token=" + keys["rsa2"].token(payload), 401, "token_invalid")
    refused(s, "/ws/agents/agent-7?token=" + keys["rsa"].token(payload, kid="ec-1"), 401, "token_invalid")
    refused(s, "/ws/agents/agent-7?token=" + keys["rsa"].token(payload, kid="nope"), 401, "token_invalid")
    # Algorithm confusion: an HS256 token whose "secret" is the RSA public key the server holds.
    pem = keys["rsa"].public.read_bytes()
    refused(s, "/ws/agents/agent-7?token=" + hs_token(payload, secret=pem), 401, "token_invalid")
    refused(s, "/ws/agents/agent-7?token=" + hs_token(payload, secret=pem, kid="rsa-1"), 401, "token_invalid")
    # An ES256 header over an RSA signature.
    refused(s, "/ws/agents/agent-7?token=" + keys["rsa"].token(payload, alg="ES256"), 401, "token_invalid")
    refused(s, "/ws/agents/agent-7?token=" + keys["rsa"].token(claims(ttl=-5)), 401, "token_expired")
    refused(s, "/ws/agents/agent-8?token=" + keys["ec"].token(payload), 403, "agent_forbidden")


def test_jwks_selects_by_kid_and_rotates_on_sighup(start_server, keys, tmp_path):
    jwks = tmp_path / "jwks.json"
    oct_secret = b"jwks-oct-secret-of-at-least-32-bytes!"
    jwks.write_text(json.dumps({"keys": [
        keys["rsa"].jwk("k1"),
        keys["ec"].jwk("k2"),
        {"kty": "oct", "kid": "k3", "k": b64url(oct_secret), "alg": "HS256"},
    ]}))
    s = start_server("--auth-jwks-file", str(jwks))
    payload = claims()
    upgraded(s, "/ws/agents/agent-7?token=" + keys["rsa"].token(payload, kid="k1"))
    upgraded(s, "/ws/agents/agent-7?token=" + keys["ec"].token(payload, kid="k2"))
    upgraded(s, "/ws/agents/agent-7?token=" + keys["rsa"].token(payload))  # no kid: every RSA key is tried
    upgraded(s, "/ws/agents/agent-7?token=" + hs_token(payload, secret=oct_secret, kid="k3"))
    refused(s, "/ws/agents/agent-7?token=" + hs_token(payload, secret=oct_secret, kid="k3", alg="HS512"), 401, "token_invalid")
    refused(s, "/ws/agents/agent-7?token=" + keys["rsa"].token(payload, kid="k2"), 401, "token_invalid")
    refused(s, "/ws/agents/agent-7?token=" + keys["rsa2"].token(payload, kid="k9"), 401, "token_invalid")

    # Rotation: k1 retired, k9 (a new RSA key) added; the file is read again on SIGHUP.
    jwks.write_text(json.dumps({"keys": [keys["rsa2"].jwk("k9"), keys["ec"].jwk("k2")]}))
    s.settle()
    s.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "auth_keys_reloaded" in s.log, IO_TIMEOUT, "the keys reloaded")
    upgraded(s, "/ws/agents/agent-7?token=" + keys["rsa2"].token(payload, kid="k9"))
    upgraded(s, "/ws/agents/agent-7?token=" + keys["ec"].token(payload, kid="k2"))
    refused(s, "/ws/agents/agent-7?token=" + keys["rsa"].token(payload, kid="k1"), 401, "token_invalid")
    # A broken file on SIGHUP keeps the keys in use.
    jwks.write_text("{not json")
    s.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "auth_keys_reload_failed" in s.log, IO_TIMEOUT, "the reload refused")
    upgraded(s, "/ws/agents/agent-7?token=" + keys["rsa2"].token(payload, kid="k9"))


def test_unusable_key_files_stop_the_start_naming_the_flag(tmp_path, keys):
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    bad_jwks = tmp_path / "bad.json"
    bad_jwks.write_text('{"keys": [{"kty": "RSA", "kid": "x"}]}')
    empty = tmp_path / "empty"
    empty.write_text("\n")
    cases = [
        (["--auth-secret-file", str(tmp_path / "missing")], "--auth-secret-file"),
        (["--auth-secret-file", str(empty)], "--auth-secret-file"),
        (["--auth-public-key", str(not_pem)], "--auth-public-key"),
        (["--auth-public-key", str(keys["rsa"].private) + ".missing"], "--auth-public-key"),
        (["--auth-jwks-file", str(bad_jwks)], "--auth-jwks-file"),
        (["--auth-jwks-file", str(not_pem)], "--auth-jwks-file"),
        (["--auth-audience", "x"], "--auth-audience"),
    ]
    for flags, named in cases:
        p = subprocess.run([awtest.binary_path(), "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "d"), *flags],
                           capture_output=True, timeout=30, env=awtest.clean_env())
        assert p.returncode == 2, (flags, p.stderr)
        assert named in p.stderr.decode(), (flags, p.stderr)


def test_secret_from_environment(start_server):
    s = start_server(env={"AGENTWIRE_AUTH_SECRET": SECRET})
    upgraded(s, "/ws/agents/agent-7?token=" + hs_token(claims()))
    refused(s, "/ws/agents/agent-7", 401, "token_missing")


# ---- expiry while connected ----------------------------------------------------------------------------


def test_token_expiring_then_close_4001(hs_server):
    async def main():
        exp = int(time.time()) + 3
        token = hs_token(claims(exp=exp))
        async with ws_connect(hs_server, "/ws/agents/agent-7", subprotocols=["bearer", token]) as ws:
            assert (await recv_json(ws))["type"] == "connected"
            warn = await recv_json_skip(ws, what="token_expiring")
            assert warn["type"] == "token_expiring" and warn["agent_id"] == "agent-7", warn
            assert warn["data"]["exp"] == exp and 0 <= warn["data"]["expires_in"] <= 3, warn
            code = await await_closed(ws)
            assert code == 4001, code
            assert ws.close_reason == "token_expired"
            assert time.time() >= exp - 0.5  # not before the token's exp (a second of clock rounding)

    run(main())
    wait_until(lambda: "reason=token_expired" in hs_server.log, IO_TIMEOUT, "the disconnect logged")


def test_refresh_keeps_the_connection(hs_server):
    async def main():
        # Several seconds of life: the refresh has half of it after token_expiring, even on a busy machine.
        exp = int(time.time()) + 6
        warned = []

        async def reply(what):
            while True:
                msg = await recv_json_skip(ws, what=what)
                if msg["type"] != "token_expiring":
                    return msg
                warned.append(msg)

        async with ws_connect(hs_server, "/ws/agents/agent-7?token=" + hs_token(claims(exp=exp))) as ws:
            assert (await recv_json(ws))["type"] == "connected"
            # Bad refreshes are answered with an error and change nothing.
            await ws.send(json.dumps({"type": "refresh", "token": "nonsense"}))
            err = await reply("an error for a bad token")
            assert err["type"] == "error" and err["data"]["code"] == "token_invalid", err
            await ws.send(json.dumps({"type": "refresh", "token": hs_token(claims(agents=["agent-8"]))}))
            err = await reply("an error for another agent's token")
            assert err["type"] == "error" and err["data"]["code"] == "agent_forbidden", err
            await ws.send(json.dumps({"type": "refresh"}))
            err = await reply("an error for a refresh without a token")
            assert err["type"] == "error" and err["data"]["code"] == "bad_message", err
            if not warned:
                warned.append(await recv_json_skip(ws, what="token_expiring"))
            assert warned[0]["type"] == "token_expiring" and warned[0]["data"]["exp"] == exp, warned
            new_exp = int(time.time()) + 120
            await ws.send(json.dumps({"type": "refresh", "token": hs_token(claims(exp=new_exp, agents=["agent-*"]))}))
            ok = await recv_json_skip(ws, what="token_refreshed")
            assert ok["type"] == "token_refreshed" and ok["data"]["exp"] == new_exp, ok
            # Past the first token's exp (and a sweep), the connection still delivers.
            await asyncio.to_thread(wait_until, lambda: time.time() > exp + 1.5, 15, "the old exp to pass")
            seq = await apublish(hs_server, "agent-7", "progress", {"p": 2})
            ev = await recv_json_skip(ws, what="an event after the old exp")
            assert ev["seq"] == seq and ev["type"] == "progress", ev

    run(main())


def test_refresh_without_keys_is_an_error_envelope(server):
    async def main():
        async with ws_connect(server, "/ws/agents/agent-7") as ws:
            await recv_json(ws)
            await ws.send(json.dumps({"type": "refresh", "token": hs_token(claims())}))
            err = await recv_json_skip(ws)
            assert err["type"] == "error" and err["data"]["code"] == "refresh_not_needed", err
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv_json_skip(ws))["type"] == "pong"

    run(main())
