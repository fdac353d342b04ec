/* libsparkps client; the contract is in sparkps.h.
 *
 * Design: every user request is split into one *piece* per shard it touches.
 * A piece is one wire request with its own request id and (for pushes) its
 * own sequence number, so the server can deduplicate a retried piece.
 * In-flight pieces live in a table indexed by request id (ids are
 * consecutive, so id % capacity rarely collides; the table doubles when it
 * does). ps_client_wait() drives the sockets: it receives replies, matches
 * them to pieces, and on a piece's deadline reconnects that shard (a fresh
 * DEALER drops whatever the old connection still held) and re-sends every
 * piece pending there.
 *
 * Bulk data is sent zero-copy from the caller's buffers (dense) or from
 * per-piece gathered buffers (sparse). libzmq reports when it is done with a
 * buffer through a free callback run on its I/O thread; a request is only
 * handed back once every such buffer is released, so the caller may free
 * its arrays as soon as wait returns.
 *
 * Threads: the user's thread owns the data sockets. An optional heartbeat
 * thread owns one DEALER per shard of its own and is stopped over an
 * inproc PAIR socket. */
#include "sparkps.h"

#include "common/codec.h"
#include "common/curve_client.h"
#include "common/dtype.h"
#include "common/log.h"
#include "common/monitor.h"
#include "common/partition.h"
#include "common/rng.h"
#include "common/status_json.h"
#include "common/strbuf.h"
#include "common/timeutil.h"
#include "common/transport.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Wire message types, by their short names. */
enum {
    PS_MSG_HELLO = SPARKPS__MSG_TYPE__HELLO,
    PS_MSG_DEFINE_TABLE = SPARKPS__MSG_TYPE__DEFINE_TABLE,
    PS_MSG_DROP_TABLE = SPARKPS__MSG_TYPE__DROP_TABLE,
    PS_MSG_DROP_JOB = SPARKPS__MSG_TYPE__DROP_JOB,
    PS_MSG_PUSH = SPARKPS__MSG_TYPE__PUSH,
    PS_MSG_PULL = SPARKPS__MSG_TYPE__PULL,
    PS_MSG_PUSHPULL = SPARKPS__MSG_TYPE__PUSHPULL,
    PS_MSG_CLOCK = SPARKPS__MSG_TYPE__CLOCK,
    PS_MSG_STATUS = SPARKPS__MSG_TYPE__STATUS,
    PS_MSG_HEARTBEAT = SPARKPS__MSG_TYPE__HEARTBEAT,
    PS_MSG_ASSIGN = SPARKPS__MSG_TYPE__ASSIGN,
    PS_MSG_SCAN = SPARKPS__MSG_TYPE__SCAN,
    PS_MSG_SHUTDOWN = SPARKPS__MSG_TYPE__SHUTDOWN,
    PS_MSG_SAVE = SPARKPS__MSG_TYPE__SAVE
};

#define MAX_SHARDS 65536
#define MAX_INFLIGHT_PIECES 1024 /* well inside the servers' dedup window */
#define DEFAULT_TIMEOUT_MS 5000
#define DEFAULT_RETRIES 5
#define DEFAULT_HEARTBEAT_MS 1000
#define DEFAULT_MAX_PIECE_BYTES (1u << 20)
#define SCAN_SHARD_SHIFT 48 /* scan cursor: shard << 48 | index position */

typedef struct table_ref {
    char *name;
    int kind;
    uint64_t len;
    uint32_t dim;
    uint32_t *id; /* per shard */
    uint64_t *lo; /* dense: per shard range */
    uint64_t *hi;
} table_ref;

typedef struct shard_conn {
    char *endpoint;
    void *sock;
    ps_monitor *monitor; /* sock's handshakes and lost connections */
    int no_detail;       /* handshakes failed without detail, in a row */
    uint32_t hello_shards;
    int progress_due;  /* the latest progress has not reached this shard */
    uint64_t max_keys; /* the server's --max-keys (its Hello); 0: none */
} shard_conn;

typedef struct piece {
    ps_request *req;
    uint32_t shard;
    uint64_t request_id;
    uint64_t seq; /* pushes: dedup sequence number; else 0 */
    uint64_t offset, count;
    const float *grad; /* dense: into the caller's buffer */
    float *out;        /* dense: into the caller's buffer */
    uint64_t *keys;    /* sparse: this shard's keys (owned) */
    float *gbuf;       /* sparse: gathered gradient (owned) */
    float *obuf;       /* sparse: values before scatter (owned) */
    size_t *pos;       /* sparse: each key's index in the caller's arrays */
    void *wire_vals;   /* values converted to a 16-bit dtype (owned) */
    int attempts;
    int64_t deadline_ms;
    int done;
    int status;
    int in_table; /* registered in the in-flight table */
} piece;

struct ps_request {
    ps_client *c;
    int type;
    int table; /* index into c->tables; -1 for control messages */
    piece *pieces;
    int npieces;
    int remaining; /* pieces not done */
    int status;    /* first error */
    char errmsg[256];
    size_t dim;
    double lr_scale; /* pushes: fixed when made, so retries carry it */
    float *user_out; /* sparse pulls: where obufs are scattered */
    int64_t min_clock;
    atomic_int zc_live; /* zero-copy buffers libzmq still holds */
    /* control messages */
    Sparkps__TableSpec *spec;
    const char *job, *name;
    /* results of control messages */
    Sparkps__Hello *hellos; /* per shard, copied (cluster_id strdup'd) */
    uint32_t *ids;
    uint64_t *lo, *hi;
    char *status_json;
    ps_header **status_hdrs; /* per shard, kept when not NULL */
    int flags;               /* ASSIGN: PS_ASSIGN_IF_UNTOUCHED */
    size_t skipped;          /* ASSIGN: pieces acknowledged as no-ops */
    uint64_t *scan_keys;     /* SCAN: the caller's buffers */
    float *scan_vals;
    size_t scan_n;
    uint64_t scan_next;
    int scan_done;
    ps_shard_result *results; /* drop, shutdown: per piece (= shard) */
};

struct ps_client {
    ps_client_cfg cfg;
    char *job;
    char *cluster_id;
    void *ctx;
    shard_conn *shards;
    uint32_t nshards;
    uint64_t client_id;
    uint64_t next_request_id;
    uint64_t next_seq;
    piece **inflight; /* by request_id & (cap - 1) */
    size_t inflight_cap, inflight_n;
    table_ref *tables;
    int ntables;
    int consistency, staleness;
    uint32_t worker_timeout_ms;
    int64_t clock;
    int64_t last_min_clock;
    Sparkps__Progress progress;
    int has_progress;
    Sparkps__EpochEval eval; /* the latest evaluation, sent with progress */
    int has_eval;
    double lr_scale; /* for pushes made from now on */
    uint64_t retries;
    uint64_t timeouts;     /* a shard silent past the timeout (reconnect) */
    uint64_t disconnects;  /* connections to servers lost (see drive()) */
    size_t last_skipped;   /* ASSIGN pieces skipped by the last request */
    uint64_t replies_seen; /* for the test_drop_every hook */
    char errmsg[512];
    ps_curve_client curve; /* keys for every socket; on = 0: plaintext */
    /* heartbeat thread */
    pthread_t hb_thread;
    int hb_running;
    void *hb_pipe; /* our end of the inproc PAIR */
};

/* ---- errors ---- */

static int set_err(ps_client *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_err(ps_client *c, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
    va_end(ap);
    return code;
}

const char *ps_client_errmsg(const ps_client *c)
{
    return c->errmsg;
}

/* ---- configuration ---- */

void ps_client_cfg_init(ps_client_cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->worker_id = -1;
    cfg->expect_consistency = -1;
    cfg->dtype = PS_F32;
}

static uint64_t random_u64(void)
{
    uint64_t r = 0;
    FILE *f = fopen("/dev/urandom", "rb");
    if (f != NULL) {
        if (fread(&r, sizeof(r), 1, f) != 1)
            r = 0;
        fclose(f);
    }
    /* Mixed with time and pid so a missing /dev/urandom still differs. */
    r ^= ps_mix64((uint64_t)ps_now_us() ^ ((uint64_t)getpid() << 32));
    return r ? r : 1;
}

/* Splits "a,b,c" into endpoint strings. */
static int parse_servers(ps_client *c, const char *list)
{
    if (list == NULL || *list == '\0')
        return set_err(c, PS_EINVAL,
                       "no servers given (cfg.servers or SPARKPS_SERVERS)");
    size_t n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    if (n > MAX_SHARDS)
        return set_err(c, PS_EINVAL, "more than %d servers", MAX_SHARDS);
    c->shards = calloc(n, sizeof(*c->shards));
    if (c->shards == NULL)
        return PS_ENOMEM;
    const char *p = list;
    for (size_t i = 0; i < n; i++) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (*p == ' ')) {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len == 0 || len > 255)
            return set_err(c, PS_EINVAL,
                           "server %zu of '%s' is empty or too long", i, list);
        c->shards[i].endpoint = strndup(p, len);
        if (c->shards[i].endpoint == NULL)
            return PS_ENOMEM;
        c->nshards++;
        p = end ? end + 1 : p + len;
    }
    return PS_OK;
}

static void close_socket(shard_conn *s)
{
    ps_monitor_free(s->monitor); /* before the socket it watches */
    s->monitor = NULL;
    if (s->sock != NULL)
        zmq_close(s->sock);
    s->sock = NULL;
}

