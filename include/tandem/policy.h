/*
 * The heuristic placement policy: where should the rest of one request run?
 *
 * After the edge has run the head of a model (and, when the model has one, an
 * exit head that gives a calibrated confidence), four answers are possible:
 *
 *   exit     the exit head is confident enough: answer now, on the device;
 *   local    finish the remaining layers on the device;
 *   offload  send the cut tensors to the cloud and let it run the tail;
 *   defer    nothing can meet the deadline now (or the cloud is unreachable
 *            and the device cannot finish in time): queue the request for
 *            later, when the caller allows it.
 *
 * The policy is a pure function of its inputs (no clock, no sockets, no
 * state), so the edge agent and the gateway's /v1/policy/decide give the same
 * answer for the same numbers, and tests can enumerate the cases. The
 * estimates it compares are
 *
 *   local   = local_ms                                   (device, rest of model)
 *   offload = rtt_ms + upload_bytes / bandwidth + cloud_ms * (1 + cloud_load)
 *
 * (the cloud's compute time is inflated by its reported load so a busy
 * gateway attracts less work). Learned policies (bandits) will implement the
 * same input/result types.
 */
#ifndef TANDEM_POLICY_H
#define TANDEM_POLICY_H

#include <stdbool.h>

#include "tandem/status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tdm_policy_decision {
    TDM_POLICY_DECISION_LOCAL = 0,
    TDM_POLICY_DECISION_EXIT,
    TDM_POLICY_DECISION_OFFLOAD,
    TDM_POLICY_DECISION_DEFER,
} tdm_policy_decision;

typedef struct tdm_policy_config {
    double confidence_threshold; /* exit when confidence >= this (0..1]; default 0.9 */
    double max_rtt_ms;           /* never offload over a link slower than this; default 1000 */
    double margin;               /* offload only when it beats local by this factor; default 1.0 */
} tdm_policy_config;

typedef struct tdm_policy_input {
    double confidence;     /* exit head's confidence 0..1, or < 0 when there is none */
    double rtt_ms;         /* measured round trip to the gateway, < 0 when unknown */
    double deadline_ms;    /* time left for this request, 0 = no deadline */
    double local_ms;       /* estimated time to finish on the device */
    double cloud_ms;       /* estimated tail compute time in the cloud */
    double upload_bytes;   /* size of the encoded cut tensors */
    double bandwidth_mbps; /* uplink, megabits per second; 0 = unknown (upload cost ignored) */
    double cloud_load;     /* gateway's reported load, 0 (idle) .. 1 (saturated) */
    bool cloud_available;  /* false when the gateway is known to be unreachable */
    bool deferrable;       /* the caller accepts "defer" (the replay queue) */
} tdm_policy_input;

typedef struct tdm_policy_result {
    tdm_policy_decision decision;
    const char *reason;          /* a fixed snake_case string, e.g. "confident_exit" */
    double estimated_latency_ms; /* estimate for the chosen path (0 for exit) */
    double local_ms;             /* the two estimates that were compared */
    double offload_ms;           /* < 0 when offloading was not possible */
} tdm_policy_result;

/* The defaults documented above. */
void tdm_policy_config_default(tdm_policy_config *cfg);

/* A neutral input: no confidence, unknown link, no deadline, cloud available. */
void tdm_policy_input_default(tdm_policy_input *in);

/*
 * Decides. Inputs that are NaN, infinite or out of range (negative times,
 * confidence above 1, load outside 0..1) give TDM_ERR_INVALID_ARG naming the
 * field, and *out is untouched.
 */
tdm_status tdm_policy_decide(const tdm_policy_config *cfg, const tdm_policy_input *in,
                             tdm_policy_result *out, tdm_err *err);

/* "local", "exit", "offload", "defer". */
const char *tdm_policy_decision_name(tdm_policy_decision d);

#ifdef __cplusplus
}
#endif
#endif
