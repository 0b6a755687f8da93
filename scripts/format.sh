#!/usr/bin/env bash
# Formats every C file of the tree in place with the repo's .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."
find ./include ./src ./cli ./tests ./bench ./fuzz -name '*.[ch]' ! -path ./src/text/unicode_tables.c \
    -print0 2>/dev/null | xargs -0 clang-format -i
