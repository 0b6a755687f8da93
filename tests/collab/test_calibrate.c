/*
 * Calibration on synthetic data whose right answers are known by
 * construction: logits drawn from a model with a known temperature, a set
 * whose confidences are exactly its accuracies, and cascades whose
 * thresholds must meet a loss or exit-rate target.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collab/calibrate.h"

static uint64_t rng_state;

static double urand(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

static double nrand(void)
{
    double u = urand(), v = urand();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

/* Labels sampled from softmax(z / t_true): the NLL minimiser is t_true. */
static void test_temperature_recovered(void **state)
{
    (void)state;
    const int64_t n = 20000;
    const int c = 5;
    float *z = malloc((size_t)(n * c) * sizeof *z);
    int32_t *y = malloc((size_t)n * sizeof *y);
    assert_non_null(z);
    assert_non_null(y);
    const double truths[] = {0.5, 1.0, 2.5};
    for (size_t t = 0; t < sizeof truths / sizeof truths[0]; t++) {
        rng_state = 42 + t;
        for (int64_t i = 0; i < n; i++) {
            double p[5], s = 0.0;
            for (int j = 0; j < c; j++) {
                z[i * c + j] = (float)(3.0 * nrand());
                s += p[j] = exp(z[i * c + j] / truths[t]);
            }
            double u = urand() * s;
            int lab = 0;
            while (lab < c - 1 && (u -= p[lab]) > 0.0)
                lab++;
            y[i] = lab;
        }
        double got = 0.0;
        assert_int_equal(tdm_cal_fit_temperature(z, y, n, c, &got, NULL), TDM_OK);
        assert_true(fabs(got - truths[t]) / truths[t] < 0.06);
        /* And it is a minimum: both neighbours have a higher NLL. */
        double f = tdm_cal_nll(z, y, n, c, got);
        assert_true(f <= tdm_cal_nll(z, y, n, c, got * 1.1));
        assert_true(f <= tdm_cal_nll(z, y, n, c, got / 1.1));
    }
    free(z);
    free(y);
}

static void test_temperature_bad_input(void **state)
{
    (void)state;
    float z[4] = {1, 2, 3, 4};
    int32_t y[2] = {0, 2};
    double t;
    tdm_err err = {{0}};
    assert_int_equal(tdm_cal_fit_temperature(z, y, 2, 2, &t, &err), TDM_ERR_INVALID_ARG);
    assert_non_null(strstr(err.msg, "label 2"));
    assert_int_equal(tdm_cal_fit_temperature(z, y, 0, 2, &t, &err), TDM_ERR_INVALID_ARG);
    z[1] = NAN;
    y[1] = 1;
    assert_int_equal(tdm_cal_fit_temperature(z, y, 2, 2, &t, &err), TDM_ERR_INVALID_ARG);
}

/* Correct with probability equal to the confidence: ECE near 0; always right at 0.5: ECE 0.5. */
static void test_ece(void **state)
{
    (void)state;
    const int64_t n = 200000;
    float *conf = malloc((size_t)n * sizeof *conf);
    bool *ok = malloc((size_t)n * sizeof *ok);
    assert_non_null(conf);
    assert_non_null(ok);
    rng_state = 7;
    for (int64_t i = 0; i < n; i++) {
        conf[i] = (float)urand();
        ok[i] = urand() < conf[i];
    }
    double ece, mce;
    tdm_cal_ece(conf, ok, n, &ece, &mce);
    assert_true(ece < 0.01);
    assert_true(mce < 0.02);
    for (int64_t i = 0; i < n; i++) {
        conf[i] = 0.5f;
        ok[i] = true;
    }
    tdm_cal_ece(conf, ok, n, &ece, &mce);
    assert_true(fabs(ece - 0.5) < 1e-9);
    assert_true(fabs(mce - 0.5) < 1e-9);
    /* Edges: confidence exactly 0 and 1 land in the first and last bins. */
    conf[0] = 0.0f;
    conf[1] = 1.0f;
    ok[0] = false;
    ok[1] = true;
    tdm_cal_ece(conf, ok, 2, &ece, &mce);
    assert_true(ece < 1e-9);
    free(conf);
    free(ok);
}

