#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, then runs every suite.
#   1. Swift tests: core units, kernels vs references, converter, parity with real Keras (Tests/Fixtures).
#   2. The Embedded-Swift wasm build of the core (so it never drifts from what the browser needs).
#   3. node tests: the wasm module against the same fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh

echo "== swift build"
swift build --build-tests 2>&1 | tail -n 3

echo "== wasm build (Embedded Swift, wasm32, SIMD)"
bash wasm/build.sh

echo "== node tests (wasm module)"
if [ -d web/test ]; then
    node --test web/test/
fi

echo "== swift tests"
swift test --skip-build
