#!/usr/bin/env bash
# The committed Fashion-MNIST models (models/fashion-mnist, made by tools/train_fashion_mnist.py):
#   - each file's sha256 and size equal what manifest.json records;
#   - `tandem eval` on the t10k test set gets the same number of correct answers as PyTorch did
#     for every output (edge exit1, exit2, logits; cloud logits), within 1 image (float rounding
#     can flip a near-tie; docs/models.md). Release builds check all 10000 images, sanitizer builds
#     the first 1000 (manifest: pytorch_first1000_correct) to stay fast;
#   - `tandem cascade` runs on the pair (first 1000 images, 200 under ASan): at threshold 0 it is
#     the edge alone, and --plot writes a PNG;
#   - bad usage of `tandem cascade` exits 2 (1 for a missing file) with one line.
# Environment: TDM_BIN, TDM_SOURCE_DIR, TDM_BUILD_DIR, TDM_FMNIST_DIR (default: Debian's
# dataset-fashion-mnist folder). Skips (77) when the dataset is absent.
set -uo pipefail

src="${TDM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
bin="${TDM_BIN:-${TDM_BUILD_DIR:-$src/build}/tandem}"
models="$src/models/fashion-mnist"
data="${TDM_FMNIST_DIR:-/usr/share/datasets/fashion-mnist}"
manifest="$models/manifest.json"

if [ ! -x "$bin" ]; then
    echo "FAIL: tandem binary '$bin' not found (set TDM_BIN)"
    exit 1
fi
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}

# usage_case WANT_RC PATTERN ARGS...: exit code and a one-line message (any length for --help).
usage_case() {
    local want="$1" pattern="$2"
    shift 2
    local out rc=0
    out="$("$bin" cascade "$@" 2>&1)" || rc=$?
    if [ "$rc" -eq "$want" ] && grep -q -- "$pattern" <<<"$out" &&
        { [ "$want" -eq 0 ] || [ "$(wc -l <<<"$out")" -eq 1 ]; }; then
        ok
    else
        bad "cascade $*: exit $rc (want $want), output: $out"
    fi
}
usage_case 0 "usage: tandem cascade" --help
usage_case 2 "unknown option '--bogus'" --edge a --cloud b --bogus
usage_case 2 "--thresholds: value 2 (1.5)" --edge a --cloud b --thresholds 0.5,1.5
usage_case 2 "--temperature: '0'" --edge a --cloud b --temperature 0
usage_case 2 "--dataset: 'svhn'" --edge a --cloud b --dataset svhn
usage_case 1 "/nonexistent/e.onnx: cannot open" --edge /nonexistent/e.onnx --cloud "$manifest"

# The manifest: "file block key value" lines for the sha256, size and correct counts.
if [ ! -f "$manifest" ]; then
    bad "$manifest is missing"
    echo "$passed passed, $failed failed"
    exit 1
fi
table="$(awk '
    /"file":/ { gsub(/[",]/, "", $2); cur = $2 }
    /"sha256":/ { gsub(/[",]/, "", $2); print cur, "sha256", "-", $2 }
    /"size":/ { gsub(/[",]/, "", $2); print cur, "size", "-", $2 }
    /"pytorch_test_correct": \{/ { blk = "full"; next }
    /"pytorch_first1000_correct": \{/ { blk = "first1000"; next }
    blk != "" && /\}/ { blk = "" }
    blk != "" { k = $1; v = $2; gsub(/[":,]/, "", k); gsub(/[",]/, "", v); print cur, blk, k, v }
' "$manifest")"
for f in edge.onnx cloud.onnx; do
    want="$(awk -v f="$f" '$1 == f && $2 == "sha256" { print $4 }' <<<"$table")"
    size="$(awk -v f="$f" '$1 == f && $2 == "size" { print $4 }' <<<"$table")"
    if [ ! -f "$models/$f" ]; then
        bad "$models/$f is missing"
        continue
    fi
    got="$(sha256sum "$models/$f" | cut -d' ' -f1)"
    [ -n "$want" ] && [ "$got" = "$want" ] && ok || bad "$f: sha256 $got, manifest says '$want'"
    got_size="$(stat -c %s "$models/$f")"
    [ "$got_size" = "$size" ] && ok || bad "$f: $got_size bytes, manifest says '$size'"
    [ "$got_size" -lt 2097152 ] && ok || bad "$f: $got_size bytes is not under 2 MB"
done

if [ ! -f "$data/t10k-images-idx3-ubyte.gz" ] && [ ! -f "$data/t10k-images-idx3-ubyte" ]; then
    echo "SKIP: $data holds no Fashion-MNIST test set (Debian package dataset-fashion-mnist)"
    [ "$failed" -eq 0 ] && exit 77
    echo "$passed passed, $failed failed"
    exit 1
fi

blk=full
limit=()
cascade_n=1000
if [ -n "${TDM_BUILD_DIR:-}" ] && grep -q '^TDM_SANITIZE:BOOL=ON' "$TDM_BUILD_DIR/CMakeCache.txt" 2>/dev/null; then
    blk=first1000
    limit=(--limit 1000)
    cascade_n=200
fi
# eval_case FILE OUTPUT: tandem's correct count vs PyTorch's, within 1 image.
eval_case() {
    local f="$1" o="$2" want out got
    want="$(awk -v f="$f" -v b="$blk" -v o="$o" '$1 == f && $2 == b && $3 == o { print $4 }' <<<"$table")"
    out="$("$bin" eval "$models/$f" --dataset fashion --data "$data" --output "$o" --threads 2 \
        --batch 250 "${limit[@]}" --json 2>&1)"
    got="$(sed -n 's/.*"correct":\([0-9]*\).*/\1/p' <<<"$out")"
    if [ -n "$want" ] && [ -n "$got" ] && [ $((got - want)) -le 1 ] && [ $((want - got)) -le 1 ]; then
        echo "$f:$o: tandem $got correct, PyTorch $want ($blk)"
        ok
    else
        bad "$f:$o: tandem '$got' correct, PyTorch '$want' ($blk): $out"
    fi
}
eval_case edge.onnx exit1
eval_case edge.onnx exit2
eval_case edge.onnx logits
eval_case cloud.onnx logits

# The cascade: at threshold 0 everything stays at the edge and the cascade's accuracy is the
# edge's; --plot writes a PNG. One run for both checks.
plot="$(mktemp /tmp/tdm_cascade_XXXXXX.png)"
trap 'rm -f "$plot"' EXIT
out="$("$bin" cascade --edge "$models/edge.onnx" --cloud "$models/cloud.onnx" --data "$data" \
    --thresholds 0,0.9 --limit "$cascade_n" --threads 2 --plot "$plot" --json 2>&1)"
if grep -q '"points":\[{"threshold":0,"frac_edge":1,"frac_cloud":0,"accuracy":\([0-9.]*\),.*"edge_accuracy":\1,' <<<"$out"; then
    ok
else
    bad "cascade at threshold 0 is not the edge alone: $out"
fi
if [ "$(head -c 4 "$plot" | tail -c 3)" = "PNG" ]; then
    ok
else
    bad "cascade --plot did not write a PNG"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
