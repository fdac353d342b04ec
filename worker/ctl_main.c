/* ps-ctl: the operators' command, over the wire protocol.
 *
 *   ps-ctl status --servers LIST [--json]
 *   ps-ctl export --servers LIST --job J --out FILE
 *   ps-ctl drop --servers LIST --job J [--table NAME] [--if-exists] [--json]
 *   ps-ctl shutdown --servers LIST [--json]
 *   ps-ctl save --servers LIST [--json]
 *
 * status asks every shard for its Status and prints tables (per shard rows
 * and bytes), workers (attempt, clock, liveness, progress) and counters;
 * --json prints one JSON document {"shards":[STATUS_0, STATUS_1, ...]} with each
 * shard's status exactly as the Status request renders it. export pulls
 * every table of a job from the servers (dense by ranges, sparse by SCAN)
 * and writes one safetensors file atomically, with the model spec the
 * workers attached to the tables in its metadata. drop frees one table of a
 * job, or all of them, on every shard and prints what each shard freed.
 * shutdown asks every listed shard to stop as SIGTERM would, each one even
 * when another is gone, and reports each answer. save asks every listed
 * shard to write a checkpoint now and prints each file written.
 *
 * Exit status: 0 done, 2 bad usage (a malformed server list included), 1 a
 * runtime error (message on stderr; for shutdown: a shard did not confirm;
 * for save: a shard wrote none),
 * 3 drop found nothing to drop (0 with --if-exists). Single-threaded. */
#include "common/config.h"
#include "common/curve_client.h"
#include "common/log.h"
#include "common/sparkps_err.h"
#include "common/strbuf.h"
#include "common/timeutil.h"
#include "safetensors.h"
#include "sparkps.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DENSE_PULL_FLOATS ((uint64_t)1 << 26) /* per pull request */
#define SCAN_PAGE_BYTES ((size_t)16 << 20)
#define EXIT_NOTHING 3 /* drop: no such table or job on any shard */

typedef struct ctl_opts {
    const char *servers;
    const char *job;
    const char *out;
    const char *table;
    int if_exists;
    int json;
    int64_t timeout_ms;
    int64_t retries;
    const char *curve_secret_key, *curve_server_key;
    const char *log_level;
} ctl_opts;

#define OPT(f) offsetof(ctl_opts, f)
static const ps_setting settings[] = {
    {"servers", PS_SET_STR, NULL, 0, 0, OPT(servers), "LIST",
     "shard endpoints in shard order (required)"},
    {"job", PS_SET_STR, NULL, 0, 0, OPT(job), "NAME",
     "export, drop: the job whose tables are written or freed (required)"},
    {"out", PS_SET_STR, NULL, 0, 0, OPT(out), "FILE",
     "export: the safetensors file to write (required)"},
    {"table", PS_SET_STR, NULL, 0, 0, OPT(table), "NAME",
     "drop: only this table of the job (default: every table of it)"},
    {"if-exists", PS_SET_BOOL, "false", 0, 1, OPT(if_exists), NULL,
     "drop: nothing to drop is not an error (exit 0 instead of 3)"},
    {"json", PS_SET_BOOL, "false", 0, 1, OPT(json), NULL,
     "status, drop, shutdown, save: one JSON document {\"shards\":[...]}"},
    {"timeout", PS_SET_INT, "5000", 1, 3600000, OPT(timeout_ms), "MS",
     "per attempt to reach a shard"},
    {"retries", PS_SET_INT, "1", 0, 100, OPT(retries), "N",
     "attempts after the first"},
    PS_CURVE_CLIENT_SETTINGS(OPT(curve_secret_key), OPT(curve_server_key)),
    {"log-level", PS_SET_STR, "warn", 0, 0, OPT(log_level), "LEVEL",
     "error, warn, info or debug"},
};
#undef OPT
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ps-ctl status --servers LIST [--json]\n"
            "       ps-ctl export --servers LIST --job JOB --out FILE\n"
            "       ps-ctl drop --servers LIST --job JOB [--table NAME] "
            "[--if-exists] [--json]\n"
            "       ps-ctl shutdown --servers LIST [--json]\n"
            "       ps-ctl save --servers LIST [--json]\n\n"
            "status: every shard's tables (rows and bytes per shard), "
            "workers\n"
            "  (attempt, clock, alive, progress) and counters.\n"
            "export: pulls every table of JOB from the servers and writes "
            "them\n"
            "  as one safetensors file (atomically), the model spec in its\n"
            "  metadata; run it once training has ended.\n"
            "drop: frees table NAME of JOB, or every table of JOB, on every\n"
            "  shard, and prints the tables and bytes each shard freed.\n"
            "shutdown: asks every shard to stop as SIGTERM would (answer\n"
            "  what arrived, fail later requests with ESHUTDOWN, exit 0);\n"
            "  a shard that is gone is reported, the others still stop.\n"
            "  Any client a server lets in can stop it (with CurveZMQ: a\n"
            "  key in its --curve-allow; in plaintext: anyone).\n"
            "save: asks every shard to write a checkpoint now (servers\n"
            "  started with --checkpoint-dir) and prints each file; waits\n"
            "  as long as the writing takes.\n\n"
            "Exit status: 0 ok, 1 runtime error (shutdown: a shard did not\n"
            "confirm; save: a shard wrote no checkpoint), 2 bad usage, 3\n"
            "drop: nothing to drop (0 with --if-exists).\n\n"
            "options:\n");
    ps_config_usage(out, settings, NSETTINGS);
}

