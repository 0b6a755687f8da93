/*
 * The feature codec: frame format, encoder and decoder (API in tandem/codec.h,
 * format in docs/codec.md).
 *
 * A frame is a fixed header, a payload of sections and a CRC32C:
 *
 *   "TDMC" u8 version u8 mode u8 dtype u8 ndim u8 layout u8 flags u8 axis u8 0
 *   dims[ndim]  payload_len  payload  u32 crc32c(everything before)
 *   (dims and payload_len: u64 in version 1, varints in version 2)
 *
 * The magic and version come first and never move, so that any future
 * decoder can tell "newer frame" from "corrupt frame". Version 2 writes the
 * dims and the payload length as varints (about 35 bytes less per frame,
 * which matters for the 0.5-5 KB tensors of a cut) and adds a stream method
 * (runs, see entropy.c); a version-1 frame that holds one is refused, so old
 * frames decode exactly as before. The payload holds, in
 * this order and only when they apply: the top-k positions (varint k, then a
 * position block), the quantisation table (f32 scale per channel, then u8
 * zero point per channel), the value streams (four byte planes for lossless,
 * two for float16, one symbol stream for int8/int4), and the exceptions of a
 * quantised frame (NaN and Inf, which no affine grid can hold: varint count,
 * a position block, the raw float32 bits). A position block is a u8 kind
 * (0 bitmap, 1 varint gaps) followed by a symbol stream; the encoder picks
 * the kind with fewer raw bytes, so a gap list is never longer than the
 * bitmap and the decoder can bound it.
 *
 * The decoder trusts nothing: the header is validated field by field, the
 * CRC is checked before the payload is parsed, the decoded size is compared
 * with the caller's limit before anything is allocated, every section is
 * bounded by the bytes actually present, and the payload must be consumed
 * exactly. Scratch memory is bounded by a small multiple of the decoded
 * tensor, which the frame cannot inflate beyond the caller's max_bytes.
 */
#include "tandem/codec.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "codec/bytes.h"
#include "codec/crc32c.h"
#include "codec/entropy.h"
#include "codec/quant.h"

#define HDR_FIXED 12u
#define LEN_ROOM 10u /* the encoder's room for the payload length: the longest varint */
#define FLAG_PER_CHANNEL 0x01u
#define FLAG_SPARSE 0x02u
#define FLAG_EXCEPTIONS 0x04u
#define FLAG_ENTROPY 0x08u
#define FLAG_KNOWN 0x0fu
#define POS_BITMAP 0u
#define POS_GAPS 1u
#define PCT_BINS 2048u

_Static_assert(TDM_SYM_VERSION == TDM_CODEC_VERSION, "symbol streams and frames share a version");

static const uint8_t k_magic[4] = {'T', 'D', 'M', 'C'};

const char *tdm_codec_mode_name(tdm_codec_mode m)
{
    switch (m) {
    case TDM_CODEC_MODE_LOSSLESS: return "lossless";
    case TDM_CODEC_MODE_F16: return "f16";
    case TDM_CODEC_MODE_INT8: return "int8";
    case TDM_CODEC_MODE_INT4: return "int4";
    }
    return "?";
}

bool tdm_codec_mode_parse(const char *s, tdm_codec_mode *m)
{
    static const tdm_codec_mode all[] = {TDM_CODEC_MODE_LOSSLESS, TDM_CODEC_MODE_F16,
                                         TDM_CODEC_MODE_INT8, TDM_CODEC_MODE_INT4};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, tdm_codec_mode_name(all[i])) == 0) {
            *m = all[i];
            return true;
        }
    }
    return false;
}

void tdm_codec_params_default(tdm_codec_params *p, tdm_codec_mode mode)
{
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->granularity = TDM_CODEC_GRANULARITY_TENSOR;
    p->channel_axis = 1;
    p->clip = TDM_CODEC_CLIP_MINMAX;
    p->percentile = 99.99f;
    p->entropy = true;
}

static bool mode_quantised(unsigned mode)
{
    return mode == TDM_CODEC_MODE_INT8 || mode == TDM_CODEC_MODE_INT4;
}

static unsigned mode_bits(unsigned mode)
{
    return mode == TDM_CODEC_MODE_INT4 ? 4u : 8u;
}

/* ---- geometry -------------------------------------------------------------------- */

/* How elements map to channels: index i is in channel (i / inner) % nchan. */
typedef struct geom {
    size_t n;
    size_t nchan, inner, outer;
    bool quant, per_channel;
    unsigned axis;
    unsigned bits, qmax;
    unsigned version; /* of the frame being decoded: which stream methods it may hold */
} geom;

static void geom_channels(geom *g, const int64_t *dims, int ndim, bool per_channel, unsigned axis)
{
    g->per_channel = per_channel && g->n > 0;
    g->axis = g->per_channel ? axis : 0;
    g->nchan = 1;
    g->inner = g->n;
    g->outer = 1;
    if (!g->per_channel)
        return;
    g->nchan = (size_t)dims[axis];
    g->inner = 1;
    for (int i = (int)axis + 1; i < ndim; i++)
        g->inner *= (size_t)dims[i];
    g->outer = g->n / (g->nchan * g->inner);
}

