"""RFC 6455 / RFC 7692 conformance over raw sockets against /ws/echo (--enable-echo): what the Autobahn
testsuite's cases 1-7, 9 (small sizes), 12 and 13 check, in compact parametrized form.

1 framing, 2 pings and pongs, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8 (also split across
fragments and inside deflate), 7 close codes and reasons, 9 limits, 12/13 permessage-deflate messages and
parameter negotiation (server_max_window_bits 9-15 included). Every frame is built here by hand, so
invalid ones can be sent; one server serves the whole module.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import struct
import time
import zlib

import pytest

import awtest
from awtest import IO_TIMEOUT, WS_GUID, Server

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 0x40, 0x20, 0x10
MAX_MESSAGE = 512 * 1024


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory):
    s = Server(
        tmp_path_factory.mktemp("conformance"),
        ["--enable-echo", "--compression", "--max-message-bytes", str(MAX_MESSAGE)],
    )
    yield s
    if s.running:
        s.settle()
        s.proc.send_signal(signal.SIGTERM)
        assert s.proc.wait(awtest.STOP_TIMEOUT) == 0, s.log_tail()


def mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return b""
    keys = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(keys, "little")).to_bytes(n, "little")


def frame(opcode: int, payload: bytes = b"", fin: bool = True, rsv: int = 0, masked: bool = True) -> bytes:
    """One client frame, valid or not, exactly as given."""
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    mbit = 0x80 if masked else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n <= 0xFFFF:
        head += struct.pack("!BH", mbit | 126, n)
    else:
        head += struct.pack("!BQ", mbit | 127, n)
    if not masked:
        return head + payload
    key = os.urandom(4)
    return head + key + mask(payload, key)


def deflate(payload: bytes, window_bits: int = 15) -> bytes:
    """A permessage-deflate message body: raw deflate, sync flush, the 00 00 ff ff tail stripped."""
    c = zlib.compressobj(6, zlib.DEFLATED, -window_bits)
    out = c.compress(payload) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate(body: bytes, window_bits: int = 15) -> bytes:
    d = zlib.decompressobj(-window_bits)
    return d.decompress(body + b"\x00\x00\xff\xff")


class Conn:
    """A raw WebSocket client: hand-made handshake (with extension offers) and frames."""

    def __init__(self, server: Server, path: str = "/ws/echo", extensions: str | None = None):
        self.sock = socket.create_connection((server.host, server.port), timeout=IO_TIMEOUT)
        self.buf = b""
        key = base64.b64encode(os.urandom(16)).decode()
        ext = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: {server.host}:{server.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}\r\n"
            ).encode()
        )
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            assert chunk, f"closed during the handshake: {self.buf!r}"
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        assert lines[0].split()[1] == "101", lines[0]
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        assert self.headers["sec-websocket-accept"] == accept

    def close(self):
        self.sock.close()

    def send(self, data: bytes, piece: int | None = None):
        """Sends bytes, in writes of `piece` bytes when given (the server must not care how they arrive)."""
        if piece is None:
            self.sock.sendall(data)
            return
        for i in range(0, len(data), piece):
            self.sock.sendall(data[i : i + piece])

    def _need(self, n: int, deadline: float) -> bool:
        while len(self.buf) < n:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                pytest.fail("no complete frame from the server in time")
            except ConnectionResetError:
                return False
            if not chunk:
                return False
            self.buf += chunk
        return True

    def recv(self, timeout: float = IO_TIMEOUT):
        """(fin, rsv, opcode, payload), or None at end of stream."""
        deadline = time.monotonic() + timeout
        if not self._need(2, deadline):
            return None
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "a server frame must not be masked"
        n, pos = b1 & 0x7F, 2
        if n == 126:
            if not self._need(4, deadline):
                return None
            n, pos = struct.unpack("!H", self.buf[2:4])[0], 4
            assert n >= 126, "length not minimally encoded"
        elif n == 127:
            if not self._need(10, deadline):
                return None
            n, pos = struct.unpack("!Q", self.buf[2:10])[0], 10
            assert n > 0xFFFF, "length not minimally encoded"
        if not self._need(pos + n, deadline):
            return None
        payload, self.buf = self.buf[pos : pos + n], self.buf[pos + n :]
        return bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F, payload

    def message(self, window_bits: int = 15):
        """The next data message, its fragments joined and inflated: (opcode, payload)."""
        parts, opcode, compressed = [], None, False
        while True:
            got = self.recv()
            assert got is not None, "connection ended before a message"
            fin, rsv, op, payload = got
            if op == OP_PING:
                continue
            assert op in (OP_TEXT, OP_BINARY, OP_CONT), (op, payload[:80])
            if opcode is None:
                opcode, compressed = op, bool(rsv & RSV1)
            parts.append(payload)
            if fin:
                body = b"".join(parts)
                return opcode, inflate(body, window_bits) if compressed else body

    def expect_close(self, codes) -> int | None:
        """Reads up to the server's close frame (skipping data and pongs); checks its code and that TCP ends."""
        while True:
            got = self.recv()
            if got is None:
                assert None in codes, f"no close frame, expected one of {codes}"
                return None
            fin, rsv, op, payload = got
            if op != OP_CLOSE:
                continue
            assert fin and rsv == 0 and len(payload) != 1 and len(payload) <= 125
            code = struct.unpack("!H", payload[:2])[0] if payload else None
            assert code in codes, f"closed with {code} {payload[2:]!r}, expected one of {codes}"
            payload[2:].decode("utf-8")  # the reason is UTF-8
            # The server closes TCP after the close frame (RFC 6455 §7.1.1).
            assert self.recv() is None
            return code


