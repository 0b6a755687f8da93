/*
 * Symbol streams: raw, constant or static rANS with context models.
 *
 * Why rANS and why static: activations at a cut are coded once and decoded
 * once, so a two-pass coder (count, then code) costs one extra read of the
 * symbols and in exchange decodes without any model update, which is what
 * makes the decoder fast. rANS with 12-bit frequencies is within a few
 * thousandths of a bit of the entropy for these alphabets, while Huffman
 * (zstd's literals) loses up to a bit on a symbol of probability 0.9, and
 * the zero symbol of a ReLU activation is exactly such a symbol.
 *
 * Layout of a stream (all little-endian):
 *   u8 method | model << 2
 *   RAW:   the symbols (4-bit: two per byte, low nibble first)
 *   CONST: u8 the symbol
 *   RANS:  one table per context of the model (a bit stream, padded to a
 *          byte with zeros), then the four final encoder states (u32 each),
 *          varint word_bytes, and the 16-bit renormalisation words in
 *          decoding order.
 *   RUNS:  (frame version 2) runs of equal symbols: literals and length
 *          codes as streams of the three methods above (see "Run-length
 *          streams" below).
 *
 * Tables are where a static coder loses to an adaptive one on small inputs,
 * so they are sent as levels, not frequencies: level 0 is an absent symbol,
 * level v > 0 a weight of 2^((v - 1) / 4), a quarter-bit step of log2 of the
 * symbol's count. Rounding a probability to a quarter bit costs under 0.002
 * bits per symbol, and neighbouring symbols of a quantised activation have
 * neighbouring levels, so each level is coded as the Elias-gamma code of the
 * zigzag of its difference from the previous one: about 2-3 bits per symbol
 * instead of 8-16 for a frequency. A table is `top` (bits + 1 bits: symbols
 * at and above it are absent) then the levels of symbols [0, top). Both
 * sides turn levels into 12-bit frequencies with the same integer
 * arithmetic (a fixed-point 2^(k/4) table, no libm), so the encoder codes
 * with exactly the frequencies the decoder rebuilds.
 *
 * rANS parameters: state x in [2^15, 2^31), 12-bit probabilities, 16-bit
 * output words, so one renormalisation step per symbol at most; symbol i
 * uses state i mod 4, the states share one word stream (the encoder runs
 * backwards over the symbols, so the decoder reads words forwards). After
 * the last symbol every state must be back at 2^15 and every word consumed:
 * a free integrity check on top of the frame CRC. The encoder divides by a
 * frequency with a precomputed reciprocal (multiply and shift, exact for
 * x < 2^31), which is what keeps the 2^31 bound on the state.
 */
#include "codec/entropy.h"

#include "codec/ctxcode.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define PROB_BITS 12
#define PROB_TOTAL (1u << PROB_BITS)
#define PROB_MASK (PROB_TOTAL - 1u)
#define RANS_L                                                                                \
    (1u << 15)         /* states live in [2^15, 2^31): the reciprocal division needs x < 2^31 \
                        */
#define NHIST 16       /* two previous symbols, four magnitude buckets each */
#define LEVEL_MAX 129u /* 1 + 4 * log2(2^32): table levels are quarter-bit steps */
#define GAMMA_MAX 16u  /* longest Elias-gamma prefix a valid table can hold */

static const uint8_t k_model_nctx[TDM_SYM_NMODELS] = {1, 2, 4, 5, 8, 16};

/* Context of a symbol under a model, from h = bucket(prev1) * 4 + bucket(prev2). */
static unsigned model_ctx(unsigned model, unsigned h)
{
    unsigned b1 = h >> 2, b2 = h & 3u;
    switch (model) {
    case 0: return 0;
    case 1: return b1 != 0;
    case 2: return b1;
    case 3: return b1 == 0 ? (b2 != 0) : b1 + 1;
    case 4: return b1 * 2 + (b2 != 0);
    default: return h;
    }
}

/*
 * Magnitude buckets of symbols that are offsets from a zero point, wrapped
 * modulo the alphabet: s and A - s are the same magnitude.
 */
static void build_buckets(unsigned bits, uint8_t bk[256])
{
    unsigned a = 1u << bits;
    memset(bk, 0, 256);
    for (unsigned s = 1; s < a; s++) {
        unsigned m = s < a - s ? s : a - s;
        if (bits == 8)
            bk[s] = m <= 2 ? 1 : m <= 8 ? 2 : 3;
        else
            bk[s] = m <= 1 ? 1 : m <= 3 ? 2 : 3;
    }
}

/* 2^(j/4) in 16.16 fixed point: the weight of level v is k_level_mant[k & 3] << (k >> 2), k = v-1.
 */
static const uint32_t k_level_mant[4] = {65536, 77936, 92682, 110218};

static uint64_t level_weight(unsigned v)
{
    unsigned k = v - 1;
    return (uint64_t)k_level_mant[k & 3] << (k >> 2);
}

/*
 * The level of a count >= 1 (the encoder's choice; any level decodes):
 * 1 + round(4 * log2(c)) in integers, comparing the mantissa of c with
 * 2^(k/8), k = 1, 3, 5, 7, in 16.16 fixed point.
 */
static unsigned count_level(uint32_t c)
{
    static const uint32_t half_steps[4] = {71468, 84990, 101070, 120194};
    unsigned e = 31u - (unsigned)__builtin_clz(c);
    uint32_t m = (uint32_t)(((uint64_t)c << 16) >> e);
    unsigned j =
        (m >= half_steps[0]) + (m >= half_steps[1]) + (m >= half_steps[2]) + (m >= half_steps[3]);
    return 1u + 4u * e + j;
}

/*
 * Buckets of the 8-bit alphabet for small inputs. Symbols are wrapped
 * offsets d (0..127 positive, 128..255 for -128..-1); a bucket holds the
 * magnitudes with the same two leading bits (1, 2, 3, 4-5, 6-7, 8-11, ...),
 * one set per sign. A bucketed table sends one level per bucket (28 of
 * them instead of up to 256), spread evenly over the bucket's symbols: on a
 * smooth distribution that costs a few hundredths of a bit per symbol and
 * saves a hundred bytes of table, which is what decides a 1000-value tensor.
 */
#define NBUCKET 28u

typedef struct bucketing {
    uint8_t of[256];        /* bucket of each symbol */
    uint8_t shift[NBUCKET]; /* log2 of each bucket's size */
} bucketing;

