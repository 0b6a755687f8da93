/*
 * Conv and ConvTranspose against naive reference loops written here.
 *
 * The references share nothing with the engine: output sizes and padding
 * come from the ONNX formulas written out again below, sums are in double,
 * and every tap is bounds-tested. Each case runs single-threaded and on a
 * three-thread pool (which exercises both the "tasks in parallel" and the
 * "parallel inside the GEMM" schedules), with and without bias and fused
 * activations, covering the depthwise, pointwise and im2col strategies.
 * The depthwise plane kernels are also compared with each other directly at
 * every SIMD level this CPU has; tests/integration/nn_simd_levels.sh reruns
 * this binary with TDM_CPU capped so the dispatched paths are covered too.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/cpu.h"
#include "engine/ops/nn_dwconv.h"
#include "op_harness.h"

/* ---- helpers -------------------------------------------------------------------- */

static uint32_t g_seed = 12345u;

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

static double ref_act(double v, const char *act, double a, double b)
{
    if (act == NULL)
        return v;
    if (strcmp(act, "Relu") == 0)
        return v > 0 ? v : 0;
    if (strcmp(act, "LeakyRelu") == 0)
        return v >= 0 ? v : v * a;
    if (strcmp(act, "Clip") == 0)
        return v < a ? a : (v > b ? b : v);
    if (strcmp(act, "Sigmoid") == 0)
        return 1 / (1 + exp(-v));
    if (strcmp(act, "Tanh") == 0)
        return tanh(v);
    if (strcmp(act, "HardSigmoid") == 0) {
        double y = a * v + b;
        return y < 0 ? 0 : (y > 1 ? 1 : y);
    }
    if (strcmp(act, "HardSwish") == 0) {
        double y = v / 6 + 0.5;
        return v * (y < 0 ? 0 : (y > 1 ? 1 : y));
    }
    fail_msg("unknown activation %s", act);
    return 0;
}

static void expect_close(const float *got, const double *want, int64_t n, const char *what)
{
    for (int64_t i = 0; i < n; i++) {
        double tol = 1e-4 + 1e-4 * fabs(want[i]);
        if (!(fabs(got[i] - want[i]) <= tol))
            fail_msg("%s: element %lld is %.7g, expected %.7g", what, (long long)i, (double)got[i],
                     want[i]);
    }
}

/* ---- Conv reference ------------------------------------------------------------- */

typedef struct conv_case {
    const char *name;
    int nsp;
    int64_t n, c, m, group;
    int64_t in[3], k[3], s[3], d[3];
    int64_t pads[6]; /* begin..., end... */
    const char *auto_pad;
    bool bias;
    const char *act;
    float alpha, beta;
} conv_case;

/* Spatial geometry normalised to 3 axes with leading trivial axes. */
typedef struct geo {
    int64_t in[3], out[3], k[3], s[3], d[3], pb[3];
} geo;

static void conv_geometry(const conv_case *cc, geo *g)
{
    int off = 3 - cc->nsp;
    for (int a = 0; a < 3; a++) {
        g->in[a] = g->out[a] = g->k[a] = g->s[a] = g->d[a] = 1;
        g->pb[a] = 0;
    }
    for (int i = 0; i < cc->nsp; i++) {
        int a = off + i;
        int64_t in = cc->in[i], k = cc->k[i], s = cc->s[i] ? cc->s[i] : 1;
        int64_t d = cc->d[i] ? cc->d[i] : 1, ext = (k - 1) * d + 1, pb = cc->pads[i],
                pe = cc->pads[cc->nsp + i], out;
        if (cc->auto_pad != NULL && strncmp(cc->auto_pad, "SAME", 4) == 0) {
            out = (in + s - 1) / s;
            int64_t total = (out - 1) * s + ext - in;
            if (total < 0)
                total = 0;
            pb = strcmp(cc->auto_pad, "SAME_UPPER") == 0 ? total / 2 : total - total / 2;
        } else if (cc->auto_pad != NULL && strcmp(cc->auto_pad, "VALID") == 0) {
            pb = 0;
            out = (in - ext) / s + 1;
        } else {
            out = (in + pb + pe - ext) / s + 1;
        }
        g->in[a] = in;
        g->out[a] = out;
        g->k[a] = k;
        g->s[a] = s;
        g->d[a] = d;
        g->pb[a] = pb;
    }
}

static double *conv_reference(const conv_case *cc, const geo *g, const float *x, const float *w,
                              const float *b, int64_t *out_n)
{
    int64_t cg = cc->c / cc->group, mg = cc->m / cc->group;
    int64_t ovol = g->out[0] * g->out[1] * g->out[2], ivol = g->in[0] * g->in[1] * g->in[2];
    int64_t kvol = g->k[0] * g->k[1] * g->k[2];
    *out_n = cc->n * cc->m * ovol;
    double *y = calloc((size_t)*out_n, sizeof *y);
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t m = 0; m < cc->m; m++) {
            int64_t gi = m / mg;
            for (int64_t od = 0; od < g->out[0]; od++)
                for (int64_t oh = 0; oh < g->out[1]; oh++)
                    for (int64_t ow = 0; ow < g->out[2]; ow++) {
                        double sum = b != NULL ? b[m] : 0;
                        for (int64_t cl = 0; cl < cg; cl++)
                            for (int64_t kd = 0; kd < g->k[0]; kd++)
                                for (int64_t kh = 0; kh < g->k[1]; kh++)
                                    for (int64_t kw = 0; kw < g->k[2]; kw++) {
                                        int64_t id = od * g->s[0] - g->pb[0] + kd * g->d[0];
                                        int64_t ih = oh * g->s[1] - g->pb[1] + kh * g->d[1];
                                        int64_t iw = ow * g->s[2] - g->pb[2] + kw * g->d[2];
                                        if (id < 0 || id >= g->in[0] || ih < 0 || ih >= g->in[1] ||
                                            iw < 0 || iw >= g->in[2])
                                            continue;
                                        int64_t c = gi * cg + cl;
                                        double xv = x[(n * cc->c + c) * ivol +
                                                      (id * g->in[1] + ih) * g->in[2] + iw];
                                        double wv = w[(m * cg + cl) * kvol +
                                                      (kd * g->k[1] + kh) * g->k[2] + kw];
                                        sum += xv * wv;
                                    }
                        y[((n * cc->m + m) * g->out[0] + od) * g->out[1] * g->out[2] +
                          oh * g->out[2] + ow] = ref_act(sum, cc->act, cc->alpha, cc->beta);
                    }
        }
    return y;
}

