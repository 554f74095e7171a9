"""The client against the real agentwire binary: typed events end to end, the HTTP helpers and their
typed errors, explicit resume, snapshots on request."""

from __future__ import annotations

import asyncio

import pytest

from agentwire import (
    AgentwireClient,
    AgentwireConnectionError,
    AgentwireError,
    AsyncPublisher,
    Backoff,
    ConnectionState,
    Event,
    PhaseChanged,
    Position,
    Progress,
    Publisher,
    RequirementsSubmitted,
    Snapshot,
    StreamDelta,
    StreamEnd,
    StreamStarted,
    WorkflowCreated,
)
from client_support import run, until

FAST = Backoff(base=0.05, max=0.5)


async def collect(sub, count: int, into: list) -> list:
    async for ev in sub:
        into.append(ev)
        if len(into) >= count:
            break
    return into


def test_workflow_events_arrive_typed_and_in_order(server):
    async def main():
        client = AgentwireClient(server.url, backoff=FAST)
        pub = client.publisher
        async with client.subscribe("agent-7") as sub:
            got: list = []
            consumer = asyncio.ensure_future(collect(sub, 10, got))
            await until(lambda: sub.state is ConnectionState.LIVE, 20, "the subscription to go live")
            wf = await pub.create_workflow("agent-7", "summarise", metadata={"team": "x"})
            await pub.submit_requirements(wf["id"], text="summarise the doc", items=["short"])
            await pub.set_phase(wf["id"], "design", reason="requirements are in")
            await pub.set_progress(wf["id"], 42, "halfway")
            stream = await pub.open_stream(wf["id"])
            for i, piece in enumerate(["Hel", "lo, ", "world"]):
                await pub.append_stream(stream["stream_id"], piece, index=i)
            end = await pub.end_stream(stream["stream_id"], "completed")
            assert end["deltas"] == 3 and end["length"] == len("Hello, world")
            await pub.publish("agent-7", "custom.note", {"note": "anything goes"})
            await asyncio.wait_for(consumer, 20)

        kinds = [type(e) for e in got]
        assert kinds == [WorkflowCreated, RequirementsSubmitted, PhaseChanged, Progress, StreamStarted,
                         StreamDelta, StreamDelta, StreamDelta, StreamEnd, Event]
        assert [e.seq for e in got] == list(range(1, 11))
        created, req, phase, progress, started, *deltas, ended = got[:9]
        assert created.workflow_id == wf["id"] and created.name == "summarise" and created.metadata == {"team": "x"}
        assert req.workflow_id == wf["id"] and req.text == "summarise the doc" and req.items == ["short"]
        assert (phase.from_phase, phase.to_phase, phase.reason) == ("requirements", "design", "requirements are in")
        assert progress.percent == 42 and progress.message == "halfway"
        assert started.stream_id == stream["stream_id"] == ended.stream_id
        assert "".join(d.delta for d in deltas) == "Hello, world" and [d.index for d in deltas] == [0, 1, 2]
        assert ended.status == "completed" and ended.deltas == 3
        assert got[9].type == "custom.note" and got[9].data == {"note": "anything goes"}
        assert all(e.agent_id == "agent-7" and e.time is not None for e in got)

    run(main(), 60)


def test_generic_events_and_publish_results(server):
    async def main():
        client = AgentwireClient(server.url, backoff=FAST)
        async with client.subscribe("agent-g") as sub:
            got: list = []
            consumer = asyncio.ensure_future(collect(sub, 3, got))
            await until(lambda: sub.state is ConnectionState.LIVE, 20, "live")
            apub = AsyncPublisher(server.url)
            assert await apub.publish("agent-g", "build.started", {"n": 1}) == 1
            # the same key twice: the original seq back, one event
            assert await apub.publish("agent-g", "build.step", {"n": 2}, idempotency_key="k-2") == 2
            assert await apub.publish("agent-g", "build.step", {"n": 2}, idempotency_key="k-2") == 2
            # the blocking publisher, from a thread so the loop keeps reading
            assert await asyncio.to_thread(Publisher(server.url).publish, "agent-g", "build.done") == 3
            await asyncio.wait_for(consumer, 20)
        assert [(type(e), e.type, e.seq, e.data) for e in got] == [
            (Event, "build.started", 1, {"n": 1}), (Event, "build.step", 2, {"n": 2}), (Event, "build.done", 3, {})]
        assert sub.position == Position(3, sub.connected_info["epoch"])

    run(main(), 60)


