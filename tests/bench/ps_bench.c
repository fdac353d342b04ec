/* ps-bench: throughput and latency of libsparkps against running servers.
 *
 * It defines its own table (job "bench", a per-process table name, dropped
 * at the end), then runs `clients` threads, each with its own ps_client,
 * each keeping `inflight` requests outstanding: issue, wait for the oldest,
 * issue again. Completions inside the measured window (after the warmup)
 * count as ops and their issue-to-completion latency goes into a per-thread
 * histogram; the main thread merges them once the threads are joined, so
 * the threads share nothing but a read-only plan and a stop flag.
 *
 * With --shards-check it then proves that every shard applied every piece
 * exactly once: on a check table whose updates are exact in float32, every
 * client pushes a known number of times and the pulled values must equal
 * the expected sum bit for bit. */
#define _POSIX_C_SOURCE 200809L

#include "bench_util.h"
#include "common/config.h"
#include "common/dtype.h"
#include "common/rng.h"
#include "common/strbuf.h"
#include "common/timeutil.h"
#include "sparkps.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BENCH_MAX_CLIENTS 256
#define BENCH_MAX_INFLIGHT 1024
#define BENCH_MAX_BYTES (UINT64_C(1) << 30)  /* one request's payload */
#define BENCH_MAX_MEMORY (UINT64_C(8) << 30) /* all buffers together */
#define BENCH_ERR_MAX 512
#define BENCH_NAME_MAX 128

/* The check table's SGD step: a power of two, so w -= lr * 1 is exact in
 * float32 (and f16/bf16 on the wire) for the few pushes the check makes. */
#define CHECK_LR (1.0 / 1048576.0)
#define CHECK_PUSHES 2       /* per client */
#define CHECK_MAX_CLIENTS 64 /* n * CHECK_PUSHES stays exact in bf16 */
#define CHECK_MAX_KEYS 4096

typedef enum bench_op { OP_PUSH, OP_PULL, OP_PUSHPULL } bench_op;

typedef struct bench_cfg {
    const char *servers;
    const char *op;
    int64_t bytes;
    double seconds;
    double warmup;
    int sparse;
    int64_t keys;
    int64_t dim;
    int64_t key_space;
    int64_t clients;
    int64_t inflight;
    int shards_check;
    const char *dtype;
    const char *optimizer;
    double lr;
    const char *job;
    const char *table;
    int64_t seed;
    int64_t timeout_ms;
    int64_t piece_bytes;
    int keep_table;
    int json;
} bench_cfg;

