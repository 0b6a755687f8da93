#!/usr/bin/env bash
# Builds tandem and runs every test: the release build, then the same tests
# under AddressSanitizer + UndefinedBehaviorSanitizer, then the format check.
# This is README's test command and what CI runs (.ci/run).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

jobs="$(nproc 2>/dev/null || echo 2)"
if [[ "${TDM_SKIP_DEPS:-0}" != 1 ]]; then
    bash scripts/install-deps.sh
fi

echo "== release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build -j "$jobs"
echo "== release tests"
ctest --test-dir build --output-on-failure -j "$jobs"

if [[ "${TDM_SKIP_ASAN:-0}" != 1 ]]; then
    echo "== sanitizer build (ASan + UBSan)"
    cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTDM_SANITIZE=ON >/dev/null
    ninja -C build-asan -j "$jobs"
    echo "== sanitizer tests"
    # The whole-dataset accuracy and ONNX Runtime parity runs repeat the same kernels over
    # thousands of inputs; the release run above covers their numbers, and every op runs
    # under the sanitizers through the unit tests and the conformance suite.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        TDM_SANITIZED=1 ctest --test-dir build-asan --output-on-failure -j "$jobs" \
        -E 'integration/(accuracy|ort_parity)'
    # One model end to end under the sanitizers, through the CLI:
    "$root/build-asan/tandem" eval "$root/../shared/models/vnncomp/Convnet_maxpool.onnx" \
        --dataset mnist --data "$root/../shared/data/mnist" --scale 255 --limit 500 \
        2>&1 | tail -1 || [[ ! -d "$root/../shared" ]]
fi

echo "== format check"
bash scripts/check-format.sh
