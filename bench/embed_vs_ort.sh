#!/usr/bin/env bash
# Sentence embeddings, tandem vs ONNX Runtime, on the MiniLM-shaped encoder (hidden 384, 6 layers).
#
#   bench/embed_vs_ort.sh [--tandem-dir BUILD] [--models DIR] [--threads "1 2"] [--batches "1 32"]
#                         [--rounds R] [--passes P] [--limit N] [--f16] [--int8]
#
# --int8 adds tandem with int8 linear layers (`tandem embed --int8`) to every round, interleaved
# with the other two, and prints its sentences/s and its ratios to tandem float32 and to ORT.
#
# From token ids to L2-normalised mean-pooled embeddings, both engines with the same procedure
# (bench/bench_embed.c and tools/peer/embed_ort.js): the SST-2 dev sentences
# (../shared/data/text/sst2/dev.tsv, 872 texts, 3 to 60 tokens) are tokenised ONCE by
# `tandem tokenize` (truncation 256); each engine sorts them by length, cuts batches of B
# neighbours, and embeds them batch by batch (pooling and normalisation timed too). tandem runs
# the encoder built from model.safetensors (the BERT builder); ORT runs the ONNX export of the
# same weights (tools/make_minilm_st.py). For every (threads, batch) the runs are INTERLEAVED,
# tandem, ORT, tandem, ORT ... R rounds, so machine noise hits both; each engine's figure is the
# median over rounds of its sentences/s. Prints a markdown table (sentences/s, median batch
# latency, tandem/ORT; and sentences per CPU-second of the process, which a loaded machine
# disturbs less than wall time) for docs/BENCHMARKS.md, and checks that both engines' embeddings agree
# (checksum of the first component over all sentences).
#
# Needs a Release build with bench_embed (default build-embed, else build), node with the npm
# peer and /usr/bin/python3 with onnx + numpy (scripts/install-deps.sh).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
shared="${TDM_SHARED_DIR:-$repo/../shared}"
bdir=""
models=""
threads_list="1 2"
batches="1 32"
rounds=3
passes=1
limit=0
f16=""
int8=0
cmdline="bench/embed_vs_ort.sh $*"
while [ $# -gt 0 ]; do
    case "$1" in
    --tandem-dir) bdir="$2"; shift 2 ;;
    --models) models="$2"; shift 2 ;;
    --threads) threads_list="$2"; shift 2 ;;
    --batches) batches="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --passes) passes="$2"; shift 2 ;;
    --limit) limit="$2"; shift 2 ;;
    --f16) f16="--f16"; shift ;;
    --int8) int8=1; shift ;;
    -h | --help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "embed_vs_ort.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
if [ -z "$bdir" ]; then
    for d in "$repo/build-embed" "$repo/build"; do
        if [ -x "$d/bench_embed" ]; then bdir="$d"; break; fi
    done
fi
[ -n "$bdir" ] && [ -x "$bdir/bench_embed" ] && [ -x "$bdir/tandem" ] ||
    { echo "embed_vs_ort.sh: build bench_embed and tandem first (--tandem-dir BUILD)" >&2; exit 1; }
[ -d "$repo/tools/peer/node_modules/onnxruntime-node" ] ||
    { echo "embed_vs_ort.sh: the npm peer is missing (scripts/install-deps.sh)" >&2; exit 1; }
data="$shared/data/text/sst2/dev.tsv"
[ -f "$data" ] || { echo "embed_vs_ort.sh: $data is missing" >&2; exit 1; }
py=/usr/bin/python3
[ -x "$py" ] || py=python3
models="${models:-$bdir/models}"
model="$models/minilm_st${f16:+_f16}"
if [ ! -s "$model/model.safetensors" ]; then
    "$py" "$repo/tools/make_minilm_st.py" "$model" --seed 0 $f16 --tokenizer "$shared/tokenizers/all-MiniLM-L6-v2"
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/tdm_embed_bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT
# SST-2 dev sentences as JSON lines, tokenised once
tail -n +2 "$data" | cut -f1 | "$py" -c '
import json, sys
for line in sys.stdin:
    print(json.dumps({"text": line.rstrip("\n")}))' >"$work/texts.jsonl"
"$bdir/tandem" tokenize --model "$model" --max-len 256 <"$work/texts.jsonl" >"$work/ids.jsonl"
nsent=$(wc -l <"$work/ids.jsonl")
[ "$limit" -gt 0 ] && [ "$limit" -lt "$nsent" ] && nsent=$limit

