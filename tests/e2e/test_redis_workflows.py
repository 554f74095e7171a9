"""Workflows and streams decided across nodes over Redis: each command is decided against a versioned state
record and applied with its event only while that version is unchanged (decided again on a conflict), so
two nodes never both move a workflow, an illegal transition is 409 from every node, snapshots are the same
on every node, and a stream's deltas keep their order and its 1 MiB bound whichever node takes them.
A batch that spans two Redis instances, one of them down, answers each publish for itself.

Until a node can find a workflow it never saw, each node first looks at the agent (its workflows list),
which loads the agent's state there."""

import json
import threading

import pytest

from awtest import connect_agent, pipelined, recv_json_skip, run, wait_until, ws_connect
from test_redis_nodes import REDIS, Redis, nodes, redis  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (scripts/deps.sh test installs it)")

PHASES = ["requirements", "design", "implementation", "testing", "deployment", "completed"]


def call(server, method, path, body=None):
    h = {"Content-Type": "application/json"}
    if isinstance(body, (dict, list)):
        body = json.dumps(body)
    return server.http(method, path, body, h)


def look_at(server, agent):
    """Loads the agent's state on `server` (what a node that never saw the agent needs first)."""
    status, _, body = call(server, "GET", f"/api/agents/{agent}/workflows")
    assert status == 200, body
    return body


def create(server, agent, name="wf"):
    status, _, body = call(server, "POST", "/api/workflows", {"agent_id": agent, "name": name})
    assert status == 201, body
    return body["id"]


def events_of(server, agent):
    status, _, page = call(server, "GET", f"/api/agents/{agent}/events?since=0&limit=1000")
    assert status == 200, page
    return page["events"]


