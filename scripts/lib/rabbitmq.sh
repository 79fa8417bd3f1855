#!/usr/bin/env bash
# A RabbitMQ node whose every file lives under one directory, run as root without
# systemd, next to any other node on the machine.
#
#   rabbitmq_start DIR PORT           start (or restart) the node of DIR on 127.0.0.1:PORT
#   rabbitmq_stop DIR                 shut it down, then stop its own epmd
#   rabbitmq_kill DIR                 SIGKILL the node (a broker outage, for tests)
#   rabbitmq_restart_after_kill DIR   start it again: same ports, same data
#   rabbitmq_ctl DIR ARGS...          rabbitmqctl against that node
#
# Source it, or run it: `bash scripts/lib/rabbitmq.sh kill DIR` (start, stop, kill,
# restart-after-kill, ctl).
#
# Layout of DIR:
#   node.env        ports and node name chosen at start (read by the other functions)
#   rabbitmq.conf   the node's configuration   enabled_plugins   rabbitmq_prometheus
#   home/           HOME of server and CLI, with the shared .erlang.cookie
#   mnesia/         data (queues, messages)    log/              node, stdout and epmd logs
#   rabbitmq.pid    the beam.smp pid (the node writes it)
#   launcher.pid    the rabbitmq-server shell   epmd.pid          the node's own epmd
#
# Environment: RABBITMQ_PROMETHEUS_PORT (default: a free port), RABBITMQ_EPMD_PORT
# (default: a free port, the node's own epmd; the nodes of a cluster share one,
# rabbitmq_cluster.sh).

[[ -n "${_PARLEY_RABBITMQ_SH:-}" ]] && return 0
_PARLEY_RABBITMQ_SH=1

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

RABBITMQ_START_TIMEOUT=60

# Debian's /usr/sbin/rabbitmq* wrappers switch to the rabbitmq user and its cookie; as
# root the real scripts are called directly. The version is part of the path.
_rabbitmq_sbin() {
    local sbin
    sbin="$(printf '%s\n' /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin | sort -V | tail -n 1)"
    [[ -x "$sbin/rabbitmq-server" ]] || die "RabbitMQ is not installed (no /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin)"
    echo "$sbin"
}

# Loads DIR/node.env into RMQ_PORT, RMQ_NODENAME, RMQ_EPMD_PORT, RMQ_DIST_PORT,
# RMQ_PROMETHEUS_PORT.
_rabbitmq_load() {
    local dir="$1"
    [[ -f "$dir/node.env" ]] || die "no RabbitMQ node in $dir (missing node.env)"
    # shellcheck source=/dev/null
    source "$dir/node.env"
}

# _rabbitmq_env DIR — fill RMQ_ENV with the node's environment (after _rabbitmq_load).
# Server and CLI need the same HOME (it holds the cookie) and the same ERL_EPMD_PORT.
_rabbitmq_env() {
    local dir="$1"
    RMQ_ENV=(
        HOME="$dir/home"
        ERL_EPMD_PORT="$RMQ_EPMD_PORT"
        RABBITMQ_CONF_ENV_FILE=/dev/null
        RABBITMQ_NODENAME="$RMQ_NODENAME"
        RABBITMQ_USE_LONGNAME=false
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
        RABBITMQ_NODE_PORT="$RMQ_PORT"
        RABBITMQ_DIST_PORT="$RMQ_DIST_PORT"
        RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf"
        RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config"
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins"
        RABBITMQ_MNESIA_BASE="$dir/mnesia"
        RABBITMQ_LOG_BASE="$dir/log"
        RABBITMQ_LOGS="$dir/log/rabbit.log"
        RABBITMQ_PID_FILE="$dir/rabbitmq.pid"
        # Erlang distribution (node <-> CLI) on loopback only.
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    )
}

# _rabbitmq_run DIR PROGRAM ARGS... — run a RabbitMQ script with the node's environment.
_rabbitmq_run() {
    local dir="$1" program="$2"
    shift 2
    _rabbitmq_env "$dir"
    env "${RMQ_ENV[@]}" "$(_rabbitmq_sbin)/$program" "$@"
}

# rabbitmq_ctl DIR ARGS... — rabbitmqctl against the node of DIR.
rabbitmq_ctl() {
    local dir
    dir="$(realpath -m "$1")"
    shift
    _rabbitmq_load "$dir"
    _rabbitmq_run "$dir" rabbitmqctl -n "$RMQ_NODENAME" "$@"
}

