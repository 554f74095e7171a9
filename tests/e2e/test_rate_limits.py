"""Rate limits (issue 15, item 8): WebSocket handshakes per client address (429 rate_limited with Retry-After
before the upgrade), messages per WebSocket connection (an `error` envelope rate_limited, then close 1008),
HTTP requests per client address (off by default), loopback exempt from the defaults but not from a limit
set explicitly, and the
per-address table's bound (--rate-limit-max-addresses) measured with many source addresses from 127.0.0.0/8.

Counts never assume how fast the machine is: a limit of R a second with a burst of B lets through at most
B + R * (seconds elapsed) + 1, and at least B, whatever the load.
"""

import base64
import http.client
import json
import os
import struct
import subprocess
import time

from awtest import (
    IO_TIMEOUT,
    OP_TEXT,
    RSS_SCALE,
    RawWebSocket,
    assert_json_error,
    binary_path,
    clean_env,
    connect_agent,
    read_response,
    recv_json_skip,
    run,
    wait_until,
)

UPGRADE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
}


def request_from(server, source: str, method: str, path: str, headers=None, body=None):
    """One request on a fresh connection from `source` (any 127.x.y.z is this host's loopback):
    (status, lower-cased headers, parsed body)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=IO_TIMEOUT, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        return read_response(conn)
    finally:
        conn.close()


def handshake_from(server, source: str, agent: str = "rl"):
    """A WebSocket upgrade from `source`; the connection is closed right after the answer."""
    h = dict(UPGRADE, **{"Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()})
    conn = http.client.HTTPConnection(server.host, server.port, timeout=IO_TIMEOUT, source_address=(source, 0))
    try:
        conn.request("GET", f"/ws/agents/{agent}", headers=h)
        resp = conn.getresponse()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        body = resp.read() if resp.status != 101 else b""
        return resp.status, headers, json.loads(body) if body else None
    finally:
        conn.close()


def take_until_refused(attempt, most: int):
    """Calls attempt() until it answers 429 (or `most` times): (admitted before it, the 429's headers and
    body, seconds it took)."""
    started = time.monotonic()
    for admitted in range(most):
        status, headers, body = attempt()
        if status == 429:
            return admitted, headers, body, time.monotonic() - started
    return most, None, None, time.monotonic() - started


def assert_rate_limited(headers, body):
    err = assert_json_error(429, body, 429)
    assert err["code"] == "rate_limited", body
    retry = headers.get("retry-after", "")
    assert retry.isdigit() and int(retry) >= 1, headers


def test_handshakes_over_the_rate_get_429_before_the_upgrade(start_server):
    server = start_server("--max-handshakes-per-ip-per-s", "1", "--handshake-burst-per-ip", "5",
                          "--rate-limit-loopback")
    admitted, headers, body, took = take_until_refused(lambda: handshake_from(server, "127.0.0.2"), 100)
    assert headers is not None, f"no 429 after {admitted} handshakes"
    assert 5 <= admitted <= 5 + took * 1 + 1, f"{admitted} handshakes admitted in {took:.1f}s"
    assert_rate_limited(headers, body)
    # Another address has a bucket of its own; the refused one is let in again once it has a token.
    assert handshake_from(server, "127.0.0.3")[0] == 101
    wait_until(lambda: handshake_from(server, "127.0.0.2")[0] == 101, 20, "the address to get a token back")
    stats = server.stats()
    assert stats["rate_limits"]["handshakes_refused"] >= 1, stats
    assert stats["connections"]["accepted"] >= 7, stats
    status, _, text = server.http("GET", "/metrics")
    assert status == 200 and 'agentwire_rate_limited_total{limit="handshake"}' in text


def test_refused_handshake_checks_no_token_and_opens_no_socket(start_server, tmp_path):
    """Over the limit, even a client with no token gets 429 (not 401): the limit comes before any key work."""
    secret = tmp_path / "secret"
    secret.write_text("s" * 32)
    server = start_server("--auth-secret-file", str(secret), "--max-handshakes-per-ip-per-s", "1",
                          "--handshake-burst-per-ip", "2", "--rate-limit-loopback")
    statuses = [handshake_from(server, "127.0.0.4")[0] for _ in range(2)]
    assert statuses == [401, 401], statuses
    admitted, headers, body, _ = take_until_refused(lambda: handshake_from(server, "127.0.0.4"), 50)
    assert headers is not None
    assert_rate_limited(headers, body)


def test_loopback_is_exempt_from_the_defaults_not_from_a_limit_set(start_server):
    """A proxy or tool on the same host puts every user under one loopback address: the default limits
    leave it alone (past the default burst of 200 here), a limit the operator sets applies to it too, and
    --rate-limit-loopback=false exempts it even then."""
    server = start_server()
    assert [handshake_from(server, "127.0.0.1")[0] for _ in range(260)] == [101] * 260
    assert server.stats()["rate_limits"]["handshakes_refused"] == 0

    limited = start_server("--max-handshakes-per-ip-per-s", "1", "--handshake-burst-per-ip", "1")
    admitted, headers, body, took = take_until_refused(lambda: handshake_from(limited, "127.0.0.1"), 50)
    assert admitted <= 1 + 1 * took + 1, f"{admitted} admitted in {took:.1f}s past a limit of 1/s, burst 1"
    assert_rate_limited(headers, body)

    exempted = start_server("--max-handshakes-per-ip-per-s", "1", "--handshake-burst-per-ip", "1",
                            "--rate-limit-loopback=false")
    for source in ("127.0.0.1", "127.0.0.5"):
        assert [handshake_from(exempted, source)[0] for _ in range(6)] == [101] * 6
    assert exempted.stats()["rate_limits"] == {
        "handshakes_refused": 0, "requests_refused": 0, "connections_closed": 0, "addresses": 0,
    }


def test_default_handshake_limit_lets_a_reconnect_storm_through(start_server):
    """One user's browser after a server restart: many tabs, each reconnecting to a few agents at once."""
    server = start_server("--rate-limit-loopback")
    statuses = [handshake_from(server, "127.0.0.6", f"tab-{i % 10}")[0] for i in range(120)]
    assert statuses == [101] * 120, statuses
    assert server.stats()["rate_limits"]["handshakes_refused"] == 0


