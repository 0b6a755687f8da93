/*
 * Temperature scaling, calibration error and cascade thresholds.
 *
 * Softmax and NLL are computed in double with the row maximum subtracted, so
 * that extreme logits (or a tiny temperature) neither overflow nor lose the
 * answer to cancellation. The temperature search works on beta = 1/T because
 * NLL(beta * z) is convex in beta: golden-section on log(beta) then converges
 * to the one minimum. Threshold selection works on counts, not fractions, so
 * "loss <= 1%" on 5000 inputs means exactly "at most 50 more errors than the
 * final output", with no rounding surprises; the optional margin is z
 * standard errors of that count, from the number of inputs where the
 * cascade and the final output disagree.
 */
#include "collab/calibrate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void tdm_cal_softmax(float *x, int64_t n, int c, double t)
{
    for (int64_t i = 0; i < n; i++) {
        float *r = x + i * c;
        double m = r[0];
        for (int j = 1; j < c; j++)
            if (r[j] > m)
                m = r[j];
        double s = 0.0;
        for (int j = 0; j < c; j++)
            s += exp((r[j] - m) / t);
        for (int j = 0; j < c; j++)
            r[j] = (float)(exp((r[j] - m) / t) / s);
    }
}

/* Mean NLL at inverse temperature beta. */
static double nll_beta(const float *logits, const int32_t *labels, int64_t n, int c, double beta)
{
    double total = 0.0;
    for (int64_t i = 0; i < n; i++) {
        const float *r = logits + i * c;
        double m = r[0];
        for (int j = 1; j < c; j++)
            if (r[j] > m)
                m = r[j];
        double s = 0.0;
        for (int j = 0; j < c; j++)
            s += exp(beta * (r[j] - m));
        total += log(s) - beta * (r[labels[i]] - m);
    }
    return total / (double)n;
}

double tdm_cal_nll(const float *logits, const int32_t *labels, int64_t n, int c, double t)
{
    return n > 0 ? nll_beta(logits, labels, n, c, 1.0 / t) : 0.0;
}

tdm_status tdm_cal_fit_temperature(const float *logits, const int32_t *labels, int64_t n, int c,
                                   double *t_out, tdm_err *err)
{
    if (n < 1 || c < 2)
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "temperature fit needs at least 1 example and 2 classes (got %lld, %d)",
                        (long long)n, c);
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= c)
            return tdm_errf(err, TDM_ERR_INVALID_ARG,
                            "temperature fit: label %d of example %lld is outside 0..%d",
                            (int)labels[i], (long long)i, c - 1);
    for (int64_t i = 0; i < n * c; i++)
        if (!isfinite(logits[i]))
            return tdm_errf(err, TDM_ERR_INVALID_ARG,
                            "temperature fit: logit %lld of example %lld is not finite",
                            (long long)(i % c), (long long)(i / c));
    /* Golden-section search of u = log(beta) over [log 0.01, log 100]. */
    const double g = (sqrt(5.0) - 1.0) / 2.0;
    double a = log(0.01), b = log(100.0);
    double x1 = b - g * (b - a), x2 = a + g * (b - a);
    double f1 = nll_beta(logits, labels, n, c, exp(x1));
    double f2 = nll_beta(logits, labels, n, c, exp(x2));
    for (int it = 0; it < 100 && b - a > 1e-6; it++) {
        if (f1 <= f2) {
            b = x2;
            x2 = x1;
            f2 = f1;
            x1 = b - g * (b - a);
            f1 = nll_beta(logits, labels, n, c, exp(x1));
        } else {
            a = x1;
            x1 = x2;
            f1 = f2;
            x2 = a + g * (b - a);
            f2 = nll_beta(logits, labels, n, c, exp(x2));
        }
    }
    *t_out = 1.0 / exp((a + b) / 2.0);
    return TDM_OK;
}

void tdm_cal_predict(const float *logits, int64_t n, int c, double t, tdm_confidence kind,
                     int32_t *pred, float *maxprob, float *conf)
{
    const double log_c = log((double)c);
    for (int64_t i = 0; i < n; i++) {
        const float *r = logits + i * c;
        int arg = 0;
        for (int j = 1; j < c; j++)
            if (r[j] > r[arg])
                arg = j;
        double m = r[arg], s = 0.0;
        for (int j = 0; j < c; j++)
            s += exp((r[j] - m) / t);
        double pmax = 1.0 / s;
        double cf = pmax;
        if (kind == TDM_CONF_ENTROPY) {
            double h = 0.0;
            for (int j = 0; j < c; j++) {
                double p = exp((r[j] - m) / t) / s;
                if (p > 0.0)
                    h -= p * log(p);
            }
            cf = 1.0 - h / log_c;
            if (cf < 0.0)
                cf = 0.0;
        }
        if (pred)
            pred[i] = arg;
        if (maxprob)
            maxprob[i] = (float)pmax;
        if (conf)
            conf[i] = (float)cf;
    }
}