static void conv_node(const conv_case *cc, tdm_node *node)
{
    op_node_init(node, "Conv", "", 13, cc->bias ? 3 : 2, 1);
    int nsp = cc->nsp;
    int64_t v[6];
    bool any = false;
    for (int i = 0; i < nsp; i++) {
        v[i] = cc->s[i] ? cc->s[i] : 1;
        any |= cc->s[i] != 0;
    }
    if (any)
        op_attr_ints(node, "strides", v, nsp);
    any = false;
    for (int i = 0; i < nsp; i++) {
        v[i] = cc->d[i] ? cc->d[i] : 1;
        any |= cc->d[i] != 0;
    }
    if (any)
        op_attr_ints(node, "dilations", v, nsp);
    if (cc->auto_pad != NULL)
        op_attr_str(node, "auto_pad", cc->auto_pad);
    else
        op_attr_ints(node, "pads", cc->pads, 2 * nsp);
    if (cc->group != 1)
        op_attr_int(node, "group", cc->group);
    op_attr_ints(node, "kernel_shape", cc->k, nsp);
    if (cc->act != NULL) {
        op_attr_str(node, "tdm_activation", cc->act);
        if (strcmp(cc->act, "LeakyRelu") == 0 || strcmp(cc->act, "Clip") == 0 ||
            strcmp(cc->act, "HardSigmoid") == 0) {
            op_attr_float(node, "tdm_alpha", cc->alpha);
            op_attr_float(node, "tdm_beta", cc->beta);
        }
    }
}

static void run_conv_case(const conv_case *cc, tdm_pool *pool)
{
    geo g;
    conv_geometry(cc, &g);
    int nsp = cc->nsp;
    int64_t xd[5] = {cc->n, cc->c}, wd[5] = {cc->m, cc->c / cc->group}, bd[1] = {cc->m};
    for (int i = 0; i < nsp; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
    }
    tdm_tensor x, w, b;
    memset(&b, 0, sizeof b);
    make_rand(&x, nsp + 2, xd);
    make_rand(&w, nsp + 2, wd);
    if (cc->bias)
        make_rand(&b, 1, bd);
    tdm_node node;
    conv_node(cc, &node);
    const tdm_tensor *ins[3] = {&x, &w, cc->bias ? &b : NULL};
    tdm_tensor out[1];
    tdm_err err = {{0}};
    tdm_status s = op_run(&node, ins, cc->bias ? 3 : 2, out, 1, pool, &err);
    if (s != TDM_OK)
        fail_msg("%s: %s", cc->name, err.msg);
    int off = 3 - nsp;
    assert_int_equal(out[0].ndim, nsp + 2);
    assert_int_equal(out[0].dims[0], cc->n);
    assert_int_equal(out[0].dims[1], cc->m);
    for (int i = 0; i < nsp; i++)
        assert_int_equal(out[0].dims[2 + i], g.out[off + i]);
    int64_t n = 0;
    double *want = conv_reference(cc, &g, x.data, w.data, cc->bias ? b.data : NULL, &n);
    assert_int_equal(n, tdm_tensor_numel(&out[0]));
    char what[128];
    snprintf(what, sizeof what, "%s (pool %d)", cc->name, pool ? tdm_pool_size(pool) : 0);
    expect_close(out[0].data, want, n, what);
    free(want);
    tdm_tensor_free(&out[0]);
    tdm_tensor_free(&x);
    tdm_tensor_free(&w);
    tdm_tensor_free(&b);
    tdm_node_clear(&node);
}