def test_messages_over_the_rate_get_an_error_then_close_1008(start_server):
    server = start_server("--max-messages-per-connection-per-s", "1", "--message-burst-per-connection", "5")
    ws = RawWebSocket(server, "/ws/agents/chatty")
    ping = json.dumps({"type": "ping"}).encode()
    frame = struct.pack("!BB", 0x80 | OP_TEXT, 0x80 | len(ping)) + b"\0\0\0\0" + ping
    started = time.monotonic()
    ws.sock.sendall(frame * 40)
    code, texts, _ = ws.read_until_close(timeout=20)
    took = time.monotonic() - started
    ws.close()
    assert code == 1008, (code, texts)
    msgs = [json.loads(t) for t in texts]
    pongs = [m for m in msgs if m["type"] == "pong"]
    assert 5 <= len(pongs) <= 5 + took + 1, f"{len(pongs)} pongs in {took:.1f}s"
    assert msgs[-1]["type"] == "error" and msgs[-1]["data"]["code"] == "rate_limited", msgs[-1]
    wait_until(lambda: server.stats()["rate_limits"]["connections_closed"] == 1, 20, "the close to be counted")

    async def others_unaffected():
        ws2, _ = await connect_agent(server, "chatty")
        for _ in range(3):
            await ws2.send(json.dumps({"type": "ping"}))
            assert (await recv_json_skip(ws2))["type"] == "pong"
        await ws2.close()

    run(others_unaffected())


def test_http_requests_are_not_limited_by_default(start_server):
    server = start_server("--rate-limit-loopback")
    statuses = {request_from(server, "127.0.0.7", "GET", "/api/agents")[0] for _ in range(150)}
    assert statuses == {200}, statuses


def test_http_requests_over_the_rate_get_429_and_the_connection_closes(start_server):
    server = start_server("--max-requests-per-ip-per-s", "1", "--request-burst-per-ip", "4",
                          "--rate-limit-loopback")
    admitted, headers, body, took = take_until_refused(
        lambda: request_from(server, "127.0.0.8", "GET", "/api/agents"), 100)
    assert headers is not None, f"no 429 after {admitted} requests"
    assert 4 <= admitted <= 4 + took + 1
    assert_rate_limited(headers, body)
    assert headers.get("connection") != "close", headers  # no body to skip: the connection stays
    # Health checks (from the load balancer) are not counted; another address has its own bucket.
    assert request_from(server, "127.0.0.8", "GET", "/healthz")[0] == 200
    assert request_from(server, "127.0.0.9", "GET", "/api/agents")[0] == 200
    # A publish is refused from its head: its body is not read, so the connection closes after the answer.
    status, h, b = request_from(server, "127.0.0.8", "POST", "/api/agents/a/events", body=b'{"type":"t"}',
                                headers={"Content-Type": "application/json"})
    assert status == 429 and h.get("connection") == "close", (status, h, b)
    assert server.stats()["rate_limits"]["requests_refused"] >= 2


