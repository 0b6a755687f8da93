/*
 * The SIMD float32 kernels, written once over a small vector vocabulary
 * (V_ADD, V_FMA, V_SEL, ...) and included by math_vec_avx2.c (8 lanes) and
 * math_vec_avx512.c (16 lanes), which define TDM_VEC_W and TDM_VEC_TABLE.
 *
 * Approximations (coefficients fitted by weighted least squares at Chebyshev
 * nodes, then checked against libm over every float in wide ranges):
 *   exp:  n = round(x / ln2), r = x - n ln2 (two-part ln2),
 *         e^r = 1 + r + r^2 Q(r), Q of degree 5; the scale 2^n is applied
 *         as two halves so that results between FLT_MIN and the smallest
 *         denormal are rounded once, and overflow gives +inf.
 *   tanh: |x| < 0.625: x + x s R(s), s = x^2, R of degree 5;
 *         else 1 - 2 / (e^{2|x|} + 1) with the sign of x (|x| capped at 9,
 *         where tanh is 1 in float).
 *   sigmoid: e = e^{-|x|}, 1/(1+e) or e/(1+e): no cancellation either side,
 *         so tiny results keep their relative accuracy.
 *   erf:  |x| < 1: x + x P(x^2), P of degree 6;
 *         else 1 - erfc(|x|), erfc(z) = e^{-z^2} Q(1/z) for z in [1, 10.25],
 *         with z^2 split exactly into hi + lo by an FMA so that the large
 *         exponent does not amplify its rounding error.
 *   gelu: x Phi(x) with Phi = erfc(-x/sqrt2)/2 from the same pieces and the
 *         exponent x^2/2 taken from x itself, so the negative tail keeps its
 *         relative accuracy instead of cancelling in 1 + erf.
 *   gelu (tanh form): x * sigmoid(2u), which equals 0.5 x (1 + tanh u).
 * NaN propagates through every path: clamps use max/min with the data as
 * the second operand, which x86 returns when either operand is NaN.
 */
#ifndef TDM_VEC_W
#error "define TDM_VEC_W (8 or 16) before including math_vec_impl.h"
#endif

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "engine/ops/math_vec.h"