static const conv_case k_conv_cases[] = {
    {"3x3 pad1", 2, 1, 3, 4, 1, {8, 8}, {3, 3}, {0}, {0}, {1, 1, 1, 1}, NULL, true, NULL, 0, 0},
    {"3x3 s2 asym pads odd",
     2,
     1,
     3,
     5,
     1,
     {9, 7},
     {3, 3},
     {2, 2},
     {0},
     {0, 1, 2, 1},
     NULL,
     true,
     NULL,
     0,
     0},
    {"3x3 dil2",
     2,
     2,
     4,
     3,
     1,
     {11, 10},
     {3, 3},
     {1, 1},
     {2, 2},
     {2, 2, 2, 2},
     NULL,
     false,
     NULL,
     0,
     0},
    {"5x3 s(2,1) dil(1,2)",
     2,
     1,
     2,
     3,
     1,
     {12, 13},
     {5, 3},
     {2, 1},
     {1, 2},
     {1, 0, 2, 3},
     NULL,
     true,
     "Relu",
     0,
     0},
    {"group2", 2, 2, 4, 6, 2, {7, 9}, {3, 3}, {1, 1}, {0}, {1, 1, 1, 1}, NULL, true, NULL, 0, 0},
    {"group4 s2",
     2,
     3,
     8,
     8,
     4,
     {10, 10},
     {3, 3},
     {2, 2},
     {0},
     {1, 1, 1, 1},
     NULL,
     true,
     "LeakyRelu",
     0.1f,
     0},
    {"depthwise 3x3 w13",
     2,
     1,
     8,
     8,
     8,
     {6, 13},
     {3, 3},
     {0},
     {0},
     {1, 1, 1, 1},
     NULL,
     true,
     NULL,
     0,
     0},
    {"depthwise 3x3 w40 relu6",
     2,
     2,
     5,
     5,
     5,
     {5, 40},
     {3, 3},
     {0},
     {0},
     {1, 1, 1, 1},
     NULL,
     true,
     "Clip",
     0.f,
     6.f},
    {"depthwise 3x3 w70 nopad",
     2,
     1,
     3,
     3,
     3,
     {4, 70},
     {3, 3},
     {0},
     {0},
     {0},
     NULL,
     false,
     NULL,
     0,
     0},
    {"depthwise s2",
     2,
     2,
     6,
     6,
     6,
     {11, 37},
     {3, 3},
     {2, 2},
     {0},
     {1, 1, 1, 1},
     NULL,
     true,
     "Relu",
     0,
     0},
    {"depthwise s2 nopad even",
     2,
     1,
     4,
     4,
     4,
     {8, 34},
     {3, 3},
     {2, 2},
     {0},
     {0},
     NULL,
     true,
     NULL,
     0,
     0},
    {"depthwise mult2",
     2,
     1,
     4,
     8,
     4,
     {9, 9},
     {3, 3},
     {0},
     {0},
     {1, 1, 1, 1},
     NULL,
     true,
     NULL,
     0,
     0},
    {"depthwise 5x5 dil2 s2",
     2,
     1,
     3,
     3,
     3,
     {17, 35},
     {5, 5},
     {2, 2},
     {2, 2},
     {4, 4, 3, 3},
     NULL,
     true,
     "Sigmoid",
     0,
     0},
    {"depthwise 7x5 s3",
     2,
     1,
     2,
     2,
     2,
     {20, 50},
     {7, 5},
     {3, 3},
     {0},
     {3, 2, 3, 2},
     NULL,
     true,
     "HardSwish",
     0,
     0},
    {"depthwise 9x9 (>64 taps)",
     2,
     1,
     2,
     2,
     2,
     {12, 21},
     {9, 9},
     {0},
     {0},
     {4, 4, 4, 4},
     NULL,
     true,
     "Tanh",
     0,
     0},
    {"depthwise 1-D", 1, 2, 3, 3, 3, {29}, {5}, {2}, {0}, {2, 2}, NULL, true, NULL, 0, 0},
    {"single input channel",
     2,
     1,
     1,
     5,
     1,
     {10, 12},
     {3, 3},
     {0},
     {0},
     {1, 1, 1, 1},
     NULL,
     true,
     "HardSigmoid",
     0.2f,
     0.5f},
    {"1x1 pointwise", 2, 2, 16, 24, 1, {7, 9}, {1, 1}, {0}, {0}, {0}, NULL, true, "Relu", 0, 0},
    {"1x1 pointwise group2", 2, 1, 8, 6, 2, {5, 5}, {1, 1}, {0}, {0}, {0}, NULL, false, NULL, 0, 0},
    {"1x1 s2", 2, 1, 8, 4, 1, {9, 9}, {1, 1}, {2, 2}, {0}, {0}, NULL, true, NULL, 0, 0},
    {"1x1 padded", 2, 1, 3, 2, 1, {4, 5}, {1, 1}, {0}, {0}, {1, 0, 0, 1}, NULL, true, NULL, 0, 0},
    {"1-D k3 s2", 1, 2, 3, 4, 1, {23}, {3}, {2}, {0}, {1, 2}, NULL, true, NULL, 0, 0},
    {"1-D dil3", 1, 1, 2, 2, 1, {30}, {4}, {1}, {3}, {0, 0}, NULL, false, NULL, 0, 0},
    {"3-D 3x3x3",
     3,
     1,
     2,
     3,
     1,
     {5, 6, 7},
     {3, 3, 3},
     {0},
     {0},
     {1, 1, 1, 1, 1, 1},
     NULL,
     true,
     NULL,
     0,
     0},
    {"3-D s2 group2",
     3,
     2,
     4,
     4,
     2,
     {6, 5, 8},
     {2, 3, 3},
     {2, 1, 2},
     {0},
     {0, 1, 1, 1, 0, 1},
     NULL,
     true,
     "Relu",
     0,
     0},
    {"3-D depthwise",
     3,
     1,
     3,
     3,
     3,
     {4, 5, 6},
     {3, 3, 3},
     {0},
     {0},
     {1, 1, 1, 1, 1, 1},
     NULL,
     false,
     NULL,
     0,
     0},
    {"SAME_UPPER s2",
     2,
     1,
     3,
     4,
     1,
     {10, 9},
     {3, 3},
     {2, 2},
     {0},
     {0},
     "SAME_UPPER",
     true,
     NULL,
     0,
     0},
    {"SAME_LOWER s2",
     2,
     1,
     3,
     4,
     1,
     {10, 9},
     {4, 4},
     {2, 2},
     {0},
     {0},
     "SAME_LOWER",
     true,
     NULL,
     0,
     0},
    {"SAME_UPPER depthwise even k",
     2,
     1,
     4,
     4,
     4,
     {9, 18},
     {4, 2},
     {1, 1},
     {0},
     {0},
     "SAME_UPPER",
     true,
     NULL,
     0,
     0},
    {"VALID", 2, 1, 3, 4, 1, {10, 9}, {3, 2}, {2, 2}, {0}, {0}, "VALID", true, NULL, 0, 0},
    {"multi-tile 64ch",
     2,
     1,
     64,
     16,
     1,
     {40, 40},
     {3, 3},
     {0},
     {0},
     {1, 1, 1, 1},
     NULL,
     true,
     "Relu",
     0,
     0},
    {"multi-tile batch3",
     2,
     3,
     32,
     8,
     1,
     {33, 29},
     {3, 3},
     {1, 1},
     {0},
     {1, 1, 1, 1},
     NULL,
     true,
     NULL,
     0,
     0},
    {"kernel = input", 2, 1, 2, 3, 1, {4, 5}, {4, 5}, {0}, {0}, {0}, NULL, true, NULL, 0, 0},
};

