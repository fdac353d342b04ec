/* The shard's event loop and request handlers; see server.h.
 *
 * Threading: one thread owns everything here. Each received multipart
 * message is [routing id][header][bulk...]; handlers validate the header and
 * frame sizes against the table before reading any bulk data, and answer
 * with exactly one reply (HEARTBEAT excepted). A pull that SSP/BSP must hold
 * back is answered at once with a `deferred` notice (so the client keeps
 * waiting instead of retrying) and parked until the slowest live worker
 * catches up or is declared dead.
 *
 * The optional HTTP endpoint (/metrics, /status, the dashboard) is served
 * by the same loop: its epoll descriptor is polled beside the socket, so
 * pages read the live tables without locks and a scraper competes with
 * requests only for the loop's time, never for its data.
 *
 * Stopping: SIGTERM/SIGINT (the *stop flag) or a SHUTDOWN request end the
 * loop the same way: what already arrived is answered, parked pulls get
 * PS_ESHUTDOWN, and while training workers are alive, requests arriving in
 * a short grace window get PS_ESHUTDOWN too, so a worker fails at once
 * instead of timing out against a closed port. With a checkpoint directory
 * the last checkpoint is written between the drain and that window.
 *
 * Checkpoints: the loop starts one when it is due or a SAVE asked for it
 * (ckpt_tick), a forked child writes it (ckpt_saver.h) and the child's
 * pipe, polled beside the socket, says when it is done; SAVE requests wait
 * in a list, kept alive with `deferred` notices, and are answered with the
 * file of the first checkpoint started after they arrived. */
#include "server.h"

#include "auth.h"
#include "checkpoint.h"
#include "ckpt_dir.h"
#include "ckpt_saver.h"
#include "common/codec.h"
#include "common/dtype.h"
#include "common/log.h"
#include "common/partition.h"
#include "common/status_json.h"
#include "common/timeutil.h"
#include "common/transport.h"
#include "consistency.h"
#include "dashboard.h"
#include "dedup.h"
#include "history.h"
#include "common/http.h"
#include "metrics.h"
#include "server_int.h"
#include "table.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POLL_MS 100      /* upper bound on timer latency */
#define DRAIN_MAX 100000 /* messages handled after a stop request */
#define PARK_MAX 65536   /* pulls that may wait for slower workers at once */
#define MSG_TYPES (PS_MSG_TYPE_MAX + 1)

/* Stopping while training workers are alive: requests arriving after the
 * drain get PS_ESHUTDOWN for at most STOP_GRACE_MS, ending early after
 * STOP_QUIET_MS without one. */
#define STOP_GRACE_MS 1000
#define STOP_QUIET_MS 200

/* SAVE requests waiting for their checkpoint get a `deferred` notice this
 * often, so their clients keep waiting however long the write takes. */
#define SAVE_NOTICE_MS 1000
#define SAVE_WAITERS_MAX 1024

/* A pull parked by SSP/BSP until the slowest worker catches up. */
typedef struct parked {
    zmq_msg_t rid;  /* the client's routing id */
    zmq_msg_t keys; /* sparse: the key frame (moved, not copied) */
    int has_keys;
    int type;
    uint64_t request_id;
    uint32_t table;
    int dtype;
    uint64_t offset, count;
    int64_t clock;
    int64_t arrival_ns; /* for the latency histogram */
} parked;

/* A SAVE request waiting for its checkpoint. */
typedef struct save_waiter {
    zmq_msg_t rid; /* the client's routing id (of its latest copy) */
    uint64_t client_id, request_id;
    int running; /* the checkpoint being written covers it */
} save_waiter;

/* Checkpoint bookkeeping; everything NULL/0 without --checkpoint-dir. */
typedef struct ckpt_ctl {
    ps_ckdir *dir;
    ps_saver *saver;
    save_waiter *wait;
    size_t nwait, wait_cap;
    int64_t due_ms;    /* next periodic checkpoint (monotonic); 0: none */
    int64_t notice_ms; /* last deferred notice to waiters */
    uint64_t ok, failed;
    ps_ckpt_result last;  /* the last one written (last.file[0]: any) */
    char last_error[512]; /* why the last failure failed; "" if none */
    char restored_from[PS_CKPT_PATH_MAX]; /* "" when started fresh */
} ckpt_ctl;

struct ps_server {
    ps_server_cfg cfg;
    void *ctx;
    void *sock;
    char endpoint[256];
    ps_tables *tables;
    ps_dedup *dedup;
    ps_consist *consist;
    parked *park;
    size_t npark, park_cap;
    int64_t start_ms;
    uint64_t requests[MSG_TYPES];
    uint64_t errors[PS_ERR_COUNT_];
    ps_metrics metrics; /* bytes and latency by type, optimizer time */
    ps_history *history;
    ps_auth *auth;           /* ZAP handler and handshake-failure counts */
    ps_http *http;           /* NULL: no HTTP endpoint */
    ps_http_route routes[3]; /* its pages, borrowed by it */
    /* Aligned scratch for bulk frames that arrive misaligned or in another
     * dtype; grown on demand, bounded by max_message_bytes. */
    void *scratch[3]; /* 0: keys, 1: gradient, 2: reply values */
    size_t scratch_cap[3];
    char cluster_id[PS_MAX_NAME + 1]; /* cfg's, or the restored one's */
    ckpt_ctl ckpt;
    int shutdown_requested; /* a SHUTDOWN request arrived: stop as on SIGTERM */
    int refusing;           /* stopping: requests get PS_ESHUTDOWN */
    uint64_t refused;       /* requests refused that way */
};

/* Per-request state passed between the dispatcher and handlers. */
typedef struct request {
    ps_frames *f;
    ps_header *h;
    ps_header reply;
    zmq_msg_t keys; /* SCAN reply: key frame before the values */
    int has_keys;
    zmq_msg_t values; /* bulk reply frame, when has_values */
    int has_values;
    int64_t arrival_ns;
    char err[256];
} request;

static const char *cons_name(int mode)
{
    return mode == PS_CONS_SSP ? "ssp" : mode == PS_CONS_BSP ? "bsp" : "asp";
}

static int start_http(ps_server *s, char *err, size_t errlen);
static int ckpt_check_cfg(const ps_server_cfg *cfg, char *err, size_t errlen);
static int ckpt_open(ps_server *s, char *err, size_t errlen);
static void ckpt_close(ps_server *s);

/* CURVE options and the admission thread, before the socket binds: no
 * client may get in before the ZAP handler exists. */
static int secure_socket(ps_server *s, char *err, size_t errlen)
{
    const ps_server_cfg *cfg = &s->cfg;
    if ((cfg->curve_secret == NULL) != (cfg->curve_allow == NULL)) {
        snprintf(err, errlen, "CurveZMQ needs both the server's secret key "
                              "and an allow-list of client keys");
        return PS_EINVAL;
    }
    if (cfg->curve_secret != NULL) {
        int one = 1;
        const char *domain = "sparkps";
        if (!ps_curve_available() ||
            zmq_setsockopt(s->sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
            zmq_setsockopt(s->sock, ZMQ_CURVE_SECRETKEY, cfg->curve_secret->z85,
                           PS_CURVE_Z85_LEN) ||
            zmq_setsockopt(s->sock, ZMQ_ZAP_DOMAIN, domain, strlen(domain))) {
            snprintf(err, errlen, "cannot enable CurveZMQ: %s",
                     ps_curve_available() ? zmq_strerror(zmq_errno())
                                          : ps_curve_missing_msg());
            return PS_EINVAL;
        }
    }
    ps_auth_cfg ac = {s->ctx, s->sock, cfg->curve_allow};
    return ps_auth_new(&s->auth, &ac, err, errlen);
}

int ps_server_new(ps_server **out, const ps_server_cfg *cfg, char *err,
                  size_t errlen)
{
    if (cfg->shards == 0 || cfg->shard >= cfg->shards) {
        snprintf(err, errlen, "--shard %u must be below --shards %u",
                 cfg->shard, cfg->shards);
        return PS_EINVAL;
    }
    if (cfg->cluster_id != NULL && (strlen(cfg->cluster_id) == 0 ||
                                    strlen(cfg->cluster_id) > PS_MAX_NAME)) {
        snprintf(err, errlen, "--cluster-id must be 1..%u bytes", PS_MAX_NAME);
        return PS_EINVAL;
    }
    if (ckpt_check_cfg(cfg, err, errlen) != PS_OK)
        return PS_EINVAL;
    ps_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return PS_ENOMEM;
    s->cfg = *cfg;
    snprintf(s->cluster_id, sizeof(s->cluster_id), "%s",
             cfg->cluster_id ? cfg->cluster_id : PS_DEFAULT_CLUSTER_ID);
    s->start_ms = ps_now_ms();
    ps_metrics_init(&s->metrics);
    int rc = ps_tables_new(&s->tables, cfg->shard, cfg->shards,
                           cfg->memory_limit, cfg->max_rows);
    if (rc == PS_OK)
        rc = ps_dedup_new(&s->dedup, 1024);
    if (rc == PS_OK)
        rc = ps_history_new(&s->history, PS_HISTORY_PER_WORKER,
                            PS_HISTORY_TOTAL);
    ps_consist_cfg cc = {cfg->consistency, cfg->staleness, cfg->workers,
                         cfg->worker_timeout_ms};
    if (rc == PS_OK)
        rc = ps_consist_new(&s->consist, &cc, s->start_ms);
    if (rc != PS_OK) {
        snprintf(err, errlen, "bad consistency settings or out of memory");
        goto fail;
    }
    /* Before the bind: a shard that cannot restore must not take clients. */
    if ((rc = ckpt_open(s, err, errlen)) != PS_OK)
        goto fail;
    s->ctx = zmq_ctx_new();
    s->sock = s->ctx ? zmq_socket(s->ctx, ZMQ_ROUTER) : NULL;
    if (s->sock == NULL) {
        snprintf(err, errlen, "cannot create a ZeroMQ socket: %s",
                 zmq_strerror(zmq_errno()));
        rc = PS_EZMQ;
        goto fail;
    }
    /* Frames past twice the request limit are cut by libzmq itself (the
     * connection is dropped) so a hostile peer cannot make us allocate
     * without bound; up to that, oversized requests get a PS_ETOOBIG reply. */
    int64_t hard = (int64_t)cfg->max_message_bytes * 2;
    zmq_setsockopt(s->sock, ZMQ_MAXMSGSIZE, &hard, sizeof(hard));
    int linger = 1000;
    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger));
    int hwm = 100000;
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    ps_socket_heartbeat(s->sock, cfg->heartbeat_ms, cfg->heartbeat_ms * 3);
    if ((rc = secure_socket(s, err, errlen)) != PS_OK)
        goto fail;
    if (zmq_bind(s->sock, cfg->listen) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", cfg->listen,
                 zmq_strerror(zmq_errno()));
        rc = PS_EZMQ;
        goto fail;
    }
    ps_bound_endpoint(s->sock, s->endpoint, sizeof(s->endpoint));
    if (cfg->http != NULL && (rc = start_http(s, err, errlen)) != PS_OK)
        goto fail;
    *out = s;
    return PS_OK;
