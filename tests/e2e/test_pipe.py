"""POST /api/workflows/{id}/streams/pipe: a chunked body becomes an AI output stream while it arrives."""

import asyncio
import http.client
import json
import random
import socket
import threading

import pytest

from awtest import IO_TIMEOUT, RSS_SCALE, RawHttp, assert_json_error, connect_agent, recv_json_skip, run
import redis_mode


def create_workflow(server, agent):
    status, _, body = server.http("POST", "/api/workflows", json.dumps({"agent_id": agent, "name": "pipe"}),
                                  {"Content-Type": "application/json"})
    assert status == 201, body
    return body["id"]


def open_pipe(server, workflow_id, content_type="text/plain"):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=IO_TIMEOUT)
    conn.putrequest("POST", f"/api/workflows/{workflow_id}/streams/pipe")
    conn.putheader("Content-Type", content_type)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    return conn


def send_chunk(conn, data: bytes):
    conn.send(b"%x\r\n%s\r\n" % (len(data), data))


async def next_stream_event(ws):
    while True:
        ev = await recv_json_skip(ws, what="a stream event")
        if ev["type"] == "stream":
            return ev


def test_text_pieces_reach_subscribers_before_the_body_ends(server):
    wf = create_workflow(server, "pipe1")

    async def scenario():
        ws, _ = await connect_agent(server, "pipe1")
        conn = await asyncio.to_thread(open_pipe, server, wf)
        started = await next_stream_event(ws)
        assert started["data"].get("started") is True
        # Each piece must arrive while the body is still open: the next one is sent only after.
        # "ö" is split across two pieces: the server waits for the whole character.
        pieces = [b"Hel", b"lo w\xc3", b"\xb6rld", b" \xe2\x9c\x93"]
        expected = ["Hel", "lo w", "\u00f6rld", " \u2713"]
        for piece, want in zip(pieces, expected):
            await asyncio.to_thread(send_chunk, conn, piece)
            ev = await next_stream_event(ws)
            assert ev["data"]["delta"] == want, ev
        indexes_done = [0, 1, 2, 3]
        await asyncio.to_thread(conn.send, b"0\r\n\r\n")
        resp = await asyncio.to_thread(conn.getresponse)
        body = json.loads(await asyncio.to_thread(resp.read))
        assert resp.status == 200, body
        assert body["status"] == "completed" and body["deltas"] == 4 and body["length"] == len("Hello w\u00f6rld \u2713")
        end = await next_stream_event(ws)
        assert end["data"]["done"] is True and end["data"]["status"] == "completed"
        assert indexes_done == list(range(body["deltas"]))
        await ws.close()

    run(scenario())


def test_ndjson_lines_are_deltas(server):
    wf = create_workflow(server, "pipe2")

    async def scenario():
        ws, _ = await connect_agent(server, "pipe2")
        conn = await asyncio.to_thread(open_pipe, server, wf, "application/x-ndjson")
        await next_stream_event(ws)  # started
        # Two lines in one chunk, one line split over two chunks.
        await asyncio.to_thread(send_chunk, conn, b'{"delta":"a"}\n{"delta":"b"}\n{"del')
        await asyncio.to_thread(send_chunk, conn, b'ta":"c"}\n')
        got = [(await next_stream_event(ws))["data"]["delta"] for _ in range(3)]
        assert got == ["a", "b", "c"]
        await asyncio.to_thread(conn.send, b"0\r\n\r\n")
        resp = await asyncio.to_thread(conn.getresponse)
        assert resp.status == 200
        await asyncio.to_thread(resp.read)
        await ws.close()

    run(scenario())


def test_broken_connection_ends_the_stream_as_failed(server):
    wf = create_workflow(server, "pipe3")

    async def scenario():
        ws, _ = await connect_agent(server, "pipe3")
        conn = await asyncio.to_thread(open_pipe, server, wf)
        await next_stream_event(ws)
        await asyncio.to_thread(send_chunk, conn, b"partial")
        assert (await next_stream_event(ws))["data"]["delta"] == "partial"
        conn.sock.shutdown(socket.SHUT_RDWR)
        conn.close()
        end = await next_stream_event(ws)
        assert end["data"]["done"] is True and end["data"]["status"] == "failed", end
        await ws.close()

    run(scenario())


