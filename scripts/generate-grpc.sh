#!/usr/bin/env bash
# Regenerates Sources/ParleyGRPC from proto/ with protoc (Debian's protobuf-compiler)
# and the plugins of the packages Parley depends on (swift-protobuf's protoc-gen-swift,
# grpc-swift-protobuf's protoc-gen-grpc-swift-2), built here from the same versions.
# The generated code is committed: a build that ran the plugins would take minutes
# more on every clean build (docs/decisions.md, "gRPC").
#
#   bash scripts/generate-grpc.sh
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib/deps.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/deps.sh"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
ensure_debian_packages protobuf-compiler
log "building protoc-gen-swift and protoc-gen-grpc-swift-2"
swift build --product protoc-gen-swift
swift build --product protoc-gen-grpc-swift-2
bin="$(swift build --show-bin-path)"
out=Sources/ParleyGRPC
rm -f "$out"/*.pb.swift "$out"/*.grpc.swift
protoc --proto_path=proto \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --plugin=protoc-gen-grpc-swift="$bin/protoc-gen-grpc-swift-2" \
    --swift_out="$out" --swift_opt=Visibility=Public,FileNaming=DropPath \
    --grpc-swift_out="$out" --grpc-swift_opt=Visibility=Public,FileNaming=DropPath,Client=true,Server=true \
    proto/parley/v1/chat.proto
# Both plugins mark their files `swift-format-ignore-file`: format.sh leaves them as generated.
log "generated: $(cd "$out" && ls ./*.swift | tr '\n' ' ')"