def test_the_address_table_is_bounded(start_server):
    """2000 source addresses against a table of 300 whose buckets take 1000 s to refill: it holds 300,
    the rest get 429 while it is full; RSS does not follow the addresses."""
    server = start_server("--max-handshakes-per-ip-per-s", "1", "--handshake-burst-per-ip", "1000",
                          "--rate-limit-max-addresses", "300", "--rate-limit-loopback")
    base = server.rss_kb()
    counts = {}
    for i in range(2000):
        # A plain GET on the route counts as a handshake and is answered 426: no WebSocket to tear down.
        status = request_from(server, f"127.0.{10 + i // 250}.{1 + i % 250}", "GET", "/ws/agents/x")[0]
        counts[status] = counts.get(status, 0) + 1
    assert counts == {426: 300, 429: 1700}, counts
    stats = server.stats()["rate_limits"]
    assert stats["addresses"] == 300 and stats["handshakes_refused"] == 1700, stats
    grown = server.rss_kb() - base
    assert grown < 8 * 1024 * RSS_SCALE, f"RSS grew {grown} KiB"


def test_addresses_are_forgotten_once_refilled(start_server):
    server = start_server("--max-handshakes-per-ip-per-s", "100", "--handshake-burst-per-ip", "10",
                          "--rate-limit-loopback")
    for i in range(200):
        assert request_from(server, f"127.0.20.{1 + i}", "GET", "/ws/agents/x")[0] == 426
    assert server.stats()["rate_limits"]["addresses"] >= 1
    # A bucket is full again 0.1 s after its last take; the table is swept once a second, on a take.
    wait_until(
        lambda: request_from(server, "127.0.21.1", "GET", "/ws/agents/x")[0] == 426
        and server.stats()["rate_limits"]["addresses"] <= 1,
        20, "the refilled addresses to be forgotten", interval=0.2)


def test_rate_limit_flags_are_checked_at_start_and_listed(tmp_path):
    for flags in (["--max-handshakes-per-ip-per-s", "-1"], ["--handshake-burst-per-ip", "0"],
                  ["--max-messages-per-connection-per-s", "x"], ["--message-burst-per-connection", "0"],
                  ["--max-requests-per-ip-per-s", "1.5"], ["--request-burst-per-ip", "0"],
                  ["--rate-limit-max-addresses", "0"], ["--rate-limit-loopback=maybe"]):
        p = subprocess.run([binary_path(), "--data-dir", str(tmp_path), *flags], env=clean_env(),
                           capture_output=True, timeout=IO_TIMEOUT)
        assert p.returncode == 2, (flags, p.stderr)
        assert flags[0].split("=")[0].encode() in p.stderr, p.stderr
    p = subprocess.run([binary_path(), "--data-dir", str(tmp_path)], capture_output=True, timeout=IO_TIMEOUT,
                       env=clean_env({"AGENTWIRE_MAX_HANDSHAKES_PER_IP_PER_S": "nope"}))
    assert p.returncode == 2 and b"AGENTWIRE_MAX_HANDSHAKES_PER_IP_PER_S" in p.stderr, p.stderr
    helptext = subprocess.run([binary_path(), "--help"], capture_output=True, timeout=IO_TIMEOUT).stdout.decode()
    for name in ("--max-handshakes-per-ip-per-s ", "--handshake-burst-per-ip ", "--max-messages-per-connection-per-s ",
                 "--message-burst-per-connection ", "--max-requests-per-ip-per-s ", "--request-burst-per-ip ",
                 "--rate-limit-max-addresses ", "--rate-limit-loopback ", "AGENTWIRE_RATE_LIMIT_MAX_ADDRESSES"):
        assert name in helptext, name


def test_rate_limits_from_the_environment(start_server):
    server = start_server(env={"AGENTWIRE_MAX_HANDSHAKES_PER_IP_PER_S": "1", "AGENTWIRE_HANDSHAKE_BURST_PER_IP": "1",
                               "AGENTWIRE_RATE_LIMIT_LOOPBACK": "1"})
    assert handshake_from(server, "127.0.0.11")[0] == 101
    admitted, headers, body, _ = take_until_refused(lambda: handshake_from(server, "127.0.0.11"), 50)
    assert headers is not None
    assert_rate_limited(headers, body)
