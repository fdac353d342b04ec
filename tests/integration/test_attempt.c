/* Worker attempts on real servers: two clients with the same worker id and
 * different attempts (a stale process of a retried Spark stage and its
 * replacement). Once the newer attempt joins, the older one's pushes,
 * pulls and clocks are refused with PS_ESUPERSEDED and counted, the table
 * stays as it was, the newer one works from clock 0, an older attempt that
 * connects later is refused at its handshake, and the older one's
 * heartbeats no longer count. Once the newest attempt has gone silent past
 * the worker timeout, the id is free for any attempt. */
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
#include <unistd.h>

#define LEN 10 /* split over two shards: every request has two pieces */

static ps_client_cfg worker_cfg(const char *servers, int attempt)
{
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = servers;
    cfg.job = "attempts";
    cfg.worker_id = 0;
    cfg.attempt = attempt;
    cfg.heartbeat_ms = 100;
    cfg.timeout_ms = 2000;
    return cfg;
}

/* A client without a worker id (a tool): attempts do not concern it. */
static ps_client *tool_client(const char *servers)
{
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = servers;
    cfg.job = "attempts";
    return ps_harness_connect(&cfg);
}

static int define_table(ps_client *c)
{
    int t = ps_harness_define_sgd(c, "w", LEN, 1.0);
    assert_true(t >= 0);
    return t;
}

static int push_all(ps_client *c, int t, float g)
{
    float grad[LEN];
    for (int i = 0; i < LEN; i++)
        grad[i] = g;
    ps_request *r;
    int rc = ps_client_push(c, t, 0, LEN, grad, &r);
    return rc == PS_OK ? ps_client_wait(c, r, -1) : rc;
}

static int pull_all(ps_client *c, int t, float *out)
{
    ps_request *r;
    int rc = ps_client_pull(c, t, 0, LEN, out, &r);
    return rc == PS_OK ? ps_client_wait(c, r, -1) : rc;
}

/* What shard `shard` says about worker 0: its attempt, clock and the
 * messages it refused from older attempts; -1 when it does not list it. */
typedef struct seen {
    long long attempt, clock, superseded;
} seen;

static seen worker0(ps_client *tool, int shard)
{
    seen s = {-1, -1, -1};
    char *json = NULL;
    assert_int_equal(ps_client_status_json(tool, shard, &json), PS_OK);
    const char *w = strstr(json, "{\"id\":0,");
    const char *a = w ? strstr(w, "\"attempt\":") : NULL;
    const char *k = w ? strstr(w, "\"clock\":") : NULL;
    const char *x = w ? strstr(w, "\"superseded\":") : NULL;
    if (a && k && x) {
        s.attempt = strtoll(a + 10, NULL, 10);
        s.clock = strtoll(k + 8, NULL, 10);
        s.superseded = strtoll(x + 13, NULL, 10);
    }
    free(json);
    return s;
}

