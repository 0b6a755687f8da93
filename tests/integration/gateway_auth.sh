#!/usr/bin/env bash
# Gateway authentication end to end, against a real `tandem serve` on loopback:
#  1. JWT (RS256 from a JWKS) and API keys: missing, valid, expired, not yet valid, wrong
#     issuer/audience, signed by another key, unknown kid, alg none, HS256 signed with the
#     public key (algorithm confusion), tampered payload -> 401 with WWW-Authenticate; an
#     observer on an operator route -> 403; kid rotation by rewriting the JWKS file; the
#     gateway keeps serving after every refusal.
#  2. TLS 1.3 with a certificate made here by openssl (a TLS 1.2-only client is refused).
#  3. Mutual TLS: no client certificate or one from another CA -> refused; one signed by the
#     configured client CA -> served.
# Tokens are built with the openssl CLI (header.payload signed with `openssl dgst -sign`).
set -euo pipefail
BIN=${TDM_BIN:?TDM_BIN is not set}
for tool in openssl curl basenc od; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is absent"; exit 77; }
done
MODEL=/usr/share/libonnx-testdata/data/node/test_relu/model.onnx
[ -f "$MODEL" ] || { echo "SKIP: $MODEL is absent (Debian package libonnx-testdata)"; exit 77; }

T=$(mktemp -d /tmp/tdm_gw_auth.XXXXXX)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- gateway log:"; tail -20 "$T/serve.log" 2>/dev/null; exit 1; }

mkdir -p "$T/repo/relu/1"
cp "$MODEL" "$T/repo/relu/1/model.onnx"
printf 'task: raw\n' > "$T/repo/relu/1/model.yaml"
echo "a small file to download" > "$T/repo/relu/1/notes.txt"

# ---- keys, JWKS, API keys -------------------------------------------------------------
b64url() { basenc --base64url -w0 | tr -d '='; }
for k in k1 k2; do
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$T/$k.pem" 2>/dev/null
    openssl pkey -in "$T/$k.pem" -pubout -out "$T/$k.pub.pem"
done
jwk() { # kid keyfile
    local n
    n=$(openssl rsa -in "$2" -noout -modulus | cut -d= -f2 | basenc --base16 -d | b64url)
    printf '{"kty":"RSA","use":"sig","alg":"RS256","kid":"%s","n":"%s","e":"AQAB"}' "$1" "$n"
}
echo "{\"keys\":[$(jwk k1 "$T/k1.pem")]}" > "$T/jwks.json"
cat > "$T/keys.txt" <<KEYS
# key role name
observer-key-0001 observer watcher
operator-key-0002 operator deployer
KEYS

NOW=$(date +%s)
# token KEYFILE KID PAYLOAD [ALG]
token() {
    local alg=${4:-RS256} h p s
    h=$(printf '{"alg":"%s","typ":"JWT","kid":"%s"}' "$alg" "$2" | b64url)
    p=$(printf '%s' "$3" | b64url)
    case $alg in
    RS256) s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -sign "$1" -binary | b64url) ;;
    HS256) # the algorithm-confusion forgery: HMAC keyed with the *public* key PEM
        s=$(printf '%s.%s' "$h" "$p" | openssl dgst -sha256 -mac HMAC \
            -macopt "hexkey:$(od -An -tx1 -v "$1" | tr -d ' \n')" -binary | b64url) ;;
    none) s= ;;
    esac
    printf '%s.%s.%s' "$h" "$p" "$s"
}
claims() { # role exp_offset [iss] [aud] [nbf_offset]
    local nbf=
    [ -n "${5:-}" ] && nbf=",\"nbf\":$((NOW + $5))"
    printf '{"sub":"alice","iss":"%s","aud":"%s","exp":%d,"role":"%s"%s}' \
        "${3:-https://id.test}" "${4:-tandem}" $((NOW + $2)) "$1" "$nbf"
}

cat > "$T/gw.yaml" <<YAML
model_repo: $T/repo
log_requests: false
auth:
  mode: any
  api_keys_file: keys.txt
  jwt:
    jwks_file: jwks.json
    issuer: https://id.test
    audience: tandem
    leeway_s: 30
YAML

