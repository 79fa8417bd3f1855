"""Hostile WebSocket input, generated (frame_fuzz.py): at least 10,000 client frames
over a few sockets, then WebSocket protocol violations on raw connections. Every
frame must be answered only with frames docs/protocol.md describes, and every error
with a code its table lists; the gateway must never crash or hang a socket, and must
serve normally afterwards. `FUZZ_FRAMES` sets the number of frames (default 10,000),
`FUZZ_SEED` the seed."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import Counter

import websockets

import frame_fuzz
import parley_e2e as e2e
from parley_e2e import Sockets, make_jwt, run
from test_sessions import start_session

SERVER_FRAMES = {"session", "accepted", "delta", "reset", "reply", "history", "error"}
SOCKETS = 4
MAX_FRAME_BYTES = 65536


def documented_error_codes() -> set[str]:
    """The codes of the error table of docs/protocol.md."""
    text = (e2e.REPO_ROOT / "docs" / "protocol.md").read_text()
    table = text[text.index("## Error codes"):text.index("## Limits")]
    return set(re.findall(r"^\| `([a-z_]+)` \|", table, re.MULTILINE))


def seed() -> int:
    return int(os.environ.get("FUZZ_SEED", "20261201"))


async def fuzz_socket(url: str, token: str, frames: list[str], worker: int, codes: set[str], report: dict) -> None:
    """Sends each frame followed by a probe whose answer marks the end of the frame's
    answers; checks every answer; reconnects when the gateway closes the socket."""
    ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None, open_timeout=10)
    try:
        for n, frame in enumerate(frames):
            probe = f"probe-{worker}-{n}"
            try:
                await ws.send(frame)
                await ws.send(json.dumps({"type": "probe", "request_id": probe}))
                while True:
                    answer = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    kind = answer.get("type")
                    assert kind in SERVER_FRAMES, f"an undocumented frame {answer} after {frame[:200]!r}"
                    if kind == "error":
                        assert answer.get("code") in codes, f"an undocumented error code in {answer} after {frame[:200]!r}"
                        assert isinstance(answer.get("message"), str) and answer["message"], answer
                        if answer.get("request_id") == probe:
                            assert answer["code"] == "unknown_type", answer
                            break
                        report["codes"][answer["code"]] += 1
                    else:
                        report["frames"][kind] += 1
            except (websockets.ConnectionClosed, OSError) as closed:
                # Only a frame over MAX_FRAME_BYTES may end a socket: with close code
                # 1009, or a reset when the server stopped reading while we still wrote.
                code = closed.rcvd.code if isinstance(closed, websockets.ConnectionClosed) and closed.rcvd else None
                big = len(frame.encode()) > MAX_FRAME_BYTES
                assert code in (1009, None) and big, f"the socket closed ({closed!r}) after a frame of {len(frame.encode())} bytes: {frame[:200]!r}"
                report["closes"][code or "reset"] += 1
                ws = await websockets.connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None, open_timeout=10)
            except asyncio.TimeoutError:
                raise AssertionError(f"no answer within 20 s to {frame[:300]!r} (frame {n} of socket {worker})") from None
            report["sent"] += 1
    finally:
        await ws.close()


def test_ten_thousand_generated_frames_get_only_documented_answers(stack):
    count = int(os.environ.get("FUZZ_FRAMES", "10000"))
    frames = frame_fuzz.frames(seed(), count)
    codes = documented_error_codes()
    assert {"malformed_frame", "unknown_type", "content_too_long"} <= codes, codes
    report = {"sent": 0, "codes": Counter(), "frames": Counter(), "closes": Counter()}
    user = e2e.unique("fuzz")
    started = time.monotonic()

    async def scenario():
        shares = [frames[i::SOCKETS] for i in range(SOCKETS)]
        await asyncio.gather(*(fuzz_socket(stack.ws_url(0), make_jwt(user), share, i, codes, report) for i, share in enumerate(shares)))

    run(scenario(), timeout=900)
    elapsed = time.monotonic() - started
    print(f"\n{report['sent']} frames in {elapsed:.1f} s; errors {dict(report['codes'].most_common())}; "
          f"other frames {dict(report['frames'])}; closes {dict(report['closes'])}")
    assert report["sent"] == count
    assert report["codes"]["malformed_frame"] > count // 4, report["codes"]
    assert_gateway_serves(stack)


def test_websocket_protocol_violations_close_the_connection_and_nothing_else(stack):
    host, port = "127.0.0.1", stack.gateways[0].extra["port"]
    token = make_jwt(e2e.unique("raw"))
    outcomes = Counter()
    for name, data in frame_fuzz.protocol_violations(seed()):
        connection = frame_fuzz.open_raw(host, port, token)
        try:
            try:
                connection.sendall(data)
            except (BrokenPipeError, ConnectionResetError):
                pass
            received, closed = frame_fuzz.read_until_closed(connection, timeout=1.5)
            code = frame_fuzz.close_code(received)
            if not closed:
                # A frame still waiting for its declared bytes: the server may wait for
                # them, but a close from us must be taken.
                outcomes["waiting"] += 1
            else:
                # A close frame of ours, however malformed, may simply be answered.
                allowed = (None, 1002, 1007, 1009) + ((1000,) if name.startswith("close") else ())
                assert code in allowed, f"{name}: closed with {code}"
                outcomes[code] += 1
            # Found by this test: invalid UTF-8 was decoded leniently, started a session
            # and was stored as U+FFFD; it must close the socket with 1007.
            if "UTF-8 text" in name or name in ("overlong UTF-8", "a lone surrogate in UTF-8"):
                assert closed and code == 1007, f"{name}: expected close 1007, got {code} (closed: {closed}) after {received[:200]!r}"
        finally:
            connection.close()
    print(f"\nprotocol violations: {dict(outcomes)}")
    assert outcomes[1002] + outcomes[1007] >= 10, outcomes
    assert_gateway_serves(stack)


def assert_gateway_serves(stack) -> None:
    gateway = stack.gateways[0]
    assert gateway.alive(), f"the gateway exited: see {gateway.log_path}"
    assert e2e.http_get(stack.http_url(0) + "/health")[0] == 200
    user = e2e.unique("after-fuzz")

    async def scenario():
        async with Sockets() as sockets:
            client = await sockets.open(stack.ws_url(0), make_jwt(user), label="after fuzz")
            session_id, _ = await start_session(client, "after-fuzz")
            await client.message("olá", session_id=session_id, client_msg_id="af")
            await client.expect_turn(session_id=session_id, content="olá", n=1, client_msg_id="af")

    run(scenario())
