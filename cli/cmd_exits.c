/*
 * tandem exits: fit early-exit heads on a model, calibrate them, choose
 * thresholds and measure what the exits save.
 *
 * The labelled set is shuffled (seeded) and split in two disjoint parts, so
 * no number printed is measured on data that chose it: [0, split) is the calibration
 * split (temperatures and thresholds are fitted there; with --fit-on cal the
 * heads are also trained on its first half and calibrated on the second),
 * images [split, N) are the test split every reported figure comes from.
 * With --fit-on train the heads learn from the dataset's training split
 * instead (Fashion-MNIST has one; the MNIST files in ../shared do not).
 *
 * Two kinds of exits:
 *   fit  --at C1,C2   heads fitted here on pooled features of cut tensors;
 *   eval --heads F    the same heads read back from their file (--refit:
 *                     temperatures and thresholds fitted again);
 *   eval --outputs A,B,FINAL or --manifest M   BranchyNet-style models whose
 *                     exits are graph outputs: only temperatures and
 *                     thresholds are fitted.
 * Thresholds keep the calibration loss plus --loss-margin standard errors
 * within --max-loss, so that the budget also holds on the test split.
 * The report gives, per exit, its rate and accuracy on the test split, ECE
 * and MCE before and after temperature scaling, and for the whole cascade
 * the accuracy, the loss versus the final output and the mean FLOPs saved
 * (backbone up to the deepest exit reached plus every head evaluated,
 * against the plain model; src/collab/flops.h counts the backbone).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/json.h"
#include "base/sha256.h"
#include "cli.h"
#include "cli_util.h"
#include "collab/calibrate.h"
#include "collab/flops.h"
#include "tandem/data.h"
#include "tandem/exits.h"
#include "tandem/tandem.h"

#define MAXK TDM_EXITS_MAX

static void exits_usage(FILE *f)
{
    fprintf(f,
            "usage: tandem exits fit MODEL --at C1,C2,... --data D [--pool P[,P...]]\n"
            "                        [--hidden 0|H] [--fit-on cal|train] [--split 5000]\n"
            "                        [--max-loss 1.0 | --min-exit-rate 40] [--out heads.tdmx]\n"
            "       tandem exits eval MODEL --heads FILE --data D [--split 5000]\n"
            "                        [--refit [--max-loss X | --min-exit-rate Y] [--out F]]\n"
            "       tandem exits eval MODEL --outputs E1,E2,...,FINAL --data D [--split 5000]\n"
            "                        [--max-loss X | --min-exit-rate Y]\n"
            "       tandem exits eval --manifest manifest.json [--model edge] --data D ...\n"
            "\n"
            "Early exits: fit classifier heads at cut tensors of MODEL (fit), or evaluate saved\n"
            "heads or a model whose exits are outputs (eval). Images [0, split) calibrate\n"
            "(temperature per exit, thresholds), images [split, N) are the test split.\n"
            "  --at C1,...         cut tensor names, shallowest first (tandem info --optimized)\n"
            "  --data D            mnist, fashion (or fashion-mnist), cifar, or a file/folder\n"
            "                      (.csv: CIFAR layout; otherwise MNIST idx)\n"
            "  --pool P            gap, gridK (KxK average grid), flatten, tokens or auto,\n"
            "                      one for all cuts or one per cut (default auto)\n"
            "  --hidden H          0: softmax regression (default); H: one ReLU layer of H units\n"
            "  --fit-on cal|train  train heads on half of the calibration split (default) or on\n"
            "                      the dataset's training split\n"
            "  --train-limit N     with --fit-on train, only the first N training images\n"
            "  --split S           calibration images (default 5000)\n"
            "  --split-seed S      the set is shuffled with seed S before the split (default 1;\n"
            "                      0 keeps file order); eval must use the seed fit used\n"
            "  --max-loss X        thresholds keep the accuracy loss vs the final output <= X%%\n"
            "                      on the calibration split (default 1.0)\n"
            "  --loss-margin Z     ... plus Z standard errors of that split's loss estimate\n"
            "                      (default 2.33: the budget holds on a test split of the same\n"
            "                      size with about 95%% confidence; 0: no margin)\n"
            "  --min-exit-rate Y   instead: at least Y%% of inputs exit early\n"
            "  --confidence C      maxprob (default) or entropy (1 - H/log C)\n"
            "  --out FILE          write the heads (tdm-exits v1 JSON)\n"
            "  --refit             eval --heads: fit temperatures and thresholds again on the\n"
            "                      calibration split (heads trained on other data, --fit-on\n"
            "                      train), and with --out write the heads file with them\n"
            "  --epochs N, --lr R, --l2 R, --seed S   head training (60, 1e-3, 1e-4, 1)\n"
            "  --limit N           only the first N images of the evaluation set\n"
            "  --threads T         worker threads (default 1)\n"
            "  --json              one JSON object instead of tables\n");
}

typedef struct exits_opts {
    const char *sub, *model, *data, *heads, *outputs, *manifest, *manifest_model, *out;
    char *cuts[MAXK];
    int n_cuts;
    tdm_exit_pool pool[MAXK];
    int grid[MAXK];
    int n_pool;
    int64_t split, split_seed, hidden, epochs, seed, limit, train_limit, threads;
    double lr, l2, max_loss, min_rate, margin;
    bool fit_on_train, json, refit;
    tdm_confidence conf;
} exits_opts;

/* Splits "a,b,c" into malloc'd strings; returns the count or -1. */
static int split_list(const char *s, char **out, int max)
{
    int n = 0;
    const char *p = s;
    for (;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || n == max)
            goto bad;
        out[n] = malloc(len + 1);
        if (!out[n])
            goto bad;
        memcpy(out[n], p, len);
        out[n++][len] = '\0';
        if (!e)
            return n;
        p = e + 1;
    }
bad:
    for (int i = 0; i < n; i++)
        free(out[i]);
    return -1;
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno != 0 || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

/* ---- the evaluation shared by fit and eval ---------------------------------------- */

