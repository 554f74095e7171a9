"""Abuse at the connection level: the connection limits (global and per address, HTTP and WebSocket alike),
running out of file descriptors, Sec-WebSocket-Key validation, and the dashboard's static files (no symlink
out of the web dir, no FIFO that stalls an io thread, no directory answered as a page)."""

import json
import os
import re
import resource
import socket
import subprocess
import threading
import time

import pytest
import websockets.exceptions

from awtest import (
    IO_TIMEOUT,
    OP_TEXT,
    RSS_SCALE,
    RawHttp,
    RawWebSocket,
    assert_json_error,
    binary_path,
    clean_env,
    run,
    wait_until,
    ws_connect,
)

HEALTHZ = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
STATS = b"GET /api/websocket/stats HTTP/1.1\r\nHost: localhost\r\n\r\n"


def keepalive(server, source: str | None = None) -> RawHttp:
    """A keep-alive HTTP connection (from `source`, another loopback address, if given) that has been
    answered once, so the server has accepted it and counts it."""
    if source is None:
        conn = RawHttp(server.host, server.port)
    else:
        conn = RawHttp.__new__(RawHttp)
        conn.sock = socket.create_connection((server.host, server.port), IO_TIMEOUT, (source, 0))
        conn.buf = b""
    conn.send(HEALTHZ)
    status, _, body = conn.read_response()
    assert status == 200, (status, body)
    return conn


def stats_on(conn: RawHttp) -> dict:
    conn.send(STATS)
    status, _, body = conn.read_response()
    assert status == 200, (status, body)
    return body


