/* Status -> JSON; see status_json.h. Field names follow the proto. */
#include "common/status_json.h"

#include <math.h>

static const char *cons_name(int c)
{
    return c == SPARKPS__CONSISTENCY__SSP   ? "ssp"
           : c == SPARKPS__CONSISTENCY__BSP ? "bsp"
                                            : "asp";
}

static const char *optim_name(int k)
{
    static const char *names[] = {"sgd", "adagrad", "adam", "ftrl"};
    return k >= 0 && k <= 3 ? names[k] : "?";
}

static void num(ps_strbuf *b, double v)
{
    if (isfinite(v))
        ps_strbuf_printf(b, "%.9g", v);
    else
        ps_strbuf_add(b, "null", 4);
}

/* A figure the worker did not measure is absent (has_ unset): null. */
static void opt_num(ps_strbuf *b, const char *key, int has, double v)
{
    ps_strbuf_printf(b, ",\"%s\":", key);
    num(b, has ? v : NAN);
}

static void epoch_eval(ps_strbuf *b, const Sparkps__EpochEval *e, int comma)
{
    ps_strbuf_printf(b, "%s{\"epoch\":%u,\"samples\":%llu,\"time_ms\":%llu",
                     comma ? "," : "", e->epoch, (unsigned long long)e->samples,
                     (unsigned long long)e->time_ms);
    opt_num(b, "loss", e->has_loss, e->loss);
    opt_num(b, "accuracy", e->has_accuracy, e->accuracy);
    opt_num(b, "train_loss", e->has_train_loss, e->train_loss);
    opt_num(b, "train_accuracy", e->has_train_accuracy, e->train_accuracy);
    opt_num(b, "auc", e->has_auc, e->auc);
    ps_strbuf_add(b, "}", 1);
}

static void counters(ps_strbuf *b, const char *key, Sparkps__Counter **c,
                     size_t n)
{
    ps_strbuf_printf(b, ",\"%s\":{", key);
    for (size_t i = 0; i < n; i++) {
        if (i)
            ps_strbuf_add(b, ",", 1);
        ps_strbuf_json_str(b, c[i]->name);
        ps_strbuf_printf(b, ":%llu", (unsigned long long)c[i]->value);
    }
    ps_strbuf_add(b, "}", 1);
}

/* ,"key":"text" or ,"key":null */
static void opt_str(ps_strbuf *b, const char *key, const char *v)
{
    ps_strbuf_printf(b, ",\"%s\":", key);
    if (v)
        ps_strbuf_json_str(b, v);
    else
        ps_strbuf_add(b, "null", 4);
}

/* "checkpoint": null for a server without checkpoints. */
static void checkpoint(ps_strbuf *b, const Sparkps__Status *st)
{
    if (st->checkpoint_dir == NULL && st->restored_from == NULL) {
        ps_strbuf_add(b, ",\"checkpoint\":null", 18);
        return;
    }
    ps_strbuf_printf(b, ",\"checkpoint\":{\"ok\":%llu,\"failed\":%llu",
                     (unsigned long long)st->checkpoints_ok,
                     (unsigned long long)st->checkpoints_failed);
    opt_str(b, "dir", st->checkpoint_dir);
    opt_str(b, "last_file", st->checkpoint_file);
    if (st->checkpoint_file)
        ps_strbuf_printf(b,
                         ",\"last_time_ms\":%llu,\"last_duration_ms\":%.3f,"
                         "\"last_bytes\":%llu",
                         (unsigned long long)st->checkpoint_time_ms,
                         (double)st->checkpoint_us / 1000.0,
                         (unsigned long long)st->checkpoint_bytes);
    opt_str(b, "last_error", st->checkpoint_error);
    opt_str(b, "restored_from", st->restored_from);
    ps_strbuf_add(b, "}", 1);
}

