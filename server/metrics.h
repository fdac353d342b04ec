/* A shard's Prometheus metrics (/metrics).
 *
 * Most figures already live in the shard's Status (requests and errors,
 * tables, workers and their progress), so /metrics renders from the same
 * Status the wire STATUS request returns; ps_metrics adds what only the
 * event loop sees: bytes and latency by request type and the optimizer's
 * time. The metric names are a contract (dashboards and alerts build on
 * them); README's Monitoring section lists them.
 *
 * Single-threaded: the event loop updates and renders it. */
#ifndef PS_METRICS_H
#define PS_METRICS_H

#include "common/codec.h"
#include "common/prom.h"
#include "common/strbuf.h"

#include <stdint.h>

#define PS_METRICS_TYPES (PS_MSG_TYPE_MAX + 1)

/* Request types with a latency histogram. */
enum { PS_METRICS_PUSH, PS_METRICS_PULL, PS_METRICS_PUSHPULL, PS_METRICS_NLAT };

typedef struct ps_metrics {
    uint64_t bytes_in[PS_METRICS_TYPES];   /* by request type; 0: frames
                                              without a valid header */
    uint64_t bytes_out[PS_METRICS_TYPES];  /* by reply type, likewise */
    ps_prom_hist latency[PS_METRICS_NLAT]; /* arrival to reply sent */
    int64_t apply_ns;                      /* time spent in the optimizer */
    int64_t http_ns;                       /* the loop's time on HTTP */
} ps_metrics;

void ps_metrics_init(ps_metrics *m);

/* Type index for the byte counters: `type` when known, else 0. */
int ps_metrics_type_index(int type);

/* Counts a push/pull/pushpull answered `seconds` after it arrived (other
 * types are ignored). */
void ps_metrics_observe(ps_metrics *m, int type, double seconds);

/* Appends the whole exposition (format 0.0.4) for this shard. */
void ps_metrics_render(const ps_metrics *m, const Sparkps__Status *st,
                       ps_strbuf *out);

#endif