def test_concurrent_phase_changes_through_two_nodes_exactly_one_wins(nodes):
    n1, n2 = nodes(2)
    agent = "agent-race"
    workflows = [create(n1, agent, f"wf-{i}") for i in range(4)]
    look_at(n2, agent)
    rounds = 0
    for wid in workflows:
        for to in PHASES[1:]:
            barrier = threading.Barrier(2)
            answers = [None, None]

            def move(i, node):
                barrier.wait()
                answers[i] = call(node, "POST", f"/api/workflows/{wid}/phase", {"phase": to})

            threads = [threading.Thread(target=move, args=(i, n)) for i, n in enumerate((n1, n2))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            statuses = sorted(a[0] for a in answers)
            assert statuses == [200, 409], answers
            loser = next(a for a in answers if a[0] == 409)
            assert loser[2]["error"]["code"] == "illegal_transition", loser
            rounds += 1
    changed = [e for e in events_of(n1, agent) if e["type"] == "phase_changed"]
    assert len(changed) == rounds
    # One per round, in order: each workflow went through every phase once.
    for wid in workflows:
        assert [e["data"]["to"] for e in changed if e["data"]["workflow_id"] == wid] == PHASES[1:]


def test_illegal_transition_is_409_from_every_node_even_one_that_decided_before(nodes):
    n1, n2, n3 = nodes(3)
    agent = "agent-stale"
    wid = create(n1, agent)
    for n in (n2, n3):
        look_at(n, agent)
    # n2 decides, so it holds the state of that moment; the workflow then moves on through n1 and n3.
    status, _, body = call(n2, "POST", f"/api/workflows/{wid}/phase", {"phase": "design"})
    assert status == 200, body
    status, _, body = call(n1, "POST", f"/api/workflows/{wid}/phase", {"phase": "implementation"})
    assert status == 200, body
    status, _, body = call(n3, "POST", f"/api/workflows/{wid}/phase", {"phase": "testing"})
    assert status == 200, body
    # n2's own state says design: moving to implementation looks legal to it, and must not be.
    for n in (n2, n1, n3):
        status, _, body = call(n, "POST", f"/api/workflows/{wid}/phase", {"phase": "implementation"})
        assert status == 409 and body["error"]["code"] == "illegal_transition", (n.port, status, body)
        assert body["error"]["from"] == "testing", body
    # and the legal next step still works from the stale node, once
    status, _, body = call(n2, "POST", f"/api/workflows/{wid}/phase", {"phase": "deployment"})
    assert status == 200 and body["phase"] == "deployment", body
    # Reads on every node show what Redis holds.
    for n in (n1, n2, n3):
        status, _, body = call(n, "GET", f"/api/workflows/{wid}")
        assert status == 200 and body["phase"] == "deployment", (n.port, body)
    assert [e["data"]["to"] for e in events_of(n3, agent) if e["type"] == "phase_changed"] == [
        "design", "implementation", "testing", "deployment"]


def test_snapshots_are_identical_on_three_nodes_after_interleaved_commands(nodes):
    ns = nodes(3)
    agent = "agent-snap"

    async def scenario():
        # Subscribers on two nodes keep the channel live there; the third only reads.
        subs = [await connect_agent(n, agent) for n in ns[:2]]
        wids = [create(ns[i % 3], agent, f"wf-{i}") for i in range(3)]
        for n in ns:
            look_at(n, agent)
        step = 0
        for wid in wids:
            for to in PHASES[1:3]:
                status, _, body = call(ns[step % 3], "POST", f"/api/workflows/{wid}/phase", {"phase": to})
                assert status == 200, body
                step += 1
            status, _, body = call(ns[step % 3], "POST", f"/api/workflows/{wid}/progress",
                                   {"percent": 10 * step, "message": f"step {step}"})
            assert status == 200, body
            step += 1
        status, _, st = call(ns[step % 3], "POST", f"/api/workflows/{wids[0]}/streams", {})
        assert status == 201, st
        for n in ns:
            look_at(n, agent)
        for i in range(6):
            status, _, body = call(ns[i % 3], "POST", f"/api/streams/{st['stream_id']}/append", {"delta": f"<{i}>"})
            assert status == 202, body
        # The last append's seq: a node's own history may not have heard it yet (pub/sub is not
        # read-your-writes across nodes).
        last = body["seq"]
        # Every subscriber has seen every event; then each node's snapshot is asked for.
        for ws, _ in subs:
            while True:
                ev = await recv_json_skip(ws, what="events")
                if ev["seq"] >= last:
                    break
        snaps = []
        for ws, _ in subs:
            await ws.send('{"type":"snapshot"}')
            msg = await recv_json_skip(ws, what="snapshot")
            assert msg["type"] == "snapshot" and msg["data"]["seq"] == last, msg
            snaps.append(msg["data"]["state"])
        # The third node, without a subscriber: a fresh subscriber's snapshot there.
        ws3 = await ws_connect(ns[2], f"/ws/agents/{agent}?since=0&epoch=nope")
        hello3 = await recv_json_skip(ws3, what="connected on the third node")
        assert hello3["type"] == "connected", hello3
        snap3 = await recv_json_skip(ws3, what="snapshot on the third node")
        assert snap3["type"] == "snapshot" and snap3["data"]["seq"] == last, snap3
        snaps.append(snap3["data"]["state"])
        assert snaps[0] == snaps[1] == snaps[2], snaps
        streams = snaps[0]["streams"]
        assert [s["text"] for s in streams] == ["".join(f"<{i}>" for i in range(6))], streams
        for ws, _ in subs:
            await ws.close()
        await ws3.close()

    run(scenario())


def test_stream_appends_alternating_between_nodes_keep_order_text_and_bound(nodes):
    n1, n2 = nodes(2)
    agent = "agent-stream"
    wid = create(n1, agent)
    look_at(n2, agent)
    status, _, st = call(n2, "POST", f"/api/workflows/{wid}/streams", {})
    assert status == 201, st
    sid = st["stream_id"]
    look_at(n1, agent)
    piece = 64 * 1024
    text = []
    for i in range(16):  # exactly 1 MiB in all
        delta = chr(ord("a") + i) * piece
        status, _, body = call((n1, n2)[i % 2], "POST", f"/api/streams/{sid}/append", {"delta": delta, "index": i})
        assert status == 202, (i, status, body)
        text.append(delta)
    for n in (n1, n2):
        status, _, body = call(n, "POST", f"/api/streams/{sid}/append", {"delta": "x"})
        assert status == 409 and body["error"]["code"] == "stream_too_long", (n.port, body)
    deltas = [e for e in events_of(n1, agent) if e["type"] == "stream" and "delta" in e["data"]]
    assert [e["data"]["index"] for e in deltas] == list(range(16))
    for n in (n1, n2):
        status, _, body = call(n, "GET", f"/api/streams/{sid}")
        assert status == 200 and body["index"] == 16, (n.port, {k: v for k, v in body.items() if k != "text"})
        assert body["text"] == "".join(text)


def test_concurrent_appends_through_two_nodes_keep_indexes_whole(nodes):
    n1, n2 = nodes(2)
    agent = "agent-appends"
    wid = create(n1, agent)
    look_at(n2, agent)
    status, _, st = call(n1, "POST", f"/api/workflows/{wid}/streams", {})
    assert status == 201, st
    sid = st["stream_id"]
    look_at(n2, agent)
    per_node = 40
    errors = []

    contended = []

    def appender(node, tag):
        for i in range(per_node):
            # 503 state_contended says "try again" (the other node kept winning the race): a client retries
            # it, as it retries any 503. How often it happens depends on timing; the outcome may not.
            for _ in range(50):
                status, _, body = call(node, "POST", f"/api/streams/{sid}/append", {"delta": f"[{tag}{i}]"})
                if status != 503 or body["error"]["code"] != "state_contended":
                    break
                contended.append((tag, i))
            if status != 202:
                errors.append((tag, i, status, body))

    threads = [threading.Thread(target=appender, args=(n, t)) for n, t in ((n1, "a"), (n2, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:3]
    deltas = [e["data"] for e in events_of(n2, agent) if e["type"] == "stream" and "delta" in e["data"]]
    assert [d["index"] for d in deltas] == list(range(2 * per_node))
    want = "".join(d["delta"] for d in deltas)
    for n in (n1, n2):
        wait_until(lambda: call(n, "GET", f"/api/streams/{sid}")[2].get("text") == want, 10, "the whole text")


def test_a_retried_command_answers_as_the_duplicate_on_every_node(nodes):
    n1, n2 = nodes(2)
    agent = "agent-retry"
    wid = create(n1, agent)
    look_at(n2, agent)
    key = {"Idempotency-Key": "move-1"}
    h = {"Content-Type": "application/json", **key}
    status, _, first = n1.http("POST", f"/api/workflows/{wid}/phase", json.dumps({"phase": "design"}), h)
    assert status == 200, first
    # The node that stored it (its state now refuses the move) and the other (its state would allow it).
    for n in (n1, n2, n1):
        status, headers, body = n.http("POST", f"/api/workflows/{wid}/phase", json.dumps({"phase": "design"}), h)
        assert status == 200 and headers.get("idempotent-replayed") == "true", (n.port, status, body)
        assert body["phase"] == "design", body
    assert [e["data"]["to"] for e in events_of(n2, agent) if e["type"] == "phase_changed"] == ["design"]


def test_a_batch_over_two_instances_with_one_down_answers_each_publish_for_itself(nodes, redis, tmp_path):
    second = Redis(tmp_path / "redis2")
    second.start()
    try:
        (n1,) = nodes(1, brokers=f"{redis.url},{second.url}")
        agents = [f"part-{i}" for i in range(16)]
        second.stop()
        # Which agents live on the instance that is down: one publish each, alone.
        down = set()
        for a in agents:
            status, _, body = n1.post_event(a, {"type": "t", "data": {}})
            assert status in (202, 503), (status, body)
            if status == 503:
                assert body["error"]["code"] == "broker_unavailable", body
                down.add(a)
        assert 0 < len(down) < len(agents), down
        # All in one write on one connection: they share commits, which span both instances.
        for _ in range(3):
            answers = pipelined(n1, [(f"/api/agents/{a}/events", {"type": "t", "data": {}}) for a in agents])
            for a, (status, _, body) in zip(agents, answers):
                if a in down:
                    assert status == 503 and body["error"]["code"] == "broker_unavailable", (a, status, body)
                else:
                    assert status == 202, (a, status, body)
        # What was acknowledged is stored, once each.
        for a in set(agents) - down:
            status, _, page = n1.http("GET", f"/api/agents/{a}/events?since=0")
            assert status == 200 and [e["seq"] for e in page["events"]] == [1, 2, 3, 4], (a, page)
    finally:
        second.stop()
