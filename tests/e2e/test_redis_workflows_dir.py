"""Many nodes over Redis: any node finds any workflow or stream by its id alone (the directory in Redis),
lists every node's agents, and a stream's idle timeout fires once, even when the node that served it
died. The fixtures (a private redis-server, agentwire nodes with --broker) are test_redis_nodes.py's."""

import asyncio
import hashlib
import json
import secrets

from awtest import RSS_SCALE, connect_agent, recv_json_skip, run, wait_until
from test_redis_nodes import Redis, free_port, nodes, pytestmark, redis  # noqa: F401 (fixtures)


def call(server, method, path, body=None):
    h = {"Content-Type": "application/json"}
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    return server.http(method, path, body, h)


def ok(server, method, path, body=None, status=200):
    got, _, answer = call(server, method, path, body)
    assert got == status, (server.port, method, path, got, answer)
    return answer


def error_code(server, method, path, body=None, status=404):
    got, _, answer = call(server, method, path, body)
    assert got == status, (server.port, method, path, got, answer)
    return answer["error"]["code"]


def create(server, agent_id, name="Build the login page"):
    return ok(server, "POST", "/api/workflows", {"agent_id": agent_id, "name": name}, 201)


def test_a_workflow_made_on_one_node_is_read_and_changed_through_the_others(nodes):
    n1, n2, n3 = nodes(3)
    wf = create(n1, "dir-a")
    wid = wf["id"]
    assert ok(n2, "GET", f"/api/workflows/{wid}") == wf
    assert ok(n2, "POST", f"/api/workflows/{wid}/phase", {"phase": "design"})["phase"] == "design"
    assert ok(n3, "POST", f"/api/workflows/{wid}/progress", {"percent": 40})["progress"] == 40
    body = ok(n3, "POST", f"/api/workflows/{wid}/requirements", {"text": "log in with email"})
    assert body["requirements"]["text"] == "log in with email"
    got = ok(n3, "GET", f"/api/workflows/{wid}")
    assert (got["phase"], got["progress"], got["requirements"]["text"]) == ("design", 40, "log in with email")
    assert ok(n3, "GET", f"/api/workflows/{wid}/streams")["streams"] == []
    assert [w["id"] for w in ok(n2, "GET", "/api/agents/dir-a/workflows")["workflows"]] == [wid]
    for n in (n1, n2, n3):
        got = ok(n, "GET", f"/api/workflows/{wid}")
        assert (got["phase"], got["progress"], got["requirements"]["text"]) == ("design", 40, "log in with email")
    ok(n2, "POST", f"/api/workflows/{wid}/cancel")
    ok(n3, "DELETE", f"/api/workflows/{wid}")
    for n in (n1, n2, n3):
        assert error_code(n, "GET", f"/api/workflows/{wid}") == "workflow_not_found"
        assert error_code(n, "POST", f"/api/workflows/{wid}/progress", {"percent": 50}) == "workflow_not_found"


def test_a_deleted_workflow_is_404_on_every_node(nodes):
    n1, n2, n3 = nodes(3)
    wid = create(n1, "dir-gone")["id"]
    keep = create(n1, "dir-gone", "another")["id"]
    ok(n1, "POST", f"/api/workflows/{wid}/cancel")
    ok(n1, "DELETE", f"/api/workflows/{wid}")
    for n in (n1, n2, n3):
        assert error_code(n, "GET", f"/api/workflows/{wid}") == "workflow_not_found"
        assert error_code(n, "POST", f"/api/workflows/{wid}/phase", {"phase": "design"}) == "workflow_not_found"
        assert ok(n, "GET", f"/api/workflows/{keep}")["id"] == keep


