/*
 * Codec round trips: every mode and option decodes to what its contract
 * promises, checked against values computed here independently of the codec
 * (bit equality for lossless, the float16 rounding of tensor.c for f16, an
 * error of at most half a step of a range computed here for int8/int4, a
 * sorted reference for top-k). Edge cases: empty tensors, scalars, one
 * element, NaN/Inf, all zeros, sizes that are not multiples of any block.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <float.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "codec/quant.h"
#include "codec_util.h"

static const size_t k_sizes[] = {1, 2, 3, 5, 7, 8, 31, 33, 100, 257, 1000, 4099};
static const tdm_codec_mode k_modes[] = {TDM_CODEC_MODE_LOSSLESS, TDM_CODEC_MODE_F16,
                                         TDM_CODEC_MODE_INT8, TDM_CODEC_MODE_INT4};

/* Encodes and decodes t, asserting success and the bound; returns the frame length. */
static size_t roundtrip(const tdm_tensor *t, const tdm_codec_params *p, tdm_tensor *out)
{
    tdm_err err = {{0}};
    size_t len;
    tdm_status st;
    uint8_t *buf = encode_alloc(t, p, &len, &st, &err);
    if (st != TDM_OK)
        fail_msg("encode (%s): %s", tdm_codec_mode_name(p->mode), err.msg);
    st = tdm_codec_decode(buf, len, out, (size_t)1 << 30, &err);
    if (st != TDM_OK)
        fail_msg("decode (%s): %s", tdm_codec_mode_name(p->mode), err.msg);
    assert_true(tdm_tensor_same_shape(t, out));
    /* the size the encoder reports is exactly enough */
    if (len > 0) {
        uint8_t *small = malloc(len);
        size_t w2 = 0;
        assert_int_equal(tdm_codec_encode(t, p, small, len, &w2, NULL), TDM_OK);
        assert_int_equal(w2, len);
        assert_memory_equal(small, buf, len);
        assert_int_equal(tdm_codec_encode(t, p, small, len - 1, &w2, &err), TDM_ERR_INVALID_ARG);
        free(small);
    }
    free(buf);
    return len;
}

/* Largest |x - y| over finite x, and true when every non-finite x decoded exactly. */
static double max_err(const float *x, const float *y, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            continue;
        double d = fabs((double)x[i] - (double)y[i]);
        e = d > e ? d : e;
    }
    return e;
}

