"""Fixtures for the agentwire black-box tests.

Run with Debian's Python: /usr/bin/python3 -m pytest tests/e2e -q
The binary is build/agentwire unless AGENTWIRE_BIN names another one.
"""

import os
import signal

import pytest

pytest.register_assert_rewrite("awtest")

import awtest  # noqa: E402
import redis_mode  # noqa: E402
from awtest import Server  # noqa: E402


def pytest_sessionstart(session):
    path = awtest.binary_path()
    if not os.access(path, os.X_OK):
        raise pytest.UsageError(
            f"agentwire binary not found at {path}: build it (ninja -C build agentwire) or set AGENTWIRE_BIN"
        )
    redis_mode.start()


def pytest_sessionfinish(session, exitstatus):
    redis_mode.stop()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "embedded_only(reason): the test is about the embedded store (SQLite) and is skipped when "
        "AGENTWIRE_TEST_BROKER=redis runs the suite in Redis mode")


def pytest_collection_modifyitems(config, items):
    if not redis_mode.ENABLED:
        return
    for item in items:
        marker = item.get_closest_marker("embedded_only")
        if marker is not None:
            why = marker.args[0] if marker.args else marker.kwargs.get("reason", "embedded store only")
            item.add_marker(pytest.mark.skip(reason=f"embedded only: {why}"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def start_server(tmp_path, request):
    """start_server(*flags, env=None) -> Server. Every server is stopped with SIGTERM at teardown and must
    exit 0 within 10 s."""
    servers = []

    def start(*flags, env=None):
        s = Server(tmp_path / f"data{len(servers)}", flags, env)
        servers.append(s)
        return s

    yield start

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    problems = []
    for s in servers:
        if failed:
            print(f"---- agentwire log ({' '.join(s.args)}) ----\n{s.log_tail()}")
        if not s.running:
            if s.proc.returncode not in (0, None):
                problems.append(f"agentwire exited with code {s.proc.returncode} during the test\n{s.log_tail()}")
            continue
        s.settle()
        s.proc.send_signal(signal.SIGTERM)
        try:
            rc = s.proc.wait(awtest.STOP_TIMEOUT)
        except Exception:
            s.kill()
            problems.append(f"agentwire did not exit within {awtest.STOP_TIMEOUT}s of SIGTERM; killed\n{s.log_tail()}")
            continue
        if rc != 0:
            problems.append(f"agentwire exited with code {rc} after SIGTERM\n{s.log_tail()}")
    if problems:
        pytest.fail("\n\n".join(problems))


@pytest.fixture
def server(start_server):
    """A server with default options."""
    return start_server()
