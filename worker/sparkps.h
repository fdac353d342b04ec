/* libsparkps: the client of a sparkps parameter-server cluster.
 *
 * A client connects to the N shards of one cluster (checking, shard by
 * shard, that the list is in order and speaks our protocol), defines tables
 * in a job namespace, and pushes gradients / pulls weights asynchronously:
 * every push/pull/pushpull returns a request handle at once and
 * ps_client_wait() completes it. Requests are split by shard and gathered
 * transparently; each piece is retried on timeout (the server deduplicates
 * retried pushes, so a push is never applied twice) and a shard whose
 * connection goes quiet is reconnected.
 *
 * Threads: a ps_client is used by one thread at a time (it owns its ZeroMQ
 * sockets); several clients in one process are independent. A background
 * heartbeat thread per client keeps a training worker counted as alive by
 * the servers while it computes; it touches only its own sockets.
 *
 * Buffers: the arrays passed to push/pull/pushpull are borrowed, not
 * copied: they must stay valid, and (for pulls) untouched, until the
 * request's ps_client_wait() returns something other than PS_ETIMEDOUT.
 *
 * Errors: functions return a ps_err code; ps_client_errmsg() holds the text
 * of the client's last error (naming the shard and endpoint involved). */
#ifndef SPARKPS_H
#define SPARKPS_H

#include "sparkps_err.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ps_client ps_client;
typedef struct ps_request ps_request;

typedef enum ps_table_kind { PS_DENSE = 0, PS_SPARSE = 1 } ps_table_kind;

typedef enum ps_init_kind {
    PS_INIT_ZEROS = 0,
    PS_INIT_CONSTANT = 1, /* a */
    PS_INIT_UNIFORM = 2,  /* U(a, b) */
    PS_INIT_NORMAL = 3,   /* N(mean a, stddev b) */
    PS_INIT_XAVIER = 4,   /* U(-r, r), r = sqrt(6 / (fan_in + fan_out)) */
    PS_INIT_HE = 5        /* N(0, sqrt(2 / fan_in)) */
} ps_init_kind;

typedef enum ps_optim_kind {
    PS_OPT_SGD = 0, /* w -= lr * v, v = momentum * v + g (v = g if 0) */
    PS_OPT_ADAGRAD = 1,
    PS_OPT_ADAM = 2,
    PS_OPT_FTRL = 3 /* FTRL-Proximal: lr is alpha; l1, l2, ftrl_beta */
} ps_optim_kind;

typedef enum ps_consistency {
    PS_ASP = 0, /* fully asynchronous */
    PS_SSP = 1, /* a pull at clock c waits until every live worker is at
                   c - staleness or later */
    PS_BSP = 2  /* SSP with staleness 0 */
} ps_consistency;

typedef enum ps_dtype { PS_F32 = 0, PS_F16 = 1, PS_BF16 = 2 } ps_dtype;

typedef struct ps_init {
    ps_init_kind kind;
    double a, b;
    uint64_t seed;
    uint64_t fan_in, fan_out; /* 0: from the shape (shape[0], shape[1]) */
} ps_init;

typedef struct ps_optim {
    ps_optim_kind kind;
    double lr;
    double momentum;            /* SGD */
    double beta1, beta2, eps;   /* Adam (0: 0.9, 0.999, 1e-8) */
    double l1, l2, ftrl_beta;   /* FTRL (ftrl_beta 0: 1.0) */
    double weight_decay;        /* L2 on the weights (AdamW-style for Adam) */
    double clip;                /* element-wise |g| <= clip; 0: off */
    double initial_accumulator; /* Adagrad (0: 0.1) */
} ps_optim;

typedef struct ps_table_spec {
    const char *name; /* unique within the client's job */
    ps_table_kind kind;
    uint64_t len;      /* dense: elements (product of shape if given) */
    uint64_t shape[8]; /* dense, optional: dims, 0-terminated */
    uint32_t dim;      /* sparse: floats per key */
    ps_init init;
    ps_optim optim;
    const char *meta; /* informative text kept with the table, shown by
                         status and written by export (the worker puts
                         "model=SPEC;classes=C;input_dim=D" there); NULL:
                         none. Not compared when a table is defined again:
                         the first definer's text stays. */
} ps_table_spec;