static void build_bucketing(bucketing *bu)
{
    memset(bu, 0, sizeof *bu);
    for (unsigned s = 1; s < 256; s++) {
        unsigned m = s < 128 ? s : 256 - s, idx, sh;
        if (m < 4) {
            idx = m;
            sh = 0;
        } else {
            unsigned e = 31u - (unsigned)__builtin_clz(m);
            idx = 4 + 2 * (e - 2) + ((m >> (e - 1)) & 1u);
            sh = e - 1;
        }
        unsigned b = s < 128 ? idx : 13 + idx;
        bu->of[s] = (uint8_t)b;
        bu->shift[b] = (uint8_t)sh;
    }
}

/*
 * Weights to frequencies summing to PROB_TOTAL, every present symbol >= 1:
 * one each, the rest shared in proportion to the weights, the remainder to
 * the heaviest. A table with no symbol puts all its mass on symbol 0 so that
 * every table is valid and the decoder needs no special case. Integer only:
 * encoder and decoder must agree to the last unit.
 */
static void weights_to_freq(const uint64_t *w, unsigned a, uint16_t *freq)
{
    uint64_t total = 0;
    unsigned present = 0, best = 0;
    for (unsigned s = 0; s < a; s++) {
        total += w[s];
        present += w[s] != 0;
        if (w[s] > w[best])
            best = s;
    }
    memset(freq, 0, a * sizeof *freq);
    if (total == 0) {
        freq[0] = PROB_TOTAL;
        return;
    }
    uint32_t spare = PROB_TOTAL - present, used = 0;
    for (unsigned s = 0; s < a; s++) {
        if (w[s] == 0)
            continue;
        uint32_t f = 1u + (uint32_t)(w[s] * spare / total); /* w < 2^50, spare <= 2^12 */
        freq[s] = (uint16_t)f;
        used += f;
    }
    freq[best] = (uint16_t)(freq[best] + (PROB_TOTAL - used));
}

/* Frequencies of a table: kind 0 has a level per symbol, kind 1 a level per bucket. */
static void table_freq(unsigned kind, const uint8_t *lv, unsigned a, const bucketing *bu,
                       uint16_t *freq)
{
    uint64_t w[256];
    for (unsigned s = 0; s < a; s++) {
        unsigned v = kind == 0 ? lv[s] : lv[bu->of[s]];
        w[s] = v ? level_weight(v) >> (kind == 0 ? 0 : bu->shift[bu->of[s]]) : 0;
    }
    weights_to_freq(w, a, freq);
}

static unsigned gamma_bits(uint32_t x)
{
    return 2u * (31u - (unsigned)__builtin_clz(x)) + 1u;
}

static uint32_t zigzag(int d)
{
    return d >= 0 ? 2u * (uint32_t)d : 2u * (uint32_t)(-d) - 1u;
}

static int unzigzag(uint32_t z)
{
    return (z & 1) ? -(int)((z + 1) / 2) : (int)(z / 2);
}

static unsigned table_top(const uint8_t *lv, unsigned n)
{
    unsigned top = n;
    while (top > 0 && lv[top - 1] == 0)
        top--;
    return top;
}

/* Bits of a list of n levels: top in topbits bits, then delta-gamma levels below top. */
static size_t levels_bits(const uint8_t *lv, unsigned n, unsigned topbits)
{
    unsigned top = table_top(lv, n), prev = 0;
    size_t nb = topbits;
    for (unsigned s = 0; s < top; s++) {
        nb += gamma_bits(zigzag((int)lv[s] - (int)prev) + 1);
        prev = lv[s];
    }
    return nb;
}

/* LSB-first bit writer over a caller-sized buffer (tables only: small). */
typedef struct bitw {
    uint8_t *p;
    size_t nbits;
} bitw;

static void bw_put(bitw *b, uint32_t v, unsigned n)
{
    for (unsigned i = 0; i < n; i++, b->nbits++)
        if ((v >> i) & 1u)
            b->p[b->nbits >> 3] |= (uint8_t)(1u << (b->nbits & 7));
}

static void bw_gamma(bitw *b, uint32_t x)
{
    unsigned n = 31u - (unsigned)__builtin_clz(x);
    b->nbits += n; /* n zeros (the buffer starts zeroed) */
    for (unsigned i = n + 1; i-- > 0;)
        bw_put(b, (x >> i) & 1u, 1);
}

static void levels_write(bitw *b, const uint8_t *lv, unsigned n, unsigned topbits)
{
    unsigned top = table_top(lv, n), prev = 0;
    bw_put(b, top, topbits);
    for (unsigned s = 0; s < top; s++) {
        bw_gamma(b, zigzag((int)lv[s] - (int)prev) + 1);
        prev = lv[s];
    }
}

/* log2(v) for v >= 1 to within 3e-4: only ranks models, never codes. */
static float approx_log2(uint32_t v)
{
    int e = 31 - __builtin_clz(v);
    float t = (float)(v - (1u << e)) / (float)(1u << e);
    float p = ((((-0.079158161f * t + 0.31224097f) * t - 0.66954228f) * t + 1.4361078f) * t +
               0.00020317973f);
    return (float)e + p;
}

/* What the encoder needs per (context, symbol): a division by the frequency as a multiply. */
typedef struct enc_sym {
    uint32_t x_max; /* renormalise first when x >= x_max */
    uint32_t rcp;   /* reciprocal of the frequency */
    uint32_t bias;
    uint16_t cmpl; /* PROB_TOTAL - freq */
    uint16_t shift;
} enc_sym;

static void enc_sym_init(enc_sym *e, uint32_t cum, uint32_t f)
{
    /* x' = (x / f) * 4096 + x % f + cum = x + cum + (x / f) * (4096 - f); x / f by reciprocal */
    e->x_max = f << 19; /* ((RANS_L >> PROB_BITS) << 16) * f */
    e->cmpl = (uint16_t)(PROB_TOTAL - f);
    if (f < 2) {
        /* rcp = 2^32 - 1 gives x - 1 for x >= 1; the bias adds the missing 4096 - 1 */
        e->rcp = ~0u;
        e->shift = 0;
        e->bias = cum + PROB_TOTAL - 1;
    } else {
        unsigned sh = 0;
        while (f > (1u << sh))
            sh++;
        e->rcp = (uint32_t)(((1ull << (sh + 31)) + f - 1) / f);
        e->shift = (uint16_t)(sh - 1);
        e->bias = cum;
    }
}

/* Encoder workspace: counts per history, merged counts and tables per context. */
typedef struct enc_ws {
    uint32_t part[4][NHIST][256];
    uint32_t cnt[NHIST][256];
    uint32_t merged[NHIST][256];
    uint8_t level[NHIST][256];
    uint8_t blevel[NHIST][NBUCKET];
    uint8_t kind[NHIST]; /* 0: a level per symbol, 1: a level per bucket */
    uint16_t freq[256];
    bucketing bu;
    enc_sym es[NHIST][256];
    uint8_t tbits[NHIST * 640]; /* a table is at most 10 + 256 * 17 bits */
} enc_ws;