def test_publish_errors_are_typed(server, unused_port):
    pub = Publisher(server.url)
    cases = [
        (lambda p: p.publish("bad agent!", "x"), 400, "bad_agent_id"),
        (lambda p: p.publish("agent-e", "bad type!"), 400, "bad_type"),
        (lambda p: p.history("agent-e", limit=0), 400, "bad_limit"),
        (lambda p: p.get_workflow("wf_nope"), 404, "workflow_not_found"),
        (lambda p: p.set_progress("wf_nope", 10), 404, "workflow_not_found"),
        (lambda p: p.append_stream("st_nope", "x"), 404, "stream_not_found"),
        (lambda p: p.publish("agent-e", "x", idempotency_key="k" * 300), 400, "bad_idempotency_key"),
    ]
    for call, status, code in cases:
        with pytest.raises(AgentwireError) as info:
            call(pub)
        assert (info.value.status, info.value.code) == (status, code), info.value
        assert info.value.message and not info.value.retryable
        assert not isinstance(info.value, AgentwireConnectionError)

    wf = pub.create_workflow("agent-e", "w")
    with pytest.raises(AgentwireError) as info:
        pub.set_phase(wf["id"], "deployment")
    assert (info.value.status, info.value.code) == (409, "illegal_transition")
    assert "design" in info.value.details["allowed"]

    with pytest.raises(AgentwireConnectionError) as info:
        Publisher(f"http://127.0.0.1:{unused_port}", timeout=5).publish("agent-e", "x")
    assert info.value.status == 0 and info.value.retryable and isinstance(info.value, AgentwireError)

    async def main():
        apub = AsyncPublisher(server.url)
        for call, status, code in cases:
            with pytest.raises(AgentwireError) as ainfo:
                await call(apub)
            assert (ainfo.value.status, ainfo.value.code) == (status, code)
        with pytest.raises(AgentwireConnectionError):
            await AsyncPublisher(f"http://127.0.0.1:{unused_port}", timeout=5).publish("agent-e", "x")

    run(main(), 60)


def test_history_and_stats(server):
    pub = Publisher(server.url)
    for i in range(5):
        pub.publish("agent-h", "progress", {"percent": i * 10})
    page = pub.history("agent-h", since=1, limit=3)
    assert [e.seq for e in page.events] == [2, 3, 4] and page.latest == 5 and page.next_since == 4
    assert all(isinstance(e, Progress) for e in page.events) and page.events[0].percent == 10
    assert page.complete and page.epoch
    stats = pub.stats()
    assert stats["publishes"] >= 5
    assert pub.health()["status"] == "ok"

    async def main():
        apub = AsyncPublisher(server.url)
        page2 = await apub.history("agent-h", since=page.next_since)
        assert [e.seq for e in page2.events] == [5]
        assert (await apub.stats())["publishes"] >= 5

    run(main(), 30)


def test_explicit_resume_replays_and_a_foreign_epoch_gets_a_snapshot(server):
    pub = Publisher(server.url)
    for i in range(6):
        pub.publish("agent-r", "t", {"i": i})
    epoch = pub.history("agent-r").epoch

    async def main():
        client = AgentwireClient(server.url, backoff=FAST)
        async with client.subscribe("agent-r", since=2, epoch=epoch) as sub:
            got = await asyncio.wait_for(collect(sub, 4, []), 20)
        assert [e.seq for e in got] == [3, 4, 5, 6] and not any(isinstance(e, Snapshot) for e in got)
        assert [c.state for c in sub.state_history][:3] == [ConnectionState.CONNECTING, ConnectionState.RESUMED,
                                                            ConnectionState.LIVE]

        async with client.subscribe("agent-r", since=2, epoch="not-this-one") as sub2:
            first = await asyncio.wait_for(collect(sub2, 1, []), 20)
        assert isinstance(first[0], Snapshot) and first[0].seq == 6 and first[0].epoch == epoch
        assert sub2.position == Position(6, epoch)

        async with client.subscribe("agent-r", since=0) as sub3:  # everything the server still has
            everything = await asyncio.wait_for(collect(sub3, 6, []), 20)
        assert [e.seq for e in everything] == [1, 2, 3, 4, 5, 6]

    run(main(), 60)


def test_snapshot_on_request_and_no_repeats_after_it(server):
    async def main():
        client = AgentwireClient(server.url, backoff=FAST)
        pub = client.publisher
        wf = await pub.create_workflow("agent-s", "w")
        async with client.subscribe("agent-s") as sub:
            got: list = []
            consumer = asyncio.ensure_future(collect(sub, 3, got))
            await until(lambda: sub.state is ConnectionState.LIVE, 20, "live")
            await pub.set_progress(wf["id"], 10)
            await until(lambda: len(got) == 1, 20, "the progress event")
            assert await sub.request_snapshot()
            await until(lambda: len(got) == 2, 20, "the snapshot")
            await pub.set_progress(wf["id"], 20)
            await asyncio.wait_for(consumer, 20)
        assert [type(e) for e in got] == [Progress, Snapshot, Progress]
        snap = got[1]
        assert snap.seq == 2 and snap.workflows[0]["id"] == wf["id"] and snap.workflows[0]["progress"] == 10
        assert got[2].seq == 3

    run(main(), 60)
