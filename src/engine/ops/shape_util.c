/*
 * Helpers shared by the shape/data-movement ops: input and axis checking,
 * reading shape-like integer tensors, broadcasting, and the strided gather
 * that most of the group's copies reduce to.
 *
 * The strided gather first simplifies its view: dims of size 1 are dropped
 * and neighbouring dims that are contiguous in the source are merged, so a
 * Slice of whole rows becomes one memcpy and Transpose of [B,S,H,D] to
 * [B,H,S,D] becomes B*H*S copies of D elements. What is left is handled by
 * one of three loops:
 *   - rows: the innermost source stride is 1 (memcpy) or 0 (a fill);
 *   - tiles: the source's unit-stride dim moved away from the innermost
 *     position (a true transpose); copied in 32x32 blocks so that both the
 *     reads and the writes stay within a few cache lines;
 *   - elements: anything else (a strided innermost dim, e.g. a Slice with
 *     step 2), one typed element at a time.
 * Each loop is split over the thread pool by output rows or tiles when the
 * copy is big enough to pay for the hand-off.
 */
#include <assert.h>
#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "engine/ops/shape_ops.h"

/* Copies below this many bytes run on the calling thread. */
#define SHP_PARALLEL_BYTES ((size_t)1 << 17)
/* Edge of a transpose tile, in elements. */
#define SHP_TILE 32

tdm_status tdm_shp_input(tdm_op_ctx *ctx, int i, const char *what, bool data,
                         const tdm_tensor **out)
{
    const tdm_tensor *t = tdm_shp_in(ctx, i);
    if (t == NULL)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "missing required input %d (%s)", i, what);
    if (t->ndim < 0)
        return TDM_ERR_NEEDS_VALUE;
    if (t->ndim > TDM_MAX_DIMS)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "input %s has rank %d (max %d)", what,
                           (int)t->ndim, TDM_MAX_DIMS);
    for (int k = 0; k < t->ndim; k++)
        if (t->dims[k] < 0)
            return TDM_ERR_NEEDS_VALUE;
    if (data && tdm_dtype_size(t->dtype) == 0)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED,
                           "input %s has dtype %s, which is not supported", what,
                           tdm_dtype_name(t->dtype));
    *out = t;
    return TDM_OK;
}

tdm_status tdm_shp_axis(tdm_op_ctx *ctx, int64_t axis, int rank, const char *what, int *out)
{
    if (axis < -(int64_t)rank || axis >= rank)
        return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "%s %lld is out of range for rank %d", what,
                           (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return TDM_OK;
}

tdm_status tdm_shp_read_ints(tdm_op_ctx *ctx, const tdm_tensor *t, const char *what, int64_t *out,
                             int64_t max, int64_t *n)
{
    if (t->dtype != TDM_DTYPE_INT64 && t->dtype != TDM_DTYPE_INT32)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input %s must be int64, got %s", what,
                           tdm_dtype_name(t->dtype));
    if (t->ndim > 1)
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "input %s must be 1-D, got rank %d", what,
                           (int)t->ndim);
    int64_t count = t->ndim == 1 ? t->dims[0] : 1;
    if (count < 0)
        return TDM_ERR_NEEDS_VALUE;
    if (count > max)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "input %s has %lld values (max %lld)", what,
                           (long long)count, (long long)max);
    if (count > 0 && t->data == NULL)
        return TDM_ERR_NEEDS_VALUE;
    for (int64_t i = 0; i < count; i++)
        out[i] = t->dtype == TDM_DTYPE_INT64 ? ((const int64_t *)t->data)[i]
                                             : ((const int32_t *)t->data)[i];
    *n = count;
    return TDM_OK;
}

