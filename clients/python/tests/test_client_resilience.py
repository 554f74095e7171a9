"""What the client is for: carrying on through a server restart, a frozen server and a network cut,
without losing or repeating an event — against the real binary."""

from __future__ import annotations

import asyncio
import time

import pytest

from agentwire import (
    AgentwireClient,
    AsyncPublisher,
    Backoff,
    ConnectionState,
    Position,
    Publisher,
    Snapshot,
)
from client_support import TcpProxy, first_change, run, until

FAST = Backoff(base=0.05, max=0.5)


def states_of(sub) -> list:
    return [c.state for c in sub.state_history]


def test_server_restart_mid_stream_loses_and_repeats_nothing(servers):
    first = servers.start("--heartbeat-interval", "1", "--idle-timeout", "5")
    port = first.port
    agent = "agent-restart"

    async def main():
        client = AgentwireClient(first.url, backoff=FAST)
        # Retries with a fixed key per event: a publish cut off by the restart is repeated until it is
        # answered, and the server recognises a repeat, so each i is stored exactly once.
        publisher = AsyncPublisher(first.url, retries=10_000, backoff=Backoff(0.02, 0.2), timeout=5)
        published: list = []  # seqs the server acknowledged, in order
        stop_publishing = asyncio.Event()

        async def publish_forever():
            i = 0
            while not stop_publishing.is_set():
                seq = await publisher.publish(agent, "tick", {"i": i}, idempotency_key=f"tick-{i}")
                published.append(seq)
                i += 1
                await asyncio.sleep(0.005)  # pacing only

        got: list = []
        async with client.subscribe(agent) as sub:
            async def consume():
                async for ev in sub:
                    got.append(ev)

            consumer = asyncio.ensure_future(consume())
            await until(lambda: sub.state is ConnectionState.LIVE, 20, "the subscription to go live")
            producer = asyncio.ensure_future(publish_forever())
            await until(lambda: len(got) >= 20, 30, "events before the restart")

            second = await asyncio.to_thread(servers.restart, first)  # SIGTERM, start again on the same port
            assert second.port == port

            restarted_at = len(published)
            await until(lambda: len(published) >= restarted_at + 30 or producer.done(), 60,
                        "publishes after the restart")
            stop_publishing.set()
            await asyncio.wait_for(producer, 60)
            last = published[-1]
            await until(lambda: got and got[-1].seq >= last, 60, f"the subscriber to reach seq {last}")
            consumer.cancel()

        seqs = [ev.seq for ev in got]
        assert seqs == list(range(1, last + 1)), f"lost or repeated: {seqs}"
        assert published == list(range(1, last + 1)), "an acknowledged publish was repeated or skipped"
        assert [ev.data["i"] for ev in got] == list(range(last))
        assert not any(isinstance(ev, Snapshot) for ev in got)
        history = states_of(sub)
        assert ConnectionState.RECONNECTING in history
        after = history[history.index(ConnectionState.RECONNECTING):]
        assert ConnectionState.RESUMED in after and ConnectionState.LIVE in after, history
        closes = [c.reason for c in sub.state_history if c.state is ConnectionState.RECONNECTING]
        assert "closed by server" in closes[0] or "connection lost" in closes[0], closes
        assert sub.position == Position(last, sub.connected_info["epoch"])

    run(main(), 180)


