"""HTTP abuse over raw sockets: request smuggling (Transfer-Encoding, Host), error bodies that echo client
bytes, and slowloris (a request head that never completes). Each answer is a JSON error; no request is
ever read out of another's body; no connection is held past the header timeout."""

import json
import socket
import time

import pytest

from awtest import IO_TIMEOUT, RawHttp, assert_json_error


def exchange(server, data: bytes, timeout: float = IO_TIMEOUT) -> bytes:
    """Sends `data`, then reads until the server closes (or `timeout`); returns every byte received."""
    s = socket.create_connection((server.host, server.port), timeout=timeout)
    try:
        s.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        else:
            pytest.fail(f"the server did not close the connection within {timeout}s; got {out!r:.500}")
        return out
    finally:
        s.close()


def responses(raw: bytes):
    """Splits the bytes of answers (Content-Length framed) into [(status, headers, body bytes)]."""
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, f"incomplete answer: {raw!r:.300}"
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        out.append((int(lines[0].split()[1]), headers, rest[:n]))
        raw = rest[n:]
    return out


def only_error(raw: bytes, status: int, code: str):
    answers = responses(raw)
    assert len(answers) == 1, f"expected one answer, got {[a[0] for a in answers]}: {raw!r:.500}"
    got_status, headers, body = answers[0]
    err = assert_json_error(got_status, json.loads(body.decode("utf-8")), status)
    assert err["code"] == code, body
    assert headers.get("connection") == "close", headers
    return err


STATS = b"GET /api/websocket/stats HTTP/1.1\r\nHost: localhost\r\n\r\n"


@pytest.mark.parametrize("coding", [b"gzip", b"chunked, gzip", b"identity", b"chunked\r\nTransfer-Encoding: gzip"])
def test_a_transfer_encoding_not_ending_in_chunked_is_refused_and_closes(server, coding):
    # Today's body would be read as a second request (the stats request smuggled in it).
    raw = exchange(
        server,
        b"POST /api/agents/smuggle/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: " + coding + b"\r\n\r\n" + STATS,
    )
    only_error(raw, 400, "bad_transfer_encoding")
    status, _, res = server.http("GET", "/api/agents/smuggle/events")
    assert status == 200 and res["events"] == [], res


def test_a_transfer_encoding_with_a_content_length_is_refused(server):
    raw = exchange(
        server,
        b"POST /api/agents/smuggle/events HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + STATS,
    )
    only_error(raw, 400, "bad_transfer_encoding")


def test_a_chunked_http10_request_is_served_and_then_the_connection_closes(server):
    body = b'{"type":"note","data":{}}'
    raw = exchange(
        server,
        b"POST /api/agents/old/events HTTP/1.0\r\nConnection: keep-alive\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body) + STATS,
    )
    answers = responses(raw)
    assert [a[0] for a in answers] == [202], raw
    assert answers[0][1].get("connection") == "close"


