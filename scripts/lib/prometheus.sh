#!/usr/bin/env bash
# A Prometheus server (Debian's package) whose files all live under one directory,
# scraping a Parley system that runs on this machine.
#
#   prometheus_write_config FILE SELF GATEWAYS WORKERS RABBITMQ [INTERVAL]
#       write a configuration scraping the gateways and workers (comma-separated
#       HOST:PORT lists), RabbitMQ's Prometheus plugin at RABBITMQ (HOST:PORT, both
#       /metrics and /metrics/per-object) and Prometheus itself at SELF (HOST:PORT),
#       every INTERVAL (default 5s). The job names are those of prometheus.yml (compose), which the
#       Grafana dashboard relies on.
#   prometheus_start DIR PORT CONFIG   start Prometheus on 127.0.0.1:PORT with its data in
#                                      DIR and wait until it is ready
#   prometheus_stop DIR                stop it (SIGTERM, SIGKILL after 10 s)
#
# Source it, or run it: `bash scripts/lib/prometheus.sh start DIR PORT CONFIG`
# (write-config, start, stop).
#
# Layout of DIR: data/ (the time series), prometheus.log, prometheus.pid, port.
# Environment: PROMETHEUS_RETENTION (default 15d).

[[ -n "${_PARLEY_PROMETHEUS_SH:-}" ]] && return 0
_PARLEY_PROMETHEUS_SH=1

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PROMETHEUS_START_TIMEOUT=30
PROMETHEUS_STOP_TIMEOUT=10

# _prometheus_targets "a:1,b:2" — prints ["a:1", "b:2"] (a YAML flow sequence).
_prometheus_targets() {
    local list="$1" item out=""
    local -a items
    IFS=, read -r -a items <<<"$list"
    for item in "${items[@]}"; do
        [[ -n "$item" ]] || continue
        out+="${out:+, }\"$item\""
    done
    echo "[$out]"
}

# prometheus_write_config FILE SELF GATEWAYS WORKERS RABBITMQ [INTERVAL]
prometheus_write_config() {
    local file="$1" self="$2" gateways="$3" workers="$4" rabbitmq="$5" interval="${6:-5s}"
    [[ -n "$self" && -n "$gateways" && -n "$rabbitmq" ]] \
        || die "prometheus_write_config: the Prometheus, gateway and RabbitMQ targets are required"
    mkdir -p "$(dirname "$file")"
    cat >"$file" <<EOF
# Written by scripts/lib/prometheus.sh; rewritten at every start. The job names are
# those of prometheus.yml (compose), which grafana/dashboards/*.json rely on.
global:
  scrape_interval: $interval
  evaluation_interval: $interval

scrape_configs:
  - job_name: parley-gateway
    static_configs:
      - targets: $(_prometheus_targets "$gateways")

  - job_name: parley-worker
    static_configs:
      - targets: $(_prometheus_targets "$workers")

  - job_name: rabbitmq
    static_configs:
      - targets: $(_prometheus_targets "$rabbitmq")

  - job_name: rabbitmq-per-object
    metrics_path: /metrics/per-object
    static_configs:
      - targets: $(_prometheus_targets "$rabbitmq")

  - job_name: prometheus
    static_configs:
      - targets: ["$self"]
EOF
    if command -v promtool >/dev/null 2>&1; then
        promtool check config "$file" >/dev/null || die "promtool check config failed for $file"
    fi
}

# A live Prometheus process started for DIR (its command line names DIR/data).
_prometheus_owns() {
    local pid="$1" dir="$2"
    pid_is "$pid" prometheus || return 1
    tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "--storage.tsdb.path=$dir/data"
}

_prometheus_show_log() {
    local dir="$1"
    [[ -s "$dir/prometheus.log" ]] || return 0
    log "last lines of $dir/prometheus.log:"
    tail -n 20 "$dir/prometheus.log" | sed 's/^/    /' >&2
}

# prometheus_start DIR PORT CONFIG
prometheus_start() {
    local dir port config pid started deadline
    dir="$(realpath -m "$1")"
    port="$2"
    config="$(realpath -m "$3")"
    [[ "$port" =~ ^[0-9]+$ ]] || die "prometheus_start: bad port '$port'"
    [[ -f "$config" ]] || die "prometheus_start: no configuration at $config"
    command -v prometheus >/dev/null 2>&1 || die "prometheus is not installed (apt-get install --no-install-recommends prometheus)"
    started="$(now_ms)"
    mkdir -p "$dir/data"

    pid="$(read_pid "$dir/prometheus.pid")"
    if _prometheus_owns "$pid" "$dir"; then
        log "a Prometheus from $dir (pid $pid) is still running; stopping it first"
        prometheus_stop "$dir"
    fi
    if tcp_is_open 127.0.0.1 "$port"; then
        die "port 127.0.0.1:$port is already in use; cannot start Prometheus there (set PROMETHEUS_PORT)"
    fi

    # setsid: a Ctrl-C in the terminal reaches the script, which stops Prometheus in
    # order; setsid execs in place, so $! is Prometheus' own pid.
    {
        echo
        echo "=== $(date -u '+%Y-%m-%dT%H:%M:%SZ') starting prometheus on 127.0.0.1:$port"
    } >>"$dir/prometheus.log"
    setsid prometheus \
        --config.file="$config" \
        --storage.tsdb.path="$dir/data" \
        --storage.tsdb.retention.time="${PROMETHEUS_RETENTION:-15d}" \
        --web.listen-address="127.0.0.1:$port" \
        </dev/null >>"$dir/prometheus.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/prometheus.pid"
    echo "$port" >"$dir/port"

    deadline=$((SECONDS + PROMETHEUS_START_TIMEOUT))
    until [[ "$(http_status "http://127.0.0.1:$port/-/ready")" == 200 ]]; do
        if ! _prometheus_owns "$pid" "$dir"; then
            _prometheus_show_log "$dir"
            rm -f "$dir/prometheus.pid"
            die "Prometheus exited while starting (log: $dir/prometheus.log)"
        fi
        if ((SECONDS >= deadline)); then
            _prometheus_show_log "$dir"
            prometheus_stop "$dir"
            die "Prometheus was not ready within ${PROMETHEUS_START_TIMEOUT} s (log: $dir/prometheus.log)"
        fi
        sleep 0.2
    done
    log "Prometheus ready on http://127.0.0.1:$port (data in $dir/data) in $(format_ms $(($(now_ms) - started)))"
}

# prometheus_stop DIR — nothing happens when no Prometheus of DIR runs.
prometheus_stop() {
    local dir pid
    dir="$(realpath -m "$1")"
    pid="$(read_pid "$dir/prometheus.pid")"
    if _prometheus_owns "$pid" "$dir"; then
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_pid_gone "$pid" "$PROMETHEUS_STOP_TIMEOUT"; then
            log "Prometheus (pid $pid) did not stop within ${PROMETHEUS_STOP_TIMEOUT} s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            wait_pid_gone "$pid" 5 || true
        fi
        log "Prometheus from $dir stopped"
    fi
    rm -f "$dir/prometheus.pid"
}

# Run as a command: bash scripts/lib/prometheus.sh write-config|start|stop ...
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    case "${1:-}" in
    write-config | start | stop)
        cmd="prometheus_${1//-/_}"
        shift
        "$cmd" "$@"
        ;;
    *)
        echo "usage: $0 write-config FILE SELF GATEWAYS WORKERS RABBITMQ [INTERVAL] | start DIR PORT CONFIG | stop DIR" >&2
        exit 2
        ;;
    esac
fi
