#!/usr/bin/env bash
# The gateway as a process: `tandem serve` on a free loopback port over a temp model
# registry (a CIFAR ResNet with a cut written by `tandem split`, and the BERT-shaped
# encoder), exercised with curl. Every malformed input class gets its documented 4xx and
# the gateway keeps serving; an idempotent replay returns the stored answer; SIGTERM with
# requests in flight answers every one of them, refuses new connections, and exits 0.
# (Real cut activations through /v1/features are checked in tests/cloud/test_gateway.c,
# which encodes them with the codec in-process.)
set -u
BIN=${TDM_BIN:?TDM_BIN must point at the tandem binary}
SHARED=${TDM_SHARED_DIR:-$(dirname "$0")/../../../shared}
VNN=$SHARED/models/vnncomp
BERT=$SHARED/models/bert-tiny
for f in "$VNN/resnet_2b.onnx" "$BERT/onnx/model.onnx" "$BERT/vocab.txt"; do
    [ -e "$f" ] || { echo "SKIP: $f is absent (see ../shared/README.md)"; exit 77; }
done
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }

T=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

# ---- the registry -------------------------------------------------------------------
R=$T/repo
mkdir -p "$R/resnet/1" "$R/bert/1"
ln -s "$VNN/resnet_2b.onnx" "$R/resnet/1/model.onnx"
printf 'task: classify\nlabels: [airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck]\n' \
    > "$R/resnet/1/model.yaml"
if "$BIN" split --help >/dev/null 2>&1; then
    # (leak checks belong to split's own tests; here it only prepares the registry)
    ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0 \
        "$BIN" split "$VNN/resnet_2b.onnx" --cut 1 --out "$R/resnet/1/c1" >/dev/null ||
        fail "tandem split"
else
    mkdir -p "$R/resnet/1/c1"
    echo '{"cut": [{"name": "18", "shape": [1,8,16,16]}, {"name": "20", "shape": [1,16,8,8]}]}' \
        > "$R/resnet/1/c1/manifest.json"
fi
ln -s "$BERT/onnx/model.onnx" "$R/bert/1/model.onnx"
ln -s "$BERT/vocab.txt" "$R/bert/1/vocab.txt"
[ -e "$BERT/tokenizer.json" ] && ln -s "$BERT/tokenizer.json" "$R/bert/1/tokenizer.json"
printf 'task: embed\ninput: text\nmax_seq_len: 128\n' > "$R/bert/1/model.yaml"

