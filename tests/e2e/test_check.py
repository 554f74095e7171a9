"""`agentwire check <url>`: the operator's end-to-end check of a running deployment."""

import json
import os
import re
import shutil
import socket
import socketserver
import subprocess
import threading

import pytest

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


# ---- with keys (issue 15, item 7): --token and --api-key ----------------------------------------------

CHECK_SECRET = "check-secret-of-at-least-32-bytes-0123456789"


def mint(secret_file, agents, *extra):
    r = subprocess.run([binary_path(), "token", "--secret-file", str(secret_file), "--agents", agents, *extra],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.fixture
def keyed_server(start_server, tmp_path):
    f = tmp_path / "secret"
    f.write_text(CHECK_SECRET)
    return start_server("--auth-secret-file", str(f)), f


def test_check_passes_with_a_token_on_a_server_with_keys(keyed_server):
    server, secret = keyed_server
    token = mint(secret, "agentwire-check-*", "--scopes", "publish,read,admin")
    r = run_check("--token", token, f"http://127.0.0.1:{server.port}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all checks passed" in r.stdout
    assert token not in r.stdout + r.stderr  # credentials are never printed


def test_check_takes_the_token_from_the_environment(keyed_server):
    server, secret = keyed_server
    token = mint(secret, "agentwire-check-*", "--scopes", "publish,read,admin")
    r = subprocess.run([binary_path(), "check", f"http://127.0.0.1:{server.port}"], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "AGENTWIRE_TOKEN": token})
    assert r.returncode == 0, r.stdout + r.stderr


def test_check_without_or_with_a_wrong_token_says_why(keyed_server):
    server, secret = keyed_server
    r = run_check(f"http://127.0.0.1:{server.port}")
    assert r.returncode == 1
    assert re.search(r"^FAIL  connect .*401.*token_missing.*--token", r.stdout, re.M), r.stdout
    r = run_check("--agent", "agent-7", "--token", mint(secret, "agent-8"), f"http://127.0.0.1:{server.port}")
    assert r.returncode == 1
    assert re.search(r"^FAIL  connect .*403.*agent_forbidden", r.stdout, re.M), r.stdout


class HeadRecorder(socketserver.BaseRequestHandler):
    """Records each request's head; /healthz gets 200, anything else 401 with a JSON error."""

    heads: list = []

    def handle(self):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        HeadRecorder.heads.append(head)
        if head.startswith("GET /healthz "):
            body = b'{"status":"ok"}'
            status = b"200 OK"
        else:
            body = b'{"error":{"code":"token_invalid","message":"recorded"}}'
            status = b"401 Unauthorized"
        self.request.sendall(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


def headers_of(head: str) -> dict:
    return {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in head.split("\r\n")[1:])}


@pytest.mark.parametrize("args,http_bearer,ws_bearer", [(["--token", "tok.en.x"], "tok.en.x", "tok.en.x"),
                                                         (["--token", "tok.en.x", "--api-key", "key-1"], "key-1", "tok.en.x"),
                                                         (["--api-key", "key-1"], "key-1", "key-1")])
def test_check_sends_the_key_over_http_and_the_token_as_the_bearer_subprotocol(args, http_bearer, ws_bearer):
    HeadRecorder.heads = []
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), HeadRecorder) as fake:
        threading.Thread(target=fake.serve_forever, daemon=True).start()
        try:
            r = run_check("--timeout", "5", *args, f"http://127.0.0.1:{fake.server_address[1]}")
        finally:
            fake.shutdown()
    assert r.returncode == 1 and re.search(r"^FAIL  connect .*401", r.stdout, re.M), r.stdout
    health = headers_of(next(h for h in HeadRecorder.heads if h.startswith("GET /healthz ")))
    assert health["authorization"] == f"Bearer {http_bearer}"
    upgrade = headers_of(next(h for h in HeadRecorder.heads if h.startswith("GET /ws/agents/")))
    assert upgrade["sec-websocket-protocol"] == f"bearer, {ws_bearer}"  # a read key may subscribe too


def api_key(name, *scopes):
    """A new API key and its --api-keys-file entry, from `agentwire api-key`."""
    r = subprocess.run([binary_path(), "api-key", "--name", name, "--scopes", ",".join(scopes)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(":", 1) for line in r.stdout.splitlines() if ":" in line)
    return lines["key"].strip(), json.loads(lines["entry"].strip())


@pytest.fixture
def api_keys_server(start_server, tmp_path):
    help_text = subprocess.run([binary_path(), "--help"], capture_output=True, text=True, timeout=30).stdout
    if "--api-keys-file" not in help_text:
        pytest.skip("this build has no API keys")
    full, full_entry = api_key("ops", "publish", "read", "admin")
    publisher, publisher_entry = api_key("publisher", "publish", "read")
    f = tmp_path / "keys.json"
    f.write_text(json.dumps({"keys": [full_entry, publisher_entry]}))
    return start_server("--api-keys-file", str(f)), full, publisher


def test_check_with_an_api_key_alone_subscribes_and_publishes_with_it(api_keys_server):
    server, full, publisher = api_keys_server
    r = run_check("--api-key", full, f"http://127.0.0.1:{server.port}")
    assert r.returncode == 0 and "all checks passed" in r.stdout, r.stdout + r.stderr
    # Without admin the stats step is skipped, not failed.
    r = run_check("--api-key", publisher, f"http://127.0.0.1:{server.port}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^SKIP  stats .*403.*admin", r.stdout, re.M), r.stdout
    assert "all checks passed (1 skipped)" in r.stdout
    assert full not in r.stdout + r.stderr and publisher not in r.stdout + r.stderr


# ---- https:// (a CA and a certificate for 127.0.0.1 made here with openssl) -----------------------------


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture
def tls_server(start_server, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command")
    pki = tmp_path / "pki"
    pki.mkdir()
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=check CA", cwd=pki)
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=pki)
    (pki / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "0x1234",
            "-days", "2", "-extfile", "server.ext", "-out", "server.pem", cwd=pki)
    server = start_server("--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"))
    return server, pki


def test_check_over_https_trusts_the_ca_it_is_given(tls_server):
    server, pki = tls_server
    r = run_check("--ca-file", str(pki / "ca.pem"), f"https://127.0.0.1:{server.port}")
    assert r.returncode == 0 and "all checks passed" in r.stdout, r.stdout + r.stderr
    # A certificate from a CA nobody trusts fails at the first step, saying why.
    r = run_check("--timeout", "5", f"https://127.0.0.1:{server.port}")
    assert r.returncode == 1 and re.search(r"^FAIL  health .*certificate verify failed", r.stdout, re.M), r.stdout
    # A host name is checked against the certificate's DNS names (and sent as SNI).
    r = run_check("--ca-file", str(pki / "ca.pem"), f"https://localhost:{server.port}")
    assert r.returncode == 0 and "all checks passed" in r.stdout, r.stdout + r.stderr
