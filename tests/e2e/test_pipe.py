"""POST /api/workflows/{id}/streams/pipe: a chunked body becomes an AI output stream while it arrives."""

import asyncio
import http.client
import json
import socket

from awtest import IO_TIMEOUT, assert_json_error, connect_agent, recv_json_skip, run


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
