/*
 * The pure parts of the codec sweep: the grids (sizes, distinct settings,
 * every setting accepted by the codec on a per-request NCHW tensor), the
 * labels, the derived figures, the Pareto front and the choice of the
 * smallest setting within a loss, on synthetic numbers whose answers are
 * worked out by hand. The sweep over a real model is tested by
 * tests/integration/codec_sweep.sh.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collab/sweep.h"

static void test_grid_sizes(void **state)
{
    (void)state;
    tdm_codec_params p[TDM_SWEEP_MAX_SETTINGS];
    assert_int_equal(tdm_sweep_grid(TDM_SWEEP_GRID_SMALL, p, TDM_SWEEP_MAX_SETTINGS), 10);
    assert_int_equal(tdm_sweep_grid(TDM_SWEEP_GRID_FULL, p, TDM_SWEEP_MAX_SETTINGS), 44);
    assert_int_equal(tdm_sweep_grid(TDM_SWEEP_GRID_FULL, p, 43), 0);
    assert_int_equal(tdm_sweep_grid(TDM_SWEEP_GRID_SMALL, p, 10), 10);
    /* First two are the references. */
    assert_int_equal(p[0].mode, TDM_CODEC_MODE_LOSSLESS);
    assert_int_equal(p[1].mode, TDM_CODEC_MODE_F16);
}

/* Every setting of the full grid is distinct by label and round-trips a tensor. */
static void test_grid_settings_valid(void **state)
{
    (void)state;
    tdm_codec_params p[TDM_SWEEP_MAX_SETTINGS];
    int n = tdm_sweep_grid(TDM_SWEEP_GRID_FULL, p, TDM_SWEEP_MAX_SETTINGS);
    char labels[TDM_SWEEP_MAX_SETTINGS][96];
    float data[1 * 4 * 3 * 3];
    for (int i = 0; i < 36; i++)
        data[i] = (i % 5 == 0) ? 0.0f : (float)(i * 7 % 11) - 3.0f;
    tdm_tensor t = {.dtype = TDM_DTYPE_FLOAT32, .ndim = 4, .dims = {1, 4, 3, 3}, .data = data};
    int n_pct = 0, n_ch = 0, n_topk = 0, n_zero = 0;
    for (int i = 0; i < n; i++) {
        tdm_sweep_label(&p[i], labels[i], sizeof labels[i]);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(labels[i], labels[j]);
        n_pct += p[i].clip == TDM_CODEC_CLIP_PERCENTILE;
        n_ch += p[i].granularity == TDM_CODEC_GRANULARITY_CHANNEL;
        n_topk += p[i].topk_fraction > 0.0f;
        n_zero += p[i].zero_fraction > 0.0f;
        size_t cap = tdm_codec_bound(&t, &p[i]), len = 0;
        assert_true(cap > 0);
        uint8_t *buf = malloc(cap);
        assert_non_null(buf);
        tdm_err err = {{0}};
        assert_int_equal(tdm_codec_encode(&t, &p[i], buf, cap, &len, &err), TDM_OK);
        tdm_tensor out = {0};
        assert_int_equal(tdm_codec_decode(buf, len, &out, 1 << 20, &err), TDM_OK);
        assert_true(tdm_tensor_same_shape(&out, &t));
        tdm_tensor_free(&out);
        free(buf);
    }
    assert_int_equal(n_pct, 19);
    assert_int_equal(n_ch, 20);
    assert_int_equal(n_topk, 24);
    assert_int_equal(n_zero, 8);
}

static void test_labels(void **state)
{
    (void)state;
    char buf[96];
    tdm_codec_params p;
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT8);
    p.granularity = TDM_CODEC_GRANULARITY_CHANNEL;
    p.clip = TDM_CODEC_CLIP_PERCENTILE;
    p.percentile = 99.9f;
    p.topk_fraction = 0.25f;
    assert_string_equal(tdm_sweep_label(&p, buf, sizeof buf), "int8/ch/p99.9/top0.25");
    tdm_codec_params_default(&p, TDM_CODEC_MODE_INT4);
    assert_string_equal(tdm_sweep_label(&p, buf, sizeof buf), "int4/tensor/minmax");
    tdm_codec_params_default(&p, TDM_CODEC_MODE_F16);
    assert_string_equal(tdm_sweep_label(&p, buf, sizeof buf), "f16");
}

