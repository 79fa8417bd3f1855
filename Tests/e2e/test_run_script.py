"""scripts/run.sh stops everything it started, however its output is redirected.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group: with
`bash scripts/run.sh 2>&1 | tee run.log` that is run.sh *and* tee. tee dies, and
run.sh's next log line is a write to a pipe without a reader (SIGPIPE, or EPIPE when
SIGPIPE is ignored). That write must not end run.sh before its cleanup has stopped
the servers and apps.

No real stack is needed: a driver sources run.sh (which then only defines its
functions), replaces the build, the package check and the RabbitMQ, PostgreSQL and
Prometheus start/stop functions with fakes, and calls run.sh's own main. The
gateway, workers and simulator are fake binaries in BIN_DIR, started by run.sh's own
start_app. Every fake is a small HTTP server on its port that records its pid, so the
test can check that each one is gone and each port free again. A run takes about a
second.

Run it on its own (conftest.py insists on the suite's variables, which it does not use):
    PARLEY_TEST_AMQP_URL=- PARLEY_TEST_DATABASE_URL=- PARLEY_BIN_DIR=- \
    PARLEY_TEST_RABBITMQ_DIR=- PARLEY_TEST_SCRIPTS=- PARLEY_TEST_POSTGRES_DIR=- \
    PARLEY_TEST_POSTGRES_PORT=- python3 -m pytest -q Tests/e2e/test_run_script.py
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

RUN_SH = Path(__file__).resolve().parents[2] / "scripts" / "run.sh"
BANNER = "Ctrl-C stops everything"
WORKERS = 2
# Every process run.sh starts here: three "servers" and 1 + WORKERS + 1 apps.
EXPECTED = {"rabbitmq", "postgres", "prometheus", "llm-sim", "gateway"} | {f"worker-{i}" for i in range(1, WORKERS + 1)}
TIMEOUT = 30.0

# A fake server or app: answers every GET with 200 on 127.0.0.1:PORT and records
# NAME-PID (its port inside) in FAKE_TRACK_DIR once the port is bound.
FAKE_PY = r'''
import http.server, os, sys

name, port = sys.argv[1], int(sys.argv[2])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok\n")

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", port), Handler)
with open(os.path.join(os.environ["FAKE_TRACK_DIR"], f"{name}-{os.getpid()}"), "w") as f:
    f.write(str(port))
server.serve_forever()
'''

# The binaries run.sh's start_app launches (each gets its port from its environment).
FAKE_APPS = {
    "parley-gateway": 'exec "$FAKE_PYTHON" "$FAKE_DIR/fake.py" gateway "$GATEWAY_PORT"',
    "parley-worker": 'exec "$FAKE_PYTHON" "$FAKE_DIR/fake.py" "$WORKER_ID" "$WORKER_PORT"',
    "parley-llm-sim": 'exec "$FAKE_PYTHON" "$FAKE_DIR/fake.py" llm-sim "$LLM_SIM_PORT"',
}

# Sources run.sh ($1) and runs its main with fakes for what needs the real machine.
# The fake stop functions log after stopping, as the real ones do.
DRIVER_SH = r'''#!/usr/bin/env bash
# shellcheck disable=SC2034 # the variables set here are read by run.sh's functions
set -euo pipefail
# shellcheck source=/dev/null
source "$1"
STATE_DIR="$FAKE_DIR/state"
LOG_DIR="$STATE_DIR/logs"
PID_DIR="$STATE_DIR/pids"
PROMETHEUS_DIR="$STATE_DIR/prometheus"
WORKER_PORT_BASE="$FAKE_WORKER_PORT_BASE"
echo "$$" >"$FAKE_DIR/run.pid"

ensure_system_packages() { :; }
build() { BIN_DIR="$FAKE_DIR/bin"; log "fake build: binaries in $BIN_DIR"; }

fake_start() {
    setsid "$FAKE_PYTHON" "$FAKE_DIR/fake.py" "$1" "$2" </dev/null >>"$LOG_DIR/$1.log" 2>&1 &
    echo "$!" >"$STATE_DIR/$1.fake.pid"
    wait_for_tcp 127.0.0.1 "$2" 10 || die "fake $1 did not start on port $2"
    log "$1 ready on 127.0.0.1:$2"
}
fake_stop() {
    local pid
    pid="$(read_pid "$STATE_DIR/$1.fake.pid")"
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait_pid_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
    rm -f "$STATE_DIR/$1.fake.pid"
    log "$1 stopped"
}
rabbitmq_start() { fake_start rabbitmq "$2"; }
rabbitmq_stop() { fake_stop rabbitmq; }
postgres_start() { fake_start postgres "$2"; }
postgres_stop() { fake_stop postgres; }
prometheus_write_config() { :; }
prometheus_start() { fake_start prometheus "$2"; }
prometheus_stop() { fake_stop prometheus; }

main
'''


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def _free_ports(count: int, consecutive: int) -> tuple[list[int], int]:
    """COUNT free ports, and a base B such that B+1..B+CONSECUTIVE are free as well."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        ports = [s.getsockname()[1] for s in socks]
        for _ in range(100):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            first = s.getsockname()[1]
            run = []
            for port in range(first + 1, first + consecutive):
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    t.close()
                    break
                socks.append(t)
                run.append(port)
            if len(run) == consecutive - 1:
                return ports, first - 1
        raise RuntimeError(f"found no {consecutive} consecutive free ports")
    finally:
        for s in socks:
            s.close()


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for init to reap it)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return line.split()[1] != "Z"
    except OSError:
        return False
    return False