static int open_socket(ps_client *c, shard_conn *s)
{
    close_socket(s);
    s->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    if (s->sock == NULL)
        return set_err(c, PS_EZMQ, "cannot create socket: %s",
                       zmq_strerror(zmq_errno()));
    if (ps_curve_client_apply(&c->curve, s->sock) != PS_OK ||
        ps_monitor_new(&s->monitor, c->ctx, s->sock,
                       PS_HANDSHAKE_EVENTS | ZMQ_EVENT_DISCONNECTED) != PS_OK)
        return set_err(c, PS_EZMQ, "cannot set up the socket for %s: %s",
                       s->endpoint, zmq_strerror(zmq_errno()));
    int linger = 0, hwm = 100000;
    zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(s->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    /* Reconnect quickly after a server restart, but back off to 1 s. */
    int ivl = 50, ivl_max = 1000;
    zmq_setsockopt(s->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl));
    zmq_setsockopt(s->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof(ivl_max));
    int hb = c->cfg.heartbeat_ms > 0 ? c->cfg.heartbeat_ms : 1000;
    ps_socket_heartbeat(s->sock, hb, hb * 3);
    if (zmq_connect(s->sock, s->endpoint) != 0)
        return set_err(c, PS_EINVAL, "cannot connect to '%s': %s", s->endpoint,
                       zmq_strerror(zmq_errno()));
    return PS_OK;
}

/* ---- in-flight table ---- */

static int inflight_put(ps_client *c, piece *p)
{
    for (;;) {
        if (c->inflight_cap > 0) {
            size_t i = p->request_id & (c->inflight_cap - 1);
            if (c->inflight[i] == NULL) {
                c->inflight[i] = p;
                c->inflight_n++;
                p->in_table = 1;
                return PS_OK;
            }
        }
        size_t cap = c->inflight_cap ? c->inflight_cap * 2 : 64;
        piece **t = calloc(cap, sizeof(*t));
        if (t == NULL)
            return PS_ENOMEM;
        for (size_t i = 0; i < c->inflight_cap; i++)
            if (c->inflight[i])
                t[c->inflight[i]->request_id & (cap - 1)] = c->inflight[i];
        free(c->inflight);
        c->inflight = t;
        c->inflight_cap = cap;
    }
}

static piece *inflight_get(ps_client *c, uint64_t id)
{
    if (c->inflight_cap == 0)
        return NULL;
    piece *p = c->inflight[id & (c->inflight_cap - 1)];
    return p && p->request_id == id ? p : NULL;
}

static void inflight_del(ps_client *c, piece *p)
{
    if (!p->in_table)
        return;
    c->inflight[p->request_id & (c->inflight_cap - 1)] = NULL;
    c->inflight_n--;
    p->in_table = 0;
}

/* ---- sending ---- */

static void zc_release(void *data, void *hint)
{
    (void)data;
    ps_request *r = hint;
    atomic_fetch_sub_explicit(&r->zc_live, 1, memory_order_release);
}

static int send_zc(ps_request *r, void *sock, const void *data, size_t len,
                   int more)
{
    atomic_fetch_add_explicit(&r->zc_live, 1, memory_order_relaxed);
    int rc = ps_send_zerocopy(sock, data, len, zc_release, r, more);
    if (rc == PS_ENOMEM) /* the message was never built: no callback */
        atomic_fetch_sub_explicit(&r->zc_live, 1, memory_order_relaxed);
    return rc;
}

static int send_piece(ps_client *c, piece *p)
{
    ps_request *r = p->req;
    shard_conn *s = &c->shards[p->shard];
    ps_header h;
    ps_header_init(&h);
    h.has_type = h.has_request_id = h.has_client_id = 1;
    h.type = (Sparkps__MsgType)r->type;
    h.request_id = p->request_id;
    h.client_id = c->client_id;
    if (p->seq) {
        h.has_seq = 1;
        h.seq = p->seq;
    }
    if (c->cfg.worker_id >= 0) {
        h.has_worker_id = h.has_clock = h.has_attempt = 1;
        h.worker_id = c->cfg.worker_id;
        h.clock = c->clock;
        h.attempt = (uint32_t)c->cfg.attempt;
    }
    int data = r->type == PS_MSG_PUSH || r->type == PS_MSG_PULL ||
               r->type == PS_MSG_PUSHPULL || r->type == PS_MSG_ASSIGN ||
               r->type == PS_MSG_SCAN;
    int pushes = r->type == PS_MSG_PUSH || r->type == PS_MSG_PUSHPULL;
    int sends_vals = pushes || r->type == PS_MSG_ASSIGN;
    /* Assigned and scanned values are exact: always float32. */
    int dtype = r->type == PS_MSG_ASSIGN || r->type == PS_MSG_SCAN
                    ? PS_F32
                    : (int)c->cfg.dtype;
    if (data) {
        table_ref *t = &c->tables[r->table];
        h.has_table_id = h.has_offset = h.has_count = h.has_dtype = 1;
        h.table_id = t->id[p->shard];
        h.offset = p->offset;
        h.count = p->count;
        h.dtype = (Sparkps__DType)dtype;
    }
    if ((r->type == PS_MSG_PUSH || r->type == PS_MSG_PUSHPULL) &&
        r->lr_scale != 1.0) {
        h.has_lr_scale = 1;
        h.lr_scale = r->lr_scale;
    }
    if (r->type == PS_MSG_ASSIGN && (r->flags & PS_ASSIGN_IF_UNTOUCHED))
        h.has_if_untouched = h.if_untouched = 1;
    /* Progress rides on pushes and clocks, and on the HELLO of
     * ps_client_send_progress(); every copy carries the latest evaluation
     * (servers record it once). */
    Sparkps__Progress prog;
    if ((c->has_progress || c->has_eval) && s->progress_due &&
        (pushes || r->type == PS_MSG_CLOCK || r->type == PS_MSG_HELLO)) {
        if (c->has_progress)
            prog = c->progress;
        else
            sparkps__progress__init(&prog);
        prog.eval = c->has_eval ? &c->eval : NULL;
        h.progress = &prog;
        s->progress_due = 0;
    }
    h.table = r->spec;
    h.job = (char *)r->job;
    h.name = (char *)r->name;
    if (r->type == PS_MSG_CLOCK) {
        h.has_clock = 1;
        h.clock = c->clock;
    }
    int nbulk = data ? (p->keys != NULL) + sends_vals : 0;
    int rc = ps_send_header(s->sock, &h, nbulk > 0);
    if (rc == PS_OK && data && p->keys != NULL)
        rc = send_zc(r, s->sock, p->keys, p->count * 8, sends_vals);
    if (rc == PS_OK && sends_vals) {
        size_t n = p->keys ? p->count * r->dim : p->count;
        const float *g = p->keys ? p->gbuf : p->grad;
        const void *wire = g;
        if (dtype != PS_F32) {
            if (p->wire_vals == NULL) {
                p->wire_vals = malloc(n * 2);
                if (p->wire_vals == NULL)
                    return PS_ENOMEM;
                ps_dtype_from_f32(dtype, g, p->wire_vals, n);
            }
            wire = p->wire_vals;
        }
        rc = send_zc(r, s->sock, wire, n * ps_dtype_size(dtype), 0);
    }
    p->deadline_ms = ps_now_ms() + c->cfg.timeout_ms;
    return rc;
}

/* ---- building requests ---- */

static ps_request *request_new(ps_client *c, int type, int table, int n)
{
    ps_request *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->pieces = calloc((size_t)n, sizeof(*r->pieces));
    if (r->pieces == NULL) {
        free(r);
        return NULL;
    }
    r->c = c;
    r->type = type;
    r->table = table;
    r->npieces = n;
    r->remaining = n;
    r->min_clock = -1;
    r->lr_scale = c->lr_scale;
    atomic_init(&r->zc_live, 0);
    return r;
}

static void request_free(ps_request *r)
{
    if (r == NULL)
        return;
    for (int i = 0; i < r->npieces; i++) {
        piece *p = &r->pieces[i];
        inflight_del(r->c, p);
        free(p->keys);
        free(p->gbuf);
        free(p->obuf);
        free(p->pos);
        free(p->wire_vals);
    }
    if (r->hellos) {
        for (int i = 0; i < r->npieces; i++)
            free(r->hellos[i].cluster_id);
        free(r->hellos);
    }
    free(r->ids);
    free(r->lo);
    free(r->hi);
    free(r->status_json);
    if (r->status_hdrs) {
        for (int i = 0; i < r->npieces; i++)
            ps_header_free(r->status_hdrs[i]);
        free(r->status_hdrs);
    }
    free(r->pieces);
    free(r);
}

static void reconnect(ps_client *c, uint32_t shard, int charge);

/* Registers and sends every piece. On failure nothing of r stays registered
 * and libzmq holds none of its buffers; the caller frees r. */
static int request_start(ps_client *c, ps_request *r)
{
    for (int i = 0; i < r->npieces; i++) {
        piece *p = &r->pieces[i];
        p->req = r;
        p->request_id = ++c->next_request_id;
        if (r->type == PS_MSG_PUSH || r->type == PS_MSG_PUSHPULL ||
            r->type == PS_MSG_ASSIGN)
            p->seq = ++c->next_seq;
        int rc = inflight_put(c, p);
        if (rc == PS_OK)
            rc = send_piece(c, p);
        if (rc != PS_OK) {
            /* Replies to pieces already sent will find no request. Fresh
             * sockets for their shards make libzmq let go of our buffers
             * (still queued if a server is unreachable) before r is freed;
             * a push already delivered may have been applied. */
            for (int j = 0; j < r->npieces; j++)
                inflight_del(c, &r->pieces[j]);
            for (int j = 0; j < i; j++)
                reconnect(c, r->pieces[j].shard, 0);
            while (atomic_load(&r->zc_live) > 0)
                usleep(100);
            return set_err(c, rc, "sending to %s failed: %s",
                           c->shards[p->shard].endpoint, ps_strerror(rc));
        }
    }
    return PS_OK;
}

/* Keeps in-flight pieces under the cap by completing older work first. */
static int drive(ps_client *c, int timeout_ms);

static int make_room(ps_client *c, size_t want)
{
    while (c->inflight_n + want > MAX_INFLIGHT_PIECES) {
        int rc = drive(c, 100);
        if (rc != PS_OK && rc != PS_ETIMEDOUT)
            return rc;
    }
    return PS_OK;
}