static void client_cfg(const ctl_opts *o, const char *job, ps_client_cfg *cfg)
{
    ps_client_cfg_init(cfg);
    cfg->servers = o->servers;
    cfg->job = job;
    cfg->timeout_ms = (int)o->timeout_ms;
    cfg->retries = o->retries > 0 ? (int)o->retries : -1;
    cfg->curve_secret_key = o->curve_secret_key;
    cfg->curve_server_key = o->curve_server_key;
}

/* Connects and says why not. PS_EINVAL is a malformed --servers list or
 * name: bad usage (exit 2), not an unreachable cluster. */
static int connect_client(const ctl_opts *o, const char *job, ps_client **c)
{
    ps_client_cfg cfg;
    client_cfg(o, job, &cfg);
    char err[512];
    int rc = ps_client_new(c, &cfg, err, sizeof(err));
    if (rc == PS_EINVAL)
        fprintf(stderr, "ps-ctl: bad --servers, --job or keys: %s\n", err);
    else if (rc == PS_EAUTH)
        fprintf(stderr, "ps-ctl: refused by the servers: %s\n", err);
    else if (rc != PS_OK)
        fprintf(stderr, "ps-ctl: cannot reach the servers: %s\n", err);
    return rc;
}

static int connect_exit(int rc)
{
    return rc == PS_EINVAL ? 2 : 1;
}

/* Endpoint i of the --servers list (spaces trimmed as the client does). */
static void endpoint_at(const char *list, size_t i, char *buf, size_t len)
{
    const char *p = list;
    for (size_t k = 0; k < i && p != NULL; k++) {
        p = strchr(p, ',');
        p = p ? p + 1 : NULL;
    }
    buf[0] = '\0';
    if (p == NULL)
        return;
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, ",");
    while (n > 0 && p[n - 1] == ' ')
        n--;
    snprintf(buf, len, "%.*s", (int)n, p);
}

/* ---- status ---- */

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static void print_size(const cJSON *t, char *buf, size_t len)
{
    if (strcmp(str(t, "kind"), "sparse") == 0) {
        snprintf(buf, len, "dim %.0f", num(t, "dim"));
        return;
    }
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(t, "shape");
    size_t at = 0;
    buf[0] = '\0';
    const cJSON *d;
    cJSON_ArrayForEach(d, shape)
    {
        if (at + 24 >= len)
            break;
        at += (size_t)snprintf(buf + at, len - at, "%s%.0f", at ? "x" : "",
                               d->valuedouble);
    }
    if (at == 0)
        snprintf(buf, len, "%.0f", num(t, "len"));
}

/* One line per shard that takes or restored checkpoints; nothing when
 * none does. */
static void print_checkpoints(cJSON **st, int n)
{
    int header = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(st[i], "checkpoint");
        if (!cJSON_IsObject(c))
            continue;
        if (!header++)
            printf("\ncheckpoints:\n");
        printf("  shard %d: %.0f written, %.0f failed", i, num(c, "ok"),
               num(c, "failed"));
        if (*str(c, "last_file"))
            printf(", last %s (%.1f s ago, %.0f bytes, %.1f ms)",
                   str(c, "last_file"),
                   (double)(ps_wall_ms() - (int64_t)num(c, "last_time_ms")) /
                       1000.0,
                   num(c, "last_bytes"), num(c, "last_duration_ms"));
        if (*str(c, "last_error"))
            printf(", last failure: %s", str(c, "last_error"));
        if (*str(c, "restored_from"))
            printf(", restored from %s", str(c, "restored_from"));
        printf("\n");
    }
}

