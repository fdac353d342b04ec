/* /metrics for one shard; see metrics.h. Families are written in a fixed
 * order, each with all its samples together as the format requires. Label
 * values that are numbers (shard, worker id) are printed into small stack
 * buffers; names come from the Status and are escaped by the writer. */
#include "metrics.h"

#include "common/sparkps_err.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* 100 us .. 30 s: a loopback pull of a few floats takes tens of
 * microseconds, a parked BSP pull as long as the slowest worker's step. */
static const double latency_bounds[] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,    0.5,    1,     2.5,    5,     10,   30};
#define NBOUNDS (sizeof(latency_bounds) / sizeof(latency_bounds[0]))

static const int lat_types[PS_METRICS_NLAT] = {SPARKPS__MSG_TYPE__PUSH,
                                               SPARKPS__MSG_TYPE__PULL,
                                               SPARKPS__MSG_TYPE__PUSHPULL};

void ps_metrics_init(ps_metrics *m)
{
    memset(m, 0, sizeof(*m));
    for (int i = 0; i < PS_METRICS_NLAT; i++)
        ps_prom_hist_init(&m->latency[i], latency_bounds, NBOUNDS);
}

int ps_metrics_type_index(int type)
{
    return type > 0 && type < PS_METRICS_TYPES ? type : 0;
}

void ps_metrics_observe(ps_metrics *m, int type, double seconds)
{
    for (int i = 0; i < PS_METRICS_NLAT; i++)
        if (lat_types[i] == type)
            ps_prom_hist_observe(&m->latency[i], seconds);
}

/* "PUSHPULL" -> "pushpull"; label values follow Prometheus' lower case. */
static const char *lower(const char *s, char *buf, size_t len)
{
    size_t i = 0;
    for (; s[i] && i + 1 < len; i++)
        buf[i] = (char)tolower((unsigned char)s[i]);
    buf[i] = '\0';
    return buf;
}

static const char *type_label(int type, char *buf, size_t len)
{
    return type == 0 ? "invalid" : lower(ps_msg_type_name(type), buf, len);
}

static const char *cons_text(const Sparkps__Hello *h, char *buf, size_t len)
{
    if (h->consistency == SPARKPS__CONSISTENCY__SSP)
        snprintf(buf, len, "ssp:%u", h->staleness);
    else
        snprintf(buf, len, "%s",
                 h->consistency == SPARKPS__CONSISTENCY__BSP ? "bsp" : "asp");
    return buf;
}

static uint64_t counter_value(Sparkps__Counter **c, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (c[i]->name && strcmp(c[i]->name, name) == 0)
            return c[i]->value;
    return 0;
}

/* A family with one unlabelled sample. */
static void single(ps_strbuf *b, const char *name, ps_prom_type type,
                   const char *help, double v)
{
    ps_prom_family(b, name, type, help);
    ps_prom_sample(b, name, NULL, v);
}

/* The same for a count (exact past 2^53). */
static void single_u64(ps_strbuf *b, const char *name, ps_prom_type type,
                       const char *help, uint64_t v)
{
    ps_prom_family(b, name, type, help);
    ps_prom_sample_u64(b, name, NULL, v);
}

/* How clients get in, and the refusals (absent without a Security part). */
static void render_security(ps_strbuf *b, const Sparkps__Security *x)
{
    if (x == NULL)
        return;
    ps_prom_family(b, "sparkps_auth_refused_total", PS_PROM_COUNTER,
                   "Connections refused: unknown_key (a CurveZMQ client key "
                   "not in --curve-allow), handshake (failed before "
                   "authentication: no CURVE, a wrong server key).");
    ps_prom_label l[] = {{"reason", "unknown_key"}, {NULL, NULL}};
    ps_prom_sample_u64(b, "sparkps_auth_refused_total", l,
                       x->refused_unknown_key);
    l[0].value = "handshake";
    ps_prom_sample_u64(b, "sparkps_auth_refused_total", l,
                       x->refused_handshake);
    single_u64(b, "sparkps_curve", PS_PROM_GAUGE,
               "1 when the socket speaks CurveZMQ, 0 in plaintext.", x->curve);
    single_u64(b, "sparkps_curve_allowed_keys", PS_PROM_GAUGE,
               "Client public keys in the allow-list.", x->allowed_keys);
    single_u64(b, "sparkps_insecure", PS_PROM_GAUGE,
               "1 when serving plaintext on a non-loopback address "
               "(--insecure).",
               x->insecure);
}

