/*
 * Op table of the math group (see op.h): element-wise arithmetic, logic
 * and activations, Cast, reductions, softmax, CumSum and TopK. Families of
 * ops share one implementation that tells its members apart by op_type
 * (math_ops.h); the kernels live in math_*.c.
 */
#include "engine/op.h"
#include "engine/ops/math_ops.h"

#define BINARY(n)                                                                            \
    {                                                                                        \
        .domain = "", .name = n, .infer = tdm_math_binary_infer, .run = tdm_math_binary_run, \
        .prepare = tdm_math_binary_prepare                                                   \
    }
#define VARIADIC(n)                                                                              \
    {                                                                                            \
        .domain = "", .name = n, .infer = tdm_math_variadic_infer, .run = tdm_math_variadic_run, \
        .prepare = tdm_math_variadic_prepare                                                     \
    }
#define UNARY_D(d, n)                                                                     \
    {                                                                                     \
        .domain = d, .name = n, .infer = tdm_math_unary_infer, .run = tdm_math_unary_run, \
        .prepare = tdm_math_unary_prepare                                                 \
    }
#define UNARY(n) UNARY_D("", n)
#define REDUCE(n)                                                                            \
    {                                                                                        \
        .domain = "", .name = n, .infer = tdm_math_reduce_infer, .run = tdm_math_reduce_run, \
        .prepare = tdm_math_reduce_prepare                                                   \
    }
#define PLAIN(n, f)                                                                       \
    {                                                                                     \
        .domain = "", .name = n, .infer = tdm_math_##f##_infer, .run = tdm_math_##f##_run \
    }

const tdm_op tdm_ops_math[] = {
    BINARY("Add"),
    BINARY("Sub"),
    BINARY("Mul"),
    BINARY("Div"),
    BINARY("Pow"),
    BINARY("Mod"),
    BINARY("Equal"),
    BINARY("Less"),
    BINARY("Greater"),
    BINARY("LessOrEqual"),
    BINARY("GreaterOrEqual"),
    BINARY("And"),
    BINARY("Or"),
    BINARY("Xor"),
    BINARY("PRelu"),
    VARIADIC("Sum"),
    VARIADIC("Mean"),
    VARIADIC("Min"),
    VARIADIC("Max"),
    UNARY("Relu"),
    UNARY("LeakyRelu"),
    UNARY("Sigmoid"),
    UNARY("Tanh"),
    UNARY("Exp"),
    UNARY("Erf"),
    UNARY("Gelu"),
    UNARY_D("com.microsoft", "Gelu"),
    UNARY("Clip"),
    UNARY("HardSigmoid"),
    UNARY("HardSwish"),
    UNARY("Elu"),
    UNARY("Selu"),
    UNARY("Softplus"),
    UNARY("Softsign"),
    UNARY("Sqrt"),
    UNARY("Log"),
    UNARY("Neg"),
    UNARY("Abs"),
    UNARY("Reciprocal"),
    UNARY("Floor"),
    UNARY("Ceil"),
    UNARY("Round"),
    UNARY("Sign"),
    UNARY("Sin"),
    UNARY("Cos"),
    UNARY("Tan"),
    UNARY("Asin"),
    UNARY("Acos"),
    UNARY("Atan"),
    UNARY("Sinh"),
    UNARY("Cosh"),
    UNARY("Asinh"),
    UNARY("Acosh"),
    UNARY("Atanh"),
    UNARY("ThresholdedRelu"),
    UNARY("Celu"),
    UNARY("Mish"),
    UNARY("Shrink"),
    UNARY("IsNaN"),
    UNARY("IsInf"),
    UNARY("Not"),
    PLAIN("Cast", cast),
    PLAIN("CastLike", cast),
    REDUCE("ReduceSum"),
    REDUCE("ReduceMean"),
    REDUCE("ReduceMax"),
    REDUCE("ReduceMin"),
    REDUCE("ReduceProd"),
    REDUCE("ReduceL1"),
    REDUCE("ReduceL2"),
    REDUCE("ReduceSumSquare"),
    REDUCE("ReduceLogSum"),
    REDUCE("ReduceLogSumExp"),
    PLAIN("ArgMax", arg),
    PLAIN("ArgMin", arg),
    PLAIN("Softmax", softmax),
    PLAIN("LogSoftmax", softmax),
    PLAIN("Hardmax", softmax),
    PLAIN("CumSum", cumsum),
    PLAIN("TopK", topk),
    {.name = NULL},
};
