"""Finished AI output kept (issue 17): an ended stream's text stays with its workflow, in the store, through
restarts, until the workflow is deleted, within --store-max-bytes; snapshots carry only the summaries of
finished streams; a workflow's streams are listed; the agents that have workflows are listed in pages.
"""

import asyncio
import json
import sqlite3

import pytest

import awtest
from awtest import assert_json_error, connect_agent, recv_json_skip, run, wait_until
import redis_mode

KIB = 1024
MIB = 1024 * KIB


def call(server, method, path, body=None):
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    return server.http(method, path, body, {"Content-Type": "application/json"})


def ok(server, method, path, body=None, expect=200):
    status, _, answer = call(server, method, path, body)
    assert status == expect, f"{method} {path} answered {status}: {answer!r}"
    return answer


def create_workflow(server, agent_id, name="write the report"):
    return ok(server, "POST", "/api/workflows", {"agent_id": agent_id, "name": name}, 201)["id"]


def finished_stream(server, workflow_id, pieces, status="completed", reason=None):
    """Opens a stream, appends `pieces`, ends it; returns its id."""
    sid = ok(server, "POST", f"/api/workflows/{workflow_id}/streams", expect=201)["stream_id"]
    for p in pieces:
        ok(server, "POST", f"/api/streams/{sid}/append", {"delta": p}, 202)
    body = {"status": status}
    if reason is not None:
        body["reason"] = reason
    ok(server, "POST", f"/api/streams/{sid}/end", body)
    return sid


def stream(server, sid):
    return ok(server, "GET", f"/api/streams/{sid}")


def text_rows(db_path):
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT id, length(json) FROM state WHERE kind = '~stream_text'").fetchall()


def stored_text_ids(server, agent):
    """The streams whose finished text the server's store keeps: SQLite rows, or fields of the agent's
    state hash in Redis mode."""
    if not redis_mode.ENABLED:
        return sorted(r[0] for r in text_rows(server.data_dir / "events.db"))
    prefix = b"~stream_text\0"
    fields = redis_mode.hash_fields(server.data_dir, f"aw:{{{agent}}}:state")
    return sorted(f[len(prefix):].decode() for f in fields if f.startswith(prefix))


def test_finished_text_is_kept_listed_and_survives_a_restart(start_server):
    first = start_server()
    agent = "agent-kept"
    wid = create_workflow(first, agent)
    pieces = ["The report ", "has three ", "parts: ", "é, ", "😀, ", "and a \"quote\"\n"]
    sid = finished_stream(first, wid, pieces)
    empty = finished_stream(first, wid, [])
    open_sid = ok(first, "POST", f"/api/workflows/{wid}/streams", expect=201)["stream_id"]
    ok(first, "POST", f"/api/streams/{open_sid}/append", {"delta": "so far"}, 202)

    def check(server):
        got = stream(server, sid)
        assert got["status"] == "completed" and got["text"] == "".join(pieces), got
        assert got["workflow_id"] == wid and got["deltas"] == len(pieces) and got["ended_at"], got
        assert got["bytes"] == len("".join(pieces).encode()) and got["length"] == len("".join(pieces)), got
        assert stream(server, empty)["text"] == ""
        assert stream(server, open_sid)["text"] == "so far"
        listed = ok(server, "GET", f"/api/workflows/{wid}/streams")
        assert listed["workflow_id"] == wid
        assert [s["stream_id"] for s in listed["streams"]] == [sid, empty, open_sid]
        assert [s["status"] for s in listed["streams"]] == ["completed", "completed", "streaming"]
        for s in listed["streams"]:
            assert "text" not in s and s["workflow_id"] == wid, s
        assert listed["streams"][0]["bytes"] == got["bytes"] and listed["streams"][0]["deltas"] == len(pieces)
        assert listed["streams"][2]["index"] == 1

    check(first)
    rc, _ = first.stop()
    assert rc == 0
    assert stored_text_ids(first, agent) == sorted([sid, empty])

    second = start_server("--data-dir", str(first.data_dir))
    check(second)


