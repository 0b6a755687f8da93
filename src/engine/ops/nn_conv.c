/*
 * Conv (ONNX opsets 1-18): float32, NCHW, 1-D/2-D/3-D, groups, strides,
 * dilations, pads, auto_pad, optional bias and a fused activation.
 *
 * Three strategies, picked per call from the shapes:
 *
 *  - depthwise (one input channel per group, no depth axis): a direct kernel
 *    (nn_dwconv*.c). GEMM would do ~2*k*k flops per loaded output, too few
 *    to amortise packing, so the direct kernel wins by a wide margin. A
 *    plane with padding or a W stride is first copied zero-padded (and
 *    phase-split for the stride) so the kernel's loads are contiguous and
 *    branch-free; measured, that copy is cheaper than a separate scalar pass
 *    over the border outputs.
 *  - 1x1, stride 1, no padding: the input of a group already is the GEMM's
 *    B matrix [Cin/group, H*W], so Y = W * X with no copy at all.
 *  - everything else: im2col + GEMM with W as A (M = Cout/group, K =
 *    Cin/group * kernel volume, N = output pixels), bias per row and the
 *    activation in the GEMM epilogue. A 2-D im2col goes through a staging
 *    block (the input rows a tile needs, zero-padded and split by phase
 *    once), so that each column-matrix row is a few contiguous copies with
 *    no bounds tests and no divisions: on small maps (CIFAR-sized ResNets)
 *    the plain im2col, not the GEMM, was two thirds of a run.
 *  - one input channel feeding many outputs (group 1, a first layer on grey
 *    images) is also im2col + GEMM (K = kernel volume), not depthwise.
 *
 * The column matrix is never built whole: output pixels are cut into tiles
 * whose column block (K x tile floats) stays around L2 size, so a big layer
 * needs a bounded workspace and the GEMM reads its B panel from cache.
 * Tiles are also the unit of parallel work: (image, group, tile) tasks are
 * independent, each writes a disjoint block of Y, so with enough of them
 * every worker runs im2col + a single-threaded GEMM on its own slice of the
 * workspace. With too few tasks to keep the pool busy (one image, one group,
 * a small feature map) the tasks run in order and the parallelism moves
 * inside the GEMM and the im2col instead. Either way no tdm_pool_for is
 * nested in another.
 *
 * Geometry is normalised to three spatial axes (nn_spatial.h), so 1-D and
 * 3-D convolutions share the 2-D code; only their inner loops along W are
 * specialised.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/kernels/gemm.h"
#include "engine/ops/nn_dwconv.h"
#include "engine/ops/nn_ops.h"
#include "engine/ops/nn_spatial.h"

/* Target size of one im2col tile (floats K x tile). */
#define CONV_TILE_BYTES ((size_t)512 * 1024)
#define CONV_MAX_GROUP ((int64_t)1 << 30)

typedef struct conv_plan {
    tdm_spatial g;
    int64_t n, c, m, group, cg, mg;
    int64_t kvol, k;         /* kernel volume; GEMM depth cg * kvol */
    int64_t in_vol, out_vol; /* spatial volumes */
    tdm_act act;
    float alpha, beta;
} conv_plan;

/* Shared by infer and run: checks shapes and attributes and derives the plan.
 * Dims of X may be -1 (unknown) at plan time; everything else must be known. */