/* ---- receiving ---- */

static void piece_finish(ps_client *c, piece *p, int status, const char *msg)
{
    ps_request *r = p->req;
    p->done = 1;
    p->status = status;
    inflight_del(c, p);
    r->remaining--;
    if (r->results != NULL) {
        ps_shard_result *res = &r->results[p - r->pieces];
        res->status = status;
        if (status != PS_OK)
            snprintf(res->errmsg, sizeof(res->errmsg), "%s",
                     msg && *msg ? msg : ps_strerror(status));
    }
    if (status != PS_OK && r->status == PS_OK) {
        r->status = status;
        snprintf(r->errmsg, sizeof(r->errmsg), "shard %u (%s): %s: %s",
                 p->shard, c->shards[p->shard].endpoint, ps_errname(status),
                 msg && *msg ? msg : ps_strerror(status));
    }
}

static Sparkps__Hello *copy_hello(const Sparkps__Hello *src,
                                  Sparkps__Hello *dst)
{
    *dst = *src;
    dst->base.unknown_fields = NULL;
    dst->base.n_unknown_fields = 0;
    dst->cluster_id = strdup(src->cluster_id ? src->cluster_id : "");
    return dst->cluster_id ? dst : NULL;
}

static int take_values(ps_client *c, piece *p, ps_frames *f)
{
    ps_request *r = p->req;
    size_t n = p->keys ? p->count * r->dim : p->count;
    size_t dsize = ps_dtype_size((int)c->cfg.dtype);
    if (f->n != 2 || ps_frame_size(f, 1) != n * dsize)
        return PS_EPROTO;
    float *dst = p->keys ? p->obuf : p->out;
    ps_dtype_to_f32((int)c->cfg.dtype, ps_frame_data(f, 1), dst, n);
    return PS_OK;
}

/* A page of a SCAN: checked against what was asked before it is copied
 * into the caller's buffers. */
static int take_scan(ps_client *c, piece *p, const ps_header *h, ps_frames *f)
{
    (void)c;
    ps_request *r = p->req;
    if (f->n != 3 || h->count > p->count ||
        ps_frame_size(f, 1) != h->count * 8 ||
        ps_frame_size(f, 2) != h->count * r->dim * sizeof(float))
        return PS_EPROTO;
    if (h->count) {
        memcpy(r->scan_keys, ps_frame_data(f, 1), h->count * 8);
        memcpy(r->scan_vals, ps_frame_data(f, 2),
               h->count * r->dim * sizeof(float));
    }
    r->scan_n = (size_t)h->count;
    r->scan_next = h->offset;
    r->scan_done = h->done;
    return PS_OK;
}

static void handle_reply(ps_client *c, ps_frames *f)
{
    ps_header *h = NULL;
    char err[256];
    if (f->n < 1 ||
        ps_header_decode_max(ps_frame_data(f, 0), ps_frame_size(f, 0),
                             PS_MAX_REPLY_HEADER_BYTES, &h, err,
                             sizeof(err)) != PS_OK) {
        ps_header_free(h);
        ps_log(PS_LOG_WARN, "dropped a malformed reply: %s",
               f->n < 1 ? "no frames" : err);
        return;
    }
    piece *p = inflight_get(c, h->request_id);
    if (p == NULL) { /* a late copy of a retried piece */
        ps_header_free(h);
        return;
    }
    ps_request *r = p->req;
    if (h->deferred) {
        /* The server holds the pull for slower workers: it is alive, so
         * the piece waits without spending its retries. */
        p->attempts = 0;
        p->deadline_ms =
            ps_now_ms() + c->cfg.timeout_ms + (int64_t)c->worker_timeout_ms;
        ps_header_free(h);
        return;
    }
    int code = h->has_error_code ? h->error_code : PS_OK;
    int keep = 0;
    if (code == PS_OK) {
        switch (r->type) {
        case PS_MSG_HELLO:
            if (h->hello == NULL ||
                copy_hello(h->hello, &r->hellos[p - r->pieces]) == NULL)
                code = PS_EPROTO;
            break;
        case PS_MSG_DEFINE_TABLE:
            r->ids[p - r->pieces] = h->table_id;
            r->lo[p - r->pieces] = h->lo;
            r->hi[p - r->pieces] = h->hi;
            break;
        case PS_MSG_PULL:
        case PS_MSG_PUSHPULL:
            code = take_values(c, p, f);
            if (h->has_min_clock &&
                (r->min_clock < 0 || h->min_clock < r->min_clock))
                r->min_clock = h->min_clock;
            break;
        case PS_MSG_ASSIGN:
            r->skipped += h->skipped != 0;
            break;
        case PS_MSG_DROP_TABLE:
        case PS_MSG_DROP_JOB:
            if (r->results != NULL) {
                ps_shard_result *res = &r->results[p - r->pieces];
                res->tables =
                    h->count > UINT32_MAX ? UINT32_MAX : (uint32_t)h->count;
                res->bytes = h->freed_bytes;
            }
            break;
        case PS_MSG_SCAN:
            code = take_scan(c, p, h, f);
            break;
        case PS_MSG_SAVE:
            if (h->checkpoint_file == NULL)
                code = PS_EPROTO;
            else if (r->results != NULL) {
                ps_shard_result *res = &r->results[p - r->pieces];
                snprintf(res->file, sizeof(res->file), "%s",
                         h->checkpoint_file);
                res->bytes = h->checkpoint_bytes;
            }
            break;
        case PS_MSG_STATUS:
            if (h->status == NULL) {
                code = PS_EPROTO;
            } else if (r->status_hdrs != NULL) {
                keep = 1; /* the caller reads the structure */
            } else {
                ps_strbuf b;
                ps_strbuf_init(&b, 0);
                ps_status_json(h->status, &b);
                r->status_json = ps_strbuf_take(&b);
                code = r->status_json ? PS_OK : PS_ENOMEM;
            }
            break;
        default:
            break;
        }
    }
    piece_finish(c, p, code,
                 code == PS_EPROTO && !h->error_msg ? "malformed reply"
                                                    : h->error_msg);
    if (keep && code == PS_OK)
        r->status_hdrs[p - r->pieces] = h;
    else
        ps_header_free(h);
}

/* Re-sends every pending piece of one shard over a fresh connection. With
 * `charge` (the shard went quiet) every piece pending on it first spends an
 * attempt (they all waited on the same silent connection) and those past
 * the retries fail. Counting every pending piece, not only the one whose
 * deadline passed first, bounds a dead shard's failure to (retries + 1)
 * timeouts however many pieces were in flight: each re-send resets the
 * others' deadlines, so counting one piece per timeout made it (retries +
 * 1) timeouts per piece. */
static void reconnect(ps_client *c, uint32_t shard, int charge)
{
    c->timeouts += charge != 0;
    if (charge)
        ps_log(PS_LOG_WARN,
               "no answer from shard in time, reconnecting shard=%u "
               "endpoint=%s",
               shard, c->shards[shard].endpoint);
    for (size_t i = 0; charge && i < c->inflight_cap; i++) {
        piece *p = c->inflight[i];
        if (p && p->shard == shard && !p->done &&
            ++p->attempts > c->cfg.retries)
            piece_finish(c, p, PS_ETIMEDOUT, "no reply after retries");
    }
    /* A fresh socket also makes libzmq let go of the failed pieces'
     * zero-copy buffers, which it would otherwise keep queued for a peer
     * that may never come back. */
    if (open_socket(c, &c->shards[shard]) != PS_OK)
        return; /* pieces keep their deadlines and fail after retries */
    c->shards[shard].progress_due = c->has_progress || c->has_eval;
    for (size_t i = 0; i < c->inflight_cap; i++) {
        piece *p = c->inflight[i];
        if (p && p->shard == shard && !p->done) {
            c->retries++;
            if (send_piece(c, p) != PS_OK)
                piece_finish(c, p, PS_EZMQ, "re-send failed");
        }
    }
}

/* Handles timed-out pieces: their shard is reconnected (once per pass). */
static void check_deadlines(ps_client *c, int64_t now)
{
    for (size_t i = 0; i < c->inflight_cap; i++) {
        piece *p = c->inflight[i];
        if (p == NULL || p->done || now < p->deadline_ms)
            continue;
        reconnect(c, p->shard, 1); /* re-sent pieces get fresh deadlines */
    }
}

/* Reads a shard's monitor: a connection lost (a server that stopped
 * answering ZeroMQ heartbeats, hung or cut off, or closed its end; libzmq
 * reconnects on its own) is counted and said long before a request times
 * out; a refused handshake fails every piece pending on the shard at once
 * with PS_EAUTH (retrying cannot help). */
static void read_monitor(ps_client *c, uint32_t shard)
{
    shard_conn *s = &c->shards[shard];
    char msg[256];
    uint32_t value;
    int ev;
    while ((ev = ps_monitor_next(s->monitor, &value, NULL, 0)) != 0) {
        if (ev == ZMQ_EVENT_DISCONNECTED) {
            c->disconnects++;
            ps_log(PS_LOG_WARN,
                   "connection to a server lost (closed, or silent past "
                   "the heartbeat timeout) shard=%u endpoint=%s",
                   shard, s->endpoint);
            continue;
        }
        if (ps_handshake_event(ev, value, c->curve.on, &s->no_detail, msg,
                               sizeof(msg)) != PS_EAUTH)
            continue;
        s->no_detail = 0;
        ps_log(PS_LOG_WARN, "refused by the server shard=%u endpoint=%s: %s",
               shard, s->endpoint, msg);
        int failed = 0;
        for (size_t i = 0; i < c->inflight_cap; i++) {
            piece *p = c->inflight[i];
            if (p && p->shard == shard && !p->done) {
                piece_finish(c, p, PS_EAUTH, msg);
                failed = 1;
            }
        }
        /* Their messages never left: a fresh socket releases them. */
        if (failed)
            reconnect(c, shard, 0);
    }
}

