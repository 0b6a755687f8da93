#!/usr/bin/env bash
# Makes every model the benchmark needs that is not in ../shared, into one folder.
#
#   tools/make_models.sh [OUT_DIR]     (default: build/models under the repository root)
#
# - minilm.onnx: a BERT encoder of all-MiniLM-L6-v2's shape with seeded random weights
#   (tools/make_minilm.py), the same bytes on every run;
# - <name>_b64.onnx: batch-64 copies of the VNN-COMP classifiers (tools/rebatch.py), which declare
#   a fixed batch of 1.
# Files already there are kept (delete the folder to rebuild), so the bench can call this every
# time. Needs /usr/bin/python3 with onnx and numpy (scripts/install-deps.sh).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/build/models}"
shared="${TDM_SHARED_DIR:-$repo/../shared}"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
mkdir -p "$out"

if [ ! -s "$out/minilm.onnx" ]; then
    "$py" "$repo/tools/make_minilm.py" "$out/minilm.onnx.tmp" --seed 0
    mv "$out/minilm.onnx.tmp" "$out/minilm.onnx"
fi
if [ -d "$shared/models/vnncomp" ]; then
    for m in "$shared"/models/vnncomp/*.onnx; do
        b="$(basename "$m" .onnx)"
        if [ ! -s "$out/${b}_b64.onnx" ]; then
            "$py" "$repo/tools/rebatch.py" "$m" "$out/${b}_b64.onnx.tmp" 64 2>/dev/null
            mv "$out/${b}_b64.onnx.tmp" "$out/${b}_b64.onnx"
        fi
    done
else
    echo "make_models.sh: $shared/models/vnncomp is absent: no batch-64 CNNs made" >&2
fi
echo "$out"