typedef struct exit_set {
    int n;
    const char *name[MAXK]; /* cut tensor or exit output */
    const char *final_name;
    int C;
    int64_t n_cal, n_test;
    const int32_t *y_cal, *y_test;
    float *cal[MAXK], *test[MAXK]; /* logits, owned */
    float *cal_final, *test_final; /* logits, borrowed */
    /* The final output's temperature needs no head training, so it is fitted on the whole
     * calibration split even when the heads trained on its first half (NULL: cal_final). */
    const float *tfit_final;
    const int32_t *y_tfit_final;
    int64_t n_tfit_final;
    double T[MAXK], thr[MAXK], T_final;
    double T_nll[MAXK], T_nll_final; /* NLL minimisers (T is the one kept, see calibrate.h) */
    double head_flops[MAXK];         /* per input, 0 for output exits */
    double until_flops[MAXK];        /* backbone to compute targets 0..k */
    double full_flops;               /* the plain model */
    bool flops_ok;
} exit_set;

static void exit_set_free(exit_set *es)
{
    for (int k = 0; k < es->n; k++) {
        free(es->cal[k]);
        free(es->test[k]);
    }
}

typedef struct split_stats {
    double acc; /* of this exit alone on all test inputs */
    double ece0, mce0, ece1, mce1;
} split_stats;

/* Confidence and correctness of logits at temperature t. */
static void conf_correct(const float *logits, int64_t n, int C, double t, tdm_confidence kind,
                         const int32_t *y, float *conf, float *maxp, bool *ok, int32_t *pred)
{
    tdm_cal_predict(logits, n, C, t, kind, pred, maxp, conf);
    for (int64_t i = 0; i < n; i++)
        ok[i] = pred[i] == y[i];
}

typedef struct scratch {
    float *conf[MAXK + 1], *maxp;
    bool *ok[MAXK + 1];
    int32_t *pred;
} scratch;

static bool scratch_alloc(scratch *s, int n_exits, int64_t n)
{
    memset(s, 0, sizeof *s);
    bool good = true;
    for (int k = 0; k <= n_exits; k++) {
        s->conf[k] = malloc((size_t)n * sizeof(float));
        s->ok[k] = malloc((size_t)n * sizeof(bool));
        good = good && s->conf[k] && s->ok[k];
    }
    s->maxp = malloc((size_t)n * sizeof(float));
    s->pred = malloc((size_t)n * sizeof(int32_t));
    return good && s->maxp && s->pred;
}

static void scratch_free(scratch *s)
{
    for (int k = 0; k <= MAXK; k++) {
        free(s->conf[k]);
        free(s->ok[k]);
    }
    free(s->maxp);
    free(s->pred);
}

/* Fits temperatures (fit_t) and thresholds (select) on the calibration split. */
static int calibrate_set(exit_set *es, bool fit_t, bool select, tdm_confidence kind,
                         double max_loss, double margin, double min_rate)
{
    tdm_err err = {{0}};
    if (fit_t) {
        for (int k = 0; k < es->n; k++)
            if (tdm_cal_choose_temperature(es->cal[k], es->y_cal, es->n_cal, es->C, &es->T[k],
                                           &es->T_nll[k], &err) != TDM_OK)
                return tdm_cli_fail("exits", TDM_EXIT_FAIL, "exit '%s': %s", es->name[k], err.msg);
    }
    const float *tf = es->tfit_final ? es->tfit_final : es->cal_final;
    const int32_t *ytf = es->tfit_final ? es->y_tfit_final : es->y_cal;
    int64_t ntf = es->tfit_final ? es->n_tfit_final : es->n_cal;
    if (tdm_cal_choose_temperature(tf, ytf, ntf, es->C, &es->T_final, &es->T_nll_final, &err) !=
        TDM_OK)
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "final output: %s", err.msg);
    if (!select)
        return TDM_EXIT_OK;
    scratch s;
    if (!scratch_alloc(&s, es->n, es->n_cal)) {
        scratch_free(&s);
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "out of memory");
    }
    for (int k = 0; k < es->n; k++)
        conf_correct(es->cal[k], es->n_cal, es->C, es->T[k], kind, es->y_cal, s.conf[k], s.maxp,
                     s.ok[k], s.pred);
    conf_correct(es->cal_final, es->n_cal, es->C, 1.0, kind, es->y_cal, s.conf[es->n], s.maxp,
                 s.ok[es->n], s.pred);
    tdm_status st = min_rate >= 0.0
                        ? tdm_cascade_select_rate(es->n, (const float *const *)s.conf,
                                                  (const bool *const *)s.ok, s.ok[es->n], es->n_cal,
                                                  min_rate / 100.0, es->thr, &err)
                        : tdm_cascade_select_loss(es->n, (const float *const *)s.conf,
                                                  (const bool *const *)s.ok, s.ok[es->n], es->n_cal,
                                                  max_loss / 100.0, margin, es->thr, &err);
    scratch_free(&s);
    if (st != TDM_OK)
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s", err.msg);
    return TDM_EXIT_OK;
}

/* Mean FLOPs per test input of the cascade whose outcome is r. */
static double cascade_flops(const exit_set *es, const tdm_cascade_result *r)
{
    double total = 0.0, heads = 0.0;
    for (int k = 0; k < es->n; k++) {
        if (es->thr[k] > 1.0)
            continue; /* a disabled exit is not evaluated */
        heads += es->head_flops[k];
        total += (double)r->exited[k] * (es->until_flops[k] + heads);
    }
    total += (double)r->final_taken * (es->full_flops + heads);
    return r->n ? total / (double)r->n : 0.0;
}

