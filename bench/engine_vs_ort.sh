#!/usr/bin/env bash
# tandem vs ONNX Runtime, side by side on one machine in one run.
#
#   bench/engine_vs_ort.sh [--tandem BIN] [--models DIR] [--threads "1 2"] [--rounds R] [--quick]
#                          [--cases cnn|minilm|all] [--no-rss]
#
# For every case and thread count both engines run the same inputs with the same contract
# (`tandem run` and tools/peer/ort_run.js, `--repeat N`, one JSON line each), and the runs are
# INTERLEAVED (tandem, ORT, tandem, ORT, ... R rounds): a burst of machine noise then hits both
# engines rather than one, which matters on a shared 2-core machine. Each engine's latency is the
# median over rounds of its p50. Prints a markdown table ready for docs/BENCHMARKS.md:
#   p50 latency of each engine and tandem/ORT (lower is better for tandem),
#   throughput in items/s (batch / p50) of each and tandem/ORT (higher is better),
#   tandem's GFLOP/s (tools/flops.py: 2 x MACs of Conv/MatMul/Gemm) and the fraction of peak,
#   peak = 227 GFLOP/s per core x threads (AVX-512: 2 FMA units x 16 lanes x 2 flops x ~3.5 GHz).
# Then the peak RSS of `tandem run` (and of ORT, node included) on the MiniLM-shaped encoder
# against its weight bytes (target: tandem RSS / weights < 1.3).
#
# Models come from tools/make_models.sh (MiniLM-shaped encoder, batch-64 CNN copies) and
# ../shared/models/vnncomp. Needs node with the npm peer and python3-onnx
# (scripts/install-deps.sh) and a Release build of tandem.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${TDM_SHARED_DIR:-$repo/../shared}"
tandem="${TDM_BIN:-$repo/build/tandem}"
models=""
threads_list="1 2"
rounds=3
quick=0
cases=all
do_rss=1
peak_per_core=227
cmdline="bench/engine_vs_ort.sh $*"

while [ $# -gt 0 ]; do
    case "$1" in
    --tandem) tandem="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --threads) threads_list="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --quick) quick=1; rounds=1; shift ;;
    --cases) cases="$2"; shift 2 ;;
    --no-rss) do_rss=0; shift ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "engine_vs_ort.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done

py=/usr/bin/python3
[ -x "$py" ] || py=python3
peer="$repo/tools/peer"
[ -x "$tandem" ] || { echo "engine_vs_ort.sh: tandem binary '$tandem' not found (--tandem BIN)" >&2; exit 1; }
[ -d "$peer/node_modules/onnxruntime-node" ] ||
    { echo "engine_vs_ort.sh: the npm peer is missing (scripts/install-deps.sh)" >&2; exit 1; }
models="${models:-$repo/build/models}"
"$repo/tools/make_models.sh" "$models" >/dev/null

work="$(mktemp -d "${TMPDIR:-/tmp}/tdm_bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# json_field FIELD <<< line
json_field() { sed -n "s/.*\"$1\":\([0-9.eE+-]*\).*/\1/p"; }

median() { sort -g | awk '{v[NR]=$1} END {if (NR == 0) print ""; else print v[int((NR + 1) / 2)]}'; }

