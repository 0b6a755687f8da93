#!/usr/bin/env bash
# `tandem codec sweep` on a real model and real data: the MNIST Convnet of ../shared at one cut,
# the first 500 test images, the small grid. Checks the command's usage contract (no data
# needed), then that the sweep runs, that --json parses and holds every setting of the grid,
# that the lossless and f16 rows lose nothing and agree with the uncompressed model on every
# image (the tail sees the same activations, or activations within half an f16 step), that the
# reference accuracy equals `tandem eval`'s, that int4 is smaller than int8 and both smaller
# than float32, and that --plot writes a PNG. Environment: TDM_BIN, TDM_SHARED_DIR. Skips (77)
# without ../shared.
set -uo pipefail

src="${TDM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
shared="${TDM_SHARED_DIR:-$src/../shared}"
bin="${TDM_BIN:-${TDM_BUILD_DIR:-$src/build}/tandem}"
model="$shared/models/vnncomp/Convnet_maxpool.onnx"
mnist="$shared/data/mnist"

if [ ! -x "$bin" ]; then
    echo "FAIL: tandem binary '$bin' not found (set TDM_BIN)"
    exit 1
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() {
    echo "FAIL: $*"
    failed=$((failed + 1))
}

# usage_case WANT_RC PATTERN ARGS...: exit code and a one-line message (usage text for 0).
usage_case() {
    local want="$1" pattern="$2"
    shift 2
    local out rc=0
    out="$("$bin" codec "$@" 2>&1)" || rc=$?
    if [ "$rc" -eq "$want" ] && grep -q -- "$pattern" <<<"$out" &&
        { [ "$want" -eq 0 ] || [ "$(wc -l <<<"$out")" -eq 1 ]; }; then
        ok
    else
        bad "codec $*: exit $rc (want $want), output: $out"
    fi
}
usage_case 0 "subcommands:" --help
usage_case 2 "unknown subcommand 'nope'" nope
usage_case 0 "usage: tandem codec sweep" sweep --help
usage_case 2 "unknown option '--bogus'" sweep m.onnx --cut 1 --dataset mnist --bogus
usage_case 2 "--grid: 'huge' is not small or full" sweep m.onnx --cut 1 --dataset mnist --grid huge
usage_case 2 "--max-loss: 'x'" sweep m.onnx --cut 1 --dataset mnist --max-loss x
usage_case 2 "'foo' is not mnist" sweep m.onnx --cut 1 --dataset foo
usage_case 2 "--data PATH is required" sweep m.onnx --cut 1 --dataset mnist

if [ ! -f "$model" ] || [ ! -f "$mnist/t10k-images-idx3-ubyte.gz" ]; then
    echo "SKIP: $shared models or data are absent (see ../shared/README.md)"
    [ "$failed" -eq 0 ] && exit 77
    echo "$passed passed, $failed failed"
    exit 1
fi

usage_case 2 "--cut 99" sweep "$model" --cut 99 --dataset mnist --data "$mnist" --limit 10
usage_case 1 "/nonexistent" sweep /nonexistent/m.onnx --cut 1 --dataset mnist --data "$mnist"

rc=0
"$bin" codec sweep "$model" --cut 1 --dataset mnist --data "$mnist" --limit 500 --grid small \
    --json --plot "$tmp/sweep.png" >"$tmp/out.json" 2>"$tmp/err" || rc=$?
if [ "$rc" -ne 0 ]; then
    bad "sweep exited $rc: $(cat "$tmp/err")"
else
    ok
    ref="$("$bin" eval "$model" --dataset mnist --data "$mnist" --limit 500 --json)"
    if python3 - "$tmp/out.json" "$ref" <<'PY'; then ok; else bad "JSON checks (above)"; fi
import json, sys
d = json.load(open(sys.argv[1]))
ref = json.loads(sys.argv[2])
errors = []
rows = {r["label"]: r for r in d["settings"]}
if d["images"] != 500 or len(d["settings"]) != 10 or len(rows) != 10:
    errors.append("want 500 images and 10 distinct settings, got %s / %d" % (d["images"], len(rows)))
if abs(d["reference_accuracy"] - ref["accuracy"]) > 1e-9:
    errors.append("reference accuracy %s != eval's %s" % (d["reference_accuracy"], ref["accuracy"]))
if d["fp32_bytes"] != 4608:
    errors.append("fp32_bytes %s, want 4608 (32x6x6 floats)" % d["fp32_bytes"])
for name in ("lossless", "f16"):
    r = rows.get(name)
    if r is None or r["loss"] != 0 or r["agreement"] != 1:
        errors.append("%s row: %s" % (name, r))
b = [r["bytes_per_request"] for r in d["settings"]]
if b != sorted(b):
    errors.append("rows not sorted by bytes")
if not (rows["int4/tensor/minmax"]["bytes_per_request"] < rows["int8/tensor/minmax"]["bytes_per_request"] < 4608):
    errors.append("int4 < int8 < fp32 does not hold")
if rows["lossless"]["bytes_per_request"] >= 4608 + 100:
    errors.append("lossless frames larger than float32 plus a header")
best = [r for r in d["settings"] if r["best"]]
if len(best) != 1 or best[0]["label"] != d["best"] or best[0]["loss"] > 0.01 + 1e-9:
    errors.append("best setting wrong: %s" % d["best"])
if any(r["loss"] <= 0.01 and r["bytes_per_request"] < best[0]["bytes_per_request"] for r in d["settings"]):
    errors.append("a smaller setting within 1% loss exists")
if not any(r["pareto"] for r in d["settings"]) or not best[0]["pareto"]:
    errors.append("Pareto front empty or best not on it")
for r in d["settings"]:
    if not (r["encode_us"] > 0 and r["decode_us"] > 0 and r["ratio_fp32"] > 0):
        errors.append("timings/ratio missing: %s" % r["label"])
for e in errors:
    print("  " + e)
sys.exit(1 if errors else 0)
PY
    if [ "$(head -c 8 "$tmp/sweep.png" | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ]; then
        ok
    else
        bad "--plot did not write a PNG"
    fi
fi

# The text table marks the choice.
out="$("$bin" codec sweep "$model" --cut 2 --dataset mnist --data "$mnist" --limit 100 2>&1)"
if grep -q "smallest within 1.00% loss: " <<<"$out" && grep -q "^\*" <<<"$out"; then ok; else bad "table: $out"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