def test_pipe_errors(server):
    status, _, body = server.http("POST", "/api/workflows/wf_nope/streams/pipe", "x", {"Content-Type": "text/plain"})
    assert_json_error(status, body, 404)
    wf = create_workflow(server, "pipe4")
    status, _, body = server.http("POST", f"/api/workflows/{wf}/streams/pipe", "x", {"Content-Type": "image/png"})
    assert_json_error(status, body, 415)
    status, _, body = server.http("POST", f"/api/workflows/{wf}/streams/pipe", "not json\n",
                                  {"Content-Type": "application/x-ndjson"})
    assert_json_error(status, body, 400)
    assert body["error"]["code"] == "bad_ndjson"
    status, _, body = server.http("GET", f"/api/workflows/{wf}/streams/pipe")
    assert_json_error(status, body, 405)
    # A plain (not chunked) body works too, and the server keeps serving on the connection.
    status, _, body = server.http("POST", f"/api/workflows/{wf}/streams/pipe", "whole body", {"Content-Type": "text/plain"})
    assert status == 200 and body["status"] == "completed" and body["deltas"] == 1


# --------------------------------------------------------------------------------------------------------
# A fast publisher, the stream's limit, empty and malformed bodies (issue 13, items 4 and 5)
# --------------------------------------------------------------------------------------------------------

MAX_STREAM_TEXT = 1 << 20  # workflow/limits.hpp: text kept per stream


def stream_text(size: int, seed: int) -> bytes:
    """`size` bytes of UTF-8 mixing 1-, 2- and 3-byte characters (so pieces get cut inside them)."""
    rng = random.Random(seed)
    words = ["token ", "h\u00e9llo ", "w\u00f6rld ", "\u2713 ", "agent ", "\u00fc", "\n"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(words).encode()
    while len(out) > size:  # trim back to a character boundary at or under `size`
        out.pop()
    out = bytes(out)
    while True:
        try:
            out.decode("utf-8")
            break
        except UnicodeDecodeError:
            out = out[:-1]
    return out + b"x" * (size - len(out))


def chunked(body: bytes, seed: int) -> bytes:
    """`body` as a chunked encoding of pieces of random sizes (1 byte to 20 KB), cut anywhere."""
    rng = random.Random(seed)
    out = bytearray()
    i = 0
    while i < len(body):
        n = rng.choice([1, 7, 500, 4096, 9000, 20000])
        piece = body[i : i + n]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
        i += n
    return bytes(out) + b"0\r\n\r\n"


def pipe_head(server, workflow_id, extra=b"") -> bytes:
    return (
        f"POST /api/workflows/{workflow_id}/streams/pipe HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
        f"Content-Type: text/plain\r\n"
    ).encode() + extra


def send_all_then_answer(server, data: bytes):
    """Writes `data` in one go (as fast as the socket takes it) and reads the one answer."""
    conn = RawHttp(server.host, server.port, timeout=60)
    try:
        conn.send(data)
        return conn.read_response()
    finally:
        conn.close()


async def collect_stream(ws, what="the stream's end"):
    """Concatenates the deltas of the first stream seen until its end event; returns (text, end data)."""
    text = []
    while True:
        ev = await recv_json_skip(ws, timeout=60, what=what)
        if ev["type"] != "stream":
            continue
        data = ev["data"]
        if data.get("done"):
            return "".join(text), data
        if "delta" in data:
            text.append(data["delta"])


def test_a_fast_publisher_loses_nothing_up_to_the_stream_limit(server):
    # 640 KB sent in one write once lost the connection at the first pause for backpressure; here the
    # whole 1 MiB a stream may hold, in pieces cut anywhere (inside characters too).
    wf = create_workflow(server, "pipe-fast")
    body = stream_text(MAX_STREAM_TEXT, seed=1)

    async def scenario():
        ws, _ = await connect_agent(server, "pipe-fast")
        request = pipe_head(server, wf, b"Transfer-Encoding: chunked\r\n\r\n") + chunked(body, seed=2)
        # The subscriber's frames wait in its client meanwhile (no queue limit there).
        status, _, res = await asyncio.to_thread(send_all_then_answer, server, request)
        text, end = await collect_stream(ws)
        assert status == 200, res
        assert res["status"] == "completed" and res["bytes"] == len(body), res
        assert end["status"] == "completed", end
        assert text.encode() == body, "the deltas concatenated differ from the body sent"
        await ws.close()

    run(scenario())
    # The connection survived: the server still answers, and it holds no more than a bounded amount.
    status, _, _ = server.http("GET", "/api/websocket/stats")
    assert status == 200


class RssPeak:
    """Samples the server's RSS in a thread; `peak_kb` is the largest value seen."""

    def __init__(self, server):
        self.server = server
        self.peak_kb = server.rss_kb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.01):
            self.peak_kb = max(self.peak_kb, self.server.rss_kb())

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, self.server.rss_kb())


