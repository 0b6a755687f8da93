/*
 * Vector activations, written once over a small set of vector macros and
 * included by each SIMD kernel file (gemm_avx512.c, gemm_avx2.c,
 * gemm_neon.c) after it defines them for its own registers. A template
 * rather than a library because each copy must be compiled with its file's
 * target flags, and function pointers per vector would cost more than the
 * math.
 *
 * The including file defines:
 *   SV            vector of SW floats; SM its comparison result
 *   sv_set1(x) sv_add sv_sub sv_mul sv_div sv_fma(a,b,c)=a*b+c
 *   sv_max sv_min sv_abs sv_neg
 *   sv_lt(a,b) -> SM, sv_sel(m,a,b) = m ? a : b
 *   sv_round(x)   round to nearest integer (as float)
 *   sv_pow2(n)    2^n for integer-valued n in [-126, 127]
 *   sv_load(p) sv_store(p,v), sv_load_n(p,n) sv_store_n(p,v,n) for n < SW
 *   SIMD_ACT_NAME the name of the generated tdm_act_apply kernel
 *
 * Accuracy (checked in tests/engine/test_gemm.c against double precision):
 * exp about 2 ulp; GELU is the exact erf form within 5e-7 relative over the
 * whole float range where it is not below 1e-30, because it is computed as
 * 0.5 x erfc(-x/sqrt 2) with erfc evaluated directly for the tail (never as
 * 1 + erf, which cancels for negative x) and with -z^2 split into two floats
 * before the exponential; tanh and sigmoid are within a few ulp.
 */

/* 1/x; a file may define it faster than a division (reciprocal estimate
 * refined by Newton's method) if it stays within 2 ulp. */
#ifndef sv_rcp
#define sv_rcp(x) sv_div(sv_set1(1.0f), x)
#endif

/* exp(c - hi - lo) where hi >= 0 may be large and c, lo are small: reducing
 * hi exactly against n*ln2 before adding c keeps the relative error near one
 * ulp even when hi is 80 (Cody-Waite with ln2 split in two). */
static inline SV sv_exp3(SV hi, SV c, SV lo)
{
    SV y = sv_sub(c, hi);
    y = sv_max(y, sv_set1(-87.0f));
    SV fx = sv_round(sv_mul(y, sv_set1(1.44269504088896341f)));
    SV r = sv_fma(fx, sv_set1(-0.693359375f), sv_neg(hi));
    r = sv_fma(fx, sv_set1(2.12194440e-4f), r);
    r = sv_add(r, c);
    r = sv_sub(r, lo);
    SV z = sv_mul(r, r);
    SV p = sv_set1(1.9875691500e-4f);
    p = sv_fma(p, r, sv_set1(1.3981999507e-3f));
    p = sv_fma(p, r, sv_set1(8.3334519073e-3f));
    p = sv_fma(p, r, sv_set1(4.1665795894e-2f));
    p = sv_fma(p, r, sv_set1(1.6666665459e-1f));
    p = sv_fma(p, r, sv_set1(5.0000001201e-1f));
    p = sv_fma(p, z, r);
    p = sv_add(p, sv_set1(1.0f));
    return sv_mul(p, sv_pow2(fx));
}

/* exp(x), x clamped to [-87, 88] (results saturate near 1e-38 and 1.6e38). */
static inline SV sv_exp(SV x)
{
    x = sv_min(sv_max(x, sv_set1(-87.0f)), sv_set1(88.0f));
    SV zero = sv_set1(0.0f);
    return sv_exp3(sv_neg(x), zero, zero);
}

static inline SV sv_sigmoid(SV x)
{
    SV one = sv_set1(1.0f);
    return sv_rcp(sv_add(one, sv_exp(sv_neg(x))));
}

/* tanh: odd Taylor series below 0.55 (where 1 - 2/(e^2x + 1) would cancel),
 * the exponential form above, saturated at 9 where tanh rounds to 1. */
static inline SV sv_tanh(SV x)
{
    SV ax = sv_min(sv_abs(x), sv_set1(9.0f));
    SV x2 = sv_mul(ax, ax);
    SV p = sv_set1(-929569.0f / 638512875.0f);
    p = sv_fma(p, x2, sv_set1(21844.0f / 6081075.0f));
    p = sv_fma(p, x2, sv_set1(-1382.0f / 155925.0f));
    p = sv_fma(p, x2, sv_set1(62.0f / 2835.0f));
    p = sv_fma(p, x2, sv_set1(-17.0f / 315.0f));
    p = sv_fma(p, x2, sv_set1(2.0f / 15.0f));
    p = sv_fma(p, x2, sv_set1(-1.0f / 3.0f));
    SV small = sv_fma(sv_mul(p, x2), ax, ax);
    SV one = sv_set1(1.0f);
    SV e = sv_exp(sv_add(ax, ax));
    SV big = sv_sub(one, sv_div(sv_set1(2.0f), sv_add(e, one)));
    SV t = sv_sel(sv_lt(ax, sv_set1(0.55f)), small, big);
    return sv_sel(sv_lt(x, sv_set1(0.0f)), sv_neg(t), t);
}