/* One table of a job as the servers report it (ps_client_list_tables). */
typedef struct ps_table_info {
    char *name;
    ps_table_kind kind;
    uint64_t len;      /* dense: elements */
    uint64_t shape[8]; /* dense: dims, 0-terminated (may be empty) */
    uint32_t dim;      /* sparse: floats per key */
    char *meta;        /* "" when none */
    uint64_t rows;     /* sparse: keys stored, summed over the shards */
    uint64_t bytes;    /* weights + optimizer state, all shards */
    uint64_t pushes;   /* pushes applied, summed over the shards' pieces */
} ps_table_info;

typedef struct ps_client_cfg {
    const char *servers;    /* "tcp://h0:7000,tcp://h1:7000"; NULL: the
                               SPARKPS_SERVERS environment variable */
    const char *job;        /* table namespace; NULL: "default" */
    const char *cluster_id; /* NULL: accept the first shard's */
    int worker_id;          /* >= 0: a training worker with a clock; -1: a
                               tool or benchmark (no clock) */
    int attempt;            /* training workers: which attempt of worker_id
                               this run is, growing with each retry (0
                               first; the Spark connector: the task attempt
                               id). While a newer attempt of the id is
                               alive the servers refuse this one
                               (PS_ESUPERSEDED); joining restarts the
                               worker's clock at 0 */
    int timeout_ms;         /* per attempt; 0: 5000 */
    int retries;            /* attempts after the first; <0: 0, 0: 5 */
    int heartbeat_ms;       /* worker heartbeat period; 0: 1000, <0: off */
    int expect_consistency; /* -1: accept the servers'; else a ps_consistency
                               and staleness the servers must match */
    int expect_staleness;
    ps_dtype dtype;           /* values on the wire (tables stay float32) */
    uint64_t max_piece_bytes; /* dense ranges go out in pipelined pieces of
                                 at most this many bytes; 0: 1 MiB */
    int test_drop_every;      /* testing only: pretend every Nth reply was lost
                                 (forces retries); 0: off */
    /* When not NULL and *cancel turns non-zero (e.g. in a SIGTERM handler),
     * blocking calls give up within a second with PS_ECANCELED instead of
     * waiting out their timeouts and retries. */
    const volatile sig_atomic_t *cancel;
    /* CurveZMQ: files (never key material) holding this client's secret
     * key (ps-keygen's NAME.key, mode 0600; its public key, which the
     * servers' --curve-allow must list, is derived from it) and the
     * servers' public key (NAME.pub). NULL: the files named by the
     * environment variables SPARKPS_CURVE_SECRET_KEY and
     * SPARKPS_CURVE_SERVER_KEY; "" (or both unset): plaintext. One without
     * the other, or a bad file, fails ps_client_new with PS_EINVAL. Every
     * socket of the client uses them, its heartbeat thread's too. */
    const char *curve_secret_key;
    const char *curve_server_key;
} ps_client_cfg;

/* Fills a cfg with the defaults above (worker_id -1, accept consistency). */
PS_API void ps_client_cfg_init(ps_client_cfg *cfg);

/* Connects to every shard and checks its Hello answer: shard i of the list
 * must say it is shard i of N, with N the list's length, one cluster id and
 * our protocol version; PS_EMISMATCH / PS_EVERSION / PS_ECONSIST otherwise,
 * naming both sides. Blocks up to timeout * (retries + 1). On failure *out
 * is untouched and, when errbuf is not NULL, the reason is written there.
 * A shard that refuses this client in the handshake (CurveZMQ: its key is
 * not allowed, CURVE on one side only, a wrong server key) fails with
 * PS_EAUTH saying which, instead of timing out; so does any later request
 * to it. */
PS_API int ps_client_new(ps_client **out, const ps_client_cfg *cfg,
                         char *errbuf, size_t errlen);

