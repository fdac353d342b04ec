/* ps-server: one shard of a sparkps cluster.
 *
 * A single-threaded event loop (like Redis) owns a ZeroMQ ROUTER socket, the
 * shard's tables, the dedup windows and the worker clocks. Every request is
 * validated before it touches a table: malformed or hostile input gets an
 * error reply with a code and a message, a counter, and the tables stay as
 * they were. To use more cores, run more shards per host.
 *
 * Lifecycle: ps_server_new() binds; ps_server_run() serves until *stop
 * becomes non-zero (set it from a signal handler) or a SHUTDOWN request
 * arrives (answered first), then drains what has already arrived, answers
 * waiting pulls with PS_ESHUTDOWN and, while training workers are alive,
 * refuses requests arriving within a grace period (at most 1 s) with
 * PS_ESHUTDOWN, and returns.
 *
 * With cfg.http set, the same loop also serves read-only HTTP: /metrics
 * (Prometheus), /status (the Status of a STATUS request, as JSON) and the
 * dashboard at /.
 *
 * With cfg.curve_secret, the socket speaks CurveZMQ and admits only the
 * clients whose public key is in cfg.curve_allow (auth.h: a ZAP handler on
 * a thread of its own, which never touches the tables).
 *
 * Checkpoints (cfg.checkpoint_dir): written every checkpoint_every_s
 * seconds, on a SAVE request and when the server stops (after the drain,
 * for a signal and SHUTDOWN alike), by a forked child while the loop goes
 * on serving (ckpt_saver.h); cfg.restore loads one in ps_server_new()
 * before the port is bound. */

#ifndef PS_SERVER_H
#define PS_SERVER_H

#include "common/curve.h"
#include "common/http.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define PS_DEFAULT_CLUSTER_ID "sparkps"

typedef struct ps_server_cfg {
    const char *listen;     /* tcp://HOST:PORT; port 0 picks a free one */
    uint32_t shard, shards; /* this shard's index and the cluster's count */
    const char *cluster_id; /* all shards of one cluster share it; NULL: the
                               restored checkpoint's, else
                               PS_DEFAULT_CLUSTER_ID */
    int consistency;        /* PS_CONS_ASP / SSP / BSP */
    int staleness;          /* SSP bound */
    int workers;            /* expected workers (0: only those seen) */
    int worker_timeout_ms;  /* silence after which a worker stops counting */
    int heartbeat_ms;       /* ZMTP heartbeat interval (timeout 3x) */
    uint64_t max_message_bytes; /* larger requests (all frames): ETOOBIG */
    uint64_t max_keys;          /* keys per sparse request; more: ETOOBIG */
    uint64_t max_rows; /* rows per sparse table on this shard; growth past
                          it: EFULL (0: no limit but memory_limit) */
    uint64_t memory_limit;      /* bytes of table data; 0: no limit */
    const ps_http_addr *http;   /* HTTP endpoint; NULL: none */
    const char *http_token;     /* bearer token for /status and /metrics;
                                   NULL: none (borrowed) */
    /* CurveZMQ: the server's secret key and the client public keys let in
     * (both set, or both NULL for plaintext); borrowed for the server's
     * lifetime. */
    const ps_curve_key *curve_secret;
    const ps_curve_allow *curve_allow;
    int insecure; /* plaintext on a non-loopback address was allowed
                     (--insecure): said in the log and the status */
    const char *checkpoint_dir; /* where checkpoints go; NULL: none */
    int checkpoint_every_s;     /* period of checkpoints; 0: none periodic */
    int checkpoint_keep;        /* newest checkpoints kept (>= 1) */
    /* At start, load the newest valid checkpoint of this directory (or
     * this file); "latest": of checkpoint_dir, starting fresh when it holds
     * none of this shard; NULL: start fresh. */
    const char *restore;
} ps_server_cfg;

typedef struct ps_server ps_server;

/* Validates cfg, opens the checkpoint directory, restores (cfg.restore)
 * and binds (the HTTP address too, when set). On failure *out is untouched
 * and err says why: PS_EINVAL (settings), PS_EIO (checkpoint directory or
 * no valid checkpoint to restore), PS_EMISMATCH (a checkpoint of another
 * shard or cluster), PS_EZMQ (bind). */
int ps_server_new(ps_server **out, const ps_server_cfg *cfg, char *err,
                  size_t errlen);

/* The endpoint clients can connect to (wildcard host replaced by the
 * machine's name); borrowed. */
const char *ps_server_endpoint(const ps_server *s);

/* "http://HOST:PORT" of the HTTP endpoint (bound port), or NULL without
 * one; borrowed. */
const char *ps_server_http_url(const ps_server *s);

/* Serves until *stop is set or a SHUTDOWN request came; returns PS_OK
 * after a clean drain (and, with a checkpoint directory, a final
 * checkpoint: PS_EIO when it failed). */
int ps_server_run(ps_server *s, volatile sig_atomic_t *stop);

void ps_server_free(ps_server *s);

#endif
