#!/usr/bin/env bash
# Fails when a C file differs from what clang-format (the repo's .clang-format) makes of it.
set -euo pipefail
cd "$(dirname "$0")/.."
fmt="$(command -v clang-format || command -v clang-format-14 || true)"
if [[ -z "$fmt" ]]; then
    echo "check-format: clang-format is not installed (scripts/install-deps.sh installs it)" >&2
    exit 1
fi
bad=0
while IFS= read -r -d '' f; do
    case "$f" in ./src/text/unicode_tables.c) continue ;; esac
    if ! diff -q <("$fmt" --style=file "$f") "$f" >/dev/null; then
        echo "check-format: $f is not clang-formatted (run: clang-format -i $f)" >&2
        bad=1
    fi
done < <(find ./include ./src ./cli ./tests ./bench ./fuzz -name '*.[ch]' -print0 2>/dev/null)
if [[ $bad -ne 0 ]]; then
    exit 1
fi
echo "check-format: all files formatted"
