#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Fuzzing (issue 9; docs/fuzzing.md).
#
#   bash scripts/fuzz.sh                 libFuzzer, 300 s per target, then the stack
#                                        fuzzers with 100,000 WebSocket frames and 200
#                                        schemathesis examples per REST operation;
#                                        writes the libFuzzer figures to docs/fuzzing.md
#   bash scripts/fuzz.sh --quick         libFuzzer, 20 s per target (what CI runs)
#   bash scripts/fuzz.sh --seconds N     libFuzzer, N s per target, nothing else
#   FUZZ_TARGETS="FuzzJWT FuzzSSE" ...   only these targets
#
# The libFuzzer targets (Fuzz/, a package of its own) are built in release with
# AddressSanitizer; a finding's input lands in .state/fuzz/findings/ and the script
# fails. The corpus grows in .state/fuzz/<target>/ from run to run.
set -euo pipefail

SCRIPTS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(dirname "$SCRIPTS_DIR")"
# shellcheck source=lib/load.sh
source "$SCRIPTS_DIR/lib/load.sh"
# shellcheck source=lib/steps.sh
source "$SCRIPTS_DIR/lib/steps.sh"

steps_install_traps

# `--sanitize=fuzzer --sanitize=address` would be the usual spelling, but with it the
# Swift driver hands the compiler only the last sanitizer: the Swift code then had no
# coverage instrumentation and libFuzzer mutated blind (seen: "cov: 0" on three of
# the four targets). One combined -sanitize for swiftc fixes it; --sanitize=fuzzer
# stays for SwiftPM's link step (libFuzzer's main instead of the target's).
# shellcheck disable=SC2054 # the comma belongs to -sanitize=fuzzer,address
FUZZ_BUILD_FLAGS=(--package-path "$REPO_ROOT/Fuzz" -c release --sanitize=fuzzer -Xswiftc -sanitize=fuzzer,address)

build_fuzzers() {
    run_child swift build "${FUZZ_BUILD_FLAGS[@]}"
}

run_libfuzzer() {
    local seconds="$1"
    shift
    local bin_dir
    bin_dir="$(swift build "${FUZZ_BUILD_FLAGS[@]}" --show-bin-path)"
    # shellcheck disable=SC2086 # FUZZ_TARGETS is a list
    run_child env PYTHONDONTWRITEBYTECODE=1 python3 Tests/fuzz/run_libfuzzer.py --bin-dir "$bin_dir" --seconds "$seconds" \
        --targets ${FUZZ_TARGETS:-FuzzFrames FuzzSSE FuzzJWT FuzzRetryHints FuzzWebhook} "$@"
}

stack_fuzzers() {
    run_step "install Python websockets" ensure_python_websockets
    run_step "install Python cryptography" ensure_python_cryptography
    run_step "install schemathesis" ensure_python_package schemathesis
    run_step "swift build" run_child swift build
    PARLEY_BIN_DIR="$(swift build --show-bin-path)"
    export PARLEY_BIN_DIR
    run_step "start RabbitMQ and PostgreSQL" throwaway_servers_start
    run_step "WebSocket and REST fuzzers" run_child env FUZZ_FRAMES="${FUZZ_FRAMES:-100000}" FUZZ_REST_EXAMPLES="${FUZZ_REST_EXAMPLES:-200}" \
        python3 Tests/e2e/run_e2e.py -q -s -k "fuzz_frames or fuzz_rest"
}

main() {
    cd "$REPO_ROOT"
    local mode=full seconds=300
    case "${1:-}" in
        --quick) mode=quick seconds=20 ;;
        --seconds) mode=seconds seconds="${2:?--seconds needs a number}" ;;
        "") ;;
        *) die "unknown argument $1 (use --quick or --seconds N)" ;;
    esac
    run_step "build the fuzz targets (release, ASan)" build_fuzzers
    if [[ "$mode" == full ]]; then
        run_step "libFuzzer, $seconds s per target" run_libfuzzer "$seconds" --write-docs
        stack_fuzzers
    else
        run_step "libFuzzer, $seconds s per target" run_libfuzzer "$seconds"
    fi
}

main "$@"