static tdm_status conv_setup(tdm_op_ctx *ctx, conv_plan *p)
{
    memset(p, 0, sizeof *p);
    if (ctx->n_in < 2 || ctx->in[0] == NULL || ctx->in[1] == NULL || ctx->n_out < 1 ||
        ctx->out[0] == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "needs inputs X and W and output Y");
    const tdm_tensor *x = ctx->in[0], *w = ctx->in[1];
    const tdm_tensor *b = ctx->n_in > 2 ? ctx->in[2] : NULL;
    if (x->ndim < 0 || w->ndim < 0 || (b != NULL && b->ndim < 0))
        return TDM_ERR_NEEDS_VALUE;
    tdm_status s = tdm_nn_require_f32(ctx, 0, "input X");
    if (s == TDM_OK)
        s = tdm_nn_require_f32(ctx, 1, "weight W");
    if (s == TDM_OK && b != NULL)
        s = tdm_nn_require_f32(ctx, 2, "bias B");
    if (s != TDM_OK)
        return s;
    if (x->ndim < 3 || x->ndim > 5)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED,
                           "input X has rank %d; 3 to 5 (1-D to 3-D convolution) are supported",
                           (int)x->ndim);
    if (w->ndim != x->ndim)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "weight W has rank %d but input X has rank %d",
                           (int)w->ndim, (int)x->ndim);
    for (int i = 0; i < w->ndim; i++)
        if (w->dims[i] < 0)
            return TDM_ERR_NEEDS_VALUE;
    int nsp = (int)x->ndim - 2;
    p->group = tdm_attr_int(ctx->node, "group", 1);
    if (p->group < 1 || p->group > CONV_MAX_GROUP)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "group %lld is out of range", (long long)p->group);
    p->n = x->dims[0];
    p->m = w->dims[0];
    p->cg = w->dims[1];
    int64_t c = 0;
    if (__builtin_mul_overflow(p->cg, p->group, &c) || (x->dims[1] >= 0 && x->dims[1] != c))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                           "input channels %lld do not match weight channels %lld x group %lld",
                           (long long)x->dims[1], (long long)p->cg, (long long)p->group);
    p->c = c;
    if (p->m % p->group != 0)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                           "output channels %lld are not divisible by group %lld", (long long)p->m,
                           (long long)p->group);
    p->mg = p->m / p->group;
    int64_t kcount = 0;
    const int64_t *ks = tdm_attr_ints(ctx->node, "kernel_shape", &kcount);
    if (ks != NULL && kcount > 0) {
        if (kcount != nsp)
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "kernel_shape has %lld values, expected %d",
                               (long long)kcount, nsp);
        for (int i = 0; i < nsp; i++)
            if (ks[i] != w->dims[2 + i])
                return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                                   "kernel_shape[%d] = %lld does not match weight dim %lld", i,
                                   (long long)ks[i], (long long)w->dims[2 + i]);
    }
    if (b != NULL && (b->ndim != 1 || b->dims[0] != p->m))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "bias B must have shape [%lld]", (long long)p->m);
    s = tdm_spatial_read(ctx, nsp, &w->dims[2], &p->g);
    if (s == TDM_OK)
        s = tdm_spatial_forward(ctx, &p->g, &x->dims[2], false);
    if (s == TDM_OK)
        s = tdm_nn_fused_act(ctx, &p->act, &p->alpha, &p->beta);
    if (s != TDM_OK)
        return s;
    const tdm_spatial *g = &p->g;
    if (!tdm_spatial_volume(g->k, &p->kvol) || __builtin_mul_overflow(p->kvol, p->cg, &p->k))
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "kernel volume overflows");
    p->in_vol = p->out_vol = -1;
    if (g->in[0] >= 0 && g->in[1] >= 0 && g->in[2] >= 0) {
        if (!tdm_spatial_volume(g->in, &p->in_vol) || !tdm_spatial_volume(g->out, &p->out_vol))
            return tdm_op_fail(ctx, TDM_ERR_SHAPE, "spatial size overflows");
    }
    return TDM_OK;
}

tdm_status tdm_conv_infer(tdm_op_ctx *ctx)
{
    conv_plan p;
    tdm_status s = conv_setup(ctx, &p);
    if (s != TDM_OK)
        return s;
    int64_t dims[TDM_MAX_DIMS];
    int rank = tdm_spatial_out_dims(&p.g, p.n, p.m, dims);
    tdm_tensor_set_shape(ctx->out[0], TDM_DTYPE_FLOAT32, rank, dims);
    return TDM_OK;
}

/* ---- depthwise ---------------------------------------------------------------- */

typedef struct dw_job {
    const conv_plan *p;
    const float *x, *w, *bias;
    float *y;
    tdm_dw_plane_fn fn;
    bool copy;       /* padding or stride along W: planes are copied padded and split */
    float *buf;      /* one padded plane per worker */
    int64_t buf_len; /* floats per worker */
    int64_t hp, phase, in_row;
} dw_job;

/* Copies input plane `src` (H x W) into the zero-padded, phase-split layout. */
static void dw_pad_plane(const dw_job *j, const float *src, float *dst)
{
    const tdm_spatial *g = &j->p->g;
    for (int64_t r = 0; r < j->hp; r++) {
        float *d = dst + r * j->in_row;
        int64_t iy = r - g->pb[1];
        if (iy < 0 || iy >= g->in[1])
            memset(d, 0, sizeof *d * (size_t)j->in_row);
        else
            tdm_sp_split_row(src + iy * g->in[2], g->in[2], g->pb[2], g->s[2], j->phase, 0.f, d);
    }
}

