/*
 * Resize and Upsample.
 *
 * Expected values were computed with the ONNX reference implementation
 * (onnx.backend.test.case.node.resize.interpolate_nd, float64 arithmetic)
 * on a 4x4 ramp 1..16 and pasted here; they cover nearest with every
 * nearest_mode and three coordinate modes, linear (half_pixel,
 * align_corners, pytorch_half_pixel, tf_crop_and_resize with
 * extrapolation), cubic (with and without exclude_outside) and a 3-D
 * trilinear case on an odd layout. A randomized bilinear check compares the
 * NCHW fast path with a direct formula, with and without a thread pool.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/pool.h"
#include "engine/op.h"
#include "op_harness.h"

static tdm_tensor mk(tdm_dtype dt, int nd, const int64_t *dims, const void *data)
{
    tdm_tensor t;
    assert_int_equal(tdm_tensor_make(&t, dt, nd, dims, NULL), TDM_OK);
    if (data != NULL)
        memcpy(t.data, data, tdm_tensor_nbytes(&t));
    return t;
}

static tdm_tensor ramp4x4(void)
{
    int64_t d[4] = {1, 1, 4, 4};
    tdm_tensor t = mk(TDM_DTYPE_FLOAT32, 4, d, NULL);
    for (int i = 0; i < 16; i++)
        ((float *)t.data)[i] = (float)(i + 1);
    return t;
}

static void assert_close(const tdm_tensor *t, const float *want, int64_t n)
{
    assert_int_equal(tdm_tensor_numel(t), n);
    for (int64_t i = 0; i < n; i++) {
        float g = ((const float *)t->data)[i];
        if (!(fabsf(g - want[i]) <= 1e-5f * (1.0f + fabsf(want[i]))))
            fail_msg("element %lld: got %.8g, want %.8g", (long long)i, g, want[i]);
    }
}

typedef struct rs_case {
    const char *mode, *coord, *nearest;
    const float *scales;  /* 4 values or NULL */
    const int64_t *sizes; /* 4 values or NULL */
    const float *roi;     /* 8 values or NULL */
    float cubic_a, extrapolation;
    int exclude_outside;
} rs_case;

static tdm_status run_resize(const rs_case *c, const tdm_tensor *x, tdm_tensor *out, tdm_pool *pool)
{
    tdm_node n;
    op_node_init(&n, "Resize", "", 13, 4, 1);
    op_attr_str(&n, "mode", c->mode);
    if (c->coord)
        op_attr_str(&n, "coordinate_transformation_mode", c->coord);
    if (c->nearest)
        op_attr_str(&n, "nearest_mode", c->nearest);
    if (c->cubic_a != 0)
        op_attr_float(&n, "cubic_coeff_a", c->cubic_a);
    if (c->extrapolation != 0)
        op_attr_float(&n, "extrapolation_value", c->extrapolation);
    if (c->exclude_outside)
        op_attr_int(&n, "exclude_outside", 1);
    int64_t r = x->ndim, r2 = 2 * r;
    tdm_tensor ts, tz, tr;
    memset(&ts, 0, sizeof ts);
    memset(&tz, 0, sizeof tz);
    memset(&tr, 0, sizeof tr);
    const tdm_tensor *ins[4] = {x, NULL, NULL, NULL};
    if (c->roi) {
        tr = mk(TDM_DTYPE_FLOAT32, 1, &r2, c->roi);
        ins[1] = &tr;
    }
    if (c->scales) {
        ts = mk(TDM_DTYPE_FLOAT32, 1, &r, c->scales);
        ins[2] = &ts;
    }
    if (c->sizes) {
        tz = mk(TDM_DTYPE_INT64, 1, &r, c->sizes);
        ins[3] = &tz;
    }
    tdm_err err = {{0}};
    tdm_status s = op_run(&n, ins, 4, out, 1, pool, &err);
    if (s != TDM_OK)
        print_message("resize: %s\n", err.msg);
    tdm_tensor_free(&ts);
    tdm_tensor_free(&tz);
    tdm_tensor_free(&tr);
    tdm_node_clear(&n);
    return s;
}

static void expect(const rs_case *c, const int64_t *want_dims, const float *want)
{
    tdm_tensor x = ramp4x4(), out;
    assert_int_equal(run_resize(c, &x, &out, NULL), TDM_OK);
    for (int k = 0; k < 4; k++)
        assert_int_equal(out.dims[k], want_dims[k]);
    assert_close(&out, want, want_dims[2] * want_dims[3]);
    tdm_tensor_free(&out);
    tdm_tensor_free(&x);
}