def test_chunked_bodies_still_work(server):
    body = b'{"type":"note","data":{}}'
    conn = RawHttp(server.host, server.port)
    try:
        conn.send(
            b"POST /api/agents/chunky/events HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        )
        status, _, res = conn.read_response()
        assert status == 202, res
        conn.send(b"GET /api/agents/chunky/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status, _, res = conn.read_response()
        assert status == 200 and [e["type"] for e in res["events"]] == ["note"], res
    finally:
        conn.close()


@pytest.mark.parametrize(
    "head",
    [b"GET /api/websocket/stats HTTP/1.1\r\n\r\n", b"GET /api/websocket/stats HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"],
    ids=["no-host", "two-hosts"],
)
def test_an_http11_request_needs_exactly_one_host(server, head):
    only_error(exchange(server, head), 400, "bad_host")


def test_http10_without_host_is_served(server):
    raw = exchange(server, b"GET /api/websocket/stats HTTP/1.0\r\n\r\n")
    answers = responses(raw)
    assert [a[0] for a in answers] == [200], raw


def test_a_websocket_upgrade_without_host_is_refused(server):
    raw = exchange(
        server,
        b"GET /ws/agents/nohost HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    only_error(raw, 400, "bad_host")


@pytest.mark.parametrize(
    "method,path,status",
    [
        (b"GET", b"/nope/\xff\xfe%FF", 404),
        (b"GET", b"/api/\xc3(/%C3%28", 404),
        (b"GET", b"/api/agents/a/events/\xed\xa0\x80", 404),
        (b"DELETE", b"/api/agents/\xff/events", 405),
        (b"PUT", b"/api/workflows/\xff\xff/streams/pipe", 405),
    ],
    ids=["raw-ff", "bad-continuation", "surrogate", "405-raw-ff", "405-pipe"],
)
def test_error_bodies_are_utf8_json_whatever_the_path_bytes(server, method, path, status):
    raw = exchange(server, method + b" " + path + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    answers = responses(raw)
    assert len(answers) == 1, raw
    got_status, _, body = answers[0]
    text = body.decode("utf-8")  # raises on invalid UTF-8
    err = assert_json_error(got_status, json.loads(text), status)
    # The path is still recognisable: its non-UTF-8 bytes are shown percent-encoded.
    assert "%FF" in err["message"] or "%C3" in err["message"] or "%ED" in err["message"], err


def test_a_valid_utf8_path_is_echoed_as_is(server):
    raw = exchange(server, "GET /caf\u00e9 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
    (status, _, body), = responses(raw)
    err = assert_json_error(status, json.loads(body.decode("utf-8")), 404)
    assert "/caf\u00e9" in err["message"], err


# --------------------------------------------------------------------------------------------------------
# Slowloris: --header-timeout
# --------------------------------------------------------------------------------------------------------


def read_until_closed(sock, timeout: float) -> bytes:
    sock.settimeout(timeout)
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        except ConnectionResetError:
            return out
        if not chunk:
            return out
        out += chunk
    pytest.fail(f"the connection was not closed within {timeout}s; got {out!r:.300}")


def test_a_head_trickling_in_is_answered_408_and_closed_at_the_header_timeout(start_server):
    server = start_server("--header-timeout", "1")
    # One sends part of a head and then one byte now and then (each well inside the 60 s idle timeout);
    # one sends nothing at all; one completes its request in time and stays open (keep-alive).
    opened = time.monotonic()  # before the accept, from which the first head is due
    slow = socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT)
    silent = socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT)
    keep = RawHttp(server.host, server.port)
    try:
        keep.send(STATS)
        assert keep.read_response()[0] == 200
        slow.sendall(b"GET /api/websocket/stats HTTP/1.1\r\nHost: localhost\r\n")
        slow.setblocking(False)
        closed_at = None
        got = b""
        deadline = time.monotonic() + IO_TIMEOUT
        while closed_at is None and time.monotonic() < deadline:
            try:
                slow.sendall(b"X-Slow: 1\r\n")
            except (BrokenPipeError, ConnectionResetError, BlockingIOError):
                pass
            try:
                chunk = slow.recv(65536)
                if not chunk:
                    closed_at = time.monotonic()
                got += chunk
            except BlockingIOError:
                pass
            except ConnectionResetError:
                closed_at = time.monotonic()
            time.sleep(0.1)  # pacing only: the trickle's pace, not a wait for the server
        assert closed_at is not None, f"the trickling connection was not closed within {IO_TIMEOUT}s"
        assert closed_at - opened >= 1.0, "closed before the header timeout"
        if got:  # the 408 may be lost to a reset when our own bytes were still unread
            only_error(got, 408, "request_timeout")
        silent_got = read_until_closed(silent, IO_TIMEOUT)
        only_error(silent_got, 408, "request_timeout")
        # The keep-alive connection, idle for longer than the header timeout between requests, is still open.
        keep.send(STATS)
        assert keep.read_response()[0] == 200
    finally:
        slow.close()
        silent.close()
        keep.close()


def test_many_slow_heads_are_all_closed_and_the_server_keeps_serving(start_server):
    server = start_server("--header-timeout", "1")
    socks = []
    try:
        for _ in range(50):
            s = socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT)
            s.sendall(b"POST /api/agents/a/events HTTP/1.1\r\nHost: localhost\r\n")
            socks.append(s)
        for s in socks:
            only_error(read_until_closed(s, IO_TIMEOUT), 408, "request_timeout")
        status, _, _ = server.http("GET", "/api/websocket/stats")
        assert status == 200
    finally:
        for s in socks:
            s.close()


def test_header_timeout_must_be_positive(start_server, tmp_path):
    import subprocess

    from awtest import binary_path, clean_env

    p = subprocess.run(
        [binary_path(), "--header-timeout", "0", "--data-dir", str(tmp_path / "d")],
        env=clean_env(),
        capture_output=True,
        timeout=IO_TIMEOUT,
    )
    assert p.returncode == 2 and b"header-timeout" in p.stderr, p
