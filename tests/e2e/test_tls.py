"""TLS on the listening port (issue 15, item 6): --tls-cert/--tls-key make the port speak TLS 1.2+ only,
https:// and wss:// alike; plain HTTP on it gets no HTTP answer; a client that never finishes its
handshake is closed by the header timeout; SIGHUP loads a new certificate for new connections while open
ones carry on; a flush of a subscriber's queue is one TLS write.

A CA and server certificates for 127.0.0.1/localhost are made here with the `openssl` command at run time
(no keys are committed); clients are curl and Python's ssl/websockets, which share no code with the server.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import websockets

import awtest
from awtest import IO_TIMEOUT, binary_path, clean_env, recv_json, run, wait_until

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")

FIRST_SERIAL = "1001"
SECOND_SERIAL = "2002"


def openssl(*args, cwd: Path):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_server_cert(pki: Path, name: str, serial: str, ca: str = "ca"):
    """A P-256 key and a certificate for 127.0.0.1 and localhost signed by the CA, with the given serial."""
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", "/CN=localhost", cwd=pki)
    (pki / f"{name}.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key", "-set_serial",
            f"0x{serial}", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.pem", cwd=pki)


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.pem", "-days", "2", "-subj", "/CN=agentwire test CA", cwd=d)
    make_server_cert(d, "first", FIRST_SERIAL)
    make_server_cert(d, "second", SECOND_SERIAL)
    return d


def tls_flags(pki: Path, name: str = "first", *more) -> tuple:
    return ("--store", "memory", "--tls-cert", str(pki / f"{name}.pem"), "--tls-key", str(pki / f"{name}.key"),
            *more)


def client_context(pki: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki / "ca.pem"))


def https(server, pki, method, path, body=None, headers=None):
    """One request over HTTPS, the CA trusted: (status, JSON body)."""
    conn = http.client.HTTPSConnection(server.host, server.port, timeout=IO_TIMEOUT, context=client_context(pki))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        res = conn.getresponse()
        data = res.read()
        return res.status, json.loads(data) if data else None
    finally:
        conn.close()


def stats(server, pki) -> dict:
    status, body = https(server, pki, "GET", "/api/websocket/stats")
    assert status == 200, body
    return body


def publish(server, pki, agent_id, data) -> int:
    status, body = https(server, pki, "POST", f"/api/agents/{agent_id}/events",
                         json.dumps({"type": "progress", "data": data}), {"Content-Type": "application/json"})
    assert status == 202, body
    return body["seq"]


def curl(pki, *args) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", str(int(IO_TIMEOUT)), "--cacert", str(pki / "ca.pem"),
                           *args], capture_output=True, text=True, timeout=IO_TIMEOUT + 5)


def peer_serial(server, pki) -> str:
    """The serial number (hex) of the certificate a new TLS connection is shown."""
    ctx = client_context(pki)
    with socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.getpeercert()["serialNumber"].upper()


def wss(server, pki, path, **kwargs):
    kwargs.setdefault("open_timeout", IO_TIMEOUT)
    kwargs.setdefault("close_timeout", 5)
    kwargs.setdefault("max_queue", None)
    return websockets.connect(f"wss://localhost:{server.port}{path}", ssl=client_context(pki), **kwargs)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
@pytest.mark.embedded_only("compares /healthz with the embedded body; in Redis mode it also lists the broker's instances")
def test_curl_https_healthz_and_publish(start_server, pki):
    server = start_server(*tls_flags(pki))
    r = curl(pki, f"https://localhost:{server.port}/healthz")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"status": "ok"}
    r = curl(pki, "-X", "POST", "-H", "Content-Type: application/json", "-d",
             '{"type":"progress","data":{"pct":5}}', "-w", "\n%{http_code}",
             f"https://127.0.0.1:{server.port}/api/agents/agent-7/events")
    assert r.returncode == 0, r.stderr
    body, code = r.stdout.rsplit("\n", 1)
    assert code == "202", r.stdout
    assert json.loads(body) == {"seq": 1}
    # Without the CA the certificate is not trusted: the chain the server sends is what is checked.
    r = subprocess.run(["curl", "-sS", "--max-time", "10", f"https://localhost:{server.port}/healthz"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode != 0


def test_wss_subscriber_receives_published_event(start_server, pki):
    server = start_server(*tls_flags(pki))

    async def scenario():
        async with wss(server, pki, "/ws/agents/agent-7") as ws:
            hello = await recv_json(ws, what="connected")
            assert hello["type"] == "connected"
            seq = await asyncio.to_thread(publish, server, pki, "agent-7", {"pct": 42})
            ev = await recv_json(ws, what="the published event")
            assert (ev["type"], ev["seq"], ev["data"]) == ("progress", seq, {"pct": 42})
            await ws.send(json.dumps({"type": "ping"}))
            assert (await recv_json(ws, what="pong"))["type"] == "pong"
        assert ws.close_code == 1000

    run(scenario())
    s = stats(server, pki)
    assert s["tls"]["handshakes"] >= 2
    assert s["connections"]["closed"] == 1


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_tls_1_1_refused_1_2_and_1_3_served(start_server, pki):
    server = start_server(*tls_flags(pki))
    url = f"https://localhost:{server.port}/healthz"
    old = curl(pki, "--tlsv1.0", "--tls-max", "1.1", url)
    assert old.returncode != 0, "a TLS 1.1 handshake was accepted"
    assert old.stdout == ""
    # The server saw it and refused it (not just a client that would not try).
    wait_until(lambda: stats(server, pki)["tls"]["handshake_failures"] >= 1, IO_TIMEOUT, "the refusal counted")
    for version in ("1.2", "1.3"):
        r = curl(pki, f"--tlsv{version}", "--tls-max", version, url)
        assert r.returncode == 0, f"TLS {version}: {r.stderr}"
    # Python's own client, pinned to TLS 1.2, negotiates it.
    ctx = client_context(pki)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() == "TLSv1.2"
            assert tls.selected_alpn_protocol() is None  # none offered, none chosen
    ctx = client_context(pki)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.version() == "TLSv1.3"
            assert tls.selected_alpn_protocol() == "http/1.1"
    assert server.running


@pytest.mark.embedded_only("compares /healthz with the embedded body; in Redis mode it also lists the broker's instances")
def test_plain_http_on_tls_port_gets_no_http_answer(start_server, pki):
    server = start_server(*tls_flags(pki))
    with socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        got = b""
        deadline = time.monotonic() + IO_TIMEOUT
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        else:
            pytest.fail("the connection stayed open")
    # At most a TLS alert record (content type 21), never an HTTP answer.
    assert not got.startswith(b"HTTP/"), got
    assert got == b"" or got[0] == 21, got
    wait_until(lambda: stats(server, pki)["tls"]["handshake_failures"] >= 1, IO_TIMEOUT, "the failure counted")
    assert https(server, pki, "GET", "/healthz") == (200, {"status": "ok"})


@pytest.mark.embedded_only("compares /healthz with the embedded body; in Redis mode it also lists the broker's instances")
def test_client_that_never_sends_client_hello_is_closed_by_header_timeout(start_server, pki):
    server = start_server(*tls_flags(pki, "first", "--header-timeout", "1"))
    silent = socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT)
    # A ClientHello cut short after its record header: the handshake can never finish.
    partial = socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT)
    partial.sendall(b"\x16\x03\x01\x02\x00\x01")
    for s in (silent, partial):
        try:
            got = s.recv(4096)
        except ConnectionResetError:
            got = b""
        except socket.timeout:
            pytest.fail(f"a client with no handshake held its connection for {IO_TIMEOUT} s")
        assert got == b"" or got[0] == 21, got  # closed, at most after an alert
    # The descriptors are given back: only the stats request's own connection is open.
    wait_until(lambda: stats(server, pki)["connections"]["open"] == 1, IO_TIMEOUT, "the connections closed")
    assert stats(server, pki)["tls"]["handshake_failures"] == 2
    silent.close()
    partial.close()
    assert https(server, pki, "GET", "/healthz") == (200, {"status": "ok"})


def test_sighup_loads_new_certificate_and_keeps_open_connections(start_server, pki, tmp_path):
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    shutil.copy(pki / "first.pem", cert)
    shutil.copy(pki / "first.key", key)
    server = start_server("--store", "memory", "--tls-cert", str(cert), "--tls-key", str(key))
    assert peer_serial(server, pki) == FIRST_SERIAL

    async def scenario():
        async with wss(server, pki, "/ws/agents/agent-7") as ws:
            assert (await recv_json(ws, what="connected"))["type"] == "connected"
            # Rotate: the files change, then SIGHUP.
            shutil.copy(pki / "second.pem", cert)
            shutil.copy(pki / "second.key", key)
            server.settle()
            server.proc.send_signal(signal.SIGHUP)
            await asyncio.to_thread(wait_until, lambda: "event=tls_reloaded" in server.log, IO_TIMEOUT,
                                    "the reload logged")
            assert f"serial={SECOND_SERIAL}" in server.log
            assert await asyncio.to_thread(peer_serial, server, pki) == SECOND_SERIAL
            # The connection made with the old certificate is still live.
            for i in range(3):
                seq = await asyncio.to_thread(publish, server, pki, "agent-7", {"i": i})
                ev = await recv_json(ws, what=f"event {i} after the reload")
                assert (ev["seq"], ev["data"]) == (seq, {"i": i})

            # Files that cannot be used leave the current certificate in place, and are logged.
            key.write_text("not a key\n")
            server.proc.send_signal(signal.SIGHUP)
            await asyncio.to_thread(wait_until, lambda: "event=tls_reload_failed" in server.log, IO_TIMEOUT,
                                    "the failed reload logged")
            assert "--tls-key" in server.log
            assert await asyncio.to_thread(peer_serial, server, pki) == SECOND_SERIAL
            seq = await asyncio.to_thread(publish, server, pki, "agent-7", {"i": "last"})
            assert (await recv_json(ws, what="an event after the failed reload"))["seq"] == seq

    run(scenario())


def test_a_flush_is_one_tls_write(start_server, pki):
    """The handshake answer, `connected` and 40 replayed events are queued in one go: they leave in one
    TLS write (one record), not one per frame."""
    server = start_server(*tls_flags(pki))
    for i in range(40):
        publish(server, pki, "agent-7", {"i": i})
    before = stats(server, pki)["tls"]

    async def scenario():
        async with wss(server, pki, "/ws/agents/agent-7?since=0") as ws:
            hello = await recv_json(ws, what="connected")
            assert hello["data"]["replayed"] == 40
            for i in range(40):
                ev = await recv_json(ws, what=f"replayed event {i}")
                assert ev["data"] == {"i": i}
            return await asyncio.to_thread(stats, server, pki)

    after = run(scenario())["tls"]
    assert after["writes"] - before["writes"] == 1, (before, after)
    assert after["write_segments"] - before["write_segments"] >= 42, (before, after)


def test_fan_out_over_tls_writes_fewer_times_than_frames(start_server, pki):
    """Under a burst, frames queued for a subscriber meanwhile share its writes."""
    server = start_server(*tls_flags(pki))
    bodies = [json.dumps({"type": "progress", "data": {"i": i}}).encode() for i in range(300)]

    async def scenario():
        async with wss(server, pki, "/ws/agents/agent-7") as ws:
            await recv_json(ws, what="connected")
            before = (await asyncio.to_thread(stats, server, pki))["tls"]
            await asyncio.to_thread(pipelined_publish, server, pki, "agent-7", bodies)
            for i in range(300):
                ev = await recv_json(ws, what=f"event {i}")
                assert ev["data"] == {"i": i}
            after = (await asyncio.to_thread(stats, server, pki))["tls"]
            return before, after

    before, after = run(scenario())
    writes = after["writes"] - before["writes"]
    segments = after["write_segments"] - before["write_segments"]
    assert segments >= 300
    assert writes <= segments  # never more writes than frames; how many fewer depends on the machine's pace


def pipelined_publish(server, pki, agent_id, bodies):
    """Sends every publish on one TLS connection before reading the answers."""
    ctx = client_context(pki)
    with socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            out = b"".join(
                f"POST /api/agents/{agent_id}/events HTTP/1.1\r\nHost: localhost\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n\r\n".encode() + b
                for b in bodies)
            s.sendall(out)
            got = b""
            while got.count(b"HTTP/1.1 202") < len(bodies):
                chunk = s.recv(65536)
                assert chunk, f"connection closed after {got.count(b'HTTP/1.1 202')} answers"
                got += chunk


def test_connection_limits_apply_on_the_tls_port(start_server, pki):
    server = start_server(*tls_flags(pki, "first", "--max-connections-per-ip", "2"))

    async def scenario():
        async with wss(server, pki, "/ws/agents/a") as a, wss(server, pki, "/ws/agents/b") as b:
            await recv_json(a, what="connected a")
            await recv_json(b, what="connected b")
            with pytest.raises((ssl.SSLError, OSError, websockets.InvalidHandshake, EOFError)):
                async with wss(server, pki, "/ws/agents/c"):
                    pass
        return None

    run(scenario())

    def refusal_counted():
        try:
            status, body = https(server, pki, "GET", "/api/websocket/stats")
        except OSError:  # refused too while the closed connections' slots are still being released
            return False
        return status == 200 and body["connections"]["refused_per_ip"] >= 1

    wait_until(refusal_counted, IO_TIMEOUT, "the refusal counted")


@pytest.mark.parametrize("which,needle", [
    ("missing-key", "--tls-cert needs --tls-key"),
    ("missing-cert", "--tls-key needs --tls-cert"),
    ("unreadable-cert", "--tls-cert"),
    ("not-a-cert", "--tls-cert"),
    ("not-a-key", "--tls-key"),
    ("mismatched", "does not match the certificate of --tls-cert"),
])
def test_unusable_tls_files_stop_the_start_naming_the_flag(pki, tmp_path, which, needle):
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    cert, key = str(pki / "first.pem"), str(pki / "first.key")
    args = {
        "missing-key": ["--tls-cert", cert],
        "missing-cert": ["--tls-key", key],
        "unreadable-cert": ["--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", key],
        "not-a-cert": ["--tls-cert", str(junk), "--tls-key", key],
        "not-a-key": ["--tls-cert", cert, "--tls-key", str(junk)],
        "mismatched": ["--tls-cert", cert, "--tls-key", str(pki / "second.key")],
    }[which]
    r = subprocess.run([binary_path(), "--listen", "127.0.0.1:0", "--store", "memory", *args],
                       capture_output=True, text=True, timeout=30, env=clean_env())
    assert r.returncode == 2, r.stderr
    assert needle in r.stderr, r.stderr


def test_tls_flags_from_environment(start_server, pki):
    server = start_server("--store", "memory", env={"AGENTWIRE_TLS_CERT": str(pki / "first.pem"),
                                                    "AGENTWIRE_TLS_KEY": str(pki / "first.key")})
    assert peer_serial(server, pki) == FIRST_SERIAL
    assert "tls=on" in server.log


def test_idle_tls_connections_cost_bounded_memory(start_server, pki):
    """An idle wss connection holds OpenSSL's state and Asio's record buffers (about 75 KB measured, against
    under 1 KB plain): bounded per connection, so --max-connections bounds the whole."""
    server = start_server(*tls_flags(pki, "first", "--threads", "1"))
    count = 100
    per_connection_bound = 160 * 1024 * awtest.RSS_SCALE

    async def scenario():
        warm = [await wss(server, pki, f"/ws/agents/warm-{i}", ping_interval=None).__aenter__() for i in range(10)]
        for ws in warm:
            await recv_json(ws, what="connected")
        before = server.rss_kb()
        conns = []
        for i in range(count):
            ws = await wss(server, pki, f"/ws/agents/idle-{i % 10}", ping_interval=None).__aenter__()
            await recv_json(ws, what="connected")
            conns.append(ws)
        grown = (server.rss_kb() - before) * 1024
        for ws in warm + conns:
            await ws.close()
        return grown

    grown = run(scenario())
    assert grown <= count * per_connection_bound, f"{grown / count:.0f} B per idle TLS connection"
