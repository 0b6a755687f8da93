/*
 * Edge-cloud cascade: the edge model answers when it is confident, the cloud
 * model answers the rest.
 *
 * Why a separate, data-only module: the decision is a pure function of the
 * two models' outputs, so both models are run over the dataset once and every
 * operating point (a confidence threshold, or a fraction of images sent) is
 * then computed from arrays in microseconds. That keeps the sweep exact (each
 * point sees the same predictions) and lets the tests drive the selection
 * logic with synthetic logits.
 *
 * Confidence is the maximum softmax probability of the edge's logits divided
 * by a temperature T (T = 1: plain softmax; a calibrated T from temperature
 * scaling makes thresholds comparable across models). An image stays at the
 * edge when confidence >= threshold, so threshold 0 keeps everything at the
 * edge and any threshold above 1 sends everything to the cloud.
 *
 * The sweep by fraction ranks images by confidence (lowest first, ties by
 * index) and sends the first round(f * n): the curve a threshold sweep traces,
 * sampled at even fractions for plotting. The oracle curve is the best any
 * selector could do with the same two models (send the images the edge gets
 * wrong and the cloud gets right first); it bounds what a better confidence
 * measure could gain.
 */
#ifndef TANDEM_COLLAB_CASCADE_H
#define TANDEM_COLLAB_CASCADE_H

#include <stdint.h>

#include "tandem/status.h"

/*
 * Per image i of n: conf[i] = max softmax(logits[i, :] / temperature) and
 * pred[i] = argmax (first maximum on ties). logits is row-major [n, k].
 * Fails on k < 1, a temperature that is not finite and > 0, or a non-finite
 * logit (naming the image).
 */
tdm_status tdm_cascade_confidence(const float *logits, int64_t n, int64_t k, double temperature,
                                  double *conf, int32_t *pred, tdm_err *err);

/* What the cascade is computed from (all arrays of n entries, borrowed). */
typedef struct tdm_cascade_data {
    int64_t n;
    const double *edge_conf;
    const int32_t *edge_pred;
    const int32_t *cloud_pred;
    const int32_t *labels;
    double edge_flops;  /* per image, paid for every image; 0 when unknown */
    double cloud_flops; /* per image, paid for the images sent */
} tdm_cascade_data;

/* One operating point. */
typedef struct tdm_cascade_point {
    double threshold;     /* the threshold used; NAN for a point chosen by fraction */
    int64_t n_edge;       /* images answered at the edge */
    int64_t n_cloud;      /* images sent to the cloud */
    int64_t correct;      /* correct answers of the cascade */
    int64_t edge_correct; /* of which answered at the edge */
    double frac_edge;     /* n_edge / n */
    double frac_cloud;    /* n_cloud / n */
    double accuracy;      /* correct / n */
    double edge_kept_acc; /* accuracy on the images kept at the edge (NAN when none) */
    double mean_flops;    /* edge_flops + frac_cloud * cloud_flops */
} tdm_cascade_point;

/* Accuracy of the edge alone and of the cloud alone over all n images. */
void tdm_cascade_reference(const tdm_cascade_data *d, double *edge_acc, double *cloud_acc);

/* The cascade at each of n_thr thresholds (any order; NAN rejected). */
tdm_status tdm_cascade_thresholds(const tdm_cascade_data *d, const double *thr, int n_thr,
                                  tdm_cascade_point *out, tdm_err *err);

/*
 * The cascade that sends the round(frac[j] * n) least confident images, for
 * each frac[j] in [0, 1]; threshold is reported as the lowest confidence kept
 * at the edge (NAN when all are sent).
 */
tdm_status tdm_cascade_fractions(const tdm_cascade_data *d, const double *frac, int n_frac,
                                 tdm_cascade_point *out, tdm_err *err);

/* Oracle accuracy when round(frac[j] * n) images may be sent: acc_out[j]. */
tdm_status tdm_cascade_oracle(const tdm_cascade_data *d, const double *frac, int n_frac,
                              double *acc_out, tdm_err *err);

#endif