# case LABEL MODEL BATCH SEQ REPEAT
rows=()
bench_case() {
    local label="$1" model="$2" batch="$3" seq="$4" repeat="$5"
    [ "$quick" -eq 1 ] && repeat=$(((repeat + 3) / 4))
    local d="$work/$(echo "$label" | tr -c 'A-Za-z0-9_.-' '_')"
    mkdir -p "$d"
    local args
    args="$(node "$peer/make_inputs.js" "$model" --batch "$batch" --seq "$seq" --out "$d/in")"
    local flops
    flops="$("$py" "$repo/tools/flops.py" "$model" --dim "batch=$batch" --dim "seq=$seq" \
        --batch "$batch")"
    for t in $threads_list; do
        local tp=() op=() terr="" oerr=""
        for ((r = 0; r < rounds; r++)); do
            local line
            # shellcheck disable=SC2086 # args is a list of --input NAME=FILE words
            if line="$("$tandem" run "$model" $args --output-dir "$d/tdm" --threads "$t" \
                --repeat "$repeat" 2>"$d/terr")"; then
                tp+=("$(json_field p50_ms <<<"$line")")
            else
                terr="$(tail -1 "$d/terr")"
            fi
            # shellcheck disable=SC2086
            if line="$(node "$peer/ort_run.js" "$model" $args --output-dir "$d/ort" \
                --threads "$t" --repeat "$repeat" 2>"$d/oerr")"; then
                op+=("$(json_field p50_ms <<<"$line")")
            else
                oerr="$(tail -1 "$d/oerr")"
            fi
        done
        local tm om
        tm="$(printf '%s\n' "${tp[@]:-}" | grep . | median || true)"
        om="$(printf '%s\n' "${op[@]:-}" | grep . | median || true)"
        [ -n "$terr" ] && echo "note: $label t$t: tandem: $terr" >&2
        [ -n "$oerr" ] && echo "note: $label t$t: ORT: $oerr" >&2
        rows+=("$(awk -v l="$label" -v b="$batch" -v t="$t" -v tm="$tm" -v om="$om" \
            -v f="$flops" -v peak="$peak_per_core" 'BEGIN {
            ts = (tm == "") ? "error" : sprintf("%.3f", tm)
            os = (om == "") ? "error" : sprintf("%.3f", om)
            lr = (tm == "" || om == "") ? "-" : sprintf("%.2f", tm / om)
            tt = (tm == "") ? "-" : sprintf("%.1f", b * 1000 / tm)
            ot = (om == "") ? "-" : sprintf("%.1f", b * 1000 / om)
            tr = (tm == "" || om == "") ? "-" : sprintf("%.2f", om / tm)
            gf = (tm == "") ? "-" : sprintf("%.1f", f / (tm / 1000) / 1e9)
            pk = (tm == "") ? "-" : sprintf("%.1f%%", 100 * f / (tm / 1000) / 1e9 / (peak * t))
            printf "| %s | %d | %s | %s | %s | %s | %s | %s | %.4g | %s | %s |", l, t, ts, os, lr,
                   tt, ot, tr, f / 1e9, gf, pk }')")
        echo "done: $label threads $t: tandem ${tm:-error} ms, ORT ${om:-error} ms" >&2
    done
}

vnn="$shared/models/vnncomp"
if [ "$cases" = all ] || [ "$cases" = cnn ]; then
    for m in Convnet_maxpool mnist-net_256x4 cifar_wide_kw resnet_4b; do
        [ -f "$vnn/$m.onnx" ] || { echo "note: $vnn/$m.onnx absent" >&2; continue; }
        bench_case "$m b1" "$vnn/$m.onnx" 1 1 400
        bench_case "$m b64" "$models/${m}_b64.onnx" 64 1 60
    done
fi
if [ "$cases" = all ] || [ "$cases" = minilm ]; then
    bench_case "MiniLM-L6 b1 s16" "$models/minilm.onnx" 1 16 100
    bench_case "MiniLM-L6 b1 s128" "$models/minilm.onnx" 1 128 30
    bench_case "MiniLM-L6 b32 s128" "$models/minilm.onnx" 32 128 4
fi

cpu="$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1)"
ortv="$(node -p "require('$peer/node_modules/onnxruntime-node/package.json').version")"
rev="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
echo
echo "Command: \`$cmdline\` ($(date -u +%Y-%m-%d), tandem $rev, onnxruntime-node $ortv, $cpu," \
    "$(nproc) cores, $rounds interleaved rounds, median of per-round p50)"
echo
echo "| case | threads | tandem p50 ms | ORT p50 ms | latency tandem/ORT | tandem items/s |" \
    "ORT items/s | throughput tandem/ORT | GFLOP | tandem GFLOP/s | of peak |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"

if [ "$do_rss" -eq 1 ] && [ -x /usr/bin/time ]; then
    m="$models/minilm.onnx"
    d="$work/rss"
    args="$(node "$peer/make_inputs.js" "$m" --batch 1 --seq 128 --out "$d/in")"
    wbytes="$("$py" -c 'import sys, onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
print(sum(numpy_helper.to_array(t).nbytes for t in m.graph.initializer))' "$m")"
    # shellcheck disable=SC2086
    if /usr/bin/time -v "$tandem" run "$m" $args --output-dir "$d/tdm" 2>"$d/time" >/dev/null; then
        rss_kb="$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$d/time")"
    else
        rss_kb=""
        echo "note: tandem run for RSS failed: $(grep -v '^\s' "$d/time" | tail -1)" >&2
    fi
    # shellcheck disable=SC2086
    /usr/bin/time -v node "$peer/ort_run.js" "$m" $args --output-dir "$d/ort" 2>"$d/otime" \
        >/dev/null || true
    orss_kb="$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$d/otime")"
    echo
    awk -v w="$wbytes" -v r="${rss_kb:-0}" -v o="${orss_kb:-0}" 'BEGIN {
        printf "Peak RSS, MiniLM-L6 (b1 s128, one run): weights %.1f MB; ", w / 1e6
        if (r > 0) printf "tandem %.1f MB (%.2fx weights, target < 1.3); ", r * 1024 / 1e6, r * 1024 / w
        else printf "tandem: failed; "
        if (o > 0) printf "ORT (node process) %.1f MB (%.2fx)\n", o * 1024 / 1e6, o * 1024 / w
        else printf "ORT: failed\n" }'
fi