/* The scale of an affine grid over [min(lo,0), max(hi,0)], computed here. */
static double ref_scale(const float *x, size_t n, size_t stride, size_t count, unsigned qmax)
{
    (void)n;
    double lo = 0, hi = 0;
    for (size_t i = 0; i < count; i++) {
        double v = x[i * stride];
        if (!isfinite(v))
            continue;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    return (hi - lo) / qmax;
}

static void test_lossless_bit_exact(void **state)
{
    (void)state;
    rng r = {1};
    for (size_t si = 0; si < sizeof k_sizes / sizeof k_sizes[0]; si++) {
        size_t n = k_sizes[si];
        float *x = malloc(n * sizeof *x);
        for (int kind = 0; kind < 3; kind++) {
            if (kind == 0)
                fill_relu(&r, x, n, 2.0f);
            else if (kind == 1)
                fill_normal(&r, x, n, 1e-3f);
            else
                for (size_t i = 0; i < n; i++)
                    x[i] = bits_f32((uint32_t)rng_next(&r)); /* any bits: NaNs with payloads */
            if (n > 3) {
                x[0] = -0.0f;
                x[1] = INFINITY;
                x[2] = bits_f32(0x7fc12345u);
                x[3] = 1e-45f;
            }
            int64_t dims[1] = {(int64_t)n};
            tdm_tensor t, out;
            make_tensor(&t, x, 1, dims);
            for (int ent = 0; ent < 2; ent++) {
                tdm_codec_params p;
                tdm_codec_params_default(&p, TDM_CODEC_MODE_LOSSLESS);
                p.entropy = ent != 0;
                roundtrip(&t, &p, &out);
                assert_memory_equal(out.data, x, n * sizeof *x);
                tdm_tensor_free(&out);
            }
        }
        free(x);
    }
}

static void test_lossless_compresses_relu(void **state)
{
    (void)state;
    rng r = {2};
    size_t n = 16384;
    float *x = malloc(n * sizeof *x);
    fill_relu(&r, x, n, 1.0f);
    int64_t dims[4] = {1, 16, 32, 32};
    tdm_tensor t, out;
    make_tensor(&t, x, 4, dims);
    tdm_codec_params p;
    tdm_codec_params_default(&p, TDM_CODEC_MODE_LOSSLESS);
    size_t len = roundtrip(&t, &p, &out);
    assert_memory_equal(out.data, x, n * 4);
    /* half the values are zero: well under the 4 bytes each of float32 */
    assert_true(len < n * 4 * 3 / 4);
    tdm_tensor_free(&out);
    free(x);
}

static void test_f16_matches_reference(void **state)
{
    (void)state;
    rng r = {3};
    for (size_t si = 0; si < sizeof k_sizes / sizeof k_sizes[0]; si++) {
        size_t n = k_sizes[si];
        float *x = malloc(n * sizeof *x);
        fill_normal(&r, x, n, 100.0f);
        if (n > 5) {
            x[0] = NAN;
            x[1] = -INFINITY;
            x[2] = 1e6f;  /* overflows half: Inf */
            x[3] = 3e-8f; /* half subnormal */
            x[4] = -0.0f;
        }
        int64_t dims[2] = {1, (int64_t)n};
        tdm_tensor t, out;
        make_tensor(&t, x, 2, dims);
        tdm_codec_params p;
        tdm_codec_params_default(&p, TDM_CODEC_MODE_F16);
        roundtrip(&t, &p, &out);
        const float *y = out.data;
        for (size_t i = 0; i < n; i++) {
            float want = tdm_fp16_to_fp32(tdm_fp32_to_fp16(x[i]));
            if (isnan(want))
                assert_true(isnan(y[i]));
            else
                assert_int_equal(f32_bits(y[i]), f32_bits(want));
        }
        tdm_tensor_free(&out);
        free(x);
    }
}

static void check_quant_per_tensor(tdm_codec_mode mode, const float *x, size_t n, bool entropy)
{
    unsigned qmax = mode == TDM_CODEC_MODE_INT4 ? 15 : 255;
    int64_t dims[1] = {(int64_t)n};
    tdm_tensor t, out;
    make_tensor(&t, (float *)x, 1, dims);
    tdm_codec_params p;
    tdm_codec_params_default(&p, mode);
    p.entropy = entropy;
    roundtrip(&t, &p, &out);
    const float *y = out.data;
    double scale = ref_scale(x, n, 1, n, qmax);
    double e = max_err(x, y, n);
    if (e > scale / 2 * (1 + 1e-4) + 1e-37)
        fail_msg("%s n=%zu: max error %g above half a step %g", tdm_codec_mode_name(mode), n, e,
                 scale / 2);
    for (size_t i = 0; i < n; i++) {
        if (x[i] == 0.0f)
            assert_true(y[i] == 0.0f); /* zero is exact on an affine grid with a zero point */
        if (isnan(x[i]))
            assert_true(isnan(y[i]));
        else if (isinf(x[i]))
            assert_true(y[i] == x[i]);
    }
    tdm_tensor_free(&out);
}

static void test_int_per_tensor_error_bound(void **state)
{
    (void)state;
    rng r = {4};
    for (size_t si = 0; si < sizeof k_sizes / sizeof k_sizes[0]; si++) {
        size_t n = k_sizes[si];
        float *x = malloc(n * sizeof *x);
        for (int kind = 0; kind < 3; kind++) {
            if (kind == 0)
                fill_relu(&r, x, n, 3.0f);
            else if (kind == 1)
                fill_normal(&r, x, n, 0.25f);
            else
                for (size_t i = 0; i < n; i++)
                    x[i] = (float)(rng_unit(&r) * 10.0 + 5.0); /* all positive, zero outside */
            check_quant_per_tensor(TDM_CODEC_MODE_INT8, x, n, true);
            check_quant_per_tensor(TDM_CODEC_MODE_INT8, x, n, false);
            check_quant_per_tensor(TDM_CODEC_MODE_INT4, x, n, true);
            check_quant_per_tensor(TDM_CODEC_MODE_INT4, x, n, false);
        }
        free(x);
    }
}

/* Extreme ranges: steps are at least FLT_MIN, and a grid spanning all floats stays finite. */
static void test_int_extreme_ranges(void **state)
{
    (void)state;
    rng r = {13};
    size_t n = 500;
    float *x = malloc(n * sizeof *x);
    for (int mi = 2; mi < 4; mi++) {
        unsigned qmax = mi == 2 ? 255 : 15;
        int64_t dims[1] = {(int64_t)n};
        tdm_tensor t, out;
        make_tensor(&t, x, 1, dims);
        tdm_codec_params p;
        tdm_codec_params_default(&p, k_modes[mi]);
        fill_normal(&r, x, n, 1e-38f); /* subnormal and tiny normal values */
        roundtrip(&t, &p, &out);
        double step = ref_scale(x, n, 1, n, qmax);
        step = step > FLT_MIN ? step : FLT_MIN;
        assert_true(max_err(x, out.data, n) <= step / 2 * (1 + 1e-4));
        tdm_tensor_free(&out);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)((rng_unit(&r) * 2 - 1) * FLT_MAX);
        x[0] = FLT_MAX;
        x[1] = -FLT_MAX;
        roundtrip(&t, &p, &out);
        for (size_t i = 0; i < n; i++)
            assert_true(isfinite(((const float *)out.data)[i]));
        assert_true(max_err(x, out.data, n) <= 2.0 * FLT_MAX / qmax / 2 * (1 + 1e-4));
        tdm_tensor_free(&out);
    }
    free(x);
}

