#!/usr/bin/env bash
# The gateway's extra endpoints end to end against `tandem serve` on loopback (auth: none):
# /v1/policy/decide, /v1/cache/{get,put} (with TTL expiry), /v1/telemetry (into /metrics),
# /v1/embeddings and /v1/embed (ETag, Cache-Control, 304, agreement with the Hugging Face
# reference embedding), the model file listing and downloads (200, 206, 304, 416, If-Range,
# path traversal). Every malformed input class gets its documented 4xx, and the gateway is
# still serving at the end.
set -euo pipefail
BIN=${TDM_BIN:?TDM_BIN is not set}
SHARED=${TDM_SHARED_DIR:-$(dirname "$0")/../../../shared}
BERT=$SHARED/models/bert-tiny
MODEL=/usr/share/libonnx-testdata/data/node/test_relu/model.onnx
command -v curl >/dev/null || { echo "SKIP: curl is absent"; exit 77; }
[ -d "$BERT" ] || { echo "SKIP: $BERT is absent (see ../shared/README.md)"; exit 77; }
[ -f "$MODEL" ] || { echo "SKIP: $MODEL is absent (Debian package libonnx-testdata)"; exit 77; }

T=$(mktemp -d /tmp/tdm_gw_extras.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; tail -5 "$T/serve.log"; exit 1; }

mkdir -p "$T/repo/relu/1/sub" "$T/repo/bert-tiny/1"
cp "$MODEL" "$T/repo/relu/1/model.onnx"
printf 'task: raw\n' > "$T/repo/relu/1/model.yaml"
head -c 100000 /dev/urandom > "$T/repo/relu/1/sub/blob.bin"
for f in "$BERT"/*; do
    [ "$(basename "$f")" = embeddings_ref.jsonl ] || ln -s "$f" "$T/repo/bert-tiny/1/"
done
printf 'file: onnx/model.onnx\ntask: embed\ninput: text\n' > "$T/repo/bert-tiny/1/model.yaml"
cat > "$T/gw.yaml" <<YAML
model_repo: $T/repo
log_requests: false
auth: none
cache:
  max_bytes: 1048576
  ttl_s: 60
policy:
  confidence_threshold: 0.8
embed:
  max_inputs: 4
YAML
"$BIN" serve --config "$T/gw.yaml" --port 0 --port-file "$T/port" > "$T/serve.log" 2>&1 &
PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
[ -s "$T/port" ] || fail "the gateway did not start"
BASE="http://127.0.0.1:$(cat "$T/port")"

req() { # EXPECTED METHOD PATH [curl args]
    local want=$1 method=$2 path=$3 code
    shift 3
    rm -f "$T/body" "$T/headers"
    code=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$method" "$@" "$BASE$path") ||
        code=000
    [ "$code" = "$want" ] || fail "$method $path $*: expected $want, got $code: $(head -c 300 "$T/body")"
}
body_has() { grep -q -- "$1" "$T/body" || fail "body lacks $1: $(head -c 300 "$T/body")"; }
header() { tr -d '\r' < "$T/headers" | sed -n "s/^$1: //Ip" | head -1; }
post() { # EXPECTED PATH JSON
    req "$1" POST "$2" -H 'Content-Type: application/json' --data-binary "$3"
}

# ---- policy ---------------------------------------------------------------------------------
post 200 /v1/policy/decide '{"confidence":0.85}'
body_has '"decision":"exit"' # threshold 0.8 from the config
post 200 /v1/policy/decide '{"confidence":0.5,"rtt_ms":5,"local_ms":30,"cloud_ms":4}'
body_has '"decision":"offload","reason":"offload_faster","estimated_latency_ms":9'
post 200 /v1/policy/decide '{"cloud_available":false,"local_ms":50,"deadline_ms":20,"deferrable":true}'
body_has '"decision":"defer"'
post 400 /v1/policy/decide '{"rtt_ms":"fast"}'
body_has '"code":"invalid_field"'
post 400 /v1/policy/decide '{"confidence":2}'
post 400 /v1/policy/decide '{"confidence":0.5'
body_has '"code":"bad_json"'
post 400 /v1/policy/decide '[]'
req 400 POST /v1/policy/decide
req 405 GET /v1/policy/decide

# ---- cache ----------------------------------------------------------------------------------
post 200 /v1/cache/get '{"model":"m","version":"1","input":"abc"}'
body_has '"hit":false'
post 200 /v1/cache/put '{"model":"m","version":"1","input":"abc","value":{"label":3,"p":[0.5,0.25]}}'
body_has '"stored":true'
KEY=$(sed 's/.*"key":"\([0-9a-f]*\)".*/\1/' "$T/body")
post 200 /v1/cache/get "{\"key\":\"$KEY\"}"
body_has '"hit":true'
body_has '"value":{"label":3,"p":\[0.5,0.25\]}'
post 200 /v1/cache/put '{"key":"'"$(printf 'a%.0s' $(seq 64))"'","value":"short-lived","ttl_s":1}'
sleep 1.2
post 200 /v1/cache/get '{"key":"'"$(printf 'a%.0s' $(seq 64))"'"}'
body_has '"hit":false'
post 400 /v1/cache/get '{"key":"xyz"}'
post 400 /v1/cache/get '{"input":"abc"}'
post 400 /v1/cache/put '{"model":"m","input":"abc"}'
post 400 /v1/cache/put '{"model":"m","input":"abc","value":1,"ttl_s":-5}'
BIG=$(head -c 1100000 /dev/zero | tr '\0' 'x')
printf '{"model":"m","input":"big","value":"%s"}' "$BIG" > "$T/big.json"
req 413 POST /v1/cache/put --data-binary "@$T/big.json"
body_has '"stored":false'