static void dw_task(void *arg, int64_t begin, int64_t end, int worker)
{
    const dw_job *j = arg;
    const conv_plan *p = j->p;
    const tdm_spatial *g = &p->g;
    float *buf = j->buf != NULL ? j->buf + (int64_t)worker * j->buf_len : NULL;
    for (int64_t plane = begin; plane < end; plane++) {
        int64_t n = plane / p->m, oc = plane % p->m, ic = oc / p->mg;
        const float *src = j->x + (n * p->c + ic) * p->in_vol;
        tdm_dw_plane a = {
            .in = src,
            .in_row = g->in[2],
            .phase = g->in[2],
            .sh = g->s[1],
            .sw = g->s[2],
            .dh = g->d[1],
            .dw = g->d[2],
            .kh = g->k[1],
            .kw = g->k[2],
            .w = j->w + oc * p->kvol,
            .bias = j->bias != NULL ? j->bias[oc] : 0.f,
            .out = j->y + plane * p->out_vol,
            .out_row = g->out[2],
            .hout = g->out[1],
            .wout = g->out[2],
            .act = p->act,
            .alpha = p->alpha,
            .beta = p->beta,
        };
        if (j->copy) {
            dw_pad_plane(j, src, buf);
            a.in = buf;
            a.in_row = j->in_row;
            a.phase = j->phase;
        }
        j->fn(&a);
    }
}

static tdm_status conv_depthwise(tdm_op_ctx *ctx, const conv_plan *p, const float *x,
                                 const float *w, const float *bias, float *y)
{
    const tdm_spatial *g = &p->g;
    dw_job j;
    memset(&j, 0, sizeof j);
    j.p = p;
    j.x = x;
    j.w = w;
    j.bias = bias;
    j.y = y;
    j.fn = tdm_dw_plane_select();
    /* Without padding and with unit stride along W, the input plane already
     * is the kernel's layout. Otherwise a padded copy (memcpy per row, a few
     * percent of the kernel's time) beats handling the border separately. */
    j.copy = g->s[2] > 1 || g->pb[1] != 0 || g->pe[1] != 0 || g->pb[2] != 0 || g->pe[2] != 0;
    if (j.copy) {
        j.hp = (g->out[1] - 1) * g->s[1] + (g->k[1] - 1) * g->d[1] + 1;
        int64_t wp = (g->out[2] - 1) * g->s[2] + (g->k[2] - 1) * g->d[2] + 1;
        j.phase = (wp + g->s[2] - 1) / g->s[2];
        j.in_row = j.phase * g->s[2];
        size_t per, total;
        int threads = tdm_nn_threads(ctx);
        if (tdm_mul_overflow((size_t)j.hp, (size_t)j.in_row, &per) ||
            tdm_mul_overflow(per, sizeof(float) * (size_t)threads, &total))
            return tdm_op_fail(ctx, TDM_ERR_NOMEM, "padded plane size overflows");
        j.buf = tdm_op_scratch(ctx, total);
        if (j.buf == NULL)
            return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for a %zu-byte workspace", total);
        j.buf_len = (int64_t)per;
    }
    tdm_pool_for(ctx->pool, p->n * p->m, 1, dw_task, &j);
    return TDM_OK;
}

/* ---- im2col + GEMM -------------------------------------------------------------- */

/*
 * Rows [r0, r1) of the column matrix for output pixels [n0, n1) of one image
 * and group: row r = (channel, kd, kh, kw), column = pixel - n0. x points at
 * the group's first input channel.
 */
