/* The exact-sum workload (see exact_load.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "exact_load.h"
#include "harness.h"
#include "sparkps.h"

#include <stdio.h>
#include <string.h>

#define DENSE_LEN 1001 /* odd: the shard boundary splits pushes */
#define NKEYS 64
#define DIM 4
#define INFLIGHT 4

/* Gradient of element i in step k of client c: an integer in [-2, 2]. */
static float grad_value(int c, int k, uint64_t i)
{
    return (float)((int)((c * 7 + k * 3 + (int)(i % 1000)) % 5) - 2);
}

static uint64_t key_of(int j)
{
    return 0x9e3779b97f4a7c15ULL * (uint64_t)(j + 1); /* spread keys */
}

static ps_table_spec table_spec(int sparse)
{
    ps_table_spec s;
    memset(&s, 0, sizeof(s));
    s.name = sparse ? "emb" : "w";
    s.kind = sparse ? PS_SPARSE : PS_DENSE;
    s.len = sparse ? 0 : DENSE_LEN;
    s.dim = sparse ? DIM : 0;
    s.optim.kind = PS_OPT_SGD;
    s.optim.lr = 1.0;
    return s;
}

static ps_client *connect_to(const char *servers, int drop_every)
{
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = servers;
    cfg.job = "exact";
    cfg.test_drop_every = drop_every;
    if (drop_every) {
        cfg.timeout_ms = 150; /* a dropped reply is retried quickly */
        cfg.retries = 20;
    }
    return ps_harness_connect(&cfg);
}

static int define_tables(ps_client *c, int *dense, int *sparse)
{
    ps_table_spec ds = table_spec(0), ss = table_spec(1);
    return ps_client_define(c, &ds, dense) == PS_OK &&
           ps_client_define(c, &ss, sparse) == PS_OK;
}

static void wait_counted(ps_client *c, ps_request **req, int *failures)
{
    if (*req != NULL && ps_client_wait(c, *req, -1) != PS_OK) {
        fprintf(stderr, "wait: %s\n", ps_client_errmsg(c));
        (*failures)++;
    }
    *req = NULL;
}

static void *client_main(void *arg)
{
    exact_client *r = arg;
    ps_client *c = connect_to(r->servers, r->drop_every);
    int dense, sparse;
    if (c == NULL || !define_tables(c, &dense, &sparse)) {
        r->failures++;
        ps_client_free(c);
        return NULL;
    }
    static float grads[EXACT_CLIENTS][INFLIGHT][DENSE_LEN];
    static float sgrads[EXACT_CLIENTS][INFLIGHT][NKEYS * DIM];
    static float outs[EXACT_CLIENTS][INFLIGHT][DENSE_LEN];
    uint64_t keys[NKEYS];
    for (int j = 0; j < NKEYS; j++)
        keys[j] = key_of(j);
    ps_request *pending[INFLIGHT][2] = {{NULL}};
    for (int k = 0; k < EXACT_STEPS; k++) {
        int slot = k % INFLIGHT;
        for (int t = 0; t < 2; t++)
            wait_counted(c, &pending[slot][t], &r->failures);
        float *g = grads[r->client][slot], *sg = sgrads[r->client][slot];
        for (uint64_t i = 0; i < DENSE_LEN; i++)
            g[i] = grad_value(r->client, k, i);
        for (int i = 0; i < NKEYS * DIM; i++)
            sg[i] = grad_value(r->client, k, (uint64_t)i + 7);
        /* Alternate push and pushpull so both paths are counted. */
        int rc =
            k % 2
                ? ps_client_push(c, dense, 0, DENSE_LEN, g, &pending[slot][0])
                : ps_client_pushpull(c, dense, 0, DENSE_LEN, g,
                                     outs[r->client][slot], &pending[slot][0]);
        if (rc == PS_OK)
            rc = ps_client_push_sparse(c, sparse, keys, NKEYS, sg,
                                       &pending[slot][1]);
        if (rc != PS_OK) {
            fprintf(stderr, "push: %s\n", ps_client_errmsg(c));
            r->failures++;
        }
    }
    for (int s = 0; s < INFLIGHT; s++)
        for (int t = 0; t < 2; t++)
            wait_counted(c, &pending[s][t], &r->failures);
    r->retries = ps_client_retries(c);
    ps_client_free(c);
    return NULL;
}

void exact_load_start(exact_load *l, const char *servers, int drop_every)
{
    for (int i = 0; i < EXACT_CLIENTS; i++) {
        l->client[i] = (exact_client){servers, drop_every, i, 0, 0};
        assert_int_equal(
            pthread_create(&l->thread[i], NULL, client_main, &l->client[i]), 0);
    }
}

int exact_load_join(exact_load *l, uint64_t *retries)
{
    int failures = 0;
    if (retries != NULL)
        *retries = 0;
    for (int i = 0; i < EXACT_CLIENTS; i++) {
        pthread_join(l->thread[i], NULL);
        failures += l->client[i].failures;
        if (retries != NULL)
            *retries += l->client[i].retries;
    }
    return failures;
}

void exact_load_check(const char *servers)
{
    ps_client *c = connect_to(servers, 0);
    assert_non_null(c);
    int dense, sparse;
    assert_true(define_tables(c, &dense, &sparse));
    static float got[DENSE_LEN];
    ps_request *req;
    assert_int_equal(ps_client_pull(c, dense, 0, DENSE_LEN, got, &req), PS_OK);
    assert_int_equal(ps_client_wait(c, req, -1), PS_OK);
    for (uint64_t i = 0; i < DENSE_LEN; i++) {
        float want = 0;
        for (int cl = 0; cl < EXACT_CLIENTS; cl++)
            for (int k = 0; k < EXACT_STEPS; k++)
                want -= grad_value(cl, k, i);
        if (got[i] != want)
            fail_msg("dense element %llu: got %g, want %g",
                     (unsigned long long)i, got[i], want);
    }
    uint64_t keys[NKEYS];
    float sgot[NKEYS * DIM];
    for (int j = 0; j < NKEYS; j++)
        keys[j] = key_of(j);
    assert_int_equal(ps_client_pull_sparse(c, sparse, keys, NKEYS, sgot, &req),
                     PS_OK);
    assert_int_equal(ps_client_wait(c, req, -1), PS_OK);
    for (int i = 0; i < NKEYS * DIM; i++) {
        float want = 0;
        for (int cl = 0; cl < EXACT_CLIENTS; cl++)
            for (int k = 0; k < EXACT_STEPS; k++)
                want -= grad_value(cl, k, (uint64_t)i + 7);
        if (sgot[i] != want)
            fail_msg("sparse value %d: got %g, want %g", i, sgot[i], want);
    }
    ps_client_free(c);
}
