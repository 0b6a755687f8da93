/*
 * AVX-512 GEMM kernels: an 8 x 48 micro-tile (24 zmm accumulators, three B
 * vectors and one broadcast of A per step, so 28 of 32 registers).
 *
 * Why 8 x 48: measured on Zen 5 against 14x32, 12x32, 6x64, 4x64 and 16x16,
 * all of which reach the FMA peak in the steady state, 8 x 48 has the best
 * load-to-FMA ratio among the shapes that tile the transformer sizes exactly
 * (M = 128 rows, N = 384 and 1536 columns), so it wastes no lanes there.
 * Tiles narrower than 48 columns use one or two vectors, and the last vector
 * of every tile is loaded and stored under a mask, so a column tail costs
 * only its own lanes; row tails use kernels of 1..7 rows. Neither A nor B is
 * copied (see gemm_internal.h); B^T panels are transposed 16 x 16 at a time.
 *
 * The epilogue (alpha, beta, column and row bias, residual, ReLU) is
 * applied to the accumulators before the single store; other activations
 * then run over the tile while it is still in L1. The first tile of each
 * panel prefetches the next panel of B into L2: weights usually come from
 * memory, and measured on a 128 x 1536 x 384 layer with cold weights this
 * lifted 183 to 214 GFLOP/s (the hardware prefetcher does not follow rows
 * one leading dimension apart far enough ahead).
 */
#include <immintrin.h>
#include <stdint.h>

#include "engine/kernels/gemm_internal.h"

#define MR 8
#define NV 3
#define NR (16 * NV)

/* ---- vector math for act_simd.h -------------------------------------------- */
#define SV __m512
#define SM __mmask16
#define SW 16
#define sv_set1(x) _mm512_set1_ps(x)
#define sv_add(a, b) _mm512_add_ps(a, b)
#define sv_sub(a, b) _mm512_sub_ps(a, b)
#define sv_mul(a, b) _mm512_mul_ps(a, b)
#define sv_div(a, b) _mm512_div_ps(a, b)
#define sv_fma(a, b, c) _mm512_fmadd_ps(a, b, c)
#define sv_max(a, b) _mm512_max_ps(a, b)
#define sv_min(a, b) _mm512_min_ps(a, b)
#define sv_abs(a) _mm512_abs_ps(a)
#define sv_neg(a) _mm512_xor_ps(a, _mm512_set1_ps(-0.0f))
#define sv_lt(a, b) _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ)
#define sv_sel(m, a, b) _mm512_mask_blend_ps(m, b, a)
#define sv_round(x) _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)
#define sv_pow2(n)       \
    _mm512_castsi512_ps( \
        _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23))
#define sv_load(p) _mm512_loadu_ps(p)
#define sv_store(p, v) _mm512_storeu_ps(p, v)
#define sv_load_n(p, n) _mm512_maskz_loadu_ps((__mmask16)((1u << (n)) - 1u), p)
#define sv_store_n(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1u), v)
/* rcp14 refined once by Newton: relative error ~1e-8, cheaper than vdivps */
static inline __m512 rcp_nr(__m512 x)
{
    __m512 r = _mm512_rcp14_ps(x);
    return _mm512_mul_ps(r, _mm512_fnmadd_ps(x, r, _mm512_set1_ps(2.0f)));
}
#define sv_rcp(x) rcp_nr(x)
#define SIMD_ACT_NAME act_avx512
#include "engine/kernels/act_simd.h"

/* ---- micro-kernel ------------------------------------------------------------- */

static inline __attribute__((always_inline)) __m512 load_vec(const float *p, int j, int nv,
                                                             __mmask16 last)
{
    return j == nv - 1 ? _mm512_maskz_loadu_ps(last, p) : _mm512_loadu_ps(p);
}

/*
 * One mr x (16 nv) tile. mr and nv are compile-time constants at every call
 * site (see tile()), so the accumulator array lives in registers.
 */