static const ps_setting bench_settings[] = {
    {"servers", PS_SET_STR, NULL, 0, 0, offsetof(bench_cfg, servers), "LIST",
     "comma-separated shard endpoints, in shard order (required)"},
    {"op", PS_SET_STR, "pushpull", 0, 0, offsetof(bench_cfg, op),
     "push|pull|pushpull", "request type to measure"},
    {"bytes", PS_SET_INT, "1048576", 4, (double)BENCH_MAX_BYTES,
     offsetof(bench_cfg, bytes), "N",
     "dense: payload per request, a multiple of 4 (table of N/4 floats); "
     "ignored with --sparse"},
    {"seconds", PS_SET_DOUBLE, "3", 0.01, 86400, offsetof(bench_cfg, seconds),
     "S", "length of the measured window"},
    {"warmup", PS_SET_DOUBLE, "0.5", 0, 3600, offsetof(bench_cfg, warmup), "S",
     "unmeasured run before the window"},
    {"sparse", PS_SET_BOOL, "false", 0, 1, offsetof(bench_cfg, sparse), NULL,
     "sparse table: --keys random keys of --dim floats per request"},
    {"keys", PS_SET_INT, "1024", 1, 16777216, offsetof(bench_cfg, keys), "K",
     "sparse: keys per request (bytes = K*D*4)"},
    {"dim", PS_SET_INT, "16", 1, 65536, offsetof(bench_cfg, dim), "D",
     "sparse: floats per key"},
    {"key-space", PS_SET_INT, "1048576", 0, 9.2e18,
     offsetof(bench_cfg, key_space), "N",
     "sparse: keys are drawn from N distinct random uint64 values (bounds "
     "the server's memory); 0: the whole uint64 range"},
    {"clients", PS_SET_INT, "1", 1, BENCH_MAX_CLIENTS,
     offsetof(bench_cfg, clients), "C",
     "client threads, each with its own connection to every shard"},
    {"inflight", PS_SET_INT, "1", 1, BENCH_MAX_INFLIGHT,
     offsetof(bench_cfg, inflight), "D",
     "requests each client keeps outstanding"},
    {"shards-check", PS_SET_BOOL, "false", 0, 1,
     offsetof(bench_cfg, shards_check), NULL,
     "afterwards, check that every shard applied every push exactly once"},
    {"dtype", PS_SET_STR, "f32", 0, 0, offsetof(bench_cfg, dtype),
     "f32|f16|bf16", "value encoding on the wire"},
    {"optimizer", PS_SET_STR, "sgd", 0, 0, offsetof(bench_cfg, optimizer),
     "sgd|adagrad|adam|ftrl", "optimizer the server applies to pushes"},
    {"lr", PS_SET_DOUBLE, "1e-6", 0, 1e6, offsetof(bench_cfg, lr), "X",
     "learning rate of the bench table"},
    {"job", PS_SET_STR, "bench", 0, 0, offsetof(bench_cfg, job), "NAME",
     "job namespace of the bench table"},
    {"table", PS_SET_STR, "", 0, 0, offsetof(bench_cfg, table), "NAME",
     "bench table name (empty: bench-<pid>, so runs never collide)"},
    {"seed", PS_SET_INT, "1", 0, 9.2e18, offsetof(bench_cfg, seed), "N",
     "seed of the sparse key generator"},
    {"bench-timeout-ms", PS_SET_INT, "0", 0, 3600000,
     offsetof(bench_cfg, timeout_ms), "MS",
     "client timeout per attempt (0: the library's default)"},
    {"piece-bytes", PS_SET_INT, "0", 0, 1073741824.0,
     offsetof(bench_cfg, piece_bytes), "BYTES",
     "dense pieces are pipelined in at most this many bytes (0: the "
     "library's default)"},
    {"keep-table", PS_SET_BOOL, "false", 0, 1, offsetof(bench_cfg, keep_table),
     NULL, "leave the bench table on the servers"},
    {"json", PS_SET_BOOL, "false", 0, 1, offsetof(bench_cfg, json), NULL,
     "print one JSON object instead of a summary line"},
};
#define N_SETTINGS (sizeof(bench_settings) / sizeof(bench_settings[0]))

/* What every thread runs; read-only once the threads start. */
typedef struct bench_plan {
    bench_op op;
    int sparse;
    uint64_t len;       /* dense: elements per request (the whole table) */
    size_t nkeys;       /* sparse: keys per request */
    uint64_t values;    /* floats per request (len, or nkeys * dim) */
    uint64_t key_space; /* 0: full uint64 range */
    uint64_t seed;
    int inflight;
    const float *grad; /* shared gradient, never written after set-up */
    int64_t measure_from, measure_to; /* ps_now_us() window */
    atomic_int *stop; /* set by a failing thread: the others stop early */
} bench_plan;

typedef struct bench_worker {
    const bench_plan *plan;
    ps_client *client;
    int table;
    int index;
    pthread_t thread;
    int started;
    ps_request **req;   /* [inflight] */
    int64_t *issued_at; /* [inflight] */
    float **out;        /* [inflight] pull buffers, or NULL for push */
    uint64_t **keys;    /* [inflight] sparse keys, or NULL for dense */
    uint64_t rng;       /* key generator state */
    uint64_t ops;       /* completed inside the window */
    ps_bench_hist lat;
    int err; /* first error, PS_OK if none */
    char errmsg[BENCH_ERR_MAX];
} bench_worker;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ps-bench --servers LIST [options]\n"
            "Measures push/pull/pushpull throughput and latency of\n"
            "libsparkps against running ps-server shards: C client threads\n"
            "each keep D requests outstanding for S seconds after a warmup.\n"
            "GB/s counts payload pushed plus pulled (pushpull: 2*bytes per\n"
            "op). Exit status: 0 ok, 1 a request or the shards check failed,\n"
            "2 bad options.\n\noptions:\n");
    ps_config_usage(out, bench_settings, N_SETTINGS);
}

