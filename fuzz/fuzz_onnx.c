/*
 * libFuzzer target: the ONNX model reader and the standalone tensor decoder.
 *
 * Every input goes through tdm_graph_load_buffer (no base directory, so
 * external data is refused and no file is ever opened) and through
 * tdm_onnx_parse_tensor, since the conformance runner feeds the latter
 * untrusted .pb files too. A graph that loads is walked with the info calls
 * so that a half-initialised IR would show up as a crash here, not later.
 * Graph passes are skipped unless TDM_FUZZ_OPTIMIZE is set in the
 * environment: the reader is the target; passes can be fuzzed on purpose.
 */
#include <stdint.h>
#include <stdlib.h>

#include "engine/onnx/onnx.h"
#include "tandem/graph.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void count_op(void *arg, const char *op, int count)
{
    (void)op;
    *(int *)arg += count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tdm_load_options opt = {.no_optimize = getenv("TDM_FUZZ_OPTIMIZE") == NULL,
                            .max_file_size = 1u << 20};
    tdm_graph *g = NULL;
    tdm_err err;
    if (tdm_graph_load_buffer(data, size, NULL, &opt, &g, &err) == TDM_OK) {
        tdm_graph_stats st;
        tdm_graph_get_stats(g, &st);
        int ops = 0;
        tdm_graph_op_counts(g, count_op, &ops);
        if (ops != st.n_nodes)
            abort();
        tdm_value_info vi;
        for (int i = 0; i < tdm_graph_num_inputs(g); i++)
            if (tdm_graph_input_info(g, i, &vi) != TDM_OK || vi.name == NULL)
                abort();
        for (int i = 0; i < tdm_graph_num_outputs(g); i++)
            if (tdm_graph_output_info(g, i, &vi) != TDM_OK || vi.name == NULL)
                abort();
        tdm_graph_free(g);
    }
    tdm_tensor t;
    char *name = NULL;
    if (tdm_onnx_parse_tensor(data, size, &t, &name, &err) == TDM_OK) {
        /* touch every byte: a wrong size shows up under ASan */
        volatile uint8_t sink = 0;
        const uint8_t *p = t.data;
        for (size_t i = 0; i < tdm_tensor_nbytes(&t); i++)
            sink ^= p[i];
        (void)sink;
        tdm_tensor_free(&t);
    }
    free(name);
    return 0;
}
