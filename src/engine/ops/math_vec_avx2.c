/*
 * AVX2+FMA build of the float32 math kernels: the shared source
 * math_vec_impl.h at 8 lanes. Compiled with -mavx2 -mfma (CMake, by suffix)
 * and only called after tdm_cpu_get() reported AVX2+FMA.
 */
#define TDM_VEC_W 8
#define TDM_VEC_TABLE tdm_vec_kernels_avx2
#include "engine/ops/math_vec_impl.h"