void tdm_cal_ece(const float *conf, const bool *correct, int64_t n, double *ece, double *mce)
{
    int64_t cnt[TDM_CAL_BINS] = {0};
    double sum_conf[TDM_CAL_BINS] = {0}, sum_acc[TDM_CAL_BINS] = {0};
    for (int64_t i = 0; i < n; i++) {
        double v = conf[i];
        if (!(v >= 0.0)) /* NaN from non-finite logits counts as no confidence */
            v = 0.0;
        if (v > 1.0)
            v = 1.0;
        int b = (int)(v * TDM_CAL_BINS);
        /* bins are (lo, hi]; v == 0 goes to the first, v == 1 to the last */
        if (b > 0 && v * TDM_CAL_BINS == (double)b)
            b--;
        if (b < 0)
            b = 0;
        if (b >= TDM_CAL_BINS)
            b = TDM_CAL_BINS - 1;
        cnt[b]++;
        sum_conf[b] += v;
        sum_acc[b] += correct[i] ? 1.0 : 0.0;
    }
    double e = 0.0, m = 0.0;
    for (int b = 0; b < TDM_CAL_BINS; b++) {
        if (cnt[b] == 0)
            continue;
        double gap = fabs(sum_acc[b] / (double)cnt[b] - sum_conf[b] / (double)cnt[b]);
        e += gap * (double)cnt[b] / (double)n;
        if (gap > m)
            m = gap;
    }
    *ece = n > 0 ? e : 0.0;
    *mce = m;
}

void tdm_cascade_apply(int n_exits, const float *const *conf, const bool *const *correct,
                       const bool *final_correct, int64_t n, const double *thr,
                       tdm_cascade_result *res)
{
    memset(res, 0, sizeof *res);
    res->n = n;
    int64_t right = 0, final_right = 0;
    for (int64_t i = 0; i < n; i++) {
        final_right += final_correct[i];
        int k = 0;
        while (k < n_exits && !((double)conf[k][i] >= thr[k]))
            k++;
        if (k < n_exits) {
            res->exited[k]++;
            res->correct[k] += correct[k][i];
            right += correct[k][i];
        } else {
            res->final_taken++;
            res->final_correct_taken += final_correct[i];
            right += final_correct[i];
        }
    }
    if (n > 0) {
        res->accuracy = (double)right / (double)n;
        res->final_accuracy = (double)final_right / (double)n;
        res->loss = res->final_accuracy - res->accuracy;
        res->exit_rate = (double)(n - res->final_taken) / (double)n;
    }
}

tdm_status tdm_cal_choose_temperature(const float *logits, const int32_t *labels, int64_t n, int c,
                                      double *t_out, double *t_nll, tdm_err *err)
{
    double t;
    tdm_status st = tdm_cal_fit_temperature(logits, labels, n, c, &t, err);
    if (st != TDM_OK)
        return st;
    if (t_nll)
        *t_nll = t;
    float *c1 = malloc((size_t)n * sizeof *c1), *ct = malloc((size_t)n * sizeof *ct);
    int32_t *pred = malloc((size_t)n * sizeof *pred);
    bool *ok = malloc((size_t)n * sizeof *ok);
    if (!c1 || !ct || !pred || !ok) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "temperature: out of memory for %lld examples",
                      (long long)n);
        goto done;
    }
    /* The prediction does not depend on T > 0, only the confidence does. */
    tdm_cal_predict(logits, n, c, 1.0, TDM_CONF_MAXPROB, pred, c1, NULL);
    tdm_cal_predict(logits, n, c, t, TDM_CONF_MAXPROB, NULL, ct, NULL);
    for (int64_t i = 0; i < n; i++)
        ok[i] = pred[i] == labels[i];
    /* Scaling must earn its place on the calibration split; otherwise T = 1. */
    double e1, et, mce;
    tdm_cal_ece(c1, ok, n, &e1, &mce);
    tdm_cal_ece(ct, ok, n, &et, &mce);
    *t_out = et < e1 ? t : 1.0;
done:
    free(c1);
    free(ct);
    free(pred);
    free(ok);
    return st;
}

typedef struct cand {
    float conf;
    int64_t idx;
} cand;

static int cand_desc(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->conf != y->conf)
        return x->conf > y->conf ? -1 : 1;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

/*
 * Standard error of the count of extra errors (sum of d_i in {-1, 0, 1} over
 * the n inputs, d_i = final right - cascade right) as seen on new data of the
 * same size: n times the sample variance of d, from the sum e of d and the
 * number of disagreements (sum of d_i^2).
 */
static double extra_sd(int64_t e, int64_t disagreements, int64_t n)
{
    double v = (double)disagreements - (double)e * (double)e / (double)n;
    return v > 0.0 ? sqrt(v) : 0.0;
}

/*
 * Greedy thresholds allowing at most budget more errors than the final
 * output, z standard errors of the estimate included (z = 0: the count as
 * observed). Returns the number of inputs that exit early, or -1 on NOMEM.
 */
