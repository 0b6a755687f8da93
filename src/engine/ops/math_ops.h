/*
 * Entry points of the math op group (the table is in ops_math.c) and the
 * helpers its source files share.
 *
 * Ops of one family share one infer/run pair and tell themselves apart by
 * node->op_type: prepare resolves the name to a static descriptor once per
 * session and parks it in ctx->state (static data, so no release is needed);
 * infer and run fall back to the name lookup when prepare was not called.
 */
#ifndef TANDEM_OPS_MATH_OPS_H
#define TANDEM_OPS_MATH_OPS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/op.h"

/* ---- element-wise binary and variadic ops (math_binary.c) ----------------- */
/* Add Sub Mul Div Pow Mod Equal Less Greater LessOrEqual GreaterOrEqual And Or
 * Xor PRelu, with multidirectional broadcasting (PRelu: slope to X only). */
tdm_status tdm_math_binary_prepare(tdm_op_ctx *ctx);
tdm_status tdm_math_binary_infer(tdm_op_ctx *ctx);
tdm_status tdm_math_binary_run(tdm_op_ctx *ctx);
/* Sum Mean Min Max over any number of broadcast inputs. */
tdm_status tdm_math_variadic_prepare(tdm_op_ctx *ctx);
tdm_status tdm_math_variadic_infer(tdm_op_ctx *ctx);
tdm_status tdm_math_variadic_run(tdm_op_ctx *ctx);

/* ---- element-wise unary ops (math_unary.c) --------------------------------- */
/* activations, Clip, rounding, trigonometry, Not, IsNaN, IsInf, Neg, Abs, Sign... */
tdm_status tdm_math_unary_prepare(tdm_op_ctx *ctx);
tdm_status tdm_math_unary_infer(tdm_op_ctx *ctx);
tdm_status tdm_math_unary_run(tdm_op_ctx *ctx);

/* ---- Cast and CastLike (math_cast.c) --------------------------------------- */
tdm_status tdm_math_cast_infer(tdm_op_ctx *ctx);
tdm_status tdm_math_cast_run(tdm_op_ctx *ctx);

/* ---- reductions and ArgMax/ArgMin (math_reduce.c) --------------------------- */
tdm_status tdm_math_reduce_prepare(tdm_op_ctx *ctx);
tdm_status tdm_math_reduce_infer(tdm_op_ctx *ctx);
tdm_status tdm_math_reduce_run(tdm_op_ctx *ctx);
tdm_status tdm_math_arg_infer(tdm_op_ctx *ctx);
tdm_status tdm_math_arg_run(tdm_op_ctx *ctx);

/* ---- Softmax, LogSoftmax, Hardmax (math_softmax.c) -------------------------- */
tdm_status tdm_math_softmax_infer(tdm_op_ctx *ctx);
tdm_status tdm_math_softmax_run(tdm_op_ctx *ctx);

/* ---- CumSum and TopK (math_scan.c) ------------------------------------------ */
tdm_status tdm_math_cumsum_infer(tdm_op_ctx *ctx);
tdm_status tdm_math_cumsum_run(tdm_op_ctx *ctx);
tdm_status tdm_math_topk_infer(tdm_op_ctx *ctx);
tdm_status tdm_math_topk_run(tdm_op_ctx *ctx);

/* ---- shared helpers (math_common.c) ----------------------------------------- */

/* Element-wise work below this many elements runs on the calling thread. */
#define TDM_MATH_PAR_MIN 65536

/*
 * Checks that inputs [0, n_required) are present and that every present
 * input has a known shape; TDM_ERR_NEEDS_VALUE when a shape is still unknown
 * (rank or a dim < 0), so that the executor infers again at run time.
 */
tdm_status tdm_math_check_inputs(tdm_op_ctx *ctx, int n_required);

/* Resolves a possibly negative axis against rank; an error names the attribute. */
tdm_status tdm_math_axis(tdm_op_ctx *ctx, const char *what, int64_t axis, int rank, int *out);

/* Runs fn over [0, n) on ctx->pool when n >= min_parallel, else inline. */
void tdm_math_parallel(tdm_op_ctx *ctx, int64_t n, int64_t min_parallel, tdm_task_fn fn, void *arg);

bool tdm_math_is_float(tdm_dtype dt); /* float32/64/16, bfloat16 */
bool tdm_math_is_signed_int(tdm_dtype dt);
bool tdm_math_is_unsigned_int(tdm_dtype dt); /* uint8..64, not bool */

/*
 * Converts n elements between numeric dtypes (all but string) with ONNX
 * Cast semantics: float -> int truncates toward zero; NaN and values out of
 * range follow the x86 conversion instructions that numpy and ONNX Runtime
 * end up using (the "integer indefinite" INT_MIN of int32 for 8/16/32-bit
 * targets and of int64 for 64-bit and uint32 targets, then the low bits),
 * so results are defined and match those tools instead of being C's UB.
 * Integer -> narrower integer wraps; anything -> bool is x != 0 (NaN is
 * true). Returns false when either dtype is unsupported.
 */
bool tdm_math_convert(const void *src, tdm_dtype sdt, void *dst, tdm_dtype ddt, int64_t n);

/* float32 -> bfloat16 with round to nearest even (NaN stays NaN). */
uint16_t tdm_math_fp32_to_bf16(float f);

#endif
