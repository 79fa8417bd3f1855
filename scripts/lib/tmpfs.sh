#!/usr/bin/env bash
# A state directory in memory when possible: quorum queues and PostgreSQL fsync before
# they answer, and on this machine's disk an fsync takes 0.1-6 ms, so tests that put
# their servers' data on tmpfs run faster and more evenly.
#
#   make_state_dir PATH      create PATH; mount a 2 GiB tmpfs there when we can
#   release_state_dir PATH   unmount it (if mounted) and remove it
#
# Meant to be sourced by scripts that run under `set -euo pipefail`.

[[ -n "${_PARLEY_TMPFS_SH:-}" ]] && return 0
_PARLEY_TMPFS_SH=1

# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PARLEY_TMPFS_SIZE="${PARLEY_TMPFS_SIZE:-2g}"

make_state_dir() {
    local path="$1"
    mkdir -p "$path"
    if mountpoint -q "$path"; then
        log "$path is a mount point already; using it as it is"
        return 0
    fi
    # Mounting needs root (CAP_SYS_ADMIN); mode 0755 lets the postgres user in.
    if [[ $EUID -eq 0 ]] &&
        mount -t tmpfs -o "size=$PARLEY_TMPFS_SIZE,mode=0755" tmpfs "$path" 2>/dev/null; then
        log "state directory $path is a tmpfs ($PARLEY_TMPFS_SIZE)"
    else
        log "could not mount a tmpfs on $path; keeping the state on disk (slower fsyncs)"
    fi
}

release_state_dir() {
    local path="$1"
    [[ -n "$path" && "$path" != / ]] || die "release_state_dir: refusing to remove '$path'"
    [[ -d "$path" ]] || return 0
    if mountpoint -q "$path"; then
        # A process still holding a file there makes umount fail; detach it lazily then.
        umount "$path" 2>/dev/null || umount -l "$path" ||
            log "could not unmount $path"
    fi
    # --one-file-system: never follow into a mount that is still there.
    rm -rf --one-file-system "$path"
}