static tdm_status check_encode_args(const tdm_tensor *t, const tdm_codec_params *p, geom *g,
                                    bool need_data, tdm_err *err)
{
    if (t == NULL || p == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: tensor and params must not be NULL");
    if (t->dtype != TDM_DTYPE_FLOAT32)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "codec: encodes float32 tensors, got %s",
                        tdm_dtype_name(t->dtype));
    if (t->ndim < 0 || t->ndim > TDM_MAX_DIMS)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: rank %d is outside [0, %d]", (int)t->ndim,
                        TDM_MAX_DIMS);
    size_t bytes;
    if (!tdm_shape_checked_bytes(t->dims, t->ndim, sizeof(float), SIZE_MAX / 8, &bytes))
        return tdm_errf(err, TDM_ERR_SHAPE, "codec: shape has a negative dim or overflows");
    if ((unsigned)p->mode > TDM_CODEC_MODE_INT4)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: unknown mode %d", (int)p->mode);
    if ((unsigned)p->granularity > TDM_CODEC_GRANULARITY_CHANNEL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: unknown granularity %d",
                        (int)p->granularity);
    if ((unsigned)p->clip > TDM_CODEC_CLIP_PERCENTILE)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: unknown clip method %d", (int)p->clip);
    if (p->clip == TDM_CODEC_CLIP_PERCENTILE &&
        !(p->percentile >= 50.0f && p->percentile <= 100.0f))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: percentile %g is outside [50, 100]",
                        (double)p->percentile);
    if (!(p->zero_fraction >= 0.0f && p->zero_fraction < 1.0f))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: zero_fraction %g must be in [0, 1)",
                        (double)p->zero_fraction);
    if (!(p->zero_threshold >= 0.0f && p->zero_threshold <= FLT_MAX))
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "codec: zero_threshold %g must be finite and >= 0",
                        (double)p->zero_threshold);
    if (!(p->topk_fraction >= 0.0f && p->topk_fraction <= 1.0f))
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: topk_fraction %g is outside [0, 1]",
                        (double)p->topk_fraction);
    if (p->topk_count < 0)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: topk_count %lld is negative",
                        (long long)p->topk_count);
    memset(g, 0, sizeof *g);
    g->n = bytes / sizeof(float);
    if (need_data && g->n > 0 && t->data == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: tensor has %zu elements but no data",
                        g->n);
    g->quant = mode_quantised(p->mode);
    g->bits = mode_bits(p->mode);
    g->qmax = (1u << g->bits) - 1u;
    bool per_channel = g->quant && p->granularity == TDM_CODEC_GRANULARITY_CHANNEL;
    unsigned axis = 0;
    if (per_channel) {
        int32_t a = p->channel_axis < 0 ? p->channel_axis + t->ndim : p->channel_axis;
        if (a < 0 || a >= t->ndim)
            return tdm_errf(err, TDM_ERR_INVALID_ARG,
                            "codec: channel_axis %d is outside a rank-%d tensor",
                            (int)p->channel_axis, (int)t->ndim);
        axis = (unsigned)a;
    }
    geom_channels(g, t->dims, t->ndim, per_channel, axis);
    return TDM_OK;
}

/* ---- bound ----------------------------------------------------------------------- */

static bool add_to(size_t *acc, size_t v)
{
    return !tdm_add_overflow(*acc, v, acc);
}

/* Worst case of a position block over n elements (gaps are never longer than the bitmap). */
static size_t pos_bound(size_t n)
{
    return 1 + 10 + tdm_sym_bound(n / 8 + 1, 8);
}

size_t tdm_codec_bound(const tdm_tensor *t, const tdm_codec_params *p)
{
    geom g;
    if (check_encode_args(t, p, &g, false, NULL) != TDM_OK)
        return 0;
    size_t b = HDR_FIXED + 10u * (size_t)t->ndim + LEN_ROOM + 4u; /* varints: 10 bytes at most */
    if (g.n == 0)
        return b;
    size_t n = g.n, v = 0;
    bool ok = true;
    switch (p->mode) {
    case TDM_CODEC_MODE_LOSSLESS: ok = !tdm_mul_overflow(tdm_sym_bound(n, 8), 4, &v); break;
    case TDM_CODEC_MODE_F16: ok = !tdm_mul_overflow(tdm_sym_bound(n, 8), 2, &v); break;
    default:
        ok = !tdm_mul_overflow(g.nchan, 5, &v) && add_to(&v, tdm_sym_bound(n, g.bits));
        /* exceptions: every value could be NaN */
        ok = ok && add_to(&v, 10 + pos_bound(n)) && n <= SIZE_MAX / 4 && add_to(&v, 4 * n);
        break;
    }
    ok = ok && add_to(&b, v) && add_to(&b, 10 + pos_bound(n));
    return ok ? b : 0;
}

/* ---- encoder ---------------------------------------------------------------------- */

static uint32_t mag_key(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    return u & 0x7fffffffu;
}

/*
 * Indices of the k largest |x| (ties to the lower index), ascending, zeros
 * never kept: a radix select on the bits of |x|, whose order as integers is
 * the order of the magnitudes. Returns how many were kept (<= k).
 */
static size_t topk_select(const float *x, size_t n, size_t k, size_t *idx)
{
    if (k == 0)
        return 0;
    uint32_t prefix = 0, mask = 0;
    size_t need = k;
    for (int shift = 24; shift >= 0; shift -= 8) {
        size_t hist[256];
        memset(hist, 0, sizeof hist);
        for (size_t i = 0; i < n; i++) {
            uint32_t key = mag_key(x[i]);
            if ((key & mask) == prefix)
                hist[(key >> shift) & 255u]++;
        }
        unsigned d = 255;
        for (;; d--) {
            if (hist[d] >= need || d == 0)
                break;
            need -= hist[d];
        }
        prefix |= (uint32_t)d << shift;
        mask |= 255u << shift;
    }
    if (prefix == 0)
        need = 0; /* fewer than k nonzeros: keep them all, no zeros */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t key = mag_key(x[i]);
        if (key > prefix || (key == prefix && need > 0 && key != 0)) {
            if (key == prefix)
                need--;
            idx[m++] = i;
        }
    }
    assert(m <= k);
    return m;
}

