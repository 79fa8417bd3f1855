"""Runs the libFuzzer targets of Fuzz/ (built by scripts/fuzz.sh) and prints a table.

For each target: first every input of Fuzz/Regressions/<target>/ (earlier findings,
which must pass now), then fuzzing for the given seconds, starting from the seeds of
Fuzz/Corpus/<target>/ and the corpus kept in .state/fuzz/<target>/ (kept between runs,
not in git). A crash, a trap, a sanitizer report, a leak, an input that runs over 10 s
or a run over 2 GiB is a finding: its input is copied to .state/fuzz/findings/ and the
run fails. With --write-docs the table replaces the figures in docs/fuzzing.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FUZZ = REPO / "Fuzz"
TARGETS = ["FuzzFrames", "FuzzSSE", "FuzzJWT", "FuzzRetryHints", "FuzzWebhook"]
WHAT = {
    "FuzzFrames": "WebSocket frame decoder (`ClientFrameDecoder`)",
    "FuzzSSE": "SSE parser, whole and cut in two (`SSEParser`)",
    "FuzzJWT": "JWT reader and claims, HS256 check, JWKS reader and key checks",
    "FuzzRetryHints": "`Retry-After`, `x-ratelimit-reset-requests`, `retryDelay` (`RetryHint`)",
    "FuzzWebhook": "WhatsApp webhook body and signature, reply parts (`WebhookPayload`, `WebhookSignature`, `WhatsAppText`)",
}
BEGIN, END = "<!-- fuzz-figures:begin -->", "<!-- fuzz-figures:end -->"


def run_target(binary: Path, target: str, seconds: int, state: Path) -> dict:
    regressions = sorted((FUZZ / "Regressions" / target).glob("*")) if (FUZZ / "Regressions" / target).is_dir() else []
    if regressions:
        check = subprocess.run([str(binary), *map(str, regressions)], capture_output=True, text=True, timeout=300)
        if check.returncode != 0:
            return {"target": target, "result": f"regression input fails again:\n{check.stderr[-3000:]}", "ok": False}
    corpus = state / target
    corpus.mkdir(parents=True, exist_ok=True)
    findings = state / "findings"
    findings.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as artifacts:
        command = [
            str(binary), str(corpus), str(FUZZ / "Corpus" / target),
            f"-max_total_time={seconds}", "-print_final_stats=1", "-timeout=10", "-rss_limit_mb=2048",
            f"-dict={FUZZ / 'json.dict'}", f"-artifact_prefix={artifacts}/", "-max_len=8192",
        ]
        started = time.monotonic()
        result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 300)
        elapsed = time.monotonic() - started
        found = sorted(Path(artifacts).iterdir())
        for artifact in found:
            shutil.copy(artifact, findings / f"{target}-{artifact.name}")
    log = result.stderr
    stats = dict(re.findall(r"^stat::(\w+):\s+(\d+)", log, re.MULTILINE))
    coverage = re.findall(r"cov: (\d+) ft: (\d+) corp: (\d+)", log)
    ok = result.returncode == 0 and not found
    summary = "0 findings" if ok else f"FINDING ({', '.join(a.name for a in found) or 'exit ' + str(result.returncode)}):\n" + log[-4000:]
    return {
        "target": target, "ok": ok, "result": summary, "seconds": round(elapsed),
        "runs": int(stats.get("number_of_executed_units", 0)), "per_second": int(stats.get("average_exec_per_sec", 0)),
        "coverage": int(coverage[-1][0]) if coverage else 0, "corpus": len(list(corpus.iterdir())), "regressions": len(regressions),
    }


def table(results: list[dict]) -> str:
    lines = ["| target | what it reads | seconds | inputs run | per second | coverage (edges) | corpus | regression inputs | result |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        lines.append(f"| {r['target']} | {WHAT[r['target']]} | {r.get('seconds', '-')} | {r.get('runs', 0):,} | {r.get('per_second', 0):,} | "
                     f"{r.get('coverage', 0)} | {r.get('corpus', 0)} | {r.get('regressions', 0)} | {'0 findings' if r['ok'] else 'FINDING'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin-dir", required=True, type=Path)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--targets", nargs="*", default=TARGETS)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    state = REPO / ".state" / "fuzz"
    results = []
    for target in args.targets:
        binary = args.bin_dir / target
        print(f"fuzz: {target} for {args.seconds} s", flush=True)
        result = run_target(binary, target, args.seconds, state)
        print(f"fuzz: {target}: {result['result'].splitlines()[0]} ({result.get('runs', 0):,} inputs)", flush=True)
        if not result["ok"]:
            print(result["result"], file=sys.stderr)
        results.append(result)
    print(table(results))
    if args.write_docs:
        docs = REPO / "docs" / "fuzzing.md"
        text = docs.read_text()
        stamp = time.strftime("%Y-%m-%d")
        figures = f"{BEGIN}\nRun of {stamp}: {args.seconds} s per target (`Tests/fuzz/run_libfuzzer.py --seconds {args.seconds} --write-docs`), release build with AddressSanitizer, 2 cores.\n\n{table(results)}\n{END}"
        docs.write_text(text[:text.index(BEGIN)] + figures + text[text.index(END) + len(END):])
    failed = [r["target"] for r in results if not r["ok"]]
    if failed:
        print(f"fuzz: findings in {', '.join(failed)}; their inputs are in {state / 'findings'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
