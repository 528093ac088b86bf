#!/usr/bin/env python3
"""Writes a small seed corpus for the fuzz targets into fuzz/corpus/.

Optional: the targets find frame structure on their own, but seeds of valid
masked frames, fragmented messages and upgrade requests get them to deep
states (reassembly, UTF-8 across fragments, close frames) in seconds.
The corpus directory is gitignored; run this before `cargo fuzz run`.
"""

import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = bytes([0x37, 0xFA, 0x21, 0x3D])


def frame(fin, opcode, payload, mask=MASK):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n <= 0xFFFF:
        head = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask:
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


euro = "€".encode()
streams = {
    "text": frame(1, 1, b"hello"),
    "binary_16bit_len": frame(1, 2, bytes(range(200))),
    "binary_at_frame_limit": frame(1, 2, b"\xAB" * 4096),
    "binary_over_frame_limit": frame(1, 2, b"\xAB" * 4097),
    "fragmented_with_ping": frame(0, 1, b"Hel" + euro[:1])
    + frame(1, 9, b"ping")
    + frame(0, 0, euro[1:])
    + frame(1, 10, b"")
    + frame(1, 0, b"lo"),
    "close": frame(1, 8, struct.pack(">H", 1000) + b"bye"),
    "many_fragments": frame(0, 2, b"a")
    + b"".join(frame(0, 0, b"") for _ in range(70))
    + frame(1, 0, b"z"),
    "mixed": frame(1, 1, b"a") + frame(1, 9, b"") + frame(1, 2, b"\x00" * 300) + frame(1, 8, b""),
}
for name, stream in streams.items():
    write("decoder_server", name, b"\x00" + stream)
    # The same stream with a chunk schedule of 1, 3 and 7 bytes.
    write("decoder_server", name + "_chunked", b"\x03\x00\x02\x06" + stream)

request = (
    b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
write("handshake_request", "rfc_sample", b"\x00\x00" + request)
write("handshake_request", "rfc_sample_small_limits", b"\x02\x01\x00\x04" + request)
write("handshake_request", "post", b"\x00\x00" + request.replace(b"GET", b"POST"))
write("handshake_request", "version_8", b"\x00\x00" + request.replace(b": 13", b": 8"))

header_seeds = {
    "short": frame(1, 1, b"x")[:6],
    "len16": frame(1, 2, b"x" * 300)[:8],
    "len64": frame(1, 2, b"x" * 70000)[:14],
    "unmasked64": frame(1, 2, b"x" * 70000, mask=None)[:10],
}
for name, data in header_seeds.items():
    write("frame_header", name, data)
