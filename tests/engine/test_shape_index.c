/*
 * Gather, GatherElements, GatherND, ScatterElements, ScatterND, OneHot and
 * NonZero.
 *
 * Worked examples from the ONNX operator documentation pin the semantics;
 * randomized Gather cases compare with a naive reference over every axis,
 * index dtype and element size; hostile indices (out of range in either
 * direction) must be errors, not reads outside the data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/pool.h"
#include "engine/op.h"
#include "op_harness.h"

static uint64_t rng_state = 0x853c49e6748fea9bull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t rnd_in(int64_t lo, int64_t hi)
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

static tdm_tensor mk(tdm_dtype dt, int nd, const int64_t *dims, const void *data)
{
    tdm_tensor t;
    assert_int_equal(tdm_tensor_make(&t, dt, nd, dims, NULL), TDM_OK);
    if (data != NULL)
        memcpy(t.data, data, tdm_tensor_nbytes(&t));
    return t;
}

static tdm_tensor mk_iota(tdm_dtype dt, int nd, const int64_t *dims)
{
    tdm_tensor t = mk(dt, nd, dims, NULL);
    size_t es = tdm_dtype_size(dt);
    for (int64_t i = 0; i < tdm_tensor_numel(&t); i++) {
        uint64_t v = (uint64_t)i * 40503u + 7;
        memcpy((char *)t.data + (size_t)i * es, &v, es);
    }
    return t;
}

static void run_ok(tdm_node *n, const tdm_tensor *const *ins, int n_in, tdm_tensor *out,
                   tdm_pool *pool)
{
    tdm_err err = {{0}};
    tdm_status s = op_run(n, ins, n_in, out, 1, pool, &err);
    if (s != TDM_OK)
        fail_msg("%s: %s", n->op_type, err.msg);
}

static void assert_floats(const tdm_tensor *t, const float *want, int64_t n)
{
    assert_int_equal(tdm_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        if (((const float *)t->data)[i] != want[i])
            fail_msg("element %lld: got %g, want %g", (long long)i, ((const float *)t->data)[i],
                     want[i]);
}

static void assert_i64s(const tdm_tensor *t, const int64_t *want, int64_t n)
{
    assert_int_equal(tdm_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++)
        assert_int_equal(((const int64_t *)t->data)[i], want[i]);
}

/* ---- Gather ------------------------------------------------------------------------ */

