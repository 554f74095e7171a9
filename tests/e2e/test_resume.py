"""Resume without loss: seq, epoch, history, the durable SQLite event log and the snapshot fallback."""

import asyncio
import json
import signal
import threading

import pytest
import websockets

from awtest import (
    IO_TIMEOUT,
    Server,
    apublish,
    assert_json_error,
    connect_agent,
    recv_json_skip,
    run,
    wait_until,
    ws_connect,
)


async def read_events(ws, count, what="events"):
    """Reads `count` channel events (skipping heartbeats) and returns them."""
    out = []
    while len(out) < count:
        out.append(await recv_json_skip(ws, what=f"{what} ({len(out)}/{count})"))
    return out


async def resume(server, agent, since, epoch):
    ws = await ws_connect(server, f"/ws/agents/{agent}?since={since}&epoch={epoch}")
    hello = await recv_json_skip(ws, what="connected")
    assert hello["type"] == "connected", hello
    return ws, hello


def test_resume_replays_exactly_what_was_missed(server):
    async def scenario():
        ws, hello = await connect_agent(server, "r1")
        epoch = hello["data"]["epoch"]
        assert isinstance(epoch, str) and epoch
        await apublish(server, "r1", "t", {"n": 1})
        first = (await read_events(ws, 1))[0]
        assert first["seq"] == 1
        await ws.close()

        for n in range(2, 7):
            await apublish(server, "r1", "t", {"n": n})

        ws, hello = await resume(server, "r1", 1, epoch)
        d = hello["data"]
        assert d["resumed"] is True and d["recovered"] is True and d["replayed"] == 5, d
        assert d["epoch"] == epoch and d["seq"] == 6
        replay = await read_events(ws, 5)
        assert [e["seq"] for e in replay] == [2, 3, 4, 5, 6]
        assert [e["data"]["n"] for e in replay] == [2, 3, 4, 5, 6]
        await apublish(server, "r1", "t", {"n": 7})
        live = await read_events(ws, 1)
        assert live[0]["seq"] == 7
        await ws.close()

        # Resuming from the latest seq replays nothing and is still "recovered".
        ws, hello = await resume(server, "r1", 7, epoch)
        assert hello["data"]["recovered"] is True and hello["data"]["replayed"] == 0
        await ws.close()

    run(scenario())


def test_no_since_means_no_replay(server):
    for _ in range(3):
        server.publish("r2")

    async def scenario():
        ws, hello = await connect_agent(server, "r2")
        assert hello["data"]["resumed"] is False and hello["data"]["replayed"] == 0
        assert hello["data"]["seq"] == 3
        await apublish(server, "r2")
        assert (await read_events(ws, 1))[0]["seq"] == 4  # nothing before it
        await ws.close()

    run(scenario())


@pytest.mark.parametrize("case", ["too_old", "other_epoch", "ahead"])
def test_unrecoverable_resume_gets_a_snapshot(start_server, case):
    server = start_server("--history-size", "5")
    for _ in range(10):
        server.publish("r3")

    async def scenario():
        ws, hello = await connect_agent(server, "r3")
        epoch = hello["data"]["epoch"]
        await ws.close()
        since, ep = {"too_old": (2, epoch), "other_epoch": (9, "0123456789abcdef"), "ahead": (11, epoch)}[case]
        ws, hello = await resume(server, "r3", since, ep)
        assert hello["data"]["resumed"] is True and hello["data"]["recovered"] is False, hello
        snap = await recv_json_skip(ws, what="snapshot")
        assert snap["type"] == "snapshot", snap
        assert snap["data"]["seq"] == 10 and snap["data"]["epoch"] == epoch
        assert snap["data"]["recovered"] is False
        assert isinstance(snap["data"]["state"], dict)
        # Live events continue after the snapshot.
        await apublish(server, "r3")
        assert (await read_events(ws, 1))[0]["seq"] == 11
        await ws.close()

    run(scenario())


def test_snapshot_on_request(server):
    server.publish("r4")

    async def scenario():
        ws, _ = await connect_agent(server, "r4")
        await ws.send(json.dumps({"type": "snapshot"}))
        snap = await recv_json_skip(ws, what="snapshot")
        assert snap["type"] == "snapshot" and snap["data"]["seq"] == 1 and snap["agent_id"] == "r4"
        await ws.close()

    run(scenario())


def test_bad_resume_parameters_are_refused_before_upgrade(server):
    for query, code in [
        ("since=-1&epoch=e", "bad_since"),
        ("since=abc&epoch=e", "bad_since"),
        ("since=1.5&epoch=e", "bad_since"),
        ("since=99999999999999999999999&epoch=e", "bad_since"),
        ("since=1&epoch=" + "e" * 65, "bad_epoch"),
        ("epoch=e", "bad_since"),
    ]:
        status, _, body = server.http(
            "GET",
            f"/ws/agents/r5?{query}",
            headers={
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Version": "13",
            },
        )
        assert_json_error(status, body, 400)
        assert body["error"]["code"] == code, (query, body)