fail:
    ps_server_free(s);
    return rc;
}

const char *ps_server_endpoint(const ps_server *s)
{
    return s->endpoint;
}

const char *ps_server_http_url(const ps_server *s)
{
    return s->http ? ps_http_url(s->http) : NULL;
}

/* A reply to a parked pull: same type and request id. */
static void parked_reply_init(const parked *p, request *r)
{
    memset(r, 0, sizeof(*r));
    ps_header_init(&r->reply);
    r->reply.has_type = r->reply.has_request_id = 1;
    r->reply.type = (Sparkps__MsgType)p->type;
    r->reply.request_id = p->request_id;
}

static void park_release(parked *p)
{
    zmq_msg_close(&p->rid);
    if (p->has_keys)
        zmq_msg_close(&p->keys);
}

void ps_server_free(ps_server *s)
{
    if (s == NULL)
        return;
    ps_http_free(s->http);
    ckpt_close(s);
    for (size_t i = 0; i < s->npark; i++)
        park_release(&s->park[i]);
    free(s->park);
    ps_auth_free(s->auth);
    if (s->sock)
        zmq_close(s->sock);
    if (s->ctx)
        zmq_ctx_term(s->ctx);
    ps_tables_free(s->tables);
    ps_dedup_free(s->dedup);
    ps_consist_free(s->consist);
    ps_history_free(s->history);
    for (int i = 0; i < 3; i++)
        free(s->scratch[i]);
    free(s);
}

/* ---- helpers ---- */

static void *scratch(ps_server *s, int which, size_t bytes)
{
    if (bytes > s->scratch_cap[which]) {
        void *p = realloc(s->scratch[which], bytes);
        if (p == NULL)
            return NULL;
        s->scratch[which] = p;
        s->scratch_cap[which] = bytes;
    }
    return s->scratch[which];
}

/* A view of a bulk frame as `align`-aligned memory: the frame itself when it
 * is aligned, else a copy in scratch (libzmq slices small messages out of its
 * receive buffer at arbitrary offsets). */
static const void *aligned_view(ps_server *s, int which, const void *p,
                                size_t bytes, size_t align)
{
    if (((uintptr_t)p % align) == 0)
        return p;
    void *dst = scratch(s, which, bytes);
    if (dst != NULL)
        memcpy(dst, p, bytes);
    return dst;
}

static int send_reply(ps_server *s, zmq_msg_t *rid, request *r)
{
    zmq_msg_t id;
    zmq_msg_init(&id);
    zmq_msg_copy(&id, rid);
    size_t out = zmq_msg_size(&id);
    if (zmq_msg_send(&id, s->sock, ZMQ_SNDMORE) < 0) {
        zmq_msg_close(&id);
        return PS_EZMQ;
    }
    int rc = ps_send_header(s->sock, &r->reply, r->has_values);
    out += ps_header_packed_size(&r->reply);
    if (rc == PS_OK && r->has_keys && r->has_values) {
        out += zmq_msg_size(&r->keys);
        if (zmq_msg_send(&r->keys, s->sock, ZMQ_SNDMORE) < 0)
            rc = PS_EZMQ;
        else
            r->has_keys = 0; /* ownership passed to libzmq */
    }
    if (rc == PS_OK && r->has_values) {
        out += zmq_msg_size(&r->values);
        if (zmq_msg_send(&r->values, s->sock, 0) < 0)
            rc = PS_EZMQ;
        else
            r->has_values = 0; /* ownership passed to libzmq */
    }
    s->metrics.bytes_out[ps_metrics_type_index((int)r->reply.type)] += out;
    return rc;
}