/* Human-readable status of all shards (parsed from their JSON). */
static void print_status(cJSON **st, int n, const char *servers)
{
    const cJSON *s0 = st[0];
    printf("cluster %s: %d shard(s), consistency %s", str(s0, "cluster_id"), n,
           str(s0, "consistency"));
    if (strcmp(str(s0, "consistency"), "ssp") == 0)
        printf(" (staleness %.0f)", num(s0, "staleness"));
    printf(", min clock %.0f\n\n", num(s0, "min_clock"));
    printf("%-5s %-28s %10s %8s %12s %12s\n", "SHARD", "ENDPOINT", "UPTIME_S",
           "PENDING", "BYTES_IN", "BYTES_OUT");
    const char *ep = servers;
    for (int i = 0; i < n; i++) {
        const char *end = strchr(ep, ',');
        int len = end ? (int)(end - ep) : (int)strlen(ep);
        printf("%-5d %-28.*s %10.1f %8.0f %12.0f %12.0f\n", i, len, ep,
               num(st[i], "uptime_ms") / 1000.0, num(st[i], "pending_pulls"),
               num(st[i], "bytes_in"), num(st[i], "bytes_out"));
        ep = end ? end + 1 : ep + len;
    }
    print_checkpoints(st, n);
    printf("\n%-12s %-20s %-6s %-14s %5s %10s %12s %9s %9s  %s\n", "JOB",
           "TABLE", "KIND", "SIZE", "SHARD", "HELD", "BYTES", "PUSHES", "PULLS",
           "META");
    int any = 0;
    for (int i = 0; i < n; i++) {
        const cJSON *t;
        cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(st[i], "tables"))
        {
            char size[64];
            print_size(t, size, sizeof(size));
            int sparse = strcmp(str(t, "kind"), "sparse") == 0;
            double rows = sparse ? num(t, "rows") : num(t, "hi") - num(t, "lo");
            printf("%-12s %-20s %-6s %-14s %5d %10.0f %12.0f %9.0f %9.0f  %s\n",
                   str(t, "job"), str(t, "name"), str(t, "kind"), size, i, rows,
                   num(t, "bytes"), num(t, "pushes"), num(t, "pulls"),
                   str(t, "meta"));
            any = 1;
        }
    }
    if (!any)
        printf("(no tables)\n");
    /* Workers reach every shard (heartbeats, clocks, piggybacked progress),
     * so shard 0's view is the cluster's. */
    printf("\n%-6s %7s %8s %-5s %9s %6s %12s %10s %9s\n", "WORKER", "ATTEMPT",
           "CLOCK", "ALIVE", "IDLE_MS", "EPOCH", "SAMPLES", "LOSS", "ACCURACY");
    any = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(s0, "workers"))
    {
        const cJSON *alive = cJSON_GetObjectItemCaseSensitive(w, "alive");
        printf("%-6.0f %7.0f %8.0f %-5s %9.0f", num(w, "id"), num(w, "attempt"),
               num(w, "clock"), cJSON_IsTrue(alive) ? "yes" : "no",
               num(w, "idle_ms"));
        if (cJSON_GetObjectItemCaseSensitive(w, "samples") != NULL)
            printf(" %6.0f %12.0f %10.4f %9.4f", num(w, "epoch"),
                   num(w, "samples"), num(w, "loss"), num(w, "accuracy"));
        printf("\n");
        any = 1;
    }
    if (!any)
        printf("(no workers)\n");
}