/* Closes sockets and stops the heartbeat thread; outstanding requests are
 * abandoned. Accepts NULL. */
PS_API void ps_client_free(ps_client *c);

/* Text of the last error on this client (borrowed, valid until the next
 * call on it); "" if none. */
PS_API const char *ps_client_errmsg(const ps_client *c);

PS_API int ps_client_num_shards(const ps_client *c);
PS_API uint64_t ps_client_id(const ps_client *c);
/* The servers' consistency model and staleness, learnt at connect. */
PS_API ps_consistency ps_client_consistency(const ps_client *c, int *staleness);

/* Defines a table on every shard (idempotent: the same spec again succeeds;
 * a different spec under the same name fails with PS_ECONFLICT). Blocks.
 * *table receives a handle for the calls below. */
PS_API int ps_client_define(ps_client *c, const ps_table_spec *spec,
                            int *table);

/* Gets a handle to a table of the client's job that someone else defined
 * (a tool such as ps-ctl export), learning its kind, size and placement from
 * the shards' Status. PS_ENOTABLE when a shard does not hold it. Blocks. */
PS_API int ps_client_attach(ps_client *c, const char *name, int *table);

/* The tables of `job` (NULL: the client's), merged over the shards, in the
 * order shard 0 lists them (definition order). *tables is the caller's, to
 * release with ps_client_free_table_list(). Blocks. */
PS_API int ps_client_list_tables(ps_client *c, const char *job,
                                 ps_table_info **tables, size_t *n);
PS_API void ps_client_free_table_list(ps_table_info *tables, size_t n);

/* Frees one table of the client's job on every shard; blocks. PS_ENOTABLE
 * when a shard does not hold it. */
PS_API int ps_client_drop_table(ps_client *c, const char *name);
/* Frees every table of `job` (NULL: the client's) on every shard; a job
 * without tables is not an error. Blocks. */
PS_API int ps_client_drop_job(ps_client *c, const char *job);

/* What one shard answered to ps_client_drop(), ps_client_shutdown() or
 * ps_client_save(). */
typedef struct ps_shard_result {
    int status;       /* PS_OK, or this shard's ps_err: PS_ENOTABLE (drop of
                         a table this shard does not hold), PS_ESHUTDOWN
                         (shutdown: it was stopping already), PS_EINVAL
                         (save: the server has no --checkpoint-dir), PS_EIO
                         (save: writing failed), PS_ETIMEDOUT (no answer
                         after retries: not running, unreachable or
                         stuck), ... */
    char errmsg[256]; /* the reason when status is not PS_OK, else "" */
    uint32_t tables;  /* drop: tables freed on this shard */
    uint64_t bytes;   /* drop: their bytes (weights + optimizer state);
                         save: the checkpoint's size */
    char file[1024];  /* save: the checkpoint file written (a path on the
                         server's host), else "" */
} ps_shard_result;

/* Frees table `name` of `job` (name NULL: every table of the job; job NULL:
 * the client's) on every shard, and reports what each shard freed in
 * results[i] for shard i (results: ps_client_num_shards() entries, the
 * caller's; NULL: not wanted). Returns PS_OK when every shard answered
 * without error, else the first error (PS_ENOTABLE when a shard does not
 * hold the table; a job without tables is not an error, it frees 0); the
 * results are filled in either case. Blocks up to timeout * (retries + 1).
 * A shard whose first reply was lost reports what the retry found there
 * (nothing left, or PS_ENOTABLE). */
PS_API int ps_client_drop(ps_client *c, const char *job, const char *name,
                          ps_shard_result *results);