static int parse_op(const char *s, bench_op *op)
{
    if (strcmp(s, "push") == 0)
        *op = OP_PUSH;
    else if (strcmp(s, "pull") == 0)
        *op = OP_PULL;
    else if (strcmp(s, "pushpull") == 0)
        *op = OP_PUSHPULL;
    else
        return PS_EINVAL;
    return PS_OK;
}

static int parse_optim(const char *s, ps_optim_kind *k)
{
    if (strcmp(s, "sgd") == 0)
        *k = PS_OPT_SGD;
    else if (strcmp(s, "adagrad") == 0)
        *k = PS_OPT_ADAGRAD;
    else if (strcmp(s, "adam") == 0)
        *k = PS_OPT_ADAM;
    else if (strcmp(s, "ftrl") == 0)
        *k = PS_OPT_FTRL; /* server defaults: beta 1, l1 = l2 = 0 */
    else
        return PS_EINVAL;
    return PS_OK;
}

static int count_endpoints(const char *list)
{
    int n = 1;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    return n;
}

static uint64_t next_key(bench_worker *w)
{
    uint64_t r = ps_mix64(w->rng++);
    /* Reducing then re-mixing keeps keys spread over the whole uint64
     * range (as real hashed feature ids are) while bounding how many
     * distinct ones the servers must hold. */
    return w->plan->key_space ? ps_mix64(r % w->plan->key_space) : r;
}

static void worker_fail(bench_worker *w, int rc, const char *what)
{
    if (w->err == PS_OK) {
        w->err = rc;
        snprintf(w->errmsg, sizeof(w->errmsg), "client %d: %s: %s (%s)",
                 w->index, what, ps_strerror(rc), ps_client_errmsg(w->client));
    }
    atomic_store(w->plan->stop, 1);
}

/* Issues one request into ring slot `slot`. */
static int worker_issue(bench_worker *w, int slot)
{
    const bench_plan *p = w->plan;
    ps_request **req = &w->req[slot];
    int rc;
    if (p->sparse) {
        uint64_t *keys = w->keys[slot];
        for (size_t i = 0; i < p->nkeys; i++)
            keys[i] = next_key(w);
        w->issued_at[slot] = ps_now_us(); /* key generation not counted */
        switch (p->op) {
        case OP_PUSH:
            rc = ps_client_push_sparse(w->client, w->table, keys, p->nkeys,
                                       p->grad, req);
            break;
        case OP_PULL:
            rc = ps_client_pull_sparse(w->client, w->table, keys, p->nkeys,
                                       w->out[slot], req);
            break;
        default:
            rc = ps_client_pushpull_sparse(w->client, w->table, keys, p->nkeys,
                                           p->grad, w->out[slot], req);
        }
    } else {
        w->issued_at[slot] = ps_now_us();
        switch (p->op) {
        case OP_PUSH:
            rc = ps_client_push(w->client, w->table, 0, p->len, p->grad, req);
            break;
        case OP_PULL:
            rc = ps_client_pull(w->client, w->table, 0, p->len, w->out[slot],
                                req);
            break;
        default:
            rc = ps_client_pushpull(w->client, w->table, 0, p->len, p->grad,
                                    w->out[slot], req);
        }
    }
    if (rc != PS_OK)
        worker_fail(w, rc, "issue");
    return rc;
}

