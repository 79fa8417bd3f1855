#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# The benchmark: builds release, starts throwaway servers (one pair on tmpfs, one on
# disk), runs the standard scenarios with parley-load and writes the figures to
# docs/performance.md, the plots and JSON results to docs/performance/.
#
#   bash scripts/bench.sh                       every scenario (A–E), ~25 minutes
#   BENCH_ONLY=A,D bash scripts/bench.sh        some of them
#   BENCH_QUICK=1 bash scripts/bench.sh         short runs, to try the script
#   BENCH_BASELINE=v0.10.0 bash scripts/bench.sh   scenario A also on that tag or commit
#                                                (default: the newest tag before HEAD, else
#                                                f1dd409 = v0.10.0; BENCH_BASELINE=none skips it)
#   bash scripts/bench.sh first-delta           the older first-delta benchmark only
#   BENCH_SCRATCH=.build-release bash scripts/bench.sh   build in that folder (keeps a
#                                                release build apart from .build's debug one)
#
# Prints figures and asserts nothing: a benchmark, not a test.
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPTS_DIR")"
# shellcheck source=lib/load.sh
source "$SCRIPTS_DIR/lib/load.sh"

cd "$REPO_ROOT"
ensure_system_packages
ensure_python_websockets
ensure_python_matplotlib
build=(swift build -c release)
[[ -z "${BENCH_SCRATCH:-}" ]] || build+=(--scratch-path "$BENCH_SCRATCH")
"${build[@]}"
PARLEY_BIN_DIR="$("${build[@]}" --show-bin-path)"
export PARLEY_BIN_DIR

# The same scenario on an earlier build, so that a regression shows as a ratio. It is
# built once per commit in .build-baseline/<commit> (a git worktree and its packages).
build_baseline() {
    local wanted="${BENCH_BASELINE:-}" commit tree
    if [[ -z "$wanted" ]]; then
        wanted="$(git describe --tags --abbrev=0 HEAD^ 2>/dev/null || true)"
        # Tags do not travel with every clone (a checkout of main alone has none):
        # then the release issue 11 was measured against.
        [[ -n "$wanted" ]] || { wanted=f1dd409; log "no tag before HEAD: the baseline is $wanted (v0.10.0)"; }
    fi
    [[ "$wanted" != none ]] || return 0
    commit="$(git rev-parse --short "$wanted^{commit}")" || die "BENCH_BASELINE=$wanted is not a tag or commit here"
    tree="$REPO_ROOT/.build-baseline/$commit"
    if [[ ! -d "$tree" ]]; then
        log "baseline: a worktree of $wanted ($commit) in $tree"
        git worktree add --detach "$tree" "$commit" >/dev/null
    fi
    log "baseline: building $wanted ($commit), release (the first time takes minutes)"
    (cd "$tree" && swift build -c release --product parley-gateway && swift build -c release --product parley-worker &&
        swift build -c release --product parley-llm-sim) >"$tree.build.log" 2>&1 ||
        die "the baseline's build failed: $tree.build.log"
    PARLEY_BENCH_BASELINE_BIN_DIR="$(cd "$tree" && swift build -c release --show-bin-path)"
    export PARLEY_BENCH_BASELINE_BIN_DIR
    export PARLEY_BENCH_BASELINE_NAME="$wanted ($commit)"
}

# A second RabbitMQ and PostgreSQL with their data on disk and PostgreSQL durable
# (fsync on): scenario A shows what the fsyncs cost.
DISK_DIR=""
disk_servers_start() {
    local ports
    DISK_DIR="$(mktemp -d /var/tmp/parley-bench-disk.XXXXXX)"
    mapfile -t ports < <(free_port 2)
    postgres_start "$DISK_DIR/postgres" "${ports[1]}" durable
    rabbitmq_start "$DISK_DIR/rabbitmq" "${ports[0]}"
    export PARLEY_BENCH_DISK_AMQP_URL="amqp://guest:guest@127.0.0.1:${ports[0]}/%2f"
    export PARLEY_BENCH_DISK_DATABASE_URL="postgres://parley:parley@127.0.0.1:${ports[1]}/parley"
}
disk_servers_stop() {
    [[ -n "$DISK_DIR" ]] || return 0
    postgres_stop "$DISK_DIR/postgres"
    rabbitmq_stop "$DISK_DIR/rabbitmq"
    rm -rf "$DISK_DIR"
    DISK_DIR=""
}

# The servers are stopped whatever ends the script: Ctrl-C also kills the reader of a
# pipe (`bench.sh | tee`), so writes to it are ignored from then on, not fatal.
stop_servers() {
    set +e
    trap '' INT TERM HUP PIPE
    disk_servers_stop
    throwaway_servers_stop
}
trap stop_servers EXIT
trap 'trap "" INT TERM HUP PIPE; exit 130' INT
trap 'trap "" INT TERM HUP PIPE; exit 143' TERM
trap 'trap "" INT TERM HUP PIPE; exit 129' HUP
trap 'trap "" INT TERM HUP PIPE; exit 141' PIPE

if [[ "${1:-}" == first-delta ]]; then
    throwaway_servers_start
    log "benchmark: first delta latency and broker messages per reply (release build)"
    python3 Tests/bench/first_delta.py
    exit 0
fi

only="${BENCH_ONLY:-A,B,C,D,E}"
if [[ ",$only," == *,A,* ]]; then
    build_baseline
    disk_servers_start
fi
throwaway_servers_start
# 10,000 sockets and 1,000 clients need more descriptors than a shell's default.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
arguments=(--only "$only")
[[ -z "${BENCH_QUICK:-}" ]] || arguments+=(--quick)
python3 Tests/bench/scenarios.py "${arguments[@]}"
