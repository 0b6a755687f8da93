/*
 * libFuzzer target for the feature codec, in two halves on every input.
 *
 * 1. Decode: the input is a frame from the network. Whatever it holds, the
 *    decoder must return a status without reading or writing out of bounds
 *    (ASan) or allocating more than a fixed multiple of the limit it was given
 *    (run with -malloc_limit_mb: the limit here is 256 KiB of output, so
 *    any allocation above a few MiB is a bug). A frame that decodes is re-encoded
 *    losslessly and must come back bit-exact.
 *    The same bytes are decoded a second time with the CRC recomputed, so
 *    that mutations reach the payload parser instead of stopping at the CRC.
 * 2. Round trip: the first 8 bytes choose the mode and options and the rest
 *    are float32 values (any bits: NaN, Inf, subnormals). Encoding must fit
 *    the bound and decoding must honour the mode's contract: bit-exact for
 *    lossless, float16 rounding for f16, at most half a step of error for
 *    int8/int4 with min/max clipping (a step is never below FLT_MIN),
 *    non-finite values kept exactly.
 * 3. Symbol stream: the input read as one stream of n 4- or 8-bit symbols
 *    (frame version 1 or 2: plain, or run-length with its own length codes
 *    and extra bits), decoded directly; a stream that decodes is re-encoded
 *    and must round-trip.
 *
 * The same function runs over fuzz/corpus/codec/ in CI
 * (tests/codec/test_codec_corpus.c includes this file), so every input that
 * once found a bug stays a regression test.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec/crc32c.h"
#include "codec/entropy.h"
#include "tandem/codec.h"

#define FUZZ_LIMIT ((size_t)1 << 18)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "fuzz_codec: check failed at line %d: %s\n", __LINE__, #cond); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

static uint32_t fz_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Encodes t, checks the bound, decodes it; returns the decoded tensor in out. */
static void fz_roundtrip(const tdm_tensor *t, const tdm_codec_params *p, tdm_tensor *out)
{
    size_t cap = tdm_codec_bound(t, p);
    FUZZ_CHECK(cap > 0);
    uint8_t *buf = malloc(cap);
    FUZZ_CHECK(buf != NULL);
    size_t len = 0;
    tdm_err err;
    tdm_status st = tdm_codec_encode(t, p, buf, cap, &len, &err);
    if (st != TDM_OK)
        fprintf(stderr, "fuzz_codec: encode: %s\n", err.msg);
    FUZZ_CHECK(st == TDM_OK && len <= cap);
    st = tdm_codec_decode(buf, len, out, (size_t)-1, &err);
    if (st != TDM_OK)
        fprintf(stderr, "fuzz_codec: decode of own frame: %s\n", err.msg);
    FUZZ_CHECK(st == TDM_OK);
    FUZZ_CHECK(tdm_tensor_same_shape(t, out));
    free(buf);
}

static void fz_decode_frame(const uint8_t *data, size_t size)
{
    tdm_codec_header h;
    (void)tdm_codec_frame_info(data, size, &h, NULL);
    tdm_tensor out;
    if (tdm_codec_decode(data, size, &out, FUZZ_LIMIT, NULL) != TDM_OK) {
        FUZZ_CHECK(out.data == NULL);
        return;
    }
    FUZZ_CHECK(tdm_tensor_nbytes(&out) <= FUZZ_LIMIT);
    tdm_codec_params p;
    tdm_codec_params_default(&p, TDM_CODEC_MODE_LOSSLESS);
    tdm_tensor again;
    fz_roundtrip(&out, &p, &again);
    FUZZ_CHECK(memcmp(again.data, out.data, tdm_tensor_nbytes(&out)) == 0);
    tdm_tensor_free(&again);
    tdm_tensor_free(&out);
}

