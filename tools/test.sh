#!/usr/bin/env bash
# The test command (README, .ci/run): installs what is missing, then runs every suite and fails if any failed.
#   1. The native build (the core at -O even in debug: see Package.swift) and the Embedded-Swift wasm build of the
#      core, so the core never drifts from what the browser needs.
#   2. node tests: the wasm module against every fixture and the native core, kedge.js in headless Chromium.
#   3. Swift tests: core units, kernels, converter, server, parity with real Keras / xgboost, the cascade.
#   4. The cascade viewer in headless Chromium behind `kedge serve`: result equals native, network privacy.
# Every suite runs even when an earlier one failed, so one run shows everything that is broken.
set -uo pipefail
cd "$(dirname "$0")/.."

bash tools/setup.sh || exit 1

echo "== swift build"
swift build --build-tests 2>&1 | tail -n 3
[ "${PIPESTATUS[0]}" = 0 ] || { echo "tools/test.sh: swift build failed"; exit 1; }

echo "== wasm build (Embedded Swift, wasm32, SIMD)"
bash wasm/build.sh || { echo "tools/test.sh: wasm build failed"; exit 1; }

failed=()
echo "== node tests (wasm module, kedge.js, Chromium)"
node --test web/test/ || failed+=("node tests")

echo "== swift tests"
swift test --skip-build || failed+=("swift tests")

if [ "${KEDGE_BROWSER_TESTS:-1}" = "1" ]; then
    echo "== cascade viewer in Chromium (kedge serve, privacy)"
    python3 tools/browser/test_cascade_page.py --kedge .build/debug/kedge --screenshots .build/browser \
        || failed+=("cascade page")
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "tools/test.sh: FAILED: ${failed[*]}"
    exit 1
fi
echo "tools/test.sh: all suites passed"