start() { # extra flags...
    rm -f "$T/port"
    "$BIN" serve --config "$T/gw.yaml" --port 0 --port-file "$T/port" "$@" > "$T/serve.log" 2>&1 &
    PID=$!
    for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
    [ -s "$T/port" ] || fail "the gateway did not start"
    PORT=$(cat "$T/port")
}
stop() { # SIGTERM drains; a sanitizer report (ASan build) in the log fails the test
    kill -TERM "$PID"
    wait "$PID" || true
    PID=
    ! grep -q 'Sanitizer\|runtime error' "$T/serve.log" || fail "sanitizer report in the gateway log"
}

# req EXPECTED_CODE METHOD PATH [curl args...]: checks the status, leaves headers/body in $T
BASE=
req() {
    local want=$1 method=$2 path=$3 code
    shift 3
    rm -f "$T/body" "$T/headers"
    code=$(curl -s -o "$T/body" -D "$T/headers" -w '%{http_code}' -X "$method" "$@" "$BASE$path") ||
        code=000
    [ "$code" = "$want" ] || fail "$method $path: expected $want, got $code: $(head -c 300 "$T/body")"
}
POLICY=(-H 'Content-Type: application/json' --data '{"confidence":0.95}')

# ---- 1. JWT and API keys over HTTP ------------------------------------------------------
start
BASE="http://127.0.0.1:$PORT"
req 200 GET /healthz
req 401 POST /v1/policy/decide "${POLICY[@]}"
grep -qi '^WWW-Authenticate: Bearer' "$T/headers" || fail "401 without WWW-Authenticate: Bearer"
grep -q '"code":"unauthorized"' "$T/body" || fail "401 body: $(cat "$T/body")"

OBS=$(token "$T/k1.pem" k1 "$(claims observer 600)")
OPR=$(token "$T/k1.pem" k1 "$(claims operator 600)")
req 200 POST /v1/policy/decide "${POLICY[@]}" -H "Authorization: Bearer $OBS"
grep -q '"decision":"exit"' "$T/body" || fail "policy answer: $(cat "$T/body")"
req 403 POST /v1/models/reload -H "Authorization: Bearer $OBS"
grep -q '"code":"forbidden"' "$T/body" || fail "403 body: $(cat "$T/body")"
req 200 POST /v1/models/reload -H "Authorization: Bearer $OPR"

