/*
 * CPU feature detection (see cpu.h).
 */
#include "base/cpu.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long xgetbv0(void)
{
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static void detect(tdm_cpu *c)
{
    unsigned int a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d))
        return;
    c->sse42 = (cx >> 20) & 1;
    bool osxsave = (cx >> 27) & 1, fma = (cx >> 12) & 1, f16c = (cx >> 29) & 1;
    if (!osxsave)
        return;
    unsigned long long xcr0 = xgetbv0();
    bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &cx, &d))
        return;
    bool avx2 = (b >> 5) & 1;
    bool f = (b >> 16) & 1, dq = (b >> 17) & 1, bw = (b >> 30) & 1, vl = (b >> 31) & 1;
    bool vnni512 = (cx >> 11) & 1;
    c->avx2_fma = ymm && avx2 && fma && f16c;
    c->avx512 = c->avx2_fma && zmm && f && dq && bw && vl;
    c->avx512_vnni = c->avx512 && vnni512;
    if (__get_cpuid_count(7, 1, &a, &b, &cx, &d))
        c->avx_vnni = c->avx2_fma && ((a >> 4) & 1);
}
#else
static void detect(tdm_cpu *c)
{
#if defined(__aarch64__)
    c->neon = true;
#else
    (void)c;
#endif
}
#endif

static tdm_cpu compute(void)
{
    tdm_cpu c;
    memset(&c, 0, sizeof c);
    detect(&c);
    const char *cap = getenv("TDM_CPU");
    if (cap != NULL) {
        if (strcmp(cap, "portable") == 0) {
            memset(&c, 0, sizeof c);
        } else if (strcmp(cap, "avx2") == 0) {
            c.avx512 = false;
            c.avx512_vnni = false;
        }
    }
    return c;
}

/* Computed once: the value is a constant of the machine (and environment). */
static tdm_cpu g_cpu;
static pthread_once_t g_cpu_once = PTHREAD_ONCE_INIT;

static void init_cpu(void)
{
    g_cpu = compute();
}

const tdm_cpu *tdm_cpu_get(void)
{
    pthread_once(&g_cpu_once, init_cpu);
    return &g_cpu;
}
