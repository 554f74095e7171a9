"""docs/openapi.json and docs/asyncapi.json against the real server.

Every documented HTTP route is driven (a success and at least one documented error); each answer's status
must be documented for its operation and its body must match that status's schema. Every WebSocket message
received is validated against the AsyncAPI message its `type` selects. The route lists keep the documents
from falling behind the server.

Needs Debian's python3-jsonschema (apt-get install -y python3-jsonschema); without it these tests fail.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import warnings
from pathlib import Path

import pytest

from awtest import REPO_ROOT, connect_agent, recv_json, run, ws_connect
import redis_mode

try:
    import jsonschema
except ImportError:  # failing, not skipping: the documents would go unchecked
    jsonschema = None

DOCS = REPO_ROOT / "docs"

# Every route the server registers (src/api/*.cpp add_*_routes, the WebSocket routes of
# src/api/subscribe_target.cpp), as OpenAPI (method, path) pairs.
IMPLEMENTED = {
    ("get", "/ws/agents/{agent_id}"),
    ("get", "/ws/echo"),
    ("post", "/api/agents/{agent_id}/events"),
    ("get", "/api/agents/{agent_id}/events"),
    ("post", "/api/workflows"),
    ("get", "/api/workflows/{workflow_id}"),
    ("delete", "/api/workflows/{workflow_id}"),
    ("get", "/api/agents/{agent_id}/workflows"),
    ("get", "/api/agents"),
    ("get", "/api/workflows/{workflow_id}/streams"),
    ("post", "/api/workflows/{workflow_id}/requirements"),
    ("post", "/api/workflows/{workflow_id}/phase"),
    ("post", "/api/workflows/{workflow_id}/progress"),
    ("post", "/api/workflows/{workflow_id}/cancel"),
    ("post", "/api/workflows/{workflow_id}/streams"),
    ("post", "/api/streams/{stream_id}/append"),
    ("post", "/api/streams/{stream_id}/end"),
    ("get", "/api/streams/{stream_id}"),
    ("post", "/api/workflows/{workflow_id}/streams/pipe"),
    ("get", "/api/websocket/stats"),
    ("get", "/metrics"),
    ("get", "/healthz"),
    ("get", "/"),
    ("get", "/ui/{a}"),
    ("get", "/ui/{a}/{b}"),
    ("get", "/ui/{a}/{b}/{c}"),
}

HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@pytest.fixture(autouse=True)
def _needs_jsonschema():
    if jsonschema is None:
        pytest.fail(
            "the Python module jsonschema is missing: install Debian's python3-jsonschema "
            "(apt-get install -y python3-jsonschema) to check docs/openapi.json and docs/asyncapi.json",
            pytrace=False,
        )


# --------------------------------------------------------------------------------------------------------
# The documents and their validators
# --------------------------------------------------------------------------------------------------------


def _load(name):
    path = DOCS / name
    assert path.is_file(), f"{path} is missing"
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _openapi_to_json_schema(node):
    """OpenAPI 3.0 `nullable: true` -> JSON Schema (anyOf with null); everything else is kept."""
    if isinstance(node, list):
        return [_openapi_to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    node = {k: _openapi_to_json_schema(v) for k, v in node.items()}
    if node.pop("nullable", False):
        node = {"anyOf": [node, {"type": "null"}]}
    return node


class Docs:
    def __init__(self):
        self.openapi_raw = _load("openapi.json")
        self.asyncapi = _load("asyncapi.json")
        self.openapi = _openapi_to_json_schema(copy.deepcopy(self.openapi_raw))

    def _validator(self, doc, schema, cls):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # RefResolver is deprecated in jsonschema >= 4.18
            resolver = jsonschema.RefResolver(base_uri="", referrer=doc)
        return cls(schema, resolver=resolver)

    def resolve(self, doc, node):
        while isinstance(node, dict) and "$ref" in node:
            ref = node["$ref"]
            assert ref.startswith("#/"), ref
            node = doc
            for part in ref[2:].split("/"):
                node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def validate_openapi(self, schema, instance, what):
        # OpenAPI 3.0 schemas are JSON Schema Draft 4/5 style (boolean exclusiveMinimum).
        v = self._validator(self.openapi, schema, jsonschema.Draft4Validator)
        errors = sorted(v.iter_errors(instance), key=lambda e: list(e.path))
        assert not errors, f"{what} does not match docs/openapi.json:\n" + "\n".join(
            f"  at {list(e.path)}: {e.message[:300]}" for e in errors[:5]
        ) + f"\ninstance: {json.dumps(instance)[:1500]}"

    def validate_message(self, msg, direction="subscribe"):
        """Validates a WebSocket message against the AsyncAPI message its type selects; returns its name."""
        channel = self.asyncapi["channels"]["/ws/agents/{agent_id}"]
        candidates = [self.resolve(self.asyncapi, m) for m in channel[direction]["message"]["oneOf"]]
        by_type = {}
        generic = None
        for m in candidates:
            payload = self.resolve(self.asyncapi, m["payload"])
            t = payload["properties"]["type"]
            if "enum" in t:
                for name in t["enum"]:
                    by_type[name] = m
            else:
                generic = m
        chosen = by_type.get(msg.get("type"), generic)
        assert chosen is not None, f"no AsyncAPI {direction} message for type {msg.get('type')!r}: {msg!r}"
        v = self._validator(self.asyncapi, chosen["payload"], jsonschema.Draft7Validator)
        errors = sorted(v.iter_errors(msg), key=lambda e: list(e.path))
        assert not errors, f"{msg.get('type')} message does not match AsyncAPI message {chosen['name']}:\n" + "\n".join(
            f"  at {list(e.path)}: {e.message[:300]}" for e in errors[:5]
        ) + f"\nmessage: {json.dumps(msg)[:1500]}"
        return chosen["name"]

    def operation(self, method, template):
        paths = self.openapi["paths"]
        assert template in paths, f"{template} is not in docs/openapi.json"
        op = paths[template].get(method.lower())
        assert op is not None, f"{method} {template} is not in docs/openapi.json"
        return op

    def check_request(self, method, template, body):
        op = self.operation(method, template)
        rb = self.resolve(self.openapi, op.get("requestBody"))
        assert rb is not None, f"{method} {template}: a body was sent but no requestBody is documented"
        schema = rb["content"]["application/json"]["schema"]
        self.validate_openapi(schema, body, f"the request body of {method} {template}")

    def check_response(self, method, template, status, headers, body):
        op = self.operation(method, template)
        responses = op["responses"]
        assert str(status) in responses, (
            f"{method} {template} answered {status}, which docs/openapi.json does not document "
            f"(documented: {sorted(responses)}): {body!r:.500}"
        )
        resp = self.resolve(self.openapi, responses[str(status)])
        content = resp.get("content")
        if not content:
            return
        ctype = headers.get("content-type", "")
        if "application/json" in content:
            assert "application/json" in ctype, f"{method} {template} {status}: Content-Type {ctype!r}, documented JSON"
            assert isinstance(body, (dict, list)), f"{method} {template} {status}: body is not JSON: {body!r:.300}"
            self.validate_openapi(content["application/json"]["schema"], body, f"{method} {template} -> {status}")
        elif any(k.startswith("text/") for k in content):
            documented = next(k for k in content if k.startswith("text/"))
            assert ctype.split(";")[0] == documented.split(";")[0], f"{method} {template}: {ctype!r} vs {documented!r}"
            assert isinstance(body, str)
        for name, h in (resp.get("headers") or {}).items():
            if name.lower() in headers:
                value = headers[name.lower()]
                self.validate_openapi(h["schema"], value, f"header {name} of {method} {template} -> {status}")


@pytest.fixture(scope="module")
def docs():
    if jsonschema is None:
        pytest.fail("python3-jsonschema is missing (apt-get install -y python3-jsonschema)", pytrace=False)
    return Docs()


def call(docs, server, method, template, path, body=None, headers=None, expect=None, raw=None):
    """One request; checks the answer against docs/openapi.json; returns (status, headers, body)."""
    h = dict(headers or {})
    data = raw
    if raw is not None:
        h.setdefault("Content-Type", "application/json")
    if body is not None:
        data = json.dumps(body)
        h.setdefault("Content-Type", "application/json")
        if expect is not None and 200 <= expect < 300:
            docs.check_request(method, template, body)
    status, rh, rb = server.http(method, path, data, h)
    if expect is not None:
        assert status == expect, f"{method} {path}: expected {expect}, got {status}: {rb!r:.500}"
    docs.check_response(method, template, status, rh, rb)
    return status, rh, rb


def error_code(body):
    return body["error"]["code"]


# --------------------------------------------------------------------------------------------------------
# The documents cover the server
# --------------------------------------------------------------------------------------------------------


def test_documents_are_well_formed_and_cover_every_route(docs):
    oa, aa = docs.openapi_raw, docs.asyncapi
    assert oa["openapi"] == "3.0.3"
    assert aa["asyncapi"] == "2.6.0"
    documented = {(m, p) for p, item in oa["paths"].items() for m in item if m in HTTP_METHODS}
    missing = IMPLEMENTED - documented
    assert not missing, f"routes the server implements but docs/openapi.json lacks: {sorted(missing)}"
    extra = documented - IMPLEMENTED
    assert not extra, f"docs/openapi.json documents routes the server does not have: {sorted(extra)}"

    # Every route docs/protocol.md has a heading for.
    text = (DOCS / "protocol.md").read_text(encoding="utf-8")
    headed = {(m.lower(), p) for m, p in re.findall(r"^#{2,4} .*?`(GET|POST|DELETE|PUT|PATCH) (/[^`?\s]*)", text, re.M)}
    headed |= {("get", p) for p in re.findall(r"^## WebSocket: `(/ws/[^`]+)`", text, re.M)}
    assert len(headed) >= 18, f"could not read the route headings of docs/protocol.md: {sorted(headed)}"
    assert not headed - documented, f"routes in docs/protocol.md missing from openapi.json: {sorted(headed - documented)}"

    # Every $ref in both documents points somewhere, and every schema is a valid schema.
    for doc, meta in ((docs.openapi, jsonschema.Draft4Validator), (aa, jsonschema.Draft7Validator)):
        def walk(node):
            if isinstance(node, dict):
                if "$ref" in node:
                    docs.resolve(doc, node)
                for v in node.values():
                    walk(v)
            elif isinstance(node, list):
                for v in node:
                    walk(v)

        walk(doc)
        for name, schema in doc["components"]["schemas"].items():
            meta.check_schema(schema)

    # Every documented error response uses the error schema.
    for p, item in oa["paths"].items():
        for m, op in item.items():
            for st, resp in op["responses"].items():
                if int(st) >= 400:
                    schema = docs.resolve(oa, resp)["content"]["application/json"]["schema"]
                    assert {"$ref": "#/components/schemas/Error"} in schema.get("allOf", [schema]), (m, p, st)

    # The AsyncAPI channel lists every message type of the protocol.
    channel = aa["channels"]["/ws/agents/{agent_id}"]
    server_names = {docs.resolve(aa, m)["name"] for m in channel["subscribe"]["message"]["oneOf"]}
    assert server_names == {
        "connected", "workflow_created", "requirements_submitted", "phase_changed", "progress", "stream",
        "workflow_deleted", "heartbeat", "snapshot", "error", "pong", "event", "token_expiring", "token_refreshed",
    }
    client_types = {docs.resolve(aa, docs.resolve(aa, m)["payload"])["properties"]["type"]["enum"][0]
                    for m in channel["publish"]["message"]["oneOf"]}
    assert client_types == {"ping", "snapshot", "refresh"}


def test_the_validators_reject_what_the_documents_forbid(docs):
    """The checks below can fail: wrong types and missing members are caught."""
    wf = {"id": "wf_0123456789abcdef", "agent_id": "a", "number": 1, "name": "n", "metadata": {},
          "phase": "requirements", "phase_reason": None, "progress": 0, "progress_message": None,
          "requirements": None, "streams": [], "created_at": "2026-11-25T19:38:41.805Z",
          "updated_at": "2026-11-25T19:38:41.805Z"}
    schema = {"$ref": "#/components/schemas/Workflow"}
    docs.validate_openapi(schema, wf, "a good workflow")
    for broken in ({**wf, "progress": "40"}, {k: v for k, v in wf.items() if k != "phase"}, {**wf, "phase": "done"}):
        with pytest.raises(AssertionError):
            docs.validate_openapi(schema, broken, "a broken workflow")
    with pytest.raises(AssertionError):
        docs.validate_message({"type": "progress", "agent_id": "a", "seq": 1, "ts": "2026-11-25T19:38:41.805Z",
                               "data": {"workflow_id": "wf_0123456789abcdef", "percent": "40", "message": None}})
    with pytest.raises(AssertionError):  # a session message with a seq
        docs.validate_message({"type": "pong", "agent_id": "a", "seq": 3, "ts": "2026-11-25T19:38:41.805Z", "data": {}})


# --------------------------------------------------------------------------------------------------------
# HTTP routes
# --------------------------------------------------------------------------------------------------------


def test_workflow_routes_match_openapi(docs, server):
    c = lambda *a, **k: call(docs, server, *a, **k)  # noqa: E731
    W = "/api/workflows/{workflow_id}"

    _, _, wf = c("POST", "/api/workflows", "/api/workflows",
                 {"agent_id": "doc-wf", "name": "Build it", "metadata": {"repo": "acme/web"}}, expect=201)
    wid = wf["id"]
    _, _, again = c("POST", "/api/workflows", "/api/workflows", {"agent_id": "doc-wf", "name": "k"},
                    headers={"Idempotency-Key": "create-1"}, expect=201)
    _, rh, replay = c("POST", "/api/workflows", "/api/workflows", {"agent_id": "doc-wf", "name": "k"},
                      headers={"Idempotency-Key": "create-1"}, expect=200)
    assert rh.get("idempotent-replayed") == "true" and replay["id"] == again["id"]
    for bad in ({"agent_id": "doc-wf"}, {"agent_id": "doc-wf", "name": "x", "typo": 1}):
        _, _, b = c("POST", "/api/workflows", "/api/workflows", bad, expect=400)
        assert error_code(b) == "bad_field"
    _, _, b = c("POST", "/api/workflows", "/api/workflows", raw="[1]", expect=400)
    assert error_code(b) == "bad_json"
    _, _, b = c("POST", "/api/workflows", "/api/workflows", {"agent_id": "no spaces", "name": "x"}, expect=400)
    assert error_code(b) == "bad_agent_id"

    c("GET", W, f"/api/workflows/{wid}", expect=200)
    _, _, b = c("GET", W, "/api/workflows/wf_0000000000000000", expect=404)
    assert error_code(b) == "workflow_not_found"

    L = "/api/agents/{agent_id}/workflows"
    _, _, page = c("GET", L, "/api/agents/doc-wf/workflows?limit=1", expect=200)
    assert page["next_cursor"] is not None
    _, _, last = c("GET", L, f"/api/agents/doc-wf/workflows?limit=200&cursor={page['next_cursor']}", expect=200)
    assert last["next_cursor"] is None
    c("GET", L, "/api/agents/nobody/workflows", expect=200)
    for query, code in (("limit=0", "bad_limit"), ("cursor=x", "bad_cursor")):
        _, _, b = c("GET", L, f"/api/agents/doc-wf/workflows?{query}", expect=400)
        assert error_code(b) == code
    _, _, b = c("GET", L, "/api/agents/b%20d/workflows", expect=400)
    assert error_code(b) == "bad_agent_id"

    R = W + "/requirements"
    c("POST", R, f"/api/workflows/{wid}/requirements",
      {"text": "Sign in", "items": [{"id": "R1", "text": "reset"}, "lockout"]}, expect=200)
    _, _, b = c("POST", R, f"/api/workflows/{wid}/requirements", {}, expect=400)
    assert error_code(b) == "bad_field"
    _, _, b = c("POST", R, "/api/workflows/wf_0000000000000000/requirements", {"text": "x"}, expect=404)

    P = W + "/phase"
    c("POST", P, f"/api/workflows/{wid}/phase", {"phase": "design", "reason": "approved"}, expect=200)
    _, _, b = c("POST", P, f"/api/workflows/{wid}/phase", {"phase": "deployment"}, expect=409)
    assert error_code(b) == "illegal_transition" and "design" not in b["error"]["allowed"]
    _, _, b = c("POST", P, f"/api/workflows/{wid}/phase", {"phase": "nope"}, expect=400)
    c("POST", P, "/api/workflows/wf_0000000000000000/phase", {"phase": "design"}, expect=404)

    G = W + "/progress"
    c("POST", G, f"/api/workflows/{wid}/progress", {"percent": 40.5, "message": "2 of 5"}, expect=200)
    _, _, b = c("POST", G, f"/api/workflows/{wid}/progress", {"percent": 140}, expect=400)
    assert error_code(b) == "bad_field"
    c("POST", G, "/api/workflows/wf_0000000000000000/progress", {"percent": 1}, expect=404)

    _, _, b = c("DELETE", W, f"/api/workflows/{wid}", expect=409)
    assert error_code(b) == "workflow_active" and b["error"]["phase"] == "design"

    C = W + "/cancel"
    _, _, done = c("POST", C, f"/api/workflows/{wid}/cancel", {"reason": "no longer needed"}, expect=200)
    assert done["phase"] == "cancelled"
    _, _, b = c("POST", C, f"/api/workflows/{wid}/cancel", expect=409)
    assert error_code(b) == "illegal_transition" and b["error"]["allowed"] == []
    c("POST", C, "/api/workflows/wf_0000000000000000/cancel", expect=404)
    _, _, b = c("POST", G, f"/api/workflows/{wid}/progress", {"percent": 50}, expect=409)
    assert error_code(b) == "workflow_finished"
    _, _, b = c("POST", R, f"/api/workflows/{wid}/requirements", {"text": "more"}, expect=409)
    assert error_code(b) == "workflow_finished"

    c("DELETE", W, f"/api/workflows/{wid}", expect=200)
    _, _, b = c("DELETE", W, f"/api/workflows/{wid}", expect=404)
    assert error_code(b) == "workflow_not_found"


def test_stream_routes_match_openapi(docs, server):
    c = lambda *a, **k: call(docs, server, *a, **k)  # noqa: E731
    _, _, wf = c("POST", "/api/workflows", "/api/workflows", {"agent_id": "doc-st", "name": "Stream it"}, expect=201)
    wid = wf["id"]
    O, A, E, S = ("/api/workflows/{workflow_id}/streams", "/api/streams/{stream_id}/append",
                  "/api/streams/{stream_id}/end", "/api/streams/{stream_id}")

    _, _, st = c("POST", O, f"/api/workflows/{wid}/streams", headers={"Idempotency-Key": "open-1"}, expect=201)
    sid = st["stream_id"]
    _, rh, _ = c("POST", O, f"/api/workflows/{wid}/streams", headers={"Idempotency-Key": "open-1"}, expect=200)
    assert rh.get("idempotent-replayed") == "true"
    _, _, b = c("POST", O, f"/api/workflows/{wid}/streams", {"x": 1}, expect=400)
    assert error_code(b) == "bad_field"
    c("POST", O, "/api/workflows/wf_0000000000000000/streams", expect=404)

    c("POST", A, f"/api/streams/{sid}/append", {"delta": "The login form has "}, expect=202)
    c("POST", A, f"/api/streams/{sid}/append", {"delta": "two fields", "index": 1},
      headers={"Idempotency-Key": "app-1"}, expect=202)
    _, rh, _ = c("POST", A, f"/api/streams/{sid}/append", {"delta": "two fields", "index": 1},
                 headers={"Idempotency-Key": "app-1"}, expect=200)
    assert rh.get("idempotent-replayed") == "true"
    _, _, b = c("POST", A, f"/api/streams/{sid}/append", {"delta": "x", "index": 7}, expect=409)
    assert error_code(b) == "index_mismatch" and b["error"]["expected"] == 2
    _, _, b = c("POST", A, f"/api/streams/{sid}/append", {"delta": ""}, expect=400)
    assert error_code(b) == "bad_field"
    c("POST", A, "/api/streams/st_0000000000000000/append", {"delta": "x"}, expect=404)

    _, _, live = c("GET", S, f"/api/streams/{sid}", expect=200)
    assert live["text"] == "The login form has two fields" and live["index"] == 2
    c("GET", S, "/api/streams/st_0000000000000000", expect=404)

    _, _, b = c("POST", E, f"/api/streams/{sid}/end", {"status": "streaming"}, expect=400)
    assert error_code(b) == "bad_field"
    c("POST", E, f"/api/streams/{sid}/end", {"status": "completed"}, headers={"Idempotency-Key": "end-1"}, expect=200)
    _, rh, _ = c("POST", E, f"/api/streams/{sid}/end", {"status": "completed"},
                 headers={"Idempotency-Key": "end-1"}, expect=200)
    assert rh.get("idempotent-replayed") == "true"
    _, _, b = c("POST", E, f"/api/streams/{sid}/end", {"status": "failed"}, expect=409)
    assert error_code(b) == "stream_ended"
    _, _, b = c("POST", A, f"/api/streams/{sid}/append", {"delta": "late"}, expect=409)
    assert error_code(b) == "stream_ended"
    c("POST", E, "/api/streams/st_0000000000000000/end", {"status": "failed"}, expect=404)
    _, _, ended = c("GET", S, f"/api/streams/{sid}", expect=200)
    assert ended["status"] == "completed" and ended["text"] == "The login form has two fields"
    L = "/api/workflows/{workflow_id}/streams"
    _, _, listed = c("GET", L, f"/api/workflows/{wid}/streams", expect=200)
    assert [s["stream_id"] for s in listed["streams"]] == [sid] and "text" not in listed["streams"][0]
    _, _, b = c("GET", L, "/api/workflows/wf_0000000000000000/streams", expect=404)
    assert error_code(b) == "workflow_not_found"
    _, _, agents = c("GET", "/api/agents", "/api/agents?limit=1", expect=200)
    assert len(agents["agents"]) == 1
    _, _, b = c("GET", "/api/agents", "/api/agents?limit=0", expect=400)
    assert error_code(b) == "bad_limit"
    _, _, b = c("GET", "/api/agents", "/api/agents?after=a%20b", expect=400)
    assert error_code(b) == "bad_after"

    c("POST", "/api/workflows/{workflow_id}/cancel", f"/api/workflows/{wid}/cancel", expect=200)
    _, _, b = c("POST", O, f"/api/workflows/{wid}/streams", expect=409)
    assert error_code(b) == "workflow_finished"


def test_pipe_route_matches_openapi(docs, server):
    c = lambda *a, **k: call(docs, server, *a, **k)  # noqa: E731
    PIPE = "/api/workflows/{workflow_id}/streams/pipe"
    _, _, wf = c("POST", "/api/workflows", "/api/workflows", {"agent_id": "doc-pipe", "name": "Pipe"}, expect=201)
    wid = wf["id"]
    _, _, end = c("POST", PIPE, f"/api/workflows/{wid}/streams/pipe", raw="Hello wörld",
                  headers={"Content-Type": "text/plain"}, expect=200)
    assert end["status"] == "completed" and end["length"] == 11
    c("POST", PIPE, f"/api/workflows/{wid}/streams/pipe", raw='{"delta":"a"}\n{"delta":"b"}\n',
      headers={"Content-Type": "application/x-ndjson"}, expect=200)
    _, _, b = c("POST", PIPE, f"/api/workflows/{wid}/streams/pipe", raw="x", headers={"Content-Type": "image/png"},
                expect=415)
    assert error_code(b) == "unsupported_media_type"
    _, _, b = c("POST", PIPE, f"/api/workflows/{wid}/streams/pipe", raw="not json\n",
                headers={"Content-Type": "application/x-ndjson"}, expect=400)
    assert error_code(b) == "bad_ndjson"
    _, _, b = c("POST", PIPE, "/api/workflows/wf_0000000000000000/streams/pipe", raw="x",
                headers={"Content-Type": "text/plain"}, expect=404)
    assert error_code(b) == "workflow_not_found"


def test_event_routes_match_openapi(docs, start_server):
    server = start_server("--max-body-bytes", "4K")
    c = lambda *a, **k: call(docs, server, *a, **k)  # noqa: E731
    PUB = H = "/api/agents/{agent_id}/events"
    c("POST", PUB, "/api/agents/doc-ev/events", {"type": "note", "data": {"text": "hello"}}, expect=202)
    _, _, first = c("POST", PUB, "/api/agents/doc-ev/events", {"type": "note"}, headers={"Idempotency-Key": "k"},
                    expect=202)
    _, _, dup = c("POST", PUB, "/api/agents/doc-ev/events", {"type": "note"}, headers={"Idempotency-Key": "k"},
                  expect=202)
    assert dup == {"seq": first["seq"], "duplicate": True}
    for body, code in (({"type": "bad type"}, "bad_type"), ({"type": "t", "data": [1]}, "bad_data")):
        _, _, b = c("POST", PUB, "/api/agents/doc-ev/events", body, expect=400)
        assert error_code(b) == code
    _, _, b = c("POST", PUB, "/api/agents/doc-ev/events", raw="{", expect=400)
    assert error_code(b) == "bad_json"
    _, _, b = c("POST", PUB, "/api/agents/doc-ev/events", {"type": "t"}, headers={"Idempotency-Key": "k" * 257},
                expect=400)
    assert error_code(b) == "bad_idempotency_key"
    _, _, b = c("POST", PUB, "/api/agents/doc-ev/events", raw="x" * 6000, expect=413)
    assert error_code(b) == "body_too_large"

    _, _, hist = c("GET", H, "/api/agents/doc-ev/events?since=0&limit=10", expect=200)
    assert [e["seq"] for e in hist["events"]] == [1, 2] and hist["complete"] is True
    c("GET", H, "/api/agents/nobody-yet/events", expect=200)
    for query, code in (("since=-1", "bad_since"), ("limit=1001", "bad_limit")):
        _, _, b = c("GET", H, f"/api/agents/doc-ev/events?{query}", expect=400)
        assert error_code(b) == code
    _, _, b = c("GET", H, "/api/agents/%20/events", expect=400)
    assert error_code(b) == "bad_agent_id"


def test_browser_refusals_match_openapi(docs, server):
    """421 host_forbidden, 403 origin_forbidden and 415 unsupported_media_type are documented where they come."""
    c = lambda *a, **k: call(docs, server, *a, **k)  # noqa: E731
    PUB = "/api/agents/{agent_id}/events"
    WF = "/api/workflows"
    WS = "/ws/agents/{agent_id}"
    up = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    for method, template, path, body in (("POST", PUB, "/api/agents/doc-b/events", {"type": "t"}),
                                         ("POST", WF, WF, {"agent_id": "doc-b", "name": "n"}),
                                         ("GET", "/api/agents", "/api/agents", None),
                                         ("GET", WS, "/ws/agents/doc-b", None)):
        h = up if template == WS else {}
        _, _, b = c(method, template, path, body, headers={**h, "Host": "rebound.example"}, expect=421)
        assert error_code(b) == "host_forbidden"
        _, _, b = c(method, template, path, body, headers={**h, "Origin": "https://evil.example"}, expect=403)
        assert error_code(b) == "origin_forbidden"
    for template, path, raw in ((PUB, "/api/agents/doc-b/events", '{"type":"t"}'),
                                (WF, WF, '{"agent_id":"doc-b","name":"n"}')):
        _, _, b = c("POST", template, path, raw=raw, headers={"Content-Type": "text/plain"}, expect=415)
        assert error_code(b) == "unsupported_media_type" and b["error"]["accepted"] == ["application/json"]


@pytest.mark.embedded_only('--store-max-bytes bounds the SQLite file')
def test_full_store_answers_the_documented_503(docs, start_server):
    server = start_server("--store-max-bytes", "256K", "--history-ttl", "3600")
    big = "x" * 20000
    for i in range(200):
        status, rh, body = call(docs, server, "POST", "/api/agents/{agent_id}/events", "/api/agents/full/events",
                                {"type": "t", "data": {"i": i, "pad": big}})
        if status != 202:
            assert status == 503 and error_code(body) == "store_full", body
            break
    else:
        pytest.fail("the quota never filled up")
    # A small write may still fit the room a large one did not: fill that too, with the smallest event
    # there is, so that no write at least as large can fit and the next answer is known.
    for i in range(5000):
        status, rh, body = call(docs, server, "POST", "/api/agents/{agent_id}/events", "/api/agents/full/events",
                                {"type": "t", "data": {}})
        if status != 202:
            assert status == 503 and error_code(body) == "store_full", body
            break
    else:
        pytest.fail("the quota never filled up with small events")
    # A workflow's creation stores an event larger than that one (and its state): refused the same way.
    _, _, body = call(docs, server, "POST", "/api/workflows", "/api/workflows", {"agent_id": "full", "name": "x"},
                      expect=503)
    assert error_code(body) == "store_full"


def test_operations_and_dashboard_routes_match_openapi(docs, start_server, tmp_path):
    # The dashboard's files come from a web dir made here, so what / answers does not depend on
    # whether web/dist was built.
    web = tmp_path / "web"
    web.mkdir()
    (web / "index.html").write_text("<!doctype html><title>agentwire</title>")
    (web / "style.css").write_text("body{}")
    server = start_server("--web-dir", str(web))
    c = lambda *a, **k: call(docs, server, *a, **k)  # noqa: E731
    _, _, stats = c("GET", "/api/websocket/stats", "/api/websocket/stats", expect=200)
    assert stats["store"]["kind"] == ("redis" if redis_mode.ENABLED else "sqlite")
    _, _, text = c("GET", "/metrics", "/metrics", expect=200)
    assert "agentwire_connections_accepted_total" in text
    c("GET", "/healthz", "/healthz", expect=200)
    big = {"X-Padding": "a" * 17000}
    for route in ("/api/websocket/stats", "/metrics", "/healthz"):
        _, _, b = c("GET", route, route, headers=big, expect=431)
        assert error_code(b) == "headers_too_large"

    # The dashboard: the web dir's files; 404 for missing ones.
    _, rh, body = c("GET", "/", "/", expect=200)
    assert body == "<!doctype html><title>agentwire</title>" and rh["content-type"].startswith("text/html"), rh
    c("GET", "/ui/{a}", "/ui/style.css", expect=200)
    c("GET", "/ui/{a}", "/ui/no-such-file.js", expect=404)
    c("GET", "/ui/{a}/{b}", "/ui/client/no-such-file.js", expect=404)
    c("GET", "/ui/{a}/{b}/{c}", "/ui/a/b/.hidden", expect=404)

    # Without --enable-echo there is no echo route.
    _, _, b = c("GET", "/ws/echo", "/ws/echo", expect=404)
    assert error_code(b) == "not_found"

    # A method the path does not have: 405 with Allow and the error schema (openapi.json: info.description).
    status, rh, b = server.http("PUT", "/healthz")
    assert status == 405 and rh.get("allow") == "GET"
    assert "put" not in docs.openapi["paths"]["/healthz"]
    docs.validate_openapi({"$ref": "#/components/schemas/Error"}, b, "a 405 body")
    assert error_code(b) == "method_not_allowed"


def test_websocket_upgrade_refusals_match_openapi(docs, server):
    c = lambda *a, **k: call(docs, server, *a, **k)  # noqa: E731
    WS = "/ws/agents/{agent_id}"
    up = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    for path, code in (("/ws/agents/bad%20id", "bad_agent_id"), ("/ws/agents/a/b", "bad_agent_id"),
                       ("/ws/agents/a?since=x", "bad_since"), ("/ws/agents/a?epoch=e", "bad_since"),
                       ("/ws/agents/a?since=1&epoch=" + "e" * 65, "bad_epoch")):
        _, _, b = c("GET", WS, path, headers=up, expect=400)
        assert error_code(b) == code, path
    _, _, b = c("GET", WS, "/ws/agents/a", expect=426)
    assert error_code(b) == "upgrade_required"
    no_key = {k: v for k, v in up.items() if k != "Sec-WebSocket-Key"}
    _, _, b = c("GET", WS, "/ws/agents/a", headers=no_key, expect=400)
    assert error_code(b) == "bad_handshake"
    _, _, b = c("GET", WS, "/ws/agents/a", headers=dict(up, **{"Sec-WebSocket-Version": "8"}), expect=426)
    assert error_code(b) == "unsupported_websocket_version"
    status, rh, b = server.http("POST", "/ws/agents/a")
    assert status == 405
    docs.check_response("GET", WS, status, rh, b)  # documented on the route (Allow: GET)


def test_security_schemes_describe_the_token_places(docs):
    """The three places a subscriber token goes are security schemes of the subscription route (optional:
    a server without a key needs none) and of the AsyncAPI server."""
    schemes = docs.openapi_raw["components"]["securitySchemes"]
    places = {(s["type"], s.get("scheme"), s.get("in"), s.get("name")) for s in schemes.values()}
    assert ("http", "bearer", None, None) in places
    assert ("apiKey", None, "header", "Sec-WebSocket-Protocol") in places
    assert ("apiKey", None, "query", "token") in places
    security = docs.openapi_raw["paths"]["/ws/agents/{agent_id}"]["get"]["security"]
    assert {} in security
    for requirement in security:
        for name in requirement:
            assert name in schemes, name
    async_schemes = docs.asyncapi["components"]["securitySchemes"]
    assert {(s["type"], s.get("in"), s.get("name")) for s in async_schemes.values()} >= {
        ("http", None, None), ("httpApiKey", "header", "Sec-WebSocket-Protocol"), ("httpApiKey", "query", "token")}
    for server in docs.asyncapi["servers"].values():
        for requirement in server["security"]:
            for name in requirement:
                assert name in async_schemes, name


def test_rate_limited_answers_match_openapi(docs, start_server):
    server = start_server("--max-handshakes-per-ip-per-s", "1", "--handshake-burst-per-ip", "1",
                          "--max-requests-per-ip-per-s", "1", "--request-burst-per-ip", "1", "--rate-limit-loopback")
    for method, template, path in (("GET", "/ws/agents/{agent_id}", "/ws/agents/a"), ("GET", "/api/agents", "/api/agents")):
        for _ in range(50):
            status, rh, b = call(docs, server, method, template, path)
            if status == 429:
                break
        assert status == 429 and error_code(b) == "rate_limited", (path, status, b)
        assert "retry-after" in rh, rh


# --------------------------------------------------------------------------------------------------------
# WebSocket messages
# --------------------------------------------------------------------------------------------------------


def test_websocket_messages_match_asyncapi(docs, start_server):
    server = start_server("--heartbeat-interval", "0.5", "--idle-timeout", "10")
    agent = "doc-ws"
    seen = {}

    async def take(ws, want, timeout=15.0):
        """Validates every message until one of type `want` arrives; returns it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                pytest.fail(f"no {want} message within {timeout}s (seen: {sorted(seen)})")
            msg = await recv_json(ws, left, what=want)
            name = docs.validate_message(msg)
            seen[name] = seen.get(name, 0) + 1
            if msg["type"] == want:
                return msg

    async def http(method, template, path, body=None, expect=None):
        return await asyncio.to_thread(call, docs, server, method, template, path, body, None, expect)

    async def send(ws, msg):
        docs.validate_message(msg, "publish")
        await ws.send(json.dumps(msg))

    async def scenario():
        ws, hello = await connect_agent(server, agent)
        docs.validate_message(hello)
        seen["connected"] = 1
        epoch = hello["data"]["epoch"]

        _, _, wf = await http("POST", "/api/workflows", "/api/workflows",
                              {"agent_id": agent, "name": "Build the login page", "metadata": {"repo": "acme/web"}}, 201)
        wid = wf["id"]
        await take(ws, "workflow_created")
        await http("POST", "/api/workflows/{workflow_id}/requirements", f"/api/workflows/{wid}/requirements",
                   {"text": "Users sign in.", "items": [{"id": "R1", "text": "reset"}, "lockout"]}, 200)
        await take(ws, "requirements_submitted")
        await http("POST", "/api/workflows/{workflow_id}/phase", f"/api/workflows/{wid}/phase",
                   {"phase": "design", "reason": "requirements approved"}, 200)
        await take(ws, "phase_changed")
        await http("POST", "/api/workflows/{workflow_id}/progress", f"/api/workflows/{wid}/progress",
                   {"percent": 40, "message": "2 of 5 screens"}, 200)
        await take(ws, "progress")
        _, _, st = await http("POST", "/api/workflows/{workflow_id}/streams", f"/api/workflows/{wid}/streams", None, 201)
        start = await take(ws, "stream")
        assert start["data"].get("started") is True
        for piece in ("The login form has ", "two fields"):
            await http("POST", "/api/streams/{stream_id}/append", f"/api/streams/{st['stream_id']}/append",
                       {"delta": piece}, 202)
            delta = await take(ws, "stream")
            assert delta["data"]["delta"] == piece

        await send(ws, {"type": "snapshot"})
        snap = await take(ws, "snapshot")
        assert snap["data"]["state"]["streams"][0]["text"] == "The login form has two fields"
        assert snap["data"]["state"]["workflows"][0]["id"] == wid

        await http("POST", "/api/streams/{stream_id}/end", f"/api/streams/{st['stream_id']}/end",
                   {"status": "completed"}, 200)
        end = await take(ws, "stream")
        assert end["data"].get("done") is True
        await http("POST", "/api/agents/{agent_id}/events", f"/api/agents/{agent}/events",
                   {"type": "note", "data": {"text": "hello", "n": [1, 2]}}, 202)
        note = await take(ws, "note")
        assert note["data"] == {"text": "hello", "n": [1, 2]}
        await http("POST", "/api/workflows/{workflow_id}/cancel", f"/api/workflows/{wid}/cancel", None, 200)
        cancelled = await take(ws, "phase_changed")
        assert cancelled["data"]["to"] == "cancelled"
        await http("DELETE", "/api/workflows/{workflow_id}", f"/api/workflows/{wid}", None, 200)
        await take(ws, "workflow_deleted")

        await send(ws, {"type": "ping"})
        await take(ws, "pong")
        codes = []
        for bad in ("not json", b"\x01\x02", json.dumps({"type": "subscribe"}), json.dumps([1])):
            await ws.send(bad)
            codes.append((await take(ws, "error"))["data"]["code"])
        assert codes == ["bad_json", "bad_message", "unknown_type", "bad_message"]
        await take(ws, "heartbeat")
        last_seq = hello["data"]["seq"] + 11
        await ws.close()

        # Resume: replay then live, and the snapshot fallback for an unknown epoch.
        async with ws_connect(server, f"/ws/agents/{agent}?since=3&epoch={epoch}") as ws2:
            hello2 = await take(ws2, "connected")
            assert hello2["data"]["recovered"] is True and hello2["data"]["replayed"] == last_seq - 3
            replayed = []
            while len(replayed) < last_seq - 3:
                msg = await recv_json(ws2, what="a replayed event")
                docs.validate_message(msg)
                if msg["type"] != "heartbeat":
                    replayed.append(msg["seq"])
            assert replayed == list(range(4, last_seq + 1))
        async with ws_connect(server, f"/ws/agents/{agent}?since=3&epoch=not-the-epoch") as ws3:
            hello3 = await take(ws3, "connected")
            assert hello3["data"]["resumed"] is True and hello3["data"]["recovered"] is False
            fallback = await take(ws3, "snapshot")
            assert fallback["data"]["seq"] == last_seq and fallback["data"]["state"]["workflows"] == []

    run(scenario())
    expected = {"connected", "workflow_created", "requirements_submitted", "phase_changed", "progress", "stream",
                "workflow_deleted", "heartbeat", "snapshot", "error", "pong", "event"}
    assert expected <= set(seen), f"message types never received: {sorted(expected - set(seen))}"
