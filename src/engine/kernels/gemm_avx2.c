/*
 * AVX2 + FMA GEMM kernels: a 6 x 16 micro-tile (12 ymm accumulators, two B
 * vectors and one broadcast of A: 15 of 16 registers), the classic shape for
 * two FMA ports with 16 architectural registers. Same structure as the
 * AVX-512 file: operands read in place, tails handled by 1..5-row kernels and
 * a masked last vector (vmaskmov), epilogue fused into the store, activation
 * over the tile while it is in L1.
 */
#include <immintrin.h>
#include <stdint.h>

#include "engine/kernels/gemm_internal.h"

#define MR 6
#define NV 2
#define NR (8 * NV)

static inline __m256i tail_mask(int64_t n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* ---- vector math for act_simd.h -------------------------------------------- */
#define SV __m256
#define SM __m256
#define SW 8
#define sv_set1(x) _mm256_set1_ps(x)
#define sv_add(a, b) _mm256_add_ps(a, b)
#define sv_sub(a, b) _mm256_sub_ps(a, b)
#define sv_mul(a, b) _mm256_mul_ps(a, b)
#define sv_div(a, b) _mm256_div_ps(a, b)
#define sv_fma(a, b, c) _mm256_fmadd_ps(a, b, c)
#define sv_max(a, b) _mm256_max_ps(a, b)
#define sv_min(a, b) _mm256_min_ps(a, b)
#define sv_abs(a) _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a)
#define sv_neg(a) _mm256_xor_ps(a, _mm256_set1_ps(-0.0f))
#define sv_lt(a, b) _mm256_cmp_ps(a, b, _CMP_LT_OQ)
#define sv_sel(m, a, b) _mm256_blendv_ps(b, a, m)
#define sv_round(x) _mm256_round_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define sv_pow2(n)       \
    _mm256_castsi256_ps( \
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23))
#define sv_load(p) _mm256_loadu_ps(p)
#define sv_store(p, v) _mm256_storeu_ps(p, v)
#define sv_load_n(p, n) _mm256_maskload_ps(p, tail_mask(n))
#define sv_store_n(p, v, n) _mm256_maskstore_ps(p, tail_mask(n), v)
#define SIMD_ACT_NAME act_avx2
#include "engine/kernels/act_simd.h"

/* ---- micro-kernel ------------------------------------------------------------- */

static inline __attribute__((always_inline)) __m256 load_vec(const float *p, int j, int nv,
                                                             bool full, __m256i last)
{
    return (j == nv - 1 && !full) ? _mm256_maskload_ps(p, last) : _mm256_loadu_ps(p);
}

static inline __attribute__((always_inline)) void store_vec(float *p, __m256 v, int j, int nv,
                                                            bool full, __m256i last)
{
    if (j == nv - 1 && !full)
        _mm256_maskstore_ps(p, last, v);
    else
        _mm256_storeu_ps(p, v);
}

static inline __attribute__((always_inline)) void ukernel(const int mr, const int nv,
                                                          const bool full, const tdm_gemm_panel *p,
                                                          int64_t i0, __m256i last)
{
    __m256 acc[MR][NV];
    const float *ar[MR];
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        ar[i] = p->a + (i0 + i) * p->a_rs;
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++)
            acc[i][j] = _mm256_setzero_ps();
    }
    const float *b = p->b;
    const int64_t ldb = p->ldb, cs = p->a_cs, k = p->k;
    int64_t off = 0;
    for (int64_t q = 0; q < k; q++) {
        __m256 bv[NV];
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++)
            bv[j] = load_vec(b + 8 * j, j, nv, full, last);
#pragma GCC unroll 6
        for (int i = 0; i < mr; i++) {
            __m256 av = _mm256_broadcast_ss(ar[i] + off);
#pragma GCC unroll 2
            for (int j = 0; j < nv; j++)
                acc[i][j] = _mm256_fmadd_ps(av, bv[j], acc[i][j]);
        }
        b += ldb;
        off += cs;
    }

    const __m256 alpha = _mm256_set1_ps(p->alpha), beta = _mm256_set1_ps(p->beta);
    const bool scale = p->alpha != 1.0f;
    const bool accum = p->mode == TDM_GEMM_ACCUM, use_beta = !accum && p->beta != 0.0f;
    const float *bc = p->last ? p->bias_col : NULL;
    const float *br = p->last ? p->bias_row : NULL;
    const bool relu = p->last && p->act == TDM_ACT_RELU; /* on the store, as in act_avx2 */
