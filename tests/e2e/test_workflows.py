"""Agent workflows over the real binary: the REST routes, what a WebSocket subscriber receives for each of
them (in order, with no event for a refused request), AI output streams, snapshots mid-stream, a restart on
the same data directory, and the stream idle timeout.
"""

import asyncio
import json
import time

from awtest import (
    assert_json_error,
    connect_agent,
    recv_json_skip,
    run,
    wait_until,
    ws_connect,
)

PHASES = ["requirements", "design", "implementation", "testing", "deployment", "completed"]


def call(server, method, path, body=None, headers=None):
    """One request; `body` is a dict/list (sent as JSON) or the exact text. Returns (status, headers, body)."""
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    return server.http(method, path, body, h)


async def acall(server, method, path, body=None, headers=None):
    return await asyncio.to_thread(call, server, method, path, body, headers)


def create_workflow(server, agent_id, name="Build the login page", **extra):
    status, _, body = call(server, "POST", "/api/workflows", {"agent_id": agent_id, "name": name, **extra})
    assert status == 201, body
    return body


class Subscriber:
    """A WebSocket on one agent that checks every event's type, agent and seq (consecutive: a refused
    request that had published anything would show up as a gap or an unexpected type)."""

    def __init__(self, ws, agent_id, seq):
        self.ws = ws
        self.agent_id = agent_id
        self.seq = seq

    async def expect(self, type_):
        ev = await recv_json_skip(self.ws, what=f"a {type_} event")
        assert ev["type"] == type_, f"expected {type_}, got {ev!r}"
        assert ev["agent_id"] == self.agent_id
        self.seq += 1
        assert ev["seq"] == self.seq, f"expected seq {self.seq}: {ev!r}"
        return ev["data"]

    async def snapshot(self):
        await self.ws.send('{"type":"snapshot"}')
        msg = await recv_json_skip(self.ws, what="the snapshot")
        assert msg["type"] == "snapshot", msg
        assert msg["data"]["seq"] == self.seq, msg
        return msg["data"]["state"]


async def subscribe(server, agent_id):
    ws, hello = await connect_agent(server, agent_id)
    return Subscriber(ws, agent_id, hello["data"]["seq"])