static int report(exit_set *es, tdm_confidence kind, const char *model, const char *data, bool json)
{
    scratch s;
    const int64_t n = es->n_test;
    if (!scratch_alloc(&s, es->n, n)) {
        scratch_free(&s);
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "out of memory");
    }
    split_stats st[MAXK + 1];
    for (int k = 0; k <= es->n; k++) {
        const float *lg = k < es->n ? es->test[k] : es->test_final;
        double t = k < es->n ? es->T[k] : es->T_final;
        /* ECE always on the max-softmax probability, before (T = 1) and after scaling. */
        conf_correct(lg, n, es->C, 1.0, TDM_CONF_MAXPROB, es->y_test, s.conf[k], s.maxp, s.ok[k],
                     s.pred);
        tdm_cal_ece(s.conf[k], s.ok[k], n, &st[k].ece0, &st[k].mce0);
        conf_correct(lg, n, es->C, t, TDM_CONF_MAXPROB, es->y_test, s.conf[k], s.maxp, s.ok[k],
                     s.pred);
        tdm_cal_ece(s.conf[k], s.ok[k], n, &st[k].ece1, &st[k].mce1);
        int64_t right = 0;
        for (int64_t i = 0; i < n; i++)
            right += s.ok[k][i];
        st[k].acc = n ? (double)right / (double)n : 0.0;
        if (k < es->n && kind != TDM_CONF_MAXPROB)
            conf_correct(lg, n, es->C, t, kind, es->y_test, s.conf[k], s.maxp, s.ok[k], s.pred);
    }
    tdm_cascade_result r;
    tdm_cascade_apply(es->n, (const float *const *)s.conf, (const bool *const *)s.ok, s.ok[es->n],
                      n, es->thr, &r);
    scratch_free(&s);
    const double mean_flops = es->flops_ok ? cascade_flops(es, &r) : 0.0;
    const double saved =
        es->flops_ok && es->full_flops > 0 ? 1.0 - mean_flops / es->full_flops : 0.0;
    if (json) {
        printf("{\"model\":");
        json_str(model);
        printf(",\"data\":");
        json_str(data);
        printf(",\"calibration\":%lld,\"test\":%lld,\"confidence\":\"%s\",\"exits\":[",
               (long long)es->n_cal, (long long)n,
               kind == TDM_CONF_ENTROPY ? "entropy" : "maxprob");
        for (int k = 0; k < es->n; k++) {
            printf("%s{\"name\":", k ? "," : "");
            json_str(es->name[k]);
            printf(",\"temperature\":%.6g,\"temperature_nll\":%.6g,\"threshold\":%.6g,\"exit_"
                   "rate\":%.6f,"
                   "\"exited\":%lld,\"exited_accuracy\":%.6f,\"alone_accuracy\":%.6f,"
                   "\"ece_before\":%.6f,\"mce_before\":%.6f,\"ece_after\":%.6f,"
                   "\"mce_after\":%.6f",
                   es->T[k], es->T_nll[k], es->thr[k], n ? (double)r.exited[k] / (double)n : 0.0,
                   (long long)r.exited[k],
                   r.exited[k] ? (double)r.correct[k] / (double)r.exited[k] : 0.0, st[k].acc,
                   st[k].ece0, st[k].mce0, st[k].ece1, st[k].mce1);
            if (es->flops_ok)
                printf(",\"backbone_flops\":%.0f,\"head_flops\":%.0f", es->until_flops[k],
                       es->head_flops[k]);
            printf("}");
        }
        printf("],\"final\":{\"name\":");
        json_str(es->final_name);
        printf(",\"accuracy\":%.6f,\"temperature\":%.6g,\"temperature_nll\":%.6g,\"ece_before\":%."
               "6f,\"mce_before\":%.6f,"
               "\"ece_after\":%.6f,\"mce_after\":%.6f,\"taken\":%lld",
               st[es->n].acc, es->T_final, es->T_nll_final, st[es->n].ece0, st[es->n].mce0,
               st[es->n].ece1, st[es->n].mce1, (long long)r.final_taken);
        if (es->flops_ok)
            printf(",\"flops\":%.0f", es->full_flops);
        printf("},\"accuracy\":%.6f,\"loss_vs_final\":%.6f,\"exit_rate\":%.6f", r.accuracy, r.loss,
               r.exit_rate);
        if (es->flops_ok)
            printf(",\"mean_flops\":%.0f,\"flops_saved\":%.6f", mean_flops, saved);
        printf("}\n");
        return TDM_EXIT_OK;
    }
    printf("%s on %s: calibration %lld images, test %lld images, confidence %s\n", model, data,
           (long long)es->n_cal, (long long)n, kind == TDM_CONF_ENTROPY ? "entropy" : "maxprob");
    printf("%-18s %7s %9s %8s %8s %8s %7s %7s %7s %7s %10s\n", "exit", "T", "threshold", "rate%",
           "acc%", "alone%", "ECE0%", "ECE1%", "MCE0%", "MCE1%", "MFLOPs");
    for (int k = 0; k <= es->n; k++) {
        bool fin = k == es->n;
        int64_t taken = fin ? r.final_taken : r.exited[k];
        int64_t right = fin ? r.final_correct_taken : r.correct[k];
        char thr[16];
        if (fin || es->thr[k] > 1.0)
            snprintf(thr, sizeof thr, "%s", fin ? "-" : "off");
        else
            snprintf(thr, sizeof thr, "%.4f", es->thr[k]);
        printf("%-18.18s %7.3f %9s %8.2f %8.2f %8.2f %7.2f %7.2f %7.2f %7.2f",
               fin ? es->final_name : es->name[k], fin ? es->T_final : es->T[k], thr,
               n ? 100.0 * (double)taken / (double)n : 0.0,
               taken ? 100.0 * (double)right / (double)taken : 0.0, 100.0 * st[k].acc,
               100.0 * st[k].ece0, 100.0 * st[k].ece1, 100.0 * st[k].mce0, 100.0 * st[k].mce1);
        if (es->flops_ok)
            printf(" %10.3f\n",
                   (fin ? es->full_flops : es->until_flops[k] + es->head_flops[k]) / 1e6);
        else
            printf(" %10s\n", "n/a");
    }
    printf("cascade: accuracy %.2f%% (final alone %.2f%%), loss %.2f%%, early exits %.2f%%",
           100.0 * r.accuracy, 100.0 * r.final_accuracy, 100.0 * r.loss, 100.0 * r.exit_rate);
    if (es->flops_ok)
        printf(", mean %.3f of %.3f MFLOPs, saved %.2f%%\n", mean_flops / 1e6, es->full_flops / 1e6,
               100.0 * saved);
    else
        printf(", FLOPs n/a\n");
    return TDM_EXIT_OK;
}

/* ---- model, data and FLOPs ---------------------------------------------------------- */

typedef struct ctx {
    tdm_graph *g;
    tdm_session *s;
    tdm_dataset ds; /* evaluation set: [0, split) calibration, [split, N) test */
    tdm_dataset tr; /* --fit-on train */
    char sha[TDM_SHA256_HEX_LEN + 1];
    const char *final_name;
    int64_t split;
    double *per_node;
    double full;
    int64_t probe_batch;
} ctx;

static void ctx_free(ctx *c)
{
    tdm_session_free(c->s);
    tdm_graph_free(c->g);
    tdm_dataset_free(&c->ds);
    tdm_dataset_free(&c->tr);
    free(c->per_node);
}

