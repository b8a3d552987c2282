#!/usr/bin/env bash
# Builds and runs the kernel benchmark (release, single thread):
#   bash tools/bench/kernels.sh            # default build (SSE2 natively: the 6x8 micro-kernel)
#   bash tools/bench/kernels.sh fma        # -mavx2 -mfma -DKEDGE_FMA (the 6x16 FMA micro-kernel)
set -euo pipefail
cd "$(dirname "$0")/../.."
flags=()
if [ "${1:-}" = fma ]; then flags=(-Xcc -mavx2 -Xcc -mfma -DKEDGE_FMA); shift; fi
out=.build/kernels-bench
mkdir -p .build
# Compile a snapshot, so that edits made meanwhile by others do not abort the build.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cp -r Sources/KedgeCore "$src/"
swiftc -O -wmo -swift-version 5 -enable-experimental-feature Extern -module-name KedgeCore "${flags[@]}" \
    $(find "$src/KedgeCore" -name '*.swift') tools/bench/kernels/main.swift -o "$out" -lm
"$out" "$@"
