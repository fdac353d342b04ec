/* Unit tests for server/dedup.c: classification of (client, seq) as new,
 * duplicate or stale, the ring window, out-of-order arrival and the LRU
 * eviction of clients. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "server/dedup.h"

#define W ((uint64_t)PS_DEDUP_WINDOW)
#define NO_STATUS (-12345) /* what *status holds when check did not set it */

static int setup(void **st)
{
    ps_dedup *d = NULL;
    if (ps_dedup_new(&d, 0) != PS_OK)
        return -1;
    *st = d;
    return 0;
}

static int teardown(void **st)
{
    ps_dedup_free(*st);
    return 0;
}

/* check() returning the status it wrote, NO_STATUS if it wrote none. */
static int check(ps_dedup *d, uint64_t client, uint64_t seq, int *status)
{
    *status = NO_STATUS;
    return ps_dedup_check(d, client, seq, status);
}

static void test_dedup_check_unseen_is_new(void **st)
{
    ps_dedup *d = *st;
    int status;
    assert_int_equal(check(d, 1, 1, &status), PS_DEDUP_NEW);
    assert_int_equal(check(d, 1, 1, &status), PS_DEDUP_NEW); /* no record */
    assert_int_equal(ps_dedup_clients(d), 0);
    assert_int_equal(ps_dedup_record(d, 1, 1, PS_OK), PS_OK);
    assert_int_equal(check(d, 1, 2, &status), PS_DEDUP_NEW);
    assert_int_equal(check(d, 1, 100, &status), PS_DEDUP_NEW);
}

static void test_dedup_check_recorded_is_dup_with_status(void **st)
{
    ps_dedup *d = *st;
    int status;
    assert_int_equal(ps_dedup_record(d, 7, 1, PS_OK), PS_OK);
    assert_int_equal(ps_dedup_record(d, 7, 2, PS_EBADGRAD), PS_OK);
    assert_int_equal(ps_dedup_record(d, 7, 3, PS_ERANGE), PS_OK);
    assert_int_equal(check(d, 7, 1, &status), PS_DEDUP_DUP);
    assert_int_equal(status, PS_OK);
    assert_int_equal(check(d, 7, 2, &status), PS_DEDUP_DUP);
    assert_int_equal(status, PS_EBADGRAD);
    assert_int_equal(check(d, 7, 3, &status), PS_DEDUP_DUP);
    assert_int_equal(status, PS_ERANGE);
    /* Asking again answers the same. */
    assert_int_equal(check(d, 7, 2, &status), PS_DEDUP_DUP);
    assert_int_equal(status, PS_EBADGRAD);
    assert_int_equal(check(d, 7, 4, &status), PS_DEDUP_NEW);
}

static void test_dedup_check_other_client_same_seq_is_new(void **st)
{
    ps_dedup *d = *st;
    int status;
    assert_int_equal(ps_dedup_record(d, 1, 5, PS_EBADGRAD), PS_OK);
    assert_int_equal(check(d, 2, 5, &status), PS_DEDUP_NEW);
    assert_int_equal(ps_dedup_record(d, 2, 5, PS_OK), PS_OK);
    assert_int_equal(check(d, 2, 5, &status), PS_DEDUP_DUP);
    assert_int_equal(status, PS_OK);
    assert_int_equal(check(d, 1, 5, &status), PS_DEDUP_DUP);
    assert_int_equal(status, PS_EBADGRAD);
    assert_int_equal(check(d, 3, 5, &status), PS_DEDUP_NEW);
    assert_int_equal(ps_dedup_clients(d), 2);
}

static void test_dedup_check_stale_boundary(void **st)
{
    ps_dedup *d = *st;
    int status;
    assert_int_equal(ps_dedup_record(d, 1, 2, PS_OK), PS_OK);
    assert_int_equal(ps_dedup_record(d, 1, 10, PS_OK), PS_OK);
    /* max 10: nothing is W behind yet. */
    assert_int_equal(check(d, 1, 2, &status), PS_DEDUP_DUP);
    assert_int_equal(check(d, 1, 1, &status), PS_DEDUP_NEW);

    assert_int_equal(ps_dedup_record(d, 1, W + 1, PS_OK), PS_OK);
    /* max W + 1: seq 1 is stale (1 + W <= W + 1), seq 2 is not. */
    assert_int_equal(check(d, 1, 1, &status), PS_DEDUP_STALE);
    assert_int_equal(check(d, 1, 2, &status), PS_DEDUP_DUP);
    assert_int_equal(status, PS_OK);

    assert_int_equal(ps_dedup_record(d, 1, W + 2, PS_OK), PS_OK);
    /* Now seq 2 is exactly W behind: stale even though it was applied. */
    assert_int_equal(check(d, 1, 2, &status), PS_DEDUP_STALE);
    assert_int_equal(status, NO_STATUS);
    assert_int_equal(check(d, 1, 3, &status), PS_DEDUP_NEW);
    assert_int_equal(check(d, 1, 10, &status), PS_DEDUP_DUP);
    /* Another client's window is its own. */
    assert_int_equal(check(d, 2, 1, &status), PS_DEDUP_NEW);
}