static void test_conv_cases(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(3, &pool, NULL), TDM_OK);
    for (size_t i = 0; i < sizeof k_conv_cases / sizeof k_conv_cases[0]; i++) {
        run_conv_case(&k_conv_cases[i], NULL);
        run_conv_case(&k_conv_cases[i], pool);
    }
    tdm_pool_free(pool);
}

/* Every depthwise case again with the bias and activation stripped, and a
 * 2-thread pool, so the epilogue-free paths run too. */
static void test_conv_cases_plain(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(2, &pool, NULL), TDM_OK);
    for (size_t i = 0; i < sizeof k_conv_cases / sizeof k_conv_cases[0]; i++) {
        conv_case cc = k_conv_cases[i];
        cc.bias = !cc.bias;
        cc.act = NULL;
        run_conv_case(&cc, pool);
    }
    tdm_pool_free(pool);
}

/* ---- depthwise kernels at each SIMD level ------------------------------------------ */

static void test_dw_kernels_agree(void **state)
{
    (void)state;
    tdm_dw_plane_fn fns[3] = {tdm_dw_plane_portable, NULL, NULL};
    const char *names[3] = {"portable", "avx2", "avx512"};
#if defined(__x86_64__)
    /* The test binary does not see TDM_X86, so ask the CPU directly. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        fns[1] = tdm_dw_plane_avx2;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        fns[2] = tdm_dw_plane_avx512;
#endif
    static const int64_t shapes[][6] = {
        /* kh kw sh sw dh dw */
        {3, 3, 1, 1, 1, 1}, {3, 3, 2, 2, 1, 1}, {5, 5, 1, 1, 1, 1},
        {3, 3, 1, 1, 2, 2}, {7, 7, 2, 2, 1, 1}, {1, 1, 1, 1, 1, 1},
        {9, 9, 1, 1, 1, 1}, {3, 5, 1, 3, 1, 2}, {2, 2, 2, 2, 1, 1},
    };
    static const tdm_act acts[] = {TDM_ACT_NONE, TDM_ACT_RELU, TDM_ACT_CLIP, TDM_ACT_SIGMOID};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int64_t wout = 1; wout <= 70; wout += 3) {
            const int64_t *sh = shapes[si];
            int64_t hout = 3, kh = sh[0], kw = sh[1];
            int64_t wp = (wout - 1) * sh[3] + (kw - 1) * sh[5] + 1;
            int64_t hp = (hout - 1) * sh[2] + (kh - 1) * sh[4] + 1;
            int64_t phase = (wp + sh[3] - 1) / sh[3], in_row = phase * sh[3];
            /* Exact-size buffers, so ASan catches any read past the plane. */
            float *in = malloc(sizeof *in * (size_t)(hp * in_row));
            float *w = malloc(sizeof *w * (size_t)(kh * kw));
            for (int64_t i = 0; i < hp * in_row; i++)
                in[i] = frand();
            for (int64_t i = 0; i < kh * kw; i++)
                w[i] = frand();
            tdm_act act = acts[(si + (size_t)wout) % 4];
            float *ref = NULL;
            for (int f = 0; f < 3; f++) {
                if (fns[f] == NULL)
                    continue;
                float *out = malloc(sizeof *out * (size_t)(hout * wout));
                tdm_dw_plane p = {.in = in,
                                  .in_row = in_row,
                                  .phase = phase,
                                  .sh = sh[2],
                                  .sw = sh[3],
                                  .dh = sh[4],
                                  .dw = sh[5],
                                  .kh = kh,
                                  .kw = kw,
                                  .w = w,
                                  .bias = 0.25f,
                                  .out = out,
                                  .out_row = wout,
                                  .hout = hout,
                                  .wout = wout,
                                  .act = act,
                                  .alpha = -0.5f,
                                  .beta = 0.75f};
                fns[f](&p);
                if (ref == NULL) {
                    ref = out;
                    continue;
                }
                for (int64_t i = 0; i < hout * wout; i++)
                    if (fabsf(out[i] - ref[i]) > 1e-5f * (1.f + fabsf(ref[i])))
                        fail_msg("%s differs from portable: shape %zu wout %lld at %lld: %g vs %g",
                                 names[f], si, (long long)wout, (long long)i, (double)out[i],
                                 (double)ref[i]);
                free(out);
            }
            free(ref);
            free(in);
            free(w);
        }
}

/* ---- ConvTranspose ----------------------------------------------------------------- */

typedef struct ct_case {
    const char *name;
    int nsp;
    int64_t n, c, mg, group;
    int64_t in[3], k[3], s[3], d[3];
    int64_t pads[6];
    int64_t opad[3];
    int64_t oshape[3]; /* 0: absent */
    const char *auto_pad;
    bool bias;
    const char *act;
    /* expected pads when derived (output_shape / auto_pad): begin..., end... */
    int64_t want_pads[6];
} ct_case;