static void *worker_main(void *arg)
{
    bench_worker *w = arg;
    const bench_plan *p = w->plan;
    int head = 0, outstanding = 0;
    for (int i = 0; i < p->inflight; i++) {
        if (worker_issue(w, i) != PS_OK)
            return NULL;
        outstanding++;
    }
    /* Requests complete in any order on the servers, but waiting for the
     * oldest first is what a training loop does and keeps the ring simple;
     * a later request that finished early is collected right after. */
    while (outstanding > 0) {
        int rc = ps_client_wait(w->client, w->req[head], -1);
        int64_t now = ps_now_us();
        w->req[head] = NULL;
        outstanding--;
        if (rc != PS_OK) {
            worker_fail(w, rc, "wait");
            return NULL;
        }
        if (now >= p->measure_from && now < p->measure_to) {
            ps_bench_hist_add(&w->lat, (uint64_t)(now - w->issued_at[head]));
            w->ops++;
        }
        if (now < p->measure_to && !atomic_load(p->stop)) {
            if (worker_issue(w, head) != PS_OK)
                return NULL;
            outstanding++;
        }
        head = (head + 1) % p->inflight;
    }
    return NULL;
}

static void worker_free_buffers(bench_worker *w, int inflight)
{
    for (int i = 0; i < inflight; i++) {
        if (w->out)
            free(w->out[i]);
        if (w->keys)
            free(w->keys[i]);
    }
    free(w->out);
    free(w->keys);
    free(w->req);
    free(w->issued_at);
}

static int worker_alloc_buffers(bench_worker *w, const bench_plan *p)
{
    int n = p->inflight;
    w->req = calloc((size_t)n, sizeof(*w->req));
    w->issued_at = calloc((size_t)n, sizeof(*w->issued_at));
    if (w->req == NULL || w->issued_at == NULL)
        return PS_ENOMEM;
    if (p->op != OP_PUSH) {
        w->out = calloc((size_t)n, sizeof(*w->out));
        if (w->out == NULL)
            return PS_ENOMEM;
        for (int i = 0; i < n; i++)
            if ((w->out[i] = calloc(p->values, sizeof(float))) == NULL)
                return PS_ENOMEM;
    }
    if (p->sparse) {
        w->keys = calloc((size_t)n, sizeof(*w->keys));
        if (w->keys == NULL)
            return PS_ENOMEM;
        for (int i = 0; i < n; i++)
            if ((w->keys[i] = calloc(p->nkeys, sizeof(uint64_t))) == NULL)
                return PS_ENOMEM;
    }
    return PS_OK;
}

/* Pushes a gradient of ones CHECK_PUSHES times from each of `n` clients
 * (all outstanding at once, so the shards see interleaved clients), then
 * pulls through client 0 and compares with the exact expected value. */