static void im2col(const conv_plan *p, const float *x, float *col, int64_t ldcol, int64_t n0,
                   int64_t n1, int64_t r0, int64_t r1)
{
    const tdm_spatial *g = &p->g;
    int64_t kw = g->k[2], khw = g->k[1] * kw, sw = g->s[2];
    int64_t oh_n = g->out[1], ow_n = g->out[2], ohw = oh_n * ow_n;
    /* Position of pixel n0 and of row r0; both then advance without
     * divisions: on a small feature map (8 x 8) a row is a few short runs
     * and a handful of 64-bit divisions per row cost more than the copy. */
    int64_t od0 = n0 / ohw, oh0 = (n0 / ow_n) % oh_n, ow00 = n0 % ow_n;
    int64_t c = r0 / p->kvol, t0 = r0 % p->kvol;
    int64_t kd = t0 / khw, kh = (t0 / kw) % g->k[1], kx = t0 % kw;
    /* Valid output range along W per kernel column (tdm_sp_range divides). */
    enum { KX_CACHE = 16 };
    int64_t lo_c[KX_CACHE], hi_c[KX_CACHE];
    for (int64_t i = 0; i < kw && i < KX_CACHE; i++)
        tdm_sp_range(ow_n, g->in[2], sw, i * g->d[2] - g->pb[2], &lo_c[i], &hi_c[i]);
    for (int64_t r = r0; r < r1; r++) {
        int64_t shift_w = kx * g->d[2] - g->pb[2];
        int64_t lo, hi;
        if (kx < KX_CACHE) {
            lo = lo_c[kx];
            hi = hi_c[kx];
        } else {
            tdm_sp_range(ow_n, g->in[2], sw, shift_w, &lo, &hi);
        }
        const float *xc = x + c * p->in_vol;
        float *o = col + r * ldcol;
        int64_t od = od0, oh = oh0, ow0 = ow00;
        int64_t ih_base = -g->pb[1] + kh * g->d[1], id_base = -g->pb[0] + kd * g->d[0];
        for (int64_t q = n0; q < n1;) {
            int64_t run = ow_n - ow0 < n1 - q ? ow_n - ow0 : n1 - q;
            int64_t id = od * g->s[0] + id_base;
            int64_t ih = oh * g->s[1] + ih_base;
            if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1]) {
                for (int64_t k = 0; k < run; k++)
                    o[k] = 0.f;
            } else {
                const float *src = xc + (id * g->in[1] + ih) * g->in[2] + shift_w;
                int64_t a = lo > ow0 ? lo : ow0, b = hi < ow0 + run ? hi : ow0 + run;
                if (b < a)
                    b = a;
                float *restrict d = o - ow0;
                /* The padding edges are a few elements: plain loops beat memset calls. */
                for (int64_t ow = ow0; ow < a; ow++)
                    d[ow] = 0.f;
                if (sw == 1) {
                    if (b - a >= 32)
                        memcpy(d + a, src + a, sizeof *d * (size_t)(b - a));
                    else
                        for (int64_t ow = a; ow < b; ow++)
                            d[ow] = src[ow];
                } else {
                    for (int64_t ow = a; ow < b; ow++)
                        d[ow] = src[ow * sw];
                }
                for (int64_t ow = b; ow < ow0 + run; ow++)
                    d[ow] = 0.f;
            }
            o += run;
            q += run;
            ow0 = 0;
            if (++oh == oh_n) {
                oh = 0;
                od++;
            }
        }
        if (++kx == kw) {
            kx = 0;
            if (++kh == g->k[1]) {
                kh = 0;
                if (++kd == g->k[0]) {
                    kd = 0;
                    c++;
                }
            }
        }
    }
}

/*
 * 2-D fast path. The input rows a tile needs are first copied once into a
 * staging block, zero-padded and split by phase along W (tdm_sp_split_row),
 * rows outside the image as zero rows. Every (row of the column matrix,
 * output row) pair is then one contiguous, branch-free copy of up to a
 * whole output row, whatever the padding and stride: on small feature maps
 * (8 x 8 at 32 channels: runs of 8 floats) the generic loop above spends
 * most of its time deciding where each run starts and which part is
 * padding, and this costs a fraction of it.
 */
typedef struct stage_geom {
    int64_t oh_a, rows; /* first output row of the tile; staged input rows */
    int64_t ph;         /* floats per phase of a staged row */
    int64_t row_len;    /* sw * ph: floats per staged row */
} stage_geom;

static bool stage_ok(const conv_plan *p)
{
    const tdm_spatial *g = &p->g;
    return g->in[0] == 1 && g->k[0] == 1 && g->out[0] == 1 && g->pb[0] == 0 && g->pe[0] == 0;
}

static void stage_geometry(const conv_plan *p, int64_t n0, int64_t n1, stage_geom *sg)
{
    const tdm_spatial *g = &p->g;
    int64_t ow_n = g->out[2], oh_b = (n1 - 1) / ow_n;
    sg->oh_a = n0 / ow_n;
    sg->rows = (oh_b - sg->oh_a) * g->s[1] + (g->k[1] - 1) * g->d[1] + 1;
    sg->ph = ow_n + (g->k[2] - 1) * g->d[2] / g->s[2];
    sg->row_len = g->s[2] * sg->ph;
}

