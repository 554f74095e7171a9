"""Routing: WebSocket subscription paths, agent id validation, 404/405/426 answers with JSON errors."""

import base64
import os

import pytest
import websockets

from awtest import apublish, assert_json_error, connect_agent, recv_json, run, ws_connect

UPGRADE_HEADERS = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
}


def upgrade_headers():
    h = dict(UPGRADE_HEADERS)
    h["Sec-WebSocket-Key"] = base64.b64encode(os.urandom(16)).decode()
    return h


VALID_IDS = [
    "a",
    "agent-7",
    "A.b_c:d-9",
    "x" * 128,
    "0",
    "1.2.3",
]


@pytest.mark.parametrize("agent_id", VALID_IDS, ids=lambda a: a if len(a) < 20 else f"len{len(a)}")
def test_valid_agent_id_upgrades_and_subscribes(server, agent_id):
    async def main():
        ws, hello = await connect_agent(server, agent_id)
        try:
            assert hello["agent_id"] == agent_id
            seq = await apublish(server, agent_id, "t", {"n": 1})
            assert seq == 1
            ev = await recv_json(ws, what="the published event")
            assert ev["type"] == "t" and ev["agent_id"] == agent_id and ev["seq"] == 1
        finally:
            await ws.close()
    run(main())


# The issue: anything but 1-128 chars of [A-Za-z0-9_.:-] gets 400 before any upgrade.
INVALID_PATHS = {
    "too_long": "/ws/agents/" + "x" * 129,
    "space_pct20": "/ws/agents/%20",
    "pct20_inside": "/ws/agents/a%20b",
    "slash_literal": "/ws/agents/a/b",
    "slash_encoded": "/ws/agents/a%2Fb",
    "empty": "/ws/agents/",
    "bang": "/ws/agents/a!b",
    "pct_encoded_nul": "/ws/agents/a%00b",
    "non_ascii": "/ws/agents/%C3%A9",
    "plus_is_space": "/ws/agents/a+b",
}


@pytest.mark.parametrize("path", INVALID_PATHS.values(), ids=INVALID_PATHS.keys())
def test_invalid_agent_id_gets_400_before_upgrade(server, path):
    # Over a real WebSocket client: the handshake is refused with 400.
    async def main():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
            ws = await ws_connect(server, path)
            await ws.close()
        assert info.value.status_code == 400, f"{path}: expected 400, got {info.value.status_code}"

    run(main())
    # The same request by hand: a JSON error body, no 101.
    status, headers, body = server.http("GET", path, headers=upgrade_headers())
    assert_json_error(status, body, 400)
    assert "sec-websocket-accept" not in headers


def test_rejected_upgrades_are_not_counted_as_connections(server):
    status, _, body = server.http("GET", "/ws/agents/" + "x" * 129, headers=upgrade_headers())
    assert_json_error(status, body, 400)
    conns = server.stats()["connections"]
    assert conns["live"] == 0 and conns["accepted"] == 0, conns
    assert conns["rejected"] == 1, f"the refused upgrade is counted as rejected: {conns}"
    status, _, text = server.http("GET", "/metrics")
    assert status == 200 and "\nagentwire_connections_rejected_total 1\n" in text, text


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/nope"),
        ("GET", "/api/agents/x"),
        ("GET", "/api/agents/x/events/1"),
        ("POST", "/api/agents/x"),
        ("GET", "/ws"),
        ("GET", "/ws/other"),
        ("GET", "/api/websocket"),
    ],
)
def test_unknown_paths_get_404_json(server, method, path):
    status, _, body = server.http(method, path)
    assert_json_error(status, body, 404)


def test_unknown_ws_path_with_upgrade_gets_404(server):
    status, headers, body = server.http("GET", "/ws/other", headers=upgrade_headers())
    assert_json_error(status, body, 404)

    async def main():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as info:
            ws = await ws_connect(server, "/ws/other")
            await ws.close()
        assert info.value.status_code == 404

    run(main())


@pytest.mark.parametrize(
    "method,path",
    [
        ("DELETE", "/api/agents/x/events"),
        ("PUT", "/api/agents/x/events"),
        ("POST", "/healthz"),
        ("POST", "/api/websocket/stats"),
        ("DELETE", "/metrics"),
        ("POST", "/ws/agents/x"),
    ],
)
def test_wrong_method_gets_405_json(server, method, path):
    status, headers, body = server.http(method, path, body=b"{}" if method in ("POST", "PUT") else None)
    assert_json_error(status, body, 405)
    assert "allow" in headers, f"405 without an Allow header: {headers}"


def test_plain_get_on_ws_route_gets_426(server):
    status, headers, body = server.http("GET", "/ws/agents/x")
    assert_json_error(status, body, 426)
    assert headers.get("upgrade", "").lower() == "websocket"


@pytest.mark.parametrize(
    "drop, change, status, code",
    [
        ("Sec-WebSocket-Key", {}, 400, "bad_handshake"),
        (None, {"Sec-WebSocket-Key": "not-a-key"}, 400, "bad_handshake"),
        ("Sec-WebSocket-Version", {}, 400, "bad_handshake"),
        (None, {"Sec-WebSocket-Version": "8"}, 426, "unsupported_websocket_version"),
    ],
)
def test_refused_upgrades_answer_json_errors(server, drop, change, status, code):
    """An upgrade the WebSocket handshake refuses answers like every other HTTP error: a JSON body with a code
    (it used to be Beast's plain-text sentence)."""
    headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode()}
    headers.pop(drop, None)
    headers.update(change)
    got, rh, body = server.http("GET", "/ws/agents/x", headers=headers)
    err = assert_json_error(got, body, status)
    assert err["code"] == code, body
    assert rh.get("content-type", "").startswith("application/json"), rh
    if status == 426:
        assert rh.get("sec-websocket-version") == "13", rh


def test_error_bodies_are_json_content_type(server):
    for method, path, expected in [("GET", "/nope", 404), ("POST", "/healthz", 405), ("GET", "/ws/agents/x", 426)]:
        status, headers, body = server.http(method, path)
        assert status == expected
        assert headers.get("content-type", "").startswith("application/json"), (path, headers)


def test_server_still_serves_after_bad_requests(server):
    for path in INVALID_PATHS.values():
        server.http("GET", path, headers=upgrade_headers())
    status, _, body = server.http("GET", "/healthz")
    assert status == 200
    assert server.publish("still-ok") == 1