static void test_int_nan_inf_exact(void **state)
{
    (void)state;
    rng r = {5};
    size_t n = 1000;
    float *x = malloc(n * sizeof *x);
    fill_relu(&r, x, n, 1.0f);
    x[0] = NAN;
    x[17] = INFINITY;
    x[18] = -INFINITY;
    x[999] = bits_f32(0xffc00001u);
    check_quant_per_tensor(TDM_CODEC_MODE_INT8, x, n, true);
    check_quant_per_tensor(TDM_CODEC_MODE_INT4, x, n, false);
    /* all non-finite */
    for (size_t i = 0; i < n; i++)
        x[i] = (i & 1) ? NAN : -INFINITY;
    check_quant_per_tensor(TDM_CODEC_MODE_INT8, x, n, true);
    free(x);
}

static void test_all_zeros_tiny(void **state)
{
    (void)state;
    size_t n = 10000;
    float *x = calloc(n, sizeof *x);
    int64_t dims[3] = {10, 10, 100};
    tdm_tensor t, out;
    make_tensor(&t, x, 3, dims);
    for (size_t mi = 0; mi < 4; mi++) {
        tdm_codec_params p;
        tdm_codec_params_default(&p, k_modes[mi]);
        size_t len = roundtrip(&t, &p, &out);
        assert_true(len < 100);
        for (size_t i = 0; i < n; i++)
            assert_true(((const float *)out.data)[i] == 0.0f);
        tdm_tensor_free(&out);
    }
    free(x);
}