/* Synthetic results: (bytes summed over 100 requests, correct of 100). */
static void make(tdm_sweep_result *r, int n, const double *bytes, const int *correct)
{
    memset(r, 0, (size_t)n * sizeof *r);
    for (int i = 0; i < n; i++) {
        r[i].requests = 100;
        r[i].bytes = (uint64_t)(bytes[i] * 100);
        r[i].correct = correct[i];
        r[i].agree = correct[i];
        r[i].encode_ns = 100 * 2000.0;
        r[i].decode_ns = 100 * 500.0;
    }
}

static void test_finish_and_pareto(void **state)
{
    (void)state;
    /*            0     1     2    3    4    5 */
    double b[] = {4000, 2000, 500, 300, 300, 700};
    int c[] = {95, 95, 94, 90, 91, 93};
    tdm_sweep_result r[6];
    make(r, 6, b, c);
    tdm_sweep_finish(r, 6, 0.95, 4000.0);
    assert_true(fabs(r[2].bytes_per_request - 500) < 1e-9);
    assert_true(fabs(r[2].ratio_fp32 - 8.0) < 1e-9);
    assert_true(fabs(r[2].loss - 0.01) < 1e-9);
    assert_true(fabs(r[2].encode_us - 2.0) < 1e-9);
    assert_true(fabs(r[2].decode_us - 0.5) < 1e-9);
    /* 0 is dominated by 1 (same accuracy, fewer bytes); 3 by 4; 5 by 2. */
    const bool want[] = {false, true, true, false, true, false};
    for (int i = 0; i < 6; i++)
        assert_int_equal(r[i].pareto, want[i]);
    /* Equal points are both on the front. */
    r[3].accuracy = r[4].accuracy;
    tdm_sweep_pareto(r, 6);
    assert_true(r[3].pareto && r[4].pareto);
}

static void test_best_and_order(void **state)
{
    (void)state;
    double b[] = {4000, 2000, 500, 300, 300, 700};
    int c[] = {95, 95, 94, 90, 91, 93};
    tdm_sweep_result r[6];
    make(r, 6, b, c);
    tdm_sweep_finish(r, 6, 0.95, 4000.0);
    assert_int_equal(tdm_sweep_best(r, 6, 0.01 + 1e-12), 2);
    assert_int_equal(tdm_sweep_best(r, 6, 0.0), 1);
    assert_int_equal(tdm_sweep_best(r, 6, 0.05), 4); /* ties on bytes: the more accurate */
    assert_int_equal(tdm_sweep_best(r, 6, -0.5), -1);
    int idx[6];
    tdm_sweep_order(r, 6, idx);
    const int want[] = {4, 3, 2, 5, 1, 0};
    for (int i = 0; i < 6; i++)
        assert_int_equal(idx[i], want[i]);
}

/* A setting that saw no requests has no figures and is never chosen nor on the front. */
static void test_empty(void **state)
{
    (void)state;
    double b[] = {100, 0};
    int c[] = {50, 0};
    tdm_sweep_result r[2];
    make(r, 2, b, c);
    r[1].requests = 0;
    tdm_sweep_finish(r, 2, 0.5, 400.0);
    assert_true(isnan(r[1].accuracy));
    assert_false(r[1].pareto);
    assert_true(r[0].pareto);
    assert_int_equal(tdm_sweep_best(r, 2, 0.01), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grid_sizes),     cmocka_unit_test(test_grid_settings_valid),
        cmocka_unit_test(test_labels),         cmocka_unit_test(test_finish_and_pareto),
        cmocka_unit_test(test_best_and_order), cmocka_unit_test(test_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
