"""Helpers for the agentwire black-box tests: the server process, HTTP, WebSocket and raw-socket clients.

Everything here talks to the real binary over real sockets. Waits are on conditions with generous
upper bounds (the CI machine is a busy 2-core box); nothing sleeps for correctness.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest
import websockets

import redis_mode

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "build" / "agentwire"

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
IO_TIMEOUT = 15.0  # a single HTTP exchange or WebSocket message on a busy machine
# The server may log event=listening before it has installed its SIGTERM/SIGINT handlers; a signal sent in
# that window kills it with the default action. test_shutdown.py::test_sigterm_right_after_listening_exits_0
# checks that window; everywhere else signals wait until /proc shows both handlers installed, so unrelated
# tests do not fail at random on that one problem.
HANDLERS_TIMEOUT = 5.0
# scripts/test.sh sets AGENTWIRE_SANITIZED=1 when the binary under test is an AddressSanitizer build: its
# memory figures are several times a release build's, so bounds measured in RSS scale with RSS_SCALE.
SANITIZED = os.environ.get("AGENTWIRE_SANITIZED") == "1"
RSS_SCALE = 4 if SANITIZED else 1

LISTENING_RE = re.compile(r"\bevent=listening\b.*\bport=(\d+)")
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def binary_path() -> str:
    return os.environ.get("AGENTWIRE_BIN") or str(DEFAULT_BIN)


def clean_env(extra: dict | None = None) -> dict:
    """The test runner's environment without AGENTWIRE_* settings (they would change the server's options)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWIRE_")}
    if SANITIZED:
        # AddressSanitizer keeps up to 256 MB of freed memory in quarantine by default, which RSS bounds would
        # measure instead of what the server holds; a small quarantine lets freed memory be reused.
        env["ASAN_OPTIONS"] = env.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
    if extra:
        env.update(extra)
    return env


