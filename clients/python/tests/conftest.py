"""Fixtures for the Python client's tests, which run against the real agentwire binary.

Run with Debian's Python: /usr/bin/python3 -m pytest clients/python/tests -q
The binary is build/agentwire at the repository's root unless AGENTWIRE_BIN names another one.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # test the package in this tree, installed or not
sys.path.insert(0, str(HERE))

from client_support import Servers, ServerProcess, binary_path  # noqa: E402


def pytest_sessionstart(session: pytest.Session) -> None:
    if not os.access(binary_path(), os.X_OK):
        raise pytest.UsageError(
            f"agentwire binary not found at {binary_path()}: build it (ninja -C build agentwire) or set AGENTWIRE_BIN"
        )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def servers(tmp_path: Path, request: pytest.FixtureRequest):
    """Start servers with ``servers.start(*flags)``; all are stopped (SIGTERM) at teardown, and their logs
    printed when the test failed."""
    s = Servers(tmp_path)
    yield s
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for proc in s.started:
            print(f"---- agentwire log ({' '.join(proc.args)}) ----\n{proc.log}")
    problems = s.stop_all()
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture
def server(servers: Servers) -> ServerProcess:
    return servers.start()


@pytest.fixture
def unused_port() -> int:
    """A port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