#if TDM_VEC_W == 16
typedef __m512 V;
typedef __m512i VI;
typedef __mmask16 M;
#define V_SET1(c) _mm512_set1_ps(c)
#define V_ZERO() _mm512_setzero_ps()
#define V_LOAD(p) _mm512_loadu_ps(p)
#define V_STORE(p, v) _mm512_storeu_ps((p), (v))
#define V_ADD(a, b) _mm512_add_ps((a), (b))
#define V_SUB(a, b) _mm512_sub_ps((a), (b))
#define V_MUL(a, b) _mm512_mul_ps((a), (b))
#define V_DIV(a, b) _mm512_div_ps((a), (b))
#define V_MIN(a, b) _mm512_min_ps((a), (b))
#define V_MAX(a, b) _mm512_max_ps((a), (b))
#define V_FMA(a, b, c) _mm512_fmadd_ps((a), (b), (c))
#define V_FNMA(a, b, c) _mm512_fnmadd_ps((a), (b), (c))
#define V_FMS(a, b, c) _mm512_fmsub_ps((a), (b), (c))
#define V_AND(a, b) _mm512_and_ps((a), (b))
#define V_OR(a, b) _mm512_or_ps((a), (b))
#define V_XOR(a, b) _mm512_xor_ps((a), (b))
#define V_LT(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_LT_OQ)
#define V_GE(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_GE_OQ)
#define V_EQ(a, b) _mm512_cmp_ps_mask((a), (b), _CMP_EQ_OQ)
#define V_ISNAN(a) _mm512_cmp_ps_mask((a), (a), _CMP_UNORD_Q)
#define M_OR(a, b) ((M)((a) | (b)))
#define M_ANY(m) ((m) != 0)
/* m ? a : b */
#define V_SEL(m, a, b) _mm512_mask_blend_ps((m), (b), (a))
#define V_ROUND(x) _mm512_roundscale_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_CVT_I(x) _mm512_cvtps_epi32(x)
#define VI_SET1(c) _mm512_set1_epi32(c)
#define VI_ADD(a, b) _mm512_add_epi32((a), (b))
#define VI_SUB(a, b) _mm512_sub_epi32((a), (b))
#define VI_SRAI(a, k) _mm512_srai_epi32((a), (k))
#define VI_SLLI(a, k) _mm512_slli_epi32((a), (k))
#define VI_AS_V(a) _mm512_castsi512_ps(a)
#define V_HSUM(v) _mm512_reduce_add_ps(v)
#define V_HMAX(v) _mm512_reduce_max_ps(v)
#define V_HMIN(v) _mm512_reduce_min_ps(v)
#define TDM_VEC_NAME "avx512"
#elif TDM_VEC_W == 8
typedef __m256 V;
typedef __m256i VI;
typedef __m256 M;
#define V_SET1(c) _mm256_set1_ps(c)
#define V_ZERO() _mm256_setzero_ps()
#define V_LOAD(p) _mm256_loadu_ps(p)
#define V_STORE(p, v) _mm256_storeu_ps((p), (v))
#define V_ADD(a, b) _mm256_add_ps((a), (b))
#define V_SUB(a, b) _mm256_sub_ps((a), (b))
#define V_MUL(a, b) _mm256_mul_ps((a), (b))
#define V_DIV(a, b) _mm256_div_ps((a), (b))
#define V_MIN(a, b) _mm256_min_ps((a), (b))
#define V_MAX(a, b) _mm256_max_ps((a), (b))
#define V_FMA(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define V_FNMA(a, b, c) _mm256_fnmadd_ps((a), (b), (c))
#define V_FMS(a, b, c) _mm256_fmsub_ps((a), (b), (c))
#define V_AND(a, b) _mm256_and_ps((a), (b))
#define V_OR(a, b) _mm256_or_ps((a), (b))
#define V_XOR(a, b) _mm256_xor_ps((a), (b))
#define V_LT(a, b) _mm256_cmp_ps((a), (b), _CMP_LT_OQ)
#define V_GE(a, b) _mm256_cmp_ps((a), (b), _CMP_GE_OQ)
#define V_EQ(a, b) _mm256_cmp_ps((a), (b), _CMP_EQ_OQ)
#define V_ISNAN(a) _mm256_cmp_ps((a), (a), _CMP_UNORD_Q)
#define M_OR(a, b) _mm256_or_ps((a), (b))
#define M_ANY(m) (_mm256_movemask_ps(m) != 0)
#define V_SEL(m, a, b) _mm256_blendv_ps((b), (a), (m))
#define V_ROUND(x) _mm256_round_ps((x), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define V_CVT_I(x) _mm256_cvtps_epi32(x)
#define VI_SET1(c) _mm256_set1_epi32(c)
#define VI_ADD(a, b) _mm256_add_epi32((a), (b))
#define VI_SUB(a, b) _mm256_sub_epi32((a), (b))
#define VI_SRAI(a, k) _mm256_srai_epi32((a), (k))
#define VI_SLLI(a, k) _mm256_slli_epi32((a), (k))
#define VI_AS_V(a) _mm256_castsi256_ps(a)
#define TDM_VEC_NAME "avx2"