static const int64_t k_size73[4] = {1, 1, 7, 3};

static void test_nearest_modes(void **state)
{
    (void)state;
    static const char *const nm[4] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
    static const char *const cm[3] = {"half_pixel", "asymmetric", "align_corners"};
    static const float want[4][3][21] = {
        {{1, 2, 4, 1, 2, 4, 5, 6, 8, 5, 6, 8, 9, 10, 12, 13, 14, 16, 13, 14, 16},
         {1, 2, 4, 5, 6, 8, 5, 6, 8, 9, 10, 12, 9, 10, 12, 13, 14, 16, 13, 14, 16},
         {1, 2, 4, 1, 2, 4, 5, 6, 8, 5, 6, 8, 9, 10, 12, 9, 10, 12, 13, 14, 16}},
        {{1, 3, 4, 1, 3, 4, 5, 7, 8, 9, 11, 12, 9, 11, 12, 13, 15, 16, 13, 15, 16},
         {1, 2, 4, 5, 6, 8, 5, 6, 8, 9, 10, 12, 9, 10, 12, 13, 14, 16, 13, 14, 16},
         {1, 3, 4, 5, 7, 8, 5, 7, 8, 9, 11, 12, 9, 11, 12, 13, 15, 16, 13, 15, 16}},
        {{1, 2, 3, 1, 2, 3, 1, 2, 3, 5, 6, 7, 9, 10, 11, 9, 10, 11, 13, 14, 15},
         {1, 2, 3, 1, 2, 3, 5, 6, 7, 5, 6, 7, 9, 10, 11, 9, 10, 11, 13, 14, 15},
         {1, 2, 4, 1, 2, 4, 5, 6, 8, 5, 6, 8, 9, 10, 12, 9, 10, 12, 13, 14, 16}},
        {{2, 3, 4, 6, 7, 8, 6, 7, 8, 10, 11, 12, 14, 15, 16, 14, 15, 16, 14, 15, 16},
         {1, 3, 4, 5, 7, 8, 9, 11, 12, 9, 11, 12, 13, 15, 16, 13, 15, 16, 13, 15, 16},
         {1, 3, 4, 5, 7, 8, 5, 7, 8, 9, 11, 12, 9, 11, 12, 13, 15, 16, 13, 15, 16}},
    };
    for (int m = 0; m < 4; m++)
        for (int c = 0; c < 3; c++) {
            rs_case rc = {.mode = "nearest", .coord = cm[c], .nearest = nm[m], .sizes = k_size73};
            expect(&rc, k_size73, want[m][c]);
        }
}

static void test_linear_and_cubic(void **state)
{
    (void)state;
    static const float s06[4] = {1, 1, 0.6f, 0.6f}, s2[4] = {1, 1, 2, 2},
                       s08[4] = {1, 1, 0.8f, 0.8f};
    static const int64_t z33[4] = {1, 1, 3, 3}, z31[4] = {1, 1, 3, 1}, z22[4] = {1, 1, 2, 2},
                         z88[4] = {1, 1, 8, 8};
    rs_case down = {.mode = "linear", .scales = s06};
    expect(&down, z22, (float[]){2.66666651f, 4.33333302f, 9.33333302f, 10.999999f});
    rs_case ac = {.mode = "linear", .coord = "align_corners", .sizes = z33};
    expect(&ac, z33, (float[]){1, 2.5f, 4, 7, 8.5f, 10, 13, 14.5f, 16});
    rs_case pt = {.mode = "linear", .coord = "pytorch_half_pixel", .sizes = z31};
    expect(&pt, z31, (float[]){1.66666663f, 7, 12.333333f});
    static const float roi[8] = {0, 0, 0.4f, 0.6f, 1, 1, 0.6f, 0.8f};
    rs_case tf = {.mode = "linear", .coord = "tf_crop_and_resize", .sizes = z33, .roi = roi};
    expect(&tf, z33,
           (float[]){7.60000038f, 7.9000001f, 8.19999981f, 8.80000019f, 9.10000038f, 9.40000057f,
                     10, 10.3000002f, 10.6000004f});
    static const float roi2[8] = {0, 0, 0.4f, 0.6f, 1, 1, 1.2f, 1.7f};
    rs_case tfe = {.mode = "linear",
                   .coord = "tf_crop_and_resize",
                   .sizes = z33,
                   .roi = roi2,
                   .extrapolation = 10};
    expect(&tfe, z33, (float[]){7.60000038f, 10, 10, 12.4000006f, 10, 10, 10, 10, 10});
    rs_case cu = {.mode = "cubic", .scales = s2};
    tdm_tensor x = ramp4x4(), out;
    assert_int_equal(run_resize(&cu, &x, &out, NULL), TDM_OK);
    assert_int_equal(out.dims[2], z88[2]);
    static const float rows01[16] = {0.47265625f, 0.76953125f, 1.24609375f, 1.875f,
                                     2.28125f,    2.91015625f, 3.38671875f, 3.68359375f,
                                     1.66015625f, 1.95703125f, 2.43359375f, 3.0625f,
                                     3.46875f,    4.09765625f, 4.57421875f, 4.87109375f};
    for (int i = 0; i < 16; i++) /* the first two rows */
        assert_true(fabsf(((float *)out.data)[i] - rows01[i]) < 1e-5f);
    tdm_tensor_free(&out);
    rs_case ce = {.mode = "cubic", .scales = s08, .cubic_a = -0.5f, .exclude_outside = 1};
    expect(&ce, z33,
           (float[]){1.36812675f, 2.6695013f, 4.01333666f, 6.57362509f, 7.875f, 9.21883488f,
                     11.948966f, 13.2503414f, 14.5941763f});
    tdm_tensor_free(&x);
}

