/* Unit tests for server/metrics.c (/metrics of a shard, rendered from a
 * Status and the loop's own counters) and for the history part of
 * common/status_json.c (/status and `ps-ctl status --json`). The Status is
 * built by hand: two tables (dense, sparse with a name that needs
 * escaping), two workers (one dead), a history with a missing figure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/status_json.h"
#include "metrics.h"
#include "ps_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct fixture {
    Sparkps__Status st;
    Sparkps__Hello hello;
    Sparkps__TableInfo t[2], *tp[2];
    Sparkps__WorkerInfo w[2], *wp[2];
    Sparkps__Progress pr;
    Sparkps__EpochEval ev[2], *evp[2];
    Sparkps__Counter rq[2], *rqp[2], er[1], *erp[1];
    ps_metrics m;
    ps_strbuf out;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    sparkps__status__init(&f->st);
    sparkps__hello__init(&f->hello);
    f->hello.cluster_id = "c1";
    f->hello.shard = 1;
    f->hello.shards = 2;
    f->hello.consistency = SPARKPS__CONSISTENCY__SSP;
    f->hello.staleness = 3;
    f->st.server = &f->hello;
    f->st.uptime_ms = 2500;
    f->st.pending_pulls = 4;
    for (int i = 0; i < 2; i++) {
        sparkps__table_info__init(&f->t[i]);
        f->tp[i] = &f->t[i];
        f->t[i].job = "j";
    }
    f->t[0].name = "fc1.weight";
    f->t[0].kind = SPARKPS__TABLE_KIND__DENSE;
    f->t[0].lo = 100;
    f->t[0].hi = 250;
    f->t[0].bytes = 1800;
    f->t[0].values_applied = 3000;
    f->t[1].name = "emb\"x";
    f->t[1].kind = SPARKPS__TABLE_KIND__SPARSE;
    f->t[1].rows = 7;
    f->t[1].dim = 4;
    f->t[1].bytes = 200;
    f->st.tables = f->tp;
    f->st.n_tables = 2;
    for (int i = 0; i < 2; i++) {
        sparkps__worker_info__init(&f->w[i]);
        f->wp[i] = &f->w[i];
        sparkps__epoch_eval__init(&f->ev[i]);
        f->evp[i] = &f->ev[i];
    }
    f->w[0].id = 0;
    f->w[0].clock = 12;
    f->w[0].alive = 1;
    f->w[0].idle_ms = 1500;
    sparkps__progress__init(&f->pr);
    f->pr.samples = 12800;
    f->pr.loss = 0.25;
    f->pr.epoch = 3;
    f->pr.accuracy = 0.75;
    f->w[0].progress = &f->pr;
    f->ev[0].epoch = 1;
    f->ev[0].samples = 6400;
    f->ev[0].time_ms = 1700000000000ull;
    f->ev[0].has_train_loss = 1;
    f->ev[0].train_loss = 0.5; /* no held-out data in epoch 1 */
    f->ev[1].epoch = 2;
    f->ev[1].samples = 12800;
    f->ev[1].time_ms = 1700000001000ull;
    f->ev[1].has_loss = f->ev[1].has_accuracy = 1;
    f->ev[1].loss = 0.375;
    f->ev[1].accuracy = 0.875;
    f->w[0].history = f->evp;
    f->w[0].n_history = 2;
    f->w[1].id = 5;
    f->w[1].clock = 2; /* dead: not the minimum of the live ones */
    f->w[1].attempt = 2;
    f->w[1].superseded = 7;
    f->st.workers = f->wp;
    f->st.n_workers = 2;
    const char *names[2] = {"PUSH", "PULL"};
    for (int i = 0; i < 2; i++) {
        sparkps__counter__init(&f->rq[i]);
        f->rq[i].name = (char *)names[i];
        f->rq[i].value = 10 + (uint64_t)i;
        f->rqp[i] = &f->rq[i];
    }
    f->st.requests = f->rqp;
    f->st.n_requests = 2;
    sparkps__counter__init(&f->er[0]);
    f->er[0].name = "ERANGE";
    f->er[0].value = 3;
    f->erp[0] = &f->er[0];
    f->st.errors = f->erp;
    f->st.n_errors = 1;
    ps_metrics_init(&f->m);
    ps_strbuf_init(&f->out, 0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ps_strbuf_free(&f->out);
    free(f);
    return 0;
}

