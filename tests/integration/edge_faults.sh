#!/usr/bin/env bash
# Fault tests of the edge agent and the gateway (issue 7), with real processes on loopback:
# `tandem serve` gateways sharing one durable idempotency store, the `tandem edge` daemon with
# its SQLite replay queue, and `tandem linkemu` between them where a link must fail.
#
#   A. a gateway is killed (-9) mid-stream and restarted;
#   B. the agent is killed (-9) while its queue drains, then restarted;
#   C. the link is cut for CUT_S seconds (60 by default; 10 under the sanitizers);
#   D. one of three gateways is stopped: requests fail over.
#
# In each: every accepted request gets exactly one result (lost = 0), and no request completes
# twice in the cloud (duplicates = 0, counted by idempotency key in the gateways' shared store).
# Prints one line of figures per scenario. Needs ../shared (a real model) and sqlite3, curl, perl.
set -euo pipefail
# shellcheck source=../support/fixtures.sh
source "$(dirname "$0")/../support/fixtures.sh"

bin="${TDM_BIN:?TDM_BIN must point at the tandem binary}"
shared="${TDM_SHARED_DIR:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}"
model="$shared/models/vnncomp/Convnet_maxpool.onnx"
if [[ ! -f "$model" ]]; then
    echo "SKIP: $model is absent (see ../shared/README.md)"
    exit 77
fi
for c in sqlite3 curl perl; do
    command -v "$c" >/dev/null || { echo "SKIP: $c is not installed (scripts/install-deps.sh)"; exit 77; }
done
cut_s="${CUT_S:-60}"
[[ "${TDM_SANITIZED:-0}" == 1 ]] && cut_s="${CUT_S:-10}"