static void fail(request *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(request *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    r->reply.has_error_code = 1;
    r->reply.error_code = code;
    r->reply.error_msg = r->err;
}

/* A sparse write that could not create its rows: nothing of it was
 * applied. */
static void fail_rows(ps_server *s, request *r, const ps_table *t, int code,
                      const char *what)
{
    if (code == PS_EFULL)
        fail(r, code,
             "table full: %llu rows on this shard, the limit is %llu "
             "(--max-rows); nothing applied",
             (unsigned long long)ps_table_rows(t),
             (unsigned long long)s->cfg.max_rows);
    else if (code == PS_ENOMEM)
        fail(r, code, "out of memory %s; nothing applied", what);
    else
        fail(r, code, "%s", ps_strerror(code));
}

static int64_t reply_min_clock(ps_server *s)
{
    if (ps_consist_mode(s->consist) == PS_CONS_ASP)
        return -1;
    int64_t m = ps_consist_min_clock(s->consist);
    return m == INT64_MAX ? -1 : m;
}

/* ---- HELLO, DEFINE, DROP ---- */

static void fill_hello(ps_server *s, Sparkps__Hello *hello)
{
    sparkps__hello__init(hello);
    hello->cluster_id = s->cluster_id;
    hello->has_shard = hello->has_shards = 1;
    hello->shard = s->cfg.shard;
    hello->shards = s->cfg.shards;
    hello->has_protocol_version = 1;
    hello->protocol_version = PS_PROTOCOL_VERSION;
    hello->has_consistency = hello->has_staleness = 1;
    hello->consistency = (Sparkps__Consistency)ps_consist_mode(s->consist);
    hello->staleness = (uint32_t)ps_consist_staleness(s->consist);
    hello->has_worker_timeout_ms = 1;
    hello->worker_timeout_ms = (uint32_t)s->cfg.worker_timeout_ms;
    hello->has_workers = 1;
    hello->workers = (uint32_t)s->cfg.workers;
    hello->has_max_message_bytes = 1;
    hello->max_message_bytes = s->cfg.max_message_bytes;
    hello->has_max_keys = hello->has_max_rows = 1;
    hello->max_keys = s->cfg.max_keys;
    hello->max_rows = s->cfg.max_rows;
}

static void spec_to_def(const Sparkps__TableSpec *t, ps_table_def *d)
{
    memset(d, 0, sizeof(*d));
    d->job = t->job;
    d->name = t->name;
    d->kind = (int)t->kind;
    d->len = t->len;
    d->dim = t->dim;
    d->meta = t->meta;
    d->nshape = t->n_shape;
    for (size_t i = 0; i < t->n_shape && i < PS_TABLE_MAX_SHAPE; i++)
        d->shape[i] = t->shape[i];
    if (t->init) {
        d->init.kind = (int)t->init->kind;
        d->init.a = t->init->a;
        d->init.b = t->init->b;
        d->init.seed = t->init->seed;
        d->init.fan_in = t->init->fan_in;
        d->init.fan_out = t->init->fan_out;
    }
    if (t->optim) {
        const Sparkps__Optim *o = t->optim;
        d->optim.kind = (int)o->kind;
        d->optim.lr = (float)o->lr;
        d->optim.momentum = (float)o->momentum;
        d->optim.beta1 = (float)o->beta1;
        d->optim.beta2 = (float)o->beta2;
        d->optim.eps = (float)o->eps;
        d->optim.l1 = (float)o->l1;
        d->optim.l2 = (float)o->l2;
        d->optim.ftrl_beta = (float)o->ftrl_beta;
        d->optim.weight_decay = (float)o->weight_decay;
        d->optim.clip = (float)o->clip;
        d->optim.initial_accumulator = (float)o->initial_accumulator;
    }
}

static void handle_define(ps_server *s, request *r)
{
    const Sparkps__TableSpec *t = r->h->table;
    if (t == NULL || t->job == NULL || t->name == NULL) {
        fail(r, PS_EPROTO, "DEFINE_TABLE needs a table spec with job and name");
        return;
    }
    ps_table_def d;
    spec_to_def(t, &d);
    uint32_t id;
    char why[256] = "";
    int rc = ps_tables_define(s->tables, &d, &id, why, sizeof(why));
    if (rc != PS_OK) {
        fail(r, rc, "%s", why[0] ? why : ps_strerror(rc));
        return;
    }
    ps_table *tab = ps_tables_get(s->tables, id);
    r->reply.has_table_id = 1;
    r->reply.table_id = id;
    r->reply.has_lo = r->reply.has_hi = 1;
    ps_table_range(tab, &r->reply.lo, &r->reply.hi);
    ps_log(PS_LOG_DEBUG, "table defined job=%s name=%s id=%u", t->job, t->name,
           id);
}

/* The reply says what was freed here (count: tables, freed_bytes), for
 * operators (ps-ctl drop). */
static void handle_drop(ps_server *s, request *r)
{
    const char *job = r->h->job;
    if (job == NULL) {
        fail(r, PS_EPROTO, "drop needs a job name");
        return;
    }
    uint64_t before = ps_tables_bytes(s->tables);
    int n = 1;
    if (r->h->type == SPARKPS__MSG_TYPE__DROP_JOB) {
        ps_tables_drop_job(s->tables, job, &n);
    } else if (r->h->name == NULL) {
        fail(r, PS_EPROTO, "DROP_TABLE needs a table name");
        return;
    } else if (ps_tables_drop(s->tables, job, r->h->name) != PS_OK) {
        fail(r, PS_ENOTABLE, "no table '%s' in job '%s'", r->h->name, job);
        return;
    }
    r->reply.has_count = r->reply.has_freed_bytes = 1;
    r->reply.count = (uint64_t)n;
    r->reply.freed_bytes = before - ps_tables_bytes(s->tables);
    ps_log(PS_LOG_INFO, "dropped job=%s table=%s tables=%d bytes=%llu", job,
           r->h->name ? r->h->name : "*", n,
           (unsigned long long)r->reply.freed_bytes);
}

/* SHUTDOWN: answered OK, then ps_server_run() stops as on SIGTERM. It must
 * be exactly [Header] without table, range, name or sequence fields, so a
 * mangled data request can never stop a shard. */
static void handle_shutdown(ps_server *s, request *r)
{
    const ps_header *h = r->h;
    if (r->f->n != 2) {
        fail(r, PS_EPROTO, "SHUTDOWN takes no data frames, got %d",
             r->f->n - 2);
        return;
    }
    if (h->has_table_id || h->has_offset || h->has_count || h->has_seq ||
        h->job != NULL || h->name != NULL || h->table != NULL) {
        fail(r, PS_EPROTO,
             "SHUTDOWN carries no table, range, name or sequence fields");
        return;
    }
    s->shutdown_requested = 1;
    ps_log(PS_LOG_WARN, "shutdown requested over the wire client=%016llx",
           (unsigned long long)h->client_id);
}

/* ---- checkpoints ---- */

static int ckpt_check_cfg(const ps_server_cfg *cfg, char *err, size_t errlen)
{
    int has_dir = cfg->checkpoint_dir != NULL && cfg->checkpoint_dir[0];
    if (cfg->restore != NULL && strcmp(cfg->restore, "latest") == 0 &&
        !has_dir) {
        snprintf(err, errlen,
                 "--restore latest needs --checkpoint-dir (or "
                 "give --restore a directory or file)");
        return PS_EINVAL;
    }
    if (cfg->restore != NULL && cfg->restore[0] == '\0') {
        snprintf(err, errlen,
                 "--restore needs a directory, a file or "
                 "'latest'");
        return PS_EINVAL;
    }
    if (cfg->checkpoint_every_s > 0 && !has_dir) {
        snprintf(err, errlen, "--checkpoint-every needs --checkpoint-dir");
        return PS_EINVAL;
    }
    if (has_dir && cfg->checkpoint_keep < 1) {
        snprintf(err, errlen, "--checkpoint-keep must be at least 1");
        return PS_EINVAL;
    }
    return PS_OK;
}

static ps_ckpt_state ckpt_state(ps_server *s)
{
    return (ps_ckpt_state){s->cluster_id, s->cfg.shard, s->cfg.shards,
                           s->tables,     s->dedup,     s->consist,
                           s->history};
}

/* --restore: loads the chosen checkpoint into the (still empty) shard. */
static int ckpt_restore(ps_server *s, char *err, size_t errlen)
{
    const ps_server_cfg *cfg = &s->cfg;
    int latest = strcmp(cfg->restore, "latest") == 0;
    const char *source = latest ? cfg->checkpoint_dir : cfg->restore;
    ps_ckpt_pick pick;
    char why[1024];
    int rc = ps_ckpt_pick_source(source, cfg->shard, cfg->shards,
                                 cfg->cluster_id, &pick, why, sizeof(why));
    if (rc != PS_OK && latest && pick.none) {
        /* The first start and every restart can share one command line. */
        ps_log(PS_LOG_INFO, "nothing to restore, starting fresh: %s", why);
        return PS_OK;
    }
    if (rc != PS_OK) {
        snprintf(err, errlen, "--restore %s: %s", cfg->restore, why);
        return rc;
    }
    ps_ckpt_state st = ckpt_state(s);
    rc = ps_ckpt_load(pick.buf, pick.len, &st, ps_now_ms(), why, sizeof(why));
    if (rc != PS_OK) {
        snprintf(err, errlen, "--restore: checkpoint %s cannot be loaded: %s",
                 pick.path, why);
    } else {
        snprintf(s->cluster_id, sizeof(s->cluster_id), "%s",
                 pick.meta.cluster_id);
        snprintf(s->ckpt.restored_from, sizeof(s->ckpt.restored_from), "%s",
                 pick.path);
        ps_log(PS_LOG_INFO,
               "restored checkpoint file=%s written_ms=%lld bytes=%zu "
               "tables_bytes=%llu workers=%zu skipped_damaged=%zu",
               pick.path, (long long)pick.meta.time_ms, pick.len,
               (unsigned long long)ps_tables_bytes(s->tables),
               ps_consist_live(s->consist), pick.skipped);
    }
    ps_ckpt_pick_release(&pick);
    return rc;
}

static int ckpt_open(ps_server *s, char *err, size_t errlen)
{
    const ps_server_cfg *cfg = &s->cfg;
    int rc = PS_OK;
    if (cfg->checkpoint_dir != NULL && cfg->checkpoint_dir[0] != '\0') {
        rc = ps_ckdir_open(&s->ckpt.dir, cfg->checkpoint_dir, cfg->shard,
                           cfg->checkpoint_keep, err, errlen);
        if (rc == PS_OK &&
            (rc = ps_saver_new(&s->ckpt.saver, s->ckpt.dir)) != PS_OK)
            snprintf(err, errlen, "out of memory");
        if (cfg->checkpoint_every_s > 0)
            s->ckpt.due_ms = ps_now_ms() + cfg->checkpoint_every_s * 1000LL;
    }
    if (rc == PS_OK && cfg->restore != NULL)
        rc = ckpt_restore(s, err, errlen);
    return rc;
}

static void ckpt_close(ps_server *s)
{
    ps_saver_free(s->ckpt.saver); /* waits for a child still writing */
    ps_ckdir_free(s->ckpt.dir);
    for (size_t i = 0; i < s->ckpt.nwait; i++)
        zmq_msg_close(&s->ckpt.wait[i].rid);
    free(s->ckpt.wait);
}

/* Queues a SAVE request; a retried copy (same client and request id)
 * replaces the route of the first, keeping its place. */
static int ckpt_add_waiter(ps_server *s, zmq_msg_t *rid, const ps_header *h)
{
    ckpt_ctl *c = &s->ckpt;
    save_waiter *w = NULL;
    for (size_t i = 0; i < c->nwait && w == NULL; i++)
        if (c->wait[i].client_id == h->client_id &&
            c->wait[i].request_id == h->request_id)
            w = &c->wait[i];
    if (w != NULL) {
        zmq_msg_close(&w->rid);
    } else {
        if (c->nwait == SAVE_WAITERS_MAX)
            return PS_ENOMEM;
        if (c->nwait == c->wait_cap) {
            size_t cap = c->wait_cap ? c->wait_cap * 2 : 8;
            save_waiter *grown = realloc(c->wait, cap * sizeof(*grown));
            if (grown == NULL)
                return PS_ENOMEM;
            c->wait = grown;
            c->wait_cap = cap;
        }
        w = &c->wait[c->nwait++];
        w->client_id = h->client_id;
        w->request_id = h->request_id;
        w->running = 0;
    }
    zmq_msg_init(&w->rid);
    zmq_msg_copy(&w->rid, rid);
    return PS_OK;
}

/* SAVE: exactly [Header]; answered `deferred` now and with the file once
 * the checkpoint that covers it is written (ckpt_finished). */
static void handle_save(ps_server *s, request *r)
{
    if (r->f->n != 2) {
        fail(r, PS_EPROTO, "SAVE takes no data frames, got %d", r->f->n - 2);
        return;
    }
    if (s->ckpt.dir == NULL) {
        fail(r, PS_EINVAL,
             "this server takes no checkpoints: start it with "
             "--checkpoint-dir DIR");
        return;
    }
    if (ckpt_add_waiter(s, &r->f->part[0], r->h) != PS_OK) {
        fail(r, PS_ENOMEM, "%d SAVE requests wait already, or out of memory",
             SAVE_WAITERS_MAX);
        return;
    }
    r->reply.has_deferred = r->reply.deferred = 1;
}

static void ckpt_start(ps_server *s, int background)
{
    ckpt_ctl *c = &s->ckpt;
    for (size_t i = 0; i < c->nwait; i++)
        c->wait[i].running = 1;
    if (s->cfg.checkpoint_every_s > 0)
        c->due_ms = ps_now_ms() + s->cfg.checkpoint_every_s * 1000LL;
    ps_ckpt_state st = ckpt_state(s);
    ps_saver_start(c->saver, &st, background);
}

/* Records a finished checkpoint and answers the SAVE requests it covers. */
static void ckpt_finished(ps_server *s, const ps_ckpt_result *res)
{
    ckpt_ctl *c = &s->ckpt;
    if (res->status == PS_OK) {
        c->ok++;
        c->last = *res;
        ps_log(PS_LOG_INFO,
               "checkpoint written file=%s bytes=%llu duration_ms=%.1f",
               res->file, (unsigned long long)res->bytes,
               (double)res->duration_us / 1000.0);
    } else {
        c->failed++;
        snprintf(c->last_error, sizeof(c->last_error), "%s", res->err);
        ps_log(PS_LOG_ERROR, "checkpoint failed: %s", res->err);
    }
    size_t kept = 0;
    for (size_t i = 0; i < c->nwait; i++) {
        save_waiter *w = &c->wait[i];
        if (!w->running) {
            c->wait[kept++] = *w;
            continue;
        }
        request r;
        memset(&r, 0, sizeof(r));
        ps_header_init(&r.reply);
        r.reply.has_type = r.reply.has_request_id = 1;
        r.reply.type = SPARKPS__MSG_TYPE__SAVE;
        r.reply.request_id = w->request_id;
        if (res->status == PS_OK) {
            r.reply.checkpoint_file = (char *)res->file;
            r.reply.has_checkpoint_bytes = r.reply.has_checkpoint_us = 1;
            r.reply.checkpoint_bytes = res->bytes;
            r.reply.checkpoint_us = (uint64_t)res->duration_us;
        } else {
            fail(&r, res->status, "checkpoint failed: %.200s", res->err);
        }
        send_reply(s, &w->rid, &r);
        zmq_msg_close(&w->rid);
    }
    c->nwait = kept;
}

/* The loop's checkpoint duties: collect a finished one, start one that is
 * due or asked for, keep waiting SAVE clients informed. */
static void ckpt_tick(ps_server *s, int64_t now)
{
    ckpt_ctl *c = &s->ckpt;
    if (c->dir == NULL)
        return;
    ps_ckpt_result res;
    if (ps_saver_collect(c->saver, 0, &res))
        ckpt_finished(s, &res);
    if (!ps_saver_busy(c->saver)) {
        int asked = 0;
        for (size_t i = 0; i < c->nwait; i++)
            asked |= !c->wait[i].running;
        if (asked || (c->due_ms > 0 && now >= c->due_ms))
            ckpt_start(s, 1);
    }
    if (c->nwait > 0 && now - c->notice_ms >= SAVE_NOTICE_MS) {
        c->notice_ms = now;
        for (size_t i = 0; i < c->nwait; i++) {
            request r;
            memset(&r, 0, sizeof(r));
            ps_header_init(&r.reply);
            r.reply.has_type = r.reply.has_request_id = 1;
            r.reply.type = SPARKPS__MSG_TYPE__SAVE;
            r.reply.request_id = c->wait[i].request_id;
            r.reply.has_deferred = r.reply.deferred = 1;
            send_reply(s, &c->wait[i].rid, &r);
        }
    }
}

/* The checkpoint at stop, once the drain made the tables final: waits for
 * one still being written, then writes the last one in this process. */
static int ckpt_final(ps_server *s)
{
    ckpt_ctl *c = &s->ckpt;
    if (c->dir == NULL)
        return PS_OK;
    ps_ckpt_result res;
    if (ps_saver_collect(c->saver, 1, &res))
        ckpt_finished(s, &res);
    ckpt_start(s, 0);
    if (!ps_saver_collect(c->saver, 1, &res))
        return PS_EIO;
    ckpt_finished(s, &res);
    return res.status;
}

static void ckpt_status(ps_server *s, Sparkps__Status *st)
{
    const ckpt_ctl *c = &s->ckpt;
    if (c->restored_from[0])
        st->restored_from = (char *)c->restored_from;
    if (c->dir == NULL)
        return;
    st->checkpoint_dir = (char *)ps_ckdir_path(c->dir);
    st->has_checkpoints_ok = st->has_checkpoints_failed = 1;
    st->checkpoints_ok = c->ok;
    st->checkpoints_failed = c->failed;
    if (c->last.file[0]) {
        st->checkpoint_file = (char *)c->last.file;
        st->has_checkpoint_time_ms = st->has_checkpoint_us = 1;
        st->has_checkpoint_bytes = 1;
        st->checkpoint_time_ms = (uint64_t)c->last.time_ms;
        st->checkpoint_us = (uint64_t)c->last.duration_us;
        st->checkpoint_bytes = c->last.bytes;
    }
    if (c->last_error[0])
        st->checkpoint_error = (char *)c->last_error;
}

/* ---- PUSH / PULL / PUSHPULL ---- */

/* What a validated data request refers to. */
typedef struct data_req {
    ps_table *t;
    int sparse;
    size_t dim;   /* floats per key (dense: 1) */
    size_t nvals; /* floats moved */
    const uint64_t *keys;
    const float *grad;
    zmq_msg_t *grad_msg; /* the value frame when grad points into it */
    zmq_msg_t *keys_msg; /* the key frame, to park it */
} data_req;

static int validate_data(ps_server *s, request *r, data_req *d)
{
    const ps_header *h = r->h;
    ps_frames *f = r->f;
    int has_push = h->type != SPARKPS__MSG_TYPE__PULL;
    size_t dsize = ps_dtype_size((int)h->dtype);
    memset(d, 0, sizeof(*d));
    d->t = ps_tables_get(s->tables, h->table_id);
    if (d->t == NULL) {
        fail(r, PS_ENOTABLE, "unknown table id %u", h->table_id);
        return -1;
    }
    d->sparse = ps_table_kind(d->t) == PS_TABLE_SPARSE;
    d->dim = d->sparse ? ps_table_dim(d->t) : 1;
    int nbulk = f->n - 2;
    int want = (d->sparse ? 1 : 0) + (has_push ? 1 : 0);
    if (nbulk != want) {
        fail(r, PS_EPROTO, "%s on a %s table needs %d data frame(s), got %d",
             ps_msg_type_name((int)h->type), d->sparse ? "sparse" : "dense",
             want, nbulk);
        return -1;
    }
    if (h->count == 0) {
        fail(r, PS_ERANGE, "count is 0");
        return -1;
    }
    if (d->sparse && h->count > s->cfg.max_keys) {
        fail(r, PS_ETOOBIG,
             "%llu keys in one request; the limit is %llu "
             "(--max-keys)",
             (unsigned long long)h->count, (unsigned long long)s->cfg.max_keys);
        return -1;
    }
    if (d->sparse) {
        if (h->count > SIZE_MAX / 8 / d->dim / dsize ||
            ps_frame_size(f, 2) != h->count * 8) {
            fail(r, PS_EPROTO, "key frame of %zu bytes for %llu keys",
                 ps_frame_size(f, 2), (unsigned long long)h->count);
            return -1;
        }
        d->keys_msg = &f->part[2];
        d->keys = aligned_view(s, 0, ps_frame_data(f, 2), h->count * 8, 8);
        if (d->keys == NULL) {
            fail(r, PS_ENOMEM, "out of memory");
            return -1;
        }
        for (size_t i = 0; i < h->count; i++) {
            if (ps_key_shard(d->keys[i], s->cfg.shards) != s->cfg.shard) {
                fail(r, PS_ERANGE, "key %llu belongs to shard %u, not %u",
                     (unsigned long long)d->keys[i],
                     ps_key_shard(d->keys[i], s->cfg.shards), s->cfg.shard);
                return -1;
            }
        }
    } else {
        uint64_t lo, hi;
        ps_table_range(d->t, &lo, &hi);
        if (h->offset < lo || h->offset > hi || h->count > hi - h->offset) {
            fail(r, PS_ERANGE,
                 "range [%llu, +%llu) outside this shard's [%llu, %llu)",
                 (unsigned long long)h->offset, (unsigned long long)h->count,
                 (unsigned long long)lo, (unsigned long long)hi);
            return -1;
        }
    }
    d->nvals = (size_t)h->count * d->dim;
    if (!has_push)
        return 0;
    if (!(h->lr_scale > 0 && h->lr_scale <= 1e6)) {
        fail(r, PS_EINVAL, "lr_scale %g outside (0, 1e6]", h->lr_scale);
        return -1;
    }
    int vf = f->n - 1;
    if (ps_frame_size(f, vf) != d->nvals * dsize) {
        fail(r, PS_EPROTO, "value frame of %zu bytes, expected %zu (%zu %s)",
             ps_frame_size(f, vf), d->nvals * dsize, d->nvals,
             ps_dtype_name((int)h->dtype));
        return -1;
    }
    const void *raw = ps_frame_data(f, vf);
    if (h->dtype == SPARKPS__DTYPE__F32) {
        d->grad = aligned_view(s, 1, raw, d->nvals * 4, 4);
        if (d->grad == raw)
            d->grad_msg = &f->part[vf];
    } else {
        float *g = scratch(s, 1, d->nvals * 4);
        if (g != NULL)
            ps_dtype_to_f32((int)h->dtype, raw, g, d->nvals);
        d->grad = g;
    }
    if (d->grad == NULL) {
        fail(r, PS_ENOMEM, "out of memory");
        return -1;
    }
    if (!ps_all_finite(d->grad, d->nvals)) {
        fail(r, PS_EBADGRAD, "%s contain NaN or Inf; not applied",
             h->type == SPARKPS__MSG_TYPE__ASSIGN ? "values" : "gradients");
        return -1;
    }
    return 0;
}

/* Reads the requested values into a new reply frame in the request's dtype.
 * `fused` holds the values already (pushpull), else they are read. */
static int read_values(ps_server *s, ps_table *t, int dtype, int sparse,
                       const uint64_t *keys, uint64_t offset, uint64_t count,
                       size_t nvals, zmq_msg_t *msg)
{
    size_t dsize = ps_dtype_size(dtype);
    if (zmq_msg_init_size(msg, nvals * dsize) != 0)
        return PS_ENOMEM;
    float *dst = zmq_msg_data(msg);
    int direct = dtype == PS_DTYPE_F32 && ((uintptr_t)dst % 4) == 0;
    if (!direct && (dst = scratch(s, 2, nvals * 4)) == NULL) {
        zmq_msg_close(msg);
        return PS_ENOMEM;
    }
    if (sparse)
        ps_table_sparse_read(t, keys, (size_t)count, dst);
    else
        ps_table_dense_read(t, offset, count, dst);
    if (!direct)
        ps_dtype_from_f32(dtype, dst, zmq_msg_data(msg), nvals);
    return PS_OK;
}

static int apply_push(ps_server *s, request *r, data_req *d, int want_values)
{
    const ps_header *h = r->h;
    size_t dsize = ps_dtype_size((int)h->dtype);
    float *out = NULL;
    if (want_values && d->grad_msg != NULL) {
        /* The updated values overwrite the gradient frame as it is consumed
         * and that frame goes back as the reply: no allocation, no page
         * faults on fresh memory, and the frame is already cache-warm. */
        zmq_msg_init(&r->values);
        zmq_msg_move(&r->values, d->grad_msg);
        r->has_values = 1;
        out = zmq_msg_data(&r->values);
    } else if (want_values) {
        if (zmq_msg_init_size(&r->values, d->nvals * dsize) != 0)
            return PS_ENOMEM;
        r->has_values = 1;
        out = zmq_msg_data(&r->values);
        if (h->dtype != SPARKPS__DTYPE__F32 || ((uintptr_t)out % 4) != 0)
            if ((out = scratch(s, 2, d->nvals * 4)) == NULL)
                return PS_ENOMEM;
    }
    int64_t t0 = ps_now_ns();
    if (d->sparse) {
        int rc =
            ps_table_sparse_push(d->t, d->keys, (size_t)h->count, d->grad,
                                 (float)h->lr_scale, out);
        s->metrics.apply_ns += ps_now_ns() - t0;
        if (rc != PS_OK)
            return rc;
    } else {
        ps_table_dense_push(d->t, h->offset, h->count, d->grad,
                            (float)h->lr_scale, out);
        s->metrics.apply_ns += ps_now_ns() - t0;
    }
    if (out != NULL && out != zmq_msg_data(&r->values))
        ps_dtype_from_f32((int)h->dtype, out, zmq_msg_data(&r->values),
                          d->nvals);
    return PS_OK;
}

static int park_pull(ps_server *s, request *r, data_req *d)
{
    if (s->npark >= PARK_MAX)
        return PS_ENOMEM; /* bounded: a flood of early pulls cannot grow it */
    if (s->npark == s->park_cap) {
        size_t cap = s->park_cap ? s->park_cap * 2 : 16;
        parked *p = realloc(s->park, cap * sizeof(*p));
        if (p == NULL)
            return PS_ENOMEM;
        s->park = p;
        s->park_cap = cap;
    }
    parked *p = &s->park[s->npark++];
    memset(p, 0, sizeof(*p));
    zmq_msg_init(&p->rid);
    zmq_msg_move(&p->rid, &r->f->part[0]);
    if (d->sparse) {
        zmq_msg_init(&p->keys);
        zmq_msg_move(&p->keys, d->keys_msg);
        p->has_keys = 1;
    }
    p->type = (int)r->h->type;
    p->request_id = r->h->request_id;
    p->table = r->h->table_id;
    p->dtype = (int)r->h->dtype;
    p->offset = r->h->offset;
    p->count = r->h->count;
    p->clock = r->h->clock;
    p->arrival_ns = r->arrival_ns;
    return PS_OK;
}

static void handle_data(ps_server *s, request *r, int *parked_out)
{
    const ps_header *h = r->h;
    data_req d;
    if (validate_data(s, r, &d) != 0)
        return;
    int is_push = h->type != SPARKPS__MSG_TYPE__PULL;
    int is_pull = h->type != SPARKPS__MSG_TYPE__PUSH;
    int is_worker = h->worker_id >= 0;
    int defer =
        is_pull && is_worker && !ps_consist_can_serve(s->consist, h->clock);

    if (is_push) {
        int status = PS_OK;
        int dedup = h->client_id != 0 && h->seq != 0;
        int seen = dedup
                       ? ps_dedup_check(s->dedup, h->client_id, h->seq, &status)
                       : PS_DEDUP_NEW;
        if (seen == PS_DEDUP_STALE) {
            fail(r, PS_ESTALE, "sequence %llu is older than the dedup window",
                 (unsigned long long)h->seq);
            return;
        }
        if (seen == PS_DEDUP_NEW) {
            status = apply_push(s, r, &d, is_pull && !defer);
            /* A failed apply changed nothing, so only success is
             * remembered: a retry of a failed push may still apply. */
            if (dedup && status == PS_OK)
                ps_dedup_record(s->dedup, h->client_id, h->seq, status);
        } else if (is_pull && !defer && status == PS_OK) {
            /* Retried pushpull: the push was applied once; answer with the
             * current values. */
            status = read_values(s, d.t, (int)h->dtype, d.sparse, d.keys,
                                 h->offset, h->count, d.nvals, &r->values);
            r->has_values = status == PS_OK;
        }
        if (status != PS_OK) {
            if (r->has_values) {
                zmq_msg_close(&r->values);
                r->has_values = 0;
            }
            fail_rows(s, r, d.t, status, "applying the push");
            return;
        }
    }
    if (defer) {
        if (park_pull(s, r, &d) != PS_OK) {
            fail(r, PS_ENOMEM,
                 "cannot park the pull: %zu already wait for "
                 "slower workers (limit %d) or out of memory",
                 s->npark, PARK_MAX);
            return;
        }
        *parked_out = 1;
        r->reply.has_deferred = 1;
        r->reply.deferred = 1;
        return;
    }
    if (is_pull && !r->has_values) {
        int rc = read_values(s, d.t, (int)h->dtype, d.sparse, d.keys, h->offset,
                             h->count, d.nvals, &r->values);
        if (rc != PS_OK) {
            fail(r, rc, "out of memory reading values");
            return;
        }
        r->has_values = 1;
    }
    if (is_pull) {
        r->reply.has_min_clock = 1;
        r->reply.min_clock = reply_min_clock(s);
    }
}

/* Serves parked pulls whose clock the slowest live worker now allows. */
static void serve_parked(ps_server *s)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->npark; i++) {
        parked *p = &s->park[i];
        if (!ps_consist_can_serve(s->consist, p->clock)) {
            s->park[kept++] = *p;
            continue;
        }
        request r;
        parked_reply_init(p, &r);
        ps_table *t = ps_tables_get(s->tables, p->table);
        if (t == NULL) {
            fail(&r, PS_ENOTABLE, "table %u was dropped", p->table);
        } else {
            size_t dim = p->has_keys ? ps_table_dim(t) : 1;
            const uint64_t *keys =
                p->has_keys ? aligned_view(s, 0, zmq_msg_data(&p->keys),
                                           p->count * 8, 8)
                            : NULL;
            int rc =
                p->has_keys && keys == NULL
                    ? PS_ENOMEM
                    : read_values(s, t, p->dtype, p->has_keys, keys, p->offset,
                                  p->count, (size_t)p->count * dim, &r.values);
            if (rc != PS_OK) {
                fail(&r, rc, "out of memory reading values");
            } else {
                r.has_values = 1;
                r.reply.has_min_clock = 1;
                r.reply.min_clock = reply_min_clock(s);
            }
        }
        send_reply(s, &p->rid, &r);
        ps_metrics_observe(&s->metrics, p->type,
                           (double)(ps_now_ns() - p->arrival_ns) / 1e9);
        if (r.has_values)
            zmq_msg_close(&r.values);
        park_release(p);
    }
    s->npark = kept;
}

