/* Unit tests for common/dtype.c: float16 / bfloat16 conversions (exact
 * values, round to nearest even, subnormals, overflow, NaN), exhaustive
 * round trips, and a comparison with the compiler's _Float16 where it has
 * one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/dtype.h"

#include <float.h>
#include <math.h>
#include <string.h>

static float f32_of_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static uint32_t bits_of_f32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return u;
}

/* Converts f and checks the half's bits, printing both on failure. */
#define assert_f16(f, want) assert_int_equal(ps_f32_to_f16(f), (want))
#define assert_bf16(f, want) assert_int_equal(ps_f32_to_bf16(f), (want))

static void test_dtype_f16_exact_values(void **st)
{
    (void)st;
    static const struct {
        float f;
        uint16_t h;
    } cases[] = {
        {0.0f, 0x0000},        {1.0f, 0x3c00},
        {-2.0f, 0xc000},       {0.5f, 0x3800},
        {3.140625f, 0x4248},   {65504.0f, 0x7bff}, /* largest half */
        {0x1p-14f, 0x0400},                        /* smallest normal */
        {0x1p-24f, 0x0001},                        /* smallest subnormal */
        {0x3ffp-24f, 0x03ff},                      /* largest subnormal */
        {-0x155p-24f, 0x8155},                     /* a negative subnormal */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_f16(cases[i].f, cases[i].h);
        assert_true(ps_f16_to_f32(cases[i].h) == cases[i].f);
    }
    /* -0 keeps its sign both ways. */
    assert_f16(-0.0f, 0x8000);
    assert_true(bits_of_f32(ps_f16_to_f32(0x8000)) == 0x80000000u);
}

static void test_dtype_f16_round_nearest_even(void **st)
{
    (void)st;
    /* Halfway between 1 (mantissa 0, even) and 1 + 2^-10: down to 1. */
    assert_f16(1.0f + 0x1p-11f, 0x3c00);
    /* Halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even): up. */
    assert_f16(1.0f + 0x3p-11f, 0x3c02);
    /* Just above / below halfway go to the nearer one. */
    assert_f16(1.0f + 0x1p-11f + 0x1p-20f, 0x3c01);
    assert_f16(1.0f + 0x3p-11f - 0x1p-20f, 0x3c01);
    /* Rounding up carries into the exponent: 2 - 2^-12 -> 2. */
    assert_f16(2.0f - 0x1p-12f, 0x4000);
    assert_f16(-(1.0f + 0x3p-11f), 0xbc02);
}

static void test_dtype_f16_subnormal_rounding(void **st)
{
    (void)st;
    /* Half the smallest subnormal ties to even: 0. */
    assert_f16(0x1p-25f, 0x0000);
    assert_f16(-0x1p-25f, 0x8000);
    /* A little more than half rounds up to the smallest subnormal. */
    assert_f16(0x1p-25f + 0x1p-35f, 0x0001);
    /* 1.5 units ties to 2 (even); 2.5 units ties to 2 as well. */
    assert_f16(0x3p-25f, 0x0002);
    assert_f16(0x5p-25f, 0x0002);
    /* Far below: zero. */
    assert_f16(0x1p-40f, 0x0000);
    assert_f16(FLT_MIN / 8, 0x0000); /* a float subnormal */
    /* Between the largest subnormal (odd) and the smallest normal: tie goes
     * up to the normal. */
    assert_f16(0x7ffp-25f, 0x0400);
}

static void test_dtype_f16_overflow_to_inf(void **st)
{
    (void)st;
    assert_f16(65519.0f, 0x7bff); /* below the halfway point */
    assert_f16(65520.0f, 0x7c00); /* halfway to 65536: to even, inf */
    assert_f16(1e10f, 0x7c00);
    assert_f16(-1e10f, 0xfc00);
    assert_f16(FLT_MAX, 0x7c00);
    assert_f16(INFINITY, 0x7c00);
    assert_f16(-INFINITY, 0xfc00);
    assert_true(isinf(ps_f16_to_f32(0x7c00)) && ps_f16_to_f32(0x7c00) > 0);
    assert_true(isinf(ps_f16_to_f32(0xfc00)) && ps_f16_to_f32(0xfc00) < 0);
}

