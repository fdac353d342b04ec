/* Unit tests for worker/lr_schedule.c: each schedule's factor at hand-
 * computed points, warm-up, and every malformed spec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lr_schedule.h"
#include "ps_test.h"

#include "common/sparkps_err.h"

#include <math.h>
#include <string.h>

static ps_lr_schedule parse_ok(const char *spec, int epochs, uint64_t warmup)
{
    ps_lr_schedule s;
    char err[128];
    assert_int_equal(ps_lr_schedule_parse(&s, spec, epochs, warmup, err,
                                          sizeof(err)),
                     PS_OK);
    return s;
}

static void test_lr_constant_is_one(void **st)
{
    (void)st;
    ps_lr_schedule s = parse_ok(NULL, 10, 0);
    assert_near(ps_lr_schedule_factor(&s, 0, 1), 1.0, 0);
    assert_near(ps_lr_schedule_factor(&s, 9.9, 5000), 1.0, 0);
    s = parse_ok("constant", 10, 0);
    assert_near(ps_lr_schedule_factor(&s, 3, 7), 1.0, 0);
}

static void test_lr_step_decays_every_e_epochs(void **st)
{
    (void)st;
    ps_lr_schedule s = parse_ok("step:2:0.5", 10, 0);
    assert_near(ps_lr_schedule_factor(&s, 0, 1), 1.0, 1e-12);
    assert_near(ps_lr_schedule_factor(&s, 1.99, 1), 1.0, 1e-12);
    assert_near(ps_lr_schedule_factor(&s, 2.0, 1), 0.5, 1e-12);
    assert_near(ps_lr_schedule_factor(&s, 5.5, 1), 0.25, 1e-12);
    assert_near(ps_lr_schedule_factor(&s, 6.0, 1), 0.125, 1e-12);
    s = parse_ok("step:0.5:0.1", 3, 0); /* fractional epochs */
    assert_near(ps_lr_schedule_factor(&s, 1.0, 1), 0.01, 1e-12);
}

static void test_lr_cosine_halfway_and_floor(void **st)
{
    (void)st;
    ps_lr_schedule s = parse_ok("cosine", 10, 0);
    assert_near(ps_lr_schedule_factor(&s, 0, 1), 1.0, 1e-12);
    assert_near(ps_lr_schedule_factor(&s, 5, 1), 0.5, 1e-12);
    assert_near(ps_lr_schedule_factor(&s, 2.5, 1),
                0.5 * (1 + cos(M_PI / 4)), 1e-12);
    /* The end is clamped above 0 so the servers always accept it. */
    assert_true(ps_lr_schedule_factor(&s, 10, 1) > 0);
    assert_true(ps_lr_schedule_factor(&s, 10, 1) <= 1e-6);
    s = parse_ok("cosine:0.1", 4, 0);
    assert_near(ps_lr_schedule_factor(&s, 4, 1), 0.1, 1e-12);
    assert_near(ps_lr_schedule_factor(&s, 40, 1), 0.1, 1e-12);
    assert_near(ps_lr_schedule_factor(&s, 2, 1), 0.55, 1e-12);
}

static void test_lr_warmup_ramps_linearly(void **st)
{
    (void)st;
    ps_lr_schedule s = parse_ok("cosine", 10, 100);
    assert_near(ps_lr_schedule_factor(&s, 0, 1), 0.01, 1e-12);
    assert_near(ps_lr_schedule_factor(&s, 0, 50), 0.5, 1e-12);
    assert_near(ps_lr_schedule_factor(&s, 0, 100), 1.0, 1e-12);
    /* Warm-up multiplies the schedule underneath it. */
    assert_near(ps_lr_schedule_factor(&s, 5, 50), 0.25, 1e-12);
    assert_near(ps_lr_schedule_factor(&s, 0, 0), 0.01, 1e-12);
}

static void test_lr_bad_specs_einval_named(void **st)
{
    (void)st;
    static const char *bad[] = {
        "linear",     "step",     "step:2",   "step:0:0.5", "step:2:0",
        "step:2:1.5", "step:x:1", "step:2:1x", "cosine:1",  "cosine:-0.1",
        "cosine:",    "cosine0",  "step:nan:0.5", "cosine:inf",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ps_lr_schedule s;
        char err[128] = "";
        assert_int_equal(ps_lr_schedule_parse(&s, bad[i], 5, 0, err,
                                              sizeof(err)),
                         PS_EINVAL);
        assert_non_null(strstr(err, "--lr-schedule"));
        assert_non_null(strstr(err, bad[i]));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lr_constant_is_one),
        cmocka_unit_test(test_lr_step_decays_every_e_epochs),
        cmocka_unit_test(test_lr_cosine_halfway_and_floor),
        cmocka_unit_test(test_lr_warmup_ramps_linearly),
        cmocka_unit_test(test_lr_bad_specs_einval_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
