"""Stats and metrics per Redis instance (--broker): each node shows, per instance, its state and what it did
there (batches, events, errors, reconnects, commit time, watched channels, pub/sub messages, gaps read
back). Each test starts its own redis-server (test_redis_nodes.Redis), never the system service."""

import re
import signal

import pytest

import redis_mode
from awtest import Server, connect_agent, recv_json_skip, run, wait_until
from test_redis_nodes import REDIS, redis  # noqa: F401 (the redis fixture)

pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (scripts/deps.sh test installs it)")


@pytest.fixture
def node(tmp_path):
    started = []

    def start(brokers):
        s = Server(tmp_path / f"node{len(started)}", ["--broker", brokers, "--threads", "1"])
        started.append(s)
        return s

    yield start
    for s in started:
        if s.running:
            s.stop()
        print(f"---- agentwire log ({' '.join(s.args)}) ----\n{s.log_tail()}")  # shown when the test failed


def instances(server) -> list[dict]:
    stats = server.stats()
    assert stats["broker"]["kind"] == "redis" and stats["store"]["kind"] == "redis", stats
    return stats["broker"]["instances"]


def metrics(server) -> dict[str, float]:
    """The agentwire_broker_* samples of /metrics, keyed by name and labels as written."""
    status, _, text = server.http("GET", "/metrics")
    assert status == 200, text
    out = {}
    for line in text.splitlines():
        m = re.match(r'^(agentwire_broker_\w+\{instance="[^"]*"\}) (\S+)$', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def test_stats_and_metrics_count_per_instance(node, redis):
    n1 = node(redis.url)
    n2 = node(redis.url)
    name = f"redis://127.0.0.1:{redis.port}/0"
    assert " store=redis " in next(line for line in n1.lines if "event=listening" in line)
    before = instances(n1)
    assert [(i["name"], i["state"], i["batches"], i["events"]) for i in before] == [(name, "up", 0, 0)], before

    async def scenario():
        ws, _ = await connect_agent(n2, "stats-a")
        wait_until(lambda: instances(n2)[0]["watched_channels"] == 1, 15, "n2 watching stats-a")
        seqs = [n1.publish("stats-a", "t", {"i": i}) for i in range(5)]
        assert seqs == [1, 2, 3, 4, 5]
        for s in seqs:
            assert (await recv_json_skip(ws, what=f"event {s}"))["seq"] == s
        await ws.close()

    run(scenario())
    one = instances(n1)[0]
    assert one["state"] == "up" and one["events"] == 5 and 1 <= one["batches"] <= 5, one
    assert one["errors"] == 0 and one["reconnects"] == 0 and one["commit_seconds_sum"] > 0, one
    assert one["watched_channels"] == 0 and one["messages_received"] == 0, one
    two = instances(n2)[0]
    assert two["events"] == 0 and two["batches"] == 0, two
    assert 1 <= two["messages_received"] <= 5 and two["gaps_backfilled"] == 0, two
    # The subscriber left: n2 lets go of the channel.
    wait_until(lambda: instances(n2)[0]["watched_channels"] == 0, 15, "n2 no longer watching stats-a")

    m = metrics(n1)
    label = f'{{instance="{name}"}}'
    assert m[f"agentwire_broker_up{label}"] == 1
    assert m[f"agentwire_broker_events_total{label}"] == 5
    assert 1 <= m[f"agentwire_broker_batches_total{label}"] <= 5
    assert m[f"agentwire_broker_commit_seconds_total{label}"] > 0
    assert m[f"agentwire_broker_errors_total{label}"] == 0
    assert metrics(n2)[f"agentwire_broker_messages_received_total{label}"] >= 1


def test_a_gap_pubsub_left_is_read_back_and_counted(node, redis):
    n1 = node(redis.url)

    async def scenario():
        ws, _ = await connect_agent(n1, "gap-a")
        assert n1.publish("gap-a") == 1
        assert (await recv_json_skip(ws, what="event 1"))["seq"] == 1
        # Seq 2 stored in Redis as the batch script stores it, but its PUBLISH lost: what a node sees when
        # pub/sub drops a message.
        assert redis_mode.command(redis.port, "HINCRBY", "aw:{gap-a}:meta", "seq", "1") == b":2"
        lost = "2 0 1 0 4 0 13 0\nlost" + '{"lost":true}'  # seq version ts m #type #key #data records
        assert redis_mode.command(redis.port, "XADD", "aw:{gap-a}:events", "2-0", "e", lost) == b"$3"
        assert n1.publish("gap-a", "after") == 3
        got = [await recv_json_skip(ws, what=f"event {s}") for s in (2, 3)]
        assert [(e["seq"], e["type"]) for e in got] == [(2, "lost"), (3, "after")], got
        await ws.close()

    run(scenario())
    one = instances(n1)[0]
    assert one["gaps_backfilled"] == 1 and one["events"] == 2, one


def test_a_stopped_redis_shows_down_then_up_with_a_reconnect(node, redis):
    n1 = node(redis.url)
    name = f"redis://127.0.0.1:{redis.port}/0"
    label = f'{{instance="{name}"}}'
    assert n1.publish("down-a") == 1

    redis.stop(signal.SIGKILL)
    wait_until(lambda: instances(n1)[0]["state"] == "down", 30, "the instance shown down")
    assert metrics(n1)[f"agentwire_broker_up{label}"] == 0
    status, _, body = n1.post_event("down-a", {"type": "t", "data": {}})
    assert status == 503 and body["error"]["code"] == "broker_unavailable", (status, body)
    assert instances(n1)[0]["errors"] >= 1
    status, _, health = n1.http("GET", "/healthz")
    assert health["status"] == "degraded" and health["instances"][0]["state"] == "down", health

    redis.start()
    wait_until(lambda: instances(n1)[0]["state"] == "up", 30, "the instance shown up again")
    # The AOF kept seq 1; the writer's connection comes back on a publish (503 while Redis still loads).
    def publish_when_back():
        status, _, body = n1.post_event("down-a", {"type": "t", "data": {}})
        assert status in (202, 503), (status, body)
        return body["seq"] if status == 202 else None

    assert wait_until(publish_when_back, 30, "a publish accepted again", interval=0.1) == 2
    one = instances(n1)[0]
    assert one["reconnects"] >= 2 and one["events"] == 2, one
    assert metrics(n1)[f"agentwire_broker_up{label}"] == 1
