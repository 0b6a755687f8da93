#!/usr/bin/env python3
"""Generate src/text/unicode_tables.c: the Unicode data the WordPiece tokenizer needs.

The tokenizer must reproduce Hugging Face `tokenizers` (BertNormalizer + BertPreTokenizer)
byte for byte. That library mixes Unicode data of two ages, and so do these tables:

* Rust's standard library, current Unicode (the files given with --ucd):
  `char::is_whitespace` (the White_Space property of PropList.txt) and `char::to_lowercase`
  (UnicodeData.txt simple lowercase plus the unconditional SpecialCasing.txt mappings; the only
  multi-character one is U+0130 -> "i" U+0307).
* Crates frozen at old Unicode versions: `unicode_categories` 0.1.1 (general categories for
  "control" = Cc|Cf|Co, "punctuation" = P*, "nonspacing mark" = Mn; Unicode 8.0 as comparing
  every code point with HF's own library shows; --categories-age) and
  `unicode-normalization-alignments` 0.1.12 (NFD: canonical decompositions and combining
  classes; Unicode 9.0, its UNICODE_VERSION; --normalization-age). A code point unassigned in
  such a version is unknown to that crate, so it gets none of its properties here; the Age
  property (DerivedAge.txt) says which ones those are. The few characters whose category changed
  since 8.0 are listed below.

One record per distinct combination of properties; code points map to records through a
two-level table (blocks of 2^SHIFT code points, identical blocks stored once), so the whole
table is a few tens of kilobytes instead of a 1.1M-entry array.

Usage: python3 tools/gen_unicode.py [--ucd /usr/share/unicode] [--legacy-age 9.0]
                                    [-o src/text/unicode_tables.c]
The UCD files come from Debian's `unicode-data` package. Only the standard library is used.
"""

import argparse
import hashlib
import os
import re
import sys

MAX_CP = 0x110000
SHIFT = 7  # must equal TDM_UC_BLOCK_SHIFT in src/text/unicode.h

# Flag bits: must equal the TDM_UC_* flags in src/text/unicode.h.
F_WS = 1 << 0  # Rust char::is_whitespace (White_Space)
F_DROP = 1 << 1  # removed by clean_text: U+0000, U+FFFD, Cc|Cf|Co except \t \n \r
F_PUNCT = 1 << 2  # BertPreTokenizer punctuation: ASCII punctuation or P*
F_MN = 1 << 3  # removed by strip_accents after NFD
F_CJK = 1 << 4  # BertNormalizer::is_chinese_char
F_LOWER_MULTI = 1 << 5  # lowercase is a sequence in the pool, not a delta
F_DECOMP = 1 << 6  # has a canonical decomposition (in the pool)

# The exact ranges of tokenizers/src/normalizers/bert.rs (note 0x2B920, not 0x2B820).
CJK_RANGES = [
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B920, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
]

HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3

# General categories that Unicode changed after 8.0 for characters that 8.0 already had. The Age
# property cannot tell these, and no Unicode 8.0 UnicodeData.txt is on the machine, so they are
# listed here: {code point: category in Unicode 8.0}. Each was found by comparing every code point
# against Hugging Face tokenizers 0.23.2 (npm package `tokenizers`) and checked against the
# Unicode release notes. Only used with --legacy-age 8.0.
LEGACY_8_0_CATEGORY = {
    0x166D: "Po",  # CANADIAN SYLLABICS CHI SIGN: So since 12.0
    0x1734: "Mn",  # HANUNOO SIGN PAMUDPOD: Mc since 14.0
    0x1885: "Lo",  # MONGOLIAN LETTER ALI GALI BALUDA: Mn since 9.0
    0x1886: "Lo",  # MONGOLIAN LETTER ALI GALI THREE BALUDA: Mn since 9.0
    0xA9BD: "Mc",  # JAVANESE CONSONANT SIGN KERET: Mn since 12.0
    0x111C9: "Po",  # SHARADA SANDHI MARK: Mn since 11.0
}


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                yield line


def parse_range(text):
    if ".." in text:
        a, b = text.split("..")
        return int(a, 16), int(b, 16)
    v = int(text, 16)
    return v, v


def parse_unicode_data(path):
    """Returns (category, ccc, decomposition, lowercase) dicts keyed by code point."""
    cat, ccc, decomp, lower = {}, {}, {}, {}
    first = None
    with open(path, encoding="utf-8") as f:
        for line in f:
            fields = line.rstrip("\n").split(";")
            if len(fields) != 15:
                continue
            cp = int(fields[0], 16)
            name = fields[1]
            if name.endswith(", First>"):
                first = cp
                continue
            lo = cp
            if name.endswith(", Last>"):
                assert first is not None
                lo, first = first, None
            for c in range(lo, cp + 1):
                cat[c] = fields[2]
                if fields[3] != "0":
                    ccc[c] = int(fields[3])
            if fields[5] and not fields[5].startswith("<"):
                decomp[cp] = [int(x, 16) for x in fields[5].split()]
            if fields[13]:
                lower[cp] = [int(fields[13], 16)]
    return cat, ccc, decomp, lower