# _rabbitmq_owns PID NAME DIR — PID is a live NAME process started for the node of
# DIR. Pid files can outlive their processes (a reboot, a kill -9); checking the
# environment keeps us from signalling an unrelated process that got the same pid.
_rabbitmq_owns() {
    local pid="$1" name="$2" dir="$3"
    pid_is "$pid" "$name" || return 1
    tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF "RABBITMQ_MNESIA_BASE=$dir/mnesia"
}

# True when the node of DIR (its beam.smp) is alive.
_rabbitmq_node_alive() {
    _rabbitmq_owns "$(read_pid "$1/rabbitmq.pid")" beam.smp "$1"
}

_rabbitmq_write_config() {
    local dir="$1"
    cat >"$dir/rabbitmq.conf" <<EOF
# Written by scripts/lib/rabbitmq.sh; rewritten at every start.
listeners.tcp.default = 127.0.0.1:$RMQ_PORT
# guest may log in from loopback only (RabbitMQ's default), which is where clients are.
default_user = guest
default_pass = guest
prometheus.tcp.ip = 127.0.0.1
prometheus.tcp.port = $RMQ_PROMETHEUS_PORT
log.file.level = info
log.console = false
EOF
}

# The cookie must be the same for server and CLI, readable by the owner only.
_rabbitmq_write_cookie() {
    local cookie="$1/home/.erlang.cookie"
    [[ -f "$cookie" ]] && return 0
    mkdir -p "$1/home"
    (umask 077 && od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$cookie")
    chmod 400 "$cookie"
}

# The node's own port mapper, on loopback, started by us so that we know its pid:
# an epmd that erl starts by itself daemonizes and outlives the node.
_rabbitmq_start_epmd() {
    local dir="$1" pid
    pid="$(read_pid "$dir/epmd.pid")"
    if _rabbitmq_is_our_epmd "$pid" && tcp_is_open 127.0.0.1 "$RMQ_EPMD_PORT"; then
        return 0
    fi
    setsid epmd -port "$RMQ_EPMD_PORT" -address 127.0.0.1 \
        </dev/null >>"$dir/log/epmd.log" 2>&1 &
    echo $! >"$dir/epmd.pid"
    wait_for_tcp 127.0.0.1 "$RMQ_EPMD_PORT" 10 || die "epmd for $dir did not start on port $RMQ_EPMD_PORT"
}

# An epmd whose command line names this node's epmd port.
_rabbitmq_is_our_epmd() {
    local pid="$1"
    pid_is "$pid" epmd || return 1
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "-port $RMQ_EPMD_PORT "
}

_rabbitmq_stop_epmd() {
    local dir="$1" pid
    pid="$(read_pid "$dir/epmd.pid")"
    if _rabbitmq_is_our_epmd "$pid"; then
        kill "$pid" 2>/dev/null || true
        wait_pid_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/epmd.pid"
}

# What went wrong at boot: the node prints "BOOT FAILED" and the error term on stdout;
# its log has the [error] reports, followed by many lines of orderly shutdown.
_rabbitmq_show_logs() {
    local dir="$1"
    if grep -q 'BOOT FAILED' "$dir/log/stdout.log" 2>/dev/null; then
        log "from $dir/log/stdout.log:"
        sed -n '/BOOT FAILED/,$p' "$dir/log/stdout.log" | head -n 40 | sed 's/^/    /' >&2
    elif [[ -s "$dir/log/stdout.log" ]]; then
        log "last lines of $dir/log/stdout.log:"
        tail -n 20 "$dir/log/stdout.log" | sed 's/^/    /' >&2
    fi
    if grep -q '\[error\]' "$dir/log/rabbit.log" 2>/dev/null; then
        log "first errors in $dir/log/rabbit.log:"
        grep '\[error\]' "$dir/log/rabbit.log" | head -n 15 | cut -c1-300 | sed 's/^/    /' >&2
    fi
}

# Starts the node described by DIR/node.env and waits until it is ready.
_rabbitmq_launch() {
    local dir="$1" launcher waiter started sbin
    started="$(now_ms)"
    if tcp_is_open 127.0.0.1 "$RMQ_PORT"; then
        die "port 127.0.0.1:$RMQ_PORT is already in use; cannot start RabbitMQ from $dir there"
    fi
    _rabbitmq_start_epmd "$dir"
    # A stale pid file would make `rabbitmqctl wait` watch a dead process.
    rm -f "$dir/rabbitmq.pid"

    # setsid: the node gets its own session, so a Ctrl-C in the terminal reaches the
    # script (which stops the node cleanly) rather than the node.
    # setsid and env exec in turn, so $! is the pid of the rabbitmq-server shell,
    # which starts beam.smp and exits when it exits.
    _rabbitmq_env "$dir"
    sbin="$(_rabbitmq_sbin)"
    setsid env "${RMQ_ENV[@]}" "$sbin/rabbitmq-server" </dev/null >>"$dir/log/stdout.log" 2>&1 &
    launcher=$!
    echo "$launcher" >"$dir/launcher.pid"

    # The node writes its pid file while it boots, and `rabbitmqctl wait FILE` once
    # read it half-written and gave up at once (`garbage_in_pid_file`, 2 s into a
    # 60 s limit): wait here until the file names our beam.smp, then hand
    # rabbitmqctl the pid itself.
    local pid="" deadline=$((started + RABBITMQ_START_TIMEOUT * 1000))
    while pid_running "$launcher" && (($(now_ms) < deadline)); do
        pid="$(read_pid "$dir/rabbitmq.pid")"
        _rabbitmq_owns "$pid" beam.smp "$dir" && break
        pid=""
        sleep 0.1
    done
    # `wait` gives up only after its timeout even when the node died at once, so
    # watch the launcher alongside it.
    # Started with env (not a function) so that $! is the CLI process itself.
    local ready=false
    if [[ -n "$pid" ]]; then
        env "${RMQ_ENV[@]}" "$sbin/rabbitmqctl" -n "$RMQ_NODENAME" -q wait --pid "$pid" \
            --timeout "$(((deadline - $(now_ms)) / 1000 + 1))" >"$dir/log/wait.log" 2>&1 &
        waiter=$!
        while pid_running "$waiter"; do
            if ! pid_running "$launcher"; then
                kill "$waiter" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
        wait "$waiter" 2>/dev/null && ready=true
    else
        echo "the node wrote no pid file naming its beam.smp" >"$dir/log/wait.log"
    fi
    if ! $ready || ! _rabbitmq_node_alive "$dir"; then
        log "RabbitMQ node $RMQ_NODENAME (from $dir) did not come up (gave up after $(format_ms $(($(now_ms) - started))); limit ${RABBITMQ_START_TIMEOUT} s)"
        sed 's/^/    /' "$dir/log/wait.log" >&2 || true
        _rabbitmq_show_logs "$dir"
        _rabbitmq_kill_processes "$dir"
        _rabbitmq_stop_epmd "$dir"
        die "RabbitMQ failed to start (logs in $dir/log)"
    fi
    log "RabbitMQ $RMQ_NODENAME ready on 127.0.0.1:$RMQ_PORT (prometheus :$RMQ_PROMETHEUS_PORT, data in $dir) in $(format_ms $(($(now_ms) - started)))"
}

# SIGKILL the node and its launcher shell; wait until they are gone.
_rabbitmq_kill_processes() {
    local dir="$1" pid
    pid="$(read_pid "$dir/rabbitmq.pid")"
    if _rabbitmq_owns "$pid" beam.smp "$dir"; then
        kill -KILL "$pid" 2>/dev/null || true
        wait_pid_gone "$pid" 10 || log "beam.smp $pid is still there after SIGKILL"
    fi
    pid="$(read_pid "$dir/launcher.pid")"
    if _rabbitmq_owns "$pid" rabbitmq-server "$dir"; then
        # The launcher exits by itself once beam.smp is gone. If the node never wrote
        # its pid file (it hung while booting), kill the launcher's children too.
        if ! wait_pid_gone "$pid" 5; then
            pkill -KILL -P "$pid" 2>/dev/null || true
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$dir/rabbitmq.pid" "$dir/launcher.pid"
}

# rabbitmq_start DIR PORT — start a node of its own under DIR on 127.0.0.1:PORT.
rabbitmq_start() {
    local dir port ports
    dir="$(realpath -m "$1")"
    port="$2"
    [[ "$port" =~ ^[0-9]+$ ]] || die "rabbitmq_start: bad port '$port'"

    if [[ -f "$dir/node.env" ]]; then
        _rabbitmq_load "$dir"
        if _rabbitmq_node_alive "$dir"; then
            log "a RabbitMQ node from $dir ($RMQ_NODENAME) is still running; stopping it first"
        fi
        rabbitmq_stop "$dir"
    fi

    mkdir -p "$dir/home" "$dir/mnesia" "$dir/log"
    # The node's own ports: epmd, Erlang distribution, Prometheus. PORT may be a free
    # port that the caller has not bound yet, so never hand it out again here.
    mapfile -t ports < <(free_port 4 | grep -vx "$port" | head -n 3)
    RMQ_PORT="$port"
    # Node names only need to be unique per epmd, and each node has its own epmd;
    # the port in the name tells people which node they are looking at.
    RMQ_NODENAME="parley-$port@localhost"
    RMQ_EPMD_PORT="${RABBITMQ_EPMD_PORT:-${ports[0]}}"
    RMQ_DIST_PORT="${ports[1]}"
    RMQ_PROMETHEUS_PORT="${RABBITMQ_PROMETHEUS_PORT:-${ports[2]}}"
    cat >"$dir/node.env" <<EOF
RMQ_PORT=$RMQ_PORT
RMQ_NODENAME=$RMQ_NODENAME
RMQ_EPMD_PORT=$RMQ_EPMD_PORT
RMQ_DIST_PORT=$RMQ_DIST_PORT
RMQ_PROMETHEUS_PORT=$RMQ_PROMETHEUS_PORT
EOF
    _rabbitmq_write_config "$dir"
    _rabbitmq_write_cookie "$dir"
    if ! grep -q rabbitmq_prometheus "$dir/enabled_plugins" 2>/dev/null; then
        _rabbitmq_run "$dir" rabbitmq-plugins --offline -q enable rabbitmq_prometheus >/dev/null \
            || die "could not enable rabbitmq_prometheus in $dir"
    fi
    _rabbitmq_launch "$dir"
}

# rabbitmq_stop DIR — shut the node down (SIGTERM/SIGKILL if that fails) and stop
# its epmd. Does nothing when there is no node in DIR.
rabbitmq_stop() {
    local dir pid started
    dir="$(realpath -m "$1")"
    [[ -f "$dir/node.env" ]] || return 0
    _rabbitmq_load "$dir"
    started="$(now_ms)"
    pid="$(read_pid "$dir/rabbitmq.pid")"
    if _rabbitmq_owns "$pid" beam.smp "$dir"; then
        if ! _rabbitmq_run "$dir" rabbitmqctl -n "$RMQ_NODENAME" -q shutdown --timeout 30 \
            >>"$dir/log/stop.log" 2>&1; then
            log "rabbitmqctl shutdown failed for $RMQ_NODENAME; sending SIGTERM to $pid"
            kill -TERM "$pid" 2>/dev/null || true
            wait_pid_gone "$pid" 15 || log "$RMQ_NODENAME ignored SIGTERM; killing it"
        fi
        _rabbitmq_kill_processes "$dir"
        log "RabbitMQ $RMQ_NODENAME stopped in $(format_ms $(($(now_ms) - started)))"
    else
        _rabbitmq_kill_processes "$dir"
    fi
    # epmd outlives the node it served: stop it by its pid.
    _rabbitmq_stop_epmd "$dir"
}

# rabbitmq_kill DIR — SIGKILL the node (its epmd stays, as after a real crash).
rabbitmq_kill() {
    local dir
    dir="$(realpath -m "$1")"
    _rabbitmq_load "$dir"
    _rabbitmq_node_alive "$dir" || log "RabbitMQ $RMQ_NODENAME (from $dir) was not running"
    _rabbitmq_kill_processes "$dir"
    log "RabbitMQ $RMQ_NODENAME killed"
}

# rabbitmq_restart_after_kill DIR — start the node of DIR again with the ports and
# data it had.
rabbitmq_restart_after_kill() {
    local dir
    dir="$(realpath -m "$1")"
    _rabbitmq_load "$dir"
    if _rabbitmq_node_alive "$dir"; then
        log "RabbitMQ $RMQ_NODENAME (from $dir) is running already"
        return 0
    fi
    _rabbitmq_kill_processes "$dir"
    _rabbitmq_launch "$dir"
}

# Run as a command: bash scripts/lib/rabbitmq.sh start|stop|kill|restart-after-kill|ctl DIR ...
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    case "${1:-}" in
    start | stop | kill | restart-after-kill | ctl)
        cmd="rabbitmq_${1//-/_}"
        shift
        "$cmd" "$@"
        ;;
    *)
        echo "usage: $0 start DIR PORT | stop DIR | kill DIR | restart-after-kill DIR | ctl DIR ARGS..." >&2
        exit 2
        ;;
    esac
fi