static void test_trilinear_rank3(void **state)
{
    (void)state;
    int64_t d[3] = {2, 3, 4};
    tdm_tensor x = mk(TDM_DTYPE_FLOAT32, 3, d, NULL);
    for (int i = 0; i < 24; i++)
        ((float *)x.data)[i] = (float)i;
    static const float sc[3] = {1.5f, 2, 0.5f};
    rs_case c = {.mode = "linear", .scales = sc};
    tdm_tensor out;
    assert_int_equal(run_resize(&c, &x, &out, NULL), TDM_OK);
    assert_int_equal(out.dims[0], 3);
    assert_int_equal(out.dims[1], 6);
    assert_int_equal(out.dims[2], 2);
    assert_close(&out, (float[]){0.5f,  2.5f,  1.5f,  3.5f,  3.5f,  5.5f,  5.5f,  7.5f,  7.5f,
                                 9.5f,  8.5f,  10.5f, 6.5f,  8.5f,  7.5f,  9.5f,  9.5f,  11.5f,
                                 11.5f, 13.5f, 13.5f, 15.5f, 14.5f, 16.5f, 12.5f, 14.5f, 13.5f,
                                 15.5f, 15.5f, 17.5f, 17.5f, 19.5f, 19.5f, 21.5f, 20.5f, 22.5f},
                 36);
    tdm_tensor_free(&out);
    tdm_tensor_free(&x);
}

/* Direct bilinear formula (half_pixel, edge clamped) for one output element. */
static float ref_bilinear(const float *plane, int64_t H, int64_t W, int64_t OH, int64_t OW,
                          int64_t oy, int64_t ox)
{
    double sy = (double)OH / (double)H, sx = (double)OW / (double)W;
    double y = (oy + 0.5) / sy - 0.5, x = (ox + 0.5) / sx - 0.5;
    y = y < 0 ? 0 : (y > H - 1 ? H - 1 : y);
    x = x < 0 ? 0 : (x > W - 1 ? W - 1 : x);
    int64_t y0 = (int64_t)y, x0 = (int64_t)x;
    int64_t y1 = y0 + 1 < H ? y0 + 1 : H - 1, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
    double fy = y - (double)y0, fx = x - (double)x0;
    return (float)((1 - fy) * ((1 - fx) * plane[y0 * W + x0] + fx * plane[y0 * W + x1]) +
                   fy * ((1 - fx) * plane[y1 * W + x0] + fx * plane[y1 * W + x1]));
}

