#!/usr/bin/env bash
# `tandem embed` end to end: for the 201 texts of ../shared/models/bert-tiny/embeddings_ref.jsonl,
# the safetensors directory and onnx/model.onnx, at --batch 1 and 32, every output line must have
# cosine >= 0.99999 to the Hugging Face reference embedding (min cosine printed per run). Then the
# command's contract: texts as arguments, input order kept, a bad JSON line answered in place with
# an error naming its line number and exit 1, bad usage exit 2, a bad model path exit 1.
set -euo pipefail
: "${TDM_BIN:?TDM_BIN must point at the tandem binary}"
shared="${TDM_SHARED_DIR:-$(dirname "$0")/../../../shared}"
model="$shared/models/bert-tiny"
ref="$model/embeddings_ref.jsonl"
if [ ! -f "$ref" ] || [ ! -f "$model/onnx/model.onnx" ]; then
    echo "SKIP: $ref or $model/onnx/model.onnx is absent (see ../shared/README.md)"
    exit 77
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/tdm_embed_test.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# min cosine between the "embedding" arrays of two JSON-lines files, line by line
min_cos() {
    paste -d '\t' "$1" "$2" | awk -F'\t' '
        function vec(s, v,   a, n, i) {
            sub(/.*"embedding": *\[/, "", s); sub(/\].*/, "", s)
            n = split(s, a, /, */)
            for (i = 1; i <= n; i++) v[i] = a[i] + 0
            return n
        }
        BEGIN { mn = 2 }
        {
            n = vec($1, x); m = vec($2, y)
            if (n != m || n == 0) { print "dimension mismatch on line " NR > "/dev/stderr"; exit 1 }
            ab = aa = bb = 0
            for (i = 1; i <= n; i++) { ab += x[i] * y[i]; aa += x[i] * x[i]; bb += y[i] * y[i] }
            c = ab / sqrt(aa * bb)
            if (c < mn) mn = c
        }
        END { printf "%.9f %d\n", mn, NR }'
}

fail=0
for m in "$model" "$model/onnx/model.onnx"; do
    for b in 1 32; do
        "$TDM_BIN" embed --model "$m" --batch "$b" <"$ref" >"$work/out.jsonl"
        read -r mn lines < <(min_cos "$work/out.jsonl" "$ref")
        echo "embed --model ${m#"$shared"/} --batch $b: $lines texts, min cosine $mn"
        [ "$lines" -eq 201 ] || { echo "FAIL: expected 201 lines"; fail=1; }
        awk -v c="$mn" 'BEGIN { exit !(c >= 0.99999) }' || { echo "FAIL: cosine below 0.99999"; fail=1; }
    done
done

# texts as arguments == the same texts on stdin, in order
"$TDM_BIN" embed --model "$model" "a short one" "and a somewhat longer second text ." >"$work/args.jsonl"
printf '{"text": "a short one"}\n\n{"text": "and a somewhat longer second text ."}\n' |
    "$TDM_BIN" embed --model "$model" >"$work/stdin.jsonl"
cmp -s "$work/args.jsonl" "$work/stdin.jsonl" || { echo "FAIL: args and stdin differ"; fail=1; }
[ "$(wc -l <"$work/args.jsonl")" -eq 2 ] || { echo "FAIL: expected 2 lines from args"; fail=1; }

# a bad line: answered in place, named on stderr, exit 1
set +e
printf '{"text": "fine"}\n{"text": 3}\nnot json\n{"text": "also fine"}\n' |
    "$TDM_BIN" embed --model "$model" >"$work/bad.jsonl" 2>"$work/bad.err"
rc=$?
set -e
[ "$rc" -eq 1 ] || { echo "FAIL: bad lines exit $rc, want 1"; fail=1; }
grep -q 'line 2:' "$work/bad.err" && grep -q 'line 3' "$work/bad.err" ||
    { echo "FAIL: stderr does not name lines 2 and 3:"; cat "$work/bad.err"; fail=1; }
[ "$(sed -n 2p "$work/bad.jsonl" | cut -c1-9)" = '{"error":' ] &&
    [ "$(sed -n 4p "$work/bad.jsonl" | cut -c1-13)" = '{"embedding":' ] ||
    { echo "FAIL: output lines not aligned with input lines"; fail=1; }

# usage and load errors
set +e
"$TDM_BIN" embed "text" >/dev/null 2>&1; rc1=$?
"$TDM_BIN" embed --model "$model" --batch 0 x >/dev/null 2>&1; rc2=$?
"$TDM_BIN" embed --model "$work/nope" x >/dev/null 2>"$work/nope.err"; rc3=$?
set -e
[ "$rc1" -eq 2 ] && [ "$rc2" -eq 2 ] || { echo "FAIL: bad usage exits $rc1/$rc2, want 2"; fail=1; }
[ "$rc3" -eq 1 ] && grep -q "$work/nope" "$work/nope.err" ||
    { echo "FAIL: missing model exits $rc3, want 1 with the path named"; fail=1; }
"$TDM_BIN" embed --help | grep -q 'usage: tandem embed' || { echo "FAIL: --help"; fail=1; }

[ "$fail" -eq 0 ] && echo "embed_ref: all checks passed"
exit "$fail"