static int cmd_status(const ctl_opts *o)
{
    ps_client *c;
    int crc = connect_client(o, NULL, &c);
    if (crc != PS_OK)
        return connect_exit(crc);
    int n = ps_client_num_shards(c);
    char **json = calloc((size_t)n, sizeof(*json));
    cJSON **parsed = calloc((size_t)n, sizeof(*parsed));
    int rc = json && parsed ? 0 : 1;
    for (int i = 0; rc == 0 && i < n; i++) {
        int e = ps_client_status_json(c, i, &json[i]);
        if (e != PS_OK) {
            fprintf(stderr, "ps-ctl: status of shard %d: %s\n", i,
                    ps_client_errmsg(c));
            rc = 1;
        } else if (!o->json && (parsed[i] = cJSON_Parse(json[i])) == NULL) {
            fprintf(stderr, "ps-ctl: shard %d sent unreadable status\n", i);
            rc = 1;
        }
    }
    if (rc == 0 && o->json) {
        fputs("{\"shards\":[", stdout);
        for (int i = 0; i < n; i++)
            printf("%s%s", i ? "," : "", json[i]);
        fputs("]}\n", stdout);
    } else if (rc == 0) {
        print_status(parsed, n, o->servers);
    }
    for (int i = 0; json && parsed && i < n; i++) {
        free(json[i]);
        cJSON_Delete(parsed[i]);
    }
    free(json);
    free(parsed);
    ps_client_free(c);
    return rc;
}

/* ---- export ---- */

/* One exported table's data, owned here until the file is written. */
typedef struct exported {
    float *values;
    uint64_t *keys; /* sparse */
    uint64_t n;     /* sparse: rows */
} exported;

static int pull_dense_table(ps_client *c, int t, const ps_table_info *ti,
                            exported *x)
{
    x->values = malloc((size_t)ti->len * sizeof(float));
    if (x->values == NULL) {
        fprintf(stderr, "ps-ctl: out of memory for table '%s' (%llu floats)\n",
                ti->name, (unsigned long long)ti->len);
        return PS_ENOMEM;
    }
    for (uint64_t at = 0; at < ti->len; at += DENSE_PULL_FLOATS) {
        uint64_t n =
            ti->len - at < DENSE_PULL_FLOATS ? ti->len - at : DENSE_PULL_FLOATS;
        ps_request *r;
        int rc = ps_client_pull(c, t, at, n, x->values + at, &r);
        if (rc == PS_OK)
            rc = ps_client_wait(c, r, -1);
        if (rc != PS_OK) {
            fprintf(stderr, "ps-ctl: pulling table '%s': %s\n", ti->name,
                    ps_client_errmsg(c));
            return rc;
        }
    }
    return PS_OK;
}

static int scan_sparse_table(ps_client *c, int t, const ps_table_info *ti,
                             exported *x)
{
    size_t dim = ti->dim;
    size_t page = SCAN_PAGE_BYTES / (8 + dim * sizeof(float));
    if (page == 0)
        page = 1;
    size_t cap = 0;
    uint64_t cursor = 0;
    while (cursor != PS_SCAN_DONE) {
        if (x->n + page > cap) {
            size_t ncap = cap ? cap * 2 : page;
            while (ncap < x->n + page)
                ncap *= 2;
            uint64_t *k = realloc(x->keys, ncap * sizeof(*k));
            if (k != NULL)
                x->keys = k;
            float *v = k ? realloc(x->values, ncap * dim * sizeof(*v)) : NULL;
            if (v == NULL) {
                fprintf(stderr, "ps-ctl: out of memory scanning table '%s'\n",
                        ti->name);
                return PS_ENOMEM;
            }
            x->values = v;
            cap = ncap;
        }
        size_t got;
        int rc = ps_client_scan_sparse(c, t, &cursor, page, x->keys + x->n,
                                       x->values + x->n * dim, &got);
        if (rc != PS_OK) {
            fprintf(stderr, "ps-ctl: scanning table '%s': %s\n", ti->name,
                    ps_client_errmsg(c));
            return rc;
        }
        x->n += got;
    }
    return PS_OK;
}

/* Table meta "k=v;k=v" into file metadata; the first table naming a key
 * wins (`seen` holds ";key;" for every key set so far). */
static void meta_to_file(ps_st_writer *w, const char *meta, ps_strbuf *seen)
{
    char *copy = strdup(meta);
    char *save = NULL;
    for (char *kv = copy ? strtok_r(copy, ";", &save) : NULL; kv != NULL;
         kv = strtok_r(NULL, ";", &save)) {
        char *eq = strchr(kv, '=');
        if (eq == NULL || eq == kv)
            continue;
        *eq = '\0';
        char key[300];
        snprintf(key, sizeof(key), ";%s;", kv);
        if (seen->data != NULL && strstr(seen->data, key) != NULL)
            continue;
        ps_strbuf_printf(seen, "%s", key);
        ps_st_set_meta(w, kv, eq + 1);
    }
    free(copy);
}