static void test_dtype_f16_nan_stays_nan(void **st)
{
    (void)st;
    /* Including NaNs whose payload sits only in bits a half drops. */
    uint32_t nans[] = {0x7fc00000u, 0xffc00000u, 0x7f800001u, 0x7fa00000u,
                       0xff800001u};
    for (size_t i = 0; i < sizeof(nans) / sizeof(nans[0]); i++) {
        uint16_t h = ps_f32_to_f16(f32_of_bits(nans[i]));
        assert_true((h & 0x7c00u) == 0x7c00u && (h & 0x03ffu) != 0);
        assert_true(isnan(ps_f16_to_f32(h)));
    }
    assert_true(isnan(ps_f16_to_f32(0x7e00)));
    assert_true(isnan(ps_f16_to_f32(0xfc01)));
}

static void test_dtype_f16_exhaustive_round_trip(void **st)
{
    (void)st;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float f = ps_f16_to_f32((uint16_t)h);
        if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0) {
            assert_true(isnan(f));
            continue;
        }
        /* Every half is a float exactly, so it must come back bit for bit
         * (which implies the value round trip too). */
        if (ps_f32_to_f16(f) != h) {
            print_error("half 0x%04x -> %a -> 0x%04x\n", h, (double)f,
                        ps_f32_to_f16(f));
            fail();
        }
    }
}

#if defined(__GNUC__) && defined(__FLT16_MAX__)
__extension__ typedef _Float16 ref_f16;

static uint16_t ref_f32_to_f16(float f)
{
    volatile ref_f16 h = (ref_f16)f; /* volatile: no constant folding */
    ref_f16 v = h;
    uint16_t u;
    memcpy(&u, &v, sizeof(u));
    return u;
}

static void check_against_ref(float f)
{
    uint16_t got = ps_f32_to_f16(f), want = ref_f32_to_f16(f);
    if (isnan(f)) {
        assert_true((got & 0x7c00u) == 0x7c00u && (got & 0x3ffu) != 0);
    } else if (got != want) {
        print_error("%a (0x%08x): got 0x%04x, _Float16 gives 0x%04x\n",
                    (double)f, bits_of_f32(f), got, want);
        fail();
    }
}

static void test_dtype_f16_matches_compiler_float16(void **st)
{
    (void)st;
    /* A sweep across all float bit patterns... */
    for (uint64_t u = 0; u <= UINT32_MAX; u += 4093)
        check_against_ref(f32_of_bits((uint32_t)u));
    /* ...and every rounding boundary: each half's neighbourhood and the
     * midpoints to the next half, exactly and one float ulp either side. */
    for (uint32_t h = 0; h < 0x7c00; h++) {
        float lo = ps_f16_to_f32((uint16_t)h);
        float hi = ps_f16_to_f32((uint16_t)(h + 1));
        float mid = lo + (hi - lo) / 2; /* exact: fewer bits than a float */
        float probes[] = {lo, mid, nextafterf(mid, 0), nextafterf(mid, hi)};
        for (size_t i = 0; i < 4; i++) {
            check_against_ref(probes[i]);
            check_against_ref(-probes[i]);
        }
    }
}
#else
static void test_dtype_f16_matches_compiler_float16(void **st)
{
    (void)st;
    skip(); /* this compiler has no _Float16 */
}
#endif

