/*
 * Codec sweep (see sweep.h): head once per batch, then per setting encode and
 * decode every request's cut tensors as separate frames and run the tail.
 *
 * The per-request frame is the point: a batch-wide frame would amortise the
 * header and the per-channel scales over many images and share one value
 * range between them, which is not what an edge device sending one image
 * gets. So each cut tensor is sliced to batch 1 (a view, no copy), encoded,
 * decoded and copied back into a batch tensor for the tail; the tail itself
 * runs batched because its cost is not what is being measured. Tensors that
 * are not float32 (shape or index tensors crossing a cut) are sent raw and
 * counted at their raw size.
 */
#include "collab/sweep.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"

int tdm_sweep_grid(tdm_sweep_grid_kind kind, tdm_codec_params *out, int cap)
{
    static const float topk_full[] = {0.0f, 0.5f, 0.25f, 0.1f};
    static const float topk_small[] = {0.0f, 0.25f};
    const float *topk = kind == TDM_SWEEP_GRID_FULL ? topk_full : topk_small;
    const int n_topk = kind == TDM_SWEEP_GRID_FULL ? 4 : 2;
    const int n_clip = kind == TDM_SWEEP_GRID_FULL ? 2 : 1;
    /* full grid only: dead zones (zero_fraction) and 99th-percentile int4 clipping */
    static const struct {
        tdm_codec_mode mode;
        bool per_channel;
        float percentile, zero_fraction;
    } extra[] = {
        {TDM_CODEC_MODE_INT4, false, 100.0f, 0.02f}, {TDM_CODEC_MODE_INT4, false, 100.0f, 0.05f},
        {TDM_CODEC_MODE_INT4, false, 100.0f, 0.1f},  {TDM_CODEC_MODE_INT4, true, 100.0f, 0.05f},
        {TDM_CODEC_MODE_INT4, true, 100.0f, 0.1f},   {TDM_CODEC_MODE_INT8, false, 100.0f, 0.02f},
        {TDM_CODEC_MODE_INT8, false, 100.0f, 0.05f}, {TDM_CODEC_MODE_INT4, false, 99.0f, 0.0f},
        {TDM_CODEC_MODE_INT4, true, 99.0f, 0.0f},    {TDM_CODEC_MODE_INT4, true, 99.0f, 0.05f},
    };
    const int n_extra = kind == TDM_SWEEP_GRID_FULL ? (int)(sizeof extra / sizeof extra[0]) : 0;
    const int total = 2 + 2 * 2 * n_clip * n_topk + n_extra;
    if (cap < total)
        return 0;
    int n = 0;
    tdm_codec_params_default(&out[n++], TDM_CODEC_MODE_LOSSLESS);
    tdm_codec_params_default(&out[n++], TDM_CODEC_MODE_F16);
    const tdm_codec_mode modes[2] = {TDM_CODEC_MODE_INT8, TDM_CODEC_MODE_INT4};
    for (int m = 0; m < 2; m++)
        for (int g = 0; g < 2; g++)
            for (int c = 0; c < n_clip; c++)
                for (int k = 0; k < n_topk; k++) {
                    tdm_codec_params *p = &out[n++];
                    tdm_codec_params_default(p, modes[m]);
                    p->granularity =
                        g ? TDM_CODEC_GRANULARITY_CHANNEL : TDM_CODEC_GRANULARITY_TENSOR;
                    p->channel_axis = 1;
                    p->clip = c ? TDM_CODEC_CLIP_PERCENTILE : TDM_CODEC_CLIP_MINMAX;
                    p->percentile = c ? TDM_SWEEP_PERCENTILE : 100.0f;
                    p->topk_fraction = topk[k];
                }
    for (int i = 0; i < n_extra; i++) {
        tdm_codec_params *p = &out[n++];
        tdm_codec_params_default(p, extra[i].mode);
        p->granularity =
            extra[i].per_channel ? TDM_CODEC_GRANULARITY_CHANNEL : TDM_CODEC_GRANULARITY_TENSOR;
        p->channel_axis = 1;
        p->clip = extra[i].percentile < 100.0f ? TDM_CODEC_CLIP_PERCENTILE : TDM_CODEC_CLIP_MINMAX;
        p->percentile = extra[i].percentile;
        p->zero_fraction = extra[i].zero_fraction;
    }
    return n;
}

