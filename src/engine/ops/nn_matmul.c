/*
 * MatMul (opsets 1-13), Gemm (opsets 7-13) and the fused tandem::FusedMatMul.
 *
 * All three end in tdm_sgemm; what this file decides is how many GEMMs to
 * issue and with which epilogue:
 *
 *  - MatMul follows numpy: 1-D operands are promoted (and the added axis
 *    dropped from the result), batch axes broadcast. When B has no batch
 *    axes and A's batch is dense, A's batch folds into M and the whole op is
 *    one GEMM: a [1, 128, 384] x [384, 1536] layer is M = 128, not 1 x 128.
 *  - Otherwise one GEMM per batch entry, with broadcast batch axes read
 *    through zero strides (no copies). Many small products (attention-shaped
 *    [B, H, S, D] x [B, H, D, T]) run one per thread, single-threaded each;
 *    few large ones run in order, each threaded inside the GEMM. Never both,
 *    so tdm_pool_for is never nested.
 *  - Gemm's C becomes the epilogue where it can: a row vector [N] is a bias
 *    per column, a column [M, 1] a bias per row, a scalar a constant column
 *    bias (scaled by beta into scratch when beta != 1). Only a full [M, N] C
 *    is copied into Y first and accumulated into with beta.
 *  - FusedMatMul (created by the fusion pass from MatMul + Add + activation)
 *    = act(A @ op(B) + bias) [+ residual]: the bias and the activation ride
 *    in the epilogue, so the product is written once. The optional residual
 *    (input 3: a transformer's skip connection, from the BERT builder or the
 *    residual fusion) is an ONNX Add after all that; without an activation
 *    and with the product's shape, which is what skip connections are, it
 *    rides in the epilogue too.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/kernels/gemm.h"
#include "engine/ops/nn_ops.h"

static bool shape_known(const tdm_tensor *t)
{
    if (t->ndim < 0)
        return false;
    for (int d = 0; d < t->ndim; d++)
        if (t->dims[d] < 0)
            return false;
    return true;
}

static tdm_status need_f32(tdm_op_ctx *ctx, const tdm_tensor *t, const char *what)
{
    if (t->dtype != TDM_DTYPE_FLOAT32)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "%s has dtype %s; only float32 is supported",
                           what, tdm_dtype_name(t->dtype));
    return TDM_OK;
}

static tdm_status need_inputs(tdm_op_ctx *ctx, int required, int max)
{
    if (ctx->n_in < required || ctx->n_out < 1 || ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "needs at least %d inputs and an output",
                           required);
    if (ctx->n_in > max)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "takes at most %d inputs, got %d", max,
                           ctx->n_in);
    for (int i = 0; i < required; i++)
        if (ctx->in[i] == NULL)
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "input %d is required", i);
    for (int i = 0; i < ctx->n_in; i++)
        if (ctx->in[i] != NULL && !shape_known(ctx->in[i]))
            return TDM_ERR_NEEDS_VALUE;
    return TDM_OK;
}

/* ---- batched matmul geometry ------------------------------------------------------ */

typedef struct mm_geom {
    int64_t M, N, K;
    bool tb; /* B's last two axes are [N, K] */
    int nb;  /* output batch axes */
    int64_t batch[TDM_MAX_DIMS];
    int64_t a_bs[TDM_MAX_DIMS], b_bs[TDM_MAX_DIMS]; /* element strides, 0 = broadcast */
    int64_t batch_count;
    bool a_dense;  /* A's batch strides are those of a dense [batch.., M, K] */
    bool b_single; /* B has one matrix (no batch, or all batch axes 1) */
    int out_ndim;
    int64_t out_dims[TDM_MAX_DIMS];
} mm_geom;