@redis_mode.xfail('ending a 1 MiB stream costs one more copy of its text (the Redis command), RSS 5.1-5.9 MiB against a 5 MiB bound; not strict: the figure is near the bound', strict=False)
def test_a_fast_publisher_past_the_stream_limit_gets_a_clear_error(server):
    # 1.5 MiB of text, then 32 MiB more: the stream keeps the first MiB, the rest is read and dropped
    # without the server holding it, and the publisher gets its answer on a connection that stayed up.
    wf = create_workflow(server, "pipe-over")
    text = stream_text(3 * MAX_STREAM_TEXT // 2, seed=3)
    filler = b"x" * (32 << 20)

    async def scenario():
        ws, _ = await connect_agent(server, "pipe-over")
        conn = RawHttp(server.host, server.port, timeout=60)
        try:
            head = pipe_head(server, wf, b"Transfer-Encoding: chunked\r\n\r\n")
            await asyncio.to_thread(conn.send, head + chunked(text, seed=4)[: -len(b"0\r\n\r\n")])
            # The stream fills up to its limit (pieces are at most 16 KiB, so it holds more than this).
            seen = []
            while sum(len(d.encode()) for d in seen) < MAX_STREAM_TEXT - 16 * 1024:
                ev = await next_stream_event(ws)
                assert not ev["data"].get("done"), ev
                seen.append(ev["data"].get("delta", ""))
            # What the server holds now is the stream's own; the dropped rest of the body adds nothing.
            before = server.rss_kb()
            pieces = (filler[i : i + 65536] for i in range(0, len(filler), 65536))
            filler_chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
            with RssPeak(server) as rss:
                await asyncio.to_thread(conn.send, filler_chunks + b"0\r\n\r\n")
                status, _, res = await asyncio.to_thread(conn.read_response)
        finally:
            conn.close()
        err = assert_json_error(status, res, 409)
        assert err["code"] == "stream_too_long" and err["max_bytes"] == MAX_STREAM_TEXT, res
        rest, end = await collect_stream(ws)
        assert end["status"] == "failed", end
        # What was delivered is the body's start, in order, without a hole, within the limit.
        got = ("".join(seen) + rest).encode()
        assert MAX_STREAM_TEXT - 16 * 1024 <= len(got) <= MAX_STREAM_TEXT and text.startswith(got)
        grown_kb = rss.peak_kb - before
        # 4 MiB, plus the stream's own text once more: its end writes the text it kept (issue 17).
        bound_kb = (4 * 1024 + MAX_STREAM_TEXT // 1024) * RSS_SCALE
        assert grown_kb < bound_kb, f"RSS grew {grown_kb} KiB while 32 MiB past the limit were dropped"
        await ws.close()

    run(scenario())


def test_a_plain_body_of_the_stream_limit_in_one_write(server):
    wf = create_workflow(server, "pipe-plain")
    body = stream_text(MAX_STREAM_TEXT, seed=5)
    request = pipe_head(server, wf, b"Content-Length: %d\r\n\r\n" % len(body)) + body
    status, _, res = send_all_then_answer(server, request)
    assert status == 200 and res["status"] == "completed" and res["bytes"] == len(body), res
    status, _, got = server.http("GET", f"/api/streams/{res['stream_id']}")
    assert status == 200 and got["bytes"] == len(body), got


@pytest.mark.parametrize(
    "framing", [b"Content-Length: 0\r\n\r\n", b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b"\r\n"],
    ids=["content-length-0", "last-chunk-only", "no-body"],
)
def test_an_empty_body_is_an_empty_completed_stream_answered_at_once(server, framing):
    wf = create_workflow(server, "pipe-empty")
    conn = RawHttp(server.host, server.port)
    try:
        conn.send(pipe_head(server, wf, framing))
        status, _, res = conn.read_response()
        assert status == 200, res
        assert res["status"] == "completed" and res["deltas"] == 0 and res["length"] == 0, res
        # The connection is still usable for the next request.
        conn.send(f"GET /api/workflows/{wf} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        status, _, _ = conn.read_response()
        assert status == 200
    finally:
        conn.close()


@pytest.mark.parametrize(
    "body",
    [b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhello world\r\n0\r\n\r\n", b"5\r\nhello\r\n-1\r\n\r\n"],
    ids=["bad-size", "size-mismatch", "negative-size"],
)
def test_a_malformed_chunk_gets_400_and_the_stream_fails(server, body):
    wf = create_workflow(server, "pipe-bad")

    async def scenario():
        ws, _ = await connect_agent(server, "pipe-bad")
        request = pipe_head(server, wf, b"Transfer-Encoding: chunked\r\n\r\n") + body
        status, headers, res = await asyncio.to_thread(send_all_then_answer, server, request)
        err = assert_json_error(status, res, 400)
        assert err["code"] == "bad_chunk", res
        assert headers.get("connection") == "close"
        _, end = await collect_stream(ws)
        assert end["status"] == "failed", end
        await ws.close()

    run(scenario())


def test_an_ndjson_line_past_its_limit_is_refused_and_the_stream_fails(server):
    wf = create_workflow(server, "pipe-line")

    async def scenario():
        ws, _ = await connect_agent(server, "pipe-line")
        # One line that never ends, past the 1 MiB a line may take, then more: refused, the rest dropped.
        body = b'{"delta":"ok"}\n{"delta":"' + b"y" * (2 << 20)
        request = (
            f"POST /api/workflows/{wf}/streams/pipe HTTP/1.1\r\nHost: localhost\r\n"
            f"Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
        ).encode() + chunked(body, seed=6)
        status, _, res = await asyncio.to_thread(send_all_then_answer, server, request)
        err = assert_json_error(status, res, 400)
        assert err["code"] == "bad_ndjson", res
        text, end = await collect_stream(ws)
        assert text == "ok" and end["status"] == "failed", (text, end)
        await ws.close()

    run(scenario())


def test_a_pipe_still_open_at_shutdown_ends_and_the_server_exits_cleanly(server):
    # The session may be waiting for its sink (reading paused) or reading: neither may keep the server
    # (or, under AddressSanitizer, a leak) alive.
    wf = create_workflow(server, "pipe-stop")

    async def scenario():
        ws, _ = await connect_agent(server, "pipe-stop")
        conn = RawHttp(server.host, server.port, timeout=60)
        try:
            body = stream_text(MAX_STREAM_TEXT // 2, seed=7)
            await asyncio.to_thread(conn.send, pipe_head(server, wf, b"Transfer-Encoding: chunked\r\n\r\n")
                                    + chunked(body, seed=8)[: -len(b"0\r\n\r\n")])
            first = await next_stream_event(ws)
            assert first["data"].get("started") is True
            await next_stream_event(ws)  # a delta: the body is being taken
            rc, took = await asyncio.to_thread(server.stop)
            assert rc == 0 and took < 5, (rc, took)
        finally:
            conn.close()
        await ws.close()

    run(scenario())