char *tdm_sweep_label(const tdm_codec_params *p, char *buf, size_t len)
{
    const bool q = p->mode == TDM_CODEC_MODE_INT8 || p->mode == TDM_CODEC_MODE_INT4;
    char clip[32] = "", topk[32] = "", zero[32] = "";
    if (p->zero_fraction > 0.0f)
        snprintf(zero, sizeof zero, "/z%g", (double)p->zero_fraction);
    else if (p->zero_threshold > 0.0f)
        snprintf(zero, sizeof zero, "/zabs%g", (double)p->zero_threshold);
    if (q && p->clip == TDM_CODEC_CLIP_PERCENTILE)
        snprintf(clip, sizeof clip, "/p%g", (double)p->percentile);
    else if (q)
        snprintf(clip, sizeof clip, "/minmax");
    if (p->topk_count > 0)
        snprintf(topk, sizeof topk, "/top%lld", (long long)p->topk_count);
    else if (p->topk_fraction > 0.0f)
        snprintf(topk, sizeof topk, "/top%g", (double)p->topk_fraction);
    snprintf(buf, len, "%s%s%s%s%s", tdm_codec_mode_name(p->mode),
             q ? (p->granularity == TDM_CODEC_GRANULARITY_CHANNEL ? "/ch" : "/tensor") : "", clip,
             zero, topk);
    return buf;
}

void tdm_sweep_finish(tdm_sweep_result *r, int n, double ref_accuracy, double fp32_bytes)
{
    for (int i = 0; i < n; i++) {
        const double req = r[i].requests > 0 ? (double)r[i].requests : NAN;
        r[i].bytes_per_request = (double)r[i].bytes / req;
        r[i].ratio_fp32 = r[i].bytes_per_request > 0 ? fp32_bytes / r[i].bytes_per_request : NAN;
        r[i].accuracy = (double)r[i].correct / req;
        r[i].agreement = (double)r[i].agree / req;
        r[i].loss = ref_accuracy - r[i].accuracy;
        r[i].encode_us = r[i].encode_ns / req / 1e3;
        r[i].decode_us = r[i].decode_ns / req / 1e3;
    }
    tdm_sweep_pareto(r, n);
}

void tdm_sweep_pareto(tdm_sweep_result *r, int n)
{
    for (int i = 0; i < n; i++) {
        bool dominated = !(r[i].bytes_per_request >= 0) || isnan(r[i].accuracy);
        for (int j = 0; j < n && !dominated; j++) {
            if (j == i || isnan(r[j].accuracy) || !(r[j].bytes_per_request >= 0))
                continue;
            const bool no_worse =
                r[j].bytes_per_request <= r[i].bytes_per_request && r[j].accuracy >= r[i].accuracy;
            const bool better =
                r[j].bytes_per_request < r[i].bytes_per_request || r[j].accuracy > r[i].accuracy;
            dominated = no_worse && better;
        }
        r[i].pareto = !dominated;
    }
}

int tdm_sweep_best(const tdm_sweep_result *r, int n, double max_loss)
{
    int best = -1;
    for (int i = 0; i < n; i++) {
        if (!(r[i].loss <= max_loss) || !(r[i].bytes_per_request >= 0))
            continue;
        if (best < 0 || r[i].bytes_per_request < r[best].bytes_per_request ||
            (r[i].bytes_per_request == r[best].bytes_per_request &&
             r[i].accuracy > r[best].accuracy))
            best = i;
    }
    return best;
}