static tdm_status mm_setup(tdm_op_ctx *ctx, const tdm_tensor *a, const tdm_tensor *b, bool tb,
                           mm_geom *g)
{
    memset(g, 0, sizeof *g);
    char sa[96], sb[96];
    if (a->ndim < 1 || b->ndim < 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "operands must have rank >= 1, got %s and %s",
                           tdm_tensor_shape_str(a, sa, sizeof sa),
                           tdm_tensor_shape_str(b, sb, sizeof sb));
    bool a_vec = a->ndim == 1, b_vec = b->ndim == 1;
    int ra = a->ndim, rb = b->ndim;
    g->M = a_vec ? 1 : a->dims[ra - 2];
    int64_t ka = a->dims[ra - 1];
    int64_t kb, n;
    if (b_vec) {
        kb = b->dims[0];
        n = 1;
    } else {
        kb = tb ? b->dims[rb - 1] : b->dims[rb - 2];
        n = tb ? b->dims[rb - 2] : b->dims[rb - 1];
    }
    if (ka != kb)
        return tdm_op_fail(
            ctx, TDM_ERR_SHAPE, "inner dimensions differ: A %s has K = %lld, B %s%s has K = %lld",
            tdm_tensor_shape_str(a, sa, sizeof sa), (long long)ka,
            tdm_tensor_shape_str(b, sb, sizeof sb), tb ? " (transposed)" : "", (long long)kb);
    g->K = ka;
    g->N = n;
    g->tb = tb && !b_vec;
    int nba = a_vec ? 0 : ra - 2, nbb = b_vec ? 0 : rb - 2;
    g->nb = nba > nbb ? nba : nbb;
    /* element strides of each operand's batch axes, right-aligned */
    int64_t sa_next = g->M * g->K, sb_next = g->K * g->N;
    int64_t a_str[TDM_MAX_DIMS], b_str[TDM_MAX_DIMS];
    for (int d = nba - 1; d >= 0; d--) {
        a_str[d] = sa_next;
        sa_next *= a->dims[d];
    }
    for (int d = nbb - 1; d >= 0; d--) {
        b_str[d] = sb_next;
        sb_next *= b->dims[d];
    }
    g->batch_count = 1;
    g->a_dense = true;
    g->b_single = true;
    int64_t dense = g->M * g->K;
    for (int d = g->nb - 1; d >= 0; d--) {
        int ia = d - (g->nb - nba), ib = d - (g->nb - nbb);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1)
            return tdm_op_fail(
                ctx, TDM_ERR_SHAPE, "batch dimensions of A %s and B %s do not broadcast",
                tdm_tensor_shape_str(a, sa, sizeof sa), tdm_tensor_shape_str(b, sb, sizeof sb));
        int64_t o = da == 1 ? db : da;
        g->batch[d] = o;
        g->a_bs[d] = (ia >= 0 && da == o && o != 1) ? a_str[ia] : 0;
        g->b_bs[d] = (ib >= 0 && db == o && o != 1) ? b_str[ib] : 0;
        if (o != 1 && g->a_bs[d] != dense)
            g->a_dense = false;
        if (o != 1 && g->b_bs[d] != 0)
            g->b_single = false;
        dense *= o;
        if (__builtin_mul_overflow(g->batch_count, o, &g->batch_count))
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "batch size overflows");
    }
    int nd = 0;
    for (int d = 0; d < g->nb; d++)
        g->out_dims[nd++] = g->batch[d];
    if (!a_vec)
        g->out_dims[nd++] = g->M;
    if (!b_vec)
        g->out_dims[nd++] = g->N;
    g->out_ndim = nd;
    size_t bytes;
    if (!tdm_shape_checked_bytes(g->out_dims, nd, sizeof(float), (size_t)1 << 40, &bytes))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "output of %s x %s is too large",
                           tdm_tensor_shape_str(a, sa, sizeof sa),
                           tdm_tensor_shape_str(b, sb, sizeof sb));
    return TDM_OK;
}

typedef struct mm_run {
    const mm_geom *g;
    const float *A, *B;
    float *Y;
    const float *R; /* residual shaped like Y, or NULL */
    tdm_epilogue ep;
    bool use_ep;
    tdm_pool *pool;
} mm_run;

static void mm_one(const mm_run *r, int64_t bi, tdm_pool *pool)
{
    const mm_geom *g = r->g;
    int64_t ao = 0, bo = 0, rem = bi;
    for (int d = g->nb - 1; d >= 0; d--) {
        int64_t idx = rem % g->batch[d];
        rem /= g->batch[d];
        ao += idx * g->a_bs[d];
        bo += idx * g->b_bs[d];
    }
    tdm_sgemm_res(TDM_GEMM_AUTO, pool, false, g->tb, g->M, g->N, g->K, 1.f, r->A + ao, g->K,
                  r->B + bo, g->tb ? g->K : g->N, 0.f, r->Y + bi * g->M * g->N, g->N,
                  r->use_ep ? &r->ep : NULL, r->R != NULL ? r->R + bi * g->M * g->N : NULL, g->N);
}

