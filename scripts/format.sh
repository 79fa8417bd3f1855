#!/usr/bin/env bash
# The house's formatting (.swift-format, the Hummingbird repository's settings:
# 150 columns, 4 spaces, one argument per line when a call breaks).
#
#   bash scripts/format.sh            formats every Swift file in place
#   bash scripts/format.sh --check    changes nothing; fails on the first file that
#                                     is not formatted or breaks a lint rule (CI)
#
# swift-format comes with the Swift toolchain (`swift format`). The Fuzz/ sources
# that are links into Sources/ are formatted where they live.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

paths=(Package.swift Sources Tests Plugins Fuzz/Package.swift)
while IFS= read -r harness; do paths+=("$harness"); done < <(find Fuzz/Sources -name '*.swift' -type f | sort)

case "${1:-}" in
    --check)
        swift format lint --strict --recursive --parallel "${paths[@]}"
        echo "format.sh: every Swift file is formatted"
        ;;
    "")
        swift format format --in-place --recursive --parallel "${paths[@]}"
        ;;
    *)
        echo "usage: bash scripts/format.sh [--check]" >&2
        exit 2
        ;;
esac