/* One round of I/O: waits up to timeout_ms for replies on any shard,
 * handles what arrived and the deadlines that passed. */
static int drive(ps_client *c, int timeout_ms)
{
    /* Per shard: its socket, then its monitor. */
    zmq_pollitem_t stack_items[32];
    zmq_pollitem_t *items = stack_items;
    if (c->nshards > 16) {
        items = calloc(2 * (size_t)c->nshards, sizeof(*items));
        if (items == NULL)
            return PS_ENOMEM;
    }
    for (uint32_t i = 0; i < c->nshards; i++) {
        /* fd -1: a socket that could not be made is skipped, not read
         * as descriptor 0. */
        items[2 * i] = (zmq_pollitem_t){c->shards[i].sock, -1, ZMQ_POLLIN, 0};
        items[2 * i + 1] = (zmq_pollitem_t){
            c->shards[i].monitor ? ps_monitor_socket(c->shards[i].monitor)
                                 : NULL,
            -1, ZMQ_POLLIN, 0};
    }
    int64_t now = ps_now_ms();
    int64_t next = now + timeout_ms;
    for (size_t i = 0; i < c->inflight_cap; i++)
        if (c->inflight[i] && c->inflight[i]->deadline_ms < next)
            next = c->inflight[i]->deadline_ms;
    long wait = next > now ? (long)(next - now) : 0;
    int n = zmq_poll(items, 2 * (int)c->nshards,
                     timeout_ms < 0 && c->inflight_n == 0 ? -1 : wait);
    int rc = PS_OK;
    if (n < 0 && zmq_errno() != EINTR)
        rc = ps_zmq_err();
    for (uint32_t i = 0; n > 0 && i < c->nshards; i++) {
        if (items[2 * i + 1].revents & ZMQ_POLLIN)
            read_monitor(c, i);
        if (!(items[2 * i].revents & ZMQ_POLLIN))
            continue;
        ps_frames f;
        while (ps_frames_recv(c->shards[i].sock, &f, ZMQ_DONTWAIT) == PS_OK) {
            c->replies_seen++;
            if (c->cfg.test_drop_every > 0 &&
                c->replies_seen % (uint64_t)c->cfg.test_drop_every == 0) {
                ps_frames_close(&f); /* test hook: this reply is "lost" */
                continue;
            }
            handle_reply(c, &f);
            ps_frames_close(&f);
        }
    }
    check_deadlines(c, ps_now_ms());
    if (items != stack_items)
        free(items);
    /* Checked after the poll: a signal that raised the flag also cut the
     * poll short (EINTR) when it landed on this thread; else within the
     * callers' 1 s slices. */
    if (rc == PS_OK && c->cfg.cancel != NULL && *c->cfg.cancel)
        rc = PS_ECANCELED;
    return rc;
}

/* ---- waiting ---- */

static int finish_request(ps_client *c, ps_request *r)
{
    /* libzmq may still hold our zero-copy buffers for a moment after the
     * reply arrived (its I/O thread releases them). */
    for (int spins = 0;
         atomic_load_explicit(&r->zc_live, memory_order_acquire) > 0; spins++)
        if (spins < 1000)
            sched_yield();
        else
            usleep(100);
    if (r->status == PS_OK && r->user_out != NULL) {
        for (int i = 0; i < r->npieces; i++) {
            piece *p = &r->pieces[i];
            for (size_t k = 0; k < p->count; k++)
                memcpy(r->user_out + p->pos[k] * r->dim, p->obuf + k * r->dim,
                       r->dim * sizeof(float));
        }
    }
    int rc = r->status;
    if (rc != PS_OK)
        set_err(c, rc, "%s", r->errmsg);
    if (r->type == PS_MSG_PULL || r->type == PS_MSG_PUSHPULL)
        c->last_min_clock = r->min_clock;
    c->last_skipped = r->skipped;
    return rc;
}

/* Fails every piece of r still pending after a transport error or a
 * cancel, and gives each of their shards a fresh socket: libzmq would
 * otherwise keep their zero-copy buffers queued for a server that may never
 * answer, and finish_request() would wait on them for ever. */
static void abandon_pending(ps_client *c, ps_request *r, int rc)
{
    const char *why =
        rc == PS_ECANCELED ? "cancelled by the caller" : "transport error";
    int *failed = calloc(c->nshards, sizeof(*failed));
    for (int i = 0; i < r->npieces; i++) {
        piece *p = &r->pieces[i];
        if (p->done)
            continue;
        piece_finish(c, p, rc, why);
        if (failed != NULL)
            failed[p->shard] = 1;
    }
    /* After every piece is finished, so none of r's is re-sent; once per
     * shard (a range may have several pieces on one). Without memory,
     * every shard. */
    for (uint32_t s = 0; s < c->nshards; s++)
        if (failed == NULL || failed[s])
            reconnect(c, s, 0);
    free(failed);
}

/* Drives I/O until every piece of r is done (answered or failed), or until
 * end_ms passes (PS_ETIMEDOUT, r still pending). */
static int drive_until_done(ps_client *c, ps_request *r, int64_t end_ms)
{
    while (r->remaining > 0) {
        int64_t now = ps_now_ms();
        if (now >= end_ms)
            return PS_ETIMEDOUT;
        int slice = end_ms - now > 1000 ? 1000 : (int)(end_ms - now);
        int rc = drive(c, slice);
        if (rc != PS_OK && rc != PS_ETIMEDOUT)
            abandon_pending(c, r, rc);
    }
    return PS_OK;
}

/* Waits for r to complete without freeing it (the caller reads its
 * results). */
static int wait_keep(ps_client *c, ps_request *r)
{
    drive_until_done(c, r, INT64_MAX);
    return finish_request(c, r);
}

int ps_client_wait(ps_client *c, ps_request *r, int timeout_ms)
{
    if (r == NULL)
        return set_err(c, PS_EINVAL, "wait on a NULL request");
    int64_t end = timeout_ms < 0 ? INT64_MAX : ps_now_ms() + timeout_ms;
    if (drive_until_done(c, r, end) == PS_ETIMEDOUT)
        return PS_ETIMEDOUT;
    int rc = finish_request(c, r);
    request_free(r);
    return rc;
}

/* Starts r and waits for it; for the blocking control calls. Does not free
 * r (the caller reads its results). */
static int run_blocking(ps_client *c, ps_request *r)
{
    for (int i = 0; i < r->npieces; i++)
        r->pieces[i].shard = (uint32_t)i;
    int rc = request_start(c, r);
    if (rc != PS_OK)
        return rc;
    return wait_keep(c, r);
}

/* ---- heartbeat thread ---- */

typedef struct hb_args {
    void *ctx;
    const ps_curve_client *curve; /* the client's; outlives the thread */
    char **endpoints;
    uint32_t n;
    int worker_id;
    uint32_t attempt;
    int period_ms;
    uint64_t client_id;
} hb_args;

/* Sends HEARTBEAT to every shard each period, from sockets of its own, until
 * anything arrives on the inproc pipe. */
static void *heartbeat_main(void *arg)
{
    hb_args *a = arg;
    void *pipe = zmq_socket(a->ctx, ZMQ_PAIR);
    zmq_connect(pipe, "inproc://sparkps-hb");
    void **socks = calloc(a->n, sizeof(*socks));
    for (uint32_t i = 0; socks && i < a->n; i++) {
        socks[i] = zmq_socket(a->ctx, ZMQ_DEALER);
        int linger = 0, hwm = 4;
        zmq_setsockopt(socks[i], ZMQ_LINGER, &linger, sizeof(linger));
        zmq_setsockopt(socks[i], ZMQ_SNDHWM, &hwm, sizeof(hwm));
        ps_curve_client_apply(a->curve, socks[i]);
        zmq_connect(socks[i], a->endpoints[i]);
    }
    ps_header h;
    ps_header_init(&h);
    h.has_type = h.has_worker_id = h.has_client_id = h.has_attempt = 1;
    h.type = SPARKPS__MSG_TYPE__HEARTBEAT;
    h.worker_id = a->worker_id;
    h.attempt = a->attempt;
    h.client_id = a->client_id;
    zmq_pollitem_t item = {pipe, 0, ZMQ_POLLIN, 0};
    for (;;) {
        for (uint32_t i = 0; socks && i < a->n; i++) {
            zmq_msg_t m;
            size_t len = ps_header_packed_size(&h);
            if (zmq_msg_init_size(&m, len) != 0)
                continue;
            ps_header_pack(&h, zmq_msg_data(&m));
            /* Never block: a heartbeat that cannot go now is pointless. */
            if (zmq_msg_send(&m, socks[i], ZMQ_DONTWAIT) < 0)
                zmq_msg_close(&m);
        }
        if (zmq_poll(&item, 1, a->period_ms) != 0)
            break; /* stop request (or the context is going away) */
    }
    for (uint32_t i = 0; socks && i < a->n; i++)
        zmq_close(socks[i]);
    free(socks);
    zmq_close(pipe);
    free(a->endpoints);
    free(a);
    return NULL;
}

static int heartbeat_start(ps_client *c)
{
    hb_args *a = calloc(1, sizeof(*a));
    char **eps = calloc(c->nshards, sizeof(*eps));
    c->hb_pipe = zmq_socket(c->ctx, ZMQ_PAIR);
    if (a == NULL || eps == NULL || c->hb_pipe == NULL ||
        zmq_bind(c->hb_pipe, "inproc://sparkps-hb") != 0) {
        free(a);
        free(eps);
        return set_err(c, PS_ENOMEM, "cannot start the heartbeat thread");
    }
    for (uint32_t i = 0; i < c->nshards; i++)
        eps[i] = c->shards[i].endpoint; /* outlive the thread: joined first */
    *a = (hb_args){c->ctx,
                   &c->curve,
                   eps,
                   c->nshards,
                   c->cfg.worker_id,
                   (uint32_t)c->cfg.attempt,
                   c->cfg.heartbeat_ms,
                   c->client_id};
    if (pthread_create(&c->hb_thread, NULL, heartbeat_main, a) != 0) {
        free(a);
        free(eps);
        return set_err(c, PS_ENOMEM, "cannot start the heartbeat thread");
    }
    c->hb_running = 1;
    return PS_OK;
}

