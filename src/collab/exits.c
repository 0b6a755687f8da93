/*
 * Exit heads: pooling at cuts, training in C, the heads file, extraction.
 *
 * Training is deliberately plain: the features are frozen and small (tens
 * to a few thousand values per input), so a per-example forward/backward
 * loop over a contiguous parameter vector with Adam is fast enough and easy
 * to check. Standardising the features first (mean/std kept in the head)
 * makes one learning rate work for every cut, whatever the scale of its
 * activations. Everything random comes from one seeded splitmix64 stream, so
 * the same data and seed give the same bytes in the heads file.
 *
 * The heads file is JSON because the project already has a strict,
 * depth-limited, fuzzed JSON reader: the loader only has to check that each
 * field has the right type and count. Floats are written with 9 significant
 * digits, which round-trips a float exactly.
 */
#include "tandem/exits.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/json.h"
#include "tandem/data.h"

/* ---- pooling ------------------------------------------------------------------------ */

const char *tdm_exit_pool_name(tdm_exit_pool p, int grid, char *buf, size_t len)
{
    switch (p) {
    case TDM_POOL_AUTO: snprintf(buf, len, "auto"); return buf;
    case TDM_POOL_GAP: snprintf(buf, len, "gap"); return buf;
    case TDM_POOL_GRID: snprintf(buf, len, "grid%d", grid); return buf;
    case TDM_POOL_FLATTEN: snprintf(buf, len, "flatten"); return buf;
    case TDM_POOL_TOKENS: snprintf(buf, len, "tokens"); return buf;
    }
    return NULL;
}

bool tdm_exit_pool_parse(const char *s, tdm_exit_pool *p, int *grid)
{
    *grid = 0;
    if (strcmp(s, "auto") == 0)
        *p = TDM_POOL_AUTO;
    else if (strcmp(s, "gap") == 0)
        *p = TDM_POOL_GAP;
    else if (strcmp(s, "flatten") == 0)
        *p = TDM_POOL_FLATTEN;
    else if (strcmp(s, "tokens") == 0)
        *p = TDM_POOL_TOKENS;
    else if (strncmp(s, "grid", 4) == 0 && s[4] >= '1' && s[4] <= '9') {
        int k = s[4] - '0';
        if (s[5] >= '0' && s[5] <= '9') {
            k = k * 10 + (s[5] - '0');
            if (s[6] != '\0')
                return false;
        } else if (s[5] != '\0') {
            return false;
        }
        if (k > TDM_EXITS_MAX_GRID)
            return false;
        *p = TDM_POOL_GRID;
        *grid = k;
    } else
        return false;
    return true;
}

tdm_status tdm_exit_pool_dim(const tdm_tensor *t, const char *cut, tdm_exit_pool pool, int grid,
                             tdm_exit_pool *resolved, int64_t *dim, tdm_err *err)
{
    if (t->dtype != TDM_DTYPE_FLOAT32)
        return tdm_errf(err, TDM_ERR_SHAPE, "cut '%s' is %s; exit heads need float32", cut,
                        tdm_dtype_name(t->dtype));
    if (t->ndim < 1)
        return tdm_errf(err, TDM_ERR_SHAPE, "cut '%s' is a scalar; it has no batch dimension", cut);
    if (pool == TDM_POOL_AUTO)
        pool = t->ndim == 4 ? TDM_POOL_GAP : t->ndim == 3 ? TDM_POOL_TOKENS : TDM_POOL_FLATTEN;
    int64_t d = 1;
    switch (pool) {
    case TDM_POOL_GAP:
    case TDM_POOL_GRID:
        if (t->ndim != 4)
            return tdm_errf(err, TDM_ERR_SHAPE,
                            "cut '%s' has rank %d; %s pooling needs a [N,C,H,W] feature map", cut,
                            (int)t->ndim, pool == TDM_POOL_GAP ? "gap" : "grid");
        if (pool == TDM_POOL_GRID && (grid < 1 || grid > t->dims[2] || grid > t->dims[3]))
            return tdm_errf(err, TDM_ERR_SHAPE,
                            "cut '%s': grid%d pooling needs H and W >= %d (it is %lldx%lld)", cut,
                            grid, grid, (long long)t->dims[2], (long long)t->dims[3]);
        d = t->dims[1] * (pool == TDM_POOL_GRID ? (int64_t)grid * grid : 1);
        break;
    case TDM_POOL_TOKENS:
        if (t->ndim != 3)
            return tdm_errf(err, TDM_ERR_SHAPE, "cut '%s' has rank %d; token pooling needs [N,T,D]",
                            cut, (int)t->ndim);
        d = t->dims[2];
        break;
    case TDM_POOL_FLATTEN:
        for (int k = 1; k < t->ndim; k++)
            d *= t->dims[k];
        break;
    default: return tdm_errf(err, TDM_ERR_INVALID_ARG, "cut '%s': unknown pooling", cut);
    }
    if (d < 1 || d > TDM_EXITS_MAX_DIM)
        return tdm_errf(err, TDM_ERR_SHAPE,
                        "cut '%s' pools to %lld values per input (1..%d allowed); try gap pooling",
                        cut, (long long)d, TDM_EXITS_MAX_DIM);
    if (resolved)
        *resolved = pool;
    *dim = d;
    return TDM_OK;
}

