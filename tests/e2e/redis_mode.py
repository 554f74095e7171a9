"""The e2e suite in Redis mode: with AGENTWIRE_TEST_BROKER=redis every awtest.Server gets `--broker` to a
private redis-server that the session starts (loopback, a free port, a temp dir, AOF with appendfsync
always, never the system service). Each data directory gets its own Redis database, flushed when it is
handed out, so no test sees another's data; a server started again on the same data directory (a restart)
finds its database as it left it. Redis has 16 databases (agentwire accepts /0../15): they are reused
in turn, which is safe as long as no test keeps more than 15 servers' data at once.

Tests that cannot apply in Redis mode are marked `@pytest.mark.embedded_only("why")` and skipped there.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ENABLED = os.environ.get("AGENTWIRE_TEST_BROKER", "") == "redis"
DATABASES = 16


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(port: int, *args: str, timeout: float = 15.0) -> bytes:
    """Sends one command (RESP) and returns the first line of the answer, e.g. b'+OK'."""
    out = f"*{len(args)}\r\n".encode()
    for a in args:
        b = a.encode()
        out += f"${len(b)}\r\n".encode() + b + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(out)
        answer = b""
        while b"\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


class SessionRedis:
    """The session's redis-server and the database each data directory uses."""

    def __init__(self):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("AGENTWIRE_TEST_BROKER=redis needs redis-server (scripts/deps.sh test installs it)")
        self.dir = Path(tempfile.mkdtemp(prefix="agentwire-redis-"))
        self.port = free_port()
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.dir), "--daemonize", "no",
             "--databases", str(DATABASES)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                if command(self.port, "PING", timeout=1) == b"+PONG":
                    break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the session's redis-server did not answer on port {self.port}")
            time.sleep(0.02)  # pacing only: polls for the PONG
        self._db_of: dict[str, int] = {}
        self._next = 0

    def url_for(self, data_dir: Path) -> str:
        key = str(Path(data_dir).resolve())
        db = self._db_of.get(key)
        if db is None:
            db = self._next
            self._next = (self._next + 1) % DATABASES
            for k in [k for k, v in self._db_of.items() if v == db]:
                del self._db_of[k]
            self._db_of[key] = db
            self._flush(db)
        return f"redis://127.0.0.1:{self.port}/{db}"

    def _flush(self, db: int):
        # SELECT and FLUSHDB on one connection (a connection's database is its own).
        payload = f"*2\r\n$6\r\nSELECT\r\n${len(str(db))}\r\n{db}\r\n*1\r\n$7\r\nFLUSHDB\r\n".encode()
        with socket.create_connection(("127.0.0.1", self.port), timeout=15) as s:
            s.sendall(payload)
            answer = b""
            while answer.count(b"\r\n") < 2:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        if answer != b"+OK\r\n+OK\r\n":
            raise RuntimeError(f"FLUSHDB of database {db} answered {answer!r}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


_session: SessionRedis | None = None


def start():
    global _session
    if ENABLED and _session is None:
        _session = SessionRedis()


def stop():
    global _session
    if _session is not None:
        _session.stop()
        _session = None


def broker_flags(data_dir: Path, flags) -> list[str]:
    """The flags that put a server in Redis mode, or none (not enabled, or the test chose a broker)."""
    if not ENABLED or "--broker" in flags or any(str(f).startswith("--broker=") for f in flags):
        return []
    start()
    flags = [str(f) for f in flags]
    # A test that restarts a server on an earlier one's data directory names it with --data-dir (the last wins).
    for i, f in enumerate(flags):
        if f == "--data-dir" and i + 1 < len(flags):
            data_dir = Path(flags[i + 1])
        elif f.startswith("--data-dir="):
            data_dir = Path(f.split("=", 1)[1])
    return ["--broker", _session.url_for(data_dir)]


def hash_fields(data_dir: Path, key: str) -> list[bytes]:
    """HKEYS of `key` in the Redis database the server on `data_dir` uses."""
    db = int(_session.url_for(data_dir).rsplit("/", 1)[1])
    payload = b""
    for args in (("SELECT", str(db)), ("HKEYS", key)):
        payload += f"*{len(args)}\r\n".encode()
        for a in args:
            payload += f"${len(a.encode())}\r\n".encode() + a.encode() + b"\r\n"
    with socket.create_connection(("127.0.0.1", _session.port), timeout=15) as s:
        s.sendall(payload)
        reader = s.makefile("rb")
        if reader.readline() != b"+OK\r\n":
            raise RuntimeError("SELECT failed")
        head = reader.readline()
        if not head.startswith(b"*"):
            raise RuntimeError(f"HKEYS answered {head!r}")
        fields = []
        for _ in range(int(head[1:])):
            size = int(reader.readline()[1:])
            fields.append(reader.read(size + 2)[:-2])
        return fields


def xfail(reason: str, strict: bool = True):
    """A test that applies in Redis mode but fails there for a known Redis-mode bug (the reason says which):
    expected to fail in Redis mode only, so it shows when fixed."""
    import pytest

    return pytest.mark.xfail(ENABLED, reason=f"Redis mode: {reason}", strict=strict)
