#!/usr/bin/env bash
# Installs the system packages Kedge builds and tests with, only those that are missing (idempotent).
# Debian 12: libhdf5 for the converter, wasi-libc + wabt + compiler-rt for the wasm build,
# Chromium + chromedriver for the browser tests.
set -euo pipefail

need=()
for pkg in pkg-config libhdf5-dev zlib1g-dev wasi-libc wabt libclang-rt-dev-wasm32 ${KEDGE_EXTRA_APT:-}; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ "${KEDGE_BROWSER_TESTS:-1}" = "1" ]; then
    for pkg in chromium chromium-driver; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
fi
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ "${KEDGE_BROWSER_TESTS:-1}" = "1" ]; then
    python3 -c "import selenium" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check "selenium>=4.15"
    # The DICOM tests write series with pydicom and use the real CT slice it ships (CT_small.dcm).
    python3 -c "import pydicom" 2>/dev/null || python3 -m pip install -q --disable-pip-version-check pydicom
fi
