#!/usr/bin/env bash
# Steps of a long script (scripts/test.sh, scripts/faults.sh): each timed and named,
# long commands in process groups of their own, and one cleanup however the script
# ends — a failure, Ctrl-C, SIGTERM, or the reader of its output going away.
#
#   STEPS_NAME=test.sh            the script's name in the last line
#   STEPS_CHILD_GRACE=10          seconds a child group gets between TERM and KILL
#   steps_cleanup_hook            a function the script may define: stop what it
#                                 started (default: the throwaway servers, if any)
#   steps_install_traps           once, before the first step
#
# Meant to be sourced by scripts that run under `set -euo pipefail`.

[[ -n "${_PARLEY_STEPS_SH:-}" ]] && return 0
_PARLEY_STEPS_SH=1

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

STEPS_NAME="${STEPS_NAME:-$(basename "$0")}"
STEPS_CHILD_GRACE="${STEPS_CHILD_GRACE:-10}"
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

# On INT/TERM/PIPE: stop the running child's process group (TERM, then KILL after
# STEPS_CHILD_GRACE s), then exit; the EXIT trap does the rest.
steps_on_signal() {
    local status="$1"
    trap '' PIPE
    if [[ -n "$CHILD_PID" ]]; then
        log "stopping the running step (process group $CHILD_PID)"
        kill -TERM -- "-$CHILD_PID" 2>/dev/null || true
        wait_pid_gone "$CHILD_PID" "$STEPS_CHILD_GRACE" || kill -KILL -- "-$CHILD_PID" 2>/dev/null || true
    fi
    exit "$status"
}

# Runs the script's cleanup once, whatever ended the script.
steps_cleanup() {
    [[ -n "$CLEANED_UP" ]] && return 0
    CLEANED_UP=1
    set +e
    # Finish stopping the servers even if another signal comes, or the reader of our
    # output went away (`… | head`): a write must not kill us now.
    trap '' INT TERM PIPE
    if declare -F steps_cleanup_hook >/dev/null; then
        steps_cleanup_hook
    elif declare -F throwaway_servers_stop >/dev/null; then
        throwaway_servers_stop  # the servers scripts/lib/throwaway.sh started, if any
    fi
}

steps_on_exit() {
    local status=$?
    steps_cleanup
    local elapsed
    elapsed="$(format_ms $(($(now_ms) - RUN_STARTED)))"
    if ((status == 0)); then
        log "$STEPS_NAME: all steps passed ($elapsed)"
    elif ((status == 130 || status == 143)); then
        log "$STEPS_NAME: INTERRUPTED in step '${CURRENT_STEP:-(between steps)}' ($elapsed)"
    else
        log "$STEPS_NAME: FAILED in step '${CURRENT_STEP:-(between steps)}' with exit status $status ($elapsed)"
    fi
    exit "$status"
}

steps_install_traps() {
    trap steps_on_exit EXIT
    trap 'steps_on_signal 130' INT
    trap 'steps_on_signal 143' TERM
    trap 'steps_on_signal 141' PIPE  # the reader of our output went away (e.g. | head)
}
