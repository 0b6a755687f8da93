/*
 * The cascade's selection logic on synthetic predictions: confidences from
 * logits (temperature, ties, bad input), the counts at hand-computed
 * thresholds, the extremes (threshold 0 = edge only, above 1 = cloud only),
 * agreement between the sweep by fraction and the threshold sweep, and the
 * oracle bound.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "collab/cascade.h"

static void test_confidence(void **state)
{
    (void)state;
    const float z[3 * 3] = {2, 1, 0, 1, 3, 3, -50, 40, 39};
    double conf[3];
    int32_t pred[3];
    assert_int_equal(tdm_cascade_confidence(z, 3, 3, 1.0, conf, pred, NULL), TDM_OK);
    assert_int_equal(pred[0], 0);
    assert_true(fabs(conf[0] - 1.0 / (1.0 + exp(-1.0) + exp(-2.0))) < 1e-12);
    assert_int_equal(pred[1], 1); /* first maximum on ties */
    assert_true(fabs(conf[1] - 1.0 / (2.0 + exp(-2.0))) < 1e-12);
    assert_int_equal(pred[2], 1);
    assert_true(fabs(conf[2] - 1.0 / (1.0 + exp(-1.0) + exp(-90.0))) < 1e-12);
    /* a higher temperature lowers confidence */
    double conf_t[3];
    assert_int_equal(tdm_cascade_confidence(z, 3, 3, 2.0, conf_t, pred, NULL), TDM_OK);
    assert_true(fabs(conf_t[0] - 1.0 / (1.0 + exp(-0.5) + exp(-1.0))) < 1e-12);
    assert_true(conf_t[0] < conf[0]);

    tdm_err err;
    assert_int_equal(tdm_cascade_confidence(z, 3, 3, 0.0, conf, pred, &err), TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_cascade_confidence(z, 3, 0, 1.0, conf, pred, &err), TDM_ERR_INVALID_ARG);
    const float bad[2] = {1.0f, NAN};
    assert_int_equal(tdm_cascade_confidence(bad, 1, 2, 1.0, conf, pred, &err), TDM_ERR_INVALID_ARG);
}

/*
 * Six images:       0     1     2     3     4     5
 *   confidence     0.95  0.40  0.70  0.55  0.99  0.62
 *   edge right      y     n     y     n     y     n
 *   cloud right     y     y     n     y     y     n
 * edge-only 3/6, cloud-only 4/6.
 */
static const double k_conf[6] = {0.95, 0.40, 0.70, 0.55, 0.99, 0.62};
static const int32_t k_labels[6] = {0, 1, 2, 3, 4, 5};
static const int32_t k_edge[6] = {0, 9, 2, 9, 4, 9};
static const int32_t k_cloud[6] = {0, 1, 9, 3, 4, 9};

static tdm_cascade_data data6(void)
{
    return (tdm_cascade_data){.n = 6,
                              .edge_conf = k_conf,
                              .edge_pred = k_edge,
                              .cloud_pred = k_cloud,
                              .labels = k_labels,
                              .edge_flops = 10,
                              .cloud_flops = 100};
}

static void test_thresholds(void **state)
{
    (void)state;
    tdm_cascade_data d = data6();
    double ea, ca;
    tdm_cascade_reference(&d, &ea, &ca);
    assert_true(fabs(ea - 0.5) < 1e-12);
    assert_true(fabs(ca - 4.0 / 6.0) < 1e-12);

    const double thr[4] = {0.0, 0.6, 0.7, 1.01};
    tdm_cascade_point p[4];
    assert_int_equal(tdm_cascade_thresholds(&d, thr, 4, p, NULL), TDM_OK);
    /* 0: everything at the edge */
    assert_int_equal(p[0].n_edge, 6);
    assert_int_equal(p[0].correct, 3);
    assert_true(fabs(p[0].mean_flops - 10.0) < 1e-12);
    /* 0.6: images 1 and 3 go to the cloud (both right there); edge keeps 0,2,4 right and 5 wrong */
    assert_int_equal(p[1].n_cloud, 2);
    assert_int_equal(p[1].edge_correct, 3);
    assert_int_equal(p[1].correct, 5);
    assert_true(fabs(p[1].frac_cloud - 2.0 / 6.0) < 1e-12);
    assert_true(fabs(p[1].edge_kept_acc - 0.75) < 1e-12);
    assert_true(fabs(p[1].mean_flops - (10.0 + 100.0 * 2.0 / 6.0)) < 1e-9);
    /* 0.7 (>= keeps image 2): 1,3,5 sent: cloud right on 1,3; edge right on 0,2,4 */
    assert_int_equal(p[2].n_cloud, 3);
    assert_int_equal(p[2].correct, 5);
    /* above 1: all to the cloud */
    assert_int_equal(p[3].n_cloud, 6);
    assert_int_equal(p[3].correct, 4);
    assert_true(isnan(p[3].edge_kept_acc));
    assert_true(fabs(p[3].mean_flops - 110.0) < 1e-12);

    tdm_err err;
    const double nan_thr[1] = {NAN};
    assert_int_equal(tdm_cascade_thresholds(&d, nan_thr, 1, p, &err), TDM_ERR_INVALID_ARG);
}