/* Staging floats for any tile of `tile` pixels (rows spanned <= tile / ow + 2). */
static int64_t stage_floats(const conv_plan *p, int64_t tile)
{
    const tdm_spatial *g = &p->g;
    int64_t span = tile / g->out[2] + 2;
    if (span > g->out[1])
        span = g->out[1];
    int64_t rows = (span - 1) * g->s[1] + (g->k[1] - 1) * g->d[1] + 1;
    int64_t ph = g->out[2] + (g->k[2] - 1) * g->d[2] / g->s[2];
    return p->cg * rows * g->s[2] * ph;
}

/* Copies n floats; the common output widths become fixed-size moves. */
static inline void copy_run(float *restrict d, const float *restrict s, int64_t n)
{
    switch (n) {
    case 4: memcpy(d, s, 4 * sizeof *d); break;
    case 8: memcpy(d, s, 8 * sizeof *d); break;
    case 16: memcpy(d, s, 16 * sizeof *d); break;
    default:
        for (int64_t k = 0; k < n; k++)
            d[k] = s[k];
    }
}

/* `rows` whole output rows of W floats, source rows `step` apart. */
#define FULL_ROWS(W)                   \
    for (int64_t i = 0; i < rows; i++) \
    memcpy(o + i * (W), src + i * step, (W) * sizeof *o)

static inline void copy_rows(float *restrict o, const float *restrict src, int64_t rows, int64_t w,
                             int64_t step)
{
    switch (w) {
    case 4: FULL_ROWS(4); break;
    case 8: FULL_ROWS(8); break;
    case 16: FULL_ROWS(16); break;
    default:
        for (int64_t i = 0; i < rows; i++)
            for (int64_t k = 0; k < w; k++)
                o[i * w + k] = src[i * step + k];
    }
}
#undef FULL_ROWS

/* Zeroes n floats; padding is one or two, where a memset call would dominate. */
static inline void zero_run(float *d, int64_t n)
{
    switch (n) {
    case 0: break;
    case 1: d[0] = 0.f; break;
    case 2: d[0] = d[1] = 0.f; break;
    case 3: d[0] = d[1] = d[2] = 0.f; break;
    default: memset(d, 0, sizeof *d * (size_t)n);
    }
}

static void stage_rows(const conv_plan *p, const float *x, const stage_geom *sg, float *stage,
                       int64_t c0, int64_t c1)
{
    const tdm_spatial *g = &p->g;
    int64_t iy0 = sg->oh_a * g->s[1] - g->pb[1];
    int64_t w = g->in[2], pb = g->pb[2], sw = g->s[2], ph = sg->ph;
    /* Per phase, the positions that read inside the row: the same for every
     * row, so computed once here (tdm_sp_range divides). */
    enum { PHASES = 8 };
    int64_t lo[PHASES], hi[PHASES];
    bool direct = sw <= PHASES;
    for (int64_t q = 0; q < sw && direct; q++)
        tdm_sp_range(ph, w, sw, q - pb, &lo[q], &hi[q]);
    for (int64_t c = c0; c < c1; c++) {
        const float *xc = x + c * p->in_vol;
        for (int64_t i = 0; i < sg->rows; i++) {
            float *restrict d = stage + (c * sg->rows + i) * sg->row_len;
            int64_t iy = iy0 + i;
            if (iy < 0 || iy >= g->in[1]) {
                memset(d, 0, sizeof *d * (size_t)sg->row_len);
                continue;
            }
            const float *restrict src = xc + iy * w;
            if (!direct) {
                tdm_sp_split_row(src, w, pb, sw, ph, 0.f, d);
                continue;
            }
            for (int64_t q = 0; q < sw; q++, d += ph) {
                zero_run(d, lo[q]);
                const float *sq = src + q - pb; /* d[k] = sq[k * sw] */
                if (sw == 1)
                    copy_run(d + lo[q], sq + lo[q], hi[q] - lo[q]);
                else if (sw == 2) /* a constant stride: vectorised with shuffles */
                    for (int64_t k = lo[q]; k < hi[q]; k++)
                        d[k] = sq[2 * k];
                else
                    for (int64_t k = lo[q]; k < hi[q]; k++)
                        d[k] = sq[k * sw];
                zero_run(d + hi[q], ph - hi[q]);
            }
        }
    }
}

