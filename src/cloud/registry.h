/*
 * The model registry: <repo>/<model>/<version>/ directories loaded into runnable entries.
 *
 * A version directory holds the ONNX file, an optional model.yaml, and the cut manifests
 * that `tandem split` writes (any <version>/<cut>/manifest.json, or cuts listed in
 * model.yaml). Each version gets one entry for the whole model ("full") and one per cut
 * whose tail the cloud runs (cut tensors -> outputs, from the original model file with
 * tdm_session_run_range); each entry owns a batcher. A registry is immutable once loaded:
 * POST /v1/models/reload builds a new one and swaps it in, and the old one is freed when the
 * last request using it returns (reference counted), so a reload never fails a request in
 * flight.
 *
 * model.yaml (every key optional):
 *   file: model.onnx          # default: the only .onnx file in the directory
 *   task: classify            # classify (argmax + softmax confidence) | embed (mean pool,
 *                             # L2 normalised) | raw (all outputs as arrays)
 *   input: tensor             # tensor (.npy) | text (tokenised; BERT-style inputs)
 *   tokenizer: .              # directory with vocab.txt / tokenizer.json (text models)
 *   max_seq_len: 256
 *   labels: [cat, dog, ...]   # names of the classes
 *   exits: [exit1, ...]       # early-exit heads (listed by GET /v1/models)
 *   cuts:                     # cuts not written as manifests
 *     - {name: c1, tensors: [t1, t2]}
 */
#ifndef TANDEM_CLOUD_REGISTRY_H
#define TANDEM_CLOUD_REGISTRY_H

#include <stdbool.h>

#include "base/json.h"
#include "cloud/batcher.h"
#include "cloud/gateway_internal.h"
#include "cloud/metrics.h"
#include "tandem/graph.h"
#include "tandem/text.h"

typedef enum tdm_gw_task { TDM_GW_TASK_CLASSIFY, TDM_GW_TASK_EMBED, TDM_GW_TASK_RAW } tdm_gw_task;

typedef struct tdm_gw_entry {
    char name[64]; /* "full" or the cut's name */
    int n_in;
    char *in_names[TDM_GW_MAX_IO];
    tdm_value_info in_info[TDM_GW_MAX_IO]; /* declared dtype and dims (-1 = any) */
    int n_out;
    char *out_names[TDM_GW_MAX_IO];
    tdm_gw_batcher *batcher;
    tdm_session **sessions; /* one per batch worker */
    int n_sessions;
} tdm_gw_entry;

typedef struct tdm_gw_version {
    char model[128];
    char version[64];
    char dir[1024];
    char file[256];
    tdm_graph *graph;
    tdm_gw_task task;
    bool text_input;
    tdm_tokenizer *tok;
    int max_seq_len;
    int n_labels;
    char **labels;
    int n_exits;
    char **exits;
    int n_entries;
    tdm_gw_entry *entries; /* [0] is "full" */
} tdm_gw_version;

typedef struct tdm_gw_models tdm_gw_models; /* one loaded snapshot of the repository */

/* Loads every model version of cfg->model_repo. A version that fails to load is an error
 * naming its directory (a gateway must not come up with half its models missing). */
tdm_status tdm_gw_models_load(const tdm_gw_config *cfg, tdm_gw_metrics *metrics,
                              tdm_gw_models **out, tdm_err *err);
/* Drops a reference (the loader's or an acquire's); the last one frees. */
void tdm_gw_models_release(tdm_gw_models *m);

/* The registry of a running gateway: the current snapshot, swappable. */
struct tdm_gw_registry;
tdm_status tdm_gw_registry_create(const tdm_gw_config *cfg, tdm_gw_metrics *metrics,
                                  tdm_gw_registry **out, tdm_err *err);
void tdm_gw_registry_free(tdm_gw_registry *r);
/* Loads the repository again and swaps it in; on failure the old snapshot stays. */
tdm_status tdm_gw_registry_reload(tdm_gw_registry *r, tdm_err *err);
/* The current snapshot, referenced; release with tdm_gw_models_release. */
tdm_gw_models *tdm_gw_registry_acquire(tdm_gw_registry *r);

/* Finds model (and version; NULL or "" = the highest version). */
const tdm_gw_version *tdm_gw_models_find(const tdm_gw_models *m, const char *model,
                                         const char *version);
const tdm_gw_entry *tdm_gw_version_entry(const tdm_gw_version *v, const char *name);
/* Writes {"models":[{"name","versions":[{"version","file","task","input","inputs","outputs",
 * "cuts":[...],"exits":[...],"batch_limit"}]}]}. */
void tdm_gw_models_list_json(const tdm_gw_models *m, tdm_json_buf *b);
int tdm_gw_models_count(const tdm_gw_models *m);

#endif