static void test_bilinear_random(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(3, &pool, NULL), TDM_OK);
    uint64_t seed = 12345;
    const int64_t shapes[][4] = {{1, 3, 7, 5}, {2, 4, 16, 16}, {1, 2, 1, 9}, {1, 8, 33, 40}};
    const int64_t outs[][2] = {{14, 10}, {9, 23}, {4, 3}, {64, 80}};
    for (int c = 0; c < 4; c++) {
        tdm_tensor x = mk(TDM_DTYPE_FLOAT32, 4, shapes[c], NULL);
        for (int64_t i = 0; i < tdm_tensor_numel(&x); i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            ((float *)x.data)[i] = (float)(seed >> 40) / (float)(1 << 24) * 8 - 4;
        }
        int64_t sz[4] = {shapes[c][0], shapes[c][1], outs[c][0], outs[c][1]};
        rs_case rc = {.mode = "linear", .sizes = sz};
        for (int p = 0; p < 2; p++) {
            tdm_tensor out;
            assert_int_equal(run_resize(&rc, &x, &out, p ? pool : NULL), TDM_OK);
            int64_t H = shapes[c][2], W = shapes[c][3], OH = outs[c][0], OW = outs[c][1];
            int64_t planes = shapes[c][0] * shapes[c][1];
            for (int64_t pl = 0; pl < planes; pl++)
                for (int64_t oy = 0; oy < OH; oy++)
                    for (int64_t ox = 0; ox < OW; ox++) {
                        float want =
                            ref_bilinear((float *)x.data + pl * H * W, H, W, OH, OW, oy, ox);
                        float got = ((float *)out.data)[(pl * OH + oy) * OW + ox];
                        if (fabsf(got - want) > 1e-5f)
                            fail_msg("case %d plane %lld (%lld,%lld): %g vs %g", c, (long long)pl,
                                     (long long)oy, (long long)ox, got, want);
                    }
            tdm_tensor_free(&out);
        }
        tdm_tensor_free(&x);
    }
    tdm_pool_free(pool);
}

/* Nearest moves elements for any dtype; linear on float16 and uint8 goes through float. */
static void test_dtypes(void **state)
{
    (void)state;
    int64_t d[4] = {1, 1, 4, 4};
    tdm_tensor u8 = mk(TDM_DTYPE_UINT8, 4, d, NULL), f16 = mk(TDM_DTYPE_FLOAT16, 4, d, NULL);
    for (int i = 0; i < 16; i++) {
        ((uint8_t *)u8.data)[i] = (uint8_t)(i * 16);
        ((uint16_t *)f16.data)[i] = tdm_fp32_to_fp16((float)(i + 1));
    }
    static const float s2[4] = {1, 1, 2, 2};
    rs_case near = {.mode = "nearest", .scales = s2};
    tdm_tensor out;
    assert_int_equal(run_resize(&near, &u8, &out, NULL), TDM_OK);
    assert_int_equal(out.dtype, TDM_DTYPE_UINT8);
    for (int64_t y = 0; y < 8; y++)
        for (int64_t x = 0; x < 8; x++)
            assert_int_equal(((uint8_t *)out.data)[y * 8 + x], ((y / 2) * 4 + x / 2) * 16);
    tdm_tensor_free(&out);
    rs_case lin = {.mode = "linear", .scales = s2};
    tdm_tensor ref = ramp4x4(), fout;
    assert_int_equal(run_resize(&lin, &ref, &fout, NULL), TDM_OK);
    assert_int_equal(run_resize(&lin, &f16, &out, NULL), TDM_OK);
    assert_int_equal(out.dtype, TDM_DTYPE_FLOAT16);
    for (int i = 0; i < 64; i++)
        assert_true(fabsf(tdm_fp16_to_fp32(((uint16_t *)out.data)[i]) - ((float *)fout.data)[i]) <
                    1e-2f);
    tdm_tensor_free(&out);
    tdm_tensor_free(&fout);
    assert_int_equal(run_resize(&lin, &u8, &out, NULL), TDM_OK);
    /* first row of bilinear x2 of 0,16,32,48: 0, 4, 12, 20, 28, 36, 44, 48 */
    const uint8_t row0[8] = {0, 4, 12, 20, 28, 36, 44, 48};
    assert_memory_equal(out.data, row0, 8);
    tdm_tensor_free(&out);
    tdm_tensor_free(&ref);
    tdm_tensor_free(&u8);
    tdm_tensor_free(&f16);
}

