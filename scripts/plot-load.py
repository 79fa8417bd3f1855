#!/usr/bin/env python3
"""Draws parley-load's JSON results as a PNG.

    python3 scripts/plot-load.py RESULT.json OUT.png
        one run: reply latency (p50/p95/p99) and turns per second over time

    python3 scripts/plot-load.py --sweep OUT.png A.json B.json …
        several runs of one scenario with different client counts: turns/s and
        latency percentiles by clients (the benchmark's scenario A)

Needs matplotlib (scripts/lib/deps.sh installs it: ensure_python_matplotlib)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path: str) -> dict:
    return json.loads(Path(path).read_text())


def title(result: dict) -> str:
    settings = result.get("settings", {})
    head = result.get("label") or "parley-load"
    return f"{head}: {settings.get('clients', '?')} clients, {settings.get('pace', '')}"


def plot_run(result: dict, out: str) -> None:
    series = result["series"]
    seconds = [s["second"] for s in series]
    figure, (latency, throughput) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    for key, label, style in (("reply_p50", "p50", "-"), ("reply_p95", "p95", "--"), ("reply_p99", "p99", ":")):
        values = [s.get(key) for s in series]
        latency.plot(seconds, [v if v is not None else float("nan") for v in values], style, label=label)
    latency.set_ylabel("reply latency (ms)")
    latency.set_yscale("log")
    latency.grid(True, which="both", alpha=0.3)
    latency.legend(loc="upper right")
    warmup = result.get("warmup_seconds", 0)
    end = warmup + result.get("duration_seconds", 0)
    for axis in (latency, throughput):
        axis.axvspan(warmup, end, color="tab:green", alpha=0.06, label=None)
    # A bar covers its second: [s, s+1).
    middles = [s + 0.5 for s in seconds]
    throughput.bar(middles, [s["replies"] for s in series], width=0.9, label="replies")
    errors = [s["errors"] for s in series]
    if any(errors):
        throughput.bar(middles, errors, width=0.9, bottom=[s["replies"] for s in series], color="tab:red", label="errors")
        throughput.legend(loc="upper right")
    throughput.set_ylabel("turns per second")
    throughput.set_xlabel("seconds since start (shaded: the measured window)")
    throughput.grid(True, alpha=0.3)
    latency.set_title(f"{title(result)} — {result['turns_per_second']:.0f} turns/s")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)


def plot_sweep(results: list[dict], out: str) -> None:
    results = sorted(results, key=lambda r: int(r["settings"]["clients"]))
    clients = [int(r["settings"]["clients"]) for r in results]
    figure, (throughput, latency) = plt.subplots(1, 2, figsize=(11, 4.2))
    throughput.plot(clients, [r["turns_per_second"] for r in results], "o-")
    throughput.set_xscale("log")
    throughput.set_xticks(clients, [str(c) for c in clients])
    throughput.set_xlabel("clients (closed loop)")
    throughput.set_ylabel("turns per second")
    throughput.set_ylim(bottom=0)
    throughput.grid(True, alpha=0.3)
    for key, style in (("p50", "o-"), ("p95", "s--"), ("p99", "^:")):
        latency.plot(clients, [r["latency_milliseconds"]["reply"][key] for r in results], style, label=key)
    latency.set_xscale("log")
    latency.set_yscale("log")
    latency.set_xticks(clients, [str(c) for c in clients])
    latency.set_xlabel("clients (closed loop)")
    latency.set_ylabel("reply latency (ms)")
    latency.grid(True, which="both", alpha=0.3)
    latency.legend()
    # Labels are "A: A-tmpfs-50": the sweep is what they share before the client count.
    label = results[0].get("label") or "scenario"
    figure.suptitle(f"{label.rsplit('-', 1)[0]}: turns/s and reply latency by clients")
    figure.tight_layout()
    figure.savefig(out, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sweep", action="store_true", help="OUT.png then several results")
    parser.add_argument("paths", nargs="+")
    args = parser.parse_args()
    if args.sweep:
        out, *inputs = args.paths
        plot_sweep([load(p) for p in inputs], out)
    else:
        if len(args.paths) != 2:
            parser.error("give RESULT.json and OUT.png")
        plot_run(load(args.paths[0]), args.paths[1])


if __name__ == "__main__":
    main()
