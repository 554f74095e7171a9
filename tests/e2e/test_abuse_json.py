"""JSON a careless or hostile publisher sends, over the real binary: numbers that do not fit a double,
duplicate keys (also spelled with escapes), generic events shaped like the domain's, and what must hold
afterwards — every answer, broadcast and stored record is JSON any parser reads one way, and every stored
workflow loads back after a restart.
"""

import http.client
import json
import subprocess

from awtest import IO_TIMEOUT, binary_path, clean_env, RawHttp, RawWebSocket, assert_json_error, connect_agent, pipelined, recv_json_skip, run

OUT_OF_RANGE = ["1e400", "-1e400", "1" + "0" * 400]


def strict_loads(text):
    """json.loads that refuses what is not JSON (Python would read Infinity and NaN)."""

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def call(server, method, path, body=None):
    """`body` is a dict (sent as JSON) or the exact text."""
    if isinstance(body, dict):
        body = json.dumps(body)
    return server.http(method, path, body, {"Content-Type": "application/json"})


def make_workflow(server, agent, **extra):
    status, _, wf = call(server, "POST", "/api/workflows", {"agent_id": agent, "name": "n", **extra})
    assert status == 201, wf
    return wf


def open_stream(server, workflow_id):
    status, _, st = call(server, "POST", f"/api/workflows/{workflow_id}/streams", {})
    assert status == 201, st
    return st["stream_id"]


def expect_refused(server, path, body, code):
    status, _, resp = call(server, "POST", path, body)
    err = assert_json_error(status, resp, 400)
    assert err["code"] == code, f"{path} {body!r}: {resp!r}"


def pipe_ndjson(server, workflow_id, line: bytes):
    conn = RawHttp(server.host, server.port)
    try:
        conn.send(
            (
                f"POST /api/workflows/{workflow_id}/streams/pipe HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                f"Content-Type: application/x-ndjson\r\nContent-Length: {len(line)}\r\n\r\n"
            ).encode()
            + line
        )
        return conn.read_response()
    finally:
        conn.close()


async def expect_only(ws, seq, type_):
    """The next event is `type_` at `seq`: nothing a refused request sent reached subscribers."""
    ev = await recv_json_skip(ws, what=f"{type_} at seq {seq}")
    assert ev["type"] == type_ and ev["seq"] == seq, ev
    return ev


def test_numbers_that_do_not_fit_a_double_are_refused_on_every_route(server):
    agent = "agent-inf"

    async def main():
        ws, hello = await connect_agent(server, agent)
        seq = hello["data"]["seq"]
        try:
            wf = make_workflow(server, agent)
            wid = wf["id"]
            sid = open_stream(server, wid)
            for n in OUT_OF_RANGE:
                routes = [
                    ("/api/workflows", f'{{"agent_id":"{agent}","name":"n","metadata":{{"n":{n}}}}}'),
                    ("/api/workflows", f'{{"agent_id":"{agent}","name":"n","metadata":{{"a":[{{"b":{n}}}]}}}}'),
                    (f"/api/workflows/{wid}/requirements", f'{{"text":"t","items":[{{"n":{n}}}]}}'),
                    (f"/api/workflows/{wid}/phase", f'{{"phase":"design","reason":{n}}}'),
                    (f"/api/workflows/{wid}/progress", f'{{"percent":{n}}}'),
                    (f"/api/workflows/{wid}/progress", f'{{"percent":5,"message":{n}}}'),
                    (f"/api/workflows/{wid}/cancel", f'{{"reason":{n}}}'),
                    (f"/api/workflows/{wid}/streams", f'{{"n":{n}}}'),
                    (f"/api/streams/{sid}/append", f'{{"delta":"a","index":{n}}}'),
                    (f"/api/streams/{sid}/end", f'{{"status":"completed","reason":{n}}}'),
                    (f"/api/agents/{agent}/events", f'{{"type":"t","data":{{"n":{n}}}}}'),
                    (f"/api/agents/{agent}/events", f'{{"type":"t","data":{{"deep":[[{{"n":{n}}}]]}}}}'),
                    (f"/api/agents/{agent}/events", f'{{"type":"t","other":{n}}}'),
                ]
                for path, body in routes:
                    expect_refused(server, path, body, "number_out_of_range")
                status, _, resp = pipe_ndjson(server, wid, f'{{"delta":"a","n":{n}}}\n'.encode())
                assert assert_json_error(status, resp, 400)["code"] == "number_out_of_range", resp
            # Large numbers that do fit are kept as sent. Before that event, subscribers saw only the
            # workflow, its stream and the piped streams (opened, then failed): nothing refused.
            status, _, resp = call(
                server, "POST", f"/api/agents/{agent}/events", '{"type":"t","data":{"n":1.7e308,"m":-1e-400}}'
            )
            assert status == 202, resp
            while True:
                ev = await recv_json_skip(ws, what="the accepted event")
                seq += 1
                assert ev["seq"] == seq, ev
                if ev["type"] == "t":
                    break
                assert ev["type"] in ("workflow_created", "stream"), f"a refused request published {ev!r}"
            assert ev["data"] == {"n": 1.7e308, "m": 0.0}, ev
        finally:
            await ws.close()

    run(main())
    # Nothing the server holds or sends is out of range: the list and the history are strict JSON.
    page = strict_loads(http_text(server, f"/api/agents/{agent}/workflows"))
    assert len(page["workflows"]) == 1, page
    for ev in strict_loads(http_text(server, f"/api/agents/{agent}/events"))["events"]:
        assert ev["type"] in ("workflow_created", "stream", "t"), ev


