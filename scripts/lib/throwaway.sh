#!/usr/bin/env bash
# A throwaway RabbitMQ and PostgreSQL (with PgBouncer in front of it, in transaction
# mode) on free ports, data on a tmpfs when possible, for tests and benchmarks. Needs
# common.sh, tmpfs.sh, rabbitmq.sh, postgres.sh and pgbouncer.sh.
#
#   throwaway_servers_start   start them; export the PARLEY_TEST_* variables
#   throwaway_servers_stop    stop them and remove their data (PARLEY_KEEP_STATE=1 keeps it)

[[ -n "${_PARLEY_THROWAWAY_SH:-}" ]] && return 0
_PARLEY_THROWAWAY_SH=1

THROWAWAY_DIR=""

throwaway_servers_start() {
    local ports
    THROWAWAY_DIR="$(realpath "$(mktemp -d "${TMPDIR:-/tmp}/parley-test.XXXXXX")")"
    make_state_dir "$THROWAWAY_DIR"
    mapfile -t ports < <(free_port 3)
    # PostgreSQL first: it binds its port at once, so the free ports RabbitMQ picks
    # for its own epmd, distribution and Prometheus listeners cannot take it.
    # fsync off and friends: the data is thrown away after the run anyway.
    postgres_start "$THROWAWAY_DIR/postgres" "${ports[1]}" throwaway
    pgbouncer_start "$THROWAWAY_DIR/pgbouncer" "${ports[2]}" "${ports[1]}"
    rabbitmq_start "$THROWAWAY_DIR/rabbitmq" "${ports[0]}"

    export PARLEY_TEST_AMQP_URL="amqp://guest:guest@127.0.0.1:${ports[0]}/%2f"
    export PARLEY_TEST_DATABASE_URL="postgres://parley:parley@127.0.0.1:${ports[1]}/parley"
    export PARLEY_TEST_RABBITMQ_DIR="$THROWAWAY_DIR/rabbitmq"
    export PARLEY_TEST_POSTGRES_DIR="$THROWAWAY_DIR/postgres"
    export PARLEY_TEST_POSTGRES_PORT="${ports[1]}"
    # The same database through PgBouncer (clients set DATABASE_POOLER=pgbouncer).
    export PARLEY_TEST_PGBOUNCER_URL="postgres://parley:parley@127.0.0.1:${ports[2]}/parley"
    export PARLEY_TEST_SCRIPTS
    PARLEY_TEST_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    log "PARLEY_TEST_AMQP_URL=$PARLEY_TEST_AMQP_URL"
    log "PARLEY_TEST_DATABASE_URL=$PARLEY_TEST_DATABASE_URL"
    log "PARLEY_TEST_PGBOUNCER_URL=$PARLEY_TEST_PGBOUNCER_URL"
    log "PARLEY_TEST_RABBITMQ_DIR=$PARLEY_TEST_RABBITMQ_DIR"
}

throwaway_servers_stop() {
    [[ -n "$THROWAWAY_DIR" ]] || return 0
    pgbouncer_stop "$THROWAWAY_DIR/pgbouncer"
    postgres_stop "$THROWAWAY_DIR/postgres"
    rabbitmq_stop "$THROWAWAY_DIR/rabbitmq"
    if [[ "${PARLEY_KEEP_STATE:-}" == 1 ]]; then
        log "PARLEY_KEEP_STATE=1: servers stopped, their data kept in $THROWAWAY_DIR"
    else
        release_state_dir "$THROWAWAY_DIR"
    fi
    THROWAWAY_DIR=""
}