static void mm_batch_task(void *arg, int64_t b0, int64_t b1, int worker)
{
    const mm_run *r = arg;
    (void)worker;
    for (int64_t b = b0; b < b1; b++)
        mm_one(r, b, NULL);
}

static void mm_execute(tdm_op_ctx *ctx, const mm_geom *g, const float *A, const float *B, float *Y,
                       const tdm_epilogue *ep, const float *R)
{
    if (g->batch_count == 0 || g->M == 0 || g->N == 0)
        return;
    mm_run r = {g, A, B, Y, R, {0}, ep != NULL, ctx->pool};
    if (ep != NULL)
        r.ep = *ep;
    if (g->b_single && g->a_dense) {
        /* A's batch folds into M: one GEMM. */
        tdm_sgemm_res(TDM_GEMM_AUTO, ctx->pool, false, g->tb, g->batch_count * g->M, g->N, g->K,
                      1.f, A, g->K, B, g->tb ? g->K : g->N, 0.f, Y, g->N, ep, R, g->N);
        return;
    }
    int threads = ctx->pool != NULL ? tdm_pool_size(ctx->pool) : 1;
    double flops = 2.0 * (double)g->M * (double)g->N * (double)g->K;
    if (threads > 1 && g->batch_count > 1 && (g->batch_count >= 2 * threads || flops < 4e6)) {
        tdm_pool_for(ctx->pool, g->batch_count, 1, mm_batch_task, &r);
    } else {
        for (int64_t b = 0; b < g->batch_count; b++)
            mm_one(&r, b, ctx->pool);
    }
}

/* ---- MatMul -------------------------------------------------------------------------- */

tdm_status tdm_matmul_infer(tdm_op_ctx *ctx)
{
    tdm_status s = need_inputs(ctx, 2, 2);
    if (s != TDM_OK)
        return s;
    if ((s = need_f32(ctx, ctx->in[0], "input A")) != TDM_OK ||
        (s = need_f32(ctx, ctx->in[1], "input B")) != TDM_OK)
        return s;
    mm_geom g;
    if ((s = mm_setup(ctx, ctx->in[0], ctx->in[1], false, &g)) != TDM_OK)
        return s;
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_FLOAT32, g.out_ndim, g.out_dims);
    return TDM_OK;
}

tdm_status tdm_matmul_run(tdm_op_ctx *ctx)
{
    mm_geom g;
    tdm_status s = mm_setup(ctx, ctx->in[0], ctx->in[1], false, &g);
    if (s != TDM_OK)
        return s;
    mm_execute(ctx, &g, ctx->in[0]->data, ctx->in[1]->data, ctx->out[0]->data, NULL, NULL);
    return TDM_OK;
}

/* ---- FusedMatMul ----------------------------------------------------------------------- */

typedef struct fused_attrs {
    bool tb;
    tdm_act act;
    float alpha, beta;
} fused_attrs;

static tdm_status fused_attrs_get(tdm_op_ctx *ctx, fused_attrs *f)
{
    const char *name = tdm_attr_str(ctx->node, "activation", "");
    if (!tdm_act_from_name(name, &f->act))
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "activation '%s' is not supported", name);
    float da = 0.f, db = 0.f;
    switch (f->act) {
    case TDM_ACT_LEAKY_RELU: da = 0.01f; break;
    case TDM_ACT_CLIP:
        da = -FLT_MAX;
        db = FLT_MAX;
        break;
    case TDM_ACT_HARD_SIGMOID:
        da = 0.2f;
        db = 0.5f;
        break;
    default: break;
    }
    f->alpha = tdm_attr_float(ctx->node, "alpha", da);
    f->beta = tdm_attr_float(ctx->node, "beta", db);
    int64_t tb = tdm_attr_int(ctx->node, "transB", 0);
    if (tb != 0 && tb != 1)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "transB must be 0 or 1, got %lld",
                           (long long)tb);
    f->tb = tb == 1;
    return TDM_OK;
}

