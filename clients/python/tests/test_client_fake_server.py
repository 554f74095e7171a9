"""The subscription against a scripted WebSocket server, for what the real one never does on purpose:
send duplicates, go quiet on one connection only, refuse the upgrade.

The fake speaks the agentwire protocol just enough (``connected`` first, then envelopes); each test scripts
what every connection gets and checks what the client yields, the states it goes through and the resume
position it asks for.
"""

from __future__ import annotations

import asyncio
import http
import json
import time
from typing import Awaitable, Callable, List
from urllib.parse import parse_qs, urlsplit

import pytest
import websockets

from agentwire import (
    AgentwireClient,
    AgentwireConnectionError,
    AgentwireError,
    Backoff,
    ConnectionState,
    Position,
    Snapshot,
)
from client_support import first_change, run, until

FAST = Backoff(base=0.02, max=0.2)


def connected(seq: int, epoch: str = "E", resumed: bool = False, recovered: bool = False, replayed: int = 0,
              heartbeat_interval: float = 30) -> str:
    return json.dumps({"type": "connected", "agent_id": "a1", "ts": "2026-11-25T17:00:00Z", "data": {
        "session_id": "s", "epoch": epoch, "seq": seq, "resumed": resumed, "recovered": recovered,
        "replayed": replayed, "heartbeat_interval": heartbeat_interval, "idle_timeout": 90, "server_version": "fake"}})


def event(seq: int, type_: str = "t") -> str:
    return json.dumps({"type": type_, "agent_id": "a1", "seq": seq, "ts": "2026-11-25T17:00:00Z", "data": {"n": seq}})


Script = Callable[[websockets.WebSocketServerProtocol, dict], Awaitable[None]]


class FakeServer:
    """Serves connection i with scripts[i] (the last script for any later one); records each query."""

    def __init__(self, scripts: List[Script], **serve_kwargs) -> None:
        self.scripts = scripts
        self.queries: List[dict] = []
        self.serve_kwargs = serve_kwargs
        self.port = 0

    async def __aenter__(self) -> "FakeServer":
        self._server = await websockets.serve(self._handle, "127.0.0.1", 0, **self.serve_kwargs)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, ws, path) -> None:
        query = {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()}
        index = len(self.queries)
        self.queries.append(query)
        script = self.scripts[min(index, len(self.scripts) - 1)]
        try:
            await script(ws, query)
        except websockets.ConnectionClosed:
            pass


async def wait_closed(ws, _query=None) -> None:
    await ws.wait_closed()


def test_duplicates_are_dropped_and_the_resume_asks_for_the_last_delivered_seq():
    async def first(ws, query):
        await ws.send(connected(0))
        for s in [1, 2, 2, 1, 3]:
            await ws.send(event(s))
        await ws.close(1001, "server shutting down")

    async def second(ws, query):
        await ws.send(connected(5, resumed=True, recovered=True, replayed=2))
        await ws.send(event(3))  # overlaps what was delivered: must be dropped
        await ws.send(event(4))
        await ws.send(event(5))
        await ws.wait_closed()

    async def main():
        async with FakeServer([first, second]) as fake:
            client = AgentwireClient(fake.url, backoff=FAST)
            sub = client.subscribe("a1")
            seqs = []
            async with sub:
                async for ev in sub:
                    seqs.append(ev.seq)
                    if ev.seq == 5:
                        break
            assert seqs == [1, 2, 3, 4, 5]
            assert sub.dropped_duplicates == 3
            assert fake.queries == [{}, {"since": "3", "epoch": "E"}]
            states = [c.state for c in sub.state_history]
            assert states == [ConnectionState.CONNECTING, ConnectionState.LIVE, ConnectionState.RECONNECTING,
                              ConnectionState.RESUMED, ConnectionState.LIVE, ConnectionState.CLOSED], states
            reconnect = sub.state_history[2]
            assert "1001" in reconnect.reason and reconnect.delay is not None and 0 <= reconnect.delay <= FAST.base
            assert sub.position == Position(5, "E")

    run(main(), 30)