static int shards_check_run(ps_client **clients, int n, const int *tables,
                            const bench_plan *p, uint32_t dim, char *err,
                            size_t errlen)
{
    int rc = PS_ENOMEM;
    uint64_t values = p->sparse ? p->nkeys * dim : p->len;
    float *ones = malloc(values * sizeof(float));
    float *got = malloc(values * sizeof(float));
    uint64_t *keys = p->sparse ? malloc(p->nkeys * sizeof(uint64_t)) : NULL;
    ps_request **req = calloc((size_t)n * CHECK_PUSHES, sizeof(*req));
    int issued = 0;
    if (ones == NULL || got == NULL || req == NULL || (p->sparse && !keys)) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    for (uint64_t i = 0; i < values; i++)
        ones[i] = 1.0f;
    /* Distinct keys (ps_mix64 is a bijection) that the timed run, drawing
     * from another stream, practically never touched. */
    for (size_t i = 0; p->sparse && i < p->nkeys; i++)
        keys[i] = ps_mix64(~p->seed ^ (UINT64_C(0x5eed) << 40) ^ i);
    for (int r = 0; r < CHECK_PUSHES; r++) {
        for (int c = 0; c < n; c++) {
            ps_request **slot = &req[issued];
            rc = p->sparse ? ps_client_push_sparse(clients[c], tables[c], keys,
                                                   p->nkeys, ones, slot)
                           : ps_client_push(clients[c], tables[c], 0, p->len,
                                            ones, slot);
            if (rc != PS_OK) {
                snprintf(err, errlen, "check push: %s (%s)", ps_strerror(rc),
                         ps_client_errmsg(clients[c]));
                goto out;
            }
            issued++;
        }
    }
    for (int i = 0; i < issued; i++) {
        ps_client *c = clients[i % n];
        int wrc = ps_client_wait(c, req[i], -1);
        req[i] = NULL;
        if (wrc != PS_OK && rc == PS_OK) {
            rc = wrc;
            snprintf(err, errlen, "check push: %s (%s)", ps_strerror(wrc),
                     ps_client_errmsg(c));
        }
    }
    issued = 0;
    if (rc != PS_OK)
        goto out;
    ps_request *pr = NULL;
    rc = p->sparse ? ps_client_pull_sparse(clients[0], tables[0], keys,
                                           p->nkeys, got, &pr)
                   : ps_client_pull(clients[0], tables[0], 0, p->len, got, &pr);
    if (rc == PS_OK)
        rc = ps_client_wait(clients[0], pr, -1);
    if (rc != PS_OK) {
        snprintf(err, errlen, "check pull: %s (%s)", ps_strerror(rc),
                 ps_client_errmsg(clients[0]));
        goto out;
    }
    float want = (float)(-(double)n * CHECK_PUSHES * CHECK_LR);
    for (uint64_t i = 0; i < values; i++) {
        if (got[i] != want) {
            if (p->sparse)
                snprintf(err, errlen,
                         "key %llu (index %llu) holds %.9g, expected %.9g "
                         "after %d pushes of 1 at lr 2^-20",
                         (unsigned long long)keys[i / dim],
                         (unsigned long long)(i / dim), (double)got[i],
                         (double)want, n * CHECK_PUSHES);
            else
                snprintf(err, errlen,
                         "element %llu holds %.9g, expected %.9g after %d "
                         "pushes of 1 at lr 2^-20",
                         (unsigned long long)i, (double)got[i], (double)want,
                         n * CHECK_PUSHES);
            rc = PS_ERANGE;
            goto out;
        }
    }
    rc = PS_OK;
out:
    /* Requests still outstanding after an error borrow `ones`: collect them
     * before it is freed. */
    for (int i = 0; i < issued; i++)
        if (req[i])
            ps_client_wait(clients[i % n], req[i], -1);
    free(ones);
    free(got);
    free(keys);
    free(req);
    return rc;
}

/* Defines a check table beside the bench table, runs the check and drops
 * the check table again. */
static int shards_check(ps_client **clients, int nclients, const char *servers,
                        const bench_plan *p, const ps_table_spec *bench_spec,
                        char *err, size_t errlen)
{
    int n = nclients < CHECK_MAX_CLIENTS ? nclients : CHECK_MAX_CLIENTS;
    int tables[CHECK_MAX_CLIENTS];
    char name[BENCH_NAME_MAX + 8];
    int want_shards = count_endpoints(servers);
    int got_shards = ps_client_num_shards(clients[0]);
    bench_plan cp = *p;
    int rc;
    if (got_shards != want_shards) {
        snprintf(err, errlen, "client sees %d shards, --servers lists %d",
                 got_shards, want_shards);
        return PS_EMISMATCH;
    }
    ps_table_spec spec = *bench_spec;
    snprintf(name, sizeof(name), "%s-check", bench_spec->name);
    spec.name = name;
    memset(&spec.init, 0, sizeof(spec.init));
    memset(&spec.optim, 0, sizeof(spec.optim));
    spec.init.kind = PS_INIT_ZEROS;
    spec.optim.kind = PS_OPT_SGD;
    spec.optim.lr = CHECK_LR;
    if (cp.sparse && cp.nkeys > CHECK_MAX_KEYS)
        cp.nkeys = CHECK_MAX_KEYS;
    for (int c = 0; c < n; c++) {
        rc = ps_client_define(clients[c], &spec, &tables[c]);
        if (rc != PS_OK) {
            snprintf(err, errlen, "defining %s: %s (%s)", name, ps_strerror(rc),
                     ps_client_errmsg(clients[c]));
            return rc;
        }
    }
    rc = shards_check_run(clients, n, tables, &cp, spec.dim, err, errlen);
    int drc = ps_client_drop_table(clients[0], name);
    if (rc == PS_OK && drc != PS_OK) {
        snprintf(err, errlen, "dropping %s: %s (%s)", name, ps_strerror(drc),
                 ps_client_errmsg(clients[0]));
        rc = drc;
    }
    return rc;
}

