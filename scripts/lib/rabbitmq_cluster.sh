#!/usr/bin/env bash
# A RabbitMQ cluster of N nodes on this machine (rabbitmq.sh's nodes, one directory
# each), for tests and for the run command (RABBITMQ_NODES=3): one epmd, one Erlang
# cookie, nodes 2..N joined to node 1 with join_cluster.
#
#   rabbitmq_cluster_start DIR N PORT...   N nodes under DIR/node1..N on 127.0.0.1:PORT...
#   rabbitmq_cluster_stop DIR              stop every node (node 1, which holds epmd, last)
#   rabbitmq_cluster_urls DIR              the nodes' AMQP URLs, comma-separated (AMQP_URL)
#
# Source it, or run it: `bash scripts/lib/rabbitmq_cluster.sh start DIR 3 5672 5673 5674`.
# A node of the cluster is killed and restarted with rabbitmq.sh as any node is:
# `bash scripts/lib/rabbitmq.sh kill DIR/node2`, `... restart-after-kill DIR/node2`.

[[ -n "${_PARLEY_RABBITMQ_CLUSTER_SH:-}" ]] && return 0
_PARLEY_RABBITMQ_CLUSTER_SH=1

# shellcheck source-path=SCRIPTDIR source=rabbitmq.sh
source "$(dirname "${BASH_SOURCE[0]}")/rabbitmq.sh"

rabbitmq_cluster_start() {
    local dir count i started epmd first
    dir="$(realpath -m "$1")"
    count="$2"
    shift 2
    [[ "$count" =~ ^[0-9]+$ ]] && ((count >= 1 && $# == count)) || die "rabbitmq_cluster_start: give N and N ports"
    local ports=("$@")
    started="$(now_ms)"
    mkdir -p "$dir"
    rabbitmq_cluster_stop "$dir"
    epmd="$(free_port 1)"
    # One cookie for all: the nodes and the CLI authenticate to each other with it.
    for ((i = 1; i <= count; i++)); do
        mkdir -p "$dir/node$i/home"
    done
    _rabbitmq_write_cookie "$dir/node1"
    for ((i = 2; i <= count; i++)); do
        if ! cmp -s "$dir/node1/home/.erlang.cookie" "$dir/node$i/home/.erlang.cookie" 2>/dev/null; then
            rm -f "$dir/node$i/home/.erlang.cookie"
            cp "$dir/node1/home/.erlang.cookie" "$dir/node$i/home/.erlang.cookie"
            chmod 400 "$dir/node$i/home/.erlang.cookie"
        fi
    done
    for ((i = 1; i <= count; i++)); do
        # Node 1 keeps RABBITMQ_PROMETHEUS_PORT (what a local Prometheus scrapes); the
        # others take free ports.
        local metrics=""
        ((i == 1)) && metrics="${RABBITMQ_PROMETHEUS_PORT:-}"
        RABBITMQ_EPMD_PORT="$epmd" RABBITMQ_PROMETHEUS_PORT="$metrics" rabbitmq_start "$dir/node$i" "${ports[i - 1]}"
    done
    _rabbitmq_load "$dir/node1"
    first="$RMQ_NODENAME"
    for ((i = 2; i <= count; i++)); do
        if rabbitmq_ctl "$dir/node$i" -q cluster_status --formatter json 2>/dev/null | grep -qF "\"$first\""; then
            continue # joined in an earlier run (same data)
        fi
        # The CLI reports the stopped app's tables as errors while it joins: into the log.
        local joined="$dir/node$i/log/join.log"
        rabbitmq_ctl "$dir/node$i" -q stop_app >>"$joined" 2>&1
        rabbitmq_ctl "$dir/node$i" -q join_cluster "$first" >>"$joined" 2>&1 || die "node $i of $dir could not join $first (log: $joined)"
        rabbitmq_ctl "$dir/node$i" -q start_app >>"$joined" 2>&1
    done
    printf '%s\n' "${ports[@]}" >"$dir/ports"
    log "RabbitMQ cluster of $count nodes ready ($(rabbitmq_cluster_urls "$dir")) in $(format_ms $(($(now_ms) - started)))"
}

rabbitmq_cluster_stop() {
    local dir i count
    dir="$(realpath -m "$1")"
    count="$(find "$dir" -maxdepth 1 -name 'node*' -type d 2>/dev/null | wc -l)"
    for ((i = count; i >= 1; i--)); do
        rabbitmq_stop "$dir/node$i"
    done
}

rabbitmq_cluster_urls() {
    local dir port urls=()
    dir="$(realpath -m "$1")"
    while read -r port; do
        urls+=("amqp://guest:guest@127.0.0.1:$port/%2f")
    done <"$dir/ports"
    (IFS=,; echo "${urls[*]}")
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    set -euo pipefail
    case "${1:-}" in
        start) shift; rabbitmq_cluster_start "$@" ;;
        stop) rabbitmq_cluster_stop "$2" ;;
        urls) rabbitmq_cluster_urls "$2" ;;
        *) die "usage: $0 start DIR N PORT... | stop DIR | urls DIR" ;;
    esac
fi