/* ---- ASSIGN, SCAN ---- */

/* Overwrites values without the optimizer. Validated like a push (frames,
 * ranges, key ownership, finite values) and deduplicated like one, so a
 * retried piece is applied once. */
static void handle_assign(ps_server *s, request *r)
{
    const ps_header *h = r->h;
    data_req d;
    if (validate_data(s, r, &d) != 0)
        return;
    int status = PS_OK;
    int dedup = h->client_id != 0 && h->seq != 0;
    int seen = dedup ? ps_dedup_check(s->dedup, h->client_id, h->seq, &status)
                     : PS_DEDUP_NEW;
    if (seen == PS_DEDUP_STALE) {
        fail(r, PS_ESTALE, "sequence %llu is older than the dedup window",
             (unsigned long long)h->seq);
        return;
    }
    if (seen == PS_DEDUP_DUP)
        return; /* the first copy was applied (only success is recorded) */
    if (h->if_untouched && ps_table_touched(d.t)) {
        /* Training already moved this shard's part: a warm start arriving
         * late must not undo it. */
        r->reply.has_skipped = r->reply.skipped = 1;
    } else if (d.sparse) {
        status = ps_table_sparse_assign(d.t, d.keys, (size_t)h->count, d.grad);
    } else {
        ps_table_dense_assign(d.t, h->offset, h->count, d.grad);
    }
    if (status != PS_OK) {
        fail_rows(s, r, d.t, status, "creating rows");
        return;
    }
    if (dedup)
        ps_dedup_record(s->dedup, h->client_id, h->seq, PS_OK);
}

