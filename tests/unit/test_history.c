/* Unit tests for server/history.c: per-worker evaluation history with a
 * repeat check, the per-worker bound (oldest dropped, order kept) and the
 * bound on all workers together. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "history.h"

#include <math.h>
#include <string.h>

static ps_epoch_eval ev(uint32_t epoch, double acc)
{
    ps_epoch_eval e = {epoch, epoch * 100ull, 0.5, acc, 0.6, 0.7,
                       NAN,   1000 + epoch};
    return e;
}

static void test_history_add_keeps_order_per_worker(void **st)
{
    (void)st;
    ps_history *h;
    assert_int_equal(ps_history_new(&h, 10, 100), PS_OK);
    /* Workers arrive out of id order. */
    for (uint32_t e = 1; e <= 3; e++) {
        ps_epoch_eval a = ev(e, 0.1 * e), b = ev(e, 0.2 * e);
        assert_int_equal(ps_history_add(h, 7, &a), PS_HISTORY_ADDED);
        assert_int_equal(ps_history_add(h, 2, &b), PS_HISTORY_ADDED);
    }
    assert_int_equal(ps_history_len(h, 7), 3);
    assert_int_equal(ps_history_len(h, 2), 3);
    assert_int_equal(ps_history_len(h, 5), 0);
    assert_null(ps_history_at(h, 5, 0));
    assert_null(ps_history_at(h, 7, 3));
    for (uint32_t i = 0; i < 3; i++) {
        assert_int_equal(ps_history_at(h, 7, i)->epoch, i + 1);
        assert_true(ps_history_at(h, 2, i)->accuracy == 0.2 * (i + 1));
        assert_int_equal(ps_history_at(h, 2, i)->time_ms, 1001 + i);
    }
    assert_int_equal(ps_history_total(h), 6);
    ps_history_free(h);
}

static void test_history_add_repeat_not_recorded(void **st)
{
    (void)st;
    ps_history *h;
    assert_int_equal(ps_history_new(&h, 10, 100), PS_OK);
    ps_epoch_eval a = ev(1, 0.5);
    assert_int_equal(ps_history_add(h, 0, &a), PS_HISTORY_ADDED);
    /* Workers resend their latest evaluation: same figures (NaN auc
     * included) at a later time is a repeat. */
    a.time_ms += 50;
    assert_int_equal(ps_history_add(h, 0, &a), PS_HISTORY_REPEAT);
    /* A restarted worker's new figures for the same epoch are recorded. */
    a.accuracy = 0.6;
    assert_int_equal(ps_history_add(h, 0, &a), PS_HISTORY_ADDED);
    assert_int_equal(ps_history_len(h, 0), 2);
    /* Only the newest counts: an older entry again is new again. */
    ps_epoch_eval old = ev(1, 0.5);
    assert_int_equal(ps_history_add(h, 0, &old), PS_HISTORY_ADDED);
    assert_int_equal(ps_history_len(h, 0), 3);
    ps_history_free(h);
}

static void test_history_add_per_worker_bound_drops_oldest(void **st)
{
    (void)st;
    ps_history *h;
    assert_int_equal(ps_history_new(&h, 5, 100), PS_OK);
    for (uint32_t e = 1; e <= 12; e++) {
        ps_epoch_eval a = ev(e, 0);
        assert_int_equal(ps_history_add(h, 3, &a), PS_HISTORY_ADDED);
    }
    assert_int_equal(ps_history_len(h, 3), 5);
    for (uint32_t i = 0; i < 5; i++)
        assert_int_equal(ps_history_at(h, 3, i)->epoch, 8 + i);
    assert_int_equal(ps_history_total(h), 5);
    ps_history_free(h);
}

static void test_history_add_total_bound(void **st)
{
    (void)st;
    ps_history *h;
    assert_int_equal(ps_history_new(&h, 100, 6), PS_OK);
    for (uint32_t e = 1; e <= 4; e++) {
        ps_epoch_eval a = ev(e, 0);
        assert_int_equal(ps_history_add(h, 1, &a), PS_HISTORY_ADDED);
    }
    for (uint32_t e = 1; e <= 2; e++) {
        ps_epoch_eval a = ev(e, 0);
        assert_int_equal(ps_history_add(h, 2, &a), PS_HISTORY_ADDED);
    }
    assert_int_equal(ps_history_total(h), 6);
    /* Full: a worker with entries replaces its own oldest ... */
    ps_epoch_eval a5 = ev(5, 0), a6 = ev(6, 0), b3 = ev(3, 0);
    assert_int_equal(ps_history_add(h, 1, &a5), PS_HISTORY_ADDED);
    assert_int_equal(ps_history_add(h, 1, &a6), PS_HISTORY_ADDED);
    assert_int_equal(ps_history_add(h, 2, &b3), PS_HISTORY_ADDED);
    assert_int_equal(ps_history_len(h, 1), 4);
    assert_int_equal(ps_history_len(h, 2), 2);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(ps_history_at(h, 1, i)->epoch, 3 + i);
    assert_int_equal(ps_history_at(h, 2, 0)->epoch, 2);
    assert_int_equal(ps_history_at(h, 2, 1)->epoch, 3);
    /* ... and a newcomer gets nothing recorded. */
    ps_epoch_eval c1 = ev(1, 0);
    assert_int_equal(ps_history_add(h, 9, &c1), PS_HISTORY_DROPPED);
    assert_int_equal(ps_history_len(h, 9), 0);
    assert_int_equal(ps_history_total(h), 6);
    ps_history_free(h);
}

static void test_history_new_bad_bounds(void **st)
{
    (void)st;
    ps_history *h = NULL;
    assert_int_equal(ps_history_new(&h, 0, 10), PS_EINVAL);
    assert_int_equal(ps_history_new(&h, 10, 0), PS_EINVAL);
    assert_null(h);
    ps_history_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_add_keeps_order_per_worker),
        cmocka_unit_test(test_history_add_repeat_not_recorded),
        cmocka_unit_test(test_history_add_per_worker_bound_drops_oldest),
        cmocka_unit_test(test_history_add_total_bound),
        cmocka_unit_test(test_history_new_bad_bounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