tdm_status tdm_exit_pool_apply(const tdm_tensor *t, const char *cut, tdm_exit_pool pool, int grid,
                               const float *mask, float *out, tdm_err *err)
{
    int64_t dim = 0;
    tdm_status st = tdm_exit_pool_dim(t, cut, pool, grid, &pool, &dim, err);
    if (st != TDM_OK)
        return st;
    const int64_t n = t->dims[0];
    const float *x = t->data;
    if (pool == TDM_POOL_FLATTEN) {
        memcpy(out, x, (size_t)(n * dim) * sizeof(float));
    } else if (pool == TDM_POOL_TOKENS) {
        const int64_t T = t->dims[1], D = t->dims[2];
        for (int64_t i = 0; i < n; i++) {
            float *o = out + i * D;
            double cnt = 0.0;
            for (int64_t d = 0; d < D; d++)
                o[d] = 0.0f;
            for (int64_t tk = 0; tk < T; tk++) {
                float m = mask ? mask[i * T + tk] : 1.0f;
                if (m == 0.0f)
                    continue;
                cnt += m;
                const float *r = x + (i * T + tk) * D;
                for (int64_t d = 0; d < D; d++)
                    o[d] += m * r[d];
            }
            for (int64_t d = 0; d < D; d++)
                o[d] = cnt > 0.0 ? (float)(o[d] / cnt) : 0.0f;
        }
    } else {
        const int64_t C = t->dims[1], H = t->dims[2], W = t->dims[3];
        const int K = pool == TDM_POOL_GRID ? grid : 1;
        for (int64_t i = 0; i < n; i++)
            for (int64_t c = 0; c < C; c++) {
                const float *p = x + (i * C + c) * H * W;
                float *o = out + (i * C + c) * K * K;
                /* adaptive average pooling: cell (a, b) covers rows [a*H/K, ceil((a+1)*H/K)) */
                for (int a = 0; a < K; a++) {
                    int64_t h0 = a * H / K, h1 = ((a + 1) * H + K - 1) / K;
                    for (int b = 0; b < K; b++) {
                        int64_t w0 = b * W / K, w1 = ((b + 1) * W + K - 1) / K;
                        double s = 0.0;
                        for (int64_t hh = h0; hh < h1; hh++)
                            for (int64_t ww = w0; ww < w1; ww++)
                                s += p[hh * W + ww];
                        o[a * K + b] = (float)(s / (double)((h1 - h0) * (w1 - w0)));
                    }
                }
            }
    }
    return TDM_OK;
}

/* ---- heads -------------------------------------------------------------------------- */

