/* Unit tests for common/partition.c: dense ranges tile [0, len) and agree
 * with ps_dense_shard_of; sparse key hashing is in range, deterministic,
 * balanced and consistent when a shard is added. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/partition.h"

#define NKEYS 100000

__extension__ typedef unsigned __int128 u128;

static const uint64_t lens[] = {
    1,
    2,
    3,
    7,
    10,
    100,
    1000,
    4096,
    1000003,
    1ull << 32,
    (1ull << 32) + 1,
    1ull << 40,
    (1ull << 40) + 7,
    UINT64_MAX / 3,
    UINT64_MAX,
};
static const uint32_t ns[] = {1, 2, 3, 4, 5, 7, 8, 16, 100, 1000, 65537};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void check_tiling(uint64_t len, uint32_t n)
{
    uint64_t floor_size = len / n;
    uint64_t prev = ps_dense_lo(len, 0, n);
    assert_true(prev == 0);
    for (uint32_t s = 0; s < n; s++) {
        uint64_t lo = ps_dense_lo(len, s, n);
        uint64_t hi = ps_dense_lo(len, s + 1, n);
        /* Contiguous (each starts where the last ended: no gap, no overlap)
         * and balanced: every size is floor(len / n) or one more. */
        assert_true(lo == prev);
        assert_true(hi >= lo);
        assert_true(hi - lo == floor_size || hi - lo == floor_size + 1);
        prev = hi;
    }
    assert_true(prev == len);
}

static void check_shard_of(uint64_t len, uint32_t n)
{
    if (len <= 5000) { /* every index */
        for (uint64_t i = 0; i < len; i++) {
            uint32_t s = ps_dense_shard_of(len, n, i);
            assert_true(s < n);
            assert_true(ps_dense_lo(len, s, n) <= i);
            assert_true(i < ps_dense_lo(len, s + 1, n));
        }
        return;
    }
    /* Each shard's first, last and middle element (a sample of shards for
     * large n keeps this quick). */
    uint32_t step = n > 200 ? n / 97 : 1;
    for (uint32_t s = 0; s < n; s += step) {
        uint64_t lo = ps_dense_lo(len, s, n);
        uint64_t hi = ps_dense_lo(len, s + 1, n);
        if (lo == hi)
            continue;
        assert_int_equal(ps_dense_shard_of(len, n, lo), s);
        assert_int_equal(ps_dense_shard_of(len, n, hi - 1), s);
        assert_int_equal(ps_dense_shard_of(len, n, lo + (hi - lo) / 2), s);
    }
}

static void test_partition_dense_lo_tiles_range(void **st)
{
    (void)st;
    for (size_t a = 0; a < COUNT(lens); a++)
        for (size_t b = 0; b < COUNT(ns); b++)
            check_tiling(lens[a], ns[b]);
}

static void test_partition_dense_lo_fewer_elements_than_shards(void **st)
{
    (void)st;
    /* 3 elements on 5 shards: sizes are 0 or 1, three shards hold one. */
    uint32_t nonempty = 0;
    for (uint32_t s = 0; s < 5; s++)
        nonempty += ps_dense_lo(3, s + 1, 5) - ps_dense_lo(3, s, 5);
    assert_int_equal(nonempty, 3);
    check_tiling(3, 5);
    check_shard_of(3, 5);
    check_tiling(0, 4); /* an empty table: every range is empty */
    for (uint32_t s = 0; s <= 4; s++)
        assert_true(ps_dense_lo(0, s, 4) == 0);
}

static void test_partition_dense_lo_huge_len_no_overflow(void **st)
{
    (void)st;
    /* len * shard overflows 64 bits here; the middle of 2^40 over 2 shards
     * must still be exactly 2^39. */
    assert_true(ps_dense_lo(1ull << 40, 1, 2) == 1ull << 39);
    assert_true(ps_dense_lo(UINT64_MAX, 2, 3) ==
                (uint64_t)(((u128)UINT64_MAX * 2) / 3));
    assert_true(ps_dense_lo(UINT64_MAX, 1000, 1000) == UINT64_MAX);
}

static void test_partition_dense_shard_of_agrees_with_ranges(void **st)
{
    (void)st;
    for (size_t a = 0; a < COUNT(lens); a++)
        for (size_t b = 0; b < COUNT(ns); b++)
            check_shard_of(lens[a], ns[b]);
}

static void test_partition_key_shard_in_range_deterministic(void **st)
{
    (void)st;
    for (uint32_t n = 1; n <= 64; n++) {
        for (uint64_t k = 0; k < 2000; k++) {
            uint64_t key = k * 0x9e3779b97f4a7c15ull;
            uint32_t s = ps_key_shard(key, n);
            assert_true(s < n);
            assert_int_equal(ps_key_shard(key, n), s);
        }
    }
    assert_int_equal(ps_key_shard(UINT64_MAX, 1), 0);
    assert_true(ps_key_shard(UINT64_MAX, 1u << 31) < (1u << 31));
}

static void check_balance(uint64_t stride)
{
    unsigned count[4] = {0};
    for (uint64_t k = 0; k < NKEYS; k++)
        count[ps_key_shard(k * stride, 4)]++;
    /* Each within 5% of 25000 (a binomial's sd here is 137). */
    for (int s = 0; s < 4; s++) {
        if (count[s] < 23750 || count[s] > 26250) {
            print_error("shard %d holds %u of %u keys\n", s, count[s], NKEYS);
            fail();
        }
    }
}

static void test_partition_key_shard_balanced(void **st)
{
    (void)st;
    check_balance(1);        /* consecutive keys, the common case */
    check_balance(1u << 20); /* keys differing only in high bits */
}

static void test_partition_key_shard_adding_shard_moves_few(void **st)
{
    (void)st;
    unsigned moved = 0;
    for (uint64_t k = 0; k < NKEYS; k++) {
        uint32_t before = ps_key_shard(k, 4), after = ps_key_shard(k, 5);
        if (before != after) {
            /* Consistent hashing: a key only ever moves to the new shard. */
            assert_int_equal(after, 4);
            moved++;
        }
    }
    /* Ideally 1/5 of the keys. */
    assert_true(moved >= NKEYS * 15 / 100 && moved <= NKEYS * 25 / 100);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_dense_lo_tiles_range),
        cmocka_unit_test(test_partition_dense_lo_fewer_elements_than_shards),
        cmocka_unit_test(test_partition_dense_lo_huge_len_no_overflow),
        cmocka_unit_test(test_partition_dense_shard_of_agrees_with_ranges),
        cmocka_unit_test(test_partition_key_shard_in_range_deterministic),
        cmocka_unit_test(test_partition_key_shard_balanced),
        cmocka_unit_test(test_partition_key_shard_adding_shard_moves_few),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