static void data_source(const char *d, const char **name, const char **path)
{
    *path = NULL;
    if (strcmp(d, "mnist") == 0 || strcmp(d, "cifar") == 0 || strcmp(d, "fashion") == 0) {
        *name = d;
    } else if (strcmp(d, "fashion-mnist") == 0) {
        *name = "fashion";
    } else {
        size_t n = strlen(d);
        *name = n > 4 && strcmp(d + n - 4, ".csv") == 0 ? "cifar" : "mnist";
        *path = d;
    }
}

/*
 * Seeded Fisher-Yates shuffle of images and labels together. Files are often
 * ordered (MNIST's test set holds its 5000 cleaner images first), so a
 * sequential split would calibrate on one distribution and test on another.
 */
static bool shuffle_dataset(tdm_dataset *d, uint64_t seed)
{
    const int64_t per = d->x.dims[1] * d->x.dims[2] * d->x.dims[3];
    float *tmp = malloc((size_t)per * sizeof *tmp);
    if (!tmp)
        return false;
    float *x = d->x.data;
    uint64_t st = seed;
    for (int64_t i = d->n - 1; i > 0; i--) {
        uint64_t z = (st += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        int64_t j = (int64_t)(z % (uint64_t)(i + 1));
        if (j == i)
            continue;
        memcpy(tmp, x + i * per, (size_t)per * sizeof *tmp);
        memcpy(x + i * per, x + j * per, (size_t)per * sizeof *tmp);
        memcpy(x + j * per, tmp, (size_t)per * sizeof *tmp);
        int32_t l = d->labels[i];
        d->labels[i] = d->labels[j];
        d->labels[j] = l;
    }
    free(tmp);
    return true;
}

static int ctx_open(ctx *c, const exits_opts *o)
{
    tdm_err err = {{0}};
    if (tdm_sha256_file(o->model, c->sha, &err) != TDM_OK)
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s", err.msg);
    if (tdm_graph_load(o->model, NULL, &c->g, &err) != TDM_OK)
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s: %s", o->model, err.msg);
    if (tdm_graph_num_inputs(c->g) != 1 || tdm_graph_num_outputs(c->g) < 1)
        return tdm_cli_fail("exits", TDM_EXIT_FAIL,
                            "%s: has %d inputs and %d outputs; exits need one input", o->model,
                            tdm_graph_num_inputs(c->g), tdm_graph_num_outputs(c->g));
    tdm_session_options so = {.threads = (int)o->threads};
    if (tdm_session_create(c->g, &so, &c->s, &err) != TDM_OK)
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s: %s", o->model, err.msg);
    tdm_value_info vo;
    tdm_graph_output_info(c->g, 0, &vo);
    c->final_name = vo.name;

    const char *dname, *dpath;
    data_source(o->data, &dname, &dpath);
    if (dpath == NULL && tdm_dataset_default_path(dname) == NULL)
        return tdm_cli_fail("exits", TDM_EXIT_USAGE, "--data %s: no default location", dname);
    tdm_data_norm norm = {.scale = 255.0f};
    if (tdm_dataset_load(dname, dpath, false, &norm, o->limit, &c->ds, &err) != TDM_OK)
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s", err.msg);
    if (o->split < 1 || o->split >= c->ds.n)
        return tdm_cli_fail("exits", TDM_EXIT_USAGE,
                            "--split %lld leaves no test images (the set has %lld)",
                            (long long)o->split, (long long)c->ds.n);
    c->split = o->split;
    if (o->split_seed != 0 && !shuffle_dataset(&c->ds, (uint64_t)o->split_seed))
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "out of memory");
    if (o->fit_on_train &&
        tdm_dataset_load(dname, dpath, true, &norm, o->train_limit, &c->tr, &err) != TDM_OK)
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "training split: %s", err.msg);

    /* Backbone FLOPs per image, from one probe run. */
    tdm_value_info vi;
    tdm_graph_input_info(c->g, 0, &vi);
    tdm_tensor shape = {0};
    int64_t dims[TDM_MAX_DIMS];
    c->probe_batch = vi.ndim >= 1 && vi.dims[0] > 0 ? vi.dims[0] : 1;
    dims[0] = c->probe_batch;
    const int64_t per = c->ds.x.dims[1] * c->ds.x.dims[2] * c->ds.x.dims[3];
    int64_t declared = 1;
    bool known = vi.ndim >= 1;
    for (int k = 1; k < vi.ndim; k++) {
        known = known && vi.dims[k] > 0;
        declared *= vi.dims[k] > 0 ? vi.dims[k] : 1;
    }
    int rank;
    if (known && declared == per) {
        rank = vi.ndim;
        for (int k = 1; k < vi.ndim; k++)
            dims[k] = vi.dims[k];
    } else {
        rank = 4;
        for (int k = 1; k < 4; k++)
            dims[k] = c->ds.x.dims[k];
    }
    tdm_tensor_set_shape(&shape, TDM_DTYPE_FLOAT32, rank, dims);
    const char *in_name = vi.name;
    if (tdm_flops_per_node(c->g, c->s, 1, &in_name, &shape, &c->per_node, &c->full, &err) != TDM_OK)
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s: counting FLOPs: %s", o->model, err.msg);
    c->full /= (double)c->probe_batch;
    return TDM_EXIT_OK;
}

/* Backbone FLOPs per image to compute targets[0..n) (the input itself costs nothing). */
static int flops_until(ctx *c, int n, const char *const *targets, double *out)
{
    tdm_value_info vi;
    tdm_graph_input_info(c->g, 0, &vi);
    const char *t[MAXK + 1];
    int m = 0;
    for (int k = 0; k < n; k++)
        if (strcmp(targets[k], vi.name) != 0)
            t[m++] = targets[k];
    if (m == 0) {
        *out = 0.0;
        return TDM_EXIT_OK;
    }
    tdm_err err = {{0}};
    if (tdm_flops_until(c->g, c->per_node, m, t, out, &err) != TDM_OK)
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s", err.msg);
    *out /= (double)c->probe_batch;
    return TDM_EXIT_OK;
}

