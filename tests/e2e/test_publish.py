"""POST /api/agents/{id}/events: fan-out, verbatim data, seq numbering, validation, keep-alive, pipelining."""

import asyncio
import http.client
import json

import pytest

from awtest import (
    TS_RE,
    RawHttp,
    apublish,
    assert_json_error,
    connect_agent,
    post_request_bytes,
    recv_json,
    recv_text,
    run,
)

ENVELOPE_KEYS = {"type", "agent_id", "seq", "ts", "data"}

# Written by hand, not by json.dumps: the server must pass these bytes through untouched
# (number spelling, spacing, non-ASCII characters as raw UTF-8).
HAND_DATA = '{"b": 1.50, "s": "héllo ✓ 日本"}'
HAND_BODY = '{"type":"progress","data": ' + HAND_DATA + "}"


def test_publish_fans_out_to_every_subscriber_of_the_agent_only(server):
    async def main():
        a = [await connect_agent(server, "agent-a") for _ in range(3)]
        b_ws, _ = await connect_agent(server, "agent-b")
        try:
            status, _, body = await asyncio.to_thread(server.post_event, "agent-a", HAND_BODY.encode("utf-8"))
            assert status == 202, body
            assert body == {"seq": 1}, body
            for ws, _ in a:
                text = await recv_text(ws, what="the event on agent-a")
                assert HAND_DATA in text, f"posted data not found verbatim in frame: {text!r}"
                ev = json.loads(text)
                assert set(ev) == ENVELOPE_KEYS, ev
                assert ev["type"] == "progress" and ev["agent_id"] == "agent-a" and ev["seq"] == 1
                assert TS_RE.match(ev["ts"]), ev["ts"]
                assert ev["data"] == {"b": 1.5, "s": "héllo ✓ 日本"}

            # agent-b saw nothing of agent-a: its first message is its own event, with its own seq 1.
            assert await apublish(server, "agent-b", "other", {"for": "b"}) == 1
            ev_b = await recv_json(b_ws, what="the event on agent-b")
            assert ev_b["agent_id"] == "agent-b" and ev_b["seq"] == 1 and ev_b["data"] == {"for": "b"}, ev_b

            # and agent-a's subscribers did not get agent-b's event: their next message is agent-a seq 2.
            assert await apublish(server, "agent-a", "t", {"n": 2}) == 2
            for ws, _ in a:
                ev = await recv_json(ws, what="the second event on agent-a")
                assert ev["agent_id"] == "agent-a" and ev["seq"] == 2 and ev["data"] == {"n": 2}, ev
        finally:
            for ws, _ in a:
                await ws.close()
            await b_ws.close()

    run(main())


def test_exactly_one_frame_per_event(server):
    async def main():
        ws, _ = await connect_agent(server, "one")
        try:
            for i in range(1, 6):
                assert await apublish(server, "one", "t", {"i": i}) == i
            got = [await recv_json(ws) for _ in range(5)]
            assert [e["seq"] for e in got] == [1, 2, 3, 4, 5]
            assert [e["data"]["i"] for e in got] == [1, 2, 3, 4, 5]
            # Nothing more: a ping is answered by a pong, not by a duplicate event.
            await ws.send('{"type":"ping"}')
            nxt = await recv_json(ws)
            assert nxt["type"] == "pong", f"extra frame after the 5 events: {nxt}"
        finally:
            await ws.close()

    run(main())


def test_seq_starts_at_1_per_agent_and_increments(server):
    assert [server.publish("s1") for _ in range(5)] == [1, 2, 3, 4, 5]
    assert [server.publish("s2") for _ in range(3)] == [1, 2, 3]
    assert server.publish("s1") == 6


def test_publish_response_shape(server):
    status, headers, body = server.post_event("shape", {"type": "t", "data": {"x": 1}})
    assert status == 202
    assert headers.get("content-type", "").startswith("application/json")
    assert body == {"seq": 1}