/* Merges history counts into the model's contexts and derives their levels. */
static void model_levels(enc_ws *ws, unsigned model, unsigned a)
{
    unsigned nctx = k_model_nctx[model];
    memset(ws->merged, 0, sizeof ws->merged[0] * nctx);
    for (unsigned h = 0; h < NHIST; h++) {
        uint32_t *dst = ws->merged[model_ctx(model, h)];
        for (unsigned s = 0; s < a; s++)
            dst[s] += ws->cnt[h][s];
    }
    for (unsigned c = 0; c < nctx; c++) {
        uint32_t bc[NBUCKET];
        memset(bc, 0, sizeof bc);
        for (unsigned s = 0; s < a; s++) {
            ws->level[c][s] = ws->merged[c][s] ? (uint8_t)count_level(ws->merged[c][s]) : 0;
            bc[ws->bu.of[s]] += ws->merged[c][s];
        }
        for (unsigned k = 0; k < NBUCKET; k++)
            ws->blevel[c][k] = bc[k] ? (uint8_t)count_level(bc[k]) : 0;
        memset(ws->level[c] + a, 0, 256 - a); /* a may be below the alphabet: see the caller */
    }
}

/* log2 of a sum of weights (up to 2^58). */
static double log2_u64(uint64_t v)
{
    unsigned sh = 0;
    while ((v >> sh) > UINT32_MAX)
        sh++;
    return (double)approx_log2((uint32_t)(v >> sh)) + sh;
}

/*
 * Estimated stream bytes of a model, choosing for each context the cheaper
 * table kind: tables exact, payload from the levels (log2 of a weight is
 * (level - 1) / 4 + 16 by construction), so ranking six models costs no
 * division and no libm call.
 */
static double model_cost(enc_ws *ws, unsigned model, unsigned a, unsigned bits)
{
    model_levels(ws, model, a);
    unsigned nctx = k_model_nctx[model];
    double total_bits = 0;
    for (unsigned c = 0; c < nctx; c++) {
        /* kind 0: a level per symbol */
        uint64_t wsum = 0, n = 0;
        double sum = 0;
        for (unsigned s = 0; s < a; s++) {
            unsigned v = ws->level[c][s];
            if (v == 0)
                continue;
            wsum += level_weight(v);
            n += ws->merged[c][s];
            sum += (double)ws->merged[c][s] * ((double)(v - 1) * 0.25 + 16.0);
        }
        double cost0 = 1.0 + (double)levels_bits(ws->level[c], a, bits + 1);
        if (n > 0)
            cost0 += (double)n * log2_u64(wsum) - sum;
        ws->kind[c] = 0;
        if (bits != 8 || n == 0) {
            total_bits += cost0;
            continue;
        }
        /* kind 1: a level per bucket, spread evenly over its symbols */
        uint64_t bsum = 0;
        double bsumbits = 0;
        for (unsigned k = 0; k < NBUCKET; k++) {
            unsigned v = ws->blevel[c][k];
            if (v != 0)
                bsum += level_weight(v);
        }
        for (unsigned s = 0; s < a; s++) {
            unsigned k = ws->bu.of[s], v = ws->blevel[c][k];
            if (ws->merged[c][s] != 0)
                bsumbits += (double)ws->merged[c][s] *
                            ((double)(v - 1) * 0.25 + 16.0 - (double)ws->bu.shift[k]);
        }
        double cost1 = 1.0 + (double)levels_bits(ws->blevel[c], NBUCKET, 5) +
                       (double)n * log2_u64(bsum) - bsumbits;
        /* every symbol of a used bucket takes at least one of 4096 slots: a small extra cost */
        if (cost1 < cost0)
            ws->kind[c] = 1;
        total_bits += cost1 < cost0 ? cost1 : cost0;
    }
    return 1.0 + (total_bits + 7) / 8 + 16.0 + 5.0;
}

/*
 * rANS-encodes sym backwards into the end of buf[0, cap); returns the bytes
 * of words used (they end at buf + cap), or SIZE_MAX when they do not fit.
 */
static size_t rans_encode(const uint8_t *sym, size_t n, unsigned model, const uint8_t *bk,
                          const enc_ws *ws, uint8_t *buf, size_t cap, uint32_t states[4])
{
    uint8_t ctxmap[NHIST];
    for (unsigned h = 0; h < NHIST; h++)
        ctxmap[h] = (uint8_t)model_ctx(model, h);
    uint32_t x[4] = {RANS_L, RANS_L, RANS_L, RANS_L};
    uint8_t *p = buf + cap;
    for (size_t i = n; i-- > 0;) {
        const enc_sym *e;
        if (model == 0) {
            e = &ws->es[0][sym[i]];
        } else {
            unsigned h =
                (i >= 1 ? (unsigned)bk[sym[i - 1]] << 2 : 0u) | (i >= 2 ? bk[sym[i - 2]] : 0u);
            e = &ws->es[ctxmap[h]][sym[i]];
        }
        uint32_t v = x[i & 3];
        /* branch-free renormalisation: the word is always stored, kept only when needed */
        if (p - buf < 2)
            return SIZE_MAX;
        p[-2] = (uint8_t)v;
        p[-1] = (uint8_t)(v >> 8);
        uint32_t need = v >= e->x_max;
        p -= 2 * need;
        v = need ? v >> 16 : v;
        uint32_t q = (uint32_t)(((uint64_t)v * e->rcp) >> 32) >> e->shift;
        x[i & 3] = v + e->bias + q * e->cmpl;
    }
    memcpy(states, x, sizeof x);
    return (size_t)(buf + cap - p);
}

static void pack_raw(tdm_wbuf *w, const uint8_t *sym, size_t n, unsigned bits)
{
    size_t nb = tdm_sym_raw_bytes(n, bits);
    uint8_t *at = tdm_wbuf_reserve(w, nb);
    if (at == NULL)
        return;
    if (bits == 8) {
        if (n > 0)
            memcpy(at, sym, n);
        return;
    }
    for (size_t i = 0; i + 1 < n; i += 2)
        at[i / 2] = (uint8_t)(sym[i] | sym[i + 1] << 4);
    if (n & 1)
        at[n / 2] = sym[n - 1];
}