bad_tokens=(
    "expired:$(token "$T/k1.pem" k1 "$(claims observer -120)")"
    "not-yet-valid:$(token "$T/k1.pem" k1 "$(claims observer 600 https://id.test tandem 300)")"
    "wrong-issuer:$(token "$T/k1.pem" k1 "$(claims observer 600 https://evil.test)")"
    "wrong-audience:$(token "$T/k1.pem" k1 "$(claims observer 600 https://id.test other)")"
    "other-key:$(token "$T/k2.pem" k1 "$(claims admin 600)")"
    "unknown-kid:$(token "$T/k2.pem" k9 "$(claims admin 600)")"
    "alg-none:$(token "$T/k1.pem" k1 "$(claims admin 600)" none)"
    "hs256-confusion:$(token "$T/k1.pub.pem" k1 "$(claims admin 600)" HS256)"
    "tampered:${OBS%%.*}.$(claims admin 600 | b64url).${OBS##*.}"
    "garbage:not.a.jwt"
)
for entry in "${bad_tokens[@]}"; do
    name=${entry%%:*}
    req 401 POST /v1/policy/decide "${POLICY[@]}" -H "Authorization: Bearer ${entry#*:}"
    grep -qi '^WWW-Authenticate: Bearer' "$T/headers" || fail "$name: no WWW-Authenticate"
    echo "refused as expected: $name: $(sed 's/.*"message":"\([^"]*\)".*/\1/' "$T/body")"
    req 200 GET /healthz # still serving
done

# API keys, both header forms; a wrong one; role checks.
req 200 POST /v1/policy/decide "${POLICY[@]}" -H "X-API-Key: observer-key-0001"
req 200 POST /v1/policy/decide "${POLICY[@]}" -H "Authorization: Bearer observer-key-0001"
req 401 POST /v1/policy/decide "${POLICY[@]}" -H "X-API-Key: observer-key-0009"
req 403 POST /v1/models/reload -H "X-API-Key: observer-key-0001"
req 200 POST /v1/models/reload -H "X-API-Key: operator-key-0002"

# Downloads need credentials too; 206 and 304 through auth.
req 401 GET /v1/models/relu/versions/1/download/notes.txt
req 200 GET /v1/models/relu/versions/1/download/notes.txt -H "X-API-Key: observer-key-0001"
ETAG=$(tr -d '\r' < "$T/headers" | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
[ "$ETAG" = "\"$(sha256sum "$T/repo/relu/1/notes.txt" | cut -d' ' -f1)\"" ] || fail "ETag $ETAG"
req 304 GET /v1/models/relu/versions/1/download/notes.txt -H "X-API-Key: observer-key-0001" \
    -H "If-None-Match: $ETAG"
req 206 GET /v1/models/relu/versions/1/download/notes.txt -H "X-API-Key: observer-key-0001" \
    -H "Range: bytes=2-6"
[ "$(cat "$T/body")" = "small" ] || fail "range body: $(cat "$T/body")"

# Key rotation: publish k2 beside k1; a k2 token is accepted once the file is re-read
# (an unknown kid triggers it, at most once a second).
K2=$(token "$T/k2.pem" k2 "$(claims observer 600)")
echo "{\"keys\":[$(jwk k1 "$T/k1.pem"),$(jwk k2 "$T/k2.pem")]}" > "$T/jwks.json"
sleep 1.1
req 200 POST /v1/policy/decide "${POLICY[@]}" -H "Authorization: Bearer $K2"
# Retire k1: the gateway notices the changed file within a second.
echo "{\"keys\":[$(jwk k2 "$T/k2.pem")]}" > "$T/jwks.json"
sleep 1.1
req 401 POST /v1/policy/decide "${POLICY[@]}" -H "Authorization: Bearer $OBS"
req 200 POST /v1/policy/decide "${POLICY[@]}" -H "Authorization: Bearer $K2"
stop
echo "jwt + api keys: ok"

# ---- 2. TLS 1.3 ---------------------------------------------------------------------------
cd "$T"
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj "/CN=tandem test CA" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > san.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj "/CN=edge-1" 2>/dev/null
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.pem -days 2 -subj "/CN=rogue" 2>/dev/null
cd - >/dev/null

start --tls-cert "$T/server.pem" --tls-key "$T/server.key"
BASE="https://127.0.0.1:$PORT"
req 200 GET /healthz --cacert "$T/ca.pem"
req 200 POST /v1/policy/decide "${POLICY[@]}" --cacert "$T/ca.pem" -H "X-API-Key: observer-key-0001"
req 401 POST /v1/policy/decide "${POLICY[@]}" --cacert "$T/ca.pem"
proto=$(curl -s -o /dev/null -w '%{http_version} %{ssl_verify_result}' --cacert "$T/ca.pem" "$BASE/healthz")
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$T/ca.pem" --tls-max 1.2 "$BASE/healthz" || true)
[ "$code" = "000" ] || fail "a TLS 1.2-only client got $code"
openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$T/ca.pem" </dev/null 2>/dev/null |
    grep -q 'TLSv1.3' || fail "openssl s_client did not negotiate TLS 1.3"
req 000 GET /healthz # plain HTTP on the TLS port is refused
stop
echo "tls 1.3: ok ($proto)"

# ---- 3. mutual TLS ------------------------------------------------------------------------
start --tls-cert "$T/server.pem" --tls-key "$T/server.key" --tls-client-ca "$T/ca.pem"
BASE="https://127.0.0.1:$PORT"
code=$(curl -s -o "$T/body" -w '%{http_code}' --cacert "$T/ca.pem" "$BASE/healthz" || true)
[ "$code" = "401" ] || fail "no client certificate: got $code"
grep -q '"client_certificate_required"' "$T/body" || fail "no client certificate: $(cat "$T/body")"
code=$(curl -s -o "$T/body" -w '%{http_code}' --cacert "$T/ca.pem" --cert "$T/rogue.pem" \
    --key "$T/rogue.key" "$BASE/healthz" || true)
[ "$code" = "401" ] || fail "a certificate of another CA: got $code"
grep -q 'not trusted\|NOT trusted' "$T/body" || fail "rogue certificate: $(cat "$T/body")"
req 200 GET /healthz --cacert "$T/ca.pem" --cert "$T/client.pem" --key "$T/client.key"
req 200 POST /v1/policy/decide "${POLICY[@]}" --cacert "$T/ca.pem" --cert "$T/client.pem" \
    --key "$T/client.key" -H "Authorization: Bearer $K2"
req 401 POST /v1/policy/decide "${POLICY[@]}" --cacert "$T/ca.pem" --cert "$T/client.pem" \
    --key "$T/client.key"
stop
echo "mutual tls: ok"
echo "gateway_auth: all passed"
