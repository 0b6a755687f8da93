/*
 * Concat, Split, Slice, Expand, Tile, Pad, Where and Trilu.
 *
 * Small cases are the worked examples of the ONNX operator documentation;
 * randomized cases compare against naive references written independently
 * of the op code: Slice enumerates Python-style index lists per axis, Pad
 * reflects or wraps coordinates one step at a time, and the broadcasting
 * ops recompute every input index from the output multi-index.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/pool.h"
#include "engine/op.h"
#include "op_harness.h"

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t rnd_in(int64_t lo, int64_t hi) /* inclusive */
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

static tdm_tensor mk_i64(int n, const int64_t *v)
{
    int64_t d = n;
    return mk(TDM_DTYPE_INT64, 1, &d, v);
}

static tdm_tensor mk_iota(tdm_dtype dt, int nd, const int64_t *dims)
{
    tdm_tensor t = mk(dt, nd, dims, NULL);
    size_t es = tdm_dtype_size(dt);
    for (int64_t i = 0; i < tdm_tensor_numel(&t); i++) {
        uint64_t v = (uint64_t)i * 2654435761u + 1;
        memcpy((char *)t.data + (size_t)i * es, &v, es);
    }
    return t;
}

static void run_ok(tdm_node *n, const tdm_tensor *const *ins, int n_in, tdm_tensor *outs, int n_out,
                   tdm_pool *pool)
{
    tdm_err err = {{0}};
    tdm_status s = op_run(n, ins, n_in, outs, n_out, pool, &err);
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

static void unravel(int64_t i, int nd, const int64_t *dims, int64_t *idx)
{
    for (int k = nd - 1; k >= 0; k--) {
        idx[k] = i % dims[k];
        i /= dims[k];
    }
}

/* ---- Concat / Split ----------------------------------------------------------------- */

static void test_concat(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(2, &pool, NULL), TDM_OK);
    for (int axis = -3; axis < 3; axis++) {
        int ax = axis < 0 ? axis + 3 : axis;
        int64_t d0[3] = {4, 5, 6}, d1[3] = {4, 5, 6}, d2[3] = {4, 5, 6};
        d1[ax] = 2;
        d2[ax] = 0; /* empty inputs are allowed */
        tdm_tensor a = mk_iota(TDM_DTYPE_INT16, 3, d0), b = mk_iota(TDM_DTYPE_INT16, 3, d1),
                   c = mk(TDM_DTYPE_INT16, 3, d2, NULL);
        for (int64_t i = 0; i < tdm_tensor_numel(&b); i++)
            ((int16_t *)b.data)[i] = (int16_t)(-1 - i);
        tdm_node n;
        op_node_init(&n, "Concat", "", 13, 3, 1);
        op_attr_int(&n, "axis", axis);
        const tdm_tensor *ins[3] = {&a, &c, &b};
        tdm_tensor out;
        run_ok(&n, ins, 3, &out, 1, axis % 2 ? pool : NULL);
        assert_int_equal(out.dims[ax], d0[ax] + d1[ax]);
        int64_t idx[3];
        for (int64_t i = 0; i < tdm_tensor_numel(&out); i++) {
            unravel(i, 3, out.dims, idx);
            const tdm_tensor *src = idx[ax] < d0[ax] ? &a : &b;
            if (src == &b)
                idx[ax] -= d0[ax];
            int64_t j = (idx[0] * src->dims[1] + idx[1]) * src->dims[2] + idx[2];
            assert_int_equal(((int16_t *)out.data)[i], ((int16_t *)src->data)[j]);
        }
        tdm_tensor_free(&out);
        tdm_node_clear(&n);
        tdm_tensor_free(&a);
        tdm_tensor_free(&b);
        tdm_tensor_free(&c);
    }
    /* mismatched dims and dtypes are shape errors */
    int64_t da[2] = {2, 3}, db[2] = {3, 3};
    tdm_tensor a = mk_iota(TDM_DTYPE_FLOAT32, 2, da), b = mk_iota(TDM_DTYPE_FLOAT32, 2, db);
    tdm_tensor c = mk_iota(TDM_DTYPE_INT32, 2, da);
    tdm_node n;
    op_node_init(&n, "Concat", "", 13, 2, 1);
    op_attr_int(&n, "axis", 1);
    const tdm_tensor *ins[2] = {&a, &b};
    tdm_tensor out;
    assert_int_equal(op_run(&n, ins, 2, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    ins[1] = &c;
    assert_int_equal(op_run(&n, ins, 2, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    tdm_node_clear(&n);
    tdm_tensor_free(&a);
    tdm_tensor_free(&b);
    tdm_tensor_free(&c);
    tdm_pool_free(pool);
}

static void test_split(void **state)
{
    (void)state;
    int64_t xd[2] = {2, 6};
    float xv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    tdm_tensor x = mk(TDM_DTYPE_FLOAT32, 2, xd, xv);
    /* opset 13 split input [2, 4] on axis 1 */
    tdm_node n;
    op_node_init(&n, "Split", "", 13, 2, 2);
    op_attr_int(&n, "axis", 1);
    tdm_tensor sp = mk_i64(2, (int64_t[]){2, 4});
    const tdm_tensor *ins[2] = {&x, &sp};
    tdm_tensor out[4];
    run_ok(&n, ins, 2, out, 2, NULL);
    assert_floats(&out[0], (float[]){1, 2, 7, 8}, 4);
    assert_floats(&out[1], (float[]){3, 4, 5, 6, 9, 10, 11, 12}, 8);
    tdm_tensor_free(&out[0]);
    tdm_tensor_free(&out[1]);
    /* sizes that do not add up */
    tdm_tensor bad = mk_i64(2, (int64_t[]){2, 3});
    ins[1] = &bad;
    assert_int_equal(op_run(&n, ins, 2, out, 2, NULL, NULL), TDM_ERR_SHAPE);
    tdm_node_clear(&n);
    /* opset 11: attribute; equal parts without it */
    op_node_init(&n, "Split", "", 11, 1, 3);
    op_attr_int(&n, "axis", -1);
    run_ok(&n, ins, 1, out, 3, NULL);
    assert_floats(&out[2], (float[]){5, 6, 11, 12}, 4);
    for (int i = 0; i < 3; i++)
        tdm_tensor_free(&out[i]);
    tdm_node_clear(&n);
    op_node_init(&n, "Split", "", 11, 1, 2);
    op_attr_ints(&n, "split", (int64_t[]){1, 1}, 2);
    run_ok(&n, ins, 1, out, 2, NULL);
    assert_floats(&out[1], (float[]){7, 8, 9, 10, 11, 12}, 6);
    tdm_tensor_free(&out[0]);
    tdm_tensor_free(&out[1]);
    tdm_node_clear(&n);
    /* opset 18 num_outputs: ceil-sized chunks, the last one smaller (6 into 4: 2, 2, 2, 0) */
    op_node_init(&n, "Split", "", 18, 1, 4);
    op_attr_int(&n, "axis", 1);
    op_attr_int(&n, "num_outputs", 4);
    run_ok(&n, ins, 1, out, 4, NULL);
    assert_int_equal(out[2].dims[1], 2);
    assert_int_equal(out[3].dims[1], 0);
    for (int i = 0; i < 4; i++)
        tdm_tensor_free(&out[i]);
    op_attr_int(&n, "num_outputs", 3); /* the first attribute wins: still 4 */
    int64_t yd[1] = {7};
    tdm_tensor y = mk_iota(TDM_DTYPE_INT32, 1, yd);
    const tdm_tensor *ins_y[1] = {&y};
    tdm_node_clear(&n);
    op_node_init(&n, "Split", "", 18, 1, 4);
    op_attr_int(&n, "num_outputs", 4);
    run_ok(&n, ins_y, 1, out, 4, NULL);
    assert_int_equal(out[0].dims[0], 2);
    assert_int_equal(out[3].dims[0], 1);
    assert_int_equal(((int32_t *)out[3].data)[0], ((int32_t *)y.data)[6]);
    for (int i = 0; i < 4; i++)
        tdm_tensor_free(&out[i]);
    tdm_node_clear(&n);
    /* the split sizes must be known at plan time */
    op_node_init(&n, "Split", "", 13, 2, 2);
    tdm_tensor unk;
    memset(&unk, 0, sizeof unk);
    tdm_tensor_set_shape(&unk, TDM_DTYPE_INT64, 1, (int64_t[]){2});
    ins[1] = &unk;
    const tdm_op *op = tdm_op_find("", "Split");
    tdm_scratch scratch = {NULL, 0};
    tdm_tensor *ptrs[2] = {&out[0], &out[1]};
    tdm_op_ctx ctx = {&n, 2, ins, 2, ptrs, NULL, NULL, &scratch, NULL};
    assert_int_equal(op->infer(&ctx), TDM_ERR_NEEDS_VALUE);
    tdm_aligned_free(scratch.p);
    tdm_node_clear(&n);
    tdm_tensor_free(&y);
    tdm_tensor_free(&sp);
    tdm_tensor_free(&bad);
    tdm_tensor_free(&x);
}

/* ---- Slice ------------------------------------------------------------------------------ */

/*
 * The ONNX rule for one axis, enumerated: negative values count from the end,
 * then starts clamp to [0, len] ([0, len-1] for negative steps) and ends to
 * [0, len] ([-1, len-1]). This differs from Python's slices in one corner:
 * a start below -len with a negative step is clamped to 0 (ONNX spec and
 * onnxruntime) where Python makes the slice empty.
 */
static int64_t spec_slice(int64_t start, int64_t stop, int64_t step, int64_t len, int64_t *out)
{
    if (len == 0)
        return 0;
    if (start < 0)
        start += len;
    if (stop < 0)
        stop += len;
    int64_t lo = step > 0 ? 0 : -1, hi = step > 0 ? len : len - 1;
    start = start < 0 ? 0 : (start > hi ? hi : start);
    stop = stop < lo ? lo : (stop > hi ? hi : stop);
    int64_t n = 0;
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        out[n++] = i;
        if ((step > 0 && i > INT64_MAX - step) || (step < 0 && i < INT64_MIN - step))
            break;
    }
    return n;
}

static void test_slice_docs(void **state)
{
    (void)state;
    /* ONNX doc example 1: data [[1,2,3,4],[5,6,7,8]], axes [0,1], starts [1,0], ends [2,3],
     * steps [1,2] -> [[5,7]]; example 2: starts [0,1], ends [-1,1000] -> [[2,3,4]] */
    int64_t xd[2] = {2, 4};
    float xv[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    tdm_tensor x = mk(TDM_DTYPE_FLOAT32, 2, xd, xv);
    tdm_node n;
    op_node_init(&n, "Slice", "", 13, 5, 1);
    tdm_tensor s1 = mk_i64(2, (int64_t[]){1, 0}), e1 = mk_i64(2, (int64_t[]){2, 3});
    tdm_tensor a1 = mk_i64(2, (int64_t[]){0, 1}), t1 = mk_i64(2, (int64_t[]){1, 2});
    const tdm_tensor *ins[5] = {&x, &s1, &e1, &a1, &t1};
    tdm_tensor out;
    run_ok(&n, ins, 5, &out, 1, NULL);
    assert_int_equal(out.dims[0], 1);
    assert_floats(&out, (float[]){5, 7}, 2);
    tdm_tensor_free(&out);
    tdm_tensor s2 = mk_i64(2, (int64_t[]){0, 1}), e2 = mk_i64(2, (int64_t[]){-1, 1000});
    const tdm_tensor *ins2[3] = {&s2, &e2, NULL};
    ins[1] = ins2[0];
    ins[2] = ins2[1];
    ins[3] = NULL;
    ins[4] = NULL;
    run_ok(&n, ins, 5, &out, 1, NULL);
    assert_floats(&out, (float[]){2, 3, 4}, 3);
    tdm_tensor_free(&out);
    /* step 0 and duplicate axes are errors */
    tdm_tensor zero = mk_i64(2, (int64_t[]){0, 1}), dup = mk_i64(2, (int64_t[]){1, -1});
    ins[1] = &s1;
    ins[2] = &e1;
    ins[3] = &a1;
    ins[4] = &zero;
    assert_int_equal(op_run(&n, ins, 5, &out, 1, NULL, NULL), TDM_ERR_INVALID_ARG);
    ins[3] = &dup;
    ins[4] = &t1;
    assert_int_equal(op_run(&n, ins, 5, &out, 1, NULL, NULL), TDM_ERR_INVALID_ARG);
    tdm_node_clear(&n);
    /* opset 1 attributes */
    op_node_init(&n, "Slice", "", 1, 1, 1);
    op_attr_ints(&n, "starts", (int64_t[]){1}, 1);
    op_attr_ints(&n, "ends", (int64_t[]){INT64_MAX}, 1);
    op_attr_ints(&n, "axes", (int64_t[]){1}, 1);
    run_ok(&n, ins, 1, &out, 1, NULL);
    assert_floats(&out, (float[]){2, 3, 4, 6, 7, 8}, 6);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    tdm_tensor *fr[] = {&x, &s1, &e1, &a1, &t1, &s2, &e2, &zero, &dup};
    for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++)
        tdm_tensor_free(fr[i]);
}

static void test_slice_random(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(3, &pool, NULL), TDM_OK);
    static const tdm_dtype dts[4] = {TDM_DTYPE_BOOL, TDM_DTYPE_INT16, TDM_DTYPE_FLOAT32,
                                     TDM_DTYPE_FLOAT64};
    for (int iter = 0; iter < 400; iter++) {
        int r = (int)rnd_in(1, 4);
        int64_t dims[4];
        for (int k = 0; k < r; k++)
            dims[k] = rnd_in(0, 9);
        if (iter % 50 == 1) { /* a large one for the pool */
            r = 2;
            dims[0] = 3000;
            dims[1] = 400;
        }
        tdm_tensor x = mk_iota(dts[iter % 4], r, dims);
        int na = (int)rnd_in(1, r);
        int64_t st[4], en[4], ax[4], sp[4];
        int perm[4] = {0, 1, 2, 3};
        for (int k = r - 1; k > 0; k--) {
            int j = (int)rnd_in(0, k), t = perm[k];
            perm[k] = perm[j];
            perm[j] = t;
        }
        static const int64_t extremes[4] = {INT64_MIN, INT64_MAX, -1000, 1000};
        for (int i = 0; i < na; i++) {
            ax[i] = rnd() % 2 ? perm[i] : perm[i] - r;
            st[i] = rnd() % 8 == 0 ? extremes[rnd() % 4] : rnd_in(-12, 12);
            en[i] = rnd() % 8 == 0 ? extremes[rnd() % 4] : rnd_in(-12, 12);
            sp[i] = rnd() % 16 == 0 ? (rnd() % 2 ? INT64_MAX : INT64_MIN) : rnd_in(-3, 3);
            if (sp[i] == 0)
                sp[i] = 1;
        }
        tdm_tensor ts = mk_i64(na, st), te = mk_i64(na, en), ta = mk_i64(na, ax),
                   tp = mk_i64(na, sp);
        tdm_node n;
        op_node_init(&n, "Slice", "", 13, 5, 1);
        const tdm_tensor *ins[5] = {&x, &ts, &te, &ta, &tp};
        tdm_tensor out;
        run_ok(&n, ins, 5, &out, 1, iter % 2 ? pool : NULL);
        /* reference */
        static int64_t lists[4][3000];
        int64_t cnt[4];
        for (int k = 0; k < r; k++) {
            cnt[k] = dims[k];
            for (int64_t i = 0; i < dims[k]; i++)
                lists[k][i] = i;
        }
        for (int i = 0; i < na; i++) {
            int k = (int)(ax[i] < 0 ? ax[i] + r : ax[i]);
            cnt[k] = spec_slice(st[i], en[i], sp[i], dims[k], lists[k]);
        }
        int64_t total = 1;
        for (int k = 0; k < r; k++) {
            if (out.dims[k] != cnt[k])
                for (int i = 0; i < na; i++)
                    print_message("axis %lld start %lld end %lld step %lld dim %lld\n",
                                  (long long)ax[i], (long long)st[i], (long long)en[i],
                                  (long long)sp[i], (long long)dims[ax[i] < 0 ? ax[i] + r : ax[i]]);
            assert_int_equal(out.dims[k], cnt[k]);
            total *= cnt[k];
        }
        size_t es = tdm_dtype_size(x.dtype);
        int64_t idx[4];
        for (int64_t i = 0; i < total; i++) {
            unravel(i, r, cnt, idx);
            int64_t src = 0;
            for (int k = 0; k < r; k++)
                src = src * dims[k] + lists[k][idx[k]];
            assert_memory_equal((char *)out.data + (size_t)i * es,
                                (char *)x.data + (size_t)src * es, es);
        }
        tdm_tensor_free(&out);
        tdm_node_clear(&n);
        tdm_tensor_free(&ts);
        tdm_tensor_free(&te);
        tdm_tensor_free(&ta);
        tdm_tensor_free(&tp);
        tdm_tensor_free(&x);
    }
    tdm_pool_free(pool);
}

/* ---- Expand / Tile ------------------------------------------------------------------------ */

static void test_expand_tile(void **state)
{
    (void)state;
    /* Expand [3,1] by [2,1,6] -> [2,3,6]; element (i,j,k) = x[j] */
    int64_t xd[2] = {3, 1};
    tdm_tensor x = mk_iota(TDM_DTYPE_INT64, 2, xd);
    tdm_tensor shp = mk_i64(3, (int64_t[]){2, 1, 6});
    tdm_node n;
    op_node_init(&n, "Expand", "", 13, 2, 1);
    const tdm_tensor *ins[2] = {&x, &shp};
    tdm_tensor out;
    run_ok(&n, ins, 2, &out, 1, NULL);
    assert_int_equal(out.ndim, 3);
    assert_int_equal(out.dims[0], 2);
    assert_int_equal(out.dims[1], 3);
    assert_int_equal(out.dims[2], 6);
    for (int64_t i = 0; i < 36; i++)
        assert_int_equal(((int64_t *)out.data)[i], ((int64_t *)x.data)[(i / 6) % 3]);
    tdm_tensor_free(&out);
    tdm_tensor bad = mk_i64(2, (int64_t[]){4, 4});
    ins[1] = &bad;
    assert_int_equal(op_run(&n, ins, 2, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    tdm_node_clear(&n);

    /* Tile doc example: [[0,1],[2,3]] repeats [2,2] */
    int64_t td[2] = {2, 2};
    float tv[4] = {0, 1, 2, 3};
    tdm_tensor t = mk(TDM_DTYPE_FLOAT32, 2, td, tv);
    tdm_tensor rep = mk_i64(2, (int64_t[]){2, 2});
    op_node_init(&n, "Tile", "", 13, 2, 1);
    const tdm_tensor *ti[2] = {&t, &rep};
    run_ok(&n, ti, 2, &out, 1, NULL);
    assert_floats(&out, (float[]){0, 1, 0, 1, 2, 3, 2, 3, 0, 1, 0, 1, 2, 3, 2, 3}, 16);
    tdm_tensor_free(&out);
    /* random tiles against out[i] = x[i mod d] */
    for (int iter = 0; iter < 50; iter++) {
        int r = (int)rnd_in(1, 4);
        int64_t d[4], rp[4], od[4];
        for (int k = 0; k < r; k++) {
            d[k] = rnd_in(1, 4);
            rp[k] = rnd_in(0, 3);
            od[k] = d[k] * rp[k];
        }
        tdm_tensor xr = mk_iota(TDM_DTYPE_UINT16, r, d);
        tdm_tensor rr = mk_i64(r, rp);
        const tdm_tensor *in2[2] = {&xr, &rr};
        run_ok(&n, in2, 2, &out, 1, NULL);
        int64_t idx[4];
        for (int64_t i = 0; i < tdm_tensor_numel(&out); i++) {
            unravel(i, r, od, idx);
            int64_t src = 0;
            for (int k = 0; k < r; k++)
                src = src * d[k] + idx[k] % d[k];
            assert_int_equal(((uint16_t *)out.data)[i], ((uint16_t *)xr.data)[src]);
        }
        tdm_tensor_free(&out);
        tdm_tensor_free(&xr);
        tdm_tensor_free(&rr);
    }
    tdm_tensor negr = mk_i64(2, (int64_t[]){1, -1});
    ti[1] = &negr;
    assert_int_equal(op_run(&n, ti, 2, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    tdm_node_clear(&n);
    tdm_tensor *fr[] = {&x, &shp, &bad, &t, &rep, &negr};
    for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++)
        tdm_tensor_free(fr[i]);
}

/* ---- Pad ------------------------------------------------------------------------------------ */

static void pad_doc_case(const char *mode, const int64_t *pads, int64_t od0, int64_t od1,
                         const float *want)
{
    int64_t xd[2] = {3, 2};
    float xv[6] = {1.0f, 1.2f, 2.3f, 3.4f, 4.5f, 5.7f};
    tdm_tensor x = mk(TDM_DTYPE_FLOAT32, 2, xd, xv);
    tdm_tensor p = mk_i64(4, pads);
    tdm_node n;
    op_node_init(&n, "Pad", "", 19, 2, 1);
    op_attr_str(&n, "mode", mode);
    const tdm_tensor *ins[2] = {&x, &p};
    tdm_tensor out;
    run_ok(&n, ins, 2, &out, 1, NULL);
    assert_int_equal(out.dims[0], od0);
    assert_int_equal(out.dims[1], od1);
    assert_floats(&out, want, od0 * od1);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    tdm_tensor_free(&x);
    tdm_tensor_free(&p);
}

static void test_pad_docs(void **state)
{
    (void)state;
    const int64_t p1[4] = {0, 2, 0, 0};
    pad_doc_case("constant", p1, 3, 4,
                 (float[]){0, 0, 1.0f, 1.2f, 0, 0, 2.3f, 3.4f, 0, 0, 4.5f, 5.7f});
    pad_doc_case("reflect", p1, 3, 4,
                 (float[]){1.0f, 1.2f, 1.0f, 1.2f, 2.3f, 3.4f, 2.3f, 3.4f, 4.5f, 5.7f, 4.5f, 5.7f});
    pad_doc_case("edge", p1, 3, 4,
                 (float[]){1.0f, 1.0f, 1.0f, 1.2f, 2.3f, 2.3f, 2.3f, 3.4f, 4.5f, 4.5f, 4.5f, 5.7f});
    const int64_t p2[4] = {2, 1, 1, 1};
    pad_doc_case("wrap", p2, 6, 4,
                 (float[]){3.4f, 2.3f, 3.4f, 2.3f, 5.7f, 4.5f, 5.7f, 4.5f, 1.2f, 1.0f, 1.2f, 1.0f,
                           3.4f, 2.3f, 3.4f, 2.3f, 5.7f, 4.5f, 5.7f, 4.5f, 1.2f, 1.0f, 1.2f, 1.0f});
}

/* Maps output coordinate o of an axis of length n padded by `before` (numpy semantics). */
static int64_t ref_pad_index(const char *mode, int64_t o, int64_t before, int64_t n)
{
    int64_t i = o - before;
    if (i >= 0 && i < n)
        return i;
    if (strcmp(mode, "constant") == 0)
        return -1;
    if (strcmp(mode, "edge") == 0)
        return i < 0 ? 0 : n - 1;
    if (strcmp(mode, "wrap") == 0) {
        while (i < 0)
            i += n;
        while (i >= n)
            i -= n;
        return i;
    }
    if (n == 1)
        return 0;
    while (i < 0 || i >= n) { /* reflect, one bounce at a time */
        if (i < 0)
            i = -i;
        if (i >= n)
            i = 2 * (n - 1) - i;
    }
    return i;
}

static void test_pad_random(void **state)
{
    (void)state;
    static const char *const modes[4] = {"constant", "reflect", "edge", "wrap"};
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(2, &pool, NULL), TDM_OK);
    for (int iter = 0; iter < 300; iter++) {
        const char *mode = modes[iter % 4];
        int r = (int)rnd_in(1, 4);
        int64_t d[4], pads[8], od[4];
        for (int k = 0; k < r; k++) {
            d[k] = rnd_in(1, 5);
            pads[k] = rnd_in(-d[k] / 2, 7);
            pads[k + r] = rnd_in(-d[k] / 2, 7);
            od[k] = d[k] + pads[k] + pads[k + r];
        }
        if (iter % 60 == 1) { /* over 1 MiB, for the pool */
            r = 2;
            d[0] = 40000;
            d[1] = 8;
            pads[0] = 3;
            pads[1] = 2;
            pads[2] = -1;
            pads[3] = 5;
            od[0] = 40002;
            od[1] = 15;
        }
        tdm_dtype dt = iter % 3 == 0 ? TDM_DTYPE_INT8 : TDM_DTYPE_INT32;
        tdm_tensor x = mk_iota(dt, r, d);
        tdm_tensor p = mk_i64(2 * r, pads);
        int8_t cv8 = -7;
        int32_t cv32 = -7;
        tdm_tensor cv = mk(dt, 0, NULL, dt == TDM_DTYPE_INT8 ? (void *)&cv8 : (void *)&cv32);
        tdm_node n;
        op_node_init(&n, "Pad", "", 18, 3, 1);
        op_attr_str(&n, "mode", mode);
        const tdm_tensor *ins[3] = {&x, &p, &cv};
        tdm_tensor out;
        run_ok(&n, ins, 3, &out, 1, iter % 2 ? pool : NULL);
        size_t es = tdm_dtype_size(dt);
        int64_t idx[4];
        for (int64_t i = 0; i < tdm_tensor_numel(&out); i++) {
            unravel(i, r, od, idx);
            int64_t src = 0;
            bool constant = false;
            for (int k = 0; k < r; k++) {
                int64_t m = ref_pad_index(mode, idx[k], pads[k], d[k]);
                constant |= m < 0;
                src = src * d[k] + (m < 0 ? 0 : m);
            }
            int64_t got = es == 1 ? ((int8_t *)out.data)[i] : ((int32_t *)out.data)[i];
            int64_t want = constant  ? -7
                           : es == 1 ? ((int8_t *)x.data)[src]
                                     : ((int32_t *)x.data)[src];
            if (got != want)
                fail_msg("iter %d mode %s element %lld: %lld != %lld", iter, mode, (long long)i,
                         (long long)got, (long long)want);
        }
        tdm_tensor_free(&out);
        tdm_node_clear(&n);
        tdm_tensor_free(&x);
        tdm_tensor_free(&p);
        tdm_tensor_free(&cv);
    }
    tdm_pool_free(pool);
}

static void test_pad_versions_and_errors(void **state)
{
    (void)state;
    int64_t xd[2] = {2, 2};
    float xv[4] = {1, 2, 3, 4};
    tdm_tensor x = mk(TDM_DTYPE_FLOAT32, 2, xd, xv);
    /* opset 2 attributes with a value */
    tdm_node n;
    op_node_init(&n, "Pad", "", 2, 1, 1);
    op_attr_ints(&n, "pads", (int64_t[]){0, 1, 0, 0}, 4);
    op_attr_float(&n, "value", 9.5f);
    const tdm_tensor *ins[4] = {&x, NULL, NULL, NULL};
    tdm_tensor out;
    run_ok(&n, ins, 1, &out, 1, NULL);
    assert_floats(&out, (float[]){9.5f, 1, 2, 9.5f, 3, 4}, 6);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    /* opset 18 axes: pad only axis -1 by (1, 2) */
    op_node_init(&n, "Pad", "", 18, 4, 1);
    tdm_tensor p = mk_i64(2, (int64_t[]){1, 2}), ax = mk_i64(1, (int64_t[]){-1});
    ins[1] = &p;
    ins[3] = &ax;
    run_ok(&n, ins, 4, &out, 1, NULL);
    assert_floats(&out, (float[]){0, 1, 2, 0, 0, 0, 3, 4, 0, 0}, 10);
    tdm_tensor_free(&out);
    /* wrong pads length; cropping below zero */
    ins[3] = NULL;
    assert_int_equal(op_run(&n, ins, 4, &out, 1, NULL, NULL), TDM_ERR_INVALID_ARG);
    tdm_tensor crop = mk_i64(4, (int64_t[]){-3, 0, 0, 0});
    ins[1] = &crop;
    assert_int_equal(op_run(&n, ins, 4, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    tdm_node_clear(&n);
    /* edge padding of an empty axis is impossible */
    op_node_init(&n, "Pad", "", 13, 2, 1);
    op_attr_str(&n, "mode", "edge");
    int64_t ed[2] = {0, 2};
    tdm_tensor e = mk(TDM_DTYPE_FLOAT32, 2, ed, NULL);
    tdm_tensor pe = mk_i64(4, (int64_t[]){1, 0, 0, 0});
    const tdm_tensor *ins2[2] = {&e, &pe};
    assert_int_equal(op_run(&n, ins2, 2, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    tdm_node_clear(&n);
    tdm_tensor *fr[] = {&x, &p, &ax, &crop, &e, &pe};
    for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++)
        tdm_tensor_free(fr[i]);
}

/* ---- Where / Trilu ------------------------------------------------------------------------------
 */

static void test_where(void **state)
{
    (void)state;
    /* cond [2,1,4], X [3,1], Y [1] (float64) -> [2,3,4] */
    int64_t cd[3] = {2, 1, 4}, xd[2] = {3, 1}, yd[1] = {1}, od[3] = {2, 3, 4};
    tdm_tensor c = mk(TDM_DTYPE_BOOL, 3, cd, NULL);
    for (int i = 0; i < 8; i++)
        ((uint8_t *)c.data)[i] = (uint8_t)(rnd() % 2);
    double xv[3] = {1.5, 2.5, 3.5}, yv = -1;
    tdm_tensor x = mk(TDM_DTYPE_FLOAT64, 2, xd, xv), y = mk(TDM_DTYPE_FLOAT64, 1, yd, &yv);
    tdm_node n;
    op_node_init(&n, "Where", "", 16, 3, 1);
    const tdm_tensor *ins[3] = {&c, &x, &y};
    tdm_tensor out;
    run_ok(&n, ins, 3, &out, 1, NULL);
    assert_int_equal(out.ndim, 3);
    int64_t idx[3];
    for (int64_t i = 0; i < 24; i++) {
        unravel(i, 3, od, idx);
        bool cond = ((uint8_t *)c.data)[idx[0] * 4 + idx[2]] != 0;
        double want = cond ? xv[idx[1]] : yv;
        assert_true(((double *)out.data)[i] == want);
    }
    tdm_tensor_free(&out);
    /* same shapes fast path */
    const tdm_tensor *ins2[3] = {&c, &c, &c};
    run_ok(&n, ins2, 3, &out, 1, NULL);
    assert_memory_equal(out.data, c.data, 8);
    tdm_tensor_free(&out);
    /* non-bool condition, mismatched X/Y types */
    const tdm_tensor *ins3[3] = {&x, &x, &y};
    assert_int_equal(op_run(&n, ins3, 3, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    const tdm_tensor *ins4[3] = {&c, &x, &c};
    assert_int_equal(op_run(&n, ins4, 3, &out, 1, NULL, NULL), TDM_ERR_SHAPE);
    tdm_node_clear(&n);
    tdm_tensor_free(&c);
    tdm_tensor_free(&x);
    tdm_tensor_free(&y);
}

static void test_trilu(void **state)
{
    (void)state;
    int64_t xd[3] = {2, 3, 5};
    tdm_tensor x = mk_iota(TDM_DTYPE_INT32, 3, xd);
    for (int upper = 0; upper < 2; upper++) {
        for (int64_t k = -5; k <= 6; k++) {
            tdm_node n;
            op_node_init(&n, "Trilu", "", 14, 2, 1);
            op_attr_int(&n, "upper", upper);
            tdm_tensor kt = mk(TDM_DTYPE_INT64, 0, NULL, &k);
            const tdm_tensor *ins[2] = {&x, &kt};
            tdm_tensor out;
            run_ok(&n, ins, 2, &out, 1, NULL);
            for (int64_t i = 0; i < 30; i++) {
                int64_t row = (i / 5) % 3, col = i % 5;
                bool keep = upper ? col - row >= k : col - row <= k;
                int32_t want = keep ? ((int32_t *)x.data)[i] : 0;
                assert_int_equal(((int32_t *)out.data)[i], want);
            }
            tdm_tensor_free(&out);
            tdm_tensor_free(&kt);
            tdm_node_clear(&n);
        }
    }
    /* extreme k does not overflow */
    int64_t big = INT64_MIN;
    tdm_tensor kt = mk(TDM_DTYPE_INT64, 0, NULL, &big);
    tdm_node n;
    op_node_init(&n, "Trilu", "", 14, 2, 1);
    const tdm_tensor *ins[2] = {&x, &kt};
    tdm_tensor out;
    run_ok(&n, ins, 2, &out, 1, NULL);
    assert_memory_equal(out.data, x.data, tdm_tensor_nbytes(&x));
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    tdm_tensor_free(&kt);
    tdm_tensor_free(&x);
}

/* Concat over 1 MiB: split over the pool by outer rows, or one memcpy per input. */
static void test_concat_large(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(3, &pool, NULL), TDM_OK);
    for (int axis = 0; axis < 2; axis++) {
        int64_t da[2] = {512, 300}, db[2] = {512, 300};
        db[axis] = 211;
        tdm_tensor a = mk_iota(TDM_DTYPE_FLOAT32, 2, da), b = mk_iota(TDM_DTYPE_INT32, 2, db);
        b.dtype = TDM_DTYPE_FLOAT32; /* same bytes, distinct values */
        for (int64_t i = 0; i < tdm_tensor_numel(&b); i++)
            ((uint32_t *)b.data)[i] ^= 0x80000000u;
        tdm_node n;
        op_node_init(&n, "Concat", "", 13, 2, 1);
        op_attr_int(&n, "axis", axis);
        const tdm_tensor *ins[2] = {&a, &b};
        tdm_tensor out;
        run_ok(&n, ins, 2, &out, 1, pool);
        int64_t cols = out.dims[1];
        for (int64_t i = 0; i < tdm_tensor_numel(&out); i++) {
            int64_t r = i / cols, c = i % cols;
            uint32_t want;
            if (axis == 0)
                want = r < 512 ? ((uint32_t *)a.data)[r * 300 + c]
                               : ((uint32_t *)b.data)[(r - 512) * 300 + c];
            else
                want = c < 300 ? ((uint32_t *)a.data)[r * 300 + c]
                               : ((uint32_t *)b.data)[r * 211 + c - 300];
            if (((uint32_t *)out.data)[i] != want)
                fail_msg("axis %d element %lld", axis, (long long)i);
        }
        tdm_tensor_free(&out);
        tdm_node_clear(&n);
        tdm_tensor_free(&a);
        tdm_tensor_free(&b);
    }
    tdm_pool_free(pool);
}

/* Where by element size: int16 and int32, and a scalar result. */
static void test_where_sizes(void **state)
{
    (void)state;
    int64_t d[1] = {5};
    tdm_tensor c = mk(TDM_DTYPE_BOOL, 1, d, (uint8_t[]){1, 0, 0, 1, 1});
    tdm_tensor x16 = mk(TDM_DTYPE_INT16, 1, d, (int16_t[]){1, 2, 3, 4, 5});
    int16_t m = -1;
    tdm_tensor y16 = mk(TDM_DTYPE_INT16, 0, NULL, &m);
    tdm_node n;
    op_node_init(&n, "Where", "", 16, 3, 1);
    const tdm_tensor *ins[3] = {&c, &x16, &y16};
    tdm_tensor out;
    run_ok(&n, ins, 3, &out, 1, NULL);
    assert_memory_equal(out.data, ((int16_t[]){1, -1, -1, 4, 5}), 10);
    tdm_tensor_free(&out);
    uint8_t f = 0;
    int32_t a = 7, b = 9;
    tdm_tensor cs = mk(TDM_DTYPE_BOOL, 0, NULL, &f), xa = mk(TDM_DTYPE_INT32, 0, NULL, &a),
               yb = mk(TDM_DTYPE_INT32, 0, NULL, &b);
    const tdm_tensor *ins2[3] = {&cs, &xa, &yb};
    run_ok(&n, ins2, 3, &out, 1, NULL);
    assert_int_equal(out.ndim, 0);
    assert_int_equal(*(int32_t *)out.data, 9);
    tdm_tensor_free(&out);
    tdm_node_clear(&n);
    tdm_tensor *fr[] = {&c, &x16, &y16, &cs, &xa, &yb};
    for (size_t i = 0; i < sizeof fr / sizeof fr[0]; i++)
        tdm_tensor_free(fr[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concat),       cmocka_unit_test(test_split),
        cmocka_unit_test(test_slice_docs),   cmocka_unit_test(test_slice_random),
        cmocka_unit_test(test_expand_tile),  cmocka_unit_test(test_pad_docs),
        cmocka_unit_test(test_pad_random),   cmocka_unit_test(test_pad_versions_and_errors),
        cmocka_unit_test(test_where),        cmocka_unit_test(test_trilu),
        cmocka_unit_test(test_concat_large), cmocka_unit_test(test_where_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
