/*
 * Vocabulary hash tables, BertPreTokenizer and greedy WordPiece.
 *
 * WordPiece asks, for a word of n characters, "is chars[s..e) a token?"
 * (with the "##" prefix when s > 0) for e from n down, up to n^2/2 times per
 * word. So the vocabulary is indexed twice: `full` holds every token, `cont`
 * holds the tokens that start with the prefix, keyed without it. A
 * continuation lookup is then a lookup of the word's own bytes, with no
 * string building. Slots keep the 32-bit hash next to the id so that most
 * misses are decided without touching the token strings, and lookups skip
 * candidate pieces longer (in bytes) than the longest key of the table.
 */
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "text/text_internal.h"
#include "text/unicode.h"

static inline uint32_t hash_bytes(const void *data, size_t n)
{
    const unsigned char *s = data;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (uint32_t)h;
}

bool tdm_vocab_init(tdm_vocab *v, const char *prefix)
{
    memset(v, 0, sizeof *v);
    size_t n = strlen(prefix);
    if (n >= sizeof v->prefix)
        return false;
    memcpy(v->prefix, prefix, n + 1);
    v->prefix_len = n;
    return true;
}

bool tdm_vocab_add(tdm_vocab *v, const char *tok, size_t len, int32_t id)
{
    if (id < 0 || id >= TDM_VOCAB_MAX_ID || len >= UINT32_MAX / 2)
        return false;
    size_t need = (size_t)id + 1;
    if (need > v->off_cap) {
        size_t cap = v->off_cap ? v->off_cap : 1024;
        while (cap < need)
            cap *= 2;
        uint32_t *off = realloc(v->off, cap * sizeof *off);
        if (off == NULL)
            return false;
        v->off = off;
        uint32_t *ln = realloc(v->len, cap * sizeof *ln);
        if (ln == NULL)
            return false;
        v->len = ln;
        for (size_t i = v->off_cap; i < cap; i++)
            v->off[i] = UINT32_MAX;
        v->off_cap = cap;
    }
    if (v->pool_len + len + 1 > v->pool_cap) {
        size_t cap = v->pool_cap ? v->pool_cap : 65536;
        while (cap < v->pool_len + len + 1) {
            if (cap > UINT32_MAX / 2)
                return false;
            cap *= 2;
        }
        char *p = realloc(v->pool, cap);
        if (p == NULL)
            return false;
        v->pool = p;
        v->pool_cap = cap;
    }
    if (v->pool_len + len + 1 >= UINT32_MAX)
        return false;
    memcpy(v->pool + v->pool_len, tok, len);
    v->pool[v->pool_len + len] = '\0';
    v->off[id] = (uint32_t)v->pool_len;
    v->len[id] = (uint32_t)len;
    v->pool_len += len + 1;
    if (need > v->size)
        v->size = need;
    return true;
}

#define SLOT_EMPTY UINT32_MAX

static tdm_vocab_slot *table_new(size_t mask)
{
    tdm_vocab_slot *t = malloc((mask + 1) * sizeof *t);
    if (t != NULL)
        for (size_t i = 0; i <= mask; i++)
            t[i].idlen = SLOT_EMPTY;
    return t;
}

static inline uint32_t pack(int32_t id, size_t len)
{
    return (uint32_t)id << 8 | (uint32_t)(len < 255 ? len : 255);
}

/* Whether slot s holds key[0..len) (skip: bytes of the prefix before a cont key). */
static inline bool slot_is(const tdm_vocab *v, tdm_vocab_slot s, uint32_t h, size_t skip,
                           const char *key, size_t len)
{
    if (s.hash != h || (s.idlen & 255) != (len < 255 ? len : 255))
        return false;
    uint32_t id = s.idlen >> 8;
    return v->len[id] - skip == len && memcmp(v->pool + v->off[id] + skip, key, len) == 0;
}

/* Inserts key -> id; an existing equal key takes the new id (the later duplicate wins). */
static void table_put(const tdm_vocab *v, tdm_vocab_slot *t, size_t mask, size_t skip,
                      const char *key, size_t len, int32_t id)
{
    uint32_t h = hash_bytes(key, len);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (t[i].idlen == SLOT_EMPTY || slot_is(v, t[i], h, skip, key, len)) {
            t[i].hash = h;
            t[i].idlen = pack(id, len);
            return;
        }
    }
}

bool tdm_vocab_finish(tdm_vocab *v)
{
    size_t nfull = 0, ncont = 0;
    for (size_t id = 0; id < v->size; id++) {
        if (v->off[id] == UINT32_MAX)
            continue;
        nfull++;
        if (v->len[id] >= v->prefix_len &&
            memcmp(v->pool + v->off[id], v->prefix, v->prefix_len) == 0)
            ncont++;
    }
    size_t cap = 16;
    while (cap < 2 * nfull)
        cap *= 2;
    v->full_mask = cap - 1;
    cap = 16;
    while (cap < 2 * ncont)
        cap *= 2;
    v->cont_mask = cap - 1;
    free(v->full);
    free(v->cont);
    v->full = table_new(v->full_mask);
    v->cont = table_new(v->cont_mask);
    if (v->full == NULL || v->cont == NULL)
        return false;
    v->max_full = v->max_cont = 0;
    for (size_t id = 0; id < v->size; id++) {
        if (v->off[id] == UINT32_MAX)
            continue;
        const char *s = v->pool + v->off[id];
        size_t len = v->len[id];
        table_put(v, v->full, v->full_mask, 0, s, len, (int32_t)id);
        if (len > v->max_full)
            v->max_full = len;
        if (len >= v->prefix_len && memcmp(s, v->prefix, v->prefix_len) == 0) {
            size_t k = len - v->prefix_len;
            table_put(v, v->cont, v->cont_mask, v->prefix_len, s + v->prefix_len, k, (int32_t)id);
            if (k > v->max_cont)
                v->max_cont = k;
        }
    }
    return true;
}

