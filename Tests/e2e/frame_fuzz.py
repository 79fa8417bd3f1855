"""Generated hostile input for the gateway's WebSocket: client frames (mutated JSON,
huge and negative numbers, deep nesting, control characters, every field of the wrong
type, plain text) and malformed WebSocket protocol frames (invalid UTF-8, reserved
bits, unknown opcodes, unmasked, oversized control frames). Deterministic for a seed."""

from __future__ import annotations

import base64
import json
import os
import random
import socket
import struct
import uuid
from typing import Any

FIELDS = ["type", "request_id", "client_msg_id", "session_id", "content", "topic_id", "course_id", "after_id", "turn_id"]
TYPES = ["start", "message", "resume", "cancel"]
HUGE_NUMBERS = ["0", "-1", "9223372036854775807", "9223372036854775808", "-9223372036854775809", "18446744073709551616",
                "1e308", "1e400", "-1e400", "1.5", "-0.0", "0.0000001", "1" * 400, "-" + "9" * 400, "1E+2", "0x10"]
STRINGS = ["", " ", "\t\n", "\u0000", "a\u0000b", "\u0007\u001b[31m", "\ud7ff", "\ufeff", "\u202e", "😀" * 50, "x" * 4001,
           "é" * 4000, "null", "{}", "[]", "\\", '"', "\u2028\u2029", "00000000-0000-0000-0000-000000000000",
           "{00000000-0000-0000-0000-000000000000}", "not-a-uuid", str(uuid.uuid4()).upper(), str(uuid.uuid4())]


def _value(rng: random.Random, depth: int = 0) -> str:
    """Any JSON value, as text (so that numbers JSON cannot round-trip stay raw)."""
    kind = rng.randrange(9 if depth < 3 else 6)
    if kind == 0:
        return rng.choice(HUGE_NUMBERS)
    if kind == 1:
        return json.dumps(rng.choice(STRINGS), ensure_ascii=rng.random() < 0.5)
    if kind == 2:
        return rng.choice(["true", "false", "null"])
    if kind == 3:
        return json.dumps(str(rng.randint(-10**6, 10**6)))
    if kind == 4:
        return str(rng.randint(-2**70, 2**70))
    if kind == 5:
        # Escapes JSON allows but Swift may not like: lone surrogates.
        return rng.choice(['"\\ud800"', '"\\udfff\\ud800"', '"\\u0000"', '"\\uZZZZ"', '"\\x41"'])
    if kind == 6:
        return "[" + ",".join(_value(rng, depth + 1) for _ in range(rng.randrange(4))) + "]"
    if kind == 7:
        return "{" + ",".join(f'"{rng.choice(FIELDS)}":{_value(rng, depth + 1)}' for _ in range(rng.randrange(4))) + "}"
    return json.dumps(rng.choice(TYPES))


