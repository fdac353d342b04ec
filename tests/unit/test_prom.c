/* Unit tests for common/prom.c, the Prometheus text exposition writer:
 * HELP/TYPE lines, label-value and help escaping, value text (NaN, +Inf,
 * shortest round trip, exact integers), cumulative histogram buckets with
 * _sum and _count, and a sample of every kind that promtool accepts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/prom.h"
#include "ps_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const double bounds[] = {0.001, 0.01, 0.1, 1};

static void test_prom_family_help_and_type_lines(void **st)
{
    (void)st;
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    ps_prom_family(&b, "sparkps_a_total", PS_PROM_COUNTER, "Things done.");
    ps_prom_family(&b, "sparkps_b", PS_PROM_GAUGE, "Level.");
    ps_prom_family(&b, "sparkps_c_seconds", PS_PROM_HISTOGRAM, "Latency.");
    assert_string_equal(b.data, "# HELP sparkps_a_total Things done.\n"
                                "# TYPE sparkps_a_total counter\n"
                                "# HELP sparkps_b Level.\n"
                                "# TYPE sparkps_b gauge\n"
                                "# HELP sparkps_c_seconds Latency.\n"
                                "# TYPE sparkps_c_seconds histogram\n");
    ps_strbuf_free(&b);
}

static void test_prom_family_help_escaped(void **st)
{
    (void)st;
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    /* HELP escapes backslash and newline only; quotes stay as they are. */
    ps_prom_family(&b, "m", PS_PROM_GAUGE, "a\\b\nc \"d\"");
    assert_string_equal(b.data, "# HELP m a\\\\b\\nc \"d\"\n"
                                "# TYPE m gauge\n");
    ps_strbuf_free(&b);
}

static void test_prom_sample_label_values_escaped(void **st)
{
    (void)st;
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    ps_prom_label l[] = {{"job", "a\"b"},
                         {"table", "c\\d\ne"},
                         {"utf8", "caf\xc3\xa9 {x}=,"},
                         {"empty", ""},
                         {NULL, NULL}};
    ps_prom_sample(&b, "m", l, 2);
    assert_string_equal(b.data, "m{job=\"a\\\"b\",table=\"c\\\\d\\ne\","
                                "utf8=\"caf\xc3\xa9 {x}=,\",empty=\"\"} 2\n");
    ps_strbuf_free(&b);
}

static void test_prom_sample_without_labels(void **st)
{
    (void)st;
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    ps_prom_sample(&b, "up", NULL, 1);
    ps_prom_label none[] = {{NULL, NULL}};
    ps_prom_sample(&b, "down", none, 0);
    assert_string_equal(b.data, "up 1\ndown 0\n");
    ps_strbuf_free(&b);
}

static const char *value_text(ps_strbuf *b, double v)
{
    b->len = 0;
    ps_prom_value(b, v);
    return b->data;
}

static void test_prom_value_special_and_shortest(void **st)
{
    (void)st;
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    assert_string_equal(value_text(&b, NAN), "NaN");
    assert_string_equal(value_text(&b, INFINITY), "+Inf");
    assert_string_equal(value_text(&b, -INFINITY), "-Inf");
    assert_string_equal(value_text(&b, 0), "0");
    assert_string_equal(value_text(&b, 0.1), "0.1");
    assert_string_equal(value_text(&b, -2.5), "-2.5");
    assert_string_equal(value_text(&b, 1e-6), "1e-06");
    assert_string_equal(value_text(&b, 12345678), "12345678");
    assert_string_equal(value_text(&b, -3), "-3");
    assert_string_equal(value_text(&b, 999999999999999.0), "999999999999999");
    assert_string_equal(value_text(&b, 1e15), "1e+15");
    assert_string_equal(value_text(&b, -0.0), "0");
    /* A value 15 digits cannot hold reads back exactly. */
    double third = 1.0 / 3.0;
    assert_true(strtod(value_text(&b, third), NULL) == third);
    assert_true(strtod(value_text(&b, 0.1 + 0.2), NULL) == 0.1 + 0.2);
    ps_strbuf_free(&b);
}

static void test_prom_sample_u64_exact(void **st)
{
    (void)st;
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    ps_prom_sample_u64(&b, "c_total", NULL, UINT64_MAX);
    ps_prom_sample_u64(&b, "c_total", NULL, (1ull << 53) + 1);
    assert_string_equal(b.data, "c_total 18446744073709551615\n"
                                "c_total 9007199254740993\n");
    ps_strbuf_free(&b);
}