static int extract(ctx *c, const tdm_dataset *d, int64_t first, int64_t count, int n_cuts,
                   const char *const *cuts, const exits_opts *o, const tdm_exit_pool *pool,
                   const int *grid, const char *final_name, tdm_exit_features *f)
{
    tdm_err err = {{0}};
    if (tdm_exits_extract(c->g, c->s, &d->x, first, count, n_cuts, cuts, pool, grid, final_name, 64,
                          f, &err) != TDM_OK)
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s: %s", o->model, err.msg);
    return TDM_EXIT_OK;
}

/* Logits of head h for rows [first, first+count) of features x [*, dim]. */
static float *head_logits(const tdm_exit_head *h, const float *x, int64_t first, int64_t count)
{
    float *l = malloc((size_t)(count * h->n_classes) * sizeof(float));
    tdm_err err = {{0}};
    if (!l)
        return NULL;
    if (tdm_exit_head_logits(h, x + first * h->in_dim, count, l, &err) != TDM_OK) {
        free(l);
        return NULL;
    }
    return l;
}

/* ---- fit ---------------------------------------------------------------------------- */

static int cmd_fit(exits_opts *o)
{
    ctx c = {0};
    tdm_exit_features fe = {0}, ft = {0};
    tdm_exits *ex = NULL;
    exit_set es = {0};
    int rc = ctx_open(&c, o);
    if (rc != TDM_EXIT_OK)
        goto done;
    tdm_exit_pool pool[MAXK];
    int grid[MAXK];
    for (int k = 0; k < o->n_cuts; k++) {
        int j = o->n_pool == 1 ? 0 : k;
        pool[k] = o->n_pool ? o->pool[j] : TDM_POOL_AUTO;
        grid[k] = o->n_pool ? o->grid[j] : 0;
    }
    const char *const *cuts = (const char *const *)o->cuts;
    /* Features of the whole evaluation set (calibration + test) in one pass. */
    if ((rc = extract(&c, &c.ds, 0, c.ds.n, o->n_cuts, cuts, o, pool, grid, c.final_name, &fe)) !=
        TDM_EXIT_OK)
        goto done;
    const float *const *trx = (const float *const *)fe.x;
    const int32_t *try_ = c.ds.labels;
    int64_t n_tr, cal0;
    if (o->fit_on_train) {
        if ((rc = extract(&c, &c.tr, 0, c.tr.n, o->n_cuts, cuts, o, pool, grid, c.final_name,
                          &ft)) != TDM_EXIT_OK)
            goto done;
        trx = (const float *const *)ft.x;
        try_ = c.tr.labels;
        n_tr = c.tr.n;
        cal0 = 0;
    } else {
        n_tr = c.split / 2;
        cal0 = n_tr;
    }
    ex = calloc(1, sizeof *ex);
    if (!ex) {
        rc = tdm_cli_fail("exits", TDM_EXIT_FAIL, "out of memory");
        goto done;
    }
    memcpy(ex->model_sha256, c.sha, sizeof c.sha);
    ex->confidence = o->conf;
    ex->n_classes = fe.n_classes;
    es.n = o->n_cuts;
    es.final_name = c.final_name;
    es.C = fe.n_classes;
    es.n_cal = c.split - cal0;
    es.n_test = c.ds.n - c.split;
    es.y_cal = c.ds.labels + cal0;
    es.y_test = c.ds.labels + c.split;
    es.cal_final = fe.final_logits + cal0 * fe.n_classes;
    es.tfit_final = fe.final_logits;
    es.y_tfit_final = c.ds.labels;
    es.n_tfit_final = c.split;
    es.test_final = fe.final_logits + c.split * fe.n_classes;
    for (int k = 0; k < c.ds.n; k++)
        if (c.ds.labels[k] >= fe.n_classes) {
            rc = tdm_cli_fail("exits", TDM_EXIT_FAIL,
                              "label %d of image %d is not below the %d "
                              "classes of '%s'",
                              (int)c.ds.labels[k], k, fe.n_classes, c.final_name);
            goto done;
        }
    es.flops_ok = true;
    es.full_flops = c.full;
    for (int k = 0; k < o->n_cuts; k++) {
        tdm_exit_head *h = &ex->heads[k];
        ex->n_exits = k + 1;
        h->cut = tdm_strdup(cuts[k]);
        h->pool = fe.pool[k];
        h->grid = fe.pool[k] == TDM_POOL_GRID ? grid[k] : 0;
        tdm_exit_train_options to = {.hidden = (int)o->hidden,
                                     .max_epochs = (int)o->epochs,
                                     .lr = o->lr,
                                     .l2 = o->l2,
                                     .seed = (uint64_t)o->seed + (uint64_t)k};
        tdm_exit_train_report tr;
        tdm_err err = {{0}};
        if (!h->cut || tdm_exit_head_train(h, trx[k], try_, n_tr, (int)fe.dim[k], fe.n_classes, &to,
                                           &tr, &err) != TDM_OK) {
            rc = tdm_cli_fail("exits", TDM_EXIT_FAIL, "head at '%s': %s", cuts[k],
                              h->cut ? err.msg : "out of memory");
            goto done;
        }
        if (!o->json)
            fprintf(stderr,
                    "exit %d at '%s': %lld features, %d epochs (best %d), train %.2f%%, "
                    "validation %.2f%%\n",
                    k + 1, cuts[k], (long long)fe.dim[k], tr.epochs, tr.best_epoch,
                    100.0 * tr.train_acc, 100.0 * tr.val_acc);
        es.name[k] = h->cut;
        es.cal[k] = head_logits(h, fe.x[k], cal0, es.n_cal);
        es.test[k] = head_logits(h, fe.x[k], c.split, es.n_test);
        if (!es.cal[k] || !es.test[k]) {
            rc = tdm_cli_fail("exits", TDM_EXIT_FAIL, "out of memory");
            goto done;
        }
        es.head_flops[k] = (double)tdm_exit_head_flops(h, fe.cut_numel[k]);
        if ((rc = flops_until(&c, k + 1, cuts, &es.until_flops[k])) != TDM_EXIT_OK)
            goto done;
    }
    if ((rc = calibrate_set(&es, true, true, o->conf, o->max_loss, o->margin, o->min_rate)) !=
        TDM_EXIT_OK)
        goto done;
    for (int k = 0; k < es.n; k++) {
        ex->heads[k].temperature = es.T[k];
        ex->heads[k].threshold = es.thr[k];
    }
    if (o->out) {
        tdm_err err = {{0}};
        if (tdm_exits_save(ex, o->out, &err) != TDM_OK) {
            rc = tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s", err.msg);
            goto done;
        }
    }
    rc = report(&es, o->conf, o->model, o->data, o->json);
done:
    exit_set_free(&es);
    tdm_exits_free(ex);
    tdm_exit_features_free(&fe);
    tdm_exit_features_free(&ft);
    ctx_free(&c);
    return rc;
}

