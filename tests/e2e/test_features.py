"""Optional features: the echo endpoint, permessage-deflate, and the history API."""

import asyncio
import http.client
import json

import pytest
import websockets

from awtest import assert_json_error, connect_agent, recv_json, recv_text, run, ws_connect


# ---- echo ----------------------------------------------------------------------------------------------


def test_echo_returns_text_and_binary_unchanged(start_server):
    server = start_server("--enable-echo")

    async def main():
        async with ws_connect(server, "/ws/echo") as ws:
            for msg in ["hello", "héllo ✓ 日本", "", "x" * 5000, '{"type":"ping"}']:
                await ws.send(msg)
                back = await asyncio.wait_for(ws.recv(), 15)
                assert isinstance(back, str) and back == msg, f"text echo changed {msg!r:.60} into {back!r:.60}"
            for msg in [bytes(range(256)), b"", b"\x00\xff" * 3000]:
                await ws.send(msg)
                back = await asyncio.wait_for(ws.recv(), 15)
                assert isinstance(back, bytes) and back == msg, f"binary echo changed {msg!r:.60} into {back!r:.60}"

    run(main())


def test_echo_is_404_without_the_flag(server):
    status, _, body = server.http("GET", "/ws/echo")
    assert_json_error(status, body, 404)

    async def main():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
            ws = await ws_connect(server, "/ws/echo")
            await ws.close()
        assert info.value.status_code == 404

    run(main())


# ---- compression ---------------------------------------------------------------------------------------


def negotiated(ws):
    header = ws.response_headers.get("Sec-WebSocket-Extensions", "")
    return header, [e.name for e in ws.extensions]


def test_compression_negotiated_and_events_correct(start_server):
    server = start_server("--compression")

    async def main():
        ws, hello = await connect_agent(server, "zip")  # websockets offers permessage-deflate by default
        try:
            header, names = negotiated(ws)
            assert "permessage-deflate" in header, f"no permessage-deflate in the response: {header!r}"
            assert "permessage-deflate" in names, names
            assert hello["agent_id"] == "zip"
            data = {"text": "the quick brown fox " * 500, "n": 1}
            assert server.publish("zip", "text", data) == 1
            ev = await recv_json(ws, what="a compressible event")
            assert ev["seq"] == 1 and ev["data"] == data
            # Client-to-server messages are compressed by the client: the server must inflate them.
            await ws.send(json.dumps({"type": "ping", "pad": "a" * 3000}))
            assert (await recv_json(ws))["type"] == "pong"
            for i in range(2, 12):
                server.publish("zip", "t", {"i": i})
            got = [await recv_json(ws) for _ in range(10)]
            assert [e["seq"] for e in got] == list(range(2, 12))
        finally:
            await ws.close()

    run(main())


def test_compression_and_plain_clients_together(start_server):
    server = start_server("--compression")

    async def main():
        zws, _ = await connect_agent(server, "mixed")
        pws, _ = await connect_agent(server, "mixed", compression=None)
        try:
            assert "permessage-deflate" in negotiated(zws)[1]
            assert negotiated(pws) == ("", []), "extension negotiated although the client offered none"
            raw = '{"type":"t","data":{"k": "v v v v v v v v v v v v v v v v"}}'
            status, _, _ = await asyncio.to_thread(server.post_event, "mixed", raw)
            assert status == 202
            for ws in (zws, pws):
                text = await recv_text(ws)
                assert '{"k": "v v v v v v v v v v v v v v v v"}' in text, text
        finally:
            await zws.close()
            await pws.close()

    run(main())


def test_no_compression_without_flag(server):
    async def main():
        ws, _ = await connect_agent(server, "plain")
        try:
            header, names = negotiated(ws)
            assert header == "" and names == [], f"extension negotiated without --compression: {header!r} {names}"
            server.publish("plain", "t", {"x": 1})
            ev = await recv_json(ws)
            assert ev["seq"] == 1 and ev["data"] == {"x": 1}
        finally:
            await ws.close()

    run(main())


# ---- history -------------------------------------------------------------------------------------------


def test_history_returns_envelopes(server):
    async def main():
        ws, _ = await connect_agent(server, "hist")
        try:
            for i in range(3):
                server.publish("hist", f"t{i}", {"i": i})
            live = [await recv_json(ws) for _ in range(3)]
        finally:
            await ws.close()
        return live

    live = run(main())
    status, headers, body = server.http("GET", "/api/agents/hist/events?since=0&limit=2")
    assert status == 200, body
    assert headers.get("content-type", "").startswith("application/json")
    events = body["events"]
    assert isinstance(events, list) and len(events) == 2, body
    assert events == live[:2], "history envelopes differ from what subscribers received"
    for e in events:
        assert set(e) == {"type", "agent_id", "seq", "ts", "data"}, e

    status, _, body = server.http("GET", "/api/agents/hist/events?since=2")
    assert status == 200
    assert body["events"] == live[2:], body

    status, _, body = server.http("GET", "/api/agents/hist/events?since=3")
    assert status == 200 and body["events"] == [], body

    status, _, body = server.http("GET", "/api/agents/never-published/events?since=0")
    assert status == 200 and body["events"] == [], body


def test_history_preserves_data_bytes(server):
    raw_data = '{"b": 1.50, "s": "héllo ✓ 日本"}'
    status, _, _ = server.post_event("histraw", '{"type":"t","data": ' + raw_data + "}")
    assert status == 202
    # Read the raw body to look at the bytes rather than the decoded value.
    conn = http.client.HTTPConnection(server.host, server.port, timeout=15)
    try:
        conn.request("GET", "/api/agents/histraw/events?since=0")
        raw = conn.getresponse().read().decode("utf-8")
    finally:
        conn.close()
    assert raw_data in raw, raw


@pytest.mark.parametrize(
    "query",
    ["since=abc", "since=-1", "since=", "limit=0", "limit=100000", "limit=abc", "limit=-3", "since=1.5"],
)
def test_history_bad_parameters_get_400(server, query):
    server.publish("hq")
    status, _, body = server.http("GET", f"/api/agents/hq/events?{query}")
    assert_json_error(status, body, 400)


def test_history_bad_agent_id_gets_400(server):
    status, _, body = server.http("GET", "/api/agents/a%20b/events?since=0")
    assert_json_error(status, body, 400)