static int print_result(const bench_cfg *cfg, const bench_plan *p,
                        const ps_bench_result *r, int dtype, const char *table,
                        const char *check)
{
    if (!cfg->json) {
        ps_bench_print_human(r);
        if (check)
            printf("shards check: %s\n", check);
        return PS_OK;
    }
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    ps_strbuf_add(&b, "{", 1);
    ps_bench_json_fields(&b, r);
    /* What crossed the wire: values in the wire dtype, plus sparse keys. */
    double wire_per_op =
        (double)r->moved_per_op / 4.0 * (double)ps_dtype_size(dtype);
    if (p->sparse)
        wire_per_op += (double)(p->nkeys * sizeof(uint64_t));
    ps_strbuf_printf(&b,
                     ",\"wire_gbytes_per_s\":%.4f,\"keys\":%llu,\"dim\":%llu,"
                     "\"dtype\":\"%s\",\"optimizer\":",
                     ps_bench_ops_per_s(r) * wire_per_op / 1e9,
                     (unsigned long long)(p->sparse ? p->nkeys : 0),
                     (unsigned long long)(p->sparse ? cfg->dim : 0),
                     ps_dtype_name(dtype));
    ps_strbuf_json_str(&b, cfg->optimizer);
    ps_strbuf_add(&b, ",\"table\":", 9);
    ps_strbuf_json_str(&b, table);
    if (check) {
        ps_strbuf_add(&b, ",\"shards_check\":", 16);
        ps_strbuf_json_str(&b, check);
    }
    ps_strbuf_add(&b, "}\n", 2);
    if (ps_strbuf_failed(&b)) {
        ps_strbuf_free(&b);
        return PS_ENOMEM;
    }
    fputs(b.data, stdout);
    ps_strbuf_free(&b);
    return PS_OK;
}

