/* SHUTDOWN over the wire (ps_client_shutdown) and what drop reports
 * (ps_client_drop) on real servers: every shard answers and exits 0 on its
 * own; requests arriving while it stops get ESHUTDOWN, and a training
 * client fails with ESHUTDOWN instead of hanging; a shard that is gone is
 * reported while the others still stop; a malformed list is refused before
 * anything is sent. Drop reports tables and bytes freed per shard, matching
 * what status showed, and leaves other jobs alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/codec.h"
#include "harness.h"
#include "sparkps.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define EXIT_WAIT_MS 10000 /* a stopping server exits well within this */
#define RECV_MS 5000

static ps_client_cfg tool_cfg(const char *servers)
{
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = servers;
    cfg.job = "sd";
    cfg.timeout_ms = 2000;
    cfg.retries = -1;
    return cfg;
}

static ps_client *connect_as(const char *servers, const char *job, int worker)
{
    ps_client_cfg cfg = tool_cfg(servers);
    cfg.job = job;
    cfg.worker_id = worker;
    return ps_harness_connect(&cfg);
}

static ps_table_spec dense(const char *name, uint64_t len)
{
    ps_table_spec s;
    memset(&s, 0, sizeof(s));
    s.name = name;
    s.kind = PS_DENSE;
    s.len = len;
    s.optim.kind = PS_OPT_ADAM;
    s.optim.lr = 0.01;
    return s;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- raw wire ---- */

static void *raw_open(void *ctx, const char *endpoint)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    assert_non_null(s);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    assert_int_equal(zmq_connect(s, endpoint), 0);
    return s;
}

/* Sends a header-only request and returns the reply's header (NULL when
 * none came within RECV_MS). */
static ps_header *raw_call(void *sock, int type, uint64_t rid, int worker)
{
    ps_header h;
    ps_header_init(&h);
    h.has_type = h.has_request_id = 1;
    h.type = (Sparkps__MsgType)type;
    h.request_id = rid;
    if (worker >= 0) {
        h.has_worker_id = 1;
        h.worker_id = worker;
    }
    uint8_t buf[256];
    size_t n = ps_header_pack(&h, buf);
    assert_true(zmq_send(sock, buf, n, 0) >= 0);
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, RECV_MS) <= 0)
        return NULL;
    zmq_msg_t m;
    zmq_msg_init(&m);
    assert_true(zmq_msg_recv(&m, sock, 0) >= 0);
    ps_header *rep =
        sparkps__header__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
    zmq_msg_close(&m);
    assert_non_null(rep);
    assert_int_equal(rep->request_id, rid);
    return rep;
}

static int code_of(const ps_header *h)
{
    return h->has_error_code ? h->error_code : PS_OK;
}

/* ---- shutdown ---- */

static void test_shutdown_two_shards_both_exit_0(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    ps_client_cfg cfg = tool_cfg(cl.servers);
    ps_shard_result *res = NULL;
    size_t n = 0;
    char err[256] = "";
    assert_int_equal(ps_client_shutdown(&cfg, &res, &n, err, sizeof(err)),
                     PS_OK);
    assert_non_null(res);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(res[i].status, PS_OK);
        assert_string_equal(res[i].errmsg, "");
    }
    free(res);
    /* No signal is sent: each exits because it was asked, with status 0. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(ps_server_wait(&cl.srv[i], EXIT_WAIT_MS), 0);
}

/* Once a shard has answered SHUTDOWN, requests of a (live) worker get
 * ESHUTDOWN, never silence, until it exits. */
static void test_shutdown_late_requests_get_eshutdown(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 1, NULL), 0);
    void *ctx = zmq_ctx_new();
    void *sock = raw_open(ctx, cl.srv[0].endpoint);
    uint64_t rid = 1;
    /* A HELLO as worker 3: the shard now has a live training worker. */
    ps_header *rep = raw_call(sock, SPARKPS__MSG_TYPE__HELLO, rid++, 3);
    assert_non_null(rep);
    assert_int_equal(code_of(rep), PS_OK);
    ps_header_free(rep);
    rep = raw_call(sock, SPARKPS__MSG_TYPE__SHUTDOWN, rid++, -1);
    assert_non_null(rep);
    assert_int_equal(code_of(rep), PS_OK);
    assert_int_equal(rep->type, SPARKPS__MSG_TYPE__SHUTDOWN);
    ps_header_free(rep);
    /* What was queued before the stop is still answered normally; the
     * first request after that must be refused, not dropped. */
    int code = PS_OK;
    for (int i = 0; i < 100 && code == PS_OK; i++) {
        rep = raw_call(sock, SPARKPS__MSG_TYPE__HELLO, rid++, 3);
        if (rep == NULL)
            fail_msg("late request %d got no reply", i);
        code = code_of(rep);
        if (code == PS_ESHUTDOWN)
            assert_non_null(strstr(rep->error_msg, "shutting down"));
        ps_header_free(rep);
    }
    assert_int_equal(code, PS_ESHUTDOWN);
    /* A second SHUTDOWN while stopping: "stopping already". */
    rep = raw_call(sock, SPARKPS__MSG_TYPE__SHUTDOWN, rid++, -1);
    assert_non_null(rep);
    assert_int_equal(code_of(rep), PS_ESHUTDOWN);
    ps_header_free(rep);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    assert_int_equal(ps_server_wait(&cl.srv[0], EXIT_WAIT_MS), 0);
}

