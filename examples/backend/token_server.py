#!/usr/bin/env python3
"""Your backend's side of agentwire tokens: it knows who the user is and which agents they may watch,
and signs a short-lived token saying so; the browser connects to agentwire with it. agentwire checks the
signature and the `agents` claim, and never talks to this backend.

    AGENTWIRE_AUTH_SECRET=$(openssl rand -base64 48)            # shared by agentwire and this backend
    build/agentwire --allowed-origins http://127.0.0.1:8000 &    # the same variable; the page's origin
    (cd clients/ts && npm ci && npm run build)                   # the page imports the built client
    /usr/bin/python3 examples/backend/token_server.py --agentwire http://127.0.0.1:8080
    open http://127.0.0.1:8000/                                  # → the example page, following agent-7

It serves the example page (examples/browser/) and the client it imports (clients/ts/dist/), and

    GET /token?agent=agent-7   →  {"token": "<JWT>", "expires_in": 300}    (403 if the user may not)

which the page's token provider calls before every connection and again on `token_expiring`. The JWT
is HS256 made with hmac/hashlib here, so the example needs nothing installed; with PyJWT it is one line:
``jwt.encode(claims, secret, algorithm="HS256")``. Users and their agents are made up: replace
``current_user`` and ``USERS`` with your sessions and permissions.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import mimetypes
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

REPO = Path(__file__).resolve().parents[2]
#: The only files served: the example page and the client it imports.
STATIC_ROOTS = ("examples/browser/", "clients/ts/dist/")
#: Which agents each user may watch: exact ids or prefixes ending in * (the same patterns as the claim).
USERS = {"alice": ["agent-7", "team-a:*"]}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(secret: bytes, user: str, agents: list[str], ttl: int) -> str:
    """An HS256 JWT with the claims agentwire checks: sub, iat, exp and the agents it allows."""
    now = int(time.time())
    claims = {"sub": user, "iat": now, "exp": now + ttl, "agents": agents}
    signing_input = b64url(b'{"alg":"HS256","typ":"JWT"}') + "." + b64url(json.dumps(claims).encode())
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def may_watch(user: str, agent: str) -> bool:
    return any(agent == p or (p.endswith("*") and agent.startswith(p[:-1])) for p in USERS.get(user, []))


def current_user(handler: BaseHTTPRequestHandler) -> str:
    # Stands in for your session lookup (a cookie, your own auth): everyone is alice here.
    return "alice"


class Handler(BaseHTTPRequestHandler):
    secret = b""
    ttl = 300
    agentwire = "http://127.0.0.1:8080"

    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        url = urlsplit(self.path)
        if url.path == "/token":
            return self.token(parse_qs(url.query).get("agent", [""])[0])
        if url.path == "/":
            target = f"/examples/browser/?server={quote(self.agentwire, safe='')}&token_url=/token"
            return self.answer(302, b"", "text/plain", {"Location": target})
        return self.static(url.path)

    def token(self, agent: str) -> None:
        user = current_user(self)
        if not may_watch(user, agent):
            body = {"error": {"code": "agent_forbidden", "message": f"{user} may not watch {agent!r}"}}
            return self.answer(403, json.dumps(body).encode(), "application/json")
        # One agent per token: a leaked token shows as little as possible, for as short a time as possible.
        token = mint(self.secret, user, [agent], self.ttl)
        print(f"minted a token for {user}: agents={agent} ttl={self.ttl}s", flush=True)
        self.answer(200, json.dumps({"token": token, "expires_in": self.ttl}).encode(), "application/json",
                    {"Cache-Control": "no-store"})

    def static(self, path: str) -> None:
        rel = path.lstrip("/")
        if rel.endswith("/"):
            rel += "index.html"
        file = (REPO / rel).resolve()
        inside = file.relative_to(REPO).as_posix() if REPO in file.parents else ""
        if not inside.startswith(STATIC_ROOTS) or not file.is_file():  # checked after resolving any ..
            return self.answer(404, b"not found", "text/plain")
        kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        self.answer(200, file.read_bytes(), "text/javascript" if file.suffix == ".js" else kind)

    def answer(self, status: int, body: bytes, kind: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the standard library's name)
        pass  # the token is in no URL, but keep the example's output to what it minted


def main() -> int:
    parser = argparse.ArgumentParser(description="Mint agentwire tokens for the example page's user.")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (0: any free one)")
    parser.add_argument("--agentwire", default="http://127.0.0.1:8080", help="the agentwire server the page uses")
    parser.add_argument("--secret-file", help="the HMAC secret, as agentwire's --auth-secret-file "
                        "(default: the AGENTWIRE_AUTH_SECRET environment variable)")
    parser.add_argument("--ttl", type=int, default=300, help="token lifetime in seconds (default 300)")
    args = parser.parse_args()
    if args.secret_file:
        secret = Path(args.secret_file).read_bytes().rstrip(b"\r\n")  # as agentwire reads it
    else:
        secret = os.environ.get("AGENTWIRE_AUTH_SECRET", "").encode()
    if not secret:
        print("token_server: give --secret-file or AGENTWIRE_AUTH_SECRET (the secret agentwire uses)", file=sys.stderr)
        return 2
    if args.ttl < 1:
        print("token_server: --ttl must be at least 1 second", file=sys.stderr)
        return 2
    Handler.secret, Handler.ttl, Handler.agentwire = secret, args.ttl, args.agentwire
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"token_server: listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
