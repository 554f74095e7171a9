"""WebSocket clients that try to hurt the server: a ping flood and a snapshot-request burst that never read,
a server stall the clients did not cause, an unknown message type cut inside a character.

Each measures what it bounds (the server's RSS from /proc) or checks exactly what a strict client reads.
"""

import asyncio
import json
import signal
import socket
import struct
import time

import websockets

from awtest import (
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RSS_SCALE,
    RawWebSocket,
    connect_agent,
    recv_json_skip,
    run,
    wait_until,
)

MiB = 1024


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client frame masked with the all-zero key (valid, and the payload stays as it is): fast to repeat."""
    assert len(payload) < 126
    return struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload)) + b"\0\0\0\0" + payload


def send_until_blocked(ws: RawWebSocket, data: bytes, chunk: int = 256 * 1024, stall: float = 3.0) -> int:
    """Sends `data` without reading; stops when the server stops taking it for `stall` seconds or the
    connection ends. Returns the bytes the kernel accepted."""
    ws.sock.settimeout(stall)
    sent = 0
    try:
        while sent < len(data):
            sent += ws.sock.send(data[sent : sent + chunk])
    except (socket.timeout, OSError):
        pass
    return sent


def test_ping_flood_without_reading_is_bounded_and_dropped_as_slow(start_server):
    """Issue 13.1: every pong counts against --max-queue-bytes; past it the client is closed as slow."""
    server = start_server("--max-queue-bytes", "1M")
    base = server.rss_kb()
    before = server.stats()["connections"]["dropped_slow"]
    flooder = RawWebSocket(server, "/ws/agents/flood", rcvbuf=4096)
    ping = masked_frame(OP_PING, b"p" * 125)
    # ~40 MB of pings: unbounded, their pongs (and what holds each) took well over 100 MB of RSS.
    sent = send_until_blocked(flooder, ping * (40 * 1024 * 1024 // len(ping)))
    wait_until(
        lambda: server.stats()["connections"]["dropped_slow"] > before, 30, "the flooder to be dropped as slow"
    )
    grown = server.rss_kb() - base
    assert grown < 48 * MiB * RSS_SCALE, f"RSS grew by {grown} KiB after {sent} bytes of pings"
    flooder.close()
    wait_until(lambda: server.stats()["connections"]["live"] == 0, 30, "the flooder to be gone")
    # Once it has left, nothing of it stays at a pathological level, and the server still serves others.
    assert server.rss_kb() - base < 48 * MiB * RSS_SCALE

    async def still_serves():
        ws, hello = await connect_agent(server, "flood")
        await ws.send(json.dumps({"type": "ping"}))
        assert (await recv_json_skip(ws))["type"] == "pong"
        await ws.close()

    run(still_serves())


def test_a_non_reading_ping_flood_is_not_read_once_dropped(start_server):
    """Once over its limit the server stops reading a client: its sends block, and the socket is closed by
    the close deadline rather than pongs being built for everything it sends."""
    server = start_server("--max-queue-bytes", "256K")
    flooder = RawWebSocket(server, "/ws/agents/flood2", rcvbuf=4096)
    ping = masked_frame(OP_PING, b"q" * 125)
    sent = send_until_blocked(flooder, ping * (64 * 1024 * 1024 // len(ping)), stall=2.0)
    assert sent < 48 * 1024 * 1024, f"the server kept reading {sent} bytes from a client it had dropped"
    wait_until(lambda: server.stats()["connections"]["dropped_slow"] >= 1, 30, "the flooder to be dropped")
    flooder.close()


def big_snapshot_agent(server, agent: str, target_bytes: int) -> int:
    """Creates workflows with large metadata on `agent` until its snapshot is about `target_bytes`, within
    whatever bounds the server sets; returns the snapshot's size."""
    piece = 60 * 1024  # under --max-metadata-bytes (64K)
    made = 0
    for i in range(target_bytes // piece + 1):
        body = json.dumps({"agent_id": agent, "name": f"wf-{i}", "metadata": {"blob": "m" * piece}})
        status, _, _ = server.http("POST", "/api/workflows", body, {"Content-Type": "application/json"})
        if status != 201:
            break  # a bound on what feeds a snapshot: use what fits
        made += 1
    assert made > 0, "no workflow with metadata could be created"

    async def measure():
        ws, _ = await connect_agent(server, agent, max_size=None)
        await ws.send(json.dumps({"type": "snapshot"}))
        while True:
            text = await asyncio.wait_for(ws.recv(), 30)
            if json.loads(text)["type"] == "snapshot":
                await ws.close()
                return len(text)

    return run(measure())


def test_snapshot_request_burst_answers_one_snapshot_at_a_time(start_server):
    """Issue 13.2: 500 snapshot requests in one write, on a large snapshot, from a client that does not read."""
    server = start_server("--max-queue-bytes", "8M", "--max-body-bytes", "2M")
    agent = "bursty"
    size = big_snapshot_agent(server, agent, 1024 * 1024)
    assert size >= 256 * 1024, f"snapshot only {size} bytes: too small to show the burst"
    base = server.rss_kb()
    messages_in = server.stats()["messages"]["in"]

    ws = RawWebSocket(server, f"/ws/agents/{agent}", rcvbuf=4096)
    request = masked_frame(OP_TEXT, b'{"type":"snapshot"}')
    ws.sock.sendall(request * 500)
    # Every request is handled (merged into the one queued), or the client was dropped as slow.
    wait_until(
        lambda: server.stats()["messages"]["in"] >= messages_in + 500
        or server.stats()["connections"]["dropped_slow"] > 0,
        30,
        "the burst to be handled",
    )
    grown = server.rss_kb() - base
    # Unbounded, each request queued its own copy: 500 x the snapshot (hundreds of MB).
    assert grown < 64 * MiB * RSS_SCALE, f"RSS grew by {grown} KiB for 500 requests of a {size}-byte snapshot"

    # The client gets its snapshot, far fewer than 500 of them, and the connection still works.
    snapshots = 0
    deadline = time.monotonic() + 30
    ws.send_text('{"type":"ping"}')
    while True:
        assert time.monotonic() < deadline, "no pong after the snapshots"
        frame = ws.recv_frame(timeout=30)
        assert frame is not None, "the server closed a client that only asked for snapshots"
        _, op, payload = frame
        if op == OP_PING:
            ws.send_frame(OP_PONG, payload)
            continue
        assert op == OP_TEXT, (op, payload[:100])
        msg = json.loads(payload)
        if msg["type"] == "snapshot":
            snapshots += 1
        elif msg["type"] == "pong":
            break
    assert 1 <= snapshots < 50, f"{snapshots} snapshots for 500 requests"
    ws.close()


def test_a_burst_over_the_limit_is_not_handled_further(start_server):
    """Past its limit a client's remaining requests are not handled: its queue is freed and it gets 1008."""
    server = start_server("--max-queue-bytes", "4K")
    ws = RawWebSocket(server, "/ws/agents/burst2", rcvbuf=4096)
    messages_out = server.stats()["messages"]["out"]
    # Each reply (an error envelope) is ~150 bytes: the limit is passed after a few dozen of 5000.
    ws.sock.sendall(masked_frame(OP_TEXT, b'{"type":"nope"}') * 5000)
    wait_until(lambda: server.stats()["connections"]["dropped_slow"] == 1, 30, "the client to be dropped")
    replies = server.stats()["messages"]["out"] - messages_out
    assert replies < 1000, f"{replies} replies queued for a client over a 4 KiB limit"
    code, _, _ = ws.read_until_close(timeout=30)
    assert code in (1008, None), code
    ws.close()


def test_a_server_stall_does_not_close_clients_that_answer_pings(start_server):
    """Issue 13.10: SIGSTOP for 5 s with --heartbeat-interval 1 --idle-timeout 3, then SIGCONT: clients that
    answer every ping stay open and nothing is counted as timed out."""
    server = start_server("--heartbeat-interval", "1", "--idle-timeout", "3")
    clients = 12

    async def main():
        conns = [await connect_agent(server, f"stall-{i % 3}") for i in range(clients)]
        sockets = [ws for ws, _ in conns]
        # The websockets library answers every ping; reading keeps the heartbeat envelopes flowing.
        heartbeats = [0] * clients

        async def reader(i, ws):
            try:
                async for text in ws:
                    if json.loads(text)["type"] == "heartbeat":
                        heartbeats[i] += 1
            except websockets.ConnectionClosed:
                pass

        tasks = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(sockets)]
        await asyncio.get_running_loop().run_in_executor(
            None, wait_until, lambda: min(heartbeats) >= 1, 20, "a heartbeat on every client"
        )
        server.proc.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(5)  # pacing only: the stall's length is the test's input, longer than the idle timeout
        finally:
            server.proc.send_signal(signal.SIGCONT)
        seen = list(heartbeats)
        # Three more heartbeats each: past a whole idle timeout after the stall, with pings answered.
        deadline = time.monotonic() + 30
        while min(h - s for h, s in zip(heartbeats, seen)) < 3:
            closed = [i for i, ws in enumerate(sockets) if ws.close_code is not None]
            assert not closed, f"clients {closed} closed after the stall: {[sockets[i].close_code for i in closed]}"
            assert time.monotonic() < deadline, f"heartbeats after the stall: {heartbeats} (before: {seen})"
            await asyncio.sleep(0.05)  # pacing only: polling the condition above, with its deadline
        assert all(ws.close_code is None for ws in sockets)
        for ws in sockets:
            await ws.close()
        await asyncio.gather(*tasks)

    run(main())
    assert server.stats()["connections"]["timed_out"] == 0


