#!/usr/bin/env bash
# nginx (Debian nginx-light, run as the test user from a config written here) in front of
# `tandem serve` as a cache. A Zipf-distributed stream of 10,000 GET /v1/embed requests for
# a pinned model version (texts from SST-2 dev, s = 1.1 over 872 texts) goes through nginx;
# the gateway's "Cache-Control: public, max-age=..., immutable" must let nginx answer every
# repeat itself. Checks: nginx's HIT count (from $upstream_cache_status in its access log)
# equals requests - distinct texts, the gateway saw exactly one /v1/embed per distinct text,
# and a cached answer equals the gateway's. Prints the hit ratio.
set -euo pipefail
BIN=${TDM_BIN:?TDM_BIN is not set}
SHARED=${TDM_SHARED_DIR:-$(dirname "$0")/../../../shared}
BERT=$SHARED/models/bert-tiny
SST=$SHARED/data/text/sst2/dev.tsv
N=${TDM_NGINX_REQUESTS:-10000}
for tool in nginx curl awk; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "SKIP: $tool is absent"; exit 77; }
done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -d "$BERT" ] || { echo "SKIP: $BERT is absent (see ../shared/README.md)"; exit 77; }
[ -f "$SST" ] || SST=$(ls "$SHARED"/data/text/sst2/dev* 2>/dev/null | head -1)
[ -f "$SST" ] || { echo "SKIP: SST-2 dev set is absent under $SHARED/data/text/sst2"; exit 77; }

T=$(mktemp -d /tmp/tdm_gw_nginx.XXXXXX)
chmod 755 "$T"
GW_PID=
NG_PID=
cleanup() {
    [ -n "$NG_PID" ] && kill "$NG_PID" 2>/dev/null && wait "$NG_PID" 2>/dev/null || true
    [ -n "$GW_PID" ] && kill "$GW_PID" 2>/dev/null && wait "$GW_PID" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    tail -5 "$T/serve.log" "$T/error.log" 2>/dev/null || true
    exit 1
}

