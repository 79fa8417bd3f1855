#!/usr/bin/env bash
# A PostgreSQL cluster whose files all live under one directory, run as root without
# systemd, next to any other cluster on the machine.
#
#   postgres_start DIR PORT [durable|throwaway]
#       create the cluster if absent, start it on 127.0.0.1:PORT (socket in DIR), and
#       make role `parley` (password `parley`) and database `parley`.
#       throwaway: fsync, synchronous_commit and full_page_writes off — fast, and
#       loses data on a crash of the machine: for test clusters only; 300 connections. Default:
#       $POSTGRES_MODE, else durable.
#   postgres_stop DIR      fast shutdown; nothing happens when it is not running
#   postgres_psql DIR ARGS...   psql as the superuser over the socket in DIR
#
# Source it, or run it: `bash scripts/lib/postgres.sh start DIR PORT` (start, stop, psql).
#
# Layout of DIR (owned by the postgres user): data/ (the cluster), postgres.log,
# initdb.log, port, and the socket .s.PGSQL.<port>.
#
# Authentication (pg_hba from initdb): the Unix socket trusts local users (the scripts
# connect as `postgres` through it); TCP on 127.0.0.1 asks for a password
# (scram-sha-256), so clients use postgres://parley:parley@127.0.0.1:PORT/parley.

[[ -n "${_PARLEY_POSTGRES_SH:-}" ]] && return 0
_PARLEY_POSTGRES_SH=1

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PARLEY_DB_USER=parley
PARLEY_DB_PASSWORD=parley
PARLEY_DB_NAME=parley

# The newest installed server, e.g. /usr/lib/postgresql/15/bin (PG_BIN overrides).
_pg_bin() {
    local bin="${PG_BIN:-}"
    if [[ -z "$bin" ]]; then
        bin="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
    fi
    [[ -x "$bin/pg_ctl" ]] || die "PostgreSQL server binaries not found (looked in ${bin:-/usr/lib/postgresql/*/bin})"
    echo "$bin"
}

# initdb and pg_ctl refuse to run as root: run them as the postgres user, from a
# directory it can enter (it warns about an unreadable cwd otherwise).
_pg_as_postgres() {
    local dir="$1"
    shift
    (cd "$dir" && runuser -u postgres -- "$@")
}

# The postgres user must be able to reach DIR. mktemp -d makes 0700 directories and
# /root is 0700 too, so give "others" search (x) permission on each parent that
# lacks it. This lets no one list those directories, only pass through them.
_pg_make_reachable() {
    local dir="$1" path="" part parts
    IFS=/ read -r -a parts <<<"${dir#/}"
    # Top-down, so that each test runs where every ancestor is reachable already.
    for part in "${parts[@]}"; do
        path+="/$part"
        if ! runuser -u postgres -- test -x "$path" 2>/dev/null; then
            log "allowing other users to pass through $path (chmod o+x) so postgres can reach $dir"
            chmod o+x "$path"
        fi
    done
}

_pg_running() {
    local dir="$1"
    [[ -f "$dir/data/PG_VERSION" ]] || return 1
    _pg_as_postgres "$dir" "$(_pg_bin)/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

_pg_show_log() {
    local dir="$1" file
    for file in "$dir/initdb.log" "$dir/postgres.log"; do
        [[ -s "$file" ]] || continue
        log "last lines of $file:"
        tail -n 25 "$file" | sed 's/^/    /' >&2
    done
}

_pg_initdb() {
    local dir="$1" mode="$2" extra=()
    # A throwaway cluster need not be fsynced to disk at creation either.
    [[ "$mode" == throwaway ]] && extra+=(--no-sync)
    if ! _pg_as_postgres "$dir" "$(_pg_bin)/initdb" -D "$dir/data" \
        --username=postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --no-locale "${extra[@]}" >"$dir/initdb.log" 2>&1; then
        _pg_show_log "$dir"
        die "initdb failed for $dir/data"
    fi
}

# postgres_psql DIR ARGS... — psql as the superuser through the socket in DIR.
postgres_psql() {
    local dir port
    dir="$(realpath -m "$1")"
    shift
    port="$(cat "$dir/port" 2>/dev/null)" || die "no PostgreSQL cluster started from $dir"
    "$(_pg_bin)/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres "$@"
}

# Create the application role and database when they are missing.
_pg_create_app_db() {
    local dir="$1"
    postgres_psql "$dir" -d postgres <<EOF
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', '$PARLEY_DB_USER', '$PARLEY_DB_PASSWORD')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PARLEY_DB_USER')
\\gexec
SELECT format('CREATE DATABASE %I OWNER %I', '$PARLEY_DB_NAME', '$PARLEY_DB_USER')
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$PARLEY_DB_NAME')
\\gexec
EOF
}

postgres_start() {
    local dir port mode started opts
    dir="$(realpath -m "$1")"
    port="$2"
    mode="${3:-${POSTGRES_MODE:-durable}}"
    [[ "$port" =~ ^[0-9]+$ ]] || die "postgres_start: bad port '$port'"
    [[ "$mode" == durable || "$mode" == throwaway ]] || die "postgres_start: mode must be durable or throwaway, not '$mode'"
    started="$(now_ms)"

    mkdir -p "$dir"
    chown postgres:postgres "$dir"
    chmod 0755 "$dir"
    _pg_make_reachable "$dir"

    if _pg_running "$dir"; then
        log "a PostgreSQL cluster from $dir is still running; stopping it first"
        postgres_stop "$dir"
    fi
    if tcp_is_open 127.0.0.1 "$port"; then
        die "port 127.0.0.1:$port is already in use; cannot start PostgreSQL from $dir there"
    fi
    [[ -f "$dir/data/PG_VERSION" ]] || _pg_initdb "$dir" "$mode"

    opts="-p $port -k $dir -c listen_addresses=127.0.0.1"
    if [[ "$mode" == throwaway ]]; then
        opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        # The test suites run in parallel, each with pools of its own, next to
        # PgBouncer's server connections: 100 slots ran out (seen as a login refused
        # with "remaining connection slots are reserved").
        opts+=" -c max_connections=300"
    fi
    # pg_ctl starts the server in a session of its own: a Ctrl-C in the terminal
    # does not reach it, and the scripts stop it themselves.
    if ! _pg_as_postgres "$dir" "$(_pg_bin)/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" \
        -w -t 60 -o "$opts" start >/dev/null; then
        _pg_show_log "$dir"
        die "PostgreSQL failed to start from $dir on port $port"
    fi
    echo "$port" >"$dir/port"
    _pg_create_app_db "$dir"
    log "PostgreSQL ready on 127.0.0.1:$port ($mode, data in $dir/data) in $(format_ms $(($(now_ms) - started)))"
}

# postgres_stop DIR — fast shutdown (open transactions are rolled back).
postgres_stop() {
    local dir
    dir="$(realpath -m "$1")"
    _pg_running "$dir" || return 0
    _pg_as_postgres "$dir" "$(_pg_bin)/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null \
        || log "pg_ctl stop failed for $dir"
    log "PostgreSQL from $dir stopped"
}

# Run as a command: bash scripts/lib/postgres.sh start|stop|psql DIR ...
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    case "${1:-}" in
    start | stop | psql)
        cmd="postgres_$1"
        shift
        "$cmd" "$@"
        ;;
    *)
        echo "usage: $0 start DIR PORT [durable|throwaway] | stop DIR | psql DIR ARGS..." >&2
        exit 2
        ;;
    esac
fi
