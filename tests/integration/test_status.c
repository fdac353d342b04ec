/* Status: what a shard reports to tools: its identity, tables with their
 * ranges, workers with clocks and the progress they piggyback on pushes and
 * clocks (reaching every shard, so any one shows the whole cluster), and
 * request/error counters. */
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

static ps_client *connect_as(const char *servers, int worker)
{
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = servers;
    cfg.job = "st";
    cfg.worker_id = worker;
    return ps_harness_connect(&cfg);
}

static void test_status_shows_tables_workers_progress(void **state)
{
    (void)state;
    ps_cluster cl;
    const char *extra[] = {"--consistency", "ssp:3", "--cluster-id",
                           "status-test", NULL};
    assert_int_equal(ps_cluster_start(&cl, 2, extra), 0);
    ps_client *w = connect_as(cl.servers, 7);
    assert_non_null(w);
    ps_table_spec s;
    memset(&s, 0, sizeof(s));
    s.name = "fc1.weight";
    s.kind = PS_DENSE;
    s.len = 10;
    s.optim.kind = PS_OPT_ADAGRAD;
    s.optim.lr = 0.1;
    int t;
    assert_int_equal(ps_client_define(w, &s, &t), PS_OK);
    /* Progress set before a push that only reaches shard 0 ... */
    ps_client_set_progress(w, 640, 0.25, 1, 0.875);
    float g[10] = {0};
    ps_request *r;
    assert_int_equal(ps_client_push(w, t, 0, 2, g, &r), PS_OK);
    assert_int_equal(ps_client_wait(w, r, -1), PS_OK);
    /* ... and the clock reaches shard 1 with it. */
    assert_int_equal(ps_client_clock(w), PS_OK);

    ps_client *tool = connect_as(cl.servers, -1);
    assert_non_null(tool);
    for (int shard = 0; shard < 2; shard++) {
        char *json = NULL;
        assert_int_equal(ps_client_status_json(tool, shard, &json), PS_OK);
        char want[128];
        snprintf(want, sizeof(want), "\"shard\":%d,\"shards\":2", shard);
        assert_non_null(strstr(json, want));
        assert_non_null(strstr(json, "\"cluster_id\":\"status-test\""));
        assert_non_null(
            strstr(json, "\"consistency\":\"ssp\",\"staleness\":3"));
        assert_non_null(strstr(json, "\"name\":\"fc1.weight\""));
        assert_non_null(strstr(json, "\"optimizer\":\"adagrad\""));
        snprintf(want, sizeof(want), "\"lo\":%d,\"hi\":%d", shard * 5,
                 shard * 5 + 5);
        assert_non_null(strstr(json, want));
        assert_non_null(
            strstr(json, "{\"id\":7,\"clock\":1,\"alive\":true,\"idle_ms\":"));
        assert_non_null(strstr(json, "\"samples\":640,\"epoch\":1,"
                                     "\"loss\":0.25,\"accuracy\":0.875"));
        assert_non_null(strstr(json, "\"CLOCK\":1"));
        assert_non_null(strstr(json, "\"DEFINE_TABLE\":1"));
        free(json);
    }
    char *json = NULL;
    assert_int_equal(ps_client_status_json(tool, 2, &json), PS_EINVAL);
    ps_client_free(w);
    ps_client_free(tool);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

/* Sends n evaluations (epochs first..first+n-1) as worker `worker`. */
static void send_evals(const char *servers, int worker, uint32_t first,
                       uint32_t n)
{
    ps_client *w = connect_as(servers, worker);
    assert_non_null(w);
    for (uint32_t e = first; e < first + n; e++) {
        ps_eval ev = {e, 64u * e, 0.5, 0.75, 0.25, 0.875, NAN};
        ps_client_set_eval(w, &ev);
        assert_int_equal(ps_client_send_progress(w), PS_OK);
    }
    ps_client_free(w);
}

/* Each worker keeps its newest 1000 evaluations; a Status holding them for
 * two workers is far over the 64 KiB of a request header and still
 * reaches the client. */
static void test_status_history_bounded_and_large(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 1, NULL), 0);
    send_evals(cl.servers, 0, 1, 1005);
    send_evals(cl.servers, 1, 1, 700);
    send_evals(cl.servers, 1, 700, 1); /* a repeat: not recorded again */
    ps_client *tool = connect_as(cl.servers, -1);
    assert_non_null(tool);
    char *json = NULL;
    assert_int_equal(ps_client_status_json(tool, 0, &json), PS_OK);
    print_message("status of %zu bytes\n", strlen(json));
    assert_true(strlen(json) > 64 * 1024);
    const char *w0 = strstr(json, "{\"id\":0,");
    const char *w1 = strstr(json, "{\"id\":1,");
    assert_non_null(w0);
    assert_non_null(w1);
    assert_non_null(strstr(w0, "\"history\":[{\"epoch\":6,\"samples\":384,"));
    assert_non_null(strstr(w0, "{\"epoch\":1005,\"samples\":64320,"));
    assert_non_null(strstr(w1, "\"history\":[{\"epoch\":1,\"samples\":64,"));
    size_t n0 = 0, n1 = 0;
    for (const char *p = w0; (p = strstr(p, "{\"epoch\":")) && p < w1; p++)
        n0++;
    for (const char *p = w1; (p = strstr(p, "{\"epoch\":")); p++)
        n1++;
    assert_int_equal(n0, 1000);
    assert_int_equal(n1, 700);
    free(json);
    ps_client_free(tool);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_status_shows_tables_workers_progress,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_status_history_bounded_and_large,
                                  ps_harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
