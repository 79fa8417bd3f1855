#!/usr/bin/env bash
# Small helpers shared by the Parley scripts.
#
# Meant to be sourced by scripts that run under `set -euo pipefail`; sourcing it
# changes no shell option.

[[ -n "${_PARLEY_COMMON_SH:-}" ]] && return 0
_PARLEY_COMMON_SH=1

# log MESSAGE... — one line on stderr, so stdout stays free for values. It never fails:
# when stderr is gone (the reader of a pipe exited, e.g. `run.sh | tee` after Ctrl-C,
# or the terminal closed) the line is lost and the write error is not shown, so a
# script under `set -e` goes on, with its cleanup in particular. That only helps once
# SIGPIPE is ignored or trapped: by default the failed write kills the shell
# (run.sh and test.sh trap it).
log() {
    printf '[parley] %s\n' "$*" >&2 2>/dev/null || true
}

# die MESSAGE... — log an error and leave the script with status 1.
die() {
    log "ERROR: $*"
    exit 1
}

# free_port [COUNT] — print COUNT (default 1) distinct free TCP ports on 127.0.0.1,
# one per line. The kernel picks them; all sockets are held open until every port
# is known, so one call never hands out the same port twice.
free_port() {
    local count="${1:-1}"
    python3 - "$count" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
for s in socks:
    print(s.getsockname()[1])
for s in socks:
    s.close()
EOF
}

# tcp_is_open HOST PORT — true when something accepts TCP connections there.
tcp_is_open() {
    local host="$1" port="$2"
    # bash's /dev/tcp does the connect; `timeout` bounds a connect that hangs.
    # shellcheck disable=SC2016 # $1 and $2 are expanded by the inner bash
    timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$host" "$port" 2>/dev/null
}

# wait_for_tcp HOST PORT TIMEOUT_SECONDS — poll until the port accepts connections.
wait_for_tcp() {
    local host="$1" port="$2" timeout_s="$3"
    local deadline=$((SECONDS + timeout_s))
    until tcp_is_open "$host" "$port"; do
        if ((SECONDS >= deadline)); then
            log "nothing accepted connections on $host:$port within ${timeout_s} s"
            return 1
        fi
        sleep 0.2
    done
}

# http_status URL — print the HTTP status code of a GET (000 when nothing answered).
http_status() {
    local url="$1"
    if command -v curl >/dev/null 2>&1; then
        curl -s -o /dev/null --max-time 3 -w '%{http_code}' "$url" || true
    else
        python3 - "$url" <<'EOF'
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=3) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
    fi
}

# wait_for_http URL TIMEOUT_SECONDS — poll until a GET of URL answers 200.
wait_for_http() {
    local url="$1" timeout_s="$2"
    local deadline=$((SECONDS + timeout_s)) status
    while true; do
        status="$(http_status "$url")"
        [[ "$status" == 200 ]] && return 0
        if ((SECONDS >= deadline)); then
            log "$url did not answer 200 within ${timeout_s} s (last status: $status)"
            return 1
        fi
        sleep 0.3
    done
}

# pid_is PID NAME — true when process PID is alive and its command name is NAME.
# Checking the name guards against a pid that was reused by another program.
pid_is() {
    local pid="$1" name="$2" comm
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    comm="$(cat "/proc/$pid/comm" 2>/dev/null)" || return 1
    [[ "$comm" == "$name" ]]
}

# read_pid FILE — print the pid stored in FILE (nothing when the file is absent).
read_pid() {
    local file="$1"
    [[ -f "$file" ]] || return 0
    tr -dc '0-9' <"$file"
}

# wait_pid_gone PID TIMEOUT_SECONDS — poll until PID has exited; false on timeout.
wait_pid_gone() {
    local pid="$1" timeout_s="$2"
    local deadline=$((SECONDS + timeout_s))
    while pid_running "$pid"; do
        ((SECONDS >= deadline)) && return 1
        sleep 0.1
    done
    return 0
}

# pid_running PID — the process exists and has not exited. A zombie has exited
# already (only its parent's wait() is missing). One read of its state: checking
# existence and state separately races with the reaping of the process in between.
pid_running() {
    local state
    state="$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)" || return 1
    [[ -n "$state" && "$state" != Z ]]
}

# now_ms — milliseconds since the epoch (bash 5's EPOCHREALTIME, no fork).
now_ms() {
    local t="${EPOCHREALTIME/[.,]/}"
    echo $((t / 1000))
}

# format_ms MILLISECONDS — "12.3 s".
format_ms() {
    local ms="$1"
    printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100))
}