/* A stream of methods 0-2: raw, constant or rANS (the v1 methods). */
static tdm_status sym_encode_plain(const uint8_t *sym, size_t n, unsigned bits, bool entropy,
                                   enc_ws *ws, tdm_wbuf *w, tdm_sym_stats *stats, tdm_err *err)
{
    assert(bits == 4 || bits == 8);
    tdm_sym_stats st = {TDM_SYM_RAW, 0, 0, 0, 0, 0};
    size_t start = w->len, raw = tdm_sym_raw_bytes(n, bits);
    unsigned a = 1u << bits;
    uint8_t *buf = NULL;

    if (!entropy || n < 2 || n > UINT32_MAX)
        goto store_raw;

    assert(ws != NULL);
    uint8_t bk[256];
    build_buckets(bits, bk);
    build_bucketing(&ws->bu);
    /*
     * Four partial histograms, one per i mod 4: a run of one symbol would
     * otherwise increment the same counter back to back and wait on each store.
     */
    /* only the rows of symbols present: small streams (run lengths) use a few of 256 */
    unsigned used = 0;
    for (size_t i = 0; i < n; i++)
        used = sym[i] > used ? sym[i] : used;
    used++;
    for (unsigned k = 0; k < 4; k++)
        for (unsigned hh = 0; hh < NHIST; hh++)
            memset(ws->part[k][hh], 0, used * sizeof ws->part[k][hh][0]);
    {
        unsigned h = 0;
        size_t i = 0;
        for (; i + 4 <= n; i += 4) {
            for (unsigned k = 0; k < 4; k++) {
                unsigned s = sym[i + k];
                assert(s < a);
                ws->part[k][h][s]++;
                h = ((unsigned)bk[s] << 2) | (h >> 2);
            }
        }
        for (; i < n; i++) {
            unsigned s = sym[i];
            assert(s < a);
            ws->part[0][h][s]++;
            h = ((unsigned)bk[s] << 2) | (h >> 2);
        }
        for (unsigned hh = 0; hh < NHIST; hh++) {
            for (unsigned s = 0; s < used; s++)
                ws->cnt[hh][s] = ws->part[0][hh][s] + ws->part[1][hh][s] + ws->part[2][hh][s] +
                                 ws->part[3][hh][s];
            for (unsigned s = used; s < a; s++)
                ws->cnt[hh][s] = 0;
        }
    }
    /* One distinct symbol: a constant stream. */
    {
        unsigned distinct = 0;
        for (unsigned s = 0; s < a; s++) {
            uint32_t t = 0;
            for (unsigned h = 0; h < NHIST; h++)
                t += ws->cnt[h][s];
            distinct += t != 0;
        }
        if (distinct == 1) {
            tdm_wbuf_u8(w, TDM_SYM_CONST);
            tdm_wbuf_u8(w, sym[0]);
            st.method = TDM_SYM_CONST;
            st.stream_bytes = w->len - start;
            if (stats != NULL)
                *stats = st;
            return TDM_OK;
        }
    }
    unsigned best = 0;
    double best_cost = 0;
    /*
     * Models are in order of decoding cost (more tables, more cache); a larger
     * one must save at least 0.5% to be chosen.
     */
    /*
     * Costs and levels are computed over the symbols below `used` only (the
     * rest have no count and level 0): a stream of small run-length codes
     * would otherwise pay for 256 symbols in each of six models.
     */
    for (unsigned m = 0; m < TDM_SYM_NMODELS; m++) {
        double cost = model_cost(ws, m, used, bits);
        if (m == 0 || cost < best_cost * 0.995) {
            best = m;
            best_cost = cost;
        }
    }
    if (best_cost >= (double)(raw + 1))
        goto store_raw;

    model_cost(ws, best, used, bits); /* again, to leave the best model's tables in ws */
    unsigned nctx = k_model_nctx[best];
    for (unsigned c = 0; c < nctx; c++) {
        table_freq(ws->kind[c], ws->kind[c] ? ws->blevel[c] : ws->level[c], a, &ws->bu, ws->freq);
        uint32_t cum = 0;
        for (unsigned s = 0; s < a; s++) {
            if (ws->freq[s] != 0)
                enc_sym_init(&ws->es[c][s], cum, ws->freq[s]);
            cum += ws->freq[s];
        }
    }
    buf = malloc(raw + 2);
    if (buf == NULL) {
        return tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for a %zu-byte stream", raw);
    }
    uint32_t states[4];
    size_t wbytes = rans_encode(sym, n, best, bk, ws, buf, raw + 2, states);
    if (wbytes == SIZE_MAX)
        goto store_raw;
    bitw bw = {ws->tbits, 0};
    memset(ws->tbits, 0, sizeof ws->tbits);
    for (unsigned c = 0; c < nctx; c++) {
        bw_put(&bw, ws->kind[c], 1);
        if (ws->kind[c] == 0)
            levels_write(&bw, ws->level[c], a, bits + 1);
        else
            levels_write(&bw, ws->blevel[c], NBUCKET, 5);
    }
    size_t tb = (bw.nbits + 7) / 8;
    size_t total = 1 + tb + 16 + tdm_varint_len(wbytes) + wbytes;
    if (total >= raw + 1)
        goto store_raw;

    tdm_wbuf_u8(w, TDM_SYM_RANS | best << 2);
    tdm_wbuf_bytes(w, ws->tbits, tb);
    for (int j = 0; j < 4; j++)
        tdm_wbuf_u32(w, states[j]);
    tdm_wbuf_varint(w, wbytes);
    tdm_wbuf_bytes(w, buf + raw + 2 - wbytes, wbytes);
    st.method = TDM_SYM_RANS;
    st.model = best;
    st.nctx = nctx;
    st.table_bytes = tb;
    free(buf);
    st.stream_bytes = w->len - start;
    if (stats != NULL)
        *stats = st;
    return TDM_OK;

store_raw:
    free(buf);
    tdm_wbuf_u8(w, TDM_SYM_RAW);
    pack_raw(w, sym, n, bits);
    st.stream_bytes = w->len - start;
    if (stats != NULL)
        *stats = st;
    return TDM_OK;
}

/* LSB-first bit reader over the rest of an rbuf; every read is bounded. */
typedef struct bitr {
    const uint8_t *p;
    size_t nbytes, pos; /* pos in bits */
} bitr;

static bool br_bit(bitr *b, unsigned *bit)
{
    if (b->pos >= b->nbytes * 8)
        return false;
    *bit = (b->p[b->pos >> 3] >> (b->pos & 7)) & 1u;
    b->pos++;
    return true;
}

static bool br_get(bitr *b, unsigned n, uint32_t *v)
{
    uint32_t x = 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned bit;
        if (!br_bit(b, &bit))
            return false;
        x |= (uint32_t)bit << i;
    }
    *v = x;
    return true;
}