static void test_attempt_newer_supersedes_older(void **state)
{
    (void)state;
    ps_cluster cl;
    const char *extra[] = {"--consistency", "ssp:2", NULL};
    assert_int_equal(ps_cluster_start(&cl, 2, extra), 0);
    ps_client *tool = tool_client(cl.servers);
    assert_non_null(tool);

    ps_client_cfg oc = worker_cfg(cl.servers, 1);
    ps_client *old = ps_harness_connect(&oc);
    assert_non_null(old);
    int ot = define_table(old);
    assert_int_equal(push_all(old, ot, 1.0f), PS_OK);
    for (int k = 0; k < 3; k++)
        assert_int_equal(ps_client_clock(old), PS_OK);
    for (int sh = 0; sh < 2; sh++) {
        seen s = worker0(tool, sh);
        assert_int_equal(s.attempt, 1);
        assert_int_equal(s.clock, 3);
        assert_int_equal(s.superseded, 0);
    }

    /* The retried run's worker 0 joins: a fresh start at clock 0. */
    ps_client_cfg nc = worker_cfg(cl.servers, 2);
    ps_client *cur = ps_harness_connect(&nc);
    assert_non_null(cur);
    int nt = define_table(cur);
    for (int sh = 0; sh < 2; sh++) {
        seen s = worker0(tool, sh);
        assert_int_equal(s.attempt, 2);
        assert_int_equal(s.clock, 0);
    }

    /* The stale attempt is refused whatever it sends. */
    assert_int_equal(push_all(old, ot, 100.0f), PS_ESUPERSEDED);
    assert_non_null(strstr(ps_client_errmsg(old),
                           "a newer attempt 2 of worker 0 has joined; this "
                           "attempt 1 stops"));
    float v[LEN];
    assert_int_equal(pull_all(old, ot, v), PS_ESUPERSEDED);
    assert_int_equal(ps_client_clock(old), PS_ESUPERSEDED);

    /* The table holds the first push only; the current attempt works. */
    assert_int_equal(pull_all(cur, nt, v), PS_OK);
    for (int i = 0; i < LEN; i++)
        assert_true(v[i] == -1.0f);
    assert_int_equal(push_all(cur, nt, 2.0f), PS_OK);
    assert_int_equal(ps_client_clock(cur), PS_OK);
    assert_int_equal(pull_all(tool, define_table(tool), v), PS_OK);
    for (int i = 0; i < LEN; i++)
        assert_true(v[i] == -3.0f);

    /* Each shard refused a piece of the push, the pull and the clock. */
    seen s0 = worker0(tool, 0);
    assert_int_equal(s0.attempt, 2);
    assert_int_equal(s0.clock, 1);
    assert_true(s0.superseded >= 3);
    char *json = NULL;
    assert_int_equal(ps_client_status_json(tool, 0, &json), PS_OK);
    assert_non_null(strstr(json, "\"ESUPERSEDED\":"));
    free(json);

    /* The stale process's heartbeat thread still runs: its heartbeats are
     * refused and counted (no reply), so it never keeps worker 0 alive. */
    long long before = s0.superseded;
    for (int i = 0; i < 200 && worker0(tool, 0).superseded < before + 3; i++)
        usleep(50 * 1000);
    assert_true(worker0(tool, 0).superseded >= before + 3);

    /* An older attempt that connects now is refused at its handshake, as
     * is the first attempt. */
    for (int a = 0; a < 2; a++) {
        ps_client_cfg lc = worker_cfg(cl.servers, a);
        ps_client *late = NULL;
        char err[512];
        assert_int_equal(ps_client_new(&late, &lc, err, sizeof(err)),
                         PS_ESUPERSEDED);
        assert_null(late);
        char want[128];
        snprintf(want, sizeof(want),
                 "a newer attempt 2 of worker 0 has joined; this attempt %d "
                 "stops",
                 a);
        assert_non_null(strstr(err, want));
    }
    /* The current attempt is not disturbed by any of it. */
    assert_int_equal(push_all(cur, nt, 1.0f), PS_OK);
    assert_int_equal(pull_all(cur, nt, v), PS_OK);
    assert_true(v[0] == -4.0f);

    ps_client_free(old);
    ps_client_free(cur);
    ps_client_free(tool);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

/* A finished run's worker id is free once its last attempt has been
 * silent for the worker timeout: the next job's workers, whose attempts
 * start low again, join afresh. */
static void test_attempt_id_free_once_owner_silent(void **state)
{
    (void)state;
    ps_cluster cl;
    const char *extra[] = {"--worker-timeout", "300", NULL};
    assert_int_equal(ps_cluster_start(&cl, 1, extra), 0);
    ps_client *tool = tool_client(cl.servers);
    assert_non_null(tool);
    ps_client_cfg pc = worker_cfg(cl.servers, 7);
    ps_client *prev = ps_harness_connect(&pc);
    assert_non_null(prev);
    assert_int_equal(push_all(prev, define_table(prev), 1.0f), PS_OK);
    ps_client_free(prev); /* its run is over: no more heartbeats */
    char *json = NULL;
    int dead = 0;
    for (int i = 0; i < 200 && !dead; i++) {
        assert_int_equal(ps_client_status_json(tool, 0, &json), PS_OK);
        dead = strstr(json, "{\"id\":0,\"clock\":0,\"alive\":false") != NULL;
        free(json);
        if (!dead)
            usleep(50 * 1000);
    }
    assert_true(dead);
    ps_client_cfg nc = worker_cfg(cl.servers, 0);
    ps_client *next = ps_harness_connect(&nc);
    assert_non_null(next);
    assert_int_equal(push_all(next, define_table(next), 1.0f), PS_OK);
    assert_int_equal(worker0(tool, 0).attempt, 0);
    ps_client_free(next);
    ps_client_free(tool);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

/* Attempts belong to worker ids: another id, and tools (no worker id),
 * are not affected by worker 0's attempts. */
static void test_attempt_other_ids_unaffected(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 1, NULL), 0);
    ps_client_cfg nc = worker_cfg(cl.servers, 5);
    ps_client *cur = ps_harness_connect(&nc);
    assert_non_null(cur);
    int t = define_table(cur);
    ps_client_cfg oc = worker_cfg(cl.servers, 0);
    oc.worker_id = 1;
    ps_client *other = ps_harness_connect(&oc);
    assert_non_null(other);
    int ot = define_table(other);
    assert_int_equal(push_all(other, ot, 1.0f), PS_OK);
    ps_client *tool = tool_client(cl.servers);
    assert_non_null(tool);
    float v[LEN];
    assert_int_equal(pull_all(tool, define_table(tool), v), PS_OK);
    assert_true(v[0] == -1.0f);
    assert_int_equal(push_all(cur, t, 1.0f), PS_OK);
    ps_client_free(tool);
    ps_client_free(other);
    ps_client_free(cur);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

static void test_attempt_negative_refused_by_client(void **state)
{
    (void)state;
    ps_client_cfg cfg = worker_cfg("tcp://127.0.0.1:1", -1);
    ps_client *c = NULL;
    char err[256];
    assert_int_equal(ps_client_new(&c, &cfg, err, sizeof(err)), PS_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err, "attempt"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_attempt_newer_supersedes_older,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_attempt_id_free_once_owner_silent,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_attempt_other_ids_unaffected,
                                  ps_harness_teardown),
        cmocka_unit_test(test_attempt_negative_refused_by_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