static int write_export(const ctl_opts *o, const ps_table_info *tabs, size_t n,
                        exported *x)
{
    ps_st_writer *w;
    if (ps_st_writer_new(&w) != PS_OK)
        return PS_ENOMEM;
    ps_strbuf names, seen;
    ps_strbuf_init(&names, 0);
    ps_strbuf_init(&seen, 0);
    ps_st_set_meta(w, "format", "sparkps");
    ps_st_set_meta(w, "format_version", "1");
    ps_st_set_meta(w, "job", o->job);
    int rc = PS_OK;
    for (size_t i = 0; rc == PS_OK && i < n; i++) {
        const ps_table_info *t = &tabs[i];
        ps_strbuf_printf(&names, "%s%s", i ? "," : "", t->name);
        if (t->meta[0] != '\0')
            meta_to_file(w, t->meta, &seen);
        if (t->kind == PS_DENSE) {
            uint64_t shape[8];
            size_t nd = 0;
            while (nd < 7 && t->shape[nd] != 0) {
                shape[nd] = t->shape[nd];
                nd++;
            }
            if (nd == 0)
                shape[nd++] = t->len;
            rc = ps_st_add(w, t->name, PS_ST_F32, shape, nd, x[i].values);
        } else {
            char kn[PS_ST_MAX_NAME + 8], vn[PS_ST_MAX_NAME + 8];
            snprintf(kn, sizeof(kn), "%s.keys", t->name);
            snprintf(vn, sizeof(vn), "%s.values", t->name);
            uint64_t ks[1] = {x[i].n}, vs[2] = {x[i].n, t->dim};
            rc = ps_st_add(w, kn, PS_ST_U64, ks, 1, x[i].keys);
            if (rc == PS_OK)
                rc = ps_st_add(w, vn, PS_ST_F32, vs, 2, x[i].values);
        }
        if (rc != PS_OK)
            fprintf(stderr,
                    "ps-ctl: table '%s' cannot be written (name too "
                    "long or clashing)\n",
                    t->name);
    }
    if (rc == PS_OK && names.data != NULL)
        rc = ps_st_set_meta(w, "tables", names.data);
    char err[512];
    if (rc == PS_OK && (rc = ps_st_write(w, o->out, err, sizeof(err))) != PS_OK)
        fprintf(stderr, "ps-ctl: %s\n", err);
    ps_strbuf_free(&names);
    ps_strbuf_free(&seen);
    ps_st_writer_free(w);
    return rc;
}

static int cmd_export(const ctl_opts *o)
{
    if (o->job == NULL || o->out == NULL) {
        fprintf(stderr, "ps-ctl export: --job and --out are required (see "
                        "--help)\n");
        return 2;
    }
    ps_client *c;
    int crc = connect_client(o, o->job, &c);
    if (crc != PS_OK)
        return connect_exit(crc);
    ps_table_info *tabs = NULL;
    size_t n = 0;
    exported *x = NULL;
    int rc = ps_client_list_tables(c, o->job, &tabs, &n);
    if (rc != PS_OK) {
        fprintf(stderr, "ps-ctl: listing tables: %s\n", ps_client_errmsg(c));
        goto out;
    }
    if (n == 0) {
        fprintf(stderr, "ps-ctl: job '%s' has no tables on these servers\n",
                o->job);
        rc = PS_ENOTABLE;
        goto out;
    }
    x = calloc(n, sizeof(*x));
    if (x == NULL) {
        rc = PS_ENOMEM;
        goto out;
    }
    uint64_t floats = 0;
    for (size_t i = 0; rc == PS_OK && i < n; i++) {
        int t;
        rc = ps_client_attach(c, tabs[i].name, &t);
        if (rc != PS_OK) {
            fprintf(stderr, "ps-ctl: %s\n", ps_client_errmsg(c));
            break;
        }
        rc = tabs[i].kind == PS_DENSE
                 ? pull_dense_table(c, t, &tabs[i], &x[i])
                 : scan_sparse_table(c, t, &tabs[i], &x[i]);
        floats += tabs[i].kind == PS_DENSE ? tabs[i].len
                                           : x[i].n * (uint64_t)tabs[i].dim;
    }
    if (rc == PS_OK)
        rc = write_export(o, tabs, n, x);
    if (rc == PS_OK)
        printf("exported job %s: %zu table(s), %llu values to %s\n", o->job, n,
               (unsigned long long)floats, o->out);
out:
    for (size_t i = 0; x && i < n; i++) {
        free(x[i].values);
        free(x[i].keys);
    }
    free(x);
    ps_client_free_table_list(tabs, n);
    ps_client_free(c);
    return rc == PS_OK ? 0 : 1;
}