#pragma GCC unroll 6
    for (int i = 0; i < mr; i++) {
        float *c = p->c + (i0 + i) * p->ldc;
#pragma GCC unroll 2
        for (int j = 0; j < nv; j++) {
            __m256 v = acc[i][j];
            if (scale)
                v = _mm256_mul_ps(v, alpha);
            if (accum)
                v = _mm256_add_ps(v, load_vec(c + 8 * j, j, nv, full, last));
            else if (use_beta)
                v = _mm256_fmadd_ps(beta, load_vec(c + 8 * j, j, nv, full, last), v);
            if (bc != NULL)
                v = _mm256_add_ps(v, load_vec(bc + 8 * j, j, nv, full, last));
            if (br != NULL)
                v = _mm256_add_ps(v, _mm256_set1_ps(br[i0 + i]));
            if (relu)
                v = _mm256_max_ps(v, _mm256_setzero_ps());
            store_vec(c + 8 * j, v, j, nv, full, last);
        }
    }
    if (p->last && p->act != TDM_ACT_NONE && !relu) {
        for (int i = 0; i < mr; i++)
            act_avx2(p->c + (i0 + i) * p->ldc, p->n, p->act, p->act_alpha, p->act_beta);
    }
}

#define TILE_CASE(r)                           \
    case r:                                    \
        if (nv == 2)                           \
            ukernel(r, 2, false, p, i0, last); \
        else                                   \
            ukernel(r, 1, false, p, i0, last); \
        break

static void panel_avx2(const tdm_gemm_panel *p)
{
    int nv = (int)((p->n + 7) / 8);
    int tail = (int)(p->n - 8 * (nv - 1));
    __m256i last = tail_mask(tail);
    int64_t i0 = 0;
    if (p->n == NR) {
        for (; i0 + MR <= p->m; i0 += MR)
            ukernel(MR, 2, true, p, i0, last);
    } else {
        for (; i0 + MR <= p->m; i0 += MR) {
            if (nv == 2)
                ukernel(MR, 2, false, p, i0, last);
            else
                ukernel(MR, 1, false, p, i0, last);
        }
    }
    switch (p->m - i0) {
        TILE_CASE(5);
        TILE_CASE(4);
        TILE_CASE(3);
        TILE_CASE(2);
        TILE_CASE(1);
    default: break;
    }
}

/* B^T panel: 8 x 8 in-register transposes. */
static void pack_bt_avx2(const float *b, int64_t ldb, int64_t n, int64_t k, float *dst)
{
    for (int64_t j0 = 0; j0 < n; j0 += 8) {
        int64_t jn = n - j0 < 8 ? n - j0 : 8;
        for (int64_t p0 = 0; p0 < k; p0 += 8) {
            int64_t pn = k - p0 < 8 ? k - p0 : 8;
            __m256i pm = tail_mask(pn);
            __m256 r[8], t[8], u[8];
            for (int64_t j = 0; j < 8; j++)
                r[j] =
                    j < jn ? _mm256_maskload_ps(b + (j0 + j) * ldb + p0, pm) : _mm256_setzero_ps();
            for (int i = 0; i < 4; i++) {
                t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
                t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
            }
            for (int i = 0; i < 2; i++) {
                u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
                u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
                u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
                u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
            }
            for (int c = 0; c < 4; c++) {
                r[c] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x20);
                r[c + 4] = _mm256_permute2f128_ps(u[c], u[4 + c], 0x31);
            }
            for (int64_t q = 0; q < pn; q++)
                _mm256_storeu_ps(dst + (p0 + q) * NR + j0, r[q]);
        }
    }
}

/* ---- one row of C ------------------------------------------------------------------ */

static void gemv_store(const tdm_gemm_panel *p, __m256 v, int64_t j, int64_t w)
{
    float *c = p->c + j;
    __m256i m = tail_mask(w);
    if (p->alpha != 1.0f)
        v = _mm256_mul_ps(v, _mm256_set1_ps(p->alpha));
    if (p->mode == TDM_GEMM_ACCUM)
        v = _mm256_add_ps(v, _mm256_maskload_ps(c, m));
    else if (p->beta != 0.0f)
        v = _mm256_fmadd_ps(_mm256_set1_ps(p->beta), _mm256_maskload_ps(c, m), v);
    if (p->last && p->bias_col != NULL)
        v = _mm256_add_ps(v, _mm256_maskload_ps(p->bias_col + j, m));
    if (p->last && p->bias_row != NULL)
        v = _mm256_add_ps(v, _mm256_set1_ps(p->bias_row[0]));
    _mm256_maskstore_ps(c, m, v);
}

