#!/usr/bin/env bash
# Gateway throughput and latency with wrk on loopback, batching off vs on, in one run.
#
#   bench/gateway.sh [BUILD_DIR] [SECONDS]     (defaults: build, 5)
#
# Models: a CNN (VNN-COMP resnet_2b, CIFAR-10, rewritten by tools/rebatch.py to a symbolic
# batch dim so that requests can be batched; the weights are untouched) and an encoder of
# all-MiniLM-L6-v2's shape (tools/make_minilm.py, seeded random weights, the real
# tokenizer) on a 12-token sentence. For each model, batching off (max_batch 1) and on (max_batch 32, 2 ms
# queue delay), at concurrency 1, 16 and 64: requests/s, p50, p99. Then
# /v1/policy/decide at concurrency 64 (the extras helper's handler; target >= 30k req/s with
# p99 < 5 ms on 2 cores). Each gateway has 1 engine thread and 1 batch worker; wrk runs one
# thread. Everything shares the machine's cores, so compare rows of one run, not runs of
# different machines. REPS=N (default 2) sets the repetitions per row.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-$ROOT/build}
DUR=${2:-5}
BIN=$BUILD/tandem
SHARED=${TDM_SHARED_DIR:-$ROOT/../shared}
PY=/usr/bin/python3
command -v wrk >/dev/null || { echo "wrk is not installed (scripts/install-deps.sh)"; exit 1; }
[ -x "$BIN" ] || { echo "no $BIN: build first"; exit 1; }

T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT

R=$T/repo
mkdir -p "$R/cnn/1" "$R/minilm/1"
$PY "$ROOT/tools/rebatch.py" "$SHARED/models/vnncomp/resnet_2b.onnx" "$R/cnn/1/model.onnx" N \
    >/dev/null
printf 'task: classify\n' > "$R/cnn/1/model.yaml"
# all-MiniLM-L6-v2's shape with seeded random weights (tools/make_minilm.py, cached in
# MODELS like tools/make_models.sh does) and its real tokenizer
MODELS=${TDM_MODELS_DIR:-$ROOT/build/models}
mkdir -p "$MODELS"
if [ ! -s "$MODELS/minilm.onnx" ]; then
    $PY "$ROOT/tools/make_minilm.py" "$MODELS/minilm.onnx.tmp" --seed 0 >/dev/null
    mv "$MODELS/minilm.onnx.tmp" "$MODELS/minilm.onnx"
fi
ln -s "$MODELS/minilm.onnx" "$R/minilm/1/model.onnx"
printf 'task: embed\ninput: text\nmax_seq_len: 128\ntokenizer: %s\n' \
    "$SHARED/tokenizers/all-MiniLM-L6-v2" > "$R/minilm/1/model.yaml"

# request bodies
$PY - "$T" <<'EOF'
import base64, io, json, sys
import numpy as np
t = sys.argv[1]
x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
b = io.BytesIO()
np.save(b, x)
json.dump({"model": "cnn", "input": base64.b64encode(b.getvalue()).decode()}, open(t + "/cnn.json", "w"))
json.dump({"model": "minilm", "text": "the gateway batches requests from many edge devices"},
          open(t + "/minilm.json", "w"))
json.dump({"confidence": 0.5, "rtt_ms": 5, "deadline_ms": 100, "local_ms": 30, "cloud_ms": 4,
           "upload_bytes": 20000, "bandwidth_mbps": 50, "cloud_load": 0.2}, open(t + "/policy.json", "w"))
EOF
cat > "$T/post.lua" <<'EOF'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("BODY"), "rb")
wrk.body = f:read("*a")
f:close()
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %.3f %.3f %.3f %d\n", summary.requests,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.duration / 1e6,
    e.status + e.connect + e.read + e.write + e.timeout))
end
EOF

# every request of a row carries the same input: the response cache is off, or it would
# answer them all from memory
printf 'auth: none\ncache:\n  max_bytes: 0\n' > "$T/gw.yaml"
# start NAME FLAGS...: a gateway whose port lands in $T/NAME.port
declare -A PIDS
start() {
    local name=$1
    shift
    rm -f "$T/$name.port"
    "$BIN" serve --config "$T/gw.yaml" --model-repo "$R" --port 0 --port-file "$T/$name.port" --log-requests false \
        --engine-threads 1 --workers 1 --max-concurrent 1024 --max-queue 4096 \
        --default-deadline-ms 60000 "$@" 2> "$T/$name.log" &
    PIDS[$name]=$!
    for _ in $(seq 200); do [ -s "$T/$name.port" ] && break; sleep 0.05; done
    [ -s "$T/$name.port" ] || { cat "$T/$name.log"; exit 1; }
}
stop_all() {
    for n in "${!PIDS[@]}"; do
        kill "${PIDS[$n]}" 2>/dev/null
        wait "${PIDS[$n]}" 2>/dev/null || true
    done
    PIDS=()
}
trap 'stop_all; rm -rf "$T"' EXIT
# run NAME PATH BODY CONC -> "req/s p50 p99 errors" (after a one-second warm-up)
run() {
    local url=http://127.0.0.1:$(cat "$T/$1.port")$2
    BODY=$3 wrk -t1 -c"$4" -d1s -s "$T/post.lua" "$url" >/dev/null
    BODY=$3 wrk -t1 -c"$4" -d"${DUR}s" --timeout 10s -s "$T/post.lua" "$url" > "$T/wrk.out"
    awk '/^RESULT/ { printf "%.0f %.2f %.2f %d\n", $2 / $5, $3, $4, $6 }' "$T/wrk.out"
}

# Both gateways run at once and are measured alternately (off, on, off, on ...) so that
# load from elsewhere on the machine hits both alike; each row is the better of REPS runs
# (interference only ever slows a run down).
REPS=${REPS:-2}
start off --batching false
start on --batching true --max-batch 32 --max-queue-delay-ms 2 --adaptive false
echo "| model | batching | concurrency | req/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---:|---:|---:|---:|"
declare -A RPS P99 ROW
for model in cnn minilm; do
    for c in 1 16 64; do
        for rep in $(seq "$REPS"); do
            for mode in off on; do
                read -r rps p50 p99 errs < <(run $mode /v1/infer "$T/$model.json" "$c")
                k=$model/$mode/$c
                if [ -z "${RPS[$k]:-}" ] || [ "$rps" -gt "${RPS[$k]}" ]; then
                    RPS[$k]=$rps
                    P99[$k]=$p99
                    ROW[$k]="| $model | $mode | $c | $rps | $p50 | $p99 | $errs |"
                fi
            done
        done
        echo "${ROW[$model/off/$c]}"
        echo "${ROW[$model/on/$c]}"
    done
done
read -r prps pp50 pp99 perrs < <(run off /v1/policy/decide "$T/policy.json" 64)
stop_all
echo "| policy/decide | - | 64 | $prps | $pp50 | $pp99 | $perrs |"
echo
for model in cnn minilm; do
    awk -v m=$model -v on="${RPS[$model/on/64]}" -v off="${RPS[$model/off/64]}" \
        -v p99="${P99[$model/on/64]}" -v p1="${P99[$model/off/1]}" 'BEGIN {
        printf "%s: batching at c=64 gives %.2fx the throughput of no batching; p99 %.2f ms = %.2fx the single-request p99 (%.2f ms)\n",
            m, on / off, p99, p99 / p1, p1 }'
done
