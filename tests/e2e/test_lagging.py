"""A subscriber that falls behind on a token stream gets the deltas merged, not dropped: it still sees
every seq accounted for (`first_seq`..`seq`), the full text, the latest progress and every phase change,
and it stays connected."""

import json

from awtest import RawWebSocket, connect_agent, pipelined, recv_json, run

OP_TEXT = 0x1
DELTAS = 2000
PIECE = "token-" + "x" * 400 + "|"
# Before the stream, enough unmergeable events to fill whatever the kernel buffers for the connection
# (its send buffer grows to 4 MiB by default): the deltas then wait in the server's own queue.
FILLER_EVENTS = 6000
FILLER_PAD = "f" * 1000


def call(server, method, path, body):
    return server.http(method, path, json.dumps(body), {"Content-Type": "application/json"})


def test_lagging_subscriber_gets_merged_deltas_and_latest_progress(start_server):
    server = start_server("--max-queue-bytes", str(16 << 20))
    agent = "lagging-agent"
    status, _, wf = call(server, "POST", "/api/workflows", {"agent_id": agent, "name": "long answer"})
    assert status == 201, wf
    status, _, st = call(server, "POST", f"/api/workflows/{wf['id']}/streams", {})
    assert status == 201, st
    stream_id = st["stream_id"]

    slow = RawWebSocket(server, f"/ws/agents/{agent}", rcvbuf=4096)  # reads nothing until the end
    try:
        for start in range(0, FILLER_EVENTS, 100):
            reqs = [(f"/api/agents/{agent}/events", {"type": "filler", "data": {"i": i, "pad": FILLER_PAD}})
                    for i in range(start, start + 100)]
            for status, _, body in pipelined(server, reqs):
                assert status == 202, body
        expected_text = []
        last_percent = 0
        for start in range(0, DELTAS, 100):
            reqs = []
            for i in range(start, start + 100):
                piece = f"{i}:{PIECE}"
                expected_text.append(piece)
                reqs.append((f"/api/streams/{stream_id}/append", {"delta": piece, "index": i}))
            # a run of progress updates: a lagging client only needs the last of them
            for p in range(5):
                last_percent = min(99, start * 100 // DELTAS + p)
                reqs.append((f"/api/workflows/{wf['id']}/progress", {"percent": last_percent, "message": f"{start}/{p}"}))
            for (path, _), (status, _, body) in zip(reqs, pipelined(server, reqs)):
                # a delta is accepted (202), a progress update applied (200)
                assert status == (202 if path.endswith("/append") else 200), (path, body)
        status, _, body = call(server, "POST", f"/api/workflows/{wf['id']}/phase", {"phase": "design", "reason": "done"})
        assert status == 200, body
        status, _, end = call(server, "POST", f"/api/streams/{stream_id}/end", {"status": "completed"})
        assert status == 200, end
        final_seq = end["seq"]

        # Now read everything the slow client was sent.
        events = []
        last = None
        text = []
        next_index = 0
        merged_deltas = 0
        progress_messages = 0
        percent_seen = None
        phases = []
        while last is None or last < final_seq:
            frame = slow.recv_frame(timeout=30)
            assert frame is not None, f"connection ended after seq {last} of {final_seq}"
            _, op, payload = frame
            if op != OP_TEXT:
                continue
            msg = json.loads(payload)
            if "seq" not in msg:  # connected, heartbeat
                if msg["type"] == "connected":
                    last = msg["data"]["seq"]
                continue
            first = msg.get("first_seq", msg["seq"])
            assert first == last + 1, f"seq {first} after {last}: {msg['type']} lost or repeated"
            assert msg["seq"] >= first
            last = msg["seq"]
            events.append(msg)
            d = msg["data"]
            if msg["type"] == "stream" and "delta" in d:
                assert d["index"] == next_index, (d["index"], next_index)
                count = d.get("count", 1)
                assert (count > 1) == ("first_seq" in msg) and msg["seq"] - first + 1 == count
                merged_deltas += count > 1
                next_index += count
                text.append(d["delta"])
            elif msg["type"] == "progress":
                progress_messages += 1
                percent_seen = d["percent"]
            elif msg["type"] == "filler":
                assert "first_seq" not in msg, "generic events are never merged"
            elif msg["type"] == "phase_changed":
                phases.append(d.get("phase") or d.get("to"))
        assert "".join(text) == "".join(expected_text)
        assert next_index == DELTAS
        assert percent_seen == last_percent
        assert len(phases) == 1, "the phase change must arrive, unmerged"
        assert events[-1]["type"] == "stream" and events[-1]["data"].get("done") is True
        assert merged_deltas > 0, "the lagging client never got merged deltas"
        assert progress_messages < DELTAS // 100 * 5, "progress was not reduced to the latest"
        stats = server.stats()
        assert stats["messages"]["merged"] > 0, stats["messages"]
        assert stats["connections"]["dropped_slow"] == 0, stats["connections"]
    finally:
        slow.close()


def test_a_client_that_keeps_up_gets_every_delta_as_published(start_server):
    """Merging is only for clients that fall behind: one that reads along sees each delta on its own."""
    server = start_server()
    agent = "keeping-up"
    status, _, wf = call(server, "POST", "/api/workflows", {"agent_id": agent, "name": "short answer"})
    assert status == 201, wf
    status, _, st = call(server, "POST", f"/api/workflows/{wf['id']}/streams", {})
    assert status == 201, st

    async def main():
        ws, hello = await connect_agent(server, agent)
        try:
            seq = hello["data"]["seq"]
            for i in range(50):
                status, _, body = call(server, "POST", f"/api/streams/{st['stream_id']}/append", {"delta": f"t{i} "})
                assert status == 202, body
                msg = await recv_json(ws)
                while msg["type"] == "heartbeat":
                    msg = await recv_json(ws)
                assert msg["seq"] == seq + 1 and "first_seq" not in msg, msg
                assert msg["data"]["index"] == i and msg["data"]["delta"] == f"t{i} " and "count" not in msg["data"]
                seq = msg["seq"]
        finally:
            await ws.close()

    run(main())