# A .npy of zeros: npy DTYPE SHAPE BYTES (header padded to 64 bytes, format 1.0).
npy() {
    local hdr="{'descr': '$1', 'fortran_order': False, 'shape': $2, }"
    local total=$(( (10 + ${#hdr} + 1 + 63) / 64 * 64 ))
    local pad=$(( total - 10 - ${#hdr} - 1 ))
    local hl=$(( total - 10 ))
    printf '\x93NUMPY\x01\x00'
    printf "\\x$(printf %02x $((hl & 255)))\\x$(printf %02x $((hl >> 8)))"
    printf '%s%*s\n' "$hdr" "$pad" ''
    head -c "$3" /dev/zero
}
b64npy() { npy "$@" | base64 -w0; }

cat > "$T/gw.yaml" <<EOF
listen: 127.0.0.1
port: 0
model_repo: $R
log_requests: true
limits:
  max_body_bytes: 200000
  max_concurrent: 64
batching:
  enabled: true
  max_batch: 16
  max_queue_delay_ms: 2
auth: none
EOF
"$BIN" serve --config "$T/gw.yaml" --port-file "$T/port" 2> "$T/log" &
PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || { cat "$T/log"; echo "FAIL: the gateway did not start"; exit 1; }
B=http://127.0.0.1:$(cat "$T/port")

# req METHOD PATH [curl args...] -> prints "STATUS BODY"
req() {
    local m=$1 p=$2
    shift 2
    curl -s -o "$T/body" -w '%{http_code}' -X "$m" "$B$p" "$@" > "$T/code"
    echo "$(cat "$T/code") $(head -c 600 "$T/body")"
}
expect() { # expect STATUS CODE-or-substring -- METHOD PATH args
    local want=$1 needle=$2
    shift 3
    local out
    out=$(req "$@")
    case "$out" in
    "$want "*"$needle"*) ;;
    *) fail "$* -> '$out' (wanted $want with '$needle')" ;;
    esac
}

expect 200 '"ok"' -- GET /healthz
expect 200 '"ready"' -- GET /readyz
expect 200 '"name":"c1"' -- GET /v1/models
expect 404 '"not_found"' -- GET /v1/nope
expect 405 '"method_not_allowed"' -- GET /v1/infer

J='-H Content-Type:application/json'
X=$(b64npy '<f4' '(1, 3, 32, 32)' 12288)
expect 200 '"confidence"' -- POST /v1/infer $J -d "{\"model\":\"resnet\",\"input\":\"$X\"}"
expect 200 '"class":' -- POST /v1/infer $J -d "{\"model\":\"resnet\",\"version\":\"1\",\"input\":\"$X\"}"
expect 200 '"embedding"' -- POST /v1/infer $J -d '{"model":"bert","text":"edge and cloud"}'
# the response cache answers a repeat without running the model
curl -s -D "$T/hc" -o "$T/bc" -X POST "$B/v1/infer" $J -d '{"model":"bert","text":"edge and cloud"}'
grep -qi '^X-Cache: hit' "$T/hc" || fail "a repeated request was not a cache hit"
grep -q '"cache":"hit"' "$T/bc" || fail "a cache hit does not say so in its timings"

# malformed inputs: each class gets its code, and the gateway keeps serving
expect 400 '"bad_json"' -- POST /v1/infer $J -d '{"model": "resnet", '
expect 400 '"bad_json"' -- POST /v1/infer $J -d '[1, 2]'
expect 400 '"missing_field"' -- POST /v1/infer $J -d '{"model":"resnet"}'
expect 404 '"unknown_model"' -- POST /v1/infer $J -d "{\"model\":\"nope\",\"input\":\"$X\"}"
expect 404 '"unknown_version"' -- POST /v1/infer $J -d "{\"model\":\"resnet\",\"version\":\"9\",\"input\":\"$X\"}"
XI=$(b64npy '<i8' '(1, 3, 32, 32)' 24576)
expect 400 '"bad_dtype"' -- POST /v1/infer $J -d "{\"model\":\"resnet\",\"input\":\"$XI\"}"
XS=$(b64npy '<f4' '(1, 3, 32, 31)' 11904)
expect 400 '"bad_shape"' -- POST /v1/infer $J -d "{\"model\":\"resnet\",\"input\":\"$XS\"}"
XT=$(npy '<f4' '(1, 3, 32, 32)' 100 | base64 -w0)
expect 400 '"bad_npy"' -- POST /v1/infer $J -d "{\"model\":\"resnet\",\"input\":\"$XT\"}"
expect 400 '"bad_base64"' -- POST /v1/infer $J -d '{"model":"resnet","input":"@@@@"}'
expect 400 '"bad_input"' -- POST /v1/infer $J -d '{"model":"resnet","text":"not a text model"}'
expect 400 '"bad_deadline"' -- POST /v1/infer $J -d "{\"model\":\"resnet\",\"deadline_ms\":-1,\"input\":\"$X\"}"
head -c 300000 /dev/zero | tr '\0' ' ' > "$T/big"
expect 413 '"payload_too_large"' -- POST /v1/infer $J --data-binary @"$T/big"
O='-H Content-Type:application/octet-stream'
head -c 64 /dev/urandom > "$T/junk"
expect 400 '"bad_frame"' -- POST '/v1/features?model=resnet&cut=c1' $O --data-binary @"$T/junk"
expect 404 '"unknown_cut"' -- POST '/v1/features?model=resnet&cut=zz' $O --data-binary @"$T/junk"
expect 404 '"unknown_model"' -- POST '/v1/features?model=zz&cut=c1' $O --data-binary @"$T/junk"
expect 400 '"missing_field"' -- POST /v1/features $J -d '{"model":"resnet","cut":"c1"}'
expect 200 '"ok"' -- GET /healthz

# idempotency: the stored first answer comes back, marked as a replay
K='-H Idempotency-Key:replay-1'
first=$(req POST '/v1/features?model=resnet&cut=c1' $O $K --data-binary @"$T/junk")
head -c 64 /dev/urandom > "$T/junk2"
curl -s -D "$T/h2" -o "$T/b2" -X POST "$B/v1/features?model=resnet&cut=c1" $O $K \
    --data-binary @"$T/junk2" >/dev/null
grep -qi '^Idempotent-Replayed: true' "$T/h2" || fail "no Idempotent-Replayed header on a replay"
[ "${first#* }" = "$(head -c 600 "$T/b2")" ] || fail "the replay differs from the first answer"

# request ids are echoed and logged
curl -s -D "$T/h3" -o /dev/null -H 'X-Request-Id: trace-abc-123' "$B/healthz"
grep -qi '^X-Request-Id: trace-abc-123' "$T/h3" || fail "X-Request-Id not echoed"
grep -q '"request_id":"trace-abc-123"' "$T/log" || fail "no log line with the request id"

# metrics
curl -s "$B/metrics" > "$T/metrics"
for s in 'tandem_http_requests_total{route="/v1/infer",method="POST",status="400"}' \
    'tandem_http_request_duration_seconds_bucket' 'tandem_queue_seconds_count' \
    'tandem_compute_seconds_bucket' 'tandem_batch_size_bucket' 'tandem_rejected_deadline_total' \
    'tandem_in_flight' 'tandem_idempotent_replay_total 1'; do
    grep -qF "$s" "$T/metrics" || fail "metrics lack $s"
done

grep -qE '^tandem_cache_hits_total [1-9]' "$T/metrics" || fail "metrics count no cache hits"

# reload keeps serving
expect 200 '"name":"bert"' -- POST /v1/models/reload

# ---- graceful drain -----------------------------------------------------------------
# Requests wait up to 5 s in the batcher for a batch to fill, so they are in flight when
# SIGTERM arrives (sent once they fill the concurrency limit, which must answer 429 to one
# more); every one must be answered. A client that disconnected meanwhile is dropped.
kill -TERM "$PID"
wait "$PID" || fail "first gateway exited with $?"
PID=
rm -f "$T/port"
N=12
"$BIN" serve --config "$T/gw.yaml" --port-file "$T/port" --max-queue-delay-ms 5000 \
    --max-batch 64 --max-concurrent $((N + 1)) 2> "$T/log2" &
PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
B=http://127.0.0.1:$(cat "$T/port")
# a client that gives up while its request is queued: the request is dropped, not run
curl -s -o /dev/null --max-time 0.3 -X POST "$B/v1/infer" $J -d '{"model":"bert","text":"gone"}'
for i in $(seq $N); do
    curl -s -o "$T/d$i" -w '%{http_code}' -X POST "$B/v1/infer" $J \
        -d "{\"model\":\"bert\",\"text\":\"request number $i\"}" > "$T/dc$i" &
done
# the N requests fill every slot once /metrics itself is refused with 429
for _ in $(seq 100); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$B/metrics")
    [ "$code" = 429 ] && break
    sleep 0.05
done
[ "$code" = 429 ] || fail "the $N requests never filled the concurrency limit"
curl -s -D "$T/h429" -o "$T/b429" -X POST "$B/v1/infer" $J -d '{"model":"bert","text":"x"}'
grep -q '^HTTP/1.1 429' "$T/h429" && grep -qi '^Retry-After: 1' "$T/h429" &&
    grep -q '"too_many_requests"' "$T/b429" || fail "no 429 at the concurrency limit: $(head -1 "$T/h429")"
kill -TERM "$PID"
sleep 0.1
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$B/healthz")
[ "$code" = 000 ] || fail "a new connection was accepted during the drain (HTTP $code)"
wait "$PID"
rc=$?
PID=
[ $rc = 0 ] || fail "the drained gateway exited with $rc"
grep -q '"status":499,.*"error":"client_closed"' "$T/log2" ||
    fail "the request of the client that disconnected was not dropped"
for i in $(seq $N); do
    wait %$i 2>/dev/null
    [ "$(cat "$T/dc$i")" = 200 ] && grep -q '"embedding"' "$T/d$i" ||
        fail "in-flight request $i was lost: $(cat "$T/dc$i") $(head -c 200 "$T/d$i")"
done

if [ $fails -ne 0 ]; then
    echo "--- gateway log"
    tail -20 "$T/log"
    echo "$fails check(s) failed"
    exit 1
fi
echo "gateway: all checks passed"