static inline __attribute__((always_inline)) void ukernel(const int mr, const int nv,
                                                          const tdm_gemm_panel *p, int64_t i0,
                                                          __mmask16 last, const float *pf)
{
    __m512 acc[MR][NV];
    const float *ar[MR];
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        ar[i] = p->a + (i0 + i) * p->a_rs;
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++)
            acc[i][j] = _mm512_setzero_ps();
    }
    /* The residual is usually cold (written a whole layer ago): ask for the
     * tile's rows now, so they arrive while the k loop runs. */
    if (p->last && p->res != NULL) {
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++)
#pragma GCC unroll 3
            for (int j = 0; j < nv; j++)
                _mm_prefetch((const char *)(p->res + (i0 + i) * p->ldr + 16 * j), _MM_HINT_T0);
    }
    const float *b = p->b;
    const int64_t ldb = p->ldb, cs = p->a_cs, k = p->k;
    int64_t off = 0;
    for (int64_t q = 0; q < k; q++) {
        __m512 bv[NV];
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++)
            bv[j] = load_vec(b + 16 * j, j, nv, last);
#pragma GCC unroll 8
        for (int i = 0; i < mr; i++) {
            __m512 av = _mm512_set1_ps(ar[i][off]);
#pragma GCC unroll 3
            for (int j = 0; j < nv; j++)
                acc[i][j] = _mm512_fmadd_ps(av, bv[j], acc[i][j]);
        }
        /* Weights streamed from memory: the first tile of a panel pulls the
         * next panel into L2 while the later tiles run from cache. */
        if (pf != NULL) {
            _mm_prefetch((const char *)pf, _MM_HINT_T1);
            _mm_prefetch((const char *)(pf + 16), _MM_HINT_T1);
            _mm_prefetch((const char *)(pf + 32), _MM_HINT_T1);
            pf += p->b_next_ld;
        }
        b += ldb;
        off += cs;
    }

    const __m512 alpha = _mm512_set1_ps(p->alpha), beta = _mm512_set1_ps(p->beta);
    const bool scale = p->alpha != 1.0f;
    const bool accum = p->mode == TDM_GEMM_ACCUM, use_beta = !accum && p->beta != 0.0f;
    const float *bc = p->last ? p->bias_col : NULL;
    const float *br = p->last ? p->bias_row : NULL;
    const float *res = p->last ? p->res : NULL;
    /* ReLU rides on the store (max with 0 maps NaN to 0, as the scalar form
     * does); other activations run over the stored tile below. */
    const bool relu = p->last && p->act == TDM_ACT_RELU;
    __m512 bcv[NV];
    if (bc != NULL) {
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++)
            bcv[j] = load_vec(bc + 16 * j, j, nv, last);
    }
#pragma GCC unroll 8
    for (int i = 0; i < mr; i++) {
        float *c = p->c + (i0 + i) * p->ldc;
        const float *r = res != NULL ? res + (i0 + i) * p->ldr : NULL;
        __m512 rb = _mm512_set1_ps(br != NULL ? br[i0 + i] : 0.0f);
#pragma GCC unroll 3
        for (int j = 0; j < nv; j++) {
            __m512 v = acc[i][j];
            if (scale)
                v = _mm512_mul_ps(v, alpha);
            if (accum)
                v = _mm512_add_ps(v, load_vec(c + 16 * j, j, nv, last));
            else if (use_beta)
                v = _mm512_fmadd_ps(beta, load_vec(c + 16 * j, j, nv, last), v);
            if (bc != NULL)
                v = _mm512_add_ps(v, bcv[j]);
            if (br != NULL)
                v = _mm512_add_ps(v, rb);
            if (r != NULL)
                v = _mm512_add_ps(v, load_vec(r + 16 * j, j, nv, last));
            if (relu)
                v = _mm512_max_ps(v, _mm512_setzero_ps());
            if (j == nv - 1)
                _mm512_mask_storeu_ps(c + 16 * j, last, v);
            else
                _mm512_storeu_ps(c + 16 * j, v);
        }
    }
    if (p->last && p->act != TDM_ACT_NONE && !relu) {
        int64_t n = p->n;
        for (int i = 0; i < mr; i++)
            act_avx512(p->c + (i0 + i) * p->ldc, n, p->act, p->act_alpha, p->act_beta);
    }
}

#define TILE_CASE(r)                          \
    case r:                                   \
        if (nv == 3)                          \
            ukernel(r, 3, p, i0, last, NULL); \
        else if (nv == 2)                     \
            ukernel(r, 2, p, i0, last, NULL); \
        else                                  \
            ukernel(r, 1, p, i0, last, NULL); \
        break

