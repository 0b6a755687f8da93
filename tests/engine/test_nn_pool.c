/*
 * MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool against naive
 * per-window reference loops written here (output sizes from the ONNX
 * formulas, every window position bounds-tested, averages in double), plus
 * the literal expected values of a few ONNX backend examples.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "op_harness.h"

static uint32_t g_seed = 777u;

static float frand(void)
{
    g_seed = g_seed * 1664525u + 1013904223u;
    return (float)((g_seed >> 8) & 0xffff) / 32768.f - 1.f;
}

static void make_rand(tdm_tensor *t, int ndim, const int64_t *dims)
{
    assert_int_equal(tdm_tensor_make(t, TDM_DTYPE_FLOAT32, ndim, dims, NULL), TDM_OK);
    float *p = t->data;
    for (int64_t i = 0; i < tdm_tensor_numel(t); i++)
        p[i] = frand();
}

typedef struct pool_case {
    const char *name;
    bool is_max;
    int nsp;
    int64_t n, c;
    int64_t in[3], k[3], s[3], d[3];
    int64_t pads[6];
    const char *auto_pad;
    int ceil_mode, include_pad;
    bool indices;
    int storage_order;
} pool_case;

static void run_pool_case(const pool_case *pc, tdm_pool *pool)
{
    int nsp = pc->nsp, off = 3 - nsp;
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1};
    int64_t pb[3] = {0, 0, 0}, pe[3] = {0, 0, 0}, out[3] = {1, 1, 1};
    for (int i = 0; i < nsp; i++) {
        int a = off + i;
        in[a] = pc->in[i];
        k[a] = pc->k[i];
        s[a] = pc->s[i] ? pc->s[i] : 1;
        d[a] = pc->d[i] ? pc->d[i] : 1;
        int64_t ext = (k[a] - 1) * d[a] + 1;
        if (pc->auto_pad != NULL) {
            out[a] = (in[a] + s[a] - 1) / s[a];
            int64_t total = (out[a] - 1) * s[a] + ext - in[a];
            total = total < 0 ? 0 : total;
            pb[a] = strcmp(pc->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
            pe[a] = total - pb[a];
        } else {
            pb[a] = pc->pads[i];
            pe[a] = pc->pads[nsp + i];
            int64_t num = in[a] + pb[a] + pe[a] - ext;
            out[a] = pc->ceil_mode ? (num + s[a] - 1) / s[a] + 1 : num / s[a] + 1;
            if (pc->ceil_mode && (out[a] - 1) * s[a] >= in[a] + pb[a])
                out[a]--;
        }
    }
    int64_t xd[5] = {pc->n, pc->c};
    for (int i = 0; i < nsp; i++)
        xd[2 + i] = pc->in[i];
    tdm_tensor x;
    make_rand(&x, nsp + 2, xd);
    tdm_node node;
    op_node_init(&node, pc->is_max ? "MaxPool" : "AveragePool", "", 12, 1, pc->indices ? 2 : 1);
    int64_t v[3];
    op_attr_ints(&node, "kernel_shape", pc->k, nsp);
    for (int i = 0; i < nsp; i++)
        v[i] = s[off + i];
    op_attr_ints(&node, "strides", v, nsp);
    if (pc->d[0] != 0) {
        for (int i = 0; i < nsp; i++)
            v[i] = d[off + i];
        op_attr_ints(&node, "dilations", v, nsp);
    }
    if (pc->auto_pad != NULL)
        op_attr_str(&node, "auto_pad", pc->auto_pad);
    else
        op_attr_ints(&node, "pads", pc->pads, 2 * nsp);
    if (pc->ceil_mode)
        op_attr_int(&node, "ceil_mode", 1);
    if (pc->include_pad)
        op_attr_int(&node, "count_include_pad", 1);
    if (pc->storage_order)
        op_attr_int(&node, "storage_order", 1);
    const tdm_tensor *ins[1] = {&x};
    tdm_tensor y[2];
    tdm_err err = {{0}};
    if (op_run(&node, ins, 1, y, pc->indices ? 2 : 1, pool, &err) != TDM_OK)
        fail_msg("%s: %s", pc->name, err.msg);
    for (int i = 0; i < nsp; i++)
        if (y[0].dims[2 + i] != out[off + i])
            fail_msg("%s: output dim %d is %lld, expected %lld", pc->name, i,
                     (long long)y[0].dims[2 + i], (long long)out[off + i]);
    const float *xp = x.data, *yp = y[0].data;
    const int64_t *ip = pc->indices ? y[1].data : NULL;
    if (pc->indices)
        assert_int_equal(y[1].dtype, TDM_DTYPE_INT64);
    int64_t ivol = in[0] * in[1] * in[2], ovol = out[0] * out[1] * out[2];
    for (int64_t pl = 0; pl < pc->n * pc->c; pl++)
        for (int64_t o = 0; o < ovol; o++) {
            int64_t od = o / (out[1] * out[2]), oh = (o / out[2]) % out[1], ow = o % out[2];
            int64_t oo[3] = {od, oh, ow};
            double acc = pc->is_max ? -INFINITY : 0;
            int64_t cnt = 0, arg = -1;
            for (int64_t t = 0; t < k[0] * k[1] * k[2]; t++) {
                int64_t kk[3] = {t / (k[1] * k[2]), (t / k[2]) % k[1], t % k[2]}, p[3];
                bool inside = true, in_padded = true;
                for (int a = 0; a < 3; a++) {
                    p[a] = oo[a] * s[a] - pb[a] + kk[a] * d[a];
                    inside = inside && p[a] >= 0 && p[a] < in[a];
                    in_padded = in_padded && p[a] >= -pb[a] && p[a] < in[a] + pe[a];
                }
                if (pc->include_pad ? in_padded : inside)
                    cnt++;
                if (!inside)
                    continue;
                int64_t li = (p[0] * in[1] + p[1]) * in[2] + p[2];
                double v2 = xp[pl * ivol + li];
                if (pc->is_max) {
                    if (v2 > acc) {
                        acc = v2;
                        arg = pc->storage_order ? p[0] + in[0] * (p[1] + in[1] * p[2]) : li;
                    }
                } else {
                    acc += v2;
                }
            }
            double want = pc->is_max ? acc : acc / (double)cnt;
            double got = yp[pl * ovol + o];
            if (!(fabs(got - want) <= 1e-5 * (1 + fabs(want))))
                fail_msg("%s (pool %d): plane %lld output %lld is %g, expected %g", pc->name,
                         pool ? tdm_pool_size(pool) : 0, (long long)pl, (long long)o, got, want);
            if (ip != NULL && ip[pl * ovol + o] != pl * ivol + arg)
                fail_msg("%s: index of output %lld is %lld, expected %lld", pc->name, (long long)o,
                         (long long)ip[pl * ovol + o], (long long)(pl * ivol + arg));
        }
    tdm_tensor_free(&y[0]);
    if (pc->indices)
        tdm_tensor_free(&y[1]);
    tdm_tensor_free(&x);
    tdm_node_clear(&node);
}

static const pool_case k_cases[] = {
    {"max 2x2 s2", true, 2, 1, 3, {8, 8}, {2, 2}, {2, 2}, {0}, {0}, NULL, 0, 0, false, 0},
    {"max 3x3 s2 pad1 (stem)",
     true,
     2,
     2,
     4,
     {17, 33},
     {3, 3},
     {2, 2},
     {0},
     {1, 1, 1, 1},
     NULL,
     0,
     0,
     false,
     0},
    {"max 3x3 s1 pad1 wide",
     true,
     2,
     1,
     2,
     {5, 70},
     {3, 3},
     {1, 1},
     {0},
     {1, 1, 1, 1},
     NULL,
     0,
     0,
     false,
     0},
    {"max ceil", true, 2, 1, 2, {9, 10}, {3, 3}, {2, 2}, {0}, {0}, NULL, 1, 0, false, 0},
    {"max ceil pads",
     true,
     2,
     1,
     2,
     {8, 7},
     {3, 2},
     {3, 2},
     {0},
     {1, 1, 1, 0},
     NULL,
     1,
     0,
     false,
     0},
    {"max dilation",
     true,
     2,
     1,
     2,
     {10, 12},
     {3, 2},
     {1, 2},
     {2, 3},
     {1, 0, 1, 2},
     NULL,
     0,
     0,
     false,
     0},
    {"max 1-D", true, 1, 2, 3, {31}, {4}, {3}, {0}, {1, 2}, NULL, 0, 0, false, 0},
    {"max 3-D",
     true,
     3,
     1,
     2,
     {5, 6, 7},
     {2, 3, 2},
     {2, 1, 2},
     {0},
     {0, 1, 1, 1, 1, 0},
     NULL,
     0,
     0,
     false,
     0},
    {"max SAME_UPPER",
     true,
     2,
     1,
     3,
     {7, 9},
     {3, 2},
     {2, 2},
     {0},
     {0},
     "SAME_UPPER",
     0,
     0,
     false,
     0},
    {"max SAME_LOWER",
     true,
     2,
     1,
     3,
     {7, 9},
     {3, 2},
     {1, 1},
     {0},
     {0},
     "SAME_LOWER",
     0,
     0,
     false,
     0},
    {"max indices", true, 2, 2, 3, {7, 8}, {3, 3}, {2, 2}, {0}, {1, 1, 1, 1}, NULL, 0, 0, true, 0},
    {"max indices colmajor", true, 2, 2, 3, {7, 8}, {2, 2}, {2, 2}, {0}, {0}, NULL, 0, 0, true, 1},
    {"max indices 3-D colmajor",
     true,
     3,
     1,
     2,
     {4, 5, 6},
     {2, 2, 3},
     {1, 2, 2},
     {0},
     {0, 0, 1, 0, 1, 1},
     NULL,
     0,
     0,
     true,
     1},
    {"max indices 1-D", true, 1, 1, 2, {9}, {3}, {2}, {0}, {1, 1}, NULL, 0, 0, true, 0},
    {"avg 2x2 s2", false, 2, 1, 3, {8, 8}, {2, 2}, {2, 2}, {0}, {0}, NULL, 0, 0, false, 0},
    {"avg 3x3 pad exclude",
     false,
     2,
     2,
     2,
     {9, 11},
     {3, 3},
     {1, 1},
     {0},
     {1, 1, 1, 1},
     NULL,
     0,
     0,
     false,
     0},
    {"avg 3x3 pad include",
     false,
     2,
     2,
     2,
     {9, 11},
     {3, 3},
     {2, 1},
     {0},
     {1, 2, 2, 1},
     NULL,
     0,
     1,
     false,
     0},
    {"avg ceil", false, 2, 1, 2, {9, 10}, {3, 3}, {2, 2}, {0}, {0}, NULL, 1, 0, false, 0},
    {"avg ceil include pad",
     false,
     2,
     1,
     2,
     {8, 10},
     {3, 3},
     {2, 2},
     {0},
     {1, 1, 1, 1},
     NULL,
     1,
     1,
     false,
     0},
    {"avg dilation",
     false,
     2,
     1,
     1,
     {10, 12},
     {2, 3},
     {1, 1},
     {3, 2},
     {1, 1, 1, 1},
     NULL,
     0,
     0,
     false,
     0},
    {"avg 1-D", false, 1, 2, 2, {20}, {3}, {2}, {0}, {1, 1}, NULL, 0, 1, false, 0},
    {"avg 3-D",
     false,
     3,
     1,
     3,
     {4, 6, 5},
     {2, 2, 2},
     {2, 2, 2},
     {0},
     {1, 0, 0, 0, 1, 1},
     NULL,
     0,
     0,
     false,
     0},
    {"avg SAME_UPPER",
     false,
     2,
     1,
     2,
     {7, 9},
     {3, 2},
     {2, 2},
     {0},
     {0},
     "SAME_UPPER",
     0,
     0,
     false,
     0},
    {"avg SAME_LOWER",
     false,
     2,
     1,
     2,
     {7, 9},
     {2, 2},
     {1, 1},
     {0},
     {0},
     "SAME_LOWER",
     0,
     0,
     false,
     0},
    {"avg s3 odd row (workspace alignment)",
     false,
     2,
     1,
     2,
     {7, 13},
     {2, 3},
     {1, 3},
     {0},
     {0, 1, 1, 0},
     NULL,
     0,
     0,
     false,
     0},
    {"max s3 dilation2",
     true,
     2,
     2,
     3,
     {6, 20},
     {2, 3},
     {1, 3},
     {1, 2},
     {0, 2, 0, 1},
     NULL,
     0,
     0,
     false,
     0},
    {"avg big planes",
     false,
     2,
     2,
     16,
     {30, 30},
     {3, 3},
     {2, 2},
     {0},
     {1, 1, 1, 1},
     NULL,
     0,
     0,
     false,
     0},
};

static void test_pool_cases(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(3, &pool, NULL), TDM_OK);
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) {
        run_pool_case(&k_cases[i], NULL);
        run_pool_case(&k_cases[i], pool);
    }
    tdm_pool_free(pool);
}

/* Runs a pool op on a 1x1xHxW tensor holding 1..H*W; checks against want. */
static void onnx_example(const char *op, int64_t h, int64_t w, void (*attrs)(tdm_node *),
                         const float *want, int64_t oh, int64_t ow)
{
    tdm_tensor x;
    int64_t xd[4] = {1, 1, h, w};
    assert_int_equal(tdm_tensor_make(&x, TDM_DTYPE_FLOAT32, 4, xd, NULL), TDM_OK);
    for (int64_t i = 0; i < h * w; i++)
        ((float *)x.data)[i] = (float)(i + 1);
    tdm_node node;
    op_node_init(&node, op, "", 12, 1, 1);
    attrs(&node);
    const tdm_tensor *ins[1] = {&x};
    tdm_tensor y[1];
    tdm_err err = {{0}};
    if (op_run(&node, ins, 1, y, 1, NULL, &err) != TDM_OK)
        fail_msg("%s", err.msg);
    assert_int_equal(y[0].dims[2], oh);
    assert_int_equal(y[0].dims[3], ow);
    for (int64_t i = 0; i < oh * ow; i++)
        assert_float_equal(((float *)y[0].data)[i], want[i], 1e-6);
    tdm_tensor_free(&y[0]);
    tdm_tensor_free(&x);
    tdm_node_clear(&node);
}