/* Writes a position block for the ascending indices idx[0, k) of [0, n). */
static tdm_status write_positions(tdm_wbuf *w, const size_t *idx, size_t k, size_t n, bool entropy,
                                  tdm_err *err)
{
    size_t bitmap = n / 8 + (n % 8 != 0), gaps = 0;
    for (size_t j = 0; j < k; j++)
        gaps += tdm_varint_len(idx[j] - (j ? idx[j - 1] + 1 : 0));
    bool use_gaps = gaps <= bitmap;
    size_t len = use_gaps ? gaps : bitmap;
    uint8_t *buf = calloc(len ? len : 1, 1);
    if (buf == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for %zu position bytes", len);
    if (use_gaps) {
        size_t o = 0;
        for (size_t j = 0; j < k; j++)
            o += tdm_varint_put(buf + o, idx[j] - (j ? idx[j - 1] + 1 : 0));
        assert(o == len);
    } else {
        for (size_t j = 0; j < k; j++)
            buf[idx[j] / 8] |= (uint8_t)(1u << (idx[j] % 8));
    }
    tdm_wbuf_u8(w, use_gaps ? POS_GAPS : POS_BITMAP);
    if (use_gaps)
        tdm_wbuf_varint(w, len);
    tdm_status s = tdm_sym_encode(buf, len, 8, entropy, w, NULL, err);
    free(buf);
    return s;
}

/* A run of values seen as outer blocks of `inner` floats, `stride` apart. */
typedef struct view {
    const float *base;
    size_t inner, stride, outer;
} view;

static void view_minmax(const view *v, float *mn, float *mx)
{
    float lo = 0.0f, hi = 0.0f; /* zero is always in range */
    for (size_t o = 0; o < v->outer; o++) {
        const float *b = v->base + o * v->stride;
        for (size_t i = 0; i < v->inner; i++) {
            lo = b[i] < lo ? b[i] : lo;
            hi = b[i] > hi ? b[i] : hi;
        }
    }
    *mn = lo;
    *mx = hi;
}

/*
 * Percentile clipping from a histogram of PCT_BINS bins over [min, max]:
 * one pass, deterministic, and precise to a bin, which is far finer than
 * the 16 or 256 levels the range is then cut into. The edges are taken on
 * the outer side, so a percentile never clips more than asked.
 */
static void view_percentile(const view *v, double pct, uint32_t *hist, float *mn, float *mx)
{
    float lo, hi;
    view_minmax(v, &lo, &hi);
    size_t count = v->inner * v->outer;
    if (count == 0 || !(hi > lo) || pct >= 100.0)
        goto done;
    double width = ((double)hi - (double)lo) / PCT_BINS;
    memset(hist, 0, PCT_BINS * sizeof *hist);
    for (size_t o = 0; o < v->outer; o++) {
        const float *b = v->base + o * v->stride;
        for (size_t i = 0; i < v->inner; i++) {
            double f = ((double)b[i] - (double)lo) / width;
            unsigned bin = f >= PCT_BINS - 1 ? PCT_BINS - 1 : (unsigned)f;
            hist[bin]++;
        }
    }
    double q = pct / 100.0;
    size_t rank_lo = (size_t)floor((1.0 - q) * (double)(count - 1));
    size_t rank_hi = (size_t)ceil(q * (double)(count - 1));
    size_t acc = 0;
    unsigned blo = 0, bhi = PCT_BINS - 1;
    bool found_lo = false;
    for (unsigned b = 0; b < PCT_BINS; b++) {
        acc += hist[b];
        if (!found_lo && acc > rank_lo) {
            blo = b;
            found_lo = true;
        }
        if (acc > rank_hi) {
            bhi = b;
            break;
        }
    }
    float nlo = (float)((double)lo + blo * width), nhi = (float)((double)lo + (bhi + 1) * width);
    lo = nlo < lo ? lo : nlo;
    hi = nhi > hi ? hi : nhi;
done:
    *mn = lo < 0.0f ? lo : 0.0f;
    *mx = hi > 0.0f ? hi : 0.0f;
}

/* Affine parameters of [lo, hi] (lo <= 0 <= hi) on the grid 0..qmax. */
static void affine(float lo, float hi, unsigned qmax, float *scale, unsigned *zp, float *inv)
{
    double range = (double)hi - (double)lo;
    if (!(range > 0.0)) {
        *scale = 0.0f;
        *zp = 0;
        *inv = 0.0f;
        return;
    }
    /* Steps below FLT_MIN would make 1/step overflow: such ranges are noise around zero. */
    float s = (float)(range / qmax);
    if (s < FLT_MIN)
        s = FLT_MIN;
    double z = nearbyint(-(double)lo / s);
    z = z < 0 ? 0 : z > qmax ? qmax : z;
    *scale = s;
    *zp = (unsigned)z;
    *inv = (float)(1.0 / s);
}

typedef struct enc_state {
    const geom *g;
    const tdm_codec_params *p;
    tdm_codec_kernels k;
    const float *vals; /* the values to code: all n, or the m kept ones */
    size_t m;
    const size_t *idx; /* kept indices when sparse, else NULL */
    size_t row;        /* length of the last dimension for 2-D contexts, 0 when sparse */
} enc_state;

/* The quantisation table and symbol stream of an int8/int4 frame. */
static tdm_status encode_quantised(enc_state *e, tdm_wbuf *w, tdm_err *err)
{
    const geom *g = e->g;
    size_t nchan = g->nchan, m = e->m;
    float *scale = malloc(nchan * sizeof *scale), *inv = malloc(nchan * sizeof *inv);
    unsigned *zp = malloc(nchan * sizeof *zp);
    uint8_t *sym = malloc(m ? m : 1);
    uint32_t *hist = malloc(PCT_BINS * sizeof *hist);
    float *byc = NULL;
    size_t *off = NULL;
    tdm_status s = TDM_OK;
    if (scale == NULL || inv == NULL || zp == NULL || sym == NULL || hist == NULL) {
        s = tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for %zu channels", nchan);
        goto out;
    }
    bool sparse_pc = e->idx != NULL && g->per_channel;
    if (sparse_pc) {
        /* kept values grouped by channel (a counting sort) so each channel is contiguous */
        byc = malloc((m ? m : 1) * sizeof *byc);
        off = calloc(nchan + 1, sizeof *off);
        if (byc == NULL || off == NULL) {
            s = tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory grouping %zu values", m);
            goto out;
        }
        for (size_t j = 0; j < m; j++)
            off[(e->idx[j] / g->inner) % nchan + 1]++;
        for (size_t c = 0; c < nchan; c++)
            off[c + 1] += off[c];
        size_t *fill = malloc(nchan * sizeof *fill);
        if (fill == NULL) {
            s = tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory grouping %zu values", m);
            goto out;
        }
        memcpy(fill, off, nchan * sizeof *fill);
        for (size_t j = 0; j < m; j++)
            byc[fill[(e->idx[j] / g->inner) % nchan]++] = e->vals[j];
        free(fill);
    }
    for (size_t c = 0; c < nchan; c++) {
        view v;
        if (sparse_pc)
            v = (view){byc + off[c], off[c + 1] - off[c], 0, 1};
        else if (g->per_channel)
            v = (view){e->vals + c * g->inner, g->inner, nchan * g->inner, g->outer};
        else
            v = (view){e->vals, m, 0, 1};
        float lo, hi;
        if (e->p->clip == TDM_CODEC_CLIP_PERCENTILE)
            view_percentile(&v, e->p->percentile, hist, &lo, &hi);
        else
            view_minmax(&v, &lo, &hi);
        affine(lo, hi, g->qmax, &scale[c], &zp[c], &inv[c]);
    }
    if (!g->per_channel) {
        e->k.quantize(e->vals, m, inv[0], (float)zp[0], g->qmax, sym);
    } else if (e->idx != NULL) {
        for (size_t j = 0; j < m; j++) {
            size_t c = (e->idx[j] / g->inner) % nchan;
            sym[j] = tdm_codec_quantize1(e->vals[j], inv[c], (float)zp[c], g->qmax);
        }
    } else {
        for (size_t o = 0; o < g->outer; o++)
            for (size_t c = 0; c < nchan; c++) {
                size_t at = (o * nchan + c) * g->inner;
                e->k.quantize(e->vals + at, g->inner, inv[c], (float)zp[c], g->qmax, sym + at);
            }
    }
    for (size_t c = 0; c < nchan; c++) {
        uint32_t u;
        memcpy(&u, &scale[c], 4);
        tdm_wbuf_u32(w, u);
    }
    for (size_t c = 0; c < nchan; c++)
        tdm_wbuf_u8(w, zp[c]);
    s = tdm_sym_encode_row(sym, m, g->bits, e->p->entropy, TDM_SYM_VERSION, e->row, w, NULL, err);
out:
    free(scale);
    free(inv);
    free(zp);
    free(sym);
    free(hist);
    free(byc);
    free(off);
    return s;
}

/* Byte planes of float32 (lossless) or float16 values, one stream each. */
static tdm_status encode_planes(enc_state *e, tdm_wbuf *w, tdm_err *err)
{
    size_t m = e->m;
    bool half = e->p->mode == TDM_CODEC_MODE_F16;
    unsigned np = half ? 2 : 4;
    uint8_t *planes = malloc(m > 0 ? m * np : 1);
    uint16_t *h = half ? malloc(m ? m * sizeof *h : 1) : NULL;
    if (planes == NULL || (half && h == NULL)) {
        free(planes);
        free(h);
        return tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for %zu values", m);
    }
    if (half) {
        e->k.to_f16(e->vals, m, h);
        tdm_codec_split16(h, m, planes);
    } else {
        tdm_codec_split32((const uint32_t *)(const void *)e->vals, m, planes);
    }
    tdm_status s = TDM_OK;
    for (unsigned k = 0; k < np && s == TDM_OK; k++)
        s = tdm_sym_encode(planes + (size_t)k * m, m, 8, e->p->entropy, w, NULL, err);
    free(planes);
    free(h);
    return s;
}

tdm_status tdm_codec_encode(const tdm_tensor *t, const tdm_codec_params *p, void *dst, size_t cap,
                            size_t *written, tdm_err *err)
{
    if (written != NULL)
        *written = 0;
    geom g;
    tdm_status s = check_encode_args(t, p, &g, true, err);
    if (s != TDM_OK)
        return s;
    if (dst == NULL && cap > 0)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: destination is NULL");
    size_t n = g.n;
    const float *src = (const float *)t->data;

    /* What changes the values decides whether we work on a copy. */
    size_t nexc = 0;
    if (g.quant) {
        const uint32_t *bits = (const uint32_t *)(const void *)src;
        for (size_t i = 0; i < n; i++) /* NaN or Inf: all exponent bits set (vectorises) */
            nexc += (bits[i] & 0x7f800000u) == 0x7f800000u;
    }
    size_t k = n;
    if (p->topk_count > 0)
        k = (uint64_t)p->topk_count < n ? (size_t)p->topk_count : n;
    else if (p->topk_fraction > 0.0f)
        k = (size_t)fmin((double)n, ceil((double)p->topk_fraction * (double)n));
    bool sparse = k < n;
    bool copy = nexc > 0 || sparse || p->zero_threshold > 0.0f || p->zero_fraction > 0.0f;

    float *work = NULL, *kept = NULL;
    uint8_t *scratch = NULL; /* see below: a second pass for a destination without slack */
    size_t *exc = NULL, *idx = NULL;
    uint32_t *exc_bits = NULL;
    if (copy && n > 0) {
        work = malloc(n * sizeof *work);
        if (work == NULL)
            return tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory copying %zu values", n);
        memcpy(work, src, n * sizeof *work);
    }
    if (nexc > 0) {
        exc = malloc(nexc * sizeof *exc);
        exc_bits = malloc(nexc * sizeof *exc_bits);
        if (exc == NULL || exc_bits == NULL) {
            s = tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for %zu exceptions", nexc);
            goto out;
        }
        size_t j = 0;
        for (size_t i = 0; i < n; i++) {
            if (isfinite(work[i]))
                continue;
            exc[j] = i;
            memcpy(&exc_bits[j], &work[i], 4);
            work[i] = 0.0f;
            j++;
        }
    }
    float thr = p->zero_threshold;
    if (p->zero_fraction > 0.0f && n > 0) {
        /* relative dead zone: NaN and Inf are already out of work[] */
        float amax = 0.0f;
        for (size_t i = 0; i < n; i++)
            amax = fmaxf(amax, fabsf(work[i]));
        thr = fmaxf(thr, p->zero_fraction * amax);
    }
    if (thr > 0.0f && n > 0)
        for (size_t i = 0; i < n; i++)
            if (fabsf(work[i]) < thr)
                work[i] = 0.0f;
    const float *vals = copy ? work : src;
    size_t m = n;
    if (sparse) {
        idx = malloc((k ? k : 1) * sizeof *idx);
        kept = malloc((k ? k : 1) * sizeof *kept);
        if (idx == NULL || kept == NULL) {
            s = tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory keeping %zu values", k);
            goto out;
        }
        m = topk_select(work, n, k, idx);
        for (size_t j = 0; j < m; j++)
            kept[j] = work[idx[j]];
        vals = kept;
    }

    /*
     * The payload length is a varint written before the payload, so the
     * payload is written LEN_ROOM bytes on and moved back. A destination
     * that holds the final frame but not that slack (a caller passing exactly
     * the size a previous encode reported) gets a second pass through a
     * scratch buffer.
     */
    uint8_t *target = dst;
    size_t tcap = cap;
    tdm_wbuf w;
again:
    tdm_wbuf_init(&w, target, tcap);
    unsigned flags = (g.per_channel ? FLAG_PER_CHANNEL : 0) | (sparse && n > 0 ? FLAG_SPARSE : 0) |
                     (nexc > 0 ? FLAG_EXCEPTIONS : 0) | (p->entropy ? FLAG_ENTROPY : 0);
    tdm_wbuf_bytes(&w, k_magic, 4);
    tdm_wbuf_u8(&w, TDM_CODEC_VERSION);
    tdm_wbuf_u8(&w, (unsigned)p->mode);
    tdm_wbuf_u8(&w, TDM_DTYPE_FLOAT32);
    tdm_wbuf_u8(&w, (unsigned)t->ndim);
    tdm_wbuf_u8(&w, 0); /* layout: dense row-major */
    tdm_wbuf_u8(&w, flags);
    tdm_wbuf_u8(&w, g.axis);
    tdm_wbuf_u8(&w, 0);
    for (int i = 0; i < t->ndim; i++)
        tdm_wbuf_varint(&w, (uint64_t)t->dims[i]);
    /* room for the longest varint payload length; the payload moves back once it is known */
    size_t len_at = w.len;
    (void)tdm_wbuf_reserve(&w, LEN_ROOM);
    size_t payload_at = w.len;

    if (n > 0) {
        if (sparse) {
            tdm_wbuf_varint(&w, m);
            s = write_positions(&w, idx, m, n, p->entropy, err);
            if (s != TDM_OK)
                goto out;
        }
        size_t row = !sparse && t->ndim >= 2 ? (size_t)t->dims[t->ndim - 1] : 0;
        enc_state e = {&g, p, {0}, vals, m, sparse ? idx : NULL, row};
        tdm_codec_kernels_select(&e.k);
        s = g.quant ? encode_quantised(&e, &w, err) : encode_planes(&e, &w, err);
        if (s != TDM_OK)
            goto out;
        if (nexc > 0) {
            tdm_wbuf_varint(&w, nexc);
            s = write_positions(&w, exc, nexc, n, p->entropy, err);
            if (s != TDM_OK)
                goto out;
            for (size_t j = 0; j < nexc; j++)
                tdm_wbuf_u32(&w, exc_bits[j]);
        }
    }
    size_t payload_len = w.len - payload_at;
    tdm_wbuf_u32(&w, 0);
    size_t ll = tdm_varint_len(payload_len), total = len_at + ll + payload_len + 4;
    if (w.overflow && total <= cap && scratch == NULL) {
        scratch = malloc(w.len);
        if (scratch == NULL) {
            s = tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for a %zu-byte frame", w.len);
            goto out;
        }
        target = scratch;
        tcap = w.len;
        goto again;
    }
    if (w.overflow) {
        s = tdm_errf(err, TDM_ERR_INVALID_ARG,
                     "codec: destination of %zu bytes is too small for this frame (%zu needed; "
                     "tdm_codec_bound gives %zu)",
                     cap, total, tdm_codec_bound(t, p));
        goto out;
    }
    uint8_t *out = (uint8_t *)dst;
    if (scratch != NULL)
        memcpy(out, scratch, len_at);
    (void)tdm_varint_put(out + len_at, payload_len);
    memmove(out + len_at + ll, target + payload_at, payload_len);
    tdm_store_le32(out + total - 4, tdm_crc32c(0, out, total - 4));
    if (written != NULL)
        *written = total;
out:
    free(scratch);
    free(work);
    free(kept);
    free(idx);
    free(exc);
    free(exc_bits);
    return s;
}

/* ---- decoder ---------------------------------------------------------------------- */

static tdm_status parse_header(const uint8_t *src, size_t len, tdm_codec_header *info, tdm_err *err)
{
    memset(info, 0, sizeof *info);
    if (src == NULL || len < 5)
        return tdm_errf(err, TDM_ERR_PARSE, "codec: %zu bytes are too few for a frame header",
                        src == NULL ? 0 : len);
    if (memcmp(src, k_magic, 4) != 0)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "codec: not a tandem codec frame (magic %02x %02x %02x %02x, want "
                        "\"TDMC\")",
                        src[0], src[1], src[2], src[3]);
    unsigned version = src[4];
    if (version == 0)
        return tdm_errf(err, TDM_ERR_PARSE, "codec: frame version 0 is invalid");
    if (version > TDM_CODEC_VERSION)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "codec: frame version %u is newer than this decoder (version %d): "
                        "upgrade tandem on this side",
                        version, TDM_CODEC_VERSION);
    if (len < HDR_FIXED)
        return tdm_errf(err, TDM_ERR_PARSE, "codec: frame header is truncated (%zu bytes)", len);
    unsigned mode = src[5], dtype = src[6], ndim = src[7], layout = src[8], flags = src[9];
    unsigned axis = src[10], reserved = src[11];
    if (mode > TDM_CODEC_MODE_INT4)
        return tdm_errf(err, TDM_ERR_PARSE, "codec: unknown mode %u in frame header", mode);
    if (dtype != TDM_DTYPE_FLOAT32)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "codec: frame dtype %u is not supported (only float32)", dtype);
    if (ndim > TDM_MAX_DIMS)
        return tdm_errf(err, TDM_ERR_PARSE, "codec: frame rank %u exceeds %d", ndim, TDM_MAX_DIMS);
    if (layout != 0)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED,
                        "codec: frame layout %u is not supported (only 0, dense row-major)",
                        layout);
    if ((flags & ~FLAG_KNOWN) != 0 || reserved != 0)
        return tdm_errf(err, TDM_ERR_PARSE, "codec: unknown flags 0x%02x or reserved byte %u",
                        flags, reserved);
    bool per_channel = (flags & FLAG_PER_CHANNEL) != 0;
    if ((per_channel || (flags & FLAG_EXCEPTIONS)) && !mode_quantised(mode))
        return tdm_errf(err, TDM_ERR_PARSE, "codec: per-channel or exception flags on a %s frame",
                        tdm_codec_mode_name((tdm_codec_mode)mode));
    if (per_channel ? axis >= ndim : axis != 0)
        return tdm_errf(err, TDM_ERR_PARSE, "codec: channel axis %u is invalid for rank %u", axis,
                        ndim);
    tdm_rbuf r;
    tdm_rbuf_init(&r, src, len);
    r.pos = HDR_FIXED;
    /* version 1: u64 dims and payload length; version 2: varints (small cuts pay ~35 bytes less) */
    bool v1 = version == 1;
    for (unsigned i = 0; i < ndim; i++) {
        uint64_t d;
        if (!(v1 ? tdm_rbuf_u64(&r, &d) : tdm_rbuf_varint(&r, &d)))
            return tdm_errf(err, TDM_ERR_PARSE, "codec: frame header is truncated in dim %u", i);
        if (d > (uint64_t)INT64_MAX)
            return tdm_errf(err, TDM_ERR_PARSE, "codec: dim %u (%llu) is too large", i,
                            (unsigned long long)d);
        info->dims[i] = (int64_t)d;
    }
    uint64_t plen;
    if (!(v1 ? tdm_rbuf_u64(&r, &plen) : tdm_rbuf_varint(&r, &plen)))
        return tdm_errf(err, TDM_ERR_PARSE, "codec: frame header is truncated at payload length");
    size_t bytes;
    if (!tdm_shape_checked_bytes(info->dims, (int)ndim, sizeof(float), SIZE_MAX / 8, &bytes))
        return tdm_errf(err, TDM_ERR_PARSE, "codec: frame shape overflows");
    if (plen > SIZE_MAX - r.pos - 4)
        return tdm_errf(err, TDM_ERR_PARSE, "codec: payload length %llu is too large",
                        (unsigned long long)plen);
    if (bytes == 0 && plen != 0)
        return tdm_errf(err, TDM_ERR_PARSE, "codec: empty tensor with a %llu-byte payload",
                        (unsigned long long)plen);
    info->version = version;
    info->mode = (tdm_codec_mode)mode;
    info->dtype = TDM_DTYPE_FLOAT32;
    info->ndim = (int32_t)ndim;
    info->layout = layout;
    info->per_channel = per_channel;
    info->channel_axis = (int32_t)axis;
    info->sparse = (flags & FLAG_SPARSE) != 0;
    info->has_exceptions = (flags & FLAG_EXCEPTIONS) != 0;
    info->entropy = (flags & FLAG_ENTROPY) != 0;
    info->header_len = r.pos;
    info->payload_len = (size_t)plen;
    info->frame_len = r.pos + (size_t)plen + 4;
    info->decoded_bytes = bytes;
    return TDM_OK;
}

