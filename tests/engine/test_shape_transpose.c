/*
 * Transpose, DepthToSpace and SpaceToDepth against naive references.
 *
 * The reference walks every output index and computes the input index from
 * the op's definition, one element at a time; the op under test goes
 * through the strided copy with its dim merging, row-copy and tiled
 * transpose paths. Shapes are chosen to hit each path (2-D tiles with
 * ragged edges, the attention [B,S,H,D] -> [B,H,S,D] pattern, broadcast-free
 * permutations of rank 1..6) for every element size, with and without a
 * thread pool.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/pool.h"
#include "engine/op.h"
#include "op_harness.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static tdm_tensor mk_random(tdm_dtype dt, int nd, const int64_t *dims)
{
    tdm_tensor t;
    assert_int_equal(tdm_tensor_make(&t, dt, nd, dims, NULL), TDM_OK);
    unsigned char *p = t.data;
    for (size_t i = 0; i < tdm_tensor_nbytes(&t); i++)
        p[i] = (unsigned char)rnd();
    return t;
}

/* Naive transpose: out[i] = x[j] with j from the permuted multi-index. */
static void ref_transpose(const tdm_tensor *x, const int *perm, void *out)
{
    int r = x->ndim;
    size_t es = tdm_dtype_size(x->dtype);
    int64_t od[8], xs[8], idx[8] = {0};
    int64_t s = 1;
    for (int k = r - 1; k >= 0; k--) {
        xs[k] = s;
        s *= x->dims[k];
    }
    for (int k = 0; k < r; k++)
        od[k] = x->dims[perm[k]];
    int64_t n = tdm_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        int64_t src = 0;
        for (int k = 0; k < r; k++)
            src += idx[k] * xs[perm[k]];
        memcpy((char *)out + (size_t)i * es, (const char *)x->data + (size_t)src * es, es);
        for (int k = r - 1; k >= 0; k--) {
            if (++idx[k] < od[k])
                break;
            idx[k] = 0;
        }
    }
}

static void check_transpose(const tdm_tensor *x, const int *perm, tdm_pool *pool)
{
    tdm_node n;
    op_node_init(&n, "Transpose", "", 13, 1, 1);
    int64_t p64[8];
    for (int k = 0; k < x->ndim; k++)
        p64[k] = perm[k];
    op_attr_ints(&n, "perm", p64, x->ndim);
    const tdm_tensor *ins[1] = {x};
    tdm_tensor out;
    tdm_err err = {{0}};
    tdm_status s = op_run(&n, ins, 1, &out, 1, pool, &err);
    if (s != TDM_OK)
        fail_msg("transpose: %s", err.msg);
    for (int k = 0; k < x->ndim; k++)
        assert_int_equal(out.dims[k], x->dims[perm[k]]);
    void *want = malloc(tdm_tensor_nbytes(x) + 1);
    ref_transpose(x, perm, want);
    assert_memory_equal(out.data, want, tdm_tensor_nbytes(x));
    free(want);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
}

static const tdm_dtype k_dtypes[4] = {TDM_DTYPE_UINT8, TDM_DTYPE_FLOAT16, TDM_DTYPE_FLOAT32,
                                      TDM_DTYPE_INT64};

/* Every permutation of ranks 1..4 on small odd shapes, every element size. */
static void test_all_permutations(void **state)
{
    (void)state;
    const int64_t dims[4] = {3, 5, 7, 2};
    for (int r = 1; r <= 4; r++) {
        int perm[4];
        int count = 1;
        for (int k = 2; k <= r; k++)
            count *= k;
        for (int c = 0; c < count; c++) {
            /* c-th permutation via the factorial number system */
            int avail[4] = {0, 1, 2, 3}, left = r, code = c;
            for (int k = 0; k < r; k++) {
                int f = 1;
                for (int j = 2; j < left; j++)
                    f *= j;
                int pick = code / f;
                code %= f;
                perm[k] = avail[pick];
                for (int j = pick; j < left - 1; j++)
                    avail[j] = avail[j + 1];
                left--;
            }
            for (int d = 0; d < 4; d++) {
                tdm_tensor x = mk_random(k_dtypes[d], r, dims);
                check_transpose(&x, perm, NULL);
                tdm_tensor_free(&x);
            }
        }
    }
}

/* Random shapes of rank up to 6 with size-1 dims, which the merge step drops. */
static void test_random_shapes(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(3, &pool, NULL), TDM_OK);
    for (int iter = 0; iter < 200; iter++) {
        int r = 1 + (int)(rnd() % 6);
        int64_t dims[6];
        int perm[6];
        for (int k = 0; k < r; k++) {
            dims[k] = 1 + (int64_t)(rnd() % 6);
            perm[k] = k;
        }
        for (int k = r - 1; k > 0; k--) {
            int j = (int)(rnd() % (uint64_t)(k + 1));
            int t = perm[k];
            perm[k] = perm[j];
            perm[j] = t;
        }
        tdm_tensor x = mk_random(k_dtypes[iter % 4], r, dims);
        check_transpose(&x, perm, iter % 2 ? pool : NULL);
        tdm_tensor_free(&x);
    }
    tdm_pool_free(pool);
}

