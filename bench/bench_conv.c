/*
 * Convolution and pooling throughput through the op interface (infer once,
 * then run repeatedly with a warm workspace, as the executor does), single
 * image, at 1 and 2 threads. The headline shapes are a ResNet-style 3x3
 * conv 64->64 on 56x56 (im2col + GEMM) and a MobileNet-style depthwise 3x3
 * on 32 channels of 112x112 (direct kernel); a few neighbours show where the
 * other strategies stand. Prints the best time and GFLOP/s (2 flops per
 * multiply-add; for pooling, one "flop" per window element read).
 *
 *   bench_conv [--min-ms MS] [--threads N] [--only SUBSTRING]
 *
 * TDM_CPU=portable|avx2 caps the SIMD level, as everywhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/alloc.h"
#include "base/clock.h"
#include "base/pool.h"
#include "engine/ir.h"
#include "engine/op.h"

typedef struct bshape {
    const char *what;
    const char *op;
    int64_t c, m, h, w, k, stride, pad, group;
} bshape;

static const bshape k_shapes[] = {
    {"conv 3x3 64->64 56x56", "Conv", 64, 64, 56, 56, 3, 1, 1, 1},
    {"depthwise 3x3 32ch 112x112", "Conv", 32, 32, 112, 112, 3, 1, 1, 32},
    {"depthwise 3x3 s2 64ch 112x112", "Conv", 64, 64, 112, 112, 3, 2, 1, 64},
    {"conv 1x1 64->256 56x56", "Conv", 64, 256, 56, 56, 1, 1, 0, 1},
    {"conv 3x3 s2 3->32 224x224 (stem)", "Conv", 3, 32, 224, 224, 3, 2, 1, 1},
    {"conv 3x3 256->256 14x14", "Conv", 256, 256, 14, 14, 3, 1, 1, 1},
    {"maxpool 3x3 s2 64ch 112x112", "MaxPool", 64, 64, 112, 112, 3, 2, 1, 1},
};

static void set_ints(tdm_node *n, const char *name, int64_t a, int64_t count)
{
    tdm_attr *at = tdm_node_add_attr(n, name, TDM_ATTR_INTS);
    if (at == NULL)
        exit(1);
    at->ints = malloc(sizeof *at->ints * (size_t)count);
    if (at->ints == NULL)
        exit(1);
    for (int64_t i = 0; i < count; i++)
        at->ints[i] = a;
    at->n = count;
}

static void fill(tdm_tensor *t)
{
    float *p = t->data;
    uint32_t s = 1;
    for (int64_t i = 0; i < tdm_tensor_numel(t); i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 9) / 8388608.f - 1.f;
    }
}

static int bench_one(const bshape *b, tdm_pool *pool, double min_ms)
{
    bool conv = strcmp(b->op, "Conv") == 0;
    tdm_node node;
    memset(&node, 0, sizeof node);
    node.op_type = (char *)b->op;
    node.domain = (char *)"";
    node.name = (char *)"bench";
    node.opset = 13;
    set_ints(&node, "kernel_shape", b->k, 2);
    set_ints(&node, "strides", b->stride, 2);
    set_ints(&node, "pads", b->pad, 4);
    if (conv && b->group != 1) {
        tdm_attr *g = tdm_node_add_attr(&node, "group", TDM_ATTR_INT);
        if (g == NULL)
            return 1;
        g->i = b->group;
    }
    tdm_err err = {{0}};
    tdm_tensor x, w, bias, y;
    memset(&y, 0, sizeof y);
    int64_t xd[4] = {1, b->c, b->h, b->w}, wd[4] = {b->m, b->c / b->group, b->k, b->k};
    int64_t bd[1] = {b->m};
    if (tdm_tensor_make(&x, TDM_DTYPE_FLOAT32, 4, xd, &err) != TDM_OK ||
        tdm_tensor_make(&w, TDM_DTYPE_FLOAT32, 4, wd, &err) != TDM_OK ||
        tdm_tensor_make(&bias, TDM_DTYPE_FLOAT32, 1, bd, &err) != TDM_OK) {
        fprintf(stderr, "bench_conv: %s\n", err.msg);
        return 1;
    }
    fill(&x);
    fill(&w);
    fill(&bias);
    const tdm_tensor *ins[3] = {&x, &w, &bias};
    tdm_tensor *outs[1] = {&y};
    tdm_scratch scratch = {NULL, 0};
    node.n_in = conv ? 3 : 1;
    node.n_out = 1;
    tdm_op_ctx ctx = {&node, node.n_in, ins, 1, outs, NULL, pool, &scratch, &err};
    const tdm_op *op = tdm_op_find("", b->op);
    if (op == NULL || op->infer(&ctx) != TDM_OK || tdm_tensor_alloc(&y, &err) != TDM_OK) {
        fprintf(stderr, "bench_conv: %s: %s\n", b->what, op ? err.msg : "op not registered");
        return 1;
    }
    double best = 1e30, total = 0;
    int reps = 0;
    while (total < min_ms * 1e6 || reps < 5) {
        uint64_t t0 = tdm_now_ns();
        if (op->run(&ctx) != TDM_OK) {
            fprintf(stderr, "bench_conv: %s: %s\n", b->what, err.msg);
            return 1;
        }
        double dt = (double)(tdm_now_ns() - t0);
        best = dt < best ? dt : best;
        total += dt;
        reps++;
    }
    double outs_n = (double)tdm_tensor_numel(&y);
    double flops = conv ? 2.0 * outs_n * (double)(b->c / b->group) * (double)(b->k * b->k)
                        : outs_n * (double)(b->k * b->k);
    printf("%-36s %d thr  %9.3f ms  %8.2f GFLOP/s\n", b->what, pool ? tdm_pool_size(pool) : 1,
           best / 1e6, flops / best);
    tdm_tensor_free(&x);
    tdm_tensor_free(&w);
    tdm_tensor_free(&bias);
    tdm_tensor_free(&y);
    tdm_aligned_free(scratch.p);
    for (int i = 0; i < node.n_attr; i++) {
        free(node.attrs[i].ints);
        free(node.attrs[i].name);
    }
    free(node.attrs);
    return 0;
}

int main(int argc, char **argv)
{
    double min_ms = 300;
    int only_threads = 0;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--min-ms") == 0 && i + 1 < argc) {
            min_ms = atof(argv[++i]);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            only_threads = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            only = argv[++i];
        } else {
            fprintf(stderr, "usage: bench_conv [--min-ms MS] [--threads N] [--only SUBSTRING]\n");
            return strcmp(argv[i], "--help") == 0 ? 0 : 2;
        }
    }
    for (int threads = 1; threads <= 2; threads++) {
        int t = only_threads > 0 ? only_threads : threads;
        tdm_pool *pool = NULL;
        if (t > 1 && tdm_pool_create(t, &pool, NULL) != TDM_OK) {
            fprintf(stderr, "bench_conv: cannot create a pool of %d threads\n", t);
            return 1;
        }
        for (size_t i = 0; i < sizeof k_shapes / sizeof k_shapes[0]; i++)
            if ((only == NULL || strstr(k_shapes[i].what, only) != NULL) &&
                bench_one(&k_shapes[i], pool, min_ms) != 0)
                return 1;
        tdm_pool_free(pool);
        if (only_threads > 0)
            break;
    }
    return 0;
}
