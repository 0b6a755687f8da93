/*
 * Int8 GEMM driver: weight packing, activation quantisation, threading, the
 * dequantising epilogue and the portable tile kernel (see qgemm.h).
 *
 * A call quantises every row of A once (M * kp bytes, small next to the
 * weights), then cuts the output into tasks of two 16-channel panels: each
 * task keeps its 32 x kp weight bytes in L1 while it walks all rows in tiles
 * of 4, so the weights, the only large operand, stream from memory once.
 * The kernels return exact int32 sums; the epilogue here turns a 4 x 32 tile
 * into floats (scales, zero-point correction, bias) and applies the
 * activation with the float GEMM's vectorised tdm_act_apply, so every kernel
 * family shares one epilogue and gives bit-identical results.
 */
#include "engine/kernels/qgemm.h"

#include <math.h>
#include <string.h>

#include "base/alloc.h"
#include "base/cpu.h"
#include "engine/kernels/qgemm_internal.h"

size_t tdm_qgemm_packed_size(int64_t N, int64_t K)
{
    return (size_t)tdm_qgemm_np(N) * (size_t)tdm_qgemm_kp(K);
}

static inline size_t packed_index(int64_t kp, int64_t k, int64_t n)
{
    int64_t p = n / TDM_QGEMM_NR, j = n % TDM_QGEMM_NR;
    return (size_t)(p * kp * TDM_QGEMM_NR + (k / TDM_QGEMM_KG) * (TDM_QGEMM_KG * TDM_QGEMM_NR) +
                    j * TDM_QGEMM_KG + k % TDM_QGEMM_KG);
}

int8_t tdm_qgemm_packed_at(const int8_t *packed, int64_t K, int64_t k, int64_t n)
{
    return packed[packed_index(tdm_qgemm_kp(K), k, n)];
}

static int32_t clamp_round(float v, int32_t lo, int32_t hi)
{
    /* comparisons first: NaN and huge values never reach the conversion */
    if (!(v > (float)lo))
        return lo;
    if (!(v < (float)hi))
        return hi;
    return (int32_t)lrintf(v);
}

void tdm_qgemm_quantize_pack(const float *W, bool trans_w, int64_t K, int64_t N, int8_t *packed,
                             float *scale)
{
    int64_t kp = tdm_qgemm_kp(K);
    memset(packed, 0, tdm_qgemm_packed_size(N, K));
    for (int64_t n = 0; n < N; n++) {
        float amax = 0.f;
        for (int64_t k = 0; k < K; k++) {
            float v = fabsf(trans_w ? W[n * K + k] : W[k * N + n]);
            if (v > amax)
                amax = v;
        }
        float s = amax / (float)TDM_QGEMM_QMAX;
        scale[n] = s;
        float inv = s > 0.f ? 1.f / s : 0.f;
        for (int64_t k = 0; k < K; k++) {
            float v = trans_w ? W[n * K + k] : W[k * N + n];
            packed[packed_index(kp, k, n)] =
                (int8_t)clamp_round(v * inv, -TDM_QGEMM_QMAX, TDM_QGEMM_QMAX);
        }
    }
}

void tdm_qgemm_colsums(const int8_t *packed, int64_t N, int64_t K, int32_t *colsum)
{
    int64_t kp = tdm_qgemm_kp(K), np = tdm_qgemm_np(N);
    for (int64_t n = 0; n < np; n++) {
        int32_t s = 0;
        for (int64_t k = 0; k < kp; k++)
            s += packed[packed_index(kp, k, n)];
        colsum[n] = s;
    }
}

/*
 * Row range and scale, shared by the portable and SIMD quantisers. The minimum
 * and maximum include 0 (so 0 is exact: its code is the zero point) and skip
 * NaN; the SIMD quantisers compute the same min and max (min/max are exact,
 * order-independent) and then call this, so every path gets the same codes.
 */
bool tdm_qgemm_row_params(float mn, float mx, float *scale, int32_t *zp)
{
    float s = (mx - mn) / (float)TDM_QGEMM_QMAX;
    if (!(s > 0.f) || !isfinite(s)) {
        /* all zero (or not finite): every code is the zero point */
        *scale = 0.f;
        *zp = 0;
        return false;
    }
    *scale = s;
    *zp = clamp_round(-mn / s, 0, TDM_QGEMM_QMAX);
    return true;
}

