/*
 * Codec sweep: the rate-accuracy trade-off of sending a cut's activations.
 *
 * Which codec setting to use at a cut is an empirical question: int4 with
 * top-k may cost nothing on one model and ruin another. The sweep answers it
 * on real inputs with the real wire unit. The head runs once per batch (graph
 * inputs -> the cut tensors, plus the unsplit output for the reference), then
 * for every setting of a grid each request's cut tensors are encoded as their
 * own frames (one request = one image, batch dimension 1), decoded, put back
 * into a batch, and the tail runs on them. Per setting we count correct
 * top-1 predictions against the labels and agreement with the uncompressed
 * model, bytes of the frames, and encode/decode time.
 *
 * The pure parts (the grid, the Pareto front, the choice of the smallest
 * setting within an accuracy loss) are separate functions so that they can be
 * tested on synthetic numbers without a model.
 */
#ifndef TANDEM_COLLAB_SWEEP_H
#define TANDEM_COLLAB_SWEEP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tandem/codec.h"
#include "tandem/graph.h"
#include "tandem/status.h"
#include "tandem/tensor.h"

typedef enum tdm_sweep_grid_kind {
    TDM_SWEEP_GRID_SMALL =
        0, /* lossless, f16, int8/int4 x tensor/channel x minmax x top-k {0,.25} */
    TDM_SWEEP_GRID_FULL = 1, /* lossless, f16, int8/int4 x tensor/channel x minmax/p99.9 x
                                top-k {0, .5, .25, .1}, plus 10 dead-zone (zero_fraction)
                                and int4 p99 settings */
} tdm_sweep_grid_kind;

/* Most settings a grid holds. */
#define TDM_SWEEP_MAX_SETTINGS 64

/* Percentile used by the percentile-clipping settings. */
#define TDM_SWEEP_PERCENTILE 99.9f

/*
 * Fills out[0..cap) with the settings of a grid (channel_axis 1, entropy on)
 * and returns how many; 0 when cap is too small.
 */
int tdm_sweep_grid(tdm_sweep_grid_kind kind, tdm_codec_params *out, int cap);

/* A short label of a setting: "int8/ch/p99.9/top0.25", "int4/tensor/minmax/z0.05". Returns buf. */
char *tdm_sweep_label(const tdm_codec_params *p, char *buf, size_t len);

/* What one setting measured. */
typedef struct tdm_sweep_result {
    tdm_codec_params params;
    int64_t requests; /* images encoded */
    uint64_t bytes;   /* sum of all frames of all requests */
    int64_t correct;  /* top-1 equal to the label */
    int64_t agree;    /* top-1 equal to the uncompressed model's */
    double encode_ns; /* summed over requests */
    double decode_ns; /* summed over requests */
    /* Derived by tdm_sweep_finish: */
    double bytes_per_request;
    double ratio_fp32;           /* float32 bytes of the cut tensors / bytes_per_request */
    double accuracy;             /* correct / requests */
    double agreement;            /* agree / requests */
    double loss;                 /* reference accuracy - accuracy (may be negative) */
    double encode_us, decode_us; /* mean per request */
    /* Median per request, set by tdm_sweep_run: robust to preemption on a loaded machine. */
    double encode_p50_us, decode_p50_us;
    bool pareto; /* no other setting is both no larger and more accurate */
} tdm_sweep_result;

/* Fills the derived fields of r[0..n) given the reference accuracy and float32 bytes per request.
 */
void tdm_sweep_finish(tdm_sweep_result *r, int n, double ref_accuracy, double fp32_bytes);

/*
 * Marks r[i].pareto: true when no other result has bytes_per_request <= and
 * accuracy >= with one of them strict (equal points are both on the front).
 */
void tdm_sweep_pareto(tdm_sweep_result *r, int n);

/*
 * Index of the result with the fewest bytes per request among those whose
 * loss is <= max_loss (ties: the higher accuracy, then the lower index);
 * -1 when none qualifies.
 */
int tdm_sweep_best(const tdm_sweep_result *r, int n, double max_loss);

/* Sorts indices idx[0..n) of r by bytes per request (then accuracy descending). */
void tdm_sweep_order(const tdm_sweep_result *r, int n, int *idx);

/* What tdm_sweep_run needs. */
typedef struct tdm_sweep_config {
    tdm_session *session;    /* of the whole (optimised) model */
    const char *input_name;  /* the one graph input */
    const char *output_name; /* the scored output: [B, classes] float32 */
    int n_cut;
    const char *const *cut_names; /* the cut's tensors (a graph input may be one of them) */
    /* Images [N, ...] float32 already in the model's per-image shape, and N labels. */
    const tdm_tensor *x;
    const int32_t *labels;
    int64_t batch;      /* images per head/tail run */
    bool fixed_batch;   /* the model declares batch: pad the last batch to it */
    size_t max_decoded; /* tdm_codec_decode's max_bytes per frame */
} tdm_sweep_config;

/*
 * Runs the sweep over settings[0..n) into results[0..n) (zeroed first; params
 * copied), and sets *ref_correct (top-1 of the uncompressed model) and
 * *fp32_bytes (float32 bytes of one request's cut tensors). Call
 * tdm_sweep_finish afterwards.
 */
tdm_status tdm_sweep_run(const tdm_sweep_config *cfg, const tdm_codec_params *settings, int n,
                         tdm_sweep_result *results, int64_t *ref_correct, double *fp32_bytes,
                         tdm_err *err);

#endif
