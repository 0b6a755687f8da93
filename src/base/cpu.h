/*
 * CPU feature detection, once per process, for run-time kernel dispatch.
 *
 * Detection is pure (cpuid and xgetbv), so the cached result is a constant of
 * the machine rather than hidden mutable state. TDM_CPU env var can cap the
 * level ("portable", "avx2", "avx512") to test every path on one machine.
 */
#ifndef TANDEM_BASE_CPU_H
#define TANDEM_BASE_CPU_H

#include <stdbool.h>

typedef struct tdm_cpu {
    bool avx2_fma; /* AVX2 + FMA + F16C */
    bool avx512;   /* AVX-512 F, BW, DQ, VL */
    bool avx512_vnni;
    bool avx_vnni;
    bool neon;
    bool sse42; /* SSE4.2 (crc32 instruction) */
} tdm_cpu;

const tdm_cpu *tdm_cpu_get(void);

#endif
