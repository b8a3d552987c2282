#!/usr/bin/env bash
# The main job: install what is missing, build Kedge in release mode, and start the demo server with the
# bundled lung-CT cascade on http://127.0.0.1:8080 (arguments are passed to `kedge serve`).
set -euo pipefail
cd "$(dirname "$0")/.."
KEDGE_BROWSER_TESTS=0 bash tools/setup.sh
swift build -c release --product kedge 2>&1 | tail -n 2
exec .build/release/kedge serve "$@"