tdm_status tdm_shp_axes(tdm_op_ctx *ctx, const int64_t *axes, int64_t n, int rank, const char *what,
                        int *out, bool *seen)
{
    for (int k = 0; k < rank; k++)
        seen[k] = false;
    for (int64_t i = 0; i < n; i++) {
        tdm_status s = tdm_shp_axis(ctx, axes[i], rank, what, &out[i]);
        if (s != TDM_OK)
            return s;
        if (seen[out[i]])
            return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "%s %lld appears twice", what,
                               (long long)axes[i]);
        seen[out[i]] = true;
    }
    return TDM_OK;
}

tdm_status tdm_shp_set_out(tdm_op_ctx *ctx, int o, tdm_dtype dt, int ndim, const int64_t *dims)
{
    tdm_tensor *t = tdm_shp_out(ctx, o);
    if (ndim < 0 || ndim > TDM_MAX_DIMS)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "output %d would have rank %d (max %d)", o,
                           ndim, TDM_MAX_DIMS);
    size_t bytes;
    size_t es = tdm_dtype_size(dt);
    if (!tdm_shape_checked_bytes(dims, ndim, es ? es : 1, TDM_SHP_MAX_BYTES, &bytes)) {
        for (int k = 0; k < ndim; k++)
            if (dims[k] < 0)
                return tdm_op_fail(ctx, TDM_ERR_SHAPE, "output %d would have dim %d = %lld", o, k,
                                   (long long)dims[k]);
        return tdm_op_fail(ctx, TDM_ERR_NOMEM, "output %d would exceed %zu bytes", o,
                           TDM_SHP_MAX_BYTES);
    }
    if (t != NULL)
        tdm_tensor_set_shape(t, dt, ndim, dims);
    return TDM_OK;
}

tdm_status tdm_shp_broadcast(tdm_op_ctx *ctx, const int64_t *a, int na, const int64_t *b, int nb,
                             int64_t *out, int *nout)
{
    int n = na > nb ? na : nb;
    if (n > TDM_MAX_DIMS)
        return tdm_op_fail(ctx, TDM_ERR_UNSUPPORTED, "broadcast rank %d exceeds %d", n,
                           TDM_MAX_DIMS);
    for (int k = 0; k < n; k++) {
        int ka = k - (n - na), kb = k - (n - nb);
        int64_t da = ka >= 0 ? a[ka] : 1, db = kb >= 0 ? b[kb] : 1;
        if (da == db || db == 1)
            out[k] = da;
        else if (da == 1)
            out[k] = db;
        else
            return tdm_op_fail(ctx, TDM_ERR_SHAPE,
                               "shapes do not broadcast: dim %d is %lld in one and %lld in the "
                               "other",
                               k, (long long)da, (long long)db);
    }
    *nout = n;
    return TDM_OK;
}

void tdm_shp_strides(const int64_t *dims, int ndim, int64_t *strides)
{
    int64_t s = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        strides[k] = s;
        s *= dims[k];
    }
}

void tdm_shp_bcast_strides(const tdm_tensor *t, int ndim, const int64_t *dims, int64_t *strides)
{
    int64_t s = 1;
    for (int k = ndim - 1; k >= 0; k--) {
        int kt = k - (ndim - t->ndim);
        if (kt < 0 || (t->dims[kt] == 1 && dims[k] != 1)) {
            strides[k] = 0;
        } else {
            strides[k] = s;
            s *= t->dims[kt];
        }
    }
}

/* ---- typed inner loops ----------------------------------------------------
 */