static bool br_gamma(bitr *b, uint32_t *v)
{
    unsigned n = 0, bit;
    for (;;) {
        if (!br_bit(b, &bit))
            return false;
        if (bit)
            break;
        if (++n > GAMMA_MAX)
            return false;
    }
    uint32_t x = 1;
    for (unsigned i = 0; i < n; i++) {
        if (!br_bit(b, &bit))
            return false;
        x = x << 1 | bit;
    }
    *v = x;
    return true;
}

/* Reads one table and expands it into decoding entries: sym | (freq - 1) << 8 | slot << 20. */
static tdm_status table_read(bitr *b, unsigned a, unsigned bits, const bucketing *bu, uint32_t *tab,
                             const char *what, unsigned ctx, tdm_err *err)
{
    uint8_t lv[256];
    uint16_t freq[256];
    uint32_t kind, top;
    memset(lv, 0, sizeof lv);
    if (!br_get(b, 1, &kind) || (kind == 1 && bits != 8))
        return tdm_errf(err, TDM_ERR_PARSE, "codec: %s: table %u is truncated or of a bad kind",
                        what, ctx);
    unsigned n = kind == 0 ? a : NBUCKET, topbits = kind == 0 ? bits + 1 : 5;
    if (!br_get(b, topbits, &top) || top > n)
        return tdm_errf(err, TDM_ERR_PARSE, "codec: %s: table %u is truncated or too long", what,
                        ctx);
    int prev = 0;
    for (unsigned s = 0; s < top; s++) {
        uint32_t g;
        if (!br_gamma(b, &g))
            return tdm_errf(err, TDM_ERR_PARSE, "codec: %s: table %u is truncated at entry %u",
                            what, ctx, s);
        int v = prev + unzigzag(g - 1);
        if (v < 0 || v > (int)LEVEL_MAX)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "codec: %s: table %u has level %d at entry %u (corrupt)", what, ctx, v,
                            s);
        lv[s] = (uint8_t)v;
        prev = v;
    }
    table_freq(kind, lv, a, bu, freq);
    uint32_t pos = 0;
    for (unsigned s = 0; s < a; s++)
        for (uint32_t j = 0; j < freq[s]; j++)
            tab[pos++] = s | (uint32_t)(freq[s] - 1u) << 8 | j << 20;
    return TDM_OK;
}

/*
 * One decoding step of state X with table T (an expression); leaves the
 * symbol in s_. RANS_DEC_FAST renormalises without a branch (whether a word
 * is needed is a coin toss the branch predictor loses) and without a bounds
 * check: it runs only in groups of four steps that start with at least 8
 * bytes of words left, enough for four renormalisations. RANS_DEC checks.
 */
#define RANS_DEC_STEP(X, T)           \
    uint32_t e_ = (T)[(X)&PROB_MASK]; \
    s_ = e_ & 0xffu;                  \
    (X) = ((e_ >> 8 & 0xfffu) + 1u) * ((X) >> PROB_BITS) + (e_ >> 20)

#define RANS_DEC_FAST(X, T)                                             \
    do {                                                                \
        RANS_DEC_STEP(X, T);                                            \
        uint32_t need_ = (X) < RANS_L, w_ = p[0] | (uint32_t)p[1] << 8; \
        (X) = need_ ? (X) << 16 | w_ : (X);                             \
        p += 2 * need_;                                                 \
        out[i++] = (uint8_t)s_;                                         \
    } while (0)

#define RANS_DEC(X, T)                                    \
    do {                                                  \
        RANS_DEC_STEP(X, T);                              \
        if ((X) < RANS_L) {                               \
            if (end - p < 2)                              \
                goto corrupt;                             \
            (X) = (X) << 16 | p[0] | (uint32_t)p[1] << 8; \
            p += 2;                                       \
        }                                                 \
        out[i++] = (uint8_t)s_;                           \
    } while (0)

/*
 * With a context model the next table depends on the symbol just decoded:
 * nxt[(h >> 2) * 256 + s] holds the next history and the offset of its
 * table, so the chain from one symbol to the next is two loads.
 */
#define RANS_NEXT_CTX()                        \
    do {                                       \
        uint32_t v_ = nxt[(h >> 2) << 8 | s_]; \
        h = v_ & 15u;                          \
        base = tab + (v_ >> 4);                \
    } while (0)

#define RANS_DEC_CTX_FAST(X)    \
    do {                        \
        RANS_DEC_FAST(X, base); \
        RANS_NEXT_CTX();        \
    } while (0)

#define RANS_DEC_CTX(X)    \
    do {                   \
        RANS_DEC(X, base); \
        RANS_NEXT_CTX();   \
    } while (0)

