/*
 * AVX-512 (F, DQ, BW, VL) build of the float32 math kernels: the shared
 * source math_vec_impl.h at 16 lanes. Only called after tdm_cpu_get()
 * reported AVX-512.
 */
#define TDM_VEC_W 16
#define TDM_VEC_TABLE tdm_vec_kernels_avx512
#include "engine/ops/math_vec_impl.h"