static void attrs_ceil(tdm_node *n)
{
    op_attr_ints(n, "kernel_shape", (int64_t[]){3, 3}, 2);
    op_attr_ints(n, "strides", (int64_t[]){2, 2}, 2);
    op_attr_int(n, "ceil_mode", 1);
}

static void attrs_pads_include(tdm_node *n)
{
    op_attr_ints(n, "kernel_shape", (int64_t[]){5, 5}, 2);
    op_attr_ints(n, "pads", (int64_t[]){2, 2, 2, 2}, 4);
    op_attr_int(n, "count_include_pad", 1);
}

static void attrs_same_upper_3x3(tdm_node *n)
{
    op_attr_ints(n, "kernel_shape", (int64_t[]){3, 3}, 2);
    op_attr_ints(n, "strides", (int64_t[]){2, 2}, 2);
    op_attr_str(n, "auto_pad", "SAME_UPPER");
}

/* Values from the ONNX backend tests (test_*pool_2d_ceil, _precomputed_*). */
static void test_onnx_examples(void **state)
{
    (void)state;
    static const float max_ceil[4] = {11, 12, 15, 16};
    onnx_example("MaxPool", 4, 4, attrs_ceil, max_ceil, 2, 2);
    static const float avg_ceil[4] = {6, 7.5f, 12, 13.5f};
    onnx_example("AveragePool", 4, 4, attrs_ceil, avg_ceil, 2, 2);
    static const float avg_inc[25] = {
        2.5200f,  3.6000f, 4.8000f,  4.0800f,  3.2400f,  4.5600f, 6.4000f, 8.4000f, 7.0400f,
        5.5200f,  7.2000f, 10.0000f, 13.0000f, 10.8000f, 8.4000f, 6.9600f, 9.6000f, 12.4000f,
        10.2400f, 7.9200f, 6.1200f,  8.4000f,  10.8000f, 8.8800f, 6.8400f};
    onnx_example("AveragePool", 5, 5, attrs_pads_include, avg_inc, 5, 5);
    static const float max_same[9] = {7, 9, 10, 17, 19, 20, 22, 24, 25};
    onnx_example("MaxPool", 5, 5, attrs_same_upper_3x3, max_same, 3, 3);
    static const float avg_same[9] = {4, 5.5f, 7, 11.5f, 13, 14.5f, 19, 20.5f, 22};
    onnx_example("AveragePool", 5, 5, attrs_same_upper_3x3, avg_same, 3, 3);
}

