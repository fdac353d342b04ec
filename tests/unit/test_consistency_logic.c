/* Unit tests for server/consistency.c: when ASP / SSP / BSP serve a pull,
 * clocks that only go up, expected workers, liveness by timeout, parsing of
 * the mode string and the status accessors. Time is passed explicitly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "server/consistency.h"

#include <string.h>

#define T0 1000000 /* creation time, ms */
#define TIMEOUT 500

static ps_consist *new_or_fail(int mode, int staleness, int expected)
{
    ps_consist_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.mode = mode;
    cfg.staleness = staleness;
    cfg.expected = expected;
    cfg.timeout_ms = TIMEOUT;
    ps_consist *c = NULL;
    assert_int_equal(ps_consist_new(&c, &cfg, T0), PS_OK);
    assert_non_null(c);
    return c;
}

static const ps_worker_state *worker(const ps_consist *c, uint32_t id)
{
    const ps_worker_state *w;
    for (size_t i = 0; (w = ps_consist_worker_at(c, i)) != NULL; i++)
        if (w->id == id)
            return w;
    return NULL;
}

static void test_consistency_can_serve_asp_always(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_ASP, 0, 0);
    assert_int_equal(ps_consist_mode(c), PS_CONS_ASP);
    assert_int_equal(ps_consist_touch(c, 0, T0), PS_OK);
    assert_int_equal(ps_consist_touch(c, 1, T0), PS_OK);
    ps_consist_set_clock(c, 0, 100);
    /* Worker 1 is at 0, far behind: ASP does not care. */
    assert_int_equal(ps_consist_min_clock(c), 0);
    assert_true(ps_consist_can_serve(c, 100));
    assert_true(ps_consist_can_serve(c, 1000000));
    ps_consist_free(c);
}

static void test_consistency_can_serve_ssp1_table(void **st)
{
    (void)st;
    static const struct {
        int64_t c0, c1, pull;
        int serve;
    } cases[] = {
        /* min = min(c0, c1); served iff min >= pull - 1 */
        {0, 0, 0, 1}, {0, 0, 1, 1}, {0, 0, 2, 0}, {3, 5, 4, 1},
        {3, 5, 5, 0}, {5, 3, 4, 1}, {5, 3, 5, 0}, {7, 7, 8, 1},
        {7, 7, 9, 0}, {2, 9, 3, 1}, {2, 9, 9, 0}, {0, 10, 1, 1},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        ps_consist *c = new_or_fail(PS_CONS_SSP, 1, 0);
        assert_int_equal(ps_consist_staleness(c), 1);
        assert_int_equal(ps_consist_touch(c, 0, T0), PS_OK);
        assert_int_equal(ps_consist_touch(c, 1, T0), PS_OK);
        ps_consist_set_clock(c, 0, cases[k].c0);
        ps_consist_set_clock(c, 1, cases[k].c1);
        int64_t min = cases[k].c0 < cases[k].c1 ? cases[k].c0 : cases[k].c1;
        assert_int_equal(ps_consist_min_clock(c), min);
        if (ps_consist_can_serve(c, cases[k].pull) != cases[k].serve)
            fail_msg("case %zu: clocks %lld,%lld pull at %lld: want %d", k,
                     (long long)cases[k].c0, (long long)cases[k].c1,
                     (long long)cases[k].pull, cases[k].serve);
        ps_consist_free(c);
    }
}

static void test_consistency_new_bsp_forces_staleness_zero(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_BSP, 3, 0);
    assert_int_equal(ps_consist_mode(c), PS_CONS_BSP);
    assert_int_equal(ps_consist_staleness(c), 0);
    assert_int_equal(ps_consist_touch(c, 0, T0), PS_OK);
    assert_int_equal(ps_consist_touch(c, 1, T0), PS_OK);
    ps_consist_set_clock(c, 0, 2);
    ps_consist_set_clock(c, 1, 1);
    assert_true(ps_consist_can_serve(c, 1));
    /* With staleness 3 this would be served (1 >= 2 - 3). */
    assert_false(ps_consist_can_serve(c, 2));
    ps_consist_free(c);

    /* The same configuration under SSP keeps its staleness. */
    c = new_or_fail(PS_CONS_SSP, 3, 0);
    assert_int_equal(ps_consist_staleness(c), 3);
    ps_consist_free(c);
}