static void heartbeat_stop(ps_client *c)
{
    if (c->hb_running) {
        zmq_send(c->hb_pipe, "", 0, 0);
        pthread_join(c->hb_thread, NULL);
        c->hb_running = 0;
    }
    if (c->hb_pipe) {
        zmq_close(c->hb_pipe);
        c->hb_pipe = NULL;
    }
}

/* ---- connect ---- */

static const char *cons_text(int mode, int staleness, char *buf, size_t len)
{
    if (mode == PS_SSP)
        snprintf(buf, len, "ssp:%d", staleness);
    else
        snprintf(buf, len, "%s", mode == PS_BSP ? "bsp" : "asp");
    return buf;
}

/* Checks every shard's Hello against the list order and each other. */
static int check_hellos(ps_client *c, const Sparkps__Hello *hs)
{
    const char *cluster =
        c->cfg.cluster_id ? c->cfg.cluster_id : hs[0].cluster_id;
    for (uint32_t i = 0; i < c->nshards; i++) {
        const Sparkps__Hello *h = &hs[i];
        const char *ep = c->shards[i].endpoint;
        if (h->protocol_version != PS_PROTOCOL_VERSION)
            return set_err(c, PS_EVERSION,
                           "server %u (%s) speaks protocol version %u, this "
                           "client speaks %u",
                           i, ep, h->protocol_version, PS_PROTOCOL_VERSION);
        if (strcmp(h->cluster_id, cluster) != 0)
            return set_err(c, PS_EMISMATCH,
                           "server %u (%s) belongs to cluster '%s', expected "
                           "'%s'",
                           i, ep, h->cluster_id, cluster);
        if (h->shards != c->nshards)
            return set_err(c, PS_EMISMATCH,
                           "server %u (%s) is part of a %u-shard cluster, "
                           "but %u servers were listed",
                           i, ep, h->shards, c->nshards);
        if (h->shard != i)
            return set_err(c, PS_EMISMATCH,
                           "server %u of the list (%s) says it is shard %u: "
                           "list the servers in shard order",
                           i, ep, h->shard);
        if (h->consistency != hs[0].consistency ||
            h->staleness != hs[0].staleness)
            return set_err(c, PS_ECONSIST,
                           "shards 0 and %u (%s) run different consistency "
                           "models",
                           i, ep);
    }
    for (uint32_t i = 0; i < c->nshards; i++)
        c->shards[i].max_keys = hs[i].has_max_keys ? hs[i].max_keys : 0;
    c->consistency = (int)hs[0].consistency;
    c->staleness = (int)hs[0].staleness;
    c->worker_timeout_ms = hs[0].worker_timeout_ms;
    c->cluster_id = strdup(cluster);
    if (c->cluster_id == NULL)
        return PS_ENOMEM;
    if (c->cfg.expect_consistency >= 0) {
        int want = c->cfg.expect_consistency;
        int want_s = want == PS_SSP ? c->cfg.expect_staleness : 0;
        if (want != c->consistency ||
            (want == PS_SSP && want_s != c->staleness)) {
            char a[32], b[32];
            return set_err(
                c, PS_ECONSIST,
                "this client asked for %s but the servers run %s "
                "(the servers' --consistency is the one in force)",
                cons_text(want, want_s, a, sizeof(a)),
                cons_text(c->consistency, c->staleness, b, sizeof(b)));
        }
    }
    return PS_OK;
}

static int hello_all(ps_client *c)
{
    ps_request *r = request_new(c, PS_MSG_HELLO, -1, (int)c->nshards);
    if (r == NULL)
        return PS_ENOMEM;
    r->hellos = calloc(c->nshards, sizeof(*r->hellos));
    if (r->hellos == NULL) {
        request_free(r);
        return PS_ENOMEM;
    }
    int rc = run_blocking(c, r);
    if (rc == PS_OK)
        rc = check_hellos(c, r->hellos);
    request_free(r);
    return rc;
}

/* ps_client_new(), with the Hello exchange only when `handshake` (the
 * shutdown call must reach the shards that are up when one is gone). */
static int client_new(ps_client **out, const ps_client_cfg *cfg, int handshake,
                      char *errbuf, size_t errlen)
{
    ps_client *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PS_ENOMEM;
    int rc = PS_OK;
    c->cfg = *cfg;
    c->lr_scale = 1.0;
    if (c->cfg.timeout_ms <= 0)
        c->cfg.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (c->cfg.retries == 0)
        c->cfg.retries = DEFAULT_RETRIES;
    else if (c->cfg.retries < 0)
        c->cfg.retries = 0;
    if (c->cfg.heartbeat_ms == 0)
        c->cfg.heartbeat_ms = DEFAULT_HEARTBEAT_MS;
    if (c->cfg.max_piece_bytes == 0)
        c->cfg.max_piece_bytes = DEFAULT_MAX_PIECE_BYTES;
    if (c->cfg.max_piece_bytes < 4) {
        rc = set_err(c, PS_EINVAL, "max_piece_bytes must be at least 4");
        goto fail;
    }
    c->client_id = random_u64();
    c->last_min_clock = -1;
    const char *job = cfg->job ? cfg->job : "default";
    if (strlen(job) == 0 || strlen(job) > PS_MAX_NAME) {
        rc = set_err(c, PS_EINVAL, "job name must be 1..%u bytes", PS_MAX_NAME);
        goto fail;
    }
    if (ps_dtype_size((int)cfg->dtype) == 0 || cfg->worker_id < -1 ||
        cfg->worker_id > 65535 || cfg->attempt < 0) {
        rc = set_err(c, PS_EINVAL,
                     "bad dtype, worker id (0..65535) or attempt (>= 0)");
        goto fail;
    }
    c->job = strdup(job);
    c->ctx = zmq_ctx_new();
    if (c->job == NULL || c->ctx == NULL) {
        rc = PS_ENOMEM;
        goto fail;
    }
    char kerr[512];
    if (ps_curve_client_load(&c->curve, cfg->curve_secret_key,
                             cfg->curve_server_key, kerr,
                             sizeof(kerr)) != PS_OK) {
        rc = set_err(c, PS_EINVAL, "%s", kerr);
        goto fail;
    }
    rc = parse_servers(c,
                       cfg->servers ? cfg->servers : getenv("SPARKPS_SERVERS"));
    for (uint32_t i = 0; rc == PS_OK && i < c->nshards; i++)
        rc = open_socket(c, &c->shards[i]);
    if (rc == PS_OK && handshake)
        rc = hello_all(c);
    if (rc == PS_OK && c->cfg.worker_id >= 0 && c->cfg.heartbeat_ms > 0)
        rc = heartbeat_start(c);
    if (rc != PS_OK)
        goto fail;
    *out = c;
    return PS_OK;
fail:
    if (errbuf != NULL)
        snprintf(errbuf, errlen, "%s",
                 c->errmsg[0] ? c->errmsg : ps_strerror(rc));
    ps_client_free(c);
    return rc;
}

int ps_client_new(ps_client **out, const ps_client_cfg *cfg, char *errbuf,
                  size_t errlen)
{
    return client_new(out, cfg, 1, errbuf, errlen);
}

void ps_client_free(ps_client *c)
{
    if (c == NULL)
        return;
    heartbeat_stop(c);
    for (uint32_t i = 0; i < c->nshards; i++)
        close_socket(&c->shards[i]);
    /* Terminating the context waits until libzmq has released every
     * zero-copy buffer, so abandoned requests can be freed after it. */
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    ps_request **abandoned = NULL;
    size_t nab = 0;
    for (size_t i = 0; i < c->inflight_cap; i++) {
        piece *p = c->inflight[i];
        if (p == NULL)
            continue;
        int seen = 0;
        for (size_t k = 0; k < nab; k++)
            seen |= abandoned[k] == p->req;
        if (!seen) {
            ps_request **a = realloc(abandoned, (nab + 1) * sizeof(*a));
            if (a != NULL) {
                abandoned = a;
                abandoned[nab++] = p->req;
            }
        }
        inflight_del(c, p);
    }
    for (size_t k = 0; k < nab; k++)
        request_free(abandoned[k]);
    free(abandoned);
    for (uint32_t i = 0; i < c->nshards; i++)
        free(c->shards[i].endpoint);
    free(c->shards);
    for (int i = 0; i < c->ntables; i++) {
        free(c->tables[i].name);
        free(c->tables[i].id);
        free(c->tables[i].lo);
        free(c->tables[i].hi);
    }
    free(c->tables);
    free(c->inflight);
    free(c->job);
    free(c->cluster_id);
    ps_curve_client_clear(&c->curve);
    free(c);
}

int ps_client_num_shards(const ps_client *c)
{
    return (int)c->nshards;
}

uint64_t ps_client_id(const ps_client *c)
{
    return c->client_id;
}

ps_consistency ps_client_consistency(const ps_client *c, int *staleness)
{
    if (staleness)
        *staleness = c->staleness;
    return (ps_consistency)c->consistency;
}

uint64_t ps_client_retries(const ps_client *c)
{
    return c->retries;
}

uint64_t ps_client_requests(const ps_client *c)
{
    return c->next_request_id;
}

uint64_t ps_client_timeouts(const ps_client *c)
{
    return c->timeouts;
}

uint64_t ps_client_disconnects(const ps_client *c)
{
    return c->disconnects;
}

int64_t ps_client_last_min_clock(const ps_client *c)
{
    return c->last_min_clock;
}

int64_t ps_client_get_clock(const ps_client *c)
{
    return c->clock;
}

/* ---- tables ---- */

