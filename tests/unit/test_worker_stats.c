/* Unit tests for worker/worker_stats.c, a worker's own figures as
 * Prometheus text and JSON: nothing measured renders without figures (no
 * samples, nulls), measured figures render with the worker and attempt
 * labels and the phase split, label values are escaped, wait_share is
 * wait over all phases, and promtool accepts the exposition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ps_test.h"
#include "worker_stats.h"

#include <math.h>
#include <string.h>

static void render(const ps_worker_stats *s, ps_strbuf *prom, ps_strbuf *json)
{
    ps_strbuf_init(prom, 0);
    ps_strbuf_init(json, 0);
    ps_worker_stats_prom(s, prom);
    ps_worker_stats_json(s, json);
    assert_false(ps_strbuf_failed(prom));
    assert_false(ps_strbuf_failed(json));
}

/* A worker two steps in: 0.5 s compute, 1.5 s wait, 0 s input. */
static void two_steps(ps_worker_stats *s)
{
    ps_worker_stats_init(s, 3, 1, "cuda:0", "mlp:4-8-3");
    s->state = "training";
    s->epoch = 2;
    s->samples = 128;
    s->steps = 2;
    s->phase_s[PS_PHASE_COMPUTE] = 0.5;
    s->phase_s[PS_PHASE_WAIT] = 1.5;
    ps_prom_hist_observe(&s->step_s, 0.75);
    ps_prom_hist_observe(&s->step_s, 1.25);
    s->loss = 0.25;
    s->accuracy = 0.875;
    s->eval_epoch = 1;
    s->eval_loss = 0.5;
    s->eval_accuracy = 0.75;
    s->requests = 7;
    s->retries = 2;
    s->timeouts = 1;
    s->disconnects = 4;
}

static void test_worker_stats_starting_has_no_figures(void **st)
{
    (void)st;
    ps_worker_stats s;
    ps_worker_stats_init(&s, 0, 0, "cpu", "softmax");
    assert_true(isnan(ps_worker_stats_wait_share(&s)));
    ps_strbuf p, j;
    render(&s, &p, &j);
    assert_non_null(strstr(p.data, "sparkps_trainer_info{worker=\"0\","
                                   "attempt=\"0\",device=\"cpu\",model="
                                   "\"softmax\",state=\"starting\"} 1\n"));
    assert_non_null(strstr(
        p.data, "sparkps_trainer_samples_total{worker=\"0\",attempt=\"0\"} 0\n"));
    /* a family without a figure has its header and no sample */
    assert_non_null(strstr(p.data, "# TYPE sparkps_trainer_train_loss gauge\n"
                                   "# HELP sparkps_trainer_train_accuracy"));
    assert_null(strstr(p.data, "sparkps_trainer_eval_loss{"));
    assert_string_equal(
        j.data,
        "{\"worker\":0,\"attempt\":0,\"device\":\"cpu\",\"model\":\"softmax\","
        "\"state\":\"starting\",\"epoch\":0,\"samples\":0,\"steps\":0,"
        "\"seconds\":{\"compute\":0,\"wait\":0,\"input\":0},"
        "\"wait_share\":null,\"step_seconds\":{\"count\":0,\"sum\":0},"
        "\"train\":{\"loss\":null,\"accuracy\":null},\"eval\":null,"
        "\"client\":{\"requests\":0,\"retries\":0,\"timeouts\":0,"
        "\"disconnects\":0}}\n");
    ps_strbuf_free(&p);
    ps_strbuf_free(&j);
}