static void test_empty_and_scalar(void **state)
{
    (void)state;
    float one = -2.5f;
    for (size_t mi = 0; mi < 4; mi++) {
        tdm_codec_params p;
        tdm_codec_params_default(&p, k_modes[mi]);
        p.granularity = TDM_CODEC_GRANULARITY_CHANNEL;
        p.channel_axis = -1;
        tdm_tensor t, out;
        int64_t dims[3] = {3, 0, 5};
        make_tensor(&t, NULL, 3, dims);
        roundtrip(&t, &p, &out);
        assert_int_equal(tdm_tensor_numel(&out), 0);
        tdm_tensor_free(&out);

        p.granularity = TDM_CODEC_GRANULARITY_TENSOR;
        make_tensor(&t, &one, 0, NULL);
        roundtrip(&t, &p, &out);
        assert_int_equal(out.ndim, 0);
        float y = *(const float *)out.data;
        /* a single value is an end of its own range: exact up to the rounding of the scale */
        assert_true(fabsf(y - one) <= 1e-6f);
        tdm_tensor_free(&out);
    }
}

/* Per-channel: each channel's error is bounded by its own step. */
static void test_int_per_channel(void **state)
{
    (void)state;
    rng r = {6};
    const int64_t shapes[][4] = {{2, 5, 3, 7}, {1, 64, 4, 4}, {3, 1, 1, 9}, {1, 3, 1, 1}};
    for (size_t sh = 0; sh < 4; sh++) {
        const int64_t *dims = shapes[sh];
        size_t n = (size_t)(dims[0] * dims[1] * dims[2] * dims[3]);
        float *x = malloc(n * sizeof *x);
        for (int axis = -1; axis < 4; axis++) {
            int a = axis < 0 ? 3 : axis;
            size_t nchan = (size_t)dims[a], inner = 1;
            for (int i = a + 1; i < 4; i++)
                inner *= (size_t)dims[i];
            /* channel c has scale 10^(c % 5 - 2): per-tensor would crush the small ones */
            for (size_t i = 0; i < n; i++) {
                size_t c = (i / inner) % nchan;
                x[i] = rng_normal(&r) * powf(10.0f, (float)(c % 5) - 2.0f);
            }
            for (int mi = 2; mi < 4; mi++) {
                unsigned qmax = mi == 2 ? 255 : 15;
                tdm_tensor t, out;
                make_tensor(&t, x, 4, dims);
                tdm_codec_params p;
                tdm_codec_params_default(&p, k_modes[mi]);
                p.granularity = TDM_CODEC_GRANULARITY_CHANNEL;
                p.channel_axis = axis;
                roundtrip(&t, &p, &out);
                const float *y = out.data;
                for (size_t c = 0; c < nchan; c++) {
                    double lo = 0, hi = 0, e = 0;
                    for (size_t i = 0; i < n; i++) {
                        if ((i / inner) % nchan != c)
                            continue;
                        lo = x[i] < lo ? x[i] : lo;
                        hi = x[i] > hi ? x[i] : hi;
                        double d = fabs((double)x[i] - y[i]);
                        e = d > e ? d : e;
                    }
                    double half = (hi - lo) / qmax / 2;
                    if (e > half * (1 + 1e-4) + 1e-37)
                        fail_msg("shape %zu axis %d channel %zu: error %g > %g", sh, axis, c, e,
                                 half);
                }
                tdm_tensor_free(&out);
            }
        }
        free(x);
    }
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Percentile clipping: the bulk gets a finer grid; outliers saturate at the clip range. */
static void test_percentile_clip(void **state)
{
    (void)state;
    rng r = {7};
    size_t n = 20000;
    float *x = malloc(n * sizeof *x), *sorted = malloc(n * sizeof *x);
    fill_normal(&r, x, n, 1.0f);
    x[10] = 1000.0f; /* outliers that would stretch a min/max range */
    x[20] = -500.0f;
    memcpy(sorted, x, n * sizeof *x);
    qsort(sorted, n, sizeof *sorted, cmp_float);
    double plo = sorted[(size_t)(0.001 * (n - 1))], phi = sorted[(size_t)ceil(0.999 * (n - 1))];
    int64_t dims[1] = {(int64_t)n};
    tdm_tensor t, out;
    make_tensor(&t, x, 1, dims);
    tdm_codec_params p;
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    p.clip = TDM_CODEC_CLIP_PERCENTILE;
    p.percentile = 99.9f;
    roundtrip(&t, &p, &out);
    const float *y = out.data;
    /* the clip range is within one histogram bin (1/2048 of the full range) of the exact one */
    double bin = (1000.0 + 500.0) / 2048;
    double scale_max = (phi - plo + 2 * bin) / 255;
    double e = 0, ymax = -1e30, ymin = 1e30;
    for (size_t i = 0; i < n; i++) {
        ymax = y[i] > ymax ? y[i] : ymax;
        ymin = y[i] < ymin ? y[i] : ymin;
        if (x[i] < plo || x[i] > phi)
            continue;
        double d = fabs((double)x[i] - y[i]);
        e = d > e ? d : e;
    }
    assert_true(e <= scale_max / 2 * (1 + 1e-4));
    assert_true(e < (1500.0 / 255) / 8); /* far finer than the min/max grid */
    assert_true(ymax <= phi + bin + scale_max && ymax >= phi - scale_max);
    assert_true(ymin >= plo - bin - scale_max && ymin <= plo + scale_max);
    tdm_tensor_free(&out);

    /* percentile 100 is min/max */
    p.percentile = 100.0f;
    roundtrip(&t, &p, &out);
    assert_true(max_err(x, out.data, n) <= 1500.0 / 255 / 2 * (1 + 1e-4));
    tdm_tensor_free(&out);
    free(x);
    free(sorted);
}

static void test_zero_threshold(void **state)
{
    (void)state;
    rng r = {8};
    size_t n = 5000;
    float *x = malloc(n * sizeof *x);
    fill_normal(&r, x, n, 1.0f);
    int64_t dims[1] = {(int64_t)n};
    tdm_tensor t, out;
    make_tensor(&t, x, 1, dims);
    for (size_t mi = 0; mi < 4; mi++) {
        tdm_codec_params p;
        tdm_codec_params_default(&p, k_modes[mi]);
        p.zero_threshold = 0.5f;
        roundtrip(&t, &p, &out);
        const float *y = out.data;
        for (size_t i = 0; i < n; i++) {
            if (fabsf(x[i]) < 0.5f)
                assert_true(y[i] == 0.0f);
            else if (mi == 0)
                assert_int_equal(f32_bits(y[i]), f32_bits(x[i]));
        }
        tdm_tensor_free(&out);
    }
    free(x);
}

static int cmp_mag_desc(const void *a, const void *b)
{
    float x = fabsf(*(const float *)a), y = fabsf(*(const float *)b);
    return (x < y) - (x > y);
}

/* Top-k keeps exactly the k largest magnitudes; both position codings are exercised. */
static void test_topk(void **state)
{
    (void)state;
    rng r = {9};
    size_t n = 3001;
    float *x = malloc(n * sizeof *x), *sorted = malloc(n * sizeof *x);
    fill_normal(&r, x, n, 1.0f);
    memcpy(sorted, x, n * sizeof *x);
    qsort(sorted, n, sizeof *sorted, cmp_mag_desc);
    int64_t d1[1] = {(int64_t)n};
    tdm_tensor t, out;
    make_tensor(&t, x, 1, d1);
    const size_t ks[] = {1, 10, 100, 900, 2000, 3000};
    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++) {
        for (size_t mi = 0; mi < 4; mi++) {
            tdm_codec_params p;
            tdm_codec_params_default(&p, k_modes[mi]);
            if (ki % 2 == 0)
                p.topk_count = (int64_t)ks[ki];
            else
                p.topk_fraction = (float)ks[ki] / (float)n;
            size_t k = ks[ki];
            roundtrip(&t, &p, &out);
            const float *y = out.data;
            float thr = fabsf(sorted[k - 1]);
            size_t kept = 0;
            for (size_t i = 0; i < n; i++) {
                if (fabsf(x[i]) > thr)
                    assert_true(y[i] != 0.0f || mi >= 2); /* kept (may quantise to 0) */
                if (fabsf(x[i]) < thr)
                    assert_true(y[i] == 0.0f);
                if (fabsf(x[i]) >= thr)
                    kept++;
                if (mi == 0 && fabsf(x[i]) > thr)
                    assert_int_equal(f32_bits(y[i]), f32_bits(x[i]));
            }
            assert_int_equal(kept, k); /* no ties in this data */
            tdm_tensor_free(&out);
        }
    }
    /* top-k with per-channel int8, sparse values still within each channel's step */
    int64_t d2[2] = {3, 1000};
    float *x2 = malloc(3000 * sizeof *x2);
    for (size_t i = 0; i < 3000; i++)
        x2[i] = rng_normal(&r) * (i < 1000 ? 0.01f : i < 2000 ? 1.0f : 100.0f);
    make_tensor(&t, x2, 2, d2);
    tdm_codec_params p;
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    p.granularity = TDM_CODEC_GRANULARITY_CHANNEL;
    p.channel_axis = 0;
    p.topk_fraction = 0.5f;
    roundtrip(&t, &p, &out);
    for (size_t c = 0; c < 3; c++) {
        double lo = 0, hi = 0, e = 0;
        for (size_t i = c * 1000; i < (c + 1) * 1000; i++) {
            float yv = ((const float *)out.data)[i];
            if (yv == 0.0f)
                continue;
            lo = x2[i] < lo ? x2[i] : lo;
            hi = x2[i] > hi ? x2[i] : hi;
            double d = fabs((double)x2[i] - yv);
            e = d > e ? d : e;
        }
        assert_true(e <= (hi - lo) / 255 / 2 * (1 + 1e-4) + 1e-37);
    }
    tdm_tensor_free(&out);
    free(x2);
    /* ties: all equal magnitudes, the first k by index are kept */
    for (size_t i = 0; i < n; i++)
        x[i] = (i & 1) ? 1.0f : -1.0f;
    make_tensor(&t, x, 1, d1);
    tdm_codec_params_default(&p, TDM_CODEC_MODE_LOSSLESS);
    p.topk_count = 7;
    roundtrip(&t, &p, &out);
    for (size_t i = 0; i < n; i++)
        assert_true(((const float *)out.data)[i] == (i < 7 ? x[i] : 0.0f));
    tdm_tensor_free(&out);
    /* k above the number of nonzeros keeps the nonzeros only */
    memset(x, 0, n * sizeof *x);
    x[5] = 3.0f;
    p.topk_count = 100;
    roundtrip(&t, &p, &out);
    assert_true(((const float *)out.data)[5] == 3.0f);
    tdm_tensor_free(&out);
    free(x);
    free(sorted);
}