/* Temperature scaling lowers the ECE of overconfident logits. */
static void test_scaling_lowers_ece(void **state)
{
    (void)state;
    const int64_t n = 20000;
    const int c = 10;
    float *z = malloc((size_t)(n * c) * sizeof *z);
    int32_t *y = malloc((size_t)n * sizeof *y);
    float *mp = malloc((size_t)n * sizeof *mp);
    int32_t *pred = malloc((size_t)n * sizeof *pred);
    bool *ok = malloc((size_t)n * sizeof *ok);
    assert_true(z && y && mp && pred && ok);
    rng_state = 99;
    for (int64_t i = 0; i < n; i++) {
        double p[10], s = 0.0;
        for (int j = 0; j < c; j++) {
            double v = 2.0 * nrand();
            s += p[j] = exp(v);
            z[i * c + j] = (float)(4.0 * v); /* 4x too confident */
        }
        double u = urand() * s;
        int lab = 0;
        while (lab < c - 1 && (u -= p[lab]) > 0.0)
            lab++;
        y[i] = lab;
    }
    double t, e0, e1, m;
    assert_int_equal(tdm_cal_fit_temperature(z, y, n, c, &t, NULL), TDM_OK);
    assert_true(fabs(t - 4.0) < 0.3);
    tdm_cal_predict(z, n, c, 1.0, TDM_CONF_MAXPROB, pred, mp, NULL);
    for (int64_t i = 0; i < n; i++)
        ok[i] = pred[i] == y[i];
    tdm_cal_ece(mp, ok, n, &e0, &m);
    tdm_cal_predict(z, n, c, t, TDM_CONF_MAXPROB, pred, mp, NULL);
    tdm_cal_ece(mp, ok, n, &e1, &m);
    assert_true(e0 > 0.1);
    assert_true(e1 < 0.02);
    /* Scaling this set clearly lowers its ECE: the choice keeps the NLL temperature. */
    double tc, tn;
    assert_int_equal(tdm_cal_choose_temperature(z, y, n, c, &tc, &tn, NULL), TDM_OK);
    assert_true(tc == t && tn == t);
    free(z);
    free(y);
    free(mp);
    free(pred);
    free(ok);
}

static void test_entropy_confidence(void **state)
{
    (void)state;
    float z[6] = {0, 0, 0, 100, 0, 0};
    float conf[2], mp[2];
    int32_t pred[2];
    tdm_cal_predict(z, 2, 3, 1.0, TDM_CONF_ENTROPY, pred, mp, conf);
    assert_true(fabs(conf[0]) < 1e-6); /* uniform: no confidence */
    assert_true(conf[1] > 0.999f);     /* one-hot: full confidence */
    assert_int_equal(pred[0], 0);
    assert_int_equal(pred[1], 0);
    assert_true(fabs(mp[0] - 1.0 / 3.0) < 1e-6);
}

/*
 * A set calibrated as a 15-bin ECE sees it (one bin, mean confidence equal
 * to accuracy: ECE 0 at T = 1) but not as NLL sees it: half the inputs say
 * 0.999 and are 95% right, half say 0.94 and are 98.9% right. The NLL
 * minimiser moves away from 1 and would raise the ECE; the choice keeps 1.
 */
static void test_choose_keeps_one(void **state)
{
    (void)state;
    const int64_t n = 2000;
    float *z = malloc((size_t)(n * 2) * sizeof *z);
    int32_t *y = malloc((size_t)n * sizeof *y);
    assert_true(z && y);
    for (int64_t i = 0; i < n; i++) {
        bool a = i < n / 2;
        int64_t r = a ? i : i - n / 2; /* rank within its half */
        z[2 * i] = (float)(a ? log(0.999 / 0.001) : log(0.94 / 0.06));
        z[2 * i + 1] = 0.0f;
        y[i] = r < (a ? 950 : 989) ? 0 : 1;
    }
    double t, tn;
    assert_int_equal(tdm_cal_choose_temperature(z, y, n, 2, &t, &tn, NULL), TDM_OK);
    assert_true(fabs(tn - 1.0) > 0.05);
    assert_true(t == 1.0);
    /* T = 1 really is the better one for ECE here. */
    float conf[2000];
    bool ok[2000];
    int32_t pred[2000];
    double e1, en, m;
    tdm_cal_predict(z, n, 2, 1.0, TDM_CONF_MAXPROB, pred, conf, NULL);
    for (int64_t i = 0; i < n; i++)
        ok[i] = pred[i] == y[i];
    tdm_cal_ece(conf, ok, n, &e1, &m);
    tdm_cal_predict(z, n, 2, tn, TDM_CONF_MAXPROB, pred, conf, NULL);
    tdm_cal_ece(conf, ok, n, &en, &m);
    assert_true(e1 < 1e-6 && en > e1);
    tdm_err err = {{0}};
    assert_int_equal(tdm_cal_choose_temperature(z, y, 0, 2, &t, &tn, &err), TDM_ERR_INVALID_ARG);
    free(z);
    free(y);
}

