#!/usr/bin/env python3
"""Runs Parley's fault scenarios (issue 9) on the real stack and prints their figures.

    python3 Tests/faults/run_faults.py                 all of R1–R9 (writes docs/reliability.md)
    python3 Tests/faults/run_faults.py R1 R6           some of them
    python3 Tests/faults/run_faults.py --quick         the bounded subset CI runs (R1 small, R6 20 s, R7, R8, R9)

scripts/faults.sh runs it with a throwaway RabbitMQ and PostgreSQL; it needs the
variables of the end-to-end suite (PARLEY_TEST_AMQP_URL, PARLEY_TEST_DATABASE_URL,
PARLEY_BIN_DIR, PARLEY_TEST_RABBITMQ_DIR, PARLEY_TEST_SCRIPTS, PARLEY_TEST_POSTGRES_DIR,
PARLEY_TEST_POSTGRES_PORT). Exits 1 when a scenario fails one of its criteria
(silent or duplicated turns among them), 2 on a usage or set-up error.

FAULTS_CLIENTS (30), FAULTS_R1_TURNS (5000; 300 with --quick), FAULTS_R3_OUTAGES (2), FAULTS_REPLY_TIMEOUT (30)
and FAULTS_KEEP_LOGS=1 (keep every scenario's process logs, not only a failed one's)
change the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import random
import shutil
import re
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
REPO_ROOT = HERE.parents[1]
REQUIRED = ("PARLEY_TEST_AMQP_URL", "PARLEY_TEST_DATABASE_URL", "PARLEY_BIN_DIR", "PARLEY_TEST_RABBITMQ_DIR",
            "PARLEY_TEST_SCRIPTS", "PARLEY_TEST_POSTGRES_DIR", "PARLEY_TEST_POSTGRES_PORT")
BINARIES = ("parley-gateway", "parley-worker", "parley-llm-sim")
QUICK = ("R1", "R6", "R7", "R8", "R9")
SCENARIO_TIMEOUT = 1200.0


def fail(message: str) -> None:
    print(f"run_faults.py: ERROR: {message}", file=sys.stderr)
    sys.exit(2)


def ensure_module(module: str, package: str) -> None:
    if subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True).returncode == 0:
        return
    print(f"run_faults.py: installing {package} with {sys.executable} -m pip", file=sys.stderr)
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              "--root-user-action=ignore", package])
    if install.returncode != 0 or subprocess.run([sys.executable, "-c", f"import {module}"]).returncode != 0:
        fail(f"could not make the Python package {package} importable")


def seconds(value) -> str:
    return "–" if value is None else (f"{value:.1f} s" if value >= 1 else f"{value * 1000:.0f} ms")


def table(results) -> str:
    head = ("Scenario", "Fault injected", "Sent", "Accepted", "Answered", "Errors by code", "Silent", "Duplicates (rows / replies)",
            "LLM calls per answered turn", "Worst latency", "Recovery", "Result")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    for r in results:
        f = r.figures
        errors = ", ".join(f"`{k}` {v}" for k, v in (f.get("errors") or {}).items()) or "0"
        per = f.get("calls_per_answer")
        row = (
            f"{r.scenario} {r.title}", str(f.get("faults", "–")), str(f.get("sent", "–")), str(f.get("accepted", "–")),
            str(f.get("answered", "–")), errors, str(f.get("silent", "–")),
            f"{f.get('dup_rows', '–')} / {f.get('dup_replies', '–')}",
            "–" if per is None else f"{per:.3f}", seconds(f.get("worst_latency")), seconds(f.get("recovery")),
            "pass" if r.ok else "**FAIL**",
        )
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def details(results) -> str:
    out = []
    for r in results:
        f = r.figures
        out.append(f"### {r.scenario}: {r.title} — {'pass' if r.ok else 'FAIL'} ({r.seconds:.0f} s)")
        out.append("")
        if f.get("p50_latency") is not None:
            out.append(f"- latency of answered turns: p50 {seconds(f['p50_latency'])}, p99 {seconds(f['p99_latency'])}, "
                       f"worst {seconds(f['worst_latency'])}; {f.get('answered_via_resume', 0)} answers found through `resume`; "
                       f"unacked {f.get('unacked', 0)}; load for {f.get('duration', 0):.0f} s")
        if f.get("stray"):
            out.append(f"- frames not matching the client's current turn: {f['stray']}")
        for note in r.notes:
            out.append(f"- {note}")
        for c in r.criteria:
            out.append(f"- [{'x' if c.ok else ' '}] {c.name}: {c.detail}")
        if r.log_dir:
            out.append(f"- process logs kept in `{r.log_dir}`")
        out.append("")
    return "\n".join(out)


def failures(results) -> str:
    """The evidence of the failed scenarios, for the page (no tracebacks, no listings)."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return ""
    out = ["## Failures of this run", "",
           "Turn ids, delivery tags and log lines of what failed; the logs were kept in the directories named above.", ""]
    for r in failed:
        out.append(f"### {r.scenario}")
        out.append("")
        out.append("```")
        lines = [line for line in r.evidence if not line.startswith(("Traceback", "dead-letters.sh"))]
        out.extend(line[:600] for line in lines[:40])
        out.append("```")
        out.append("")
    return "\n".join(out)