static void run_ct_case(const ct_case *cc, tdm_pool *pool)
{
    int nsp = cc->nsp, off = 3 - nsp;
    int64_t in[3] = {1, 1, 1}, k[3] = {1, 1, 1}, s[3] = {1, 1, 1}, d[3] = {1, 1, 1};
    int64_t pb[3] = {0, 0, 0}, out[3] = {1, 1, 1};
    bool derived = cc->oshape[0] != 0 || cc->auto_pad != NULL;
    for (int i = 0; i < nsp; i++) {
        int a = off + i;
        in[a] = cc->in[i];
        k[a] = cc->k[i];
        s[a] = cc->s[i] ? cc->s[i] : 1;
        d[a] = cc->d[i] ? cc->d[i] : 1;
        const int64_t *p = derived ? cc->want_pads : cc->pads;
        pb[a] = p[i];
        out[a] = s[a] * (in[a] - 1) + cc->opad[i] + (k[a] - 1) * d[a] + 1 - p[i] - p[nsp + i];
        if (cc->oshape[0] != 0)
            assert_int_equal(out[a], cc->oshape[i]);
    }
    int64_t m = cc->mg * cc->group, cg = cc->c / cc->group;
    int64_t xd[5] = {cc->n, cc->c}, wd[5] = {cc->c, cc->mg}, bd[1] = {m};
    for (int i = 0; i < nsp; i++) {
        xd[2 + i] = cc->in[i];
        wd[2 + i] = cc->k[i];
    }
    tdm_tensor x, w, b;
    memset(&b, 0, sizeof b);
    make_rand(&x, nsp + 2, xd);
    make_rand(&w, nsp + 2, wd);
    if (cc->bias)
        make_rand(&b, 1, bd);
    tdm_node node;
    op_node_init(&node, "ConvTranspose", "", 11, cc->bias ? 3 : 2, 1);
    int64_t v[3];
    for (int i = 0; i < nsp; i++)
        v[i] = cc->s[i] ? cc->s[i] : 1;
    op_attr_ints(&node, "strides", v, nsp);
    for (int i = 0; i < nsp; i++)
        v[i] = cc->d[i] ? cc->d[i] : 1;
    op_attr_ints(&node, "dilations", v, nsp);
    if (cc->auto_pad != NULL)
        op_attr_str(&node, "auto_pad", cc->auto_pad);
    else if (cc->oshape[0] == 0)
        op_attr_ints(&node, "pads", cc->pads, 2 * nsp);
    if (cc->oshape[0] != 0)
        op_attr_ints(&node, "output_shape", cc->oshape, nsp);
    op_attr_ints(&node, "output_padding", cc->opad, nsp);
    if (cc->group != 1)
        op_attr_int(&node, "group", cc->group);
    if (cc->act != NULL)
        op_attr_str(&node, "tdm_activation", cc->act);
    const tdm_tensor *ins[3] = {&x, &w, cc->bias ? &b : NULL};
    tdm_tensor y[1];
    tdm_err err = {{0}};
    if (op_run(&node, ins, cc->bias ? 3 : 2, y, 1, pool, &err) != TDM_OK)
        fail_msg("%s: %s", cc->name, err.msg);
    for (int i = 0; i < nsp; i++)
        assert_int_equal(y[0].dims[2 + i], out[off + i]);
    /* Reference: scatter every input pixel through the kernel. */
    int64_t ivol = in[0] * in[1] * in[2], ovol = out[0] * out[1] * out[2];
    int64_t kvol = k[0] * k[1] * k[2], total = cc->n * m * ovol;
    double *want = calloc((size_t)total, sizeof *want);
    const float *xp = x.data, *wp = w.data, *bp = cc->bias ? b.data : NULL;
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t c = 0; c < cc->c; c++) {
            int64_t gi = c / cg;
            for (int64_t i = 0; i < ivol; i++) {
                int64_t id = i / (in[1] * in[2]), ih = (i / in[2]) % in[1], iw = i % in[2];
                double xv = xp[(n * cc->c + c) * ivol + i];
                for (int64_t mm = 0; mm < cc->mg; mm++)
                    for (int64_t t = 0; t < kvol; t++) {
                        int64_t kd = t / (k[1] * k[2]), kh = (t / k[2]) % k[1], kw = t % k[2];
                        int64_t od = id * s[0] - pb[0] + kd * d[0];
                        int64_t oh = ih * s[1] - pb[1] + kh * d[1];
                        int64_t ow = iw * s[2] - pb[2] + kw * d[2];
                        if (od < 0 || od >= out[0] || oh < 0 || oh >= out[1] || ow < 0 ||
                            ow >= out[2])
                            continue;
                        int64_t oc = gi * cc->mg + mm;
                        want[(n * m + oc) * ovol + (od * out[1] + oh) * out[2] + ow] +=
                            xv * wp[(c * cc->mg + mm) * kvol + t];
                    }
            }
        }
    for (int64_t i = 0; i < total; i++) {
        int64_t oc = (i / ovol) % m;
        want[i] = ref_act(want[i] + (bp ? bp[oc] : 0), cc->act, 0, 0);
    }
    char what[128];
    snprintf(what, sizeof what, "%s (pool %d)", cc->name, pool ? tdm_pool_size(pool) : 0);
    assert_int_equal(tdm_tensor_numel(&y[0]), total);
    expect_close(y[0].data, want, total, what);
    free(want);
    tdm_tensor_free(&y[0]);
    tdm_tensor_free(&x);
    tdm_tensor_free(&w);
    tdm_tensor_free(&b);
    tdm_node_clear(&node);
}

