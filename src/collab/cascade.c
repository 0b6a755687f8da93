/*
 * Edge-cloud cascade operating points from precomputed predictions (see
 * cascade.h for the why). Everything is counting over arrays: O(n) per
 * threshold, one O(n log n) sort for the sweep by fraction.
 */
#include "collab/cascade.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

tdm_status tdm_cascade_confidence(const float *logits, int64_t n, int64_t k, double temperature,
                                  double *conf, int32_t *pred, tdm_err *err)
{
    if (k < 1 || k > INT32_MAX)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "cascade: %lld classes per image", (long long)k);
    if (!isfinite(temperature) || !(temperature > 0))
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "cascade: temperature %g must be a positive number", temperature);
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * k;
        int64_t best = 0;
        for (int64_t j = 0; j < k; j++) {
            if (!isfinite(z[j]))
                return tdm_errf(err, TDM_ERR_INVALID_ARG,
                                "cascade: image %lld has a non-finite logit (class %lld)",
                                (long long)i, (long long)j);
            if (z[j] > z[best])
                best = j;
        }
        /* max softmax = 1 / sum_j exp((z_j - z_max) / T), stable for any logits */
        double sum = 0.0;
        for (int64_t j = 0; j < k; j++)
            sum += exp(((double)z[j] - (double)z[best]) / temperature);
        conf[i] = 1.0 / sum;
        pred[i] = (int32_t)best;
    }
    return TDM_OK;
}

void tdm_cascade_reference(const tdm_cascade_data *d, double *edge_acc, double *cloud_acc)
{
    int64_t e = 0, c = 0;
    for (int64_t i = 0; i < d->n; i++) {
        e += d->edge_pred[i] == d->labels[i];
        c += d->cloud_pred[i] == d->labels[i];
    }
    *edge_acc = d->n > 0 ? (double)e / (double)d->n : NAN;
    *cloud_acc = d->n > 0 ? (double)c / (double)d->n : NAN;
}

/* Fills the derived fields of p from its counts. */
static void finish(const tdm_cascade_data *d, tdm_cascade_point *p)
{
    const double n = (double)d->n;
    p->frac_edge = d->n > 0 ? (double)p->n_edge / n : NAN;
    p->frac_cloud = d->n > 0 ? (double)p->n_cloud / n : NAN;
    p->accuracy = d->n > 0 ? (double)p->correct / n : NAN;
    p->edge_kept_acc = p->n_edge > 0 ? (double)p->edge_correct / (double)p->n_edge : NAN;
    p->mean_flops = d->edge_flops + (d->n > 0 ? p->frac_cloud * d->cloud_flops : 0.0);
}

tdm_status tdm_cascade_thresholds(const tdm_cascade_data *d, const double *thr, int n_thr,
                                  tdm_cascade_point *out, tdm_err *err)
{
    for (int t = 0; t < n_thr; t++)
        if (isnan(thr[t]))
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "cascade: threshold %d is not a number",
                            t + 1);
    for (int t = 0; t < n_thr; t++) {
        tdm_cascade_point p = {.threshold = thr[t]};
        for (int64_t i = 0; i < d->n; i++) {
            if (d->edge_conf[i] >= thr[t]) {
                p.n_edge++;
                p.edge_correct += d->edge_pred[i] == d->labels[i];
            } else {
                p.n_cloud++;
                p.correct += d->cloud_pred[i] == d->labels[i];
            }
        }
        p.correct += p.edge_correct;
        finish(d, &p);
        out[t] = p;
    }
    return TDM_OK;
}

typedef struct ranked {
    double conf;
    int64_t idx;
} ranked;

static int by_conf(const void *a, const void *b)
{
    const ranked *x = a, *y = b;
    if (x->conf != y->conf)
        return x->conf < y->conf ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* round(f * n) for f in [0, 1]; false when f is outside or not a number. */
static bool count_of(double f, int64_t n, int64_t *m)
{
    if (!(f >= 0.0 && f <= 1.0))
        return false;
    *m = (int64_t)llround(f * (double)n);
    if (*m > n)
        *m = n;
    return true;
}

tdm_status tdm_cascade_fractions(const tdm_cascade_data *d, const double *frac, int n_frac,
                                 tdm_cascade_point *out, tdm_err *err)
{
    int64_t m = 0;
    for (int j = 0; j < n_frac; j++)
        if (!count_of(frac[j], d->n, &m))
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "cascade: fraction %g is not in [0, 1]",
                            frac[j]);
    ranked *r = malloc((size_t)(d->n > 0 ? d->n : 1) * sizeof *r);
    int64_t *cloud_ok = malloc((size_t)(d->n + 1) * sizeof *cloud_ok);
    int64_t *edge_ok = malloc((size_t)(d->n + 1) * sizeof *edge_ok);
    if (r == NULL || cloud_ok == NULL || edge_ok == NULL) {
        free(r);
        free(cloud_ok);
        free(edge_ok);
        return tdm_errf(err, TDM_ERR_NOMEM, "cascade: out of memory for %lld images",
                        (long long)d->n);
    }
    for (int64_t i = 0; i < d->n; i++)
        r[i] = (ranked){d->edge_conf[i], i};
    qsort(r, (size_t)d->n, sizeof *r, by_conf);
    /* prefix sums over the ranking: correct answers of the cloud on the first m, and of the
     * edge on the first m (the edge keeps the rest) */
    cloud_ok[0] = edge_ok[0] = 0;
    for (int64_t i = 0; i < d->n; i++) {
        int64_t k = r[i].idx;
        cloud_ok[i + 1] = cloud_ok[i] + (d->cloud_pred[k] == d->labels[k]);
        edge_ok[i + 1] = edge_ok[i] + (d->edge_pred[k] == d->labels[k]);
    }
    for (int j = 0; j < n_frac; j++) {
        (void)count_of(frac[j], d->n, &m);
        tdm_cascade_point p = {.threshold = m < d->n ? r[m].conf : NAN};
        p.n_cloud = m;
        p.n_edge = d->n - m;
        p.edge_correct = edge_ok[d->n] - edge_ok[m];
        p.correct = cloud_ok[m] + p.edge_correct;
        finish(d, &p);
        out[j] = p;
    }
    free(r);
    free(cloud_ok);
    free(edge_ok);
    return TDM_OK;
}

tdm_status tdm_cascade_oracle(const tdm_cascade_data *d, const double *frac, int n_frac,
                              double *acc_out, tdm_err *err)
{
    int64_t edge_ok = 0, gain = 0, m = 0;
    for (int j = 0; j < n_frac; j++)
        if (!count_of(frac[j], d->n, &m))
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "cascade: fraction %g is not in [0, 1]",
                            frac[j]);
    for (int64_t i = 0; i < d->n; i++) {
        bool e = d->edge_pred[i] == d->labels[i], c = d->cloud_pred[i] == d->labels[i];
        edge_ok += e;
        gain += !e && c;
    }
    for (int j = 0; j < n_frac; j++) {
        (void)count_of(frac[j], d->n, &m);
        acc_out[j] = d->n > 0 ? (double)(edge_ok + (m < gain ? m : gain)) / (double)d->n : NAN;
    }
    return TDM_OK;
}