tdm_status tdm_codec_frame_info(const void *src, size_t len, tdm_codec_header *info, tdm_err *err)
{
    tdm_codec_header tmp;
    tdm_codec_header *dst = info != NULL ? info : &tmp;
    return parse_header((const uint8_t *)src, len, dst, err);
}

/*
 * Reads a position block of exactly k ascending indices in [0, n) into idx.
 * `what` names the block in messages.
 */
static tdm_status read_positions(tdm_rbuf *r, size_t n, size_t k, size_t *idx, unsigned version,
                                 const char *what, tdm_err *err)
{
    unsigned kind;
    if (!tdm_rbuf_u8(r, &kind))
        return tdm_errf(err, TDM_ERR_PARSE, "codec: %s: position block is missing", what);
    size_t bitmap = n / 8 + (n % 8 != 0), len = bitmap;
    if (kind == POS_GAPS) {
        uint64_t l;
        if (!tdm_rbuf_varint(r, &l))
            return tdm_errf(err, TDM_ERR_PARSE, "codec: %s: gap list length is truncated", what);
        if (l > bitmap || l < k)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "codec: %s: gap list of %llu bytes for %zu positions in %zu is "
                            "invalid",
                            what, (unsigned long long)l, k, n);
        len = (size_t)l;
    } else if (kind != POS_BITMAP) {
        return tdm_errf(err, TDM_ERR_PARSE, "codec: %s: unknown position kind %u", what, kind);
    }
    uint8_t *buf = malloc(len ? len : 1);
    if (buf == NULL)
        return tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for %zu position bytes", len);
    tdm_status s = tdm_sym_decode_v(r, buf, len, 8, version, what, err);
    if (s != TDM_OK)
        goto out;
    size_t j = 0;
    if (kind == POS_BITMAP) {
        for (size_t b = 0; b < len; b++) {
            unsigned byte = buf[b];
            while (byte != 0) {
                unsigned bit = (unsigned)__builtin_ctz(byte);
                byte &= byte - 1;
                size_t i = b * 8 + bit;
                if (i >= n || j >= k) {
                    s = tdm_errf(err, TDM_ERR_PARSE,
                                 "codec: %s: bitmap marks more than %zu positions or one past %zu",
                                 what, k, n);
                    goto out;
                }
                idx[j++] = i;
            }
        }
    } else {
        tdm_rbuf g;
        tdm_rbuf_init(&g, buf, len);
        size_t next = 0;
        while (j < k) {
            uint64_t gap;
            if (!tdm_rbuf_varint(&g, &gap) || gap >= n - next) {
                s = tdm_errf(err, TDM_ERR_PARSE, "codec: %s: gap list is corrupt at position %zu",
                             what, j);
                goto out;
            }
            idx[j++] = next + (size_t)gap;
            next = next + (size_t)gap + 1;
            if (j < k && next >= n) {
                s = tdm_errf(err, TDM_ERR_PARSE, "codec: %s: gap list runs past %zu", what, n);
                goto out;
            }
        }
        if (tdm_rbuf_left(&g) != 0) {
            s = tdm_errf(err, TDM_ERR_PARSE, "codec: %s: %zu bytes left after the gap list", what,
                         tdm_rbuf_left(&g));
            goto out;
        }
    }
    if (j != k)
        s = tdm_errf(err, TDM_ERR_PARSE, "codec: %s: %zu positions coded, %zu declared", what, j,
                     k);