static tdm_status rans_decode(tdm_rbuf *r, uint8_t *out, size_t n, unsigned bits, unsigned model,
                              const char *what, tdm_err *err)
{
    unsigned a = 1u << bits, nctx = k_model_nctx[model];
    uint32_t *tab = malloc((size_t)nctx * PROB_TOTAL * sizeof *tab);
    if (tab == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for decoding tables");
    tdm_status s;
    bitr b = {r->p + r->pos, tdm_rbuf_left(r), 0};
    bucketing bu;
    build_bucketing(&bu);
    for (unsigned c = 0; c < nctx; c++) {
        s = table_read(&b, a, bits, &bu, tab + (size_t)c * PROB_TOTAL, what, c, err);
        if (s != TDM_OK) {
            free(tab);
            return s;
        }
    }
    uint32_t pad;
    if (!br_get(&b, (unsigned)((8 - b.pos % 8) % 8), &pad) || pad != 0) {
        free(tab);
        return tdm_errf(err, TDM_ERR_PARSE, "codec: %s: table padding is not zero", what);
    }
    r->pos += b.pos / 8;
    uint32_t x0, x1, x2, x3;
    uint64_t wbytes;
    if (!tdm_rbuf_u32(r, &x0) || !tdm_rbuf_u32(r, &x1) || !tdm_rbuf_u32(r, &x2) ||
        !tdm_rbuf_u32(r, &x3) || !tdm_rbuf_varint(r, &wbytes)) {
        free(tab);
        return tdm_errf(err, TDM_ERR_PARSE, "codec: %s: rANS stream header is truncated", what);
    }
    const uint32_t hi = 1u << 31;
    if (x0 < RANS_L || x1 < RANS_L || x2 < RANS_L || x3 < RANS_L || x0 >= hi || x1 >= hi ||
        x2 >= hi || x3 >= hi || (wbytes & 1) != 0 || wbytes > tdm_rbuf_left(r)) {
        free(tab);
        return tdm_errf(err, TDM_ERR_PARSE,
                        "codec: %s: rANS states or word count (%llu bytes, %zu left) are invalid",
                        what, (unsigned long long)wbytes, tdm_rbuf_left(r));
    }
    const uint8_t *p = tdm_rbuf_take(r, (size_t)wbytes);
    const uint8_t *end = p + wbytes;
    size_t i = 0;
    uint32_t s_;
    if (model == 0) {
        const uint32_t *t0 = tab;
        while (n - i >= 4 && end - p >= 8) {
            RANS_DEC_FAST(x0, t0);
            RANS_DEC_FAST(x1, t0);
            RANS_DEC_FAST(x2, t0);
            RANS_DEC_FAST(x3, t0);
        }
        while (n - i >= 4) {
            RANS_DEC(x0, t0);
            RANS_DEC(x1, t0);
            RANS_DEC(x2, t0);
            RANS_DEC(x3, t0);
        }
        if (i < n)
            RANS_DEC(x0, t0);
        if (i < n)
            RANS_DEC(x1, t0);
        if (i < n)
            RANS_DEC(x2, t0);
    } else {
        uint8_t bk[256];
        build_buckets(bits, bk);
        uint32_t nxt[4 * 256];
        for (unsigned b1 = 0; b1 < 4; b1++)
            for (unsigned sym = 0; sym < 256; sym++) {
                unsigned hn = (unsigned)bk[sym] << 2 | b1;
                nxt[b1 << 8 | sym] = hn | (model_ctx(model, hn) * PROB_TOTAL) << 4;
            }
        unsigned h = 0;
        const uint32_t *base = tab + (size_t)model_ctx(model, 0) * PROB_TOTAL;
        while (n - i >= 4 && end - p >= 8) {
            RANS_DEC_CTX_FAST(x0);
            RANS_DEC_CTX_FAST(x1);
            RANS_DEC_CTX_FAST(x2);
            RANS_DEC_CTX_FAST(x3);
        }
        while (n - i >= 4) {
            RANS_DEC_CTX(x0);
            RANS_DEC_CTX(x1);
            RANS_DEC_CTX(x2);
            RANS_DEC_CTX(x3);
        }
        if (i < n)
            RANS_DEC_CTX(x0);
        if (i < n)
            RANS_DEC_CTX(x1);
        if (i < n)
            RANS_DEC_CTX(x2);
    }
    free(tab);
    if (p != end || x0 != RANS_L || x1 != RANS_L || x2 != RANS_L || x3 != RANS_L)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "codec: %s: rANS stream does not end where it should (corrupt)", what);
    return TDM_OK;
corrupt:
    free(tab);
    return tdm_errf(err, TDM_ERR_PARSE,
                    "codec: %s: rANS stream ran out of words after %zu of %zu symbols (corrupt "
                    "or truncated)",
                    what, i, n);
}

static tdm_status sym_decode_plain(tdm_rbuf *r, uint8_t *sym, size_t n, unsigned bits,
                                   const char *what, tdm_err *err)
{
    assert(bits == 4 || bits == 8);
    unsigned hdr;
    if (!tdm_rbuf_u8(r, &hdr))
        return tdm_errf(err, TDM_ERR_PARSE, "codec: %s: stream header is missing", what);
    unsigned method = hdr & 3u, model = hdr >> 2;
    unsigned a = 1u << bits;
    if (method == TDM_SYM_RAW && model == 0) {
        const uint8_t *at = tdm_rbuf_take(r, tdm_sym_raw_bytes(n, bits));
        if (at == NULL)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "codec: %s: raw stream of %zu symbols is "
                            "truncated",
                            what, n);
        if (bits == 8) {
            if (n > 0)
                memcpy(sym, at, n);
            return TDM_OK;
        }
        for (size_t i = 0; i + 1 < n; i += 2) {
            sym[i] = at[i / 2] & 15u;
            sym[i + 1] = at[i / 2] >> 4;
        }
        if (n & 1) {
            if (at[n / 2] >> 4)
                return tdm_errf(err, TDM_ERR_PARSE, "codec: %s: padding nibble is not zero", what);
            sym[n - 1] = at[n / 2];
        }
        return TDM_OK;
    }
    if (method == TDM_SYM_CONST && model == 0) {
        unsigned s;
        if (!tdm_rbuf_u8(r, &s))
            return tdm_errf(err, TDM_ERR_PARSE, "codec: %s: constant stream is truncated", what);
        if (s >= a)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "codec: %s: constant symbol %u is outside the "
                            "%u-symbol alphabet",
                            what, s, a);
        if (n > 0)
            memset(sym, (int)s, n);
        return TDM_OK;
    }
    if (method == TDM_SYM_RANS && model < TDM_SYM_NMODELS)
        return rans_decode(r, sym, n, bits, model, what, err);
    return tdm_errf(err, TDM_ERR_PARSE, "codec: %s: unknown stream method byte 0x%02x", what, hdr);
}

/*
 * Run-length streams (frame version 2). A static coder cannot code a symbol
 * in less than a small fraction of a bit, and it pays that for every symbol
 * of a run; an LZ coder (zstd) covers a whole run of zeros or of a constant
 * background with one match. So a stream may instead be a list of runs of
 * equal symbols: the first symbol of every run (a plain stream of `bits`-bit
 * literals, with its own context model over the previous literals), and each
 * run's length - 1 as a length code (16 direct codes for 0-15, then four
 * codes per power of two, as in DEFLATE, up to code 255 for 2^64 - 1) plus
 * its extra bits. The length codes go
 * to two plain 8-bit streams, one for runs of symbol 0 (long: dead regions)
 * and one for runs of other symbols (short), each with its own context model
 * over its previous codes. More streams (splitting also by the length of the
 * previous run) code the lengths a little better but each rANS stream pays
 * 16 bytes of final states and its tables, which decides the small tensors
 * of a cut.
 *
 * Layout: u8 3 (method 3, model bits 0), varint nruns, the literal stream,
 * varint count of length codes of nonzero runs (zero runs have the rest),
 * the two code streams (nonzero runs, then zero runs), varint extra_bytes,
 * then the extra bits (LSB first, padded with zero bits). The encoder writes a run stream only when
 * it is smaller than the best plain stream, so dense maps never get worse and the bound of a stream
 * is unchanged.
 */
#define RUN_NCTX 2u

static unsigned run_code(uint64_t v, unsigned *nextra, uint64_t *extra)
{
    if (v < 16) {
        *nextra = 0;
        *extra = 0;
        return (unsigned)v;
    }
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    *nextra = e - 2;
    *extra = v & ((1ull << (e - 2)) - 1);
    return 16u + 4u * (e - 4) + (unsigned)((v >> (e - 2)) & 3u);
}