/* Shapes large enough for the tiled path and the pool. */
static void test_large_paths(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(4, &pool, NULL), TDM_OK);
    struct {
        int r;
        int64_t dims[4];
        int perm[4];
    } cases[] = {
        {2, {300, 517}, {1, 0}},             /* 2-D, ragged tiles */
        {3, {3, 129, 65}, {0, 2, 1}},        /* batched 2-D */
        {4, {2, 64, 12, 64}, {0, 2, 1, 3}},  /* attention head split */
        {4, {2, 12, 64, 64}, {0, 2, 1, 3}},  /* and merge */
        {4, {2, 64, 12, 32}, {0, 2, 3, 1}},  /* key transpose */
        {4, {1, 3, 224, 224}, {0, 2, 3, 1}}, /* NCHW -> NHWC */
        {4, {1, 224, 224, 3}, {0, 3, 1, 2}}, /* NHWC -> NCHW */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int d = 0; d < 4; d++) {
            tdm_tensor x = mk_random(k_dtypes[d], cases[c].r, cases[c].dims);
            check_transpose(&x, cases[c].perm, pool);
            if (d == 2)
                check_transpose(&x, cases[c].perm, NULL);
            tdm_tensor_free(&x);
        }
    }
    tdm_pool_free(pool);
}

static void test_transpose_default_and_errors(void **state)
{
    (void)state;
    int64_t dims[3] = {2, 3, 4};
    tdm_tensor x = mk_random(TDM_DTYPE_FLOAT32, 3, dims);
    tdm_node n;
    op_node_init(&n, "Transpose", "", 13, 1, 1);
    const tdm_tensor *ins[1] = {&x};
    tdm_tensor out;
    assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_OK);
    int rev[3] = {2, 1, 0};
    void *want = malloc(tdm_tensor_nbytes(&x));
    ref_transpose(&x, rev, want);
    assert_memory_equal(out.data, want, tdm_tensor_nbytes(&x));
    free(want);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    const int64_t bad[][3] = {{0, 0, 1}, {0, 1, 3}, {0, 1, -4}};
    for (int c = 0; c < 3; c++) {
        op_node_init(&n, "Transpose", "", 13, 1, 1);
        op_attr_ints(&n, "perm", bad[c], 3);
        assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_ERR_INVALID_ARG);
        tdm_node_clear(&n);
    }
    op_node_init(&n, "Transpose", "", 13, 1, 1);
    op_attr_ints(&n, "perm", bad[0], 2);
    assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_ERR_INVALID_ARG);
    tdm_node_clear(&n);
    tdm_tensor_free(&x);
}

/* ---- DepthToSpace / SpaceToDepth --------------------------------------------------- */

static void test_depth_space(void **state)
{
    (void)state;
    const int64_t N = 2, C = 8, H = 3, W = 5, b = 2, c2 = C / (b * b);
    int64_t xd[4] = {N, C, H, W};
    tdm_tensor x = mk_random(TDM_DTYPE_FLOAT32, 4, xd);
    const float *xv = x.data;
    for (int crd = 0; crd < 2; crd++) {
        tdm_node n;
        op_node_init(&n, "DepthToSpace", "", 13, 1, 1);
        op_attr_int(&n, "blocksize", b);
        op_attr_str(&n, "mode", crd ? "CRD" : "DCR");
        const tdm_tensor *ins[1] = {&x};
        tdm_tensor out;
        assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_OK);
        assert_int_equal(out.dims[1], c2);
        assert_int_equal(out.dims[2], H * b);
        assert_int_equal(out.dims[3], W * b);
        const float *y = out.data;
        for (int64_t in = 0; in < N; in++)
            for (int64_t c = 0; c < c2; c++)
                for (int64_t h = 0; h < H * b; h++)
                    for (int64_t w = 0; w < W * b; w++) {
                        int64_t b1 = h % b, b2 = w % b;
                        int64_t ch = crd ? c * b * b + b1 * b + b2 : (b1 * b + b2) * c2 + c;
                        float want = xv[((in * C + ch) * H + h / b) * W + w / b];
                        assert_true(y[((in * c2 + c) * H * b + h) * W * b + w] == want);
                    }
        if (!crd) { /* SpaceToDepth inverts DCR DepthToSpace */
            tdm_node m;
            op_node_init(&m, "SpaceToDepth", "", 13, 1, 1);
            op_attr_int(&m, "blocksize", b);
            const tdm_tensor *ins2[1] = {&out};
            tdm_tensor back;
            assert_int_equal(op_run(&m, ins2, 1, &back, 1, NULL, NULL), TDM_OK);
            assert_true(tdm_tensor_same_shape(&back, &x));
            assert_memory_equal(back.data, x.data, tdm_tensor_nbytes(&x));
            tdm_tensor_free(&back);
            tdm_node_clear(&m);
        }
        tdm_tensor_free(&out);
        tdm_node_clear(&n);
    }
    /* errors: channels not divisible, spatial not divisible, bad blocksize */
    tdm_node n;
    op_node_init(&n, "DepthToSpace", "", 13, 1, 1);
    op_attr_int(&n, "blocksize", 3);
    const tdm_tensor *ins[1] = {&x};
    tdm_tensor out;
    assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    tdm_node_clear(&n);
    op_node_init(&n, "SpaceToDepth", "", 13, 1, 1);
    op_attr_int(&n, "blocksize", 2);
    assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    tdm_node_clear(&n);
    op_node_init(&n, "SpaceToDepth", "", 13, 1, 1);
    op_attr_int(&n, "blocksize", 0);
    assert_int_equal(op_run(&n, ins, 1, &out, 1, NULL, NULL), TDM_ERR_INVALID_ARG);
    tdm_node_clear(&n);
    tdm_tensor_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_permutations),
        cmocka_unit_test(test_random_shapes),
        cmocka_unit_test(test_large_paths),
        cmocka_unit_test(test_transpose_default_and_errors),
        cmocka_unit_test(test_depth_space),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