def publish_on(conn: RawHttp, agent_id: str) -> int:
    body = b'{"type":"t","data":{"a":1}}'
    conn.send(f"POST /api/agents/{agent_id}/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
              f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    status, _, answer = conn.read_response()
    assert status == 202, answer
    return answer["seq"]


def fresh_request(server, path="/healthz", source: str | None = None):
    """One request on a new connection: (status, headers, body)."""
    conn = RawHttp.__new__(RawHttp)
    conn.sock = socket.create_connection((server.host, server.port), IO_TIMEOUT, (source, 0) if source else None)
    conn.buf = b""
    try:
        conn.send(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        return conn.read_response()
    finally:
        conn.close()


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def upgrade_request(key: str) -> bytes:
    return (
        "GET /ws/agents/abuse HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def raw_upgrade(server, key: str):
    """Sends an upgrade request with `key`: (status line code, headers, body bytes read with the head)."""
    with socket.create_connection((server.host, server.port), IO_TIMEOUT) as s:
        s.sendall(upgrade_request(key))
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        return int(lines[0].split()[1]), headers, rest


# --------------------------------------------------------------------------------------------------------
# --max-connections and --max-connections-per-ip
# --------------------------------------------------------------------------------------------------------


def test_max_connections_refuses_http_and_websocket_with_503_json(start_server):
    server = start_server("--max-connections", "4")
    ws = RawWebSocket(server, "/ws/agents/full")  # a WebSocket counts like any connection
    hello = ws.recv_frame()
    assert hello and json.loads(hello[2])["type"] == "connected"
    held = [keepalive(server), keepalive(server)]
    ctl = keepalive(server)
    assert stats_on(ctl)["connections"]["open"] == 4
    assert stats_on(ctl)["connections"]["max"] == 4

    # Plain HTTP, a WebSocket client and a raw upgrade: each refused before anything is parsed.
    status, headers, body = fresh_request(server)
    err = assert_json_error(status, body, 503)
    assert err["code"] == "too_many_connections", body
    assert headers.get("retry-after") == "1"
    assert headers.get("connection") == "close"

    async def websocket_client():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
            w = await ws_connect(server, "/ws/agents/full")
            await w.close()
        assert info.value.status_code == 503

    run(websocket_client())
    status, headers, _ = raw_upgrade(server, "dGhlIHNhbXBsZSBub25jZQ==")
    assert status == 503 and "sec-websocket-accept" not in headers

    # What the server holds keeps working.
    seq = publish_on(ctl, "full")
    frame = ws.recv_frame()
    assert frame and frame[1] == OP_TEXT and json.loads(frame[2])["seq"] == seq
    held[0].send(HEALTHZ)
    assert held[0].read_response()[0] == 200

    s = stats_on(ctl)["connections"]
    assert s["refused_max"] >= 3 and s["refused_per_ip"] == 0, s
    ctl.send(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
    _, _, metrics = ctl.read_response()
    m = re.search(r'^agentwire_connections_refused_total\{limit="max"\} (\d+)$', metrics, re.M)
    assert m and int(m.group(1)) >= 3, metrics
    assert re.search(r"^agentwire_open_connections 4$", metrics, re.M), metrics

    # A place given back is a place another client gets.
    held[1].close()
    wait_until(lambda: fresh_request(server)[0] == 200, IO_TIMEOUT, "a new connection once one closed")
    ws.close()
    held[0].close()
    wait_until(lambda: stats_on(ctl)["connections"]["open"] == 1, IO_TIMEOUT, "every closed connection uncounted")
    ctl.close()


def test_per_ip_limit_answers_429_and_other_addresses_still_connect(start_server):
    server = start_server("--max-connections-per-ip", "3")
    held = [keepalive(server), keepalive(server)]
    ctl = keepalive(server)
    status, _, body = fresh_request(server)
    err = assert_json_error(status, body, 429)
    assert err["code"] == "too_many_connections_from_address", body

    async def websocket_client():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
            w = await ws_connect(server, "/ws/agents/per-ip")
            await w.close()
        assert info.value.status_code == 429

    run(websocket_client())
    # Another address has its own count (all of 127/8 is loopback on Linux).
    other = [keepalive(server, source="127.0.0.2") for _ in range(3)]
    assert fresh_request(server, source="127.0.0.2")[0] == 429
    s = stats_on(ctl)["connections"]
    assert s["open"] == 6 and s["refused_per_ip"] >= 3 and s["refused_max"] == 0, s

    held[0].close()
    wait_until(lambda: fresh_request(server)[0] == 200, IO_TIMEOUT, "a new connection once one closed")
    for c in held[1:] + other:
        c.close()
    ctl.close()


def test_connection_places_are_given_back_after_upgrades_and_refusals(start_server):
    # Every way a connection ends gives its place back exactly once: HTTP, upgraded to WebSocket, a
    # failed upgrade, a refusal.
    server = start_server("--max-connections", "4", "--max-connections-per-ip", "3")
    ctl = keepalive(server)
    for _ in range(20):
        ws = RawWebSocket(server, "/ws/agents/cycle")
        assert ws.recv_frame() is not None
        extra = keepalive(server)
        assert fresh_request(server)[0] == 429
        other = keepalive(server, source="127.0.0.2")
        assert fresh_request(server, source="127.0.0.3")[0] == 503
        ws.send_close()
        ws.read_until_close()
        ws.close()
        extra.close()
        other.close()
        wait_until(lambda: stats_on(ctl)["connections"]["open"] == 1, IO_TIMEOUT, "places given back")
        assert raw_upgrade(server, "short")[0] == 400
        wait_until(lambda: stats_on(ctl)["connections"]["open"] == 1, IO_TIMEOUT, "places given back")
    ctl.close()


def test_a_connection_flood_holds_no_more_descriptors_or_memory_than_the_limit(start_server):
    # 400 connections that never send a byte against --max-connections 20: the server holds at most 20
    # of them, plus the refusals in flight (64, each for at most 2 s), whatever the flood does.
    server = start_server("--max-connections", "20", "--max-connections-per-ip", "0")
    ctl = keepalive(server)
    base_fds = open_fds(server.pid)
    base_rss = server.rss_kb()
    flood, most_fds = [], 0
    try:
        for i in range(400):
            flood.append(socket.create_connection((server.host, server.port), IO_TIMEOUT))
            if i % 20 == 0:
                most_fds = max(most_fds, open_fds(server.pid))
        # Most of the flood is refused (not all by construction: on a slow machine --header-timeout may end
        # an admitted silent connection first, and a later one takes its place).
        wait_until(lambda: stats_on(ctl)["connections"]["refused_max"] >= 300, 30, "the flood to be refused")
        most_fds = max(most_fds, open_fds(server.pid))
        assert stats_on(ctl)["connections"]["open"] <= 20
        assert most_fds <= base_fds + 19 + 64 + 2, f"{most_fds} descriptors (from {base_fds})"
        grown_kb = server.rss_kb() - base_rss
        assert grown_kb < 4096 * RSS_SCALE, f"RSS grew by {grown_kb} KiB"
        # The refused got their answer (or, past the 64 in flight, a close): none is left hanging.
        answered = 0
        for s in flood[19:]:  # the first 19 were admitted (with ctl, 20)
            s.settimeout(IO_TIMEOUT)
            try:
                data = s.recv(4096)
            except ConnectionResetError:
                data = b""
            answered += data.startswith(b"HTTP/1.1 503 ")
        assert answered >= 1
        wait_until(lambda: open_fds(server.pid) <= base_fds + 19 + 2, 30, "the refusals' descriptors closed")
    finally:
        for s in flood:
            s.close()
    ctl.close()


def test_bad_limit_values_are_refused_at_start(tmp_path):
    for flags in (["--max-connections", "0"], ["--max-connections", "x"], ["--max-connections-per-ip", "-1"],
                  ["--max-web-file-bytes", "1"]):
        p = subprocess.run([binary_path(), "--data-dir", str(tmp_path), *flags], env=clean_env(),
                           capture_output=True, timeout=IO_TIMEOUT)
        assert p.returncode == 2, (flags, p.stderr)
        assert flags[0].encode() in p.stderr, p.stderr
    helptext = subprocess.run([binary_path(), "--help"], capture_output=True, timeout=IO_TIMEOUT).stdout.decode()
    for name in ("--max-connections ", "--max-connections-per-ip", "AGENTWIRE_MAX_CONNECTIONS_PER_IP",
                 "--max-web-file-bytes"):
        assert name in helptext


# --------------------------------------------------------------------------------------------------------
# Out of file descriptors
# --------------------------------------------------------------------------------------------------------


def test_out_of_descriptors_backs_off_logs_little_and_recovers(start_server):
    server = start_server()
    ws = RawWebSocket(server, "/ws/agents/emfile")
    assert ws.recv_frame() is not None
    ctl = keepalive(server)
    # Room for a few more descriptors only, from now on.
    limit = open_fds(server.pid) + 4
    resource.prlimit(server.pid, resource.RLIMIT_NOFILE, (limit, limit))
    started = time.monotonic()
    flood = []
    try:
        for _ in range(40):
            s = socket.create_connection((server.host, server.port), IO_TIMEOUT)  # the kernel's backlog takes it
            s.sendall(HEALTHZ)
            flood.append(s)

        # The backoff doubles from 10 ms: eight failures take at least 1.27 s of running out, during which
        # the old acceptor failed (and logged) in a tight loop.
        wait_until(lambda: stats_on(ctl)["connections"]["accept_errors"] >= 8, 30,
                   "accepts to fail for want of descriptors")
        elapsed = time.monotonic() - started
        lines = [line for line in server.lines if "event=accept_failed" in line]
        assert 1 <= len(lines) <= elapsed + 1, f"{len(lines)} accept_failed lines in {elapsed:.1f}s:\n" + "\n".join(lines[:20])
        assert re.search(r"\bfailures=\d+", lines[0]), lines[0]

        # The connections it has are still served: HTTP on a kept connection, and a publish reaching the
        # WebSocket subscriber.
        seq = publish_on(ctl, "emfile")
        frame = ws.recv_frame()
        assert frame and json.loads(frame[2])["seq"] == seq
    finally:
        for s in flood:
            s.close()
    # Descriptors come back: new connections are accepted again.
    wait_until(lambda: fresh_request(server)[0] == 200, 30, "a new connection to be served after closing the flood")
    elapsed = time.monotonic() - started
    lines = [line for line in server.lines if "event=accept_" in line]  # accept_failed and accept_resumed
    assert len(lines) <= elapsed + 1, f"{len(lines)} lines in {elapsed:.1f}s:\n" + "\n".join(lines[:20])
    ws.close()
    ctl.close()


# --------------------------------------------------------------------------------------------------------
# Sec-WebSocket-Key
# --------------------------------------------------------------------------------------------------------

BAD_KEYS = {
    "short": "abc",
    "not_base64": "!!!!!!!!!!!!!!!!!!!!!!==",
    "fifteen_bytes": "MTIzNDU2Nzg5MDEyMzQ1",
    "seventeen_bytes": "MTIzNDU2Nzg5MDEyMzQ1Njc=",
    "unpadded": "dGhlIHNhbXBsZSBub25jZQ",
    "long": "dGhlIHNhbXBsZSBub25jZQ==dGhlIHNhbXBsZSBub25jZQ==",
    "url_safe": "dGhlIHNhbXBsZSBub25jZQ-_",
}


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
def test_sec_websocket_key_not_base64_of_16_bytes_gets_400(server, key):
    status, headers, _ = raw_upgrade(server, key)
    assert status == 400
    assert "sec-websocket-accept" not in headers
    # The server is fine, and a proper key upgrades.
    status, headers, _ = raw_upgrade(server, "dGhlIHNhbXBsZSBub25jZQ==")
    assert status == 101 and headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


# --------------------------------------------------------------------------------------------------------
# Static files
# --------------------------------------------------------------------------------------------------------


@pytest.fixture
def web_dir(tmp_path):
    root = tmp_path / "site"
    web = root / "web"
    (web / "assets").mkdir(parents=True)
    (root / "secret.txt").write_text("outside the web dir")
    (web / "index.html").write_text("<html>dashboard</html>")
    (web / "assets" / "app.js").write_text("console.log(1)")
    (web / "out.txt").symlink_to(root / "secret.txt")
    (web / "rel.txt").symlink_to("../secret.txt")
    (web / "up").symlink_to(root, target_is_directory=True)
    (web / "alias.html").symlink_to("index.html")
    os.mkfifo(web / "pipe.js")
    return web


def test_static_symlink_out_of_the_web_dir_is_404(start_server, web_dir):
    server = start_server("--web-dir", str(web_dir))
    assert server.http("GET", "/")[2] == "<html>dashboard</html>"
    assert server.http("GET", "/ui/assets/app.js")[2] == "console.log(1)"
    assert server.http("GET", "/ui/alias.html")[0] == 200  # a symlink that stays inside is followed
    for path in ("/ui/out.txt", "/ui/rel.txt", "/ui/up/secret.txt"):
        status, _, body = server.http("GET", path)
        assert_json_error(status, body, 404)
        assert "outside the web dir" not in json.dumps(body)


def test_static_directory_is_404(start_server, web_dir):
    server = start_server("--web-dir", str(web_dir))
    status, _, body = server.http("GET", "/ui/assets")
    assert_json_error(status, body, 404)


def test_static_fifo_does_not_stall_the_server(start_server, web_dir):
    # One io thread: a FIFO opened or read synchronously there would stall every connection.
    server = start_server("--web-dir", str(web_dir), "--threads", "1")
    answers = {}

    def fetch_fifo():
        try:
            answers["fifo"] = server.http("GET", "/ui/pipe.js")
        except OSError as e:
            answers["fifo"] = e

    t = threading.Thread(target=fetch_fifo, daemon=True)
    t.start()
    try:
        status, _, _ = server.http("GET", "/healthz")
        assert status == 200
        t.join(IO_TIMEOUT)
        assert not t.is_alive(), "the FIFO request was never answered"
        status, _, body = answers["fifo"]
        assert_json_error(status, body, 404)
    finally:
        # If the server did open the FIFO for reading, a writer that comes and goes sets it free.
        try:
            os.close(os.open(web_dir / "pipe.js", os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


def test_static_file_over_the_size_bound_is_refused(start_server, web_dir):
    (web_dir / "big.js").write_bytes(b"x" * 4096)
    server = start_server("--web-dir", str(web_dir), "--max-web-file-bytes", "2K")
    status, _, body = server.http("GET", "/ui/big.js")
    err = assert_json_error(status, body, 500)
    assert err["code"] == "file_too_large"
    assert server.http("GET", "/ui/assets/app.js")[0] == 200