static void render_server(const ps_metrics *m, const Sparkps__Status *st,
                          ps_strbuf *b)
{
    char shard[16], shards[16], cons[32];
    const Sparkps__Hello *h = st->server;
    if (h != NULL) {
        snprintf(shard, sizeof(shard), "%u", h->shard);
        snprintf(shards, sizeof(shards), "%u", h->shards);
        ps_prom_label info[] = {{"cluster_id", h->cluster_id},
                                {"shard", shard},
                                {"shards", shards},
                                {"consistency", cons_text(h, cons, 32)},
                                {NULL, NULL}};
        ps_prom_family(b, "sparkps_shard_info", PS_PROM_GAUGE,
                       "This shard's identity; always 1.");
        ps_prom_sample(b, "sparkps_shard_info", info, 1);
    }
    ps_prom_family(b, "sparkps_uptime_seconds", PS_PROM_GAUGE,
                   "Seconds since this shard started.");
    ps_prom_sample(b, "sparkps_uptime_seconds", NULL,
                   (double)st->uptime_ms / 1000.0);

    char name[32];
    ps_prom_family(b, "sparkps_requests_total", PS_PROM_COUNTER,
                   "Requests received, by message type.");
    for (size_t i = 0; i < st->n_requests; i++) {
        ps_prom_label l[] = {
            {"type", lower(st->requests[i]->name, name, sizeof(name))},
            {NULL, NULL}};
        ps_prom_sample_u64(b, "sparkps_requests_total", l,
                           st->requests[i]->value);
    }
    static const char *const bytes_names[2] = {"sparkps_received_bytes_total",
                                               "sparkps_sent_bytes_total"};
    static const char *const bytes_help[2] = {
        "Bytes received (all frames of a request), by message type; "
        "type=\"invalid\": no valid header.",
        "Bytes sent (all frames of a reply), by message type."};
    for (int k = 0; k < 2; k++) {
        const uint64_t *v = k == 0 ? m->bytes_in : m->bytes_out;
        ps_prom_family(b, bytes_names[k], PS_PROM_COUNTER, bytes_help[k]);
        for (int t = 0; t < PS_METRICS_TYPES; t++) {
            ps_prom_label l[] = {{"type", type_label(t, name, sizeof(name))},
                                 {NULL, NULL}};
            ps_prom_sample_u64(b, bytes_names[k], l, v[t]);
        }
    }
    ps_prom_family(b, "sparkps_errors_total", PS_PROM_COUNTER,
                   "Requests refused, by error code.");
    for (int e = 1; e < PS_ERR_COUNT_; e++) {
        if (e == PS_EDEFERRED)
            continue; /* internal, never a reply */
        ps_prom_label l[] = {{"code", ps_errname(e)}, {NULL, NULL}};
        ps_prom_sample_u64(
            b, "sparkps_errors_total", l,
            counter_value(st->errors, st->n_errors, ps_errname(e)));
    }
    ps_prom_family(b, "sparkps_request_duration_seconds", PS_PROM_HISTOGRAM,
                   "Seconds from a request's arrival to its reply, "
                   "including the wait of pulls parked by SSP/BSP.");
    for (int i = 0; i < PS_METRICS_NLAT; i++) {
        ps_prom_label l[] = {{"type", type_label(lat_types[i], name, 32)},
                             {NULL, NULL}};
        ps_prom_hist_write(b, "sparkps_request_duration_seconds", l,
                           &m->latency[i]);
    }
    single(b, "sparkps_optimizer_apply_seconds_total", PS_PROM_COUNTER,
           "Seconds spent applying pushes through the optimizers.",
           (double)m->apply_ns / 1e9);
    single(b, "sparkps_http_busy_seconds_total", PS_PROM_COUNTER,
           "Seconds the event loop spent serving HTTP (pages rendered and "
           "sent); the cost of scraping.",
           (double)m->http_ns / 1e9);
    single_u64(b, "sparkps_pending_pulls", PS_PROM_GAUGE,
               "Pulls parked until slower workers catch up (SSP/BSP).",
               st->pending_pulls);
    render_security(b, st->security);
    single_u64(b, "sparkps_peer_connections_total", PS_PROM_COUNTER,
               "Client connections accepted.", st->peers_accepted);
    single_u64(b, "sparkps_peer_disconnects_total", PS_PROM_COUNTER,
               "Client connections lost: closed by the peer, cut by the "
               "network or dropped after the ZeroMQ heartbeat timeout (a "
               "hung peer).",
               st->peers_disconnected);
}

/* Only for a server with a checkpoint directory; the last_* families only
 * once one was written. */
