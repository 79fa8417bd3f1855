"""The Parley processes of one benchmark: a simulator, workers and gateways, started
from PARLEY_BIN_DIR against the throwaway RabbitMQ and PostgreSQL of
scripts/lib/throwaway.sh (PARLEY_TEST_* variables), configured as an operator would
run them for load: authentication on with a JWT secret (every load client is a user
of its own), the abuse limits opened up, logs at warning.

    python3 Tests/bench/bench_stack.py --workers 3 --gateways 1     start, print, wait

Used by Tests/bench/scenarios.py; by hand it is a quick way to point parley-load at a
stack: it prints the gateway URL, the JWT secret and the processes' pids."""

from __future__ import annotations

import argparse
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "e2e"))

import parley_e2e as e2e  # noqa: E402

JWT_SECRET = "bench-secret-0123456789abcdefghij"
# The simulator answers at once: the pipeline's own cost is what is measured.
INSTANT_SIM = {"LLM_SIM_TTFT_MS": "0", "LLM_SIM_TOKENS_PER_SECOND": "1000000"}
assert len(JWT_SECRET) >= 32


class BenchStack:
    def __init__(self, bin_dir: str | None = None, *, amqp_url: str | None = None, database_url: str | None = None,
                 label: str = "bench") -> None:
        self.bin_dir = Path(bin_dir or e2e.env("PARLEY_BIN_DIR"))
        self.amqp_url = amqp_url or e2e.env("PARLEY_TEST_AMQP_URL")
        self.database_url = database_url or e2e.env("PARLEY_TEST_DATABASE_URL")
        self.prefix = label + secrets.token_hex(3)
        self.tmp = Path(tempfile.mkdtemp(prefix=f"parley-{self.prefix}-"))
        self.procs: list[e2e.Proc] = []
        self.sim: e2e.Proc | None = None
        self.workers: list[e2e.Proc] = []
        self.gateways: list[e2e.Proc] = []

    def _base_env(self) -> dict[str, str]:
        import os

        keep = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR")
        base = {k: os.environ[k] for k in keep if k in os.environ}
        base.update(AMQP_URL=self.amqp_url, DATABASE_URL=self.database_url, AMQP_PREFIX=self.prefix, LOG_LEVEL="warning")
        return base

    def _start(self, name: str, binary: str, environment: dict[str, str], port: int, extra: dict) -> e2e.Proc:
        path = self.bin_dir / binary
        if not path.is_file():
            raise RuntimeError(f"{path} is missing (PARLEY_BIN_DIR={self.bin_dir}); build first")
        proc = e2e.Proc(name, [str(path)], environment, self.tmp / f"{name}.log",
                        health_url=f"http://127.0.0.1:{port}/health", extra={"port": port, **extra})
        self.procs.append(proc)
        return proc.start()

    def start_sim(self, extra_env: dict[str, str] | None = None) -> e2e.Proc:
        (port,) = e2e.free_ports(1)
        environment = self._base_env()
        environment.update(LLM_SIM_HOST="127.0.0.1", LLM_SIM_PORT=str(port), LLM_SIM_LATENCY_MS="0")
        environment.update(extra_env or {})
        self.sim = self._start("llm-sim", "parley-llm-sim", environment, port, {})
        return self.sim

    @property
    def sim_url(self) -> str:
        assert self.sim
        return f"http://127.0.0.1:{self.sim.extra['port']}"

    def start_worker(self, extra_env: dict[str, str] | None = None) -> e2e.Proc:
        (port,) = e2e.free_ports(1)
        worker_id = f"{self.prefix}-w{len(self.workers) + 1}"
        environment = self._base_env()
        environment.update(
            WORKER_ID=worker_id, WORKER_HOST="127.0.0.1", WORKER_PORT=str(port),
            LLM_PROVIDER="openai", OPENAI_BASE_URL=f"{self.sim_url}/v1", OPENAI_API_KEY="sim",
        )
        environment.update(extra_env or {})
        proc = self._start(f"worker{len(self.workers) + 1}", "parley-worker", environment, port, {"id": worker_id})
        self.workers.append(proc)
        return proc

    def start_gateway(self, extra_env: dict[str, str] | None = None) -> e2e.Proc:
        port, internal_port = e2e.free_ports(2)
        gateway_id = f"{self.prefix}-gw{len(self.gateways) + 1}"
        environment = self._base_env()
        environment.update(
            GATEWAY_ID=gateway_id, GATEWAY_HOST="127.0.0.1", GATEWAY_PORT=str(port),
            GATEWAY_INTERNAL_PORT=str(internal_port),
            PARLEY_AUTH="on", JWT_SECRET=JWT_SECRET,
            RATE_TURNS_PER_MINUTE="0", RATE_STARTS_PER_MINUTE="0", RATE_CANCELS_PER_MINUTE="0",
            RATE_RESUMES_PER_MINUTE="0", RATE_SOCKETS_PER_MINUTE="0",
            MAX_SOCKETS="30000",
        )
        environment.update(extra_env or {})
        proc = self._start(f"gateway{len(self.gateways) + 1}", "parley-gateway", environment, port, {"internal_port": internal_port, "id": gateway_id})
        self.gateways.append(proc)
        return proc

    def ws_url(self, gateway: int = 0) -> str:
        return f"ws://127.0.0.1:{self.gateways[gateway].extra['port']}/ws"

    def metrics_url(self, gateway: int = 0) -> str:
        return f"http://127.0.0.1:{self.gateways[gateway].extra['internal_port']}/metrics"

    def start(self, *, workers: int = 3, gateways: int = 1, worker_env: dict[str, str] | None = None,
              gateway_env: dict[str, str] | None = None, sim_env: dict[str, str] | None = None) -> "BenchStack":
        self.start_sim(sim_env).wait_healthy()
        for _ in range(workers):
            self.start_worker(worker_env)
        for worker in self.workers:
            worker.wait_healthy()
        for _ in range(gateways):
            self.start_gateway(gateway_env)
        for gateway in self.gateways:
            gateway.wait_healthy()
        return self

    def watch_arguments(self) -> list[str]:
        """parley-load's --watch options for every process of the stack."""
        arguments = []
        for proc in self.procs:
            if proc.alive():
                arguments += ["--watch", f"{proc.name}={proc.pid}"]
        return arguments

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in reversed(self.procs):
            if proc.popen is not None:
                try:
                    proc.popen.wait(timeout=e2e.STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    proc.popen.send_signal(signal.SIGKILL)
                    proc.popen.wait(timeout=e2e.STOP_TIMEOUT)

    def __enter__(self) -> "BenchStack":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--gateways", type=int, default=1)
    parser.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--gateway-env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--sim-env", action="append", default=[], metavar="NAME=VALUE",
                        help="default: an instant simulator (LLM_SIM_TTFT_MS=0, LLM_SIM_TOKENS_PER_SECOND=1000000)")
    args = parser.parse_args()
    worker_env = dict(item.split("=", 1) for item in args.worker_env)
    gateway_env = dict(item.split("=", 1) for item in args.gateway_env)
    sim_env = dict(item.split("=", 1) for item in args.sim_env) or INSTANT_SIM
    with BenchStack() as stack:
        stack.start(workers=args.workers, gateways=args.gateways, worker_env=worker_env, gateway_env=gateway_env, sim_env=sim_env)
        print(f"gateway: {stack.ws_url()}  --jwt-secret {JWT_SECRET}")
        print("watch: " + " ".join(stack.watch_arguments()))
        print(f"logs: {stack.tmp}")
        sys.stdout.flush()
        # Blocked, so that they wait here and the stack is stopped, not left orphaned.
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT, signal.SIGTERM])
        signal.sigwait([signal.SIGINT, signal.SIGTERM])


if __name__ == "__main__":
    main()