def test_a_stream_opened_on_one_node_is_fed_and_ended_through_the_others(nodes):
    n1, n2, n3 = nodes(3)
    wid = create(n1, "dir-s")["id"]

    async def scenario():
        ws, _ = await connect_agent(n1, "dir-s")
        st = await asyncio.to_thread(ok, n1, "POST", f"/api/workflows/{wid}/streams", None, 201)
        sid = st["stream_id"]
        assert (await asyncio.to_thread(ok, n2, "POST", f"/api/streams/{sid}/append", {"delta": "Hello, "}, 202))["index"] == 0
        assert (await asyncio.to_thread(ok, n2, "POST", f"/api/streams/{sid}/append",
                                        {"delta": "world", "index": 1}, 202))["index"] == 1
        ended = await asyncio.to_thread(ok, n3, "POST", f"/api/streams/{sid}/end", {"status": "completed"})
        assert ended["status"] == "completed" and ended["deltas"] == 2, ended
        # The subscriber on node 1 saw the whole stream, once, in order.
        types = []
        while True:
            e = await recv_json_skip(ws, what="the stream's events")
            types.append(e["data"].get("delta") or ("done" if e["data"].get("done") else e["type"]))
            if e["data"].get("done"):
                break
        assert types == ["stream", "Hello, ", "world", "done"], types
        await ws.close()
        return sid

    sid = run(scenario())
    for n in (n1, n2, n3):
        got = ok(n, "GET", f"/api/streams/{sid}")
        assert (got["status"], got["text"], got["workflow_id"]) == ("completed", "Hello, world", wid), got
    assert error_code(n2, "POST", f"/api/streams/{sid}/append", {"delta": "late"}, 409) == "stream_ended"


def test_workflows_and_streams_outlive_a_killed_node(nodes):
    n1, n2 = nodes(2)
    wid = create(n1, "dir-k")["id"]
    sid = ok(n1, "POST", f"/api/workflows/{wid}/streams", None, 201)["stream_id"]
    ok(n1, "POST", f"/api/streams/{sid}/append", {"delta": "partial"}, 202)
    n1.kill()
    (n4,) = nodes(1)  # a node that comes up afterwards, with nothing in memory
    for n in (n2, n4):
        assert ok(n, "GET", f"/api/workflows/{wid}")["id"] == wid
        assert ok(n, "GET", f"/api/streams/{sid}")["text"] == "partial"
    ok(n4, "POST", f"/api/streams/{sid}/append", {"delta": " and more"}, 202)
    for n in (n2, n4):
        assert ok(n, "GET", f"/api/streams/{sid}")["text"] == "partial and more"


def test_an_unknown_id_is_404_without_growing_memory_and_redis_down_is_503(nodes, redis):
    (n1,) = nodes(1)
    wid = create(n1, "dir-u")["id"]
    assert error_code(n1, "GET", "/api/workflows/wf_0000000000000000") == "workflow_not_found"
    assert error_code(n1, "POST", "/api/workflows/wf_0000000000000000/phase", {"phase": "design"}) == "workflow_not_found"
    assert error_code(n1, "POST", "/api/streams/st_0000000000000000/append", {"delta": "x"}) == "stream_not_found"
    assert error_code(n1, "GET", "/api/streams/st_0000000000000000") == "stream_not_found"

    # A miss asks Redis each time and keeps nothing: many distinct unknown ids leave the RSS where it was.
    def misses(start):
        for i in range(start, start + 1500):
            assert call(n1, "GET", f"/api/workflows/wf_{i:016x}")[0] == 404

    misses(0)  # warm up the allocator and the connection
    before = n1.rss_kb()
    misses(10_000)
    grown = n1.rss_kb() - before
    assert grown < 2048 * RSS_SCALE, f"RSS grew {grown} kB over 1,500 unknown ids"

    redis.stop()
    # Not 404: the id may well exist, the node cannot tell.
    assert error_code(n1, "GET", "/api/workflows/wf_1111111111111111", status=503) == "broker_unavailable"
    assert error_code(n1, "POST", "/api/workflows/wf_1111111111111111/phase", {"phase": "design"}, 503) == "broker_unavailable"
    assert error_code(n1, "POST", "/api/streams/st_1111111111111111/end", {"status": "completed"}, 503) == "broker_unavailable"
    assert error_code(n1, "GET", "/api/agents", status=503) == "broker_unavailable"
    assert call(n1, "GET", f"/api/workflows/{wid}")[0] == 200  # found here without Redis: this node holds it