/* Upsample (opset 7 attribute, opset 9 input) and Resize 10: asymmetric, floor when enlarging. */
static void test_legacy_versions(void **state)
{
    (void)state;
    int64_t d[4] = {1, 1, 2, 2};
    tdm_tensor x = mk(TDM_DTYPE_FLOAT32, 4, d, (float[]){1, 2, 3, 4});
    static const float want[24] = {1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2,
                                   3, 3, 3, 4, 4, 4, 3, 3, 3, 4, 4, 4};
    int64_t four = 4;
    tdm_tensor sc = mk(TDM_DTYPE_FLOAT32, 1, &four, (float[]){1, 1, 2, 3});
    for (int v = 0; v < 3; v++) {
        tdm_node n;
        op_node_init(&n, v == 2 ? "Resize" : "Upsample", "",
                     v == 0   ? 7
                     : v == 1 ? 9
                              : 10,
                     v == 0 ? 1 : 2, 1);
        op_attr_str(&n, "mode", "nearest");
        if (v == 0)
            op_attr_floats(&n, "scales", (float[]){1, 1, 2, 3}, 4);
        const tdm_tensor *ins[2] = {&x, &sc};
        tdm_tensor out;
        assert_int_equal(op_run(&n, ins, v == 0 ? 1 : 2, &out, 1, NULL, NULL), TDM_OK);
        assert_int_equal(out.dims[2], 4);
        assert_int_equal(out.dims[3], 6);
        assert_close(&out, want, 24);
        tdm_tensor_free(&out);
        tdm_node_clear(&n);
    }
    tdm_tensor_free(&sc);
    tdm_tensor_free(&x);
}

static void test_errors_and_plan_time(void **state)
{
    (void)state;
    tdm_tensor x = ramp4x4(), out;
    static const float s2[4] = {1, 1, 2, 2}, bad[4] = {1, 1, 0, 2};
    static const int64_t z[4] = {1, 1, 8, 8};
    rs_case both = {.mode = "linear", .scales = s2, .sizes = z};
    assert_int_equal(run_resize(&both, &x, &out, NULL), TDM_ERR_INVALID_ARG);
    rs_case none = {.mode = "linear"};
    assert_int_equal(run_resize(&none, &x, &out, NULL), TDM_ERR_INVALID_ARG);
    rs_case zero = {.mode = "linear", .scales = bad};
    assert_int_equal(run_resize(&zero, &x, &out, NULL), TDM_ERR_INVALID_ARG);
    rs_case mode = {.mode = "lanczos", .scales = s2};
    assert_int_equal(run_resize(&mode, &x, &out, NULL), TDM_ERR_UNSUPPORTED);
    rs_case tf = {.mode = "linear", .coord = "tf_crop_and_resize", .sizes = z};
    assert_int_equal(run_resize(&tf, &x, &out, NULL), TDM_ERR_INVALID_ARG); /* no roi */
    static const float huge[4] = {1, 1, 1e12f, 1e12f};
    rs_case big = {.mode = "nearest", .scales = huge};
    assert_int_not_equal(run_resize(&big, &x, &out, NULL), TDM_OK);
    /* sizes unknown at plan time */
    tdm_node n;
    op_node_init(&n, "Resize", "", 13, 4, 1);
    tdm_tensor unk;
    memset(&unk, 0, sizeof unk);
    tdm_tensor_set_shape(&unk, TDM_DTYPE_INT64, 1, (int64_t[]){4});
    const tdm_tensor *ins[4] = {&x, NULL, NULL, &unk};
    const tdm_op *op = tdm_op_find("", "Resize");
    tdm_scratch sc = {NULL, 0};
    tdm_tensor *ptrs[1] = {&out};
    tdm_op_ctx ctx = {&n, 4, ins, 1, ptrs, NULL, NULL, &sc, NULL};
    assert_int_equal(op->infer(&ctx), TDM_ERR_NEEDS_VALUE);
    tdm_node_clear(&n);
    tdm_tensor_free(&x);
}

/* Opset 18/19 additions: axes, keep_aspect_ratio_policy, half_pixel_symmetric; and
 * tf_half_pixel_for_nn (ONNX doc example). */
