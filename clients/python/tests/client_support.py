"""Test support for the Python client: the real agentwire binary, a TCP proxy that cuts the network,
and condition waits.

Everything waits on conditions with generous upper bounds (the CI machine is a busy 2-core box); nothing
sleeps for correctness.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Awaitable, Callable, List, Optional, Set, TypeVar

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
LISTENING_RE = re.compile(r"\bevent=listening\b.*\bport=(\d+)")

T = TypeVar("T")


def binary_path() -> str:
    return os.environ.get("AGENTWIRE_BIN") or str(REPO_ROOT / "build" / "agentwire")


class ServerProcess:
    """One agentwire process. ``port=0`` picks a free port; the chosen one is read from its log."""

    def __init__(self, data_dir: Path, flags: List[str], port: int = 0) -> None:
        self.data_dir = data_dir
        self.flags = list(flags)
        self.port: Optional[int] = None
        self.lines: List[str] = []
        self.paused = False
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._eof = threading.Event()
        data_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTWIRE_")}
        self.args = [binary_path(), "--listen", f"127.0.0.1:{port}", "--data-dir", str(data_dir), *self.flags]
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env=env)
        threading.Thread(target=self._read_log, daemon=True).start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None:
                self._eof.wait(2)
                raise RuntimeError(f"agentwire exited ({self.proc.returncode}) before listening: {self.args}\n{self.log}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"agentwire did not listen within {START_TIMEOUT}s\n{self.log}")
        self._wait_for_signal_handlers()

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
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

    def _wait_for_signal_handlers(self) -> None:
        """A SIGTERM sent before the server takes signals kills it instead of stopping it."""
        deadline = time.monotonic() + 5.0
        while self.running and time.monotonic() < deadline:
            try:
                with open(f"/proc/{self.proc.pid}/status") as f:
                    # Caught by a handler (SigCgt) or blocked to be read from a signalfd (SigBlk).
                    mask = 0
                    for line in f:
                        if line.startswith(("SigCgt:", "SigBlk:")):
                            mask |= int(line.split()[1], 16)
                    if all(mask & (1 << (s - 1)) for s in (signal.SIGTERM, signal.SIGINT)):
                        return
            except OSError:
                return
            time.sleep(0.005)

    @property
    def log(self) -> str:
        with self._lock:
            return "\n".join(self.lines[-200:])

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pause(self) -> None:
        """SIGSTOP: the process freezes, its sockets stay open — a server that went silent."""
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code."""
        if self.paused:
            self.resume()
        if not self.running:
            return self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise RuntimeError(f"agentwire did not exit within {STOP_TIMEOUT}s of SIGTERM\n{self.log}")
        self._eof.wait(5)
        return rc

    def kill(self) -> None:
        if self.running:
            if self.paused:
                self.resume()
            self.proc.kill()
            self.proc.wait()


class Servers:
    """Starts servers for a test and stops every one of them at teardown."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.started: List[ServerProcess] = []

    def start(self, *flags: str, data_dir: Optional[Path] = None, port: int = 0) -> ServerProcess:
        data_dir = data_dir or self.tmp_path / f"data{len(self.started)}"
        # A fixed port may still be held for a moment by the process that just let it go: retry a few times.
        attempts = 1 if port == 0 else 20
        for attempt in range(attempts):
            try:
                server = ServerProcess(data_dir, list(flags), port)
                self.started.append(server)
                return server
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                time.sleep(0.25)
        raise AssertionError("unreachable")

    def restart(self, server: ServerProcess) -> ServerProcess:
        """SIGTERM ``server``, then start the same binary on the same data dir and port."""
        rc = server.stop()
        assert rc == 0, f"agentwire exited with {rc} after SIGTERM\n{server.log}"
        assert server.port is not None
        return self.start(*server.flags, data_dir=server.data_dir, port=server.port)

    def stop_all(self) -> List[str]:
        problems = []
        for server in self.started:
            try:
                if server.running:
                    rc = server.stop()
                    if rc != 0:
                        problems.append(f"agentwire exited with {rc} after SIGTERM\n{server.log}")
            except RuntimeError as exc:
                problems.append(str(exc))
        return problems


class TcpProxy:
    """A TCP relay in front of the server, to cut the network without touching the server.

    ``cut()`` drops every relayed connection and refuses new ones (closes them at once) until ``restore()``.
    Runs on the test's own event loop.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port: Optional[int] = None
        self.blocked = False
        self._server: Optional[asyncio.AbstractServer] = None
        self._writers: Set[asyncio.StreamWriter] = set()
        self._tasks: Set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "TcpProxy":
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.blocked:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        for task in (asyncio.ensure_future(pump(reader, up_writer)), asyncio.ensure_future(pump(up_reader, writer))):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def cut(self) -> None:
        self.blocked = True
        for w in list(self._writers):
            transport = w.transport
            transport.abort()
        self._writers.clear()

    def restore(self) -> None:
        self.blocked = False

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()


def run(coro: Awaitable[T], timeout: float = 120.0) -> T:
    """Runs a test's coroutine on a fresh event loop, failing (not hanging) after ``timeout``."""
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


async def until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.01):
    """Polls ``predicate`` until truthy; fails the test with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.1f}s waiting for {what} (last value: {value!r})")
        await asyncio.sleep(interval)


def first_change(sub, state, after: int = 0):
    """The first state change to ``state`` at index ``after`` or later in the subscription's history.

    Tests wait on the history, not on ``sub.state``: a state can be left again before a poll sees it
    (a reconnect that succeeds within milliseconds).
    """
    for change in sub.state_history[after:]:
        if change.state is state:
            return change
    return None
