#!/usr/bin/env bash
# Split models: at every cut that `tandem inspect` lists, head then tail must equal the unsplit
# model within 1e-5 (relative to each output's largest magnitude), three ways:
#   1. from the one original file (tdm_session_run_range inputs -> cut -> outputs): inspect --verify
#   2. from head.onnx + tail.onnx written by `tandem split`, run by tandem: split --verify
#   3. the same two files run by ONNX Runtime (split_ort.js; skipped with a message when the npm
#      peer is absent).
# Models: every VNN-COMP model of ../shared, and models/fashion-mnist/{edge,cloud}.onnx of the
# repository when present. Also checks cut selection by tensor names and the errors for a cut that
# does not separate the model and for an unknown tensor.
#
# Environment: TDM_BIN, TDM_SOURCE_DIR, TDM_SHARED_DIR; TDM_SPLIT_TOL (default 1e-5).
set -uo pipefail

src="${TDM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
shared="${TDM_SHARED_DIR:-$src/../shared}"
bin="${TDM_BIN:-${TDM_BUILD_DIR:-$src/build}/tandem}"
tol="${TDM_SPLIT_TOL:-1e-5}"

if [ ! -d "$shared/models/vnncomp" ]; then
    echo "SKIP: $shared/models/vnncomp is absent (see ../shared/README.md)"
    exit 77
fi
if [ ! -x "$bin" ]; then
    echo "FAIL: tandem binary '$bin' not found (set TDM_BIN)"
    exit 1
fi
have_ort=1
if ! command -v node >/dev/null 2>&1 || [ ! -d "$src/tools/peer/node_modules/onnxruntime-node" ]; then
    echo "NOTE: ONNX Runtime peer not installed: the ORT part is skipped (scripts/install-deps.sh)"
    have_ort=0
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/tdm_split.XXXXXX")"
trap 'rm -rf "$work"' EXIT

models=("$shared"/models/vnncomp/*.onnx)
for f in "$src/models/fashion-mnist/edge.onnx" "$src/models/fashion-mnist/cloud.onnx"; do
    [ -f "$f" ] && models+=("$f")
done
# bert-tiny: three inputs, symbolic batch and sequence, inputs passed through to the tail
bert="$shared/models/bert-tiny/onnx/model.onnx"
[ -f "$bert" ] && models+=("$bert")
shape_args() {
    case "$1" in
    */bert-tiny/*) echo "--input-shape input_ids=2x5 --input-shape attention_mask=2x5" \
        "--input-shape token_type_ids=2x5" ;;
    esac
}

failed=0
fail() {
    echo "FAIL $*"
    failed=$((failed + 1))
}

for model in "${models[@]}"; do
    dir="$(dirname "$model")"
    [ "$(basename "$dir")" = onnx ] && dir="$(dirname "$dir")"
    name="$(basename "$dir")_$(basename "$model" .onnx)"
    d="$work/$name"
    mkdir -p "$d"
    # 1. head + tail from the original file, every cut
    # shellcheck disable=SC2046
    if ! "$bin" inspect "$model" $(shape_args "$model") --verify --tol "$tol" --json \
        >"$d/inspect.json" 2>"$d/err"; then
        fail "$name: inspect --verify: $(tail -1 "$d/err")"
        continue
    fi
    n="$(grep -o '"index":' "$d/inspect.json" | wc -l)"
    orig_max="$(grep -o '"max_rel_err":[^,}]*' "$d/inspect.json" | cut -d: -f2 | sort -g | tail -1)"
    if [ "$n" -lt 1 ]; then
        fail "$name: no cuts listed"
        continue
    fi
    # 2. head.onnx + tail.onnx in tandem, every cut (DIR/cut<k>)
    # shellcheck disable=SC2046
    if ! "$bin" split "$model" $(shape_args "$model") --cut all --out "$d" --verify --save-io --tol "$tol" \
        >"$d/split.log" 2>"$d/err"; then
        fail "$name: split --cut all --verify: $(tail -1 "$d/err")"
        continue
    fi
    written="$(ls -d "$d"/cut*/ 2>/dev/null | wc -l)"
    if [ "$written" != "$n" ]; then
        fail "$name: inspect lists $n cuts, split wrote $written"
    fi
    files_max="$(sed -n 's/.*"max_rel_err_files":\([^,}]*\).*/\1/p' "$d/split.log" | sort -g | tail -1)"
    # 3. the same files in ONNX Runtime
    ort_max="skipped"
    if [ "$have_ort" = 1 ]; then
        if node "$src/tests/integration/split_ort.js" "$d" --tol "$tol" >"$d/ort.log" 2>&1; then
            ort_max="$(tail -1 "$d/ort.log" | sed -n 's/.*max_rel \([^,]*\),.*/\1/p')"
        else
            fail "$name: ORT: $(grep -m1 FAIL "$d/ort.log" || tail -1 "$d/ort.log")"
        fi
    fi
    printf '%-36s cuts %3d  max_rel original %-10s files %-10s ort %s\n' "$name" "$n" \
        "${orig_max:-0}" "$files_max" "$ort_max"
