"""The benchmark's standard scenarios (issue 11), run with parley-load against stacks of
release binaries, written to docs/performance.md and docs/performance/.

    python3 Tests/bench/scenarios.py [--only A,B,…] [--quick] [--out DIR]

Environment (scripts/bench.sh sets it all):
    PARLEY_BIN_DIR                   release binaries, parley-load among them
    PARLEY_TEST_AMQP_URL, …          the throwaway servers on tmpfs
    PARLEY_BENCH_DISK_AMQP_URL,
    PARLEY_BENCH_DISK_DATABASE_URL   the same servers with their data on disk (scenario A on disk)
    PARLEY_BENCH_BASELINE_BIN_DIR    release binaries of the previous release or commit (scenario A again, for ratios)
    PARLEY_BENCH_BASELINE_NAME       what that is (a tag or a commit)

Scenarios:
    A  instant simulator, 1/10/50/200 clients, closed loop; tmpfs and disk
    B  a 2 s streaming LLM, 1,000 clients, one worker
    C  10,000 idle sockets on one gateway (RSS); a reply fanned out to two sockets of every session
    D  first delta at the client minus the simulator's time to first token
    E  CPU per turn of each process, under scenario A (from A's runs)

Prints figures; asserts nothing (a benchmark, not a test)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import dashboard_check  # noqa: E402
from bench_stack import INSTANT_SIM, JWT_SECRET, BenchStack  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
PLOT = REPO_ROOT / "scripts" / "plot-load.py"


@dataclass
class Run:
    scenario: str
    name: str
    result: dict
    json_path: Path
    plot_path: Path | None = None
    notes: list[str] = field(default_factory=list)


class Bench:
    def __init__(self, out: Path, quick: bool) -> None:
        self.out = out
        self.quick = quick
        self.runs: list[Run] = []
        out.mkdir(parents=True, exist_ok=True)

    # -- running parley-load

    def load(self, stack: BenchStack, scenario: str, name: str, arguments: list[str], *, plot: bool = True,
             command: str = "turns", servers: list[str] | None = None) -> Run:
        json_path = self.out / f"{name}.json"
        # The tool of this build, whatever build the stack runs (the baseline's has none).
        tool = Path(os.environ["PARLEY_BIN_DIR"]) / "parley-load"
        line = [str(tool), command, "--url", stack.ws_url(), "--jwt-secret", JWT_SECRET, "--json", str(json_path),
                "--label", f"{scenario}: {name}", *stack.watch_arguments(), *(servers or []), *arguments]
        print(f"\n== {scenario} {name}: {' '.join(arguments)}", flush=True)
        subprocess.run(line, check=True, stdin=subprocess.DEVNULL)
        run = Run(scenario, name, json.loads(json_path.read_text()), json_path)
        if plot:
            run.plot_path = self.out / f"{name}.png"
            subprocess.run([sys.executable, str(PLOT), str(json_path), str(run.plot_path)], check=True)
        self.runs.append(run)
        return run

    def seconds(self, full: float) -> str:
        return str(max(3.0, full / 4) if self.quick else full)

    # -- scenarios

    def scenario_a(self, storage: str, amqp_url: str, database_url: str, bin_dir: Path | None = None,
                   tag: str = "", servers: list[str] | None = None) -> list[Run]:
        runs = []
        with BenchStack(str(bin_dir) if bin_dir else None, amqp_url=amqp_url, database_url=database_url) as stack:
            stack.start(workers=3, gateways=1, sim_env=INSTANT_SIM)
            for clients in (1, 10, 50, 200):
                name = f"A-{storage}{tag}-{clients}"
                # What the dashboard's panels would read over the same run (main tmpfs run, 50 clients).
                metrics = [stack.metrics_url()] + [f"http://127.0.0.1:{w.extra['port']}/metrics" for w in stack.workers]
                watch_panels = clients == 50 and storage == "tmpfs" and not tag
                before, started = (dashboard_check.scrape(metrics), time.monotonic()) if watch_panels else (None, 0.0)
                run = self.load(stack, "A", name, ["--clients", str(clients), "--duration", self.seconds(20),
                                                   "--warmup", "3", "--quiet"], servers=servers)
                if before is not None:
                    run.result["dashboard"] = dashboard_check.panels(before, dashboard_check.scrape(metrics), time.monotonic() - started)
                    run.json_path.write_text(json.dumps(run.result, indent=2, sort_keys=True))
                runs.append(run)
        subprocess.run([sys.executable, str(PLOT), "--sweep", str(self.out / f"A-{storage}{tag}.png"),
                        *[str(r.json_path) for r in runs]], check=True)
        return runs

    def scenario_b(self) -> Run:
        with BenchStack() as stack:
            # A 2 s answer streamed: 100 tokens at 50 tokens/s after no wait.
            stack.start(workers=1, gateways=1, sim_env={"LLM_SIM_TTFT_MS": "0", "LLM_SIM_TOKENS_PER_SECOND": "50"},
                        worker_env={"WORKER_CONCURRENCY": "1000"}, gateway_env={"MAX_SOCKETS_PER_USER": "10"})
            clients = "250" if self.quick else "1000"
            return self.load(stack, "B", "B-2s-llm-1000", ["--clients", clients, "--duration", self.seconds(30),
                                                           "--warmup", "5", "--sim", "tokens=100", "--connect-rate", "500"])

    def scenario_c(self) -> Run:
        with BenchStack() as stack:
            # Two sockets a session, each client a user of its own.
            stack.start(workers=3, gateways=1, sim_env=INSTANT_SIM, gateway_env={"MAX_SOCKETS_PER_USER": "10"})
            sockets = "2000" if self.quick else "10000"
            # Paced below what the stack answers (every session's start is a tutor's
            # opening, a turn through the model): C measures sockets and fan-out, not
            # an overload (at 1,000 sockets and 500 turns a second it was one).
            return self.load(stack, "C", "C-sockets", ["--sockets", sockets, "--per-session", "2", "--hold", "5",
                                                       "--connect-rate", "160", "--rate", "80", "--quiet"],
                             command="sockets", plot=False)

    def scenario_d(self) -> Run:
        with BenchStack() as stack:
            stack.start(workers=3, gateways=1, sim_env={"LLM_SIM_TTFT_MS": "0", "LLM_SIM_TOKENS_PER_SECOND": "1000000"})
            run = self.load(stack, "D", "D-first-delta", ["--clients", "10", "--think", "50", "--duration", self.seconds(20),
                                                          "--sim", "ttft=100,tps=50,tokens=20", "--quiet"])
            run.notes.append("the simulator's time to first token is 100 ms: the overhead is first delta − 100 ms")
            return run


def server_watch_arguments() -> list[str]:
    """parley-load's --watch options for the throwaway RabbitMQ and PostgreSQL (scenario
    E): the beam.smp pid the node wrote, and the postmaster's, whose CPU time counts its
    backends'."""
    arguments = []
    pid_files = {"rabbitmq": Path(os.environ.get("PARLEY_TEST_RABBITMQ_DIR", "/nonexistent")) / "rabbitmq.pid",
                 "postgres": Path(os.environ.get("PARLEY_TEST_POSTGRES_DIR", "/nonexistent")) / "data" / "postmaster.pid"}
    for name, pid_file in pid_files.items():
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            print(f"scenarios.py: no pid in {pid_file}; {name} is left out of E", file=sys.stderr)
            continue
        arguments += ["--watch", f"{name}={pid}"]
    return arguments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="A,B,C,D,E")
    parser.add_argument("--quick", action="store_true", help="short runs, fewer clients in B: to try the script")
    parser.add_argument("--out", default=str(REPO_ROOT / "docs" / "performance"))
    args = parser.parse_args()
    wanted = set(args.only.upper().split(","))
    bench = Bench(Path(args.out), args.quick)
    started = time.monotonic()
    if "A" in wanted or "E" in wanted:
        bench.scenario_a("tmpfs", os.environ["PARLEY_TEST_AMQP_URL"], os.environ["PARLEY_TEST_DATABASE_URL"],
                         servers=server_watch_arguments())
        if os.environ.get("PARLEY_BENCH_DISK_AMQP_URL"):
            bench.scenario_a("disk", os.environ["PARLEY_BENCH_DISK_AMQP_URL"], os.environ["PARLEY_BENCH_DISK_DATABASE_URL"])
        if os.environ.get("PARLEY_BENCH_BASELINE_BIN_DIR"):
            bench.scenario_a("tmpfs", os.environ["PARLEY_TEST_AMQP_URL"], os.environ["PARLEY_TEST_DATABASE_URL"],
                             Path(os.environ["PARLEY_BENCH_BASELINE_BIN_DIR"]), tag="-baseline")
    if "B" in wanted:
        bench.scenario_b()
    if "C" in wanted:
        bench.scenario_c()
    if "D" in wanted:
        bench.scenario_d()
    from report import write_report  # noqa: E402

    write_report(bench.runs, bench.out, REPO_ROOT / "docs" / "performance.md", time.monotonic() - started)


if __name__ == "__main__":
    main()
