"""Credentials (issue 15, item 7) against the real server with a key configured: the subscriber's token
goes as the ``bearer`` subprotocol, a token provider is asked again on every reconnect and on
``token_expiring`` (answered with ``refresh``), refusals become typed errors that are not retried for
ever, and the publisher sends its API key as ``Authorization: Bearer``.

Tokens are minted here with hmac/hashlib (HS256), sharing no code with the server's libjwt.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import subprocess
import time

import pytest

from agentwire import (
    AgentwireAuthError,
    AgentwireClient,
    AgentwireError,
    AsyncPublisher,
    AuthenticationError,
    Backoff,
    ConnectionState,
    PermissionDeniedError,
    Publisher,
)
from agentwire._http import HttpResponse, decode_json
from agentwire.client import MAX_AUTH_ATTEMPTS
from client_support import binary_path, run, until

SECRET = "python-client-secret-of-at-least-32-bytes-0123"
FAST = Backoff(base=0.05, max=0.3)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(agents=("agent-7",), ttl: float = 300, sub="user-1", **extra) -> str:
    now = int(time.time())
    claims = {"sub": sub, "iat": now, "exp": int(now + ttl), "agents": list(agents), **extra}
    signing_input = b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + b64url(json.dumps(claims).encode())
    sig = hmac.new(SECRET.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(sig)


def exp_of(token: str) -> int:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["exp"]


# A publisher's credentials: a JWT with every scope (the server's HTTP routes accept an API key or a token).
PUBLISHER_KEY = mint(agents=["*"], ttl=3600, sub="publisher", scope="publish workflows read admin")


@pytest.fixture
def keyed(servers, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    return servers.start("--auth-secret-file", str(secret))


async def next_event(it, timeout: float = 20):
    return await asyncio.wait_for(it.__anext__(), timeout)


def test_token_subscribes_as_the_bearer_subprotocol_and_events_flow(keyed):
    async def main():
        client = AgentwireClient(keyed.url, backoff=FAST, token=mint(), api_key=PUBLISHER_KEY)
        assert client.publisher.headers["Authorization"] == f"Bearer {PUBLISHER_KEY}"
        async with client.subscribe("agent-7") as sub:
            it = sub.__aiter__()
            task = asyncio.ensure_future(next_event(it))
            await until(lambda: sub.state is ConnectionState.LIVE, 20, "the subscription to go live")
            assert sub._ws.subprotocol == "bearer"
            seq = await client.publisher.publish("agent-7", "note", {"n": 1})
            ev = await task
            assert (ev.type, ev.seq, ev.data) == ("note", seq, {"n": 1})

    run(main())


def test_without_a_token_the_api_key_subscribes(keyed):
    async def main():
        client = AgentwireClient(keyed.url, backoff=FAST, api_key=mint())  # a JWT: the server takes either
        async with client.subscribe("agent-7") as sub:
            task = asyncio.ensure_future(next_event(sub.__aiter__()))
            await until(lambda: sub.state is ConnectionState.LIVE, 20, "the subscription to go live")
            task.cancel()

    run(main())


def test_a_token_for_another_agent_gives_up_at_once_with_permission_denied(keyed):
    calls = []

    def provider():
        calls.append(1)
        return mint(agents=["agent-8"])

    async def main():
        client = AgentwireClient(keyed.url, backoff=FAST, token_provider=provider)
        sub = client.subscribe("agent-7")
        with pytest.raises(PermissionDeniedError) as info:
            await next_event(sub.__aiter__())
        assert info.value.status == 403 and info.value.code == "agent_forbidden"
        assert "agent-7" in info.value.message
        assert not info.value.retryable
        assert len(calls) == 1 and sub.connections == 0 and sub.state is ConnectionState.CLOSED

    run(main())


def test_no_token_or_a_bad_one_is_an_authentication_error(keyed):
    async def main():
        for token, code in ((None, "token_missing"), (mint().rsplit(".", 1)[0] + ".c2lnbmVkLWJ5LW5vYm9keQ", "token_invalid"),
                            (mint(ttl=-10), "token_expired")):
            client = AgentwireClient(keyed.url, backoff=FAST, token=token)
            sub = client.subscribe("agent-7")
            with pytest.raises(AuthenticationError) as info:
                await next_event(sub.__aiter__())
            assert (info.value.status, info.value.code) == (401, code)
            assert isinstance(info.value, AgentwireAuthError) and isinstance(info.value, AgentwireError)
            assert sub.connections == 0

    run(main())


def test_the_provider_is_asked_again_on_every_reconnect(keyed):
    from client_support import TcpProxy

    calls = []

    async def provider():  # a coroutine function, as a backend call would be
        await asyncio.sleep(0)  # pacing only: a real suspension, as a call to a backend would have
        calls.append(1)
        return mint()

    async def main():
        proxy = await TcpProxy(keyed.port).start()
        try:
            client = AgentwireClient(proxy.url, backoff=FAST, token_provider=provider)
            pub = AsyncPublisher(keyed.url, api_key=PUBLISHER_KEY)
            async with client.subscribe("agent-7") as sub:
                it = sub.__aiter__()
                task = asyncio.ensure_future(next_event(it, 30))
                await until(lambda: sub.connections == 1, 20, "the first connection")
                assert len(calls) == 1
                proxy.cut()
                await until(lambda: sub.state is ConnectionState.RECONNECTING, 20, "the cut to be noticed")
                proxy.restore()
                await until(lambda: sub.connections == 2, 20, "the reconnect")
                assert len(calls) >= 2  # once per attempt (an attempt during the cut asks too)
                seq = await pub.publish("agent-7", "after", {})
                assert (await task).seq == seq
        finally:
            await proxy.close()

    run(main())


def test_token_expiring_is_answered_with_a_refresh_from_the_provider(keyed):
    tokens = [mint(ttl=6), mint(ttl=600)]
    calls = []

    async def provider():
        calls.append(1)
        return tokens[min(len(calls), len(tokens)) - 1]

    async def main():
        client = AgentwireClient(keyed.url, backoff=FAST, token_provider=provider)
        pub = AsyncPublisher(keyed.url, api_key=PUBLISHER_KEY)
        async with client.subscribe("agent-7") as sub:
            it = sub.__aiter__()
            task = asyncio.ensure_future(next_event(it, 30))
            await until(lambda: sub.token_refreshes == 1, 20, "token_expiring, refresh and token_refreshed")
            assert len(calls) == 2 and sub.token_exp == exp_of(tokens[1])
            # Past the first token's exp (and the server's sweep after it) the connection is still the first.
            first_exp = exp_of(tokens[0])
            await until(lambda: time.time() > first_exp + 2, 20, "the first token's exp to pass")
            seq = await pub.publish("agent-7", "still-here", {})
            assert (await task).seq == seq
            assert sub.connections == 1

    run(main())


def test_a_fixed_token_that_expires_ends_in_an_authentication_error(keyed):
    async def main():
        client = AgentwireClient(keyed.url, backoff=FAST, token=mint(ttl=4))
        sub = client.subscribe("agent-7")
        with pytest.raises(AuthenticationError) as info:
            async for _ in sub:
                pass
        assert info.value.code == "token_expired"
        assert sub.connections == 1
        assert any("4001" in c.reason for c in sub.state_history), sub.state_history

    run(main(), timeout=60)


def test_a_provider_of_expired_tokens_is_not_retried_for_ever(keyed):
    calls = []

    def provider():
        calls.append(1)
        return mint(ttl=-60)

    async def main():
        client = AgentwireClient(keyed.url, backoff=FAST, token_provider=provider)
        sub = client.subscribe("agent-7")
        with pytest.raises(AuthenticationError) as info:
            await next_event(sub.__aiter__(), 30)
        assert info.value.code == "token_expired"
        assert len(calls) == MAX_AUTH_ATTEMPTS

    run(main())


def test_a_failing_provider_is_retried_with_backoff():
    calls = []

    def provider():
        calls.append(1)
        raise RuntimeError("backend down")

    async def main():
        client = AgentwireClient("http://127.0.0.1:9", backoff=FAST, token_provider=provider)
        sub = client.subscribe("agent-7", max_attempts=3)
        with pytest.raises(AgentwireError) as info:
            await next_event(sub.__aiter__(), 30)
        assert "token provider failed" in str(info.value) and len(calls) == 3

    run(main())


def test_http_401_and_403_are_typed_and_not_retryable():
    def refused(status, code):
        body = json.dumps({"error": {"code": code, "message": "no"}}).encode()
        with pytest.raises(AgentwireError) as info:
            decode_json(HttpResponse(status, {}, body))
        return info.value

    assert isinstance(refused(401, "token_expired"), AuthenticationError)
    err = refused(403, "scope_forbidden")
    assert isinstance(err, PermissionDeniedError) and err.code == "scope_forbidden" and not err.retryable
    assert type(refused(404, "not_found")) is AgentwireError
    assert refused(429, "rate_limited").retryable


def test_credentials_are_checked_when_given():
    with pytest.raises(ValueError):
        AgentwireClient("http://127.0.0.1:1", token="a", token_provider=lambda: "b")
    with pytest.raises(ValueError):
        AgentwireClient("http://127.0.0.1:1", token="not a token")
    with pytest.raises(ValueError):
        Publisher("http://127.0.0.1:1", api_key="two\nlines")
    assert Publisher("http://127.0.0.1:1", api_key="k1").headers["Authorization"] == "Bearer k1"
    # Without a token, the API key is the subscriptions' credential (a read key may subscribe).
    assert AgentwireClient("http://127.0.0.1:1", api_key="awk_k1").subscribe("agent-7")._token == "awk_k1"
    assert AgentwireClient("http://127.0.0.1:1", api_key="k", token="t.o.k").subscribe("agent-7")._token == "t.o.k"
    # The client's publisher sends the API key, else a fixed token.
    assert AgentwireClient("http://127.0.0.1:1", token="t.o.k").publisher.headers["Authorization"] == "Bearer t.o.k"
    assert AgentwireClient("http://127.0.0.1:1").publisher.headers.get("Authorization") is None


def make_api_key(name: str, *scopes: str):
    """A new API key and its --api-keys-file entry, from `agentwire api-key`."""
    r = subprocess.run([binary_path(), "api-key", "--name", name, "--scopes", ",".join(scopes)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    fields = dict(line.split(":", 1) for line in r.stdout.splitlines() if ":" in line)
    return fields["key"].strip(), json.loads(fields["entry"].strip())


def test_api_keys_publish_and_subscribe_and_a_missing_scope_is_permission_denied(servers, tmp_path):
    if "--api-keys-file" not in subprocess.run([binary_path(), "--help"], capture_output=True, text=True).stdout:
        pytest.skip("this build has no API keys")
    writer, writer_entry = make_api_key("writer", "publish", "read")
    reader, reader_entry = make_api_key("reader", "read")
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [writer_entry, reader_entry]}))
    server = servers.start("--api-keys-file", str(keys))

    async def main():
        client = AgentwireClient(server.url, backoff=FAST, api_key=writer)  # the key subscribes too
        async with client.subscribe("agent-7") as sub:
            task = asyncio.ensure_future(next_event(sub.__aiter__()))
            await until(lambda: sub.state is ConnectionState.LIVE, 20, "the subscription to go live")
            seq = await client.publisher.publish("agent-7", "note", {})
            assert (await task).seq == seq
        with pytest.raises(PermissionDeniedError) as info:
            await AsyncPublisher(server.url, api_key=reader, retries=3).publish("agent-7", "note", {})
        assert info.value.status == 403 and not info.value.retryable

    run(main())