def test_a_silent_client_is_still_closed_after_a_stall(start_server):
    """A client that answers nothing is still closed as idle once the server runs again."""
    server = start_server("--heartbeat-interval", "1", "--idle-timeout", "3")
    silent = RawWebSocket(server, "/ws/agents/silent")
    server.proc.send_signal(signal.SIGSTOP)
    try:
        time.sleep(4)  # pacing only: the stall's length is the test's input
    finally:
        server.proc.send_signal(signal.SIGCONT)
    code, _, _ = silent.read_until_close(timeout=30)
    assert code == 1001
    wait_until(lambda: server.stats()["connections"]["timed_out"] == 1, 10, "timed_out to count it")
    silent.close()


def test_an_unknown_type_is_cut_at_a_character_boundary(start_server):
    """Issue 13.9: the error envelope echoes at most 64 bytes of an unknown type, never half a character."""
    server = start_server()
    ws = RawWebSocket(server, "/ws/agents/utf8cut")
    # Byte 64 falls inside a 4-, 2- and 3-byte character; then a cut exactly at a boundary.
    for kind in ("x" * 63 + "\U0001F600" * 3, "y" * 63 + "é" * 10, "z" * 62 + "€" * 10, "\U0001F600" * 40):
        ws.send_text(json.dumps({"type": kind}, ensure_ascii=False))
        while True:
            _, op, payload = ws.recv_frame()
            if op != OP_TEXT:
                continue
            text = payload.decode("utf-8", errors="strict")  # a strict client closes with 1007 otherwise
            msg = json.loads(text)
            if msg["type"] == "error":
                break
        assert msg["data"]["code"] == "unknown_type"
        shown = msg["data"]["message"].split('"')[1]
        assert kind.startswith(shown) and 60 <= len(shown.encode()) <= 64, shown
    ws.send_close(1000)
    code, _, _ = ws.read_until_close()
    assert code == 1000
    ws.close()
