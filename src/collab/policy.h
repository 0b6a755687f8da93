/*
 * Internal side of the placement policy: its JSON forms, shared by the
 * gateway's /v1/policy/decide and the edge agent's config and logs, so both
 * spell the fields the same way (names as in tdm_policy_input; absent fields
 * keep tdm_policy_input_default's values; "confidence" absent = no exit head).
 */
#ifndef TANDEM_COLLAB_POLICY_H
#define TANDEM_COLLAB_POLICY_H

#include "base/json.h"
#include "tandem/policy.h"

/* Reads an input object; a field of the wrong type is an error naming it. */
tdm_status tdm_policy_input_from_json(const tdm_json *obj, tdm_policy_input *in, tdm_err *err);

/*
 * Appends {"decision","reason","estimated_latency_ms","estimates":{"local_ms","offload_ms"}}
 * (offload_ms null when offloading was impossible).
 */
void tdm_policy_result_json(const tdm_policy_result *r, tdm_json_buf *b);

#endif