def test_unknown_workflow_streams_get_workflow_not_found(server):
    status, _, body = call(server, "GET", "/api/workflows/wf_0000000000000000/streams")
    assert assert_json_error(status, body, 404)["code"] == "workflow_not_found"
    status, _, body = call(server, "GET", "/api/streams/st_0000000000000000")
    assert assert_json_error(status, body, 404)["code"] == "stream_not_found"


def test_failed_cancelled_and_idle_streams_keep_what_they_had(start_server):
    server = start_server("--stream-idle-timeout", "1")
    agent = "agent-failed"
    wid = create_workflow(server, agent)
    failed = finished_stream(server, wid, ["half ", "an answer"], status="failed", reason="model crashed")
    got = stream(server, failed)
    assert (got["status"], got["reason"], got["text"]) == ("failed", "model crashed", "half an answer"), got

    # Left alone past the idle timeout: failed by the server, with what it had.
    idle = ok(server, "POST", f"/api/workflows/{wid}/streams", expect=201)["stream_id"]
    ok(server, "POST", f"/api/streams/{idle}/append", {"delta": "and then the model"}, 202)
    wait_until(lambda: stream(server, idle)["status"] == "failed", 15, "the idle stream to be ended")
    got = stream(server, idle)
    assert got["reason"] == "idle_timeout" and got["text"] == "and then the model", got

    # Its workflow cancelled mid-stream, then the stream ended: still there.
    other = create_workflow(server, agent, name="cancelled one")
    sid = ok(server, "POST", f"/api/workflows/{other}/streams", expect=201)["stream_id"]
    ok(server, "POST", f"/api/streams/{sid}/append", {"delta": "before the cancel"}, 202)
    ok(server, "POST", f"/api/workflows/{other}/cancel", {"reason": "user stopped it"})
    ok(server, "POST", f"/api/streams/{sid}/end", {"status": "failed", "reason": "cancelled"})
    got = stream(server, sid)
    assert got["status"] == "failed" and got["text"] == "before the cancel", got


def test_text_is_deleted_with_its_workflow(start_server):
    first = start_server()
    agent = "agent-deleted"
    gone = create_workflow(first, agent, name="to delete")
    kept = create_workflow(first, agent, name="to keep")
    gone_streams = [finished_stream(first, gone, ["first ", "answer"]), finished_stream(first, gone, ["second"])]
    kept_stream = finished_stream(first, kept, ["stays"])
    ok(first, "POST", f"/api/workflows/{gone}/cancel")
    ok(first, "DELETE", f"/api/workflows/{gone}")
    for sid in gone_streams:
        status, _, body = call(first, "GET", f"/api/streams/{sid}")
        assert assert_json_error(status, body, 404)["code"] == "stream_not_found"
    status, _, body = call(first, "GET", f"/api/workflows/{gone}/streams")
    assert assert_json_error(status, body, 404)["code"] == "workflow_not_found"
    assert stream(first, kept_stream)["text"] == "stays"
    rc, _ = first.stop()
    assert rc == 0
    # Nothing of the deleted workflow's text is left in the database.
    assert stored_text_ids(first, agent) == [kept_stream]

    second = start_server("--data-dir", str(first.data_dir))
    status, _, body = call(second, "GET", f"/api/streams/{gone_streams[0]}")
    assert assert_json_error(status, body, 404)["code"] == "stream_not_found"
    assert stream(second, kept_stream)["text"] == "stays"


