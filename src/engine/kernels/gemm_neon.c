/*
 * NEON (AArch64) GEMM kernels: an 8 x 12 micro-tile, 24 q-register
 * accumulators, three B vectors and A values as scalar operands of
 * fmla-by-element, 29 of the 32 vector registers, the usual shape for
 * Cortex-A7x/Neoverse cores with two or four 128-bit FMA pipes.
 *
 * Same contract as the x86 kernels (gemm_internal.h): A and B read in place,
 * row tails by kernels of 1..7 rows, epilogue applied before the single
 * store, activation over the tile while it is in L1. NEON has no masked
 * loads, so a panel narrower than 12 columns (or a column count that is not
 * a multiple of 4) goes through a variant whose last vector is assembled
 * lane by lane; that only happens on the last panel of a row block.
 */
#include <arm_neon.h>
#include <stdint.h>

#include "engine/kernels/gemm_internal.h"

#define MR 8
#define NV 3
#define NR (4 * NV)

static inline float32x4_t load_part(const float *p, int64_t n)
{
    float t[4] = {0.f, 0.f, 0.f, 0.f};
    for (int64_t i = 0; i < n && i < 4; i++)
        t[i] = p[i];
    return vld1q_f32(t);
}

static inline void store_part(float *p, float32x4_t v, int64_t n)
{
    float t[4];
    vst1q_f32(t, v);
    for (int64_t i = 0; i < n && i < 4; i++)
        p[i] = t[i];
}

/* ---- vector math for act_simd.h -------------------------------------------- */
#define SV float32x4_t
#define SM uint32x4_t
#define SW 4
#define sv_set1(x) vdupq_n_f32(x)
#define sv_add(a, b) vaddq_f32(a, b)
#define sv_sub(a, b) vsubq_f32(a, b)
#define sv_mul(a, b) vmulq_f32(a, b)
#define sv_div(a, b) vdivq_f32(a, b)
#define sv_fma(a, b, c) vfmaq_f32(c, a, b)
#define sv_max(a, b) vmaxq_f32(a, b)
#define sv_min(a, b) vminq_f32(a, b)
#define sv_abs(a) vabsq_f32(a)
#define sv_neg(a) vnegq_f32(a)
#define sv_lt(a, b) vcltq_f32(a, b)
#define sv_sel(m, a, b) vbslq_f32(m, a, b)
#define sv_round(x) vrndnq_f32(x)
#define sv_pow2(n) \
    vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23))
#define sv_load(p) vld1q_f32(p)
#define sv_store(p, v) vst1q_f32(p, v)
#define sv_load_n(p, n) load_part(p, n)
#define sv_store_n(p, v, n) store_part(p, v, n)
#define SIMD_ACT_NAME act_neon
#include "engine/kernels/act_simd.h"

/* ---- micro-kernel ------------------------------------------------------------- */

static inline __attribute__((always_inline)) float32x4_t load_vec(const float *p, int j, int nv,
                                                                  bool full, int64_t tail)
{
    return (j == nv - 1 && !full) ? load_part(p, tail) : vld1q_f32(p);
}

static inline __attribute__((always_inline)) void store_vec(float *p, float32x4_t v, int j, int nv,
                                                            bool full, int64_t tail)
{
    if (j == nv - 1 && !full)
        store_part(p, v, tail);
    else
        vst1q_f32(p, v);
}

/*
 * mr x (4 nv) tile; `full` means every column of the last vector is valid
 * (tail == 4). mr, nv and full are constants at every call site.
 */