/* One page of a sparse table's rows on this shard, capped so the reply
 * stays under the message limit. */
static void handle_scan(ps_server *s, request *r)
{
    const ps_header *h = r->h;
    ps_table *t = ps_tables_get(s->tables, h->table_id);
    if (t == NULL) {
        fail(r, PS_ENOTABLE, "unknown table id %u", h->table_id);
        return;
    }
    if (ps_table_kind(t) != PS_TABLE_SPARSE) {
        fail(r, PS_EINVAL, "SCAN needs a sparse table");
        return;
    }
    if (r->f->n != 2) {
        fail(r, PS_EPROTO, "SCAN takes no data frames, got %d", r->f->n - 2);
        return;
    }
    uint64_t end = ps_table_scan_end(t);
    if (h->count == 0 || h->offset > end) {
        fail(r, PS_ERANGE, "cursor %llu beyond %llu, or count 0",
             (unsigned long long)h->offset, (unsigned long long)end);
        return;
    }
    size_t dim = ps_table_dim(t);
    size_t dsize = ps_dtype_size((int)h->dtype);
    /* The header of the reply needs a few hundred bytes of the limit. */
    uint64_t room =
        s->cfg.max_message_bytes > 512 ? s->cfg.max_message_bytes - 512 : 0;
    uint64_t fit = room / (8 + dim * dsize);
    uint64_t max = h->count < fit ? h->count : fit;
    if (max > ps_table_rows(t))
        max = ps_table_rows(t);
    if (fit == 0) {
        fail(r, PS_ETOOBIG, "one row of %zu floats exceeds the message limit",
             dim);
        return;
    }
    /* Rows are gathered in aligned scratch, then copied into the frames
     * (small frames live inside the message, unaligned). */
    uint64_t *keys = scratch(s, 0, (size_t)max * 8 + 8);
    float *vals = scratch(s, 2, (size_t)max * dim * 4 + 4);
    if (keys == NULL || vals == NULL) {
        fail(r, PS_ENOMEM, "out of memory reading rows");
        return;
    }
    uint64_t cursor = h->offset;
    size_t n = ps_table_sparse_scan(t, &cursor, (size_t)max, keys, vals);
    if (zmq_msg_init_size(&r->keys, n * 8) != 0) {
        fail(r, PS_ENOMEM, "out of memory reading rows");
        return;
    }
    r->has_keys = 1;
    if (zmq_msg_init_size(&r->values, n * dim * dsize) != 0) {
        fail(r, PS_ENOMEM, "out of memory reading rows");
        return;
    }
    r->has_values = 1;
    if (n)
        memcpy(zmq_msg_data(&r->keys), keys, n * 8);
    ps_dtype_from_f32((int)h->dtype, vals, zmq_msg_data(&r->values), n * dim);
    r->reply.has_count = r->reply.has_offset = r->reply.has_done = 1;
    r->reply.count = n;
    r->reply.offset = cursor;
    r->reply.done = cursor >= end;
}