/* Entropy coding pays on ReLU activations, and int8 beats one byte per value clearly. */
static void test_relu_int8_ratio(void **state)
{
    (void)state;
    rng r = {10};
    size_t n = 16384;
    float *x = malloc(n * sizeof *x);
    fill_relu(&r, x, n, 1.0f);
    int64_t dims[4] = {1, 64, 16, 16};
    tdm_tensor t, out;
    make_tensor(&t, x, 4, dims);
    tdm_codec_params p;
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    size_t with = roundtrip(&t, &p, &out);
    tdm_tensor_free(&out);
    p.entropy = false;
    size_t without = roundtrip(&t, &p, &out);
    tdm_tensor_free(&out);
    print_message("relu int8: %zu bytes entropy-coded, %zu raw (%zu values)\n", with, without, n);
    assert_true(without >= n);
    assert_true(with < n * 6 / 10);
    free(x);
}

/* The SIMD kernels give the same bits as the portable ones. */
static void test_kernels_agree(void **state)
{
    (void)state;
    tdm_codec_kernels pk, vk;
    tdm_codec_kernels_portable(&pk);
    if (!tdm_codec_kernels_avx2(&vk)) {
        print_message("no AVX2 on this CPU: portable kernels only\n");
        return;
    }
    rng r = {11};
    size_t n = 1003;
    float *x = malloc(n * sizeof *x), *ya = malloc(n * sizeof *x), *yb = malloc(n * sizeof *x);
    uint8_t *qa = malloc(n), *qb = malloc(n);
    uint16_t *ha = malloc(n * 2), *hb = malloc(n * 2);
    for (int rep = 0; rep < 20; rep++) {
        fill_normal(&r, x, n, (float)(rep + 1));
        for (size_t i = 0; i < n; i += 13)
            x[i] = (float)(i % 7) * 0.5f; /* exact ties at .5 */
        unsigned qmax = rep & 1 ? 15 : 255, zp = (unsigned)(rep * 37) % (qmax + 1);
        float inv = (float)(rep + 1) * 0.9f;
        pk.quantize(x, n, inv, (float)zp, qmax, qa);
        vk.quantize(x, n, inv, (float)zp, qmax, qb);
        assert_memory_equal(qa, qb, n);
        pk.dequantize(qa, n, zp, qmax, 0.37f, ya);
        vk.dequantize(qa, n, zp, qmax, 0.37f, yb);
        assert_memory_equal(ya, yb, n * 4);
        for (size_t i = 0; i < n; i++)
            x[i] = bits_f32((uint32_t)rng_next(&r) & 0xbfffffffu); /* no NaN, some Inf */
        pk.to_f16(x, n, ha);
        vk.to_f16(x, n, hb);
        for (size_t i = 0; i < n; i++)
            if (!isnan(x[i]))
                assert_int_equal(ha[i], hb[i]);
        for (size_t i = 0; i < n; i++)
            ha[i] = (uint16_t)rng_next(&r);
        pk.from_f16(ha, n, ya);
        vk.from_f16(ha, n, yb);
        for (size_t i = 0; i < n; i++)
            if (!isnan(ya[i]))
                assert_int_equal(f32_bits(ya[i]), f32_bits(yb[i]));
    }
    free(x);
    free(ya);
    free(yb);
    free(qa);
    free(qb);
    free(ha);
    free(hb);
}