void tdm_exit_head_clear(tdm_exit_head *h)
{
    free(h->cut);
    free(h->mean);
    free(h->std);
    free(h->w1);
    free(h->b1);
    free(h->w2);
    free(h->b2);
    memset(h, 0, sizeof *h);
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rnd01(uint64_t *s)
{
    return (double)(splitmix64(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Dot product with eight partial sums, so the compiler can vectorise it without -ffast-math
 * (the order of additions is fixed, so results stay deterministic). */
static float dot(const float *a, const float *b, int n)
{
    float acc[8] = {0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[k + j] * b[k + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; k < n; k++)
        s += a[k] * b[k];
    return s;
}

/* Parameter layout inside one vector: w1, b1, w2, b2 (w1/b1 empty without a hidden layer). */
typedef struct layout {
    int in, hid, out, mid; /* mid = hid ? hid : in */
    size_t w1, b1, w2, b2, total;
} layout;

static layout make_layout(int in, int hid, int out)
{
    layout L = {.in = in, .hid = hid, .out = out, .mid = hid ? hid : in};
    L.w1 = 0;
    L.b1 = (size_t)hid * in;
    L.w2 = L.b1 + (size_t)hid;
    L.b2 = L.w2 + (size_t)out * L.mid;
    L.total = L.b2 + (size_t)out;
    return L;
}

/*
 * Forward of one standardised example: fills a (hidden activations, when
 * any) and p (softmax probabilities); returns -log p[label] when label >= 0.
 */
static double forward(const layout *L, const float *P, const float *x, float *a, double *p,
                      int label)
{
    const float *in = x;
    if (L->hid) {
        for (int j = 0; j < L->hid; j++) {
            const float *w = P + L->w1 + (size_t)j * L->in;
            float s = P[L->b1 + j] + dot(w, x, L->in);
            a[j] = s > 0.0f ? s : 0.0f;
        }
        in = a;
    }
    double m = -INFINITY;
    for (int c = 0; c < L->out; c++) {
        const float *w = P + L->w2 + (size_t)c * L->mid;
        float s = P[L->b2 + c] + dot(w, in, L->mid);
        p[c] = s;
        if (s > m)
            m = s;
    }
    double z = 0.0;
    for (int c = 0; c < L->out; c++)
        z += (p[c] = exp(p[c] - m));
    for (int c = 0; c < L->out; c++)
        p[c] /= z;
    if (label < 0)
        return 0.0;
    double pl = p[label];
    return -log(pl > 1e-300 ? pl : 1e-300);
}

/* Adds the gradient of one example's loss to G. */
static void backward(const layout *L, const float *P, const float *x, const float *a,
                     const double *p, int label, float *G, float *dz)
{
    const float *in = L->hid ? a : x;
    for (int c = 0; c < L->out; c++) {
        float d = (float)(p[c] - (c == label ? 1.0 : 0.0));
        float *g = G + L->w2 + (size_t)c * L->mid;
        for (int k = 0; k < L->mid; k++)
            g[k] += d * in[k];
        G[L->b2 + c] += d;
    }
    if (!L->hid)
        return;
    for (int j = 0; j < L->hid; j++) {
        float s = 0.0f;
        if (a[j] > 0.0f)
            for (int c = 0; c < L->out; c++)
                s += P[L->w2 + (size_t)c * L->mid + j] * (float)(p[c] - (c == label ? 1.0 : 0.0));
        dz[j] = s;
    }
    for (int j = 0; j < L->hid; j++) {
        if (dz[j] == 0.0f)
            continue;
        float *g = G + L->w1 + (size_t)j * L->in;
        for (int k = 0; k < L->in; k++)
            g[k] += dz[j] * x[k];
        G[L->b1 + j] += dz[j];
    }
}

/* Mean loss and accuracy over the examples idx[0..m) of standardised xs. */
static void evaluate(const layout *L, const float *P, const float *xs, const int32_t *y,
                     const int64_t *idx, int64_t m, float *a, double *p, double *loss, double *acc)
{
    double tot = 0.0;
    int64_t right = 0;
    for (int64_t r = 0; r < m; r++) {
        int64_t i = idx[r];
        tot += forward(L, P, xs + i * L->in, a, p, y[i]);
        int arg = 0;
        for (int c = 1; c < L->out; c++)
            if (p[c] > p[arg])
                arg = c;
        right += arg == y[i];
    }
    *loss = m ? tot / (double)m : 0.0;
    *acc = m ? (double)right / (double)m : 0.0;
}

tdm_status tdm_exit_head_train(tdm_exit_head *h, const float *x, const int32_t *y, int64_t n,
                               int dim, int n_classes, const tdm_exit_train_options *opt,
                               tdm_exit_train_report *rep, tdm_err *err)
{
    tdm_exit_train_options o = opt ? *opt : (tdm_exit_train_options){0};
    if (o.max_epochs <= 0)
        o.max_epochs = 60;
    if (o.batch <= 0)
        o.batch = 64;
    if (!(o.lr > 0.0))
        o.lr = 1e-3;
    if (o.l2 == 0.0)
        o.l2 = 1e-4;
    if (o.l2 < 0.0)
        o.l2 = 0.0;
    if (!(o.val_fraction > 0.0 && o.val_fraction < 1.0))
        o.val_fraction = 0.1;
    if (o.patience <= 0)
        o.patience = 6;
    if (dim < 1 || dim > TDM_EXITS_MAX_DIM)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "exit head: feature length %d is not 1..%d", dim,
                        TDM_EXITS_MAX_DIM);
    if (n_classes < 2 || n_classes > TDM_EXITS_MAX_CLASSES)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "exit head: %d classes (2..%d allowed)",
                        n_classes, TDM_EXITS_MAX_CLASSES);
    if (o.hidden < 0 || o.hidden > TDM_EXITS_MAX_HIDDEN)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "exit head: hidden width %d is not 0..%d",
                        o.hidden, TDM_EXITS_MAX_HIDDEN);
    int64_t n_val = (int64_t)((double)n * o.val_fraction);
    int64_t n_tr = n - n_val;
    if (n_val < 1 || n_tr < 1)
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "exit head: %lld examples are too few for a training and a validation "
                        "part",
                        (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= n_classes)
            return tdm_errf(err, TDM_ERR_INVALID_ARG,
                            "exit head: label %d of example %lld is outside 0..%d", (int)y[i],
                            (long long)i, n_classes - 1);

    layout L = make_layout(dim, o.hidden, n_classes);
    uint64_t seed = o.seed ^ 0x74646d2d65786974ull; /* "tdm-exit" */
    tdm_status st = TDM_OK;
    size_t xs_n;
    float *xs = NULL, *P = NULL, *best = NULL, *G = NULL, *M = NULL, *V = NULL;
    float *mean = NULL, *sd = NULL, *a = NULL, *dz = NULL;
    double *p = NULL;
    int64_t *idx = NULL;
    if (tdm_mul_overflow((size_t)n, (size_t)dim, &xs_n) || xs_n > ((size_t)1 << 31)) {
        return tdm_errf(err, TDM_ERR_NOMEM, "exit head: %lld x %d features are too many",
                        (long long)n, dim);
    }
    xs = malloc(xs_n * sizeof *xs);
    P = calloc(L.total, sizeof *P);
    best = calloc(L.total, sizeof *best);
    G = calloc(L.total, sizeof *G);
    M = calloc(L.total, sizeof *M);
    V = calloc(L.total, sizeof *V);
    mean = calloc((size_t)dim, sizeof *mean);
    sd = calloc((size_t)dim, sizeof *sd);
    a = calloc((size_t)L.mid, sizeof *a);
    dz = calloc((size_t)L.mid, sizeof *dz);
    p = calloc((size_t)n_classes, sizeof *p);
    idx = malloc((size_t)n * sizeof *idx);
    if (!xs || !P || !best || !G || !M || !V || !mean || !sd || !a || !dz || !p || !idx) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "exit head: out of memory for %lld x %d features",
                      (long long)n, dim);
        goto done;
    }
    /* Shuffle once: the last n_val examples are the validation part. */
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)(splitmix64(&seed) % (uint64_t)(i + 1));
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
    /* Standardisation from the training part. */
    for (int k = 0; k < dim; k++) {
        double s = 0.0, s2 = 0.0;
        for (int64_t r = 0; r < n_tr; r++) {
            double v = x[idx[r] * dim + k];
            s += v;
            s2 += v * v;
        }
        double mu = s / (double)n_tr, var = s2 / (double)n_tr - mu * mu;
        double sdv = var > 1e-12 ? sqrt(var) : 1.0;
        mean[k] = (float)mu;
        sd[k] = (float)sdv;
    }
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < dim; k++) {
            float v = x[i * dim + k];
            if (!isfinite(v)) {
                st = tdm_errf(err, TDM_ERR_INVALID_ARG,
                              "exit head: feature %d of example %lld is not finite", k,
                              (long long)i);
                goto done;
            }
            xs[i * dim + k] = (v - mean[k]) / sd[k];
        }
    /* Glorot-uniform for the output layer, He-uniform for the hidden one; biases zero. */
    if (L.hid) {
        double lim = sqrt(6.0 / L.in);
        for (size_t k = 0; k < (size_t)L.hid * L.in; k++)
            P[L.w1 + k] = (float)((2.0 * rnd01(&seed) - 1.0) * lim);
    }
    {
        double lim = sqrt(6.0 / (L.mid + L.out));
        for (size_t k = 0; k < (size_t)L.out * L.mid; k++)
            P[L.w2 + k] = (float)((2.0 * rnd01(&seed) - 1.0) * lim);
    }
    memcpy(best, P, L.total * sizeof *P);

    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    int64_t step = 0;
    double best_loss = INFINITY;
    int best_epoch = 0, since = 0, epoch = 0;
    for (epoch = 1; epoch <= o.max_epochs; epoch++) {
        for (int64_t i = n_tr - 1; i > 0; i--) {
            int64_t j = (int64_t)(splitmix64(&seed) % (uint64_t)(i + 1));
            int64_t t = idx[i];
            idx[i] = idx[j];
            idx[j] = t;
        }
        for (int64_t b0 = 0; b0 < n_tr; b0 += o.batch) {
            int64_t bn = n_tr - b0 < o.batch ? n_tr - b0 : o.batch;
            memset(G, 0, L.total * sizeof *G);
            for (int64_t r = 0; r < bn; r++) {
                int64_t i = idx[b0 + r];
                forward(&L, P, xs + i * dim, a, p, y[i]);
                backward(&L, P, xs + i * dim, a, p, y[i], G, dz);
            }
            step++;
            const double c1 = 1.0 - pow(b1, (double)step), c2 = 1.0 - pow(b2, (double)step);
            const float inv = 1.0f / (float)bn;
            for (size_t k = 0; k < L.total; k++) {
                bool is_w = (k < L.b1) || (k >= L.w2 && k < L.b2);
                float g = G[k] * inv + (is_w ? (float)o.l2 * P[k] : 0.0f);
                M[k] = (float)(b1 * M[k] + (1.0 - b1) * g);
                V[k] = (float)(b2 * V[k] + (1.0 - b2) * (double)g * g);
                P[k] -= (float)(o.lr * (M[k] / c1) / (sqrt(V[k] / c2) + eps));
            }
        }
        double vl, va;
        evaluate(&L, P, xs, y, idx + n_tr, n_val, a, p, &vl, &va);
        if (vl < best_loss - 1e-6) {
            best_loss = vl;
            best_epoch = epoch;
            since = 0;
            memcpy(best, P, L.total * sizeof *P);
        } else if (++since >= o.patience) {
            break;
        }
    }
    if (rep) {
        double tl, ta, vl, va;
        evaluate(&L, best, xs, y, idx, n_tr, a, p, &tl, &ta);
        evaluate(&L, best, xs, y, idx + n_tr, n_val, a, p, &vl, &va);
        rep->epochs = epoch > o.max_epochs ? o.max_epochs : epoch;
        rep->best_epoch = best_epoch;
        rep->train_acc = ta;
        rep->val_acc = va;
        rep->val_nll = vl;
    }
    /* Move the kept weights into the head's own arrays. */
    free(h->mean);
    free(h->std);
    free(h->w1);
    free(h->b1);
    free(h->w2);
    free(h->b2);
    h->w1 = h->b1 = NULL;
    h->mean = mean;
    h->std = sd;
    mean = sd = NULL;
    h->w2 = malloc((size_t)L.out * L.mid * sizeof(float));
    h->b2 = malloc((size_t)L.out * sizeof(float));
    if (L.hid) {
        h->w1 = malloc((size_t)L.hid * L.in * sizeof(float));
        h->b1 = malloc((size_t)L.hid * sizeof(float));
    }
    if (!h->w2 || !h->b2 || (L.hid && (!h->w1 || !h->b1))) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "exit head: out of memory for the weights");
        goto done;
    }
    memcpy(h->w2, best + L.w2, (size_t)L.out * L.mid * sizeof(float));
    memcpy(h->b2, best + L.b2, (size_t)L.out * sizeof(float));
    if (L.hid) {
        memcpy(h->w1, best + L.w1, (size_t)L.hid * L.in * sizeof(float));
        memcpy(h->b1, best + L.b1, (size_t)L.hid * sizeof(float));
    }
    h->in_dim = dim;
    h->hidden = o.hidden;
    h->n_classes = n_classes;
    h->temperature = 1.0;
    h->threshold = 2.0;