work="$(mktemp -d /tmp/tandem-faults-XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*" >&2
    for f in "$work"/*.log; do echo "---- $f" >&2; tail -5 "$f" >&2; done
    exit 1
}

# ---- fixtures: a model registry with one cut, and distinct inputs -----------------------------
mkdir -p "$work/repo/mnist/1" "$work/in"
ln -s "$model" "$work/repo/mnist/1/model.onnx"
printf 'task: classify\ncuts:\n  - {name: c1, tensors: ["7"]}\n' >"$work/repo/mnist/1/model.yaml"
write_images "$work/in" "" 64 7 0.8

wait_file() { for _ in $(seq 1 200); do [[ -s "$1" ]] && return 0; sleep 0.05; done; fail "$1 never appeared"; }

# start_gw NAME [PORT]: a gateway on PORT (0 = any) sharing the idempotency store
start_gw() {
    local name="$1" port="${2:-0}"
    rm -f "$work/$name.port"
    "$bin" serve --auth none --port "$port" --model-repo "$work/repo" --idempotency-db "$work/idem.db" \
        --port-file "$work/$name.port" >>"$work/$name.log" 2>&1 &
    pids+=($!)
    eval "${name}_pid=$!"
    wait_file "$work/$name.port"
    eval "${name}_port=$(cat "$work/$name.port")"
}

# start_edge NAME ENDPOINT...: the agent daemon (queue file $work/NAME.db)
start_edge() {
    local name="$1"
    shift
    local eps=""
    for e in "$@"; do eps+="\"http://127.0.0.1:$e\","; done
    cat >"$work/$name.yaml" <<EOF
device_id: $name
models:
  - {name: mnist, version: 1, file: "$model", cut: ["7"], cut_id: c1, finish_on_device: false,
     deadline_ms: 3000}
transport: {endpoints: [${eps%,}], health_interval_ms: 100}
offline: {queue: $work/$name.db}
EOF
    : >"$work/$name.log"
    "$bin" edge --config "$work/$name.yaml" --port 0 >>"$work/$name.log" 2>&1 &
    pids+=($!)
    eval "${name}_pid=$!"
    for _ in $(seq 1 200); do port_of_log "$work/$name.log" >/dev/null && break; sleep 0.05; done
    eval "${name}_port=$(port_of_log "$work/$name.log")"
}

# send PORT ID: sends one deferrable request; prints "ID ROUTE" (the synchronous answer's route)
send() {
    local port="$1" id="$2" route
    route=$(curl -s -m 10 -X POST --data-binary "@$work/in/$((${id##*-} % 64)).npy" \
        "http://127.0.0.1:$port/v1/infer?request_id=$id&deferrable=1" |
        grep -o '"route":"[a-z]*"' | cut -d'"' -f4 || true)
    echo "$id ${route:-none}"
}

# settle PORT ROUTES_FILE: every request answered at once counts as delivered; every deferred one
# is polled until its answer arrives. Prints "delivered lost".
settle() {
    local port="$1" file="$2" delivered=0 lost=0 id route
    while read -r id route; do
        if [[ "$route" == "deferred" ]]; then
            for _ in $(seq 1 900); do
                route=$(curl -s -m 5 "http://127.0.0.1:$port/v1/requests/$id" |
                    grep -o '"route":"[a-z]*"' | cut -d'"' -f4 || true)
                [[ "$route" == "deferred" ]] || break
                sleep 0.1
            done
        fi
        if [[ "$route" == "offload" ]]; then
            delivered=$((delivered + 1))
        else
            lost=$((lost + 1))
            echo "lost: $id: $(curl -s -m 5 "http://127.0.0.1:$port/v1/requests/$id")" >&2
        fi
    done <"$file"
    echo "$delivered $lost"
}

duplicates() { sqlite3 "$work/idem.db" "select count(*) from idem where completions > 1"; }
completed() { sqlite3 "$work/idem.db" "select count(*) from idem where key like '%$1-%' and state = 2"; }

# ---- A: gateway killed mid-stream and restarted ----------------------------------------------
start_gw g1
start_edge ea "$g1_port"
n=120
for i in $(seq 0 $((n - 1))); do
    [[ $i -eq 40 ]] && kill -9 "$g1_pid"
    [[ $i -eq 80 ]] && start_gw g1 "$g1_port"
    send "$ea_port" "A-$i" >>"$work/A.routes"
done
read -r delivered lost < <(settle "$ea_port" "$work/A.routes")
dups=$(duplicates)
echo "A gateway kill/restart: sent $n, delivered $delivered, lost $lost, duplicates $dups," \
    "deferred meanwhile $(grep -c deferred "$work/A.routes" || true), completed in cloud $(completed A)"
[[ "$lost" -eq 0 && "$delivered" -eq "$n" && "$dups" -eq 0 ]] || fail "scenario A"
[[ "$(completed A)" -eq "$n" ]] || fail "scenario A: the cloud completed $(completed A) of $n"

# start_emu NAME UPSTREAM_PORT ARGS...: a link emulator driven through fd-backed FIFO NAME.fifo
start_emu() {
    local name="$1" up="$2"
    shift 2
    mkfifo "$work/$name.fifo"
    "$bin" linkemu --upstream "127.0.0.1:$up" "$@" <"$work/$name.fifo" >"$work/$name.log" 2>&1 &
    pids+=($!)
    eval "exec {${name}_fd}>\"$work/$name.fifo\""
    for _ in $(seq 1 200); do port_of_log "$work/$name.log" >/dev/null && break; sleep 0.05; done
    eval "${name}_port=$(port_of_log "$work/$name.log")"
}
emu_cmd() { local fd="${1}_fd"; echo "$2" >&"${!fd}"; }

# ---- B: agent killed while its queue drains ----------------------------------------------------
kill -9 "$g1_pid"
start_emu eb_link "$g1_port" --delay-ms 10
start_edge eb "$eb_link_port"
n=150
for i in $(seq 0 $((n - 1))); do send "$eb_port" "B-$i" >>"$work/B.routes"; done
[[ "$(grep -c " deferred$" "$work/B.routes")" -eq "$n" ]] || fail "scenario B: not everything was deferred"
start_gw g1 "$g1_port"
for _ in $(seq 1 400); do [[ "$(completed B)" -ge 20 ]] && break; sleep 0.05; done
done_at_kill=$(completed B)
kill -9 "$eb_pid"
start_edge eb "$eb_link_port"
read -r delivered lost < <(settle "$eb_port" "$work/B.routes")
dups=$(duplicates)
echo "B agent kill -9 mid-drain (after $done_at_kill of $n): sent $n, delivered $delivered," \
    "lost $lost, duplicates $dups, completed in cloud $(completed B)"
[[ "$lost" -eq 0 && "$delivered" -eq "$n" && "$dups" -eq 0 && "$(completed B)" -eq "$n" ]] ||
    fail "scenario B"

# ---- C: the link cut for a while -----------------------------------------------------------------
start_emu ec_link "$g1_port" --delay-ms 5
start_edge ec "$ec_link_port"
n=0
start=$(date +%s)
cut_at=$((start + 3))
open_at=$((cut_at + cut_s))
state=open
while [[ $(date +%s) -lt $((open_at + 3)) ]]; do
    now=$(date +%s)
    if [[ $state == open && $now -ge $cut_at && $now -lt $open_at ]]; then emu_cmd ec_link cut; state=cut; fi
    if [[ $state == cut && $now -ge $open_at ]]; then emu_cmd ec_link open; state=reopened; fi
    send "$ec_port" "C-$n" >>"$work/C.routes"
    n=$((n + 1))
    sleep 0.2
done
read -r delivered lost < <(settle "$ec_port" "$work/C.routes")
dups=$(duplicates)
echo "C link cut ${cut_s} s: sent $n, delivered $delivered, lost $lost, duplicates $dups," \
    "deferred during the cut $(grep -c deferred "$work/C.routes" || true)"
[[ "$lost" -eq 0 && "$delivered" -eq "$n" && "$dups" -eq 0 ]] || fail "scenario C"

# ---- D: one of three gateways stopped: failover ----------------------------------------------
start_gw g2
start_gw g3
start_edge ed "$g1_port" "$g2_port" "$g3_port"
n=200
failed=0
worst=0
last_ep=0
for i in $(seq 0 $((n - 1))); do
    if [[ $i -eq 100 ]]; then
        # Kill the gateway that answered the last request: the one traffic is going to.
        victim=$((last_ep + 1))
        eval "kill -9 \"\$g${victim}_pid\""
        killed_at=$i
    fi
    out=$(curl -s -m 10 -w ' %{time_total}' -X POST --data-binary "@$work/in/$((i % 64)).npy" \
        "http://127.0.0.1:$ed_port/v1/infer?request_id=D-$i&deferrable=0")
    route=$(echo "$out" | grep -o '"route":"[a-z]*"' | cut -d'"' -f4 || true)
    t=${out##* }
    last_ep=$(echo "$out" | grep -o '"endpoint":[0-9-]*' | cut -d: -f2 || echo 0)
    [[ "$route" == "offload" ]] || failed=$((failed + 1))
    if [[ $i -ge 100 && $i -lt 110 ]]; then
        worst=$(awk -v a="$worst" -v b="$t" 'BEGIN { print (b > a) ? b : a }')
    fi
done
dups=$(duplicates)
echo "D failover (gateway $victim of 3 killed at request $killed_at): sent $n, answered" \
    "$((n - failed)), failed $failed, duplicates $dups, slowest request after the kill" \
    "$(awk -v t="$worst" 'BEGIN { printf "%.1f ms", t * 1000 }')"
[[ "$failed" -eq 0 && "$dups" -eq 0 ]] || fail "scenario D"
echo "edge faults: all scenarios passed"