/* GELU(x) = 0.5 x erfc(-x / sqrt 2). erfc(a), a >= 0, is Numerical Recipes'
 * Chebyshev form t exp(-a^2 + P(t)), t = 1/(1 + a/2), fractional error below
 * 1.2e-7; for negative arguments erfc(-a) = 2 - erfc(a). z = -x/sqrt 2 is
 * carried as zh + zl so that rounding z does not cost 2 z^2 ulp in the tail. */
static inline SV sv_gelu(SV x)
{
    const float c = 0.70710678118654752f;
    const float c_lo = 1.2101617e-08f; /* 1/sqrt(2) - c */
    SV zh = sv_mul(sv_neg(x), sv_set1(c));
    SV zl = sv_sub(sv_fma(sv_neg(x), sv_set1(c), sv_neg(zh)), sv_mul(x, sv_set1(c_lo)));
    SV zero = sv_set1(0.0f);
    SM neg = sv_lt(zh, zero);
    SV a = sv_abs(zh);
    SV al = sv_sel(neg, sv_neg(zl), zl);
    a = sv_min(a, sv_set1(9.25f));
    SV hi = sv_mul(a, a);
    SV lo = sv_fma(a, a, sv_neg(hi));
    lo = sv_fma(sv_add(a, a), al, lo);
    SV one = sv_set1(1.0f);
    SV t = sv_rcp(sv_fma(a, sv_set1(0.5f), one));
    SV p = sv_set1(0.17087277f);
    p = sv_fma(p, t, sv_set1(-0.82215223f));
    p = sv_fma(p, t, sv_set1(1.48851587f));
    p = sv_fma(p, t, sv_set1(-1.13520398f));
    p = sv_fma(p, t, sv_set1(0.27886807f));
    p = sv_fma(p, t, sv_set1(-0.18628806f));
    p = sv_fma(p, t, sv_set1(0.09678418f));
    p = sv_fma(p, t, sv_set1(0.37409196f));
    p = sv_fma(p, t, sv_set1(1.00002368f));
    p = sv_fma(p, t, sv_set1(-1.26551223f));
    SV e = sv_mul(t, sv_exp3(hi, p, lo));
    /* erfc(9.25) < 1e-37: the tail is zero (and a was clamped above). */
    e = sv_sel(sv_lt(a, sv_set1(9.25f)), e, zero);
    SV r = sv_sel(neg, sv_sub(sv_set1(2.0f), e), e);
    return sv_mul(sv_mul(x, sv_set1(0.5f)), r);
}

static inline SV sv_act(SV v, tdm_act act, float alpha, float beta)
{
    SV zero = sv_set1(0.0f), one = sv_set1(1.0f);
    switch (act) {
    case TDM_ACT_NONE: return v;
    case TDM_ACT_RELU: return sv_max(v, zero);
    case TDM_ACT_LEAKY_RELU: return sv_sel(sv_lt(v, zero), sv_mul(v, sv_set1(alpha)), v);
    case TDM_ACT_CLIP: return sv_min(sv_max(v, sv_set1(alpha)), sv_set1(beta));
    case TDM_ACT_SIGMOID: return sv_sigmoid(v);
    case TDM_ACT_TANH: return sv_tanh(v);
    case TDM_ACT_GELU: return sv_gelu(v);
    case TDM_ACT_HARD_SIGMOID:
        return sv_min(sv_max(sv_fma(v, sv_set1(alpha), sv_set1(beta)), zero), one);
    case TDM_ACT_HARD_SWISH: {
        SV y = sv_fma(v, sv_set1(1.0f / 6.0f), sv_set1(0.5f));
        return sv_mul(v, sv_min(sv_max(y, zero), one));
    }
    }
    return v;
}

/* The switch is hoisted out of the loop by specialising per activation. */
#define SIMD_ACT_LOOP(KIND)                                                               \
    do {                                                                                  \
        int64_t i = 0;                                                                    \
        for (; i + SW <= n; i += SW)                                                      \
            sv_store(x + i, sv_act(sv_load(x + i), KIND, alpha, beta));                   \
        if (i < n)                                                                        \
            sv_store_n(x + i, sv_act(sv_load_n(x + i, n - i), KIND, alpha, beta), n - i); \
    } while (0)

static void SIMD_ACT_NAME(float *x, int64_t n, tdm_act act, float alpha, float beta)
{
    switch (act) {
    case TDM_ACT_NONE: return;
    case TDM_ACT_RELU: SIMD_ACT_LOOP(TDM_ACT_RELU); return;
    case TDM_ACT_LEAKY_RELU: SIMD_ACT_LOOP(TDM_ACT_LEAKY_RELU); return;
    case TDM_ACT_CLIP: SIMD_ACT_LOOP(TDM_ACT_CLIP); return;
    case TDM_ACT_SIGMOID: SIMD_ACT_LOOP(TDM_ACT_SIGMOID); return;
    case TDM_ACT_TANH: SIMD_ACT_LOOP(TDM_ACT_TANH); return;
    case TDM_ACT_GELU: SIMD_ACT_LOOP(TDM_ACT_GELU); return;
    case TDM_ACT_HARD_SIGMOID: SIMD_ACT_LOOP(TDM_ACT_HARD_SIGMOID); return;
    case TDM_ACT_HARD_SWISH: SIMD_ACT_LOOP(TDM_ACT_HARD_SWISH); return;
    }
}

#undef SIMD_ACT_LOOP