done:
    free(xs);
    free(P);
    free(best);
    free(G);
    free(M);
    free(V);
    free(mean);
    free(sd);
    free(a);
    free(dz);
    free(p);
    free(idx);
    return st;
}

tdm_status tdm_exit_head_logits(const tdm_exit_head *h, const float *x, int64_t n, float *logits,
                                tdm_err *err)
{
    const int in = h->in_dim, hid = h->hidden, out = h->n_classes, mid = hid ? hid : in;
    float *xs = malloc((size_t)in * sizeof *xs);
    float *a = malloc((size_t)mid * sizeof *a);
    if (!xs || !a) {
        free(xs);
        free(a);
        return tdm_errf(err, TDM_ERR_NOMEM, "exit head '%s': out of memory", h->cut);
    }
    for (int64_t i = 0; i < n; i++) {
        const float *r = x + i * in;
        for (int k = 0; k < in; k++)
            xs[k] = (r[k] - h->mean[k]) / h->std[k];
        const float *v = xs;
        if (hid) {
            for (int j = 0; j < hid; j++) {
                const float *w = h->w1 + (size_t)j * in;
                float s = h->b1[j] + dot(w, xs, in);
                a[j] = s > 0.0f ? s : 0.0f;
            }
            v = a;
        }
        for (int c = 0; c < out; c++) {
            const float *w = h->w2 + (size_t)c * mid;
            logits[i * out + c] = h->b2[c] + dot(w, v, mid);
        }
    }
    free(xs);
    free(a);
    return TDM_OK;
}