static int define_on_shards(ps_client *c, const ps_table_spec *spec,
                            ps_request *r)
{
    Sparkps__Init init = SPARKPS__INIT__INIT;
    Sparkps__Optim optim = SPARKPS__OPTIM__INIT;
    Sparkps__TableSpec ts = SPARKPS__TABLE_SPEC__INIT;
    init.has_kind = init.has_a = init.has_b = init.has_seed = 1;
    init.has_fan_in = init.has_fan_out = 1;
    init.kind = (Sparkps__InitKind)spec->init.kind;
    init.a = spec->init.a;
    init.b = spec->init.b;
    init.seed = spec->init.seed;
    init.fan_in = spec->init.fan_in;
    init.fan_out = spec->init.fan_out;
    const ps_optim *o = &spec->optim;
    optim.has_kind = optim.has_lr = optim.has_momentum = 1;
    optim.has_beta1 = optim.has_beta2 = optim.has_eps = 1;
    optim.has_l1 = optim.has_l2 = optim.has_ftrl_beta = 1;
    optim.has_weight_decay = optim.has_clip = 1;
    optim.has_initial_accumulator = 1;
    optim.kind = (Sparkps__OptimKind)o->kind;
    optim.lr = o->lr;
    optim.momentum = o->momentum;
    optim.beta1 = o->beta1;
    optim.beta2 = o->beta2;
    optim.eps = o->eps;
    optim.l1 = o->l1;
    optim.l2 = o->l2;
    optim.ftrl_beta = o->ftrl_beta;
    optim.weight_decay = o->weight_decay;
    optim.clip = o->clip;
    optim.initial_accumulator = o->initial_accumulator;
    uint64_t shape[8];
    size_t nshape = 0;
    while (nshape < 8 && spec->shape[nshape] != 0) {
        shape[nshape] = spec->shape[nshape];
        nshape++;
    }
    ts.job = c->job;
    ts.name = (char *)spec->name;
    ts.has_kind = ts.has_len = ts.has_dim = 1;
    ts.kind = (Sparkps__TableKind)spec->kind;
    ts.len = spec->len;
    ts.dim = spec->dim;
    ts.n_shape = nshape;
    ts.shape = shape;
    ts.init = &init;
    ts.optim = &optim;
    ts.meta = (char *)spec->meta;
    r->spec = &ts;
    int rc = run_blocking(c, r);
    r->spec = NULL; /* points into this frame */
    return rc;
}

/* Records a table handle, taking the per-shard ids and ranges out of r.
 * The same name again refreshes the handle (ids may change after a drop
 * and re-define). */
static int add_table_ref(ps_client *c, const char *name, int kind, uint64_t len,
                         uint32_t dim, ps_request *r, int *table)
{
    int idx = c->ntables;
    for (int i = 0; i < c->ntables; i++)
        if (strcmp(c->tables[i].name, name) == 0)
            idx = i;
    if (idx == c->ntables) {
        table_ref *tabs =
            realloc(c->tables, (size_t)(c->ntables + 1) * sizeof(*tabs));
        if (tabs == NULL)
            return set_err(c, PS_ENOMEM, "out of memory");
        c->tables = tabs;
        memset(&tabs[idx], 0, sizeof(tabs[idx]));
        tabs[idx].name = strdup(name);
        if (tabs[idx].name == NULL)
            return set_err(c, PS_ENOMEM, "out of memory");
        c->ntables++;
    }
    table_ref *t = &c->tables[idx];
    free(t->id);
    free(t->lo);
    free(t->hi);
    t->kind = kind;
    t->len = len;
    t->dim = dim;
    t->id = r->ids;
    t->lo = r->lo;
    t->hi = r->hi;
    r->ids = NULL;
    r->lo = r->hi = NULL;
    *table = idx;
    return PS_OK;
}

int ps_client_define(ps_client *c, const ps_table_spec *spec, int *table)
{
    if (spec == NULL || spec->name == NULL || *spec->name == '\0' ||
        strlen(spec->name) > PS_MAX_NAME)
        return set_err(c, PS_EINVAL, "table needs a name of 1..%u bytes",
                       PS_MAX_NAME);
    if (spec->kind == PS_DENSE && spec->len == 0 && spec->shape[0] != 0) {
        return set_err(c, PS_EINVAL, "dense table '%s': set len", spec->name);
    }
    if (spec->meta != NULL && strlen(spec->meta) > PS_MAX_META)
        return set_err(c, PS_EINVAL, "table '%s': meta over %u bytes",
                       spec->name, PS_MAX_META);
    ps_request *r = request_new(c, PS_MSG_DEFINE_TABLE, -1, (int)c->nshards);
    if (r == NULL)
        return PS_ENOMEM;
    r->ids = calloc(c->nshards, sizeof(*r->ids));
    r->lo = calloc(c->nshards, sizeof(*r->lo));
    r->hi = calloc(c->nshards, sizeof(*r->hi));
    if (!r->ids || !r->lo || !r->hi) {
        request_free(r);
        return PS_ENOMEM;
    }
    int rc = define_on_shards(c, spec, r);
    if (rc != PS_OK) {
        request_free(r);
        return rc;
    }
    rc = add_table_ref(c, spec->name, spec->kind, spec->len, spec->dim, r,
                       table);
    request_free(r);
    return rc;
}

static int control_all(ps_client *c, int type, const char *job,
                       const char *name)
{
    ps_request *r = request_new(c, type, -1, (int)c->nshards);
    if (r == NULL)
        return PS_ENOMEM;
    r->job = job;
    r->name = name;
    int rc = run_blocking(c, r);
    request_free(r);
    return rc;
}

int ps_client_drop(ps_client *c, const char *job, const char *name,
                   ps_shard_result *results)
{
    if (job == NULL)
        job = c->job;
    if (*job == '\0' || strlen(job) > PS_MAX_NAME ||
        (name != NULL && (*name == '\0' || strlen(name) > PS_MAX_NAME)))
        return set_err(c, PS_EINVAL,
                       "drop needs job and table names of 1..%u bytes",
                       PS_MAX_NAME);
    int type = name ? PS_MSG_DROP_TABLE : PS_MSG_DROP_JOB;
    ps_request *r = request_new(c, type, -1, (int)c->nshards);
    if (r == NULL)
        return set_err(c, PS_ENOMEM, "out of memory");
    if (results != NULL)
        memset(results, 0, c->nshards * sizeof(*results));
    r->job = job;
    r->name = name;
    r->results = results;
    int rc = run_blocking(c, r);
    if (r->remaining > 0 && results != NULL) /* never sent */
        for (uint32_t i = 0; i < c->nshards; i++) {
            results[i].status = rc;
            snprintf(results[i].errmsg, sizeof(results[i].errmsg), "%.200s",
                     c->errmsg);
        }
    request_free(r);
    return rc;
}

int ps_client_drop_table(ps_client *c, const char *name)
{
    if (name == NULL)
        return set_err(c, PS_EINVAL, "drop_table needs a name");
    return ps_client_drop(c, NULL, name, NULL);
}

int ps_client_drop_job(ps_client *c, const char *job)
{
    return ps_client_drop(c, job, NULL, NULL);
}

/* Sends a request of `type` (exactly [Header]) to every server of
 * cfg->servers without a handshake, so a shard that is gone does not keep
 * the others from being asked; see ps_client_shutdown(). `fine` is a
 * status other than PS_OK that still counts as done (0: none). */
static int ask_every_server(const ps_client_cfg *cfg, int type, int fine,
                            ps_shard_result **results, size_t *n, char *errbuf,
                            size_t errlen)
{
    ps_client_cfg cc = *cfg;
    cc.worker_id = -1; /* a tool: no clock, no heartbeat thread */
    cc.expect_consistency = -1;
    ps_client *c;
    int rc = client_new(&c, &cc, 0, errbuf, errlen);
    if (rc != PS_OK)
        return rc;
    ps_shard_result *res = calloc(c->nshards, sizeof(*res));
    ps_request *r = res ? request_new(c, type, -1, (int)c->nshards) : NULL;
    if (r == NULL) {
        free(res);
        ps_client_free(c);
        if (errbuf != NULL)
            snprintf(errbuf, errlen, "out of memory");
        return PS_ENOMEM;
    }
    r->results = res;
    rc = run_blocking(c, r);
    if (r->remaining > 0) { /* sending failed: not all were asked */
        if (errbuf != NULL)
            snprintf(errbuf, errlen, "%s", c->errmsg);
        request_free(r);
        ps_client_free(c);
        free(res);
        return rc;
    }
    rc = PS_OK;
    for (uint32_t i = 0; i < c->nshards; i++) {
        if (res[i].status == PS_OK || (fine && res[i].status == fine))
            continue;
        if (rc == PS_OK && errbuf != NULL)
            snprintf(errbuf, errlen, "shard %u (%s): %s: %s", i,
                     c->shards[i].endpoint, ps_errname(res[i].status),
                     res[i].errmsg);
        if (rc == PS_OK)
            rc = res[i].status;
    }
    *results = res;
    *n = c->nshards;
    request_free(r);
    ps_client_free(c);
    return rc;
}

int ps_client_shutdown(const ps_client_cfg *cfg, ps_shard_result **results,
                       size_t *n, char *errbuf, size_t errlen)
{
    /* A shard that was stopping already is where we want it. */
    return ask_every_server(cfg, PS_MSG_SHUTDOWN, PS_ESHUTDOWN, results, n,
                            errbuf, errlen);
}

int ps_client_save(const ps_client_cfg *cfg, ps_shard_result **results,
                   size_t *n, char *errbuf, size_t errlen)
{
    return ask_every_server(cfg, PS_MSG_SAVE, 0, results, n, errbuf, errlen);
}

int ps_client_clock(ps_client *c)
{
    if (c->cfg.worker_id < 0)
        return set_err(c, PS_EINVAL,
                       "only a worker (worker_id >= 0) has a "
                       "clock");
    c->clock++;
    return control_all(c, PS_MSG_CLOCK, NULL, NULL);
}