/* Two exits whose correctness depends on confidence; the final is 95% right. */
typedef struct cascade_data {
    int64_t n;
    float *conf[2];
    bool *ok[2], *fin;
} cascade_data;

static void make_cascade(cascade_data *d, int64_t n, uint64_t seed)
{
    d->n = n;
    rng_state = seed;
    for (int k = 0; k < 2; k++) {
        d->conf[k] = malloc((size_t)n * sizeof(float));
        d->ok[k] = malloc((size_t)n * sizeof(bool));
    }
    d->fin = malloc((size_t)n * sizeof(bool));
    for (int64_t i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            d->conf[k][i] = (float)urand();
            /* exit k is right with probability conf^(2-k) (the deeper one is better) */
            d->ok[k][i] = urand() < pow(d->conf[k][i], 2 - k);
        }
        d->fin[i] = urand() < 0.95;
    }
}

static void free_cascade(cascade_data *d)
{
    for (int k = 0; k < 2; k++) {
        free(d->conf[k]);
        free(d->ok[k]);
    }
    free(d->fin);
}

static void test_thresholds_meet_loss(void **state)
{
    (void)state;
    cascade_data cal, test;
    make_cascade(&cal, 20000, 1);
    make_cascade(&test, 20000, 2);
    const double targets[] = {0.0, 0.01, 0.05};
    for (size_t t = 0; t < sizeof targets / sizeof targets[0]; t++) {
        double thr[2];
        assert_int_equal(tdm_cascade_select_loss(2, (const float *const *)cal.conf,
                                                 (const bool *const *)cal.ok, cal.fin, cal.n,
                                                 targets[t], 0.0, thr, NULL),
                         TDM_OK);
        tdm_cascade_result r;
        tdm_cascade_apply(2, (const float *const *)cal.conf, (const bool *const *)cal.ok, cal.fin,
                          cal.n, thr, &r);
        assert_true(r.loss <= targets[t] + 1e-12); /* exact on the calibration set */
        assert_true(r.exit_rate > 0.0);
        if (targets[t] > 0.0)
            assert_true(r.exited[0] > 0);
        /* and close on a fresh draw of the same distribution */
        tdm_cascade_apply(2, (const float *const *)test.conf, (const bool *const *)test.ok,
                          test.fin, test.n, thr, &r);
        assert_true(r.loss <= targets[t] + 0.01);
    }
    /* a bigger budget never exits fewer inputs */
    double a[2], b[2];
    tdm_cascade_result ra, rb;
    tdm_cascade_select_loss(2, (const float *const *)cal.conf, (const bool *const *)cal.ok, cal.fin,
                            cal.n, 0.01, 0.0, a, NULL);
    tdm_cascade_select_loss(2, (const float *const *)cal.conf, (const bool *const *)cal.ok, cal.fin,
                            cal.n, 0.05, 0.0, b, NULL);
    tdm_cascade_apply(2, (const float *const *)cal.conf, (const bool *const *)cal.ok, cal.fin,
                      cal.n, a, &ra);
    tdm_cascade_apply(2, (const float *const *)cal.conf, (const bool *const *)cal.ok, cal.fin,
                      cal.n, b, &rb);
    assert_true(rb.exit_rate >= ra.exit_rate);
    free_cascade(&cal);
    free_cascade(&test);
}

static void test_thresholds_meet_rate(void **state)
{
    (void)state;
    cascade_data cal;
    make_cascade(&cal, 10000, 3);
    const double rates[] = {0.0, 0.3, 0.6, 1.0};
    for (size_t t = 0; t < sizeof rates / sizeof rates[0]; t++) {
        double thr[2];
        assert_int_equal(tdm_cascade_select_rate(2, (const float *const *)cal.conf,
                                                 (const bool *const *)cal.ok, cal.fin, cal.n,
                                                 rates[t], thr, NULL),
                         TDM_OK);
        tdm_cascade_result r;
        tdm_cascade_apply(2, (const float *const *)cal.conf, (const bool *const *)cal.ok, cal.fin,
                          cal.n, thr, &r);
        assert_true(r.exit_rate >= rates[t] - 1e-12);
        if (rates[t] == 0.0)
            assert_true(r.loss <= 0.0);
    }
    double thr[2];
    tdm_err err = {{0}};
    assert_int_equal(tdm_cascade_select_rate(2, (const float *const *)cal.conf,
                                             (const bool *const *)cal.ok, cal.fin, cal.n, 1.5, thr,
                                             &err),
                     TDM_ERR_INVALID_ARG);
    assert_int_equal(tdm_cascade_select_loss(0, NULL, NULL, NULL, 10, 0.01, 0.0, thr, &err),
                     TDM_ERR_INVALID_ARG);
    free_cascade(&cal);
}