/* ---- eval --------------------------------------------------------------------------- */

/* Reads the exit outputs of --manifest (models.<name>.exits, by "order") and the model file. */
static int read_manifest(exits_opts *o, char **model_path)
{
    tdm_err err = {{0}};
    void *buf;
    size_t len;
    if (tdm_data_read_file(o->manifest, 16 << 20, &buf, &len, &err) != TDM_OK)
        return tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s", err.msg);
    tdm_json_doc *doc = NULL;
    int rc = TDM_EXIT_FAIL;
    if (tdm_json_parse(buf, len, 0, &doc, &err) != TDM_OK) {
        rc = tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s: %s", o->manifest, err.msg);
        goto done;
    }
    const tdm_json *m = tdm_json_get(tdm_json_get(tdm_json_root(doc), "models"), o->manifest_model);
    const tdm_json *exits = tdm_json_get(m, "exits");
    const char *file = tdm_json_string(tdm_json_get(m, "file"), NULL);
    if (!m || !file || !exits || exits->type != TDM_JSON_ARRAY || exits->len < 2 ||
        exits->len > MAXK + 1) {
        rc = tdm_cli_fail("exits", TDM_EXIT_FAIL,
                          "%s: models.%s needs \"file\" and \"exits\" (2..%d entries)", o->manifest,
                          o->manifest_model, MAXK + 1);
        goto done;
    }
    /* Order by "order" (insertion sort over at most MAXK + 1 entries). */
    const tdm_json *ord[MAXK + 1];
    int64_t key[MAXK + 1];
    for (size_t i = 0; i < exits->len; i++) {
        const tdm_json *e = &exits->items[i];
        if (!tdm_json_string(tdm_json_get(e, "output"), NULL) ||
            !tdm_json_int(tdm_json_get(e, "order"), &key[i])) {
            rc = tdm_cli_fail("exits", TDM_EXIT_FAIL,
                              "%s: models.%s.exits[%zu] needs \"output\" and an integer \"order\"",
                              o->manifest, o->manifest_model, i);
            goto done;
        }
        ord[i] = e;
        for (size_t j = i; j > 0 && key[j - 1] > key[j]; j--) {
            int64_t tk = key[j];
            key[j] = key[j - 1];
            key[j - 1] = tk;
            const tdm_json *te = ord[j];
            ord[j] = ord[j - 1];
            ord[j - 1] = te;
        }
    }
    for (size_t i = 0; i < exits->len; i++)
        if (!(o->cuts[i] = tdm_strdup(tdm_json_string(tdm_json_get(ord[i], "output"), NULL)))) {
            rc = tdm_cli_fail("exits", TDM_EXIT_FAIL, "out of memory");
            goto done;
        } else {
            o->n_cuts = (int)i + 1;
        }
    /* The model file is relative to the manifest. */
    const char *slash = strrchr(o->manifest, '/');
    size_t dl = slash ? (size_t)(slash - o->manifest) + 1 : 0;
    *model_path = malloc(dl + strlen(file) + 1);
    if (!*model_path) {
        rc = tdm_cli_fail("exits", TDM_EXIT_FAIL, "out of memory");
        goto done;
    }
    memcpy(*model_path, o->manifest, dl);
    strcpy(*model_path + dl, file);
    rc = TDM_EXIT_OK;
done:
    tdm_json_free(doc);
    free(buf);
    return rc;
}