static void panel_avx512(const tdm_gemm_panel *p)
{
    int nv = (int)((p->n + 15) / 16);
    int tail = (int)(p->n - 16 * (nv - 1));
    __mmask16 last = (__mmask16)(tail == 16 ? 0xffffu : (1u << tail) - 1u);
    int64_t i0 = 0;
    for (; i0 + MR <= p->m; i0 += MR) {
        const float *pf = i0 == 0 ? p->b_next : NULL;
        if (nv == 3)
            ukernel(8, 3, p, i0, last, pf);
        else if (nv == 2)
            ukernel(8, 2, p, i0, last, pf);
        else
            ukernel(8, 1, p, i0, last, pf);
    }
    switch (p->m - i0) {
        TILE_CASE(7);
        TILE_CASE(6);
        TILE_CASE(5);
        TILE_CASE(4);
        TILE_CASE(3);
        TILE_CASE(2);
        TILE_CASE(1);
    default: break;
    }
}

/* ---- B^T panel packing ----------------------------------------------------------- */

/* In-register transpose of 16 rows of 16 floats (unpack, then lane shuffles). */
static inline void transpose16(__m512 r[16])
{
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a0 = _mm512_castps_pd(t[4 * i]), a1 = _mm512_castps_pd(t[4 * i + 1]);
        __m512d a2 = _mm512_castps_pd(t[4 * i + 2]), a3 = _mm512_castps_pd(t[4 * i + 3]);
        u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, a2));     /* cols 0 4 8 12 */
        u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, a2)); /* cols 1 5 9 13 */
        u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, a3)); /* cols 2 6 10 14 */
        u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, a3)); /* cols 3 7 11 15 */
    }
    for (int c = 0; c < 4; c++) {
        /* u[c], u[4+c], u[8+c], u[12+c] hold cols c, c+4, c+8, c+12 of row groups 0..3 */
        __m512 v0 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
        __m512 v1 = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
        __m512 w0 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
        __m512 w1 = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
        r[c] = _mm512_shuffle_f32x4(v0, w0, 0x88);
        r[c + 8] = _mm512_shuffle_f32x4(v0, w0, 0xdd);
        r[c + 4] = _mm512_shuffle_f32x4(v1, w1, 0x88);
        r[c + 12] = _mm512_shuffle_f32x4(v1, w1, 0xdd);
    }
}

static void pack_bt_avx512(const float *b, int64_t ldb, int64_t n, int64_t k, float *dst)
{
    for (int64_t j0 = 0; j0 < n; j0 += 16) {
        int64_t jn = n - j0 < 16 ? n - j0 : 16;
        for (int64_t p0 = 0; p0 < k; p0 += 16) {
            int64_t pn = k - p0 < 16 ? k - p0 : 16;
            __mmask16 pm = (__mmask16)(pn == 16 ? 0xffffu : (1u << pn) - 1u);
            __m512 r[16];
            for (int64_t j = 0; j < 16; j++)
                r[j] = j < jn ? _mm512_maskz_loadu_ps(pm, b + (j0 + j) * ldb + p0)
                              : _mm512_setzero_ps();
            transpose16(r);
            for (int64_t q = 0; q < pn; q++)
                _mm512_storeu_ps(dst + (p0 + q) * NR + j0, r[q]);
        }
    }
}

/* ---- one row of C ------------------------------------------------------------------ */

static inline __attribute__((always_inline)) void gemv_store(const tdm_gemm_panel *p, __m512 v,
                                                             int64_t j, __mmask16 m)
{
    float *c = p->c + j;
    if (p->alpha != 1.0f)
        v = _mm512_mul_ps(v, _mm512_set1_ps(p->alpha));
    if (p->mode == TDM_GEMM_ACCUM)
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, c));
    else if (p->beta != 0.0f)
        v = _mm512_fmadd_ps(_mm512_set1_ps(p->beta), _mm512_maskz_loadu_ps(m, c), v);
    if (p->last && p->bias_col != NULL)
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, p->bias_col + j));
    if (p->last && p->bias_row != NULL)
        v = _mm512_add_ps(v, _mm512_set1_ps(p->bias_row[0]));
    if (p->last && p->res != NULL)
        v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, p->res + j));
    _mm512_mask_storeu_ps(c, m, v);
}

/* c[j] = sum_p a[p] b[p, j]: eight accumulators of 16 columns hide the FMA
 * latency; B rows stream through once. */
