/* fault_load: exact-sum load for the fault tests (fault_load_exact_sum.sh).
 *
 * N client connections (one ps_client and one thread each, tools without a
 * worker id) push for S seconds, each with K steps in flight: every step
 * is a dense push (pushpull on odd steps) of W elements at an offset that
 * moves with the step, so pushes cross the shard boundary, and a sparse
 * push of 16 keys of dimension 4. Gradients are small integers and the
 * tables run SGD with lr = 1, so every float sum is exact in any order:
 * after the run the tables must equal the negated sum of what the clients
 * pushed, element by element -- nothing lost, nothing applied twice, even
 * when replies are lost, requests retried and servers restarted meanwhile.
 *
 * Prints "running clients=N" on stdout once every client has connected
 * and defined the tables (the test script starts its faults after it),
 * then one summary line of key=value figures: clients, seconds, steps,
 * requests_per_s (dense + sparse pushes acknowledged per second), retries
 * (pieces re-sent after a timeout), failures, mismatches. Exit status 0
 * when every push succeeded, the tables are exact and at least
 * --min-retries retries fired; 1 otherwise; 2 for bad usage. */
#include "sparkps.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DENSE_LEN 4096
#define PUSH_LEN 256 /* dense elements per push */
#define KEY_POOL 512
#define KEYS_PER_PUSH 16
#define DIM 4
#define MAX_CLIENTS 256
#define MAX_INFLIGHT 64

typedef struct load_cfg {
    const char *servers;
    const char *job;
    int clients;
    double seconds;
    int timeout_ms;
    int retries;
    int inflight;
    long long min_retries;
} load_cfg;

typedef struct load_client {
    const load_cfg *cfg;
    int index;
    uint64_t steps; /* steps 0..steps-1 were made (each two pushes) */
    uint64_t retries;
    int failures;
    char err[512];
} load_client;

/* ---- what is pushed: a pure function of (client, step) ---- */

static float grad_value(int c, uint64_t k, int i)
{
    return (float)((int)((c * 7 + (int)(k % 1000) * 3 + i) % 5) - 2);
}

static uint64_t dense_offset(int c, uint64_t k)
{
    return ((uint64_t)c * 977 + k * 131) % (DENSE_LEN - PUSH_LEN + 1);
}

static int key_index(int c, uint64_t k, int m)
{
    return (int)(((uint64_t)c * 31 + k * 17 + (uint64_t)m) % KEY_POOL);
}