/* Asks every server of cfg->servers (NULL: SPARKPS_SERVERS) to stop the way
 * SIGTERM does: each answers, answers what already arrived, fails waiting
 * pulls and late requests with PS_ESHUTDOWN, and exits 0. Needs no
 * ps_client and no handshake, so a shard that is gone does not keep the
 * others running: every listed server is asked, concurrently, with
 * cfg->timeout_ms and cfg->retries as for a client (worker_id, cluster_id
 * and the consistency fields are ignored). *results receives one entry per
 * listed server, in list order, and *n their number; the array is the
 * caller's to free(). Returns PS_OK when every server accepted (or was
 * stopping already: status PS_ESHUTDOWN), else the first other error; the
 * results are set in both cases. On a failure before any server was asked
 * (PS_EINVAL for a malformed list, PS_ENOMEM) *results and *n are untouched
 * and errbuf (nullable) says why. Blocks. Any client a server lets in may
 * stop it (with CurveZMQ: any key in its allow-list). */
PS_API int ps_client_shutdown(const ps_client_cfg *cfg,
                              ps_shard_result **results, size_t *n,
                              char *errbuf, size_t errlen);

/* Asks every server of cfg->servers to write a checkpoint now (SAVE) and
 * waits until each has written it, however long that takes: a server
 * writing one answers `deferred` notices every second, which keep the
 * request from timing out. Reaches every listed server as
 * ps_client_shutdown() does, with the same arguments and results:
 * results[i].file names the file shard i wrote and .bytes its size.
 * Returns PS_OK when every server wrote one, else the first error
 * (PS_EINVAL: that server was started without --checkpoint-dir; PS_EIO:
 * writing failed, the reason in errmsg; PS_ETIMEDOUT). Blocks. */
PS_API int ps_client_save(const ps_client_cfg *cfg, ps_shard_result **results,
                          size_t *n, char *errbuf, size_t errlen);

/* Dense: elements [offset, offset + count) of the table. */
PS_API int ps_client_push(ps_client *c, int table, uint64_t offset,
                          uint64_t count, const float *grad, ps_request **req);
PS_API int ps_client_pull(ps_client *c, int table, uint64_t offset,
                          uint64_t count, float *out, ps_request **req);
/* Pushes grad, then returns the updated values in out; one round trip. */
PS_API int ps_client_pushpull(ps_client *c, int table, uint64_t offset,
                              uint64_t count, const float *grad, float *out,
                              ps_request **req);

/* Sparse: nkeys keys, dim floats per key in key order. A key listed twice in
 * one push is applied twice. A shard's keys go out in pieces of at most
 * that server's --max-keys (from its Hello), so no batch is refused for its
 * size; each piece is applied and answered on its own, so a pushpull that
 * lists a key in two pieces may read back the value between its pushes. */
PS_API int ps_client_push_sparse(ps_client *c, int table, const uint64_t *keys,
                                 size_t nkeys, const float *grad,
                                 ps_request **req);
PS_API int ps_client_pull_sparse(ps_client *c, int table, const uint64_t *keys,
                                 size_t nkeys, float *out, ps_request **req);
PS_API int ps_client_pushpull_sparse(ps_client *c, int table,
                                     const uint64_t *keys, size_t nkeys,
                                     const float *grad, float *out,
                                     ps_request **req);

/* ASSIGN: overwrites values, bypassing the optimizer (its state is kept);
 * sparse keys absent on the servers are created. With
 * PS_ASSIGN_IF_UNTOUCHED a shard applies its piece only while the table has
 * never received a push there, else it acknowledges it as a no-op: a warm
 * start sent by every worker before training initialises the table once and
 * never overwrites progress. *skipped (nullable) receives the number of
 * pieces (one per shard, more where a range or key set is sent in pieces)
 * not applied for that reason. Values travel as float32
 * whatever cfg.dtype is. Blocks until every piece is acknowledged; `values`
 * is borrowed until then. */
#define PS_ASSIGN_IF_UNTOUCHED 1
PS_API int ps_client_assign(ps_client *c, int table, uint64_t offset,
                            uint64_t count, const float *values, int flags,
                            size_t *skipped);
PS_API int ps_client_assign_sparse(ps_client *c, int table,
                                   const uint64_t *keys, size_t nkeys,
                                   const float *values, int flags,
                                   size_t *skipped);