def test_a_stored_workflow_with_extreme_numbers_survives_a_restart(start_server):
    agent = "agent-extreme"
    first = start_server()
    metadata = {"max": 1.7976931348623157e308, "min": -1.7976931348623157e308, "tiny": 5e-324,
                "big_int": 18446744073709551615, "neg_int": -9223372036854775808, "nested": [{"x": 1e300}]}
    wf = make_workflow(first, agent, metadata=metadata)
    wid = wf["id"]
    status, _, body = call(first, "POST", f"/api/workflows/{wid}/requirements", {"items": [{"w": 1e308}, "s"]})
    assert status == 200, body
    # 2^64 does not fit an integer: it is kept as a double, and loads back as one.
    status, _, wf2 = call(first, "POST", "/api/workflows",
                          '{"agent_id":"agent-extreme","name":"n2","metadata":{"over":18446744073709551616}}')
    assert status == 201, wf2
    rc, _ = first.stop()
    assert rc == 0

    second = start_server("--data-dir", str(first.data_dir))
    raw = http_text(second, f"/api/workflows/{wid}")
    got = strict_loads(raw)
    assert got["metadata"] == metadata, got["metadata"]
    assert got["requirements"]["items"] == [{"w": 1e308}, "s"]
    raw = http_text(second, f"/api/agents/{agent}/workflows")
    page = strict_loads(raw)
    assert [w["id"] for w in page["workflows"]] == [wid, wf2["id"]]
    assert page["workflows"][1]["metadata"]["over"] == 18446744073709551616.0

    async def main():
        ws, _ = await connect_agent(second, agent)
        try:
            await ws.send('{"type":"snapshot"}')
            while True:
                text = await ws.recv()
                msg = strict_loads(text)
                if msg["type"] == "snapshot":
                    break
            assert [w["id"] for w in msg["data"]["state"]["workflows"]] == [wid, wf2["id"]]
        finally:
            await ws.close()

    run(main())