done

# Cut selection by names: resnet_2b's listed cut with two tensors, named in either order.
m="$shared/models/vnncomp/resnet_2b.onnx"
two="$("$bin" inspect "$m" | awk 'NR > 2 && NF == 8 { print $1, $7, $8; exit }')"
if [ -n "$two" ]; then
    read -r idx a b <<<"$two"
    a="${a%%[*}"
    b="${b%%[*}"
    if ! "$bin" split "$m" --cut "$b,$a" --out "$work/byname" >/dev/null 2>"$work/err"; then
        fail "split --cut $b,$a: $(cat "$work/err")"
    elif ! grep -q "\"cut_index\": $idx," "$work/byname/manifest.json"; then
        fail "split --cut $b,$a: manifest does not name cut $idx"
    fi
    # the later tensor of a two-tensor frontier alone does not separate the model: usage error, no files
    "$bin" split "$m" --cut "$b," --out "$work/bad" >/dev/null 2>"$work/err"
    rc=$?
    if [ "$rc" != 2 ] || ! grep -q "do not separate" "$work/err" || [ -e "$work/bad/head.onnx" ]; then
        fail "split --cut $b, (not a separator): rc $rc, $(cat "$work/err")"
    fi
else
    fail "resnet_2b lists no two-tensor cut"
fi
"$bin" split "$m" --cut no_such_tensor --out "$work/bad2" >/dev/null 2>"$work/err"
rc=$?
if [ "$rc" != 2 ] || ! grep -q "no_such_tensor" "$work/err"; then
    fail "split --cut no_such_tensor: rc $rc, $(cat "$work/err")"
fi
"$bin" split "$m" --cut 999 --out "$work/bad3" >/dev/null 2>"$work/err"
rc=$?
if [ "$rc" != 2 ] || ! grep -q "no such cut" "$work/err"; then
    fail "split --cut 999: rc $rc, $(cat "$work/err")"
fi

# --profile: head and tail latency for every cut
m="$shared/models/vnncomp/Convnet_maxpool.onnx"
if ! "$bin" inspect "$m" --profile --repeat 3 --json >"$work/prof.json" 2>"$work/err"; then
    fail "inspect --profile: $(cat "$work/err")"
elif [ "$(grep -o '"head_ms":[0-9.e-]*,"tail_ms":[0-9.e-]*' "$work/prof.json" | wc -l)" != \
    "$(grep -o '"index":' "$work/prof.json" | wc -l)" ]; then
    fail "inspect --profile: not every cut has head_ms and tail_ms"
fi

if [ "$failed" -gt 0 ]; then
    echo "split: $failed failures"
    exit 1
fi
echo "split: all cuts of ${#models[@]} models equal the unsplit model within $tol"