static void gemv_n(const tdm_gemm_panel *p)
{
    const int64_t n = p->n, k = p->k, ldb = p->ldb, cs = p->a_cs;
    int64_t j = 0;
    for (; j + 128 <= n; j += 128) {
        __m512 acc[8];
        for (int v = 0; v < 8; v++)
            acc[v] = _mm512_setzero_ps();
        const float *b = p->b + j;
        for (int64_t q = 0; q < k; q++, b += ldb) {
            __m512 av = _mm512_set1_ps(p->a[q * cs]);
#pragma GCC unroll 8
            for (int v = 0; v < 8; v++)
                acc[v] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + 16 * v), acc[v]);
        }
        for (int v = 0; v < 8; v++)
            gemv_store(p, acc[v], j + 16 * v, 0xffff);
    }
    for (; j < n; j += 16) {
        int64_t w = n - j < 16 ? n - j : 16;
        __mmask16 m = (__mmask16)(w == 16 ? 0xffffu : (1u << w) - 1u);
        __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
        const float *b = p->b + j;
        int64_t q = 0;
        for (; q + 2 <= k; q += 2, b += 2 * ldb) {
            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(p->a[q * cs]), _mm512_maskz_loadu_ps(m, b), acc0);
            acc1 = _mm512_fmadd_ps(_mm512_set1_ps(p->a[(q + 1) * cs]),
                                   _mm512_maskz_loadu_ps(m, b + ldb), acc1);
        }
        if (q < k)
            acc0 = _mm512_fmadd_ps(_mm512_set1_ps(p->a[q * cs]), _mm512_maskz_loadu_ps(m, b), acc0);
        gemv_store(p, _mm512_add_ps(acc0, acc1), j, m);
    }
}

/* c[j] = dot(a, b[j, :]): four rows of B at a time, two k vectors per step. */
static void gemv_t(const tdm_gemm_panel *p)
{
    const int64_t n = p->n, k = p->k, ldb = p->ldb;
    const float *a = p->a;
    float out[16] = {0};
    int64_t j = 0;
    while (j < n) {
        int64_t cnt = 0;
        for (; cnt < 16 && j + cnt < n; cnt += 4) {
            int rows = n - j - cnt < 4 ? (int)(n - j - cnt) : 4;
            __m512 acc[4][2];
            for (int r = 0; r < 4; r++)
                acc[r][0] = acc[r][1] = _mm512_setzero_ps();
            const float *br[4];
            for (int r = 0; r < 4; r++)
                br[r] = p->b + (j + cnt + (r < rows ? r : 0)) * ldb;
            int64_t q = 0;
            for (; q + 32 <= k; q += 32) {
                __m512 a0 = _mm512_loadu_ps(a + q), a1 = _mm512_loadu_ps(a + q + 16);
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++) {
                    acc[r][0] = _mm512_fmadd_ps(a0, _mm512_loadu_ps(br[r] + q), acc[r][0]);
                    acc[r][1] = _mm512_fmadd_ps(a1, _mm512_loadu_ps(br[r] + q + 16), acc[r][1]);
                }
            }
            for (; q < k; q += 16) {
                int64_t w = k - q < 16 ? k - q : 16;
                __mmask16 m = (__mmask16)(w == 16 ? 0xffffu : (1u << w) - 1u);
                __m512 a0 = _mm512_maskz_loadu_ps(m, a + q);
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++)
                    acc[r][0] = _mm512_fmadd_ps(a0, _mm512_maskz_loadu_ps(m, br[r] + q), acc[r][0]);
            }
            for (int r = 0; r < 4; r++)
                out[cnt + r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
        }
        int64_t w = n - j < 16 ? n - j : 16;
        __mmask16 m = (__mmask16)(w == 16 ? 0xffffu : (1u << w) - 1u);
        gemv_store(p, _mm512_maskz_loadu_ps(m, out), j, m);
        j += w;
    }
}

static void gemv_avx512(const tdm_gemm_panel *p)
{
    if (p->bt)
        gemv_t(p);
    else
        gemv_n(p);
    if (p->last && p->act != TDM_ACT_NONE)
        act_avx512(p->c, p->n, p->act, p->act_alpha, p->act_beta);
}

const tdm_gemm_isa tdm_gemm_isa_avx512 = {
    .name = "avx512",
    .mr = MR,
    .nr = NR,
    .vw = 16,
    .panel = panel_avx512,
    .pack_bt = pack_bt_avx512,
    .gemv = gemv_avx512,
    .act = act_avx512,
    .has_res = true,
};