int64_t tdm_exit_head_flops(const tdm_exit_head *h, int64_t cut_numel)
{
    const int64_t in = h->in_dim, hid = h->hidden, out = h->n_classes, mid = hid ? hid : in;
    int64_t f = h->pool == TDM_POOL_FLATTEN ? 0 : cut_numel + in; /* sums, then one divide */
    f += 2 * in;                                                  /* standardisation */
    if (hid)
        f += 2 * in * hid + 2 * hid; /* multiply-adds, bias, ReLU */
    f += 2 * mid * out + out;        /* output layer */
    f += 3 * out;                    /* softmax for the confidence */
    return f;
}

/* ---- heads file --------------------------------------------------------------------- */

static void put_floats(tdm_json_buf *b, const char *key, const float *v, size_t n)
{
    tdm_json_buf_raw(b, ",\"", 2);
    tdm_json_buf_raw(b, key, strlen(key));
    tdm_json_buf_raw(b, "\":[", 3);
    for (size_t i = 0; i < n; i++) {
        if (i)
            tdm_json_buf_raw(b, ",", 1);
        tdm_json_buf_f32(b, v[i]);
    }
    tdm_json_buf_raw(b, "]", 1);
}

static void put_key(tdm_json_buf *b, const char *key)
{
    tdm_json_buf_raw(b, ",", 1);
    tdm_json_buf_string(b, key, strlen(key));
    tdm_json_buf_raw(b, ":", 1);
}

tdm_status tdm_exits_save(const tdm_exits *e, const char *path, tdm_err *err)
{
    tdm_json_buf b = {0};
    tdm_json_buf_raw(&b, "{\"format\":", 10);
    tdm_json_buf_string(&b, TDM_EXITS_FORMAT, strlen(TDM_EXITS_FORMAT));
    put_key(&b, "version");
    tdm_json_buf_i64(&b, TDM_EXITS_VERSION);
    put_key(&b, "model_sha256");
    tdm_json_buf_string(&b, e->model_sha256, strlen(e->model_sha256));
    put_key(&b, "confidence");
    const char *cf = e->confidence == TDM_CONF_ENTROPY ? "entropy" : "maxprob";
    tdm_json_buf_string(&b, cf, strlen(cf));
    put_key(&b, "n_classes");
    tdm_json_buf_i64(&b, e->n_classes);
    tdm_json_buf_raw(&b, ",\"exits\":[", 10);
    for (int k = 0; k < e->n_exits; k++) {
        const tdm_exit_head *h = &e->heads[k];
        char pool[32];
        tdm_exit_pool_name(h->pool, h->grid, pool, sizeof pool);
        tdm_json_buf_raw(&b, k ? ",\n{\"cut\":" : "\n{\"cut\":", k ? 9 : 8);
        tdm_json_buf_string(&b, h->cut, strlen(h->cut));
        put_key(&b, "pool");
        tdm_json_buf_string(&b, pool, strlen(pool));
        put_key(&b, "in_dim");
        tdm_json_buf_i64(&b, h->in_dim);
        put_key(&b, "hidden");
        tdm_json_buf_i64(&b, h->hidden);
        put_key(&b, "temperature");
        tdm_json_buf_f64(&b, h->temperature);
        put_key(&b, "threshold");
        tdm_json_buf_f64(&b, h->threshold);
        put_floats(&b, "mean", h->mean, (size_t)h->in_dim);
        put_floats(&b, "std", h->std, (size_t)h->in_dim);
        if (h->hidden) {
            put_floats(&b, "w1", h->w1, (size_t)h->hidden * h->in_dim);
            put_floats(&b, "b1", h->b1, (size_t)h->hidden);
        }
        int mid = h->hidden ? h->hidden : h->in_dim;
        put_floats(&b, "w2", h->w2, (size_t)h->n_classes * mid);
        put_floats(&b, "b2", h->b2, (size_t)h->n_classes);
        tdm_json_buf_raw(&b, "}", 1);
    }
    tdm_json_buf_raw(&b, "]}\n", 3);
    if (b.failed) {
        tdm_json_buf_free(&b);
        return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory writing the heads", path);
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        tdm_json_buf_free(&b);
        return tdm_errf(err, TDM_ERR_IO, "%s: cannot create the file", path);
    }
    bool ok = fwrite(b.data, 1, b.len, f) == b.len;
    ok = (fclose(f) == 0) && ok;
    tdm_json_buf_free(&b);
    if (!ok)
        return tdm_errf(err, TDM_ERR_IO, "%s: write failed", path);
    return TDM_OK;
}

static tdm_status get_int(const tdm_json *obj, const char *key, int64_t lo, int64_t hi,
                          const char *name, const char *where, int64_t *out, tdm_err *err)
{
    const tdm_json *v = tdm_json_get(obj, key);
    if (!v)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %s: missing field '%s'", name, where, key);
    if (!tdm_json_int(v, out) || *out < lo || *out > hi)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %s: '%s' is not an integer in %lld..%lld", name,
                        where, key, (long long)lo, (long long)hi);
    return TDM_OK;
}

static tdm_status get_num(const tdm_json *obj, const char *key, double lo, double hi,
                          const char *name, const char *where, double *out, tdm_err *err)
{
    const tdm_json *v = tdm_json_get(obj, key);
    if (!v)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %s: missing field '%s'", name, where, key);
    if (v->type != TDM_JSON_NUMBER || !(v->number >= lo && v->number <= hi))
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %s: '%s' is not a number in [%g, %g]", name, where,
                        key, lo, hi);
    *out = v->number;
    return TDM_OK;
}