int ps_client_set_lr_scale(ps_client *c, double scale)
{
    if (!(scale > 0 && scale <= 1e6))
        return set_err(c, PS_EINVAL, "lr scale %g outside (0, 1e6]", scale);
    c->lr_scale = scale;
    return PS_OK;
}

void ps_client_set_progress(ps_client *c, uint64_t samples, double loss,
                            uint32_t epoch, double accuracy)
{
    sparkps__progress__init(&c->progress);
    c->progress.has_samples = c->progress.has_loss = 1;
    c->progress.has_epoch = c->progress.has_accuracy = 1;
    c->progress.samples = samples;
    c->progress.loss = loss;
    c->progress.epoch = epoch;
    c->progress.accuracy = accuracy;
    c->has_progress = 1;
    for (uint32_t i = 0; i < c->nshards; i++)
        c->shards[i].progress_due = 1;
}

/* Absent on the wire when not measured. */
#define SET_FIGURE(x, field, v)                                                \
    do {                                                                       \
        (x)->field = (v);                                                      \
        (x)->has_##field = isfinite(v);                                        \
    } while (0)

void ps_client_set_eval(ps_client *c, const ps_eval *e)
{
    Sparkps__EpochEval *x = &c->eval;
    sparkps__epoch_eval__init(x);
    x->has_epoch = x->has_samples = 1;
    x->epoch = e->epoch;
    x->samples = e->samples;
    SET_FIGURE(x, loss, e->loss);
    SET_FIGURE(x, accuracy, e->accuracy);
    SET_FIGURE(x, train_loss, e->train_loss);
    SET_FIGURE(x, train_accuracy, e->train_accuracy);
    SET_FIGURE(x, auc, e->auc);
    c->has_eval = 1;
    for (uint32_t i = 0; i < c->nshards; i++)
        c->shards[i].progress_due = 1;
}

int ps_client_send_progress(ps_client *c)
{
    if (c->cfg.worker_id < 0)
        return set_err(c, PS_EINVAL,
                       "only a worker (worker_id >= 0) reports progress");
    /* A HELLO changes nothing on a server: here it only carries the
     * progress to the shards that have not had the latest yet. */
    ps_request *r = request_new(c, PS_MSG_HELLO, -1, (int)c->nshards);
    if (r == NULL)
        return PS_ENOMEM;
    r->hellos = calloc(c->nshards, sizeof(*r->hellos));
    int rc = r->hellos ? run_blocking(c, r) : PS_ENOMEM;
    request_free(r);
    return rc;
}

int ps_client_status_json(ps_client *c, int shard, char **json)
{
    if (shard < 0 || (uint32_t)shard >= c->nshards)
        return set_err(c, PS_EINVAL, "shard %d out of range (0..%u)", shard,
                       c->nshards - 1);
    ps_request *r = request_new(c, PS_MSG_STATUS, -1, 1);
    if (r == NULL)
        return PS_ENOMEM;
    r->pieces[0].shard = (uint32_t)shard;
    int rc = request_start(c, r);
    if (rc == PS_OK)
        rc = wait_keep(c, r);
    if (rc == PS_OK) {
        *json = r->status_json;
        r->status_json = NULL;
    }
    request_free(r);
    return rc;
}

/* Every shard's Status, kept as decoded headers in r->status_hdrs. */
static ps_request *gather_status(ps_client *c, int *rc)
{
    ps_request *r = request_new(c, PS_MSG_STATUS, -1, (int)c->nshards);
    if (r == NULL || (r->status_hdrs = calloc(
                          c->nshards, sizeof(*r->status_hdrs))) == NULL) {
        request_free(r);
        *rc = set_err(c, PS_ENOMEM, "out of memory");
        return NULL;
    }
    *rc = run_blocking(c, r);
    if (*rc != PS_OK) {
        request_free(r);
        return NULL;
    }
    return r;
}