def test_a_snapshot_after_a_finish_holds_the_summary_without_text(server):
    agent = "agent-snap"
    wid = create_workflow(server, agent)
    done = finished_stream(server, wid, ["x" * 1000, "y" * 1000])
    open_sid = ok(server, "POST", f"/api/workflows/{wid}/streams", expect=201)["stream_id"]
    ok(server, "POST", f"/api/streams/{open_sid}/append", {"delta": "live text"}, 202)

    async def main():
        ws, _ = await connect_agent(server, agent)
        try:
            await ws.send('{"type":"snapshot"}')
            snap = await recv_json_skip(ws, what="the snapshot")
            assert snap["type"] == "snapshot", snap
            state = snap["data"]["state"]
            # open streams carry their text; the finished one only its summary, in its workflow
            assert [(s["stream_id"], s["text"]) for s in state["streams"]] == [(open_sid, "live text")]
            summaries = state["workflows"][0]["streams"]
            assert [s["stream_id"] for s in summaries] == [done, open_sid]
            assert summaries[0]["status"] == "completed" and summaries[0]["bytes"] == 2000
            assert all("text" not in s for s in summaries), summaries
            assert "x" * 100 not in json.dumps(snap)
        finally:
            await ws.close()

    run(main())
    # and the text is there on demand
    assert stream(server, done)["text"] == "x" * 1000 + "y" * 1000


@pytest.mark.embedded_only('about --store memory')
def test_the_memory_store_keeps_finished_text_while_it_runs(start_server):
    server = start_server("--store", "memory")
    wid = create_workflow(server, "agent-mem")
    sid = finished_stream(server, wid, ["in ", "memory"])
    assert stream(server, sid)["text"] == "in memory"
    ok(server, "POST", f"/api/workflows/{wid}/cancel")
    ok(server, "DELETE", f"/api/workflows/{wid}")
    status, _, _ = call(server, "GET", f"/api/streams/{sid}")
    assert status == 404


@pytest.mark.embedded_only('--store-max-bytes bounds the SQLite file')
def test_finished_text_counts_against_the_quota(tmp_path):
    # Streams of 512 KiB in 16 KiB deltas are finished until the store answers 503 store_full. The event
    # log holds at most about 74 events of the channel (--history-size 10 and the trim between prunes),
    # 1.2 MiB of deltas: what fills the rest of the 8M quota is the kept text.
    data = tmp_path / "data"
    quota = 8 * MIB
    stream_bytes = 512 * KIB
    # operations.md: the WAL (an eighth of the quota) and one transaction (here a 512 KiB text written and
    # its deltas erased) beside the database, plus the WAL index.
    slack = quota // 8 + 2 * stream_bytes + 64 * KIB
    server = awtest.Server(data, ["--history-size", "10", "--store-max-bytes", "8M"])
    delta = "z" * (16 * KIB)
    per_stream = stream_bytes // len(delta)
    finished = []
    refused = None
    largest = 0
    try:
        wid = create_workflow(server, "agent-quota")
        for _ in range(40):  # 20 MiB of text: far past the quota
            status, _, opened = call(server, "POST", f"/api/workflows/{wid}/streams")
            if status != 201:
                refused = (status, opened)
                break
            sid = opened["stream_id"]
            for _ in range(per_stream):
                status, _, body = call(server, "POST", f"/api/streams/{sid}/append", {"delta": delta})
                if status != 202:
                    refused = (status, body)
                    break
            if refused is None:
                status, _, body = call(server, "POST", f"/api/streams/{sid}/end", {"status": "completed"})
                if status == 200:
                    finished.append(sid)
                else:
                    refused = (status, body)
                    # the end did not happen: the stream is still open with all it had
                    got = stream(server, sid)
                    assert got["status"] == "streaming" and got["bytes"] == stream_bytes, got
            largest = max(largest, awtest.dir_bytes(data))
            if refused is not None:
                break
        assert refused is not None, f"{len(finished)} finished streams of 512 KiB never filled an 8M quota"
        status, body = refused
        assert assert_json_error(status, body, 503)["code"] == "store_full", refused
        # what filled it is the kept text: most of the quota, and every finished text is still readable
        assert len(finished) * stream_bytes >= quota // 2, f"only {len(finished)} streams of 512 KiB fit in 8M"
        for sid in finished:
            assert stream(server, sid)["text"] == delta * per_stream
        assert largest <= quota + slack, f"data dir reached {largest} bytes (quota {quota} + slack {slack})"

        # Deleting the workflow gives the room back: a new workflow's stream finishes again.
        ok(server, "POST", f"/api/workflows/{wid}/cancel")
        ok(server, "DELETE", f"/api/workflows/{wid}")
        again = create_workflow(server, "agent-quota", name="after the delete")
        sid = finished_stream(server, again, [delta, delta])
        assert stream(server, sid)["text"] == delta * 2
    finally:
        rc, _ = server.stop()
    assert rc == 0
    db = data / "events.db"
    assert db.stat().st_size <= quota
    assert [r[1] for r in text_rows(db)] == [len(json.dumps(delta * 2))]