static tdm_status get_floats(const tdm_json *obj, const char *key, size_t count, bool positive,
                             const char *name, const char *where, float **out, tdm_err *err)
{
    const tdm_json *v = tdm_json_get(obj, key);
    if (!v)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %s: missing field '%s'", name, where, key);
    if (v->type != TDM_JSON_ARRAY || v->len != count)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %s: '%s' must be an array of %zu numbers", name,
                        where, key, count);
    float *a = malloc((count ? count : 1) * sizeof *a);
    if (!a)
        return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < count; i++) {
        const tdm_json *e = &v->items[i];
        if (e->type != TDM_JSON_NUMBER || !(fabs(e->number) <= FLT_MAX) ||
            (positive && !(e->number > 0.0))) {
            free(a);
            return tdm_errf(err, TDM_ERR_PARSE, "%s: %s: '%s'[%zu] is not a %sfloat", name, where,
                            key, i, positive ? "positive " : "");
        }
        a[i] = (float)e->number;
        if (positive && !(a[i] > 0.0f)) {
            free(a);
            return tdm_errf(err, TDM_ERR_PARSE, "%s: %s: '%s'[%zu] underflows to 0", name, where,
                            key, i);
        }
    }
    *out = a;
    return TDM_OK;
}

static tdm_status parse_head(const tdm_json *o, int n_classes, const char *name, int k,
                             tdm_exit_head *h, tdm_err *err)
{
    char where[32];
    snprintf(where, sizeof where, "exit %d", k);
    if (o->type != TDM_JSON_OBJECT)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %s is not an object", name, where);
    size_t len;
    const char *cut = tdm_json_string(tdm_json_get(o, "cut"), &len);
    if (!cut || len == 0 || len > 4096 || strlen(cut) != len)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %s: 'cut' must be a tensor name", name, where);
    const char *pool = tdm_json_string(tdm_json_get(o, "pool"), NULL);
    if (!pool || !tdm_exit_pool_parse(pool, &h->pool, &h->grid) || h->pool == TDM_POOL_AUTO)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %s: 'pool' must be gap, gridK, flatten or tokens",
                        name, where);
    int64_t in = 0, hid = 0;
    double t = 1.0, thr = 2.0;
    tdm_status st;
    if ((st = get_int(o, "in_dim", 1, TDM_EXITS_MAX_DIM, name, where, &in, err)) != TDM_OK ||
        (st = get_int(o, "hidden", 0, TDM_EXITS_MAX_HIDDEN, name, where, &hid, err)) != TDM_OK ||
        (st = get_num(o, "temperature", 1e-3, 1e3, name, where, &t, err)) != TDM_OK ||
        (st = get_num(o, "threshold", 0.0, 2.0, name, where, &thr, err)) != TDM_OK)
        return st;
    h->cut = tdm_strdup(cut);
    if (!h->cut)
        return tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", name);
    h->in_dim = (int)in;
    h->hidden = (int)hid;
    h->n_classes = n_classes;
    h->temperature = t;
    h->threshold = thr;
    size_t mid = (size_t)(hid ? hid : in);
    if ((st = get_floats(o, "mean", (size_t)in, false, name, where, &h->mean, err)) != TDM_OK ||
        (st = get_floats(o, "std", (size_t)in, true, name, where, &h->std, err)) != TDM_OK ||
        (st = get_floats(o, "w2", (size_t)n_classes * mid, false, name, where, &h->w2, err)) !=
            TDM_OK ||
        (st = get_floats(o, "b2", (size_t)n_classes, false, name, where, &h->b2, err)) != TDM_OK)
        return st;
    if (hid) {
        if ((st = get_floats(o, "w1", (size_t)hid * (size_t)in, false, name, where, &h->w1, err)) !=
                TDM_OK ||
            (st = get_floats(o, "b1", (size_t)hid, false, name, where, &h->b1, err)) != TDM_OK)
            return st;
    } else if (tdm_json_get(o, "w1") || tdm_json_get(o, "b1")) {
        return tdm_errf(err, TDM_ERR_PARSE, "%s: %s: 'w1'/'b1' given but 'hidden' is 0", name,
                        where);
    }
    return TDM_OK;
}

