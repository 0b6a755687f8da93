/*
 * tandem::Attention: multi-head scaled dot-product attention, fused.
 *
 *   Q [B, S, H*D], K [B, T, H*D], V [B, T, H*Dv], mask (optional, float,
 *   additive, broadcastable to [B, H, S, T])  ->  Y [B, S, H*Dv]
 *   Y[b, :, h] = softmax(Q_bh K_bh^T * scale + mask_bh) V_bh
 *
 * Heads are read in place through their column offset and the row stride
 * H*D, so the projections' outputs need no transpose to [B, H, S, D] and the
 * result lands directly in the layout the output projection reads. The work
 * unit is one (batch, head, block of query rows): its scores are the only
 * intermediate, one [rows, T] block in a per-thread scratch slice, computed
 * by a B^T GEMM (scale folded into alpha, the mask into its epilogue or
 * beta), exponentiated in place while in cache, multiplied by V, and only
 * then normalised: dividing the Dv outputs of a row by its sum is cheaper
 * than dividing its T probabilities. Units run in parallel over the pool,
 * each with the single-threaded GEMM on its own workspace, so there is no
 * nested parallelism and no allocation per head. Query rows are blocked only
 * when S x T would exceed 256 KiB, which keeps the block in L2 for long
 * sequences at the cost of re-transposing K once per block.
 *
 * The softmax subtracts the row maximum before exponentiating; a row masked
 * entirely with -inf has no defined distribution and becomes zeros.
 */
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/kernels/gemm.h"
#include "engine/ops/math_vec.h"
#include "engine/ops/nn_ops.h"

#define ATTN_BLOCK_FLOATS 65536

typedef struct attn_geom {
    int64_t B, S, T, H, D, Dv;
    float scale;
    int64_t m_str[4]; /* mask element strides over [B, H, S, T], 0 = broadcast */
    bool has_mask;
} attn_geom;

static bool shape_known(const tdm_tensor *t)
{
    if (t->ndim < 0)
        return false;
    for (int d = 0; d < t->ndim; d++)
        if (t->dims[d] < 0)
            return false;
    return true;
}

static tdm_status attn_setup(tdm_op_ctx *ctx, attn_geom *g)
{
    memset(g, 0, sizeof *g);
    if (ctx->n_in < 3 || ctx->n_in > 5 || ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG,
                           "needs inputs Q, K, V, an optional mask, an optional divisor and an "
                           "output");
    /* The divisor (input 4) is the scalar that exporters divide the scores by
     * (sqrt(head size) computed from shapes): the scale becomes scale / divisor. */
    static const char *const names[] = {"Q", "K", "V", "mask", "divisor"};
    for (int i = 0; i < ctx->n_in; i++) {
        const tdm_tensor *t = ctx->in[i];
        if (t == NULL) {
            if (i < 3)
                return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "input %s is required", names[i]);
            continue;
        }
        if (!shape_known(t))
            return TDM_ERR_NEEDS_VALUE;
        if (t->dtype != TDM_DTYPE_FLOAT32)
            return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED,
                               "input %s has dtype %s; only float32 is supported", names[i],
                               tdm_dtype_name(t->dtype));
        if (i == 4 && tdm_tensor_numel(t) != 1)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "divisor must be a scalar");
        if (i < 3 && t->ndim != 3)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                               "input %s must be [batch, seq, hidden], got rank %d", names[i],
                               (int)t->ndim);
    }
    const tdm_tensor *q = ctx->in[0], *k = ctx->in[1], *v = ctx->in[2];
    const tdm_tensor *mask = ctx->n_in > 3 ? ctx->in[3] : NULL;
    int64_t heads = tdm_attr_int(ctx->node, "num_heads", 0);
    if (heads < 1 || heads > (1 << 20))
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "num_heads must be >= 1, got %lld",
                           (long long)heads);
    g->B = q->dims[0];
    g->S = q->dims[1];
    g->T = k->dims[1];
    g->H = heads;
    char s1[96], s2[96], s3[96];
    if (k->dims[0] != g->B || v->dims[0] != g->B || v->dims[1] != g->T || k->dims[2] != q->dims[2])
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "Q %s, K %s and V %s do not fit together",
                           tdm_tensor_shape_str(q, s1, sizeof s1),
                           tdm_tensor_shape_str(k, s2, sizeof s2),
                           tdm_tensor_shape_str(v, s3, sizeof s3));
    if (q->dims[2] % heads != 0 || v->dims[2] % heads != 0)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                           "hidden sizes of Q %s and V %s are not multiples of num_heads %lld",
                           tdm_tensor_shape_str(q, s1, sizeof s1),
                           tdm_tensor_shape_str(v, s3, sizeof s3), (long long)heads);
    g->D = q->dims[2] / heads;
    g->Dv = v->dims[2] / heads;
    const tdm_attr *sa = tdm_node_attr(ctx->node, "scale");
    g->scale = sa != NULL ? tdm_attr_float(ctx->node, "scale", 1.f)
                          : (g->D > 0 ? (float)(1.0 / sqrt((double)g->D)) : 1.f);
    if (ctx->n_in > 4 && ctx->in[4] != NULL && ctx->in[4]->data != NULL)
        g->scale /= *(const float *)ctx->in[4]->data;
    if (mask != NULL) {
        if (mask->ndim > 4)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "mask %s has rank > 4",
                               tdm_tensor_shape_str(mask, s1, sizeof s1));
        const int64_t full[4] = {g->B, g->H, g->S, g->T};
        int64_t stride = 1;
        for (int d = 3; d >= 0; d--) {
            int md = d - (4 - mask->ndim);
            int64_t n = md >= 0 ? mask->dims[md] : 1;
            if (n != 1 && n != full[d])
                return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                                   "mask %s does not broadcast to [%lld,%lld,%lld,%lld]",
                                   tdm_tensor_shape_str(mask, s1, sizeof s1), (long long)g->B,
                                   (long long)g->H, (long long)g->S, (long long)g->T);
            g->m_str[d] = (n == 1) ? 0 : stride;
            stride *= n;
        }
        g->has_mask = true;
    }
    return TDM_OK;
}

