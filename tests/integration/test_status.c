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
    char err[256];
    ps_client *c = NULL;
    if (ps_client_new(&c, &cfg, err, sizeof(err)) != PS_OK)
        fprintf(stderr, "connect: %s\n", err);
    return c;
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_status_shows_tables_workers_progress,
                                  ps_harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