def test_history_api(server):
    for i in range(5):
        server.publish("r6", "t", {"i": i})
    status, _, body = server.http("GET", "/api/agents/r6/events?since=1&limit=2")
    assert status == 200, body
    assert [e["seq"] for e in body["events"]] == [2, 3]
    assert body["events"][0]["data"] == {"i": 1}
    assert body["latest"] == 5 and body["complete"] is True and body["next_since"] == 3
    assert isinstance(body["epoch"], str) and body["epoch"]
    status, _, body = server.http("GET", "/api/agents/r6/events")
    assert [e["seq"] for e in body["events"]] == [1, 2, 3, 4, 5]
    for query in ["since=x", "since=-2", "limit=0", "limit=1001", "limit=ten"]:
        status, _, body = server.http("GET", f"/api/agents/r6/events?{query}")
        assert_json_error(status, body, 400)
    status, _, body = server.http("GET", "/api/agents/nobody/events")
    assert status == 200 and body["events"] == [] and body["latest"] == 0


@pytest.mark.embedded_only("a node in Redis mode keeps no history of channels without local subscribers, nor a store")
def test_history_and_store_in_stats(server):
    for i in range(5):
        server.publish("r6", "t", {"i": i})
    stats = server.stats()
    assert stats["history"]["events"] >= 5 and stats["history"]["bytes"] > 0
    assert stats["store"]["kind"] == "sqlite" and stats["store"]["bytes"] > 0 and stats["store"]["events"] >= 5


def test_idempotency_key_publishes_once(server):
    async def scenario():
        ws, _ = await connect_agent(server, "r7")
        headers = {"Idempotency-Key": "order-42"}
        body = {"type": "t", "data": {"x": 1}}
        s1, _, b1 = await asyncio.to_thread(server.post_event, "r7", body, headers)
        s2, _, b2 = await asyncio.to_thread(server.post_event, "r7", body, headers)
        assert s1 == 202 and s2 == 202
        assert b1["seq"] == b2["seq"] == 1 and b2.get("duplicate") is True
        s3, _, b3 = await asyncio.to_thread(server.post_event, "r7", body, {"Idempotency-Key": "order-43"})
        assert b3["seq"] == 2
        events = await read_events(ws, 2)
        assert [e["seq"] for e in events] == [1, 2]
        await ws.close()

    run(scenario())
    status, _, body = server.post_event("r7", {"type": "t"}, {"Idempotency-Key": "k" * 257})
    assert_json_error(status, body, 400)


def test_kill_9_keeps_every_acknowledged_event(start_server, tmp_path):
    # Not through the fixture, which rightly fails a test whose server dies by a signal.
    first = Server(tmp_path / "killed")
    acked = [first.publish("k9", "t", {"n": n}) for n in range(1, 21)]
    assert acked == list(range(1, 21))
    status, _, body = first.post_event("k9", {"type": "t"}, {"Idempotency-Key": "once"})
    assert body["seq"] == 21
    status, _, hist = first.http("GET", "/api/agents/k9/events?limit=1")
    epoch = hist["epoch"]
    data_dir = first.data_dir
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(IO_TIMEOUT)

    second = start_server("--data-dir", str(data_dir))
    status, _, hist = second.http("GET", "/api/agents/k9/events?limit=1000")
    assert status == 200
    assert hist["epoch"] == epoch, "the epoch must survive a restart"
    assert [e["seq"] for e in hist["events"]] == list(range(1, 22))
    assert [e["data"].get("n") for e in hist["events"][:20]] == list(range(1, 21))
    # seq continues, never reused; the idempotency key is remembered across the restart
    assert second.publish("k9") == 22
    status, _, body = second.post_event("k9", {"type": "t"}, {"Idempotency-Key": "once"})
    assert body == {"seq": 21, "duplicate": True}

    async def scenario():
        ws, hello = await resume(second, "k9", 15, epoch)
        assert hello["data"]["recovered"] is True and hello["data"]["replayed"] == 7
        assert [e["seq"] for e in await read_events(ws, 7)] == list(range(16, 23))
        await ws.close()

    run(scenario())


def test_new_data_dir_means_new_epoch(start_server):
    a = start_server()
    a.publish("ep")
    _, _, h1 = a.http("GET", "/api/agents/ep/events")
    b = start_server()
    b.publish("ep")
    _, _, h2 = b.http("GET", "/api/agents/ep/events")
    assert h1["epoch"] != h2["epoch"]