static inline float v_hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float v_hmax8(__m256 v)
{
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float v_hmin8(__m256 v)
{
    __m128 s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_min_ps(s, _mm_movehl_ps(s, s));
    s = _mm_min_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#define V_HSUM(v) v_hsum8(v)
#define V_HMAX(v) v_hmax8(v)
#define V_HMIN(v) v_hmin8(v)
#else
#error "TDM_VEC_W must be 8 or 16"
#endif

#define W TDM_VEC_W
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
/* Every static function gets the width suffix so both builds can coexist in a debugger. */
#define F(name) CAT(name, TDM_VEC_W)

static inline V F(v_abs)(V x)
{
    return V_AND(x, VI_AS_V(VI_SET1(0x7fffffff)));
}
static inline V F(v_signbit)(V x)
{
    return V_AND(x, VI_AS_V(VI_SET1((int)0x80000000u)));
}

/* NaN-preserving clamp: x86 max/min return the second operand when either is NaN. */
static inline V F(v_clamp)(V x, float lo, float hi)
{
    return V_MIN(V_SET1(hi), V_MAX(V_SET1(lo), x));
}

/* e^x * 2^bias; a bias keeps tiny results normal until the caller's last multiply. */
static inline V F(v_exp_bias)(V x, int bias)
{
    x = F(v_clamp)(x, -104.0f, 89.0f);
    V n = V_ROUND(V_MUL(x, V_SET1(1.44269504088896341f)));
    V r = V_FNMA(n, V_SET1(0.693359375f), x);
    r = V_FNMA(n, V_SET1(-2.12194440e-4f), r);
    V q = V_SET1(1.982649260e-04f);
    q = V_FMA(q, r, V_SET1(1.394603214e-03f));
    q = V_FMA(q, r, V_SET1(8.333430015e-03f));
    q = V_FMA(q, r, V_SET1(4.166627013e-02f));
    q = V_FMA(q, r, V_SET1(1.666666616e-01f));
    q = V_FMA(q, r, V_SET1(5.000000078e-01f));
    V p = V_ADD(V_FMA(q, V_MUL(r, r), r), V_SET1(1.0f));
    /* 2^n as 2^n1 * 2^n2 with both halves normal floats for n in [-150, 128]. */
    VI ni = VI_ADD(V_CVT_I(n), VI_SET1(bias));
    VI n1 = VI_SRAI(ni, 1);
    VI n2 = VI_SUB(ni, n1);
    V s1 = VI_AS_V(VI_SLLI(VI_ADD(n1, VI_SET1(127)), 23));
    V s2 = VI_AS_V(VI_SLLI(VI_ADD(n2, VI_SET1(127)), 23));
    return V_MUL(V_MUL(p, s1), s2);
}

static inline V F(v_exp)(V x)
{
    return F(v_exp_bias)(x, 0);
}

static inline V F(v_tanh)(V x)
{
    V a = F(v_abs)(x);
    V s = V_MUL(x, x);
    V R = V_SET1(2.138226284e-03f);
    R = V_FMA(R, s, V_SET1(-8.171788736e-03f));
    R = V_FMA(R, s, V_SET1(2.169820951e-02f));
    R = V_FMA(R, s, V_SET1(-5.394625285e-02f));
    R = V_FMA(R, s, V_SET1(1.333320134e-01f));
    R = V_FMA(R, s, V_SET1(-3.333333066e-01f));
    V small = V_FMA(V_MUL(x, s), R, x);
    V e = F(v_exp)(V_MUL(V_SET1(2.0f), V_MIN(V_SET1(9.0f), a)));
    V big = V_SUB(V_SET1(1.0f), V_DIV(V_SET1(2.0f), V_ADD(e, V_SET1(1.0f))));
    big = V_OR(big, F(v_signbit)(x));
    return V_SEL(V_LT(a, V_SET1(0.625f)), small, big);
}

static inline V F(v_sigmoid)(V x)
{
    V e = F(v_exp)(V_XOR(F(v_abs)(x), V_SET1(-0.0f)));
    V r = V_DIV(V_SET1(1.0f), V_ADD(V_SET1(1.0f), e));
    return V_SEL(V_GE(x, V_ZERO()), r, V_MUL(e, r));
}

/* erf(x)/x - 1 for x^2 = s in [0, 1]. */
static inline V F(v_erf_p)(V s)
{
    V p = V_SET1(7.847259127e-05f);
    p = V_FMA(p, s, V_SET1(-8.008189323e-04f));
    p = V_FMA(p, s, V_SET1(5.188098889e-03f));
    p = V_FMA(p, s, V_SET1(-2.685369110e-02f));
    p = V_FMA(p, s, V_SET1(1.128358225e-01f));
    p = V_FMA(p, s, V_SET1(-3.761262557e-01f));
    p = V_FMA(p, s, V_SET1(1.283791657e-01f));
    return p;
}

/* erfc(z) * 2^bias for z in [1, 10.25] given z and z^2 = sh + sl (exactly). */
static inline V F(v_erfc_big)(V z, V sh, V sl, int bias)
{
    V t = V_DIV(V_SET1(1.0f), z);
    V q = V_SET1(-4.968663424e-02f);
    q = V_FMA(q, t, V_SET1(3.358851631e-01f));
    q = V_FMA(q, t, V_SET1(-1.005224355e+00f));
    q = V_FMA(q, t, V_SET1(1.731650322e+00f));
    q = V_FMA(q, t, V_SET1(-1.835053636e+00f));
    q = V_FMA(q, t, V_SET1(1.109199289e+00f));
    q = V_FMA(q, t, V_SET1(-1.646373523e-01f));
    q = V_FMA(q, t, V_SET1(-2.563495871e-01f));
    q = V_FMA(q, t, V_SET1(-2.526282364e-03f));
    q = V_FMA(q, t, V_SET1(5.643299998e-01f));
    q = V_FMA(q, t, V_SET1(-3.351571651e-06f));
    V e = F(v_exp_bias)(V_XOR(sh, V_SET1(-0.0f)), bias);
    e = V_FNMA(e, sl, e); /* e^{-sh-sl} = e^{-sh} (1 - sl) */
    return V_MUL(e, q);
}

static inline V F(v_erf)(V x)
{
    V a = F(v_abs)(x);
    V small = V_FMA(x, F(v_erf_p)(V_MUL(x, x)), x);
    V z = F(v_clamp)(a, 1.0f, 10.25f);
    V sh = V_MUL(z, z);
    V sl = V_FMS(z, z, sh);
    V big = V_SUB(V_SET1(1.0f), F(v_erfc_big)(z, sh, sl, 0));
    big = V_OR(big, F(v_signbit)(x));
    return V_SEL(V_LT(a, V_SET1(1.0f)), small, big);
}

static inline V F(v_gelu)(V x)
{
    V z = V_MUL(x, V_SET1(-0.707106781186547524f));
    V a = F(v_abs)(z);
    /* |z| < 1: Phi = (1 - erf(z)) / 2 */
    V erfz = V_FMA(z, F(v_erf_p)(V_MUL(z, z)), z);
    V phi_small = V_FNMA(V_SET1(0.5f), erfz, V_SET1(0.5f));
    /* |z| >= 1: erfc(|z|) with the exponent x^2/2 computed from x exactly,
     * scaled by 2^24 so that the negative tail stays normal until x * E / 2
     * is rounded once */
    V xc = F(v_clamp)(x, -20.0f, 20.0f);
    V xh = V_MUL(xc, xc);
    V xl = V_FMS(xc, xc, xh);
    V E = F(v_erfc_big)(F(v_clamp)(a, 1.0f, 10.25f), V_MUL(xh, V_SET1(0.5f)),
                        V_MUL(xl, V_SET1(0.5f)), 24);
    V y_neg = V_MUL(V_MUL(xc, E), V_SET1(0x1p-25f)); /* -0 at -inf, not -inf * 0 */
    V y_pos = V_MUL(x, V_FNMA(E, V_SET1(0x1p-25f), V_SET1(1.0f)));
    V y_big = V_SEL(V_LT(x, V_ZERO()), y_neg, y_pos);
    return V_SEL(V_LT(a, V_SET1(1.0f)), V_MUL(x, phi_small), y_big);
}

static inline V F(v_gelu_tanh)(V x)
{
    /* 2u = 2 sqrt(2/pi) (x + 0.044715 x^3) */
    V x2 = V_MUL(x, x);
    V u2 =
        V_MUL(x, V_FMA(x2, V_SET1(1.5957691216057308f * 0.044715f), V_SET1(1.5957691216057308f)));
    V y = V_MUL(x, F(v_sigmoid)(u2));
    return V_SEL(V_EQ(x, V_SET1(-INFINITY)), V_SET1(-0.0f), y); /* the limit, not -inf * 0 */
}

static inline V F(v_relu)(V x)
{
    return V_MAX(V_ZERO(), x);
}

/* ---- array drivers ------------------------------------------------------ */

/* Unary driver: full vectors, then the tail through a padded buffer so it
 * sees exactly the same arithmetic. */
#define UNARY_DRIVER(fname, vfn)                                 \
    static void F(fname)(const float *x, float *y, int64_t n)    \
    {                                                            \
        int64_t i = 0;                                           \
        for (; i + 2 * W <= n; i += 2 * W) {                     \
            V a = V_LOAD(x + i), b = V_LOAD(x + i + W);          \
            V_STORE(y + i, vfn(a));                              \
            V_STORE(y + i + W, vfn(b));                          \
        }                                                        \
        for (; i + W <= n; i += W)                               \
            V_STORE(y + i, vfn(V_LOAD(x + i)));                  \
        if (i < n) {                                             \
            float buf[W] = {0};                                  \
            memcpy(buf, x + i, (size_t)(n - i) * sizeof(float)); \
            V_STORE(buf, vfn(V_LOAD(buf)));                      \
            memcpy(y + i, buf, (size_t)(n - i) * sizeof(float)); \
        }                                                        \
    }

UNARY_DRIVER(k_exp, F(v_exp))
UNARY_DRIVER(k_tanh, F(v_tanh))
UNARY_DRIVER(k_sigmoid, F(v_sigmoid))
UNARY_DRIVER(k_erf, F(v_erf))
UNARY_DRIVER(k_gelu, F(v_gelu))
UNARY_DRIVER(k_gelu_tanh, F(v_gelu_tanh))
UNARY_DRIVER(k_relu, F(v_relu))

/* NaN-propagating min/max, element by element the same as the scalar tails. */
static inline V F(v_minnan)(V a, V b)
{
    return V_SEL(M_OR(V_LT(a, b), V_ISNAN(a)), a, b);
}
static inline V F(v_maxnan)(V a, V b)
{
    return V_SEL(M_OR(V_LT(b, a), V_ISNAN(a)), a, b);
}
static inline float F(s_minnan)(float a, float b)
{
    return (a < b || a != a) ? a : b;
}
static inline float F(s_maxnan)(float a, float b)
{
    return (b < a || a != a) ? a : b;
}

#define BINARY_DRIVERS(fname, VOP, SOP)                                                \
    static void F(CAT(fname, vv))(const float *a, const float *b, float *y, int64_t n) \
    {                                                                                  \
        int64_t i = 0;                                                                 \
        for (; i + 2 * W <= n; i += 2 * W) {                                           \
            V r0 = VOP(V_LOAD(a + i), V_LOAD(b + i));                                  \
            V r1 = VOP(V_LOAD(a + i + W), V_LOAD(b + i + W));                          \
            V_STORE(y + i, r0);                                                        \
            V_STORE(y + i + W, r1);                                                    \
        }                                                                              \
        for (; i < n; i++)                                                             \
            y[i] = SOP(a[i], b[i]);                                                    \
    }                                                                                  \
    static void F(CAT(fname, vs))(const float *a, const float *b, float *y, int64_t n) \
    {                                                                                  \
        const float bs = b[0];                                                         \
        const V bv = V_SET1(bs);                                                       \
        int64_t i = 0;                                                                 \
        for (; i + 2 * W <= n; i += 2 * W) {                                           \
            V r0 = VOP(V_LOAD(a + i), bv);                                             \
            V r1 = VOP(V_LOAD(a + i + W), bv);                                         \
            V_STORE(y + i, r0);                                                        \
            V_STORE(y + i + W, r1);                                                    \
        }                                                                              \
        for (; i < n; i++)                                                             \
            y[i] = SOP(a[i], bs);                                                      \
    }                                                                                  \
    static void F(CAT(fname, sv))(const float *a, const float *b, float *y, int64_t n) \
    {                                                                                  \
        const float as = a[0];                                                         \
        const V av = V_SET1(as);                                                       \
        int64_t i = 0;                                                                 \
        for (; i + 2 * W <= n; i += 2 * W) {                                           \
            V r0 = VOP(av, V_LOAD(b + i));                                             \
            V r1 = VOP(av, V_LOAD(b + i + W));                                         \
            V_STORE(y + i, r0);                                                        \
            V_STORE(y + i + W, r1);                                                    \
        }                                                                              \
        for (; i < n; i++)                                                             \
            y[i] = SOP(as, b[i]);                                                      \
    }

#define S_ADD(a, b) ((a) + (b))
#define S_SUB(a, b) ((a) - (b))
#define S_MUL(a, b) ((a) * (b))
#define S_DIV(a, b) ((a) / (b))

BINARY_DRIVERS(k_add, V_ADD, S_ADD)
BINARY_DRIVERS(k_sub, V_SUB, S_SUB)
BINARY_DRIVERS(k_mul, V_MUL, S_MUL)
BINARY_DRIVERS(k_div, V_DIV, S_DIV)
BINARY_DRIVERS(k_min, F(v_minnan), F(s_minnan))
BINARY_DRIVERS(k_max, F(v_maxnan), F(s_maxnan))

/* ---- reductions ---------------------------------------------------------- */

#define SUM_DRIVER(fname, VMAP, SMAP)                                 \
    static float F(fname)(const float *x, int64_t n)                  \
    {                                                                 \
        V s0 = V_ZERO(), s1 = V_ZERO(), s2 = V_ZERO(), s3 = V_ZERO(); \
        int64_t i = 0;                                                \
        for (; i + 4 * W <= n; i += 4 * W) {                          \
            s0 = V_ADD(s0, VMAP(V_LOAD(x + i)));                      \
            s1 = V_ADD(s1, VMAP(V_LOAD(x + i + W)));                  \
            s2 = V_ADD(s2, VMAP(V_LOAD(x + i + 2 * W)));              \
            s3 = V_ADD(s3, VMAP(V_LOAD(x + i + 3 * W)));              \
        }                                                             \
        for (; i + W <= n; i += W)                                    \
            s0 = V_ADD(s0, VMAP(V_LOAD(x + i)));                      \
        float s = V_HSUM(V_ADD(V_ADD(s0, s1), V_ADD(s2, s3)));        \
        for (; i < n; i++)                                            \
            s += SMAP(x[i]);                                          \
        return s;                                                     \
    }

#define M_ID(v) (v)
#define M_SQ(v) V_MUL((v), (v))
#define M_ABS(v) F(v_abs)(v)
#define SM_ID(v) (v)
#define SM_SQ(v) ((v) * (v))
#define SM_ABS(v) fabsf(v)

SUM_DRIVER(k_rsum, M_ID, SM_ID)
SUM_DRIVER(k_rsumsq, M_SQ, SM_SQ)
SUM_DRIVER(k_rasum, M_ABS, SM_ABS)

static float F(k_rmax)(const float *x, int64_t n)
{
    V m0 = V_SET1(-INFINITY), m1 = m0;
    M nan0 = V_ISNAN(V_ZERO()), nan1 = nan0;
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        V a = V_LOAD(x + i), b = V_LOAD(x + i + W);
        m0 = V_MAX(m0, a);
        m1 = V_MAX(m1, b);
        nan0 = M_OR(nan0, V_ISNAN(a));
        nan1 = M_OR(nan1, V_ISNAN(b));
    }
    float m = V_HMAX(V_MAX(m0, m1));
    if (M_ANY(M_OR(nan0, nan1)))
        return NAN;
    for (; i < n; i++) {
        if (x[i] != x[i])
            return NAN;
        m = x[i] > m ? x[i] : m;
    }
    return m;
}

static float F(k_rmin)(const float *x, int64_t n)
{
    V m0 = V_SET1(INFINITY), m1 = m0;
    M nan0 = V_ISNAN(V_ZERO()), nan1 = nan0;
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        V a = V_LOAD(x + i), b = V_LOAD(x + i + W);
        m0 = V_MIN(m0, a);
        m1 = V_MIN(m1, b);
        nan0 = M_OR(nan0, V_ISNAN(a));
        nan1 = M_OR(nan1, V_ISNAN(b));
    }
    float m = V_HMIN(V_MIN(m0, m1));
    if (M_ANY(M_OR(nan0, nan1)))
        return NAN;
    for (; i < n; i++) {
        if (x[i] != x[i])
            return NAN;
        m = x[i] < m ? x[i] : m;
    }
    return m;
}