void ps_status_json(const Sparkps__Status *st, ps_strbuf *b)
{
    const Sparkps__Hello *h = st->server;
    ps_strbuf_add(b, "{\"cluster_id\":", 14);
    ps_strbuf_json_str(b, h ? h->cluster_id : "");
    if (h)
        ps_strbuf_printf(
            b,
            ",\"shard\":%u,\"shards\":%u,\"protocol_version\":%u,"
            "\"consistency\":\"%s\",\"staleness\":%u,"
            "\"worker_timeout_ms\":%u,\"workers_expected\":%u,"
            "\"max_message_bytes\":%llu,\"max_keys\":%llu,"
            "\"max_rows\":%llu",
            h->shard, h->shards, h->protocol_version,
            cons_name((int)h->consistency), h->staleness, h->worker_timeout_ms,
            h->workers, (unsigned long long)h->max_message_bytes,
            (unsigned long long)h->max_keys, (unsigned long long)h->max_rows);
    ps_strbuf_printf(
        b,
        ",\"uptime_ms\":%llu,\"min_clock\":%lld,"
        "\"pending_pulls\":%llu,\"bytes_in\":%llu,"
        "\"bytes_out\":%llu,\"peers_accepted\":%llu,"
        "\"peers_disconnected\":%llu,\"tables\":[",
        (unsigned long long)st->uptime_ms, (long long)st->min_clock,
        (unsigned long long)st->pending_pulls, (unsigned long long)st->bytes_in,
        (unsigned long long)st->bytes_out,
        (unsigned long long)st->peers_accepted,
        (unsigned long long)st->peers_disconnected);
    for (size_t i = 0; i < st->n_tables; i++) {
        const Sparkps__TableInfo *t = st->tables[i];
        ps_strbuf_add(b, i ? ",{\"job\":" : "{\"job\":", i ? 8 : 7);
        ps_strbuf_json_str(b, t->job);
        ps_strbuf_add(b, ",\"name\":", 8);
        ps_strbuf_json_str(b, t->name);
        ps_strbuf_printf(
            b,
            ",\"id\":%u,\"kind\":\"%s\",\"len\":%llu,\"dim\":%u,\"lo\":%llu,"
            "\"hi\":%llu,\"rows\":%llu,\"bytes\":%llu,\"optimizer\":\"%s\","
            "\"pushes\":%llu,\"pulls\":%llu,\"values_applied\":%llu,"
            "\"shape\":[",
            t->id, t->kind == SPARKPS__TABLE_KIND__SPARSE ? "sparse" : "dense",
            (unsigned long long)t->len, t->dim, (unsigned long long)t->lo,
            (unsigned long long)t->hi, (unsigned long long)t->rows,
            (unsigned long long)t->bytes, optim_name((int)t->optim),
            (unsigned long long)t->pushes, (unsigned long long)t->pulls,
            (unsigned long long)t->values_applied);
        for (size_t k = 0; k < t->n_shape; k++)
            ps_strbuf_printf(b, "%s%llu", k ? "," : "",
                             (unsigned long long)t->shape[k]);
        ps_strbuf_add(b, "],\"meta\":", 9);
        ps_strbuf_json_str(b, t->meta ? t->meta : "");
        ps_strbuf_add(b, "}", 1);
    }
    ps_strbuf_add(b, "],\"workers\":[", 13);
    for (size_t i = 0; i < st->n_workers; i++) {
        const Sparkps__WorkerInfo *w = st->workers[i];
        ps_strbuf_printf(b,
                         "%s{\"id\":%u,\"clock\":%lld,\"alive\":%s,"
                         "\"idle_ms\":%llu,\"attempt\":%u,"
                         "\"superseded\":%llu",
                         i ? "," : "", w->id, (long long)w->clock,
                         w->alive ? "true" : "false",
                         (unsigned long long)w->idle_ms, w->attempt,
                         (unsigned long long)w->superseded);
        if (w->progress) {
            ps_strbuf_printf(b, ",\"samples\":%llu,\"epoch\":%u,\"loss\":",
                             (unsigned long long)w->progress->samples,
                             w->progress->epoch);
            num(b, w->progress->loss);
            ps_strbuf_add(b, ",\"accuracy\":", 12);
            num(b, w->progress->accuracy);
        }
        ps_strbuf_add(b, ",\"history\":[", 12);
        for (size_t k = 0; k < w->n_history; k++)
            epoch_eval(b, w->history[k], k > 0);
        ps_strbuf_add(b, "]}", 2);
    }
    ps_strbuf_add(b, "]", 1);
    checkpoint(b, st);
    counters(b, "requests", st->requests, st->n_requests);
    counters(b, "errors", st->errors, st->n_errors);
    const Sparkps__Security *x = st->security;
    if (x != NULL)
        ps_strbuf_printf(b,
                         ",\"security\":{\"curve\":%s,\"insecure\":%s,"
                         "\"allowed_keys\":%llu,\"refused_unknown_key\":%llu,"
                         "\"refused_handshake\":%llu}",
                         x->curve ? "true" : "false",
                         x->insecure ? "true" : "false",
                         (unsigned long long)x->allowed_keys,
                         (unsigned long long)x->refused_unknown_key,
                         (unsigned long long)x->refused_handshake);
    ps_strbuf_add(b, "}", 1);
}