static int64_t greedy_budget(int n_exits, const float *const *conf, const bool *const *correct,
                             const bool *final_correct, int64_t n, int64_t budget, double z,
                             double *thr)
{
    bool *gone = calloc((size_t)n + 1, sizeof *gone);
    cand *cs = malloc(((size_t)n + 1) * sizeof *cs);
    if (!gone || !cs) {
        free(gone);
        free(cs);
        return -1;
    }
    int64_t extra_errors = 0, n_gone = 0, disagree = 0;
    for (int k = 0; k < n_exits; k++) {
        int64_t m = 0;
        for (int64_t i = 0; i < n; i++)
            if (!gone[i])
                cs[m++] = (cand){conf[k][i], i};
        qsort(cs, (size_t)m, sizeof *cs, cand_desc);
        /* Errors added by taking the top j: sum of final_correct - correct_k. */
        int64_t delta = 0, dis = 0, best = 0;
        for (int64_t j = 0; j < m; j++) {
            int64_t i = cs[j].idx;
            int64_t d = (int64_t)final_correct[i] - (int64_t)correct[k][i];
            delta += d;
            dis += d != 0;
            bool boundary = j + 1 == m || cs[j + 1].conf < cs[j].conf;
            if (!boundary)
                continue;
            /* Stop at the first threshold over budget: going further would rely on later
             * lucky inputs cancelling errors, which does not carry over to new data. */
            if ((double)(extra_errors + delta) +
                    z * extra_sd(extra_errors + delta, disagree + dis, n) >
                (double)budget)
                break;
            best = j + 1;
        }
        if (best == 0) {
            thr[k] = 2.0;
            continue;
        }
        thr[k] = cs[best - 1].conf;
        for (int64_t j = 0; j < best; j++) {
            int64_t i = cs[j].idx;
            gone[i] = true;
            extra_errors += (int64_t)final_correct[i] - (int64_t)correct[k][i];
            disagree += final_correct[i] != correct[k][i];
        }
        n_gone += best;
    }
    free(gone);
    free(cs);
    return n_gone;
}

static tdm_status check_exits(int n_exits, int64_t n, tdm_err *err)
{
    if (n_exits < 1 || n_exits > TDM_CAL_MAX_EXITS)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "threshold selection: %d exits (1..%d allowed)",
                        n_exits, TDM_CAL_MAX_EXITS);
    if (n < 1)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "threshold selection: no calibration inputs");
    return TDM_OK;
}

tdm_status tdm_cascade_select_loss(int n_exits, const float *const *conf,
                                   const bool *const *correct, const bool *final_correct, int64_t n,
                                   double max_loss, double z, double *thr, tdm_err *err)
{
    tdm_status st = check_exits(n_exits, n, err);
    if (st != TDM_OK)
        return st;
    if (!(max_loss >= 0.0 && max_loss <= 1.0))
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "threshold selection: accuracy loss %g is not in [0, 1]", max_loss);
    if (!(z >= 0.0 && z <= 10.0))
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "threshold selection: margin %g standard errors is not in [0, 10]", z);
    int64_t budget = (int64_t)floor(max_loss * (double)n + 1e-9);
    if (greedy_budget(n_exits, conf, correct, final_correct, n, budget, z, thr) < 0)
        return tdm_errf(err, TDM_ERR_NOMEM, "threshold selection: out of memory");
    return TDM_OK;
}

tdm_status tdm_cascade_select_rate(int n_exits, const float *const *conf,
                                   const bool *const *correct, const bool *final_correct, int64_t n,
                                   double min_rate, double *thr, tdm_err *err)
{
    tdm_status st = check_exits(n_exits, n, err);
    if (st != TDM_OK)
        return st;
    if (!(min_rate >= 0.0 && min_rate <= 1.0))
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "threshold selection: exit rate %g is not in [0, 1]", min_rate);
    int64_t need = (int64_t)ceil(min_rate * (double)n - 1e-9);
    /* Smallest budget (in extra errors) whose greedy thresholds reach the rate; budget n lets
     * every input leave at the first exit, so the search always ends. */
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int64_t got = greedy_budget(n_exits, conf, correct, final_correct, n, mid, 0.0, thr);
        if (got < 0)
            return tdm_errf(err, TDM_ERR_NOMEM, "threshold selection: out of memory");
        if (got >= need)
            hi = mid;
        else
            lo = mid + 1;
    }
    /* Greedy exit counts are not strictly monotone in the budget: step up until reached. */
    for (int64_t b = lo; b <= n; b++) {
        int64_t got = greedy_budget(n_exits, conf, correct, final_correct, n, b, 0.0, thr);
        if (got < 0)
            return tdm_errf(err, TDM_ERR_NOMEM, "threshold selection: out of memory");
        if (got >= need)
            return TDM_OK;
    }
    return tdm_errf(err, TDM_ERR_INVALID_ARG, "threshold selection: exit rate %g is unreachable",
                    min_rate);
}
