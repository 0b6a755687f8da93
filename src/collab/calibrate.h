/*
 * Calibration of exit classifiers and the choice of exit thresholds.
 *
 * An early exit is only useful if its confidence means something: an input
 * leaves at exit k when conf_k >= threshold_k, so thresholds are chosen on a
 * calibration split where the outcome is known, and checked on a disjoint
 * test split. Three pieces live here, all plain functions over arrays so the
 * tests can drive them with synthetic data:
 *
 *  - temperature scaling: one scalar T per exit, logits / T, fitted by
 *    minimising the negative log-likelihood. NLL is convex in beta = 1/T, so a
 *    golden-section search over log(beta) finds the minimum without
 *    gradients or step sizes to tune; the fit is kept only when it lowers
 *    the calibration set's ECE (else T = 1);
 *  - expected and maximum calibration error over 15 equal-width bins of the
 *    max-softmax probability (Guo et al. 2017);
 *  - threshold selection for a cascade of exits followed by the final
 *    output: greedy from the earliest exit, each exit takes as many of the
 *    still-undecided inputs as it can while the accuracy loss of the whole
 *    cascade versus the final output stays within the budget. Giving the
 *    budget to the earliest exits first maximises compute saved. The
 *    budget can include a margin of z standard errors of the observed loss,
 *    so that it holds on new data and not only on the set that chose it. An
 *    "exit rate >= Y%" target searches for the smallest loss budget whose
 *    greedy thresholds reach the rate.
 */
#ifndef TANDEM_COLLAB_CALIBRATE_H
#define TANDEM_COLLAB_CALIBRATE_H

#include <stdbool.h>
#include <stdint.h>

#include "tandem/exits.h"
#include "tandem/status.h"

#define TDM_CAL_BINS 15

/* In place: softmax of each row of x [n, c] after dividing by temperature t. */
void tdm_cal_softmax(float *x, int64_t n, int c, double t);

/* Mean negative log-likelihood of labels under softmax(logits / t). */
double tdm_cal_nll(const float *logits, const int32_t *labels, int64_t n, int c, double t);

/*
 * Fits the temperature minimising NLL on (logits, labels), searching
 * T in [0.01, 100]. Returns TDM_ERR_INVALID_ARG for n < 1, c < 2 or a label
 * outside 0..c-1.
 */
tdm_status tdm_cal_fit_temperature(const float *logits, const int32_t *labels, int64_t n, int c,
                                   double *t_out, tdm_err *err);

/*
 * The temperature of an exit, chosen on a calibration set (logits, labels):
 * the NLL minimiser when it lowers this set's ECE, otherwise T = 1. NLL
 * weighs confident mistakes heavily: a head already calibrated to a percent
 * or two in its crowded top bins (early stopping on validation NLL does
 * that) can get an NLL-optimal T that spreads those bins and raises its ECE;
 * such a T is refused rather than replaced by an ECE-optimal one, which
 * would fit the noise of a 15-bin ECE. *t_nll (may be NULL) receives the NLL
 * minimiser; the errors are tdm_cal_fit_temperature's (and NOMEM).
 */
tdm_status tdm_cal_choose_temperature(const float *logits, const int32_t *labels, int64_t n, int c,
                                      double *t_out, double *t_nll, tdm_err *err);

/*
 * Per row of logits [n, c] at temperature t: the predicted class (first
 * maximum), its probability and the confidence of the given kind. Any output
 * pointer may be NULL.
 */
void tdm_cal_predict(const float *logits, int64_t n, int c, double t, tdm_confidence kind,
                     int32_t *pred, float *maxprob, float *conf);

/* ECE and MCE over TDM_CAL_BINS equal-width bins of conf in [0, 1]. */
void tdm_cal_ece(const float *conf, const bool *correct, int64_t n, double *ece, double *mce);

#define TDM_CAL_MAX_EXITS 16

/* What happens to a set of inputs under a cascade of thresholds. */
typedef struct tdm_cascade_result {
    int64_t n;
    int64_t exited[TDM_CAL_MAX_EXITS];  /* inputs taking exit k (k < n_exits); the rest reach the
                                           final */
    int64_t correct[TDM_CAL_MAX_EXITS]; /* of those, correctly classified */
    int64_t final_taken;                /* inputs reaching the final output */
    int64_t final_correct_taken;
    double accuracy;       /* of the cascade */
    double final_accuracy; /* of the final output on all inputs */
    double loss;           /* final_accuracy - accuracy, as a fraction */
    double exit_rate;      /* fraction leaving at some early exit */
} tdm_cascade_result;

/*
 * Applies thresholds: each input leaves at the first exit k with
 * conf[k][i] >= thr[k]. conf[k] and correct[k] have n entries per exit;
 * final_correct says whether the final output is right for each input.
 */
void tdm_cascade_apply(int n_exits, const float *const *conf, const bool *const *correct,
                       const bool *final_correct, int64_t n, const double *thr,
                       tdm_cascade_result *res);

/*
 * Chooses thresholds thr[k] (a value above 1 disables an exit) so that the
 * cascade's accuracy loss versus the final output on this set is at most
 * max_loss (a fraction, e.g. 0.01), greedily from the earliest exit. With
 * z > 0 the loss plus z standard errors of its estimate must stay within
 * max_loss: the loss observed on a calibration split is a noisy sample, and
 * the threshold the greedy stops at is exactly where that noise is largest,
 * so z = 1.645 asks for the budget to hold on new data with about 95%
 * one-sided confidence. z in [0, 10].
 */
tdm_status tdm_cascade_select_loss(int n_exits, const float *const *conf,
                                   const bool *const *correct, const bool *final_correct, int64_t n,
                                   double max_loss, double z, double *thr, tdm_err *err);

/*
 * Chooses thresholds reaching an exit rate of at least min_rate (fraction)
 * with the smallest accuracy loss the greedy search finds; fails with
 * TDM_ERR_INVALID_ARG when even "every input exits" cannot reach the rate
 * (impossible only for min_rate > 1).
 */
tdm_status tdm_cascade_select_rate(int n_exits, const float *const *conf,
                                   const bool *const *correct, const bool *final_correct, int64_t n,
                                   double min_rate, double *thr, tdm_err *err);

#endif
