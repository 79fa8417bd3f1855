#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runs the benchmarks against a throwaway RabbitMQ and PostgreSQL and prints figures.
#
#   bash scripts/bench.sh                    debug build
#   PARLEY_BUILD=release bash scripts/bench.sh
#   BENCH_TURNS=200 BENCH_CONCURRENCY=10 BENCH_TOKENS=500 BENCH_TPS=250 bash scripts/bench.sh
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPTS_DIR")"
# shellcheck source=lib/common.sh
source "$SCRIPTS_DIR/lib/common.sh"
# shellcheck source=lib/deps.sh
source "$SCRIPTS_DIR/lib/deps.sh"
# shellcheck source=lib/tmpfs.sh
source "$SCRIPTS_DIR/lib/tmpfs.sh"
# shellcheck source=lib/rabbitmq.sh
source "$SCRIPTS_DIR/lib/rabbitmq.sh"
# shellcheck source=lib/postgres.sh
source "$SCRIPTS_DIR/lib/postgres.sh"
# shellcheck source=lib/throwaway.sh
source "$SCRIPTS_DIR/lib/throwaway.sh"

cd "$REPO_ROOT"
ensure_system_packages
ensure_python_websockets
configuration="${PARLEY_BUILD:-debug}"
swift build -c "$configuration"
PARLEY_BIN_DIR="$(swift build -c "$configuration" --show-bin-path)"
export PARLEY_BIN_DIR
trap 'throwaway_servers_stop' EXIT
throwaway_servers_start
log "benchmark: first delta latency and broker messages per reply ($configuration build)"
python3 Tests/bench/first_delta.py
