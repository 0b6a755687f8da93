/*
 * BertNormalizer, step for step as Hugging Face tokenizers applies it:
 *   clean_text           drop U+0000, U+FFFD and controls (Cc/Cf/Co except
 *                        \t \n \r); map whitespace to ' '
 *   handle_chinese_chars ' ' before and after each CJK ideograph
 *   strip_accents        NFD (full canonical decomposition, Hangul
 *                        algorithmically, then canonical reordering of
 *                        combining marks), then drop nonspacing marks (Mn)
 *   lowercase            char::to_lowercase per character (U+0130 -> i U+0307)
 * The order matters and is HF's: lowercasing after stripping means a mark
 * produced by lowercasing (U+0307 from U+0130) survives, and the CJK test
 * sees compatibility ideographs before NFD maps them to unified ones.
 *
 * ASCII-only pieces (most English text) take a fast path with no table
 * lookups. Otherwise pass A cleans, spaces CJK and decomposes into tmp;
 * pass B reorders runs of combining marks, drops Mn and lowercases into out.
 * Without strip_accents pass A lowercases straight into out.
 */
#include <stdlib.h>

#include "text/text_internal.h"
#include "text/unicode.h"

static inline bool emit(tdm_u32vec *o, uint32_t cp)
{
    if (o->n == o->cap && !tdm_u32vec_reserve(o, 1))
        return false;
    o->v[o->n++] = cp;
    return true;
}

static bool emit_lower(const tdm_bert_norm *opt, tdm_u32vec *o, uint32_t cp, const tdm_uc_record *r)
{
    if (!opt->lowercase)
        return emit(o, cp);
    if (r->flags & TDM_UC_LOWER_MULTI) {
        const uint32_t *seq = &tdm_uc_pool[r->lower];
        for (uint32_t i = 1; i <= seq[0]; i++)
            if (!emit(o, seq[i]))
                return false;
        return true;
    }
    return emit(o, (uint32_t)((int32_t)cp + r->lower));
}

/* Canonical decomposition of cp appended to o. */
static bool emit_decomposed(tdm_u32vec *o, uint32_t cp, const tdm_uc_record *r)
{
    if (cp - TDM_HANGUL_S_BASE < (uint32_t)TDM_HANGUL_S_COUNT) {
        uint32_t s = cp - TDM_HANGUL_S_BASE;
        uint32_t t = s % TDM_HANGUL_T_COUNT;
        if (!emit(o, TDM_HANGUL_L_BASE + s / TDM_HANGUL_N_COUNT) ||
            !emit(o, TDM_HANGUL_V_BASE + (s % TDM_HANGUL_N_COUNT) / TDM_HANGUL_T_COUNT))
            return false;
        return t == 0 || emit(o, TDM_HANGUL_T_BASE + t);
    }
    if (r->flags & TDM_UC_DECOMP) {
        const uint32_t *seq = &tdm_uc_pool[r->decomp];
        for (uint32_t i = 1; i <= seq[0]; i++)
            if (!emit(o, seq[i]))
                return false;
        return true;
    }
    return emit(o, cp);
}

/* After cleaning: either decompose (strip) or lowercase into the output of pass A. */
static bool stage_a(const tdm_bert_norm *opt, tdm_u32vec *o, uint32_t cp, const tdm_uc_record *r)
{
    if (opt->strip_accents)
        return emit_decomposed(o, cp, r);
    return emit_lower(opt, o, cp, r);
}

static bool normalize_ascii(const tdm_bert_norm *opt, const uint32_t *in, size_t n, tdm_u32vec *out)
{
    if (!tdm_u32vec_reserve(out, n))
        return false;
    uint32_t *o = out->v;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c < 0x20 || c == 0x7F) {
            if (opt->clean_text) {
                if (c != '\t' && c != '\n' && c != '\r')
                    continue; /* Cc: dropped (even \v and \f, which are also whitespace) */
                c = ' ';
            }
        } else if (opt->lowercase && c - 'A' < 26u) {
            c += 'a' - 'A';
        }
        *o++ = c;
    }
    out->n = (size_t)(o - out->v);
    return true;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * Stable sort of v[0..n) by combining class (all nonzero). Short runs use
 * insertion sort; long ones (only hostile input has them) a qsort on
 * (ccc, position) keys so that the cost stays n log n.
 */
static bool reorder_run(uint32_t *v, size_t n)
{
    enum { SHORT = 32 };
    if (n <= SHORT) {
        uint8_t cc[SHORT];
        for (size_t i = 0; i < n; i++)
            cc[i] = tdm_uc_get(v[i])->ccc;
        for (size_t i = 1; i < n; i++) {
            uint32_t cp = v[i];
            uint8_t c = cc[i];
            size_t j = i;
            while (j > 0 && cc[j - 1] > c) {
                v[j] = v[j - 1];
                cc[j] = cc[j - 1];
                j--;
            }
            v[j] = cp;
            cc[j] = c;
        }
        return true;
    }
    uint64_t *keys = malloc(n * sizeof *keys);
    if (keys == NULL)
        return false;
    for (size_t i = 0; i < n; i++)
        keys[i] = ((uint64_t)tdm_uc_get(v[i])->ccc << 56) | ((uint64_t)i << 21) | v[i];
    qsort(keys, n, sizeof *keys, cmp_u64);
    for (size_t i = 0; i < n; i++)
        v[i] = (uint32_t)(keys[i] & 0x1FFFFF);
    free(keys);
    return true;
}

bool tdm_bert_normalize(const tdm_bert_norm *opt, const uint32_t *in, size_t n, tdm_u32vec *tmp,
                        tdm_u32vec *out)
{
    out->n = 0;
    size_t k = 0;
    while (k < n && in[k] < 0x80)
        k++;
    if (k == n)
        return normalize_ascii(opt, in, n, out);

    /* Pass A. */
    tdm_u32vec *a = opt->strip_accents ? tmp : out;
    a->n = 0;
    if (!tdm_u32vec_reserve(a, n))
        return false;
    const tdm_uc_record *space = tdm_uc_get(' ');
    for (size_t i = 0; i < n; i++) {
        uint32_t cp = in[i];
        const tdm_uc_record *r = tdm_uc_get(cp);
        if (opt->clean_text) {
            if (r->flags & TDM_UC_DROP)
                continue;
            if (r->flags & TDM_UC_WS) {
                cp = ' ';
                r = space;
            }
        }
        if (opt->handle_chinese_chars && (r->flags & TDM_UC_CJK)) {
            if (!emit(a, ' ') || !stage_a(opt, a, cp, r) || !emit(a, ' '))
                return false;
        } else if (!stage_a(opt, a, cp, r)) {
            return false;
        }
    }
    if (!opt->strip_accents)
        return true;

    /* Pass B: canonical reordering, Mn removal, lowercase. */
    if (!tdm_u32vec_reserve(out, tmp->n))
        return false;
    uint32_t *v = tmp->v;
    size_t m = tmp->n;
    for (size_t i = 0; i < m;) {
        const tdm_uc_record *r = tdm_uc_get(v[i]);
        if (r->ccc == 0) {
            if (!(r->flags & TDM_UC_MN) && !emit_lower(opt, out, v[i], r))
                return false;
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < m && tdm_uc_get(v[j])->ccc != 0)
            j++;
        if (j - i > 1 && !reorder_run(v + i, j - i))
            return false;
        for (; i < j; i++) {
            r = tdm_uc_get(v[i]);
            if (!(r->flags & TDM_UC_MN) && !emit_lower(opt, out, v[i], r))
                return false;
        }
    }
    return true;
}