out:
    free(buf);
    return s;
}

typedef struct dec_state {
    const geom *g;
    unsigned mode;
    tdm_codec_kernels k;
    float *out;        /* the n outputs */
    size_t m;          /* coded values */
    const size_t *idx; /* their positions when sparse, else NULL */
} dec_state;

static tdm_status decode_quantised(dec_state *d, tdm_rbuf *r, tdm_err *err)
{
    const geom *g = d->g;
    size_t nchan = g->nchan, m = d->m;
    const uint8_t *sc = tdm_rbuf_take(r, nchan * 4), *zpb = tdm_rbuf_take(r, nchan);
    if (sc == NULL || zpb == NULL)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "codec: quantisation table of %zu channels is truncated", nchan);
    float *scale = malloc(nchan * sizeof *scale);
    uint8_t *sym = malloc(m ? m : 1);
    tdm_status s = TDM_OK;
    if (scale == NULL || sym == NULL) {
        s = tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for %zu symbols", m);
        goto out;
    }
    for (size_t c = 0; c < nchan; c++) {
        uint32_t u = tdm_load_le32(sc + 4 * c);
        memcpy(&scale[c], &u, 4);
        if (!(scale[c] >= 0.0f && scale[c] <= FLT_MAX) || zpb[c] > g->qmax) {
            s = tdm_errf(err, TDM_ERR_PARSE,
                         "codec: channel %zu has scale %g and zero point %u (invalid)", c,
                         (double)scale[c], zpb[c]);
            goto out;
        }
    }
    s = tdm_sym_decode_v(r, sym, m, g->bits, g->version, "quantised values", err);
    if (s != TDM_OK)
        goto out;
    if (d->idx != NULL) {
        for (size_t j = 0; j < m; j++) {
            size_t c = g->per_channel ? (d->idx[j] / g->inner) % nchan : 0;
            d->out[d->idx[j]] = tdm_codec_dequantize1(sym[j], zpb[c], g->qmax, scale[c]);
        }
    } else if (!g->per_channel) {
        d->k.dequantize(sym, m, zpb[0], g->qmax, scale[0], d->out);
    } else {
        for (size_t o = 0; o < g->outer; o++)
            for (size_t c = 0; c < nchan; c++) {
                size_t at = (o * nchan + c) * g->inner;
                d->k.dequantize(sym + at, g->inner, zpb[c], g->qmax, scale[c], d->out + at);
            }
    }