static float F(k_exp_sum)(const float *x, float shift, float *y, int64_t n)
{
    const V sh = V_SET1(shift);
    V s0 = V_ZERO(), s1 = V_ZERO();
    int64_t i = 0;
    for (; i + 2 * W <= n; i += 2 * W) {
        V e0 = F(v_exp)(V_SUB(V_LOAD(x + i), sh));
        V e1 = F(v_exp)(V_SUB(V_LOAD(x + i + W), sh));
        if (y != NULL) {
            V_STORE(y + i, e0);
            V_STORE(y + i + W, e1);
        }
        s0 = V_ADD(s0, e0);
        s1 = V_ADD(s1, e1);
    }
    for (; i + W <= n; i += W) {
        V e0 = F(v_exp)(V_SUB(V_LOAD(x + i), sh));
        if (y != NULL)
            V_STORE(y + i, e0);
        s0 = V_ADD(s0, e0);
    }
    float s = V_HSUM(V_ADD(s0, s1));
    if (i < n) {
        float buf[W];
        for (int j = 0; j < W; j++)
            buf[j] = i + j < n ? x[i + j] : -INFINITY; /* exp(-inf) = 0 adds nothing */
        V e = F(v_exp)(V_SUB(V_LOAD(buf), sh));
        V_STORE(buf, e);
        for (int64_t j = 0; i + j < n; j++) {
            if (y != NULL)
                y[i + j] = buf[j];
            s += buf[j];
        }
    }
    return s;
}

