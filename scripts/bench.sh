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
# shellcheck source=lib/load.sh
source "$SCRIPTS_DIR/lib/load.sh"

cd "$REPO_ROOT"
ensure_system_packages
ensure_python_websockets
configuration="${PARLEY_BUILD:-debug}"
swift build -c "$configuration"
PARLEY_BIN_DIR="$(swift build -c "$configuration" --show-bin-path)"
export PARLEY_BIN_DIR
# The servers are stopped whatever ends the script: Ctrl-C also kills the reader of a
# pipe (`bench.sh | tee`), so writes to it are ignored from then on, not fatal.
stop_servers() {
    set +e
    trap '' INT TERM HUP PIPE
    throwaway_servers_stop
}
trap stop_servers EXIT
trap 'trap "" INT TERM HUP PIPE; exit 130' INT
trap 'trap "" INT TERM HUP PIPE; exit 143' TERM
trap 'trap "" INT TERM HUP PIPE; exit 129' HUP
trap 'trap "" INT TERM HUP PIPE; exit 141' PIPE
throwaway_servers_start
log "benchmark: first delta latency and broker messages per reply ($configuration build)"
python3 Tests/bench/first_delta.py