out:
    free(scale);
    free(sym);
    return s;
}

static tdm_status decode_planes(dec_state *d, tdm_rbuf *r, tdm_err *err)
{
    size_t m = d->m;
    bool half = d->mode == TDM_CODEC_MODE_F16;
    unsigned np = half ? 2 : 4;
    uint8_t *planes = malloc(m > 0 ? m * np : 1);
    void *vals = (half || d->idx != NULL) ? malloc(m ? m * (half ? 2 : 4) : 1) : NULL;
    float *fv = half ? malloc(m ? m * sizeof *fv : 1) : NULL;
    tdm_status s = TDM_OK;
    if (planes == NULL || ((half || d->idx != NULL) && vals == NULL) || (half && fv == NULL)) {
        s = tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for %zu values", m);
        goto out;
    }
    static const char *const names[4] = {"byte plane 0", "byte plane 1", "byte plane 2",
                                         "byte plane 3"};
    for (unsigned k = 0; k < np && s == TDM_OK; k++)
        s = tdm_sym_decode_v(r, planes + (size_t)k * m, m, 8, d->g->version, names[k], err);
    if (s != TDM_OK)
        goto out;
    if (half) {
        tdm_codec_merge16(planes, m, (uint16_t *)vals);
        float *dstv = d->idx != NULL ? fv : d->out;
        d->k.from_f16((const uint16_t *)vals, m, dstv);
        if (d->idx != NULL)
            for (size_t j = 0; j < m; j++)
                d->out[d->idx[j]] = fv[j];
    } else if (d->idx != NULL) {
        tdm_codec_merge32(planes, m, (uint32_t *)vals);
        for (size_t j = 0; j < m; j++)
            memcpy(&d->out[d->idx[j]], (const uint32_t *)vals + j, 4);
    } else {
        tdm_codec_merge32(planes, m, (uint32_t *)(void *)d->out);
    }
out:
    free(planes);
    free(vals);
    free(fv);
    return s;
}

