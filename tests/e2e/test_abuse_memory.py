"""Memory a client or a publisher can grow: channels and history.

- A channel with no subscribers, no domain state and no event within the history TTL leaves memory; its
  epoch and seq come back from the store, so numbering never goes back and resume still works.
- Subscribing to an agent that never published stores nothing and leaves nothing once the client goes.
- History is bounded by bytes per channel (--history-max-bytes) and in all (--history-memory-budget);
  events that left memory are read back from the store, so a resume stays exact.

RSS bounds are measured from /proc and scaled by awtest.RSS_SCALE for the sanitized build.
"""

import json
import os
import socket

import pytest

from awtest import (
    RSS_SCALE,
    SANITIZED,
    apublish,
    connect_agent,
    dir_bytes,
    pipeline_publish,
    recv_json_skip,
    run,
    wait_until,
    ws_connect,
)
import redis_mode

MIB = 1024
# AddressSanitizer holds freed memory in a quarantine of 256 MB by default, which these RSS measurements
# would see instead of what the server keeps: a small quarantine lets freed memory be reused.
QUIET_ASAN = (
    {"ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64"}
    if SANITIZED
    else None
)


async def read_events(ws, count, what="events"):
    out = []
    while len(out) < count:
        out.append(await recv_json_skip(ws, what=f"{what} ({len(out)}/{count})"))
    return out


async def resume(server, agent, since, epoch):
    ws = await ws_connect(server, f"/ws/agents/{agent}?since={since}&epoch={epoch}")
    hello = await recv_json_skip(ws, what="the connected envelope")
    assert hello["type"] == "connected", hello
    return ws, hello["data"]


def history(server, agent, since, limit=1000):
    status, _, body = server.http("GET", f"/api/agents/{agent}/events?since={since}&limit={limit}")
    assert status == 200, body
    return body