def http_text(server, path):
    """The body of a GET as text, not parsed: what a strict client reads."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=IO_TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        text = resp.read().decode("utf-8")
        assert resp.status == 200, text
        return text
    finally:
        conn.close()


def test_duplicate_keys_are_refused_however_they_are_spelled(server):
    agent = "agent-dup"

    async def main():
        ws, hello = await connect_agent(server, agent)
        seq = hello["data"]["seq"]
        try:
            wid = make_workflow(server, agent)["id"]
            sid = open_stream(server, wid)
            await expect_only(ws, seq + 1, "workflow_created")
            await expect_only(ws, seq + 2, "stream")
            seq += 2
            cases = [
                (f"/api/agents/{agent}/events", r'{"type":"t","data":{"a":1},"d\u0061ta":{"b":2}}'),
                (f"/api/agents/{agent}/events", r'{"type":"t","data":{"a":1},"data":{"b":2}}'),
                (f"/api/agents/{agent}/events", r'{"type":"a","t\u0079pe":"b"}'),
                (f"/api/agents/{agent}/events", r'{"type":"t","data":{"x":{"k":1,"\u006b":2}}}'),
                ("/api/workflows", '{"agent_id":"%s","name":"a","n\\u0061me":"b"}' % agent),
                ("/api/workflows", '{"agent_id":"%s","name":"a","metadata":{"k":1,"k":2}}' % agent),
                (f"/api/workflows/{wid}/requirements", r'{"text":"a","text":"b"}'),
                (f"/api/workflows/{wid}/requirements", r'{"items":[{"id":1,"i\u0064":2}]}'),
                (f"/api/workflows/{wid}/phase", r'{"phase":"design","ph\u0061se":"failed"}'),
                (f"/api/workflows/{wid}/progress", r'{"percent":5,"percent":6}'),
                (f"/api/streams/{sid}/append", r'{"delta":"a","delta":"b"}'),
                (f"/api/streams/{sid}/end", r'{"status":"completed","st\u0061tus":"failed"}'),
            ]
            for path, body in cases:
                expect_refused(server, path, body, "duplicate_key")
            # A body that merely looks alike is fine: keys differ once unescaped.
            status, _, resp = call(
                server, "POST", f"/api/agents/{agent}/events", r'{"type":"t","data":{"a":1,"\u0041":2}}'
            )
            assert status == 202, resp
            ev = await expect_only(ws, seq + 1, "t")
            assert ev["data"] == {"a": 1, "A": 2}
            # The escaped spelling of `data` alone is the event's data.
            status, _, resp = call(server, "POST", f"/api/agents/{agent}/events", r'{"type":"t","d\u0061ta":{"b":2}}')
            assert status == 202, resp
            ev = await expect_only(ws, seq + 2, "t")
            assert ev["data"] == {"b": 2}
        finally:
            await ws.close()

    run(main())


# ---- generic events are never merged ----------------------------------------------------------------------

# Enough unmergeable events to fill what the kernel buffers for the connection (its send buffer grows to
# 4 MiB by default): what follows then waits in the server's own queue, where merging happens.
FILLER_EVENTS = 6000
FILLER_PAD = "f" * 1000
RUN = 20


def test_generic_events_shaped_like_the_domains_reach_a_lagging_subscriber_as_published(start_server):
    server = start_server("--max-queue-bytes", str(16 << 20))
    agent = "agent-generic-lag"
    wid = make_workflow(server, agent)["id"]
    sid = open_stream(server, wid)
    slow = RawWebSocket(server, f"/ws/agents/{agent}", rcvbuf=4096)  # reads nothing until the end
    try:
        events = f"/api/agents/{agent}/events"
        for start in range(0, FILLER_EVENTS, 100):
            reqs = [(events, {"type": "filler", "data": {"i": i, "pad": FILLER_PAD}}) for i in range(start, start + 100)]
            for status, _, body in pipelined(server, reqs):
                assert status == 202, body
                filler_last = body["seq"]
        reqs = []
        # generic progress (without a workflow_id: the generic route refuses one) and events shaped like
        # stream deltas (the type `stream` is the workflow routes' alone); then the domain's own
        for i in range(RUN):
            reqs.append((events, {"type": "progress", "data": {"percent": i, "message": None}}))
        for i in range(RUN):
            reqs.append((events, {"type": "delta", "data": {"stream_id": sid, "workflow_id": wid, "index": i, "delta": "g"}}))
        for i in range(RUN):
            reqs.append((f"/api/workflows/{wid}/progress", {"percent": i}))
        for i in range(RUN):
            reqs.append((f"/api/streams/{sid}/append", {"delta": "d", "index": i}))
        answers = pipelined(server, reqs)
        for status, _, body in answers:
            assert status in (200, 202), body
        generic_seqs = {body["seq"] for _, _, body in answers[: 2 * RUN]}
        status, _, body = call(server, "POST", events, {"type": "done"})
        assert status == 202, body
        final_seq = body["seq"]
        domain_seqs = set(range(filler_last + 1, final_seq)) - generic_seqs  # progress answers carry no seq
        assert len(domain_seqs) == 2 * RUN

        generic_seen = 0
        domain_messages = 0
        domain_covered = 0
        last = None
        while last is None or last < final_seq:
            frame = slow.recv_frame(timeout=30)
            assert frame is not None, f"connection ended after seq {last} of {final_seq}"
            _, op, payload = frame
            if op != 0x1:
                continue
            msg = strict_loads(payload)
            if "seq" not in msg:
                if msg["type"] == "connected":
                    last = msg["data"]["seq"]
                continue
            first = msg.get("first_seq", msg["seq"])
            assert first == last + 1, f"seq {first} after {last}"
            last = msg["seq"]
            covered = set(range(first, msg["seq"] + 1))
            if covered & generic_seqs:
                assert covered == {msg["seq"]}, f"a generic event was merged: {msg!r}"
                assert "count" not in msg["data"], msg
                generic_seen += 1
            elif covered & domain_seqs:
                domain_messages += 1
                domain_covered += len(covered)
        assert generic_seen == 2 * RUN
        assert domain_covered == 2 * RUN
        # The domain's own events did merge under the same conditions: the subscriber really lagged.
        assert domain_messages < 2 * RUN, "the subscriber never lagged enough for merging to happen"
    finally:
        slow.close()


# ---- what feeds a snapshot is bounded -----------------------------------------------------------------


def test_workflows_per_agent_are_bounded_and_deleting_finished_ones_frees_room(start_server):
    server = start_server("--max-workflows-per-agent", "3")
    agent = "agent-many"
    ids = [make_workflow(server, agent)["id"] for _ in range(3)]
    status, _, resp = call(server, "POST", "/api/workflows", {"agent_id": agent, "name": "fourth"})
    err = assert_json_error(status, resp, 409)
    assert err["code"] == "too_many_workflows" and err["max"] == 3, resp
    # Another agent has its own room.
    make_workflow(server, "agent-other")
    status, _, resp = call(server, "POST", f"/api/workflows/{ids[0]}/cancel", {})
    assert status == 200, resp
    status, _, resp = server.http("DELETE", f"/api/workflows/{ids[0]}")
    assert status == 200, resp
    make_workflow(server, agent)


def test_metadata_and_requirements_are_bounded_in_bytes(server):
    agent = "agent-bytes"
    big = {"blob": "x" * (64 << 10)}
    status, _, resp = call(server, "POST", "/api/workflows", {"agent_id": agent, "name": "n", "metadata": big})
    err = assert_json_error(status, resp, 400)
    assert err["code"] == "metadata_too_large" and err["max_bytes"] == 64 << 10, resp
    # Escapes count as sent out: 11k control characters take 66k bytes as JSON.
    status, _, resp = call(server, "POST", "/api/workflows",
                           {"agent_id": agent, "name": "n", "metadata": {"c": "\x01" * 11000}})
    assert assert_json_error(status, resp, 400)["code"] == "metadata_too_large", resp
    wid = make_workflow(server, agent, metadata={"blob": "x" * 60000})["id"]
    status, _, resp = call(server, "POST", f"/api/workflows/{wid}/requirements",
                           {"text": "t", "items": [{"i": "y" * 1000} for _ in range(70)]})
    err = assert_json_error(status, resp, 400)
    assert err["code"] == "requirements_too_large", resp
    status, _, resp = call(server, "POST", f"/api/workflows/{wid}/requirements",
                           {"text": "t", "items": [{"i": "y" * 1000} for _ in range(60)]})
    assert status == 200, resp


def test_open_streams_are_bounded_per_workflow_and_per_agent(start_server):
    server = start_server("--max-open-streams-per-workflow", "2", "--max-open-streams-per-agent", "3")
    agent = "agent-streams"
    w1 = make_workflow(server, agent)["id"]
    w2 = make_workflow(server, agent)["id"]
    s1 = open_stream(server, w1)
    open_stream(server, w1)
    status, _, resp = call(server, "POST", f"/api/workflows/{w1}/streams", {})
    err = assert_json_error(status, resp, 409)
    assert err["code"] == "too_many_streams" and err["per"] == "workflow" and err["max"] == 2, resp
    open_stream(server, w2)
    status, _, resp = call(server, "POST", f"/api/workflows/{w2}/streams", {})
    err = assert_json_error(status, resp, 409)
    assert err["code"] == "too_many_streams" and err["per"] == "agent" and err["max"] == 3, resp
    # An ended stream no longer counts.
    status, _, resp = call(server, "POST", f"/api/streams/{s1}/end", {"status": "completed"})
    assert status == 200, resp
    open_stream(server, w2)


def test_a_client_with_default_flags_gets_the_largest_snapshot_an_agent_can_have(start_server):
    """Fill one agent until every kind of growth is refused (workflows with metadata, requirements, open
    streams of text that escapes to six times its size), then ask for its snapshot with default flags:
    it arrives whole, within half of --max-queue-bytes, and the connection stays open."""
    server = start_server()
    agent = "agent-full"
    queue_bytes = 4 << 20
    control = "\x01" * 10000  # 60000 bytes once escaped
    workflows = []
    refused = None
    for i in range(100):
        status, _, resp = call(server, "POST", "/api/workflows",
                               {"agent_id": agent, "name": f"w{i}", "metadata": {"c": control}})
        if status != 201:
            refused = (status, resp)
            break
        workflows.append(resp["id"])
    assert refused is not None, "the snapshot's bound was never reached"
    err = assert_json_error(*refused, 409)
    assert err["code"] == "snapshot_full" and err["max_bytes"] == queue_bytes // 2, refused
    assert 20 <= len(workflows) < 40, len(workflows)
    status, _, resp = call(server, "POST", f"/api/workflows/{workflows[0]}/requirements", {"text": control})
    assert assert_json_error(status, resp, 409)["code"] == "snapshot_full", resp
    # Room is made by finishing and deleting, then filled with stream text.
    for wid in workflows[:8]:
        assert call(server, "POST", f"/api/workflows/{wid}/cancel", {"reason": "make room"})[0] == 200
        assert server.http("DELETE", f"/api/workflows/{wid}")[0] == 200
    sid = open_stream(server, workflows[8])
    appended = 0
    while True:
        status, _, resp = call(server, "POST", f"/api/streams/{sid}/append", {"delta": control})
        if status != 202:
            break
        appended += 1
    assert assert_json_error(status, resp, 409)["code"] == "snapshot_full", resp
    assert appended >= 5, appended
    # Finishing is still possible at the bound.
    assert call(server, "POST", f"/api/workflows/{workflows[9]}/cancel", {})[0] == 200

    async def main():
        ws, _ = await connect_agent(server, agent, max_size=None)  # a browser takes any message size
        try:
            for _ in range(3):  # a client may ask again; each answer fits
                await ws.send('{"type":"snapshot"}')
                while True:
                    text = await ws.recv()
                    msg = strict_loads(text)
                    if msg["type"] == "snapshot":
                        break
                size = len(text.encode())
                assert size <= queue_bytes // 2, size
                assert size > queue_bytes // 2 - (queue_bytes // 2) // 8 - 200_000, size
                state = msg["data"]["state"]
                assert len(state["workflows"]) == len(workflows) - 8
                assert state["streams"][0]["text"] == control * appended
            await ws.send('{"type":"ping"}')
            assert (await recv_json_skip(ws, what="the pong"))["type"] == "pong"
        finally:
            await ws.close()

    run(main())
    assert server.stats()["connections"]["dropped_slow"] == 0


def test_a_snapshot_bound_that_would_not_fit_a_clients_queue_is_refused_at_start(tmp_path):
    r = subprocess.run(
        [binary_path(), "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path),
         "--max-queue-bytes", "1M", "--max-snapshot-bytes", "600K"],
        capture_output=True, text=True, timeout=15, env=clean_env(), stdin=subprocess.DEVNULL,
    )
    assert r.returncode != 0, r.stderr
    assert "--max-snapshot-bytes" in r.stderr + r.stdout, r.stderr