def test_workflow_lifecycle_reaches_subscribers_in_order(server):
    agent = "agent-life"

    async def main():
        sub = await subscribe(server, agent)
        try:
            # create
            status, _, wf = await acall(
                server, "POST", "/api/workflows", {"agent_id": agent, "name": "Build login", "metadata": {"team": "web"}}
            )
            assert status == 201, wf
            wid = wf["id"]
            assert wid.startswith("wf_")
            assert wf["agent_id"] == agent and wf["name"] == "Build login" and wf["metadata"] == {"team": "web"}
            assert wf["phase"] == "requirements" and wf["progress"] == 0 and wf["number"] == 1
            assert wf["created_at"] and wf["updated_at"] and wf["requirements"] is None
            created = await sub.expect("workflow_created")
            assert created == wf

            # requirements: text and structured items
            req = {"text": "Users log in with email", "items": [{"id": "R1", "text": "password reset"}, "2FA later"]}
            status, _, body = await acall(server, "POST", f"/api/workflows/{wid}/requirements", req)
            assert status == 200, body
            assert body["requirements"]["text"] == req["text"] and body["requirements"]["revision"] == 1
            data = await sub.expect("requirements_submitted")
            assert data["workflow_id"] == wid
            assert data["requirements"]["items"] == req["items"]
            assert data["requirements"]["text"] == req["text"]

            # an illegal transition: 409 naming the allowed phases, and no event
            status, _, body = await acall(server, "POST", f"/api/workflows/{wid}/phase", {"phase": "testing"})
            err = assert_json_error(status, body, 409)
            assert err["code"] == "illegal_transition"
            assert err["allowed"] == ["design", "failed", "cancelled"]
            assert err["from"] == "requirements" and err["to"] == "testing"

            # legal transitions, each broadcast with from and to
            for before, after in zip(PHASES[:3], PHASES[1:3]):
                status, _, body = await acall(
                    server, "POST", f"/api/workflows/{wid}/phase", {"phase": after, "reason": f"{before} done"}
                )
                assert status == 200, body
                assert body["phase"] == after and body["phase_reason"] == f"{before} done"
                data = await sub.expect("phase_changed")
                assert data == {"workflow_id": wid, "from": before, "to": after, "reason": f"{before} done"}

            # progress, and bad progress values (400, no event)
            status, _, body = await acall(server, "POST", f"/api/workflows/{wid}/progress", {"percent": 42, "message": "half"})
            assert status == 200 and body["progress"] == 42 and body["progress_message"] == "half", body
            assert await sub.expect("progress") == {"workflow_id": wid, "percent": 42, "message": "half"}
            for bad in [{"percent": 101}, {"percent": -1}, {"percent": "50"}, {"percent": True}, {"percent": None},
                        {}, {"percent": 5, "message": 7}, {"percent": 5, "extra": 1}]:
                status, _, body = await acall(server, "POST", f"/api/workflows/{wid}/progress", bad)
                err = assert_json_error(status, body, 400)
                assert err["code"] == "bad_field", (bad, err)
            status, _, body = await acall(server, "POST", f"/api/workflows/{wid}/progress", {"percent": 99.9})
            assert status == 200 and body["progress"] == 99, body
            assert (await sub.expect("progress"))["percent"] == 99

            # an AI output stream
            status, _, body = await acall(server, "POST", f"/api/workflows/{wid}/streams")
            assert status == 201, body
            sid = body["stream_id"]
            assert sid.startswith("st_") and body["workflow_id"] == wid
            data = await sub.expect("stream")
            assert data == {"stream_id": sid, "workflow_id": wid, "started": True}

            pieces = ["Hello", ", ", "wörld", " \"quoted\"\n", "emoji 😀", "\ttab", "\\ back"] + [f" {i}" for i in range(13)]
            for i, piece in enumerate(pieces):
                status, _, body = await acall(server, "POST", f"/api/streams/{sid}/append", {"delta": piece})
                assert status == 202, body
                assert body["index"] == i and body["stream_id"] == sid
                data = await sub.expect("stream")
                assert data == {"stream_id": sid, "workflow_id": wid, "index": i, "delta": piece}
                assert body["seq"] == sub.seq
                if i == 9:
                    # mid-stream: the snapshot shows the text so far and the workflow with its streams
                    state = await sub.snapshot()
                    assert [w["id"] for w in state["workflows"]] == [wid]
                    w = state["workflows"][0]
                    assert w["phase"] == "implementation" and w["progress"] == 99
                    assert w["requirements"]["text"] == req["text"]
                    assert w["streams"][0]["stream_id"] == sid and w["streams"][0]["status"] == "streaming"
                    assert len(state["streams"]) == 1
                    st = state["streams"][0]
                    assert st["stream_id"] == sid and st["workflow_id"] == wid
                    assert st["text"] == "".join(pieces[:10])
                    assert st["index"] == 10
                    assert st["started_at"]

            # the index guard
            status, _, body = await acall(server, "POST", f"/api/streams/{sid}/append", {"delta": "x", "index": 3})
            err = assert_json_error(status, body, 409)
            assert err["code"] == "index_mismatch" and err["expected"] == len(pieces)

            status, _, body = await acall(server, "GET", f"/api/streams/{sid}")
            assert status == 200 and body["text"] == "".join(pieces) and body["status"] == "streaming", body

            full = "".join(pieces)
            status, _, body = await acall(server, "POST", f"/api/streams/{sid}/end", {"status": "completed"})
            assert status == 200, body
            assert body["status"] == "completed" and body["length"] == len(full)
            data = await sub.expect("stream")
            assert data["done"] is True and data["stream_id"] == sid and data["status"] == "completed"
            assert data["length"] == len(full) and data["bytes"] == len(full.encode()) and data["deltas"] == len(pieces)

            # ended: appends and a second end are conflicts
            status, _, body = await acall(server, "POST", f"/api/streams/{sid}/append", {"delta": "late"})
            assert assert_json_error(status, body, 409)["code"] == "stream_ended"
            status, _, body = await acall(server, "POST", f"/api/streams/{sid}/end", {"status": "failed"})
            assert assert_json_error(status, body, 409)["code"] == "stream_ended"

            state = await sub.snapshot()
            assert state["streams"] == []
            assert state["workflows"][0]["streams"][0]["status"] == "completed"

            # the rest of the pipeline, then nothing more
            for before, after in zip(PHASES[2:], PHASES[3:]):
                status, _, body = await acall(server, "POST", f"/api/workflows/{wid}/phase", {"phase": after})
                assert status == 200, body
                assert await sub.expect("phase_changed") == {"workflow_id": wid, "from": before, "to": after, "reason": None}
            status, _, body = await acall(server, "POST", f"/api/workflows/{wid}/phase", {"phase": "failed"})
            err = assert_json_error(status, body, 409)
            assert err["allowed"] == []
            status, _, body = await acall(server, "POST", f"/api/workflows/{wid}/progress", {"percent": 1})
            assert assert_json_error(status, body, 409)["code"] == "workflow_finished"

            # the HTTP history holds the same events the subscriber saw, with nothing in between
            status, _, hist = await acall(server, "GET", f"/api/agents/{agent}/events")
            assert [e["seq"] for e in hist["events"]] == list(range(1, sub.seq + 1))
        finally:
            await sub.ws.close()

    run(main())