def subscribe_and_leave(server, agent_ids, batch=100):
    """Opens a WebSocket per agent id, `batch` at a time (all upgrades sent before any answer is read),
    waits for each 101, then closes them."""
    request = (
        "GET /ws/agents/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    for start in range(0, len(agent_ids), batch):
        socks = []
        for agent in agent_ids[start : start + batch]:
            s = socket.create_connection((server.host, server.port), timeout=15)
            s.sendall(request.format(agent).encode())
            socks.append(s)
        for s in socks:
            got = b""
            while b"\r\n\r\n" not in got:
                chunk = s.recv(4096)
                assert chunk, f"closed during the handshake: {got!r}"
                got += chunk
            assert got.startswith(b"HTTP/1.1 101"), got[:200]
        for s in socks:
            s.close()


def test_idle_channel_leaves_memory_and_its_numbering_comes_back(start_server):
    server = start_server("--history-ttl", "2")
    for _ in range(3):
        server.publish("ev-a")
    epoch = history(server, "ev-a", 0)["epoch"]
    wait_until(lambda: server.stats()["channels"] == 0, 20, "the idle channel to leave memory")

    async def go():
        # The first subscriber brings the channel back from the store: same epoch, same seq.
        ws, hello = await connect_agent(server, "ev-a")
        assert hello["data"]["epoch"] == epoch and hello["data"]["seq"] == 3, hello
        assert await apublish(server, "ev-a", "after", {"n": 4}) == 4
        live = await read_events(ws, 1)
        assert live[0]["seq"] == 4
        # A client that saw seq 3 before the channel left memory resumes exactly.
        ws2, d = await resume(server, "ev-a", 3, epoch)
        assert d["recovered"] is True and d["replayed"] == 1 and d["epoch"] == epoch, d
        replay = await read_events(ws2, 1)
        assert replay[0]["seq"] == 4 and replay[0]["data"] == {"n": 4}
        await ws.close()
        await ws2.close()

    run(go())
    # Let go of again without subscribers: a publish still continues the numbering.
    wait_until(lambda: server.stats()["channels"] == 0, 20, "the channel to leave memory again")
    assert server.publish("ev-a") == 5
    assert history(server, "ev-a", 0)["epoch"] == epoch


def test_idle_channels_come_back_after_a_restart_with_their_numbering(start_server):
    server = start_server("--history-ttl", "2")
    for agent in ("r-1", "r-2"):
        server.publish(agent)
        server.publish(agent)
    epochs = {a: history(server, a, 0)["epoch"] for a in ("r-1", "r-2")}
    wait_until(lambda: server.stats()["channels"] == 0, 20, "the idle channels to leave memory")
    server.stop()
    again = start_server("--history-ttl", "2", "--data-dir", str(server.data_dir))
    # Channels without recent events are not loaded into memory at start.
    assert again.stats()["channels"] == 0
    assert again.publish("r-1") == 3
    page = history(again, "r-2", 0)
    assert page["epoch"] == epochs["r-2"] and page["latest"] == 2, page
    assert history(again, "r-1", 0)["epoch"] == epochs["r-1"]


def test_subscribing_to_many_unknown_agents_leaves_nothing(start_server):
    server = start_server(env=QUIET_ASAN)
    subscribe_and_leave(server, [f"warm-{i}" for i in range(1000)])
    wait_until(lambda: server.stats()["channels"] == 0, 20, "warm-up channels to leave memory")
    rss_before = server.rss_kb()
    disk_before = dir_bytes(server.data_dir)

    subscribe_and_leave(server, [f"ghost-{i}" for i in range(20000)])
    wait_until(lambda: server.stats()["channels"] == 0, 20, "20k subscribe-only channels to leave memory")
    grown_kb = server.rss_kb() - rss_before
    # Kept, 20k channels cost about 40 MB; what a batch of 100 connections costs is reused.
    assert grown_kb < 12 * MIB * RSS_SCALE, f"RSS grew {grown_kb} KiB after 20k subscribe-only agents"
    stats = server.stats()
    assert stats["store"]["events"] == 0
    # Nothing was written: the data dir holds what it held (SQLite files only change on a write).
    assert dir_bytes(server.data_dir) <= disk_before, "subscribing stored something on disk"
    assert history(server, "ghost-7", 0) == {
        "agent_id": "ghost-7", "epoch": "", "latest": 0, "oldest": 0, "complete": True, "next_since": 0,
        "events": [],
    }


def test_history_bytes_per_channel_are_bounded(start_server):
    server = start_server("--history-max-bytes", "2M", env=QUIET_ASAN)
    server.publish("big", "warm", {"blob": "w" * 200_000})
    rss_before = server.rss_kb()
    blob = "x" * (256 * 1024)
    for start in range(0, 160, 10):
        bodies = [json.dumps({"type": "chunk", "data": {"i": i, "blob": blob}}).encode() for i in range(10)]
        pipeline_publish(server, "big", bodies)
    stats = server.stats()
    assert stats["history"]["bytes"] <= 2 * MIB * 1024, stats["history"]
    grown_kb = server.rss_kb() - rss_before
    # 40 MiB were published to the channel; it holds at most 2 MiB of them. The rest of the growth is the
    # allocator's and SQLite's caches (measured +12-14 MiB, flat from 12 to 75 MiB published). In Redis
    # mode hiredis formats each batch's command (2.5 MiB here) once more: measured +12-18 MiB, flat from
    # 40 to 120 MiB published.
    bound = (28 if redis_mode.ENABLED else 20) * MIB * RSS_SCALE
    assert grown_kb < bound, f"RSS grew {grown_kb} KiB after 40 MiB on one channel"


@pytest.mark.embedded_only('a node in Redis mode holds only channels with local subscribers, so the 50 channels are not kept')
def test_history_memory_budget_bounds_many_channels(start_server):
    server = start_server("--history-memory-budget", "4M", env=QUIET_ASAN)
    server.publish("warm", "warm", {"blob": "w" * 200_000})
    rss_before = server.rss_kb()
    blob = "y" * (128 * 1024)
    for c in range(50):
        bodies = [json.dumps({"type": "chunk", "data": {"i": i, "blob": blob}}).encode() for i in range(6)]
        pipeline_publish(server, f"many-{c}", bodies)
    stats = server.stats()
    assert stats["history"]["bytes"] <= 4 * MIB * 1024, stats["history"]
    assert stats["channels"] >= 50  # the channels stay (their events are recent); their old events do not
    grown_kb = server.rss_kb() - rss_before
    # 37.5 MiB over 50 channels, each under --history-max-bytes; together they hold at most 4 MiB.
    assert grown_kb < 20 * MIB * RSS_SCALE, f"RSS grew {grown_kb} KiB after 37.5 MiB over 50 channels"


def test_resume_and_history_after_events_left_memory_are_exact(start_server):
    server = start_server("--history-max-bytes", "16K")

    async def go():
        ws, hello = await connect_agent(server, "exact")
        epoch = hello["data"]["epoch"]
        sent = []
        for i in range(1, 21):
            data = {"i": i, "pad": "p" * 4000}
            assert await apublish(server, "exact", "chunk", data) == i
            sent.append(data)
        live = await read_events(ws, 20, "live events")
        assert [e["seq"] for e in live] == list(range(1, 21))
        await ws.close()
        stats = server.stats()
        assert stats["history"]["events"] < 20, stats["history"]  # most left memory

        # Resume from seq 2: exactly 3..20, from disk and memory, then live with no gap.
        ws2, d = await resume(server, "exact", 2, epoch)
        assert d["recovered"] is True and d["replayed"] == 18 and d["seq"] == 20, d
        replay = await read_events(ws2, 18, "replayed events")
        assert [e["seq"] for e in replay] == list(range(3, 21))
        assert [e["data"] for e in replay] == sent[2:]
        assert await apublish(server, "exact", "chunk", {"i": 21}) == 21
        nxt = await read_events(ws2, 1, "the next live event")
        assert nxt[0]["seq"] == 21
        await ws2.close()

    run(go())
    page = history(server, "exact", 2, limit=10)
    assert page["complete"] is True and page["oldest"] == 1, page
    assert [e["seq"] for e in page["events"]] == list(range(3, 13))
    page = history(server, "exact", 12)
    assert [e["seq"] for e in page["events"]] == list(range(13, 22))
    assert page["events"][0]["data"]["pad"] == "p" * 4000
