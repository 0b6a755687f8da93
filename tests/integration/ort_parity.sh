#!/usr/bin/env bash
# Parity with ONNX Runtime: tandem's outputs must equal ORT's to 1e-4 (relative to each output's
# largest magnitude) on every real model of ../shared.
#
# For each VNN-COMP classifier (batch 1 as declared, and a batch-3 copy with a symbolic batch made
# by tools/rebatch.py, so batched execution is checked too) and for bert-tiny (seq 7 and 32, at
# batch 1 and at batch 3 with padded attention masks), it makes deterministic inputs
# (tools/peer/make_inputs.js), runs ORT (tools/peer/ort_run.js) and tandem (`tandem run`) on them,
# and compares the output folders (tools/peer/compare.js). Ends with "N passed, M failed".
#
# Environment: TDM_BIN (tandem binary), TDM_SOURCE_DIR (repository), TDM_SHARED_DIR (../shared),
# TDM_PARITY_TOL (default 1e-4). Skips (exit 77) when ../shared, node or the npm peer
# (scripts/install-deps.sh installs it) is absent.
set -uo pipefail

src="${TDM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
shared="${TDM_SHARED_DIR:-$src/../shared}"
bin="${TDM_BIN:-${TDM_BUILD_DIR:-$src/build}/tandem}"
tol="${TDM_PARITY_TOL:-1e-4}"
peer="$src/tools/peer"

if [ ! -d "$shared/models" ]; then
    echo "SKIP: $shared/models is absent (see ../shared/README.md)"
    exit 77
fi
if ! command -v node >/dev/null 2>&1 || [ ! -d "$peer/node_modules/onnxruntime-node" ]; then
    echo "SKIP: the ONNX Runtime peer is not installed (run scripts/install-deps.sh)"
    exit 77
fi
if [ ! -x "$bin" ]; then
    echo "FAIL: tandem binary '$bin' not found (set TDM_BIN)"
    exit 1
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/tdm_parity.XXXXXX")"
trap 'rm -rf "$work"' EXIT
py=/usr/bin/python3
have_onnx=0
if [ -x "$py" ] && "$py" -c 'import onnx' >/dev/null 2>&1; then
    have_onnx=1
fi

passed=0
failed=0
failures=()

# check LABEL MODEL BATCH SEQ [make_inputs options...]
check() {
    local label="$1" model="$2" batch="$3" seq="$4"
    shift 4
    local d="$work/case$((passed + failed))"
    mkdir -p "$d"
    local args
    if ! args="$(node "$peer/make_inputs.js" "$model" --batch "$batch" --seq "$seq" \
        --out "$d/in" --seed 7 "$@" 2>"$d/err")"; then
        echo "FAIL $label: make_inputs: $(tail -1 "$d/err")"
        failed=$((failed + 1))
        failures+=("$label")
        return
    fi
    # shellcheck disable=SC2086 # args is a list of --input NAME=FILE words
    if ! node "$peer/ort_run.js" "$model" $args --output-dir "$d/ort" 2>"$d/err"; then
        echo "FAIL $label: onnxruntime: $(tail -1 "$d/err")"
        failed=$((failed + 1))
        failures+=("$label")
        return
    fi
    # shellcheck disable=SC2086
    if ! "$bin" run "$model" $args --output-dir "$d/tdm" >"$d/out" 2>"$d/err"; then
        echo "FAIL $label: $(tail -1 "$d/err")"
        failed=$((failed + 1))
        failures+=("$label")
        return
    fi
    if node "$peer/compare.js" "$d/tdm" "$d/ort" --tol "$tol" >"$d/cmp" 2>&1; then
        echo "ok   $label: $(grep -m1 -o 'rel [^ ]*' "$d/cmp")"
        passed=$((passed + 1))
    else
        echo "FAIL $label:"
        sed 's/^/     /' "$d/cmp"
        failed=$((failed + 1))
        failures+=("$label")
    fi
}

for m in "$shared"/models/vnncomp/*.onnx; do
    name="$(basename "$m" .onnx)"
    check "$name b1" "$m" 1 1
    if [ "$have_onnx" -eq 1 ]; then
        "$py" "$src/tools/rebatch.py" "$m" "$work/${name}_bN.onnx" N 2>/dev/null &&
            check "$name b3 (symbolic batch)" "$work/${name}_bN.onnx" 3 1
    fi
done

bert="$shared/models/bert-tiny/onnx/model.onnx"
if [ -f "$bert" ]; then
    for seq in 7 32; do
        check "bert-tiny b1 s$seq" "$bert" 1 "$seq"
        check "bert-tiny b3 s$seq padded" "$bert" 3 "$seq" --pad
    done
else
    echo "note: $bert is absent"
fi

if [ "${#failures[@]}" -gt 0 ]; then
    echo "failed: ${failures[*]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