def test_the_agents_list_is_the_same_on_every_node(nodes):
    n1, n2, n3 = nodes(3)
    made = {"dir-l1": [create(n1, "dir-l1")["id"], create(n2, "dir-l1", "second")["id"]],
            "dir-l2": [create(n2, "dir-l2")["id"]],
            "dir-l3": [create(n3, "dir-l3")["id"]]}
    lists = [ok(n, "GET", "/api/agents") for n in (n1, n2, n3)]
    assert lists[0] == lists[1] == lists[2], lists
    assert [(a["agent_id"], a["workflows"]) for a in lists[0]["agents"]] == [("dir-l1", 2), ("dir-l2", 1), ("dir-l3", 1)]
    assert lists[0]["next"] is None
    page = ok(n3, "GET", "/api/agents?limit=2")
    assert [a["agent_id"] for a in page["agents"]] == ["dir-l1", "dir-l2"] and page["next"] == "dir-l2", page
    rest = ok(n1, "GET", "/api/agents?limit=2&after=dir-l2")
    assert [a["agent_id"] for a in rest["agents"]] == ["dir-l3"] and rest["next"] is None, rest
    # Deleting an agent's last workflow takes it off the list, everywhere.
    wid = made["dir-l2"][0]
    ok(n3, "POST", f"/api/workflows/{wid}/cancel")
    ok(n3, "DELETE", f"/api/workflows/{wid}")
    for n in (n1, n2, n3):
        assert [a["agent_id"] for a in ok(n, "GET", "/api/agents")["agents"]] == ["dir-l1", "dir-l3"]


def test_an_idle_stream_whose_node_died_is_ended_once_by_a_survivor(nodes):
    n1, n2, n3 = nodes(3, extra=("--stream-idle-timeout", "1"))
    wid = create(n1, "dir-idle")["id"]

    async def scenario():
        ws, _ = await connect_agent(n2, "dir-idle")
        sid = (await asyncio.to_thread(ok, n1, "POST", f"/api/workflows/{wid}/streams", None, 201))["stream_id"]
        await asyncio.to_thread(ok, n1, "POST", f"/api/streams/{sid}/append", {"delta": "thinking"}, 202)
        n1.kill()
        events = []
        while not any(e["data"].get("done") for e in events):
            events.append(await recv_json_skip(ws, what="the idle stream's end"))
        # A marker a whole timeout later: a second stream, never fed, ends only after another timeout has
        # passed, by which time a second end of the first (a claim taken again) would have been published.
        marker = (await asyncio.to_thread(ok, n3, "POST", f"/api/workflows/{wid}/streams", None, 201))["stream_id"]
        while True:
            e = await recv_json_skip(ws, what="the marker stream's end")
            events.append(e)
            if e["data"].get("stream_id") == marker and e["data"].get("done"):
                break
        await ws.close()
        return sid, events

    sid, events = run(scenario())
    ends = [e["data"] for e in events if e["data"].get("stream_id") == sid and e["data"].get("done")]
    assert len(ends) == 1, events
    assert ends[0]["status"] == "failed" and ends[0]["reason"] == "idle_timeout" and ends[0]["deltas"] == 1, ends
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)), seqs
    got = ok(n3, "GET", f"/api/streams/{sid}")
    assert (got["status"], got["text"]) == ("failed", "thinking"), got
    lines = [line for n in (n2, n3) for line in n.log.splitlines() if "event=stream_expired" in line and sid in line]
    assert len(lines) == 1, lines


def test_a_key_limited_to_some_agents_is_refused_another_agents_workflow_from_any_node(nodes, tmp_path):
    keys = {"all": "awk_" + secrets.token_hex(32), "team": "awk_" + secrets.token_hex(32)}
    spec = {"all": None, "team": ["team-a.*"]}
    entries = []
    for name, key in keys.items():
        e = {"name": name, "sha256": hashlib.sha256(key.encode()).hexdigest(), "scopes": ["workflows", "read"]}
        if spec[name] is not None:
            e["agents"] = spec[name]
        entries.append(e)
    kf = tmp_path / "api-keys.json"
    kf.write_text(json.dumps({"keys": entries}))
    n1, n2 = nodes(2, extra=("--api-keys-file", str(kf)))
    n1.credential = keys["all"]
    other = create(n1, "dir-other")["id"]
    mine = create(n1, "team-a.one")["id"]
    n2.credential = keys["team"]
    # Node 2 has never loaded either agent: it must learn the owner from Redis before it can refuse.
    assert error_code(n2, "GET", f"/api/workflows/{other}", status=403) == "agent_forbidden"
    assert error_code(n2, "POST", f"/api/workflows/{other}/phase", {"phase": "design"}, 403) == "agent_forbidden"
    assert ok(n2, "GET", f"/api/workflows/{mine}")["id"] == mine
    assert [a["agent_id"] for a in ok(n2, "GET", "/api/agents")["agents"]] == ["team-a.one"]
