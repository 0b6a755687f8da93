#!/usr/bin/env bash
# End-to-end check of `tandem pull` against tests/support/hub_server, a local
# stand-in for the Hugging Face hub serving ../shared/models/bert-tiny as
# acme/tiny: a full pull is byte-identical (cmp), a second run fetches
# nothing, a transfer cut mid-file leaves a .part that the next run resumes
# with a Range request, a corrupted file (LFS or small) is refused with exit 1
# and leaves nothing under its name, pinned digests are enforced, HF_ENDPOINT
# and HF_TOKEN are honoured, bad usage exits 2.
# Skips (77) when ../shared is absent.
set -u
BIN=${TDM_BIN:?TDM_BIN must name the tandem binary}
SHARED=${TDM_SHARED_DIR:-$(dirname "$0")/../../../shared}
SRC=$SHARED/models/bert-tiny
SERVER=$(dirname "$BIN")/hub_server
if [ ! -f "$SRC/model.safetensors" ]; then
    echo "SKIP: $SRC is absent (see ../shared/README.md)"
    exit 77
fi
if [ ! -x "$SERVER" ]; then
    echo "FAIL: $SERVER is not built (target hub_server)"
    exit 1
fi
TMP=$(mktemp -d)
SPID=
stop_server() {
    if [ -n "$SPID" ]; then
        kill "$SPID" 2>/dev/null
        wait "$SPID" 2>/dev/null
        SPID=
    fi
}
trap 'stop_server; rm -rf "$TMP"' EXIT
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# start_server LOGNAME [hub_server options...]: sets PORT and URL.
start_server() {
    stop_server
    local log=$TMP/$1.log
    shift
    rm -f "$TMP/port"
    "$SERVER" --root "$SRC" --repo acme/tiny "$@" >"$TMP/port" 2>"$log" &
    SPID=$!
    for _ in $(seq 300); do
        [ -s "$TMP/port" ] && break
        sleep 0.05
    done
    PORT=$(head -1 "$TMP/port")
    [ -n "$PORT" ] || {
        echo "FAIL: hub_server did not start: $(cat "$log")"
        exit 1
    }
    URL=http://127.0.0.1:$PORT
}

FILES="config.json model.safetensors modules.json sentence_bert_config.json special_tokens_map.json
tokenizer.json tokenizer_config.json vocab.txt 1_Pooling/config.json onnx/model.onnx"

same_files() { # dir label
    for f in $FILES; do
        cmp -s "$SRC/$f" "$1/$f" || fail "$2: $f differs from the served file"
    done
    [ -z "$(find "$1" -name '*.part')" ] || fail "$2: .part files left: $(find "$1" -name '*.part')"
}

# 1. A full pull, then a second run that only verifies.
start_server plain --page 3 # the listing comes in pages linked by Link: rel=next
"$BIN" pull acme/tiny --endpoint "$URL" --dir "$TMP/m1" --onnx >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 0 ] || fail "pull exited $rc: $(cat "$TMP/err")"
same_files "$TMP/m1" "full pull"
[ ! -e "$TMP/m1/embeddings_ref.jsonl" ] || fail "a file outside the selection was fetched"
grep -q "10 files: 10 downloaded" "$TMP/out" || fail "summary: $(cat "$TMP/out")"
n_before=$(grep -c resolve "$TMP/plain.log")
"$BIN" pull acme/tiny --endpoint "$URL" --dir "$TMP/m1" --onnx >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 0 ] || fail "second pull exited $rc: $(cat "$TMP/err")"
grep -q "0 downloaded (0 resumed), 10 present, 0 failed; 0 bytes fetched" "$TMP/out" ||
    fail "second pull fetched something: $(cat "$TMP/out")"