def echo(server, opcode, payload: bytes, piece=None, fragments=1):
    c = Conn(server)
    size = max(1, -(-len(payload) // fragments))
    chunks = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
    data = b"".join(
        frame(opcode if i == 0 else OP_CONT, chunk, fin=i == len(chunks) - 1) for i, chunk in enumerate(chunks)
    )
    c.send(data, piece)
    assert c.message() == (opcode, payload)
    c.send(frame(OP_CLOSE, struct.pack("!H", 1000)))
    c.expect_close({1000})
    c.close()


# ---- 1: framing ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 128, 65535, 65536])
def test_1_payload_lengths_echo(echo_server, opcode, size):
    payload = b"*" * size if opcode == OP_TEXT else bytes(i % 256 for i in range(size))
    echo(echo_server, opcode, payload)


@pytest.mark.parametrize("piece", [1, 7, 997])
def test_1_frames_arriving_in_small_writes(echo_server, piece):
    echo(echo_server, OP_BINARY, os.urandom(3000), piece=piece)


def test_1_several_messages_in_one_write_in_order(echo_server):
    c = Conn(echo_server)
    msgs = [f"message {i}".encode() for i in range(50)]
    c.send(b"".join(frame(OP_TEXT, m) for m in msgs))
    assert [c.message()[1] for _ in msgs] == msgs
    c.close()


def test_1_unmasked_client_frame_is_a_protocol_error(echo_server):
    c = Conn(echo_server)
    c.send(frame(OP_TEXT, b"hello", masked=False))
    c.expect_close({1002})


# ---- 2: pings and pongs -------------------------------------------------------------------------------


@pytest.mark.parametrize("payload", [b"", b"x", bytes(range(125)), "héllo".encode()])
def test_2_ping_gets_a_pong_with_its_payload(echo_server, payload):
    c = Conn(echo_server)
    c.send(frame(OP_PING, payload))
    assert c.recv()[1:] == (0, OP_PONG, payload)
    c.close()


def test_2_ping_over_125_bytes_is_a_protocol_error(echo_server):
    c = Conn(echo_server)
    c.send(frame(OP_PING, b"p" * 126))
    c.expect_close({1002})


def test_2_unsolicited_pongs_are_ignored_and_pings_answered_in_order(echo_server):
    c = Conn(echo_server)
    c.send(frame(OP_PONG, b"unasked") + b"".join(frame(OP_PING, f"p{i}".encode()) for i in range(10)))
    c.send(frame(OP_TEXT, b"after"))
    for i in range(10):
        assert c.recv()[2:] == (OP_PONG, f"p{i}".encode())
    assert c.message() == (OP_TEXT, b"after")
    c.close()


def test_2_fragmented_ping_is_a_protocol_error(echo_server):
    c = Conn(echo_server)
    c.send(frame(OP_PING, b"half", fin=False))
    c.expect_close({1002})


# ---- 3: reserved bits, 4: opcodes ---------------------------------------------------------------------


@pytest.mark.parametrize("rsv", [RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY, OP_PING, OP_CLOSE])
def test_3_reserved_bits_without_an_extension_fail(echo_server, rsv, opcode):
    c = Conn(echo_server)  # no permessage-deflate: RSV1 is as reserved as the others
    c.send(frame(OP_TEXT, b"before"))
    assert c.message() == (OP_TEXT, b"before")
    c.send(frame(opcode, b"x", rsv=rsv))
    c.expect_close({1002})


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_4_reserved_opcodes_fail(echo_server, opcode):
    c = Conn(echo_server)
    c.send(frame(OP_TEXT, b"before") + frame(opcode, b"x"))
    assert c.message() == (OP_TEXT, b"before")
    c.expect_close({1002})


# ---- 5: fragmentation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fragments", [2, 3, 64])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_5_fragments_are_joined(echo_server, opcode, fragments):
    echo(echo_server, opcode, b"fragmented message " * 20, fragments=fragments)


def test_5_empty_fragments_and_control_frames_between_them(echo_server):
    c = Conn(echo_server)
    c.send(
        frame(OP_TEXT, b"", fin=False)
        + frame(OP_PING, b"between")
        + frame(OP_CONT, b"frag", fin=False)
        + frame(OP_PONG, b"ignored")
        + frame(OP_CONT, b"", fin=False)
        + frame(OP_CONT, b"ment", fin=True),
        piece=3,
    )
    assert c.recv()[2:] == (OP_PONG, b"between")  # answered before the message is complete
    assert c.message() == (OP_TEXT, b"fragment")
    c.close()


@pytest.mark.parametrize(
    "frames",
    [
        [frame(OP_CONT, b"no start")],
        [frame(OP_CONT, b"no start", fin=False)],
        [frame(OP_TEXT, b"a", fin=False), frame(OP_TEXT, b"b")],
        [frame(OP_TEXT, b"a", fin=False), frame(OP_BINARY, b"b")],
        [frame(OP_TEXT, b"a"), frame(OP_CONT, b"b")],
        [frame(OP_CLOSE, struct.pack("!H", 1000), fin=False)],
    ],
    ids=["cont-first", "cont-first-nofin", "text-in-text", "binary-in-text", "cont-after-end", "fragmented-close"],
)
def test_5_fragmentation_errors(echo_server, frames):
    c = Conn(echo_server)
    c.send(b"".join(frames))
    c.expect_close({1002})


# ---- 6: UTF-8 -----------------------------------------------------------------------------------------

VALID_UTF8 = ["", "ascii", "κόσμε", "€ and \U0001F600", "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff", "\ufeff"]
INVALID_UTF8 = [
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",  # a surrogate
    b"\xc0\xaf",  # overlong
    b"\xe0\x80\xaf",  # overlong
    b"\xf0\x80\x80\xaf",  # overlong
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xed\xbf\xbf",  # a surrogate
    b"\x80",  # a lone continuation
    b"\xfe",
    b"\xff",
    b"abc\xe2\x82",  # truncated at the end
    b"\xc2 ",  # a lead byte without its continuation
]


@pytest.mark.parametrize("text", VALID_UTF8)
def test_6_valid_utf8_echoes_whole_and_split_at_every_byte(echo_server, text):
    data = text.encode()
    c = Conn(echo_server)
    c.send(frame(OP_TEXT, data))
    assert c.message() == (OP_TEXT, data)
    # Split into two fragments at every byte position: inside characters too.
    for cut in range(len(data) + 1):
        c.send(frame(OP_TEXT, data[:cut], fin=False) + frame(OP_CONT, data[cut:]))
        assert c.message() == (OP_TEXT, data), cut
    # One byte per fragment.
    if data:
        c.send(b"".join(frame(OP_TEXT if i == 0 else OP_CONT, data[i : i + 1], fin=i == len(data) - 1)
                        for i in range(len(data))))
        assert c.message() == (OP_TEXT, data)
    c.close()


@pytest.mark.parametrize("data", INVALID_UTF8, ids=[d.hex() for d in INVALID_UTF8])
def test_6_invalid_utf8_closes_1007(echo_server, data):
    c = Conn(echo_server)
    c.send(frame(OP_TEXT, data))
    c.expect_close({1007})


@pytest.mark.parametrize("data", INVALID_UTF8[:6], ids=[d.hex() for d in INVALID_UTF8[:6]])
def test_6_invalid_utf8_split_across_fragments_closes_1007(echo_server, data):
    c = Conn(echo_server)
    cut = len(data) // 2
    c.send(frame(OP_TEXT, data[:cut], fin=False) + frame(OP_CONT, data[cut:]))
    c.expect_close({1007})


def test_6_invalid_utf8_fails_fast_before_the_message_ends(echo_server):
    c = Conn(echo_server)
    c.send(frame(OP_TEXT, b"good \xce\xba then bad \xc0\xaf", fin=False))  # the message never ends
    c.expect_close({1007})


def test_6_binary_messages_are_not_utf8_checked(echo_server):
    echo(echo_server, OP_BINARY, b"\xc0\xaf\xff\xfe\xed\xa0\x80")


# ---- 7: closing ---------------------------------------------------------------------------------------

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", VALID_CODES)
def test_7_a_valid_close_code_is_echoed(echo_server, code):
    c = Conn(echo_server)
    c.send(frame(OP_CLOSE, struct.pack("!H", code) + b"bye"))
    c.expect_close({code})


@pytest.mark.parametrize("code", INVALID_CODES)
def test_7_an_invalid_close_code_is_a_protocol_error(echo_server, code):
    c = Conn(echo_server)
    c.send(frame(OP_CLOSE, struct.pack("!H", code)))
    c.expect_close({1002})


def test_7_close_without_payload_is_answered_without_code(echo_server):
    c = Conn(echo_server)
    c.send(frame(OP_CLOSE))
    c.expect_close({None, 1000})


def test_7_close_with_one_byte_is_a_protocol_error(echo_server):
    c = Conn(echo_server)
    c.send(frame(OP_CLOSE, b"\x03"))
    c.expect_close({1002})


@pytest.mark.parametrize("reason", [b"", "fin ✓".encode(), b"r" * 123], ids=["none", "utf8", "123-bytes"])
def test_7_close_reasons(echo_server, reason):
    c = Conn(echo_server)
    c.send(frame(OP_CLOSE, struct.pack("!H", 1000) + reason))
    c.expect_close({1000})


def test_7_close_reason_that_is_not_utf8_closes_1007(echo_server):
    c = Conn(echo_server)
    c.send(frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xc0\xaf"))
    c.expect_close({1007})


def test_7_nothing_after_the_close_is_handled(echo_server):
    c = Conn(echo_server)
    c.send(frame(OP_CLOSE, struct.pack("!H", 1000)) + frame(OP_TEXT, b"late") + frame(OP_PING, b"late"))
    got = c.recv()
    assert got is not None and got[2] == OP_CLOSE, f"answered {got} to a close"
    assert c.recv() is None, "something was sent after the close frame"


def test_7_close_between_fragments_ends_the_connection(echo_server):
    c = Conn(echo_server)
    c.send(frame(OP_TEXT, b"half", fin=False) + frame(OP_CLOSE, struct.pack("!H", 1000)))
    c.expect_close({1000})


# ---- 9: limits (small sizes) --------------------------------------------------------------------------


@pytest.mark.parametrize("size,fragments", [(64 * 1024, 1), (256 * 1024, 1), (256 * 1024, 256), (MAX_MESSAGE, 4)])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_9_large_messages_echo(echo_server, opcode, size, fragments):
    payload = (b"0123456789abcdef" * (size // 16 + 1))[:size]
    echo(echo_server, opcode, payload, fragments=fragments)


@pytest.mark.parametrize("fragments", [1, 3])
def test_9_a_message_over_the_limit_closes_1009(echo_server, fragments):
    c = Conn(echo_server)
    size = MAX_MESSAGE + 1
    step = -(-size // fragments)
    parts = [b"x" * min(step, size - i) for i in range(0, size, step)]
    # Refused from the header that passes the limit: the rest need not even be sent.
    c.send(frame(OP_BINARY, parts[0], fin=len(parts) == 1))
    for i, p in enumerate(parts[1:], 1):
        try:
            c.send(frame(OP_CONT, p, fin=i == len(parts) - 1))
        except OSError:
            break
    c.expect_close({1009})


# ---- 12/13: permessage-deflate ------------------------------------------------------------------------

DEFLATE_ANSWER = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"


@pytest.mark.parametrize(
    "offer,answer",
    [
        ("permessage-deflate", DEFLATE_ANSWER),
        ("permessage-deflate; client_max_window_bits", DEFLATE_ANSWER),
        ("permessage-deflate; client_no_context_takeover; client_max_window_bits=9", DEFLATE_ANSWER),
        ("permessage-deflate; server_no_context_takeover", DEFLATE_ANSWER),
        *[(f"permessage-deflate; server_max_window_bits={b}", f"{DEFLATE_ANSWER}; server_max_window_bits={b}")
          for b in range(9, 16)],
        ('permessage-deflate; server_max_window_bits="12"', f"{DEFLATE_ANSWER}; server_max_window_bits=12"),
        ("permessage-deflate; server_max_window_bits=8", None),  # zlib has no 8-bit raw window
        ("permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10",
         f"{DEFLATE_ANSWER}; server_max_window_bits=10"),
        ("permessage-deflate; server_max_window_bits=16", None),
        ("permessage-deflate; server_max_window_bits", None),
        ("permessage-deflate; mystery=1", None),
        ("permessage-deflate; mystery=1, permessage-deflate", DEFLATE_ANSWER),
        ("x-webkit-deflate-frame", None),
    ],
)
def test_13_negotiation(echo_server, offer, answer):
    c = Conn(echo_server, extensions=offer)
    assert c.headers.get("sec-websocket-extensions") == answer
    c.close()


@pytest.mark.parametrize("window_bits", [9, 12, 15])
@pytest.mark.parametrize("size", [0, 16, 1000, 64 * 1024, 300 * 1024])
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_12_compressed_messages_echo(echo_server, opcode, size, window_bits):
    c = Conn(echo_server, extensions=f"permessage-deflate; client_max_window_bits={window_bits}")
    payload = (b"AutobahnPython/0.6.0 " * (size // 21 + 1))[:size]
    c.send(frame(opcode, deflate(payload, window_bits), rsv=RSV1))
    assert c.message() == (opcode, payload)
    c.close()


def test_12_compressed_message_in_fragments_and_small_writes(echo_server):
    c = Conn(echo_server, extensions="permessage-deflate")
    payload = json.dumps({"items": list(range(3000))}).encode()
    body = deflate(payload)
    third = len(body) // 3
    c.send(
        frame(OP_TEXT, body[:third], fin=False, rsv=RSV1)  # RSV1 on the first frame only
        + frame(OP_PING, b"mid")
        + frame(OP_CONT, body[third : 2 * third], fin=False)
        + frame(OP_CONT, body[2 * third :]),
        piece=101,
    )
    assert c.recv()[2:] == (OP_PONG, b"mid")
    assert c.message() == (OP_TEXT, payload)
    # Compressed and plain messages may alternate.
    c.send(frame(OP_TEXT, b"plain") + frame(OP_TEXT, deflate(b"squeezed"), rsv=RSV1))
    assert c.message() == (OP_TEXT, b"plain")
    assert c.message() == (OP_TEXT, b"squeezed")
    c.close()


@pytest.mark.parametrize(
    "frames,code",
    [
        ([frame(OP_TEXT, deflate("ok \xc0".encode("latin-1")), rsv=RSV1)], 1007),  # invalid UTF-8 inside
        ([frame(OP_TEXT, b"\xff\xff\xff\xff not deflate", rsv=RSV1)], 1007),
        ([frame(OP_TEXT, b"a", fin=False), frame(OP_CONT, b"b", rsv=RSV1)], 1002),  # RSV1 on a continuation
        ([frame(OP_PING, b"p", rsv=RSV1)], 1002),  # RSV1 on a control frame
        ([frame(OP_TEXT, b"x", rsv=RSV2)], 1002),
    ],
    ids=["utf8-inside", "bad-data", "rsv1-continuation", "rsv1-control", "rsv2"],
)
def test_12_deflate_errors(echo_server, frames, code):
    c = Conn(echo_server, extensions="permessage-deflate")
    c.send(b"".join(frames))
    c.expect_close({code})


def test_12_utf8_split_across_compressed_fragments(echo_server):
    c = Conn(echo_server, extensions="permessage-deflate")
    text = "κόσμε € \U0001F600 " * 50
    body = deflate(text.encode())
    for cut in (1, len(body) // 2, len(body) - 1):
        c.send(frame(OP_TEXT, body[:cut], fin=False, rsv=RSV1) + frame(OP_CONT, body[cut:]))
        assert c.message() == (OP_TEXT, text.encode()), cut
    c.close()


def test_12_a_deflate_bomb_over_the_limit_closes_1009(echo_server):
    c = Conn(echo_server, extensions="permessage-deflate")
    c.send(frame(OP_BINARY, deflate(b"\0" * (MAX_MESSAGE * 4)), rsv=RSV1))
    c.expect_close({1009})


def far_repeats() -> str:
    """Text whose repeats lie ~40 KB apart: inflating it needs no more window than was used to deflate it."""
    lines = "".join(f"line {i * 7919 % 10007} of a long log; " for i in range(1600))
    return lines + lines


@pytest.mark.parametrize("window_bits", [9, 10, 11, 12, 13, 14, 15])
def test_13_broadcasts_use_the_agreed_server_window(echo_server, window_bits):
    """Each subscriber's compressed frames inflate with no more window than it agreed: one compressed frame
    per distinct window size, shared by the subscribers that use it."""
    agent = f"window-{window_bits}"
    offer = f"permessage-deflate; server_max_window_bits={window_bits}"
    small = Conn(echo_server, f"/ws/agents/{agent}", extensions=offer)
    full = Conn(echo_server, f"/ws/agents/{agent}", extensions="permessage-deflate")
    assert small.headers["sec-websocket-extensions"].endswith(f"server_max_window_bits={window_bits}")
    for c in (small, full):
        assert json.loads(c.message()[1])["type"] == "connected"
    text = far_repeats()
    seq = echo_server.publish(agent, "log", {"text": text})
    for c, bits in ((small, window_bits), (full, 15)):
        while True:
            fin, rsv, op, body = c.recv()
            if op == OP_TEXT and rsv:
                break  # session messages (a heartbeat) go uncompressed; the event does not
        assert fin and rsv == RSV1
        # A receiver with only 2^bits of window inflates it (zlib refuses distances too far back).
        msg = json.loads(inflate(body, bits))
        assert msg["seq"] == seq and msg["data"]["text"] == text
        c.close()