def merged_event(first_seq: int, seq: int, type_: str = "t") -> str:
    return json.dumps({"type": type_, "agent_id": "a1", "seq": seq, "first_seq": first_seq,
                       "ts": "2026-11-25T17:00:00Z", "data": {"n": seq}})


def test_merged_messages_are_no_gap_and_count_every_replayed_event():
    async def first(ws, query):
        await ws.send(connected(0))
        await ws.send(event(1))
        await ws.send(merged_event(2, 4, "progress"))  # stands for 2, 3, 4
        await ws.send(event(5))
        await ws.close(1001, "server shutting down")

    async def second(ws, query):
        # 5 events replayed (6..10) as 2 messages, then live ones
        await ws.send(connected(10, resumed=True, recovered=True, replayed=5))
        await ws.send(merged_event(6, 8))
        await ws.send(merged_event(9, 10))
        await ws.send(merged_event(10, 12))  # overlaps: 11 and 12 are new
        await ws.send(merged_event(9, 11))   # already delivered
        await ws.send(event(13))
        await ws.wait_closed()

    async def main():
        async with FakeServer([first, second]) as fake:
            sub = AgentwireClient(fake.url, backoff=FAST).subscribe("a1")
            got = []
            state_at = {}
            async with sub:
                async for ev in sub:
                    got.append((ev.first_seq, ev.seq))
                    state_at[ev.seq] = sub.state
                    if ev.seq == 13:
                        break
            assert got == [(1, 1), (2, 4), (5, 5), (6, 8), (9, 10), (10, 12), (13, 13)]
            assert sub._tracker.gaps == 0 and sub.dropped_duplicates == 1
            # the replay is read once the messages standing for its 5 events are
            assert (state_at[8], state_at[10]) == (ConnectionState.RESUMED, ConnectionState.LIVE)
            assert fake.queries[1] == {"since": "5", "epoch": "E"}
            states = [c.state for c in sub.state_history]
            assert states == [ConnectionState.CONNECTING, ConnectionState.LIVE, ConnectionState.RECONNECTING,
                              ConnectionState.RESUMED, ConnectionState.LIVE, ConnectionState.CLOSED], states
            assert sub.position == Position(13, "E")

    run(main(), 30)


def test_silence_on_one_connection_is_detected_from_the_heartbeat_interval():
    async def silent(ws, query):
        await ws.send(connected(0, heartbeat_interval=0.4))
        await ws.send(event(1))
        await ws.wait_closed()  # frozen: no heartbeat, no close, until the client gives up

    beats_sent = [0]

    async def healthy(ws, query):
        await ws.send(connected(2, resumed=True, recovered=True, replayed=1, heartbeat_interval=0.4))
        await ws.send(event(2))
        while True:
            await asyncio.sleep(0.1)  # pacing only
            await ws.send('{"type":"heartbeat","agent_id":"a1","ts":"x","data":{}}')
            beats_sent[0] += 1

    async def main():
        async with FakeServer([silent, healthy]) as fake:
            client = AgentwireClient(fake.url, backoff=FAST)
            async with client.subscribe("a1") as sub:
                it = sub.__aiter__()
                assert (await it.__anext__()).seq == 1
                assert sub.heartbeat_timeout == pytest.approx(1.0)  # 2.5 intervals
                nxt = asyncio.ensure_future(it.__anext__())
                change = await until(lambda: first_change(sub, ConnectionState.RECONNECTING), 10,
                                     "the silent connection to be dropped")
                assert "heartbeat" in change.reason
                # measured from the last frame (which came after LIVE): never sooner than the timeout
                live_at = sub.state_history[1].at
                assert 0.95 <= change.at - live_at <= 6.0, change.at - live_at
                ev = await asyncio.wait_for(nxt, 10)
                assert ev.seq == 2 and fake.queries[1] == {"since": "1", "epoch": "E"}
                # Heartbeats keep the healthy connection up for several timeouts: waited for as a count
                # of heartbeats sent spanning three timeouts, not as a sleep.
                started = time.monotonic()
                await until(lambda: beats_sent[0] >= 30 and time.monotonic() - started > 3 * sub.heartbeat_timeout,
                            30, "30 heartbeats over three heartbeat timeouts")
                assert sub.connections == 2 and sub.state is ConnectionState.LIVE

    run(main(), 30)