/* ---- drop, shutdown ---- */

/* "1.5 MiB" for a byte count. */
static void human_bytes(uint64_t b, char *buf, size_t len)
{
    static const char *unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(buf, len, "%llu bytes", (unsigned long long)b);
    else
        snprintf(buf, len, "%.1f %s", v, unit[u]);
}

/* {"shard":i,"endpoint":...,"status":"OK"|"ENAME"[,"error":...]} for
 * shard i of the --servers list. */
static cJSON *shard_json(const ctl_opts *opts, size_t i,
                         const ps_shard_result *r)
{
    char endpoint[256];
    endpoint_at(opts->servers, i, endpoint, sizeof(endpoint));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "shard", (double)i);
    cJSON_AddStringToObject(o, "endpoint", endpoint);
    cJSON_AddStringToObject(o, "status", ps_errname(r->status));
    if (r->status != PS_OK)
        cJSON_AddStringToObject(o, "error", r->errmsg);
    return o;
}

/* Prints doc on one line; 1 (and a message) when cJSON ran out of memory. */
static int print_json(cJSON *doc)
{
    char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;
    cJSON_Delete(doc);
    if (text == NULL) {
        fprintf(stderr, "ps-ctl: out of memory writing JSON\n");
        return 1;
    }
    puts(text);
    free(text);
    return 0;
}

static int drop_json(const ctl_opts *o, const ps_shard_result *res, size_t n,
                     uint32_t tables, uint64_t bytes)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "job", o->job);
    if (o->table)
        cJSON_AddStringToObject(doc, "table", o->table);
    else
        cJSON_AddNullToObject(doc, "table");
    cJSON_AddNumberToObject(doc, "dropped_tables", tables);
    cJSON_AddNumberToObject(doc, "freed_bytes", (double)bytes);
    cJSON *arr = cJSON_AddArrayToObject(doc, "shards");
    for (size_t i = 0; arr && i < n; i++) {
        cJSON *sh = shard_json(o, i, &res[i]);
        cJSON_AddNumberToObject(sh, "tables", res[i].tables);
        cJSON_AddNumberToObject(sh, "bytes", (double)res[i].bytes);
        cJSON_AddItemToArray(arr, sh);
    }
    return print_json(doc);
}

static void drop_text(const ctl_opts *o, const ps_shard_result *res, size_t n,
                      uint32_t tables, uint64_t bytes)
{
    char hb[32];
    human_bytes(bytes, hb, sizeof(hb));
    if (o->table)
        printf("dropped table %s of job %s on %zu shard(s): %s freed\n",
               o->table, o->job, n, hb);
    else
        printf("dropped job %s: %u table(s) on %zu shard(s), %s freed\n",
               o->job, tables, n, hb);
    printf("%-5s %-28s %6s %14s  %s\n", "SHARD", "ENDPOINT", "TABLES", "BYTES",
           "RESULT");
    for (size_t i = 0; i < n; i++) {
        char ep[256];
        endpoint_at(o->servers, i, ep, sizeof(ep));
        const ps_shard_result *r = &res[i];
        printf("%-5zu %-28s %6u %14llu  ", i, ep, r->tables,
               (unsigned long long)r->bytes);
        if (r->status == PS_OK)
            printf("%s\n", r->tables ? "dropped" : "nothing here");
        else if (r->status == PS_ENOTABLE)
            printf("nothing here\n");
        else
            printf("%s: %s\n", ps_errname(r->status), r->errmsg);
    }
}

/* Exit: 0 dropped, 1 a shard failed (other than not holding it), 3 nothing
 * of that name on any shard (0 with --if-exists). */
