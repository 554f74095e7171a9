"""Many nodes over Redis (--broker): every node serves every agent, resume works across nodes, nothing
acknowledged is lost. Each test starts its own redis-server on a free loopback port in a temporary
directory (AOF on, appendfsync always), never the system service."""

import asyncio
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from awtest import IO_TIMEOUT, Server, connect_agent, recv_json_skip, run, wait_until, ws_connect

REDIS = shutil.which("redis-server")
pytestmark = pytest.mark.skipif(REDIS is None, reason="redis-server is not installed (scripts/deps.sh test installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """One redis-server of our own: loopback, a free port, AOF with fsync on every write, no RDB."""

    def __init__(self, directory):
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.dir), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def answers():
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    s.sendall(b"PING\r\n")
                    return s.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(answers, 20, f"redis-server on port {self.port}")

    def stop(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path / "redis")
    r.start()
    yield r
    r.stop()


@pytest.fixture
def nodes(tmp_path, redis):
    started = []

    def start(n=3, brokers=None, extra=()):
        for i in range(n):
            s = Server(tmp_path / f"node{len(started)}", ["--broker", brokers or redis.url, "--threads", "1", *extra])
            started.append(s)
        return started[-n:]

    yield start
    for s in started:
        if s.running:
            s.stop()
        print(f"---- agentwire log ({' '.join(s.args)}) ----\n{s.log_tail()}")  # shown when the test failed


async def read_events(ws, count, what="events"):
    out = []
    while len(out) < count:
        out.append(await recv_json_skip(ws, what=f"{what} ({len(out)}/{count})"))
    return out


def test_publish_on_one_node_reaches_subscribers_on_the_others_once_in_order(nodes):
    n1, n2, n3 = nodes(3)

    async def scenario():
        ws2, hello2 = await connect_agent(n2, "agent-x")
        ws3, hello3 = await connect_agent(n3, "agent-x")
        assert hello2["data"]["epoch"] == hello3["data"]["epoch"]
        seqs = [await asyncio.to_thread(n1.publish, "agent-x", "t", {"i": i}) for i in range(50)]
        assert seqs == list(range(1, 51))
        for ws in (ws2, ws3):
            got = await read_events(ws, 50)
            assert [e["seq"] for e in got] == seqs
            assert [e["data"]["i"] for e in got] == list(range(50))
        # Nothing more than that: the next frame on each is the next event (no duplicate).
        await asyncio.to_thread(n1.publish, "agent-x", "end", {})
        for ws in (ws2, ws3):
            last = await recv_json_skip(ws, what="the end event")
            assert last["type"] == "end" and last["seq"] == 51, last
        await ws2.close()
        await ws3.close()

    run(scenario())


def test_killed_node_costs_nothing_clients_resume_on_another_node(nodes):
    n1, n2, n3 = nodes(3)
    done = threading.Event()
    acked = []

    def publisher():
        i = 0
        while not done.is_set():
            acked.append(n1.publish("agent-k", "t", {"i": i}))
            i += 1

    async def scenario():
        ws, hello = await connect_agent(n2, "agent-k")
        epoch = hello["data"]["epoch"]
        t = threading.Thread(target=publisher)
        t.start()
        try:
            seen = await read_events(ws, 20)
            n2.kill()
            wait_until(lambda: len(acked) >= 60, 30, "publishes after the kill")
        finally:
            done.set()
            t.join()
        last = seen[-1]["seq"]
        ws3 = await ws_connect(n3, f"/ws/agents/agent-k?since={last}&epoch={epoch}")
        hello3 = await recv_json_skip(ws3, what="connected")
        assert hello3["type"] == "connected" and hello3["data"]["epoch"] == epoch, hello3
        assert hello3["data"]["recovered"] is True, hello3
        rest = await read_events(ws3, max(acked) - last)
        assert [e["seq"] for e in seen] + [e["seq"] for e in rest] == list(range(1, max(acked) + 1))
        await ws3.close()

    run(scenario())


def test_redis_restart_keeps_every_acknowledged_event_and_never_reuses_a_seq(nodes, redis):
    n1, n2 = nodes(2)
    acked, refused = [], []
    done = threading.Event()

    def publisher():
        i = 0
        while not done.is_set():
            status, _, body = n1.post_event("agent-r", {"type": "t", "data": {"i": i}})
            if status == 202:
                acked.append(body["seq"])
            else:
                assert status == 503 and body["error"]["code"] == "broker_unavailable", (status, body)
                refused.append(i)
                time.sleep(0.01)  # pacing only: do not spin while Redis is down
            i += 1

    async def scenario():
        ws, hello = await connect_agent(n2, "agent-r")
        t = threading.Thread(target=publisher)
        t.start()
        try:
            wait_until(lambda: len(acked) >= 20, 30, "publishes before the restart")
            redis.stop(signal.SIGKILL)
            wait_until(lambda: len(refused) >= 3, 30, "503 broker_unavailable while Redis is down")
            redis.start()
            before = len(acked)
            wait_until(lambda: len(acked) >= before + 20, 30, "publishes after the restart")
        finally:
            done.set()
            t.join()
        assert len(set(acked)) == len(acked), "a seq was handed out twice"
        assert acked == sorted(acked)
        # The subscriber stayed connected and gets every acknowledged event once, in order.
        got = await read_events(ws, max(acked))
        assert [e["seq"] for e in got] == list(range(1, max(acked) + 1))
        # and the history on any node has them all
        status, _, page = n1.http("GET", f"/api/agents/agent-r/events?since=0&limit=1000")
        assert status == 200, page
        assert set(acked) <= {e["seq"] for e in page["events"]}
        await ws.close()

    run(scenario())


def redis_keys(r: Redis, pattern: str) -> list[str]:
    out = subprocess.run(["redis-cli", "-p", str(r.port), "--raw", "KEYS", pattern], capture_output=True,
                         text=True, timeout=IO_TIMEOUT, check=True).stdout
    return [k for k in out.split("\n") if k]


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed")
def test_two_redis_instances_spread_channels(nodes, redis, tmp_path):
    second = Redis(tmp_path / "redis2")
    second.start()
    try:
        n1, n2 = nodes(2, brokers=f"{redis.url},{second.url}")
        agents = [f"spread-{i}" for i in range(40)]

        async def scenario():
            subs = [await connect_agent(n2, a) for a in agents[:5]]
            for a in agents:
                assert n1.publish(a) == 1
                assert n1.publish(a) == 2
            for ws, _ in subs:
                got = await read_events(ws, 2)
                assert [e["seq"] for e in got] == [1, 2]
                await ws.close()

        run(scenario())
        on_first = {k.split("{")[1].split("}")[0] for k in redis_keys(redis, "aw:*:meta")}
        on_second = {k.split("{")[1].split("}")[0] for k in redis_keys(second, "aw:*:meta")}
        assert on_first | on_second == set(agents)
        assert not on_first & on_second
        assert len(on_first) >= 5 and len(on_second) >= 5, (len(on_first), len(on_second))
        status, _, health = n1.http("GET", "/healthz")
        assert status == 200 and health["status"] == "ok", health
        assert [i["state"] for i in health["instances"]] == ["up", "up"], health
    finally:
        second.stop()


def test_subscribers_alone_write_nothing_yet_every_node_names_the_history_alike(nodes, redis):
    n1, n2, n3 = nodes(3)

    async def scenario():
        # Subscribers on two nodes of an agent nobody has published to: the same epoch, nothing in Redis.
        ws2, hello2 = await connect_agent(n2, "agent-quiet")
        ws3, hello3 = await connect_agent(n3, "agent-quiet")
        epoch = hello2["data"]["epoch"]
        assert epoch and hello3["data"]["epoch"] == epoch, (hello2, hello3)
        assert redis_keys(redis, "aw:{agent-quiet}*") == []
        page = n1.http("GET", "/api/agents/agent-quiet/events?since=0")[2]
        assert page["epoch"] == "" and page["complete"] is True, page
        # The first publish, through a third node, registers that same epoch: nobody starts over.
        assert await asyncio.to_thread(n1.publish, "agent-quiet", "t", {"i": 1}) == 1
        for ws in (ws2, ws3):
            got = await recv_json_skip(ws, what="the first event")
            assert got["seq"] == 1 and got["data"] == {"i": 1}, got
        page = n1.http("GET", "/api/agents/agent-quiet/events?since=0")[2]
        assert page["epoch"] == epoch, page
        ws1 = await ws_connect(n1, f"/ws/agents/agent-quiet?since=0&epoch={epoch}")
        hello1 = await recv_json_skip(ws1, what="connected")
        assert hello1["data"]["recovered"] is True and hello1["data"]["epoch"] == epoch, hello1
        assert (await recv_json_skip(ws1, what="the replay"))["seq"] == 1
        for ws in (ws1, ws2, ws3):
            await ws.close()

    run(scenario())
    # Many subscribe-only agents leave no key behind.
    for i in range(200):
        async def visit(i=i):
            ws, _ = await connect_agent(n2, f"agent-none-{i}")
            await ws.close()
        run(visit())
    assert redis_keys(redis, "aw:{agent-none-*") == []