static tdm_status fused_check_bias(tdm_op_ctx *ctx, const mm_geom *g)
{
    const tdm_tensor *bias = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (bias == NULL)
        return TDM_OK;
    tdm_status s = need_f32(ctx, bias, "bias");
    if (s != TDM_OK)
        return s;
    bool ok = bias->ndim >= 1 && bias->dims[bias->ndim - 1] == g->N;
    for (int d = 0; ok && d < bias->ndim - 1; d++)
        ok = bias->dims[d] == 1;
    if (!ok) {
        char sb[96];
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "bias %s must be a vector of N = %lld",
                           tdm_tensor_shape_str(bias, sb, sizeof sb), (long long)g->N);
    }
    return TDM_OK;
}

/*
 * The optional residual (input 3) is added as ONNX Add would add it to the
 * product: numpy broadcasting, the output taking the broadcast shape. The
 * skip connections of a transformer have exactly the product's shape and are
 * added in the GEMM's epilogue; any other shape (which the fusion pass cannot
 * rule out when shapes are symbolic) takes a slow path through scratch.
 * Sets *same when the residual has the product's shape; fills the output
 * shape (rank *ndim, dims) either way.
 */
static tdm_status fused_residual_shape(tdm_op_ctx *ctx, const mm_geom *g, bool *same, int *ndim,
                                       int64_t *dims)
{
    const tdm_tensor *r = ctx->n_in > 3 ? ctx->in[3] : NULL;
    *same = true;
    *ndim = g->out_ndim;
    memcpy(dims, g->out_dims, sizeof(int64_t) * (size_t)g->out_ndim);
    if (r == NULL)
        return TDM_OK;
    tdm_status s = need_f32(ctx, r, "residual");
    if (s != TDM_OK)
        return s;
    int nd = r->ndim > g->out_ndim ? r->ndim : g->out_ndim;
    for (int d = 0; d < nd; d++) {
        int ip = d - (nd - g->out_ndim), ir = d - (nd - r->ndim);
        int64_t dp = ip >= 0 ? g->out_dims[ip] : 1, dr = ir >= 0 ? r->dims[ir] : 1;
        if (dp != dr && dp != 1 && dr != 1) {
            char sr[96];
            return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                               "residual %s does not broadcast to the product's shape (dim %d is "
                               "%lld, product has %lld)",
                               tdm_tensor_shape_str(r, sr, sizeof sr), d, (long long)dr,
                               (long long)dp);
        }
        dims[d] = dp == 1 ? dr : dp;
        if (dr != dp || ir < 0 || ip < 0)
            *same = false;
    }
    *ndim = nd;
    size_t bytes;
    if (!tdm_shape_checked_bytes(dims, nd, sizeof(float), (size_t)1 << 40, &bytes))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "output with the residual is too large");
    return TDM_OK;
}

/* y = p + r with numpy broadcasting of p (rank pn) and r to y's shape (rank n, dims). */
static void add_broadcast(const float *p, const int64_t *pdims, int pn, const float *r,
                          const int64_t *rdims, int rn, float *y, const int64_t *dims, int n)
{
    int64_t ps[TDM_MAX_DIMS], rs[TDM_MAX_DIMS], idx[TDM_MAX_DIMS] = {0};
    int64_t sp = 1, sr = 1, total = 1;
    for (int d = n - 1; d >= 0; d--) {
        int ip = d - (n - pn), ir = d - (n - rn);
        int64_t dp = ip >= 0 ? pdims[ip] : 1, dr = ir >= 0 ? rdims[ir] : 1;
        ps[d] = dp == 1 ? 0 : sp;
        rs[d] = dr == 1 ? 0 : sr;
        sp *= dp;
        sr *= dr;
        total *= dims[d];
    }
    int64_t op = 0, orr = 0;
    for (int64_t i = 0; i < total; i++) {
        y[i] = p[op] + r[orr];
        for (int d = n - 1; d >= 0; d--) {
            op += ps[d];
            orr += rs[d];
            if (++idx[d] < dims[d])
                break;
            op -= ps[d] * dims[d];
            orr -= rs[d] * dims[d];
            idx[d] = 0;
        }
    }
}