static void run_global(const char *op, int ndim, const int64_t *dims, tdm_pool *pool)
{
    tdm_tensor x;
    make_rand(&x, ndim, dims);
    tdm_node node;
    op_node_init(&node, op, "", 1, 1, 1);
    const tdm_tensor *ins[1] = {&x};
    tdm_tensor y[1];
    assert_int_equal(op_run(&node, ins, 1, y, 1, pool, NULL), TDM_OK);
    assert_int_equal(y[0].ndim, ndim);
    for (int i = 2; i < ndim; i++)
        assert_int_equal(y[0].dims[i], 1);
    int64_t planes = dims[0] * dims[1], vol = tdm_tensor_numel(&x) / planes;
    bool is_max = strcmp(op, "GlobalMaxPool") == 0;
    for (int64_t p = 0; p < planes; p++) {
        double acc = is_max ? -INFINITY : 0;
        for (int64_t i = 0; i < vol; i++) {
            double v = ((float *)x.data)[p * vol + i];
            acc = is_max ? (v > acc ? v : acc) : acc + v;
        }
        if (!is_max)
            acc /= (double)vol;
        assert_float_equal(((float *)y[0].data)[p], acc, 1e-5);
    }
    tdm_tensor_free(&y[0]);
    tdm_tensor_free(&x);
    tdm_node_clear(&node);
}