def parse_special_casing(path, lower):
    """Adds the unconditional lowercase mappings (as Rust's to_lowercase uses them)."""
    for line in read_lines(path):
        fields = [x.strip() for x in line.split(";")]
        # code; lower; title; upper; [condition_list;]
        if len(fields) > 4 and fields[4]:
            continue  # conditional (Final_Sigma, language-specific): not in char::to_lowercase
        cp = int(fields[0], 16)
        seq = [int(x, 16) for x in fields[1].split()]
        if seq != [cp]:
            lower[cp] = seq


def parse_ages(path):
    age = {}
    for line in read_lines(path):
        rng, ver = [x.strip() for x in line.split(";")]
        lo, hi = parse_range(rng)
        major, minor = (int(x) for x in ver.split("."))
        for c in range(lo, hi + 1):
            age[c] = (major, minor)
    return age


def parse_white_space(path):
    ws = set()
    for line in read_lines(path):
        rng, prop = [x.strip() for x in line.split(";")]
        if prop == "White_Space":
            lo, hi = parse_range(rng)
            ws.update(range(lo, hi + 1))
    return ws


def full_decomposition(cp, decomp):
    if cp not in decomp:
        return [cp]
    out = []
    for c in decomp[cp]:
        out.extend(full_decomposition(c, decomp))
    return out


def utf8_len(cp):
    return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4


def is_ascii_punct(cp):
    return 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def unicode_version(ucd):
    with open(os.path.join(ucd, "DerivedAge.txt"), encoding="utf-8") as f:
        m = re.search(r"DerivedAge-(\d+\.\d+\.\d+)\.txt", f.readline())
    return m.group(1) if m else "unknown"


def build(ucd, cat_age, norm_age):
    cat, ccc, decomp, lower = parse_unicode_data(os.path.join(ucd, "UnicodeData.txt"))
    parse_special_casing(os.path.join(ucd, "SpecialCasing.txt"), lower)
    age = parse_ages(os.path.join(ucd, "DerivedAge.txt"))
    ws = parse_white_space(os.path.join(ucd, "PropList.txt"))

    def legacy(c):
        a = age.get(c)
        return a is not None and a <= cat_age

    def legacy_norm(c):
        a = age.get(c)
        return a is not None and a <= norm_age

    legacy_cat = dict(cat)
    if cat_age == (8, 0):
        legacy_cat.update(LEGACY_8_0_CATEGORY)

    pool = [0]  # offset 0 means "none"
    pool_index = {}

    def intern(seq):
        key = tuple(seq)
        if key not in pool_index:
            pool_index[key] = len(pool)
            pool.append(len(seq))
            pool.extend(seq)
        return pool_index[key]

    records = [(0, 0, 0, 0)]
    record_index = {records[0]: 0}
    cp_record = [0] * MAX_CP
    stats = {"decomp": 0, "lower": 0, "lower_multi": 0}
    for c in range(MAX_CP):
        flags, cc, dec, low = 0, 0, 0, 0
        category = legacy_cat.get(c, "Cn")
        if c in ws:
            flags |= F_WS
        if c in (0, 0xFFFD) or (
            legacy(c) and category in ("Cc", "Cf", "Co") and c not in (9, 10, 13)
        ):
            flags |= F_DROP
        if is_ascii_punct(c) or (legacy(c) and category.startswith("P")):
            flags |= F_PUNCT
        if legacy(c) and category == "Mn":
            flags |= F_MN
        if any(lo <= c <= hi for lo, hi in CJK_RANGES):
            flags |= F_CJK
        if legacy_norm(c):
            cc = ccc.get(c, 0)
            if c in decomp and not HANGUL_FIRST <= c <= HANGUL_LAST:
                flags |= F_DECOMP
                seq = full_decomposition(c, decomp)
                dec = intern(seq)
                stats["decomp"] += 1
                # tdm_tokenizer_encode_bound relies on: a character never yields more
                # tokens (non-Mn characters) than its UTF-8 bytes.
                kept = [x for x in seq if not (legacy(x) and legacy_cat.get(x) == "Mn")]
                assert len(kept) <= utf8_len(c), hex(c)
        if c in lower and lower[c] != [c]:
            stats["lower"] += 1
            if len(lower[c]) == 1:
                low = lower[c][0] - c
            else:
                assert len(lower[c]) <= utf8_len(c), hex(c)
                flags |= F_LOWER_MULTI
                low = intern(lower[c])
                stats["lower_multi"] += 1
        rec = (flags, cc, dec, low)
        if rec not in record_index:
            record_index[rec] = len(records)
            records.append(rec)
        cp_record[c] = record_index[rec]

    assert len(records) < 65536 and len(pool) < 65536
    block = 1 << SHIFT
    stage1, stage2, block_index = [], [], {}
    for start in range(0, MAX_CP, block):
        key = tuple(cp_record[start : start + block])
        if key not in block_index:
            block_index[key] = len(stage2) // block
            stage2.extend(key)
        stage1.append(block_index[key])
    assert max(stage1) < 65536
    return records, pool, stage1, stage2, stats