static void test_fractions_and_oracle(void **state)
{
    (void)state;
    tdm_cascade_data d = data6();
    const double f[4] = {0.0, 0.5, 2.0 / 6.0, 1.0};
    tdm_cascade_point p[4];
    assert_int_equal(tdm_cascade_fractions(&d, f, 4, p, NULL), TDM_OK);
    assert_int_equal(p[0].correct, 3);
    assert_true(fabs(p[0].threshold - 0.40) < 1e-12); /* lowest confidence kept */
    /* half: the 3 least confident (1, 3, 5) sent, as with threshold 0.7 */
    assert_int_equal(p[1].n_cloud, 3);
    assert_int_equal(p[1].correct, 5);
    assert_true(fabs(p[1].threshold - 0.70) < 1e-12);
    assert_int_equal(p[2].n_cloud, 2);
    assert_int_equal(p[3].correct, 4);
    assert_true(isnan(p[3].threshold));

    /* oracle: edge 3 right; 2 images (1, 3) the cloud fixes; sending more cannot help */
    double acc[4];
    assert_int_equal(tdm_cascade_oracle(&d, f, 4, acc, NULL), TDM_OK);
    assert_true(fabs(acc[0] - 3.0 / 6.0) < 1e-12);
    assert_true(fabs(acc[1] - 5.0 / 6.0) < 1e-12);
    assert_true(fabs(acc[2] - 5.0 / 6.0) < 1e-12);
    assert_true(fabs(acc[3] - 5.0 / 6.0) < 1e-12);

    tdm_err err;
    const double bad[1] = {1.5};
    assert_int_equal(tdm_cascade_fractions(&d, bad, 1, p, &err), TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_cascade_oracle(&d, bad, 1, acc, &err), TDM_ERR_INVALID_ARG);
}

/* Random logits: every point of the sweep by fraction equals the threshold cascade at the
 * threshold it reports (confidences are distinct), and never beats the oracle. */
static void test_sweep_agrees_with_thresholds(void **state)
{
    (void)state;
    enum { N = 500, K = 10 };
    float *z = malloc(sizeof(float) * N * K);
    double *conf = malloc(sizeof(double) * N);
    int32_t *edge = malloc(sizeof(int32_t) * N), *cloud = malloc(sizeof(int32_t) * N);
    int32_t *labels = malloc(sizeof(int32_t) * N);
    assert_true(z && conf && edge && cloud && labels);
    uint32_t s = 12345;
    for (int i = 0; i < N * K; i++) {
        s = s * 1664525u + 1013904223u;
        z[i] = (float)((s >> 8) % 10000) / 1000.0f;
    }
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        labels[i] = (int32_t)((s >> 8) % K);
        s = s * 1664525u + 1013904223u;
        cloud[i] = (s >> 8) % 10 < 8 ? labels[i] : (labels[i] + 1) % K;
    }
    assert_int_equal(tdm_cascade_confidence(z, N, K, 1.0, conf, edge, NULL), TDM_OK);
    tdm_cascade_data d = {N, conf, edge, cloud, labels, 0, 0};
    double f[21], oracle[21];
    for (int j = 0; j <= 20; j++)
        f[j] = j / 20.0;
    tdm_cascade_point byf[21];
    assert_int_equal(tdm_cascade_fractions(&d, f, 21, byf, NULL), TDM_OK);
    assert_int_equal(tdm_cascade_oracle(&d, f, 21, oracle, NULL), TDM_OK);
    for (int j = 0; j < 20; j++) {
        tdm_cascade_point bt;
        assert_int_equal(tdm_cascade_thresholds(&d, &byf[j].threshold, 1, &bt, NULL), TDM_OK);
        assert_int_equal(bt.n_cloud, byf[j].n_cloud);
        assert_int_equal(bt.correct, byf[j].correct);
        assert_true(byf[j].accuracy <= oracle[j] + 1e-12);
        if (j > 0)
            assert_true(oracle[j] >= oracle[j - 1]);
    }
    free(z);
    free(conf);
    free(edge);
    free(cloud);
    free(labels);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_confidence),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_fractions_and_oracle),
        cmocka_unit_test(test_sweep_agrees_with_thresholds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