void tdm_qgemm_quantize_row(const float *a, int64_t K, uint8_t *q, float *scale, int32_t *zp)
{
    float mn = 0.f, mx = 0.f;
    for (int64_t k = 0; k < K; k++) {
        mn = a[k] < mn ? a[k] : mn;
        mx = a[k] > mx ? a[k] : mx;
    }
    int64_t kp = tdm_qgemm_kp(K);
    if (!tdm_qgemm_row_params(mn, mx, scale, zp)) {
        memset(q, 0, (size_t)kp);
        return;
    }
    /* the SIMD quantisers do exactly these operations, lane by lane: a * inv
     * + z (two roundings, no FMA), clamp (NaN to 0), + 0.5, truncate */
    float inv = 1.f / *scale, zf = (float)*zp;
    for (int64_t k = 0; k < K; k++) {
        float v = a[k] * inv + zf;
        v = v > 0.f ? v : 0.f;
        v = v < (float)TDM_QGEMM_QMAX ? v : (float)TDM_QGEMM_QMAX;
        q[k] = (uint8_t)(int32_t)(v + 0.5f);
    }
    for (int64_t k = K; k < kp; k++)
        q[k] = 0;
}

/* ---- portable tile kernel --------------------------------------------------------------- */

static void tile_portable(const uint8_t *a, int64_t lda, int mr, const int8_t *w, int np,
                          int64_t kp, int32_t *acc)
{
    for (int p = 0; p < np; p++) {
        const int8_t *wp = w + (int64_t)p * kp * TDM_QGEMM_NR;
        for (int i = 0; i < mr; i++) {
            int32_t s[TDM_QGEMM_NR] = {0};
            const uint8_t *ar = a + i * lda;
            for (int64_t g = 0; g < kp; g += TDM_QGEMM_KG) {
                const int8_t *wg = wp + g * TDM_QGEMM_NR;
                for (int j = 0; j < TDM_QGEMM_NR; j++)
                    for (int r = 0; r < TDM_QGEMM_KG; r++)
                        s[j] += (int32_t)ar[g + r] * (int32_t)wg[j * TDM_QGEMM_KG + r];
            }
            memcpy(acc + i * 2 * TDM_QGEMM_NR + p * TDM_QGEMM_NR, s, sizeof s);
        }
    }
}

/* ---- dispatch ----------------------------------------------------------------------------- */

static tdm_qgemm_tile_fn tile_for(tdm_qgemm_impl impl)
{
    const tdm_cpu *cpu = tdm_cpu_get();
    (void)cpu;
    switch (impl) {
    case TDM_QGEMM_AUTO:
#if defined(TDM_X86)
        if (cpu->avx512 && cpu->avx512_vnni)
            return tdm_qgemm_tile_avx512_vnni;
        if (cpu->avx512)
            return tdm_qgemm_tile_avx512;
        if (cpu->avx2_fma)
            return tdm_qgemm_tile_avx2;
#endif
        return tile_portable;
    case TDM_QGEMM_PORTABLE: return tile_portable;
#if defined(TDM_X86)
    case TDM_QGEMM_AVX2: return cpu->avx2_fma ? tdm_qgemm_tile_avx2 : NULL;
    case TDM_QGEMM_AVX512: return cpu->avx512 ? tdm_qgemm_tile_avx512 : NULL;
    case TDM_QGEMM_AVX512_VNNI:
        return cpu->avx512 && cpu->avx512_vnni ? tdm_qgemm_tile_avx512_vnni : NULL;
#else
    default: return NULL;
#endif
    }
    return NULL;
}

bool tdm_qgemm_impl_available(tdm_qgemm_impl impl)
{
    return tile_for(impl) != NULL;
}

const char *tdm_qgemm_impl_name(tdm_qgemm_impl impl)
{
    tdm_qgemm_tile_fn f = tile_for(impl);
    if (f == NULL)
        return "unavailable";
#if defined(TDM_X86)
    if (f == tdm_qgemm_tile_avx512_vnni)
        return "avx512-vnni";
    if (f == tdm_qgemm_tile_avx512)
        return "avx512";
    if (f == tdm_qgemm_tile_avx2)
        return "avx2";
#endif
    return "portable";
}

/* ---- driver ------------------------------------------------------------------------------- */

typedef struct qjob {
    tdm_qgemm_tile_fn tile;
    int64_t M, kp;
    const uint8_t *qa; /* M x kp */
    const float *sa;
    const int32_t *za;
    const tdm_qmat *W;
    float *C;
    int64_t ldc;
    tdm_epilogue ep;
} qjob;

