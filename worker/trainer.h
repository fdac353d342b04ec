/* The training loop of one worker: asynchronous SGD against the servers.
 *
 * Per step: compute the gradient of a mini-batch with the current weights,
 * then push it (with push_every K, the mean gradient of K mini-batches, one
 * push per K steps; an epoch's last partial group is pushed too); every
 * pull_every-th push is a pushpull whose reply brings the servers' updated
 * weights. Each push carries the learning-rate factor of the schedule at
 * this worker's progress. With overlap on, the round trip of step t
 * runs while step t+1 computes (its weights are one exchange stale), so
 * communication hides behind compute. Under SSP/BSP the worker advances
 * its clock with every push. Each epoch reads the worker's share of the data
 * through a seeded shuffle buffer, then evaluates on the held-out set.
 *
 * Progress goes to `progress` (a FILE, normally stdout) as JSON lines:
 *   {"event":"progress","worker":0,"epoch":1,"samples":..,"loss":..,
 *    "accuracy":..,"samples_per_s":..,"lr":..}
 *   {"event":"epoch", ... ,"test_loss":..,"test_accuracy":..}
 *   {"event":"done", ... ,"compute_s":..,"wait_s":..,"input_s":..,
 *    "wait_share":..}
 * (the done line says where step time went: compute, waiting on the
 * servers, reading input; wait_share = wait / their sum; time outside
 * steps, the evaluations and the run's last wait, is not in them)
 * and to the servers with every push (ps_client_set_progress).
 *
 * Labels are checked as the shuffle buffer fills, before any of its rows
 * trains: a share that fits the buffer (the default 65536 rows hold a
 * Fashion-MNIST share) is checked whole before the first step. The eval set
 * is checked in a pass before training. */
#ifndef PS_TRAINER_H
#define PS_TRAINER_H

#include "data.h"
#include "worker_stats.h"

#include <signal.h>
#include <stdio.h>

typedef struct ps_train_cfg {
    const char *servers;
    const char *job;
    /* CurveZMQ key files (ps_client_cfg's; NULL: from the environment) */
    const char *curve_secret_key, *curve_server_key;
    int worker_id;
    int attempt;        /* which attempt of worker_id (ps_client_cfg.attempt) */
    const char *model;  /* "mlp:784-256-128-10", "softmax" */
    size_t classes;     /* 0: from the model spec */
    const char *device; /* "cpu", "cpu:T", "cuda:N" */
    ps_data_cfg data;
    ps_data_cfg eval; /* eval.path NULL: no evaluation */
    int epochs;
    size_t batch;
    const char *optimizer; /* sgd, momentum, adagrad, adam (ftrl: logreg) */
    double lr, momentum, weight_decay;
    /* FTRL (logreg): L1, L2 and beta; ftrl_beta 0 means 1.0 */
    double l1, l2, ftrl_beta;
    const char *lr_schedule; /* lr_schedule.h spec; NULL: constant */
    uint64_t warmup_steps;   /* linear warm-up over this worker's steps */
    int push_every;          /* push the mean gradient of K mini-batches */
    int pull_every;          /* every K-th push is a pushpull */
    int overlap;             /* exchange of step t overlaps step t+1 */
    uint64_t seed;
    size_t shuffle_rows;     /* shuffle buffer size in rows */
    double progress_every_s; /* seconds between progress lines */
    int timeout_ms;          /* client timeout per attempt (0: default) */
    int compute_only;        /* no servers: forward/backward only, as the
                                baseline communication is measured against */
    const char *init_from;   /* safetensors file (ps-ctl export) the tables
                                start from when no push reached them yet
                                (ASSIGN if_untouched); NULL: their init */
    /* NULL, else called from the training thread with the worker's
     * figures after every step and evaluation (ps-worker --http) */
    void (*publish)(void *arg, const ps_worker_stats *s);
    void *publish_arg;
} ps_train_cfg;

typedef struct ps_train_result {
    uint64_t samples;
    double seconds;
    double train_loss;
    double train_accuracy;
    double test_loss;
    double test_accuracy; /* -1 without an eval set */
    double test_auc;      /* logreg with an eval set; NAN otherwise */
} ps_train_result;

/* Runs the whole training. Returns PS_OK, or an error with the reason in
 * err; stops early (PS_ESHUTDOWN) when *stop becomes non-zero. */
int ps_train_run(const ps_train_cfg *cfg, FILE *progress,
                 volatile sig_atomic_t *stop, ps_train_result *res, char *err,
                 size_t errlen);

#endif