static unsigned run_ctx(unsigned lit)
{
    return lit == 0;
}

static void bw_put64(bitw *b, uint64_t v, unsigned n)
{
    if (n > 32) {
        bw_put(b, (uint32_t)v, 32);
        bw_put(b, (uint32_t)(v >> 32), n - 32);
    } else {
        bw_put(b, (uint32_t)v, n);
    }
}

static bool br_get64(bitr *b, unsigned n, uint64_t *v)
{
    uint32_t lo = 0, hi = 0;
    if (n > 32) {
        if (!br_get(b, 32, &lo) || !br_get(b, n - 32, &hi))
            return false;
    } else if (!br_get(b, n, &lo)) {
        return false;
    }
    *v = (uint64_t)hi << 32 | lo;
    return true;
}

/*
 * Writes the run stream of sym over w[start, ...) when it is smaller than
 * `limit` bytes (the plain stream already there); *used says whether it did.
 */
static tdm_status runs_encode(const uint8_t *sym, size_t n, unsigned bits, enc_ws *ws, size_t start,
                              size_t limit, tdm_wbuf *w, size_t *nruns_out, bool *used,
                              tdm_err *err)
{
    *used = false;
    size_t nr = 1;
    for (size_t i = 1; i < n; i++)
        nr += sym[i] != sym[i - 1];
    /* a run stream pays a length code per run: hopeless when most runs are single symbols */
    if (nr > n / 4 * 3)
        return TDM_OK;
    uint8_t *lits = malloc(nr), *codes = malloc(nr), *ctxs = malloc(nr);
    uint8_t *tmp = NULL, *ebuf = NULL;
    tdm_status s = TDM_OK;
    if (lits == NULL || codes == NULL || ctxs == NULL)
        goto nomem;
    size_t cnt[RUN_NCTX] = {0}, off[RUN_NCTX], ebits = 0;
    {
        size_t j = 0, i = 0;
        while (i < n) {
            size_t k = i + 1;
            while (k < n && sym[k] == sym[i])
                k++;
            unsigned ne;
            uint64_t ex;
            lits[j] = sym[i];
            codes[j] = (uint8_t)run_code(k - i - 1, &ne, &ex);
            ctxs[j] = (uint8_t)run_ctx(sym[i]);
            cnt[ctxs[j]]++;
            ebits += ne;
            j++;
            i = k;
        }
        assert(j == nr);
    }
    size_t ebytes = (ebits + 7) / 8;
    size_t cap = 1 + 10 + tdm_sym_bound(nr, bits) + 3 * 10 + RUN_NCTX + nr + 10 + ebytes;
    tmp = malloc(cap);
    ebuf = calloc(ebytes ? ebytes : 1, 1);
    uint8_t *grouped = malloc(nr);
    if (tmp == NULL || ebuf == NULL || grouped == NULL) {
        free(grouped);
        goto nomem;
    }
    /* codes grouped by context (stable), extra bits in run order */
    off[0] = 0;
    for (unsigned c = 1; c < RUN_NCTX; c++)
        off[c] = off[c - 1] + cnt[c - 1];
    {
        bitw bw = {ebuf, 0};
        size_t at[RUN_NCTX];
        memcpy(at, off, sizeof at);
        size_t i = 0;
        for (size_t j = 0; j < nr; j++) {
            size_t k = i + 1;
            while (k < n && sym[k] == sym[i])
                k++;
            unsigned ne;
            uint64_t ex;
            (void)run_code(k - i - 1, &ne, &ex);
            bw_put64(&bw, ex, ne);
            grouped[at[ctxs[j]]++] = codes[j];
            i = k;
        }
        assert(bw.nbits == ebits);
    }
    tdm_wbuf tw;
    tdm_wbuf_init(&tw, tmp, cap);
    tdm_wbuf_u8(&tw, TDM_SYM_RUNS);
    tdm_wbuf_varint(&tw, nr);
    s = sym_encode_plain(lits, nr, bits, true, ws, &tw, NULL, err);
    for (unsigned c = 0; c + 1 < RUN_NCTX && s == TDM_OK; c++)
        tdm_wbuf_varint(&tw, cnt[c]);
    for (unsigned c = 0; c < RUN_NCTX && s == TDM_OK; c++)
        s = sym_encode_plain(grouped + off[c], cnt[c], 8, true, ws, &tw, NULL, err);
    if (s != TDM_OK)
        goto out;
    tdm_wbuf_varint(&tw, ebytes);
    tdm_wbuf_bytes(&tw, ebuf, ebytes);
    assert(!tw.overflow);
    free(grouped);
    if (tw.len < limit) {
        w->len = start;
        tdm_wbuf_bytes(w, tmp, tw.len);
        *used = true;
        *nruns_out = nr;
    }
    goto out;
nomem:
    s = tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for a run stream of %zu symbols", n);
out:
    free(lits);
    free(codes);
    free(ctxs);
    free(tmp);
    free(ebuf);
    return s;
}

tdm_status tdm_sym_encode_row(const uint8_t *sym, size_t n, unsigned bits, bool entropy,
                              unsigned version, size_t row, tdm_wbuf *w, tdm_sym_stats *stats,
                              tdm_err *err)
{
    size_t start = w->len;
    tdm_sym_stats st;
    enc_ws *ws = NULL;
    if (entropy && n >= 2 && n <= UINT32_MAX) {
        /* one workspace for the plain stream and the five streams of a run stream */
        ws = malloc(sizeof *ws);
        if (ws == NULL)
            return tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for entropy coder tables");
    }
    tdm_status s = sym_encode_plain(sym, n, bits, entropy, ws, w, &st, err);
    if (s != TDM_OK) {
        free(ws);
        return s;
    }
    if (ws != NULL && version >= 2 && !w->overflow && n >= 8 && st.method != TDM_SYM_CONST) {
        bool used;
        size_t nr = 0;
        s = runs_encode(sym, n, bits, ws, start, w->len - start, w, &nr, &used, err);
        if (s != TDM_OK) {
            free(ws);
            return s;
        }
        if (used) {
            memset(&st, 0, sizeof st);
            st.method = TDM_SYM_RUNS;
            st.runs = nr;
            st.stream_bytes = w->len - start;
        }
    }
    if (ws != NULL && version >= 2 && row > 0 && row < n && !w->overflow && n >= 8 &&
        st.method != TDM_SYM_CONST) {
        /*
         * A context-modelled stream, kept only when it saves 2% (it decodes at 20-100 MB/s
         * against several hundred for a static rANS stream, so a marginal gain is not worth it).
         */
        size_t cur = w->len - start, cap = cur - cur / 50;
        uint8_t *tmp = cap > 2 ? malloc(cap) : NULL;
        size_t len = tmp != NULL ? tdm_ctx_encode(sym, n, bits, row, tmp, cap - 2) : 0;
        if (len > 0) {
            w->len = start;
            tdm_wbuf_u8(w, TDM_CTX_HDR);
            tdm_wbuf_bytes(w, tmp, len);
            memset(&st, 0, sizeof st);
            st.method = TDM_SYM_CTX;
            st.stream_bytes = w->len - start;
        }
        free(tmp);
    }
    free(ws);
    if (stats != NULL)
        *stats = st;
    return TDM_OK;
}

