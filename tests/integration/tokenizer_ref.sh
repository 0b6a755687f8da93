#!/usr/bin/env bash
# End-to-end check of `tandem tokenize`: the 201 reference texts of
# ../shared/reference/tokenizer_ref.jsonl go through the CLI (the file is piped
# in as it is; extra fields are ignored) and every output line must carry
# exactly the ids Hugging Face tokenizers computed: `ids` by default and
# `ids_max256` with --max-len 256. Then the CLI contract: bad lines answered
# in place with exit 1, usage errors with exit 2.
# The ids are compared as text, extracted with sed (no jq or python needed).
# Skips (77) when ../shared is absent.
set -u
BIN=${TDM_BIN:?TDM_BIN must name the tandem binary}
SHARED=${TDM_SHARED_DIR:-$(dirname "$0")/../../../shared}
REF=$SHARED/reference/tokenizer_ref.jsonl
MODEL=$SHARED/tokenizers/all-MiniLM-L6-v2
if [ ! -f "$REF" ] || [ ! -f "$MODEL/vocab.txt" ]; then
    echo "SKIP: $REF or $MODEL is absent (see ../shared/README.md)"
    exit 77
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fails=0
fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# The last '"ids": [...]' (or '"ids_max256": [...]') of each line, as written by Python's json.
extract() { sed -E "s/.*\"$1\": (\[[^]]*\]).*/\1/" "$2"; }

check_ids() { # field, extra CLI args...
    local field=$1
    shift
    "$BIN" tokenize --model "$MODEL" "$@" <"$REF" >"$TMP/out.jsonl" 2>"$TMP/err"
    local rc=$?
    [ "$rc" -eq 0 ] || fail "tokenize $* exited $rc: $(head -3 "$TMP/err")"
    local n
    n=$(wc -l <"$TMP/out.jsonl")
    [ "$n" -eq 201 ] || fail "tokenize $*: $n output lines, want 201"
    extract "$field" "$REF" >"$TMP/want"
    extract ids "$TMP/out.jsonl" >"$TMP/got"
    if ! cmp -s "$TMP/want" "$TMP/got"; then
        fail "tokenize $*: ids differ from $field:"
        diff "$TMP/want" "$TMP/got" | head -6
    else
        echo "ok: 201/201 texts give the reference $field"
    fi
}

check_ids ids
check_ids ids_max256 --max-len 256

# A bad line is answered in place (output stays aligned), reported, and exit is 1.
printf '{"text": "hello"}\n{"text": 7}\nnot json\n\n{"text": "world"}\n' |
    "$BIN" tokenize --model "$MODEL" >"$TMP/out" 2>"$TMP/err"
rc=$?
[ "$rc" -eq 1 ] || fail "bad lines: exit $rc, want 1"
[ "$(wc -l <"$TMP/out")" -eq 4 ] || fail "bad lines: $(wc -l <"$TMP/out") output lines, want 4"
[ "$(sed -n 1p "$TMP/out")" = '{"ids": [101, 7592, 102]}' ] || fail "line 1: $(sed -n 1p "$TMP/out")"
grep -q '^{"error": ' <(sed -n 2p "$TMP/out") || fail "line 2 is not an error object"
[ "$(sed -n 4p "$TMP/out")" = '{"ids": [101, 2088, 102]}' ] || fail "line 4: $(sed -n 4p "$TMP/out")"
grep -q 'line 2: field "text" must be a string' "$TMP/err" || fail "stderr lacks line 2: $(cat "$TMP/err")"
grep -q 'line 3, column 1: ' "$TMP/err" || fail "stderr lacks line 3, column 1"

# Usage errors exit 2 with one line naming the problem; a missing model exits 1.
"$BIN" tokenize </dev/null 2>"$TMP/err"
[ $? -eq 2 ] || fail "no --model: want exit 2"
grep -q -- '--model' "$TMP/err" || fail "no --model: message $(cat "$TMP/err")"
"$BIN" tokenize --model "$MODEL" --max-len 1 </dev/null 2>"$TMP/err"
[ $? -eq 2 ] || fail "--max-len 1: want exit 2"
"$BIN" tokenize --model "$MODEL" --max-len abc </dev/null 2>/dev/null
[ $? -eq 2 ] || fail "--max-len abc: want exit 2"
"$BIN" tokenize --model "$TMP/nope" </dev/null 2>"$TMP/err"
[ $? -eq 1 ] || fail "missing model dir: want exit 1"
grep -q "$TMP/nope" "$TMP/err" || fail "missing model dir: message $(cat "$TMP/err")"
"$BIN" tokenize --help >"$TMP/out" || fail "--help: nonzero exit"
grep -q 'usage: tandem tokenize' "$TMP/out" || fail "--help: no usage line"

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "tokenizer_ref: all checks passed"
