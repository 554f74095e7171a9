#!/usr/bin/python3
"""Writes the seed corpus under fuzz/corpus/<target>/: a few well-formed and a few broken inputs per
target, in each target's input layout (leading parameter bytes, then the data; see each *_fuzz.cpp).
Files are named by content hash, as libFuzzer names what it adds; rerunning rewrites the same files."""
import hashlib
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def frame(opcode, payload, fin=True, rsv1=False, mask=b"\x11\x22\x33\x44", length=None):
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def deflated(text):
    c = zlib.compressobj(wbits=-15)
    out = c.compress(text) + c.flush(zlib.Z_SYNC_FLUSH)
    return out[:-4]  # RFC 7692: the sender strips 00 00 ff ff


def ws_params(deflate=False, max_index=5, seed=7, piece=5):
    return bytes([1 if deflate else 0, max_index]) + struct.pack(">I", seed) + bytes([piece])


SEEDS = {
    "ws_reader": [
        ws_params() + frame(1, b"hello") + frame(9, b"ping?") + frame(2, b"\x00\x01\x02"),
        ws_params() + frame(1, b"frag", fin=False) + frame(10, b"") + frame(0, " ment\u00e9".encode()),
        ws_params() + frame(8, struct.pack(">H", 1000) + b"bye"),
        ws_params() + frame(8, struct.pack(">H", 1005)),
        ws_params() + frame(1, b"\xc3\x28"),
        ws_params() + frame(1, b"unmasked", mask=None),
        ws_params(max_index=2) + frame(2, b"x" * 40),
        ws_params() + frame(2, b"", length=1 << 40),
        ws_params(deflate=True) + frame(1, deflated(b'{"type":"ping"}'), rsv1=True),
        ws_params(deflate=True) + frame(1, deflated(b"a" * 5000)[:3], rsv1=True, fin=False)
        + frame(0, deflated(b"a" * 5000)[3:]),
        ws_params(deflate=True, max_index=3) + frame(1, deflated(b"z" * 100000), rsv1=True),
        ws_params() + frame(9, b"p" * 126),
    ],
    "json_span": [
        b'data\0{"type":"progress","data":{"a":[1,2,{"b":"c"}],"n":1.5e3}}',
        b'k\0{"k":"\\u00e9\\n\\"","k":{"x":[]}}',
        b'type\0  { "type" : "a" , "other" : null }  ',
        b"x\0[1,2,3]",
        b"x\0{}",
        "caf\u00e9\0{\"caf\u00e9\":true}".encode(),
        b'data\0{"data":{"a":1},"d\\u0061ta":{"b":2}}',  # issue 13 item 9: the escaped key was missed
    ],
    "publish_request": [
        b'{"type":"progress","data":{"percent":50}}',
        b'{"type":"tokens"}',
        b'{"type":"a.b:c-d_e","data":{"nested":{"deep":[1,{"x":"y"}]}}}',
        b'{"data":{}}',
        b'{"type":"bad type","data":{}}',
        b'{"type":"x","data":[1]}',
        b'{"type":"heartbeat","data":{}}',
        b'{"type":"x","type":"y","data":{"a":1},"data":{"b":2}}',
        b'{"type":"x","data":{"n":1e400}}',
        b'{"type":"x","data":{"n":0e400}}',  # Boost.JSON 1.81 reads it as NaN (found by the fuzzer)
        b'{"type":"x","data":{"s":"\\ud83d\\ude00"}}',
        b"[" * 70 + b"]" * 70,
        b'{"type":"x"} trailing',
    ],
    "client_message": [
        b'{"type":"ping"}',
        b'{"type":"snapshot","extra":[1,2]}',
        b'{"type":"subscribe"}',
        ('{"type":"' + "\u00e9" * 40 + '"}').encode(),
        b'{"type":5}',
        b"[]",
        b"not json",
        b'{"type":"ping"',
    ],
    "ws_handshake": [
        b"\x0f\x01\x00Upgrade\0websocket\0dGhlIHNhbXBsZSBub25jZQ==\x0013\0permessage-deflate; client_max_window_bits",
        b"\x0f\x01\x00keep-alive, Upgrade\0WebSocket\0dGhlIHNhbXBsZSBub25jZQ==\x0013\0"
        b"permessage-deflate; server_max_window_bits=10, permessage-deflate",
        b"\x0f\x00\x00Upgrade\0websocket\0dGhlIHNhbXBsZSBub25jZQ==\x0013\0x-webkit-deflate-frame",
        b"\x0f\x01\x00Upgrade\0websocket\0short\x008\0",
        b"\x4f\x01\x01Upgrade\0websocket\0dGhlIHNhbXBsZSBub25jZQ==\x0013\0",
        b"\x07\x01\x00Upgrade\0websocket\0key\r\nX: y\0",
    ],
    "router": [
        b"\x00/ws/agents/agent-7\0since=3&epoch=abc\0since\x0042",
        b"\x01/api/agents/a%20b/events\0\0x\0%41%zz+",
        b"\x00/ws/agents/%FF%FE\0since=-1\0epoch\x0018446744073709551616",
        b"\x03/api/workflows/wf_1\0\0a\x00007",
        b"\x00/nothing/here/%FF%C3\0epoch=x\0\0",
        b"\x01//api//workflows/w/streams/pipe/\0\0\0",
        b"\x00/ws/echo\0\0\0",
        b"\x00/nothing/here/\xff\xc3\0\0\0",  # issue 13 item 9: raw bytes echoed into a 404 body
    ],
    "browser_policy": [
        b"\x01\x01127.0.0.1:8080\0http://localhost:5173\0application/json; charset=utf-8",
        b"\x02\x00localhost\0http://localhost\0text/plain",
        b"\x00\x00evil.example:80\0https://evil.example\0application/x-www-form-urlencoded",
        b"\x00\x02[::1]:8080\0null\0",
        b"\x03\x22[::1\0HTTP://LOCALHOST:5173\0 Application/JSON ",
        b"\x04\x10rebound.example.\0http://u@a/b?c\0multipart/form-data; boundary=x",
        b"\x00\x40\xff\xfe\0http://\xc3\xa9.example\0text/\xff",
    ],
    "pipe": [
        b"\x01\0\0\0\x07\x05" + b'{"delta":"hello "}\n{"delta":"world"}\n',
        b"\x01\0\0\0\x03\x02" + b'{"delta":"a"}\r\n  \n{"delta":"\\u00e9"}',
        b"\x01\0\0\0\x09\x10" + b'{"delta":"ok"}\n{"delta":""}\n{"delta":"never"}\n',
        b"\x01\0\0\0\x01\x01" + b"not json\n",
        b"\x00\0\0\0\x05\x03" + "h\u00e9llo w\u00f6rld \U0001f600".encode(),
        b"\x00\0\0\0\x05\x03" + b"bad \xff utf-8",
        b"\x00\0\0\0\x05\x03",
    ],
}

for target, seeds in SEEDS.items():
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    for s in seeds:
        with open(os.path.join(d, hashlib.sha1(s).hexdigest()), "wb") as f:
            f.write(s)