static const ct_case k_ct_cases[] = {
    {"basic 3x3", 2, 1, 1, 2, 1, {3, 3}, {3, 3}, {0}, {0}, {0}, {0}, {0}, NULL, false, NULL, {0}},
    {"s2 pads bias",
     2,
     2,
     3,
     4,
     1,
     {5, 6},
     {3, 3},
     {2, 2},
     {0},
     {1, 1, 1, 1},
     {0},
     {0},
     NULL,
     true,
     NULL,
     {0}},
    {"s(3,2) pads(1,2)",
     2,
     1,
     1,
     2,
     1,
     {3, 3},
     {3, 3},
     {3, 2},
     {0},
     {1, 2, 1, 2},
     {0},
     {0},
     NULL,
     false,
     NULL,
     {0}},
    {"s2 output_padding",
     2,
     1,
     2,
     3,
     1,
     {4, 5},
     {3, 3},
     {2, 2},
     {0},
     {1, 1, 1, 1},
     {1, 1},
     {0},
     NULL,
     true,
     "Relu",
     {0}},
    {"dilation2",
     2,
     1,
     2,
     2,
     1,
     {4, 4},
     {3, 3},
     {1, 1},
     {2, 2},
     {0},
     {0},
     {0},
     NULL,
     true,
     NULL,
     {0}},
    {"group2 s2",
     2,
     2,
     4,
     3,
     2,
     {5, 4},
     {4, 4},
     {2, 2},
     {0},
     {1, 1, 1, 1},
     {0},
     {0},
     NULL,
     true,
     NULL,
     {0}},
    {"depthwise-like group4",
     2,
     1,
     4,
     1,
     4,
     {6, 6},
     {2, 2},
     {2, 2},
     {0},
     {0},
     {0},
     {0},
     NULL,
     true,
     NULL,
     {0}},
    {"output_shape extra end",
     2,
     1,
     1,
     2,
     1,
     {3, 3},
     {3, 3},
     {3, 2},
     {0},
     {0},
     {0},
     {10, 8},
     NULL,
     false,
     NULL,
     {0, 0, -1, -1}},
    {"output_shape cropped",
     2,
     1,
     2,
     2,
     1,
     {4, 4},
     {3, 3},
     {2, 2},
     {0},
     {0},
     {0},
     {7, 8},
     NULL,
     true,
     NULL,
     {1, 1, 1, 0}},
    {"SAME_UPPER s2",
     2,
     1,
     1,
     2,
     1,
     {3, 3},
     {3, 3},
     {2, 2},
     {0},
     {0},
     {0},
     {0},
     "SAME_UPPER",
     false,
     NULL,
     {0, 0, 1, 1}},
    {"SAME_LOWER s2",
     2,
     1,
     1,
     2,
     1,
     {3, 3},
     {3, 3},
     {2, 2},
     {0},
     {0},
     {0},
     {0},
     "SAME_LOWER",
     false,
     NULL,
     {1, 1, 0, 0}},
    {"1-D", 1, 1, 1, 2, 1, {3}, {3}, {1}, {0}, {0, 0}, {0}, {0}, NULL, false, NULL, {0}},
    {"1-D s3 pads", 1, 2, 3, 2, 1, {7}, {4}, {3}, {0}, {1, 2}, {2}, {0}, NULL, true, NULL, {0}},
    {"3-D", 3, 1, 1, 2, 1, {3, 4, 5}, {3, 3, 3}, {0}, {0}, {0}, {0}, {0}, NULL, false, NULL, {0}},
    {"3-D s2 pads",
     3,
     1,
     2,
     2,
     2,
     {3, 3, 4},
     {2, 3, 3},
     {2, 2, 1},
     {0},
     {1, 0, 1, 0, 1, 1},
     {1, 0, 0},
     {0},
     NULL,
     true,
     NULL,
     {0}},
    {"many channels multi-tile",
     2,
     1,
     16,
     64,
     1,
     {24, 24},
     {4, 4},
     {2, 2},
     {0},
     {1, 1, 1, 1},
     {0},
     {0},
     NULL,
     true,
     NULL,
     {0}},
    {"batch4 group2",
     2,
     4,
     4,
     2,
     2,
     {5, 5},
     {3, 3},
     {2, 2},
     {0},
     {0, 0, 1, 1},
     {1, 1},
     {0},
     NULL,
     true,
     "Relu",
     {0}},
};

static void test_conv_transpose_cases(void **state)
{
    (void)state;
    tdm_pool *pool = NULL;
    assert_int_equal(tdm_pool_create(3, &pool, NULL), TDM_OK);
    for (size_t i = 0; i < sizeof k_ct_cases / sizeof k_ct_cases[0]; i++) {
        run_ct_case(&k_ct_cases[i], NULL);
        run_ct_case(&k_ct_cases[i], pool);
    }
    tdm_pool_free(pool);
}

/* The ONNX backend example test_convtranspose (all-ones kernel), values written out. */
static void test_conv_transpose_onnx_example(void **state)
{
    (void)state;
    tdm_tensor x, w;
    int64_t xd[4] = {1, 1, 3, 3}, wd[4] = {1, 2, 3, 3};
    assert_int_equal(tdm_tensor_make(&x, TDM_DTYPE_FLOAT32, 4, xd, NULL), TDM_OK);
    assert_int_equal(tdm_tensor_make(&w, TDM_DTYPE_FLOAT32, 4, wd, NULL), TDM_OK);
    for (int i = 0; i < 9; i++)
        ((float *)x.data)[i] = (float)i;
    for (int i = 0; i < 18; i++)
        ((float *)w.data)[i] = 1.f;
    tdm_node node;
    op_node_init(&node, "ConvTranspose", "", 11, 2, 1);
    const tdm_tensor *ins[2] = {&x, &w};
    tdm_tensor y[1];
    assert_int_equal(op_run(&node, ins, 2, y, 1, NULL, NULL), TDM_OK);
    static const float want[25] = {0,  1,  3, 3,  2,  3,  8,  15, 12, 7,  9,  21, 36,
                                   27, 15, 9, 20, 33, 24, 13, 6,  13, 21, 15, 8};
    assert_int_equal(y[0].dims[2], 5);
    assert_int_equal(y[0].dims[3], 5);
    for (int ch = 0; ch < 2; ch++)
        for (int i = 0; i < 25; i++)
            assert_true(((float *)y[0].data)[ch * 25 + i] == want[i]);
    tdm_tensor_free(&y[0]);
    tdm_tensor_free(&x);
    tdm_tensor_free(&w);
    tdm_node_clear(&node);
}