static int cmd_drop(const ctl_opts *o)
{
    if (o->job == NULL) {
        fprintf(stderr, "ps-ctl drop: --job is required (see --help)\n");
        return 2;
    }
    if (o->table != NULL && *o->table == '\0') {
        fprintf(stderr, "ps-ctl drop: --table needs a name (leave it out to "
                        "drop the whole job)\n");
        return 2;
    }
    ps_client *c;
    int crc = connect_client(o, o->job, &c);
    if (crc != PS_OK)
        return connect_exit(crc);
    size_t n = (size_t)ps_client_num_shards(c);
    ps_shard_result *res = calloc(n, sizeof(*res));
    if (res == NULL) {
        fprintf(stderr, "ps-ctl: out of memory\n");
        ps_client_free(c);
        return 1;
    }
    ps_client_drop(c, o->job, o->table, res); /* judged per shard below */
    uint32_t tables = 0; /* a job's tables live on every shard: the most */
    uint64_t bytes = 0;
    size_t failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (res[i].status == PS_OK) {
            tables = res[i].tables > tables ? res[i].tables : tables;
            bytes += res[i].bytes;
        } else if (res[i].status != PS_ENOTABLE) {
            failed++;
        }
    }
    int rc = 0;
    if (o->json)
        rc = drop_json(o, res, n, tables, bytes);
    else if (tables > 0 || failed > 0)
        drop_text(o, res, n, tables, bytes);
    char what[700];
    if (o->table)
        snprintf(what, sizeof(what), "no table '%s' in job '%s'", o->table,
                 o->job);
    else
        snprintf(what, sizeof(what), "job '%s' has no tables", o->job);
    if (failed > 0) {
        for (size_t i = 0; i < n; i++) {
            if (res[i].status == PS_OK || res[i].status == PS_ENOTABLE)
                continue;
            char ep[256];
            endpoint_at(o->servers, i, ep, sizeof(ep));
            fprintf(stderr, "ps-ctl drop: shard %zu (%s): %s: %s\n", i, ep,
                    ps_errname(res[i].status), res[i].errmsg);
        }
        rc = 1;
    } else if (tables == 0 && o->if_exists) {
        if (!o->json)
            printf("nothing to drop: %s\n", what);
    } else if (tables == 0) {
        fprintf(stderr, "ps-ctl drop: %s on any shard: nothing dropped\n",
                what);
        rc = EXIT_NOTHING;
    }
    free(res);
    ps_client_free(c);
    return rc;
}

/* The RESULT column of a shard that did not do what was asked. */
static void no_answer_or_error(const ctl_opts *o, const ps_shard_result *r)
{
    if (r->status == PS_ETIMEDOUT)
        printf("no answer after %lld attempt(s) of %lld ms: not running, "
               "unreachable or stuck\n",
               (long long)o->retries + 1, (long long)o->timeout_ms);
    else
        printf("%s: %s\n", ps_errname(r->status), r->errmsg);
}

/* ps_client_shutdown() or ps_client_save(). */
typedef int (*ask_fn)(const ps_client_cfg *cfg, ps_shard_result **results,
                      size_t *n, char *errbuf, size_t errlen);

/* Sends one request to every listed server through fn. Returns -1 when
 * they were asked (*res: their answers, the caller's to free), else the
 * exit status, the reason printed. */
static int ask_servers(const ctl_opts *o, const char *cmd, ask_fn fn,
                       ps_shard_result **res, size_t *n, char *err,
                       size_t errlen)
{
    ps_client_cfg cfg;
    client_cfg(o, NULL, &cfg);
    *res = NULL;
    *n = 0;
    int rc = fn(&cfg, res, n, err, errlen);
    if (*res != NULL)
        return -1;
    fprintf(stderr, "ps-ctl %s: %s%s\n", cmd,
            rc == PS_EINVAL ? "--servers: " : "", err);
    return rc == PS_EINVAL ? 2 : 1; /* nobody was asked */
}

/* Exit: 0 every shard is stopping, 1 one did not confirm (others asked). */
static int cmd_shutdown(const ctl_opts *o)
{
    ps_shard_result *res;
    size_t n;
    char err[512];
    int done = ask_servers(o, "shutdown", ps_client_shutdown, &res, &n, err,
                           sizeof(err));
    if (done >= 0)
        return done;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += res[i].status == PS_OK || res[i].status == PS_ESHUTDOWN;
    int out = 0;
    if (o->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(doc, "shards");
        for (size_t i = 0; arr && i < n; i++) {
            cJSON *sh = shard_json(o, i, &res[i]);
            cJSON_AddBoolToObject(sh, "stopping",
                                  res[i].status == PS_OK ||
                                      res[i].status == PS_ESHUTDOWN);
            cJSON_AddItemToArray(arr, sh);
        }
        out = print_json(doc);
    } else {
        printf("%-5s %-28s  %s\n", "SHARD", "ENDPOINT", "RESULT");
        for (size_t i = 0; i < n; i++) {
            char ep[256];
            endpoint_at(o->servers, i, ep, sizeof(ep));
            printf("%-5zu %-28s  ", i, ep);
            if (res[i].status == PS_OK)
                printf("stopping\n");
            else if (res[i].status == PS_ESHUTDOWN)
                printf("stopping already\n");
            else
                no_answer_or_error(o, &res[i]);
        }
    }
    if (ok < n)
        fprintf(stderr,
                "ps-ctl shutdown: %zu of %zu shard(s) did not confirm (%s); "
                "the others were asked to stop\n",
                n - ok, n, err);
    free(res);
    return ok == n ? out : 1;
}

