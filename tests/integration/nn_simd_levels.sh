#!/usr/bin/env bash
# Reruns the conv/pool/norm unit tests with the CPU level capped (TDM_CPU),
# so every dispatched kernel path (portable, AVX2, and the native best) is
# checked against the tests' naive references on one machine. tdm_cpu_get
# caches its answer at the first call, hence one process per level.
set -u
dir="${TDM_BUILD_DIR:?TDM_BUILD_DIR is not set}/tests"
status=0
for t in engine_test_nn_conv engine_test_nn_pool engine_test_nn_norm; do
    if [ ! -x "$dir/$t" ]; then
        echo "SKIP: $dir/$t is not built"
        exit 77
    fi
    for level in portable avx2; do
        if ! TDM_CPU="$level" "$dir/$t" >/dev/null 2>&1; then
            echo "FAIL: $t with TDM_CPU=$level; rerun it by hand to see the failure"
            status=1
        else
            echo "ok: $t with TDM_CPU=$level"
        fi
    done
done
exit "$status"
