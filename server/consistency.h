/* Worker clocks and liveness for ASP / SSP / BSP.
 *
 * Each training worker (worker id >= 0) has a clock: the number of
 * iterations it has finished, raised by CLOCK messages (values only go up,
 * so a retried CLOCK is harmless). A worker is alive while it has sent
 * anything in the last timeout_ms; a silent one stops counting for the
 * minimum, so a lost worker never blocks the others, and counts again as
 * soon as it speaks. With `expected` workers configured, ids 0..expected-1
 * count from the shard's start (at clock 0) even before their first message,
 * so an early worker cannot run ahead of late starters.
 *
 * Under SSP with staleness s a pull by a worker at clock c may be served
 * when every live worker has clock >= c - s (BSP: s = 0). ASP serves at
 * once.
 *
 * Attempts: a worker joins as (id, attempt), the attempt growing with each
 * retry of its run (the Spark connector passes the task's attempt id,
 * which grows when Spark retries a barrier stage as a whole). While the
 * newest attempt seen for an id is alive, it owns the id: messages of an
 * older one are refused, so a stale process still running cannot move the
 * retried run's tables or clocks. Once the owner has been silent past the
 * timeout (finished or dead) the id is free again and any attempt may
 * join: worker ids are reused by the next job on the same servers, whose
 * attempts start low again.
 *
 * Joining a worker id (a newer attempt, or any attempt of a free id) is a
 * fresh join: its clock restarts at 0, because the new run restarts
 * training from its first step (its clocks come again from 1) and CLOCK
 * only raises a clock: kept at the old value, the new attempt would not
 * count for the minimum until it passed it, letting the others run that
 * far ahead. Lowering a clock only makes pulls wait longer, never serves
 * one early, so the SSP/BSP bound holds; when the whole stage is retried
 * every worker restarts at 0 anyway.
 *
 * Single-threaded (the event loop). */
#ifndef PS_CONSISTENCY_H
#define PS_CONSISTENCY_H

#include <stddef.h>
#include <stdint.h>

enum { PS_CONS_ASP = 0, PS_CONS_SSP = 1, PS_CONS_BSP = 2 };

#define PS_MAX_WORKER_ID 65535

typedef struct ps_consist_cfg {
    int mode;
    int staleness;  /* SSP only; BSP forces 0 */
    int expected;   /* workers to wait for; 0: only those seen */
    int timeout_ms; /* silence after which a worker stops counting */
} ps_consist_cfg;

typedef struct ps_worker_state {
    uint32_t id;
    uint32_t attempt;    /* the newest attempt seen for this id */
    uint64_t superseded; /* messages refused from older attempts */
    int64_t clock;
    int alive;
    int64_t last_seen_ms;
    /* progress the worker reported */
    uint64_t samples;
    double loss;
    uint32_t epoch;
    double accuracy;
    int has_progress;
} ps_worker_state;

typedef struct ps_consist ps_consist;

int ps_consist_new(ps_consist **out, const ps_consist_cfg *cfg, int64_t now_ms);
void ps_consist_free(ps_consist *c);

/* Parses "asp", "bsp", "ssp:S" into cfg->mode/staleness; PS_EINVAL else. */
int ps_consist_parse(const char *s, int *mode, int *staleness);

/* A message arrived from worker id (<= PS_MAX_WORKER_ID, checked by the
 * caller): marks it alive. PS_ENOMEM if it could not be tracked. */
int ps_consist_touch(ps_consist *c, uint32_t id, int64_t now_ms);

/* Checks the attempt a message of worker id carries, before it is acted
 * on; *before receives the attempt that owned the id until now (for an
 * unknown id, 0). PS_OK when `attempt` is not older than that, or when the
 * owner is no longer alive; a different attempt than before is a fresh
 * join: clock 0, reported progress cleared. PS_ESUPERSEDED when it is
 * older and the owner is alive: nothing changes but the worker's refusal
 * count. PS_ENOMEM if id could not be tracked. */
int ps_consist_admit(ps_consist *c, uint32_t id, uint32_t attempt,
                     int64_t now_ms, uint32_t *before);

/* Raises the worker's clock to `clock` (never lowers it). */
void ps_consist_set_clock(ps_consist *c, uint32_t id, int64_t clock);

void ps_consist_set_progress(ps_consist *c, uint32_t id, uint64_t samples,
                             double loss, uint32_t epoch, double accuracy);

/* Marks workers silent for longer than the timeout as not alive; returns
 * how many changed state, so the caller knows to retry deferred pulls. */
int ps_consist_expire(ps_consist *c, int64_t now_ms);

/* Smallest clock among live workers; INT64_MAX when none is alive. */
int64_t ps_consist_min_clock(const ps_consist *c);

/* Whether a pull at `clock` may be served now. */
int ps_consist_can_serve(const ps_consist *c, int64_t clock);

int ps_consist_mode(const ps_consist *c);
int ps_consist_staleness(const ps_consist *c);

/* Restores a worker from a checkpoint: its clock and progress as saved; it
 * counts as alive from now_ms (heard from just now), so it has a whole
 * timeout to come back before it stops counting. PS_ENOMEM. */
int ps_consist_restore(ps_consist *c, const ps_worker_state *w, int64_t now_ms);

/* Workers tracked, in id order (for status). NULL past the end. */
const ps_worker_state *ps_consist_worker_at(const ps_consist *c, size_t i);
size_t ps_consist_live(const ps_consist *c);

#endif