static tdm_status decode_payload(const tdm_codec_header *info, tdm_rbuf *r, float *out,
                                 tdm_err *err)
{
    geom g;
    memset(&g, 0, sizeof g);
    g.n = info->decoded_bytes / sizeof(float);
    g.quant = mode_quantised(info->mode);
    g.bits = mode_bits(info->mode);
    g.qmax = (1u << g.bits) - 1u;
    g.version = info->version;
    geom_channels(&g, info->dims, info->ndim, info->per_channel, (unsigned)info->channel_axis);
    size_t n = g.n, m = n;
    size_t *idx = NULL, *exc = NULL;
    tdm_status s = TDM_OK;
    if (info->sparse) {
        uint64_t k;
        if (!tdm_rbuf_varint(r, &k) || k > n)
            return tdm_errf(err, TDM_ERR_PARSE,
                            "codec: kept-value count is missing or above %zu elements", n);
        m = (size_t)k;
        idx = malloc((m ? m : 1) * sizeof *idx);
        if (idx == NULL)
            return tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for %zu positions", m);
        s = read_positions(r, n, m, idx, g.version, "top-k positions", err);
        if (s != TDM_OK)
            goto out;
    }
    dec_state d = {&g, (unsigned)info->mode, {0}, out, m, idx};
    tdm_codec_kernels_select(&d.k);
    s = g.quant ? decode_quantised(&d, r, err) : decode_planes(&d, r, err);
    if (s != TDM_OK)
        goto out;
    if (info->has_exceptions) {
        uint64_t ne;
        if (!tdm_rbuf_varint(r, &ne) || ne == 0 || ne > n) {
            s = tdm_errf(err, TDM_ERR_PARSE, "codec: exception count is missing or invalid");
            goto out;
        }
        exc = malloc((size_t)ne * sizeof *exc);
        if (exc == NULL) {
            s = tdm_errf(err, TDM_ERR_NOMEM, "codec: out of memory for exceptions");
            goto out;
        }
        s = read_positions(r, n, (size_t)ne, exc, g.version, "exception positions", err);
        if (s != TDM_OK)
            goto out;
        const uint8_t *bits = tdm_rbuf_take(r, (size_t)ne * 4);
        if (bits == NULL) {
            s = tdm_errf(err, TDM_ERR_PARSE, "codec: exception values are truncated");
            goto out;
        }
        for (size_t j = 0; j < (size_t)ne; j++) {
            uint32_t u = tdm_load_le32(bits + 4 * j);
            memcpy(&out[exc[j]], &u, 4);
        }
    }
    if (tdm_rbuf_left(r) != 0)
        s = tdm_errf(err, TDM_ERR_PARSE, "codec: %zu unread bytes at the end of the payload",
                     tdm_rbuf_left(r));
out:
    free(idx);
    free(exc);
    return s;
}

