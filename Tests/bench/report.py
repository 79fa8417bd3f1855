"""Writes the benchmark's figures into docs/performance.md, between the markers
`<!-- bench:begin -->` and `<!-- bench:end -->` (the rest of the page is prose kept by
hand), with the plots beside it in docs/performance/."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from pathlib import Path

BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"


def _ms(percentiles: dict | None, key: str) -> str:
    return f"{percentiles[key]:.1f}" if percentiles else "–"


def _errors(result: dict) -> str:
    errors = dict(result.get("errors", {}))
    for code, count in result.get("other_errors", {}).items():
        errors[code] = errors.get(code, 0) + count
    return ", ".join(f"{code} {count}" for code, count in sorted(errors.items())) or "0"


def _process(result: dict, name: str) -> dict | None:
    return next((p for p in result.get("processes", []) if p["name"] == name), None)


def _relative(path: Path, page: Path) -> str:
    return os.path.relpath(path, page.parent)


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _section_a(runs: list, page: Path) -> list[str]:
    lines = ["### A. Instant simulator, closed loop (1 gateway, 3 workers)", "",
             "| storage | clients | turns/s | reply p50 ms | p95 | p99 | accepted p50 ms | errors | load tool CPU |",
             "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        result = run.result
        latency = result["latency_milliseconds"]
        tool = _process(result, "parley-load")
        storage = run.name.split("-")[1] + (" (baseline)" if "baseline" in run.name else "")
        lines.append(
            f"| {storage} | {result['settings']['clients']} | {result['turns_per_second']:.0f} | {_ms(latency['reply'], 'p50')} | "
            f"{_ms(latency['reply'], 'p95')} | {_ms(latency['reply'], 'p99')} | {_ms(latency['accepted'], 'p50')} | "
            f"{_errors(result)} | {tool['cpu_percent']:.0f} % |" if tool else "| – |"
        )
    lines.append("")
    for sweep in sorted({run.name.rsplit("-", 1)[0] for run in runs}):
        png = page.parent / "performance" / f"{sweep}.png"
        if png.exists():
            lines += [f"![{sweep}]({_relative(png, page)})", ""]
    return lines


def _section_baseline(runs: list) -> list[str]:
    now = {r.result["settings"]["clients"]: r.result for r in runs if r.name.startswith("A-tmpfs-") and "baseline" not in r.name}
    before = {r.result["settings"]["clients"]: r.result for r in runs if r.name.startswith("A-tmpfs-baseline-")}
    if not before:
        return []
    name = os.environ.get("PARLEY_BENCH_BASELINE_NAME", "the baseline")
    lines = [f"### A against {name} (same run, same machine)", "", "| clients | turns/s now | turns/s before | ratio | p99 now | p99 before |",
             "|---|---|---|---|---|---|"]
    for clients in sorted(now, key=int):
        if clients not in before:
            continue
        a, b = now[clients], before[clients]
        ratio = a["turns_per_second"] / b["turns_per_second"] if b["turns_per_second"] else float("nan")
        lines.append(f"| {clients} | {a['turns_per_second']:.0f} | {b['turns_per_second']:.0f} | {ratio:.2f}× | "
                     f"{_ms(a['latency_milliseconds']['reply'], 'p99')} | {_ms(b['latency_milliseconds']['reply'], 'p99')} |")
    return lines + [""]


def _section_e(runs: list) -> list[str]:
    picked = [r for r in runs if r.name.startswith("A-tmpfs-") and "baseline" not in r.name and r.result["settings"]["clients"] in ("50", "200")]
    if not picked:
        return []
    names = [p["name"] for p in picked[0].result["processes"]]
    lines = ["### E. CPU per turn under scenario A (tmpfs), milliseconds of CPU per answered turn", "",
             "| clients | " + " | ".join(names) + " | all |", "|---|" + "---|" * (len(names) + 1)]
    for run in picked:
        values = {p["name"]: p.get("cpu_milliseconds_per_turn") or 0.0 for p in run.result["processes"]}
        lines.append(f"| {run.result['settings']['clients']} | " + " | ".join(f"{values.get(n, 0):.3f}" for n in names)
                     + f" | {sum(values.values()):.3f} |")
    lines += ["", "Every process on the machine's two cores: the Swift processes, the simulator standing in for the "
              "model, the load tool, RabbitMQ (its beam.smp) and PostgreSQL (the postmaster and its backends).", ""]
    return lines


def _section_dashboard(runs: list) -> list[str]:
    run = next((r for r in runs if "dashboard" in r.result), None)
    if run is None:
        return []
    panels, result = run.result["dashboard"], run.result
    tool, grafana = result["latency_milliseconds"]["reply"], panels["latency_milliseconds"]

    def cell(value) -> str:
        return f"{value:.1f}" if value is not None else "–"

    lines = [f"### The dashboard against the load tool (A, tmpfs, {result['settings']['clients']} clients)", "",
             "| | turns/s | reply p50 ms | p95 | p99 |", "|---|---|---|---|---|",
             f"| parley-load (its measured window) | {result['turns_per_second']:.0f} | {cell(tool and tool['p50'])} | "
             f"{cell(tool and tool['p95'])} | {cell(tool and tool['p99'])} |",
             f"| Grafana's panels (`rate` of answered turns, `histogram_quantile` of the gateway's turn latency, "
             f"over the whole run) | {panels['turns_per_second']:.0f} | {cell(grafana['p50'])} | {cell(grafana['p95'])} | "
             f"{cell(grafana['p99'])} |", "",
             "The panels' quantiles are interpolated inside the histogram's buckets (bounds "
             + ", ".join(f"{b * 1000:g}" for b in panels["buckets_seconds"]) + " ms), so they agree with the tool's to "
             "within a bucket; the rate covers the warm-up and the drain too.", ""]
    return lines


def _section_c(run) -> list[str]:
    result = run.result
    fanout, whole = result.get("fanout_milliseconds"), result.get("end_to_end_milliseconds")
    memory = next(iter(result.get("memory", [])), None)
    lines = ["### C. Idle sockets on one gateway, and a reply fanned out to two sockets of every session", "",
             "| sockets open | sessions | gateway RSS idle | per socket | fan-out p50 ms | p99 | max | end to end p50 ms | p99 | errors |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    rss = f"{memory['resident_megabytes_idle']:.0f} MiB" if memory else "–"
    per_socket = f"{memory['kibibytes_per_socket']:.1f} KiB" if memory else "–"
    lines.append(f"| {result['opened']} of {result['sockets']} | {result['sessions']} | {rss} | {per_socket} | "
                 f"{_ms(fanout, 'p50')} | {_ms(fanout, 'p99')} | {_ms(fanout, 'max')} | {_ms(whole, 'p50')} | "
                 f"{_ms(whole, 'p99')} | {_errors(result)} |")
    return lines + ["", "The fan-out time is the last socket's reply minus the first's, per session; end to end is from "
                    "the turn's send to its last socket's reply, with every session sending one turn, 80 a second.", ""]


def _section_single(title: str, run, page: Path, extra: list[str]) -> list[str]:
    result = run.result
    latency = result["latency_milliseconds"]
    lines = [title, "", "| turns/s | reply p50 ms | p99 | first delta p50 ms | p99 | errors |", "|---|---|---|---|---|---|",
             f"| {result['turns_per_second']:.0f} | {_ms(latency['reply'], 'p50')} | {_ms(latency['reply'], 'p99')} | "
             f"{_ms(latency['first_delta'], 'p50')} | {_ms(latency['first_delta'], 'p99')} | {_errors(result)} |", ""]
    lines += extra + [f"({note})" for note in run.notes]
    processes = ", ".join(f"{p['name']} {p['max_resident_megabytes']:.0f} MiB" for p in result.get("processes", []))
    lines += ["", f"Largest resident size: {processes}.", ""]
    if run.plot_path and run.plot_path.exists():
        lines += [f"![{run.name}]({_relative(run.plot_path, page)})", ""]
    return lines


def write_report(runs: list, out: Path, page: Path, elapsed: float) -> None:
    lines = [BEGIN, "",
             f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on commit `{_commit()}`, "
             f"{os.cpu_count()} cores ({platform.machine()}), release build, everything on this machine; "
             f"the run took {elapsed / 60:.1f} minutes (`bash scripts/bench.sh`).", ""]
    a_runs = [r for r in runs if r.scenario == "A"]
    if a_runs:
        lines += _section_a(a_runs, page) + _section_baseline(a_runs) + _section_e(a_runs) + _section_dashboard(a_runs)
    for run in runs:
        if run.scenario == "B":
            worker = _process(run.result, "worker1")
            extra = [f"One worker, `WORKER_CONCURRENCY=1000`: its largest resident size {worker['max_resident_megabytes']:.0f} MiB."] if worker else []
            lines += _section_single("### B. A 2 s streaming LLM, 1,000 clients, one worker", run, page, extra)
        if run.scenario == "C":
            lines += _section_c(run)
        if run.scenario == "D":
            first = run.result["latency_milliseconds"]["first_delta"]
            extra = [f"First delta p50 − TTFT: **{first['p50'] - 100:.1f} ms**" if first else "No delta arrived."]
            lines += _section_single("### D. First delta against the simulator's time to first token", run, page, extra)
    lines.append(END)
    text = page.read_text() if page.exists() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    page.write_text(head + "\n".join(lines) + tail)
    print(f"\nfigures written to {page} (plots in {out})")


def main() -> None:
    """Rewrites the page from the JSON results of the last run (after a change to this
    file): `python3 Tests/bench/report.py`."""
    import json
    import sys
    from types import SimpleNamespace

    root = Path(__file__).resolve().parents[2]
    out = root / "docs" / "performance"
    order = {"A": 0, "B": 1, "C": 2, "D": 3}
    runs = []
    for path in sorted(out.glob("*.json")):
        result = json.loads(path.read_text())
        if "settings" not in result and "fanout_milliseconds" not in result:
            continue
        notes = ["the simulator's time to first token is 100 ms: the overhead is first delta − 100 ms"] if path.stem.startswith("D-") else []
        plot = path.with_suffix(".png")
        runs.append(SimpleNamespace(scenario=path.stem[0], name=path.stem, result=result, json_path=path,
                                    plot_path=plot if plot.exists() else None, notes=notes))
    clients = lambda run: int(run.result.get("settings", {}).get("clients", 0))  # noqa: E731
    runs.sort(key=lambda run: (order.get(run.scenario, 9), "baseline" in run.name, "disk" in run.name, clients(run)))
    text = (root / "docs" / "performance.md").read_text()
    took = text.split("the run took ", 1)[1].split(" minutes", 1)[0] if "the run took " in text else "0"
    write_report(runs, out, root / "docs" / "performance.md", float(took) * 60)
    sys.exit(0)


if __name__ == "__main__":
    main()