static void test_gather_random(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(2, &pool, NULL), TDM_OK);
    static const tdm_dtype dts[4] = {TDM_DTYPE_UINT8, TDM_DTYPE_BFLOAT16, TDM_DTYPE_UINT32,
                                     TDM_DTYPE_FLOAT64};
    for (int iter = 0; iter < 200; iter++) {
        int r = (int)rnd_in(1, 4), q = (int)rnd_in(0, 2);
        int64_t xd[4], id[2];
        for (int k = 0; k < r; k++)
            xd[k] = rnd_in(1, 5);
        for (int k = 0; k < q; k++)
            id[k] = rnd_in(0, 4);
        if (iter % 40 == 3) { /* an embedding lookup over 1 MiB (float64), for the pool */
            r = 2;
            xd[0] = 1000;
            xd[1] = 96;
            q = 2;
            id[0] = 8;
            id[1] = 256;
        }
        int axis = (int)rnd_in(0, r - 1);
        if (iter % 40 == 3)
            axis = 0;
        bool i32 = rnd() % 2;
        tdm_tensor x = mk_iota(dts[iter % 4], r, xd);
        tdm_tensor ind = mk(i32 ? TDM_DTYPE_INT32 : TDM_DTYPE_INT64, q, id, NULL);
        int64_t ni = tdm_tensor_numel(&ind);
        for (int64_t i = 0; i < ni; i++) {
            int64_t v = rnd_in(-xd[axis], xd[axis] - 1);
            if (i32)
                ((int32_t *)ind.data)[i] = (int32_t)v;
            else
                ((int64_t *)ind.data)[i] = v;
        }
        tdm_node n;
        op_node_init(&n, "Gather", "", 13, 2, 1);
        op_attr_int(&n, "axis", rnd() % 2 ? axis : axis - r);
        const tdm_tensor *ins[2] = {&x, &ind};
        tdm_tensor out;
        run_ok(&n, ins, 2, &out, iter % 2 ? pool : NULL);
        assert_int_equal(out.ndim, r - 1 + q);
        int64_t outer = 1, inner = 1;
        for (int k = 0; k < axis; k++)
            outer *= xd[k];
        for (int k = axis + 1; k < r; k++)
            inner *= xd[k];
        size_t es = tdm_dtype_size(x.dtype);
        for (int64_t o = 0; o < outer; o++)
            for (int64_t i = 0; i < ni; i++) {
                int64_t v = i32 ? ((int32_t *)ind.data)[i] : ((int64_t *)ind.data)[i];
                if (v < 0)
                    v += xd[axis];
                for (int64_t e = 0; e < inner; e++) {
                    size_t dst = (size_t)((o * ni + i) * inner + e) * es;
                    size_t src = (size_t)((o * xd[axis] + v) * inner + e) * es;
                    assert_memory_equal((char *)out.data + dst, (char *)x.data + src, es);
                }
            }
        tdm_tensor_free(&out);
        tdm_node_clear(&n);
        tdm_tensor_free(&x);
        tdm_tensor_free(&ind);
    }
    tdm_pool_free(pool);
}