[ "$(grep -c resolve "$TMP/plain.log")" -eq "$n_before" ] || fail "second pull requested files"
# --include adds files; a file damaged on disk is fetched again.
echo damaged >"$TMP/m1/vocab.txt"
"$BIN" pull acme/tiny --endpoint "$URL" --dir "$TMP/m1" --include 'embeddings_*' >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 0 ] || fail "pull --include exited $rc: $(cat "$TMP/err")"
cmp -s "$SRC/embeddings_ref.jsonl" "$TMP/m1/embeddings_ref.jsonl" || fail "--include file differs"
cmp -s "$SRC/vocab.txt" "$TMP/m1/vocab.txt" || fail "a damaged file was not repaired"
grep -q "10 files: 2 downloaded" "$TMP/out" || fail "--include summary: $(cat "$TMP/out")"
# Default folder ./models/ORG/NAME, endpoint from HF_ENDPOINT.
mkdir "$TMP/cwd"
(cd "$TMP/cwd" && HF_ENDPOINT=$URL "$BIN" pull acme/tiny >/dev/null 2>"$TMP/err")
rc=$?
[ "$rc" -eq 0 ] || fail "pull with HF_ENDPOINT exited $rc: $(cat "$TMP/err")"
cmp -s "$SRC/model.safetensors" "$TMP/cwd/models/acme/tiny/model.safetensors" ||
    fail "default folder models/acme/tiny not used"

# 2. Pinned digests: agreeing pins pass, a disagreeing pin refuses before downloading.
n_before=$(grep -c resolve/main/model.safetensors "$TMP/plain.log")
{
    printf 'repo\tcommit\tpath\tlfs_sha256\tsize_bytes\n'
    printf 'acme/tiny\tabc\tconfig.json\t%s\t%s\n' "$(sha256sum "$SRC/config.json" | cut -d' ' -f1)" \
        "$(stat -c %s "$SRC/config.json")"
    printf 'acme/tiny\tabc\tmodel.safetensors\t%064d\t%s\n' 0 "$(stat -c %s "$SRC/model.safetensors")"
    printf 'other/repo\tabc\tvocab.txt\t%064d\t1\n' 0
} >"$TMP/pins.tsv"
"$BIN" pull acme/tiny --endpoint "$URL" --dir "$TMP/m5" --digests "$TMP/pins.tsv" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 1 ] || fail "pinned pull exited $rc, want 1"
grep -q "config.json: downloaded 666 bytes, sha256 [0-9a-f]* (pinned) ok" "$TMP/err" ||
    fail "pinned good file: $(cat "$TMP/err")"
grep -q "model.safetensors: refused: model.safetensors: pinned sha256 0\{64\}" "$TMP/err" ||
    fail "pinned mismatch message: $(cat "$TMP/err")"
[ "$(grep -c resolve/main/model.safetensors "$TMP/plain.log")" -eq "$n_before" ] ||
    fail "a pin-refused file was requested"
[ ! -e "$TMP/m5/model.safetensors" ] || fail "a pin-refused file exists"
cmp -s "$SRC/vocab.txt" "$TMP/m5/vocab.txt" || fail "another repo's pin was applied"
printf 'repo\tpath\n' >"$TMP/bad.tsv"
"$BIN" pull acme/tiny --endpoint "$URL" --dir "$TMP/m5" --digests "$TMP/bad.tsv" >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q "bad.tsv: line 1" "$TMP/err" || fail "bad TSV: rc $rc $(cat "$TMP/err")"

# 3. Cut transfers (one server, two files cut): with --retries 0 the part stays and the next
# run resumes it with a Range request; with retries (the default) the same run resumes.
CUT=3000000
start_server cut --cut model.safetensors:$CUT --cut onnx/model.onnx:1000000
"$BIN" pull acme/tiny --endpoint "$URL" --dir "$TMP/m2" --retries 0 >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 1 ] || fail "cut pull exited $rc, want 1"
grep -q "model.safetensors: failed" "$TMP/err" || fail "cut not reported: $(cat "$TMP/err")"
[ ! -e "$TMP/m2/model.safetensors" ] || fail "a cut file got its real name"
size=$(stat -c %s "$TMP/m2/model.safetensors.part" 2>/dev/null || echo none)
[ "$size" = "$CUT" ] || fail "part holds $size bytes, want $CUT"
"$BIN" pull acme/tiny --endpoint "$URL" --dir "$TMP/m2" --onnx >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 0 ] || fail "resumed pull exited $rc: $(cat "$TMP/err")"
grep -q "model.safetensors: downloaded [0-9]* bytes, resumed at $CUT" "$TMP/err" ||
    fail "no resume reported: $(cat "$TMP/err")"