@pytest.mark.embedded_only('--store-max-bytes bounds the SQLite file')
def test_full_store_answers_503_and_publishes_nothing(start_server):
    server = start_server("--store-max-bytes", "256K", "--history-ttl", "3600")

    async def scenario():
        ws, _ = await connect_agent(server, "full")
        big = "x" * 20000
        acked = []
        refused = None
        for i in range(200):
            status, _, body = await asyncio.to_thread(server.post_event, "full", {"type": "t", "data": {"i": i, "pad": big}})
            if status == 202:
                acked.append(body["seq"])
                continue
            refused = (status, body)
            break
        assert refused is not None, "the quota never filled up"
        status, body = refused
        assert_json_error(status, body, 503)
        assert body["error"]["code"] == "store_full"
        assert acked == list(range(1, len(acked) + 1))
        got = await read_events(ws, len(acked))
        assert [e["seq"] for e in got] == acked
        # Nothing of the refused publish reaches subscribers; the server keeps serving.
        await ws.send(json.dumps({"type": "ping"}))
        nxt = await recv_json_skip(ws, what="pong")
        assert nxt["type"] == "pong", f"expected only a pong after the refused publish, got {nxt!r}"
        await ws.close()

    run(scenario())
    status, _, _ = server.http("GET", "/healthz")
    assert status == 200
    assert server.stats()["publish_failures"] >= 1


def test_fifty_clients_resuming_under_load_see_every_event_once(start_server):
    """50 clients each drop their connection after every k-th event they read (k = 15..44, fixed per
    client) and resume from the last seq they saw, while a publisher keeps publishing. How often each one
    reconnects follows from k alone, never from the machine's speed; the publisher stays at most WINDOW
    events ahead of the slowest client, so every reconnect before the end happens while events are still
    being published, on a fast machine as on a slow one."""
    server = start_server("--threads", "2")
    agent = "storm"
    total = 600
    clients = 50
    window = 100  # well inside the default history (1000): every resume must be recovered
    every = [15 + i % 30 for i in range(clients)]
    progress = [0] * clients  # last seq each client has read
    connected = [False] * clients
    cond = threading.Condition()
    acked = []
    publish_error = []

    def publisher():
        try:
            with cond:
                if not cond.wait_for(lambda: all(connected), timeout=60):
                    raise AssertionError(f"only {sum(connected)} of {clients} clients connected")
            for i in range(total):
                with cond:
                    if not cond.wait_for(lambda: min(progress) >= i - window, timeout=60):
                        raise AssertionError(f"the slowest client is stuck at seq {min(progress)} of {i}")
                acked.append(server.publish(agent, "t", {"i": i}))
        except BaseException as e:  # reported by the test thread
            publish_error.append(e)
            with cond:
                cond.notify_all()

    def advance(idx, seq=None):
        with cond:
            if seq is None:
                connected[idx] = True
            else:
                progress[idx] = seq
            cond.notify_all()

    async def client(idx, epoch):
        seen = []
        last = 0
        sessions = 0
        while last < total:
            ws = await ws_connect(server, f"/ws/agents/{agent}?since={last}&epoch={epoch}")
            sessions += 1
            try:
                hello = await recv_json_skip(ws, what=f"client {idx}: connected")
                assert hello["type"] == "connected" and hello["data"]["recovered"] is True, hello
                if sessions == 1:
                    advance(idx)
                for _ in range(every[idx]):
                    if last == total:
                        break
                    if publish_error:
                        raise publish_error[0]
                    msg = await recv_json_skip(ws, what=f"client {idx}: seq {last + 1} (session {sessions})")
                    assert msg["seq"] == last + 1, f"client {idx}: got {msg['seq']} after {last}"
                    last = msg["seq"]
                    seen.append(last)
                    advance(idx, last)
            finally:
                await ws.close()
        return seen, sessions

    async def scenario():
        ws, hello = await connect_agent(server, agent)
        epoch = hello["data"]["epoch"]
        await ws.close()
        t = threading.Thread(target=publisher, daemon=True)
        t.start()
        try:
            return await asyncio.gather(*(client(i, epoch) for i in range(clients)))
        finally:
            await asyncio.to_thread(t.join, 60)

    results = run(scenario())
    if publish_error:
        raise publish_error[0]
    assert acked == list(range(1, total + 1))
    for i, (seen, sessions) in enumerate(results):
        assert seen == list(range(1, total + 1)), f"client {i} saw {len(seen)} events, with gaps or repeats"
        # one session per `every` events, the last one for the rest: fixed by construction
        assert sessions == -(-total // every[i]), f"client {i}: {sessions} sessions for k={every[i]}"