static void test_global_pools(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(2, &pool, NULL), TDM_OK);
    static const int64_t shapes[][5] = {
        {2, 3, 7, 7}, {1, 5, 1, 1}, {3, 4, 13, 1}, {1, 2, 3, 4}, {2, 64, 9, 9}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        run_global("GlobalAveragePool", 4, shapes[i], NULL);
        run_global("GlobalMaxPool", 4, shapes[i], pool);
    }
    static const int64_t d3[5] = {2, 3, 4, 5, 6}, d1[3] = {3, 2, 17};
    run_global("GlobalAveragePool", 5, d3, pool);
    run_global("GlobalMaxPool", 5, d3, NULL);
    run_global("GlobalAveragePool", 3, d1, NULL);
    run_global("GlobalMaxPool", 3, d1, pool);
    tdm_pool_free(pool);
}

static tdm_status try_pool(const char *op, tdm_dtype dt, int ndim, const int64_t *dims,
                           void (*attrs)(tdm_node *), tdm_err *err)
{
    tdm_tensor x;
    memset(&x, 0, sizeof x);
    tdm_tensor_set_shape(&x, dt, ndim, dims);
    tdm_node node;
    op_node_init(&node, op, "", 12, 1, 1);
    if (attrs != NULL)
        attrs(&node);
    const tdm_tensor *ins[1] = {&x};
    tdm_tensor y[1];
    tdm_status s = op_run(&node, ins, 1, y, 1, NULL, err);
    assert_int_not_equal(s, TDM_OK);
    tdm_tensor_free(&y[0]);
    tdm_node_clear(&node);
    return s;
}

