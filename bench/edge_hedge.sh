#!/usr/bin/env bash
# Hedged requests against a region that stalls: tail latency of offloads with hedging off, with
# a fixed hedge delay and with the automatic one (the endpoint's RTO).
#
# Two `tandem serve` gateways ("regions"), each behind a `tandem linkemu`: A is nearer (25 ± 5 ms
# one-way) but stalls for STALL_MS every second (a congested cell, a GC pause, a retransmit); B is
# farther (35 ± 5 ms). The `tandem edge` daemon sends every request to the cloud (mode cloud, its
# result cache off), N requests one after another, for each hedge setting; latency is the agent's
# own total_ms. Settings are run in turn against the same links, so compare within one run.
#
# usage: bench/edge_hedge.sh [BUILD_DIR] [N]      (env: STALL_MS=200 SETTINGS="0 90 auto")
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
# shellcheck source=../tests/support/fixtures.sh
source "$root/tests/support/fixtures.sh"
build="${1:-$root/build}"
n="${2:-300}"
stall_ms="${STALL_MS:-200}"
settings="${SETTINGS:-0 90 auto}"
bin="$build/tandem"
[[ -x "$bin" ]] || { echo "edge_hedge: $bin is not built" >&2; exit 1; }
for c in curl perl awk; do command -v "$c" >/dev/null || { echo "edge_hedge: needs $c" >&2; exit 1; }; done

work="$(mktemp -d /tmp/tandem-hedge-XXXXXX)"
pids=()
cleanup() {
    for p in "${pids[@]:-}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/repo/fmnist/1"
ln -s "$root/models/fashion-mnist/cloud.onnx" "$work/repo/fmnist/1/model.onnx"
printf 'task: classify\n' >"$work/repo/fmnist/1/model.yaml"
write_images "$work" x 64 5 0

wait_port() { for _ in $(seq 1 200); do port_of_log "$1" >/dev/null && return 0; sleep 0.05; done; return 1; }

for g in ga gb; do
    "$bin" serve --auth none --port 0 --model-repo "$work/repo" --port-file "$work/$g.port" \
        --log-requests false >"$work/$g.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 1 200); do [[ -s "$work/$g.port" ]] && break; sleep 0.05; done
done
mkfifo "$work/a.fifo"
"$bin" linkemu --upstream "127.0.0.1:$(cat "$work/ga.port")" --delay-ms 25 --jitter-ms 5 \
    <"$work/a.fifo" >"$work/a.log" 2>&1 &
pids+=($!)
exec {afd}>"$work/a.fifo"
mkfifo "$work/b.fifo" # stdin stays open: the emulator ends at end of input
"$bin" linkemu --upstream "127.0.0.1:$(cat "$work/gb.port")" --delay-ms 35 --jitter-ms 5 \
    <"$work/b.fifo" >"$work/b.log" 2>&1 &
pids+=($!)
exec {bfd}>"$work/b.fifo"
wait_port "$work/a.log" && wait_port "$work/b.log"
a_port=$(port_of_log "$work/a.log")
b_port=$(port_of_log "$work/b.log")

# region A stalls for stall_ms at the start of every second
(
    while sleep 0.8; do
        echo stall >&"$afd"
        sleep "$(awk -v m="$stall_ms" 'BEGIN { print m / 1000 }')"
        echo open >&"$afd"
    done
) &
pids+=($!)

echo "edge_hedge: $n sequential offloads per setting; region A 25±5 ms one-way, stalls ${stall_ms} ms every ~1 s; region B 35±5 ms"
echo
echo "| hedge_after_ms | mean ms | p50 ms | p95 ms | p99 ms | max ms | hedges | answered by B |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for s in $settings; do
    cat >"$work/edge.yaml" <<EOF
device_id: hedge-bench
models:
  - {name: fmnist, version: "1", file: "$root/models/fashion-mnist/cloud.onnx", mode: cloud,
     finish_on_device: false, cloud_only_model: fmnist, deadline_ms: 5000}
transport: {endpoints: ["http://127.0.0.1:$a_port", "http://127.0.0.1:$b_port"],
            health_interval_ms: 1000, hedge_after_ms: $s}
cache: {ttl_s: 0}
EOF
    : >"$work/edge.log"
    "$bin" edge --config "$work/edge.yaml" --port 0 >"$work/edge.log" 2>&1 &
    epid=$!
    pids+=($epid)
    wait_port "$work/edge.log"
    ep=$(port_of_log "$work/edge.log")
    : >"$work/lat.txt"
    for i in $(seq 1 $((n + 20))); do
        out=$(curl -s -m 10 -X POST --data-binary "@$work/x$((i % 64)).npy" \
            "http://127.0.0.1:$ep/v1/infer?model=fmnist&request_id=h$s-$i")
        ((i > 20)) || continue # warm-up: connections, RTT estimates
        t=$(grep -o '"total_ms":[0-9.]*' <<<"$out" | cut -d: -f2)
        e=$(grep -o '"endpoint":[-0-9]*' <<<"$out" | cut -d: -f2)
        echo "${t:-nan} ${e:--1}" >>"$work/lat.txt"
    done
    curl -s "http://127.0.0.1:$ep/metrics" >"$work/metrics.txt"
    [[ -n "${HEDGE_DEBUG:-}" ]] && grep endpoint "$work/metrics.txt" >&2
    hedges=$(cat "$work/metrics.txt" |
        awk '/^tandem_edge_hedges_total/ {s += $2} END {print s + 0}')
    sort -n -k1,1 "$work/lat.txt" | awk -v s="$s" -v h="$hedges" '
        { v[NR] = $1; sum += $1; if ($2 == 1) b++ }
        function q(p) { i = int(p * (NR - 1) + 0.5) + 1; return v[i] }
        END { printf "| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %d | %.1f%% |\n",
              s, sum / NR, q(0.5), q(0.95), q(0.99), v[NR], h, 100 * b / NR }'
    kill "$epid" 2>/dev/null || true
    wait "$epid" 2>/dev/null || true
done