const tdm_vec_kernels TDM_VEC_TABLE = {
    .name = TDM_VEC_NAME,
    .unary =
        {
            [TDM_VEC_EXP] = F(k_exp),
            [TDM_VEC_TANH] = F(k_tanh),
            [TDM_VEC_SIGMOID] = F(k_sigmoid),
            [TDM_VEC_ERF] = F(k_erf),
            [TDM_VEC_GELU] = F(k_gelu),
            [TDM_VEC_GELU_TANH] = F(k_gelu_tanh),
            [TDM_VEC_RELU] = F(k_relu),
        },
    .binary =
        {
            [TDM_VEC_ADD] = {F(k_add_vv), F(k_add_vs), F(k_add_sv)},
            [TDM_VEC_SUB] = {F(k_sub_vv), F(k_sub_vs), F(k_sub_sv)},
            [TDM_VEC_MUL] = {F(k_mul_vv), F(k_mul_vs), F(k_mul_sv)},
            [TDM_VEC_DIV] = {F(k_div_vv), F(k_div_vs), F(k_div_sv)},
            [TDM_VEC_MIN] = {F(k_min_vv), F(k_min_vs), F(k_min_sv)},
            [TDM_VEC_MAX] = {F(k_max_vv), F(k_max_vs), F(k_max_sv)},
        },
    .reduce =
        {
            [TDM_VEC_RSUM] = F(k_rsum),
            [TDM_VEC_RSUMSQ] = F(k_rsumsq),
            [TDM_VEC_RASUM] = F(k_rasum),
            [TDM_VEC_RMAX] = F(k_rmax),
            [TDM_VEC_RMIN] = F(k_rmin),
        },
    .exp_sum = F(k_exp_sum),
};