# ---- telemetry ----------------------------------------------------------------------------
post 202 /v1/telemetry '{"device":"edge-7","reports":[{"decision":"exit","latency_ms":2},{"decision":"offload","latency_ms":40,"ok":false}]}'
body_has '"accepted":2'
post 202 /v1/telemetry '{"decision":"local","latency_ms":10}'
post 400 /v1/telemetry '{"reports":[{"decision":"exit"},{"decision":"teleport"}]}'
post 400 /v1/telemetry '{"reports":[{"decision":"exit","latency_ms":-1}]}'
req 200 GET /metrics
grep -q '^tandem_telemetry_reports_total{decision="exit"} 1$' "$T/body" || fail "telemetry metrics: $(grep telemetry "$T/body")"
grep -q '^tandem_telemetry_failures_total{decision="offload"} 1$' "$T/body" || fail "failures metric"
grep -q '^tandem_telemetry_reports_total{decision="local"} 1$' "$T/body" || fail "single report"

# ---- embeddings -------------------------------------------------------------------------
post 200 /v1/embeddings '{"model":"bert-tiny","input":"lovely and poignant . "}'
body_has '"object":"list"'
body_has '"object":"embedding","index":0'
body_has '"usage":{"prompt_tokens":7,"total_tokens":7}'
# Cosine with the Hugging Face reference embedding of the same text.
head -1 "$BERT/embeddings_ref.jsonl" | sed 's/.*"embedding": *\[\([^]]*\)\].*/\1/' | tr ',' '\n' > "$T/ref"
sed 's/.*"embedding":\[\([^]]*\)\].*/\1/' "$T/body" | tr ',' '\n' > "$T/got"
COS=$(paste "$T/ref" "$T/got" | awk '{ d += $1 * $2; a += $1 * $1; b += $2 * $2; n++ }
    END { if (n != 96) print 0; else printf "%.6f", d / sqrt(a * b) }')
awk -v c="$COS" 'BEGIN { exit !(c >= 0.9999) }' || fail "cosine to the reference is $COS"
post 200 /v1/embeddings '{"model":"bert-tiny@1","input":["a","b c","d"]}'
body_has '"index":2'
post 404 /v1/embeddings '{"model":"nope","input":"x"}'
body_has '"code":"unknown_model"'
post 404 /v1/embeddings '{"model":"bert-tiny","version":"7","input":"x"}'
post 400 /v1/embeddings '{"model":"relu","input":"x"}'
body_has '"code":"not_an_embedding_model"'
post 400 /v1/embeddings '{"model":"bert-tiny","input":[1,2]}'
post 400 /v1/embeddings '{"model":"bert-tiny","input":["a","b","c","d","e"]}' # max_inputs 4
post 400 /v1/embeddings '{"model":"../etc","input":"x"}'
post 400 /v1/embeddings '{"input":"x"}'
post 400 /v1/embeddings '{"model":"bert-tiny","input":"x","encoding_format":"base64"}'

Q='/v1/embed?model=bert-tiny&version=1&text=lovely%20and%20poignant%20.%20'
req 200 GET "$Q"
[ "$(header Cache-Control)" = "public, max-age=31536000, immutable" ] || fail "Cache-Control: $(header Cache-Control)"
ETAG=$(header ETag)
[ ${#ETAG} = 66 ] || fail "ETag $ETAG"
sed 's/.*"embedding":\[\([^]]*\)\].*/\1/' "$T/body" | tr ',' '\n' > "$T/got2"
cmp -s "$T/got" "$T/got2" || fail "/v1/embed and /v1/embeddings disagree"
req 200 GET "$Q"
[ "$(header X-Cache)" = hit ] || fail "second /v1/embed was not a gateway cache hit"
req 304 GET "$Q" -H "If-None-Match: $ETAG"
req 200 GET '/v1/embed?model=bert-tiny&text=x'
[ "$(header Cache-Control)" = "public, max-age=60" ] || fail "unpinned Cache-Control: $(header Cache-Control)"
req 400 GET '/v1/embed?model=bert-tiny'
req 404 GET '/v1/embed?model=bert-tiny&version=2&text=x'

# ---- downloads ------------------------------------------------------------------------------
V=/v1/models/relu/versions/1
for path in $V $V/download; do
    req 200 GET $path
    body_has '"model":"relu","version":"1"'
    body_has "\"path\":\"sub/blob.bin\",\"size\":100000,\"sha256\":\"$(sha256sum "$T/repo/relu/1/sub/blob.bin" | cut -d' ' -f1)\""
    body_has "\"url\":\"$V/download/model.onnx\""
done
LTAG=$(header ETag)
req 304 GET $V -H "If-None-Match: $LTAG"
F=$V/download/sub/blob.bin
SUM=$(sha256sum "$T/repo/relu/1/sub/blob.bin" | cut -d' ' -f1)
req 200 GET $F
cmp -s "$T/body" "$T/repo/relu/1/sub/blob.bin" || fail "downloaded bytes differ"
[ "$(header ETag)" = "\"$SUM\"" ] || fail "ETag $(header ETag)"
[ "$(header Digest)" = "sha-256=$(openssl dgst -sha256 -binary "$T/repo/relu/1/sub/blob.bin" | base64)" ] ||
    fail "Digest $(header Digest)"
[ "$(header Content-Length)" = 100000 ] || fail "Content-Length $(header Content-Length)"
[ "$(header Cache-Control)" = "public, max-age=31536000, immutable" ] || fail "file Cache-Control"
req 304 GET $F -H "If-None-Match: \"$SUM\""
[ ! -s "$T/body" ] || fail "304 with a body"
req 200 GET $F -H 'If-None-Match: "0000"'
req 206 GET $F -H 'Range: bytes=99990-'
[ "$(header Content-Range)" = "bytes 99990-99999/100000" ] || fail "Content-Range $(header Content-Range)"
cmp -s "$T/body" <(tail -c 10 "$T/repo/relu/1/sub/blob.bin") || fail "range bytes differ"
req 206 GET $F -H 'Range: bytes=-5'
[ "$(stat -c %s "$T/body")" = 5 ] || fail "suffix range length"
req 206 GET $F -H 'Range: bytes=100-199' -H "If-Range: \"$SUM\""
req 200 GET $F -H 'Range: bytes=100-199' -H 'If-Range: "stale"'
req 416 GET $F -H 'Range: bytes=200000-'
[ "$(header Content-Range)" = "bytes */100000" ] || fail "416 Content-Range"
req 200 GET $F -H 'Range: bytes=0-1,5-6' # several ranges: the whole file
req 400 GET "$V/download/sub/..%2F..%2F..%2Fmodel.yaml"
req 400 GET "$V/download/.hidden"
req 404 GET $V/download/missing.bin
req 404 GET /v1/models/relu/versions/9/download
req 400 GET "/v1/models/re%20lu/versions/1"

# A resumed download through the edge downloader's protocol: the first half, then the rest.
curl -s -r 0-49999 -o "$T/part" "$BASE$F"
curl -s -r 50000- "$BASE$F" >> "$T/part"
[ "$(sha256sum < "$T/part" | cut -d' ' -f1)" = "$SUM" ] || fail "resumed download differs"

req 200 GET /healthz
kill -TERM "$PID"
wait "$PID" || true
PID=
! grep -q 'Sanitizer\|runtime error' "$T/serve.log" || fail "sanitizer report in the gateway log"
echo "gateway_extras: all passed"
