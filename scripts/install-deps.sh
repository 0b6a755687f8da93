#!/usr/bin/env bash
# Installs everything tandem's build, tests and benchmarks need, on Debian 12.
#
# Idempotent: packages already installed are skipped without touching the
# network, `apt-get update` runs only when a wanted package has no install
# candidate (a fresh machine with empty lists), and the npm peer is installed
# from the committed lock file only when it is not there already. Quiet on
# success (one summary line); on failure it prints the captured log and exits
# non-zero, so CI shows why.
#
# Usage: scripts/install-deps.sh [--no-peer]   (as root, or with sudo available)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
want_peer=1
for a in "$@"; do
    case "$a" in
    --no-peer) want_peer=0 ;;
    -h | --help)
        sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "install-deps.sh: unknown option '$a'" >&2
        exit 2
        ;;
    esac
done

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
fail() {
    echo "install-deps.sh: $*" >&2
    echo "---- log ----" >&2
    cat "$log" >&2
    exit 1
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || fail "must run as root (or with sudo installed)"
    SUDO="sudo"
fi

# Everything the build (libraries), the tests (cmocka, ONNX node tests,
# Fashion-MNIST), the tools (python3-onnx, node) and the bench (time) use.
pkgs=(build-essential cmake ninja-build pkg-config clang clang-format libclang-rt-14-dev
    libcmocka-dev libonnx-testdata libopenblas-dev libzstd-dev zlib1g-dev libcurl4-openssl-dev
    libsqlite3-dev libmicrohttpd-dev libjwt-dev libssl-dev nginx-light wrk sqlite3 unicode-data
    python3-onnx python3-numpy dataset-fashion-mnist time libyaml-dev openssl libgnutls28-dev)
# Node.js may come from elsewhere (NodeSource bundles npm): only ask Debian
# for it when the commands are missing, or the two would conflict.
command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || pkgs+=(npm)

missing=()
for p in "${pkgs[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    need_update=0
    for p in "${missing[@]}"; do
        cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')"
        if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then
            need_update=1
        fi
    done
    if [ "$need_update" -eq 1 ]; then
        $SUDO apt-get update >>"$log" 2>&1 || fail "apt-get update failed"
    fi
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        "${missing[@]}" >>"$log" 2>&1 || fail "apt-get install ${missing[*]} failed"
fi

peer_msg="peer skipped"
if [ "$want_peer" -eq 1 ]; then
    peer="$repo/tools/peer"
    [ -f "$peer/package-lock.json" ] || fail "$peer/package-lock.json is missing"
    probe='require("onnxruntime-node").InferenceSession'
    if ! (cd "$peer" && node -e "$probe") >>"$log" 2>&1; then
        # The package's install script fetches GPU add-ons from a host that
        # cannot be reached; the CPU backend ships inside the package itself.
        (cd "$peer" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --ignore-scripts --no-audit \
            --no-fund) >>"$log" 2>&1 || fail "npm ci in tools/peer failed"
        (cd "$peer" && node -e "$probe") >>"$log" 2>&1 ||
            fail "onnxruntime-node installed but its CPU backend does not load"
    fi
    peer_msg="peer onnxruntime-node $(cd "$peer" && node -p 'require("onnxruntime-node/package.json").version')"
fi

if [ "${#missing[@]}" -gt 0 ]; then
    echo "install-deps.sh: installed ${missing[*]}; $peer_msg"
else
    echo "install-deps.sh: all packages present; $peer_msg"
fi