def c_array(ctype, name, values, per_line, fmt):
    out = ["const %s %s[%d] = {" % (ctype, name, len(values))]
    for i in range(0, len(values), per_line):
        out.append("    " + ", ".join(fmt(v) for v in values[i : i + per_line]) + ",")
    out.append("};")
    return "\n".join(out)


def emit(out_path, ucd, ages, records, pool, stage1, stage2, stats):
    files = ["UnicodeData.txt", "SpecialCasing.txt", "DerivedAge.txt", "PropList.txt"]
    head = [
        "/*",
        " * GENERATED by tools/gen_unicode.py -- do not edit; regenerate instead:",
        " *   python3 tools/gen_unicode.py --ucd %s --categories-age %d.%d \\"
        % (ucd, ages[0][0], ages[0][1]),
        " *       --normalization-age %d.%d -o src/text/unicode_tables.c" % ages[1],
        " *",
        " * Source: Unicode Character Database %s (Debian package unicode-data)." % unicode_version(ucd),
    ]
    for f in files:
        head.append(" *   sha256 %s  %s" % (sha256(os.path.join(ucd, f)), f))
    head += [
        " * As Hugging Face tokenizers' crates have them, categories (controls, punctuation, Mn)",
        " * are those of Unicode %d.%d and decompositions and combining classes those of %d.%d;"
        % (ages[0] + ages[1]),
        " * White_Space and lowercase mappings are current, as Rust's standard library has them.",
        " * %d records, %d pool entries, %d blocks of %d code points; %d decompositions,"
        % (len(records), len(pool), len(stage2) >> SHIFT, 1 << SHIFT, stats["decomp"]),
        " * %d lowercase mappings (%d of them multi-character)."
        % (stats["lower"], stats["lower_multi"]),
        " */",
        '#include "text/unicode.h"',
        "",
        "_Static_assert(TDM_UC_BLOCK_SHIFT == %d, \"regenerate with tools/gen_unicode.py\");" % SHIFT,
        "",
    ]
    body = [
        c_array(
            "tdm_uc_record",
            "tdm_uc_records",
            records,
            4,
            lambda r: "{0x%02x, %d, %d, %d}" % r,
        ),
        "",
        c_array("uint32_t", "tdm_uc_pool", pool, 8, lambda v: "0x%x" % v),
        "",
        c_array("uint16_t", "tdm_uc_stage1", stage1, 16, str),
        "",
        c_array("uint16_t", "tdm_uc_stage2", stage2, 16, str),
        "",
    ]
    text = "\n".join(head + body)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ucd", default="/usr/share/unicode", help="UCD directory")
    ap.add_argument("--categories-age", default="8.0", help="Unicode version of unicode_categories")
    ap.add_argument("--normalization-age", default="9.0", help="Unicode version of the NFD crate")
    ap.add_argument("-o", "--output", default="src/text/unicode_tables.c")
    args = ap.parse_args()
    for f in ("UnicodeData.txt", "SpecialCasing.txt", "DerivedAge.txt", "PropList.txt"):
        if not os.path.exists(os.path.join(args.ucd, f)):
            sys.exit("gen_unicode.py: %s/%s is missing (apt-get install unicode-data)" % (args.ucd, f))
    ages = tuple(
        tuple(int(x) for x in a.split(".")) for a in (args.categories_age, args.normalization_age)
    )
    records, pool, stage1, stage2, stats = build(args.ucd, *ages)
    emit(args.output, args.ucd, ages, records, pool, stage1, stage2, stats)
    print(
        "wrote %s: %d records, %d pool, stage1 %d, stage2 %d"
        % (args.output, len(records), len(pool), len(stage1), len(stage2))
    )


if __name__ == "__main__":
    main()
