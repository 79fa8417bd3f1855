#!/usr/bin/env bash
# PgBouncer (Debian's package) in transaction pooling mode in front of a PostgreSQL
# cluster of postgres.sh, its files under one directory, run as the postgres user
# (PgBouncer refuses to run as root) without systemd.
#
#   pgbouncer_start DIR PORT UPSTREAM_PORT   listen on 127.0.0.1:PORT for database
#                                            `parley`, pooled to 127.0.0.1:UPSTREAM_PORT
#   pgbouncer_stop DIR                       stop it; nothing happens when it is not running
#
# Source it, or run it: `bash scripts/lib/pgbouncer.sh start DIR PORT UPSTREAM_PORT`.
#
# Clients use postgres://parley:parley@127.0.0.1:PORT/parley with
# DATABASE_POOLER=pgbouncer: PgBouncer 1.18 hands each transaction to any server
# connection, so a statement prepared on one is unknown on the next, and it refuses
# startup parameters it does not know (docs/operations.md, "PostgreSQL behind PgBouncer").

[[ -n "${_PARLEY_PGBOUNCER_SH:-}" ]] && return 0
_PARLEY_PGBOUNCER_SH=1

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# The pool each database user gets on the server: what DATABASE_MAX_CONNECTIONS of
# every process together share (PGBOUNCER_POOL_SIZE overrides).
PGBOUNCER_POOL_SIZE="${PGBOUNCER_POOL_SIZE:-20}"

_pgb_running() {
    local dir="$1" pid
    pid="$(cat "$dir/pgbouncer.pid" 2>/dev/null)" || return 1
    kill -0 "$pid" 2>/dev/null
}

pgbouncer_start() {
    local dir port upstream started
    dir="$(realpath -m "$1")"
    port="$2"
    upstream="$3"
    [[ "$port" =~ ^[0-9]+$ && "$upstream" =~ ^[0-9]+$ ]] || die "pgbouncer_start: bad ports '$port' '$upstream'"
    command -v pgbouncer >/dev/null || die "pgbouncer is not installed (apt-get install pgbouncer; scripts/lib/deps.sh does it)"
    started="$(now_ms)"
    mkdir -p "$dir"
    _pgb_running "$dir" && pgbouncer_stop "$dir"
    tcp_is_open 127.0.0.1 "$port" && die "port 127.0.0.1:$port is already in use; cannot start PgBouncer there"
    # The password PgBouncer checks clients against and logs in to PostgreSQL with
    # (SCRAM needs it in clear text here, or the server's own SCRAM secret).
    printf '"%s" "%s"\n' "${PARLEY_DB_USER:-parley}" "${PARLEY_DB_PASSWORD:-parley}" >"$dir/userlist.txt"
    cat >"$dir/pgbouncer.ini" <<INI
[databases]
; Parley sends no startup parameters through PgBouncer (DATABASE_POOLER=pgbouncer):
; each server connection gets the statement time limit here instead.
${PARLEY_DB_NAME:-parley} = host=127.0.0.1 port=$upstream dbname=${PARLEY_DB_NAME:-parley} connect_query='SET statement_timeout = 10000'


[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir = $dir
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = $PGBOUNCER_POOL_SIZE
max_client_conn = 2000
; PostgresNIO and psql send these at startup; PgBouncer would refuse the connection.
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
    chown -R postgres:postgres "$dir"
    chmod 0700 "$dir"
    chmod 0600 "$dir/userlist.txt"
    if ! (cd "$dir" && runuser -u postgres -- pgbouncer -d -q "$dir/pgbouncer.ini"); then
        tail -n 20 "$dir/pgbouncer.log" >&2 2>/dev/null || true
        die "PgBouncer failed to start from $dir on port $port"
    fi
    local deadline=$((SECONDS + 20))
    until tcp_is_open 127.0.0.1 "$port"; do
        ((SECONDS < deadline)) || die "PgBouncer did not listen on $port within 20 s (log: $dir/pgbouncer.log)"
        sleep 0.1
    done
    echo "$port" >"$dir/port"
    log "PgBouncer ready on 127.0.0.1:$port (transaction pooling, $PGBOUNCER_POOL_SIZE server connections, to :$upstream) in $(format_ms $(($(now_ms) - started)))"
}

pgbouncer_stop() {
    local dir pid
    dir="$(realpath -m "$1")"
    _pgb_running "$dir" || return 0
    pid="$(cat "$dir/pgbouncer.pid")"
    kill -INT "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 10))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    case "${1:-}" in
        start) pgbouncer_start "$2" "$3" "$4" ;;
        stop) pgbouncer_stop "$2" ;;
        *) die "usage: $0 start DIR PORT UPSTREAM_PORT | stop DIR" ;;
    esac
fi