void tdm_vocab_free(tdm_vocab *v)
{
    free(v->pool);
    free(v->off);
    free(v->len);
    free(v->full);
    free(v->cont);
    memset(v, 0, sizeof *v);
}

static inline int32_t table_get(const tdm_vocab *v, const tdm_vocab_slot *t, size_t mask,
                                size_t skip, const char *key, size_t len)
{
    uint32_t h = hash_bytes(key, len);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        tdm_vocab_slot sl = t[i];
        if (sl.idlen == SLOT_EMPTY)
            return -1;
        if (slot_is(v, sl, h, skip, key, len))
            return (int32_t)(sl.idlen >> 8);
    }
}

int32_t tdm_vocab_lookup(const tdm_vocab *v, const char *s, size_t len)
{
    if (v->full == NULL || len > v->max_full)
        return -1;
    return table_get(v, v->full, v->full_mask, 0, s, len);
}

int32_t tdm_vocab_lookup_cont(const tdm_vocab *v, const char *s, size_t len)
{
    if (v->cont == NULL || len > v->max_cont)
        return -1;
    return table_get(v, v->cont, v->cont_mask, v->prefix_len, s, len);
}

/* ---- WordPiece ---------------------------------------------------------------------- */

static inline bool push_id(tdm_i32vec *out, int32_t id)
{
    if (out->n == out->cap && !tdm_i32vec_reserve(out, 1))
        return false;
    out->v[out->n++] = id;
    return true;
}

/* Greedy longest-match-first split of one word (nc code points). */
static bool encode_word(const tdm_wordpiece *wp, const uint32_t *w, size_t nc, tdm_wp_scratch *s,
                        tdm_i32vec *out)
{
    if (nc > wp->max_chars)
        return push_id(out, wp->unk_id);
    s->word.n = 0;
    s->offs.n = 0;
    if (!tdm_bytevec_reserve(&s->word, 4 * nc) || !tdm_u32vec_reserve(&s->offs, nc + 1))
        return false;
    unsigned char *b = s->word.v;
    uint32_t *off = s->offs.v;
    size_t pos = 0;
    for (size_t k = 0; k < nc; k++) {
        off[k] = (uint32_t)pos;
        pos += tdm_utf8_encode(w[k], b + pos);
    }
    off[nc] = (uint32_t)pos;

    const tdm_vocab *v = &wp->vocab;
    const char *word = (const char *)b;
    size_t base = out->n;
    size_t start = 0;
    while (start < nc) {
        size_t end = nc;
        size_t maxb = start == 0 ? v->max_full : v->max_cont;
        while (end > start && off[end] - off[start] > maxb)
            end--;
        int32_t id = -1;
        for (; end > start; end--) {
            size_t blen = off[end] - off[start];
            id = start == 0 ? tdm_vocab_lookup(v, word, blen)
                            : tdm_vocab_lookup_cont(v, word + off[start], blen);
            if (id >= 0)
                break;
        }
        if (id < 0) {
            out->n = base; /* the whole word becomes unk */
            return push_id(out, wp->unk_id);
        }
        if (!push_id(out, id))
            return false;
        start = end;
    }
    return true;
}

/* BertPreTokenizer classes: split on whitespace, isolate punctuation. */
static inline unsigned char_class(uint32_t c)
{
    if (c < 0x80) {
        if (c == ' ' || (c >= 9 && c <= 13))
            return TDM_UC_WS;
        if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
            (c >= 123 && c <= 126))
            return TDM_UC_PUNCT;
        return 0;
    }
    return tdm_uc_get(c)->flags & (TDM_UC_WS | TDM_UC_PUNCT);
}

bool tdm_wordpiece_encode(const tdm_wordpiece *wp, const uint32_t *cps, size_t n, size_t limit,
                          tdm_wp_scratch *s, tdm_i32vec *out)
{
    size_t i = 0;
    while (i < n && out->n < limit) {
        unsigned cls = char_class(cps[i]);
        if (cls & TDM_UC_WS) {
            i++;
            continue;
        }
        if (cls & TDM_UC_PUNCT) {
            if (!encode_word(wp, cps + i, 1, s, out))
                return false;
            i++;
            continue;
        }
        size_t start = i;
        while (i < n && char_class(cps[i]) == 0)
            i++;
        if (!encode_word(wp, cps + start, i - start, s, out))
            return false;
    }
    return true;
}