/* ---- CLOCK, STATUS ---- */

static void handle_clock(ps_server *s, request *r)
{
    if (r->h->worker_id < 0) {
        fail(r, PS_EINVAL, "CLOCK needs a worker id");
        return;
    }
    if (r->h->clock < 0) {
        fail(r, PS_EINVAL, "clock %lld is negative", (long long)r->h->clock);
        return;
    }
    ps_consist_set_clock(s->consist, (uint32_t)r->h->worker_id, r->h->clock);
}

/* Everything a Status message points into, owned by whoever builds it (a
 * STATUS request or an HTTP page) and freed after use. */
typedef struct status_parts {
    Sparkps__Status st;
    Sparkps__Hello hello;
    Sparkps__TableInfo *ti, **tp;
    Sparkps__WorkerInfo *wi, **wp;
    Sparkps__Progress *pr;
    Sparkps__EpochEval *ev, **evp; /* every worker's history, in order */
    Sparkps__Counter *rq, **rp, *er, **ep;
    Sparkps__Security security;
} status_parts;

static void status_parts_free(status_parts *p)
{
    free(p->ti);
    free(p->tp);
    free(p->wi);
    free(p->wp);
    free(p->pr);
    free(p->ev);
    free(p->evp);
    free(p->rq);
    free(p->rp);
    free(p->er);
    free(p->ep);
}

static void status_tables(ps_server *s, status_parts *p, size_t nt)
{
    ps_table_info info;
    for (size_t i = 0; i < nt; i++) {
        if (!ps_tables_info_at(s->tables, i, &info))
            continue;
        Sparkps__TableInfo *x = &p->ti[p->st.n_tables];
        sparkps__table_info__init(x);
        x->job = (char *)info.job;
        x->name = (char *)info.name;
        x->has_id = x->has_kind = x->has_len = x->has_dim = 1;
        x->id = info.id;
        x->kind = (Sparkps__TableKind)info.kind;
        x->len = info.len;
        x->dim = info.dim;
        x->has_lo = x->has_hi = x->has_rows = x->has_bytes = 1;
        x->lo = info.lo;
        x->hi = info.hi;
        x->rows = info.rows;
        x->bytes = info.bytes;
        x->has_optim = x->has_pushes = x->has_pulls = 1;
        x->optim = (Sparkps__OptimKind)info.optim;
        x->pushes = info.pushes;
        x->pulls = info.pulls;
        x->has_values_applied = 1;
        x->values_applied = info.values_applied;
        x->meta = (char *)info.meta;
        x->n_shape = info.nshape;
        x->shape = (uint64_t *)info.shape;
        p->tp[p->st.n_tables++] = x;
    }
}

/* A figure the worker did not measure (NaN) stays absent on the wire. */
#define SET_FIGURE(x, field, v)                                                \
    do {                                                                       \
        (x)->field = (v);                                                      \
        (x)->has_##field = !isnan(v);                                          \
    } while (0)

static void status_history(ps_server *s, uint32_t id, Sparkps__WorkerInfo *x,
                           Sparkps__EpochEval *ev, Sparkps__EpochEval **evp)
{
    size_t n = ps_history_len(s->history, id);
    x->history = evp;
    for (size_t k = 0; k < n; k++) {
        const ps_epoch_eval *e = ps_history_at(s->history, id, k);
        Sparkps__EpochEval *y = &ev[k];
        sparkps__epoch_eval__init(y);
        y->has_epoch = y->has_samples = y->has_time_ms = 1;
        y->epoch = e->epoch;
        y->samples = e->samples;
        y->time_ms = (uint64_t)e->time_ms;
        SET_FIGURE(y, loss, e->loss);
        SET_FIGURE(y, accuracy, e->accuracy);
        SET_FIGURE(y, train_loss, e->train_loss);
        SET_FIGURE(y, train_accuracy, e->train_accuracy);
        SET_FIGURE(y, auc, e->auc);
        evp[k] = y;
    }
    x->n_history = n;
}

static void status_workers(ps_server *s, status_parts *p, size_t nw,
                           int64_t now)
{
    size_t used = 0; /* history entries handed out so far */
    for (size_t i = 0; i < nw; i++) {
        const ps_worker_state *w = ps_consist_worker_at(s->consist, i);
        Sparkps__WorkerInfo *x = &p->wi[i];
        sparkps__worker_info__init(x);
        x->has_id = x->has_clock = x->has_alive = x->has_idle_ms = 1;
        x->id = w->id;
        x->clock = w->clock;
        x->alive = w->alive != 0;
        x->idle_ms = (uint64_t)(now - w->last_seen_ms);
        x->has_attempt = x->has_superseded = 1;
        x->attempt = w->attempt;
        x->superseded = w->superseded;
        if (w->has_progress) {
            Sparkps__Progress *g = &p->pr[i];
            sparkps__progress__init(g);
            g->has_samples = g->has_loss = g->has_epoch = 1;
            g->has_accuracy = 1;
            g->samples = w->samples;
            g->loss = w->loss;
            g->epoch = w->epoch;
            g->accuracy = w->accuracy;
            x->progress = g;
        }
        status_history(s, w->id, x, p->ev + used, p->evp + used);
        used += x->n_history;
        p->wp[p->st.n_workers++] = x;
    }
}

static void status_counters(ps_server *s, status_parts *p)
{
    for (int i = 1; i < MSG_TYPES; i++) {
        sparkps__counter__init(&p->rq[i]);
        p->rq[i].name = (char *)ps_msg_type_name(i);
        p->rq[i].has_value = 1;
        p->rq[i].value = s->requests[i];
        p->rp[p->st.n_requests++] = &p->rq[i];
    }
    for (int i = 1; i < PS_ERR_COUNT_; i++) {
        if (s->errors[i] == 0)
            continue;
        sparkps__counter__init(&p->er[i]);
        p->er[i].name = (char *)ps_errname(i);
        p->er[i].has_value = 1;
        p->er[i].value = s->errors[i];
        p->ep[p->st.n_errors++] = &p->er[i];
    }
}

static void status_security(ps_server *s, status_parts *p)
{
    Sparkps__Security *x = &p->security;
    sparkps__security__init(x);
    x->has_curve = x->has_insecure = x->has_allowed_keys = 1;
    x->curve = s->cfg.curve_secret != NULL;
    x->insecure = s->cfg.insecure && !x->curve;
    x->allowed_keys = ps_curve_allow_count(s->cfg.curve_allow);
    x->has_refused_unknown_key = x->has_refused_handshake = 1;
    x->refused_unknown_key = ps_auth_refused_unknown_key(s->auth);
    x->refused_handshake = ps_auth_refused_handshake(s->auth);
    p->st.security = x;
}