field() { sed -n "s/.*\"$2\":\([-0-9.e]*\).*/\1/p" <<<"$1"; }
median() { tr ' ' '\n' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "## Sentence embeddings: tandem vs ONNX Runtime (MiniLM-shaped encoder)"
echo
echo "\`$cmdline\` — $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), $(date -u +%Y-%m-%d)."
echo "$nsent SST-2 dev sentences, token ids to normalised embeddings; tandem: encoder built from"
echo "model.safetensors${f16:+ (float16 weights, float32 compute)}; ORT: onnx/model.onnx of the same weights. Median of $rounds interleaved rounds."
echo
echo "| threads | batch | tandem sent/s | ORT sent/s | tandem/ORT | tandem p50 batch ms | ORT p50 batch ms | tandem sent/CPU-s | ORT sent/CPU-s | tandem/ORT (CPU) |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in $threads_list; do
    for b in $batches; do
        ts="" os="" tl="" ol="" tc="" oc="" tu="" ou=""
        for _ in $(seq "$rounds"); do
            r=$("$bdir/bench_embed" --model "$model" --ids "$work/ids.jsonl" --batch "$b" \
                --threads "$t" --passes "$passes" --limit "$limit")
            ts="$ts $(field "$r" sent_per_s)"; tu="$tu $(field "$r" sent_per_cpu_s)"; tl="$tl $(field "$r" p50_ms)"; tc=$(field "$r" checksum)
            r=$(node "$repo/tools/peer/embed_ort.js" --model "$model/onnx/model.onnx" \
                --ids "$work/ids.jsonl" --batch "$b" --threads "$t" --passes "$passes" --limit "$limit")
            os="$os $(field "$r" sent_per_s)"; ou="$ou $(field "$r" sent_per_cpu_s)"; ol="$ol $(field "$r" p50_ms)"; oc=$(field "$r" checksum)
            if [ "$int8" = 1 ]; then
                r=$("$bdir/bench_embed" --model "$model" --ids "$work/ids.jsonl" --batch "$b" \
                    --threads "$t" --passes "$passes" --limit "$limit" --int8 1)
                qs="${qs:-} $(field "$r" sent_per_s)"; qu="${qu:-} $(field "$r" sent_per_cpu_s)"; ql="${ql:-} $(field "$r" p50_ms)"
            fi
        done
        if [ "$int8" = 1 ]; then
            mq=$(echo $qs | median) cq=$(echo $qu | median) mt8=$(echo $ts | median) mo8=$(echo $os | median)
            i8rows="${i8rows:-}$(printf '| %s | %s | %.1f | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f |' "$t" "$b" \
                "$mq" "$mt8" "$mo8" "$(awk -v a="$mq" -v b="$mt8" 'BEGIN{print a/b}')" \
                "$(awk -v a="$mq" -v b="$mo8" 'BEGIN{print a/b}')" "$(echo $ql | median)" \
                "$(awk -v a="$cq" -v b="$(echo $ou | median)" 'BEGIN{print a/b}')")"$'\n'
            qs="" qu="" ql=""
        fi
        mt=$(echo $ts | median) mo=$(echo $os | median) ct=$(echo $tu | median) co=$(echo $ou | median)
        printf '| %s | %s | %.1f | %.1f | %.2f | %.2f | %.2f | %.1f | %.1f | %.2f |\n' "$t" "$b" \
            "$mt" "$mo" "$(awk -v a="$mt" -v b="$mo" 'BEGIN{print a/b}')" "$(echo $tl | median)" \
            "$(echo $ol | median)" "$ct" "$co" "$(awk -v a="$ct" -v b="$co" 'BEGIN{print a/b}')"
        if awk -v a="$tc" -v b="$oc" 'BEGIN{d=a-b; if (d<0) d=-d; exit !(d > 1e-3)}'; then
            echo "embed_vs_ort.sh: checksums differ (tandem $tc, ORT $oc)" >&2
            exit 1
        fi
    done
done
if [ "$int8" = 1 ]; then
    echo
    echo "tandem --int8 (int8 weights, dynamic int8 activations in the linear layers), same rounds:"
    echo
    echo "| threads | batch | int8 sent/s | f32 sent/s | ORT sent/s | int8/f32 | int8/ORT | int8 p50 batch ms | int8/ORT (CPU) |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s' "$i8rows"
fi
echo
echo "Per-round sentences/s are noisy on a shared machine; the ratio of interleaved medians is the figure to quote."