def _valid_frame(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(TYPES)
    frame: dict[str, Any] = {"type": kind}
    if kind == "start":
        frame |= {"request_id": f"r{rng.randrange(1000)}", "topic_id": rng.choice([101, 102, 7001, 99999]), "course_id": rng.choice([1, 70, 5])}
    elif kind == "message":
        frame |= {"content": rng.choice(["olá", "x = 2", " quanto é 2+2? "]), "client_msg_id": f"c{rng.randrange(1000)}"}
        if rng.random() < 0.5:
            frame["session_id"] = str(uuid.uuid4())
    elif kind == "resume":
        frame |= {"session_id": str(uuid.uuid4()), "after_id": rng.randrange(100)}
    else:
        frame |= {"turn_id": str(uuid.uuid4())}
    return frame


def _mutated(rng: random.Random) -> str:
    frame = {key: json.dumps(value) for key, value in _valid_frame(rng).items()}
    for _ in range(rng.randrange(1, 4)):
        action = rng.randrange(4)
        if action == 0 and frame:
            frame.pop(rng.choice(list(frame)))
        elif action == 1:
            frame[rng.choice(FIELDS)] = _value(rng)
        elif action == 2:
            frame[rng.choice(["extra", "Type", "TYPE", "type ", "__proto__", ""])] = _value(rng)
        else:
            key = rng.choice(list(frame) or ["type"])
            frame[key] = _value(rng)
    body = ",".join(f'"{key}":{value}' for key, value in frame.items())
    if rng.random() < 0.1:  # a duplicated key
        body += f',"type":{_value(rng)}'
    return "{" + body + "}"


def _nested(rng: random.Random) -> str:
    depth = rng.choice([64, 512, 4096, 20000, 32000])
    if rng.random() < 0.5:
        return "[" * depth + "]" * depth
    inner = '{"type":' * depth + '"start"' + "}" * depth
    return inner if rng.random() < 0.8 else inner[:-1]


def _garbage(rng: random.Random) -> str:
    choice = rng.randrange(5)
    if choice == 0:  # random code points, control characters included
        return "".join(chr(rng.choice([rng.randrange(0x20), rng.randrange(0x20, 0x7F), rng.randrange(0xA0, 0xD7FF)])) for _ in range(rng.randrange(1, 200)))
    if choice == 1:  # a truncated frame
        text = json.dumps(_valid_frame(rng))
        return text[: rng.randrange(1, len(text))]
    if choice == 2:
        return "{" + "".join(rng.choice(['"', ":", ",", "{", "}", "[", "]", "1", "e", "-", " ", "type", "\\"]) for _ in range(rng.randrange(1, 60)))
    if choice == 3:
        return rng.choice(["NaN", "Infinity", "-Infinity", '{"type":NaN}', '{"type":"start","topic_id":NaN}', '{"type":"start","topic_id":Infinity}'])
    return "{}" if rng.random() < 0.5 else "[]"


def frames(seed: int, count: int) -> list[str]:
    """`count` hostile text frames."""
    rng = random.Random(seed)
    generated = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.55:
            generated.append(_mutated(rng))
        elif roll < 0.75:
            generated.append(_garbage(rng))
        elif roll < 0.85:
            generated.append(_nested(rng))
        elif roll < 0.98:
            generated.append(json.dumps(_valid_frame(rng), ensure_ascii=rng.random() < 0.5))
        else:
            generated.append(rng.choice(["olá", " ", "\u0000", "x" * 5000]))  # plain text
    return generated


# ---------------------------------------------------------------- the WebSocket protocol


def raw_frame(opcode: int, payload: bytes, *, fin: bool = True, rsv: int = 0, mask: bool = True, length: int | None = None) -> bytes:
    """One WebSocket frame, as RFC 6455 §5.2 lays it out — or not, as asked."""
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    size = len(payload) if length is None else length
    if size < 126:
        header = struct.pack("!BB", first, (0x80 if mask else 0) | size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", first, (0x80 if mask else 0) | 126, size)
    else:
        header = struct.pack("!BBQ", first, (0x80 if mask else 0) | 127, size)
    if not mask:
        return header + payload
    key = os.urandom(4)
    return header + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def protocol_violations(seed: int) -> list[tuple[str, bytes]]:
    """(name, bytes sent after the handshake) for frames a server must refuse."""
    rng = random.Random(seed)
    cases = [
        ("invalid UTF-8 text", raw_frame(0x1, b'{"type":"start","request_id":"\xff\xfe"}')),
        ("overlong UTF-8", raw_frame(0x1, b"\xc0\xaf")),
        ("a lone surrogate in UTF-8", raw_frame(0x1, b"\xed\xa0\x80")),
        ("unmasked client frame", raw_frame(0x1, b'{"type":"start"}', mask=False)),
        ("reserved bits", raw_frame(0x1, b'{"type":"start"}', rsv=rng.choice([1, 2, 4, 7]))),
        ("ping over 125 bytes", raw_frame(0x9, b"p" * 200)),
        ("fragmented ping", raw_frame(0x9, b"p", fin=False)),
        ("continuation with nothing to continue", raw_frame(0x0, b"tail")),
        ("a new text frame inside a fragmented one", raw_frame(0x1, b'{"ty', fin=False) + raw_frame(0x1, b'pe":"start"}')),
        ("a length of 2^63", raw_frame(0x1, b"", length=(1 << 63) - 1)),
        ("a length over MAX_FRAME_BYTES", raw_frame(0x1, b"", length=1 << 30)),
        ("close with a bad code", raw_frame(0x8, struct.pack("!H", 999))),
        ("close with a 1-byte body", raw_frame(0x8, b"\x03")),
        ("close with invalid UTF-8 reason", raw_frame(0x8, struct.pack("!H", 1000) + b"\xff")),
        ("fragments over MAX_FRAME_BYTES in all", b"".join(raw_frame(0x1 if i == 0 else 0x0, b"a" * 60000, fin=False) for i in range(3))),
    ]
    for opcode in (0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF):
        cases.append((f"reserved opcode {opcode:#x}", raw_frame(opcode, b"x")))
    for n in range(60):
        cases.append((f"random bytes #{n}", bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))))
    return cases


def open_raw(host: str, port: int, token: str, timeout: float = 5.0) -> socket.socket:
    """A TCP connection to /ws with the upgrade done, nothing else."""
    connection = socket.create_connection((host, port), timeout=timeout)
    key = base64.b64encode(os.urandom(16)).decode()
    connection.sendall(
        f"GET /ws?token={token} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        chunk = connection.recv(4096)
        if not chunk:
            raise ConnectionError(f"the handshake got no answer: {response!r}")
        response += chunk
    status = response.split(b"\r\n", 1)[0]
    if b" 101 " not in status:
        raise ConnectionError(f"the upgrade was refused: {status!r}")
    return connection


def read_until_closed(connection: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends until it closes the connection: (bytes, closed)."""
    connection.settimeout(timeout)
    received = b""
    try:
        while True:
            chunk = connection.recv(65536)
            if not chunk:
                return received, True
            received += chunk
    except (socket.timeout, TimeoutError):
        return received, False
    except ConnectionResetError:
        return received, True


def close_code(received: bytes) -> int | None:
    """The code of the first close frame in `received` (server frames are unmasked)."""
    index = 0
    while index + 2 <= len(received):
        opcode, length = received[index] & 0x0F, received[index + 1] & 0x7F
        index += 2
        if length == 126:
            length, index = struct.unpack("!H", received[index:index + 2])[0], index + 2
        elif length == 127:
            length, index = struct.unpack("!Q", received[index:index + 8])[0], index + 8
        payload = received[index:index + length]
        index += length
        if opcode == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
    return None