static void test_consistency_set_clock_never_lowers(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_SSP, 0, 0);
    assert_int_equal(ps_consist_touch(c, 4, T0), PS_OK);
    ps_consist_set_clock(c, 4, 5);
    assert_int_equal(worker(c, 4)->clock, 5);
    ps_consist_set_clock(c, 4, 3); /* a late retry of an older CLOCK */
    assert_int_equal(worker(c, 4)->clock, 5);
    assert_int_equal(ps_consist_min_clock(c), 5);
    assert_true(ps_consist_can_serve(c, 5));
    ps_consist_set_clock(c, 4, 5);
    assert_int_equal(worker(c, 4)->clock, 5);
    ps_consist_set_clock(c, 4, 6);
    assert_int_equal(worker(c, 4)->clock, 6);
    assert_int_equal(ps_consist_min_clock(c), 6);
    ps_consist_free(c);
}

static void test_consistency_new_expected_block_early_worker(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_BSP, 0, 2);
    /* Both expected workers exist, alive at clock 0, before any message. */
    assert_int_equal(ps_consist_live(c), 2);
    assert_non_null(worker(c, 0));
    assert_non_null(worker(c, 1));
    assert_int_equal(worker(c, 1)->clock, 0);
    assert_int_equal(ps_consist_min_clock(c), 0);

    assert_int_equal(ps_consist_touch(c, 0, T0 + 10), PS_OK);
    ps_consist_set_clock(c, 0, 2);
    /* Worker 1 has never spoken; it still holds the minimum at 0. */
    assert_int_equal(ps_consist_min_clock(c), 0);
    assert_false(ps_consist_can_serve(c, 2));
    assert_false(ps_consist_can_serve(c, 1));
    assert_true(ps_consist_can_serve(c, 0));
    ps_consist_free(c);
}

static void test_consistency_expire_expected_from_creation(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_BSP, 0, 2);
    assert_int_equal(ps_consist_touch(c, 0, T0 + 400), PS_OK);
    ps_consist_set_clock(c, 0, 2);
    /* Exactly timeout_ms of silence since creation: worker 1 still counts. */
    assert_int_equal(ps_consist_expire(c, T0 + TIMEOUT), 0);
    assert_int_equal(ps_consist_live(c), 2);
    assert_false(ps_consist_can_serve(c, 2));
    /* One more millisecond and it is dropped; worker 0 spoke at T0 + 400. */
    assert_int_equal(ps_consist_expire(c, T0 + TIMEOUT + 1), 1);
    assert_int_equal(ps_consist_live(c), 1);
    assert_false(worker(c, 1)->alive);
    assert_true(worker(c, 0)->alive);
    assert_int_equal(ps_consist_min_clock(c), 2);
    assert_true(ps_consist_can_serve(c, 2));
    assert_false(ps_consist_can_serve(c, 3));
    /* Nothing changes a second time. */
    assert_int_equal(ps_consist_expire(c, T0 + TIMEOUT + 2), 0);
    ps_consist_free(c);
}

static void test_consistency_expire_counts_and_min_ignores_dead(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_SSP, 0, 0);
    assert_int_equal(ps_consist_touch(c, 0, T0), PS_OK);
    assert_int_equal(ps_consist_touch(c, 1, T0), PS_OK);
    assert_int_equal(ps_consist_touch(c, 2, T0 + 300), PS_OK);
    ps_consist_set_clock(c, 0, 1);
    ps_consist_set_clock(c, 1, 2);
    ps_consist_set_clock(c, 2, 7);
    assert_int_equal(ps_consist_min_clock(c), 1);
    assert_int_equal(ps_consist_live(c), 3);
    /* Workers 0 and 1 were last seen at T0, worker 2 at T0 + 300. */
    assert_int_equal(ps_consist_expire(c, T0 + 600), 2);
    assert_int_equal(ps_consist_live(c), 1);
    assert_int_equal(ps_consist_min_clock(c), 7);
    assert_true(ps_consist_can_serve(c, 7));
    assert_false(ps_consist_can_serve(c, 8));
    ps_consist_free(c);
}

