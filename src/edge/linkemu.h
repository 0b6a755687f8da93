/*
 * A network link emulator: a user-space TCP proxy that makes a loopback
 * connection behave like a LAN, a 4G link or a congested one, and that can
 * stall or cut the link on command. Tests and the demo put it between the edge
 * agent and the gateway, so no root (tc/netem) is needed.
 *
 * Model, per direction of each proxied connection: bytes are read in
 * segments of at most one MSS; a segment occupies the direction's link for
 * len / rate seconds (serialisation: the link is one queue shared by every
 * connection of the emulator, as a real bottleneck is), then arrives after
 * the one-way delay plus a jitter drawn uniformly from [-jitter, +jitter].
 * Arrival times never go backwards within a connection (TCP would reorder
 * them back anyway), so jitter stretches gaps but keeps the byte stream
 * intact. Reading stops while a direction holds more than a bounded amount
 * of queued bytes, so a fast sender sees back-pressure like on a real link
 * rather than an unbounded buffer.
 *
 * States: open (forward), stalled (accept and keep connections but forward
 * nothing: the peer sees time-outs), cut (reset every connection and refuse
 * new ones: the peer sees the endpoint go away). One thread runs the proxy's
 * poll loop; settings change from any thread through the functions below.
 */
#ifndef TANDEM_EDGE_LINKEMU_H
#define TANDEM_EDGE_LINKEMU_H

#include <stdbool.h>
#include <stdint.h>

#include "tandem/status.h"

typedef struct tdm_link_profile {
    double delay_ms;  /* one-way propagation delay */
    double jitter_ms; /* uniform in [-jitter, +jitter], added to delay, clamped at 0 */
    double rate_kbps; /* link rate per direction in kbit/s; 0 = unlimited */
} tdm_link_profile;

typedef enum tdm_link_state {
    TDM_LINK_OPEN = 0,
    TDM_LINK_STALLED,
    TDM_LINK_CUT,
} tdm_link_state;

typedef struct tdm_linkemu_stats {
    uint64_t connections; /* accepted since start */
    uint64_t active;      /* open now */
    uint64_t bytes_up;    /* client -> upstream, delivered */
    uint64_t bytes_down;  /* upstream -> client, delivered */
    uint64_t refused;     /* connections refused while cut, or upstream unreachable */
} tdm_linkemu_stats;

typedef struct tdm_linkemu tdm_linkemu;

/*
 * Named profiles of the demo: "lan" (2 ms, 1 Gbit/s), "4g" (60 ms, 10 Mbit/s),
 * "congested" (200 ms +- 50, 1 Mbit/s) and "none" (no shaping). Delays are
 * one-way, so a round trip costs twice the delay.
 */
tdm_status tdm_link_profile_named(const char *name, tdm_link_profile *out, tdm_err *err);

/*
 * Starts a proxy listening on listen_host:listen_port (port 0 picks a free
 * one; see tdm_linkemu_port) that forwards to upstream_host:upstream_port.
 * seed makes the jitter reproducible.
 */
tdm_status tdm_linkemu_start(const char *listen_host, int listen_port, const char *upstream_host,
                             int upstream_port, const tdm_link_profile *profile, uint64_t seed,
                             tdm_linkemu **out, tdm_err *err);
/* Stops the proxy, closes every connection and frees it. NULL is a no-op. */
void tdm_linkemu_stop(tdm_linkemu *e);

int tdm_linkemu_port(const tdm_linkemu *e);
void tdm_linkemu_set_profile(tdm_linkemu *e, const tdm_link_profile *profile);
void tdm_linkemu_set_state(tdm_linkemu *e, tdm_link_state state);
/* Points the proxy at another upstream; existing connections keep theirs. */
void tdm_linkemu_set_upstream(tdm_linkemu *e, int upstream_port);
void tdm_linkemu_get_stats(tdm_linkemu *e, tdm_linkemu_stats *st);

#endif
