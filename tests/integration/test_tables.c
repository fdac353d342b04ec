/* Tables on real servers: idempotent define and conflicts, job namespaces,
 * drop, deterministic seeded init independent of the shard count, server
 * optimizers end to end, 16-bit wire dtypes, sparse tables with lazy rows,
 * sparse batches split under the servers' --max-keys, and a client that reconnects after its server restarts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"
#include "sparkps.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ps_client *client_for(const char *servers, const char *job,
                             ps_dtype dtype)
{
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = servers;
    cfg.job = job;
    cfg.dtype = dtype;
    cfg.timeout_ms = 1000;
    cfg.retries = 10;
    return ps_harness_connect(&cfg);
}

static ps_table_spec dense(const char *name, uint64_t len)
{
    ps_table_spec s;
    memset(&s, 0, sizeof(s));
    s.name = name;
    s.kind = PS_DENSE;
    s.len = len;
    s.optim.kind = PS_OPT_SGD;
    s.optim.lr = 1.0;
    return s;
}

/* A sparse table of `dim` floats per key with SGD lr=1; callers adjust. */
static ps_table_spec sparse(const char *name, uint32_t dim)
{
    ps_table_spec s = dense(name, 0);
    s.kind = PS_SPARSE;
    s.dim = dim;
    return s;
}