/* Exit: 0 every shard wrote a checkpoint, 1 one did not (others asked). */
static int cmd_save(const ctl_opts *o)
{
    ps_shard_result *res;
    size_t n;
    char err[512];
    int done =
        ask_servers(o, "save", ps_client_save, &res, &n, err, sizeof(err));
    if (done >= 0)
        return done;
    size_t ok = 0;
    int out = 0;
    for (size_t i = 0; i < n; i++)
        ok += res[i].status == PS_OK;
    if (o->json) {
        cJSON *doc = cJSON_CreateObject();
        cJSON *arr = cJSON_AddArrayToObject(doc, "shards");
        for (size_t i = 0; arr && i < n; i++) {
            cJSON *sh = shard_json(o, i, &res[i]);
            if (res[i].status == PS_OK) {
                cJSON_AddStringToObject(sh, "file", res[i].file);
                cJSON_AddNumberToObject(sh, "bytes", (double)res[i].bytes);
            }
            cJSON_AddItemToArray(arr, sh);
        }
        out = print_json(doc);
    } else {
        printf("%-5s %-28s %14s  %s\n", "SHARD", "ENDPOINT", "BYTES",
               "CHECKPOINT");
        for (size_t i = 0; i < n; i++) {
            char ep[256];
            endpoint_at(o->servers, i, ep, sizeof(ep));
            printf("%-5zu %-28s ", i, ep);
            if (res[i].status == PS_OK) {
                printf("%14llu  %s\n", (unsigned long long)res[i].bytes,
                       res[i].file);
            } else {
                printf("%14s  ", "-");
                no_answer_or_error(o, &res[i]);
            }
        }
    }
    if (ok < n)
        fprintf(stderr,
                "ps-ctl save: %zu of %zu shard(s) wrote no checkpoint (%s)\n",
                n - ok, n, err);
    free(res);
    return ok == n ? out : 1;
}

int main(int argc, char **argv)
{
    ps_log_set_name("ps-ctl");
    if (argc >= 2 &&
        (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
         strcmp(argv[1], "help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-') {
        fprintf(stderr, "ps-ctl: a command is needed: status, export, drop, "
                        "shutdown or save (see --help)\n");
        return 2;
    }
    const char *cmd = argv[1];
    static const char *const cmds[] = {"status", "export", "drop", "shutdown",
                                       "save"};
    int which = -1;
    for (int i = 0; i < 5; i++)
        if (strcmp(cmd, cmds[i]) == 0)
            which = i;
    if (which < 0) {
        fprintf(stderr,
                "ps-ctl: unknown command '%s' (status, export, drop, "
                "shutdown or save; see --help)\n",
                cmd);
        return 2;
    }
    ctl_opts o;
    memset(&o, 0, sizeof(o));
    char prog[32];
    snprintf(prog, sizeof(prog), "ps-ctl %s", cmd);
    int done = ps_config_main(settings, NSETTINGS, &o, argc - 1, argv + 1, prog,
                              usage);
    if (done >= 0)
        return done;
    int level = ps_log_parse_level(o.log_level);
    if (level < 0) {
        fprintf(stderr, "%s: --log-level: unknown level\n", prog);
        return 2;
    }
    ps_log_set_level((ps_log_level)level);
    if (o.servers == NULL) {
        fprintf(stderr, "%s: --servers is required (or SPARKPS_SERVERS)\n",
                prog);
        return 2;
    }
    switch (which) {
    case 0:
        return cmd_status(&o);
    case 1:
        return cmd_export(&o);
    case 2:
        return cmd_drop(&o);
    case 3:
        return cmd_shutdown(&o);
    default:
        return cmd_save(&o);
    }
}
