"""What a web page may do, over raw sockets: Host names (421 host_forbidden against DNS rebinding), origins
(403 origin_forbidden on any request or WebSocket upgrade from a page of another origin, `null` included),
CORS for the allowed ones (preflight 204, Access-Control-Allow-Origin on answers), 415 for bodies that are
not the route's format (no text/plain or form "simple request" publishes), and the workflow routes' event
types refused on the generic publish route so that a subscriber can trust them."""

import base64
import json
import os
import subprocess

import pytest

from awtest import RawHttp, assert_json_error, binary_path, clean_env, connect_agent, recv_json_skip, run, wait_until

FOREIGN = "http://evil.example"
APP = "http://localhost:5173"


def request(server, method, path, headers=None, body=b"", host=None):
    """One request on a fresh raw connection: (status, lower-cased headers, parsed body)."""
    if isinstance(body, str):
        body = body.encode()
    head = f"{method} {path} HTTP/1.1\r\nHost: {host or f'{server.host}:{server.port}'}\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    if body or method in ("POST", "DELETE"):
        head += f"Content-Length: {len(body)}\r\n"
    conn = RawHttp(server.host, server.port)
    try:
        conn.send(head.encode() + b"\r\n" + body)
        return conn.read_response()
    finally:
        conn.close()


def upgrade_headers(origin=None):
    h = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    if origin is not None:
        h["Origin"] = origin
    return h


def upgrade(server, path, origin=None, host=None):
    """A WebSocket handshake: (status, headers) of the answer; the socket is closed right after."""
    conn = RawHttp(server.host, server.port)
    try:
        head = f"GET {path} HTTP/1.1\r\nHost: {host or f'{server.host}:{server.port}'}\r\n"
        for k, v in upgrade_headers(origin).items():
            head += f"{k}: {v}\r\n"
        conn.send(head.encode() + b"\r\n")
        while b"\r\n\r\n" not in conn.buf:
            conn._fill()
        status_line, *lines = conn.buf.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
        return int(status_line.split()[1]), headers
    finally:
        conn.close()


def publish_body(type_="t", data=None):
    return json.dumps({"type": type_, "data": data or {}})


JSON = {"Content-Type": "application/json"}


def latest(server, agent):
    status, _, body = server.http("GET", f"/api/agents/{agent}/events")
    assert status == 200, body
    return body["latest"]


def has_cors(headers):
    return any(k.startswith("access-control-") for k in headers)


# ---- origins ----------------------------------------------------------------------------------------------


def test_a_foreign_origin_cannot_open_a_websocket_on_any_path(start_server):
    server = start_server("--enable-echo")
    for path in ("/ws/agents/victim", "/ws/agents/victim?since=0", "/ws/echo", "/api/agents", "/nowhere"):
        status, headers = upgrade(server, path, origin=FOREIGN)
        assert status == 403, (path, status)
        assert not has_cors(headers), headers
    assert server.stats()["connections"]["rejected"] == 5
    # The same handshakes from no browser (no Origin) and from the server's own pages go through.
    assert upgrade(server, "/ws/agents/victim")[0] == 101
    assert upgrade(server, "/ws/agents/victim", origin=f"http://{server.host}:{server.port}")[0] == 101
    assert upgrade(server, "/ws/echo", origin=f"http://localhost:{server.port}", host=f"localhost:{server.port}")[0] == 101


def test_a_foreign_origin_cannot_publish_or_read(server):
    for method, path, body in (
        ("POST", "/api/agents/victim/events", publish_body()),
        ("POST", "/api/workflows", json.dumps({"agent_id": "victim", "name": "x"})),
        ("GET", "/api/agents/victim/events", b""),
        ("GET", "/api/websocket/stats", b""),
        ("DELETE", "/api/workflows/wf_0000000000000000", b""),
    ):
        status, headers, resp = request(server, method, path, {"Origin": FOREIGN, **JSON}, body)
        err = assert_json_error(status, resp, 403)
        assert err["code"] == "origin_forbidden", resp
        assert FOREIGN in err["message"] and "--allowed-origins" in err["message"], err
        assert not has_cors(headers), headers
    assert latest(server, "victim") == 0
    status, _, body = server.http("GET", "/api/agents/victim/workflows")
    assert status == 200 and body["workflows"] == [], body