static void test_dtype_bf16_conversions(void **st)
{
    (void)st;
    assert_bf16(1.0f, 0x3f80);
    assert_bf16(-2.0f, 0xc000);
    assert_bf16(0.0f, 0x0000);
    assert_bf16(-0.0f, 0x8000);
    assert_bf16(0x1p-126f, 0x0080); /* smallest normal float */
    assert_bf16(0x1p-133f, 0x0001); /* a float subnormal, exactly */
    /* Round to nearest even on the 16 dropped bits. */
    assert_bf16(1.0f + 0x1p-8f, 0x3f80);
    assert_bf16(1.0f + 0x3p-8f, 0x3f82);
    assert_bf16(1.0f + 0x1p-8f + 0x1p-20f, 0x3f81);
    /* Overflow: FLT_MAX rounds up to infinity; infinities stay. */
    assert_bf16(FLT_MAX, 0x7f80);
    assert_bf16(INFINITY, 0x7f80);
    assert_bf16(-INFINITY, 0xff80);
    /* NaN stays NaN, even with its payload only in the low 16 bits. */
    uint32_t nans[] = {0x7fc00000u, 0x7f800001u, 0xff800001u};
    for (size_t i = 0; i < sizeof(nans) / sizeof(nans[0]); i++)
        assert_true(
            isnan(ps_bf16_to_f32(ps_f32_to_bf16(f32_of_bits(nans[i])))));
    /* Every non-NaN bfloat16 comes back bit for bit. */
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float f = ps_bf16_to_f32((uint16_t)h);
        if (isnan(f))
            continue;
        assert_true(bits_of_f32(f) == h << 16);
        assert_int_equal(ps_f32_to_bf16(f), h);
    }
}

static void test_dtype_array_conversions(void **st)
{
    (void)st;
    float src[5] = {1.0f, -0.5f, 65504.0f, 0x1p-24f, 3.0f};
    uint16_t half[5];
    float back[5];
    ps_dtype_from_f32(PS_DTYPE_F16, src, half, 5);
    assert_int_equal(half[0], 0x3c00);
    assert_int_equal(half[2], 0x7bff);
    ps_dtype_to_f32(PS_DTYPE_F16, half, back, 5);
    assert_memory_equal(src, back, sizeof(src));
    ps_dtype_from_f32(PS_DTYPE_BF16, src, half, 5);
    assert_int_equal(half[1], 0xbf00);
    ps_dtype_to_f32(PS_DTYPE_BF16, half, back, 5);
    assert_true(back[0] == 1.0f && back[1] == -0.5f && back[4] == 3.0f);
    float f32[5];
    ps_dtype_from_f32(PS_DTYPE_F32, src, f32, 5);
    assert_memory_equal(src, f32, sizeof(src));
}

static void test_dtype_names_and_sizes(void **st)
{
    (void)st;
    assert_int_equal(ps_dtype_size(PS_DTYPE_F32), 4);
    assert_int_equal(ps_dtype_size(PS_DTYPE_F16), 2);
    assert_int_equal(ps_dtype_size(PS_DTYPE_BF16), 2);
    assert_int_equal(ps_dtype_size(3), 0);
    assert_int_equal(ps_dtype_size(-1), 0);
    for (int d = 0; d <= 2; d++)
        assert_int_equal(ps_dtype_parse(ps_dtype_name(d)), d);
    assert_string_equal(ps_dtype_name(7), "?");
    assert_int_equal(ps_dtype_parse("f64"), -1);
    assert_int_equal(ps_dtype_parse(""), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_f16_exact_values),
        cmocka_unit_test(test_dtype_f16_round_nearest_even),
        cmocka_unit_test(test_dtype_f16_subnormal_rounding),
        cmocka_unit_test(test_dtype_f16_overflow_to_inf),
        cmocka_unit_test(test_dtype_f16_nan_stays_nan),
        cmocka_unit_test(test_dtype_f16_exhaustive_round_trip),
        cmocka_unit_test(test_dtype_f16_matches_compiler_float16),
        cmocka_unit_test(test_dtype_bf16_conversions),
        cmocka_unit_test(test_dtype_array_conversions),
        cmocka_unit_test(test_dtype_names_and_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
