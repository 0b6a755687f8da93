#!/usr/bin/env bash
# The edge agent talking to the gateway over mutual TLS 1.3 with a bearer credential, end to end:
# `tandem serve` with a server certificate, a client CA and API keys; `tandem edge` with the CA,
# a client certificate and a token file. Certificates are made here by the openssl CLI.
#
#   1. mTLS + key: requests are offloaded and answered; the gateway saw them (its metrics).
#   2. no client certificate: the gateway refuses (401 client_certificate_required), the agent
#      reports the failure, keeps running, and a deferrable request is kept, not lost.
#   3. a gateway whose certificate the agent's CA did not sign: the agent refuses to talk to it.
#   4. token rotation: an agent whose token file holds a wrong key gets 401; rewriting the file
#      fixes the next request without restarting the agent (it re-reads the file on 401).
#
# Uses the committed Fashion-MNIST cloud model, so it needs no ../shared.
set -euo pipefail
# shellcheck source=../support/fixtures.sh
source "$(dirname "$0")/../support/fixtures.sh"

bin="${TDM_BIN:?TDM_BIN must point at the tandem binary}"
src="${TDM_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
model="$src/models/fashion-mnist/cloud.onnx"
for c in openssl curl perl; do
    command -v "$c" >/dev/null || { echo "SKIP: $c is not installed (scripts/install-deps.sh)"; exit 77; }
done

