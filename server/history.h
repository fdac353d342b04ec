/* Per-worker history of end-of-epoch evaluations, kept by each shard for
 * status, /status and the dashboard ("the history, not only the latest
 * value").
 *
 * Workers resend their latest evaluation with every progress report, so an
 * entry equal to the worker's newest one is a repeat and is not recorded
 * again. Memory is bounded twice: each worker keeps its newest `per_worker`
 * entries (the oldest is dropped), and all workers together hold at most
 * `total`; once that is reached a worker's new entry replaces its own oldest
 * one, and a worker with no entry yet gets none recorded.
 *
 * Single-threaded (the shard's event loop). */
#ifndef PS_HISTORY_H
#define PS_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#define PS_HISTORY_PER_WORKER 1000
#define PS_HISTORY_TOTAL 100000

typedef struct ps_epoch_eval {
    uint32_t epoch;
    uint64_t samples;
    double loss, accuracy;             /* held-out set; NaN: none */
    double train_loss, train_accuracy; /* the epoch's batches; NaN: none */
    double auc;                        /* NaN: not a binary model */
    int64_t time_ms;                   /* when recorded (Unix ms) */
} ps_epoch_eval;

enum {
    PS_HISTORY_DROPPED = -1, /* total cap reached, nothing to replace, or
                                out of memory */
    PS_HISTORY_REPEAT = 0,   /* same as the worker's newest entry */
    PS_HISTORY_ADDED = 1
};

typedef struct ps_history ps_history;

/* An empty history; PS_EINVAL when a bound is 0, PS_ENOMEM. */
int ps_history_new(ps_history **out, size_t per_worker, size_t total);
void ps_history_free(ps_history *h);

/* Records e (copied, time_ms included) as the worker's newest entry,
 * unless it repeats that entry: same epoch, samples and figures (NaN equal
 * to NaN; time_ms not compared). Returns PS_HISTORY_*. */
int ps_history_add(ps_history *h, uint32_t worker, const ps_epoch_eval *e);

/* Entries of one worker (0 if unknown), and entry i of them, oldest first
 * (NULL past the end). Pointers stay valid until the next add. */
size_t ps_history_len(const ps_history *h, uint32_t worker);
const ps_epoch_eval *ps_history_at(const ps_history *h, uint32_t worker,
                                   size_t i);

/* Entries held for all workers. */
size_t ps_history_total(const ps_history *h);

#endif