static void qgemm_task(void *arg, int64_t t0, int64_t t1, int worker)
{
    const qjob *j = arg;
    (void)worker;
    const int64_t N = j->W->N, np_total = tdm_qgemm_np(N) / TDM_QGEMM_NR;
    int32_t acc[TDM_QGEMM_MR * 2 * TDM_QGEMM_NR];
    for (int64_t t = t0; t < t1; t++) {
        int64_t p0 = t * 2;
        int np = np_total - p0 >= 2 ? 2 : 1;
        int64_t n0 = p0 * TDM_QGEMM_NR;
        int64_t nn = N - n0 < np * TDM_QGEMM_NR ? N - n0 : np * TDM_QGEMM_NR;
        const int8_t *w = j->W->w + p0 * TDM_QGEMM_NR * j->kp;
        const float *sw = j->W->scale + n0;
        const int32_t *cs = j->W->colsum + n0;
        const float *bias = j->ep.bias_col != NULL ? j->ep.bias_col + n0 : NULL;
        for (int64_t m0 = 0; m0 < j->M; m0 += TDM_QGEMM_MR) {
            int mr = j->M - m0 < TDM_QGEMM_MR ? (int)(j->M - m0) : TDM_QGEMM_MR;
            j->tile(j->qa + m0 * j->kp, j->kp, mr, w, np, j->kp, acc);
            for (int i = 0; i < mr; i++) {
                float *c = j->C + (m0 + i) * j->ldc + n0;
                const int32_t *ar = acc + i * 2 * TDM_QGEMM_NR;
                float sa = j->sa[m0 + i];
                int32_t za = j->za[m0 + i];
                for (int64_t n = 0; n < nn; n++) {
                    float v = sa * sw[n] * (float)(ar[n] - za * cs[n]);
                    c[n] = bias != NULL ? v + bias[n] : v;
                }
                if (j->ep.act != TDM_ACT_NONE)
                    tdm_act_apply(c, nn, j->ep.act, j->ep.alpha, j->ep.beta);
            }
        }
    }
}

bool tdm_qgemm_impl_run(tdm_qgemm_impl impl, tdm_pool *pool, int64_t M, const float *A, int64_t lda,
                        const tdm_qmat *W, float *C, int64_t ldc, const tdm_epilogue *ep)
{
    tdm_qgemm_tile_fn tile = tile_for(impl);
    if (tile == NULL)
        return false;
    tdm_qgemm_quant_fn quant = tdm_qgemm_quantize_row;
#if defined(TDM_X86)
    if (tile != tile_portable)
        quant = tdm_qgemm_quantize_row_avx2; /* every x86 SIMD family has AVX2 */
#endif
    if (M <= 0 || W->N <= 0)
        return true;
    int64_t kp = tdm_qgemm_kp(W->K);
    size_t qa_bytes = (size_t)M * (size_t)kp;
    size_t off_s = (qa_bytes + 63) / 64 * 64;
    size_t off_z = off_s + (size_t)M * sizeof(float);
    uint8_t *ws = tdm_aligned_alloc(off_z + (size_t)M * sizeof(int32_t));
    if (ws == NULL)
        return false;
    float *sa = (float *)(ws + off_s);
    int32_t *za = (int32_t *)(ws + off_z);
    for (int64_t m = 0; m < M; m++)
        quant(A + m * lda, W->K, ws + m * kp, &sa[m], &za[m]);
    qjob j = {tile, M, kp, ws, sa, za, W, C, ldc, {NULL, NULL, TDM_ACT_NONE, 0.f, 0.f}};
    if (ep != NULL)
        j.ep = *ep;
    int64_t tasks = (tdm_qgemm_np(W->N) / TDM_QGEMM_NR + 1) / 2;
    if (pool != NULL && tasks > 1)
        tdm_pool_for(pool, tasks, 1, qgemm_task, &j);
    else
        qgemm_task(&j, 0, tasks, 0);
    tdm_aligned_free(ws);
    return true;
}

bool tdm_qgemm(tdm_pool *pool, int64_t M, const float *A, int64_t lda, const tdm_qmat *W, float *C,
               int64_t ldc, const tdm_epilogue *ep)
{
    return tdm_qgemm_impl_run(TDM_QGEMM_AUTO, pool, M, A, lda, W, C, ldc, ep);
}
