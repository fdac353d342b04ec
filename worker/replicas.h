/* A data-parallel device group: N replicas of one model on N backends
 * that behave as one model, so a worker with several devices is still one
 * worker for the servers (one pull, one push per step).
 *
 * set_params uploads to replica 0 and broadcasts to the others. step
 * splits the batch's rows into N contiguous, near-equal slices (the first
 * n % N replicas take one row more; a replica whose slice is empty sits
 * the step out, so batches smaller than N work) and runs every replica's
 * step at once (issued on all devices, then waited for). get_grads returns
 * the mean-loss gradient of the whole batch: each replica's gradient is
 * scaled by n_i / n on its device, the scaled gradients are summed into
 * replica 0 (ps_comm: NCCL or the host fallback) and downloaded once.
 * eval and predict split the rows the same way and combine the results:
 * loss as the row-weighted mean, correct counts summed, probabilities
 * placed at their rows.
 *
 * The ps_model metadata (tables, sizes) is that of ps_replicas_model(g).
 * Threads: one thread uses a group, its models and backends. */
#ifndef PS_REPLICAS_H
#define PS_REPLICAS_H

#include "backend.h"
#include "model.h"

#include <stddef.h>

typedef struct ps_replicas ps_replicas;

/* Builds n (1..PS_COMM_MAX_RANKS) replicas of model `spec` on bes[0..n-1]
 * (borrowed, distinct, outliving the group), each sized for its slice of
 * max_batch rows. Errors as ps_model_new and ps_comm_new, err naming the
 * device that failed; *out untouched on failure. */
int ps_replicas_new(ps_replicas **out, const char *spec, size_t input_dim,
                    size_t classes, ps_backend *const *bes, size_t n,
                    size_t max_batch, char *err, size_t errlen);
void ps_replicas_free(ps_replicas *g);

/* Replica 0's model (borrowed): the tables and sizes of the group. */
const ps_model *ps_replicas_model(const ps_replicas *g);
size_t ps_replicas_count(const ps_replicas *g);
/* The communicator's kind: "nccl" or "host". */
const char *ps_replicas_comm_kind(const ps_replicas *g);
/* Replica i's model (borrowed), for tests that look at one replica. */
ps_model *ps_replicas_at(ps_replicas *g, size_t i);

/* As the ps_model_* functions of the same names, over the whole group. */
int ps_replicas_set_params(ps_replicas *g, const float *params);
/* params unchanged until the next call that waits on device 0's backend
 * (a step, eval, predict, get_grads, ps_backend_sync). */
int ps_replicas_set_params_async(ps_replicas *g, const float *params);
int ps_replicas_step(ps_replicas *g, const float *x, const float *y, size_t n,
                     double *loss, size_t *correct);
/* The pipelined step (see ps_model_stage): stage splits the batch and
 * issues each slice's upload into that slot of its replica; step_begin
 * issues every replica's step on the batch staged in `slot` and, when
 * grads is not NULL, the reduction and the sum's download into grads
 * behind them (read grads only after step_end; with the host fallback
 * step_begin waits for the steps); step_end waits for it all and combines
 * loss and correct count. get_grads works as after ps_replicas_step. */
int ps_replicas_stage(ps_replicas *g, int slot, const float *x, const float *y,
                      size_t n);
int ps_replicas_step_begin(ps_replicas *g, int slot, float *grads);
int ps_replicas_step_end(ps_replicas *g, double *loss, size_t *correct);
int ps_replicas_get_grads(ps_replicas *g, float *grads);
int ps_replicas_eval(ps_replicas *g, const float *x, const float *y, size_t n,
                     double *loss, size_t *correct);
int ps_replicas_predict(ps_replicas *g, const float *x, size_t n,
                        float *probs);

#endif
