"""A small TCP proxy that can cut its connections abruptly (R6 of the fault suite).

The apps connect to the proxy instead of RabbitMQ; every accepted connection is
forwarded to the real broker. `reset(share)` closes a share of the open connections
with SO_LINGER 0, so both peers get a TCP RST, as when a middlebox or a peer host
drops a connection: no AMQP close, no FIN.

Used from the fault suite in a thread of its own (`ResettingProxy.start()`), or alone:

    python3 Tests/faults/tcp_proxy.py --listen 5673 --target 127.0.0.1:5672 --every 3:8 --share 0.5
"""

from __future__ import annotations

import argparse
import asyncio
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Pair:
    serial: int
    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    opened_at: float
    bytes_up: int = 0
    bytes_down: int = 0


@dataclass
class ResetEvent:
    at: float  # time.time()
    cut: int
    open_before: int


class ResettingProxy:
    def __init__(self, target_host: str, target_port: int, listen_host: str = "127.0.0.1", listen_port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: asyncio.base_events.Server | None = None
        self.pairs: dict[int, Pair] = {}
        self.serial = 0
        self.accepted = 0
        self.refused = 0  # the upstream did not accept
        self.events: list[ResetEvent] = []
        self.lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    # -- running in a thread

    def start(self) -> "ResettingProxy":
        self._thread = threading.Thread(target=self._run_thread, name="tcp-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the TCP proxy did not start")
        return self

    def _run_thread(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._listen())
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def stop(self) -> None:
        if self.loop is None:
            return

        async def shut() -> None:
            if self.server:
                self.server.close()
            for pair in list(self.pairs.values()):
                self._abort(pair)

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread:
            self._thread.join(10)

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    def open_count(self) -> int:
        with self.lock:
            return len(self.pairs)

    def reset(self, share: float = 1.0, at_least: int = 1) -> ResetEvent:
        """Cuts `share` of the open connections (at least `at_least` when any is open),
        chosen at random, with an RST to both sides. Thread-safe."""
        assert self.loop is not None

        async def cut() -> ResetEvent:
            pairs = list(self.pairs.values())
            count = min(len(pairs), max(at_least, round(len(pairs) * share)))
            victims = random.sample(pairs, count) if pairs else []
            for pair in victims:
                self._abort(pair)
            event = ResetEvent(time.time(), len(victims), len(pairs))
            self.events.append(event)
            return event

        return asyncio.run_coroutine_threadsafe(cut(), self.loop).result(10)

    # -- the proxy itself

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._serve, self.listen_host, self.listen_port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*self.target), 5)
        except (OSError, asyncio.TimeoutError):
            self.refused += 1
            self._abort_writer(writer)
            return
        for w in (writer, up_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.serial += 1
        self.accepted += 1
        pair = Pair(self.serial, writer, up_writer, time.time())
        with self.lock:
            self.pairs[pair.serial] = pair
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, pair, "up"), self._pump(up_reader, writer, pair, "down"),
                return_exceptions=True,
            )
        finally:
            with self.lock:
                self.pairs.pop(pair.serial, None)
            self._abort(pair)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, pair: Pair, direction: str) -> None:
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    # An orderly close on one side: pass it on as an orderly close.
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                if direction == "up":
                    pair.bytes_up += len(data)
                else:
                    pair.bytes_down += len(data)
                await writer.drain()
        except (ConnectionError, OSError):
            # One side was cut: cut the other too.
            self._abort(pair)

    def _abort(self, pair: Pair) -> None:
        self._abort_writer(pair.client)
        self._abort_writer(pair.upstream)

    @staticmethod
    def _abort_writer(writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        if transport.is_closing():
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                # SO_LINGER on with a timeout of 0: close() sends an RST, not a FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        transport.abort()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", type=int, required=True, help="port to listen on (127.0.0.1)")
    parser.add_argument("--target", required=True, help="host:port to forward to")
    parser.add_argument("--every", default="3:8", help="seconds between resets, MIN:MAX (random)")
    parser.add_argument("--share", type=float, default=0.5, help="share of the open connections cut at each reset")
    parser.add_argument("--duration", type=float, default=60.0, help="stop after this many seconds")
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    low, high = (float(x) for x in args.every.split(":"))
    proxy = ResettingProxy(host, int(port), listen_port=args.listen).start()
    print(f"proxy 127.0.0.1:{proxy.port} -> {args.target}", flush=True)
    ends = time.monotonic() + args.duration
    try:
        while time.monotonic() < ends:
            time.sleep(random.uniform(low, high))
            event = proxy.reset(args.share)
            print(f"{time.strftime('%H:%M:%S')} cut {event.cut} of {event.open_before} connections", flush=True)
    finally:
        proxy.stop()


if __name__ == "__main__":
    main()