static void render_checkpoints(const Sparkps__Status *st, ps_strbuf *b)
{
    if (st->checkpoint_dir == NULL)
        return;
    ps_prom_family(b, "sparkps_checkpoints_total", PS_PROM_COUNTER,
                   "Checkpoints attempted since the start, by result.");
    ps_prom_label ok[] = {{"result", "ok"}, {NULL, NULL}};
    ps_prom_label failed[] = {{"result", "failed"}, {NULL, NULL}};
    ps_prom_sample_u64(b, "sparkps_checkpoints_total", ok, st->checkpoints_ok);
    ps_prom_sample_u64(b, "sparkps_checkpoints_total", failed,
                       st->checkpoints_failed);
    if (st->checkpoint_file == NULL)
        return;
    single(b, "sparkps_checkpoint_last_timestamp_seconds", PS_PROM_GAUGE,
           "Unix time of the last checkpoint's snapshot.",
           (double)st->checkpoint_time_ms / 1000.0);
    single(b, "sparkps_checkpoint_duration_seconds", PS_PROM_GAUGE,
           "Seconds the last checkpoint took, from the snapshot to the file "
           "durable on disk.",
           (double)st->checkpoint_us / 1e6);
    single(b, "sparkps_checkpoint_last_bytes", PS_PROM_GAUGE,
           "Size of the last checkpoint file.", (double)st->checkpoint_bytes);
}

/* One family with a value per table. */
typedef enum table_field {
    T_APPLIED,
    T_VALUES,
    T_ROWS,
    T_BYTES,
    T_PUSHES,
    T_PULLS
} table_field;

static const struct {
    const char *name;
    ps_prom_type type;
    const char *help;
} table_families[] = {
    {"sparkps_optimizer_applied_values_total", PS_PROM_COUNTER,
     "Floats the optimizer has updated in this shard's part of a table."},
    {"sparkps_table_values", PS_PROM_GAUGE,
     "Floats of a table held by this shard (dense: its range; sparse: "
     "rows times dim)."},
    {"sparkps_table_rows", PS_PROM_GAUGE,
     "Keys of a sparse table held by this shard."},
    {"sparkps_table_memory_bytes", PS_PROM_GAUGE,
     "Bytes of a table on this shard: weights and optimizer state."},
    {"sparkps_table_pushes_total", PS_PROM_COUNTER,
     "Pushes applied to a table on this shard."},
    {"sparkps_table_pulls_total", PS_PROM_COUNTER,
     "Pulls served from a table on this shard."},
};

static void render_tables(const Sparkps__Status *st, ps_strbuf *b)
{
    uint64_t memory = 0;
    for (size_t f = 0; f < sizeof(table_families) / sizeof(*table_families);
         f++) {
        ps_prom_family(b, table_families[f].name, table_families[f].type,
                       table_families[f].help);
        for (size_t i = 0; i < st->n_tables; i++) {
            const Sparkps__TableInfo *t = st->tables[i];
            int sparse = t->kind == SPARKPS__TABLE_KIND__SPARSE;
            uint64_t v = 0;
            switch ((table_field)f) {
            case T_APPLIED:
                v = t->values_applied;
                break;
            case T_VALUES:
                v = sparse ? t->rows * t->dim : t->hi - t->lo;
                break;
            case T_ROWS:
                if (!sparse)
                    continue; /* dense tables have no rows */
                v = t->rows;
                break;
            case T_BYTES:
                v = t->bytes;
                memory += t->bytes;
                break;
            case T_PUSHES:
                v = t->pushes;
                break;
            case T_PULLS:
                v = t->pulls;
                break;
            }
            ps_prom_label l[] = {{"job", t->job ? t->job : ""},
                                 {"table", t->name ? t->name : ""},
                                 {NULL, NULL}};
            ps_prom_sample_u64(b, table_families[f].name, l, v);
        }
    }
    ps_prom_family(b, "sparkps_memory_bytes", PS_PROM_GAUGE,
                   "Bytes of all tables on this shard.");
    ps_prom_sample_u64(b, "sparkps_memory_bytes", NULL, memory);
}

/* A value per worker, or none (has = 0). */
typedef struct worker_value {
    int has;
    double v;
} worker_value;

typedef enum worker_field {
    W_ALIVE,
    W_CLOCK,
    W_STALENESS,
    W_IDLE,
    W_SAMPLES,
    W_EPOCH,
    W_LOSS,
    W_TRAIN_ACC,
    W_ACC,
    W_EVAL_LOSS,
    W_ATTEMPT,
    W_SUPERSEDED,
    W_NFIELDS
} worker_field;