static void test_consistency_touch_revives_dead_worker(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_SSP, 0, 0);
    assert_int_equal(ps_consist_touch(c, 0, T0), PS_OK);
    assert_int_equal(ps_consist_touch(c, 1, T0 + 400), PS_OK);
    ps_consist_set_clock(c, 0, 1);
    ps_consist_set_clock(c, 1, 5);
    assert_int_equal(ps_consist_expire(c, T0 + 600), 1);
    assert_int_equal(ps_consist_min_clock(c), 5);
    assert_true(ps_consist_can_serve(c, 5));

    /* Worker 0 speaks again: it counts, and pulls the minimum back to 1. */
    assert_int_equal(ps_consist_touch(c, 0, T0 + 700), PS_OK);
    assert_true(worker(c, 0)->alive);
    assert_int_equal(worker(c, 0)->clock, 1);
    assert_int_equal(ps_consist_live(c), 2);
    assert_int_equal(ps_consist_min_clock(c), 1);
    assert_false(ps_consist_can_serve(c, 5));
    /* Its silence is measured from the new message. */
    assert_int_equal(ps_consist_expire(c, T0 + 1000), 1); /* worker 1 only */
    assert_true(worker(c, 0)->alive);
    assert_int_equal(ps_consist_min_clock(c), 1);

    /* A dead worker ahead of the minimum counts again too, though the
     * minimum does not move. */
    assert_false(worker(c, 1)->alive);
    assert_int_equal(ps_consist_touch(c, 1, T0 + 1100), PS_OK);
    assert_true(worker(c, 1)->alive);
    assert_int_equal(ps_consist_live(c), 2);
    assert_int_equal(ps_consist_min_clock(c), 1);
    /* ... and holds the minimum once worker 0 goes. */
    assert_int_equal(ps_consist_expire(c, T0 + 1201), 1);
    assert_false(worker(c, 0)->alive);
    assert_int_equal(ps_consist_min_clock(c), 5);
    ps_consist_free(c);
}

static void test_consistency_min_clock_no_live_workers(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_BSP, 0, 0);
    assert_int_equal(ps_consist_live(c), 0);
    assert_true(ps_consist_min_clock(c) == INT64_MAX);
    assert_true(ps_consist_can_serve(c, 0));
    assert_true(ps_consist_can_serve(c, 1000000));
    assert_null(ps_consist_worker_at(c, 0));

    /* Every worker dead: the same. */
    assert_int_equal(ps_consist_touch(c, 3, T0), PS_OK);
    assert_int_equal(ps_consist_min_clock(c), 0);
    assert_false(ps_consist_can_serve(c, 1));
    assert_int_equal(ps_consist_expire(c, T0 + TIMEOUT + 1), 1);
    assert_true(ps_consist_min_clock(c) == INT64_MAX);
    assert_true(ps_consist_can_serve(c, 1));
    ps_consist_free(c);
}

static void test_consistency_parse_accepts_and_rejects(void **st)
{
    (void)st;
    static const struct {
        const char *s;
        int mode, staleness;
    } good[] = {
        {"asp", PS_CONS_ASP, 0},
        {"bsp", PS_CONS_BSP, 0},
        {"ssp:0", PS_CONS_SSP, 0},
        {"ssp:5", PS_CONS_SSP, 5},
    };
    for (size_t k = 0; k < sizeof(good) / sizeof(good[0]); k++) {
        int mode = -1, staleness = -1;
        if (ps_consist_parse(good[k].s, &mode, &staleness) != PS_OK)
            fail_msg("\"%s\" rejected", good[k].s);
        assert_int_equal(mode, good[k].mode);
        assert_int_equal(staleness, good[k].staleness);
    }
    static const char *const bad[] = {"ssp:",   "ssp:-1", "ssp:x",
                                      "ssp: 5", "ssp:+5", "SSP:1",
                                      "",       "asp ",   "ssp:5x"};
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        int mode = -1, staleness = -1;
        if (ps_consist_parse(bad[k], &mode, &staleness) != PS_EINVAL)
            fail_msg("\"%s\" accepted", bad[k]);
    }
}

static void test_consistency_new_rejects_bad_cfg(void **st)
{
    (void)st;
    ps_consist_cfg base = {PS_CONS_SSP, 1, 0, TIMEOUT};
    ps_consist *c = NULL;
    assert_int_equal(ps_consist_new(&c, &base, T0), PS_OK);
    ps_consist_free(c);

    ps_consist_cfg cfg = base;
    cfg.staleness = -1;
    c = NULL;
    assert_int_equal(ps_consist_new(&c, &cfg, T0), PS_EINVAL);
    assert_null(c);
    cfg = base;
    cfg.timeout_ms = 0;
    assert_int_equal(ps_consist_new(&c, &cfg, T0), PS_EINVAL);
    assert_null(c);
    cfg = base;
    cfg.mode = 7;
    assert_int_equal(ps_consist_new(&c, &cfg, T0), PS_EINVAL);
    assert_null(c);
    cfg = base;
    cfg.mode = -1;
    assert_int_equal(ps_consist_new(&c, &cfg, T0), PS_EINVAL);
    assert_null(c);
}