static void test_gather_errors(void **state)
{
    (void)state;
    int64_t xd[2] = {3, 2}, idd[1] = {2};
    tdm_tensor x = mk_iota(TDM_DTYPE_FLOAT32, 2, xd);
    const int64_t bad[][2] = {{0, 3}, {-4, 0}, {INT64_MIN, 0}, {INT64_MAX, 1}};
    tdm_node n;
    op_node_init(&n, "Gather", "", 13, 2, 1);
    for (int c = 0; c < 4; c++) {
        tdm_tensor ind = mk(TDM_DTYPE_INT64, 1, idd, bad[c]);
        const tdm_tensor *ins[2] = {&x, &ind};
        tdm_tensor out;
        tdm_err err = {{0}};
        assert_int_equal(op_run(&n, ins, 2, &out, 1, NULL, &err), TDM_ERR_INVALID_ARG);
        assert_non_null(strstr(err.msg, "out of range"));
        tdm_tensor_free(&out);
        tdm_tensor_free(&ind);
    }
    /* float indices are a dtype error */
    tdm_tensor fi = mk(TDM_DTYPE_FLOAT32, 1, idd, (float[]){0, 1});
    const tdm_tensor *ins[2] = {&x, &fi};
    tdm_tensor out;
    assert_int_equal(op_run(&n, ins, 2, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    tdm_tensor_free(&fi);
    tdm_node_clear(&n);
    tdm_tensor_free(&x);
}

/* ---- GatherElements / ScatterElements ----------------------------------------------- */

static void test_gather_elements(void **state)
{
    (void)state;
    /* doc: data [[1,2],[3,4]], indices [[0,0],[1,0]], axis 1 -> [[1,1],[4,3]] */
    int64_t d2[2] = {2, 2};
    tdm_tensor x = mk(TDM_DTYPE_FLOAT32, 2, d2, (float[]){1, 2, 3, 4});
    tdm_tensor ind = mk(TDM_DTYPE_INT64, 2, d2, (int64_t[]){0, 0, 1, 0});
    tdm_node n;
    op_node_init(&n, "GatherElements", "", 13, 2, 1);
    op_attr_int(&n, "axis", 1);
    const tdm_tensor *ins[2] = {&x, &ind};
    tdm_tensor out;
    run_ok(&n, ins, 2, &out, NULL);
    assert_floats(&out, (float[]){1, 1, 4, 3}, 4);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    /* doc: data 3x3 1..9, indices [[1,2,0],[2,0,0]], axis 0 -> [[4,8,3],[7,2,3]]; with a
     * negative index [[-1,-2,0],[-2,0,0]] -> [[7,5,3],[4,2,3]] */
    int64_t d3[2] = {3, 3}, di[2] = {2, 3};
    tdm_tensor y = mk(TDM_DTYPE_INT32, 2, d3, (int32_t[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
    tdm_tensor i2 = mk(TDM_DTYPE_INT32, 2, di, (int32_t[]){1, 2, 0, 2, 0, 0});
    tdm_tensor i3 = mk(TDM_DTYPE_INT32, 2, di, (int32_t[]){-1, -2, 0, -2, 0, 0});
    op_node_init(&n, "GatherElements", "", 13, 2, 1);
    const tdm_tensor *ins2[2] = {&y, &i2};
    run_ok(&n, ins2, 2, &out, NULL);
    const int32_t want[6] = {4, 8, 3, 7, 2, 3}, want2[6] = {7, 5, 3, 4, 2, 3};
    assert_memory_equal(out.data, want, sizeof want);
    tdm_tensor_free(&out);
    ins2[1] = &i3;
    run_ok(&n, ins2, 2, &out, NULL);
    assert_memory_equal(out.data, want2, sizeof want2);
    tdm_tensor_free(&out);
    ((int32_t *)i3.data)[4] = 3;
    assert_int_equal(op_run(&n, ins2, 2, &out, 1, NULL, NULL), TDM_ERR_INVALID_ARG);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    tdm_tensor *fr[] = {&x, &ind, &y, &i2, &i3};
    for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++)
        tdm_tensor_free(fr[i]);
}

static void test_scatter_elements(void **state)
{
    (void)state;
    /* doc: data zeros 3x3, indices [[1,0,2],[0,2,1]], updates [[1,1.1,1.2],[2,2.1,2.2]],
     * axis 0 -> [[2,1.1,0],[1,0,2.2],[0,2.1,1.2]] */
    int64_t d3[2] = {3, 3}, di[2] = {2, 3};
    tdm_tensor x = mk(TDM_DTYPE_FLOAT32, 2, d3, NULL);
    tdm_tensor ind = mk(TDM_DTYPE_INT64, 2, di, (int64_t[]){1, 0, 2, 0, 2, 1});
    tdm_tensor upd = mk(TDM_DTYPE_FLOAT32, 2, di, (float[]){1, 1.1f, 1.2f, 2, 2.1f, 2.2f});
    tdm_node n;
    op_node_init(&n, "ScatterElements", "", 13, 3, 1);
    const tdm_tensor *ins[3] = {&x, &ind, &upd};
    tdm_tensor out;
    run_ok(&n, ins, 3, &out, NULL);
    assert_floats(&out, (float[]){2, 1.1f, 0, 1, 0, 2.2f, 0, 2.1f, 1.2f}, 9);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    /* doc (reduction add, duplicates): data [[1,2,3,4,5]], indices [[1,1]], updates
     * [[1.1,2.1]], axis 1 -> [[1,5.2,3,4,5]] */
    int64_t dx[2] = {1, 5}, du[2] = {1, 2};
    tdm_tensor a = mk(TDM_DTYPE_FLOAT32, 2, dx, (float[]){1, 2, 3, 4, 5});
    tdm_tensor ai = mk(TDM_DTYPE_INT64, 2, du, (int64_t[]){1, 1});
    tdm_tensor au = mk(TDM_DTYPE_FLOAT32, 2, du, (float[]){1.1f, 2.1f});
    op_node_init(&n, "ScatterElements", "", 18, 3, 1);
    op_attr_int(&n, "axis", 1);
    op_attr_str(&n, "reduction", "add");
    const tdm_tensor *ins2[3] = {&a, &ai, &au};
    run_ok(&n, ins2, 3, &out, NULL);
    assert_floats(&out, (float[]){1, 2.0f + 1.1f + 2.1f, 3, 4, 5}, 5);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    /* max, negative index, none with duplicates (last wins) */
    ((int64_t *)ai.data)[0] = -1;
    op_node_init(&n, "ScatterElements", "", 18, 3, 1);
    op_attr_int(&n, "axis", 1);
    op_attr_str(&n, "reduction", "max");
    run_ok(&n, ins2, 3, &out, NULL);
    assert_floats(&out, (float[]){1, 2.1f, 3, 4, 5}, 5); /* max(5, 1.1), max(2, 2.1) */
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    ((int64_t *)ai.data)[0] = 1;
    op_node_init(&n, "Scatter", "", 9, 3, 1);
    op_attr_int(&n, "axis", 1);
    run_ok(&n, ins2, 3, &out, NULL);
    assert_floats(&out, (float[]){1, 2.1f, 3, 4, 5}, 5);
    tdm_tensor_free(&out);
    /* an index past the end is an error */
    ((int64_t *)ai.data)[1] = 5;
    assert_int_equal(op_run(&n, ins2, 3, &out, 1, NULL, NULL), TDM_ERR_INVALID_ARG);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    tdm_tensor *fr[] = {&x, &ind, &upd, &a, &ai, &au};
    for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++)
        tdm_tensor_free(fr[i]);
}

/* ---- GatherND / ScatterND ----------------------------------------------------------------- */

static void test_gather_nd(void **state)
{
    (void)state;
    int64_t d222[3] = {2, 2, 2}, d2[2] = {2, 2}, d21[2] = {2, 1};
    tdm_tensor x2 = mk(TDM_DTYPE_INT32, 2, d2, (int32_t[]){0, 1, 2, 3});
    tdm_tensor x3 = mk(TDM_DTYPE_INT32, 3, d222, (int32_t[]){0, 1, 2, 3, 4, 5, 6, 7});
    tdm_node n;
    op_node_init(&n, "GatherND", "", 13, 2, 1);
    /* doc 1: [[0,0],[1,1]] -> [0,3]; doc 2: [[1],[0]] -> [[2,3],[0,1]] */
    tdm_tensor i1 = mk(TDM_DTYPE_INT64, 2, d2, (int64_t[]){0, 0, 1, 1});
    tdm_tensor i2 = mk(TDM_DTYPE_INT64, 2, d21, (int64_t[]){1, 0});
    const tdm_tensor *ins[2] = {&x2, &i1};
    tdm_tensor out;
    run_ok(&n, ins, 2, &out, NULL);
    assert_int_equal(out.ndim, 1);
    assert_int_equal(((int32_t *)out.data)[1], 3);
    tdm_tensor_free(&out);
    ins[1] = &i2;
    run_ok(&n, ins, 2, &out, NULL);
    assert_memory_equal(out.data, ((int32_t[]){2, 3, 0, 1}), 16);
    tdm_tensor_free(&out);
    /* doc 3: data 2x2x2, indices [[0,1],[1,0]] -> [[2,3],[4,5]] */
    ins[0] = &x3;
    ins[1] = &i1;
    ((int64_t *)i1.data)[0] = 0;
    ((int64_t *)i1.data)[1] = 1;
    ((int64_t *)i1.data)[2] = 1;
    ((int64_t *)i1.data)[3] = 0;
    run_ok(&n, ins, 2, &out, NULL);
    assert_memory_equal(out.data, ((int32_t[]){2, 3, 4, 5}), 16);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    /* doc 5, batch_dims 1: indices [[1],[0]] -> [[2,3],[4,5]] */
    op_node_init(&n, "GatherND", "", 13, 2, 1);
    op_attr_int(&n, "batch_dims", 1);
    ins[1] = &i2;
    run_ok(&n, ins, 2, &out, NULL);
    assert_memory_equal(out.data, ((int32_t[]){2, 3, 4, 5}), 16);
    tdm_tensor_free(&out);
    ((int64_t *)i2.data)[0] = 2;
    assert_int_equal(op_run(&n, ins, 2, &out, 1, NULL, NULL), TDM_ERR_INVALID_ARG);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    tdm_tensor_free(&x2);
    tdm_tensor_free(&x3);
    tdm_tensor_free(&i1);
    tdm_tensor_free(&i2);
}

static void test_scatter_nd(void **state)
{
    (void)state;
    /* doc 1: data [1..8], indices [[4],[3],[1],[7]], updates [9,10,11,12]
     * -> [1,11,3,10,9,6,7,12] */
    int64_t d8[1] = {8}, d41[2] = {4, 1}, d4[1] = {4};
    tdm_tensor x = mk(TDM_DTYPE_FLOAT32, 1, d8, (float[]){1, 2, 3, 4, 5, 6, 7, 8});
    tdm_tensor ind = mk(TDM_DTYPE_INT64, 2, d41, (int64_t[]){4, 3, 1, 7});
    tdm_tensor upd = mk(TDM_DTYPE_FLOAT32, 1, d4, (float[]){9, 10, 11, 12});
    tdm_node n;
    op_node_init(&n, "ScatterND", "", 13, 3, 1);
    const tdm_tensor *ins[3] = {&x, &ind, &upd};
    tdm_tensor out;
    run_ok(&n, ins, 3, &out, NULL);
    assert_floats(&out, (float[]){1, 11, 3, 10, 9, 6, 7, 12}, 8);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    /* mul with a repeated index */
    ((int64_t *)ind.data)[1] = 4;
    op_node_init(&n, "ScatterND", "", 16, 3, 1);
    op_attr_str(&n, "reduction", "mul");
    run_ok(&n, ins, 3, &out, NULL);
    assert_floats(&out, (float[]){1, 22, 3, 4, 5 * 9 * 10, 6, 7, 8 * 12}, 8);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    /* slices: data 2x3, indices [[1]], updates [[7,8,9]] */
    int64_t d23[2] = {2, 3}, d11[2] = {1, 1}, d13[2] = {1, 3};
    tdm_tensor y = mk(TDM_DTYPE_INT64, 2, d23, (int64_t[]){1, 2, 3, 4, 5, 6});
    tdm_tensor yi = mk(TDM_DTYPE_INT64, 2, d11, (int64_t[]){-1});
    tdm_tensor yu = mk(TDM_DTYPE_INT64, 2, d13, (int64_t[]){7, 8, 9});
    op_node_init(&n, "ScatterND", "", 16, 3, 1);
    op_attr_str(&n, "reduction", "add");
    const tdm_tensor *ins2[3] = {&y, &yi, &yu};
    run_ok(&n, ins2, 3, &out, NULL);
    assert_i64s(&out, (int64_t[]){1, 2, 3, 11, 13, 15}, 6);
    tdm_tensor_free(&out);
    /* updates of the wrong shape */
    const tdm_tensor *ins3[3] = {&y, &yi, &y};
    assert_int_equal(op_run(&n, ins3, 3, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    tdm_node_clear(&n);
    tdm_tensor *fr[] = {&x, &ind, &upd, &y, &yi, &yu};
    for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++)
        tdm_tensor_free(fr[i]);
}

/* ---- OneHot / NonZero -------------------------------------------------------------------- */

static void test_one_hot(void **state)
{
    (void)state;
    /* indices [[1,9],[2,4]] (float), depth 10, values [1,3]; axis 1 and -1 */
    int64_t di[2] = {2, 2}, d1[1] = {2};
    tdm_tensor ind = mk(TDM_DTYPE_FLOAT32, 2, di, (float[]){1, 9, 2, -6});
    float depth = 10;
    tdm_tensor dep = mk(TDM_DTYPE_FLOAT32, 0, NULL, &depth);
    tdm_tensor vals = mk(TDM_DTYPE_INT32, 1, d1, (int32_t[]){1, 3});
    for (int axis = -3; axis <= 2; axis++) {
        int ax = axis < 0 ? axis + 3 : axis;
        tdm_node n;
        op_node_init(&n, "OneHot", "", 11, 3, 1);
        op_attr_int(&n, "axis", axis);
        const tdm_tensor *ins[3] = {&ind, &dep, &vals};
        tdm_tensor out;
        run_ok(&n, ins, 3, &out, NULL);
        assert_int_equal(out.dtype, TDM_DTYPE_INT32);
        assert_int_equal(out.dims[ax], 10);
        int64_t idx[3];
        for (int64_t i = 0; i < 40; i++) {
            int64_t r = i;
            for (int k = 2; k >= 0; k--) {
                idx[k] = r % out.dims[k];
                r /= out.dims[k];
            }
            int64_t pos[2], j = 0;
            for (int k = 0; k < 3; k++)
                if (k != ax)
                    pos[j++] = idx[k];
            int64_t v = (int64_t)((float *)ind.data)[pos[0] * 2 + pos[1]];
            if (v < 0)
                v += 10;
            assert_int_equal(((int32_t *)out.data)[i], v == idx[ax] ? 3 : 1);
        }
        tdm_tensor_free(&out);
        tdm_node_clear(&n);
    }
    tdm_tensor_free(&ind);
    tdm_tensor_free(&dep);
    tdm_tensor_free(&vals);
}

static void test_non_zero(void **state)
{
    (void)state;
    /* doc: [[1,0],[1,1]] -> [[0,1,1],[0,0,1]] */
    int64_t d2[2] = {2, 2};
    tdm_tensor x = mk(TDM_DTYPE_BOOL, 2, d2, (uint8_t[]){1, 0, 1, 1});
    tdm_node n;
    op_node_init(&n, "NonZero", "", 13, 1, 1);
    const tdm_tensor *ins[1] = {&x};
    tdm_tensor out;
    run_ok(&n, ins, 1, &out, NULL);
    assert_int_equal(out.dims[0], 2);
    assert_int_equal(out.dims[1], 3);
    assert_i64s(&out, (int64_t[]){0, 1, 1, 0, 0, 1}, 6);
    tdm_tensor_free(&out);
    /* -0.0 is zero, NaN is not */
    int64_t d4[1] = {4};
    tdm_tensor f = mk(TDM_DTYPE_FLOAT32, 1, d4, (float[]){-0.0f, NAN, 0.0f, 2.0f});
    ins[0] = &f;
    run_ok(&n, ins, 1, &out, NULL);
    assert_i64s(&out, (int64_t[]){1, 3}, 2);
    tdm_tensor_free(&out);
    tdm_tensor h = mk(TDM_DTYPE_FLOAT16, 1, d4, (uint16_t[]){0x8000, 0x3c00, 0, 0x0001});
    ins[0] = &h;
    run_ok(&n, ins, 1, &out, NULL);
    assert_i64s(&out, (int64_t[]){1, 3}, 2);
    tdm_tensor_free(&out);
    /* plan time: the output shape depends on the data */
    tdm_tensor unk;
    memset(&unk, 0, sizeof unk);
    tdm_tensor_set_shape(&unk, TDM_DTYPE_FLOAT32, 1, d4);
    ins[0] = &unk;
    const tdm_op *op = tdm_op_find("", "NonZero");
    tdm_scratch sc = {NULL, 0};
    tdm_tensor *ptrs[1] = {&out};
    tdm_op_ctx ctx = {&n, 1, ins, 1, ptrs, NULL, NULL, &sc, NULL};
    assert_int_equal(op->infer(&ctx), TDM_ERR_NEEDS_VALUE);
    tdm_node_clear(&n);
    tdm_tensor_free(&x);
    tdm_tensor_free(&f);
    tdm_tensor_free(&h);
}

/* GatherElements and ScatterElements over more than one offset chunk, against loops. */
static void test_elements_random(void **state)
{
    (void)state;
    for (int iter = 0; iter < 40; iter++) {
        int r = (int)rnd_in(1, 3), axis = (int)rnd_in(0, r - 1);
        int64_t xd[3], id[3];
        for (int k = 0; k < r; k++) {
            xd[k] = rnd_in(1, 12);
            id[k] = k == axis ? rnd_in(1, 40) : rnd_in(1, xd[k]);
        }
        tdm_tensor x = mk_iota(iter % 2 ? TDM_DTYPE_INT64 : TDM_DTYPE_UINT16, r, xd);
        tdm_tensor ind = mk(TDM_DTYPE_INT64, r, id, NULL);
        int64_t n = tdm_tensor_numel(&ind);
        for (int64_t i = 0; i < n; i++)
            ((int64_t *)ind.data)[i] = rnd_in(-xd[axis], xd[axis] - 1);
        tdm_node g;
        op_node_init(&g, "GatherElements", "", 13, 2, 1);
        op_attr_int(&g, "axis", axis);
        const tdm_tensor *ins[2] = {&x, &ind};
        tdm_tensor out;
        run_ok(&g, ins, 2, &out, NULL);
        /* ScatterElements(x, ind, out) must write out's values back where they came from:
         * every target gets a value equal to the data there, so the result is x again */
        tdm_node sc;
        op_node_init(&sc, "ScatterElements", "", 13, 3, 1);
        op_attr_int(&sc, "axis", axis);
        const tdm_tensor *ins3[3] = {&x, &ind, &out};
        tdm_tensor back;
        run_ok(&sc, ins3, 3, &back, NULL);
        assert_memory_equal(back.data, x.data, tdm_tensor_nbytes(&x));
        size_t es = tdm_dtype_size(x.dtype);
        int64_t idx[3], xs[3] = {1, 1, 1};
        for (int k = r - 2; k >= 0; k--)
            xs[k] = xs[k + 1] * xd[k + 1];
        for (int64_t i = 0; i < n; i++) {
            int64_t t = i;
            for (int k = r - 1; k >= 0; k--) {
                idx[k] = t % id[k];
                t /= id[k];
            }
            int64_t v = ((int64_t *)ind.data)[i];
            idx[axis] = v < 0 ? v + xd[axis] : v;
            int64_t src = 0;
            for (int k = 0; k < r; k++)
                src += idx[k] * xs[k];
            assert_memory_equal((char *)out.data + (size_t)i * es,
                                (char *)x.data + (size_t)src * es, es);
        }
        tdm_tensor_free(&back);
        tdm_tensor_free(&out);
        tdm_node_clear(&g);
        tdm_node_clear(&sc);
        tdm_tensor_free(&x);
        tdm_tensor_free(&ind);
    }
}

/* ---- Compress / ReverseSequence (ONNX doc examples) ------------------------------------ */

static void test_compress(void **state)
{
    (void)state;
    int64_t d[2] = {3, 2};
    tdm_tensor x = mk(TDM_DTYPE_FLOAT32, 2, d, (float[]){1, 2, 3, 4, 5, 6});
    struct {
        int has_axis;
        int64_t axis, n;
        uint8_t cond[6];
        int64_t count;
        float want[6];
    } cs[] = {
        {1, 0, 3, {0, 1, 1}, 4, {3, 4, 5, 6}},
        {1, 1, 2, {0, 1}, 3, {2, 4, 6}},
        {1, -1, 2, {0, 1}, 3, {2, 4, 6}},
        {0, 0, 5, {0, 1, 0, 0, 1}, 2, {2, 5}},
        {1, 0, 1, {1}, 2, {1, 2}}, /* a shorter condition drops the rest */
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        tdm_node n;
        op_node_init(&n, "Compress", "", 11, 2, 1);
        if (cs[c].has_axis)
            op_attr_int(&n, "axis", cs[c].axis);
        tdm_tensor cond = mk(TDM_DTYPE_BOOL, 1, &cs[c].n, cs[c].cond);
        const tdm_tensor *ins[2] = {&x, &cond};
        tdm_tensor out;
        run_ok(&n, ins, 2, &out, NULL);
        assert_floats(&out, cs[c].want, cs[c].count);
        tdm_tensor_free(&out);
        tdm_tensor_free(&cond);
        tdm_node_clear(&n);
    }
    /* selecting past the end is an error */
    tdm_node n;
    op_node_init(&n, "Compress", "", 11, 2, 1);
    op_attr_int(&n, "axis", 1);
    int64_t three = 3;
    tdm_tensor cond = mk(TDM_DTYPE_BOOL, 1, &three, (uint8_t[]){0, 0, 1});
    const tdm_tensor *ins[2] = {&x, &cond};
    tdm_tensor out;
    assert_int_equal(op_run(&n, ins, 2, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    tdm_node_clear(&n);
    tdm_tensor_free(&cond);
    tdm_tensor_free(&x);
}

static void test_reverse_sequence(void **state)
{
    (void)state;
    int64_t d[2] = {4, 4}, four = 4;
    int64_t xv[16];
    for (int i = 0; i < 16; i++)
        xv[i] = i;
    tdm_tensor x = mk(TDM_DTYPE_INT64, 2, d, xv);
    /* batch_axis 0, time_axis 1, lens [1,2,3,4] */
    tdm_tensor lens = mk(TDM_DTYPE_INT64, 1, &four, (int64_t[]){1, 2, 3, 4});
    tdm_node n;
    op_node_init(&n, "ReverseSequence", "", 10, 2, 1);
    op_attr_int(&n, "batch_axis", 0);
    op_attr_int(&n, "time_axis", 1);
    const tdm_tensor *ins[2] = {&x, &lens};
    tdm_tensor out;
    run_ok(&n, ins, 2, &out, NULL);
    assert_i64s(&out, (int64_t[]){0, 1, 2, 3, 5, 4, 6, 7, 10, 9, 8, 11, 15, 14, 13, 12}, 16);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    /* time_axis 0, batch_axis 1 (defaults), lens [4,3,2,1] on the transposed layout */
    for (int i = 0; i < 16; i++)
        ((int64_t *)x.data)[i] = (i % 4) * 4 + i / 4;
    int64_t *lv = lens.data;
    lv[0] = 4;
    lv[1] = 3;
    lv[2] = 2;
    lv[3] = 1;
    op_node_init(&n, "ReverseSequence", "", 10, 2, 1);
    run_ok(&n, ins, 2, &out, NULL);
    assert_i64s(&out, (int64_t[]){3, 6, 9, 12, 2, 5, 8, 13, 1, 4, 10, 14, 0, 7, 11, 15}, 16);
    tdm_tensor_free(&out);
    lv[2] = 5; /* longer than the sequence */
    assert_int_equal(op_run(&n, ins, 2, &out, 1, NULL, NULL), TDM_ERR_INVALID_ARG);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    tdm_tensor_free(&lens);
    tdm_tensor_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gather_random),    cmocka_unit_test(test_gather_errors),
        cmocka_unit_test(test_gather_elements),  cmocka_unit_test(test_scatter_elements),
        cmocka_unit_test(test_gather_nd),        cmocka_unit_test(test_scatter_nd),
        cmocka_unit_test(test_one_hot),          cmocka_unit_test(test_elements_random),
        cmocka_unit_test(test_non_zero),         cmocka_unit_test(test_compress),
        cmocka_unit_test(test_reverse_sequence),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