static uint64_t key_of(int j)
{
    return 0x9e3779b97f4a7c15ULL * (uint64_t)(j + 1); /* spread keys */
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- clients ---- */

static ps_client *load_connect(const load_cfg *cfg, char *err, size_t len)
{
    ps_client_cfg cc;
    ps_client_cfg_init(&cc);
    cc.servers = cfg->servers;
    cc.job = cfg->job;
    cc.timeout_ms = cfg->timeout_ms;
    cc.retries = cfg->retries;
    ps_client *c = NULL;
    return ps_client_new(&c, &cc, err, len) == PS_OK ? c : NULL;
}

static int define_tables(ps_client *c, int *dense, int *sparse)
{
    ps_table_spec s;
    memset(&s, 0, sizeof(s));
    s.name = "w";
    s.kind = PS_DENSE;
    s.len = DENSE_LEN;
    s.optim.kind = PS_OPT_SGD;
    s.optim.lr = 1.0;
    int rc = ps_client_define(c, &s, dense);
    s.name = "emb";
    s.kind = PS_SPARSE;
    s.len = 0;
    s.dim = DIM;
    return rc == PS_OK ? ps_client_define(c, &s, sparse) : rc;
}

/* One in-flight step: its buffers stay untouched until both complete. */
typedef struct slot {
    float grad[PUSH_LEN], out[PUSH_LEN];
    uint64_t keys[KEYS_PER_PUSH];
    float sgrad[KEYS_PER_PUSH * DIM];
    ps_request *req[2];
} slot;

static pthread_barrier_t connected;
static double run_end; /* set by main once every client is connected */

static int settle(load_client *lc, ps_client *c, slot *s)
{
    int ok = 1;
    for (int t = 0; t < 2; t++) {
        if (s->req[t] != NULL && ps_client_wait(c, s->req[t], -1) != PS_OK) {
            snprintf(lc->err, sizeof(lc->err), "%s", ps_client_errmsg(c));
            lc->failures++;
            ok = 0;
        }
        s->req[t] = NULL;
    }
    return ok;
}

static void *client_main(void *arg)
{
    load_client *lc = arg;
    const load_cfg *cfg = lc->cfg;
    int dense = -1, sparse = -1;
    ps_client *c = load_connect(cfg, lc->err, sizeof(lc->err));
    if (c == NULL || define_tables(c, &dense, &sparse) != PS_OK) {
        if (c != NULL)
            snprintf(lc->err, sizeof(lc->err), "%s", ps_client_errmsg(c));
        lc->failures++;
    }
    pthread_barrier_wait(&connected);
    pthread_barrier_wait(&connected); /* main has set run_end */
    slot *slots = calloc((size_t)cfg->inflight, sizeof(*slots));
    if (slots == NULL && lc->failures == 0) {
        snprintf(lc->err, sizeof(lc->err), "out of memory");
        lc->failures++;
    }
    uint64_t k = 0;
    while (lc->failures == 0 && slots != NULL && now_s() < run_end) {
        slot *s = &slots[k % (uint64_t)cfg->inflight];
        if (!settle(lc, c, s)) /* the step that used this slot before */
            break;
        for (int i = 0; i < PUSH_LEN; i++)
            s->grad[i] = grad_value(lc->index, k, i);
        for (int m = 0; m < KEYS_PER_PUSH; m++) {
            s->keys[m] = key_of(key_index(lc->index, k, m));
            for (int d = 0; d < DIM; d++)
                s->sgrad[m * DIM + d] =
                    grad_value(lc->index, k, PUSH_LEN + m * DIM + d);
        }
        uint64_t off = dense_offset(lc->index, k);
        int rc = k % 2 ? ps_client_pushpull(c, dense, off, PUSH_LEN, s->grad,
                                            s->out, &s->req[0])
                       : ps_client_push(c, dense, off, PUSH_LEN, s->grad,
                                        &s->req[0]);
        if (rc == PS_OK)
            rc = ps_client_push_sparse(c, sparse, s->keys, KEYS_PER_PUSH,
                                       s->sgrad, &s->req[1]);
        if (rc != PS_OK) {
            snprintf(lc->err, sizeof(lc->err), "%s", ps_client_errmsg(c));
            lc->failures++;
        }
        k++;
    }
    for (int j = 0; slots != NULL && j < cfg->inflight; j++)
        settle(lc, c, &slots[j]); /* the last steps still in flight */
    lc->steps = k; /* all acknowledged unless a failure was counted */
    if (c != NULL)
        lc->retries = ps_client_retries(c);
    free(slots);
    ps_client_free(c);
    return NULL;
}

/* ---- the check ---- */

/* Compares the tables with the negated sum of every acknowledged step;
 * returns the number of elements that differ (-1: could not read). */
static long check_tables(const load_cfg *cfg, const load_client *lc)
{
    static float want[DENSE_LEN], got[DENSE_LEN];
    static float swant[KEY_POOL * DIM], sgot[KEY_POOL * DIM];
    memset(want, 0, sizeof(want));
    memset(swant, 0, sizeof(swant));
    for (int c = 0; c < cfg->clients; c++) {
        for (uint64_t k = 0; k < lc[c].steps; k++) {
            uint64_t off = dense_offset(c, k);
            for (int i = 0; i < PUSH_LEN; i++)
                want[off + (uint64_t)i] -= grad_value(c, k, i);
            for (int m = 0; m < KEYS_PER_PUSH; m++)
                for (int d = 0; d < DIM; d++)
                    swant[key_index(c, k, m) * DIM + d] -=
                        grad_value(c, k, PUSH_LEN + m * DIM + d);
        }
    }
    char err[512];
    ps_client *c = load_connect(cfg, err, sizeof(err));
    int dense, sparse;
    uint64_t keys[KEY_POOL];
    for (int j = 0; j < KEY_POOL; j++)
        keys[j] = key_of(j);
    ps_request *r1 = NULL, *r2 = NULL;
    if (c == NULL || define_tables(c, &dense, &sparse) != PS_OK ||
        ps_client_pull(c, dense, 0, DENSE_LEN, got, &r1) != PS_OK ||
        ps_client_wait(c, r1, -1) != PS_OK ||
        ps_client_pull_sparse(c, sparse, keys, KEY_POOL, sgot, &r2) != PS_OK ||
        ps_client_wait(c, r2, -1) != PS_OK) {
        fprintf(stderr, "fault_load: reading the tables: %s\n",
                c ? ps_client_errmsg(c) : err);
        ps_client_free(c);
        return -1;
    }
    ps_client_free(c);
    long bad = 0;
    for (int i = 0; i < DENSE_LEN; i++)
        if (got[i] != want[i] && bad++ < 5)
            fprintf(stderr, "fault_load: dense[%d] = %g, want %g\n", i,
                    (double)got[i], (double)want[i]);
    for (int i = 0; i < KEY_POOL * DIM; i++)
        if (sgot[i] != swant[i] && bad++ < 5)
            fprintf(stderr, "fault_load: key %d value %d = %g, want %g\n",
                    i / DIM, i % DIM, (double)sgot[i], (double)swant[i]);
    return bad;
}

/* ---- main ---- */

static int usage(void)
{
    fprintf(stderr,
            "usage: fault_load --servers LIST [--clients N (16)] [--seconds "
            "S (30)]\n"
            "                  [--timeout-ms MS (300)] [--retries R (100)] "
            "[--inflight K (4)]\n"
            "                  [--job NAME (load)] [--min-retries M (1)]\n");
    return 2;
}

/* A whole-number flag value in [lo, hi]; 0 when it is not one. */
static int int_arg(const char *s, long long lo, long long hi, long long *v)
{
    char *end;
    long long x = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || x < lo || x > hi)
        return 0;
    *v = x;
    return 1;
}