static void gather_rows(const conv_plan *p, const stage_geom *sg, const float *stage, float *col,
                        int64_t ldcol, int64_t n0, int64_t n1, int64_t r0, int64_t r1)
{
    const tdm_spatial *g = &p->g;
    int64_t kw = g->k[2], ow_n = g->out[2], sw = g->s[2];
    int64_t c = r0 / p->kvol, t0 = r0 % p->kvol;
    int64_t kh = t0 / kw, kx = t0 % kw;
    int64_t oh_step = g->s[1] * sg->row_len;
    /* The tile: a partial first output row, whole rows, a partial last one. */
    int64_t ow0 = n0 % ow_n;
    int64_t head = ow0 == 0 ? 0 : (ow_n - ow0 < n1 - n0 ? ow_n - ow0 : n1 - n0);
    int64_t full = (n1 - n0 - head) / ow_n, tail = n1 - n0 - head - full * ow_n;
    /* Offset of each kernel column's tap in a staged row (divisions once). */
    enum { KX_CACHE = 16 };
    int64_t tap_c[KX_CACHE];
    for (int64_t i = 0; i < kw && i < KX_CACHE; i++)
        tap_c[i] = (i * g->d[2] % sw) * sg->ph + i * g->d[2] / sw;
    for (int64_t r = r0; r < r1; r++) {
        int64_t tap_off =
            kx < KX_CACHE ? tap_c[kx] : (kx * g->d[2] % sw) * sg->ph + kx * g->d[2] / sw;
        const float *base = stage + (c * sg->rows + kh * g->d[1]) * sg->row_len + tap_off;
        float *o = col + r * ldcol;
        const float *src = base + ow0;
        if (head > 0) {
            copy_run(o, src, head);
            o += head;
            src = base + oh_step;
        }
        copy_rows(o, src, full, ow_n, oh_step);
        if (tail > 0)
            copy_run(o + full * ow_n, src + full * oh_step, tail);
        if (++kx == kw) {
            kx = 0;
            if (++kh == g->k[1]) {
                kh = 0;
                c++;
            }
        }
    }
}

typedef struct gemm_conv_job {
    const conv_plan *p;
    const float *x, *w, *bias;
    float *y;
    bool pointwise; /* 1x1 stride 1 unpadded: B is X itself */
    int64_t tile, ntiles;
    float *buf;      /* one K x tile column block per worker */
    int64_t buf_len; /* floats per worker */
    int64_t col_len; /* floats of the column block at the start of a worker's buf */
    bool staged;     /* 2-D: im2col through a staging block after the column block */
    tdm_pool *inner; /* pool for the GEMM/im2col of one task, NULL when tasks run in parallel */
    /* im2col parallel over rows (inner mode only) */
    const float *ic_x;
    int64_t ic_n0, ic_n1;
    const float *ic_stage;
    stage_geom ic_sg;
} gemm_conv_job;

static void im2col_task(void *arg, int64_t r0, int64_t r1, int worker)
{
    const gemm_conv_job *j = arg;
    (void)worker;
    if (j->staged)
        gather_rows(j->p, &j->ic_sg, j->ic_stage, j->buf, j->ic_n1 - j->ic_n0, j->ic_n0, j->ic_n1,
                    r0, r1);
    else
        im2col(j->p, j->ic_x, j->buf, j->ic_n1 - j->ic_n0, j->ic_n0, j->ic_n1, r0, r1);
}

