#!/usr/bin/env bash
# README's first command. Builds tandem and shows what works today: the
# engine on real models (accuracy on MNIST, latency, a split run). The
# end-to-end edge-cloud demo arrives with the gateway and agent issues.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [[ "${TDM_SKIP_DEPS:-0}" != 1 ]]; then
    bash scripts/install-deps.sh
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build >/dev/null
bin="$root/build/tandem"
shared="${TDM_SHARED_DIR:-$root/../shared}"
model="$shared/models/vnncomp/Convnet_maxpool.onnx"
if [[ ! -f "$model" ]]; then
    echo "demo: $model is absent; the engine demo needs ../shared (see ../shared/README.md)" >&2
    exit 1
fi
echo "== tandem info"
"$bin" info "$model"
if "$bin" eval --help >/dev/null 2>&1; then
    echo "== accuracy on the MNIST 10k test set"
    "$bin" eval "$model" --dataset mnist --data "$shared/data/mnist" --scale 255 --threads 2
fi
echo "== ONNX conformance (node tests of Debian's libonnx-testdata)"
"$bin" conformance /usr/share/libonnx-testdata/data/node | tail -1