static float hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static void gemv_n(const tdm_gemm_panel *p)
{
    const int64_t n = p->n, k = p->k, ldb = p->ldb, cs = p->a_cs;
    int64_t j = 0;
    for (; j + 64 <= n; j += 64) {
        __m256 acc[8];
        for (int v = 0; v < 8; v++)
            acc[v] = _mm256_setzero_ps();
        const float *b = p->b + j;
        for (int64_t q = 0; q < k; q++, b += ldb) {
            __m256 av = _mm256_set1_ps(p->a[q * cs]);
#pragma GCC unroll 8
            for (int v = 0; v < 8; v++)
                acc[v] = _mm256_fmadd_ps(av, _mm256_loadu_ps(b + 8 * v), acc[v]);
        }
        for (int v = 0; v < 8; v++)
            gemv_store(p, acc[v], j + 8 * v, 8);
    }
    for (; j < n; j += 8) {
        int64_t w = n - j < 8 ? n - j : 8;
        __m256i m = tail_mask(w);
        __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
        const float *b = p->b + j;
        int64_t q = 0;
        for (; q + 2 <= k; q += 2, b += 2 * ldb) {
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(p->a[q * cs]), _mm256_maskload_ps(b, m), acc0);
            acc1 = _mm256_fmadd_ps(_mm256_set1_ps(p->a[(q + 1) * cs]),
                                   _mm256_maskload_ps(b + ldb, m), acc1);
        }
        if (q < k)
            acc0 = _mm256_fmadd_ps(_mm256_set1_ps(p->a[q * cs]), _mm256_maskload_ps(b, m), acc0);
        gemv_store(p, _mm256_add_ps(acc0, acc1), j, w);
    }
}

static void gemv_t(const tdm_gemm_panel *p)
{
    const int64_t n = p->n, k = p->k, ldb = p->ldb;
    const float *a = p->a;
    float out[8] = {0};
    for (int64_t j = 0; j < n; j += 8) {
        int64_t w = n - j < 8 ? n - j : 8;
        for (int64_t cnt = 0; cnt < w; cnt += 4) {
            __m256 acc[4][2];
            const float *br[4];
            for (int r = 0; r < 4; r++) {
                acc[r][0] = acc[r][1] = _mm256_setzero_ps();
                br[r] = p->b + (j + (cnt + r < w ? cnt + r : cnt)) * ldb;
            }
            int64_t q = 0;
            for (; q + 16 <= k; q += 16) {
                __m256 a0 = _mm256_loadu_ps(a + q), a1 = _mm256_loadu_ps(a + q + 8);
                for (int r = 0; r < 4; r++) {
                    acc[r][0] = _mm256_fmadd_ps(a0, _mm256_loadu_ps(br[r] + q), acc[r][0]);
                    acc[r][1] = _mm256_fmadd_ps(a1, _mm256_loadu_ps(br[r] + q + 8), acc[r][1]);
                }
            }
            for (; q < k; q += 8) {
                __m256i m = tail_mask(k - q < 8 ? k - q : 8);
                __m256 a0 = _mm256_maskload_ps(a + q, m);
                for (int r = 0; r < 4; r++)
                    acc[r][0] = _mm256_fmadd_ps(a0, _mm256_maskload_ps(br[r] + q, m), acc[r][0]);
            }
            for (int r = 0; r < 4; r++)
                out[cnt + r] = hsum(_mm256_add_ps(acc[r][0], acc[r][1]));
        }
        gemv_store(p, _mm256_loadu_ps(out), j, w);
    }
}

static void gemv_avx2(const tdm_gemm_panel *p)
{
    if (p->bt)
        gemv_t(p);
    else
        gemv_n(p);
    if (p->last && p->act != TDM_ACT_NONE)
        act_avx2(p->c, p->n, p->act, p->act_alpha, p->act_beta);
}

const tdm_gemm_isa tdm_gemm_isa_avx2 = {
    .name = "avx2",
    .mr = MR,
    .nr = NR,
    .vw = 8,
    .panel = panel_avx2,
    .pack_bt = pack_bt_avx2,
    .gemv = gemv_avx2,
    .act = act_avx2,
};