/* Encoding is deterministic: the same tensor and params give the same bytes. */
static void test_deterministic(void **state)
{
    (void)state;
    rng r = {12};
    size_t n = 777;
    float *x = malloc(n * sizeof *x);
    fill_relu(&r, x, n, 1.0f);
    int64_t dims[1] = {(int64_t)n};
    tdm_tensor t;
    make_tensor(&t, x, 1, dims);
    for (size_t mi = 0; mi < 4; mi++) {
        tdm_codec_params p;
        tdm_codec_params_default(&p, k_modes[mi]);
        size_t la, lb;
        tdm_status sa, sb;
        uint8_t *a = encode_alloc(&t, &p, &la, &sa, NULL),
                *b = encode_alloc(&t, &p, &lb, &sb, NULL);
        assert_int_equal(sa, TDM_OK);
        assert_int_equal(sb, TDM_OK);
        assert_int_equal(la, lb);
        assert_memory_equal(a, b, la);
        free(a);
        free(b);
    }
    free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lossless_bit_exact),
        cmocka_unit_test(test_lossless_compresses_relu),
        cmocka_unit_test(test_f16_matches_reference),
        cmocka_unit_test(test_int_per_tensor_error_bound),
        cmocka_unit_test(test_int_extreme_ranges),
        cmocka_unit_test(test_int_nan_inf_exact),
        cmocka_unit_test(test_all_zeros_tiny),
        cmocka_unit_test(test_empty_and_scalar),
        cmocka_unit_test(test_int_per_channel),
        cmocka_unit_test(test_percentile_clip),
        cmocka_unit_test(test_zero_threshold),
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_relu_int8_ratio),
        cmocka_unit_test(test_kernels_agree),
        cmocka_unit_test(test_deterministic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