tdm_status tdm_fused_matmul_infer(tdm_op_ctx *ctx)
{
    tdm_status s = need_inputs(ctx, 2, 4);
    if (s != TDM_OK)
        return s;
    fused_attrs f;
    if ((s = fused_attrs_get(ctx, &f)) != TDM_OK)
        return s;
    if ((s = need_f32(ctx, ctx->in[0], "input A")) != TDM_OK ||
        (s = need_f32(ctx, ctx->in[1], "input B")) != TDM_OK)
        return s;
    mm_geom g;
    if ((s = mm_setup(ctx, ctx->in[0], ctx->in[1], f.tb, &g)) != TDM_OK)
        return s;
    bool same;
    int nd;
    int64_t dims[TDM_MAX_DIMS];
    if ((s = fused_check_bias(ctx, &g)) != TDM_OK ||
        (s = fused_residual_shape(ctx, &g, &same, &nd, dims)) != TDM_OK)
        return s;
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_FLOAT32, nd, dims);
    return TDM_OK;
}

tdm_status tdm_fused_matmul_run(tdm_op_ctx *ctx)
{
    fused_attrs f;
    mm_geom g;
    tdm_status s = fused_attrs_get(ctx, &f);
    if (s == TDM_OK)
        s = mm_setup(ctx, ctx->in[0], ctx->in[1], f.tb, &g);
    if (s == TDM_OK)
        s = fused_check_bias(ctx, &g);
    bool same;
    int nd;
    int64_t dims[TDM_MAX_DIMS];
    if (s == TDM_OK)
        s = fused_residual_shape(ctx, &g, &same, &nd, dims);
    if (s != TDM_OK)
        return s;
    const tdm_tensor *bias = ctx->n_in > 2 ? ctx->in[2] : NULL;
    const tdm_tensor *res = ctx->n_in > 3 ? ctx->in[3] : NULL;
    tdm_epilogue ep = {bias != NULL ? bias->data : NULL, NULL, f.act, f.alpha, f.beta};
    float *y = ctx->out[0]->data;
    if (res == NULL || (same && f.act == TDM_ACT_NONE)) {
        /* the common case: the residual rides in the epilogue */
        mm_execute(ctx, &g, ctx->in[0]->data, ctx->in[1]->data, y, &ep,
                   res != NULL ? res->data : NULL);
        return TDM_OK;
    }
    /* After an activation, or broadcast: the product first (into y when it has y's shape),
     * then the Add. */
    float *prod = y;
    if (!same) {
        size_t bytes = sizeof(float) * (size_t)(g.batch_count * g.M * g.N);
        prod = tdm_op_scratch(ctx, bytes > 0 ? bytes : sizeof(float));
        if (prod == NULL)
            return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for the product");
    }
    mm_execute(ctx, &g, ctx->in[0]->data, ctx->in[1]->data, prod, &ep, NULL);
    add_broadcast(prod, g.out_dims, g.out_ndim, res->data, res->dims, res->ndim, y, dims, nd);
    return TDM_OK;
}

/* ---- Gemm ------------------------------------------------------------------------------ */

typedef struct gemm_geom {
    bool ta, tb;
    int64_t M, N, K;
    float alpha, beta;
    int64_t cm, cn; /* C right-aligned to 2-D; 0 x 0 when absent */
} gemm_geom;