/* Reads a sparse table's stored rows, a page at a time, shard after shard.
 * Start with *cursor = 0; each call fills up to max_keys keys and their
 * values (dim floats each) and sets *n and the next *cursor, which is
 * PS_SCAN_DONE after the last page. A page may hold 0 rows before the end.
 * Rows created while a scan runs may be missed or, when a shard's index
 * grows meanwhile, returned twice: scan a table training no longer updates.
 * Blocks. */
#define PS_SCAN_DONE UINT64_MAX
PS_API int ps_client_scan_sparse(ps_client *c, int table, uint64_t *cursor,
                                 size_t max_keys, uint64_t *keys, float *values,
                                 size_t *n);

/* Waits up to timeout_ms (-1: until done or failed after retries) for a
 * request. Returns PS_ETIMEDOUT if it is still running (the handle stays
 * valid: wait again); any other return completes the request and frees the
 * handle: PS_OK, or the first error of any of its shard pieces. */
PS_API int ps_client_wait(ps_client *c, ps_request *req, int timeout_ms);

/* For pulls under SSP/BSP: the smallest worker clock the answering shards
 * had when they served it (valid after a successful wait, before the next
 * call that completes a request). -1 under ASP. */
PS_API int64_t ps_client_last_min_clock(const ps_client *c);

/* Worker clock: ps_client_clock() ends an iteration (clock + 1) on every
 * shard; blocks until all acknowledged. Pulls carry the current clock. */
PS_API int ps_client_clock(ps_client *c);
PS_API int64_t ps_client_get_clock(const ps_client *c);

/* Learning-rate schedule: pushes made from now on are applied with each
 * table's lr times `scale` (0 < scale <= 1e6; initially 1). Every worker
 * sends its own scale, so a schedule follows each worker's progress.
 * PS_EINVAL for a scale out of range. */
PS_API int ps_client_set_lr_scale(ps_client *c, double scale);

/* Progress a worker reports; piggybacked on its next push or clock. */
PS_API void ps_client_set_progress(ps_client *c, uint64_t samples, double loss,
                                   uint32_t epoch, double accuracy);

/* A worker's evaluation at the end of an epoch. NaN marks a figure it did
 * not measure (loss/accuracy without held-out data, auc for a model that
 * is not binary). */
typedef struct ps_eval {
    uint32_t epoch;                    /* the epoch just finished, from 1 */
    uint64_t samples;                  /* samples processed so far */
    double loss, accuracy;             /* on held-out data */
    double train_loss, train_accuracy; /* means over the epoch's batches */
    double auc;                        /* held-out data, binary models */
} ps_eval;

/* Records the worker's latest evaluation (copied). It travels with the
 * progress on the following pushes and clocks; every server keeps a
 * bounded history of them per worker, shown by status. */
PS_API void ps_client_set_eval(ps_client *c, const ps_eval *e);

/* Sends the latest progress and evaluation to every shard now (after the
 * last push of a run, so that its final evaluation reaches the servers).
 * Blocks. PS_EINVAL for a client that is not a worker. */
PS_API int ps_client_send_progress(ps_client *c);

/* The state of shard `shard` as JSON (tables, workers and clocks, counters,
 * progress). *json is the caller's to free(). Blocks. */
PS_API int ps_client_status_json(ps_client *c, int shard, char **json);

/* Requests sent to shards so far: one per shard a call reaches (a push
 * over 3 shards counts 3); re-sends are retries, not requests. */
PS_API uint64_t ps_client_requests(const ps_client *c);

/* Times a shard stayed silent past the timeout with requests pending (each
 * reconnects the shard and re-sends them, or fails them after retries). */
PS_API uint64_t ps_client_timeouts(const ps_client *c);

/* Retries fired so far (pieces re-sent after a timeout). */
PS_API uint64_t ps_client_retries(const ps_client *c);

/* Connections to servers lost so far: a server closed it, or stopped
 * answering ZeroMQ heartbeats for 3x heartbeat_ms (hung or unreachable),
 * seen while the client waits in a call; each is logged as a warning.
 * libzmq reconnects by itself; requests in flight keep their timeouts. */
PS_API uint64_t ps_client_disconnects(const ps_client *c);

#ifdef __cplusplus
}
#endif
#endif