def test_finished_text_is_not_held_in_memory(start_server):
    # 12 MiB of finished text, one 512 KiB stream at a time: the server holds at most the open one.
    server = start_server("--history-size", "10")
    wid = create_workflow(server, "agent-rss")
    delta = "m" * (128 * KIB)
    finished_stream(server, wid, [delta] * 4)  # warm up allocator and page cache
    before = server.rss_kb()
    sids = [finished_stream(server, wid, [delta] * 4) for _ in range(24)]
    grown_kb = server.rss_kb() - before
    assert grown_kb < 6 * 1024 * awtest.RSS_SCALE, f"RSS grew {grown_kb} KiB for 12 MiB of finished text"
    assert stream(server, sids[-1])["text"] == delta * 4


def test_the_agents_list_pages_by_id(server):
    empty = ok(server, "GET", "/api/agents")
    assert empty == {"agents": [], "next": None}
    counts = {f"agent-{i:02d}": 1 + i % 3 for i in range(23)}
    made = {}
    for agent, n in sorted(counts.items(), reverse=True):  # created out of order: listed by id
        made[agent] = [create_workflow(server, agent, name=f"wf {k}") for k in range(n)]
    server.publish("agent-no-workflows")  # a channel without workflows is not listed

    seen = []
    after = None
    pages = 0
    while True:
        path = "/api/agents?limit=10" + (f"&after={after}" if after else "")
        page = ok(server, "GET", path)
        assert len(page["agents"]) <= 10
        seen.extend(page["agents"])
        pages += 1
        after = page["next"]
        if after is None:
            break
        assert after == page["agents"][-1]["agent_id"]
    assert pages == 3
    assert [a["agent_id"] for a in seen] == sorted(counts)
    assert {a["agent_id"]: a["workflows"] for a in seen} == counts
    latest = ok(server, "GET", f"/api/workflows/{made['agent-05'][-1]}")["updated_at"]
    assert next(a for a in seen if a["agent_id"] == "agent-05")["updated"] == latest

    # default limit 100 holds them all; after the last id nothing follows
    assert len(ok(server, "GET", "/api/agents")["agents"]) == 23
    assert ok(server, "GET", "/api/agents?after=agent-22") == {"agents": [], "next": None}
    assert [a["agent_id"] for a in ok(server, "GET", "/api/agents?after=agent-1&limit=2")["agents"]] == [
        "agent-10", "agent-11"]

    # an agent whose only workflow is deleted leaves the list
    wid = made["agent-00"][0]
    ok(server, "POST", f"/api/workflows/{wid}/cancel")
    ok(server, "DELETE", f"/api/workflows/{wid}")
    first = ok(server, "GET", "/api/agents?limit=1")["agents"][0]
    assert first["agent_id"] == "agent-01"

    for bad in ("limit=0", "limit=1001", "limit=x", "limit=-1", "limit="):
        status, _, body = call(server, "GET", f"/api/agents?{bad}")
        assert assert_json_error(status, body, 400)["code"] == "bad_limit", bad
    assert len(ok(server, "GET", "/api/agents?limit=1000")["agents"]) == 22
    status, _, body = call(server, "GET", "/api/agents?after=not%20an%20id")
    assert assert_json_error(status, body, 400)["code"] == "bad_after"
