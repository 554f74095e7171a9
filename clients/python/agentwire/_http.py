"""A minimal HTTP/1.1 client, blocking (http.client) and asyncio (streams), with no third-party code.

Why not urllib or a library: the package must install on a bare Debian python3 with only
python3-websockets, urllib raises its own exception types for 4xx/5xx that would then need translating
anyway, and the asyncio side must be cancellable without a thread pool. Each request uses its own
connection (``Connection: close``): publishers are rarely hot enough for keep-alive to matter, and a fresh
connection never trips over one the server closed while it sat idle.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional
from urllib.parse import quote, urlencode, urlsplit

from .errors import AgentwireConnectionError, error_for

USER_AGENT = "agentwire-python/0.1.0"


@dataclass(frozen=True)
class Endpoint:
    """Where the server is: scheme, host, port and an optional path prefix (behind a reverse proxy)."""

    scheme: str
    host: str
    port: int
    prefix: str

    @classmethod
    def parse(cls, base_url: str) -> "Endpoint":
        parts = urlsplit(base_url)
        scheme = parts.scheme.lower()
        if scheme in ("ws", "wss"):
            scheme = "http" if scheme == "ws" else "https"
        if scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {base_url!r}")
        port = parts.port or (443 if scheme == "https" else 80)
        return cls(scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    def path(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        q = {k: v for k, v in (query or {}).items() if v is not None}
        return self.prefix + path + ("?" + urlencode(q) if q else "")

    def ws_url(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        scheme = "wss" if self.scheme == "https" else "ws"
        return f"{scheme}://{self.host_header}{self.path(path, query)}"


def segment(value: str) -> str:
    """One path segment, percent-encoded (the server decodes path parameters)."""
    return quote(value, safe="")


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: Dict[str, str]  # lower-case names
    body: bytes


def request_headers(endpoint: Endpoint, body: Optional[bytes], extra: Mapping[str, str]) -> Dict[str, str]:
    headers = {"Host": endpoint.host_header, "User-Agent": USER_AGENT, "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
        headers["Content-Length"] = str(len(body))
    headers.update(extra)
    return headers


def decode_json(response: HttpResponse) -> Any:
    """The response's JSON; an :class:`AgentwireError` for any non-2xx answer.

    Non-JSON error bodies (a proxy's HTML page, say) still become a typed error, with code ``http_<status>``.
    """
    text = response.body.decode("utf-8", "replace")
    try:
        payload = json.loads(text) if text.strip() else None
    except ValueError:
        payload = None
        if 200 <= response.status < 300:
            raise AgentwireConnectionError(f"the server answered {response.status} with a body that is not JSON")
    if 200 <= response.status < 300:
        return payload
    err = payload.get("error") if isinstance(payload, dict) else None
    if isinstance(err, dict):
        raw_code, raw_message = err.get("code"), err.get("message")
        code = raw_code if isinstance(raw_code, str) else f"http_{response.status}"
        message = raw_message if isinstance(raw_message, str) else ""
        details = {k: v for k, v in err.items() if k not in ("code", "message")}
        raise error_for(response.status, code, message, details)
    raise error_for(response.status, f"http_{response.status}", text.strip()[:500])


# ---- blocking -----------------------------------------------------------------------------------------------


def sync_request(
    endpoint: Endpoint,
    method: str,
    path: str,
    body: Optional[bytes],
    headers: Mapping[str, str],
    timeout: float,
    ssl_context: Optional[ssl.SSLContext],
) -> HttpResponse:
    conn: http.client.HTTPConnection
    if endpoint.scheme == "https":
        conn = http.client.HTTPSConnection(endpoint.host, endpoint.port, timeout=timeout, context=ssl_context)
    else:
        conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout)
    try:
        all_headers = request_headers(endpoint, body, headers)
        all_headers["Connection"] = "close"
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in all_headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        return HttpResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    except (OSError, http.client.HTTPException) as exc:
        raise AgentwireConnectionError(f"{method} {path}: {exc or type(exc).__name__}", exc) from exc
    finally:
        conn.close()


# ---- asyncio --------------------------------------------------------------------------------------------------


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: List[bytes] = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                # trailers, then the empty line
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = headers.get("content-length")
    if length is not None:
        return await reader.readexactly(int(length))
    return await reader.read()


async def _exchange(
    endpoint: Endpoint,
    method: str,
    path: str,
    body: Optional[bytes],
    headers: Mapping[str, str],
    ssl_context: Optional[ssl.SSLContext],
) -> HttpResponse:
    use_ssl: Any = None
    if endpoint.scheme == "https":
        use_ssl = ssl_context or ssl.create_default_context()
    reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port, ssl=use_ssl)
    try:
        all_headers = request_headers(endpoint, body, headers)
        all_headers["Connection"] = "close"
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in all_headers.items()) + "\r\n"
        writer.write(head.encode("latin-1") + (body or b""))
        await writer.drain()
        raw_head = await reader.readuntil(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status_parts = lines[0].split(" ", 2)
        if len(status_parts) < 2 or not status_parts[0].startswith("HTTP/"):
            raise AgentwireConnectionError(f"{method} {path}: malformed status line {lines[0]!r}")
        status = int(status_parts[1])
        resp_headers: Dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                resp_headers[name.strip().lower()] = value.strip()
        data = b"" if method == "HEAD" or status in (204, 304) else await _read_body(reader, resp_headers)
        return HttpResponse(status, resp_headers, data)
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, ssl.SSLError):
            pass


async def async_request(
    endpoint: Endpoint,
    method: str,
    path: str,
    body: Optional[bytes],
    headers: Mapping[str, str],
    timeout: float,
    ssl_context: Optional[ssl.SSLContext],
) -> HttpResponse:
    try:
        return await asyncio.wait_for(_exchange(endpoint, method, path, body, headers, ssl_context), timeout)
    except asyncio.TimeoutError as exc:
        raise AgentwireConnectionError(f"{method} {path}: no answer within {timeout:g}s", exc) from exc
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        raise AgentwireConnectionError(f"{method} {path}: {exc or type(exc).__name__}", exc) from exc


def encode_body(payload: Any) -> bytes:
    # ensure_ascii=False keeps non-ASCII text as UTF-8 bytes (smaller, and the server takes UTF-8).
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

