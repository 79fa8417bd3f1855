#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Runs every Parley test: unit and integration tests (`swift test`) against a real
# RabbitMQ and PostgreSQL started for this run, then the end-to-end suite, then the
# end-to-end tests of the turn path once more through PgBouncer, then the quick subset
# of the fault suite (scripts/faults.sh --quick), then 20 s of each libFuzzer target
# (scripts/fuzz.sh --quick).
#
#   bash scripts/test.sh                      everything
#   bash scripts/test.sh --filter AMQPTests   extra arguments go to `swift test`
#   PARLEY_SKIP_E2E=1 bash scripts/test.sh    without the end-to-end suite and the fault subset
#   PARLEY_KEEP_STATE=1 bash scripts/test.sh  keep the servers' data directory
#
# The servers run on free ports with their data in a throwaway directory (a tmpfs when
# possible), so the tests never touch a RabbitMQ or PostgreSQL of the machine, and
# several runs can go on at once. The tests find them through these variables:
#   PARLEY_TEST_AMQP_URL       amqp://guest:guest@127.0.0.1:PORT/%2f
#   PARLEY_TEST_DATABASE_URL   postgres://parley:parley@127.0.0.1:PORT/parley
#   PARLEY_TEST_PGBOUNCER_URL  the same database through PgBouncer (transaction mode)
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

# shellcheck source=lib/steps.sh
source "$SCRIPTS_DIR/lib/steps.sh"

steps_install_traps

start_servers() {
    throwaway_servers_start
}

build() {
    run_child swift build --build-tests
    PARLEY_BIN_DIR="$(swift build --show-bin-path)"
    export PARLEY_BIN_DIR
    log "PARLEY_BIN_DIR=$PARLEY_BIN_DIR"
}

# The turn path's end-to-end tests (REST, sessions, order, streaming, training with
# completions, WhatsApp) with every process on PgBouncer in transaction mode
# (docs/operations.md, "PostgreSQL behind PgBouncer"). The outage and restart tests
# stay in the suite above: they stop the database itself.
e2e_through_pgbouncer() {
    run_child env PARLEY_TEST_DATABASE_URL="$PARLEY_TEST_PGBOUNCER_URL" DATABASE_POOLER=pgbouncer \
        python3 Tests/e2e/run_e2e.py -k "test_rest or test_sessions or test_order_and_input or test_streaming or test_training or test_completion or test_whatsapp.py"
}

main() {
    cd "$REPO_ROOT"
    run_step "install system packages" ensure_system_packages
    run_step "install Python websockets" ensure_python_websockets
    run_step "install Python cryptography" ensure_python_cryptography
    run_step "install schemathesis" ensure_python_package schemathesis
    run_step "install Chromium and Selenium" ensure_browser
    # The Kubernetes manifests' checks: kustomize (kubectl), the schemas, YAML.
    run_step "install kubectl, kubernetes-validate and PyYAML" ensure_kubernetes_tools
    # Formatting first: it takes seconds, and names the file (.swift-format).
    run_step "format check" run_child bash scripts/format.sh --check
    run_step "start RabbitMQ and PostgreSQL" start_servers
    run_step "swift build" build
    # Built just above; --skip-build avoids a second pass over the build graph.
    run_step "swift test" run_child swift test --skip-build "$@"
    if [[ "${PARLEY_SKIP_E2E:-}" == 1 ]]; then
        log "PARLEY_SKIP_E2E=1: skipping the end-to-end suite and the fault subset"
    else
        run_step "end-to-end suite" run_child python3 Tests/e2e/run_e2e.py
        run_step "end-to-end through PgBouncer" e2e_through_pgbouncer
        # The bounded fault subset (docs/reliability.md): worker kills, broker
        # connections cut, a poison turn. The full suite: bash scripts/faults.sh.
        run_step "install Python pika" ensure_python_pika
        run_step "fault suite (quick)" run_child env PYTHONDONTWRITEBYTECODE=1 python3 Tests/faults/run_faults.py --quick
        # The libFuzzer targets, 20 s each (docs/fuzzing.md; longer: scripts/fuzz.sh).
        run_step "fuzz (quick)" run_child bash scripts/fuzz.sh --quick
    fi
}

main "$@"