/*
 * A margin of z standard errors: never exits more than the plain budget, keeps
 * the calibration loss under the budget by the margin, and holds the budget on
 * fresh draws far more often than the plain count (which stops right at the
 * budget on the calibration draw, so it overshoots on about half of new ones).
 */
static void test_thresholds_margin(void **state)
{
    (void)state;
    cascade_data cal;
    make_cascade(&cal, 2000, 11);
    double t0[2], t1[2];
    const double budget = 0.01;
    assert_int_equal(tdm_cascade_select_loss(2, (const float *const *)cal.conf,
                                             (const bool *const *)cal.ok, cal.fin, cal.n, budget,
                                             0.0, t0, NULL),
                     TDM_OK);
    assert_int_equal(tdm_cascade_select_loss(2, (const float *const *)cal.conf,
                                             (const bool *const *)cal.ok, cal.fin, cal.n, budget,
                                             1.645, t1, NULL),
                     TDM_OK);
    tdm_cascade_result r0, r1;
    tdm_cascade_apply(2, (const float *const *)cal.conf, (const bool *const *)cal.ok, cal.fin,
                      cal.n, t0, &r0);
    tdm_cascade_apply(2, (const float *const *)cal.conf, (const bool *const *)cal.ok, cal.fin,
                      cal.n, t1, &r1);
    assert_true(r1.exit_rate <= r0.exit_rate);
    assert_true(r1.exit_rate > 0.0);
    assert_true(r1.loss < budget);
    int over0 = 0, over1 = 0;
    for (uint64_t seed = 100; seed < 120; seed++) {
        cascade_data test;
        make_cascade(&test, 2000, seed);
        tdm_cascade_apply(2, (const float *const *)test.conf, (const bool *const *)test.ok,
                          test.fin, test.n, t0, &r0);
        tdm_cascade_apply(2, (const float *const *)test.conf, (const bool *const *)test.ok,
                          test.fin, test.n, t1, &r1);
        over0 += r0.loss > budget;
        over1 += r1.loss > budget;
        free_cascade(&test);
    }
    assert_true(over1 <= 4);
    assert_true(over1 < over0);
    tdm_err err = {{0}};
    assert_int_equal(tdm_cascade_select_loss(2, (const float *const *)cal.conf,
                                             (const bool *const *)cal.ok, cal.fin, cal.n, budget,
                                             -1.0, t1, &err),
                     TDM_ERR_INVALID_ARG);
    free_cascade(&cal);
}

/* Hand-made case: the greedy takes exactly the inputs it can afford. */
static void test_thresholds_small(void **state)
{
    (void)state;
    float c0[6] = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.4f};
    bool k0[6] = {true, true, false, true, false, true};
    bool fin[6] = {true, true, true, true, true, true};
    const float *conf[1] = {c0};
    const bool *ok[1] = {k0};
    double thr[1];
    assert_int_equal(tdm_cascade_select_loss(1, conf, ok, fin, 6, 0.0, 0.0, thr, NULL), TDM_OK);
    assert_true(fabs(thr[0] - 0.8) < 1e-6); /* the first two, then an error */
    assert_int_equal(tdm_cascade_select_loss(1, conf, ok, fin, 6, 1.0 / 6.0, 0.0, thr, NULL),
                     TDM_OK);
    assert_true(fabs(thr[0] - 0.6) < 1e-6); /* one error affordable, the second one is not */
    tdm_cascade_result r;
    tdm_cascade_apply(1, conf, ok, fin, 6, thr, &r);
    assert_int_equal(r.exited[0], 4);
    assert_int_equal(r.correct[0], 3);
    assert_int_equal(r.final_taken, 2);
    assert_true(fabs(r.loss - 1.0 / 6.0) < 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_temperature_recovered),
        cmocka_unit_test(test_temperature_bad_input),
        cmocka_unit_test(test_ece),
        cmocka_unit_test(test_scaling_lowers_ece),
        cmocka_unit_test(test_choose_keeps_one),
        cmocka_unit_test(test_entropy_confidence),
        cmocka_unit_test(test_thresholds_meet_loss),
        cmocka_unit_test(test_thresholds_meet_rate),
        cmocka_unit_test(test_thresholds_small),
        cmocka_unit_test(test_thresholds_margin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