static void test_consistency_worker_at_id_order(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_ASP, 0, 0);
    static const uint32_t order[] = {5, 1, 3, 1, 5};
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++)
        assert_int_equal(ps_consist_touch(c, order[k], T0 + (int64_t)k), PS_OK);
    static const uint32_t want[] = {1, 3, 5};
    for (size_t i = 0; i < 3; i++) {
        const ps_worker_state *w = ps_consist_worker_at(c, i);
        assert_non_null(w);
        assert_int_equal(w->id, want[i]);
    }
    assert_null(ps_consist_worker_at(c, 3));
    /* Last seen follows the latest touch of each. */
    assert_int_equal(worker(c, 1)->last_seen_ms, T0 + 3);
    assert_int_equal(worker(c, 3)->last_seen_ms, T0 + 2);
    assert_int_equal(worker(c, 5)->last_seen_ms, T0 + 4);
    /* Clocks stay with their worker across the insertions. */
    ps_consist_set_clock(c, 5, 50);
    assert_int_equal(ps_consist_touch(c, 0, T0 + 5), PS_OK);
    assert_int_equal(ps_consist_worker_at(c, 0)->id, 0);
    assert_int_equal(ps_consist_worker_at(c, 3)->id, 5);
    assert_int_equal(ps_consist_worker_at(c, 3)->clock, 50);
    assert_int_equal(worker(c, 1)->clock, 0);
    ps_consist_free(c);
}

static void test_consistency_set_progress_per_worker(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_ASP, 0, 0);
    assert_int_equal(ps_consist_touch(c, 2, T0), PS_OK);
    assert_int_equal(ps_consist_touch(c, 7, T0), PS_OK);
    assert_false(worker(c, 2)->has_progress);
    assert_false(worker(c, 7)->has_progress);
    ps_consist_set_progress(c, 7, 12345, 0.25, 3, 0.875);
    const ps_worker_state *w7 = worker(c, 7);
    assert_true(w7->has_progress);
    assert_int_equal(w7->samples, 12345);
    assert_true(w7->loss == 0.25);
    assert_int_equal(w7->epoch, 3);
    assert_true(w7->accuracy == 0.875);
    assert_false(worker(c, 2)->has_progress);
    assert_int_equal(worker(c, 2)->samples, 0);

    ps_consist_set_progress(c, 2, 10, 1.5, 1, 0.5);
    assert_int_equal(worker(c, 2)->samples, 10);
    assert_true(worker(c, 2)->loss == 1.5);
    assert_int_equal(worker(c, 7)->samples, 12345);
    /* A later report replaces the earlier one. */
    ps_consist_set_progress(c, 7, 20000, 0.125, 4, 0.9375);
    assert_int_equal(worker(c, 7)->samples, 20000);
    assert_int_equal(worker(c, 7)->epoch, 4);
    ps_consist_free(c);
}

static void test_consistency_live_counts(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_SSP, 2, 0);
    assert_int_equal(ps_consist_live(c), 0);
    for (uint32_t id = 0; id < 4; id++)
        assert_int_equal(ps_consist_touch(c, id, T0 + 100 * (int64_t)id),
                         PS_OK);
    assert_int_equal(ps_consist_live(c), 4);
    assert_int_equal(ps_consist_touch(c, 2, T0 + 300), PS_OK); /* again */
    assert_int_equal(ps_consist_live(c), 4);
    /* Last seen T0, T0+100, T0+300, T0+300: at T0+650 two have gone. */
    assert_int_equal(ps_consist_expire(c, T0 + 650), 2);
    assert_int_equal(ps_consist_live(c), 2);
    assert_int_equal(ps_consist_expire(c, T0 + 801), 2);
    assert_int_equal(ps_consist_live(c), 0);
    ps_consist_free(c);
}

static void test_consistency_admit_newer_attempt_restarts_clock(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_SSP, 1, 0);
    uint32_t before = 99;
    assert_int_equal(ps_consist_admit(c, 3, 0, T0, &before), PS_OK);
    assert_int_equal(before, 0);
    assert_int_equal(ps_consist_admit(c, 4, 0, T0, &before), PS_OK);
    ps_consist_set_clock(c, 3, 40);
    ps_consist_set_clock(c, 4, 41);
    ps_consist_set_progress(c, 3, 5000, 0.5, 2, 0.75);
    assert_int_equal(ps_consist_min_clock(c), 40);
    /* Attempt 1 of worker 3 joins: a fresh start at clock 0, which holds
     * worker 4 back again (its pulls at 41 wait for clock 40). */
    assert_int_equal(ps_consist_admit(c, 3, 1, T0, &before), PS_OK);
    assert_int_equal(before, 0);
    const ps_worker_state *w = worker(c, 3);
    assert_int_equal(w->attempt, 1);
    assert_int_equal(w->clock, 0);
    assert_false(w->has_progress);
    assert_int_equal(w->samples, 0);
    assert_int_equal(ps_consist_min_clock(c), 0);
    assert_false(ps_consist_can_serve(c, 41));
    assert_true(ps_consist_can_serve(c, 1));
    /* The same attempt again changes nothing. */
    ps_consist_set_clock(c, 3, 2);
    assert_int_equal(ps_consist_admit(c, 3, 1, T0, &before), PS_OK);
    assert_int_equal(before, 1);
    assert_int_equal(worker(c, 3)->clock, 2);
    assert_int_equal(worker(c, 3)->superseded, 0);
    ps_consist_free(c);
}