tdm_status tdm_attention_infer(tdm_op_ctx *ctx)
{
    attn_geom g;
    tdm_status s = attn_setup(ctx, &g);
    if (s != TDM_OK)
        return s;
    int64_t dims[3] = {g.B, g.S, g.H * g.Dv};
    size_t bytes;
    if (!tdm_shape_checked_bytes(dims, 3, sizeof(float), (size_t)1 << 40, &bytes))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "output is too large");
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_FLOAT32, 3, dims);
    return TDM_OK;
}

typedef struct attn_job {
    const attn_geom *g;
    const float *q, *k, *v, *mask;
    float *y;
    int64_t rows;    /* query rows per unit */
    int64_t nblocks; /* row blocks per (batch, head) */
    float *ws;
    int64_t ws_stride; /* floats per worker */
    const tdm_vec_kernels *vk;
} attn_job;

/* Softmax of one row in place, left unnormalised; returns 1/sum (0 for a
 * row masked entirely with -inf, which becomes zeros). */
static float softmax_row(const attn_job *j, float *row)
{
    const int64_t T = j->g->T;
    float mx = j->vk->reduce[TDM_VEC_RMAX](row, T);
    if (mx == -INFINITY) {
        memset(row, 0, sizeof(float) * (size_t)T);
        return 0.f;
    }
    return 1.f / j->vk->exp_sum(row, mx, row, T);
}

