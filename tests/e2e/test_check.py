"""`agentwire check <url>`: the operator's end-to-end check of a running deployment."""

import re
import socket
import subprocess

from awtest import binary_path


def run_check(*args):
    return subprocess.run([binary_path(), "check", *args], capture_output=True, text=True, timeout=60)


def test_check_passes_against_a_running_server(server):
    r = run_check(f"http://127.0.0.1:{server.port}")
    assert r.returncode == 0, r.stdout + r.stderr
    for step in ["health", "connect", "publish", "receive", "resume", "stats"]:
        assert re.search(rf"^PASS  {step} +\d+\.\d+ ms", r.stdout, re.M), f"no PASS line for {step}:\n{r.stdout}"
    assert "all checks passed" in r.stdout
    # It really published: the server counted the check's publishes.
    assert server.stats()["publishes"] >= 2


def test_check_fails_against_nothing():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    r = run_check("--timeout", "3", f"http://127.0.0.1:{port}")
    assert r.returncode == 1, r.stdout
    assert re.search(r"^FAIL  health", r.stdout, re.M)
    assert "SKIP  connect" in r.stdout


def test_check_rejects_bad_arguments():
    assert run_check().returncode == 2
    r = run_check("ftp://example")
    assert r.returncode == 1 and "http://" in r.stdout
