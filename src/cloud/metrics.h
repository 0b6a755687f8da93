/*
 * Gateway metrics in the Prometheus text exposition format (version 0.0.4).
 *
 * A fixed set of series that the issue names (requests and latency by endpoint and status,
 * queue and compute time, batch sizes, cache hits/misses, deadline rejections, in-flight)
 * plus free-form counters that modules add by full series name. One mutex guards all of it:
 * an update is a few adds, far cheaper than the request it measures, and a scrape sees a
 * consistent snapshot.
 */
#ifndef TANDEM_CLOUD_METRICS_H
#define TANDEM_CLOUD_METRICS_H

#include <stdint.h>

#include "base/json.h"
#include "tandem/status.h"

typedef struct tdm_gw_metrics tdm_gw_metrics;

tdm_status tdm_gw_metrics_create(tdm_gw_metrics **out, tdm_err *err);
void tdm_gw_metrics_free(tdm_gw_metrics *m);

/* One finished request: its route pattern (or "unmatched"), method, status, seconds. */
void tdm_gw_metrics_request(tdm_gw_metrics *m, const char *route, const char *method, int status,
                            double seconds);
/* One batch run by a batcher: model, entry ("full" or a cut), size, seconds in the engine. */
void tdm_gw_metrics_batch(tdm_gw_metrics *m, const char *model, int size, double compute_s);
/* Time one request waited in a batcher queue. */
void tdm_gw_metrics_queue_time(tdm_gw_metrics *m, double seconds);
/* Named events: "rejected_deadline", "dropped_disconnected", "rejected_overload",
 * "idempotent_replay", "cache_hit", "cache_miss". Unknown names are counted as free-form
 * counters "tandem_<name>_total". */
void tdm_gw_metrics_event(tdm_gw_metrics *m, const char *name);
/* Adds v to a free-form counter given by its full series name, e.g.
 * "tandem_telemetry_reports_total{kind=\"exit\"}" (at most 64 such series). */
void tdm_gw_metrics_counter_add(tdm_gw_metrics *m, const char *series, double v);
/* In-flight gauge (the server moves it). */
void tdm_gw_metrics_inflight(tdm_gw_metrics *m, int delta);
/* Current batch size limit of a batcher (gauge, for AIMD). */
void tdm_gw_metrics_batch_limit(tdm_gw_metrics *m, const char *model, int limit);

/* Appends the whole exposition text to b. */
void tdm_gw_metrics_render(tdm_gw_metrics *m, tdm_json_buf *b);

#endif
