#!/usr/bin/env bash
# Load run of `kedge serve` over loopback with wrk: a 4 MiB weights file (whole, and a 64 KiB range), and
# GET /api/models (identity and gzip). Bounded (each run -d${DURATION}), loopback only, stops by itself.
#
#   tools/bench/serve_load.sh                 build release kedge, run, print requests/s, p99 and errors
#   KEDGE_BIN=path/to/kedge DURATION=5s THREADS=2 CONNECTIONS=32 tools/bench/serve_load.sh
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-32}
PORT=${PORT:-18080}
LOG_LEVEL=${LOG_LEVEL:-warning}   # info writes one request log line per request (to a file here)
HOST=127.0.0.1

if ! command -v wrk >/dev/null 2>&1; then
    echo "serve_load: installing wrk"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null
fi

if [ -z "${KEDGE_BIN:-}" ]; then
    swift build -c release --product kedge 2>&1 | tail -n 1
    KEDGE_BIN=.build/release/kedge
fi

work=$(mktemp -d)
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A bundle folder served as it is (no converter involved): 4 MiB of float32 weights.
python3 - "$work/models/bench" <<'PY'
import json, os, sys
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
n = 1 << 20
with open(os.path.join(d, "model_weights.buf"), "wb") as f:
    f.write(os.urandom(4 * n))
layers = [{"class_name": "Dense", "config": {"name": f"dense_{i}", "units": 1024}} for i in range(4)]
json.dump({"class_name": "Sequential", "config": {"name": "bench", "layers": layers}}, open(os.path.join(d, "model.json"), "w"))
json.dump({"format": "kedge-bundle", "format_version": 1, "inputs": [{"name": "x", "shape": [None, 1024]}],
           "outputs": [{"name": "y", "shape": [None, 1024]}],
           "weights": [{"layer_name": f"dense_{i}", "weight_name": "kernel", "dtype": "float32", "shape": [512, 512],
                        "offset": i * n, "length": n, "quantization": None} for i in range(4)]},
          open(os.path.join(d, "model_metadata.json"), "w"))
PY

"$KEDGE_BIN" serve --models "$work/models" --web web --host "$HOST" --port "$PORT" --skip-wasm-build \
    --log-level "$LOG_LEVEL" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
    curl -fsS "http://$HOST:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fsS "http://$HOST:$PORT/healthz" >/dev/null || { cat "$work/server.log"; exit 1; }

weights=$(curl -fsS "http://$HOST:$PORT/api/models" |
    python3 -c 'import json,sys; m=[m for m in json.load(sys.stdin)["models"] if m["name"]=="bench"][0]; print(m["files"]["model_weights.buf"]["url"])')

run() { # label, extra wrk args..., url
    local label=$1; shift
    local out
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@")
    local rps p99 transfer non2xx sock
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    transfer=$(awk '/Transfer\/sec/ {print $2}' <<<"$out")
    non2xx=$(awk '/Non-2xx or 3xx/ {print $5}' <<<"$out")
    sock=$(awk '/Socket errors/ {print $4 $5 $6 $7 $8 $9 $10 $11}' <<<"$out")
    printf '| %-34s | %10s | %9s | %10s | %s |\n' "$label" "$rps" "$p99" "$transfer" "${non2xx:-0} non-2xx/3xx${sock:+, socket $sock}"
}

echo
echo "kedge serve (log level $LOG_LEVEL) under wrk -t$THREADS -c$CONNECTIONS -d$DURATION on $HOST ($(nproc) cores, shared with wrk; load before: $(cut -d" " -f1-3 /proc/loadavg))"
echo
echo "| request                            | requests/s |       p99 |   transfer | errors |"
echo "|------------------------------------|-----------:|----------:|-----------:|--------|"
run "weights 4 MiB (200)" "http://$HOST:$PORT$weights"
run "weights, Range 64 KiB (206)" -H "Range: bytes=0-65535" "http://$HOST:$PORT$weights"
run "weights, If-None-Match (304)" -H "If-None-Match: $(curl -fsSI "http://$HOST:$PORT$weights" | awk 'tolower($1)=="etag:" {print $2}' | tr -d '\r')" "http://$HOST:$PORT$weights"
run "/api/models (identity)" "http://$HOST:$PORT/api/models"
run "/api/models (gzip)" -H "Accept-Encoding: gzip" "http://$HOST:$PORT/api/models"
run "/healthz" "http://$HOST:$PORT/healthz"
echo
kill -TERM "$server_pid"
wait "$server_pid" && echo "server stopped gracefully on SIGTERM (exit 0)" || echo "server exit status $?"
server_pid=""
