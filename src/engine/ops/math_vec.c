/*
 * Portable float32 math kernels and the run-time choice among the builds.
 *
 * The portable kernels lean on libm (correctly rounded or nearly so), which
 * makes them the reference the SIMD builds are tested against as well as the
 * fallback on CPUs without AVX2. Loops are kept simple so that the compiler
 * can vectorise the cheap ones at the baseline ISA.
 */
#include "engine/ops/math_vec.h"

#include <math.h>
#include <stddef.h>

#include "base/cpu.h"

static void p_exp(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = expf(x[i]);
}

static void p_tanh(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = tanhf(x[i]);
}

static float sigmoid1(float x)
{
    float e = expf(-fabsf(x));
    float r = 1.0f / (1.0f + e);
    return x >= 0 ? r : e * r;
}

static void p_sigmoid(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = sigmoid1(x[i]);
}

static void p_erf(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = erff(x[i]);
}

static void p_gelu(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        y[i] = v == -INFINITY ? -0.0f : (float)(0.5 * v * erfc(-v * 0.70710678118654752440));
    }
}

static void p_gelu_tanh(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        float u2 = v * (1.5957691216057308f + 1.5957691216057308f * 0.044715f * v * v);
        y[i] = v == -INFINITY ? -0.0f : v * sigmoid1(u2);
    }
}

static void p_relu(const float *x, float *y, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > 0 || x[i] != x[i] ? x[i] : 0.0f;
}

#define S_ADD(a, b) ((a) + (b))
#define S_SUB(a, b) ((a) - (b))
#define S_MUL(a, b) ((a) * (b))
#define S_DIV(a, b) ((a) / (b))
#define S_MIN(a, b) (((a) < (b) || (a) != (a)) ? (a) : (b))
#define S_MAX(a, b) (((b) < (a) || (a) != (a)) ? (a) : (b))

#define P_BINARY(name, OP)                                                     \
    static void name##_vv(const float *a, const float *b, float *y, int64_t n) \
    {                                                                          \
        for (int64_t i = 0; i < n; i++)                                        \
            y[i] = OP(a[i], b[i]);                                             \
    }                                                                          \
    static void name##_vs(const float *a, const float *b, float *y, int64_t n) \
    {                                                                          \
        const float s = b[0];                                                  \
        for (int64_t i = 0; i < n; i++)                                        \
            y[i] = OP(a[i], s);                                                \
    }                                                                          \
    static void name##_sv(const float *a, const float *b, float *y, int64_t n) \
    {                                                                          \
        const float s = a[0];                                                  \
        for (int64_t i = 0; i < n; i++)                                        \
            y[i] = OP(s, b[i]);                                                \
    }

P_BINARY(p_add, S_ADD)
P_BINARY(p_sub, S_SUB)
P_BINARY(p_mul, S_MUL)
P_BINARY(p_div, S_DIV)
P_BINARY(p_min, S_MIN)
P_BINARY(p_max, S_MAX)

/* Eight partial sums: the same association as a vector build, and far more
 * accurate than one running sum over long rows. */
#define P_SUM(name, MAP)                                                             \
    static float name(const float *x, int64_t n)                                     \
    {                                                                                \
        float s[8] = {0};                                                            \
        int64_t i = 0;                                                               \
        for (; i + 8 <= n; i += 8)                                                   \
            for (int j = 0; j < 8; j++)                                              \
                s[j] += MAP(x[i + j]);                                               \
        float t = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])); \
        for (; i < n; i++)                                                           \
            t += MAP(x[i]);                                                          \
        return t;                                                                    \
    }
#define MAP_ID(v) (v)
#define MAP_SQ(v) ((v) * (v))
#define MAP_ABS(v) fabsf(v)
P_SUM(p_rsum, MAP_ID)
P_SUM(p_rsumsq, MAP_SQ)
P_SUM(p_rasum, MAP_ABS)

static float p_rmax(const float *x, int64_t n)
{
    float m = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] != x[i])
            return NAN;
        m = x[i] > m ? x[i] : m;
    }
    return m;
}

static float p_rmin(const float *x, int64_t n)
{
    float m = INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] != x[i])
            return NAN;
        m = x[i] < m ? x[i] : m;
    }
    return m;
}

static float p_exp_sum(const float *x, float shift, float *y, int64_t n)
{
    float s = 0;
    for (int64_t i = 0; i < n; i++) {
        float e = expf(x[i] - shift);
        if (y != NULL)
            y[i] = e;
        s += e;
    }
    return s;
}

static const tdm_vec_kernels k_portable = {
    .name = "portable",
    .unary =
        {
            [TDM_VEC_EXP] = p_exp,
            [TDM_VEC_TANH] = p_tanh,
            [TDM_VEC_SIGMOID] = p_sigmoid,
            [TDM_VEC_ERF] = p_erf,
            [TDM_VEC_GELU] = p_gelu,
            [TDM_VEC_GELU_TANH] = p_gelu_tanh,
            [TDM_VEC_RELU] = p_relu,
        },
    .binary =
        {
            [TDM_VEC_ADD] = {p_add_vv, p_add_vs, p_add_sv},
            [TDM_VEC_SUB] = {p_sub_vv, p_sub_vs, p_sub_sv},
            [TDM_VEC_MUL] = {p_mul_vv, p_mul_vs, p_mul_sv},
            [TDM_VEC_DIV] = {p_div_vv, p_div_vs, p_div_sv},
            [TDM_VEC_MIN] = {p_min_vv, p_min_vs, p_min_sv},
            [TDM_VEC_MAX] = {p_max_vv, p_max_vs, p_max_sv},
        },
    .reduce =
        {
            [TDM_VEC_RSUM] = p_rsum,
            [TDM_VEC_RSUMSQ] = p_rsumsq,
            [TDM_VEC_RASUM] = p_rasum,
            [TDM_VEC_RMAX] = p_rmax,
            [TDM_VEC_RMIN] = p_rmin,
        },
    .exp_sum = p_exp_sum,
};

const tdm_vec_kernels *tdm_vec_level(int level)
{
    const tdm_cpu *cpu = tdm_cpu_get();
    switch (level) {
    case 0: return &k_portable;
#if defined(TDM_X86)
    case 1: return cpu->avx2_fma ? &tdm_vec_kernels_avx2 : NULL;
    case 2: return cpu->avx512 ? &tdm_vec_kernels_avx512 : NULL;
#endif
    default: (void)cpu; return NULL;
    }
}

const tdm_vec_kernels *tdm_vec_get(void)
{
    for (int level = 2; level > 0; level--) {
        const tdm_vec_kernels *k = tdm_vec_level(level);
        if (k != NULL)
            return k;
    }
    return &k_portable;
}