static void test_prom_hist_buckets_cumulative(void **st)
{
    (void)st;
    ps_prom_hist h;
    ps_prom_hist_init(&h, bounds, 4);
    /* le is inclusive: 0.01 counts in the 0.01 bucket. */
    double obs[] = {0.0005, 0.01, 0.05, 0.05, 0.5, 7, NAN};
    for (size_t i = 0; i < sizeof(obs) / sizeof(*obs); i++)
        ps_prom_hist_observe(&h, obs[i]);
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    ps_prom_label l[] = {{"type", "push"}, {NULL, NULL}};
    ps_prom_hist_write(&b, "d_seconds", l, &h);
    assert_string_equal(b.data,
                        "d_seconds_bucket{type=\"push\",le=\"0.001\"} 1\n"
                        "d_seconds_bucket{type=\"push\",le=\"0.01\"} 2\n"
                        "d_seconds_bucket{type=\"push\",le=\"0.1\"} 4\n"
                        "d_seconds_bucket{type=\"push\",le=\"1\"} 5\n"
                        "d_seconds_bucket{type=\"push\",le=\"+Inf\"} 6\n"
                        "d_seconds_sum{type=\"push\"} 7.6105\n"
                        "d_seconds_count{type=\"push\"} 6\n");
    ps_strbuf_free(&b);
}

static void test_prom_hist_empty_and_unlabelled(void **st)
{
    (void)st;
    ps_prom_hist h;
    ps_prom_hist_init(&h, bounds, 1);
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    ps_prom_hist_write(&b, "e_seconds", NULL, &h);
    assert_string_equal(b.data, "e_seconds_bucket{le=\"0.001\"} 0\n"
                                "e_seconds_bucket{le=\"+Inf\"} 0\n"
                                "e_seconds_sum 0\n"
                                "e_seconds_count 0\n");
    ps_strbuf_free(&b);
}

/* Every kind of line the writer makes, as promtool sees it. */
static void test_prom_promtool_accepts_sample(void **st)
{
    (void)st;
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    ps_prom_family(&b, "sparkps_things_total", PS_PROM_COUNTER,
                   "Things, with \\ and\nnewline in the help.");
    ps_prom_label l1[] = {{"job", "quote\" back\\ nl\n"}, {NULL, NULL}};
    ps_prom_label l2[] = {{"job", "caf\xc3\xa9"}, {NULL, NULL}};
    ps_prom_sample_u64(&b, "sparkps_things_total", l1, 3);
    ps_prom_sample_u64(&b, "sparkps_things_total", l2, UINT64_MAX);
    ps_prom_family(&b, "sparkps_level", PS_PROM_GAUGE, "A level.");
    ps_prom_label w[3][2] = {{{"worker", "0"}, {NULL, NULL}},
                             {{"worker", "1"}, {NULL, NULL}},
                             {{"worker", "2"}, {NULL, NULL}}};
    ps_prom_sample(&b, "sparkps_level", w[0], NAN);
    ps_prom_sample(&b, "sparkps_level", w[1], INFINITY);
    ps_prom_sample(&b, "sparkps_level", w[2], -1e-300);
    ps_prom_family(&b, "sparkps_wait_seconds", PS_PROM_HISTOGRAM, "A latency.");
    ps_prom_hist h;
    ps_prom_hist_init(&h, bounds, 4);
    ps_prom_hist_observe(&h, 0.02);
    ps_prom_hist_observe(&h, 3);
    ps_prom_label t[] = {{"type", "pull"}, {NULL, NULL}};
    ps_prom_hist_write(&b, "sparkps_wait_seconds", t, &h);
    assert_false(ps_strbuf_failed(&b));
    char out[4096];
    int rc = ps_test_promtool(b.data, out, sizeof(out));
    if (rc == -2) {
        ps_strbuf_free(&b);
        skip(); /* promtool (Debian package prometheus) is not installed */
    }
    if (rc != 0)
        fail_msg("promtool check metrics exited %d:\n%s\non:\n%s", rc, out,
                 b.data);
    ps_strbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prom_family_help_and_type_lines),
        cmocka_unit_test(test_prom_family_help_escaped),
        cmocka_unit_test(test_prom_sample_label_values_escaped),
        cmocka_unit_test(test_prom_sample_without_labels),
        cmocka_unit_test(test_prom_value_special_and_shortest),
        cmocka_unit_test(test_prom_sample_u64_exact),
        cmocka_unit_test(test_prom_hist_buckets_cumulative),
        cmocka_unit_test(test_prom_hist_empty_and_unlabelled),
        cmocka_unit_test(test_prom_promtool_accepts_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
