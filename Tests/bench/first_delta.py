"""Benchmark: how fast streamed text reaches a client, and what a long reply costs.

Starts the real stack (parley_e2e.Stack: simulator, 3 workers, 2 gateways) and sends
turns whose answer is 500 tokens long. For each turn it measures the time from the
moment the simulator wrote the first token (GET /sim/trace) to the moment the first
`delta` frame arrived at the WebSocket client (same machine, same clock), and counts
the broker messages the turn cost: the turn itself, every delta, the reply.

Prints figures; asserts nothing (a benchmark, not a test)."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

import parley_e2e as e2e  # noqa: E402

TURNS = int(os.environ.get("BENCH_TURNS", "60"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "6"))
TOKENS = int(os.environ.get("BENCH_TOKENS", "500"))
TOKENS_PER_SECOND = int(os.environ.get("BENCH_TPS", "250"))


def sim_first_text_us(stack: e2e.Stack, marker: str) -> int:
    url = f"{stack.sim_url}/sim/trace?contains={marker}"
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())["first_text_at_us"]


async def one_turn(stack: e2e.Stack, index: int) -> tuple[float, int]:
    marker = f"bench{index}x{e2e.unique('t')}"
    client = await e2e.Client.connect(stack.ws_url(index % 2), e2e.make_jwt(f"bench-{index}"), label=marker)
    try:
        await client.send(f"{marker} [sim:tokens={TOKENS},tps={TOKENS_PER_SECOND},ttft=100]")
        session_id = (await client.expect("session"))["session_id"]
        first_delta_at = None
        deltas = 0
        while True:
            raw = await asyncio.wait_for(client.ws.recv(), 60)
            frame = json.loads(raw)
            if frame.get("type") == "delta":
                deltas += 1
                if first_delta_at is None:
                    first_delta_at = time.time()
            elif frame.get("type") == "reply":
                break
            elif frame.get("type") == "error":
                raise RuntimeError(frame)
        assert frame["session_id"] == session_id
        latency_ms = (first_delta_at * 1e6 - sim_first_text_us(stack, marker)) / 1000
        return latency_ms, deltas
    finally:
        await client.ws.close()


async def main() -> None:
    stack = e2e.Stack()
    stack.start()
    try:
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def guarded(index: int):
            async with semaphore:
                return await one_turn(stack, index)

        await asyncio.gather(*(guarded(i) for i in range(5)))  # warm-up
        started = time.monotonic()
        results = await asyncio.gather(*(guarded(i) for i in range(5, 5 + TURNS)))
        elapsed = time.monotonic() - started
    finally:
        stack.stop()
        stack.cleanup_tmp()
    latencies = sorted(r[0] for r in results)
    deltas = [r[1] for r in results]

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(round(p / 100 * (len(latencies) - 1))))]

    print(f"turns: {TURNS} ({CONCURRENCY} at a time), {TOKENS} tokens each at {TOKENS_PER_SECOND} tokens/s, {elapsed:.1f} s")
    print(f"simulator's first token -> first delta frame at the client: p50 {pct(50):.1f} ms, p99 {pct(99):.1f} ms, max {latencies[-1]:.1f} ms")
    print(
        f"broker messages per {TOKENS}-token reply: {statistics.mean(deltas) + 2:.1f} on average "
        f"(1 turn + {statistics.mean(deltas):.1f} deltas [min {min(deltas)}, max {max(deltas)}] + 1 reply)"
    )


if __name__ == "__main__":
    missing = e2e.missing_env()
    if missing:
        sys.exit(f"first_delta.py needs {', '.join(missing)} (scripts/bench.sh sets them)")
    asyncio.run(main())