# The model repository: bert-tiny as version 1 (files linked, not copied).
mkdir -p "$T/repo/bert-tiny/1"
for f in "$BERT"/*; do
    [ "$(basename "$f")" = embeddings_ref.jsonl ] || ln -s "$f" "$T/repo/bert-tiny/1/"
done
printf 'file: onnx/model.onnx\ntask: embed\ninput: text\n' > "$T/repo/bert-tiny/1/model.yaml"

"$BIN" serve --auth none --model-repo "$T/repo" --port 0 --port-file "$T/gw.port" --log-requests false \
    > "$T/serve.log" 2>&1 &
GW_PID=$!
for _ in $(seq 100); do [ -s "$T/gw.port" ] && break; sleep 0.1; done
[ -s "$T/gw.port" ] || fail "the gateway did not start"
GW=$(cat "$T/gw.port")

free_port() {
    local p
    for _ in $(seq 50); do
        p=$((20000 + RANDOM % 40000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
    return 1
}
NP=$(free_port) || fail "no free port"
mkdir -p "$T/cache" "$T/tmp"
USER_LINE=
[ "$(id -u)" = 0 ] && USER_LINE="user root;"
cat > "$T/nginx.conf" <<CONF
$USER_LINE
worker_processes 1;
pid $T/nginx.pid;
error_log $T/error.log warn;
events { worker_connections 256; }
http {
    log_format cache '\$upstream_cache_status \$status \$request_uri';
    access_log $T/access.log cache;
    client_body_temp_path $T/tmp/body;
    proxy_temp_path $T/tmp/proxy;
    fastcgi_temp_path $T/tmp/fastcgi;
    uwsgi_temp_path $T/tmp/uwsgi;
    scgi_temp_path $T/tmp/scgi;
    proxy_cache_path $T/cache levels=1:2 keys_zone=tandem:10m max_size=256m inactive=1h
                     use_temp_path=off;
    upstream tandem { server 127.0.0.1:$GW; keepalive 8; }
    server {
        listen 127.0.0.1:$NP;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        location = /v1/embed {
            proxy_pass http://tandem;
            proxy_cache tandem;
            proxy_cache_key \$request_uri;
            proxy_cache_lock on;
            add_header X-Cache-Status \$upstream_cache_status always;
        }
        location / { proxy_pass http://tandem; }
    }
}
CONF
"$NGINX" -p "$T" -c "$T/nginx.conf" -g 'daemon off;' 2>> "$T/error.log" &
NG_PID=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$NP/healthz" && break; sleep 0.1; done
curl -sf -o /dev/null "http://127.0.0.1:$NP/healthz" || fail "nginx did not start"

# The stream: Zipf(1.1) ranks over the dev texts, a fixed seed, URL-encoded in awk (C locale:
# bytes, so UTF-8 is percent-encoded byte by byte).
LC_ALL=C awk -F'\t' -v n="$N" -v port="$NP" -v out="$T/urls.cfg" -v uniq="$T/distinct" '
    NR == 1 && $2 == "label" { next }
    { t[++m] = $1 }
    END {
        for (i = 0; i < 256; i++) ord[sprintf("%c", i)] = i
        h = 0
        for (k = 1; k <= m; k++) { h += 1 / (k ^ 1.1); cdf[k] = h }
        srand(42)
        for (r = 1; r <= n; r++) {
            u = rand() * h; lo = 1; hi = m
            while (lo < hi) { mid = int((lo + hi) / 2); if (cdf[mid] < u) lo = mid + 1; else hi = mid }
            s = t[lo]; e = ""
            for (i = 1; i <= length(s); i++) {
                c = substr(s, i, 1)
                if (c ~ /[A-Za-z0-9._~-]/) e = e c; else e = e sprintf("%%%02X", ord[c])
            }
            printf "url = \"http://127.0.0.1:%s/v1/embed?model=bert-tiny&version=1&text=%s\"\noutput = /dev/null\n", port, e > out
            seen[lo] = 1
        }
        d = 0; for (k in seen) d++
        print d > uniq
    }' "$SST"
DISTINCT=$(cat "$T/distinct")
[ "$DISTINCT" -gt 10 ] || fail "only $DISTINCT distinct texts in the stream"

START=$(date +%s.%N)
curl -s -K "$T/urls.cfg" || fail "the request stream failed"
END=$(date +%s.%N)

TOTAL=$(grep -c ' /v1/embed?' "$T/access.log" || true)
HITS=$(grep -c '^HIT 200 /v1/embed?' "$T/access.log" || true)
MISSES=$(grep -c '^MISS 200 /v1/embed?' "$T/access.log" || true)
BAD=$(grep ' /v1/embed?' "$T/access.log" | grep -vc '^[A-Z]* 200 ' || true)
UPSTREAM=$(curl -s "http://127.0.0.1:$GW/metrics" |
    awk '/^tandem_http_requests_total\{route="\/v1\/embed",method="GET",status="200"\}/ { s += $2 } END { print s + 0 }')
awk -v h="$HITS" -v t="$TOTAL" -v d="$DISTINCT" -v u="$UPSTREAM" -v s="$START" -v e="$END" 'BEGIN {
    printf "nginx cache: %d requests (Zipf s=1.1 over the SST-2 dev texts), %d distinct, %d HIT, hit ratio %.4f (ideal %.4f), gateway /v1/embed calls %d, %.0f requests/s\n", t, d, h, h / t, (t - d) / t, u, t / (e - s) }'
[ "$TOTAL" = "$N" ] || fail "nginx logged $TOTAL of $N requests"
[ "$BAD" = 0 ] || fail "$BAD requests did not answer 200"
[ "$HITS" = $((N - DISTINCT)) ] || fail "expected $((N - DISTINCT)) hits, got $HITS (misses $MISSES)"
[ "$UPSTREAM" = "$DISTINCT" ] || fail "the gateway answered $UPSTREAM /v1/embed requests, expected $DISTINCT"

# A cached answer is byte-identical to a fresh one from the gateway.
Q="/v1/embed?model=bert-tiny&version=1&text=a%20fine%20film"
curl -s "http://127.0.0.1:$NP$Q" > /dev/null
curl -s -D "$T/h" "http://127.0.0.1:$NP$Q" > "$T/from_nginx"
grep -qi '^X-Cache-Status: HIT' "$T/h" || fail "the repeat was not a HIT"
curl -s "http://127.0.0.1:$GW$Q" > "$T/from_gateway"
cmp -s "$T/from_nginx" "$T/from_gateway" || fail "cached body differs from the gateway's"
kill -TERM "$GW_PID"
wait "$GW_PID" || true
GW_PID=
! grep -q 'Sanitizer\|runtime error' "$T/serve.log" || fail "sanitizer report in the gateway log"
echo "gateway_nginx: passed"