def test_unknown_ids_and_bad_bodies_get_json_errors(server):
    wf = create_workflow(server, "agent-err")
    wid = wf["id"]
    missing = "wf_0000000000000000"
    for method, path, body in [
        ("GET", f"/api/workflows/{missing}", None),
        ("DELETE", f"/api/workflows/{missing}", None),
        ("POST", f"/api/workflows/{missing}/requirements", {"text": "x"}),
        ("POST", f"/api/workflows/{missing}/phase", {"phase": "design"}),
        ("POST", f"/api/workflows/{missing}/progress", {"percent": 1}),
        ("POST", f"/api/workflows/{missing}/cancel", None),
        ("POST", f"/api/workflows/{missing}/streams", None),
    ]:
        status, _, resp = call(server, method, path, body)
        assert assert_json_error(status, resp, 404)["code"] == "workflow_not_found", (method, path)
    for method, path, body in [
        ("GET", "/api/streams/st_nope", None),
        ("POST", "/api/streams/st_nope/append", {"delta": "x"}),
        ("POST", "/api/streams/st_nope/end", {"status": "completed"}),
    ]:
        status, _, resp = call(server, method, path, body)
        assert assert_json_error(status, resp, 404)["code"] == "stream_not_found", (method, path)

    cases = [
        ("/api/workflows", "not json", "bad_json"),
        ("/api/workflows", "[1, 2]", "bad_json"),
        ("/api/workflows", "", "bad_json"),
        ("/api/workflows", {"agent_id": "a"}, "bad_field"),
        ("/api/workflows", {"agent_id": "a", "name": ""}, "bad_field"),
        ("/api/workflows", {"agent_id": "a", "name": 5}, "bad_field"),
        ("/api/workflows", {"agent_id": "a", "name": "n", "metadata": [1]}, "bad_field"),
        ("/api/workflows", {"agent_id": "a", "name": "n", "nmae": "typo"}, "bad_field"),
        ("/api/workflows", {"agent_id": "bad id!", "name": "n"}, "bad_agent_id"),
        (f"/api/workflows/{wid}/requirements", {}, "bad_field"),
        (f"/api/workflows/{wid}/requirements", {"items": "not a list"}, "bad_field"),
        (f"/api/workflows/{wid}/requirements", {"items": [1]}, "bad_field"),
        (f"/api/workflows/{wid}/phase", {"phase": "done"}, "bad_field"),
        (f"/api/workflows/{wid}/phase", {}, "bad_field"),
        (f"/api/workflows/{wid}/cancel", {"reason": 1}, "bad_field"),
    ]
    for path, body, code in cases:
        status, _, resp = call(server, "POST", path, body)
        assert assert_json_error(status, resp, 400)["code"] == code, (path, body, resp)

    status, _, body = call(server, "POST", f"/api/workflows/{wid}/streams")
    sid = body["stream_id"]
    for body, code in [({}, "bad_field"), ({"delta": ""}, "bad_field"), ({"delta": 1}, "bad_field"),
                       ({"delta": "x", "index": -1}, "bad_field"), ("{", "bad_json")]:
        status, _, resp = call(server, "POST", f"/api/streams/{sid}/append", body)
        assert assert_json_error(status, resp, 400)["code"] == code, (body, resp)
    for body in [{}, {"status": "streaming"}, {"status": "done"}]:
        status, _, resp = call(server, "POST", f"/api/streams/{sid}/end", body)
        assert assert_json_error(status, resp, 400)["code"] == "bad_field", (body, resp)

    status, headers, resp = call(server, "GET", "/api/workflows")
    assert_json_error(status, resp, 405)
    assert headers.get("allow") == "POST"
    # nothing above was half-applied: the workflow is as created, with one open, empty stream
    status, _, now = call(server, "GET", f"/api/workflows/{wid}")
    assert status == 200
    assert now["phase"] == "requirements" and now["requirements"] is None and now["progress"] == 0
    assert [s["deltas"] for s in now["streams"]] == [0]