def test_the_null_origin_is_refused_unless_listed(start_server):
    server = start_server("--allowed-origins", "*")
    status, _, body = request(server, "POST", "/api/agents/a/events", {"Origin": "null", **JSON}, publish_body())
    assert assert_json_error(status, body, 403)["code"] == "origin_forbidden"
    assert upgrade(server, "/ws/agents/a", origin="null")[0] == 403
    listed = start_server("--allowed-origins", "null")
    status, headers, body = request(listed, "POST", "/api/agents/a/events", {"Origin": "null", **JSON}, publish_body())
    assert status == 202, body
    assert headers.get("access-control-allow-origin") == "null", headers
    assert upgrade(listed, "/ws/agents/a", origin="null")[0] == 101


def test_an_allowed_origin_gets_cors_headers_and_connects(start_server):
    server = start_server("--allowed-origins", f"https://app.example.com,{APP}")
    status, headers, body = request(server, "POST", "/api/agents/app/events", {"Origin": APP, **JSON}, publish_body())
    assert status == 202, body
    assert headers.get("access-control-allow-origin") == APP, headers
    assert "origin" in headers.get("vary", "").lower(), headers
    assert "access-control-allow-credentials" not in headers, headers
    exposed = headers.get("access-control-expose-headers", "")
    assert "Idempotent-Replayed" in exposed, headers
    # Errors carry them too, so the page can read why.
    status, headers, body = request(server, "POST", "/api/agents/app/events", {"Origin": APP, **JSON}, "{")
    assert assert_json_error(status, body, 400)["code"] == "bad_json"
    assert headers.get("access-control-allow-origin") == APP, headers
    # The origin as the browser spells it: the default port left out.
    status, headers, _ = request(server, "GET", "/api/agents/app/events", {"Origin": "https://app.example.com"})
    assert status == 200 and headers.get("access-control-allow-origin") == "https://app.example.com", headers
    # A port or scheme that differs is another origin.
    for other in ("http://localhost:5174", "https://localhost:5173", "http://app.example.com"):
        status, headers, body = request(server, "GET", "/api/agents/app/events", {"Origin": other})
        assert status == 403 and not has_cors(headers), (other, status, headers)
    assert upgrade(server, "/ws/agents/app", origin=APP)[0] == 101
    # Same-origin and origin-less requests need no CORS headers.
    status, headers, _ = request(server, "GET", "/api/agents/app/events", {"Origin": f"http://{server.host}:{server.port}"})
    assert status == 200 and not has_cors(headers), headers
    status, headers, _ = request(server, "GET", "/api/agents/app/events")
    assert status == 200 and not has_cors(headers), headers


