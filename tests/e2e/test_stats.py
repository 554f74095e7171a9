"""GET /api/websocket/stats, /healthz and /metrics."""

import re

from awtest import connect_agent, recv_json, run, wait_until

NUMBER = (int, float)


def is_num(v):
    return isinstance(v, NUMBER) and not isinstance(v, bool)


def test_stats_shape(server):
    s = server.stats()
    c = s["connections"]
    for key in ("live", "accepted", "closed", "timed_out", "dropped_slow"):
        assert is_num(c.get(key)) and c[key] == 0, f"connections.{key}: {c}"
    assert c.get("busiest_agents") == [], c
    for key in ("in", "out"):
        assert is_num(s["messages"].get(key)), s["messages"]
        assert is_num(s["bytes"].get(key)), s["bytes"]
    assert s["messages"] == {**s["messages"], "in": 0, "out": 0}
    assert s["publishes"] == 0
    assert is_num(s.get("uptime_seconds")) and s["uptime_seconds"] >= 0, s


def test_stats_numbers_move(server):
    base = server.stats()

    async def main():
        busy = [await connect_agent(server, "busy") for _ in range(2)]
        quiet, _ = await connect_agent(server, "quiet")
        try:
            s = wait_until(
                lambda: (lambda st: st if st["connections"]["live"] == 3 else None)(server.stats()), 10, "live == 3"
            )
            c = s["connections"]
            assert c["accepted"] == 3, c
            busiest = {b["agent_id"]: b["connections"] for b in c["busiest_agents"]}
            assert busiest.get("busy") == 2 and busiest.get("quiet") == 1, c["busiest_agents"]
            assert c["busiest_agents"][0]["agent_id"] == "busy", "busiest agent first"

            out_before = s["messages"]["out"]
            bytes_out_before = s["bytes"]["out"]
            for i in range(2):
                server.publish("busy", "t", {"i": i, "pad": "z" * 100})
            for ws, _ in busy:
                for _i in range(2):
                    await recv_json(ws)
            s = server.stats()
            assert s["publishes"] == 2, s
            assert s["messages"]["out"] >= out_before + 4, (out_before, s["messages"])
            assert s["bytes"]["out"] >= bytes_out_before + 4 * 100, (bytes_out_before, s["bytes"])

            in_before, bytes_in_before = s["messages"]["in"], s["bytes"]["in"]
            msg = '{"type":"ping"}'
            await quiet.send(msg)
            assert (await recv_json(quiet))["type"] == "pong"
            s = server.stats()
            assert s["messages"]["in"] == in_before + 1, s["messages"]
            assert s["bytes"]["in"] >= bytes_in_before + len(msg), s["bytes"]
        finally:
            for ws, _ in busy:
                await ws.close()
            await quiet.close()

    run(main())
    s = wait_until(lambda: (lambda st: st if st["connections"]["live"] == 0 else None)(server.stats()), 10, "live == 0")
    c = s["connections"]
    assert c["closed"] == 3 and c["accepted"] == 3 and c["timed_out"] == 0 and c["dropped_slow"] == 0, c
    assert c["busiest_agents"] == [], f"agents without subscribers are not listed: {c}"
    assert s["uptime_seconds"] >= base["uptime_seconds"]


def test_healthz(server):
    status, headers, body = server.http("GET", "/healthz")
    assert status == 200, body


METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def parse_metrics(text):
    types, samples = {}, []
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if line.startswith("#"):
            continue
        m = METRIC_LINE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        samples.append((m.group(1), m.group(2) or "", float(m.group(3))))
    return types, samples


def test_metrics_prometheus_text(server):
    async def main():
        ws, _ = await connect_agent(server, "m1")
        try:
            server.publish("m1")
            await recv_json(ws)
            wait_until(lambda: server.stats()["connections"]["live"] == 1, 10, "live == 1")
            status, headers, text = server.http("GET", "/metrics")
            assert status == 200
            assert headers.get("content-type", "").startswith("text/plain"), headers
            assert isinstance(text, str)
            types, samples = parse_metrics(text)
            assert types.get("agentwire_connections") == "gauge", types
            for name, _, _ in samples:
                assert name in types, f"sample {name} has no # TYPE line"
            values = {(n, l): v for n, l, v in samples}
            assert values[("agentwire_connections", "")] == 1, values
            counters = [n for n, k in types.items() if k == "counter"]
            assert counters, "no counters at all"
            pub = [v for (n, _), v in values.items() if n.startswith("agentwire_publishes")]
            assert pub and pub[0] == 1, values
        finally:
            await ws.close()

    run(main())