/* One definition per element size; T is only a carrier of bytes. */
#define SHP_DEFINE_LOOPS(T, SUF)                                                                \
    static void row_strided_##SUF(void *dst, const void *src, int64_t n, int64_t stride)        \
    {                                                                                           \
        T *d = dst;                                                                             \
        const T *s = src;                                                                       \
        for (int64_t i = 0; i < n; i++)                                                         \
            d[i] = s[i * stride];                                                               \
    }                                                                                           \
    static void fill_##SUF(void *dst, const void *elem, int64_t n)                              \
    {                                                                                           \
        T *d = dst;                                                                             \
        T v;                                                                                    \
        memcpy(&v, elem, sizeof v);                                                             \
        for (int64_t i = 0; i < n; i++)                                                         \
            d[i] = v;                                                                           \
    }                                                                                           \
    /*                                                                                          \
     * dst[r * drs + c] = src[r + c * scs] for r < rows, c < cols. Full 8x8                     \
     * blocks go through a local buffer so that both the loads (along r) and the                \
     * stores (along c) are contiguous runs of 8; a power-of-two stride would                   \
     * otherwise make every strided access of a block fall into the same cache                  \
     * set.                                                                                     \
     */                                                                                         \
    static void tile_##SUF(void *dst, const void *src, int64_t rows, int64_t cols, int64_t drs, \
                           int64_t scs)                                                         \
    {                                                                                           \
        T *d = dst;                                                                             \
        const T *s = src;                                                                       \
        int64_t r8 = rows & ~(int64_t)7, c8 = cols & ~(int64_t)7;                               \
        T buf[8][8];                                                                            \
        for (int64_t c0 = 0; c0 < c8; c0 += 8) {                                                \
            for (int64_t r0 = 0; r0 < r8; r0 += 8) {                                            \
                for (int c = 0; c < 8; c++)                                                     \
                    for (int r = 0; r < 8; r++)                                                 \
                        buf[r][c] = s[r0 + r + (c0 + c) * scs];                                 \
                for (int r = 0; r < 8; r++)                                                     \
                    for (int c = 0; c < 8; c++)                                                 \
                        d[(r0 + r) * drs + c0 + c] = buf[r][c];                                 \
            }                                                                                   \
            for (int64_t r = r8; r < rows; r++)                                                 \
                for (int64_t c = c0; c < c0 + 8; c++)                                           \
                    d[r * drs + c] = s[r + c * scs];                                            \
        }                                                                                       \
        for (int64_t r = 0; r < rows; r++)                                                      \
            for (int64_t c = c8; c < cols; c++)                                                 \
                d[r * drs + c] = s[r + c * scs];                                                \
    }

SHP_DEFINE_LOOPS(uint8_t, 1)
SHP_DEFINE_LOOPS(uint16_t, 2)
SHP_DEFINE_LOOPS(uint32_t, 4)
SHP_DEFINE_LOOPS(uint64_t, 8)

typedef void (*row_strided_fn)(void *, const void *, int64_t, int64_t);
typedef void (*fill_fn)(void *, const void *, int64_t);
typedef void (*tile_fn)(void *, const void *, int64_t, int64_t, int64_t, int64_t);

static int size_slot(size_t esize)
{
    switch (esize) {
    case 1: return 0;
    case 2: return 1;
    case 4: return 2;
    case 8: return 3;
    default: return -1;
    }
}

static const row_strided_fn k_row_strided[4] = {row_strided_1, row_strided_2, row_strided_4,
                                                row_strided_8};
static const fill_fn k_fill[4] = {fill_1, fill_2, fill_4, fill_8};
static const tile_fn k_tile[4] = {tile_1, tile_2, tile_4, tile_8};