/* A worker pushing in a loop when the cluster is shut down fails with
 * ESHUTDOWN, promptly. */
static void test_shutdown_training_client_fails_promptly(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    ps_client *w = connect_as(cl.servers, "train", 0);
    assert_non_null(w);
    ps_table_spec s = dense("w", 1000);
    int t;
    assert_int_equal(ps_client_define(w, &s, &t), PS_OK);
    float g[1000], v[1000];
    for (int i = 0; i < 1000; i++)
        g[i] = 0.001f;
    ps_request *r;
    assert_int_equal(ps_client_pushpull(w, t, 0, 1000, g, v, &r), PS_OK);
    assert_int_equal(ps_client_wait(w, r, -1), PS_OK);

    ps_client_cfg cfg = tool_cfg(cl.servers);
    ps_shard_result *res = NULL;
    size_t n = 0;
    assert_int_equal(ps_client_shutdown(&cfg, &res, &n, NULL, 0), PS_OK);
    free(res);
    int64_t t0 = now_ms();
    int rc = PS_OK;
    for (int step = 0; step < 10000 && rc == PS_OK; step++) {
        rc = ps_client_pushpull(w, t, 0, 1000, g, v, &r);
        if (rc == PS_OK)
            rc = ps_client_wait(w, r, -1);
    }
    int64_t took = now_ms() - t0;
    if (rc != PS_ESHUTDOWN)
        fail_msg("worker got %s (%s), want ESHUTDOWN", ps_errname(rc),
                 ps_client_errmsg(w));
    assert_non_null(strstr(ps_client_errmsg(w), "shutting down"));
    /* Well before its own timeout (2 s per attempt) would have fired. */
    assert_true(took < 2000);
    ps_client_free(w);
    for (int i = 0; i < 2; i++)
        assert_int_equal(ps_server_wait(&cl.srv[i], EXIT_WAIT_MS), 0);
}

static void test_shutdown_dead_shard_reported_others_stop(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 3, NULL), 0);
    ps_server_kill(&cl.srv[1]);
    ps_client_cfg cfg = tool_cfg(cl.servers);
    cfg.timeout_ms = 300;
    ps_shard_result *res = NULL;
    size_t n = 0;
    char err[256] = "";
    int64_t t0 = now_ms();
    assert_int_equal(ps_client_shutdown(&cfg, &res, &n, err, sizeof(err)),
                     PS_ETIMEDOUT);
    /* The live shards were asked at once, not after the dead one. */
    assert_true(now_ms() - t0 < 5000);
    assert_non_null(res);
    assert_int_equal(n, 3);
    assert_int_equal(res[0].status, PS_OK);
    assert_int_equal(res[1].status, PS_ETIMEDOUT);
    assert_true(res[1].errmsg[0] != '\0');
    assert_int_equal(res[2].status, PS_OK);
    assert_non_null(strstr(err, "shard 1"));
    assert_non_null(strstr(err, cl.srv[1].endpoint));
    free(res);
    assert_int_equal(ps_server_wait(&cl.srv[0], EXIT_WAIT_MS), 0);
    assert_int_equal(ps_server_wait(&cl.srv[2], EXIT_WAIT_MS), 0);
}

static void test_shutdown_malformed_list_einval_nothing_sent(void **state)
{
    (void)state;
    const char *bad[] = {"", ",", "tcp://127.0.0.1:1,,tcp://127.0.0.1:2",
                         "nonsense"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ps_client_cfg cfg = tool_cfg(bad[i]);
        ps_shard_result *res = (ps_shard_result *)&cfg; /* must stay */
        size_t n = 77;
        char err[256] = "";
        assert_int_equal(ps_client_shutdown(&cfg, &res, &n, err, sizeof(err)),
                         PS_EINVAL);
        assert_ptr_equal(res, (ps_shard_result *)&cfg);
        assert_int_equal(n, 77);
        assert_true(err[0] != '\0');
    }
}

