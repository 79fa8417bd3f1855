"""What the Grafana dashboard's throughput and latency panels would read over a load
run, computed from the processes' /metrics the way Prometheus does (`rate` of the
workers' answered turns, `histogram_quantile` over the gateway's turn-latency
buckets), to set beside the load tool's own figures (issue 11: they should agree).

Used by Tests/bench/scenarios.py: `scrape` before and after a run, then `panels`."""

from __future__ import annotations

import math
import re
import urllib.request

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')


def scrape(urls: list[str]) -> dict[tuple[str, str], float]:
    """Every sample of every URL, summed across them by name and labels."""
    samples: dict[tuple[str, str], float] = {}
    for url in urls:
        with urllib.request.urlopen(url, timeout=5) as response:
            for line in response.read().decode().splitlines():
                match = SAMPLE.match(line)
                if not match or line.startswith("#"):
                    continue
                key = (match.group(1), match.group(2) or "")
                samples[key] = samples.get(key, 0.0) + float(match.group(3))
    return samples


def histogram_quantile(quantile: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile over cumulative (upper bound, count) buckets:
    linear within the bucket the rank falls in."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = quantile * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return None


def panels(before: dict, after: dict, seconds: float) -> dict:
    """Turns/s answered (the workers' counter) and the gateway's turn latency p50/p95/p99
    in milliseconds, over the window between the two scrapes."""
    def delta(key: tuple[str, str]) -> float:
        return after.get(key, 0.0) - before.get(key, 0.0)

    answered = delta(("parley_worker_turns_total", '{outcome="answered"}'))
    buckets = []
    for (name, labels), _ in after.items():
        if name == "parley_gateway_turn_latency_seconds_bucket":
            bound = re.search(r'le="([^"]+)"', labels)
            if bound:
                buckets.append((float(bound.group(1).replace("+Inf", "inf")), delta((name, labels))))
    quantiles = {f"p{int(q * 100)}": histogram_quantile(q, buckets) for q in (0.5, 0.95, 0.99)}
    return {"turns_per_second": answered / seconds if seconds > 0 else 0.0,
            "latency_milliseconds": {k: (v * 1000 if v is not None else None) for k, v in quantiles.items()},
            "buckets_seconds": sorted(bound for bound, _ in buckets if not math.isinf(bound))}
