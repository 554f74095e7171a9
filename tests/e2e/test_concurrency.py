"""Many publishers and subscribers at once: no loss, no duplicate, no reordering, seqs 1..N."""

import asyncio
import http.client
import json
import random
import threading
import time

import websockets

from awtest import connect_agent, recv_json, run, wait_until, ws_connect

AGENTS = ["conc-a", "conc-b"]
PUBLISHERS = 8
PER_PUBLISHER = 100
PER_AGENT = PUBLISHERS * PER_PUBLISHER // len(AGENTS)
STEADY = 4
CHURN = 20
CHURN_SESSIONS = 5


def test_concurrent_publishers_and_churning_subscribers(start_server):
    server = start_server("--threads", "2")
    acks = {a: [] for a in AGENTS}
    acks_lock = threading.Lock()
    errors = []

    def publisher(p):
        conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
        try:
            for i in range(PER_PUBLISHER):
                agent = AGENTS[(p + i) % len(AGENTS)]
                conn.request(
                    "POST",
                    f"/api/agents/{agent}/events",
                    body=json.dumps({"type": "c", "data": {"p": p, "i": i}}),
                    headers={"Content-Type": "application/json"},
                )
                resp = conn.getresponse()
                body = json.loads(resp.read())
                if resp.status != 202:
                    raise AssertionError(f"publisher {p} got {resp.status}: {body}")
                with acks_lock:
                    acks[agent].append((body["seq"], p, i))
        except BaseException as e:
            errors.append(e)
        finally:
            conn.close()

    async def steady(agent, ws):
        events = []
        deadline = time.monotonic() + 90
        while len(events) < PER_AGENT:
            left = deadline - time.monotonic()
            assert left > 0, f"steady subscriber of {agent} got {len(events)} of {PER_AGENT}"
            ev = await recv_json(ws, timeout=min(left, 30), what=f"event {len(events) + 1} of {agent}")
            if ev["type"] == "heartbeat":
                continue
            assert ev["agent_id"] == agent, f"steady subscriber of {agent} got {ev}"
            events.append(ev)
        return events

    churn_problems = []
    churn_connects = [0]

    async def churner(k):
        """CHURN_SESSIONS sessions, each reading a fixed few events (fewer near the end of the channel's
        events): how often it reconnects follows from k, not from timing."""
        agent = AGENTS[k % len(AGENTS)]
        rng = random.Random(k)
        for _ in range(CHURN_SESSIONS):
            try:
                async with ws_connect(server, f"/ws/agents/{agent}") as ws:
                    hello = await recv_json(ws, what="connected (churn)")
                    assert hello["type"] == "connected"
                    churn_connects[0] += 1
                    expected = hello["data"]["seq"] + 1
                    # Every event up to PER_AGENT is sure to come: a read never waits for one that will not.
                    want = min(rng.randint(0, 5), PER_AGENT - hello["data"]["seq"])
                    got = 0
                    while got < want:
                        ev = await recv_json(ws, what=f"churn client {k}: seq {expected}")
                        if ev["type"] == "heartbeat":
                            continue
                        if ev["seq"] != expected or ev["agent_id"] != agent:
                            churn_problems.append(f"{agent}: expected seq {expected}, got {ev['seq']} ({ev['agent_id']})")
                        expected = ev["seq"] + 1
                        got += 1
            except (websockets.ConnectionClosed, OSError) as e:
                churn_problems.append(f"churn client {k}: {e!r}")
                return

    async def main():
        steady_conns = []
        for i in range(STEADY):
            ws, hello = await connect_agent(server, AGENTS[i % len(AGENTS)])
            assert hello["data"]["seq"] == 0
            steady_conns.append((AGENTS[i % len(AGENTS)], ws))
        churners = [asyncio.create_task(churner(k)) for k in range(CHURN)]
        readers = [asyncio.create_task(steady(a, ws)) for a, ws in steady_conns]
        threads = [threading.Thread(target=publisher, args=(p,), daemon=True) for p in range(PUBLISHERS)]
        for t in threads:
            t.start()
        for t in threads:
            await asyncio.to_thread(t.join, 90)
            assert not t.is_alive(), "a publisher thread hung"
        results = await asyncio.gather(*readers)
        await asyncio.wait_for(asyncio.gather(*churners), 60)
        for _, ws in steady_conns:
            await ws.close()
        return list(zip([a for a, _ in steady_conns], results))

    results = run(main())
    assert not errors, errors
    assert not churn_problems, churn_problems[:10]
    assert churn_connects[0] == CHURN * CHURN_SESSIONS, f"churn clients connected {churn_connects[0]} times"

    for agent in AGENTS:
        seqs = sorted(s for s, _, _ in acks[agent])
        assert seqs == list(range(1, PER_AGENT + 1)), f"{agent}: acknowledged seqs are not exactly 1..{PER_AGENT}"

    for agent, events in results:
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(1, PER_AGENT + 1)), f"steady subscriber of {agent}: not every seq once in order"
        # The payload of each seq is the one acknowledged with that seq.
        by_seq = {s: (p, i) for s, p, i in acks[agent]}
        for e in events:
            assert (e["data"]["p"], e["data"]["i"]) == by_seq[e["seq"]], f"{agent} seq {e['seq']}: wrong payload"

    wait_until(lambda: server.stats()["connections"]["live"] == 0, 15, "all connections to close")
    assert server.stats()["publishes"] == PUBLISHERS * PER_PUBLISHER