static const char *render(fixture *f)
{
    f->out.len = 0;
    ps_metrics_render(&f->m, &f->st, &f->out);
    assert_false(ps_strbuf_failed(&f->out));
    return f->out.data;
}

/* The exposition holds this exact line. */
static void has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return;
    fail_msg("no line \"%s\" in:\n%s", line, text);
}

static void lacks(const char *text, const char *what)
{
    if (strstr(text, what) != NULL)
        fail_msg("\"%s\" should not be in:\n%s", what, text);
}

static void test_metrics_render_server_families(void **state)
{
    fixture *f = *state;
    f->m.bytes_in[SPARKPS__MSG_TYPE__PUSH] = 4096;
    f->m.bytes_in[0] = 9;
    f->m.bytes_out[SPARKPS__MSG_TYPE__PULL] = 8192;
    f->m.apply_ns = 1500000000;
    f->m.http_ns = 250000000;
    const char *t = render(f);
    has_line(t, "sparkps_shard_info{cluster_id=\"c1\",shard=\"1\","
                "shards=\"2\",consistency=\"ssp:3\"} 1");
    has_line(t, "sparkps_uptime_seconds 2.5");
    has_line(t, "sparkps_requests_total{type=\"push\"} 10");
    has_line(t, "sparkps_requests_total{type=\"pull\"} 11");
    has_line(t, "sparkps_received_bytes_total{type=\"push\"} 4096");
    has_line(t, "sparkps_received_bytes_total{type=\"invalid\"} 9");
    has_line(t, "sparkps_received_bytes_total{type=\"scan\"} 0");
    has_line(t, "sparkps_sent_bytes_total{type=\"pull\"} 8192");
    has_line(t, "sparkps_errors_total{code=\"ERANGE\"} 3");
    has_line(t, "sparkps_errors_total{code=\"EBADGRAD\"} 0");
    lacks(t, "EDEFERRED");
    has_line(t, "sparkps_optimizer_apply_seconds_total 1.5");
    has_line(t, "sparkps_http_busy_seconds_total 0.25");
    has_line(t, "sparkps_pending_pulls 4");
    has_line(t, "# TYPE sparkps_request_duration_seconds histogram");
}

static void test_metrics_render_latency_histogram(void **state)
{
    fixture *f = *state;
    ps_metrics_observe(&f->m, SPARKPS__MSG_TYPE__PULL, 0.0003);
    ps_metrics_observe(&f->m, SPARKPS__MSG_TYPE__PULL, 2.0);
    ps_metrics_observe(&f->m, SPARKPS__MSG_TYPE__CLOCK, 1.0); /* ignored */
    const char *t = render(f);
    has_line(t, "sparkps_request_duration_seconds_bucket{type=\"pull\","
                "le=\"0.00025\"} 0");
    has_line(t, "sparkps_request_duration_seconds_bucket{type=\"pull\","
                "le=\"0.0005\"} 1");
    has_line(t, "sparkps_request_duration_seconds_bucket{type=\"pull\","
                "le=\"2.5\"} 2");
    has_line(t, "sparkps_request_duration_seconds_bucket{type=\"pull\","
                "le=\"+Inf\"} 2");
    has_line(t, "sparkps_request_duration_seconds_count{type=\"pull\"} 2");
    has_line(t, "sparkps_request_duration_seconds_count{type=\"push\"} 0");
    has_line(t, "sparkps_request_duration_seconds_count{type=\"pushpull\"} 0");
    lacks(t, "type=\"clock\",le=");
}

static void test_metrics_render_tables(void **state)
{
    fixture *f = *state;
    const char *t = render(f);
    has_line(t, "sparkps_table_values{job=\"j\",table=\"fc1.weight\"} 150");
    has_line(t, "sparkps_table_values{job=\"j\",table=\"emb\\\"x\"} 28");
    has_line(t, "sparkps_table_rows{job=\"j\",table=\"emb\\\"x\"} 7");
    lacks(t, "sparkps_table_rows{job=\"j\",table=\"fc1.weight\"}");
    has_line(t, "sparkps_table_memory_bytes{job=\"j\",table=\"fc1.weight\"} "
                "1800");
    has_line(t, "sparkps_optimizer_applied_values_total{job=\"j\","
                "table=\"fc1.weight\"} 3000");
    has_line(t, "sparkps_memory_bytes 2000");
}

