/*
 * What /v1/infer and /v1/features share: decoding inputs, checking them against what an
 * entry declares, running them through the entry's batcher and writing the result.
 *
 * Both endpoints end the same way (a tensor set goes through a batcher; outputs become a
 * classification, an embedding or raw arrays), and both must reject malformed input with
 * the same documented codes, so the checks and the result format live here once.
 */
#ifndef TANDEM_CLOUD_RUNNER_H
#define TANDEM_CLOUD_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloud/http.h"
#include "cloud/registry.h"

/* Decodes standard or URL-safe base64 (padding optional, no whitespace) into a malloc'd
 * buffer. False on a bad character or length. */
bool tdm_gw_b64_decode(const char *s, size_t n, unsigned char **out, size_t *out_len);

/* Checks t against info (dtype, rank, fixed dims other than the batch dim 0) and the tensor
 * size limit; on failure writes a 400 bad_input / 413 tensor_too_large naming `what`. */
bool tdm_gw_check_input(const tdm_value_info *info, const tdm_tensor *t, size_t max_bytes,
                        const char *what, tdm_gw_response *resp);

/* The request's deadline (tdm_now_ns clock): JSON deadline_ms, else the X-Deadline-Ms header,
 * else the configured default. False (and a 400) when given but not a positive number. */
bool tdm_gw_deadline(const tdm_gw_request *req, const tdm_json *body, uint64_t *deadline_ns,
                     tdm_gw_response *resp);

/* Runs inputs through the entry's batcher and writes the JSON answer (or the error) into
 * resp. */
void tdm_gw_run_entry(const tdm_gw_request *req, const tdm_gw_version *v, const tdm_gw_entry *e,
                      const tdm_tensor *inputs, uint64_t deadline_ns, tdm_gw_response *resp);

/* Looks up model/version, writing 404 unknown_model / unknown_version when absent. */
const tdm_gw_version *tdm_gw_find_version(const tdm_gw_models *m, const char *model,
                                          const char *version, tdm_gw_response *resp);

#endif
