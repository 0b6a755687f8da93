#!/usr/bin/env bash
# Accuracy of the real classifiers of ../shared through `tandem eval`, which must equal what
# ONNX Runtime measures (../shared/README.md) to the image: a kernel that is subtly wrong shows up
# as a changed count long before it shows up as a visible drop in accuracy.
#
# MNIST 10k test set (pixels / 255) for the MNIST models, the 100-image CIFAR-10 csv with each
# model's own normalisation for the CIFAR ones. Expected counts were measured with
# onnxruntime-node 1.30 on the same preprocessing (float32 v / 255, then (x - mean) / std).
# Environment: TDM_BIN, TDM_SHARED_DIR, TDM_ACCURACY_THREADS (default 2). Skips (77) without
# ../shared. Ends with "N passed, M failed".
set -uo pipefail

src="${TDM_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
shared="${TDM_SHARED_DIR:-$src/../shared}"
bin="${TDM_BIN:-${TDM_BUILD_DIR:-$src/build}/tandem}"
threads="${TDM_ACCURACY_THREADS:-2}"
models="$shared/models/vnncomp"
mnist="$shared/data/mnist"
cifar="$shared/data/cifar10-100/test.csv"

if [ ! -x "$bin" ]; then
    echo "FAIL: tandem binary '$bin' not found (set TDM_BIN)"
    exit 1
fi

passed=0
failed=0

# The command's contract first (needs no data): exit 2 and one line for bad usage, 1 for a
# missing file, 0 and a usage text for --help.
# usage_case WANT_RC PATTERN ARGS...
usage_case() {
    local want="$1" pattern="$2"
    shift 2
    local out rc=0
    out="$("$bin" eval "$@" 2>&1)" || rc=$?
    if [ "$rc" -eq "$want" ] && grep -q -- "$pattern" <<<"$out" &&
        { [ "$want" -eq 0 ] || [ "$(wc -l <<<"$out")" -eq 1 ]; }; then
        passed=$((passed + 1))
    else
        echo "FAIL eval $*: exit $rc (want $want), output: $out"
        failed=$((failed + 1))
    fi
}
usage_case 0 "usage: tandem eval" --help
usage_case 2 "'foo' is not mnist" m.onnx --dataset foo
usage_case 2 "unknown option '--bogus'" m.onnx --dataset mnist --bogus
usage_case 2 "--data PATH is required" m.onnx --dataset mnist
usage_case 2 "--mean has 3 values but --std has 2" m.onnx --dataset cifar --data x.csv \
    --mean 1,2,3 --std 1,2
usage_case 2 "--std: value 2 (0) must be positive" m.onnx --dataset cifar --data x.csv \
    --mean 1 --std 1,0,1
usage_case 2 "--batch: '0'" m.onnx --dataset mnist --data d --batch 0
usage_case 1 "/nonexistent/t.csv" m.onnx --dataset cifar --data /nonexistent/t.csv

if [ ! -d "$models" ] || [ ! -f "$mnist/t10k-images-idx3-ubyte.gz" ] || [ ! -f "$cifar" ]; then
    echo "SKIP: $shared models or data are absent (see ../shared/README.md)"
    [ "$failed" -eq 0 ] && exit 77
    echo "$passed passed, $failed failed"
    exit 1
fi
# expect MODEL CORRECT COUNT eval-options...
expect() {
    local model="$1" want="$2" count="$3"
    shift 3
    local out
    if ! out="$("$bin" eval "$models/$model.onnx" --threads "$threads" --json "$@" 2>&1)"; then
        echo "FAIL $model: $out"
        failed=$((failed + 1))
        return
    fi
    local got n
    got="$(sed -n 's/.*"correct":\([0-9]*\).*/\1/p' <<<"$out")"
    n="$(sed -n 's/.*"count":\([0-9]*\).*/\1/p' <<<"$out")"
    local secs
    secs="$(sed -n 's/.*"seconds":\([0-9.]*\).*/\1/p' <<<"$out")"
    if [ "$got" = "$want" ] && [ "$n" = "$count" ]; then
        echo "ok   $model: $got/$n correct (${secs}s)"
        passed=$((passed + 1))
    else
        echo "FAIL $model: $got/$n correct, expected $want/$count ($out)"
        failed=$((failed + 1))
    fi
}

expect Convnet_maxpool 9792 10000 --dataset mnist --data "$mnist"
expect Convnet_avgpool 9795 10000 --dataset mnist --data "$mnist"
expect mnist-net_256x2 9808 10000 --dataset mnist --data "$mnist"
expect mnist-net_256x4 9764 10000 --dataset mnist --data "$mnist"
expect mnist-net_256x6 9689 10000 --dataset mnist --data "$mnist"
expect mnist_relu_9_200 9495 10000 --dataset mnist --data "$mnist"
expect ffnnSIGMOID__Point_6x200 9766 10000 --dataset mnist --data "$mnist"
cifar_norm=(--mean 0.4914,0.4822,0.4465 --std 0.2471,0.2435,0.2616)
expect resnet_2b 77 100 --dataset cifar --data "$cifar" "${cifar_norm[@]}"
expect resnet_4b 81 100 --dataset cifar --data "$cifar" "${cifar_norm[@]}"
expect cifar_base_kw 73 100 --dataset cifar --data "$cifar" --mean 0.485,0.456,0.406 --std 0.225
expect cifar_wide_kw 71 100 --dataset cifar --data "$cifar" --mean 0.485,0.456,0.406 --std 0.225

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