@dataclass
class Run:
    root: Path
    runner: subprocess.Popen
    reader: subprocess.Popen | None
    output: Path

    def run_pid(self) -> int:
        return int((self.root / "run.pid").read_text())

    def fakes(self) -> dict[str, tuple[int, int]]:
        """name -> (pid, port) of every fake that has started."""
        found = {}
        for entry in (self.root / "track").iterdir():
            name, _, pid = entry.name.rpartition("-")
            found[name] = (int(pid), int(entry.read_text()))
        return found

    def output_text(self) -> str:
        try:
            return self.output.read_text(errors="replace")
        except OSError:
            return ""

    def diagnostics(self) -> str:
        logs = []
        for log in sorted((self.root / "state" / "logs").glob("*.log")):
            logs.append(f"--- {log.name}\n{log.read_text(errors='replace')[-1500:]}")
        return f"output of run.sh (as far as the reader got):\n{self.output_text()}\n" + "\n".join(logs)

    def wait_for_banner(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while BANNER not in self.output_text():
            if self.runner.poll() is not None:
                pytest.fail(f"run.sh exited with status {self.runner.returncode} before its banner\n{self.diagnostics()}")
            if time.monotonic() > deadline:
                pytest.fail(f"run.sh printed no banner within {TIMEOUT:.0f} s\n{self.diagnostics()}")
            time.sleep(0.05)

    def wait_for_exit(self) -> int:
        try:
            return self.runner.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"run.sh was still running {TIMEOUT:.0f} s after the signal\n{self.diagnostics()}")

    def fake_processes(self) -> list[str]:
        """Command lines of this run's fakes still running: found in /proc rather than
        in the track directory, so that one launched just before run.sh died counts too."""
        marker = str(self.root / "fake.py").encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline and _running(int(entry.name)):
                command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
                found.append(f"{entry.name}: {command}")
        return found

    def assert_everything_stopped(self, expected: set[str] | None = None) -> None:
        fakes = self.fakes()
        if expected is not None:
            assert set(fakes) == expected, f"started {sorted(fakes)}, expected {sorted(expected)}"
        time.sleep(0.5)  # a fake that run.sh launched just before it exited is running by now
        left = self.fake_processes()
        busy = sorted(name for name, (_, port) in fakes.items() if not _port_free(port))
        assert not left and not busy, (
            f"still running after run.sh exited: {left}; ports still in use: {busy}\n{self.diagnostics()}"
        )

    def kill_leftovers(self) -> None:
        for process in self.fake_processes():
            try:
                os.kill(int(process.split(":")[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        for proc in (self.runner, self.reader):
            if proc is not None and proc.poll() is None:
                try:
                    os.killpg(self.runner.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)


def start_run(tmp_path: Path, reader: list[str] | None, ignore_sigpipe: bool = False, run_sh: Path | None = None) -> Run:
    """`bash run.sh 2>&1 | READER` (READER's stdout into a file) in a process group of
    its own, as a shell would run it in the foreground; READER None: into the file."""
    root = tmp_path / "run"
    (root / "bin").mkdir(parents=True)
    (root / "track").mkdir()
    (root / "fake.py").write_text(FAKE_PY)
    (root / "driver.sh").write_text(DRIVER_SH)
    for name, body in FAKE_APPS.items():
        binary = root / "bin" / name
        binary.write_text(f"#!/usr/bin/env bash\n{body}\n")
        binary.chmod(0o755)

    (rabbitmq, postgres, prometheus, gateway, llm_sim), worker_base = _free_ports(5, WORKERS)
    environment = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "GEMINI_API_KEY", "PARLEY_AUTH")}
    environment.update(
        FAKE_DIR=str(root),
        FAKE_TRACK_DIR=str(root / "track"),
        FAKE_PYTHON=sys.executable,
        FAKE_WORKER_PORT_BASE=str(worker_base),
        WORKERS=str(WORKERS),
        RABBITMQ_PORT=str(rabbitmq),
        POSTGRES_PORT=str(postgres),
        PROMETHEUS_PORT=str(prometheus),
        GATEWAY_PORT=str(gateway),
        LLM_SIM_PORT=str(llm_sim),
        PARLEY_HEALTH_TIMEOUT="20",
    )
    command = ["bash", str(root / "driver.sh"), str(run_sh or RUN_SH)]
    # As in a terminal: SIGINT and SIGQUIT at their defaults. A background job of a
    # non-interactive shell (test.sh runs this suite as one) starts with them ignored,
    # and a signal ignored on entry cannot be trapped, so Ctrl-C would not reach run.sh.
    def terminal_signals() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGQUIT, signal.SIG_DFL)

    if ignore_sigpipe:
        # Ignored on entry, SIGPIPE cannot be trapped: a write to the dead pipe fails with EPIPE.
        command = ["bash", "-c", 'trap "" PIPE; exec "$@"', "bash", *command]
    output = root / "output.txt"
    with open(output, "wb") as sink:
        if reader is None:
            runner = subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL, stdout=sink,
                                      stderr=subprocess.STDOUT, process_group=0, preexec_fn=terminal_signals)
            return Run(root, runner, None, output)
        runner = subprocess.Popen(command, env=environment, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, process_group=0, preexec_fn=terminal_signals)
        try:
            reader_proc = subprocess.Popen(reader, stdin=runner.stdout, stdout=sink, stderr=subprocess.DEVNULL,
                                           process_group=runner.pid, preexec_fn=terminal_signals)
        finally:
            # The reader must hold the only read end: when it dies, the pipe breaks.
            runner.stdout.close()
    return Run(root, runner, reader_proc, output)