def log_lines_for(log_dir: Path, needles: list[str], per_needle: int = 12) -> list[str]:
    found = []
    for needle in needles:
        hits = []
        low = needle.lower()
        for path in sorted(log_dir.glob("*.log")):
            try:
                for line in path.read_text(errors="replace").splitlines():
                    if low in line.lower():
                        hits.append(f"{path.name}: {line[:400]}")
            except OSError:
                continue
        found.append(f"log lines with {needle}:" + ("\n    " + "\n    ".join(hits[:per_needle]) if hits else " none"))
        if len(hits) > per_needle:
            found.append(f"    … {len(hits) - per_needle} more")
    return found


def hang_diagnostics(stack, result) -> list[str]:
    """Where a process hung: a worker's deliveries that never logged anything (the
    delivery tags of one connection count up from 1), a gateway's sockets that
    connected but never closed."""
    found = []
    stuck = result.figures.get("stuck_at_workers") or {}
    for worker in stack.workers:
        if worker.name not in stuck and worker.name not in stack.needed_sigkill:
            continue
        try:
            text = worker.log_path.read_text(errors="replace")
        except OSError:
            continue
        tags = sorted({int(t) for t in re.findall(r"delivery_tag=(\d+)", text)})
        missing = [t for t in range(1, (tags[-1] if tags else 0) + 1) if t not in set(tags)]
        if missing:
            found.append(f"{worker.name} ({worker.log_path.name}): deliveries that never logged anything (no outcome, no retry): "
                         f"delivery_tag {', '.join(map(str, missing[:20]))}")
    for gateway in stack.gateways:
        if gateway.name not in stack.needed_sigkill:
            continue
        try:
            text = gateway.log_path.read_text(errors="replace")
        except OSError:
            continue
        opened = dict(re.findall(r"socket_id=([0-9A-F-]{36}) user_id=(\S+) \[Gateway\] socket connected", text))
        closed = set(re.findall(r"socket_id=([0-9A-F-]{36}) user_id=\S+ \[Gateway\] socket closed", text))
        open_ = {sid: user for sid, user in opened.items() if sid not in closed}
        if open_:
            found.append(f"{gateway.name} ({gateway.log_path.name}) needed SIGKILL; sockets that never logged `socket closed` "
                         f"(a reader stuck in a frame): " + ", ".join(f"{sid} ({user})" for sid, user in list(open_.items())[:10]))
    return found


