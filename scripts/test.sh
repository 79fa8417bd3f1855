#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runs every Parley test: unit and integration tests (`swift test`) against a real
# RabbitMQ and PostgreSQL started for this run, then the end-to-end suite.
#
#   bash scripts/test.sh                      everything
#   bash scripts/test.sh --filter AMQPTests   extra arguments go to `swift test`
#   PARLEY_SKIP_E2E=1 bash scripts/test.sh    without the end-to-end suite
#   PARLEY_KEEP_STATE=1 bash scripts/test.sh  keep the servers' data directory
#
# The servers run on free ports with their data in a throwaway directory (a tmpfs when
# possible), so the tests never touch a RabbitMQ or PostgreSQL of the machine, and
# several runs can go on at once. The tests find them through these variables:
#   PARLEY_TEST_AMQP_URL       amqp://guest:guest@127.0.0.1:PORT/%2f
#   PARLEY_TEST_DATABASE_URL   postgres://parley:parley@127.0.0.1:PORT/parley
#   PARLEY_TEST_RABBITMQ_DIR   the node's directory, for a simulated outage:
#                              bash "$PARLEY_TEST_SCRIPTS/lib/rabbitmq.sh" kill "$PARLEY_TEST_RABBITMQ_DIR"
#                              bash "$PARLEY_TEST_SCRIPTS/lib/rabbitmq.sh" restart-after-kill "$PARLEY_TEST_RABBITMQ_DIR"
#   PARLEY_TEST_POSTGRES_DIR   the cluster's directory, and PARLEY_TEST_POSTGRES_PORT its port:
#                              bash "$PARLEY_TEST_SCRIPTS/lib/postgres.sh" stop "$PARLEY_TEST_POSTGRES_DIR"
#                              bash "$PARLEY_TEST_SCRIPTS/lib/postgres.sh" start "$PARLEY_TEST_POSTGRES_DIR" PORT throwaway
#   PARLEY_TEST_SCRIPTS        absolute path of scripts/
#   PARLEY_BIN_DIR             where `swift build` put the executables
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPTS_DIR")"
# shellcheck source=lib/load.sh
source "$SCRIPTS_DIR/lib/load.sh"

RUN_STARTED="$(now_ms)"
CURRENT_STEP=""
CLEANED_UP=""
CHILD_PID=""

# run_step NAME COMMAND... — run one step and print how long it took. The command is
# not run inside a condition, so `set -e` stays in force within shell functions; when
# it fails the script exits and the EXIT trap names CURRENT_STEP.
run_step() {
    local name="$1" started
    shift
    CURRENT_STEP="$name"
    log "==> $name"
    started="$(now_ms)"
    "$@"
    log "<== $name: ok ($(format_ms $(($(now_ms) - started))))"
    CURRENT_STEP=""
}

# run_child COMMAND... — run a long external command (build, tests) in a process group
# of its own and wait for it. Waiting on a background job lets a signal to this
# script be handled at once, and the whole group (e.g. swift test and the test
# runner it starts) can then be stopped together.
run_child() {
    local status=0
    setsid "$@" &
    CHILD_PID=$!
    wait "$CHILD_PID" || status=$?
    CHILD_PID=""
    return "$status"
}

# On INT/TERM: stop the running child's process group (TERM, then KILL after 10 s),
# then exit; the EXIT trap does the rest.
on_signal() {
    local status="$1"
    if [[ -n "$CHILD_PID" ]]; then
        log "stopping the running step (process group $CHILD_PID)"
        kill -TERM -- "-$CHILD_PID" 2>/dev/null || true
        wait_pid_gone "$CHILD_PID" 10 || kill -KILL -- "-$CHILD_PID" 2>/dev/null || true
    fi
    exit "$status"
}

# Stops the servers and removes their data; runs once, whatever ended the script.
cleanup() {
    [[ -n "$CLEANED_UP" ]] && return 0
    CLEANED_UP=1
    set +e
    # Finish stopping the servers even if another signal comes, or the reader of our
    # output went away (`bash scripts/test.sh | head`): a write must not kill us now.
    trap '' INT TERM PIPE
    throwaway_servers_stop
}

on_exit() {
    local status=$?
    cleanup
    local elapsed
    elapsed="$(format_ms $(($(now_ms) - RUN_STARTED)))"
    if ((status == 0)); then
        log "test.sh: all steps passed ($elapsed)"
    elif ((status == 130 || status == 143)); then
        log "test.sh: INTERRUPTED in step '${CURRENT_STEP:-(between steps)}' ($elapsed)"
    else
        log "test.sh: FAILED in step '${CURRENT_STEP:-(between steps)}' with exit status $status ($elapsed)"
    fi
    exit "$status"
}

trap on_exit EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 141' PIPE  # the reader of our output went away (e.g. | head)

start_servers() {
    throwaway_servers_start
}

build() {
    run_child swift build --build-tests
    PARLEY_BIN_DIR="$(swift build --show-bin-path)"
    export PARLEY_BIN_DIR
    log "PARLEY_BIN_DIR=$PARLEY_BIN_DIR"
}

main() {
    cd "$REPO_ROOT"
    run_step "install system packages" ensure_system_packages
    run_step "install Python websockets" ensure_python_websockets
    run_step "start RabbitMQ and PostgreSQL" start_servers
    run_step "swift build" build
    # Built just above; --skip-build avoids a second pass over the build graph.
    run_step "swift test" run_child swift test --skip-build "$@"
    if [[ "${PARLEY_SKIP_E2E:-}" == 1 ]]; then
        log "PARLEY_SKIP_E2E=1: skipping the end-to-end suite"
    elif [[ -f Tests/e2e/run_e2e.py ]]; then
        run_step "end-to-end suite" run_child python3 Tests/e2e/run_e2e.py
    else
        log "no Tests/e2e/run_e2e.py yet: no end-to-end suite to run"
    fi
}

main "$@"
