#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The fault suite (issue 9): each scenario on the real stack (2 gateways, 3 workers,
# RabbitMQ, PostgreSQL, the LLM simulator) under a steady load of WebSocket clients,
# with figures per scenario: turns sent, accepted, answered, errors by code, silent
# turns, duplicates, LLM calls per answered turn, worst latency, recovery time.
#
#   bash scripts/faults.sh                 R1–R7; writes docs/reliability.md
#   bash scripts/faults.sh --quick         the bounded subset CI runs (R1 300 turns and
#                                          2 kills, R6 20 s, R7; a few minutes)
#   bash scripts/faults.sh R2 R3           some scenarios (arguments go to
#                                          Tests/faults/run_faults.py; --clients N, --seed N)
#   PARLEY_BIN_DIR=DIR bash scripts/faults.sh   use these binaries, build nothing
#   PARLEY_BUILD=release bash scripts/faults.sh a release build
#   PARLEY_KEEP_STATE=1 bash scripts/faults.sh  keep the servers' data directory
#   FAULTS_KEEP_LOGS=1 bash scripts/faults.sh   keep every scenario's process logs
#                                               (a failed scenario's are always kept)
#
# RabbitMQ and PostgreSQL are throwaway servers on free ports (as for scripts/test.sh);
# the scenarios kill and stop them. Exits non-zero when a scenario fails its criteria.
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPTS_DIR")"
# shellcheck source=lib/load.sh
source "$SCRIPTS_DIR/lib/load.sh"

# Children get 20 s between TERM and KILL: the suite stops its own processes on TERM.
STEPS_CHILD_GRACE=20
# shellcheck source=lib/steps.sh
source "$SCRIPTS_DIR/lib/steps.sh"

steps_install_traps

build() {
    local configuration="${PARLEY_BUILD:-debug}"
    export FAULTS_BUILD="${FAULTS_BUILD:-$configuration}"
    if [[ -n "${PARLEY_BIN_DIR:-}" ]]; then
        log "PARLEY_BIN_DIR=$PARLEY_BIN_DIR (given: nothing built)"
        return 0
    fi
    run_child swift build -c "$configuration"
    PARLEY_BIN_DIR="$(swift build -c "$configuration" --show-bin-path)"
    export PARLEY_BIN_DIR
    log "PARLEY_BIN_DIR=$PARLEY_BIN_DIR"
}

main() {
    cd "$REPO_ROOT"
    run_step "install system packages" ensure_system_packages
    run_step "install Python websockets" ensure_python_websockets
    run_step "install Python pika" ensure_python_pika
    run_step "build" build
    run_step "start RabbitMQ and PostgreSQL" throwaway_servers_start
    run_step "fault scenarios" run_child env PYTHONDONTWRITEBYTECODE=1 python3 Tests/faults/run_faults.py "$@"
}

main "$@"