static void pull_all(ps_client *c, int t, uint64_t off, uint64_t n, float *out)
{
    ps_request *r;
    assert_int_equal(ps_client_pull(c, t, off, n, out, &r), PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
}

static void push_all(ps_client *c, int t, uint64_t off, uint64_t n,
                     const float *g)
{
    ps_request *r;
    assert_int_equal(ps_client_push(c, t, off, n, g, &r), PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
}

static void test_tables_define_idempotent_conflict_named(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    ps_client *c = client_for(cl.servers, "j", PS_F32);
    assert_non_null(c);
    ps_table_spec s = dense("w", 100);
    int t1, t2, t3;
    assert_int_equal(ps_client_define(c, &s, &t1), PS_OK);
    assert_int_equal(ps_client_define(c, &s, &t2), PS_OK);
    assert_int_equal(t1, t2);
    s.len = 101;
    assert_int_equal(ps_client_define(c, &s, &t3), PS_ECONFLICT);
    assert_non_null(strstr(ps_client_errmsg(c), "different len"));
    s.len = 100;
    s.optim.kind = PS_OPT_ADAM;
    assert_int_equal(ps_client_define(c, &s, &t3), PS_ECONFLICT);
    assert_non_null(strstr(ps_client_errmsg(c), "different optimizer"));
    s.optim.kind = PS_OPT_SGD;
    s.optim.lr = -1;
    assert_int_equal(ps_client_define(c, &s, &t3), PS_EINVAL);
    assert_non_null(strstr(ps_client_errmsg(c), "lr"));
    ps_client_free(c);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

static void test_tables_jobs_are_separate_namespaces(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    ps_client *a = client_for(cl.servers, "job-a", PS_F32);
    ps_client *b = client_for(cl.servers, "job-b", PS_F32);
    ps_table_spec sa = dense("w", 10), sb = dense("w", 20);
    int ta, tb;
    assert_int_equal(ps_client_define(a, &sa, &ta), PS_OK);
    /* Same name, other job, other spec: no conflict, no sharing. */
    assert_int_equal(ps_client_define(b, &sb, &tb), PS_OK);
    float g[20], v[20];
    for (int i = 0; i < 20; i++)
        g[i] = 1.0f;
    push_all(a, ta, 0, 10, g);
    pull_all(b, tb, 0, 20, v);
    for (int i = 0; i < 20; i++)
        assert_true(v[i] == 0.0f);
    pull_all(a, ta, 0, 10, v);
    for (int i = 0; i < 10; i++)
        assert_true(v[i] == -1.0f);

    /* Dropping job a frees its table; job b is untouched. */
    assert_int_equal(ps_client_drop_job(a, NULL), PS_OK);
    ps_request *r;
    assert_int_equal(ps_client_pull(a, ta, 0, 10, v, &r), PS_OK);
    assert_int_equal(ps_client_wait(a, r, -1), PS_ENOTABLE);
    pull_all(b, tb, 0, 20, v);
    assert_int_equal(ps_client_drop_table(b, "w"), PS_OK);
    assert_int_equal(ps_client_drop_table(b, "w"), PS_ENOTABLE);
    /* Re-defining after a drop starts from the init values again. */
    assert_int_equal(ps_client_define(a, &sa, &ta), PS_OK);
    pull_all(a, ta, 0, 10, v);
    for (int i = 0; i < 10; i++)
        assert_true(v[i] == 0.0f);
    ps_client_free(a);
    ps_client_free(b);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

/* The same seed gives the same values on 1 and on 3 shards. */
static void test_tables_init_independent_of_sharding(void **state)
{
    (void)state;
    enum { N = 1000 };
    static float one[N], three[N];
    for (int k = 0; k < 2; k++) {
        ps_cluster cl;
        assert_int_equal(ps_cluster_start(&cl, k ? 3 : 1, NULL), 0);
        ps_client *c = client_for(cl.servers, "init", PS_F32);
        ps_table_spec s = dense("w", N);
        s.shape[0] = 40;
        s.shape[1] = 25;
        s.init.kind = PS_INIT_HE;
        s.init.seed = 1234;
        int t;
        assert_int_equal(ps_client_define(c, &s, &t), PS_OK);
        pull_all(c, t, 0, N, k ? three : one);
        ps_client_free(c);
        assert_int_equal(ps_cluster_stop(&cl), 0);
    }
    double sum2 = 0;
    for (int i = 0; i < N; i++) {
        assert_true(one[i] == three[i]);
        sum2 += (double)one[i] * one[i];
    }
    /* He with fan_in = shape[0] = 40: variance 2/40. */
    double var = sum2 / N;
    assert_true(var > 0.05 * 0.8 && var < 0.05 * 1.2);
}

/* Adam applied by the server matches the rule computed here. */
static void test_tables_adam_on_server_matches_rule(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    ps_client *c = client_for(cl.servers, "adam", PS_F32);
    ps_table_spec s = dense("w", 8);
    s.optim.kind = PS_OPT_ADAM;
    s.optim.lr = 0.01;
    s.init.kind = PS_INIT_CONSTANT;
    s.init.a = 0.5;
    int t;
    assert_int_equal(ps_client_define(c, &s, &t), PS_OK);
    float g[8], v[8];
    double w = 0.5, m = 0, vv = 0;
    for (int step = 1; step <= 3; step++) {
        for (int i = 0; i < 8; i++)
            g[i] = 0.25f * (float)step;
        push_all(c, t, 0, 8, g);
        double gi = 0.25 * step;
        m = 0.9 * m + 0.1 * gi;
        vv = 0.999 * vv + 0.001 * gi * gi;
        double mh = m / (1 - pow(0.9, step)), vh = vv / (1 - pow(0.999, step));
        w -= 0.01 * mh / (sqrt(vh) + 1e-8);
    }
    pull_all(c, t, 0, 8, v);
    for (int i = 0; i < 8; i++)
        assert_true(fabs(v[i] - w) < 1e-5);
    ps_client_free(c);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

/* A worker's lr scale reaches the server's optimizer with each push, and
 * only pushes made after it was set use it. */
static void test_tables_lr_scale_applies_per_push(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    ps_client *c = client_for(cl.servers, "lrs", PS_F32);
    int t;
    ps_table_spec s = dense("w", 6); /* SGD lr 1, zeros */
    assert_int_equal(ps_client_define(c, &s, &t), PS_OK);
    const float g[6] = {1, 1, 1, 1, 1, 1};
    float v[6];
    assert_int_equal(ps_client_set_lr_scale(c, 0.25), PS_OK);
    push_all(c, t, 0, 6, g);
    pull_all(c, t, 0, 6, v);
    for (int i = 0; i < 6; i++)
        assert_true(v[i] == -0.25f);
    assert_int_equal(ps_client_set_lr_scale(c, 1.0), PS_OK);
    push_all(c, t, 0, 6, g);
    pull_all(c, t, 0, 6, v);
    for (int i = 0; i < 6; i++)
        assert_true(v[i] == -1.25f);
    assert_int_equal(ps_client_set_lr_scale(c, 0.0), PS_EINVAL);
    assert_int_equal(ps_client_set_lr_scale(c, NAN), PS_EINVAL);
    assert_non_null(strstr(ps_client_errmsg(c), "lr scale"));
    ps_client_free(c);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

static void test_tables_half_precision_wire(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    ps_dtype types[] = {PS_F16, PS_BF16};
    for (int k = 0; k < 2; k++) {
        char job[16];
        snprintf(job, sizeof(job), "half%d", k);
        ps_client *c = client_for(cl.servers, job, types[k]);
        ps_table_spec s = dense("w", 33);
        int t;
        assert_int_equal(ps_client_define(c, &s, &t), PS_OK);
        float g[33], out[33];
        for (int i = 0; i < 33; i++)
            g[i] = (float)(i - 16) * 0.5f; /* exact in f16 and bf16 */
        ps_request *r;
        assert_int_equal(ps_client_pushpull(c, t, 0, 33, g, out, &r), PS_OK);
        assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
        for (int i = 0; i < 33; i++)
            assert_true(out[i] == -g[i]);
        /* 1/3 is not representable: the value comes back rounded to the
         * dtype's precision. */
        float third = 1.0f / 3.0f;
        push_all(c, t, 0, 1, &third);
        pull_all(c, t, 0, 1, out);
        double want = 8.0 - 1.0 / 3.0;
        double tol = types[k] == PS_F16 ? 4e-3 : 3e-2;
        assert_true(fabs(out[0] - want) < tol);

        /* Sparse pushpull in 16 bits: key frames often arrive misaligned
         * and are copied aside; the reply must not share that copy
         * (regression: it failed with ENOMEM). */
        ps_table_spec sp = dense("emb", 0);
        sp.kind = PS_SPARSE;
        sp.dim = 3;
        int st;
        assert_int_equal(ps_client_define(c, &sp, &st), PS_OK);
        uint64_t keys[11];
        float sg[33], so[33];
        for (int i = 0; i < 11; i++)
            keys[i] = (uint64_t)i * 7919u + 1u;
        for (int i = 0; i < 33; i++)
            sg[i] = 1.0f;
        for (int round = 1; round <= 50; round++) {
            assert_int_equal(
                ps_client_pushpull_sparse(c, st, keys, 11, sg, so, &r), PS_OK);
            assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
            for (int i = 0; i < 33; i++)
                assert_true(so[i] == -(float)round);
        }
        ps_client_free(c);
    }
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

static void test_tables_sparse_lazy_rows_seeded(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 3, NULL), 0);
    ps_client *c = client_for(cl.servers, "sparse", PS_F32);
    ps_table_spec s = sparse("emb", 3);
    s.init.kind = PS_INIT_UNIFORM;
    s.init.a = -1;
    s.init.b = 1;
    s.init.seed = 7;
    s.optim.kind = PS_OPT_ADAGRAD;
    s.optim.lr = 0.1;
    int t;
    assert_int_equal(ps_client_define(c, &s, &t), PS_OK);
    uint64_t keys[5] = {1, 99, UINT64_MAX, 1ULL << 40, 12345};
    float before[15], again[15], g[15], after[15];
    ps_request *r;
    assert_int_equal(ps_client_pull_sparse(c, t, keys, 5, before, &r), PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
    for (int i = 0; i < 15; i++)
        assert_true(before[i] >= -1 && before[i] <= 1 && before[i] != 0);
    /* A pull does not create rows: the same init values come back. */
    assert_int_equal(ps_client_pull_sparse(c, t, keys, 5, again, &r), PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
    assert_memory_equal(before, again, sizeof(before));
    for (int i = 0; i < 15; i++)
        g[i] = i % 3 == 0 ? 1.0f : 0.0f;
    assert_int_equal(ps_client_push_sparse(c, t, keys, 5, g, &r), PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
    assert_int_equal(ps_client_pull_sparse(c, t, keys, 5, after, &r), PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
    for (int i = 0; i < 15; i++) {
        if (g[i] == 0.0f) {
            assert_true(after[i] == before[i]);
        } else {
            /* Adagrad first step: acc = 0.1 + 1, w -= 0.1 / sqrt(1.1). */
            double want = before[i] - 0.1 / (sqrt(1.1) + 1e-10);
            assert_true(fabs(after[i] - want) < 1e-6);
        }
    }
    ps_client_free(c);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

/* A sparse batch with more keys per shard than the servers' --max-keys goes
 * out in several pieces (the limit comes in their Hello) instead of being
 * refused with ETOOBIG; every key, repeats included, lands exactly once,
 * and values come back in the caller's order. */
#define SPLIT_LIMIT 16
#define SPLIT_KEYS 1000 /* ~500 per shard: ~32 pieces each */
static void test_tables_sparse_batch_split_under_max_keys(void **state)
{
    (void)state;
    ps_cluster cl;
    const char *extra[] = {"--max-keys", "16", NULL};
    assert_int_equal(ps_cluster_start(&cl, 2, extra), 0);
    ps_client *c = client_for(cl.servers, "split", PS_F32);
    ps_table_spec s = sparse("emb", 2);
    int t;
    assert_int_equal(ps_client_define(c, &s, &t), PS_OK);
    static uint64_t keys[SPLIT_KEYS];
    static float g[SPLIT_KEYS * 2], out[SPLIT_KEYS * 2];
    for (int i = 0; i < SPLIT_KEYS; i++) {
        /* key i % 500: each key twice, so repeats straddle pieces */
        keys[i] = (uint64_t)(i % (SPLIT_KEYS / 2)) * 7919u;
        g[2 * i] = (float)(i % 5);
        g[2 * i + 1] = -1.0f;
    }
    ps_request *r;
    assert_int_equal(ps_client_push_sparse(c, t, keys, SPLIT_KEYS, g, &r),
                     PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
    assert_int_equal(ps_client_pull_sparse(c, t, keys, SPLIT_KEYS, out, &r),
                     PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
    for (int i = 0; i < SPLIT_KEYS; i++) {
        int twin = (i + SPLIT_KEYS / 2) % SPLIT_KEYS; /* the same key */
        assert_true(out[2 * i] == -(g[2 * i] + g[2 * twin]));
        assert_true(out[2 * i + 1] == 2.0f);
    }
    /* pushpull over the distinct keys: the reply in the caller's order.
     * (A key repeated across pieces would read back the value between its
     * pushes: each piece is answered as it is applied.) */
    int half = SPLIT_KEYS / 2;
    assert_int_equal(ps_client_pushpull_sparse(c, t, keys, (size_t)half, g,
                                               out, &r),
                     PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
    for (int i = 0; i < half; i++) {
        assert_true(out[2 * i] == -(2 * g[2 * i] + g[2 * (i + half)]));
        assert_true(out[2 * i + 1] == 3.0f);
    }
    /* The servers still refuse a raw piece over the limit; the split is
     * the client's: each server saw only pieces within it. */
    char *json = NULL;
    assert_int_equal(ps_client_status_json(c, 0, &json), PS_OK);
    assert_null(strstr(json, "ETOOBIG"));
    free(json);
    ps_client_free(c);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

/* The server is killed and restarted on the same port: the client's next
 * requests time out, reconnect and succeed against the new process. */
static void test_tables_client_reconnects_after_restart(void **state)
{
    (void)state;
    ps_test_server s;
    const char *args[] = {"--listen", "tcp://127.0.0.1:0", NULL};
    assert_int_equal(ps_server_start(&s, args), 0);
    ps_client *c = client_for(s.endpoint, "re", PS_F32);
    assert_non_null(c);
    ps_table_spec spec = dense("w", 4);
    int t;
    assert_int_equal(ps_client_define(c, &spec, &t), PS_OK);
    ps_server_kill(&s);
    char listen[64];
    snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d", s.port);
    const char *again[] = {"--listen", listen, NULL};
    assert_int_equal(ps_server_start(&s, again), 0);
    /* The new process has no tables (no checkpoint yet): defining again
     * succeeds through the reconnected socket. */
    assert_int_equal(ps_client_define(c, &spec, &t), PS_OK);
    float v[4];
    pull_all(c, t, 0, 4, v);
    char *json = NULL;
    assert_int_equal(ps_client_status_json(c, 0, &json), PS_OK);
    free(json);
    ps_client_free(c);
    assert_int_equal(ps_server_stop(&s, 5000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_tables_define_idempotent_conflict_named,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_tables_jobs_are_separate_namespaces,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_tables_init_independent_of_sharding,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_tables_adam_on_server_matches_rule,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_tables_half_precision_wire,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_tables_lr_scale_applies_per_push,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_tables_sparse_lazy_rows_seeded,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_tables_sparse_batch_split_under_max_keys,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_tables_client_reconnects_after_restart,
                                  ps_harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
