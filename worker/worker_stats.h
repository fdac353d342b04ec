/* A worker's own figures, the ones the servers cannot see: where its step
 * time goes (compute, waiting on the servers, reading input), its step
 * durations, its latest training and evaluation figures and its client's
 * request counters; rendered as Prometheus text (GET /metrics of
 * `ps-worker --http`) and as JSON (/status).
 *
 * The /status object (README, "Worker metrics"):
 *   {"worker":W,"attempt":A,"device":"cpu","model":"mlp:...",
 *    "state":"starting"|"training"|"done"|"failed","epoch":E,
 *    "samples":N,"steps":S,
 *    "seconds":{"compute":..,"wait":..,"input":..},"wait_share":F,
 *    "step_seconds":{"count":S,"sum":..},
 *    "train":{"loss":..,"accuracy":..},
 *    "eval":{"epoch":E,"loss":..,"accuracy":..},
 *    "client":{"requests":..,"retries":..,"timeouts":..,"disconnects":..}}
 * A figure not measured yet is null; wait_share is wait / (compute + wait
 * + input), null before the first step.
 *
 * Plain data and pure functions: one owner updates a ps_worker_stats,
 * rendering only reads it (worker_http.c renders a copy). */
#ifndef PS_WORKER_STATS_H
#define PS_WORKER_STATS_H

#include "common/prom.h"
#include "common/strbuf.h"

#include <stdint.h>

typedef enum ps_step_phase {
    PS_PHASE_COMPUTE, /* forward, backward, gradient accumulation */
    PS_PHASE_WAIT,    /* push/pull round trips and clock calls */
    PS_PHASE_INPUT,   /* reading, parsing and shuffling the data */
    PS_PHASE_COUNT
} ps_step_phase;

typedef struct ps_worker_stats {
    int worker_id, attempt;
    char device[64]; /* as given: "cpu", "cpu:4", "cuda:0" */
    char model[128];
    const char *state; /* static: "starting", "training", "done", "failed" */
    int epoch;         /* the current one, from 1; 0 before training */
    uint64_t samples, steps;
    double phase_s[PS_PHASE_COUNT]; /* seconds spent by phase */
    ps_prom_hist step_s;            /* one step's duration, seconds */
    double loss, accuracy;          /* the epoch's running means; NAN: none */
    int eval_epoch;                 /* of the latest evaluation; 0: none */
    double eval_loss, eval_accuracy;
    uint64_t requests, retries, timeouts, disconnects; /* the client's */
} ps_worker_stats;

/* Zero counters, no figures, state "starting"; device and model copied
 * (cut to fit). */
void ps_worker_stats_init(ps_worker_stats *s, int worker_id, int attempt,
                          const char *device, const char *model);

/* Counts one step: the microseconds of each of its phases (their sum is
 * the step's duration), and the progress after it. */
void ps_worker_stats_step(ps_worker_stats *s, const int64_t us[PS_PHASE_COUNT],
                          int epoch, uint64_t samples, double loss,
                          double accuracy);

/* wait / (compute + wait + input); NAN before any time was counted. */
double ps_worker_stats_wait_share(const ps_worker_stats *s);

/* Prometheus text 0.0.4, every family prefixed sparkps_trainer_ (the
 * servers' per-worker view already holds the names sparkps_worker_*),
 * every sample labelled worker and attempt. */
void ps_worker_stats_prom(const ps_worker_stats *s, ps_strbuf *out);

/* The /status object above, one line. */
void ps_worker_stats_json(const ps_worker_stats *s, ps_strbuf *out);

#endif