/* ---- errors ------------------------------------------------------------------------ */

/* Runs op `op` (opset 13) on X and W of the given shapes (data only when the
 * shapes are small) after `attrs` adds attributes; returns the status. */
static tdm_status try_op(const char *op, tdm_dtype xdt, int xnd, const int64_t *xd, int wnd,
                         const int64_t *wd, void (*attrs)(tdm_node *), tdm_err *err)
{
    tdm_tensor x, w;
    memset(&x, 0, sizeof x);
    memset(&w, 0, sizeof w);
    tdm_tensor_set_shape(&x, xdt, xnd, xd);
    tdm_tensor_set_shape(&w, TDM_DTYPE_FLOAT32, wnd, wd);
    tdm_node node;
    op_node_init(&node, op, "", 13, 2, 1);
    if (attrs != NULL)
        attrs(&node);
    const tdm_tensor *ins[2] = {&x, &w};
    tdm_tensor y[1];
    tdm_status s = op_run(&node, ins, 2, y, 1, NULL, err);
    assert_int_not_equal(s, TDM_OK); /* every caller expects a failure before run */
    tdm_tensor_free(&y[0]);
    tdm_node_clear(&node);
    return s;
}

static void attrs_none(tdm_node *n)
{
    (void)n;
}
static void attrs_bad_pads(tdm_node *n)
{
    op_attr_ints(n, "pads", (int64_t[]){1, 1, 1}, 3);
}
static void attrs_bad_stride(tdm_node *n)
{
    op_attr_ints(n, "strides", (int64_t[]){0, 1}, 2);
}
static void attrs_huge_dil(tdm_node *n)
{
    op_attr_ints(n, "dilations", (int64_t[]){(int64_t)1 << 40, 1}, 2);
}
static void attrs_bad_act(tdm_node *n)
{
    op_attr_str(n, "tdm_activation", "Swoosh");
}
static void attrs_group3(tdm_node *n)
{
    op_attr_int(n, "group", 3);
}
static void attrs_bad_autopad(tdm_node *n)
{
    op_attr_str(n, "auto_pad", "SAME");
}
static void attrs_bad_kshape(tdm_node *n)
{
    op_attr_ints(n, "kernel_shape", (int64_t[]){5, 5}, 2);
}
static void attrs_neg_pads(tdm_node *n)
{
    op_attr_ints(n, "pads", (int64_t[]){-1, 0, 0, 0}, 4);
}

static void test_conv_errors(void **state)
{
    (void)state;
    tdm_err err = {{0}};
    const int64_t x4[4] = {1, 3, 8, 8}, w4[4] = {2, 4, 3, 3}, w3[4] = {2, 3, 3, 3};
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 4, x4, 4, w4, attrs_none, &err),
                     TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "input channels 3 do not match weight channels 4 x group 1"));
    assert_non_null(strstr(err.msg, "Conv 'test'"));
    assert_int_equal(try_op("Conv", TDM_DTYPE_INT64, 4, x4, 4, w3, attrs_none, &err),
                     TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "int64"));
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 4, x4, 4, w3, attrs_bad_pads, &err),
                     TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "pads"));
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 4, x4, 4, w3, attrs_bad_stride, &err),
                     TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "strides"));
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 4, x4, 4, w3, attrs_huge_dil, &err),
                     TDM_ERR_SHAPE);
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 4, x4, 4, w3, attrs_neg_pads, &err),
                     TDM_ERR_SHAPE);
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 4, x4, 4, w3, attrs_bad_act, &err),
                     TDM_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "Swoosh"));
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 4, x4, 4, w3, attrs_bad_autopad, &err),
                     TDM_ERR_UNSUPPORTED);
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 4, x4, 4, w3, attrs_bad_kshape, &err),
                     TDM_ERR_SHAPE);
    /* group 3: 3 input channels = 1 x 3, but 2 output channels do not split in 3 */
    const int64_t w31[4] = {2, 1, 3, 3};
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 4, x4, 4, w31, attrs_group3, &err),
                     TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "divisible"));
    /* kernel larger than the padded input */
    const int64_t wbig[4] = {2, 3, 9, 3};
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 4, x4, 4, wbig, attrs_none, &err),
                     TDM_ERR_SHAPE);
    /* rank mismatch and unsupported rank */
    const int64_t w5[5] = {2, 3, 3, 3, 3}, x6[6] = {1, 3, 4, 4, 4, 4}, w6[6] = {2, 3, 1, 1, 1, 1};
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 4, x4, 5, w5, attrs_none, &err),
                     TDM_ERR_SHAPE);
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 6, x6, 6, w6, attrs_none, &err),
                     TDM_ERR_UNSUPPORTED);
    /* hostile spatial size (no data is ever touched) */
    const int64_t xhuge[4] = {1, 3, (int64_t)1 << 50, 8};
    assert_int_equal(try_op("Conv", TDM_DTYPE_FLOAT32, 4, xhuge, 4, w3, attrs_none, &err),
                     TDM_ERR_SHAPE);
    /* ConvTranspose: W's first dim must be the input channels */
    assert_int_equal(try_op("ConvTranspose", TDM_DTYPE_FLOAT32, 4, x4, 4, w4, attrs_none, &err),
                     TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "ConvTranspose"));
    const int64_t wt[4] = {3, 2, 3, 3};
    assert_int_equal(try_op("ConvTranspose", TDM_DTYPE_FLOAT32, 4, x4, 4, wt, attrs_bad_pads, &err),
                     TDM_ERR_SHAPE);
    assert_int_equal(try_op("ConvTranspose", TDM_DTYPE_FLOAT32, 4, xhuge, 4, wt, attrs_none, &err),
                     TDM_ERR_SHAPE);
}