/* ---- drop ---- */

static uint64_t table_bytes(ps_client *c, const char *job, const char *name)
{
    ps_table_info *tabs;
    size_t n;
    assert_int_equal(ps_client_list_tables(c, job, &tabs, &n), PS_OK);
    uint64_t b = UINT64_MAX;
    for (size_t i = 0; i < n; i++)
        if (strcmp(tabs[i].name, name) == 0)
            b = tabs[i].bytes;
    ps_client_free_table_list(tabs, n);
    return b;
}

static size_t job_tables(ps_client *c, const char *job)
{
    ps_table_info *tabs;
    size_t n;
    assert_int_equal(ps_client_list_tables(c, job, &tabs, &n), PS_OK);
    ps_client_free_table_list(tabs, n);
    return n;
}

static void test_drop_reports_tables_and_bytes_per_shard(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    ps_client *a = connect_as(cl.servers, "job-a", -1);
    ps_client *b = connect_as(cl.servers, "job-b", -1);
    assert_non_null(a);
    assert_non_null(b);
    ps_table_spec w = dense("w", 1000), bias = dense("bias", 10);
    ps_table_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.name = "emb";
    sp.kind = PS_SPARSE;
    sp.dim = 8;
    sp.optim.kind = PS_OPT_SGD;
    sp.optim.lr = 0.1;
    int t;
    assert_int_equal(ps_client_define(a, &w, &t), PS_OK);
    assert_int_equal(ps_client_define(a, &bias, &t), PS_OK);
    assert_int_equal(ps_client_define(a, &sp, &t), PS_OK);
    uint64_t keys[4] = {1, 2, 3, 4};
    float g[32] = {0};
    ps_request *r;
    assert_int_equal(ps_client_push_sparse(a, t, keys, 4, g, &r), PS_OK);
    assert_int_equal(ps_client_wait(a, r, -1), PS_OK);
    assert_int_equal(ps_client_define(b, &w, &t), PS_OK);
    uint64_t w_bytes = table_bytes(a, "job-a", "w");
    uint64_t bias_bytes = table_bytes(a, "job-a", "bias");
    uint64_t emb_bytes = table_bytes(a, "job-a", "emb");
    uint64_t b_bytes = table_bytes(b, "job-b", "w");
    assert_true(w_bytes >= 1000 * 4 * 3); /* Adam: weights, m, v */
    assert_true(emb_bytes > 0);

    ps_shard_result res[2];
    assert_int_equal(ps_client_drop(a, NULL, "w", res), PS_OK);
    uint64_t sum = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(res[i].status, PS_OK);
        assert_int_equal(res[i].tables, 1);
        assert_true(res[i].bytes > 0);
        sum += res[i].bytes;
    }
    assert_int_equal(sum, w_bytes); /* what status counted, all of it */
    assert_int_equal(table_bytes(a, "job-a", "w"), UINT64_MAX);

    /* Again: no such table on any shard, said per shard. */
    assert_int_equal(ps_client_drop(a, NULL, "w", res), PS_ENOTABLE);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(res[i].status, PS_ENOTABLE);
        assert_int_equal(res[i].tables, 0);
        assert_non_null(strstr(res[i].errmsg, "no table 'w' in job 'job-a'"));
    }

    /* The rest of the job, by name; job-b keeps its table. */
    assert_int_equal(ps_client_drop(b, "job-a", NULL, res), PS_OK);
    sum = 0;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(res[i].status, PS_OK);
        assert_int_equal(res[i].tables, 2);
        sum += res[i].bytes;
    }
    assert_int_equal(sum, bias_bytes + emb_bytes);
    assert_int_equal(job_tables(a, "job-a"), 0);
    assert_int_equal(table_bytes(b, "job-b", "w"), b_bytes);

    /* A job without tables frees nothing and is not an error. */
    assert_int_equal(ps_client_drop(a, "job-a", NULL, res), PS_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(res[i].status, PS_OK);
        assert_int_equal(res[i].tables, 0);
        assert_int_equal(res[i].bytes, 0);
    }
    assert_int_equal(ps_client_drop(a, "", NULL, res), PS_EINVAL);
    ps_client_free(a);
    ps_client_free(b);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_shutdown_two_shards_both_exit_0,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_shutdown_late_requests_get_eshutdown,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_shutdown_training_client_fails_promptly,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_shutdown_dead_shard_reported_others_stop,
                                  ps_harness_teardown),
        cmocka_unit_test(test_shutdown_malformed_list_einval_nothing_sent),
        cmocka_unit_test_teardown(test_drop_reports_tables_and_bytes_per_shard,
                                  ps_harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