@pytest.fixture
def runs():
    started: list[Run] = []
    yield started
    for run in started:
        run.kill_leftovers()


@pytest.mark.parametrize("ignore_sigpipe", [False, True], ids=["sigpipe", "epipe"])
def test_ctrl_c_with_the_output_piped_to_tee_stops_everything(tmp_path, runs, ignore_sigpipe):
    run = start_run(tmp_path, ["tee", str(tmp_path / "run.log")], ignore_sigpipe=ignore_sigpipe)
    runs.append(run)
    run.wait_for_banner()
    os.killpg(run.runner.pid, signal.SIGINT)  # what the terminal does on Ctrl-C: run.sh and tee
    status = run.wait_for_exit()
    run.reader.wait(timeout=10)
    run.assert_everything_stopped(EXPECTED)
    assert status == 0, f"run.sh exited with status {status} after Ctrl-C\n{run.diagnostics()}"


def test_sigpipe_while_waiting_stops_everything(tmp_path, runs):
    run = start_run(tmp_path, ["tee", str(tmp_path / "run.log")])
    runs.append(run)
    run.wait_for_banner()
    os.kill(run.run_pid(), signal.SIGPIPE)
    status = run.wait_for_exit()
    run.assert_everything_stopped(EXPECTED)
    assert status == 141, f"run.sh exited with status {status} after SIGPIPE\n{run.diagnostics()}"
    run.reader.wait(timeout=10)  # tee lived on: the whole cleanup is in the output, in order
    text = run.output_text()
    assert "stopping (SIGPIPE received)" in text and "everything stopped" in text, text
    assert text.index("postgres stopped") < text.index("rabbitmq stopped") < text.index("everything stopped"), text


def test_reader_gone_during_startup_stops_what_was_started(tmp_path, runs):
    # `bash scripts/run.sh 2>&1 | head -n 2`: the reader leaves while run.sh still starts things.
    run = start_run(tmp_path, ["head", "-n", "2"])
    runs.append(run)
    status = run.wait_for_exit()
    run.assert_everything_stopped()
    assert {"rabbitmq", "postgres"} <= set(run.fakes()), run.diagnostics()
    assert status == 141, f"run.sh exited with status {status}\n{run.diagnostics()}"


def test_ctrl_c_with_the_output_in_a_file_stops_everything(tmp_path, runs):
    run = start_run(tmp_path, None)
    runs.append(run)
    run.wait_for_banner()
    os.killpg(run.runner.pid, signal.SIGINT)
    status = run.wait_for_exit()
    run.assert_everything_stopped(EXPECTED)
    assert status == 0, run.diagnostics()
    assert "everything stopped" in run.output_text(), run.diagnostics()
