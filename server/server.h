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
 * dashboard at /. */
#ifndef PS_SERVER_H
#define PS_SERVER_H

#include "http.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ps_server_cfg {
    const char *listen;     /* tcp://HOST:PORT; port 0 picks a free one */
    uint32_t shard, shards; /* this shard's index and the cluster's count */
    const char *cluster_id; /* all shards of one cluster share it */
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
} ps_server_cfg;

typedef struct ps_server ps_server;

/* Validates cfg and binds (the HTTP address too, when set). On failure
 * *out is untouched and err says why. */
int ps_server_new(ps_server **out, const ps_server_cfg *cfg, char *err,
                  size_t errlen);

/* The endpoint clients can connect to (wildcard host replaced by the
 * machine's name); borrowed. */
const char *ps_server_endpoint(const ps_server *s);

/* "http://HOST:PORT" of the HTTP endpoint (bound port), or NULL without
 * one; borrowed. */
const char *ps_server_http_url(const ps_server *s);

/* Serves until *stop is set or a SHUTDOWN request came; returns PS_OK
 * after a clean drain. */
int ps_server_run(ps_server *s, volatile sig_atomic_t *stop);

void ps_server_free(ps_server *s);

#endif