def test_listing_pages_cancel_and_delete(server):
    agent = "agent-list"
    ids = [create_workflow(server, agent, name=f"w{i}")["id"] for i in range(5)]
    create_workflow(server, "agent-other")

    seen, cursor = [], None
    while True:
        path = f"/api/agents/{agent}/workflows?limit=2" + (f"&cursor={cursor}" if cursor else "")
        status, _, page = call(server, "GET", path)
        assert status == 200 and page["agent_id"] == agent, page
        seen += [w["id"] for w in page["workflows"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ids
    status, _, page = call(server, "GET", f"/api/agents/{agent}/workflows")
    assert [w["number"] for w in page["workflows"]] == [1, 2, 3, 4, 5]
    status, _, page = call(server, "GET", "/api/agents/nobody/workflows")
    assert status == 200 and page["workflows"] == [] and page["next_cursor"] is None
    for query, code in [("limit=0", "bad_limit"), ("limit=201", "bad_limit"), ("limit=x", "bad_limit"),
                        ("cursor=abc", "bad_cursor")]:
        status, _, body = call(server, "GET", f"/api/agents/{agent}/workflows?{query}")
        assert assert_json_error(status, body, 400)["code"] == code
    status, _, body = call(server, "GET", "/api/agents/bad%20id/workflows")
    assert_json_error(status, body, 400)

    async def main():
        sub = await subscribe(server, agent)
        try:
            wid = ids[0]
            status, _, body = await acall(server, "DELETE", f"/api/workflows/{wid}")
            err = assert_json_error(status, body, 409)
            assert err["code"] == "workflow_active" and err["phase"] == "requirements"
            status, _, body = await acall(server, "POST", f"/api/workflows/{wid}/cancel", {"reason": "not needed"})
            assert status == 200 and body["phase"] == "cancelled", body
            data = await sub.expect("phase_changed")
            assert data == {"workflow_id": wid, "from": "requirements", "to": "cancelled", "reason": "not needed"}
            status, _, body = await acall(server, "POST", f"/api/workflows/{wid}/cancel")
            assert assert_json_error(status, body, 409)["code"] == "illegal_transition"
            status, _, body = await acall(server, "DELETE", f"/api/workflows/{wid}")
            assert status == 200 and body == {"workflow_id": wid, "deleted": True}, body
            assert await sub.expect("workflow_deleted") == {"workflow_id": wid, "streams": []}
            status, _, body = await acall(server, "GET", f"/api/workflows/{wid}")
            assert assert_json_error(status, body, 404)["code"] == "workflow_not_found"
            state = await sub.snapshot()
            assert [w["id"] for w in state["workflows"]] == ids[1:]
        finally:
            await sub.ws.close()

    run(main())


def test_a_retried_create_returns_the_same_workflow(server):
    headers = {"Idempotency-Key": "create-once"}
    body = {"agent_id": "agent-idem", "name": "once"}
    status, h1, first = call(server, "POST", "/api/workflows", body, headers)
    assert status == 201, first
    status, h2, again = call(server, "POST", "/api/workflows", body, headers)
    assert status == 200, again
    assert again["id"] == first["id"]
    assert h2.get("idempotent-replayed") == "true"
    status, _, page = call(server, "GET", "/api/agents/agent-idem/workflows")
    assert len(page["workflows"]) == 1
    status, _, resp = call(server, "POST", "/api/workflows", body, {"Idempotency-Key": "x" * 257})
    assert assert_json_error(status, resp, 400)["code"] == "bad_idempotency_key"


def test_resume_with_a_lost_epoch_gets_the_workflow_snapshot(server):
    agent = "agent-resume"
    wf = create_workflow(server, agent)
    status, _, st = call(server, "POST", f"/api/workflows/{wf['id']}/streams")
    call(server, "POST", f"/api/streams/{st['stream_id']}/append", {"delta": "partial "})
    call(server, "POST", f"/api/streams/{st['stream_id']}/append", {"delta": "answer"})

    async def main():
        ws = await ws_connect(server, f"/ws/agents/{agent}?since=1&epoch=not-this-one")
        try:
            hello = await recv_json_skip(ws, what="connected")
            assert hello["type"] == "connected" and hello["data"]["recovered"] is False
            snap = await recv_json_skip(ws, what="the snapshot fallback")
            assert snap["type"] == "snapshot" and snap["data"]["seq"] == 4
            state = snap["data"]["state"]
            assert [w["id"] for w in state["workflows"]] == [wf["id"]]
            assert state["streams"][0]["text"] == "partial answer"
            assert state["streams"][0]["index"] == 2
        finally:
            await ws.close()

    run(main())


def test_workflows_and_an_unfinished_stream_survive_a_restart(start_server):
    agent = "agent-restart"
    first = start_server()
    wf = create_workflow(first, agent, name="survivor", metadata={"k": [1, 2]})
    wid = wf["id"]
    call(first, "POST", f"/api/workflows/{wid}/requirements", {"text": "reqs", "items": [{"id": "R1"}]})
    call(first, "POST", f"/api/workflows/{wid}/phase", {"phase": "design"})
    call(first, "POST", f"/api/workflows/{wid}/progress", {"percent": 30, "message": "drafting"})
    status, _, st = call(first, "POST", f"/api/workflows/{wid}/streams")
    sid = st["stream_id"]
    pieces = ["The design ", "has three ", "parts: ", "é, ", "😀"]
    for p in pieces:
        status, _, body = call(first, "POST", f"/api/streams/{sid}/append", {"delta": p})
        assert status == 202, body
    rc, _ = first.stop()
    assert rc == 0

    second = start_server("--data-dir", str(first.data_dir))
    status, _, got = call(second, "GET", f"/api/workflows/{wid}")
    assert status == 200, got
    assert got["phase"] == "design" and got["progress"] == 30 and got["progress_message"] == "drafting"
    assert got["requirements"]["items"] == [{"id": "R1"}] and got["metadata"] == {"k": [1, 2]}
    status, _, stream = call(second, "GET", f"/api/streams/{sid}")
    assert status == 200 and stream["text"] == "".join(pieces) and stream["index"] == len(pieces), stream
    status, _, page = call(second, "GET", f"/api/agents/{agent}/workflows")
    assert [w["id"] for w in page["workflows"]] == [wid]

    async def main():
        sub = await subscribe(second, agent)
        try:
            assert sub.seq == 5 + len(pieces)  # seq goes on where it stopped
            state = await sub.snapshot()
            assert [w["id"] for w in state["workflows"]] == [wid]
            assert state["streams"][0]["stream_id"] == sid
            assert state["streams"][0]["text"] == "".join(pieces)
            # the stream goes on with the next index
            status, _, body = await acall(second, "POST", f"/api/streams/{sid}/append", {"delta": " more"})
            assert status == 202 and body["index"] == len(pieces), body
            data = await sub.expect("stream")
            assert data["index"] == len(pieces) and data["delta"] == " more"
            status, _, body = await acall(second, "POST", f"/api/streams/{sid}/end", {"status": "completed"})
            assert status == 200, body
            data = await sub.expect("stream")
            full = "".join(pieces) + " more"
            assert data["done"] is True and data["length"] == len(full) and data["deltas"] == len(pieces) + 1
            # and the next workflow is number 2
            status, _, wf2 = await acall(second, "POST", "/api/workflows", {"agent_id": agent, "name": "next"})
            assert wf2["number"] == 2
            await sub.expect("workflow_created")
        finally:
            await sub.ws.close()

    run(main())


def test_an_idle_stream_is_ended_as_failed(start_server):
    server = start_server("--stream-idle-timeout", "1")
    agent = "agent-idle"
    wf = create_workflow(server, agent)

    async def main():
        sub = await subscribe(server, agent)
        try:
            status, _, st = await acall(server, "POST", f"/api/workflows/{wf['id']}/streams")
            sid = st["stream_id"]
            await sub.expect("stream")
            await acall(server, "POST", f"/api/streams/{sid}/append", {"delta": "and then the model"})
            await sub.expect("stream")
            data = await sub.expect("stream")  # nothing else happens: the next event is the timeout
            assert data == {"stream_id": sid, "workflow_id": wf["id"], "status": "failed", "reason": "idle_timeout",
                            "deltas": 1, "length": 18, "bytes": 18, "done": True}
            status, _, body = await acall(server, "POST", f"/api/streams/{sid}/append", {"delta": "late"})
            assert assert_json_error(status, body, 409)["code"] == "stream_ended"
            state = await sub.snapshot()
            assert state["streams"] == []
        finally:
            await sub.ws.close()

    run(main())
    wait_until(lambda: "event=stream_expired" in server.log, 5, "the stream_expired log line")


def test_a_stream_fed_in_time_stays_open(start_server):
    """A stream that gets a delta well within its idle timeout outlives the timeout. The proof that the
    server's idle check ran late enough is a marker, not a sleep: a second stream, opened after the fed
    one and never fed, is expired by that check; the fed one must come out of it still streaming."""
    server = start_server("--stream-idle-timeout", "2")
    fed_wf = create_workflow(server, "agent-busy")
    idle_wf = create_workflow(server, "agent-busy")
    status, _, st = call(server, "POST", f"/api/workflows/{fed_wf['id']}/streams")
    assert status == 201, st
    sid = st["stream_id"]
    status, _, st = call(server, "POST", f"/api/workflows/{idle_wf['id']}/streams")
    assert status == 201, st
    marker = st["stream_id"]
    opened = time.monotonic()
    n = 0
    while True:
        status, _, body = call(server, "POST", f"/api/streams/{sid}/append", {"delta": "."})
        assert status == 202, f"append #{n + 1}, {time.monotonic() - opened:.1f}s after the open: {body!r}"
        n += 1
        _, _, mark = call(server, "GET", f"/api/streams/{marker}")
        if mark["status"] != "streaming":
            break
        assert time.monotonic() - opened < 30, "the never-fed stream was not expired within 30 s"
        time.sleep(0.1)  # pacing only: the gap between deltas stays a small part of the 2 s timeout
    assert mark["status"] == "failed" and mark["reason"] == "idle_timeout", mark
    status, _, body = call(server, "GET", f"/api/streams/{sid}")
    assert body["status"] == "streaming" and body["text"] == "." * n, body