/* Bias of the wrong length, and an unknown-rank input at plan time. */
static void test_conv_bias_and_unknown(void **state)
{
    (void)state;
    tdm_tensor x, w, b;
    int64_t xd[4] = {1, 2, 5, 5}, wd[4] = {3, 2, 3, 3}, bd[1] = {2};
    make_rand(&x, 4, xd);
    make_rand(&w, 4, wd);
    make_rand(&b, 1, bd);
    tdm_node node;
    op_node_init(&node, "Conv", "", 13, 3, 1);
    const tdm_tensor *ins[3] = {&x, &w, &b};
    tdm_tensor y[1];
    tdm_err err = {{0}};
    assert_int_equal(op_run(&node, ins, 3, y, 1, NULL, &err), TDM_ERR_SHAPE);
    assert_non_null(strstr(err.msg, "bias"));
    /* Plan-time inference with an unknown-rank X asks to be re-run later. */
    tdm_tensor ux;
    memset(&ux, 0, sizeof ux);
    ux.dtype = TDM_DTYPE_FLOAT32;
    ux.ndim = -1;
    const tdm_tensor *uins[2] = {&ux, &w};
    tdm_tensor out;
    memset(&out, 0, sizeof out);
    tdm_tensor *outs[1] = {&out};
    tdm_scratch sc = {NULL, 0};
    tdm_op_ctx ctx = {&node, 2, uins, 1, outs, NULL, NULL, &sc, &err};
    assert_int_equal(tdm_op_find("", "Conv")->infer(&ctx), TDM_ERR_NEEDS_VALUE);
    /* Unknown batch and spatial dims propagate as -1. */
    int64_t sym[4] = {-1, 2, -1, 7};
    tdm_tensor_set_shape(&ux, TDM_DTYPE_FLOAT32, 4, sym);
    assert_int_equal(tdm_op_find("", "Conv")->infer(&ctx), TDM_OK);
    assert_int_equal(out.dims[0], -1);
    assert_int_equal(out.dims[1], 3);
    assert_int_equal(out.dims[2], -1);
    assert_int_equal(out.dims[3], 5);
    tdm_tensor_free(&x);
    tdm_tensor_free(&w);
    tdm_tensor_free(&b);
    tdm_node_clear(&node);
}

/* ---- the per-node plan cache ---------------------------------------------------------- */

/* One prepared Conv state run on alternating input shapes (and a weight of
 * another shape): each run must plan for its own shapes, never reuse the
 * previous run's plan. */
static void test_conv_plan_cache_shapes(void **state)
{
    (void)state;
    const conv_case cases[] = {
        {"cache a",
         2,
         1,
         4,
         6,
         1,
         {8, 8},
         {3, 3},
         {1, 1},
         {0},
         {1, 1, 1, 1},
         NULL,
         true,
         "Relu",
         0,
         0},
        {"cache b",
         2,
         2,
         4,
         6,
         1,
         {5, 9},
         {3, 3},
         {1, 1},
         {0},
         {1, 1, 1, 1},
         NULL,
         true,
         "Relu",
         0,
         0},
        {"cache c",
         2,
         1,
         4,
         3,
         1,
         {8, 8},
         {3, 3},
         {1, 1},
         {0},
         {1, 1, 1, 1},
         NULL,
         true,
         "Relu",
         0,
         0},
    };
    const tdm_op *op = tdm_op_find("", "Conv");
    assert_non_null(op);
    assert_non_null(op->prepare);
    tdm_node node;
    conv_node(&cases[0], &node);
    tdm_err err = {{0}};
    tdm_scratch scratch = {NULL, 0};
    tdm_op_ctx pctx = {&node, 0, NULL, 0, NULL, NULL, NULL, &scratch, &err};
    assert_int_equal(op->prepare(&pctx), TDM_OK);
    const int order[] = {0, 0, 1, 0, 2, 2, 1, 0};
    for (size_t round = 0; round < sizeof order / sizeof order[0]; round++) {
        const conv_case *cc = &cases[order[round]];
        geo g;
        conv_geometry(cc, &g);
        int64_t xd[4] = {cc->n, cc->c, cc->in[0], cc->in[1]};
        int64_t wd[4] = {cc->m, cc->c, cc->k[0], cc->k[1]}, bd[1] = {cc->m};
        tdm_tensor x, w, b, y;
        make_rand(&x, 4, xd);
        make_rand(&w, 4, wd);
        make_rand(&b, 1, bd);
        memset(&y, 0, sizeof y);
        const tdm_tensor *ins[3] = {&x, &w, &b};
        tdm_tensor *outs[1] = {&y};
        tdm_op_ctx ctx = {&node, 3, ins, 1, outs, pctx.state, NULL, &scratch, &err};
        assert_int_equal(op->infer(&ctx), TDM_OK);
        assert_int_equal(tdm_tensor_alloc(&y, &err), TDM_OK);
        if (op->run(&ctx) != TDM_OK)
            fail_msg("%s: %s", cc->name, err.msg);
        int64_t n = 0;
        double *want = conv_reference(cc, &g, x.data, w.data, b.data, &n);
        assert_int_equal(n, tdm_tensor_numel(&y));
        expect_close(y.data, want, n, cc->name);
        free(want);
        tdm_tensor_free(&y);
        tdm_tensor_free(&x);
        tdm_tensor_free(&w);
        tdm_tensor_free(&b);
    }
    op->release(pctx.state);
    tdm_aligned_free(scratch.p);
    tdm_node_clear(&node);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_cases),
        cmocka_unit_test(test_conv_cases_plain),
        cmocka_unit_test(test_dw_kernels_agree),
        cmocka_unit_test(test_conv_transpose_cases),
        cmocka_unit_test(test_conv_transpose_onnx_example),
        cmocka_unit_test(test_conv_errors),
        cmocka_unit_test(test_conv_bias_and_unknown),
        cmocka_unit_test(test_conv_plan_cache_shapes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
