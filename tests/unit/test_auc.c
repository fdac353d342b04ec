/* Unit tests for worker/auc.c: hand-computed AUCs, ties counted half,
 * one-class input (NAN by contract) and bad labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "unit/ps_test.h"
#include "worker/auc.h"

#include <math.h>
#include <stdlib.h>

static void test_auc_perfect_and_reversed(void **state)
{
    float s[4] = {0.1f, 0.4f, 0.35f, 0.8f}, y[4] = {0, 0, 1, 1};
    float yr[4] = {1, 1, 0, 0};
    double auc;

    (void)state;
    /* Pairs (pos, neg): (0.35, 0.1) yes, (0.35, 0.4) no, (0.8, *) yes. */
    assert_int_equal(ps_auc(s, y, 4, &auc), PS_OK);
    assert_near(auc, 0.75, 1e-12);
    assert_int_equal(ps_auc(s, yr, 4, &auc), PS_OK);
    assert_near(auc, 0.25, 1e-12);
    float sp[4] = {-3, -1, 2, 5};
    assert_int_equal(ps_auc(sp, y, 4, &auc), PS_OK);
    assert_near(auc, 1.0, 1e-12);
}

static void test_auc_ties_count_half(void **state)
{
    /* Every score equal: 0.5 whatever the labels' order. */
    float same[5] = {2, 2, 2, 2, 2}, y[5] = {1, 0, 1, 0, 0};
    /* pos {0.5, 0.9}, neg {0.5, 0.2, 0.9}: pairs 0.5 vs {0.5 t, 0.2 w,
     * 0.9 l} = 1.5; 0.9 vs {0.5 w, 0.2 w, 0.9 t} = 2.5; 4 / 6. */
    float s[5] = {0.5f, 0.5f, 0.9f, 0.2f, 0.9f}, y2[5] = {1, 0, 1, 0, 0};
    double auc;

    (void)state;
    assert_int_equal(ps_auc(same, y, 5, &auc), PS_OK);
    assert_near(auc, 0.5, 1e-12);
    assert_int_equal(ps_auc(s, y2, 5, &auc), PS_OK);
    assert_near(auc, 4.0 / 6.0, 1e-12);
}

/* Against the O(n^2) pair count on random scores with many ties. */
static void test_auc_matches_pair_count(void **state)
{
    enum { N = 500 };
    float s[N], y[N];
    uint64_t r = 12345;
    double wins = 0, pairs = 0, auc;

    (void)state;
    for (size_t i = 0; i < N; i++) {
        r = r * 6364136223846793005ULL + 1442695040888963407ULL;
        s[i] = (float)((r >> 33) % 50); /* ties */
        y[i] = (float)((r >> 20) & 1);
    }
    for (size_t i = 0; i < N; i++)
        for (size_t j = 0; j < N; j++)
            if (y[i] == 1 && y[j] == 0) {
                pairs++;
                wins += s[i] > s[j] ? 1.0 : s[i] == s[j] ? 0.5 : 0.0;
            }
    assert_int_equal(ps_auc(s, y, N, &auc), PS_OK);
    assert_near(auc, wins / pairs, 1e-12);
}

static void test_auc_one_class_is_nan(void **state)
{
    float s[3] = {1, 2, 3}, ones[3] = {1, 1, 1}, zeros[3] = {0, 0, 0};
    double auc = 0;

    (void)state;
    assert_int_equal(ps_auc(s, ones, 3, &auc), PS_OK);
    assert_true(isnan(auc));
    auc = 0;
    assert_int_equal(ps_auc(s, zeros, 3, &auc), PS_OK);
    assert_true(isnan(auc));
    auc = 0;
    assert_int_equal(ps_auc(NULL, NULL, 0, &auc), PS_OK);
    assert_true(isnan(auc));
}

static void test_auc_bad_input_einval(void **state)
{
    float s[3] = {1, 2, 3}, y[3] = {0, 2, 1};
    double auc;

    (void)state;
    assert_int_equal(ps_auc(s, y, 3, &auc), PS_EINVAL);
    y[1] = 1;
    s[0] = NAN;
    assert_int_equal(ps_auc(s, y, 3, &auc), PS_EINVAL);
    assert_int_equal(ps_auc(NULL, y, 3, &auc), PS_EINVAL);
    assert_int_equal(ps_auc(s, y, 3, NULL), PS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_auc_perfect_and_reversed),
        cmocka_unit_test(test_auc_ties_count_half),
        cmocka_unit_test(test_auc_matches_pair_count),
        cmocka_unit_test(test_auc_one_class_is_nan),
        cmocka_unit_test(test_auc_bad_input_einval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
