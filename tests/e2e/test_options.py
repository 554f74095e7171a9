"""Command-line flags and their environment variables."""

import json
import subprocess

import pytest

from awtest import assert_json_error, binary_path, clean_env

FLAGS = [
    "listen",
    "data-dir",
    "threads",
    "max-body-bytes",
    "max-message-bytes",
    "max-queue-bytes",
    "heartbeat-interval",
    "idle-timeout",
    "log-level",
    "enable-echo",
    "compression",
]


def run_binary(*args, env=None, timeout=15):
    return subprocess.run(
        [binary_path(), *args], capture_output=True, text=True, timeout=timeout, env=clean_env(env),
        stdin=subprocess.DEVNULL,
    )


def test_help_lists_every_flag_and_exits_0():
    r = run_binary("--help")
    assert r.returncode == 0, r.stderr
    text = r.stdout + r.stderr
    missing = [f for f in FLAGS if f"--{f}" not in text]
    assert not missing, f"--help does not mention {missing}:\n{text}"


def test_version_exits_0():
    r = run_binary("--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip(), "no version printed"


def test_environment_variable_takes_effect(start_server):
    server = start_server(env={"AGENTWIRE_MAX_BODY_BYTES": "1024"})
    big = json.dumps({"type": "t", "data": {"pad": "x" * 2000}})
    status, _, body = server.post_event("env", big)
    assert_json_error(status, body, 413)
    status, _, body = server.post_event("env", {"type": "t", "data": {"pad": "x" * 500}})
    assert status == 202 and body == {"seq": 1}, body


def test_flag_overrides_environment(start_server):
    server = start_server("--max-body-bytes", "4096", env={"AGENTWIRE_MAX_BODY_BYTES": "1024"})
    status, _, body = server.post_event("env", {"type": "t", "data": {"pad": "x" * 2000}})
    assert status == 202, f"--max-body-bytes 4096 should win over the environment's 1024: {status} {body}"


def test_enable_echo_via_environment(start_server):
    server = start_server(env={"AGENTWIRE_ENABLE_ECHO": "true"})
    status, _, body = server.http("GET", "/ws/echo")
    assert status == 426, f"/ws/echo should exist (and want an upgrade) with AGENTWIRE_ENABLE_ECHO=true: {status} {body}"


BAD = {
    "body_not_number": (["--max-body-bytes", "abc"], "max-body-bytes"),
    "body_negative": (["--max-body-bytes", "-5"], "max-body-bytes"),
    "message_bytes_garbage": (["--max-message-bytes", "12Q"], "max-message-bytes"),
    "queue_bytes_empty": (["--max-queue-bytes", ""], "max-queue-bytes"),
    "heartbeat_zero": (["--heartbeat-interval", "0"], "heartbeat-interval"),
    "heartbeat_negative": (["--heartbeat-interval", "-1"], "heartbeat-interval"),
    "idle_not_number": (["--idle-timeout", "soon"], "idle-timeout"),
    "idle_below_heartbeat": (["--heartbeat-interval", "5", "--idle-timeout", "2"], "idle-timeout"),
    "threads_garbage": (["--threads", "many"], "threads"),
    "log_level_unknown": (["--log-level", "chatty"], "log-level"),
    "listen_no_port": (["--listen", "localhost"], "listen"),
    "listen_bad_port": (["--listen", "127.0.0.1:99999"], "listen"),
    "compression_bad": (["--compression=maybe"], "compression"),
    "unknown_flag": (["--frobnicate", "1"], "frobnicate"),
    "missing_value": (["--max-body-bytes"], "max-body-bytes"),
}


@pytest.mark.parametrize("args,needle", BAD.values(), ids=BAD.keys())
def test_bad_flag_value_exits_nonzero_with_message(tmp_path, args, needle):
    r = run_binary("--listen", "127.0.0.1:0", "--data-dir", str(tmp_path), *args)
    assert r.returncode != 0, f"{args} was accepted (exit 0)\n{r.stderr}"
    out = r.stderr + r.stdout
    assert needle in out, f"{args}: the message does not name the problem:\n{out}"


def test_bad_environment_value_exits_nonzero_with_message(tmp_path):
    r = run_binary("--listen", "127.0.0.1:0", "--data-dir", str(tmp_path), env={"AGENTWIRE_MAX_BODY_BYTES": "lots"})
    assert r.returncode != 0
    assert "AGENTWIRE_MAX_BODY_BYTES" in r.stderr + r.stdout, r.stderr


def test_listen_on_address_in_use_fails_cleanly(start_server, tmp_path):
    server = start_server()
    r = run_binary("--listen", f"127.0.0.1:{server.port}", "--data-dir", str(tmp_path / "other"))
    assert r.returncode != 0, "a second server started on a port in use"
    assert str(server.port) in r.stderr + r.stdout, r.stderr
