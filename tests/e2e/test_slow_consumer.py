"""A subscriber that stops reading is dropped; the others get everything; memory stays bounded."""

import asyncio
import json
import threading
import time

from awtest import RawWebSocket, connect_agent, pipeline_publish, recv_text, run, wait_until

EVENTS = 3000
BATCH = 10
# The publisher never runs more than this many events (~1 KB each) ahead of the fast reader: with the
# batch in flight that stays under the 64 KiB queue limit, so a client that keeps up this well must
# never be dropped, whatever bursts the server's batching makes.
MAX_LAG = 40


def test_slow_consumer_is_dropped_fast_one_gets_everything(start_server):
    server = start_server("--max-queue-bytes", "65536")
    agent = "firehose"
    pad = "p" * 1000

    slow = RawWebSocket(server, f"/ws/agents/{agent}", rcvbuf=4096)  # handshake done, then never read

    # The slow client reads as soon as it has been dropped, well within the server's 5 s close grace,
    # so the close frame queued behind its backlog must reach it.
    slow_result = []

    def read_slow_once_dropped():
        try:
            wait_until(lambda: server.stats()["connections"]["dropped_slow"] >= 1, 120, "the slow client's drop")
            slow_result.append(slow.read_until_close(timeout=30))
        except BaseException as e:  # reported by the test thread
            slow_result.append(e)

    slow_reader = threading.Thread(target=read_slow_once_dropped, daemon=True)
    slow_reader.start()

    received = []
    progress = threading.Condition()
    acked = []
    publish_error = []

    def publisher():
        try:
            for start in range(0, EVENTS, BATCH):
                with progress:
                    ok = progress.wait_for(lambda: len(received) >= start - MAX_LAG, timeout=60)
                if not ok:
                    raise AssertionError(f"fast reader stalled at {len(received)} of {start} published")
                bodies = [
                    json.dumps({"type": "bulk", "data": {"i": i, "pad": pad}}).encode()
                    for i in range(start, min(start + BATCH, EVENTS))
                ]
                acked.extend(pipeline_publish(server, agent, bodies))
        except BaseException as e:  # reported by the test thread
            publish_error.append(e)

    async def main():
        ws, _ = await connect_agent(server, agent)
        try:
            pub = threading.Thread(target=publisher, daemon=True)
            pub.start()
            deadline = time.monotonic() + 120
            while len(received) < EVENTS:
                if publish_error:
                    raise publish_error[0]
                left = deadline - time.monotonic()
                assert left > 0, f"fast client got only {len(received)} of {EVENTS} events"
                text = await recv_text(ws, timeout=min(left, 30), what=f"event #{len(received) + 1}")
                ev = json.loads(text)
                if ev["type"] == "heartbeat":
                    continue
                with progress:
                    received.append(ev)
                    progress.notify_all()
            await asyncio.to_thread(pub.join, 30)
            assert not pub.is_alive(), "publisher did not finish"
            if publish_error:
                raise publish_error[0]
        finally:
            await ws.close()

    try:
        run(main())

        assert acked == list(range(1, EVENTS + 1)), "publish acknowledgements are not 1..N in order"
        seqs = [e["seq"] for e in received]
        assert seqs == list(range(1, EVENTS + 1)), "fast client did not get every event exactly once, in order"
        assert [e["data"]["i"] for e in received] == list(range(EVENTS))

        stats = wait_until(
            lambda: (lambda s: s if s["connections"]["dropped_slow"] >= 1 else None)(server.stats()),
            15,
            "dropped_slow >= 1",
        )
        assert stats["connections"]["dropped_slow"] == 1, f"only the slow client should be dropped: {stats}"
        assert server.http("GET", "/healthz")[0] == 200
        rss_mb = server.rss_kb() / 1024
        assert rss_mb < 200, f"server RSS {rss_mb:.0f} MB after a slow consumer"

        # The slow client, once it reads: a clean in-order prefix of the events, then close 1008.
        slow_reader.join(60)
        assert slow_result, "the slow client's reader did not finish"
        if isinstance(slow_result[0], BaseException):
            raise slow_result[0]
        code, texts, _ = slow_result[0]
        got = [json.loads(t) for t in texts]
        assert got and got[0]["type"] == "connected"
        events = [e for e in got[1:] if e["type"] != "heartbeat"]
        slow_seqs = [e["seq"] for e in events]
        assert slow_seqs == list(range(1, len(slow_seqs) + 1)), "slow client's frames are not a clean prefix"
        assert len(slow_seqs) < EVENTS, "the slow client was not dropped at all"
        assert code == 1008, f"slow consumer closed with {code}, expected 1008 (policy) after its prefix"
    finally:
        slow.close()

    wait_until(lambda: server.stats()["connections"]["live"] == 0, 15, "all connections to be gone")


def test_lagging_subscriber_is_visible_in_stats_and_metrics(start_server):
    # A queue limit high enough that the reader who stopped is kept, so its lag can be watched.
    server = start_server("--max-queue-bytes", "256M", "--heartbeat-interval", "1", "--idle-timeout", "600")
    agent = "laggard"
    stalled = RawWebSocket(server, f"/ws/agents/{agent}", rcvbuf=4096)
    pad = "q" * 10000
    bodies = [json.dumps({"type": "bulk", "data": {"i": i, "pad": pad}}).encode() for i in range(1500)]
    for start in range(0, len(bodies), 100):
        pipeline_publish(server, agent, bodies[start:start + 100])

    def lagging():
        rows = server.stats()["connections"]["lagging"]
        return [r for r in rows if r["agent_id"] == agent and r["queued_bytes"] > 0 and r["seq_behind"] > 0]

    rows = wait_until(lagging, 30, "the stalled subscriber to show up as lagging")
    row = rows[0]
    assert row["queued_events"] >= 1 and isinstance(row["session_id"], str)
    assert row["seq_behind"] <= 1500
    status, _, text = server.http("GET", "/metrics")
    assert status == 200
    assert f'agentwire_subscriber_queued_bytes{{session="{row["session_id"]}",agent_id="{agent}"}}' in text
    assert "agentwire_subscriber_seq_behind{" in text
    stalled.close()