static int cmd_eval(exits_opts *o)
{
    ctx c = {0};
    tdm_exit_features fe = {0};
    tdm_exits *ex = NULL;
    exit_set es = {0};
    char *manifest_model = NULL;
    int rc;
    if (o->manifest) {
        if ((rc = read_manifest(o, &manifest_model)) != TDM_EXIT_OK)
            goto done;
        o->model = manifest_model;
    }
    if ((rc = ctx_open(&c, o)) != TDM_EXIT_OK)
        goto done;
    es.n_cal = c.split;
    es.n_test = c.ds.n - c.split;
    es.y_cal = c.ds.labels;
    es.y_test = c.ds.labels + c.split;
    es.flops_ok = true;
    es.full_flops = c.full;
    if (o->heads) {
        tdm_err err = {{0}};
        if (tdm_exits_load(o->heads, &ex, &err) != TDM_OK) {
            rc = tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s", err.msg);
            goto done;
        }
        if (strcmp(ex->model_sha256, c.sha) != 0) {
            rc = tdm_cli_fail("exits", TDM_EXIT_FAIL,
                              "%s: heads were fitted on a model with sha256 %.12s..., %s is "
                              "%.12s...",
                              o->heads, ex->model_sha256, o->model, c.sha);
            goto done;
        }
        const char *cuts[MAXK];
        tdm_exit_pool pool[MAXK];
        int grid[MAXK];
        for (int k = 0; k < ex->n_exits; k++) {
            cuts[k] = ex->heads[k].cut;
            pool[k] = ex->heads[k].pool;
            grid[k] = ex->heads[k].grid;
        }
        if ((rc = extract(&c, &c.ds, 0, c.ds.n, ex->n_exits, cuts, o, pool, grid, c.final_name,
                          &fe)) != TDM_EXIT_OK)
            goto done;
        if (fe.n_classes != ex->n_classes) {
            rc = tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s: heads have %d classes, '%s' has %d",
                              o->heads, ex->n_classes, c.final_name, fe.n_classes);
            goto done;
        }
        o->conf = ex->confidence;
        es.n = ex->n_exits;
        for (int k = 0; k < es.n; k++) {
            tdm_exit_head *h = &ex->heads[k];
            if (fe.dim[k] != h->in_dim) {
                rc = tdm_cli_fail("exits", TDM_EXIT_FAIL,
                                  "%s: exit %d at '%s' expects %d features, the model gives %lld",
                                  o->heads, k, h->cut, h->in_dim, (long long)fe.dim[k]);
                goto done;
            }
            es.name[k] = h->cut;
            es.T[k] = es.T_nll[k] = h->temperature;
            es.thr[k] = h->threshold;
            es.cal[k] = head_logits(h, fe.x[k], 0, es.n_cal);
            es.test[k] = head_logits(h, fe.x[k], c.split, es.n_test);
            if (!es.cal[k] || !es.test[k]) {
                rc = tdm_cli_fail("exits", TDM_EXIT_FAIL, "out of memory");
                goto done;
            }
            es.head_flops[k] = (double)tdm_exit_head_flops(h, fe.cut_numel[k]);
            if ((rc = flops_until(&c, k + 1, cuts, &es.until_flops[k])) != TDM_EXIT_OK)
                goto done;
        }
    } else {
        if (!o->manifest) {
            int n = split_list(o->outputs, o->cuts, MAXK + 1);
            if (n < 2) {
                rc = tdm_cli_fail("exits", TDM_EXIT_USAGE,
                                  "--outputs: '%s' is not 2..%d comma-separated names", o->outputs,
                                  MAXK + 1);
                goto done;
            }
            o->n_cuts = n;
        }
        const int n_exits = o->n_cuts - 1;
        const char *const *outs = (const char *const *)o->cuts;
        tdm_exit_pool pool[MAXK];
        for (int k = 0; k < n_exits; k++)
            pool[k] = TDM_POOL_FLATTEN;
        c.final_name = outs[n_exits];
        if ((rc = extract(&c, &c.ds, 0, c.ds.n, n_exits, outs, o, pool, NULL, c.final_name, &fe)) !=
            TDM_EXIT_OK)
            goto done;
        es.n = n_exits;
        for (int k = 0; k < n_exits; k++) {
            if (fe.dim[k] != fe.n_classes) {
                rc = tdm_cli_fail("exits", TDM_EXIT_FAIL,
                                  "exit output '%s' has %lld values per input, the final '%s' "
                                  "has %d",
                                  outs[k], (long long)fe.dim[k], c.final_name, fe.n_classes);
                goto done;
            }
            es.name[k] = outs[k];
            es.cal[k] = malloc((size_t)(es.n_cal * fe.n_classes) * sizeof(float));
            es.test[k] = malloc((size_t)(es.n_test * fe.n_classes) * sizeof(float));
            if (!es.cal[k] || !es.test[k]) {
                rc = tdm_cli_fail("exits", TDM_EXIT_FAIL, "out of memory");
                goto done;
            }
            memcpy(es.cal[k], fe.x[k], (size_t)(es.n_cal * fe.n_classes) * sizeof(float));
            memcpy(es.test[k], fe.x[k] + es.n_cal * fe.n_classes,
                   (size_t)(es.n_test * fe.n_classes) * sizeof(float));
            /* The exit output's own branch is part of the graph: no separate head cost. */
            if ((rc = flops_until(&c, k + 1, outs, &es.until_flops[k])) != TDM_EXIT_OK)
                goto done;
        }
        /* The plain model computes every output; its cost is that of all of them. */
        if ((rc = flops_until(&c, o->n_cuts, outs, &es.full_flops)) != TDM_EXIT_OK)
            goto done;
    }
    es.final_name = c.final_name;
    es.C = fe.n_classes;
    es.cal_final = fe.final_logits;
    es.test_final = fe.final_logits + c.split * fe.n_classes;
    for (int64_t i = 0; i < c.ds.n; i++)
        if (c.ds.labels[i] >= fe.n_classes) {
            rc = tdm_cli_fail("exits", TDM_EXIT_FAIL,
                              "label %d of image %lld is not below the %d classes of '%s'",
                              (int)c.ds.labels[i], (long long)i, fe.n_classes, c.final_name);
            goto done;
        }
    const bool refit = !o->heads || o->refit;
    if ((rc = calibrate_set(&es, refit, refit, o->conf, o->max_loss, o->margin, o->min_rate)) !=
        TDM_EXIT_OK)
        goto done;
    if (ex && o->refit) {
        for (int k = 0; k < es.n; k++) {
            ex->heads[k].temperature = es.T[k];
            ex->heads[k].threshold = es.thr[k];
        }
        tdm_err err = {{0}};
        if (o->out && tdm_exits_save(ex, o->out, &err) != TDM_OK) {
            rc = tdm_cli_fail("exits", TDM_EXIT_FAIL, "%s", err.msg);
            goto done;
        }
    }
    rc = report(&es, o->conf, o->model, o->data, o->json);
done:
    exit_set_free(&es);
    tdm_exits_free(ex);
    tdm_exit_features_free(&fe);
    ctx_free(&c);
    free(manifest_model);
    return rc;
}

/* ---- arguments ---------------------------------------------------------------------- */

static const char *const k_valued[] = {
    "--at",      "--data",     "--pool",          "--hidden",     "--fit-on",     "--train-limit",
    "--split",   "--max-loss", "--min-exit-rate", "--confidence", "--out",        "--epochs",
    "--lr",      "--l2",       "--seed",          "--limit",      "--threads",    "--heads",
    "--outputs", "--manifest", "--model",         "--split-seed", "--loss-margin"};