static const Sparkps__TableInfo *find_info(const Sparkps__Status *st,
                                           const char *job, const char *name)
{
    for (size_t i = 0; i < st->n_tables; i++) {
        const Sparkps__TableInfo *t = st->tables[i];
        if (t->job && t->name && strcmp(t->job, job) == 0 &&
            strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

int ps_client_attach(ps_client *c, const char *name, int *table)
{
    if (name == NULL || *name == '\0' || table == NULL)
        return set_err(c, PS_EINVAL, "attach needs a table name");
    int rc;
    ps_request *r = gather_status(c, &rc);
    if (r == NULL)
        return rc;
    r->ids = calloc(c->nshards, sizeof(*r->ids));
    r->lo = calloc(c->nshards, sizeof(*r->lo));
    r->hi = calloc(c->nshards, sizeof(*r->hi));
    if (!r->ids || !r->lo || !r->hi) {
        rc = set_err(c, PS_ENOMEM, "out of memory");
        goto out;
    }
    const Sparkps__TableInfo *first = NULL;
    for (uint32_t i = 0; i < c->nshards; i++) {
        const Sparkps__TableInfo *t =
            find_info(r->status_hdrs[i]->status, c->job, name);
        if (t == NULL) {
            rc = set_err(c, PS_ENOTABLE,
                         "shard %u (%s) has no table '%s' in "
                         "job '%s'",
                         i, c->shards[i].endpoint, name, c->job);
            goto out;
        }
        if (first == NULL)
            first = t;
        if (t->kind != first->kind || t->len != first->len ||
            t->dim != first->dim) {
            rc = set_err(c, PS_EMISMATCH,
                         "shards 0 and %u disagree on table '%s'", i, name);
            goto out;
        }
        r->ids[i] = t->id;
        r->lo[i] = t->lo;
        r->hi[i] = t->hi;
    }
    if (first->kind == SPARKPS__TABLE_KIND__DENSE && first->len == 0) {
        rc = set_err(c, PS_EPROTO, "table '%s' reported with length 0", name);
        goto out;
    }
    rc = add_table_ref(c, name, (int)first->kind, first->len, first->dim, r,
                       table);
out:
    request_free(r);
    return rc;
}

void ps_client_free_table_list(ps_table_info *tables, size_t n)
{
    if (tables == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(tables[i].name);
        free(tables[i].meta);
    }
    free(tables);
}

int ps_client_list_tables(ps_client *c, const char *job, ps_table_info **tables,
                          size_t *n)
{
    if (tables == NULL || n == NULL)
        return set_err(c, PS_EINVAL, "list_tables needs output pointers");
    if (job == NULL)
        job = c->job;
    int rc;
    ps_request *r = gather_status(c, &rc);
    if (r == NULL)
        return rc;
    const Sparkps__Status *st0 = r->status_hdrs[0]->status;
    ps_table_info *out = calloc(st0->n_tables + 1, sizeof(*out));
    size_t k = 0;
    if (out == NULL) {
        rc = set_err(c, PS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < st0->n_tables; i++) {
        const Sparkps__TableInfo *t = st0->tables[i];
        if (t->job == NULL || t->name == NULL || strcmp(t->job, job) != 0)
            continue;
        ps_table_info *x = &out[k++];
        x->name = strdup(t->name);
        x->meta = strdup(t->meta ? t->meta : "");
        if (x->name == NULL || x->meta == NULL) {
            rc = set_err(c, PS_ENOMEM, "out of memory");
            goto out;
        }
        x->kind = t->kind == SPARKPS__TABLE_KIND__SPARSE ? PS_SPARSE : PS_DENSE;
        x->len = t->len;
        x->dim = t->dim;
        for (size_t d = 0; d < t->n_shape && d < 7; d++)
            x->shape[d] = t->shape[d];
        /* Sizes and counters add up over the shards. */
        for (uint32_t sh = 0; sh < c->nshards; sh++) {
            const Sparkps__TableInfo *o =
                find_info(r->status_hdrs[sh]->status, job, t->name);
            if (o == NULL)
                continue;
            x->rows += o->rows;
            x->bytes += o->bytes;
            x->pushes += o->pushes;
        }
    }
out:
    request_free(r);
    if (rc != PS_OK) {
        ps_client_free_table_list(out, k);
        return rc;
    }
    *tables = out;
    *n = k;
    return PS_OK;
}

/* ---- push / pull ---- */

static int check_table(ps_client *c, int table, int kind)
{
    if (table < 0 || table >= c->ntables)
        return set_err(c, PS_ENOTABLE, "no table handle %d", table);
    if (c->tables[table].kind != kind)
        return set_err(c, PS_EINVAL, "table '%s' is %s", c->tables[table].name,
                       kind == PS_DENSE ? "sparse" : "dense");
    return PS_OK;
}

static int missing_buffer(int type, const float *grad, const float *out)
{
    int wants_out = type == PS_MSG_PULL || type == PS_MSG_PUSHPULL;
    return (type != PS_MSG_PULL && grad == NULL) || (wants_out && out == NULL);
}

static int dense_request(ps_client *c, int type, int table, uint64_t offset,
                         uint64_t count, const float *grad, float *out,
                         int flags, ps_request **req)
{
    int rc = check_table(c, table, PS_DENSE);
    if (rc != PS_OK)
        return rc;
    table_ref *t = &c->tables[table];
    if (count == 0 || offset > t->len || count > t->len - offset)
        return set_err(c, PS_ERANGE,
                       "range [%llu, +%llu) outside table '%s' of %llu",
                       (unsigned long long)offset, (unsigned long long)count,
                       t->name, (unsigned long long)t->len);
    if (missing_buffer(type, grad, out))
        return set_err(c, PS_EINVAL, "missing gradient or output buffer");
    /* One piece per shard the range touches, and per max_piece floats
     * within a shard: several pieces in flight pipeline a large transfer,
     * so the server applies one while the next is still on the wire and
     * the client copies out a reply while the server works. */
    uint64_t chunk = c->cfg.max_piece_bytes / 4;
    uint32_t first = ps_dense_shard_of(t->len, c->nshards, offset);
    uint32_t last = ps_dense_shard_of(t->len, c->nshards, offset + count - 1);
    size_t n = 0;
    for (uint32_t s = first; s <= last; s++) {
        uint64_t lo = t->lo[s] > offset ? t->lo[s] : offset;
        uint64_t hi = t->hi[s] < offset + count ? t->hi[s] : offset + count;
        if (hi > lo)
            n += (size_t)((hi - lo + chunk - 1) / chunk);
    }
    if (n > MAX_INFLIGHT_PIECES / 2)
        return set_err(c, PS_ETOOBIG,
                       "range of %llu floats needs %zu pieces; raise "
                       "max_piece_bytes",
                       (unsigned long long)count, n);
    if ((rc = make_room(c, n)) != PS_OK)
        return rc;
    ps_request *r = request_new(c, type, table, (int)n);
    if (r == NULL)
        return PS_ENOMEM;
    r->dim = 1;
    r->flags = flags;
    int k = 0;
    for (uint32_t s = first; s <= last; s++) {
        uint64_t lo = t->lo[s] > offset ? t->lo[s] : offset;
        uint64_t hi = t->hi[s] < offset + count ? t->hi[s] : offset + count;
        for (uint64_t at = lo; at < hi; at += chunk) {
            piece *p = &r->pieces[k++];
            p->shard = s;
            p->offset = at;
            p->count = hi - at < chunk ? hi - at : chunk;
            p->grad = grad ? grad + (at - offset) : NULL;
            p->out = out ? out + (at - offset) : NULL;
        }
    }
    rc = request_start(c, r);
    if (rc != PS_OK) {
        request_free(r);
        return rc;
    }
    *req = r;
    return PS_OK;
}

int ps_client_push(ps_client *c, int table, uint64_t offset, uint64_t count,
                   const float *grad, ps_request **req)
{
    return dense_request(c, PS_MSG_PUSH, table, offset, count, grad, NULL, 0,
                         req);
}

int ps_client_pull(ps_client *c, int table, uint64_t offset, uint64_t count,
                   float *out, ps_request **req)
{
    return dense_request(c, PS_MSG_PULL, table, offset, count, NULL, out, 0,
                         req);
}

int ps_client_pushpull(ps_client *c, int table, uint64_t offset, uint64_t count,
                       const float *grad, float *out, ps_request **req)
{
    return dense_request(c, PS_MSG_PUSHPULL, table, offset, count, grad, out, 0,
                         req);
}

/* Keys per piece for shard s: the server's --max-keys, so a large batch
 * goes out in several pieces instead of being refused with ETOOBIG. */
static size_t keys_per_piece(const ps_client *c, uint32_t s)
{
    uint64_t m = c->shards[s].max_keys;
    return m == 0 || m > SIZE_MAX ? SIZE_MAX : (size_t)m;
}

/* Groups keys by shard, and within a shard into pieces of at most the
 * server's --max-keys: each piece gets its keys, their positions in the
 * caller's arrays and (for pushes) the gathered gradient rows. */
static int sparse_request(ps_client *c, int type, int table,
                          const uint64_t *keys, size_t nkeys, const float *grad,
                          float *out, int flags, ps_request **req)
{
    int rc = check_table(c, table, PS_SPARSE);
    if (rc != PS_OK)
        return rc;
    if (nkeys == 0 || keys == NULL)
        return set_err(c, PS_EINVAL, "no keys");
    if (missing_buffer(type, grad, out))
        return set_err(c, PS_EINVAL, "missing gradient or output buffer");
    size_t dim = c->tables[table].dim;
    uint32_t *owner = malloc(nkeys * sizeof(*owner));
    size_t *per = calloc(c->nshards, sizeof(*per));
    size_t *fill = calloc(c->nshards, sizeof(*fill));
    int *slot = malloc(c->nshards * sizeof(*slot));
    ps_request *r = NULL;
    if (owner == NULL || per == NULL || fill == NULL || slot == NULL) {
        rc = PS_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < nkeys; i++)
        per[owner[i] = ps_key_shard(keys[i], c->nshards)]++;
    size_t n = 0;
    for (uint32_t s = 0; s < c->nshards; s++) {
        size_t lim = keys_per_piece(c, s);
        n += per[s] / lim + (per[s] % lim != 0);
    }
    if (n > MAX_INFLIGHT_PIECES / 2) {
        rc = set_err(c, PS_ETOOBIG,
                     "%zu keys need %zu pieces of at most the servers' "
                     "--max-keys; send smaller batches",
                     nkeys, n);
        goto out;
    }
    if ((rc = make_room(c, n)) != PS_OK)
        goto out;
    r = request_new(c, type, table, (int)n);
    if (r == NULL) {
        rc = PS_ENOMEM;
        goto out;
    }
    r->dim = dim;
    r->flags = flags;
    r->user_out = out;
    int k = 0;
    for (uint32_t s = 0; s < c->nshards; s++) {
        slot[s] = k;
        size_t lim = keys_per_piece(c, s);
        for (size_t left = per[s]; left > 0; k++) {
            size_t m = left < lim ? left : lim;
            left -= m;
            piece *p = &r->pieces[k];
            p->shard = s;
            p->keys = malloc(m * sizeof(*p->keys));
            p->pos = malloc(m * sizeof(*p->pos));
            if (grad)
                p->gbuf = malloc(m * dim * sizeof(float));
            if (out)
                p->obuf = malloc(m * dim * sizeof(float));
            if (!p->keys || !p->pos || (grad && !p->gbuf) ||
                (out && !p->obuf)) {
                rc = PS_ENOMEM;
                goto out;
            }
        }
    }
    for (size_t i = 0; i < nkeys; i++) {
        uint32_t s = owner[i];
        piece *p = &r->pieces[slot[s] + fill[s]++ / keys_per_piece(c, s)];
        p->keys[p->count] = keys[i];
        p->pos[p->count] = i;
        if (grad)
            memcpy(p->gbuf + p->count * dim, grad + i * dim,
                   dim * sizeof(float));
        p->count++;
    }
    rc = request_start(c, r);
    if (rc == PS_OK) {
        *req = r;
        r = NULL;
    }
out:
    request_free(r);
    free(owner);
    free(per);
    free(fill);
    free(slot);
    return rc == PS_ENOMEM ? set_err(c, rc, "out of memory") : rc;
}

int ps_client_push_sparse(ps_client *c, int table, const uint64_t *keys,
                          size_t nkeys, const float *grad, ps_request **req)
{
    return sparse_request(c, PS_MSG_PUSH, table, keys, nkeys, grad, NULL, 0,
                          req);
}

int ps_client_pull_sparse(ps_client *c, int table, const uint64_t *keys,
                          size_t nkeys, float *out, ps_request **req)
{
    return sparse_request(c, PS_MSG_PULL, table, keys, nkeys, NULL, out, 0,
                          req);
}

int ps_client_pushpull_sparse(ps_client *c, int table, const uint64_t *keys,
                              size_t nkeys, const float *grad, float *out,
                              ps_request **req)
{
    return sparse_request(c, PS_MSG_PUSHPULL, table, keys, nkeys, grad, out, 0,
                          req);
}

/* ---- assign / scan ---- */

int ps_client_assign(ps_client *c, int table, uint64_t offset, uint64_t count,
                     const float *values, int flags, size_t *skipped)
{
    ps_request *r = NULL; /* set when rc is PS_OK; -O3 cannot tell */
    int rc = dense_request(c, PS_MSG_ASSIGN, table, offset, count, values, NULL,
                           flags, &r);
    if (rc == PS_OK)
        rc = ps_client_wait(c, r, -1);
    if (skipped)
        *skipped = rc == PS_OK ? c->last_skipped : 0;
    return rc;
}

int ps_client_assign_sparse(ps_client *c, int table, const uint64_t *keys,
                            size_t nkeys, const float *values, int flags,
                            size_t *skipped)
{
    ps_request *r;
    int rc = sparse_request(c, PS_MSG_ASSIGN, table, keys, nkeys, values, NULL,
                            flags, &r);
    if (rc == PS_OK)
        rc = ps_client_wait(c, r, -1);
    if (skipped)
        *skipped = rc == PS_OK ? c->last_skipped : 0;
    return rc;
}

int ps_client_scan_sparse(ps_client *c, int table, uint64_t *cursor,
                          size_t max_keys, uint64_t *keys, float *values,
                          size_t *n)
{
    int rc = check_table(c, table, PS_SPARSE);
    if (rc != PS_OK)
        return rc;
    if (cursor == NULL || keys == NULL || values == NULL || n == NULL ||
        max_keys == 0)
        return set_err(c, PS_EINVAL,
                       "scan needs a cursor, buffers and "
                       "max_keys > 0");
    *n = 0;
    if (*cursor == PS_SCAN_DONE)
        return PS_OK;
    uint64_t shard = *cursor >> SCAN_SHARD_SHIFT;
    if (shard >= c->nshards)
        return set_err(c, PS_ERANGE, "scan cursor %llu names no shard",
                       (unsigned long long)*cursor);
    ps_request *r = request_new(c, PS_MSG_SCAN, table, 1);
    if (r == NULL)
        return set_err(c, PS_ENOMEM, "out of memory");
    r->dim = c->tables[table].dim;
    r->scan_keys = keys;
    r->scan_vals = values;
    piece *p = &r->pieces[0];
    p->shard = (uint32_t)shard;
    p->offset = *cursor & ((UINT64_C(1) << SCAN_SHARD_SHIFT) - 1);
    p->count = max_keys;
    rc = request_start(c, r);
    if (rc != PS_OK) {
        request_free(r);
        return rc;
    }
    rc = wait_keep(c, r);
    if (rc == PS_OK) {
        *n = r->scan_n;
        if (!r->scan_done)
            *cursor = (shard << SCAN_SHARD_SHIFT) | r->scan_next;
        else if (shard + 1 < c->nshards)
            *cursor = (shard + 1) << SCAN_SHARD_SHIFT;
        else
            *cursor = PS_SCAN_DONE;
    }
    request_free(r);
    return rc;
}