static void test_newer_attributes(void **state)
{
    (void)state;
    tdm_tensor x = ramp4x4(), out;
    static const int64_t z32[4] = {1, 1, 3, 2};
    rs_case tfnn = {.mode = "nearest", .coord = "tf_half_pixel_for_nn", .sizes = z32};
    expect(&tfnn, z32, (float[]){6, 8, 10, 12, 14, 16});

    /* sizes [7, 8] on axes [2, 3] of a 4x4 image: not_larger keeps the aspect (scale
     * 7/4, output 7x7), not_smaller uses 8/4 (8x8), stretch gives 7x8 */
    static const char *const pol[3] = {"stretch", "not_larger", "not_smaller"};
    static const int64_t want[3][2] = {{7, 8}, {7, 7}, {8, 8}};
    int64_t two = 2;
    tdm_tensor sz = mk(TDM_DTYPE_INT64, 1, &two, (int64_t[]){7, 8});
    for (int p = 0; p < 3; p++) {
        tdm_node n;
        op_node_init(&n, "Resize", "", 18, 4, 1);
        op_attr_ints(&n, "axes", (int64_t[]){-2, 3}, 2);
        op_attr_str(&n, "keep_aspect_ratio_policy", pol[p]);
        const tdm_tensor *ins[4] = {&x, NULL, NULL, &sz};
        tdm_err err = {{0}};
        if (op_run(&n, ins, 4, &out, 1, NULL, &err) != TDM_OK)
            fail_msg("%s", err.msg);
        assert_int_equal(out.dims[0], 1);
        assert_int_equal(out.dims[2], want[p][0]);
        assert_int_equal(out.dims[3], want[p][1]);
        const float *y = out.data;
        assert_true(y[0] == 1.0f && y[tdm_tensor_numel(&out) - 1] == 16.0f);
        tdm_tensor_free(&out);
        tdm_node_clear(&n);
    }
    tdm_tensor_free(&sz);

    /* half_pixel_symmetric (ONNX doc): [1,2,3,4] by 0.6 -> [1.6666666, 3.3333333] */
    int64_t d4[4] = {1, 1, 1, 4};
    tdm_tensor row = mk(TDM_DTYPE_FLOAT32, 4, d4, (float[]){1, 2, 3, 4});
    static const float s06[4] = {1, 1, 1, 0.6f};
    rs_case sym = {.mode = "linear", .coord = "half_pixel_symmetric", .scales = s06};
    assert_int_equal(run_resize(&sym, &row, &out, NULL), TDM_OK);
    assert_close(&out, (float[]){1.6666666f, 3.3333333f}, 2);
    tdm_tensor_free(&out);

    /* antialias would change a linear downsample: refused rather than wrong */
    tdm_node n;
    op_node_init(&n, "Resize", "", 18, 3, 1);
    op_attr_str(&n, "mode", "linear");
    op_attr_int(&n, "antialias", 1);
    int64_t four = 4;
    tdm_tensor sc = mk(TDM_DTYPE_FLOAT32, 1, &four, s06);
    const tdm_tensor *ins[3] = {&row, NULL, &sc};
    assert_int_equal(op_run(&n, ins, 3, &out, 1, NULL, NULL), TDM_ERR_UNSUPPORTED);
    tdm_node_clear(&n);
    tdm_tensor_free(&sc);
    tdm_tensor_free(&row);
    tdm_tensor_free(&x);
}

/* A nearest resize over 1 MiB runs its gather on the pool and matches the serial one. */
static void test_nearest_pool(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(3, &pool, NULL), TDM_OK);
    int64_t d[4] = {1, 4, 120, 130};
    tdm_tensor x = mk(TDM_DTYPE_INT16, 4, d, NULL);
    for (int64_t i = 0; i < tdm_tensor_numel(&x); i++)
        ((int16_t *)x.data)[i] = (int16_t)(i * 7);
    static const float sc[4] = {1, 1, 2.5f, 1.5f};
    rs_case c = {.mode = "nearest", .coord = "asymmetric", .nearest = "floor", .scales = sc};
    tdm_tensor a, b;
    assert_int_equal(run_resize(&c, &x, &a, NULL), TDM_OK);
    assert_int_equal(run_resize(&c, &x, &b, pool), TDM_OK);
    assert_int_equal(a.dims[2], 300);
    assert_int_equal(a.dims[3], 195);
    assert_memory_equal(a.data, b.data, tdm_tensor_nbytes(&a));
    const int16_t *y = a.data;
    for (int64_t ch = 0; ch < 4; ch++)
        for (int64_t i = 0; i < 300; i += 7)
            for (int64_t j = 0; j < 195; j += 5) {
                int64_t si = (int64_t)floor((double)i / 2.5), sj = (int64_t)floor((double)j / 1.5);
                assert_int_equal(y[(ch * 300 + i) * 195 + j],
                                 ((int16_t *)x.data)[(ch * 120 + si) * 130 + sj]);
            }
    tdm_tensor_free(&a);
    tdm_tensor_free(&b);
    tdm_tensor_free(&x);
    tdm_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nearest_modes),
        cmocka_unit_test(test_linear_and_cubic),
        cmocka_unit_test(test_trilinear_rank3),
        cmocka_unit_test(test_bilinear_random),
        cmocka_unit_test(test_dtypes),
        cmocka_unit_test(test_legacy_versions),
        cmocka_unit_test(test_errors_and_plan_time),
        cmocka_unit_test(test_newer_attributes),
        cmocka_unit_test(test_nearest_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