static void test_metrics_render_workers(void **state)
{
    fixture *f = *state;
    f->w[1].alive = 0;
    const char *t = render(f);
    has_line(t, "sparkps_workers_live 1");
    has_line(t, "sparkps_worker_alive{worker=\"0\"} 1");
    has_line(t, "sparkps_worker_alive{worker=\"5\"} 0");
    has_line(t, "sparkps_worker_clock{worker=\"5\"} 2");
    /* Staleness counts live workers only: worker 0 is the slowest. */
    has_line(t, "sparkps_worker_staleness{worker=\"0\"} 0");
    lacks(t, "sparkps_worker_staleness{worker=\"5\"}");
    has_line(t, "sparkps_worker_samples_total{worker=\"0\"} 12800");
    has_line(t, "sparkps_worker_loss{worker=\"0\"} 0.25");
    has_line(t, "sparkps_worker_train_accuracy{worker=\"0\"} 0.75");
    has_line(t, "sparkps_worker_epoch{worker=\"0\"} 3");
    has_line(t, "sparkps_worker_accuracy{worker=\"0\"} 0.875");
    has_line(t, "sparkps_worker_eval_loss{worker=\"0\"} 0.375");
    has_line(t, "sparkps_worker_idle_seconds{worker=\"0\"} 1.5");
    /* Attempts: worker 5 joined as attempt 2 and refused 7 messages of an
     * older attempt. */
    has_line(t, "sparkps_worker_attempt{worker=\"0\"} 0");
    has_line(t, "sparkps_worker_attempt{worker=\"5\"} 2");
    has_line(t, "sparkps_worker_superseded_total{worker=\"5\"} 7");
    /* Worker 5 reported no progress: no progress series for it. */
    lacks(t, "sparkps_worker_samples_total{worker=\"5\"}");
    /* Alive again and ahead: its staleness is against the slowest. */
    f->w[1].alive = 1;
    f->w[1].clock = 15;
    t = render(f);
    has_line(t, "sparkps_worker_staleness{worker=\"5\"} 3");
}

static void test_metrics_render_promtool_clean(void **state)
{
    fixture *f = *state;
    ps_metrics_observe(&f->m, SPARKPS__MSG_TYPE__PUSH, 0.001);
    f->pr.loss = NAN; /* NaN must stay valid exposition */
    const char *t = render(f);
    char out[8192];
    int rc = ps_test_promtool(t, out, sizeof(out));
    if (rc == -2)
        skip(); /* promtool (Debian package prometheus) is not installed */
    if (rc != 0)
        fail_msg("promtool check metrics exited %d:\n%s\non:\n%s", rc, out, t);
}

static void test_status_json_history(void **state)
{
    fixture *f = *state;
    f->ev[1].has_auc = 1;
    f->ev[1].auc = 0.9375;
    ps_status_json(&f->st, &f->out);
    assert_false(ps_strbuf_failed(&f->out));
    const char *want =
        "\"history\":[{\"epoch\":1,\"samples\":6400,"
        "\"time_ms\":1700000000000,\"loss\":null,\"accuracy\":null,"
        "\"train_loss\":0.5,\"train_accuracy\":null,\"auc\":null},"
        "{\"epoch\":2,\"samples\":12800,\"time_ms\":1700000001000,"
        "\"loss\":0.375,\"accuracy\":0.875,\"train_loss\":null,"
        "\"train_accuracy\":null,\"auc\":0.9375}]}";
    if (strstr(f->out.data, want) == NULL)
        fail_msg("no %s in %s", want, f->out.data);
    /* A worker without evaluations has an empty history; its attempt and
     * the messages refused from older attempts are listed. */
    assert_non_null(strstr(f->out.data, "{\"id\":5,\"clock\":2,\"alive\":false,"
                                        "\"idle_ms\":0,\"attempt\":2,"
                                        "\"superseded\":7,\"history\":[]}"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_metrics_render_server_families,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_render_latency_histogram,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_render_tables, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_metrics_render_workers, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_metrics_render_promtool_clean,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_json_history, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
