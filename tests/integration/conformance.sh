#!/usr/bin/env bash
# ONNX backend node tests (Debian libonnx-testdata) through `tandem conformance`.
# Tests of ops tandem does not implement, or of dtypes it does not support,
# are skipped by the engine itself with the reason; tests/conformance-exclusions.txt
# documents the few supported-op tests excluded on purpose. Any failure fails CI.
set -euo pipefail
data="${TDM_ONNX_TESTDATA:-/usr/share/libonnx-testdata/data/node}"
if [[ ! -d "$data" ]]; then
    echo "SKIP: $data is absent (apt-get install libonnx-testdata)"
    exit 77
fi
"$TDM_BIN" conformance "$data" -v --exclude "$TDM_SOURCE_DIR/tests/conformance-exclusions.txt" \
    > conformance.log || status=$?
grep -E '^FAIL ' conformance.log || true
tail -1 conformance.log
exit "${status:-0}"
