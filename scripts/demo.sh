#!/usr/bin/env bash
# README's first command: builds tandem and runs `tandem demo`, the whole system on loopback with
# embedded defaults. A cloud gateway, the link emulator and an edge agent start in one process; the
# Fashion-MNIST test set (Debian's dataset-fashion-mnist) goes through edge-only, cloud-only and
# collaborative modes at three network profiles (LAN, 4G, congested), and one table compares them.
# The models come with the repository (models/fashion-mnist); nothing external is started.
#
# Extra arguments go to `tandem demo` (e.g. --limit 10000 for the whole test set; see --help).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
if [[ "${TDM_SKIP_DEPS:-0}" != 1 ]]; then
    bash scripts/install-deps.sh --no-peer
fi
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C build >/dev/null
exec "$root/build/tandem" demo --models "$root/models/fashion-mnist" "$@"
