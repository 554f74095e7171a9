"""The first frame of every subscription is `connected`."""

from awtest import TS_RE, connect_agent, run, ws_connect, recv_json


def test_first_frame_is_connected_with_all_fields(server):
    async def main():
        async with ws_connect(server, "/ws/agents/agent-7") as ws:
            raw = await recv_json(ws, what="the first frame")
        assert raw["type"] == "connected", raw
        assert raw["agent_id"] == "agent-7"
        assert isinstance(raw.get("ts"), str) and TS_RE.match(raw["ts"]), raw
        d = raw["data"]
        assert isinstance(d, dict), raw
        assert isinstance(d.get("session_id"), str) and d["session_id"], d
        assert isinstance(d.get("heartbeat_interval"), (int, float)) and not isinstance(d["heartbeat_interval"], bool), d
        assert d["heartbeat_interval"] == 30, f"default heartbeat interval is 30 s: {d}"
        assert isinstance(d.get("server_version"), str) and d["server_version"], d
        assert isinstance(d.get("epoch"), str) and d["epoch"], d
        assert d.get("seq") == 0, f"a fresh agent has seq 0: {d}"

    run(main())


def test_connected_reports_current_seq_and_stable_epoch(server):
    async def main():
        ws0, first = await connect_agent(server, "a1")
        await ws0.close()
        for _i in range(3):
            server.publish("a1")
        ws, hello = await connect_agent(server, "a1")
        await ws.close()
        assert hello["data"]["seq"] == 3, hello
        assert hello["data"]["epoch"] == first["data"]["epoch"], "epoch changed without any history loss"
        other, hello_b = await connect_agent(server, "b1")
        await other.close()
        assert hello_b["data"]["seq"] == 0 and hello_b["agent_id"] == "b1"

    run(main())


def test_session_ids_are_unique(server):
    async def main():
        ids = set()
        conns = []
        for _ in range(5):
            ws, hello = await connect_agent(server, "same")
            conns.append(ws)
            ids.add(hello["data"]["session_id"])
        for ws in conns:
            await ws.close()
        assert len(ids) == 5, ids

    run(main())


def test_connected_reports_configured_heartbeat_interval(start_server):
    """With --heartbeat-interval 0.5 the connected frame must say so (0.5 s); a client that derives its own
    liveness check from it must not read 0."""
    server = start_server("--heartbeat-interval", "0.5", "--idle-timeout", "2")

    async def main():
        ws, hello = await connect_agent(server, "hb")
        await ws.close()
        hb = hello["data"]["heartbeat_interval"]
        assert hb == 0.5, f"heartbeat_interval in connected is {hb!r}, configured 0.5 s"

    run(main())