static void test_dedup_check_ring_slot_overwritten(void **st)
{
    ps_dedup *d = *st;
    int status;
    const uint64_t s = 37;
    assert_int_equal(ps_dedup_record(d, 9, s, PS_EBADGRAD), PS_OK);
    assert_int_equal(check(d, 9, s + W, &status), PS_DEDUP_NEW);
    assert_int_equal(ps_dedup_record(d, 9, s + W, PS_ERANGE), PS_OK);
    /* Both share one ring slot: the newer is a duplicate with its own
     * status, the older is stale, not a duplicate with the newer status. */
    assert_int_equal(check(d, 9, s + W, &status), PS_DEDUP_DUP);
    assert_int_equal(status, PS_ERANGE);
    assert_int_equal(check(d, 9, s, &status), PS_DEDUP_STALE);
    /* The slot after it was never used inside the window. */
    assert_int_equal(check(d, 9, s + 1, &status), PS_DEDUP_NEW);
}

static void test_dedup_check_out_of_order_in_window(void **st)
{
    ps_dedup *d = *st;
    int status;
    assert_int_equal(ps_dedup_record(d, 4, 10, PS_OK), PS_OK);
    assert_int_equal(check(d, 4, 5, &status), PS_DEDUP_NEW);
    assert_int_equal(check(d, 4, 5, &status), PS_DEDUP_NEW); /* still */
    assert_int_equal(ps_dedup_record(d, 4, 5, PS_EBADGRAD), PS_OK);
    assert_int_equal(check(d, 4, 5, &status), PS_DEDUP_DUP);
    assert_int_equal(status, PS_EBADGRAD);
    /* Recording the older one did not disturb the newer. */
    assert_int_equal(check(d, 4, 10, &status), PS_DEDUP_DUP);
    assert_int_equal(status, PS_OK);
    /* A seq between them is still new. */
    assert_int_equal(check(d, 4, 7, &status), PS_DEDUP_NEW);

    /* An older seq recorded late does not lower the max seen: after
     * W + 20 then 21, seq 20 is still stale. */
    assert_int_equal(ps_dedup_record(d, 4, W + 20, PS_OK), PS_OK);
    assert_int_equal(check(d, 4, 21, &status), PS_DEDUP_NEW);
    assert_int_equal(ps_dedup_record(d, 4, 21, PS_OK), PS_OK);
    assert_int_equal(check(d, 4, 20, &status), PS_DEDUP_STALE);
    assert_int_equal(check(d, 4, 21, &status), PS_DEDUP_DUP);
    assert_int_equal(check(d, 4, W + 20, &status), PS_DEDUP_DUP);
}

static void test_dedup_record_evicts_least_recently_used(void **st)
{
    (void)st;
    ps_dedup *d = NULL;
    int status;
    assert_int_equal(ps_dedup_new(&d, 2), PS_OK);
    assert_int_equal(ps_dedup_record(d, 100, 1, PS_OK), PS_OK);
    assert_int_equal(ps_dedup_record(d, 200, 1, PS_OK), PS_OK);
    assert_int_equal(ps_dedup_clients(d), 2);
    /* 100 was recorded first, but checking it makes 200 the least
     * recently used. */
    assert_int_equal(check(d, 100, 1, &status), PS_DEDUP_DUP);
    assert_int_equal(ps_dedup_record(d, 300, 1, PS_OK), PS_OK);
    assert_int_equal(ps_dedup_clients(d), 2);
    assert_int_equal(check(d, 200, 1, &status), PS_DEDUP_NEW); /* forgotten */
    assert_int_equal(check(d, 100, 1, &status), PS_DEDUP_DUP);
    assert_int_equal(check(d, 300, 1, &status), PS_DEDUP_DUP);

    /* 300 was checked last, so 100 goes next. */
    assert_int_equal(ps_dedup_record(d, 400, 1, PS_EBADGRAD), PS_OK);
    assert_int_equal(ps_dedup_clients(d), 2);
    assert_int_equal(check(d, 100, 1, &status), PS_DEDUP_NEW);
    assert_int_equal(check(d, 300, 1, &status), PS_DEDUP_DUP);
    assert_int_equal(check(d, 400, 1, &status), PS_DEDUP_DUP);
    assert_int_equal(status, PS_EBADGRAD);
    /* A forgotten client comes back with an empty window. */
    assert_int_equal(ps_dedup_record(d, 100, 2, PS_OK), PS_OK);
    assert_int_equal(ps_dedup_clients(d), 2);
    assert_int_equal(check(d, 100, 1, &status), PS_DEDUP_NEW);
    assert_int_equal(check(d, 100, 2, &status), PS_DEDUP_DUP);
    /* 300 was used before 400, so it was the one evicted. */
    assert_int_equal(check(d, 300, 1, &status), PS_DEDUP_NEW);
    assert_int_equal(check(d, 400, 1, &status), PS_DEDUP_DUP);
    ps_dedup_free(d);
}

static void test_dedup_clients_counts(void **st)
{
    ps_dedup *d = *st;
    int status;
    assert_int_equal(ps_dedup_clients(d), 0);
    for (uint64_t c = 1; c <= 5; c++) {
        assert_int_equal(ps_dedup_record(d, c * 1000, 1, PS_OK), PS_OK);
        assert_int_equal(ps_dedup_clients(d), c);
    }
    /* More records of a known client and checks of unknown ones add none. */
    assert_int_equal(ps_dedup_record(d, 3000, 2, PS_OK), PS_OK);
    assert_int_equal(check(d, 99, 1, &status), PS_DEDUP_NEW);
    assert_int_equal(ps_dedup_clients(d), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dedup_check_unseen_is_new, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_dedup_check_recorded_is_dup_with_status, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_dedup_check_other_client_same_seq_is_new, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_check_stale_boundary, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_dedup_check_ring_slot_overwritten,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_dedup_check_out_of_order_in_window,
                                        setup, teardown),
        cmocka_unit_test(test_dedup_record_evicts_least_recently_used),
        cmocka_unit_test_setup_teardown(test_dedup_clients_counts, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