work="$(mktemp -d /tmp/tandem-edge-tls-XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$work"/*.log; do echo "---- $f" >&2; tail -8 "$f" >&2; done
    exit 1
}

# ---- certificates, keys, model registry, one input -------------------------------------------
(
    cd "$work"
    ossl() { openssl "$@" 2>/dev/null; }
    ossl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=tandem test CA"
    ossl req -x509 -newkey rsa:2048 -nodes -keyout rogue-ca.key -out rogue-ca.pem -days 2 -subj "/CN=rogue CA"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
    for who in server:ca rogue-server:rogue-ca; do
        name="${who%%:*}" signer="${who##*:}"
        ossl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "/CN=localhost"
        ossl x509 -req -in "$name.csr" -CA "$signer.pem" -CAkey "$signer.key" -CAcreateserial \
            -out "$name.pem" -days 2 -extfile san.ext
    done
    ossl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=edge-tls"
    ossl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2
)
for f in ca.pem server.pem rogue-server.pem client.pem client.key; do
    [[ -s "$work/$f" ]] || fail "openssl did not make $f"
done
mkdir -p "$work/repo/fmnist/1"
ln -s "$model" "$work/repo/fmnist/1/model.onnx"
printf 'task: classify\n' >"$work/repo/fmnist/1/model.yaml"
write_images "$work" x 16 3 0

wait_file() { for _ in $(seq 1 200); do [[ -s "$1" ]] && return 0; sleep 0.05; done; fail "$1 never appeared"; }

# start_gw NAME CERT: an mTLS gateway with API keys
start_gw() {
    local name="$1" cert="$2"
    cat >"$work/$name.yaml" <<EOF
port: 0
model_repo: $work/repo
tls: {cert: $work/$cert.pem, key: $work/$cert.key, client_ca: $work/ca.pem}
auth:
  mode: api_key
  api_keys: [{key: edge-key-0001, role: observer, name: edge}]
EOF
    rm -f "$work/$name.port"
    "$bin" serve --config "$work/$name.yaml" --port-file "$work/$name.port" >>"$work/$name.log" 2>&1 &
    pids+=($!)
    eval "${name}_pid=$!"
    wait_file "$work/$name.port"
    eval "${name}_port=$(cat "$work/$name.port")"
}

# start_edge NAME GW_PORT [TRANSPORT_EXTRA]: the agent daemon, cloud-only so every request offloads
start_edge() {
    local name="$1" gw="$2" extra="${3:-}"
    [[ -f "$work/$name.token" ]] || printf 'edge-key-0001\n' >"$work/$name.token"
    cat >"$work/$name.yaml" <<EOF
device_id: $name
models:
  - {name: fmnist, version: "1", file: "$model", finish_on_device: false, mode: cloud,
     cloud_only_model: fmnist, deadline_ms: 3000}
transport: {endpoints: ["https://127.0.0.1:$gw"], ca_file: $work/ca.pem, token_file: $work/$name.token,
            tls13_only: true, health_interval_ms: 200$extra}
offline: {queue: $work/$name.db}
EOF
    : >"$work/$name.log"
    "$bin" edge --config "$work/$name.yaml" --port 0 >>"$work/$name.log" 2>&1 &
    pids+=($!)
    eval "${name}_pid=$!"
    for _ in $(seq 1 200); do port_of_log "$work/$name.log" >/dev/null && break; sleep 0.05; done
    eval "${name}_port=$(port_of_log "$work/$name.log")" || fail "$name did not start"
}

# infer PORT ID [QUERY]: prints the agent's JSON answer (the input picked by a hash of ID, so
# that the caches on either side do not answer for the model)
infer() {
    local k
    k=$(($(cksum <<<"$2" | cut -d' ' -f1) % 16))
    curl -s -m 10 -X POST --data-binary "@$work/x$k.npy" \
        "http://127.0.0.1:$1/v1/infer?model=fmnist&request_id=$2${3:-}"
}
field() { grep -o "\"$1\":\"[^\"]*\"" | head -1 | cut -d'"' -f4; }

# ---- 1. mutual TLS + API key: offloaded and answered -------------------------------------------
start_gw g1 server
start_edge e1 "$g1_port" ", client_cert: $work/client.pem, client_key: $work/client.key"
for i in 1 2 3 4 5; do
    out=$(infer "$e1_port" "tls-$i")
    [[ "$(field route <<<"$out")" == offload ]] || fail "mtls request $i: $out"
    grep -q '"label":[0-9]' <<<"$out" || fail "mtls request $i has no label: $out"
done
served=$(curl -s --cacert "$work/ca.pem" --cert "$work/client.pem" --key "$work/client.key" \
    -H "Authorization: Bearer edge-key-0001" "https://127.0.0.1:$g1_port/metrics" |
    awk '/^tandem_http_requests_total\{route="\/v1\/features".*status="200"/ {s += $2} END {print s + 0}')
[[ "$served" -ge 5 ]] || fail "the gateway counted $served answered /v1/features requests, want >= 5"
echo "mtls + api key: ok (5 offloaded, gateway answered $served)"

# ---- 2. no client certificate: refused, reported, nothing lost ---------------------------------
start_edge e2 "$g1_port"
out1=$(infer "$e2_port" "nocert-1")
[[ "$(field route <<<"$out1")" == failed ]] || fail "without a client certificate: $out1"
grep -q 'client_certificate_required\|401' <<<"$out1" || fail "the failure does not say why: $out1"
out=$(infer "$e2_port" "nocert-2" "&deferrable=1")
[[ "$(field route <<<"$out")" == deferred ]] || fail "a deferrable request without a certificate: $out"
curl -s -m 5 "http://127.0.0.1:$e2_port/healthz" | grep -q ok || fail "the agent stopped answering"
echo "no client certificate: ok (refused with 401 client_certificate_required; deferrable request kept)"

# ---- 3. a gateway certificate of another CA: the agent will not talk to it ---------------------
start_gw g2 rogue-server
start_edge e3 "$g2_port" ", client_cert: $work/client.pem, client_key: $work/client.key"
out=$(infer "$e3_port" "rogue-1")
[[ "$(field route <<<"$out")" == failed ]] || fail "a rogue gateway certificate: $out"
grep -qi 'certificate\|SSL\|TLS' <<<"$out" || fail "the failure does not name the certificate: $out"
echo "untrusted gateway certificate: ok (refused: $(field error <<<"$out"))"

# ---- 4. token rotation without a restart --------------------------------------------------------
printf 'wrong-key-9999\n' >"$work/e4.token"
start_edge e4 "$g1_port" ", client_cert: $work/client.pem, client_key: $work/client.key"
out=$(infer "$e4_port" "rot-1")
[[ "$(field route <<<"$out")" == failed ]] || fail "a wrong key: $out"
grep -q '401\|unauthorized' <<<"$out" || fail "a wrong key, no reason: $out"
printf 'edge-key-0001\n' >"$work/e4.token"
out=$(infer "$e4_port" "rot-2")
[[ "$(field route <<<"$out")" == offload ]] || fail "after rewriting the token file: $out"
echo "token rotation: ok"
echo "edge_tls: all passed"
