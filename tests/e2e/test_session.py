"""A subscription's life: heartbeats, idle timeout, client messages, message size and UTF-8 limits."""

import asyncio
import json
import time

from awtest import (
    IO_TIMEOUT,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    RawWebSocket,
    await_closed,
    connect_agent,
    recv_json,
    run,
    wait_until,
)

HB_FLAGS = ("--heartbeat-interval", "0.5", "--idle-timeout", "2")
IDLE_TIMEOUT = 2.0


def test_heartbeat_envelopes_keep_a_responsive_client_open(start_server):
    """A websockets client (answers pings automatically) gets heartbeat envelopes and outlives the idle
    timeout, because its pongs count as activity. The proof that the idle check ran late enough is a
    marker: a silent raw client that connected after it is closed as idle first."""
    server = start_server(*HB_FLAGS)

    async def main():
        ws, _ = await connect_agent(server, "hb", ping_interval=None)
        try:
            silent = RawWebSocket(server, "/ws/agents/hb-silent")
            marker = asyncio.create_task(asyncio.to_thread(silent.read_until_close, IDLE_TIMEOUT + 20))
            beats = 0
            while not (marker.done() and beats >= 3):
                msg = await recv_json(ws, timeout=IO_TIMEOUT, what="a heartbeat")
                assert msg["type"] == "heartbeat", f"unexpected frame {msg}"
                assert msg["agent_id"] == "hb" and isinstance(msg.get("ts"), str), msg
                beats += 1
            code, _, _ = await marker
            silent.close()
            assert code == 1001, f"the silent marker client closed with {code}, expected 1001"
            # Still open after the idle check that closed the marker.
            await ws.send('{"type":"ping"}')
            while True:
                msg = await recv_json(ws, timeout=IO_TIMEOUT, what="the pong")
                if msg["type"] != "heartbeat":
                    break
            assert msg["type"] == "pong", msg
        finally:
            await ws.close()
        assert server.stats()["connections"]["timed_out"] == 1, "only the silent marker times out"

    run(main())


def test_server_sends_ping_frames_and_pongs_keep_raw_client_alive(start_server):
    server = start_server(*HB_FLAGS)
    c = RawWebSocket(server, "/ws/agents/raw-hb")
    try:
        pings = 0
        texts = []
        beats = lambda: sum(1 for t in texts if t["type"] == "heartbeat")  # noqa: E731
        # Until three pings and three heartbeats came and the idle timeout has long passed: conditions,
        # not a count expected in a fixed time.
        while pings < 3 or beats() < 3 or time.monotonic() - c.started_at < IDLE_TIMEOUT + 1.5:
            assert time.monotonic() - c.started_at < 30, f"{pings} pings, {beats()} heartbeats in 30 s"
            frame = c.recv_frame(timeout=IO_TIMEOUT)
            assert frame is not None, "server closed a client that answers every ping"
            _, op, payload = frame
            assert op != OP_CLOSE, f"server closed a client that answers every ping: {payload!r}"
            if op == OP_PING:
                pings += 1
                c.send_frame(0xA, payload)
            elif op == OP_TEXT:
                texts.append(json.loads(payload))
        assert texts[0]["type"] == "connected"
        c.send_close(1000)
    finally:
        c.close()
    assert server.stats()["connections"]["timed_out"] == 0


def test_silent_client_is_closed_after_idle_timeout_and_counted(start_server):
    server = start_server(*HB_FLAGS)
    before = server.stats()["connections"]["timed_out"]
    c = RawWebSocket(server, "/ws/agents/silent")
    try:
        code, texts, _ = c.read_until_close(timeout=IDLE_TIMEOUT + 10, answer_pings=False)
        elapsed = time.monotonic() - c.started_at  # the server's idle clock cannot start before this
        assert json.loads(texts[0])["type"] == "connected"
        assert elapsed >= IDLE_TIMEOUT - 0.05, f"closed after {elapsed:.2f}s, before the {IDLE_TIMEOUT}s idle timeout"
        assert code is not None, "connection dropped without a close frame"
        assert code == 1001, f"idle close code {code}, expected 1001 (going away)"
        c.send_close(1000)
    finally:
        c.close()
    wait_until(lambda: server.stats()["connections"]["timed_out"] == before + 1, 10, "timed_out to increase")
    wait_until(lambda: server.stats()["connections"]["live"] == 0, 10, "live connections to drop to 0")