static const struct {
    const char *name;
    ps_prom_type type;
    const char *help;
} worker_families[W_NFIELDS] = {
    {"sparkps_worker_alive", PS_PROM_GAUGE,
     "1 while the worker counts as alive (heard from within the timeout)."},
    {"sparkps_worker_clock", PS_PROM_GAUGE,
     "The worker's clock (iterations finished; SSP/BSP workers)."},
    {"sparkps_worker_staleness", PS_PROM_GAUGE,
     "Clocks the live worker is ahead of the slowest live one."},
    {"sparkps_worker_idle_seconds", PS_PROM_GAUGE,
     "Seconds since the last message from the worker."},
    {"sparkps_worker_samples_total", PS_PROM_COUNTER,
     "Samples the worker has processed, as it reports them."},
    {"sparkps_worker_epoch", PS_PROM_GAUGE,
     "The epoch the worker is in, as it reports it."},
    {"sparkps_worker_loss", PS_PROM_GAUGE,
     "The worker's training loss (mean over its current epoch)."},
    {"sparkps_worker_train_accuracy", PS_PROM_GAUGE,
     "The worker's training accuracy (mean over its current epoch)."},
    {"sparkps_worker_accuracy", PS_PROM_GAUGE,
     "Accuracy of the worker's last evaluation on held-out data."},
    {"sparkps_worker_eval_loss", PS_PROM_GAUGE,
     "Loss of the worker's last evaluation on held-out data."},
    {"sparkps_worker_attempt", PS_PROM_GAUGE,
     "The newest attempt of this worker id that joined (Spark's stage "
     "attempt)."},
    {"sparkps_worker_superseded_total", PS_PROM_COUNTER,
     "Messages refused from older attempts of this worker id."},
};

static worker_value worker_get(const Sparkps__WorkerInfo *w, worker_field f,
                               int64_t min_live)
{
    const Sparkps__Progress *p = w->progress;
    const Sparkps__EpochEval *e =
        w->n_history ? w->history[w->n_history - 1] : NULL;
    switch (f) {
    case W_ALIVE:
        return (worker_value){1, w->alive ? 1 : 0};
    case W_CLOCK:
        return (worker_value){1, (double)w->clock};
    case W_STALENESS:
        return (worker_value){w->alive, (double)(w->clock - min_live)};
    case W_IDLE:
        return (worker_value){1, (double)w->idle_ms / 1000.0};
    case W_SAMPLES:
        return (worker_value){p != NULL, p ? (double)p->samples : 0};
    case W_EPOCH:
        return (worker_value){p != NULL, p ? p->epoch : 0};
    case W_LOSS:
        return (worker_value){p != NULL, p ? p->loss : 0};
    case W_TRAIN_ACC:
        return (worker_value){p != NULL, p ? p->accuracy : 0};
    case W_ACC:
        return (worker_value){e && e->has_accuracy, e ? e->accuracy : 0};
    case W_EVAL_LOSS:
        return (worker_value){e && e->has_loss, e ? e->loss : 0};
    case W_ATTEMPT:
        return (worker_value){1, (double)w->attempt};
    case W_SUPERSEDED:
        return (worker_value){1, (double)w->superseded};
    default:
        return (worker_value){0, 0};
    }
}

static void render_workers(const Sparkps__Status *st, ps_strbuf *b)
{
    int64_t min_live = INT64_MAX;
    uint64_t live = 0;
    for (size_t i = 0; i < st->n_workers; i++) {
        if (st->workers[i]->alive) {
            live++;
            if (st->workers[i]->clock < min_live)
                min_live = st->workers[i]->clock;
        }
    }
    ps_prom_family(b, "sparkps_workers_live", PS_PROM_GAUGE,
                   "Workers counted as alive by this shard.");
    ps_prom_sample_u64(b, "sparkps_workers_live", NULL, live);
    for (int f = 0; f < W_NFIELDS; f++) {
        ps_prom_family(b, worker_families[f].name, worker_families[f].type,
                       worker_families[f].help);
        for (size_t i = 0; i < st->n_workers; i++) {
            const Sparkps__WorkerInfo *w = st->workers[i];
            worker_value v = worker_get(w, (worker_field)f, min_live);
            if (!v.has)
                continue;
            char id[16];
            snprintf(id, sizeof(id), "%u", w->id);
            ps_prom_label l[] = {{"worker", id}, {NULL, NULL}};
            if (f == W_SAMPLES)
                ps_prom_sample_u64(b, worker_families[f].name, l,
                                   w->progress->samples);
            else
                ps_prom_sample(b, worker_families[f].name, l, v.v);
        }
    }
}

void ps_metrics_render(const ps_metrics *m, const Sparkps__Status *st,
                       ps_strbuf *out)
{
    render_server(m, st, out);
    render_checkpoints(st, out);
    render_tables(st, out);
    render_workers(st, out);
}