def test_a_snapshot_after_an_impossible_resume_replaces_the_position():
    async def first(ws, query):
        await ws.send(connected(3, epoch="old"))
        await ws.send(event(4))
        await ws.close(1008, "slow consumer: outbound queue full")

    async def second(ws, query):
        await ws.send(connected(2, epoch="new", resumed=True, recovered=False))
        await ws.send(json.dumps({"type": "snapshot", "agent_id": "a1", "ts": "x",
                                  "data": {"seq": 2, "epoch": "new", "recovered": False, "state": {"workflows": []}}}))
        await ws.send(event(3))
        await ws.wait_closed()

    async def main():
        async with FakeServer([first, second]) as fake:
            async with AgentwireClient(fake.url, backoff=FAST).subscribe("a1") as sub:
                got = []
                async for ev in sub:
                    got.append(ev)
                    if len(got) == 3:
                        break
            assert [type(e).__name__ for e in got] == ["Event", "Snapshot", "Event"]
            assert isinstance(got[1], Snapshot) and got[1].epoch == "new" and got[1].seq == 2
            assert got[2].seq == 3  # lower than before: a new epoch starts over
            assert sub.position == Position(3, "new")
            assert fake.queries[1] == {"since": "4", "epoch": "old"}
            assert "1008" in sub.state_history[2].reason

    run(main(), 30)


def test_a_refused_upgrade_is_a_permanent_typed_error():
    async def refuse(path, headers):
        return http.HTTPStatus.NOT_FOUND, [("Content-Type", "application/json")], b'{"error":{"code":"not_found"}}'

    async def main():
        async with FakeServer([wait_closed], process_request=refuse) as fake:
            sub = AgentwireClient(fake.url, backoff=FAST).subscribe("a1")
            with pytest.raises(AgentwireError) as info:
                async for _ in sub:
                    pass
            assert info.value.status == 404
            assert sub.state is ConnectionState.CLOSED

    run(main(), 30)


def test_max_attempts_gives_up_with_a_connection_error(unused_port):
    async def main():
        sub = AgentwireClient(f"http://127.0.0.1:{unused_port}", backoff=FAST).subscribe("a1", max_attempts=3)
        with pytest.raises(AgentwireConnectionError):
            async for _ in sub:
                pass
        reconnects = [c for c in sub.state_history if c.state is ConnectionState.RECONNECTING]
        assert [c.attempt for c in reconnects] == [1, 2]  # the third failure raises
        assert sub.state is ConnectionState.CLOSED

    run(main(), 30)


def test_close_from_another_task_ends_the_iteration_and_the_state_stream():
    async def quiet(ws, query):
        await ws.send(connected(0))
        await ws.wait_closed()

    async def main():
        async with FakeServer([quiet]) as fake:
            sub = AgentwireClient(fake.url, backoff=FAST).subscribe("a1")
            states = []

            async def watch():
                async for change in sub.states():
                    states.append(change.state)

            watcher = asyncio.ensure_future(watch())
            consumer = asyncio.ensure_future(sub.__aiter__().__anext__())
            await until(lambda: sub.state is ConnectionState.LIVE, 10, "live")
            await sub.close()
            with pytest.raises(StopAsyncIteration):
                await asyncio.wait_for(consumer, 5)
            await asyncio.wait_for(watcher, 5)
            assert states[-1] is ConnectionState.CLOSED and ConnectionState.LIVE in states
            await sub.close()  # twice is fine

    run(main(), 30)


def test_bad_agent_ids_are_refused_before_connecting():
    client = AgentwireClient("http://127.0.0.1:1")
    for bad in ["", "a b", "x" * 129, "a/b"]:
        with pytest.raises(ValueError):
            client.subscribe(bad)
    with pytest.raises(ValueError):
        client.subscribe("a", epoch="E")