static uint64_t sum(const uint64_t *v, size_t n)
{
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++)
        t += v[i];
    return t;
}

/* Builds the shard's Status into p (memset to 0 by the caller; freed with
 * status_parts_free() in any case): the one builder behind the wire STATUS
 * reply, /status and /metrics. PS_ENOMEM when an array cannot be had. */
static int status_build(ps_server *s, status_parts *p)
{
    size_t nt = ps_tables_slots(s->tables) + 1;
    size_t nw = 1, nh = 1;
    const ps_worker_state *w;
    while ((w = ps_consist_worker_at(s->consist, nw - 1)) != NULL) {
        nh += ps_history_len(s->history, w->id);
        nw++;
    }
    p->ti = calloc(nt, sizeof(*p->ti));
    p->tp = calloc(nt, sizeof(*p->tp));
    p->wi = calloc(nw, sizeof(*p->wi));
    p->wp = calloc(nw, sizeof(*p->wp));
    p->pr = calloc(nw, sizeof(*p->pr));
    p->ev = calloc(nh, sizeof(*p->ev));
    p->evp = calloc(nh, sizeof(*p->evp));
    p->rq = calloc(MSG_TYPES, sizeof(*p->rq));
    p->rp = calloc(MSG_TYPES, sizeof(*p->rp));
    p->er = calloc(PS_ERR_COUNT_, sizeof(*p->er));
    p->ep = calloc(PS_ERR_COUNT_, sizeof(*p->ep));
    if (!p->ti || !p->tp || !p->wi || !p->wp || !p->pr || !p->ev || !p->evp ||
        !p->rq || !p->rp || !p->er || !p->ep)
        return PS_ENOMEM;
    Sparkps__Status *st = &p->st;
    sparkps__status__init(st);
    fill_hello(s, &p->hello);
    st->server = &p->hello;
    st->tables = p->tp;
    st->workers = p->wp;
    st->requests = p->rp;
    st->errors = p->ep;
    int64_t now = ps_now_ms();
    status_tables(s, p, nt - 1);
    status_workers(s, p, nw - 1, now);
    status_counters(s, p);
    st->has_min_clock = 1;
    st->min_clock = reply_min_clock(s);
    st->has_bytes_in = st->has_bytes_out = st->has_uptime_ms = 1;
    st->bytes_in = sum(s->metrics.bytes_in, PS_METRICS_TYPES);
    st->bytes_out = sum(s->metrics.bytes_out, PS_METRICS_TYPES);
    st->uptime_ms = (uint64_t)(now - s->start_ms);
    st->has_pending_pulls = 1;
    st->pending_pulls = s->npark;
    status_security(s, p);
    ckpt_status(s, st);
    st->has_peers_accepted = st->has_peers_disconnected = 1;
    st->peers_accepted = ps_auth_peers_accepted(s->auth);
    st->peers_disconnected = ps_auth_peers_disconnected(s->auth);
    return PS_OK;
}

static void handle_status(ps_server *s, request *r, status_parts *p)
{
    if (status_build(s, p) != PS_OK) {
        fail(r, PS_ENOMEM, "out of memory building status");
        return;
    }
    r->reply.status = &p->st;
}

/* ---- HTTP pages ---- */

static int page_status(void *arg, ps_strbuf *out)
{
    status_parts p;
    memset(&p, 0, sizeof(p));
    int rc = status_build(arg, &p);
    if (rc == PS_OK)
        ps_status_json(&p.st, out);
    status_parts_free(&p);
    return rc;
}

static int page_metrics(void *arg, ps_strbuf *out)
{
    ps_server *s = arg;
    status_parts p;
    memset(&p, 0, sizeof(p));
    int rc = status_build(s, &p);
    if (rc == PS_OK)
        ps_metrics_render(&s->metrics, &p.st, out);
    status_parts_free(&p);
    return rc;
}

static int start_http(ps_server *s, char *err, size_t errlen)
{
    size_t len;
    const char *html = ps_dashboard_html(&len);
    ps_http_route *routes = s->routes;
    routes[0] =
        (ps_http_route){"/metrics", "text/plain; version=0.0.4; charset=utf-8",
                        page_metrics, NULL, 0, 0};
    routes[1] = (ps_http_route){"/status", "application/json", page_status,
                                NULL, 0, 0};
    /* The dashboard holds no data (it fetches /status with the token), so
     * it is open; a browser cannot send a bearer token with a page load. */
    routes[2] =
        (ps_http_route){"/", "text/html; charset=utf-8", NULL, html, len, 1};
    ps_http_cfg hc = {s->cfg.http, routes, 3, s, s->cfg.http_token};
    return ps_http_new(&s->http, &hc, err, errlen);
}

/* ---- dispatch ---- */

/* A double from the wire, NaN when absent. */
static double figure(int has, double v)
{
    return has ? v : NAN;
}

/* Progress piggybacked by a worker: its live figures, and its latest
 * evaluation, which the history records once. */
static void take_progress(ps_server *s, uint32_t worker,
                          const Sparkps__Progress *g)
{
    if (g->has_samples) /* else the message carries only an evaluation */
        ps_consist_set_progress(s->consist, worker, g->samples, g->loss,
                                g->epoch, g->accuracy);
    const Sparkps__EpochEval *e = g->eval;
    if (e == NULL)
        return;
    ps_epoch_eval ev = {e->epoch,
                        e->samples,
                        figure(e->has_loss, e->loss),
                        figure(e->has_accuracy, e->accuracy),
                        figure(e->has_train_loss, e->train_loss),
                        figure(e->has_train_accuracy, e->train_accuracy),
                        figure(e->has_auc, e->auc),
                        ps_wall_ms()};
    if (ps_history_add(s->history, worker, &ev) == PS_HISTORY_DROPPED)
        ps_log(PS_LOG_DEBUG, "evaluation not kept worker=%u epoch=%u", worker,
               e->epoch);
}

/* Admits a training worker's message by its attempt (see consistency.h):
 * an older attempt of the worker id than the newest one, while that one is
 * alive, is refused. */
static int admit_worker(ps_server *s, request *r)
{
    const ps_header *h = r->h;
    uint32_t id = (uint32_t)h->worker_id, before;
    int rc = ps_consist_admit(s->consist, id, h->attempt, ps_now_ms(), &before);
    if (rc == PS_ESUPERSEDED) {
        fail(r, rc,
             "a newer attempt %u of worker %u has joined; this attempt "
             "%u stops",
             before, id, h->attempt);
    } else if (rc != PS_OK) {
        fail(r, rc, "out of memory tracking worker %u", id);
    } else if (h->attempt != before) {
        ps_log(PS_LOG_INFO,
               "worker attempt starts worker=%u attempt=%u previous=%u "
               "clock=0",
               id, h->attempt, before);
    }
    return rc;
}

static void handle_message(ps_server *s, ps_frames *f)
{
    request r;
    memset(&r, 0, sizeof(r));
    r.f = f;
    r.arrival_ns = ps_now_ns();
    ps_header_init(&r.reply);
    if (f->n < 2) {
        s->metrics.bytes_in[0] += f->bytes;
        s->errors[PS_EPROTO]++;
        return; /* no header: nothing to answer to */
    }
    char err[256];
    int rc = ps_header_decode(ps_frame_data(f, 1), ps_frame_size(f, 1), &r.h,
                              err, sizeof(err));
    s->metrics.bytes_in[r.h ? ps_metrics_type_index((int)r.h->type) : 0] +=
        f->bytes;
    r.reply.has_type = r.reply.has_request_id = 1;
    if (r.h != NULL) {
        r.reply.type = r.h->type;
        r.reply.request_id = r.h->request_id;
    }
    status_parts st;
    Sparkps__Hello hello;
    memset(&st, 0, sizeof(st));
    int was_parked = 0;
    if (rc != PS_OK) {
        fail(&r, rc, "%s", err);
    } else if (f->overflow) {
        fail(&r, PS_EPROTO,
             "message of %d frames; a request has at most %d (header, keys, "
             "values)",
             f->frames - 1, PS_MAX_FRAMES - 1);
    } else if (f->bytes > s->cfg.max_message_bytes) {
        fail(&r, PS_ETOOBIG,
             "message of %zu bytes (all frames) exceeds the %llu-byte limit "
             "(--max-message-bytes)",
             f->bytes, (unsigned long long)s->cfg.max_message_bytes);
    } else if (r.h->worker_id > PS_MAX_WORKER_ID) {
        fail(&r, PS_EINVAL, "worker id %d above %d", r.h->worker_id,
             PS_MAX_WORKER_ID);
    } else if (s->refusing && r.h->type != SPARKPS__MSG_TYPE__HEARTBEAT) {
        fail(&r, PS_ESHUTDOWN, "server shutting down");
        s->refused++;
    } else if (r.h->worker_id >= 0 && admit_worker(s, &r) != PS_OK) {
        if (r.h->type == SPARKPS__MSG_TYPE__HEARTBEAT) {
            s->errors[r.reply.error_code]++;
            ps_header_free(r.h);
            return; /* heartbeats get no reply, refused or not */
        }
    } else {
        const ps_header *h = r.h;
        s->requests[h->type]++;
        if (h->worker_id >= 0) {
            ps_consist_touch(s->consist, (uint32_t)h->worker_id, ps_now_ms());
            if (h->progress)
                take_progress(s, (uint32_t)h->worker_id, h->progress);
        }
        switch (h->type) {
        case SPARKPS__MSG_TYPE__HELLO:
            fill_hello(s, &hello);
            r.reply.hello = &hello;
            break;
        case SPARKPS__MSG_TYPE__DEFINE_TABLE:
            handle_define(s, &r);
            break;
        case SPARKPS__MSG_TYPE__DROP_TABLE:
        case SPARKPS__MSG_TYPE__DROP_JOB:
            handle_drop(s, &r);
            break;
        case SPARKPS__MSG_TYPE__PUSH:
        case SPARKPS__MSG_TYPE__PULL:
        case SPARKPS__MSG_TYPE__PUSHPULL:
            handle_data(s, &r, &was_parked);
            break;
        case SPARKPS__MSG_TYPE__ASSIGN:
            handle_assign(s, &r);
            break;
        case SPARKPS__MSG_TYPE__SCAN:
            handle_scan(s, &r);
            break;
        case SPARKPS__MSG_TYPE__CLOCK:
            handle_clock(s, &r);
            break;
        case SPARKPS__MSG_TYPE__STATUS:
            handle_status(s, &r, &st);
            break;
        case SPARKPS__MSG_TYPE__SHUTDOWN:
            handle_shutdown(s, &r);
            break;
        case SPARKPS__MSG_TYPE__SAVE:
            handle_save(s, &r);
            break;
        case SPARKPS__MSG_TYPE__HEARTBEAT:
            ps_header_free(r.h);
            return; /* liveness only: no reply */
        default:
            fail(&r, PS_EUNKNOWN, "unknown message type");
        }
    }
    if (r.reply.has_error_code && r.reply.error_code != PS_OK) {
        s->errors[r.reply.error_code < PS_ERR_COUNT_ ? r.reply.error_code
                                                     : PS_EPROTO]++;
        ps_log(PS_LOG_DEBUG, "request refused type=%s code=%s msg=\"%s\"",
               ps_msg_type_name(r.h ? (int)r.h->type : 0),
               ps_errname(r.reply.error_code), r.err);
    }
    /* A parked pull moved its routing id out of the frames; the deferred
     * notice goes to the same peer through the parked copy. */
    if (r.reply.has_error_code && r.has_values) {
        zmq_msg_close(&r.values); /* an error reply carries no data */
        r.has_values = 0;
    }
    send_reply(s, was_parked ? &s->park[s->npark - 1].rid : &f->part[0], &r);
    if (!was_parked && r.h != NULL)
        ps_metrics_observe(&s->metrics, (int)r.h->type,
                           (double)(ps_now_ns() - r.arrival_ns) / 1e9);
    if (r.has_values)
        zmq_msg_close(&r.values);
    if (r.has_keys)
        zmq_msg_close(&r.keys);
    status_parts_free(&st);
    ps_header_free(r.h);
}