static void test_consistency_admit_older_attempt_refused(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_BSP, 0, 0);
    uint32_t before = 0;
    /* First seen as attempt 2 (an unknown id starts at attempt 0). */
    assert_int_equal(ps_consist_admit(c, 0, 2, T0, &before), PS_OK);
    assert_int_equal(before, 0);
    ps_consist_set_clock(c, 0, 7);
    for (uint32_t old = 0; old < 2; old++) {
        assert_int_equal(ps_consist_admit(c, 0, old, T0, &before),
                         PS_ESUPERSEDED);
        assert_int_equal(before, 2);
    }
    const ps_worker_state *w = worker(c, 0);
    assert_int_equal(w->attempt, 2);
    assert_int_equal(w->clock, 7); /* untouched by the refused ones */
    assert_int_equal(w->superseded, 2);
    /* Other ids are not affected by worker 0's attempts. */
    assert_int_equal(ps_consist_admit(c, 1, 0, T0, &before), PS_OK);
    assert_int_equal(worker(c, 1)->attempt, 0);
    ps_consist_free(c);
}

static void test_consistency_admit_any_attempt_once_owner_silent(void **st)
{
    (void)st;
    ps_consist *c = new_or_fail(PS_CONS_SSP, 1, 0);
    uint32_t before;
    assert_int_equal(ps_consist_admit(c, 0, 9, T0, &before), PS_OK);
    assert_int_equal(ps_consist_touch(c, 0, T0), PS_OK);
    ps_consist_set_clock(c, 0, 30);
    /* Alive: attempt 3 is older and refused. */
    assert_int_equal(ps_consist_expire(c, T0 + TIMEOUT), 0);
    assert_int_equal(ps_consist_admit(c, 0, 3, T0 + TIMEOUT, &before),
                     PS_ESUPERSEDED);
    /* Attempt 9 finished: silent past the timeout, the id is free, and the
     * next job's attempt 3 joins afresh. */
    assert_int_equal(ps_consist_expire(c, T0 + TIMEOUT + 1), 1);
    assert_int_equal(ps_consist_admit(c, 0, 3, T0 + TIMEOUT + 1, &before),
                     PS_OK);
    assert_int_equal(before, 9);
    assert_int_equal(ps_consist_touch(c, 0, T0 + TIMEOUT + 1), PS_OK);
    const ps_worker_state *w = worker(c, 0);
    assert_int_equal(w->attempt, 3);
    assert_int_equal(w->clock, 0);
    assert_true(w->alive);
    /* It owns the id now: attempt 9 coming back is newer, 2 is refused. */
    assert_int_equal(ps_consist_admit(c, 0, 2, T0 + TIMEOUT + 2, &before),
                     PS_ESUPERSEDED);
    ps_consist_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_consistency_can_serve_asp_always),
        cmocka_unit_test(test_consistency_can_serve_ssp1_table),
        cmocka_unit_test(test_consistency_new_bsp_forces_staleness_zero),
        cmocka_unit_test(test_consistency_set_clock_never_lowers),
        cmocka_unit_test(test_consistency_new_expected_block_early_worker),
        cmocka_unit_test(test_consistency_expire_expected_from_creation),
        cmocka_unit_test(test_consistency_expire_counts_and_min_ignores_dead),
        cmocka_unit_test(test_consistency_touch_revives_dead_worker),
        cmocka_unit_test(test_consistency_min_clock_no_live_workers),
        cmocka_unit_test(test_consistency_parse_accepts_and_rejects),
        cmocka_unit_test(test_consistency_new_rejects_bad_cfg),
        cmocka_unit_test(test_consistency_worker_at_id_order),
        cmocka_unit_test(test_consistency_set_progress_per_worker),
        cmocka_unit_test(test_consistency_live_counts),
        cmocka_unit_test(test_consistency_admit_newer_attempt_restarts_clock),
        cmocka_unit_test(test_consistency_admit_older_attempt_refused),
        cmocka_unit_test(test_consistency_admit_any_attempt_once_owner_silent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