/* One (image, group, tile) task; `buf` is this worker's column block. */
static void conv_gemm_one(gemm_conv_job *j, int64_t task, float *buf)
{
    const conv_plan *p = j->p;
    int64_t tile = task % j->ntiles, ng = task / j->ntiles;
    int64_t n = ng / p->group, gi = ng % p->group;
    int64_t n0 = tile * j->tile, n1 = n0 + j->tile < p->out_vol ? n0 + j->tile : p->out_vol;
    const float *xg = j->x + (n * p->c + gi * p->cg) * p->in_vol;
    const float *bmat;
    int64_t ldb;
    if (j->pointwise) {
        bmat = xg + n0;
        ldb = p->in_vol;
    } else {
        stage_geom sg;
        float *stage = buf + j->col_len;
        if (j->staged) {
            stage_geometry(p, n0, n1, &sg);
            stage_rows(p, xg, &sg, stage, 0, p->cg);
        }
        if (j->inner != NULL && tdm_pool_size(j->inner) > 1) {
            j->ic_x = xg;
            j->ic_n0 = n0;
            j->ic_n1 = n1;
            j->ic_stage = stage;
            if (j->staged)
                j->ic_sg = sg;
            int64_t grain = 4096 / (n1 - n0) + 1;
            tdm_pool_for(j->inner, p->k, grain, im2col_task, j);
        } else if (j->staged) {
            gather_rows(p, &sg, stage, buf, n1 - n0, n0, n1, 0, p->k);
        } else {
            im2col(p, xg, buf, n1 - n0, n0, n1, 0, p->k);
        }
        bmat = buf;
        ldb = n1 - n0;
    }
    tdm_epilogue ep = {NULL, j->bias != NULL ? j->bias + gi * p->mg : NULL, p->act, p->alpha,
                       p->beta};
    bool use_ep = ep.bias_row != NULL || ep.act != TDM_ACT_NONE;
    float *yg = j->y + (n * p->m + gi * p->mg) * p->out_vol + n0;
    tdm_sgemm(j->inner, false, false, p->mg, n1 - n0, p->k, 1.f, j->w + gi * p->mg * p->k, p->k,
              bmat, ldb, 0.f, yg, p->out_vol, use_ep ? &ep : NULL);
}

static void conv_gemm_task(void *arg, int64_t begin, int64_t end, int worker)
{
    gemm_conv_job *j = arg;
    for (int64_t t = begin; t < end; t++)
        conv_gemm_one(j, t, j->buf + (int64_t)worker * j->buf_len);
}

static tdm_status conv_gemm(tdm_op_ctx *ctx, const conv_plan *p, const float *x, const float *w,
                            const float *bias, float *y)
{
    const tdm_spatial *g = &p->g;
    gemm_conv_job j;
    memset(&j, 0, sizeof j);
    j.p = p;
    j.x = x;
    j.w = w;
    j.bias = bias;
    j.y = y;
    j.pointwise = p->kvol == 1 && g->s[0] == 1 && g->s[1] == 1 && g->s[2] == 1;
    for (int a = 0; a < TDM_SP_AXES; a++)
        if (g->pb[a] != 0 || g->pe[a] != 0)
            j.pointwise = false;
    /* Tiles of output pixels sized so a K x tile column block is ~L2, at
     * least 64 wide so the GEMM still streams. With few images and groups,
     * more (narrower, >= 96) tiles so that every thread gets a couple of
     * tasks: one parallel loop over independent tasks needs a single
     * synchronisation, where parallelising inside each task needs two per
     * task. Then the tiles are evened out. */
    int threads = tdm_nn_threads(ctx);
    int64_t ng = p->n * p->group;
    int64_t tile = (int64_t)(CONV_TILE_BYTES / sizeof(float)) / p->k;
    if (tile < 64)
        tile = 64;
    j.ntiles = (p->out_vol + tile - 1) / tile;
    if (threads > 1 && ng * j.ntiles < 2 * (int64_t)threads) {
        int64_t want = (2 * (int64_t)threads + ng - 1) / ng, most = p->out_vol / 96;
        if (want > most)
            want = most;
        if (want > j.ntiles)
            j.ntiles = want;
    }
    tile = (p->out_vol + j.ntiles - 1) / j.ntiles;
    tile = (tile + 7) / 8 * 8;
    j.tile = tile < p->out_vol ? tile : p->out_vol;
    j.ntiles = (p->out_vol + j.tile - 1) / j.tile;

    int64_t tasks = ng * j.ntiles;
    bool outer = threads > 1 && tasks >= threads;
    if (!j.pointwise) {
        size_t per, total;
        int slots = outer ? threads : 1;
        j.staged = stage_ok(p);
        size_t stage = j.staged ? (size_t)stage_floats(p, j.tile) : 0;
        if (tdm_mul_overflow((size_t)p->k, (size_t)j.tile, &per) ||
            tdm_add_overflow((per + 15) / 16 * 16, stage, &per) ||
            tdm_mul_overflow(per, sizeof(float) * (size_t)slots, &total))
            return tdm_op_fail(ctx, TDM_ERR_NOMEM, "im2col workspace size overflows");
        j.buf = tdm_op_scratch(ctx, total);
        if (j.buf == NULL)
            return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory for a %zu-byte workspace", total);
        j.buf_len = (int64_t)per;
        j.col_len = (p->k * j.tile + 15) / 16 * 16;
    }
    if (outer) {
        j.inner = NULL;
        tdm_pool_for(ctx->pool, tasks, 1, conv_gemm_task, &j);
    } else {
        j.inner = ctx->pool;
        for (int64_t t = 0; t < tasks; t++)
            conv_gemm_one(&j, t, j.buf);
    }
    return TDM_OK;
}