def wait_until(predicate, timeout: float, what: str, interval: float = 0.02):
    """Polls predicate() until it returns a truthy value; fails with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {what} (last value: {last!r})")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------------------------


class Server:
    """One agentwire process on a free port with its own data directory."""

    def __init__(self, data_dir: Path, flags=(), env: dict | None = None):
        self.data_dir = Path(data_dir)
        self.flags = list(flags)
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.lines: list[str] = []
        # Sent as `Authorization: Bearer ...` by http() and the helpers built on it, for servers with keys.
        self.credential: str | None = None
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._eof = threading.Event()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # AGENTWIRE_TEST_BROKER=redis: the same server in Redis mode, on a database of its own (redis_mode.py).
        self.flags += redis_mode.broker_flags(self.data_dir, self.flags)
        args = [binary_path(), "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir), *self.flags]
        self.args = args
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=clean_env(env),
        )
        self._reader = threading.Thread(target=self._read_log, name="agentwire-log", daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._listening.is_set():
            if self._eof.is_set() or self.proc.poll() is not None:
                self._eof.wait(2)
                pytest.fail(f"agentwire exited (code {self.proc.poll()}) before listening: {args}\n{self.log}")
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                pytest.fail(f"agentwire did not log event=listening within {START_TIMEOUT}s: {args}\n{self.log}")
            self._listening.wait(0.05)

    def _read_log(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines.append(line)
            if self.port is None:
                m = LISTENING_RE.search(line)
                if m:
                    self.port = int(m.group(1))
                    self._listening.set()
        self._eof.set()

    @property
    def log(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def log_tail(self, n: int = 200) -> str:
        with self._lock:
            return "\n".join(self.lines[-n:])

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def url(self, path: str) -> str:
        return f"ws://{self.host}:{self.port}{path}"

    def handles_signals(self) -> bool:
        """True once SIGTERM and SIGINT can no longer kill the process: caught by a handler (SigCgt) or
        blocked to be read from a signalfd (SigBlk, the main thread's mask) -- see /proc/<pid>/status."""
        masks = {}
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    key, _, value = line.partition(":")
                    if key in ("SigCgt", "SigBlk"):
                        masks[key] = int(value.split()[0], 16)
        except (OSError, ValueError, IndexError):
            return False
        handled = masks.get("SigCgt", 0) | masks.get("SigBlk", 0)
        return all(handled & (1 << (sig - 1)) for sig in (signal.SIGTERM, signal.SIGINT))

    def settle(self):
        """Waits (bounded) until the server has installed its signal handlers; see HANDLERS_TIMEOUT."""
        deadline = time.monotonic() + HANDLERS_TIMEOUT
        while self.running and not self.handles_signals() and time.monotonic() < deadline:
            time.sleep(0.005)

    def stop(self, sig=signal.SIGTERM, timeout: float = STOP_TIMEOUT):
        """Sends `sig` and waits; returns (exit code, seconds taken). Kills and fails after `timeout`."""
        if not self.running:
            return self.proc.returncode, 0.0
        self.settle()
        started = time.monotonic()
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._eof.wait(5)
            pytest.fail(f"agentwire did not exit within {timeout}s of signal {sig!s}; killed\n{self.log_tail()}")
        took = time.monotonic() - started
        self._eof.wait(5)
        return rc, took

    def kill(self):
        if self.running:
            self.proc.kill()
            self.proc.wait()

    # ---- conveniences ----

    def http(self, method, path, body=None, headers=None, timeout=IO_TIMEOUT):
        if self.credential and not any(k.lower() == "authorization" for k in (headers or {})):
            headers = {**(headers or {}), "Authorization": f"Bearer {self.credential}"}
        return http_request(self.host, self.port, method, path, body, headers, timeout)

    def post_event(self, agent_id, body, headers=None):
        """POSTs an event; `body` is a dict (serialised here) or the exact bytes/str to send."""
        if isinstance(body, dict):
            body = json.dumps(body)
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.http("POST", f"/api/agents/{agent_id}/events", body, h)

    def publish(self, agent_id, type_="t", data=None) -> int:
        status, _, body = self.post_event(agent_id, {"type": type_, "data": data if data is not None else {}})
        assert status == 202, f"publish to {agent_id} answered {status}: {body!r}"
        assert isinstance(body, dict) and isinstance(body.get("seq"), int), body
        return body["seq"]

    def stats(self) -> dict:
        status, _, body = self.http("GET", "/api/websocket/stats")
        assert status == 200, f"stats answered {status}: {body!r}"
        assert isinstance(body, dict), body
        return body

    def rss_kb(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS in /proc/<pid>/status")


def dir_bytes(path: Path) -> int:
    """Bytes on disk (allocated blocks) of every file under `path`: what a quota on a data dir must bound."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                pass  # a file SQLite removed while we walked
    return total


# --------------------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------------------


def _decode_body(headers, data: bytes):
    ctype = ""
    for k, v in headers.items():
        if k.lower() == "content-type":
            ctype = v
    text = data.decode("utf-8", "replace")
    if "json" in ctype.lower():
        try:
            return json.loads(data)
        except ValueError:
            return text
    return text


def read_response(conn: http.client.HTTPConnection):
    resp = conn.getresponse()
    data = resp.read()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    return resp.status, headers, _decode_body(headers, data)


def http_request(host, port, method, path, body=None, headers=None, timeout=IO_TIMEOUT):
    """One request on a fresh connection: (status, lower-cased headers, parsed JSON or text)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if isinstance(body, str):
            body = body.encode("utf-8")
        conn.request(method, path, body=body, headers=headers or {})
        return read_response(conn)
    finally:
        conn.close()


def assert_json_error(status, body, expected_status):
    assert status == expected_status, f"expected HTTP {expected_status}, got {status}: {body!r}"
    assert isinstance(body, dict), f"HTTP {status} body is not JSON: {body!r}"
    err = body.get("error")
    assert isinstance(err, dict), f"no error object in {body!r}"
    assert isinstance(err.get("code"), str) and err["code"], f"error.code missing or empty: {body!r}"
    assert isinstance(err.get("message"), str) and err["message"], f"error.message missing or empty: {body!r}"
    return err


class RawHttp:
    """A raw TCP connection for pipelining: write many requests at once, read the responses in order."""

    def __init__(self, host, port, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection mid-response")
        self.buf += chunk

    def read_response(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        assert "transfer-encoding" not in headers, "chunked responses are not expected from agentwire"
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            self._fill()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, _decode_body(headers, body)


def pipelined(server, requests):
    """Sends (path, body) requests in one write on one connection; returns the answers in order."""
    conn = RawHttp(server.host, server.port)
    try:
        out = b""
        for path, body in requests:
            data = json.dumps(body).encode()
            out += (
                f"POST {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
            ).encode() + data
        conn.send(out)
        return [conn.read_response() for _ in requests]
    finally:
        conn.close()


def post_request_bytes(host, port, agent_id, body: bytes) -> bytes:
    return (
        f"POST /api/agents/{agent_id}/events HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def pipeline_publish(server: Server, agent_id: str, bodies: list[bytes]) -> list[int]:
    """Sends all publishes in one write on one connection and returns the acknowledged seqs, in order."""
    conn = RawHttp(server.host, server.port)
    try:
        conn.send(b"".join(post_request_bytes(server.host, server.port, agent_id, b) for b in bodies))
        seqs = []
        for _ in bodies:
            status, _, body = conn.read_response()
            assert status == 202, f"pipelined publish answered {status}: {body!r}"
            seqs.append(body["seq"])
        return seqs
    finally:
        conn.close()


# --------------------------------------------------------------------------------------------------------
# WebSocket (websockets library, asyncio)
# --------------------------------------------------------------------------------------------------------


def ws_connect(server: Server, path: str, **kwargs):
    kwargs.setdefault("open_timeout", IO_TIMEOUT)
    kwargs.setdefault("close_timeout", 5)
    kwargs.setdefault("max_queue", None)  # never apply back-pressure to the server because the test is busy
    return websockets.connect(server.url(path), **kwargs)


async def recv_text(ws, timeout=IO_TIMEOUT, what="a message") -> str:
    try:
        msg = await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        pytest.fail(f"no WebSocket message within {timeout}s (waiting for {what})")
    except websockets.ConnectionClosed as e:
        pytest.fail(f"connection closed (code {e.code} {e.reason!r}) while waiting for {what}")
    assert isinstance(msg, str), f"expected a text frame, got binary {msg!r:.200}"
    return msg


async def recv_json(ws, timeout=IO_TIMEOUT, what="a message") -> dict:
    text = await recv_text(ws, timeout, what)
    try:
        return json.loads(text)
    except ValueError:
        pytest.fail(f"frame is not JSON: {text!r:.500}")


async def recv_json_skip(ws, skip=("heartbeat",), timeout=IO_TIMEOUT, what="a message") -> dict:
    """Like recv_json but skips envelopes whose type is in `skip` (heartbeats may arrive at any time)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"no WebSocket message within {timeout}s (waiting for {what})")
        msg = await recv_json(ws, left, what)
        if msg.get("type") not in skip:
            return msg


async def connect_agent(server: Server, agent_id: str, **kwargs):
    """Connects to /ws/agents/{agent_id} and returns (ws, connected envelope)."""
    ws = await ws_connect(server, f"/ws/agents/{agent_id}", **kwargs)
    hello = await recv_json(ws, what="the connected envelope")
    assert hello.get("type") == "connected", f"first frame is not connected: {hello!r}"
    return ws, hello


async def apublish(server: Server, agent_id: str, type_="t", data=None) -> int:
    return await asyncio.to_thread(server.publish, agent_id, type_, data)


async def ahttp(server: Server, method, path, body=None, headers=None):
    return await asyncio.to_thread(server.http, method, path, body, headers)


async def await_closed(ws, timeout=IO_TIMEOUT) -> int | None:
    """Reads (and discards) until the connection is closed; returns the close code the peer sent."""
    async def drain():
        try:
            while True:
                await ws.recv()
        except websockets.ConnectionClosed:
            pass

    try:
        await asyncio.wait_for(drain(), timeout)
        await asyncio.wait_for(ws.wait_closed(), timeout)
    except asyncio.TimeoutError:
        pytest.fail(f"connection was not closed within {timeout}s")
    return ws.close_code


# --------------------------------------------------------------------------------------------------------
# A raw WebSocket client: hand-made handshake and frames (no automatic pongs, invalid payloads allowed)
# --------------------------------------------------------------------------------------------------------

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class RawWebSocket:
    def __init__(self, server: Server, path: str, rcvbuf: int | None = None, timeout: float = IO_TIMEOUT):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)  # before connect: limits the window
        s.settimeout(timeout)
        self.started_at = time.monotonic()  # before the connect: no server clock for it starts earlier
        s.connect((server.host, server.port))
        self.sock = s
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        s.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self.buf:
            chunk = s.recv(4096)
            if not chunk:
                raise ConnectionError(f"server closed during the handshake: {self.buf!r}")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        assert self.status == 101, f"handshake answered {lines[0]!r}"
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        assert self.headers.get("sec-websocket-accept") == expected, self.headers
        self.opened_at = time.monotonic()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True, mask: bool = True):
        first = (0x80 if fin else 0) | opcode
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            header = struct.pack("!BB", first, mbit | n)
        elif n <= 0xFFFF:
            header = struct.pack("!BBH", first, mbit | 126, n)
        else:
            header = struct.pack("!BBQ", first, mbit | 127, n)
        if mask:
            key = os.urandom(4)
            masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
            self.sock.sendall(header + key + masked)
        else:
            self.sock.sendall(header + payload)

    def send_text(self, text: str):
        self.send_frame(OP_TEXT, text.encode("utf-8"))

    def send_close(self, code: int = 1000, reason: bytes = b""):
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", code) + reason)
        except OSError:
            pass

    def _need(self, n: int, deadline: float) -> bool:
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete frame before the deadline")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no complete frame before the deadline") from None
            except ConnectionResetError:
                return False
            if not chunk:
                return False
            self.buf += chunk
        return True

    def recv_frame(self, timeout: float = IO_TIMEOUT):
        """Returns (fin, opcode, payload), or None at end of stream. Raises TimeoutError."""
        deadline = time.monotonic() + timeout
        if not self._need(2, deadline):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        assert b1 & 0x80 == 0, "server frames must not be masked"
        n = b1 & 0x7F
        pos = 2
        if n == 126:
            if not self._need(4, deadline):
                return None
            n = struct.unpack("!H", self.buf[2:4])[0]
            pos = 4
        elif n == 127:
            if not self._need(10, deadline):
                return None
            n = struct.unpack("!Q", self.buf[2:10])[0]
            pos = 10
        if not self._need(pos + n, deadline):
            return None
        payload = self.buf[pos : pos + n]
        self.buf = self.buf[pos + n :]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def read_until_close(self, timeout: float = IO_TIMEOUT, answer_pings: bool = False):
        """Reads frames until a close frame or end of stream.

        Returns (close_code or None, list of text payloads seen, seconds since the handshake when it ended).
        """
        deadline = time.monotonic() + timeout
        texts = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"the server did not close the connection within {timeout}s")
            try:
                frame = self.recv_frame(left)
            except TimeoutError:
                pytest.fail(f"the server did not close the connection within {timeout}s")
            if frame is None:
                return None, texts, time.monotonic() - self.opened_at
            _, op, payload = frame
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                return code, texts, time.monotonic() - self.opened_at
            if op == OP_TEXT:
                texts.append(payload.decode("utf-8"))
            elif op == OP_PING and answer_pings:
                self.send_frame(OP_PONG, payload)


def run(coro):
    """Runs a coroutine to completion from a synchronous test."""
    return asyncio.run(coro)