static tdm_status gemm_setup(tdm_op_ctx *ctx, gemm_geom *g)
{
    memset(g, 0, sizeof *g);
    const tdm_tensor *a = ctx->in[0], *b = ctx->in[1];
    const tdm_tensor *c = ctx->n_in > 2 ? ctx->in[2] : NULL;
    char sa[96], sb[96];
    tdm_status s;
    if ((s = need_f32(ctx, a, "input A")) != TDM_OK || (s = need_f32(ctx, b, "input B")) != TDM_OK)
        return s;
    if (c != NULL && (s = need_f32(ctx, c, "input C")) != TDM_OK)
        return s;
    if (c == NULL && ctx->node->opset > 0 && ctx->node->opset < 11)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "input C is required before opset 11");
    if (a->ndim != 2 || b->ndim != 2)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "A %s and B %s must be 2-D",
                           tdm_tensor_shape_str(a, sa, sizeof sa),
                           tdm_tensor_shape_str(b, sb, sizeof sb));
    int64_t ta = tdm_attr_int(ctx->node, "transA", 0), tb = tdm_attr_int(ctx->node, "transB", 0);
    if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1))
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "transA/transB must be 0 or 1, got %lld/%lld",
                           (long long)ta, (long long)tb);
    g->ta = ta == 1;
    g->tb = tb == 1;
    g->alpha = tdm_attr_float(ctx->node, "alpha", 1.f);
    g->beta = tdm_attr_float(ctx->node, "beta", 1.f);
    g->M = g->ta ? a->dims[1] : a->dims[0];
    g->K = g->ta ? a->dims[0] : a->dims[1];
    int64_t kb = g->tb ? b->dims[1] : b->dims[0];
    g->N = g->tb ? b->dims[0] : b->dims[1];
    if (kb != g->K)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                           "inner dimensions differ: A %s (transA=%d) has K = %lld, B %s "
                           "(transB=%d) has K = %lld",
                           tdm_tensor_shape_str(a, sa, sizeof sa), (int)g->ta, (long long)g->K,
                           tdm_tensor_shape_str(b, sb, sizeof sb), (int)g->tb, (long long)kb);
    if (c != NULL) {
        if (c->ndim > 2)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "C %s has rank > 2",
                               tdm_tensor_shape_str(c, sa, sizeof sa));
        g->cm = c->ndim == 2 ? c->dims[0] : 1;
        g->cn = c->ndim >= 1 ? c->dims[c->ndim - 1] : 1;
        if ((g->cm != 1 && g->cm != g->M) || (g->cn != 1 && g->cn != g->N))
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "C %s does not broadcast to [%lld,%lld]",
                               tdm_tensor_shape_str(c, sa, sizeof sa), (long long)g->M,
                               (long long)g->N);
    }
    return TDM_OK;
}

tdm_status tdm_gemm_infer(tdm_op_ctx *ctx)
{
    tdm_status s = need_inputs(ctx, 2, 3);
    if (s != TDM_OK)
        return s;
    gemm_geom g;
    if ((s = gemm_setup(ctx, &g)) != TDM_OK)
        return s;
    int64_t dims[2] = {g.M, g.N};
    size_t bytes;
    if (!tdm_shape_checked_bytes(dims, 2, sizeof(float), (size_t)1 << 40, &bytes))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "output [%lld,%lld] is too large", (long long)g.M,
                           (long long)g.N);
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_FLOAT32, 2, dims);
    return TDM_OK;
}

tdm_status tdm_gemm_run(tdm_op_ctx *ctx)
{
    gemm_geom g;
    tdm_status s = gemm_setup(ctx, &g);
    if (s != TDM_OK)
        return s;
    const tdm_tensor *a = ctx->in[0], *b = ctx->in[1];
    const tdm_tensor *c = ctx->n_in > 2 ? ctx->in[2] : NULL;
    float *y = ctx->out[0]->data;
    if (g.M == 0 || g.N == 0)
        return TDM_OK;
    const float *cv = c != NULL ? c->data : NULL;
    float beta = 0.f;
    tdm_epilogue ep = {NULL, NULL, TDM_ACT_NONE, 0.f, 0.f};
    if (cv != NULL && g.beta != 0.f) {
        if (g.cm == g.M && g.cn == g.N && g.M > 1 && g.N > 1) {
            memcpy(y, cv, sizeof(float) * (size_t)(g.M * g.N));
            beta = g.beta;
        } else {
            /* A vector or scalar C is a bias: along columns ([N] or scalar) or rows ([M,1]). */
            bool per_row = g.cn == 1 && g.cm == g.M && g.M > 1;
            int64_t len = per_row ? g.M : g.N;
            const float *bias = cv;
            if (g.beta != 1.f || (!per_row && g.cn == 1 && g.N > 1)) {
                float *tmp = tdm_op_scratch(ctx, sizeof(float) * (size_t)len);
                if (tmp == NULL)
                    return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for the bias of C");
                bool scalar = per_row ? false : g.cn == 1;
                for (int64_t i = 0; i < len; i++)
                    tmp[i] = g.beta * cv[scalar ? 0 : i];
                bias = tmp;
            }
            if (per_row)
                ep.bias_row = bias;
            else
                ep.bias_col = bias;
        }
    }
    bool use_ep = ep.bias_col != NULL || ep.bias_row != NULL;
    tdm_sgemm(ctx->pool, g.ta, g.tb, g.M, g.N, g.K, g.alpha, a->data, a->dims[1], b->data,
              b->dims[1], beta, y, g.N, use_ep ? &ep : NULL);
    return TDM_OK;
}