static void attrs_k22(tdm_node *n)
{
    op_attr_ints(n, "kernel_shape", (int64_t[]){2, 2}, 2);
}
static void attrs_k9(tdm_node *n)
{
    op_attr_ints(n, "kernel_shape", (int64_t[]){9, 2}, 2);
}
static void attrs_k1(tdm_node *n)
{
    op_attr_ints(n, "kernel_shape", (int64_t[]){2}, 1);
}
static void attrs_bad_ceil(tdm_node *n)
{
    attrs_k22(n);
    op_attr_int(n, "ceil_mode", 7);
}
static void attrs_bad_order(tdm_node *n)
{
    attrs_k22(n);
    op_attr_int(n, "storage_order", 2);
}
static void attrs_zero_stride(tdm_node *n)
{
    attrs_k22(n);
    op_attr_ints(n, "strides", (int64_t[]){1, 0}, 2);
}

static void test_pool_errors(void **state)
{
    (void)state;
    tdm_err err = {{0}};
    const int64_t d4[4] = {1, 2, 8, 8};
    assert_int_equal(try_pool("MaxPool", TDM_DTYPE_FLOAT32, 4, d4, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "kernel_shape"));
    assert_int_equal(try_pool("MaxPool", TDM_DTYPE_FLOAT32, 4, d4, attrs_k1, &err), TDM_ERR_SHAPE);
    assert_int_equal(try_pool("AveragePool", TDM_DTYPE_FLOAT32, 4, d4, attrs_k9, &err),
                     TDM_ERR_SHAPE);
    assert_int_equal(try_pool("MaxPool", TDM_DTYPE_UINT8, 4, d4, attrs_k22, &err),
                     TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "uint8"));
    assert_int_equal(try_pool("MaxPool", TDM_DTYPE_FLOAT32, 4, d4, attrs_bad_ceil, &err),
                     TDM_ERR_SHAPE);
    assert_int_equal(try_pool("MaxPool", TDM_DTYPE_FLOAT32, 4, d4, attrs_bad_order, &err),
                     TDM_ERR_SHAPE);
    assert_int_equal(try_pool("AveragePool", TDM_DTYPE_FLOAT32, 4, d4, attrs_zero_stride, &err),
                     TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "strides"));
    const int64_t d2[2] = {3, 4};
    assert_int_equal(try_pool("MaxPool", TDM_DTYPE_FLOAT32, 2, d2, attrs_k22, &err),
                     TDM_ERR_UNSUPPORTED);
    const int64_t d1[1] = {3};
    assert_int_equal(try_pool("GlobalAveragePool", TDM_DTYPE_FLOAT32, 1, d1, NULL, &err),
                     TDM_ERR_SHAPE);
    assert_int_equal(try_pool("GlobalMaxPool", TDM_DTYPE_INT32, 4, d4, NULL, &err),
                     TDM_ERR_UNSUPPORTED);
    const int64_t huge[4] = {1, 2, (int64_t)1 << 45, 8};
    assert_int_equal(try_pool("MaxPool", TDM_DTYPE_FLOAT32, 4, huge, attrs_k22, &err),
                     TDM_ERR_SHAPE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_cases),
        cmocka_unit_test(test_onnx_examples),
        cmocka_unit_test(test_global_pools),
        cmocka_unit_test(test_pool_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