def machine() -> str:
    build = os.environ.get("FAULTS_BUILD") or ("release" if "release" in os.environ.get("PARLEY_BIN_DIR", "") else "debug")
    try:
        mem = next(l for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
        mem_gib = int(mem.split()[1]) / 1024 / 1024
    except (OSError, StopIteration):
        mem_gib = 0
    rabbit = subprocess.run(["bash", "-c", "dpkg-query -W -f='${Version}' rabbitmq-server 2>/dev/null"], capture_output=True, text=True).stdout
    pg = subprocess.run(["bash", "-c", "psql --version 2>/dev/null"], capture_output=True, text=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
    return (f"commit {commit or '?'}{' with uncommitted changes' if dirty else ''}; {os.cpu_count()} cores (`nproc`), {mem_gib:.0f} GiB, {platform.system()} {platform.release()}; "
            f"{build} build; RabbitMQ {rabbit or '?'}; {pg or 'PostgreSQL ?'}; Python {platform.python_version()}")


def write_docs(results, command: str, started: dt.datetime, elapsed: float, opts) -> Path:
    import faultkit as fk

    path = REPO_ROOT / "docs" / "reliability.md"
    text = f"""# Reliability: the fault suite

What happens to the turns of real clients when a part of Parley fails. Each scenario
of issue 9 runs on the real stack — 2 gateways, 3 workers, RabbitMQ, PostgreSQL and the
LLM simulator, started by `Tests/e2e/parley_e2e.py`'s `Stack` — under a steady load of
{opts.clients} WebSocket clients, each with a session of its own, each sending its next
message when the previous one ended, over both gateways.

Regenerate this page (about {elapsed / 60:.0f} minutes on the machine below):

```
{command}
```

`bash scripts/faults.sh --quick` is the bounded subset CI runs (R1 with 300 turns and
2 kills, R6 for 20 s, R7, R8, R9); `bash scripts/faults.sh R2 R3` runs some scenarios.
The script exits non-zero when a scenario fails one of its criteria.

Last run: {started.strftime('%Y-%m-%d %H:%M UTC')}, {machine()}; simulator TTFT
{fk.SIM_TTFT_MS} ms at {fk.SIM_TPS} tokens/s; gateways' `REPLY_TIMEOUT_SECONDS` {fk.REPLY_TIMEOUT}
(R2: 60, so that turns accepted just before the crash outlive the outage; R7: 90); workers with `WORKER_CONCURRENCY` 4, provider chain Gemini → OpenAI (both the simulator).

{table(results)}

Columns:

- **Sent**: `message` frames the clients wrote. **Accepted**: turns that got `accepted`.
  **Answered**: turns whose `reply` arrived — live, or, for a client whose gateway went
  away, in the `history` of its `resume` on the other gateway.
- **Errors by code**: the final `error` of a turn; `socket_closed` is a message whose
  socket closed before it was accepted or refused (its client cannot know whether it
  was published: it never saw `accepted`).
- **Silent**: accepted, then neither a `reply` nor an `error` within the gateways'
  reply timeout plus {fk.GRACE:.0f} s (the gateway must send `reply_timeout` by then). A
  message neither accepted nor refused while its socket stayed open is counted as
  *unacked* in the details and fails the scenario too.
- **Duplicates**: assistant rows stored more than once for one turn (SQL over the
  scenario's sessions) / `reply` frames received twice for one turn on one socket.
- **LLM calls per answered turn**: calls the simulator counted (`/sim/stats`) over the
  turns answered; above 1 when turns were generated again (a worker killed mid-call)
  or retried (R4), and R7's poison and requeue need no call.
- **Worst latency**: message sent → its reply, over the answered turns.
- **Recovery**: from the end of the fault (replacement worker healthy, broker or
  database back, process restarted, connection reset) to the answer of the first turn
  sent after it; the worst over the scenario's faults.

## Dead-lettered turns: `scripts/dead-letters.sh`

A worker dead-letters a turn it cannot decode (at once) and a turn that failed on its
last allowed delivery (`x-delivery-limit` 5; its client got `unavailable`). They wait in
`<prefix>.dead`, counted by `parley_worker_turns_total{{outcome="dead_lettered"}}` and by
RabbitMQ's `rabbitmq_queue_messages{{queue="<prefix>.dead"}}` (the dashboard's "Turn queue"
row). To look at them and put them back (R7 runs `list`, `requeue` and `discard --id`):

```
bash scripts/dead-letters.sh list                      # id, type, reason, source queue, time, body
bash scripts/dead-letters.sh list --json
bash scripts/dead-letters.sh requeue                   # every turn envelope back to <prefix>.turns
bash scripts/dead-letters.sh requeue --id MESSAGE_ID   # only these (repeat --id)
bash scripts/dead-letters.sh discard --id MESSAGE_ID   # drop one for good (a poison message)
```

`--prefix P` (default `$AMQP_PREFIX`, else `parley`) and `--url URL` (default `$AMQP_URL`,
else `amqp://guest:guest@127.0.0.1:5672/%2f`) name the deployment. `requeue` without
`--id` leaves messages that are not turn envelopes where they are (`--include-invalid`
moves them too: they would come straight back). A requeued turn keeps its message id,
type and body — its `turn_id`, which workers answer once, so a turn that had been
answered after all is not answered twice — is published with a publisher confirm and
only then removed from the dead-letter queue; the header `x-parley-requeued` counts the
requeues. A turn past its `deadline` is answered `expired` when it comes back.

## Details

{details(results)}{failures(results)}"""
    path.write_text(text)
    return path


def on_term(signum, frame) -> None:
    # scripts/faults.sh sends TERM on Ctrl-C or its own TERM: unwind, so that the
    # stack's processes (in sessions of their own) are stopped by the `finally`s.
    raise SystemExit(128 + signum)


def main() -> int:
    signal.signal(signal.SIGTERM, on_term)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", help="R1 … R9 (default: all; with --quick: R1 R6 R7 R8 R9)")
    parser.add_argument("--quick", action="store_true", help="the bounded subset for CI: R1 300 turns / 2 kills, R6 20 s, R7, R8, R9")
    parser.add_argument("--clients", type=int, default=int(os.environ.get("FAULTS_CLIENTS", "30")))
    parser.add_argument("--r1-turns", type=int, default=int(os.environ["FAULTS_R1_TURNS"]) if os.environ.get("FAULTS_R1_TURNS") else None)
    parser.add_argument("--seed", type=int, default=None, help="random seed (kills, resets, markers)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/reliability.md")
    args = parser.parse_args()

    missing = [n for n in REQUIRED if not os.environ.get(n)]
    if missing:
        fail("missing environment variable(s): " + ", ".join(missing) + "; run it through scripts/faults.sh")
    bin_dir = Path(os.environ["PARLEY_BIN_DIR"])
    absent = [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]
    if absent:
        fail(f"PARLEY_BIN_DIR={bin_dir} lacks {', '.join(absent)}")
    ensure_module("websockets", "websockets")
    ensure_module("pika", "pika")

    import faultkit as fk
    import scenarios as sc

    names = [n.upper() for n in args.scenarios] or (list(QUICK) if args.quick else list(sc.SCENARIOS))
    unknown = [n for n in names if n not in sc.SCENARIOS]
    if unknown:
        fail(f"unknown scenario(s) {unknown}; known: {', '.join(sc.SCENARIOS)}")
    seed = args.seed if args.seed is not None else int(time.time())
    random.seed(seed)
    opts = sc.Options(quick=args.quick, clients=args.clients, r1_turns=args.r1_turns, seed=seed)
    started_wall = dt.datetime.now(dt.timezone.utc)
    started = time.monotonic()
    fk.log(f"scenarios {' '.join(names)}{' (quick)' if args.quick else ''}, {opts.clients} clients, seed {seed}")

    results = []
    for name in names:
        title, function = sc.SCENARIOS[name]
        result = fk.Result(name, title)
        began = time.monotonic()
        fk.log(f"==> {name}: {title}")
        stack = None
        try:
            stack = sc.stack_for(name, opts)
            stack.start()
            fk.log(f"    stack {stack.prefix} up in {stack.startup_seconds:.1f} s (logs in {stack.tmp})")

            async def bounded():
                await asyncio.wait_for(function(stack, opts, result), SCENARIO_TIMEOUT)

            asyncio.run(bounded())
        except BaseException as error:  # noqa: BLE001 - reported as a failed scenario
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                raise
            result.check("the scenario ran to its end", False, f"{type(error).__name__}: {error}")
            result.evidence.append(traceback.format_exc())
        finally:
            if stack is not None:
                stack.stop()
                proxy = getattr(stack, "proxy", None)
                if proxy is not None:
                    proxy.stop()
                cluster = getattr(stack, "cluster_dir", None)
                if cluster is not None:
                    subprocess.run(["bash", str(sc.CLUSTER_SCRIPT), "stop", cluster], capture_output=True, timeout=300)
                    shutil.rmtree(cluster, ignore_errors=True)
                result.check("every process exits on SIGTERM at the end", not stack.needed_sigkill,
                             f"needed SIGKILL after {fk.e2e.STOP_TIMEOUT:.0f} s: {', '.join(stack.needed_sigkill)}" if stack.needed_sigkill else "all exited")
        result.seconds = time.monotonic() - began
        if stack is not None:
            if not result.ok or os.environ.get("FAULTS_KEEP_LOGS") == "1":
                result.log_dir = str(stack.tmp)
                result.evidence.extend(hang_diagnostics(stack, result))
                ids = re.findall(r"turn_id=([0-9a-f-]{36})", "\n".join(result.evidence))
                result.evidence.extend(log_lines_for(stack.tmp, list(dict.fromkeys(ids))[:6]))
            else:
                stack.cleanup_tmp()
        fk.log(f"<== {name}: {'pass' if result.ok else 'FAIL'} in {result.seconds:.0f} s — {result.figures.get('sent', 0)} sent, "
               f"{result.figures.get('answered', 0)} answered, {result.figures.get('silent', 0)} silent")
        for c in result.criteria:
            if not c.ok:
                fk.log(f"    FAILED: {c.name}: {c.detail}")
        results.append(result)

    elapsed = time.monotonic() - started
    print()
    print(table(results))
    print()
    print(details(results))
    evidence = [r for r in results if r.evidence]
    if evidence:
        print("## Evidence\n")
        for r in evidence:
            print(f"### {r.scenario}\n")
            for line in r.evidence:
                print(line)
            print()
    print(f"fault suite: {len(results)} scenario(s) in {elapsed:.0f} s, seed {seed}: "
          f"{sum(r.ok for r in results)} passed, {sum(not r.ok for r in results)} failed")
    print(f"faults: {sum(r.ok for r in results)} passed, {sum(not r.ok for r in results)} failed")

    full = not args.quick and not args.scenarios and not args.no_docs
    if full:
        command = "bash scripts/faults.sh"
        path = write_docs(results, command, started_wall, elapsed, opts)
        fk.log(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