tdm_status tdm_codec_decode(const void *src, size_t len, tdm_tensor *out, size_t max_bytes,
                            tdm_err *err)
{
    if (out == NULL)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "codec: output tensor is NULL");
    memset(out, 0, sizeof *out);
    tdm_codec_header info;
    tdm_status s = parse_header((const uint8_t *)src, len, &info, err);
    if (s != TDM_OK)
        return s;
    if (len < info.frame_len)
        return tdm_errf(err, TDM_ERR_PARSE, "codec: frame is truncated: %zu of %zu bytes", len,
                        info.frame_len);
    if (len > info.frame_len)
        return tdm_errf(err, TDM_ERR_PARSE, "codec: %zu trailing bytes after a %zu-byte frame",
                        len - info.frame_len, info.frame_len);
    const uint8_t *p = (const uint8_t *)src;
    uint32_t want = tdm_load_le32(p + len - 4), got = tdm_crc32c(0, p, len - 4);
    if (want != got)
        return tdm_errf(err, TDM_ERR_PARSE,
                        "codec: CRC32C mismatch (frame says %08x, data gives %08x): corrupt frame",
                        want, got);
    if (info.decoded_bytes > max_bytes) {
        tdm_tensor shape;
        char buf[160];
        memset(&shape, 0, sizeof shape);
        tdm_tensor_set_shape(&shape, TDM_DTYPE_FLOAT32, info.ndim, info.dims);
        return tdm_errf(err, TDM_ERR_NOMEM,
                        "codec: frame declares %s (%zu bytes), above the limit of %zu bytes",
                        tdm_tensor_shape_str(&shape, buf, sizeof buf), info.decoded_bytes,
                        max_bytes);
    }
    s = tdm_tensor_make(out, TDM_DTYPE_FLOAT32, info.ndim, info.dims, err);
    if (s != TDM_OK)
        return s;
    tdm_rbuf r;
    tdm_rbuf_init(&r, p + info.header_len, info.payload_len);
    if (info.decoded_bytes > 0)
        s = decode_payload(&info, &r, (float *)out->data, err);
    if (s != TDM_OK)
        tdm_tensor_free(out);
    return s;
}