static void test_worker_stats_figures_render(void **st)
{
    (void)st;
    ps_worker_stats s;
    two_steps(&s);
    assert_true(fabs(ps_worker_stats_wait_share(&s) - 0.75) < 1e-12);
    ps_strbuf p, j;
    render(&s, &p, &j);
    static const char *const want[] = {
        "sparkps_trainer_info{worker=\"3\",attempt=\"1\",device=\"cuda:0\","
        "model=\"mlp:4-8-3\",state=\"training\"} 1\n",
        "sparkps_trainer_samples_total{worker=\"3\",attempt=\"1\"} 128\n",
        "sparkps_trainer_steps_total{worker=\"3\",attempt=\"1\"} 2\n",
        "sparkps_trainer_step_phase_seconds_total{worker=\"3\",attempt=\"1\","
        "phase=\"compute\"} 0.5\n",
        "sparkps_trainer_step_phase_seconds_total{worker=\"3\",attempt=\"1\","
        "phase=\"wait\"} 1.5\n",
        "sparkps_trainer_step_phase_seconds_total{worker=\"3\",attempt=\"1\","
        "phase=\"input\"} 0\n",
        "sparkps_trainer_step_duration_seconds_bucket{worker=\"3\","
        "attempt=\"1\",le=\"0.5\"} 0\n",
        "sparkps_trainer_step_duration_seconds_bucket{worker=\"3\","
        "attempt=\"1\",le=\"1\"} 1\n",
        "sparkps_trainer_step_duration_seconds_bucket{worker=\"3\","
        "attempt=\"1\",le=\"2.5\"} 2\n",
        "sparkps_trainer_step_duration_seconds_sum{worker=\"3\","
        "attempt=\"1\"} 2\n",
        "sparkps_trainer_epoch{worker=\"3\",attempt=\"1\"} 2\n",
        "sparkps_trainer_train_loss{worker=\"3\",attempt=\"1\"} 0.25\n",
        "sparkps_trainer_eval_epoch{worker=\"3\",attempt=\"1\"} 1\n",
        "sparkps_trainer_eval_accuracy{worker=\"3\",attempt=\"1\"} 0.75\n",
        "sparkps_trainer_retries_total{worker=\"3\",attempt=\"1\"} 2\n",
        "sparkps_trainer_disconnects_total{worker=\"3\",attempt=\"1\"} 4\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(p.data, want[i]) == NULL)
            fail_msg("missing %s in:\n%s", want[i], p.data);
    assert_string_equal(
        j.data,
        "{\"worker\":3,\"attempt\":1,\"device\":\"cuda:0\",\"model\":"
        "\"mlp:4-8-3\",\"state\":\"training\",\"epoch\":2,\"samples\":128,"
        "\"steps\":2,\"seconds\":{\"compute\":0.5,\"wait\":1.5,\"input\":0},"
        "\"wait_share\":0.75,\"step_seconds\":{\"count\":2,\"sum\":2},"
        "\"train\":{\"loss\":0.25,\"accuracy\":0.875},\"eval\":{\"epoch\":1,"
        "\"loss\":0.5,\"accuracy\":0.75},\"client\":{\"requests\":7,"
        "\"retries\":2,\"timeouts\":1,\"disconnects\":4}}\n");
    ps_strbuf_free(&p);
    ps_strbuf_free(&j);
}

/* Device and model are the user's text: escaped in labels and JSON. */
static void test_worker_stats_user_text_escaped(void **st)
{
    (void)st;
    ps_worker_stats s;
    ps_worker_stats_init(&s, 0, 0, "cpu", "a\"b\\c\nd");
    ps_strbuf p, j;
    render(&s, &p, &j);
    assert_non_null(strstr(p.data, "model=\"a\\\"b\\\\c\\nd\""));
    assert_non_null(strstr(j.data, "\"model\":\"a\\\"b\\\\c\\nd\""));
    ps_strbuf_free(&p);
    ps_strbuf_free(&j);
}

/* A device or model longer than the struct holds is cut, not overrun. */
static void test_worker_stats_long_text_cut(void **st)
{
    (void)st;
    char long_model[400];
    memset(long_model, 'm', sizeof(long_model) - 1);
    long_model[sizeof(long_model) - 1] = '\0';
    ps_worker_stats s;
    ps_worker_stats_init(&s, 0, 0, long_model, long_model);
    assert_int_equal(strlen(s.model), sizeof(s.model) - 1);
    assert_int_equal(strlen(s.device), sizeof(s.device) - 1);
}

static void test_worker_stats_promtool_accepts(void **st)
{
    (void)st;
    ps_worker_stats s;
    two_steps(&s);
    ps_strbuf p, j;
    render(&s, &p, &j);
    char out[4096];
    int rc = ps_test_promtool(p.data, out, sizeof(out));
    ps_strbuf_free(&j);
    if (rc == -2) {
        ps_strbuf_free(&p);
        skip(); /* promtool (Debian package prometheus) is not installed */
    }
    if (rc != 0)
        fail_msg("promtool check metrics exited %d:\n%s\non:\n%s", rc, out,
                 p.data);
    ps_strbuf_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_worker_stats_starting_has_no_figures),
        cmocka_unit_test(test_worker_stats_figures_render),
        cmocka_unit_test(test_worker_stats_user_text_escaped),
        cmocka_unit_test(test_worker_stats_long_text_cut),
        cmocka_unit_test(test_worker_stats_promtool_accepts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