tdm_status tdm_exits_parse(const char *text, size_t len, const char *name, tdm_exits **out,
                           tdm_err *err)
{
    *out = NULL;
    tdm_json_doc *doc = NULL;
    tdm_err jerr = {{0}};
    if (tdm_json_parse(text, len, 8, &doc, &jerr) != TDM_OK)
        return tdm_errf(err, TDM_ERR_PARSE, "%s: not a heads file: %s", name, jerr.msg);
    const tdm_json *r = tdm_json_root(doc);
    tdm_exits *e = calloc(1, sizeof *e);
    tdm_status st = TDM_OK;
    if (!e) {
        st = tdm_errf(err, TDM_ERR_NOMEM, "%s: out of memory", name);
        goto fail;
    }
    const char *fmt = tdm_json_string(tdm_json_get(r, "format"), NULL);
    if (r->type != TDM_JSON_OBJECT || !fmt || strcmp(fmt, TDM_EXITS_FORMAT) != 0) {
        st = tdm_errf(err, TDM_ERR_PARSE, "%s: not a heads file (no \"format\": \"%s\")", name,
                      TDM_EXITS_FORMAT);
        goto fail;
    }
    int64_t ver, nc;
    if ((st = get_int(r, "version", 0, INT32_MAX, name, "header", &ver, err)) != TDM_OK)
        goto fail;
    if (ver != TDM_EXITS_VERSION) {
        st = tdm_errf(err, TDM_ERR_UNSUPPORTED,
                      "%s: heads file version %lld; this build reads version %d", name,
                      (long long)ver, TDM_EXITS_VERSION);
        goto fail;
    }
    size_t hl;
    const char *sha = tdm_json_string(tdm_json_get(r, "model_sha256"), &hl);
    bool hex = sha && hl == 64;
    for (size_t i = 0; hex && i < 64; i++)
        hex = (sha[i] >= '0' && sha[i] <= '9') || (sha[i] >= 'a' && sha[i] <= 'f');
    if (!hex) {
        st = tdm_errf(err, TDM_ERR_PARSE, "%s: 'model_sha256' must be 64 lower-case hex digits",
                      name);
        goto fail;
    }
    memcpy(e->model_sha256, sha, 65);
    const char *cf = tdm_json_string(tdm_json_get(r, "confidence"), NULL);
    if (!cf || (strcmp(cf, "maxprob") && strcmp(cf, "entropy"))) {
        st = tdm_errf(err, TDM_ERR_PARSE, "%s: 'confidence' must be \"maxprob\" or \"entropy\"",
                      name);
        goto fail;
    }
    e->confidence = strcmp(cf, "entropy") == 0 ? TDM_CONF_ENTROPY : TDM_CONF_MAXPROB;
    if ((st = get_int(r, "n_classes", 2, TDM_EXITS_MAX_CLASSES, name, "header", &nc, err)) !=
        TDM_OK)
        goto fail;
    e->n_classes = (int)nc;
    const tdm_json *ex = tdm_json_get(r, "exits");
    if (!ex || ex->type != TDM_JSON_ARRAY || ex->len < 1 || ex->len > TDM_EXITS_MAX) {
        st = tdm_errf(err, TDM_ERR_PARSE, "%s: 'exits' must be an array of 1..%d heads", name,
                      TDM_EXITS_MAX);
        goto fail;
    }
    for (size_t k = 0; k < ex->len; k++) {
        e->n_exits = (int)k + 1;
        if ((st = parse_head(&ex->items[k], e->n_classes, name, (int)k, &e->heads[k], err)) !=
            TDM_OK)
            goto fail;
    }
    tdm_json_free(doc);
    *out = e;
    return TDM_OK;
fail:
    tdm_json_free(doc);
    tdm_exits_free(e);
    return st;
}

tdm_status tdm_exits_load(const char *path, tdm_exits **out, tdm_err *err)
{
    *out = NULL;
    void *buf;
    size_t len;
    tdm_status st = tdm_data_read_file(path, (size_t)256 << 20, &buf, &len, err);
    if (st != TDM_OK)
        return st;
    st = tdm_exits_parse(buf, len, path, out, err);
    free(buf);
    return st;
}

void tdm_exits_free(tdm_exits *e)
{
    if (!e)
        return;
    for (int k = 0; k < e->n_exits; k++)
        tdm_exit_head_clear(&e->heads[k]);
    free(e);
}

/* ---- extraction --------------------------------------------------------------------- */

void tdm_exit_features_free(tdm_exit_features *f)
{
    for (int k = 0; k < TDM_EXITS_MAX; k++)
        free(f->x[k]);
    free(f->final_logits);
    memset(f, 0, sizeof *f);
}