static void attn_task(void *arg, int64_t u0, int64_t u1, int worker)
{
    const attn_job *j = arg;
    const attn_geom *g = j->g;
    float *scores = j->ws + (int64_t)worker * j->ws_stride;
    float *inv = scores + (j->rows * g->T + 15) / 16 * 16;
    float *gws = inv + (j->rows + 15) / 16 * 16;
    const int64_t E = g->H * g->D, Ev = g->H * g->Dv, T = g->T;
    for (int64_t u = u0; u < u1; u++) {
        int64_t blk = u % j->nblocks, bh = u / j->nblocks;
        int64_t h = bh % g->H, b = bh / g->H;
        int64_t s0 = blk * j->rows;
        int64_t rows = g->S - s0 < j->rows ? g->S - s0 : j->rows;
        const float *q = j->q + (b * g->S + s0) * E + h * g->D;
        const float *k = j->k + b * g->T * E + h * g->D;
        const float *v = j->v + b * g->T * Ev + h * g->Dv;
        float *y = j->y + (b * g->S + s0) * Ev + h * g->Dv;
        /* The mask joins the score GEMM: a row shared by all queries (the
         * usual [B,1,1,T] padding mask) is its column bias; any other mask is
         * copied into the scores first and accumulated with beta = 1. */
        tdm_epilogue ep = {NULL, NULL, TDM_ACT_NONE, 0.f, 0.f};
        float beta = 0.f;
        if (g->has_mask) {
            const float *m = j->mask + b * g->m_str[0] + h * g->m_str[1] + s0 * g->m_str[2];
            if (g->m_str[2] == 0 && g->m_str[3] == 1) {
                ep.bias_col = m;
            } else {
                for (int64_t r = 0; r < rows; r++) {
                    const float *mr = m + r * g->m_str[2];
                    float *sr = scores + r * T;
                    if (g->m_str[3] == 1)
                        memcpy(sr, mr, sizeof(float) * (size_t)T);
                    else
                        for (int64_t t = 0; t < T; t++)
                            sr[t] = mr[0];
                }
                beta = 1.f;
            }
        }
        tdm_sgemm_st(false, true, rows, T, g->D, g->scale, q, E, k, E, beta, scores, T,
                     ep.bias_col != NULL ? &ep : NULL, gws);
        for (int64_t r = 0; r < rows; r++)
            inv[r] = softmax_row(j, scores + r * T);
        /* normalise the Dv outputs of a row rather than its T probabilities */
        tdm_sgemm_st(false, false, rows, g->Dv, T, 1.f, scores, T, v, Ev, 0.f, y, Ev, NULL, gws);
        for (int64_t r = 0; r < rows; r++) {
            float *yr = y + r * Ev;
            for (int64_t d = 0; d < g->Dv; d++)
                yr[d] *= inv[r];
        }
    }
}

tdm_status tdm_attention_run(tdm_op_ctx *ctx)
{
    attn_geom g;
    tdm_status s = attn_setup(ctx, &g);
    if (s != TDM_OK)
        return s;
    if (g.B == 0 || g.S == 0 || g.H == 0 || g.Dv == 0)
        return TDM_OK;
    float *y = ctx->out[0]->data;
    if (g.T == 0) { /* softmax over nothing: define the result as zeros */
        memset(y, 0, sizeof(float) * (size_t)(g.B * g.S * g.H * g.Dv));
        return TDM_OK;
    }
    attn_job j;
    memset(&j, 0, sizeof j);
    j.g = &g;
    j.q = ctx->in[0]->data;
    j.k = ctx->in[1]->data;
    j.v = ctx->in[2]->data;
    j.mask = g.has_mask ? ctx->in[3]->data : NULL;
    j.y = y;
    j.vk = tdm_vec_get();
    j.rows = g.S;
    if (g.S * g.T > ATTN_BLOCK_FLOATS) {
        j.rows = ATTN_BLOCK_FLOATS / g.T;
        if (j.rows < 16)
            j.rows = 16;
        if (j.rows > g.S)
            j.rows = g.S;
    }
    j.nblocks = (g.S + j.rows - 1) / j.rows;
    int threads = ctx->pool != NULL ? tdm_pool_size(ctx->pool) : 1;
    size_t block, stride, total;
    if (tdm_mul_overflow((size_t)j.rows, (size_t)g.T, &block) ||
        tdm_add_overflow((block + 15) / 16 * 16 + ((size_t)j.rows + 15) / 16 * 16,
                         (size_t)TDM_SGEMM_WS_FLOATS, &stride) ||
        tdm_mul_overflow(stride, (size_t)threads * sizeof(float), &total))
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "score block of %lld x %lld is too large",
                           (long long)j.rows, (long long)g.T);
    j.ws_stride = (int64_t)stride;
    j.ws = tdm_op_scratch(ctx, total);
    if (j.ws == NULL)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for %zu bytes of scores", total);
    int64_t units = g.B * g.H * j.nblocks;
    tdm_pool_for(threads > 1 ? ctx->pool : NULL, units, 1, attn_task, &j);
    return TDM_OK;
}
