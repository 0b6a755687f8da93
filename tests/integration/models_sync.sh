#!/usr/bin/env bash
# `tandem models sync|rollback|active` against a real gateway (`tandem serve` on loopback)
# serving three versions of bert-tiny: the first sync activates version 1; a part left by an
# interrupted download is resumed with a Range request the gateway answers with 206; a part
# holding wrong bytes is refused (sha256 = the gateway's ETag) and activates nothing; the next
# sync activates, keeps the previous version and prunes older ones; rollback swaps back.
# Skips (77) when ../shared is absent.
set -u
BIN=${TDM_BIN:?TDM_BIN must name the tandem binary}
SHARED=${TDM_SHARED_DIR:-$(dirname "$0")/../../../shared}
SRC=$SHARED/models/bert-tiny
if [ ! -f "$SRC/onnx/model.onnx" ]; then
    echo "SKIP: $SRC is absent (see ../shared/README.md)"
    exit 77
fi
T=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

for v in 1 2 3; do
    mkdir -p "$T/repo/tiny/$v/1_Pooling"
    cp "$SRC/onnx/model.onnx" "$SRC/config.json" "$SRC/vocab.txt" "$T/repo/tiny/$v/"
    cp "$SRC/1_Pooling/config.json" "$T/repo/tiny/$v/1_Pooling/"
    printf 'task: raw\n' >"$T/repo/tiny/$v/model.yaml"
    echo "release notes of version $v" >"$T/repo/tiny/$v/notes.txt"
done
"$BIN" serve --auth none --model-repo "$T/repo" --port 0 --port-file "$T/port" >"$T/serve.log" 2>&1 &
PID=$!
for _ in $(seq 600); do
    [ -s "$T/port" ] && break
    kill -0 "$PID" 2>/dev/null || break
    sleep 0.05
done
[ -s "$T/port" ] || {
    echo "FAIL: the gateway did not start: $(tail -5 "$T/serve.log")"
    exit 1
}
GW=http://127.0.0.1:$(cat "$T/port")
E=$T/edge

active() { "$BIN" models active tiny --dir "$E" | tr '\n' ' '; }

# 1. First sync.
"$BIN" models sync tiny 1 --gateway "$GW" --dir "$E" >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" -eq 0 ] || fail "sync 1 exited $rc: $(cat "$T/err")"
[ "$(active)" = "current 1 previous - " ] || fail "after sync 1: $(active)"
for f in model.onnx config.json vocab.txt 1_Pooling/config.json notes.txt; do
    cmp -s "$T/repo/tiny/1/$f" "$E/tiny/current/$f" || fail "version 1: $f differs"
done

# 2. A part left by an interrupted download is resumed (206 from the gateway).
mkdir -p "$E/tiny/versions/2"
head -c 3000000 "$SRC/onnx/model.onnx" >"$E/tiny/versions/2/model.onnx.part"
"$BIN" models sync tiny 2 --gateway "$GW" --dir "$E" >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" -eq 0 ] || fail "sync 2 exited $rc: $(cat "$T/err")"
grep -q "model.onnx: downloaded [0-9]* bytes, resumed at 3000000" "$T/err" ||
    fail "no resume: $(cat "$T/err")"
grep -q '"path":"/v1/models/tiny/versions/2/download/model.onnx","status":206' "$T/serve.log" ||
    fail "the gateway saw no range request"
[ "$(active)" = "current 2 previous 1 " ] || fail "after sync 2: $(active)"
cmp -s "$SRC/onnx/model.onnx" "$E/tiny/current/model.onnx" || fail "resumed model.onnx differs"
[ ! -e "$E/tiny/versions/2/model.onnx.part" ] || fail "part left after success"

# 3. A part with wrong bytes: the file is refused, nothing is activated.
mkdir -p "$E/tiny/versions/3"
head -c 1000000 /dev/zero >"$E/tiny/versions/3/model.onnx.part"
"$BIN" models sync tiny 3 --gateway "$GW" --dir "$E" >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" -eq 1 ] || fail "sync of a bad part exited $rc, want 1"
want=$(sha256sum "$SRC/onnx/model.onnx" | cut -d' ' -f1)
grep -q "model.onnx: refused: model.onnx: sha256 mismatch: expected $want" "$T/err" ||
    fail "bad part message: $(cat "$T/err")"
grep -q "tiny version 3 not activated" "$T/err" || fail "no 'not activated': $(cat "$T/err")"
[ "$(active)" = "current 2 previous 1 " ] || fail "a refused sync changed links: $(active)"
[ ! -e "$E/tiny/versions/3/model.onnx" ] && [ ! -e "$E/tiny/versions/3/model.onnx.part" ] ||
    fail "refused file left behind"

# 4. The next sync works; 2 is kept for rollback, 1 is pruned.
"$BIN" models sync tiny 3 --gateway "$GW" --dir "$E" >"$T/out" 2>"$T/err"
rc=$?
[ "$rc" -eq 0 ] || fail "sync 3 exited $rc: $(cat "$T/err")"
grep -q "activated; previous 2; 1 pruned" "$T/out" || fail "sync 3 summary: $(cat "$T/out")"
[ "$(active)" = "current 3 previous 2 " ] || fail "after sync 3: $(active)"
[ ! -e "$E/tiny/versions/1" ] || fail "version 1 not pruned"
cmp -s "$T/repo/tiny/3/notes.txt" "$E/tiny/current/notes.txt" || fail "version 3 notes differ"
# Again: everything present, nothing fetched.
"$BIN" models sync tiny 3 --gateway "$GW" --dir "$E" >"$T/out" 2>"$T/err"
grep -q "0 downloaded, 6 present; 0 bytes fetched; already active" "$T/out" ||
    fail "re-sync: $(cat "$T/out")"

# 5. Rollback.
"$BIN" models rollback tiny --dir "$E" >"$T/out" 2>"$T/err" || fail "rollback: $(cat "$T/err")"
[ "$(active)" = "current 2 previous 3 " ] || fail "after rollback: $(active)"
cmp -s "$T/repo/tiny/2/notes.txt" "$E/tiny/current/notes.txt" || fail "rolled back notes differ"

# 6. Errors: unknown version (exit 1, nothing changes), usage (exit 2).
"$BIN" models sync tiny 9 --gateway "$GW" --dir "$E" >/dev/null 2>"$T/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q "HTTP 404" "$T/err" || fail "unknown version: rc $rc $(cat "$T/err")"
[ "$(active)" = "current 2 previous 3 " ] || fail "a failed sync changed links: $(active)"
for args in "" "sync tiny" "sync tiny 1" "sync ../x 1 --gateway $GW" "bogus tiny" \
    "rollback" "sync tiny 1 --gateway $GW --retries -1"; do
    # shellcheck disable=SC2086
    "$BIN" models $args >/dev/null 2>&1
    rc=$?
    [ "$rc" -eq 2 ] || fail "'models $args' exited $rc, want 2"
done

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "models_sync: all checks passed"
