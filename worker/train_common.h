/* What the two training loops share (trainer.c for the dense models,
 * trainer_sparse.c for logreg): the JSON progress line, the connection to
 * the servers, and the seeded shuffle order. */
#ifndef PS_TRAIN_COMMON_H
#define PS_TRAIN_COMMON_H

#include "sparkps.h"
#include "trainer.h"
#include "worker_stats.h"

#include <stdint.h>
#include <stdio.h>

/* One progress line; fields that are NAN are left out of it. */
typedef struct ps_progress_line {
    const char *event; /* "progress", "epoch", "done" */
    int worker, epoch;
    uint64_t samples;
    double loss, accuracy, samples_per_s;
    double lr; /* of the latest push */
    double test_loss, test_accuracy, test_auc;
    /* The worker's figures; the "done" line adds their step time by phase
     * ("compute_s", "wait_s", "input_s" and "wait_share", the share spent
     * waiting on the servers). NULL: none. */
    const ps_worker_stats *phases;
} ps_progress_line;

/* Writes l as one JSON object on its own line and flushes. */
void ps_train_emit(FILE *out, const ps_progress_line *l);

/* Connects a worker's client (cfg's servers, job, worker id, timeout).
 * When `stop` is raised (SIGTERM), the client's blocking calls give up with
 * PS_ECANCELED instead of waiting out timeouts on servers that are gone.
 * On failure err says why. */
int ps_train_connect(const ps_train_cfg *cfg, volatile sig_atomic_t *stop,
                     ps_client **out, char *err, size_t errlen);

/* After a run's last push: sends the final progress and evaluation to the
 * servers (they would otherwise only see the previous epoch's). A failure
 * is logged, not returned: training itself is done. */
void ps_train_send_final(ps_client *c);

/* Copies the client's request counters into s, and hands s to
 * cfg->publish when there is one. */
void ps_train_publish(const ps_train_cfg *cfg, ps_client *c,
                      ps_worker_stats *s);

/* perm = a permutation of 0..n-1 that depends only on (seed, round), so a
 * run's order is reproducible (Fisher-Yates on a counter-based RNG). */
void ps_shuffle_order(uint32_t *perm, size_t n, uint64_t seed, uint64_t round);

#endif