/* A convolution over zero input channels: every output is act(bias). */
static void conv_empty(const conv_plan *p, const float *bias, float *y)
{
    for (int64_t n = 0; n < p->n; n++)
        for (int64_t m = 0; m < p->m; m++) {
            float *o = y + (n * p->m + m) * p->out_vol;
            for (int64_t i = 0; i < p->out_vol; i++)
                o[i] = bias != NULL ? bias[m] : 0.f;
            tdm_act_apply(o, p->out_vol, p->act, p->alpha, p->beta);
        }
}

/*
 * The plan of the last run, per node (ctx->state): conv_setup reads a dozen
 * attributes by name, which on a small network (resnet_4b at batch 1: 11
 * convolutions of 20-60 us) is a visible share of a run. Keyed on every
 * input's dtype and shape, so a new shape plans again.
 */
typedef struct conv_key {
    int n;
    int ndim[3];
    tdm_dtype dtype[3];
    int64_t dims[3][TDM_MAX_DIMS];
} conv_key;

typedef struct conv_cache {
    bool valid;
    conv_key key;
    conv_plan plan;
} conv_cache;

static void conv_key_of(const tdm_op_ctx *ctx, conv_key *k)
{
    memset(k, 0, sizeof *k);
    k->n = ctx->n_in < 3 ? ctx->n_in : 3;
    for (int i = 0; i < k->n; i++) {
        const tdm_tensor *t = ctx->in[i];
        if (t == NULL) {
            k->ndim[i] = -2;
            continue;
        }
        k->ndim[i] = t->ndim;
        k->dtype[i] = t->dtype;
        for (int d = 0; d < t->ndim && d < TDM_MAX_DIMS; d++)
            k->dims[i][d] = t->dims[d];
    }
}

tdm_status tdm_conv_prepare(tdm_op_ctx *ctx)
{
    ctx->state = calloc(1, sizeof(conv_cache));
    if (ctx->state == NULL)
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "out of memory");
    return TDM_OK;
}

void tdm_conv_release(void *state)
{
    free(state);
}

tdm_status tdm_conv_run(tdm_op_ctx *ctx)
{
    conv_plan p;
    conv_cache *cache = ctx->state;
    conv_key key;
    tdm_status s = TDM_OK;
    if (cache != NULL) {
        conv_key_of(ctx, &key);
        if (cache->valid && memcmp(&key, &cache->key, sizeof key) == 0)
            p = cache->plan;
        else
            cache->valid = false;
    }
    if (cache == NULL || !cache->valid) {
        s = conv_setup(ctx, &p);
        if (s == TDM_OK && cache != NULL) {
            cache->key = key;
            cache->plan = p;
            cache->valid = true;
        }
    }
    if (s != TDM_OK)
        return s == TDM_ERR_NEEDS_VALUE
                   ? tdm_op_fail(ctx, TDM_ERR_INTERNAL, "input shapes unknown at run time")
                   : s;
    const float *x = ctx->in[0]->data, *w = ctx->in[1]->data;
    const float *bias = ctx->n_in > 2 && ctx->in[2] != NULL ? ctx->in[2]->data : NULL;
    float *y = ctx->out[0]->data;
    assert(x != NULL && w != NULL && y != NULL);
    if (p.n == 0 || p.m == 0 || p.out_vol == 0)
        return TDM_OK;
    if (p.k == 0) {
        conv_empty(&p, bias, y);
        return TDM_OK;
    }
    const tdm_spatial *g = &p.g;
    /* One input channel feeding many outputs (a first layer on grey images)
     * is a GEMM of depth kvol shared by all outputs, not a depthwise conv. */
    if (p.cg == 1 && g->in[0] == 1 && g->k[0] == 1 && g->out[0] == 1 && g->pb[0] == 0 &&
        (p.group > 1 || p.m == 1))
        return conv_depthwise(ctx, &p, x, w, bias, y);
    return conv_gemm(ctx, &p, x, w, bias, y);
}
