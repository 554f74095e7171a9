"""Finished AI output through the client against the real binary: a stream's text once it has ended, a
workflow's stream list, and the agents that have workflows, page by page; blocking and asyncio alike."""

from __future__ import annotations

import pytest

from agentwire import AgentwireClient, AgentwireError, Publisher
from client_support import run


def test_stream_text_and_workflow_streams_after_the_end(server):
    async def main():
        client = AgentwireClient(server.url)
        pub = client.publisher
        wf = await pub.create_workflow("agent-text", "write")
        done = await pub.open_stream(wf["id"])
        for i, piece in enumerate(["Hel", "lo, ", "wörld 😀"]):
            await pub.append_stream(done["stream_id"], piece, index=i)
        await pub.end_stream(done["stream_id"], "completed")
        failed = await pub.open_stream(wf["id"])
        await pub.append_stream(failed["stream_id"], "half")
        await pub.end_stream(failed["stream_id"], "failed", reason="model crashed")
        live = await pub.open_stream(wf["id"])
        await pub.append_stream(live["stream_id"], "so far")

        assert await client.stream_text(done["stream_id"]) == "Hello, wörld 😀"
        assert await client.stream_text(failed["stream_id"]) == "half"
        assert await client.stream_text(live["stream_id"]) == "so far"
        streams = await client.workflow_streams(wf["id"])
        assert [s["stream_id"] for s in streams] == [done["stream_id"], failed["stream_id"], live["stream_id"]]
        assert [s["status"] for s in streams] == ["completed", "failed", "streaming"]
        assert all("text" not in s for s in streams)

        with pytest.raises(AgentwireError) as err:
            await client.stream_text("st_0000000000000000")
        assert (err.value.status, err.value.code) == (404, "stream_not_found")
        with pytest.raises(AgentwireError) as err:
            await client.workflow_streams("wf_0000000000000000")
        assert (err.value.status, err.value.code) == (404, "workflow_not_found")

    run(main())


def test_agents_page_by_page(server):
    pub = Publisher(server.url)
    for agent in ["agent-c", "agent-a", "agent-b", "agent-d", "agent-e"]:
        pub.create_workflow(agent, "job")
    pub.create_workflow("agent-a", "another job")

    first = pub.agents(limit=2)
    assert [a["agent_id"] for a in first["agents"]] == ["agent-a", "agent-b"] and first["next"] == "agent-b"
    assert first["agents"][0]["workflows"] == 2
    assert [a["agent_id"] for a in pub.all_agents(page_size=2)] == [f"agent-{c}" for c in "abcde"]
    with pytest.raises(AgentwireError) as err:
        pub.agents(limit=0)
    assert (err.value.status, err.value.code) == (400, "bad_limit")

    async def main():
        client = AgentwireClient(server.url)
        page = await client.agents(limit=10, after="agent-c")
        assert [a["agent_id"] for a in page["agents"]] == ["agent-d", "agent-e"] and page["next"] is None
        assert [a["agent_id"] for a in await client.publisher.all_agents(page_size=1)] == [
            f"agent-{c}" for c in "abcde"]

    run(main())


def test_the_blocking_publisher_reads_a_finished_stream(server):
    pub = Publisher(server.url)
    wf = pub.create_workflow("agent-sync", "write")
    st = pub.open_stream(wf["id"])
    pub.append_stream(st["stream_id"], "kept")
    pub.end_stream(st["stream_id"])
    assert pub.stream_text(st["stream_id"]) == "kept"
    assert pub.get_stream(st["stream_id"])["text"] == "kept"
    assert [s["stream_id"] for s in pub.workflow_streams(wf["id"])] == [st["stream_id"]]