int main(int argc, char **argv)
{
    load_cfg cfg = {NULL, "load", 16, 30, 300, 100, 4, 1};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long x = 0;
        int ok = v != NULL;
        if (ok && strcmp(f, "--servers") == 0) {
            cfg.servers = v;
        } else if (ok && strcmp(f, "--job") == 0) {
            cfg.job = v;
        } else if (ok && strcmp(f, "--clients") == 0) {
            ok = int_arg(v, 1, MAX_CLIENTS, &x);
            cfg.clients = (int)x;
        } else if (ok && strcmp(f, "--seconds") == 0) {
            ok = int_arg(v, 1, 86400, &x);
            cfg.seconds = (double)x;
        } else if (ok && strcmp(f, "--timeout-ms") == 0) {
            ok = int_arg(v, 10, 600000, &x);
            cfg.timeout_ms = (int)x;
        } else if (ok && strcmp(f, "--retries") == 0) {
            ok = int_arg(v, 1, 100000, &x);
            cfg.retries = (int)x;
        } else if (ok && strcmp(f, "--inflight") == 0) {
            ok = int_arg(v, 1, MAX_INFLIGHT, &x);
            cfg.inflight = (int)x;
        } else if (ok && strcmp(f, "--min-retries") == 0) {
            ok = int_arg(v, 0, 1LL << 40, &cfg.min_retries);
        } else {
            ok = 0;
        }
        if (!ok) {
            fprintf(stderr, "fault_load: bad or unknown flag %s%s%s\n", f,
                    v ? " " : "", v ? v : "");
            return usage();
        }
        i++;
    }
    if (cfg.servers == NULL)
        return usage();
    static load_client lc[MAX_CLIENTS];
    static pthread_t th[MAX_CLIENTS];
    pthread_barrier_init(&connected, NULL, (unsigned)cfg.clients + 1);
    for (int i = 0; i < cfg.clients; i++) {
        lc[i].cfg = &cfg;
        lc[i].index = i;
        if (pthread_create(&th[i], NULL, client_main, &lc[i]) != 0) {
            fprintf(stderr, "fault_load: cannot start client threads\n");
            return 1; /* the barrier never opens: exiting ends them */
        }
    }
    pthread_barrier_wait(&connected);
    double start = now_s();
    run_end = start + cfg.seconds;
    printf("running clients=%d\n", cfg.clients);
    fflush(stdout);
    pthread_barrier_wait(&connected);
    uint64_t steps = 0, retries = 0;
    int failures = 0;
    for (int i = 0; i < cfg.clients; i++) {
        pthread_join(th[i], NULL);
        steps += lc[i].steps;
        retries += lc[i].retries;
        failures += lc[i].failures;
        if (lc[i].failures)
            fprintf(stderr, "fault_load: client %d: %s\n", i, lc[i].err);
    }
    double took = now_s() - start;
    pthread_barrier_destroy(&connected);
    /* A failed push may or may not have been applied: no exact sum then. */
    long bad = failures ? -1 : check_tables(&cfg, lc);
    printf("clients=%d seconds=%.1f steps=%llu requests_per_s=%.0f "
           "retries=%llu failures=%d mismatches=%ld\n",
           cfg.clients, took, (unsigned long long)steps,
           2.0 * (double)steps / took, (unsigned long long)retries, failures,
           bad);
    if (bad == 0 && (long long)retries < cfg.min_retries)
        fprintf(stderr,
                "fault_load: %llu retries fired, fewer than %lld: the faults "
                "never made a request time out, so this run proves nothing\n",
                (unsigned long long)retries, cfg.min_retries);
    return bad == 0 && (long long)retries >= cfg.min_retries ? 0 : 1;
}