grep -q "model.safetensors range=$CUT- -> 206" "$TMP/cut.log" || fail "no Range request: $(cat "$TMP/cut.log")"
grep -q "onnx/model.onnx range=1000000- -> 206" "$TMP/cut.log" || fail "no in-run resume"
same_files "$TMP/m2" "resumed pull"

# 4. Corrupted files are refused (exit 1, nothing under the real name, the rest fetched), and
# so are right bytes that disagree with wrong LFS metadata on the hub.
start_server corrupt --corrupt model.safetensors --corrupt vocab.txt --bad-lfs onnx/model.onnx
"$BIN" pull acme/tiny --endpoint "$URL" --dir "$TMP/m3" --onnx >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 1 ] || fail "corrupt pull exited $rc, want 1"
want=$(sha256sum "$SRC/model.safetensors" | cut -d' ' -f1)
grep -q "model.safetensors: refused: model.safetensors: sha256 mismatch: expected $want, got [0-9a-f]\{64\}" "$TMP/err" ||
    fail "corrupt LFS file message: $(cat "$TMP/err")"
grep -q "vocab.txt: refused: vocab.txt: git blob id mismatch" "$TMP/err" ||
    fail "corrupt small file message: $(cat "$TMP/err")"
grep -q "onnx/model.onnx: refused: onnx/model.onnx: sha256 mismatch" "$TMP/err" ||
    fail "wrong LFS metadata not refused: $(cat "$TMP/err")"
for f in model.safetensors vocab.txt onnx/model.onnx; do
    [ ! -e "$TMP/m3/$f" ] && [ ! -e "$TMP/m3/$f.part" ] || fail "refused $f left a file"
done
cmp -s "$SRC/config.json" "$TMP/m3/config.json" || fail "good files not fetched beside a refused one"
grep -q "3 failed" "$TMP/out" || fail "corrupt summary: $(cat "$TMP/out")"

# 5. A token: without it 401 and exit 1, with HF_TOKEN the pull works.
start_server token --token hf_s3cret
"$BIN" pull acme/tiny --endpoint "$URL" --dir "$TMP/m6" >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q "HTTP 401" "$TMP/err" || fail "no token: rc $rc $(cat "$TMP/err")"
HF_TOKEN=hf_s3cret "$BIN" pull acme/tiny --endpoint "$URL" --dir "$TMP/m6" >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" -eq 0 ] || fail "with HF_TOKEN: rc $rc $(cat "$TMP/err")"
# A revision the hub does not have: a clear error.
HF_TOKEN=hf_s3cret "$BIN" pull acme/tiny --endpoint "$URL" --revision v9 --dir "$TMP/m7" \
    >/dev/null 2>"$TMP/err"
rc=$?
[ "$rc" -eq 1 ] && grep -q "listing acme/tiny at v9: .*HTTP 404" "$TMP/err" ||
    fail "unknown revision: rc $rc $(cat "$TMP/err")"
stop_server

# 6. Usage errors exit 2.
for args in "" "a/b/c" "acme/tiny --bogus" "acme/tiny --retries x" "acme/tiny --endpoint ftp://x" \
    "acme/tiny other/repo" "acme/tiny --dir"; do
    # shellcheck disable=SC2086
    "$BIN" pull $args >/dev/null 2>&1
    rc=$?
    [ "$rc" -eq 2 ] || fail "'pull $args' exited $rc, want 2"
done
"$BIN" pull --help | grep -q "usage: tandem pull" || fail "--help"

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "pull: all checks passed"