int main(int argc, char **argv)
{
    bench_cfg cfg;
    bench_plan plan;
    ps_config_result res;
    char err[BENCH_ERR_MAX];
    char table_name[BENCH_NAME_MAX];
    ps_client **clients = NULL;
    bench_worker *workers = NULL;
    float *grad = NULL;
    ps_bench_hist *lat = NULL;
    atomic_int stop;
    int exit_code = 1, nclients = 0, table_defined = 0;
    int dtype;
    ps_optim_kind optim;
    const char *check = NULL;

    memset(&cfg, 0, sizeof(cfg));
    memset(&plan, 0, sizeof(plan));
    atomic_init(&stop, 0);
    if (ps_config_parse(bench_settings, N_SETTINGS, &cfg, argc, argv, &res, err,
                        sizeof(err)) != PS_OK) {
        fprintf(stderr, "ps-bench: %s\n", err);
        return 2;
    }
    if (res.help) {
        usage(stdout);
        return 0;
    }
    if (res.positional < argc) {
        fprintf(stderr, "ps-bench: unexpected argument '%s' (see --help)\n",
                argv[res.positional]);
        return 2;
    }
    if (cfg.servers == NULL || cfg.servers[0] == '\0') {
        fprintf(stderr, "ps-bench: --servers (or SPARKPS_SERVERS) is "
                        "required\n");
        return 2;
    }
    if (parse_op(cfg.op, &plan.op) != PS_OK) {
        fprintf(stderr,
                "ps-bench: --op must be push, pull or pushpull, not "
                "'%s'\n",
                cfg.op);
        return 2;
    }
    if ((dtype = ps_dtype_parse(cfg.dtype)) < 0) {
        fprintf(stderr,
                "ps-bench: --dtype must be f32, f16 or bf16, not "
                "'%s'\n",
                cfg.dtype);
        return 2;
    }
    if (parse_optim(cfg.optimizer, &optim) != PS_OK) {
        fprintf(stderr,
                "ps-bench: --optimizer must be sgd, adagrad, adam or ftrl, "
                "not '%s'\n",
                cfg.optimizer);
        return 2;
    }
    plan.sparse = cfg.sparse;
    if (plan.sparse) {
        plan.nkeys = (size_t)cfg.keys;
        plan.values = (uint64_t)cfg.keys * (uint64_t)cfg.dim;
        if (plan.values * 4 > BENCH_MAX_BYTES) {
            fprintf(stderr, "ps-bench: --keys * --dim * 4 is over %llu bytes\n",
                    (unsigned long long)BENCH_MAX_BYTES);
            return 2;
        }
    } else {
        if (cfg.bytes % 4 != 0) {
            fprintf(stderr,
                    "ps-bench: --bytes %lld is not a multiple of 4 "
                    "(the table holds float32)\n",
                    (long long)cfg.bytes);
            return 2;
        }
        plan.len = (uint64_t)cfg.bytes / 4;
        plan.values = plan.len;
    }
    uint64_t req_bytes = plan.values * 4;
    uint64_t per_slot = (plan.op != OP_PUSH ? req_bytes : 0) +
                        (plan.sparse ? plan.nkeys * sizeof(uint64_t) : 0);
    if (per_slot * (uint64_t)cfg.clients * (uint64_t)cfg.inflight >
        BENCH_MAX_MEMORY) {
        fprintf(stderr,
                "ps-bench: --clients * --inflight buffers would need "
                "more than %llu GiB\n",
                (unsigned long long)(BENCH_MAX_MEMORY >> 30));
        return 2;
    }
    plan.key_space = (uint64_t)cfg.key_space;
    plan.seed = (uint64_t)cfg.seed;
    plan.inflight = (int)cfg.inflight;
    plan.stop = &stop;
    if (cfg.table[0])
        snprintf(table_name, sizeof(table_name), "%s", cfg.table);
    else
        snprintf(table_name, sizeof(table_name), "bench-%ld", (long)getpid());

    ps_table_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.name = table_name;
    spec.kind = plan.sparse ? PS_SPARSE : PS_DENSE;
    spec.len = plan.sparse ? 0 : plan.len;
    spec.dim = plan.sparse ? (uint32_t)cfg.dim : 0;
    spec.init.kind = PS_INIT_ZEROS;
    spec.optim.kind = optim;
    spec.optim.lr = cfg.lr;

    grad = malloc(req_bytes);
    lat = malloc(sizeof(*lat));
    clients = calloc((size_t)cfg.clients, sizeof(*clients));
    workers = calloc((size_t)cfg.clients, sizeof(*workers));
    if (grad == NULL || lat == NULL || clients == NULL || workers == NULL) {
        fprintf(stderr, "ps-bench: out of memory\n");
        goto out;
    }
    /* Small and finite: the server rejects NaN/Inf, and a run of any length
     * keeps the weights far from overflow at lr 1e-6. */
    for (uint64_t i = 0; i < plan.values; i++)
        grad[i] = 1.0f;
    plan.grad = grad;
    ps_bench_hist_init(lat);

    ps_client_cfg ccfg;
    ps_client_cfg_init(&ccfg);
    ccfg.servers = cfg.servers;
    ccfg.job = cfg.job;
    ccfg.worker_id = -1;
    ccfg.timeout_ms = (int)cfg.timeout_ms;
    ccfg.dtype = (ps_dtype)dtype;
    ccfg.max_piece_bytes = (uint64_t)cfg.piece_bytes;
    for (nclients = 0; nclients < (int)cfg.clients; nclients++) {
        int i = nclients;
        if (ps_client_new(&clients[i], &ccfg, err, sizeof(err)) != PS_OK) {
            fprintf(stderr, "ps-bench: client %d cannot connect: %s\n", i, err);
            goto out;
        }
        bench_worker *w = &workers[i];
        w->plan = &plan;
        w->client = clients[i];
        w->index = i;
        w->rng = ps_mix64(plan.seed ^ ps_mix64((uint64_t)i + 1));
        ps_bench_hist_init(&w->lat);
        int rc = ps_client_define(clients[i], &spec, &w->table);
        if (rc != PS_OK) {
            fprintf(stderr, "ps-bench: defining table %s/%s: %s (%s)\n",
                    cfg.job, table_name, ps_strerror(rc),
                    ps_client_errmsg(clients[i]));
            goto out;
        }
        table_defined = 1;
        if (worker_alloc_buffers(w, &plan) != PS_OK) {
            fprintf(stderr, "ps-bench: out of memory for client buffers\n");
            goto out;
        }
    }

    int64_t start = ps_now_us();
    plan.measure_from = start + (int64_t)(cfg.warmup * 1e6);
    plan.measure_to = plan.measure_from + (int64_t)(cfg.seconds * 1e6);
    for (int i = 0; i < nclients; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main,
                           &workers[i]) != 0) {
            fprintf(stderr, "ps-bench: cannot start client thread %d\n", i);
            atomic_store(&stop, 1);
            break;
        }
        workers[i].started = 1;
    }
    int failed = 0;
    uint64_t ops = 0, retries = 0;
    for (int i = 0; i < nclients; i++) {
        if (!workers[i].started) {
            failed = 1;
            continue;
        }
        pthread_join(workers[i].thread, NULL);
        workers[i].started = 0;
        if (workers[i].err != PS_OK) {
            fprintf(stderr, "ps-bench: %s\n", workers[i].errmsg);
            failed = 1;
        }
        ps_bench_hist_merge(lat, &workers[i].lat);
        ops += workers[i].ops;
        retries += ps_client_retries(clients[i]);
    }
    if (failed) {
        /* The servers may be gone: do not block on dropping the table. */
        table_defined = 0;
        goto out;
    }

    if (cfg.shards_check) {
        if (shards_check(clients, nclients, cfg.servers, &plan, &spec, err,
                         sizeof(err)) != PS_OK) {
            fprintf(stderr, "ps-bench: shards check failed: %s\n", err);
            check = "failed";
        } else {
            check = "ok";
        }
    }

    ps_bench_result r = {
        .op = cfg.op,
        .bytes = req_bytes,
        .moved_per_op = plan.op == OP_PUSHPULL ? 2 * req_bytes : req_bytes,
        .shards = ps_client_num_shards(clients[0]),
        .clients = nclients,
        .inflight = plan.inflight,
        .sparse = plan.sparse,
        .ops = ops,
        .seconds = cfg.seconds,
        .retries = retries,
        .lat = lat,
    };
    if (print_result(&cfg, &plan, &r, dtype, table_name, check) != PS_OK) {
        fprintf(stderr, "ps-bench: out of memory\n");
        goto out;
    }
    if (ops == 0) {
        fprintf(stderr, "ps-bench: no request completed in the measured "
                        "window\n");
        goto out;
    }
    if (check == NULL || strcmp(check, "ok") == 0)
        exit_code = 0;
out:
    if (table_defined && !cfg.keep_table && clients && clients[0]) {
        int rc = ps_client_drop_table(clients[0], table_name);
        if (rc != PS_OK)
            fprintf(stderr, "ps-bench: dropping table %s/%s: %s (%s)\n",
                    cfg.job, table_name, ps_strerror(rc),
                    ps_client_errmsg(clients[0]));
    }
    /* Clients first: freeing one abandons its outstanding requests, after
     * which nothing refers to the buffers any more. */
    for (int i = 0; clients && i < (int)cfg.clients; i++)
        ps_client_free(clients[i]);
    for (int i = 0; workers && i < (int)cfg.clients; i++)
        worker_free_buffers(&workers[i], plan.inflight);
    free(workers);
    free(clients);
    free(grad);
    free(lat);
    if (fflush(stdout) != 0)
        exit_code = 1;
    return exit_code;
}