void tdm_shp_fill(void *dst, const void *elem, size_t esize, int64_t n)
{
    int slot = size_slot(esize);
    if (slot >= 0) {
        k_fill[slot](dst, elem, n);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        memcpy((char *)dst + (size_t)i * esize, elem, esize);
}

/* ---- strided copy
 * ------------------------------------------------------------ */

typedef struct sc_plan {
    char *dst;
    const char *src;
    size_t esize;
    int slot;
    int nd;
    int64_t dims[TDM_SHP_MAX_VIEW];
    int64_t sstr[TDM_SHP_MAX_VIEW]; /* source strides, elements */
    int64_t dstr[TDM_SHP_MAX_VIEW]; /* destination strides, elements */
    int tk;                         /* tile path: the dim with source stride 1 */
    int64_t nblk;                   /* tile path: blocks along tk */
} sc_plan;

static void copy_row(const sc_plan *p, char *d, const char *s, int64_t n, int64_t stride)
{
    if (stride == 1) {
        memcpy(d, s, (size_t)n * p->esize);
    } else if (stride == 0) {
        tdm_shp_fill(d, s, p->esize, n);
    } else if (p->slot >= 0) {
        k_row_strided[p->slot](d, s, n, stride);
    } else {
        for (int64_t i = 0; i < n; i++)
            memcpy(d + (size_t)i * p->esize, s + i * stride * (int64_t)p->esize, p->esize);
    }
}

/* Rows are indexed over dims[0..nd-2]; each copies dims[nd-1] elements. */
static void sc_rows(void *arg, int64_t begin, int64_t end, int worker)
{
    const sc_plan *p = arg;
    (void)worker;
    int last = p->nd - 1;
    int64_t n = p->dims[last];
    int64_t idx[TDM_SHP_MAX_VIEW];
    int64_t off = 0, r = begin;
    for (int k = last - 1; k >= 0; k--) {
        idx[k] = r % p->dims[k];
        r /= p->dims[k];
        off += idx[k] * p->sstr[k];
    }
    char *d = p->dst + (size_t)begin * (size_t)n * p->esize;
    for (int64_t row = begin; row < end; row++) {
        copy_row(p, d, p->src + off * (int64_t)p->esize, n, p->sstr[last]);
        d += (size_t)n * p->esize;
        for (int k = last - 1; k >= 0; k--) {
            off += p->sstr[k];
            if (++idx[k] < p->dims[k])
                break;
            off -= p->sstr[k] * p->dims[k];
            idx[k] = 0;
        }
    }
}

/* Items are (batch over dims other than tk and last) x (block along tk). */
static void sc_tiles(void *arg, int64_t begin, int64_t end, int worker)
{
    const sc_plan *p = arg;
    (void)worker;
    int last = p->nd - 1;
    for (int64_t item = begin; item < end; item++) {
        int64_t blk = item % p->nblk, b = item / p->nblk;
        int64_t soff = 0, doff = 0;
        for (int k = last - 1; k >= 0; k--) {
            if (k == p->tk)
                continue;
            int64_t i = b % p->dims[k];
            b /= p->dims[k];
            soff += i * p->sstr[k];
            doff += i * p->dstr[k];
        }
        int64_t r0 = blk * SHP_TILE;
        int64_t rows = p->dims[p->tk] - r0 < SHP_TILE ? p->dims[p->tk] - r0 : SHP_TILE;
        soff += r0; /* source stride along tk is 1 */
        doff += r0 * p->dstr[p->tk];
        k_tile[p->slot](p->dst + doff * (int64_t)p->esize, p->src + soff * (int64_t)p->esize, rows,
                        p->dims[last], p->dstr[p->tk], p->sstr[last]);
    }
}

void tdm_shp_strided_copy(void *dst, const void *src, size_t esize, int ndim, const int64_t *dims,
                          const int64_t *strides, tdm_pool *pool)
{
    assert(ndim >= 0 && ndim <= TDM_SHP_MAX_VIEW);
    sc_plan p;
    p.dst = dst;
    p.src = src;
    p.esize = esize;
    p.slot = size_slot(esize);
    p.nd = 0;
    for (int k = 0; k < ndim; k++)
        if (dims[k] == 0)
            return; /* nothing to copy; other dims may be huge (Tile by INT64_MAX) */
    int64_t total = 1;
    for (int k = 0; k < ndim; k++) {
        total *= dims[k];
        if (dims[k] == 1)
            continue;
        /* merge with the previous kept dim when it steps over this one exactly */
        if (p.nd > 0 && p.sstr[p.nd - 1] == strides[k] * dims[k]) {
            p.dims[p.nd - 1] *= dims[k];
            p.sstr[p.nd - 1] = strides[k];
            continue;
        }
        p.dims[p.nd] = dims[k];
        p.sstr[p.nd] = strides[k];
        p.nd++;
    }
    if (p.nd == 0) {
        memcpy(dst, src, esize);
        return;
    }
    tdm_shp_strides(p.dims, p.nd, p.dstr);
    size_t bytes = (size_t)total * esize;
    int last = p.nd - 1;

    /* A true transpose: the unit-stride source dim is not innermost. */
    p.tk = -1;
    if (p.slot >= 0 && p.sstr[last] != 1 && p.sstr[last] != 0 && p.dims[last] >= 4) {
        for (int k = 0; k < last; k++)
            if (p.sstr[k] == 1 && p.dims[k] >= 4)
                p.tk = k;
    }
    if (p.tk >= 0) {
        p.nblk = (p.dims[p.tk] + SHP_TILE - 1) / SHP_TILE;
        int64_t items = total / p.dims[p.tk] / p.dims[last] * p.nblk;
        if (bytes < SHP_PARALLEL_BYTES || pool == NULL)
            sc_tiles(&p, 0, items, 0);
        else
            tdm_pool_for(pool, items, 1, sc_tiles, &p);
        return;
    }
    int64_t rows = total / p.dims[last];
    if (bytes < SHP_PARALLEL_BYTES || pool == NULL || rows < 2) {
        sc_rows(&p, 0, rows, 0);
        return;
    }
    /* chunks of at least ~16 KiB so the hand-off stays cheap */
    int64_t row_bytes = p.dims[last] * (int64_t)esize;
    int64_t grain = ((int64_t)1 << 14) / (row_bytes > 0 ? row_bytes : 1);
    tdm_pool_for(pool, rows, grain < 1 ? 1 : grain, sc_rows, &p);
}

typedef struct cb_args {
    char *dst;
    const char *src;
    size_t n;
} cb_args;

static void cb_chunk(void *arg, int64_t begin, int64_t end, int worker)
{
    const cb_args *a = arg;
    (void)worker;
    size_t b = (size_t)begin << 16, e = (size_t)end << 16;
    if (e > a->n)
        e = a->n;
    memcpy(a->dst + b, a->src + b, e - b);
}

void tdm_shp_copy_bytes(void *dst, const void *src, size_t n, tdm_pool *pool)
{
    if (n == 0 || dst == src)
        return;
    if (pool == NULL || n < ((size_t)1 << 20)) {
        memcpy(dst, src, n);
        return;
    }
    cb_args a = {dst, src, n};
    tdm_pool_for(pool, (int64_t)((n + 0xffff) >> 16), 4, cb_chunk, &a);
}

/* ---- scalar conversion ------------------------------------------------------
 */

static int64_t sat_i64(double v, double lo, double hi)
{
    if (isnan(v))
        return 0;
    if (v <= lo)
        return (int64_t)lo;
    if (v >= hi)
        return (int64_t)hi;
    return (int64_t)v;
}

bool tdm_shp_scalar_from_f64(tdm_dtype dt, double v, void *out)
{
    switch (dt) {
    case TDM_DTYPE_FLOAT32: {
        float f = (float)v;
        memcpy(out, &f, 4);
        return true;
    }
    case TDM_DTYPE_FLOAT64: memcpy(out, &v, 8); return true;
    case TDM_DTYPE_FLOAT16: {
        uint16_t h = tdm_fp32_to_fp16((float)v);
        memcpy(out, &h, 2);
        return true;
    }
    case TDM_DTYPE_BFLOAT16: {
        float f = (float)v;
        uint32_t x;
        memcpy(&x, &f, 4);
        uint16_t h;
        if ((x & 0x7fffffffu) > 0x7f800000u)
            h = (uint16_t)((x >> 16) | 0x40); /* keep NaN a NaN */
        else
            h = (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
        memcpy(out, &h, 2);
        return true;
    }
    case TDM_DTYPE_BOOL: *(uint8_t *)out = v != 0.0; return true;
    case TDM_DTYPE_UINT8: *(uint8_t *)out = (uint8_t)sat_i64(v, 0, 255); return true;
    case TDM_DTYPE_INT8: *(int8_t *)out = (int8_t)sat_i64(v, -128, 127); return true;
    case TDM_DTYPE_UINT16: {
        uint16_t x = (uint16_t)sat_i64(v, 0, 65535);
        memcpy(out, &x, 2);
        return true;
    }
    case TDM_DTYPE_INT16: {
        int16_t x = (int16_t)sat_i64(v, -32768, 32767);
        memcpy(out, &x, 2);
        return true;
    }
    case TDM_DTYPE_INT32: {
        int32_t x = (int32_t)sat_i64(v, -2147483648.0, 2147483647.0);
        memcpy(out, &x, 4);
        return true;
    }
    case TDM_DTYPE_UINT32: {
        uint32_t x = (uint32_t)sat_i64(v, 0, 4294967295.0);
        memcpy(out, &x, 4);
        return true;
    }
    case TDM_DTYPE_INT64: {
        /* 2^63 is not representable: stay one ulp below */
        int64_t x = sat_i64(v, -9223372036854775808.0, 9223372036854774784.0);
        memcpy(out, &x, 8);
        return true;
    }
    case TDM_DTYPE_UINT64: {
        uint64_t x;
        if (isnan(v) || v <= 0)
            x = 0;
        else if (v >= 18446744073709549568.0)
            x = UINT64_MAX;
        else
            x = (uint64_t)v;
        memcpy(out, &x, 8);
        return true;
    }
    case TDM_DTYPE_STRING:
    case TDM_DTYPE_UNDEFINED: return false;
    }
    return false;
}

/* ---- index conversion -------------------------------------------------------
 */

#define SHP_IDX_LOOP(T)                 \
    do {                                \
        const T *p = t->data;           \
        for (int64_t i = 0; i < n; i++) \
            out[i] = (int64_t)p[i];     \
    } while (0)

tdm_status tdm_shp_indices_i64(tdm_op_ctx *ctx, const tdm_tensor *t, const char *what, int64_t *out)
{
    int64_t n = tdm_tensor_numel(t);
    if (n > 0 && t->data == NULL)
        return TDM_ERR_NEEDS_VALUE;
    switch (t->dtype) {
    case TDM_DTYPE_INT64: SHP_IDX_LOOP(int64_t); return TDM_OK;
    case TDM_DTYPE_INT32: SHP_IDX_LOOP(int32_t); return TDM_OK;
    case TDM_DTYPE_INT16: SHP_IDX_LOOP(int16_t); return TDM_OK;
    case TDM_DTYPE_INT8: SHP_IDX_LOOP(int8_t); return TDM_OK;
    case TDM_DTYPE_UINT8: SHP_IDX_LOOP(uint8_t); return TDM_OK;
    case TDM_DTYPE_UINT16: SHP_IDX_LOOP(uint16_t); return TDM_OK;
    case TDM_DTYPE_UINT32: SHP_IDX_LOOP(uint32_t); return TDM_OK;
    case TDM_DTYPE_UINT64: {
        const uint64_t *p = t->data;
        for (int64_t i = 0; i < n; i++)
            out[i] = p[i] > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)p[i];
        return TDM_OK;
    }
    case TDM_DTYPE_FLOAT32:
    case TDM_DTYPE_FLOAT64:
    case TDM_DTYPE_FLOAT16: {
        for (int64_t i = 0; i < n; i++) {
            double v = tdm_tensor_get_f64(t, i);
            if (!(v > -9.0e18 && v < 9.0e18))
                return tdm_op_fail(ctx, TDM_ERR_INVALID_ARG, "%s[%lld] = %g is not an index", what,
                                   (long long)i, v);
            out[i] = (int64_t)v;
        }
        return TDM_OK;
    }
    default:
        return tdm_op_fail(ctx, TDM_ERR_SHAPE, "%s has dtype %s, expected an integer type", what,
                           tdm_dtype_name(t->dtype));
    }
}