BAD_BODIES = {
    "malformed_json": b'{"type": "t", "data": {',
    "not_json": b"hello",
    "empty_body": b"",
    "top_level_array": b'[{"type":"t"}]',
    "missing_type": b'{"data": {"a": 1}}',
    "type_number": b'{"type": 5, "data": {}}',
    "type_null": b'{"type": null, "data": {}}',
    "type_object": b'{"type": {"t": 1}, "data": {}}',
    "data_array": b'{"type": "t", "data": [1, 2]}',
    "data_string": b'{"type": "t", "data": "x"}',
    "data_null": b'{"type": "t", "data": null}',
    "data_number": b'{"type": "t", "data": 3}',
    "trailing_garbage": b'{"type": "t", "data": {}} x',
    "invalid_utf8": b'{"type": "t", "data": {"s": "\xff\xfe"}}',
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_publish_gets_400_and_publishes_nothing(server, body):
    async def main():
        ws, _ = await connect_agent(server, "v")
        try:
            status, _, resp = await asyncio.to_thread(server.post_event, "v", body)
            assert_json_error(status, resp, 400)
            # Nothing went out and no seq was used: the next good publish is seq 1 and is the next frame.
            assert await apublish(server, "v", "good", {"ok": True}) == 1
            ev = await recv_json(ws, what="the good event")
            assert ev["type"] == "good" and ev["seq"] == 1, f"subscriber got {ev} after a rejected publish"
        finally:
            await ws.close()

    run(main())


def test_bad_agent_id_on_publish_gets_400(server):
    for agent in ["a%20b", "x" * 129, "a%2Fb"]:
        status, _, body = server.post_event(agent, {"type": "t", "data": {}})
        assert_json_error(status, body, 400)


def test_body_over_limit_gets_413_and_publishes_nothing(start_server):
    server = start_server("--max-body-bytes", "1024")

    async def main():
        ws, _ = await connect_agent(server, "big")
        try:
            big = json.dumps({"type": "t", "data": {"pad": "x" * 2000}}).encode()
            assert len(big) > 2000
            status, _, body = await asyncio.to_thread(server.post_event, "big", big)
            assert_json_error(status, body, 413)
            # Just under the limit is fine, and it is seq 1: the oversized one used no seq.
            ok = json.dumps({"type": "t", "data": {"pad": "y" * 900}}).encode()
            assert len(ok) <= 1024
            status, _, body = await asyncio.to_thread(server.post_event, "big", ok)
            assert status == 202 and body == {"seq": 1}, body
            ev = await recv_json(ws, what="the in-limit event")
            assert ev["seq"] == 1 and ev["data"]["pad"] == "y" * 900
        finally:
            await ws.close()

    run(main())


def test_keep_alive_serves_many_requests_on_one_connection(server):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=15)
    try:
        local = None
        seqs = []
        for i in range(5):
            conn.request("POST", "/api/agents/ka/events", body=json.dumps({"type": "t", "data": {"i": i}}),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            body = json.loads(resp.read())
            assert resp.status == 202, body
            seqs.append(body["seq"])
            assert conn.sock is not None, "server closed a keep-alive connection"
            port = conn.sock.getsockname()[1]
            assert local in (None, port), "http.client had to reconnect: keep-alive was not honoured"
            local = port
        # A bad request does not end a keep-alive connection either, and GETs work on it too.
        conn.request("POST", "/api/agents/ka/events", body=b'{"type": 1}', headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 400
        resp.read()
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        assert resp.status == 200
        resp.read()
        assert conn.sock is not None and conn.sock.getsockname()[1] == local
        assert seqs == [1, 2, 3, 4, 5]
    finally:
        conn.close()


def test_pipelined_requests_answered_in_order(server):
    conn = RawHttp(server.host, server.port)
    try:
        reqs = b"".join(
            post_request_bytes(server.host, server.port, "pipe", json.dumps({"type": "t", "data": {"i": i}}).encode())
            for i in range(3)
        )
        conn.send(reqs)  # all three in one write
        answers = [conn.read_response() for _ in range(3)]
        assert [a[0] for a in answers] == [202, 202, 202], answers
        assert [a[2]["seq"] for a in answers] == [1, 2, 3], answers
    finally:
        conn.close()
    # The history has them in the order they were sent.
    status, _, body = server.http("GET", "/api/agents/pipe/events?since=0")
    assert status == 200
    assert [e["data"]["i"] for e in body["events"]] == [0, 1, 2]


def test_pipelined_mixed_requests(server):
    """A GET and a bad POST between good POSTs: every answer comes back in request order."""
    conn = RawHttp(server.host, server.port)
    try:
        h, p = server.host, server.port
        conn.send(
            post_request_bytes(h, p, "mix", b'{"type":"t","data":{}}')
            + f"GET /healthz HTTP/1.1\r\nHost: {h}:{p}\r\n\r\n".encode()
            + post_request_bytes(h, p, "mix", b'{"type":7}')
            + post_request_bytes(h, p, "mix", b'{"type":"t","data":{}}')
        )
        answers = [conn.read_response() for _ in range(4)]
        assert [a[0] for a in answers] == [202, 200, 400, 202], answers
        assert answers[0][2]["seq"] == 1 and answers[3][2]["seq"] == 2
    finally:
        conn.close()


def test_session_message_types_cannot_be_published(server):
    for t in ["connected", "heartbeat", "snapshot", "error", "pong"]:
        status, _, body = server.post_event("reserved", {"type": t, "data": {}})
        assert_json_error(status, body, 400)
        assert body["error"]["code"] == "reserved_type", body
    assert server.publish("reserved") == 1  # nothing was published before