def test_client_ping_gets_pong_and_bad_messages_get_error(server):
    async def main():
        ws, _ = await connect_agent(server, "chat")
        try:
            await ws.send('{"type":"ping"}')
            pong = await recv_json(ws, what="pong")
            assert pong["type"] == "pong" and pong["agent_id"] == "chat", pong

            for bad, why in [
                ("{not json", "malformed JSON"),
                ('{"type":"dance"}', "unknown type"),
                ("[1,2]", "not an object"),
                ('{"type":5}', "non-string type"),
                ("", "empty message"),
            ]:
                await ws.send(bad)
                err = await recv_json(ws, what=f"the error for {why}")
                assert err["type"] == "error", f"{why}: expected an error envelope, got {err}"
                assert isinstance(err["data"].get("code"), str) and err["data"]["code"], err
                assert isinstance(err["data"].get("message"), str) and err["data"]["message"], err
                # The connection stays open and working.
                await ws.send('{"type":"ping"}')
                pong = await recv_json(ws, what=f"pong after {why}")
                assert pong["type"] == "pong", f"after {why}: {pong}"

            # A binary message is not a protocol violation either: an error envelope, then business as usual.
            await ws.send(b'{"type":"ping"}')
            err = await recv_json(ws, what="the error for a binary message")
            assert err["type"] == "error", err
            await ws.send('{"type":"ping"}')
            assert (await recv_json(ws))["type"] == "pong"

            # And events still arrive.
            server.publish("chat", "t", {"still": "here"})
            ev = await recv_json(ws, what="an event after the errors")
            assert ev["seq"] == 1 and ev["data"] == {"still": "here"}
        finally:
            await ws.close()

    run(main())


def test_message_over_limit_closes_with_1009(start_server):
    server = start_server("--max-message-bytes", "1024")

    async def main():
        ws, _ = await connect_agent(server, "big")
        # Exactly at the limit is allowed.
        at_limit = '{"type":"ping","pad":"' + "x" * (1024 - len('{"type":"ping","pad":""}')) + '"}'
        assert len(at_limit) == 1024
        await ws.send(at_limit)
        assert (await recv_json(ws, what="pong to a message at the limit"))["type"] == "pong"
        # Over it: close 1009.
        await ws.send('{"type":"ping","pad":"' + "x" * 2000 + '"}')
        code = await await_closed(ws)
        assert code == 1009, f"close code {code} ({ws.close_reason!r}), expected 1009"

    run(main())
    # Other clients are unaffected.
    assert server.publish("big") == 1


def test_fragmented_message_over_limit_closes_with_1009(start_server):
    server = start_server("--max-message-bytes", "1024")
    c = RawWebSocket(server, "/ws/agents/frag")
    try:
        c.send_frame(OP_TEXT, b"x" * 600, fin=False)
        c.send_frame(0x0, b"x" * 600, fin=True)
        code, _, _ = c.read_until_close(timeout=15)
        assert code == 1009, f"close code {code}, expected 1009"
    finally:
        c.close()


def test_invalid_utf8_text_closes_with_1007(server):
    c = RawWebSocket(server, "/ws/agents/utf8")
    try:
        c.send_frame(OP_TEXT, b'{"type":"ping","s":"\xc3\x28\xff"}')
        code, texts, _ = c.read_until_close(timeout=15)
        assert json.loads(texts[0])["type"] == "connected"
        assert code == 1007, f"close code {code}, expected 1007"
        c.send_close(1000)
    finally:
        c.close()
    wait_until(lambda: server.stats()["connections"]["live"] == 0, 10, "the closed connection to be gone")
    assert server.http("GET", "/healthz")[0] == 200


def test_invalid_utf8_split_across_fragments_closes_with_1007(server):
    c = RawWebSocket(server, "/ws/agents/utf8frag")
    try:
        # A valid lead byte at the end of the first fragment, an invalid continuation in the second.
        c.send_frame(OP_TEXT, b'{"type":"ping","s":"\xe2', fin=False)
        c.send_frame(0x0, b'\x28\xa1"}', fin=True)
        code, _, _ = c.read_until_close(timeout=15)
        assert code == 1007, f"close code {code}, expected 1007"
    finally:
        c.close()


def test_unmasked_client_frame_is_a_protocol_error(server):
    c = RawWebSocket(server, "/ws/agents/nomask")
    try:
        c.send_frame(OP_TEXT, b'{"type":"ping"}', mask=False)
        code, _, _ = c.read_until_close(timeout=15)
        assert code == 1002, f"close code {code}, expected 1002 (protocol error)"
    finally:
        c.close()


def test_client_close_is_answered_and_counted(server):
    async def main():
        ws, _ = await connect_agent(server, "bye")
        wait_until(lambda: server.stats()["connections"]["live"] == 1, 10, "live == 1")
        await ws.close(1000, "done")
        assert ws.close_code == 1000, ws.close_code

    run(main())
    s = wait_until(lambda: (lambda st: st if st["connections"]["live"] == 0 else None)(server.stats()), 10, "live == 0")
    assert s["connections"]["closed"] == 1 and s["connections"]["accepted"] == 1, s["connections"]