static void fz_decode(const uint8_t *data, size_t size)
{
    fz_decode_frame(data, size);
    if (size < 20 || memcmp(data, "TDMC", 4) != 0)
        return;
    uint8_t *fixed = malloc(size);
    FUZZ_CHECK(fixed != NULL);
    memcpy(fixed, data, size);
    uint32_t crc = tdm_crc32c(0, fixed, size - 4);
    for (int i = 0; i < 4; i++)
        fixed[size - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    fz_decode_frame(fixed, size);
    free(fixed);
}

/*
 * Part 3: bytes 0-1 n, byte 2 bit 0 4-bit symbols, bit 1 version 1, bits 2-7 the row length
 * the re-encoder is given (for context-modelled streams); the rest is the stream.
 */
static void fz_symbols(const uint8_t *data, size_t size)
{
    if (size < 4)
        return;
    size_t n = (size_t)data[0] | (size_t)data[1] << 8;
    unsigned bits = (data[2] & 1) ? 4 : 8, version = (data[2] & 2) ? 1 : 2;
    uint8_t *sym = malloc(n ? n : 1);
    FUZZ_CHECK(sym != NULL);
    tdm_rbuf r;
    tdm_rbuf_init(&r, data + 3, size - 3);
    if (tdm_sym_decode_v(&r, sym, n, bits, version, "fuzz", NULL) == TDM_OK) {
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(sym[i] < (1u << bits));
        size_t cap = tdm_sym_bound(n, bits);
        uint8_t *buf = malloc(cap), *back = malloc(n ? n : 1);
        FUZZ_CHECK(buf != NULL && back != NULL);
        tdm_wbuf w;
        tdm_wbuf_init(&w, buf, cap);
        FUZZ_CHECK(tdm_sym_encode_row(sym, n, bits, true, version, data[2] >> 2, &w, NULL, NULL) ==
                   TDM_OK);
        FUZZ_CHECK(!w.overflow && w.len <= cap);
        tdm_rbuf_init(&r, buf, w.len);
        FUZZ_CHECK(tdm_sym_decode_v(&r, back, n, bits, version, "fuzz", NULL) == TDM_OK);
        FUZZ_CHECK(tdm_rbuf_left(&r) == 0);
        FUZZ_CHECK(n == 0 || memcmp(back, sym, n) == 0);
        free(buf);
        free(back);
    }
    free(sym);
}

/* Largest |x - y| of channel c (all when nchan == 1) over finite x, and its step. */
static void fz_check_quant(const float *x, const float *y, size_t n, size_t nchan, size_t inner,
                           unsigned qmax)
{
    for (size_t c = 0; c < nchan; c++) {
        double lo = 0, hi = 0, e = 0;
        for (size_t i = 0; i < n; i++) {
            if ((i / inner) % nchan != c || !isfinite(x[i]))
                continue;
            lo = x[i] < lo ? x[i] : lo;
            hi = x[i] > hi ? x[i] : hi;
        }
        for (size_t i = 0; i < n; i++) {
            if ((i / inner) % nchan != c || !isfinite(x[i]))
                continue;
            double d = fabs((double)x[i] - (double)y[i]);
            e = d > e ? d : e;
        }
        double step = (hi - lo) / qmax;
        double half = (step > FLT_MIN ? step : FLT_MIN) / 2; /* steps never go below FLT_MIN */
        if (!(e <= half * (1 + 1e-4) + 1e-37)) {
            fprintf(stderr, "fuzz_codec: channel %zu error %g above half a step %g\n", c, e, half);
            abort();
        }
    }
}

static void fz_roundtrip_floats(const uint8_t *data, size_t size)
{
    if (size < 8)
        return;
    size_t n = (size - 8) / 4;
    float *x = malloc(n ? n * sizeof *x : 1);
    FUZZ_CHECK(x != NULL);
    if (n > 0)
        memcpy(x, data + 8, n * sizeof *x);
    uint8_t b0 = data[0], b1 = data[1], b2 = data[2], b3 = data[3];
    tdm_codec_params p;
    tdm_codec_params_default(&p, (tdm_codec_mode)(b0 & 3));
    p.granularity = (b0 & 4) ? TDM_CODEC_GRANULARITY_CHANNEL : TDM_CODEC_GRANULARITY_TENSOR;
    p.clip = (b0 & 8) ? TDM_CODEC_CLIP_PERCENTILE : TDM_CODEC_CLIP_MINMAX;
    p.entropy = (b0 & 16) == 0;
    bool thr = (b0 & 32) != 0, topk = (b0 & 64) != 0, zf = (data[5] & 1) != 0;
    if (zf)
        p.zero_fraction = (float)(data[5] >> 1) / 128.0f; /* [0, 1) */
    p.percentile = 50.0f + (float)b2 * (50.0f / 255.0f);
    if (thr)
        p.zero_threshold = (float)b3 / 64.0f;
    if (topk) {
        if (b1 & 128)
            p.topk_count = b3;
        else
            p.topk_fraction = (float)b3 / 255.0f;
    }
    /* shape: [d0, n / d0] when d0 divides n, else [n]; rank 0 when n == 1 and asked */
    int64_t dims[2];
    int ndim = 1;
    size_t d0 = 1 + (size_t)(data[4] % 16);
    if (n == 1 && (b1 & 1)) {
        ndim = 0;
    } else if (n % d0 == 0) {
        ndim = 2;
        dims[0] = (int64_t)d0;
        dims[1] = (int64_t)(n / d0);
    } else {
        dims[0] = (int64_t)n;
    }
    p.channel_axis = ndim > 0 ? (int32_t)((b1 >> 1) % (unsigned)ndim) : 0;
    if (ndim == 0)
        p.granularity = TDM_CODEC_GRANULARITY_TENSOR;
    tdm_tensor t, out;
    memset(&t, 0, sizeof t);
    tdm_tensor_set_shape(&t, TDM_DTYPE_FLOAT32, ndim, dims);
    t.data = x;
    fz_roundtrip(&t, &p, &out);
    const float *y = (const float *)out.data;
    bool exact = !thr && !topk && !zf;
    bool quant = p.mode == TDM_CODEC_MODE_INT8 || p.mode == TDM_CODEC_MODE_INT4;
    for (size_t i = 0; i < n; i++) {
        if (quant && !isfinite(x[i]))
            FUZZ_CHECK(fz_bits(x[i]) == fz_bits(y[i])); /* exceptions are exact, always */
        if (!exact)
            continue;
        if (p.mode == TDM_CODEC_MODE_LOSSLESS) {
            FUZZ_CHECK(fz_bits(x[i]) == fz_bits(y[i]));
        } else if (p.mode == TDM_CODEC_MODE_F16) {
            float want = tdm_fp16_to_fp32(tdm_fp32_to_fp16(x[i]));
            FUZZ_CHECK(isnan(want) ? isnan(y[i]) : fz_bits(want) == fz_bits(y[i]));
        } else if (isfinite(x[i])) {
            FUZZ_CHECK(isfinite(y[i]));
        }
    }
    if (quant && exact && p.clip == TDM_CODEC_CLIP_MINMAX) {
        size_t nchan = 1, inner = n ? n : 1;
        if (p.granularity == TDM_CODEC_GRANULARITY_CHANNEL && n > 0) {
            nchan = (size_t)dims[p.channel_axis];
            inner = p.channel_axis == 0 && ndim == 2 ? (size_t)dims[1] : 1;
        }
        fz_check_quant(x, y, n, nchan, inner, p.mode == TDM_CODEC_MODE_INT4 ? 15u : 255u);
    }
    if (topk && p.topk_count > 0) {
        size_t nz = 0;
        for (size_t i = 0; i < n; i++)
            nz += y[i] != 0.0f && isfinite(x[i]);
        FUZZ_CHECK(nz <= (size_t)p.topk_count);
    }
    tdm_tensor_free(&out);
    free(x);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_decode(data, size);
    fz_roundtrip_floats(data, size);
    fz_symbols(data, size);
    return 0;
}
