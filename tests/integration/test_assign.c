/* ASSIGN, SCAN, attach and table listing through the client library, on
 * real servers: values overwrite exactly and bypass the optimizer,
 * if_untouched is decided per shard by whether a push ever reached it,
 * scans return every stored row once across shards and pages, and a second
 * client learns a table (kind, shape, meta) from the shards alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "harness.h"
#include "sparkps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOB "assign"

static ps_client *connect_job(const char *servers, const char *job)
{
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = servers;
    cfg.job = job;
    cfg.timeout_ms = 3000;
    return ps_harness_connect(&cfg);
}

static void spec_init(ps_table_spec *s, const char *name, ps_table_kind kind,
                      uint64_t len, uint32_t dim)
{
    memset(s, 0, sizeof(*s));
    s->name = name;
    s->kind = kind;
    s->len = len;
    s->dim = dim;
    s->init.kind = PS_INIT_CONSTANT;
    s->init.a = 0.5;
    s->optim.kind = PS_OPT_SGD;
    s->optim.lr = 1.0;
}

static void pull_dense(ps_client *c, int t, uint64_t n, float *out)
{
    ps_request *r;
    assert_int_equal(ps_client_pull(c, t, 0, n, out, &r), PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
}

static void test_assign_dense_if_untouched_per_shard(void **state)
{
    (void)state;
    enum { N = 10 };
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    ps_client *c = connect_job(cl.servers, JOB);
    assert_non_null(c);
    ps_table_spec s;
    spec_init(&s, "w", PS_DENSE, N, 0);
    int t;
    assert_int_equal(ps_client_define(c, &s, &t), PS_OK);

    /* Untouched: applied on both shards, exactly. */
    float v[N], got[N];
    for (int i = 0; i < N; i++)
        v[i] = 0.125f * (float)i - 0.3f;
    size_t skipped = 99;
    assert_int_equal(
        ps_client_assign(c, t, 0, N, v, PS_ASSIGN_IF_UNTOUCHED, &skipped),
        PS_OK);
    assert_int_equal(skipped, 0);
    pull_dense(c, t, N, got);
    assert_memory_equal(got, v, sizeof(v));

    /* A push to shard 0's half only (SGD, lr 1: w -= g). */
    float g[2] = {1, 1};
    ps_request *r;
    assert_int_equal(ps_client_push(c, t, 0, 2, g, &r), PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
    float after_push[N];
    pull_dense(c, t, N, after_push);
    assert_true(after_push[0] == v[0] - 1.0f);

    /* A late warm start: shard 0 keeps its progress, shard 1 takes it. */
    float w[N];
    for (int i = 0; i < N; i++)
        w[i] = 7.0f + (float)i;
    assert_int_equal(
        ps_client_assign(c, t, 0, N, w, PS_ASSIGN_IF_UNTOUCHED, &skipped),
        PS_OK);
    assert_int_equal(skipped, 1);
    pull_dense(c, t, N, got);
    assert_memory_equal(got, after_push, 5 * sizeof(float));
    assert_memory_equal(got + 5, w + 5, 5 * sizeof(float));

    /* Without the flag it always overwrites, and a sub-range works. */
    assert_int_equal(ps_client_assign(c, t, 3, 4, w, 0, &skipped), PS_OK);
    assert_int_equal(skipped, 0);
    pull_dense(c, t, N, got);
    assert_memory_equal(got + 3, w, 4 * sizeof(float));

    /* Bad calls fail in the client with a message. */
    assert_int_equal(ps_client_assign(c, t, 8, 4, w, 0, NULL), PS_ERANGE);
    assert_int_equal(ps_client_assign(c, t, 0, N, NULL, 0, NULL), PS_EINVAL);
    assert_int_equal(ps_client_assign(c, 42, 0, N, w, 0, NULL), PS_ENOTABLE);
    assert_int_equal(ps_client_assign_sparse(c, t, NULL, 0, w, 0, NULL),
                     PS_EINVAL);
    w[2] = 1.0f / 0.0f;
    assert_int_equal(ps_client_assign(c, t, 0, N, w, 0, NULL), PS_EBADGRAD);
    assert_non_null(strstr(ps_client_errmsg(c), "NaN or Inf"));
    ps_client_free(c);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

static int key_index(const uint64_t *keys, size_t n, uint64_t k)
{
    for (size_t i = 0; i < n; i++)
        if (keys[i] == k)
            return (int)i;
    return -1;
}

static void test_assign_sparse_scan_all_rows(void **state)
{
    (void)state;
    enum { N = 50, DIM = 3 };
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 3, NULL), 0);
    ps_client *c = connect_job(cl.servers, JOB);
    assert_non_null(c);
    ps_table_spec s;
    spec_init(&s, "emb", PS_SPARSE, 0, DIM);
    int t;
    assert_int_equal(ps_client_define(c, &s, &t), PS_OK);
    uint64_t keys[N];
    float v[N * DIM];
    for (int i = 0; i < N; i++) {
        keys[i] = 1000003ull * (uint64_t)i + 17;
        for (int d = 0; d < DIM; d++)
            v[i * DIM + d] = (float)i + 0.25f * (float)d;
    }
    size_t skipped = 9;
    assert_int_equal(ps_client_assign_sparse(c, t, keys, N, v,
                                             PS_ASSIGN_IF_UNTOUCHED, &skipped),
                     PS_OK);
    assert_int_equal(skipped, 0);

    /* Pages of 7 rows across three shards: each key exactly once. */
    int seen[N] = {0};
    uint64_t cursor = 0, pk[7];
    float pv[7 * DIM];
    size_t total = 0;
    for (int calls = 0; cursor != PS_SCAN_DONE; calls++) {
        assert_true(calls < 100);
        size_t n = 0;
        assert_int_equal(ps_client_scan_sparse(c, t, &cursor, 7, pk, pv, &n),
                         PS_OK);
        assert_true(n <= 7);
        for (size_t i = 0; i < n; i++) {
            int at = key_index(keys, N, pk[i]);
            assert_true(at >= 0);
            seen[at]++;
            assert_memory_equal(pv + i * DIM, v + at * DIM,
                                DIM * sizeof(float));
        }
        total += n;
    }
    assert_int_equal(total, N);
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1);

    /* Once pushed, an if_untouched assign is a no-op on every shard the
     * push reached. */
    float g[DIM] = {1, 1, 1};
    ps_request *r;
    assert_int_equal(ps_client_push_sparse(c, t, keys, 1, g, &r), PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
    float zero[N * DIM];
    memset(zero, 0, sizeof(zero));
    assert_int_equal(ps_client_assign_sparse(c, t, keys, N, zero,
                                             PS_ASSIGN_IF_UNTOUCHED, &skipped),
                     PS_OK);
    assert_int_equal(skipped, 1);
    float one[DIM];
    assert_int_equal(ps_client_pull_sparse(c, t, keys, 1, one, &r), PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
    assert_true(one[0] == v[0] - 1.0f);

    /* Scan misuse. */
    cursor = PS_SCAN_DONE;
    size_t n = 5;
    assert_int_equal(ps_client_scan_sparse(c, t, &cursor, 7, pk, pv, &n),
                     PS_OK);
    assert_int_equal(n, 0);
    cursor = (uint64_t)9 << 48;
    assert_int_equal(ps_client_scan_sparse(c, t, &cursor, 7, pk, pv, &n),
                     PS_ERANGE);
    cursor = 0;
    assert_int_equal(ps_client_scan_sparse(c, t, &cursor, 0, pk, pv, &n),
                     PS_EINVAL);
    ps_client_free(c);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

static void test_attach_and_list_tables(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    ps_client *c = connect_job(cl.servers, JOB);
    assert_non_null(c);
    ps_table_spec s;
    spec_init(&s, "fc1.weight", PS_DENSE, 12, 0);
    s.shape[0] = 3;
    s.shape[1] = 4;
    s.meta = "model=mlp:3-4;classes=4";
    int dt, st;
    assert_int_equal(ps_client_define(c, &s, &dt), PS_OK);
    /* meta is informative: another text on re-define is accepted and the
     * first one stays. */
    s.meta = "something else";
    assert_int_equal(ps_client_define(c, &s, &dt), PS_OK);
    ps_table_spec sp;
    spec_init(&sp, "emb", PS_SPARSE, 0, 2);
    assert_int_equal(ps_client_define(c, &sp, &st), PS_OK);
    float v[12];
    for (int i = 0; i < 12; i++)
        v[i] = (float)i;
    assert_int_equal(ps_client_assign(c, dt, 0, 12, v, 0, NULL), PS_OK);
    uint64_t k[2] = {5, 6};
    assert_int_equal(ps_client_assign_sparse(c, st, k, 2, v, 0, NULL), PS_OK);

    ps_client *tool = connect_job(cl.servers, JOB);
    assert_non_null(tool);
    ps_table_info *tabs = NULL;
    size_t n = 0;
    assert_int_equal(ps_client_list_tables(tool, NULL, &tabs, &n), PS_OK);
    assert_int_equal(n, 2);
    assert_string_equal(tabs[0].name, "fc1.weight");
    assert_int_equal(tabs[0].kind, PS_DENSE);
    assert_int_equal(tabs[0].len, 12);
    assert_int_equal(tabs[0].shape[0], 3);
    assert_int_equal(tabs[0].shape[1], 4);
    assert_int_equal(tabs[0].shape[2], 0);
    assert_string_equal(tabs[0].meta, "model=mlp:3-4;classes=4");
    assert_string_equal(tabs[1].name, "emb");
    assert_int_equal(tabs[1].kind, PS_SPARSE);
    assert_int_equal(tabs[1].dim, 2);
    assert_int_equal(tabs[1].rows, 2);
    assert_string_equal(tabs[1].meta, "");
    ps_client_free_table_list(tabs, n);
    assert_int_equal(ps_client_list_tables(tool, "nojob", &tabs, &n), PS_OK);
    assert_int_equal(n, 0);
    ps_client_free_table_list(tabs, n);

    int at;
    assert_int_equal(ps_client_attach(tool, "fc1.weight", &at), PS_OK);
    float got[12];
    pull_dense(tool, at, 12, got);
    assert_memory_equal(got, v, sizeof(v));
    assert_int_equal(ps_client_attach(tool, "nope", &at), PS_ENOTABLE);
    assert_non_null(strstr(ps_client_errmsg(tool), "nope"));
    ps_client_free(tool);
    ps_client_free(c);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_assign_dense_if_untouched_per_shard,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_assign_sparse_scan_all_rows,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_attach_and_list_tables,
                                  ps_harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