def test_preflight(start_server):
    server = start_server("--allowed-origins", APP)
    preflight = {
        "Origin": APP,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }
    conn = RawHttp(server.host, server.port)
    try:
        head = f"OPTIONS /api/agents/app/events HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in preflight.items())
        conn.send(head.encode() + b"\r\n")
        status, headers, body = conn.read_response()
        assert status == 204, (status, body)
        assert body == "" and "content-length" not in headers, headers
        assert headers.get("access-control-allow-origin") == APP, headers
        assert "origin" in headers.get("vary", "").lower(), headers
        methods = {m.strip() for m in headers.get("access-control-allow-methods", "").split(",")}
        assert {"GET", "POST", "DELETE"} <= methods, headers
        allowed = {h.strip().lower() for h in headers.get("access-control-allow-headers", "").split(",")}
        assert {"authorization", "content-type", "idempotency-key"} <= allowed, headers
        assert int(headers.get("access-control-max-age", "0")) > 0, headers
        # The connection stays for the real request, as a browser would send it next.
        body = publish_body().encode()
        conn.send(
            f"POST /api/agents/app/events HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nOrigin: {APP}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )
        status, headers, resp = conn.read_response()
        assert status == 202 and headers.get("access-control-allow-origin") == APP, (status, headers, resp)
    finally:
        conn.close()
    # A preflight from an origin not allowed: refused, and nothing a browser would take as permission.
    status, headers, body = request(server, "OPTIONS", "/api/agents/app/events", {**preflight, "Origin": FOREIGN})
    assert assert_json_error(status, body, 403)["code"] == "origin_forbidden"
    assert not has_cors(headers), headers
    # OPTIONS from no browser is no preflight: the route does not take it.
    status, _, body = request(server, "OPTIONS", "/api/agents/app/events")
    assert assert_json_error(status, body, 405)["code"] == "method_not_allowed"


def test_any_origin_when_star_is_given(start_server):
    server = start_server("--allowed-origins", "*")
    for origin in (FOREIGN, "https://other.example:8443"):
        status, headers, body = request(server, "POST", "/api/agents/any/events", {"Origin": origin, **JSON}, publish_body())
        assert status == 202, body
        assert headers.get("access-control-allow-origin") == origin, headers
        assert upgrade(server, "/ws/agents/any", origin=origin)[0] == 101


# ---- hosts ------------------------------------------------------------------------------------------------


def test_a_rebound_host_gets_421_also_before_an_upgrade(server):
    for host in ("evil.example", f"evil.example:{server.port}", f"127.0.0.1.nip.io:{server.port}", "10.9.9.9"):
        status, headers, body = request(server, "GET", "/api/agents", host=host)
        err = assert_json_error(status, body, 421)
        assert err["code"] == "host_forbidden" and "--allowed-hosts" in err["message"], body
        # The page of the rebound name is same-origin to itself: the Host check is what stops it.
        status, _, body = request(server, "POST", "/api/agents/a/events", {"Origin": f"http://{host}", **JSON},
                                  publish_body(), host=host)
        assert assert_json_error(status, body, 421)["code"] == "host_forbidden"
        assert upgrade(server, "/ws/agents/a", origin=f"http://{host}", host=host)[0] == 421
    assert latest(server, "a") == 0
    # Loopback names, any case, any port.
    for host in ("localhost", f"LocalHost:{server.port}", "127.0.0.1", f"[::1]:{server.port}"):
        status, _, body = request(server, "GET", "/api/agents", host=host)
        assert status == 200, (host, body)


def test_allowed_hosts_replace_the_default_and_star_allows_any(start_server):
    server = start_server("--allowed-hosts", "agentwire.example.com")
    status, _, body = request(server, "GET", "/api/agents", host=f"AgentWire.example.com:{server.port}")
    assert status == 200, body
    assert upgrade(server, "/ws/agents/a", host="agentwire.example.com")[0] == 101
    status, _, body = request(server, "GET", "/api/agents", host=f"127.0.0.1:{server.port}")
    assert assert_json_error(status, body, 421)["code"] == "host_forbidden"
    anyhost = start_server("--allowed-hosts", "*")
    status, _, body = request(anyhost, "GET", "/api/agents", host="whatever.example")
    assert status == 200, body


def test_with_a_key_configured_any_host_by_default(start_server):
    server = start_server(env={"AGENTWIRE_AUTH_SECRET": "a-secret-of-enough-length-for-hs256-tokens"})
    # /healthz needs no credential; with a key every API route needs one (test_auth_api), not a host.
    status, _, body = request(server, "GET", "/healthz", host="agentwire.internal:443")
    assert status == 200, body
    status, _, body = request(server, "GET", "/api/agents", host="agentwire.internal:443")
    assert assert_json_error(status, body, 401)["code"] == "token_missing"


@pytest.mark.parametrize("flags", [("--allowed-origins", "example.com"), ("--allowed-origins", "http://a.example/x"),
                                   ("--allowed-hosts", "example.com:80"), ("--allowed-hosts", "")])
def test_bad_lists_stop_the_start(tmp_path, flags):
    proc = subprocess.run([binary_path(), "--data-dir", str(tmp_path), *flags], capture_output=True, text=True,
                          timeout=30, env=clean_env())
    assert proc.returncode != 0
    assert flags[0] in proc.stderr, proc.stderr


# ---- media types ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("ctype,body", [
    ("text/plain", publish_body()),
    ("text/plain;charset=UTF-8", publish_body()),
    ("application/x-www-form-urlencoded", "type=t"),
    ("multipart/form-data; boundary=x", "--x\r\n\r\n--x--"),
    (None, publish_body()),
])
def test_json_routes_refuse_other_bodies_with_415(server, ctype, body):
    headers = {} if ctype is None else {"Content-Type": ctype}
    status, _, resp = request(server, "POST", "/api/agents/m/events", headers, body)
    err = assert_json_error(status, resp, 415)
    assert err["code"] == "unsupported_media_type" and err["accepted"] == ["application/json"], resp
    assert "application/json" in err["message"], resp
    status, _, resp = request(server, "POST", "/api/workflows", headers, json.dumps({"agent_id": "m", "name": "n"}))
    assert assert_json_error(status, resp, 415)["code"] == "unsupported_media_type"
    assert latest(server, "m") == 0
    # From a page (here the server's own) it is refused the same way: a form cannot publish.
    status, _, resp = request(server, "POST", "/api/agents/m/events",
                              {**headers, "Origin": f"http://{server.host}:{server.port}"}, body)
    assert status == 415, resp