tdm_status tdm_sym_encode_v(const uint8_t *sym, size_t n, unsigned bits, bool entropy,
                            unsigned version, tdm_wbuf *w, tdm_sym_stats *stats, tdm_err *err)
{
    return tdm_sym_encode_row(sym, n, bits, entropy, version, 0, w, stats, err);
}

tdm_status tdm_sym_encode(const uint8_t *sym, size_t n, unsigned bits, bool entropy, tdm_wbuf *w,
                          tdm_sym_stats *stats, tdm_err *err)
{
    return tdm_sym_encode_v(sym, n, bits, entropy, TDM_SYM_VERSION, w, stats, err);
}

static tdm_status runs_decode(tdm_rbuf *r, uint8_t *sym, size_t n, unsigned bits, const char *what,
                              tdm_err *err)
{
    uint64_t nr64;
    if (!tdm_rbuf_varint(r, &nr64) || nr64 == 0 || nr64 > n)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "codec: %s: run stream has a missing or invalid run count (%zu symbols)",
                        what, n);
    size_t nr = (size_t)nr64;
    uint8_t *lits = malloc(nr), *codes = malloc(nr);
    tdm_status s = TDM_OK;
    if (lits == NULL || codes == NULL) {
        s = tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for %zu runs", nr);
        goto out;
    }
    s = sym_decode_plain(r, lits, nr, bits, what, err);
    if (s != TDM_OK)
        goto out;
    size_t cnt[RUN_NCTX], off[RUN_NCTX], sum = 0;
    for (unsigned c = 0; c + 1 < RUN_NCTX; c++) {
        uint64_t v;
        if (!tdm_rbuf_varint(r, &v) || v > nr - sum) {
            s = tdm_errf(err, TDM_ERR_PARSE,
                         "codec: %s: run stream's count of length codes in context %u is "
                         "missing or above the %zu runs",
                         what, c, nr);
            goto out;
        }
        cnt[c] = (size_t)v;
        sum += cnt[c];
    }
    cnt[RUN_NCTX - 1] = nr - sum;
    size_t at = 0;
    for (unsigned c = 0; c < RUN_NCTX; c++) {
        off[c] = at;
        s = sym_decode_plain(r, codes + off[c], cnt[c], 8, what, err);
        if (s != TDM_OK)
            goto out;
        at += cnt[c];
    }
    uint64_t eb;
    if (!tdm_rbuf_varint(r, &eb) || eb > tdm_rbuf_left(r)) {
        s = tdm_errf(err, TDM_ERR_PARSE, "codec: %s: run stream's extra bits are truncated", what);
        goto out;
    }
    bitr b = {tdm_rbuf_take(r, (size_t)eb), (size_t)eb, 0};
    size_t pos = 0, rd[RUN_NCTX] = {0};
    for (size_t j = 0; j < nr; j++) {
        unsigned lit = lits[j], c = run_ctx(lit);
        if (rd[c] >= cnt[c]) {
            s = tdm_errf(err, TDM_ERR_PARSE,
                         "codec: %s: run %zu needs a length code in context %u, which has only "
                         "%zu (corrupt)",
                         what, j, c, cnt[c]);
            goto out;
        }
        unsigned code = codes[off[c] + rd[c]++];
        uint64_t v = code;
        if (code >= 16) { /* every 8-bit code is valid: the last one is 7 << 61 and more */
            unsigned e = (code - 16) / 4 + 4;
            uint64_t ex;
            if (!br_get64(&b, e - 2, &ex)) {
                s = tdm_errf(err, TDM_ERR_PARSE,
                             "codec: %s: run stream ran out of extra bits at run %zu", what, j);
                goto out;
            }
            v = ((uint64_t)(4u | ((code - 16) & 3u)) << (e - 2)) | ex;
        }
        if (v >= n - pos) {
            s = tdm_errf(err, TDM_ERR_PARSE,
                         "codec: %s: run %zu of %llu symbols overruns the %zu symbols left "
                         "(corrupt)",
                         what, j, (unsigned long long)v + 1, n - pos);
            goto out;
        }
        memset(sym + pos, (int)lit, (size_t)v + 1);
        pos += (size_t)v + 1;
    }
    uint32_t pad = 0;
    if (pos != n || (b.nbytes * 8 - b.pos) >= 8 ||
        !br_get(&b, (unsigned)(b.nbytes * 8 - b.pos), &pad) || pad != 0)
        s = tdm_errf(err, TDM_ERR_PARSE,
                     "codec: %s: run stream covers %zu of %zu symbols or leaves extra bits "
                     "(corrupt)",
                     what, pos, n);
out:
    free(lits);
    free(codes);
    return s;
}

tdm_status tdm_sym_decode_v(tdm_rbuf *r, uint8_t *sym, size_t n, unsigned bits, unsigned version,
                            const char *what, tdm_err *err)
{
    assert(bits == 4 || bits == 8);
    if (tdm_rbuf_left(r) > 0 && r->p[r->pos] == TDM_SYM_RUNS) {
        if (version < 2)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "codec: %s: run-length stream in a version-%u frame (runs are "
                            "version 2)",
                            what, version);
        r->pos++;
        return runs_decode(r, sym, n, bits, what, err);
    }
    if (tdm_rbuf_left(r) > 0 && r->p[r->pos] == TDM_CTX_HDR) {
        if (version < 2)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "codec: %s: context-modelled stream in a version-%u frame (they are "
                            "version 2)",
                            what, version);
        r->pos++;
        return tdm_ctx_decode(r, sym, n, bits, what, err);
    }
    return sym_decode_plain(r, sym, n, bits, what, err);
}

tdm_status tdm_sym_decode(tdm_rbuf *r, uint8_t *sym, size_t n, unsigned bits, const char *what,
                          tdm_err *err)
{
    return tdm_sym_decode_v(r, sym, n, bits, TDM_SYM_VERSION, what, err);
}