def test_silent_server_is_detected_within_the_heartbeat_timeout(servers):
    server = servers.start("--heartbeat-interval", "0.5", "--idle-timeout", "2")
    agent = "agent-silent"
    pub = Publisher(server.url)

    async def main():
        client = AgentwireClient(server.url, backoff=FAST)
        got: list = []
        async with client.subscribe(agent) as sub:
            async def consume():
                async for ev in sub:
                    got.append(ev)

            consumer = asyncio.ensure_future(consume())
            await until(lambda: sub.state is ConnectionState.LIVE, 20, "live")
            assert sub.connected_info["heartbeat_interval"] == 0.5
            assert sub.heartbeat_timeout == pytest.approx(1.25)  # 2.5 heartbeat intervals
            for i in range(3):
                await asyncio.to_thread(pub.publish, agent, "t", {"i": i})
            await until(lambda: len(got) == 3, 20, "the first events")

            server.pause()  # SIGSTOP: sockets stay open, nothing is sent any more
            paused_at = time.monotonic()
            try:
                noticed = await until(lambda: first_change(sub, ConnectionState.RECONNECTING), 15,
                                      "the client to notice the silence")
            finally:
                server.resume()
            took = noticed.at - paused_at
            assert "heartbeat timeout" in noticed.reason and "1.25s" in noticed.reason, noticed
            # 2.5 heartbeat intervals after the last frame, which came before the pause; plus a margin for a
            # busy machine.
            assert took <= 1.25 + 2.5, f"noticed after {took:.2f}s"

            await until(lambda: sub.state is ConnectionState.LIVE and sub.connections == 2, 30,
                        "the client to reconnect once the server runs again")
            await asyncio.to_thread(pub.publish, agent, "t", {"i": 3})
            await until(lambda: len(got) == 4, 20, "the event after the silence")
            consumer.cancel()
        assert [ev.seq for ev in got] == [1, 2, 3, 4]
        assert ConnectionState.RESUMED in states_of(sub)

    run(main(), 120)


def test_snapshot_when_the_missed_events_fell_out_of_history(servers):
    server = servers.start("--history-size", "5")
    agent = "agent-snap"
    pub = Publisher(server.url)

    async def main():
        proxy = await TcpProxy(server.port).start()
        try:
            client = AgentwireClient(proxy.url, backoff=FAST)
            got: list = []
            async with client.subscribe(agent) as sub:
                async def consume():
                    async for ev in sub:
                        got.append(ev)

                consumer = asyncio.ensure_future(consume())
                await until(lambda: sub.state is ConnectionState.LIVE, 20, "live")
                for i in range(3):
                    await asyncio.to_thread(pub.publish, agent, "t", {"i": i})
                await until(lambda: len(got) == 3, 20, "the first three events")
                epoch = sub.position.epoch

                proxy.cut()  # the network goes away; the server knows nothing of it
                await until(lambda: first_change(sub, ConnectionState.RECONNECTING), 20, "the client to notice the cut")
                for i in range(3, 23):  # 20 events while disconnected: more than the history keeps
                    await asyncio.to_thread(pub.publish, agent, "t", {"i": i})
                proxy.restore()

                await until(lambda: len(got) == 4, 30, "the snapshot after reconnecting")
                snap = got[3]
                assert isinstance(snap, Snapshot), got
                assert snap.seq == 23 and snap.epoch == epoch and not snap.recovered
                assert sub.position == Position(23, epoch)
                assert sub.state is ConnectionState.LIVE

                await asyncio.to_thread(pub.publish, agent, "t", {"i": 23})
                await until(lambda: len(got) == 5, 20, "the first live event after the snapshot")
                consumer.cancel()
            assert [ev.seq for ev in got] == [1, 2, 3, 23, 24]
            assert got[4].data == {"i": 23}
            assert ConnectionState.RESUMED not in states_of(sub)  # nothing was replayed
        finally:
            await proxy.close()

    run(main(), 120)


def test_a_network_cut_within_history_is_replayed_exactly(servers):
    server = servers.start()
    agent = "agent-cut"
    pub = Publisher(server.url)

    async def main():
        proxy = await TcpProxy(server.port).start()
        try:
            client = AgentwireClient(proxy.url, backoff=FAST)
            got: list = []
            async with client.subscribe(agent) as sub:
                async def consume():
                    async for ev in sub:
                        got.append(ev)

                consumer = asyncio.ensure_future(consume())
                await until(lambda: sub.state is ConnectionState.LIVE, 20, "live")
                await asyncio.to_thread(pub.publish, agent, "t", {"i": 0})
                await until(lambda: len(got) == 1, 20, "the first event")
                proxy.cut()
                await until(lambda: first_change(sub, ConnectionState.RECONNECTING), 20, "the cut to be noticed")
                for i in range(1, 11):
                    await asyncio.to_thread(pub.publish, agent, "t", {"i": i})
                proxy.restore()
                await until(lambda: len(got) == 11, 30, "the replay")
                consumer.cancel()
            assert [ev.seq for ev in got] == list(range(1, 12))
            resumed = [c for c in sub.state_history if c.state is ConnectionState.RESUMED]
            assert resumed and "10 to replay" in resumed[0].reason
        finally:
            await proxy.close()

    run(main(), 120)