def test_json_bodies_with_parameters_and_empty_bodies_pass(server):
    status, _, body = request(server, "POST", "/api/agents/m/events",
                              {"Content-Type": "Application/JSON; charset=utf-8"}, publish_body())
    assert status == 202, body
    status, _, wf = request(server, "POST", "/api/workflows", JSON, json.dumps({"agent_id": "m", "name": "n"}))
    assert status == 201, wf
    # No body: no Content-Type needed (cancel takes an empty body).
    status, _, body = request(server, "POST", f"/api/workflows/{wf['id']}/cancel")
    assert status == 200, body


def test_the_pipe_route_takes_its_own_formats(server):
    status, _, wf = request(server, "POST", "/api/workflows", JSON, json.dumps({"agent_id": "p", "name": "n"}))
    assert status == 201, wf
    pipe = f"/api/workflows/{wf['id']}/streams/pipe"
    status, _, body = request(server, "POST", pipe, {"Content-Type": "text/plain; charset=utf-8"}, "plain text")
    assert status == 200 and body["status"] == "completed", body
    status, _, body = request(server, "POST", pipe, {"Content-Type": "application/x-ndjson"}, '{"delta":"a"}\n')
    assert status == 200 and body["status"] == "completed", body
    for ctype in ("application/json", "application/x-www-form-urlencoded", None):
        headers = {} if ctype is None else {"Content-Type": ctype}
        status, _, body = request(server, "POST", pipe, headers, "x")
        err = assert_json_error(status, body, 415)
        assert err["code"] == "unsupported_media_type", body
        assert "text/plain" in err["accepted"] and "application/x-ndjson" in err["accepted"], body


# ---- forged domain events ---------------------------------------------------------------------------------

WORKFLOW_TYPES = ("workflow_created", "requirements_submitted", "phase_changed", "stream", "workflow_deleted")


def test_the_generic_route_refuses_the_workflow_routes_event_types(server):
    agent = "trusting"

    async def main():
        ws, _ = await connect_agent(server, agent)
        try:
            forged = [(t, {"workflow_id": "wf_0000000000000000", "to": "done"}) for t in WORKFLOW_TYPES]
            forged += [(t, {}) for t in WORKFLOW_TYPES]
            forged.append(("progress", {"workflow_id": "wf_0000000000000000", "percent": 100, "message": None}))
            forged.append(("progress", {"workflow_id": None, "percent": 100}))
            for type_, data in forged:
                status, _, body = server.post_event(agent, {"type": type_, "data": data})
                err = assert_json_error(status, body, 400)
                assert err["code"] == "reserved_type", (type_, body)
                assert "/api/workflows" in err["message"], body
            # Generic progress (no workflow named) and look-alike names are anyone's.
            first = server.publish(agent, "progress", {"percent": 40})
            server.publish(agent, "stream.delta", {"text": "x"})
            server.publish(agent, "phase", {"to": "done"})
            got = [await recv_json_skip(ws) for _ in range(3)]
            assert [(e["seq"], e["type"]) for e in got] == [(first, "progress"), (first + 1, "stream.delta"), (first + 2, "phase")]
            assert first == 1, "a refused publish took a seq"
        finally:
            await ws.close()

    run(main())


def test_the_workflow_routes_still_publish_those_types(server):
    agent = "wf-owner"

    async def main():
        ws, _ = await connect_agent(server, agent)
        try:
            status, _, wf = request(server, "POST", "/api/workflows", JSON, json.dumps({"agent_id": agent, "name": "n"}))
            assert status == 201, wf
            assert (await recv_json_skip(ws))["type"] == "workflow_created"
            status, _, body = request(server, "POST", f"/api/workflows/{wf['id']}/progress", JSON, '{"percent": 5}')
            assert status == 200, body
            ev = await recv_json_skip(ws)
            assert ev["type"] == "progress" and ev["data"]["workflow_id"] == wf["id"], ev
        finally:
            await ws.close()

    run(main())


def test_refusals_are_logged_at_debug_only(start_server):
    quiet = start_server()
    request(quiet, "GET", "/api/agents", {"Origin": FOREIGN})
    debug = start_server("--log-level", "debug")
    request(debug, "GET", "/api/agents", {"Origin": FOREIGN})
    request(debug, "GET", "/api/agents", host="rebound.example")
    wait_until(lambda: "status=421" in debug.log, 10, "the 421's log line")
    lines = [line for line in debug.log.splitlines() if "event=browser_refused" in line]
    assert any("status=403" in line and f"origin={FOREIGN}" in line for line in lines), lines
    assert any("status=421" in line and "host=rebound.example" in line for line in lines), lines
    assert "browser_refused" not in quiet.log