tdm_status tdm_exits_extract(const tdm_graph *g, tdm_session *s, const tdm_tensor *images,
                             int64_t first, int64_t count, int n_cuts, const char *const *cuts,
                             const tdm_exit_pool *pool, const int *grid, const char *final_name,
                             int batch, tdm_exit_features *out, tdm_err *err)
{
    memset(out, 0, sizeof *out);
    if (n_cuts < 0 || n_cuts > TDM_EXITS_MAX)
        return tdm_errf(err, TDM_ERR_INVALID_ARG, "%d cuts (0..%d allowed)", n_cuts, TDM_EXITS_MAX);
    if (images->ndim != 4 || images->dtype != TDM_DTYPE_FLOAT32 || first < 0 || count < 1 ||
        first + count > images->dims[0])
        return tdm_errf(err, TDM_ERR_INVALID_ARG,
                        "images %lld..%lld are not in a float32 [N,C,H,W] set of %lld",
                        (long long)first, (long long)(first + count),
                        (long long)(images->ndim >= 1 ? images->dims[0] : 0));
    if (tdm_graph_num_inputs(g) != 1)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "the model has %d inputs; exits need one",
                        tdm_graph_num_inputs(g));
    tdm_value_info vi;
    tdm_status st = tdm_graph_input_info(g, 0, &vi);
    if (st != TDM_OK)
        return tdm_errf(err, st, "cannot describe the model's input");
    if (vi.dtype != TDM_DTYPE_FLOAT32)
        return tdm_errf(err, TDM_ERR_UNSUPPORTED, "input '%s' is %s; exits feed float32 images",
                        vi.name, tdm_dtype_name(vi.dtype));
    const int64_t per = images->dims[1] * images->dims[2] * images->dims[3];
    int64_t item[TDM_MAX_DIMS];
    int item_rank = 3;
    item[0] = images->dims[1];
    item[1] = images->dims[2];
    item[2] = images->dims[3];
    {
        int64_t declared = 1;
        bool known = vi.ndim >= 1;
        for (int k = 1; k < vi.ndim; k++) {
            known = known && vi.dims[k] > 0;
            declared *= vi.dims[k] > 0 ? vi.dims[k] : 1;
        }
        if (known && declared == per) {
            item_rank = vi.ndim - 1;
            for (int k = 1; k < vi.ndim; k++)
                item[k - 1] = vi.dims[k];
        }
    }
    int64_t B = vi.ndim >= 1 && vi.dims[0] > 0 ? vi.dims[0] : (batch > 0 ? batch : 64);

    /* Targets: the distinct cuts that are not the input, then the final tensor. */
    const char *targets[TDM_EXITS_MAX + 1];
    int cut_slot[TDM_EXITS_MAX]; /* index in targets, or -1 for the input itself */
    int n_t = 0;
    for (int k = 0; k < n_cuts; k++) {
        cut_slot[k] = -1;
        if (strcmp(cuts[k], vi.name) == 0)
            continue;
        for (int j = 0; j < n_t; j++)
            if (strcmp(targets[j], cuts[k]) == 0)
                cut_slot[k] = j;
        if (cut_slot[k] < 0) {
            cut_slot[k] = n_t;
            targets[n_t++] = cuts[k];
        }
    }
    const int final_slot = n_t;
    targets[n_t++] = final_name;

    tdm_tensor in = {0}, res[TDM_EXITS_MAX + 1];
    memset(res, 0, sizeof res);
    int64_t in_dims[TDM_MAX_DIMS];
    in_dims[0] = B;
    for (int k = 0; k < item_rank; k++)
        in_dims[k + 1] = item[k];
    float *scratch = NULL;
    if ((st = tdm_tensor_make(&in, TDM_DTYPE_FLOAT32, item_rank + 1, in_dims, err)) != TDM_OK)
        return st;
    const char *in_name = vi.name;
    out->n = count;
    out->n_cuts = n_cuts;
    for (int64_t b0 = 0; b0 < count; b0 += B) {
        int64_t valid = count - b0 < B ? count - b0 : B;
        float *dst = in.data;
        memcpy(dst, (const float *)images->data + (first + b0) * per,
               (size_t)(valid * per) * sizeof(float));
        memset(dst + valid * per, 0, (size_t)((B - valid) * per) * sizeof(float));
        st = tdm_session_run_range(s, 1, &in_name, &in, n_t, targets, res, err);
        if (st != TDM_OK)
            goto done;
        for (int k = 0; k <= n_cuts; k++) {
            const bool is_final = k == n_cuts;
            const tdm_tensor *t = is_final          ? &res[final_slot]
                                  : cut_slot[k] < 0 ? &in
                                                    : &res[cut_slot[k]];
            const char *name = is_final ? final_name : cuts[k];
            if (t->ndim < 1 || t->dims[0] != B) {
                char sh[96];
                st = tdm_errf(err, TDM_ERR_SHAPE,
                              "'%s' is %s; its first dimension must be the batch (%lld)", name,
                              tdm_tensor_shape_str(t, sh, sizeof sh), (long long)B);
                goto done;
            }
            int64_t dim;
            tdm_exit_pool pk;
            if (is_final) {
                if (t->dtype != TDM_DTYPE_FLOAT32) {
                    st = tdm_errf(err, TDM_ERR_SHAPE, "final output '%s' is %s, not float32", name,
                                  tdm_dtype_name(t->dtype));
                    goto done;
                }
                dim = tdm_tensor_numel(t) / B;
                pk = TDM_POOL_FLATTEN;
            } else if ((st = tdm_exit_pool_dim(t, name, pool ? pool[k] : TDM_POOL_AUTO,
                                               grid ? grid[k] : 0, &pk, &dim, err)) != TDM_OK) {
                goto done;
            }
            if (b0 == 0) {
                float **slot = is_final ? &out->final_logits : &out->x[k];
                if (is_final) {
                    if (dim < 2 || dim > TDM_EXITS_MAX_CLASSES) {
                        st = tdm_errf(err, TDM_ERR_SHAPE,
                                      "final output '%s' has %lld values per input; expected "
                                      "class logits",
                                      name, (long long)dim);
                        goto done;
                    }
                    out->n_classes = (int)dim;
                } else {
                    out->dim[k] = dim;
                    out->pool[k] = pk;
                    out->cut_numel[k] = tdm_tensor_numel(t) / B;
                }
                *slot = malloc((size_t)(count * dim) * sizeof(float));
                if (!*slot) {
                    st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory for features of '%s'", name);
                    goto done;
                }
            } else if (dim != (is_final ? out->n_classes : out->dim[k])) {
                st = tdm_errf(err, TDM_ERR_SHAPE, "'%s' changed size between batches", name);
                goto done;
            }
            float *dstk = (is_final ? out->final_logits : out->x[k]) + b0 * dim;
            if (valid == B) {
                st = tdm_exit_pool_apply(t, name, pk, grid ? grid[k < n_cuts ? k : 0] : 0, NULL,
                                         dstk, err);
            } else {
                free(scratch);
                scratch = malloc((size_t)(B * dim) * sizeof(float));
                if (!scratch) {
                    st = tdm_errf(err, TDM_ERR_NOMEM, "out of memory");
                    goto done;
                }
                st = tdm_exit_pool_apply(t, name, pk, grid ? grid[k < n_cuts ? k : 0] : 0, NULL,
                                         scratch, err);
                if (st == TDM_OK)
                    memcpy(dstk, scratch, (size_t)(valid * dim) * sizeof(float));
            }
            if (st != TDM_OK)
                goto done;
        }
        for (int j = 0; j < n_t; j++)
            tdm_tensor_free(&res[j]);
    }
done:
    for (int j = 0; j < n_t; j++)
        tdm_tensor_free(&res[j]);
    tdm_tensor_free(&in);
    free(scratch);
    if (st != TDM_OK)
        tdm_exit_features_free(out);
    return st;
}