static inline __attribute__((always_inline)) void ukernel(const int mr, const int nv,
                                                          const bool full, const tdm_gemm_panel *p,
                                                          int64_t i0, int64_t tail)
{
    float32x4_t acc[MR][NV];
    const float *ar[MR];
    for (int i = 0; i < mr; i++) {
        ar[i] = p->a + (i0 + i) * p->a_rs;
        for (int j = 0; j < nv; j++)
            acc[i][j] = vdupq_n_f32(0.f);
    }
    const float *b = p->b;
    const int64_t ldb = p->ldb, cs = p->a_cs, k = p->k;
    int64_t off = 0;
    for (int64_t q = 0; q < k; q++) {
        float32x4_t bv[NV];
        for (int j = 0; j < nv; j++)
            bv[j] = load_vec(b + 4 * j, j, nv, full, tail);
        for (int i = 0; i < mr; i++) {
            float a = ar[i][off];
            for (int j = 0; j < nv; j++)
                acc[i][j] = vfmaq_n_f32(acc[i][j], bv[j], a);
        }
        b += ldb;
        off += cs;
    }

    const float32x4_t beta = vdupq_n_f32(p->beta);
    const bool scale = p->alpha != 1.0f;
    const bool accum = p->mode == TDM_GEMM_ACCUM, use_beta = !accum && p->beta != 0.0f;
    const float *bc = p->last ? p->bias_col : NULL;
    const float *br = p->last ? p->bias_row : NULL;
    for (int i = 0; i < mr; i++) {
        float *c = p->c + (i0 + i) * p->ldc;
        for (int j = 0; j < nv; j++) {
            float32x4_t v = acc[i][j];
            if (scale)
                v = vmulq_n_f32(v, p->alpha);
            if (accum)
                v = vaddq_f32(v, load_vec(c + 4 * j, j, nv, full, tail));
            else if (use_beta)
                v = vfmaq_f32(v, beta, load_vec(c + 4 * j, j, nv, full, tail));
            if (bc != NULL)
                v = vaddq_f32(v, load_vec(bc + 4 * j, j, nv, full, tail));
            if (br != NULL)
                v = vaddq_f32(v, vdupq_n_f32(br[i0 + i]));
            store_vec(c + 4 * j, v, j, nv, full, tail);
        }
    }
    if (p->last && p->act != TDM_ACT_NONE) {
        for (int i = 0; i < mr; i++)
            act_neon(p->c + (i0 + i) * p->ldc, p->n, p->act, p->act_alpha, p->act_beta);
    }
}

#define NV_CASES(r, full)                     \
    do {                                      \
        if (nv == 3)                          \
            ukernel(r, 3, full, p, i0, tail); \
        else if (nv == 2)                     \
            ukernel(r, 2, full, p, i0, tail); \
        else                                  \
            ukernel(r, 1, full, p, i0, tail); \
    } while (0)

#define TILE_CASE(r)            \
    case r:                     \
        if (tail == 4)          \
            NV_CASES(r, true);  \
        else                    \
            NV_CASES(r, false); \
        break

static void panel_neon(const tdm_gemm_panel *p)
{
    int nv = (int)((p->n + 3) / 4);
    int64_t tail = p->n - 4 * (nv - 1);
    int64_t i0 = 0;
    for (; i0 + MR <= p->m; i0 += MR) {
        if (tail == 4)
            NV_CASES(8, true);
        else
            NV_CASES(8, false);
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

/* B^T panel: 4 x 4 blocks through vld1q + vtrnq/vzip, scalar at the edges. */
static void pack_bt_neon(const float *b, int64_t ldb, int64_t n, int64_t k, float *dst)
{
    int64_t j0 = 0;
    for (; j0 + 4 <= n; j0 += 4) {
        int64_t q = 0;
        for (; q + 4 <= k; q += 4) {
            float32x4_t r0 = vld1q_f32(b + (j0 + 0) * ldb + q);
            float32x4_t r1 = vld1q_f32(b + (j0 + 1) * ldb + q);
            float32x4_t r2 = vld1q_f32(b + (j0 + 2) * ldb + q);
            float32x4_t r3 = vld1q_f32(b + (j0 + 3) * ldb + q);
            float32x4x2_t t01 = vtrnq_f32(r0, r1), t23 = vtrnq_f32(r2, r3);
            float32x4_t c0 = vcombine_f32(vget_low_f32(t01.val[0]), vget_low_f32(t23.val[0]));
            float32x4_t c1 = vcombine_f32(vget_low_f32(t01.val[1]), vget_low_f32(t23.val[1]));
            float32x4_t c2 = vcombine_f32(vget_high_f32(t01.val[0]), vget_high_f32(t23.val[0]));
            float32x4_t c3 = vcombine_f32(vget_high_f32(t01.val[1]), vget_high_f32(t23.val[1]));
            vst1q_f32(dst + (q + 0) * NR + j0, c0);
            vst1q_f32(dst + (q + 1) * NR + j0, c1);
            vst1q_f32(dst + (q + 2) * NR + j0, c2);
            vst1q_f32(dst + (q + 3) * NR + j0, c3);
        }
        for (; q < k; q++)
            for (int64_t j = j0; j < j0 + 4; j++)
                dst[q * NR + j] = b[j * ldb + q];
    }
    for (; j0 < n; j0++)
        for (int64_t q = 0; q < k; q++)
            dst[q * NR + j0] = b[j0 * ldb + q];
}

const tdm_gemm_isa tdm_gemm_isa_neon = {
    .name = "neon",
    .mr = MR,
    .nr = NR,
    .vw = 4,
    .panel = panel_neon,
    .pack_bt = pack_bt_neon,
    .gemv = NULL,
    .act = act_neon,
};
