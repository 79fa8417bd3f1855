#!/usr/bin/env python3
"""Runs Parley's end-to-end suite (Tests/e2e) with pytest and exits with its status.

scripts/test.sh runs it after `swift test`, with these variables set:

  PARLEY_TEST_AMQP_URL      amqp://guest:guest@127.0.0.1:PORT/%2f
  PARLEY_TEST_DATABASE_URL  postgres://parley:parley@127.0.0.1:PORT/parley
  PARLEY_BIN_DIR            directory of parley-gateway, parley-worker, parley-llm-sim
  PARLEY_TEST_RABBITMQ_DIR  the RabbitMQ node's directory (the broker-outage test kills it)
  PARLEY_TEST_SCRIPTS       absolute path of scripts/

Extra arguments go to pytest, e.g. `python3 Tests/e2e/run_e2e.py -k fanout -x`.
PARLEY_E2E_KEEP_LOGS=1 keeps the processes' log directory after the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIRED = (
    "PARLEY_TEST_AMQP_URL",
    "PARLEY_TEST_DATABASE_URL",
    "PARLEY_BIN_DIR",
    "PARLEY_TEST_RABBITMQ_DIR",
    "PARLEY_TEST_SCRIPTS",
)
BINARIES = ("parley-gateway", "parley-worker", "parley-llm-sim", "parley-load")


def fail(message: str) -> None:
    print(f"run_e2e.py: ERROR: {message}", file=sys.stderr)
    sys.exit(2)


def ensure_module(module: str, package: str) -> None:
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    if probe.returncode == 0:
        return
    print(f"run_e2e.py: installing {package} with {sys.executable} -m pip", file=sys.stderr)
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--root-user-action=ignore", package]
    )
    if install.returncode != 0 or subprocess.run([sys.executable, "-c", f"import {module}"]).returncode != 0:
        fail(f"could not make the Python package {package} importable (pip install {package} failed)")


def main() -> int:
    missing = [name for name in REQUIRED if not os.environ.get(name)]
    if missing:
        fail(
            "missing environment variable(s): " + ", ".join(missing)
            + ". Run the suite through scripts/test.sh, or set them yourself (see the top of this file)."
        )
    bin_dir = Path(os.environ["PARLEY_BIN_DIR"])
    absent = [name for name in BINARIES if not os.access(bin_dir / name, os.X_OK)]
    if absent:
        fail(f"PARLEY_BIN_DIR={bin_dir} lacks {', '.join(absent)}; build them with `swift build`")
    for name in ("PARLEY_TEST_RABBITMQ_DIR", "PARLEY_TEST_SCRIPTS"):
        if not Path(os.environ[name]).is_dir():
            fail(f"{name}={os.environ[name]} is not a directory")
    if not (Path(os.environ["PARLEY_TEST_SCRIPTS"]) / "lib" / "rabbitmq.sh").is_file():
        fail(f"PARLEY_TEST_SCRIPTS={os.environ['PARLEY_TEST_SCRIPTS']} has no lib/rabbitmq.sh")
    if shutil.which("psql") is None:
        fail("psql (the PostgreSQL client) is not on PATH")
    ensure_module("pytest", "pytest")
    ensure_module("websockets", "websockets")
    ensure_module("yaml", "pyyaml")
    ensure_module("check_jsonschema", "check-jsonschema")
    ensure_module("selenium", "selenium")
    ensure_module("grpc", "grpcio")
    ensure_module("grpc_tools", "grpcio-tools")

    # No bytecode or plugin state in the repository; only pytest's own plugins (hermetic).
    environment = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    started = time.monotonic()
    status = subprocess.call([sys.executable, "-m", "pytest", "-q", str(HERE), *sys.argv[1:]], cwd=HERE, env=environment)
    print(f"run_e2e.py: pytest exited with status {status} after {time.monotonic() - started:.1f} s", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