int tdm_cmd_exits(int argc, char **argv)
{
    exits_opts o = {.split = 5000,
                    .split_seed = 1,
                    .seed = 1,
                    .threads = 1,
                    .max_loss = 1.0,
                    .margin = 2.33,
                    .min_rate = -1.0,
                    .manifest_model = "edge"};
    int rc = TDM_EXIT_USAGE;
    bool have_loss = false;
    if (argc < 2 || tdm_cli_is_help(argv[1])) {
        exits_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? TDM_EXIT_USAGE : TDM_EXIT_OK;
    }
    o.sub = argv[1];
    if (strcmp(o.sub, "fit") && strcmp(o.sub, "eval"))
        return tdm_cli_fail("exits", TDM_EXIT_USAGE, "unknown subcommand '%s' (fit or eval)",
                            o.sub);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (tdm_cli_is_help(a)) {
            exits_usage(stdout);
            rc = TDM_EXIT_OK;
            goto done;
        }
        if (strcmp(a, "--json") == 0) {
            o.json = true;
            continue;
        }
        if (strcmp(a, "--refit") == 0) {
            o.refit = true;
            continue;
        }
        if (a[0] != '-') {
            if (o.model) {
                rc = tdm_cli_fail("exits", TDM_EXIT_USAGE, "unexpected argument '%s'", a);
                goto done;
            }
            o.model = a;
            continue;
        }
        bool known = false;
        for (size_t j = 0; j < sizeof k_valued / sizeof k_valued[0]; j++)
            known = known || strcmp(a, k_valued[j]) == 0;
        if (!known) {
            rc = tdm_cli_fail("exits", TDM_EXIT_USAGE, "unknown option '%s'", a);
            goto done;
        }
        if (i + 1 >= argc) {
            rc = tdm_cli_fail("exits", TDM_EXIT_USAGE, "%s needs a value", a);
            goto done;
        }
        const char *v = argv[++i];
        bool ok = true;
        if (strcmp(a, "--at") == 0) {
            for (int k = 0; k < o.n_cuts; k++)
                free(o.cuts[k]);
            o.n_cuts = split_list(v, o.cuts, MAXK);
            ok = o.n_cuts > 0;
            if (!ok)
                o.n_cuts = 0;
        } else if (strcmp(a, "--pool") == 0) {
            char *parts[MAXK];
            int n = split_list(v, parts, MAXK);
            ok = n > 0;
            for (int k = 0; k < n; k++) {
                ok = ok && tdm_exit_pool_parse(parts[k], &o.pool[k], &o.grid[k]);
                free(parts[k]);
            }
            o.n_pool = ok ? n : 0;
        } else if (strcmp(a, "--data") == 0) {
            o.data = v;
        } else if (strcmp(a, "--heads") == 0) {
            o.heads = v;
        } else if (strcmp(a, "--outputs") == 0) {
            o.outputs = v;
        } else if (strcmp(a, "--manifest") == 0) {
            o.manifest = v;
        } else if (strcmp(a, "--model") == 0) {
            o.manifest_model = v;
        } else if (strcmp(a, "--out") == 0) {
            o.out = v;
        } else if (strcmp(a, "--fit-on") == 0) {
            ok = strcmp(v, "cal") == 0 || strcmp(v, "train") == 0;
            o.fit_on_train = strcmp(v, "train") == 0;
        } else if (strcmp(a, "--confidence") == 0) {
            ok = strcmp(v, "maxprob") == 0 || strcmp(v, "entropy") == 0;
            o.conf = strcmp(v, "entropy") == 0 ? TDM_CONF_ENTROPY : TDM_CONF_MAXPROB;
        } else if (strcmp(a, "--hidden") == 0) {
            ok = tdm_cli_parse_int(v, 0, TDM_EXITS_MAX_HIDDEN, &o.hidden);
        } else if (strcmp(a, "--train-limit") == 0) {
            ok = tdm_cli_parse_int(v, 1, INT64_MAX, &o.train_limit);
        } else if (strcmp(a, "--split") == 0) {
            ok = tdm_cli_parse_int(v, 1, INT64_MAX, &o.split);
        } else if (strcmp(a, "--split-seed") == 0) {
            ok = tdm_cli_parse_int(v, 0, INT64_MAX, &o.split_seed);
        } else if (strcmp(a, "--epochs") == 0) {
            ok = tdm_cli_parse_int(v, 1, 100000, &o.epochs);
        } else if (strcmp(a, "--seed") == 0) {
            ok = tdm_cli_parse_int(v, 0, INT64_MAX, &o.seed);
        } else if (strcmp(a, "--limit") == 0) {
            ok = tdm_cli_parse_int(v, 1, INT64_MAX, &o.limit);
        } else if (strcmp(a, "--threads") == 0) {
            ok = tdm_cli_parse_int(v, 1, 256, &o.threads);
        } else if (strcmp(a, "--max-loss") == 0) {
            ok = parse_double(v, 0.0, 100.0, &o.max_loss);
            have_loss = true;
        } else if (strcmp(a, "--min-exit-rate") == 0) {
            ok = parse_double(v, 0.0, 100.0, &o.min_rate);
        } else if (strcmp(a, "--loss-margin") == 0) {
            ok = parse_double(v, 0.0, 10.0, &o.margin);
        } else if (strcmp(a, "--lr") == 0) {
            ok = parse_double(v, 1e-9, 10.0, &o.lr);
        } else if (strcmp(a, "--l2") == 0) {
            ok = parse_double(v, 0.0, 10.0, &o.l2);
            if (ok && o.l2 == 0.0)
                o.l2 = -1.0; /* explicit zero: no decay */
        }
        if (!ok) {
            rc = tdm_cli_fail("exits", TDM_EXIT_USAGE, "%s: bad value '%s'", a, v);
            goto done;
        }
    }
    if (have_loss && o.min_rate >= 0.0) {
        rc = tdm_cli_fail("exits", TDM_EXIT_USAGE,
                          "--max-loss and --min-exit-rate exclude "
                          "each other");
        goto done;
    }
    if (!o.data) {
        rc = tdm_cli_fail("exits", TDM_EXIT_USAGE, "--data is required");
        goto done;
    }
    if (strcmp(o.sub, "fit") == 0) {
        if (!o.model || o.n_cuts == 0) {
            rc = tdm_cli_fail("exits", TDM_EXIT_USAGE, "fit needs MODEL and --at C1,C2,...");
            goto done;
        }
        if (o.n_pool > 1 && o.n_pool != o.n_cuts) {
            rc = tdm_cli_fail("exits", TDM_EXIT_USAGE, "--pool has %d values for %d cuts", o.n_pool,
                              o.n_cuts);
            goto done;
        }
        rc = cmd_fit(&o);
    } else {
        int modes = (o.heads != NULL) + (o.outputs != NULL) + (o.manifest != NULL);
        if (modes != 1 || (!o.model && !o.manifest) || (o.model && o.manifest)) {
            rc = tdm_cli_fail("exits", TDM_EXIT_USAGE,
                              "eval needs MODEL with one of --heads or --outputs, or --manifest "
                              "alone");
            goto done;
        }
        if (o.refit && !o.heads) {
            rc = tdm_cli_fail("exits", TDM_EXIT_USAGE, "--refit needs --heads");
            goto done;
        }
        if (o.out && !o.refit) {
            rc = tdm_cli_fail("exits", TDM_EXIT_USAGE, "eval writes --out only with --refit");
            goto done;
        }
        rc = cmd_eval(&o);
    }
done:
    for (int k = 0; k < o.n_cuts; k++)
        free(o.cuts[k]);
    return rc;
}