void ps__server_handle(ps_server *s, ps_frames *f)
{
    handle_message(s, f);
}

/* ---- loop ---- */

void ps__server_tick(ps_server *s)
{
    if (ps_consist_expire(s->consist, ps_now_ms()) > 0)
        ps_log(PS_LOG_WARN, "worker(s) timed out live=%zu min_clock=%lld",
               ps_consist_live(s->consist), (long long)reply_min_clock(s));
    if (s->npark > 0)
        serve_parked(s);
    ckpt_tick(s, ps_now_ms());
}

static void drain(ps_server *s)
{
    ps_frames f;
    for (int i = 0; i < DRAIN_MAX; i++) {
        if (ps_frames_recv(s->sock, &f, ZMQ_DONTWAIT) != PS_OK)
            break;
        handle_message(s, &f);
        ps_frames_close(&f);
    }
    for (size_t i = 0; i < s->npark; i++) {
        parked *p = &s->park[i];
        request r;
        parked_reply_init(p, &r);
        fail(&r, PS_ESHUTDOWN, "server shutting down");
        send_reply(s, &p->rid, &r);
        ps_metrics_observe(&s->metrics, p->type,
                           (double)(ps_now_ns() - p->arrival_ns) / 1e9);
        park_release(p);
    }
    s->npark = 0;
}

/* After the drain, while training workers are alive: requests arriving
 * within STOP_GRACE_MS get PS_ESHUTDOWN, so a worker between two requests
 * fails at once instead of timing out against a closed port. Ends early
 * after STOP_QUIET_MS without one (heartbeats do not count). */
static void refuse_late(ps_server *s)
{
    if (ps_consist_live(s->consist) == 0)
        return;
    s->refusing = 1;
    zmq_pollitem_t item = {s->sock, 0, ZMQ_POLLIN, 0};
    int64_t now = ps_now_ms(), end = now + STOP_GRACE_MS;
    int64_t quiet = now + STOP_QUIET_MS;
    while (now < end && now < quiet) {
        uint64_t seen = s->refused;
        int n = zmq_poll(&item, 1, (long)((quiet < end ? quiet : end) - now));
        ps_frames f;
        for (int i = 0; n > 0 && i < DRAIN_MAX; i++) {
            if (ps_frames_recv(s->sock, &f, ZMQ_DONTWAIT) != PS_OK)
                break;
            handle_message(s, &f);
            ps_frames_close(&f);
        }
        now = ps_now_ms();
        if (s->refused != seen)
            quiet = now + STOP_QUIET_MS;
    }
    if (s->refused > 0)
        ps_log(PS_LOG_INFO, "refused late requests count=%llu",
               (unsigned long long)s->refused);
}

/* One line on how clients get in; public keys only. */
static void log_security(ps_server *s)
{
    ps_curve_key pub;
    if (s->cfg.curve_secret != NULL &&
        ps_curve_public_of(s->cfg.curve_secret, &pub) == PS_OK)
        ps_log(PS_LOG_INFO,
               "security=curve allowed_keys=%zu server_public_key=%s",
               ps_curve_allow_count(s->cfg.curve_allow), pub.z85);
    else if (s->cfg.insecure)
        ps_log(PS_LOG_WARN,
               "security=INSECURE: plaintext on a non-loopback address "
               "(--insecure): anyone who can reach endpoint=%s can read and "
               "change the model",
               s->endpoint);
    else
        ps_log(PS_LOG_INFO, "security=plaintext (loopback only)");
}

int ps_server_run(ps_server *s, volatile sig_atomic_t *stop)
{
    ps_log(PS_LOG_INFO,
           "serving endpoint=%s shard=%u shards=%u cluster=%s "
           "consistency=%s staleness=%d workers=%d",
           s->endpoint, s->cfg.shard, s->cfg.shards, s->cluster_id,
           cons_name(ps_consist_mode(s->consist)),
           ps_consist_staleness(s->consist), s->cfg.workers);
    log_security(s);
    if (s->http)
        ps_log(PS_LOG_INFO, "serving http url=%s", ps_http_url(s->http));
    if (s->ckpt.dir)
        ps_log(PS_LOG_INFO, "checkpoints dir=%s every_s=%d keep=%d",
               ps_ckdir_path(s->ckpt.dir), s->cfg.checkpoint_every_s,
               s->cfg.checkpoint_keep);
    /* The socket, the HTTP descriptor (when serving HTTP) and the
     * checkpoint writer's pipe (while one runs). */
    zmq_pollitem_t items[3] = {
        {s->sock, 0, ZMQ_POLLIN, 0},
        {NULL, s->http ? ps_http_poll_fd(s->http) : -1, ZMQ_POLLIN, 0}};
    int64_t http_ran_ms = 0;
    while (!*stop && !s->shutdown_requested) {
        int nitems = s->http ? 2 : 1;
        int saver_fd = s->ckpt.saver ? ps_saver_fd(s->ckpt.saver) : -1;
        if (saver_fd >= 0)
            items[nitems++] = (zmq_pollitem_t){NULL, saver_fd, ZMQ_POLLIN, 0};
        long timeout = POLL_MS;
        if (s->http) {
            long t = ps_http_timeout_ms(s->http);
            if (t >= 0 && t < timeout)
                timeout = t;
        }
        int n = zmq_poll(items, nitems, timeout);
        if (n < 0 && zmq_errno() != EINTR) {
            ps_log(PS_LOG_ERROR, "poll failed: %s", zmq_strerror(zmq_errno()));
            return PS_EZMQ;
        }
        /* Handle a bounded batch, then look at timers and parked pulls. */
        ps_frames f;
        for (int i = 0; n > 0 && i < 256 && !*stop && !s->shutdown_requested;
             i++) {
            if (ps_frames_recv(s->sock, &f, ZMQ_DONTWAIT) != PS_OK)
                break;
            handle_message(s, &f);
            ps_frames_close(&f);
        }
        ps__server_tick(s);
        /* HTTP after the batch: a scrape waits at most one batch, and a
         * flood of scrapes costs one MHD pass per batch of requests. MHD
         * also runs every POLL_MS without input: some of its work (freeing
         * closed connections, accepting again below the connection limit)
         * raises no event on its descriptor. */
        if (s->http) {
            int64_t now = ps_now_ms();
            if ((n > 0 && (items[1].revents & ZMQ_POLLIN)) ||
                ps_http_timeout_ms(s->http) == 0 ||
                now - http_ran_ms >= POLL_MS) {
                int64_t t0 = ps_now_ns();
                ps_http_run(s->http);
                s->metrics.http_ns += ps_now_ns() - t0;
                http_ran_ms = now;
            }
        }
    }
    ps_log(PS_LOG_INFO, "stopping: draining requests reason=%s",
           s->shutdown_requested ? "shutdown-request" : "signal");
    drain(s);
    /* The tables are final once the drain is done, for SIGTERM and
     * SHUTDOWN alike: the last checkpoint holds everything answered. */
    int rc = ckpt_final(s);
    refuse_late(s);
    return rc;
}