void tdm_sweep_order(const tdm_sweep_result *r, int n, int *idx)
{
    for (int i = 0; i < n; i++)
        idx[i] = i;
    /* Insertion sort: n is at most TDM_SWEEP_MAX_SETTINGS, and it is stable. */
    for (int i = 1; i < n; i++) {
        int v = idx[i], j = i - 1;
        while (j >= 0 && (r[idx[j]].bytes_per_request > r[v].bytes_per_request ||
                          (r[idx[j]].bytes_per_request == r[v].bytes_per_request &&
                           r[idx[j]].accuracy < r[v].accuracy))) {
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = v;
    }
}

/* argmax of row i of a [B, K] float32 tensor (first maximum on ties). */
static int64_t row_argmax(const tdm_tensor *o, int64_t i)
{
    const int64_t k = tdm_tensor_numel(o) / o->dims[0];
    const float *y = (const float *)o->data + i * k;
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (y[j] > y[best])
            best = j;
    return best;
}

static tdm_status check_output(const tdm_tensor *o, const char *name, int64_t b, tdm_err *err)
{
    if (o->dtype != TDM_DTYPE_FLOAT32 || o->ndim < 1 || o->dims[0] != b ||
        tdm_tensor_numel(o) < b) {
        char buf[128];
        return tdm_errf(err, TDM_ERR_SHAPE, "output '%s' is %s, want float32 [%lld, classes]", name,
                        tdm_tensor_shape_str(o, buf, sizeof buf), (long long)b);
    }
    return TDM_OK;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median of v[0..n) (sorts v in place). */
static double median(double *v, int64_t n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* State of one batch: the head's cut tensors, and the tail's decoded copies. */
typedef struct sweep_batch {
    tdm_tensor *cut;  /* n_cut: borrowed views or owned results of the head */
    tdm_tensor *dec;  /* n_cut: owned, same shapes, filled per setting */
    int64_t *ref_top; /* uncompressed model's top-1 per image */
    uint8_t *frame;
    size_t frame_cap;
} sweep_batch;

/* Encodes and decodes request i of every cut tensor under p into b->dec. */
static tdm_status roundtrip_request(const tdm_sweep_config *cfg, sweep_batch *b,
                                    const tdm_codec_params *p, int64_t i, tdm_sweep_result *r,
                                    double *enc_ns, double *dec_ns, tdm_err *err)
{
    *enc_ns = *dec_ns = 0;
    for (int c = 0; c < cfg->n_cut; c++) {
        const tdm_tensor *src = &b->cut[c];
        const size_t per = tdm_tensor_nbytes(src) / (size_t)src->dims[0];
        uint8_t *dst = (uint8_t *)b->dec[c].data + (size_t)i * per;
        const uint8_t *from = (const uint8_t *)src->data + (size_t)i * per;
        if (src->dtype != TDM_DTYPE_FLOAT32) {
            memcpy(dst, from, per);
            r->bytes += per;
            continue;
        }
        tdm_tensor view = *src;
        view.dims[0] = 1;
        view.data = (void *)from;
        view.flags = 0;
        tdm_codec_params q = *p;
        if (view.ndim < 2)
            q.granularity = TDM_CODEC_GRANULARITY_TENSOR;
        const size_t bound = tdm_codec_bound(&view, &q);
        if (bound == 0)
            return tdm_errf(err, TDM_ERR_INVALID_ARG, "cut tensor '%s': codec refuses its shape",
                            cfg->cut_names[c]);
        if (bound > b->frame_cap) {
            uint8_t *nb = realloc(b->frame, bound);
            if (nb == NULL)
                return tdm_errf(err, TDM_ERR_NOMEM, "out of memory for a %zu-byte frame", bound);
            b->frame = nb;
            b->frame_cap = bound;
        }
        size_t len = 0;
        uint64_t t0 = tdm_now_ns();
        tdm_status st = tdm_codec_encode(&view, &q, b->frame, b->frame_cap, &len, err);
        uint64_t t1 = tdm_now_ns();
        if (st != TDM_OK)
            return st;
        tdm_tensor out = {0};
        st = tdm_codec_decode(b->frame, len, &out, cfg->max_decoded, err);
        uint64_t t2 = tdm_now_ns();
        if (st != TDM_OK)
            return st;
        *enc_ns += (double)(t1 - t0);
        *dec_ns += (double)(t2 - t1);
        r->bytes += len;
        if (tdm_tensor_nbytes(&out) != per) {
            tdm_tensor_free(&out);
            return tdm_errf(err, TDM_ERR_SHAPE, "cut tensor '%s': decoded size differs",
                            cfg->cut_names[c]);
        }
        memcpy(dst, out.data, per);
        tdm_tensor_free(&out);
    }
    return TDM_OK;
}

static void batch_clear(sweep_batch *b, int n_cut)
{
    for (int c = 0; c < n_cut; c++) {
        tdm_tensor_free(&b->cut[c]);
        tdm_tensor_free(&b->dec[c]);
    }
}

tdm_status tdm_sweep_run(const tdm_sweep_config *cfg, const tdm_codec_params *settings, int n,
                         tdm_sweep_result *results, int64_t *ref_correct, double *fp32_bytes,
                         tdm_err *err)
{
    const tdm_tensor *x = cfg->x;
    if (x->dtype != TDM_DTYPE_FLOAT32 || x->ndim < 1 || cfg->batch < 1 || cfg->n_cut < 1)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "sweep: bad images, batch or cut");
    const int64_t n_img = x->dims[0];
    const int64_t per_img = n_img > 0 ? tdm_tensor_numel(x) / n_img : 0;
    memset(results, 0, (size_t)n * sizeof *results);
    for (int s = 0; s < n; s++)
        results[s].params = settings[s];
    *ref_correct = 0;
    *fp32_bytes = 0;

    /* Which cut tensors the head computes (a graph input in the cut is the batch input). */
    const int n_cut = cfg->n_cut;
    const char **targets = calloc((size_t)n_cut + 1, sizeof *targets);
    int *target_of = calloc((size_t)n_cut, sizeof *target_of);
    tdm_tensor *head_out = calloc((size_t)n_cut + 1, sizeof *head_out);
    sweep_batch b = {0};
    b.cut = calloc((size_t)n_cut, sizeof *b.cut);
    b.dec = calloc((size_t)n_cut, sizeof *b.dec);
    b.ref_top = calloc((size_t)cfg->batch, sizeof *b.ref_top);
    tdm_tensor in = {0}, out = {0};
    tdm_status st = TDM_OK;
    const size_t n_samples = (size_t)n * (size_t)(n_img > 0 ? n_img : 1);
    double *enc_samples = calloc(n_samples, sizeof *enc_samples);
    double *dec_samples = calloc(n_samples, sizeof *dec_samples);
    if (enc_samples == NULL || dec_samples == NULL || targets == NULL || target_of == NULL ||
        head_out == NULL || b.cut == NULL || b.dec == NULL || b.ref_top == NULL) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
        goto done;
    }
    int n_targets = 0;
    for (int c = 0; c < n_cut; c++) {
        if (strcmp(cfg->cut_names[c], cfg->input_name) == 0) {
            target_of[c] = -1;
        } else {
            target_of[c] = n_targets;
            targets[n_targets++] = cfg->cut_names[c];
        }
    }
    targets[n_targets] = cfg->output_name;
    int64_t dims[TDM_MAX_DIMS];
    dims[0] = cfg->batch;
    for (int k = 1; k < x->ndim; k++)
        dims[k] = x->dims[k];
    if ((st = tdm_tensor_make(&in, TDM_DTYPE_FLOAT32, x->ndim, dims, err)) != TDM_OK)
        goto done;

    for (int64_t start = 0; start < n_img; start += cfg->batch) {
        const int64_t nb = n_img - start < cfg->batch ? n_img - start : cfg->batch;
        const int64_t rb = cfg->fixed_batch ? cfg->batch : nb;
        in.dims[0] = rb;
        memcpy(in.data, (const float *)x->data + start * per_img,
               (size_t)(nb * per_img) * sizeof(float));
        if (nb < rb)
            memset((float *)in.data + nb * per_img, 0,
                   (size_t)((rb - nb) * per_img) * sizeof(float));
        const char *in_name = cfg->input_name;
        st = tdm_session_run_range(cfg->session, 1, &in_name, &in, n_targets + 1, targets, head_out,
                                   err);
        if (st != TDM_OK)
            goto done;
        if ((st = check_output(&head_out[n_targets], cfg->output_name, rb, err)) != TDM_OK)
            goto done;
        for (int64_t i = 0; i < nb; i++) {
            b.ref_top[i] = row_argmax(&head_out[n_targets], i);
            *ref_correct += b.ref_top[i] == cfg->labels[start + i];
        }
        tdm_tensor_free(&head_out[n_targets]);
        /* Move the head's results into b.cut (the input is copied), and shape b.dec. */
        double fp32 = 0;
        for (int c = 0; c < n_cut; c++) {
            if (target_of[c] < 0)
                st = tdm_tensor_copy(&b.cut[c], &in, err);
            else {
                b.cut[c] = head_out[target_of[c]];
                memset(&head_out[target_of[c]], 0, sizeof head_out[0]);
            }
            if (st != TDM_OK)
                goto done;
            const tdm_tensor *t = &b.cut[c];
            if (t->ndim < 1 || t->dims[0] != rb || tdm_dtype_size(t->dtype) == 0) {
                char buf[128];
                st = tdm_errf(err, TDM_ERR_SHAPE,
                              "cut tensor '%s' is %s: its first dim is not the batch (%lld)",
                              cfg->cut_names[c], tdm_tensor_shape_str(t, buf, sizeof buf),
                              (long long)rb);
                goto done;
            }
            if ((st = tdm_tensor_copy(&b.dec[c], t, err)) != TDM_OK)
                goto done;
            fp32 += (double)tdm_tensor_numel(t) / (double)rb *
                    (t->dtype == TDM_DTYPE_FLOAT32 ? 4.0 : (double)tdm_dtype_size(t->dtype));
        }
        *fp32_bytes = fp32;

        for (int s = 0; s < n; s++) {
            tdm_sweep_result *r = &results[s];
            for (int64_t i = 0; i < nb; i++) {
                double *e = &enc_samples[(size_t)s * (size_t)n_img + (size_t)(start + i)];
                double *d = &dec_samples[(size_t)s * (size_t)n_img + (size_t)(start + i)];
                st = roundtrip_request(cfg, &b, &settings[s], i, r, e, d, err);
                r->encode_ns += *e;
                r->decode_ns += *d;
                if (st != TDM_OK) {
                    char label[96], msg[sizeof err->msg];
                    snprintf(msg, sizeof msg, "%s", err->msg);
                    tdm_errf(err, st, "%s: image %lld: %s",
                             tdm_sweep_label(&settings[s], label, sizeof label),
                             (long long)(start + i), msg);
                    goto done;
                }
            }
            st = tdm_session_run_range(cfg->session, n_cut, cfg->cut_names, b.dec, 1,
                                       &cfg->output_name, &out, err);
            if (st != TDM_OK)
                goto done;
            if ((st = check_output(&out, cfg->output_name, rb, err)) != TDM_OK)
                goto done;
            for (int64_t i = 0; i < nb; i++) {
                const int64_t top = row_argmax(&out, i);
                r->correct += top == cfg->labels[start + i];
                r->agree += top == b.ref_top[i];
            }
            r->requests += nb;
            tdm_tensor_free(&out);
        }
        batch_clear(&b, n_cut);
    }
    for (int s = 0; s < n && n_img > 0; s++) {
        results[s].encode_p50_us = median(&enc_samples[(size_t)s * (size_t)n_img], n_img) / 1e3;
        results[s].decode_p50_us = median(&dec_samples[(size_t)s * (size_t)n_img], n_img) / 1e3;
    }

done:
    free(enc_samples);
    free(dec_samples);
    tdm_tensor_free(&out);
    tdm_tensor_free(&in);
    if (b.cut != NULL && b.dec != NULL)
        batch_clear(&b, n_cut);
    if (head_out != NULL)
        for (int k = 0; k <= n_cut; k++)
            tdm_tensor_free(&head_out[k]);
    free(head_out);
    free(targets);
    free(target_of);
    free(b.cut);
    free(b.dec);
    free(b.ref_top);
    free(b.frame);
    return st;
}
