/* Unit tests for server/optim.c: every update rule against a step worked
 * out by hand, the state layout, the fused copy and the checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "server/optim.h"
#include "unit/ps_test.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define RTOL 2e-6 /* a handful of float roundings */

/* 0.999 is not a float: Adam's v carries 1 - 0.999f = 0.00099998713
 * rather than 0.001 (the bias correction divides it out of the step). */
#define ONE_MINUS_B2 (1.0 - (double)0.999f)

static ps_optim_cfg cfg_of(int kind, float lr)
{
    ps_optim_cfg c;
    memset(&c, 0, sizeof(c));
    c.kind = kind;
    c.lr = lr;
    ps_optim_fill_defaults(&c);
    return c;
}

/* Applies one gradient to a single parameter whose state has stride 1. */
static void step1(const ps_optim_cfg *c, float *w, float *state, float g)
{
    ps_optim_apply(c, w, state, 1, &g, 1, NULL);
}

/* ---- SGD ---- */

static void test_optim_apply_sgd_plain(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_SGD, 0.1f);
    float w[2] = {1.0f, -2.0f};
    float g[2] = {0.5f, -1.0f};
    ps_optim_apply(&c, w, NULL, 0, g, 2, NULL);
    /* w -= lr g: 1 - 0.1 * 0.5 = 0.95; -2 - 0.1 * -1 = -1.9 */
    assert_near(w[0], 0.95, RTOL);
    assert_near(w[1], -1.9, RTOL);
}

static void test_optim_apply_sgd_momentum_two_steps(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_SGD, 0.1f);
    c.momentum = 0.9f;
    assert_int_equal(ps_optim_state_width(&c), 1);
    float w = 1.0f, v;
    ps_optim_init_state(&c, &w, &v, 1, 1);
    assert_true(v == 0.0f);
    /* step 1, g = 0.5: v = 0.9 * 0 + 0.5 = 0.5; w = 1 - 0.1 * 0.5 = 0.95 */
    step1(&c, &w, &v, 0.5f);
    assert_near(v, 0.5, RTOL);
    assert_near(w, 0.95, RTOL);
    /* step 2, g = 0.25: v = 0.9 * 0.5 + 0.25 = 0.7; w = 0.95 - 0.07 = 0.88.
     * Without momentum it would be 0.95 - 0.025 = 0.925. */
    step1(&c, &w, &v, 0.25f);
    assert_near(v, 0.7, RTOL);
    assert_near(w, 0.88, RTOL);
}

static void test_optim_apply_sgd_weight_decay_coupled(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_SGD, 0.1f);
    c.weight_decay = 0.01f;
    float w = 2.0f;
    /* g = 0.5 + 0.01 * 2 = 0.52; w = 2 - 0.1 * 0.52 = 1.948 */
    step1(&c, &w, NULL, 0.5f);
    assert_near(w, 1.948, RTOL);
}

static void test_optim_apply_sgd_momentum_weight_decay(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_SGD, 0.1f);
    c.momentum = 0.5f;
    c.weight_decay = 0.1f;
    float w = 2.0f, v = 0.0f;
    /* g = 1 + 0.1 * 2 = 1.2; v = 1.2; w = 2 - 0.12 = 1.88 */
    step1(&c, &w, &v, 1.0f);
    assert_near(v, 1.2, RTOL);
    assert_near(w, 1.88, RTOL);
    /* g = 1 + 0.1 * 1.88 = 1.188; v = 0.5 * 1.2 + 1.188 = 1.788;
     * w = 1.88 - 0.1788 = 1.7012 */
    step1(&c, &w, &v, 1.0f);
    assert_near(v, 1.788, RTOL);
    assert_near(w, 1.7012, RTOL);
}

static void test_optim_apply_clip_both_signs(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_SGD, 0.1f);
    c.clip = 1.0f;
    float w[4] = {0, 0, 0, 0};
    float g[4] = {3.0f, -3.0f, 0.5f, -1.0f};
    ps_optim_apply(&c, w, NULL, 0, g, 4, NULL);
    /* g clipped to [1, -1, 0.5, -1]; w = -0.1 g */
    assert_near(w[0], -0.1, RTOL);
    assert_near(w[1], 0.1, RTOL);
    assert_near(w[2], -0.05, RTOL);
    assert_near(w[3], 0.1, RTOL);
    /* The caller's gradient is left alone. */
    assert_true(g[0] == 3.0f && g[1] == -3.0f);
}

static void test_optim_apply_clip_before_weight_decay(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_SGD, 0.1f);
    c.clip = 1.0f;
    c.weight_decay = 0.5f;
    float w = 2.0f;
    /* clip first: g = min(3, 1) = 1, then + 0.5 * 2 = 2; w = 2 - 0.2 = 1.8.
     * (Decay first would give min(3 + 1, 1) = 1 and w = 1.9.) */
    step1(&c, &w, NULL, 3.0f);
    assert_near(w, 1.8, RTOL);
}

/* ---- Adagrad ---- */

static void test_optim_apply_adagrad_initial_accumulator(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_ADAGRAD, 0.1f);
    assert_true(c.initial_accumulator == 0.1f);
    float w = 1.0f, a = -1.0f;
    ps_optim_init_state(&c, &w, &a, 1, 1);
    assert_true(a == 0.1f);
    /* g = 0.3: a = 0.1 + 0.09 = 0.19; w = 1 - 0.1 * 0.3 / sqrt(0.19)
     * = 1 - 0.03 / 0.43588989 = 0.93117528 */
    step1(&c, &w, &a, 0.3f);
    assert_near(a, 0.19, RTOL);
    assert_near(w, 0.93117528, RTOL);
    /* g = -0.4: a = 0.35; w = 0.93117528 + 0.04 / 0.59160798
     * = 0.93117528 + 0.06761234 = 0.99878762 */
    step1(&c, &w, &a, -0.4f);
    assert_near(a, 0.35, RTOL);
    assert_near(w, 0.99878762, RTOL);
}

static void test_optim_apply_adagrad_zero_accumulator(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_ADAGRAD, 0.5f);
    c.initial_accumulator = 0.0f; /* explicitly after the defaults */
    float w = 0.0f, a;
    ps_optim_init_state(&c, &w, &a, 1, 1);
    assert_true(a == 0.0f);
    /* a = 4; w = 0 - 0.5 * 2 / (2 + 1e-10) = -0.5: the first step of
     * Adagrad from zero moves by lr whatever the gradient's size. */
    step1(&c, &w, &a, 2.0f);
    assert_near(w, -0.5, RTOL);
}

/* ---- Adam ---- */

static void test_optim_apply_adam_two_steps(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_ADAM, 0.01f);
    assert_true(c.beta1 == 0.9f && c.beta2 == 0.999f && c.eps == 1e-8f);
    assert_int_equal(ps_optim_state_width(&c), 3);
    float w = 1.0f, s[3] = {7, 7, 7};
    ps_optim_init_state(&c, &w, s, 1, 1);
    assert_true(s[0] == 0 && s[1] == 0 && s[2] == 0);
    /* t = 1, g = 0.5: m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25 = 0.00025;
     * m^ = 0.05 / 0.1 = 0.5, v^ = 0.00025 / 0.001 = 0.25;
     * w = 1 - 0.01 * 0.5 / (0.5 + 1e-8) = 0.99 */
    step1(&c, &w, s, 0.5f);
    assert_near(s[0], 0.05, RTOL);
    assert_near(s[1], ONE_MINUS_B2 * 0.25, RTOL);
    assert_true(s[2] == 1.0f);
    assert_near(w, 0.99, RTOL);
    /* t = 2, g = 0.25: m = 0.045 + 0.025 = 0.07;
     * v = 0.999 * 0.00025 + 0.001 * 0.0625 = 0.00031225;
     * m^ = 0.07 / (1 - 0.81) = 0.36842105;
     * v^ = 0.00031225 / (1 - 0.998001) = 0.15620310, sqrt = 0.39522538;
     * w = 0.99 - 0.01 * 0.93217964 = 0.98067820 */
    step1(&c, &w, s, 0.25f);
    assert_near(s[0], 0.07, RTOL);
    assert_near(s[1], 0.999f * ONE_MINUS_B2 * 0.25 + ONE_MINUS_B2 * 0.0625,
                RTOL);
    assert_true(s[2] == 2.0f);
    assert_near(w, 0.98067820, RTOL);
}

static void test_optim_apply_adamw_decoupled_decay(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_ADAM, 0.01f);
    c.weight_decay = 0.1f;
    float w = 1.0f, s[3] = {0, 0, 0};
    /* Decoupled: w = 1 - 0.01 * 0.1 * 1 = 0.999, then the first Adam step
     * moves by lr: 0.989. Coupled decay (g = 0.5 + 0.1) would leave the
     * first step at exactly lr, giving 0.99, and m = 0.06. */
    step1(&c, &w, s, 0.5f);
    assert_near(w, 0.989, RTOL);
    assert_near(s[0], 0.05, RTOL);

    /* With clipping on too: g = min(3, 1) = 1 reaches m unchanged,
     * m = 0.1 * 1 = 0.1 (coupled decay would make it 0.1 * 1.1 = 0.11). */
    c.clip = 1.0f;
    w = 1.0f;
    s[0] = s[1] = s[2] = 0;
    step1(&c, &w, s, 3.0f);
    assert_near(s[0], 0.1, RTOL);
    assert_near(w, 0.989, RTOL);
}

static void test_optim_apply_adam_partial_push_step_counts(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_ADAM, 0.01f);
    enum { N = 4 };
    float w[N] = {1, 1, 1, 1}, s[3 * N];
    float g[N] = {0.5f, 0.5f, 0.5f, 0.5f};
    ps_optim_init_state(&c, w, s, N, N);
    /* Push [0, 2) only, then the whole table. */
    ps_optim_apply(&c, w, s, N, g, 2, NULL);
    ps_optim_apply(&c, w, s, N, g, N, NULL);
    /* Step counts per parameter: 2, 2, 1, 1. */
    assert_true(s[2 * N + 0] == 2 && s[2 * N + 1] == 2);
    assert_true(s[2 * N + 2] == 1 && s[2 * N + 3] == 1);
    /* Parameters 2 and 3 had their first step: 1 - 0.01 = 0.99 (a global
     * step count would bias-correct with t = 2 and move them less). */
    assert_near(w[2], 0.99, RTOL);
    assert_near(w[3], 0.99, RTOL);
    /* Parameters 0 and 1, two steps of g = 0.5: m = 0.095, m^ = 0.5,
     * v = 0.00049975, v^ = 0.25: w = 0.99 - 0.01 = 0.98. */
    assert_near(w[0], 0.98, RTOL);
    assert_near(w[1], 0.98, RTOL);
}

/* ---- FTRL ---- */

static ps_optim_cfg ftrl_cfg(float l1, float l2)
{
    ps_optim_cfg c = cfg_of(PS_OPTIM_FTRL, 0.1f); /* alpha = 0.1 */
    assert_true(c.ftrl_beta == 1.0f);
    c.l1 = l1;
    c.l2 = l2;
    return c;
}

static void test_optim_apply_ftrl_l1_makes_exact_zero(void **st)
{
    (void)st;
    ps_optim_cfg c = ftrl_cfg(1.0f, 0.0f);
    float w = 0.0f, s[2];
    ps_optim_init_state(&c, &w, s, 1, 1);
    /* g = 0.5: sigma = (sqrt(0.25) - 0) / 0.1 = 5; z = 0.5 - 5 * 0 = 0.5;
     * n = 0.25; |z| = 0.5 <= l1 = 1, so w is exactly 0. */
    step1(&c, &w, s, 0.5f);
    assert_near(s[0], 0.5, RTOL);
    assert_near(s[1], 0.25, RTOL);
    assert_true(w == 0.0f);
}

static void test_optim_apply_ftrl_nonzero_two_steps(void **st)
{
    (void)st;
    ps_optim_cfg c = ftrl_cfg(1.0f, 1.0f);
    float w = 0.0f, s[2] = {0, 0};
    /* g = 2: n = 4, sigma = 2 / 0.1 = 20, z = 2 - 20 * 0 = 2 > l1;
     * w = -(2 - 1) / ((1 + 2) / 0.1 + 1) = -1 / 31 = -0.032258065 */
    step1(&c, &w, s, 2.0f);
    assert_near(s[0], 2.0, RTOL);
    assert_near(s[1], 4.0, RTOL);
    assert_near(w, -1.0 / 31.0, RTOL);
    /* g = -1: sigma = (sqrt(5) - 2) / 0.1 = 2.3606798;
     * z = 2 - 1 - 2.3606798 * -0.032258065 = 1.0761510; n = 5;
     * w = -(1.0761510 - 1) / ((1 + 2.2360680) / 0.1 + 1)
     *   = -0.0761510 / 33.360680 = -0.0022826561 */
    step1(&c, &w, s, -1.0f);
    assert_near(s[0], 1.0761510, 1e-6);
    assert_near(s[1], 5.0, RTOL);
    assert_near(w, -0.0022826561, 1e-5); /* z - l1 cancels digits */
}

static void test_optim_init_state_ftrl_gives_back_w(void **st)
{
    (void)st;
    ps_optim_cfg c = ftrl_cfg(1.0f, 1.0f);
    float w[3] = {0.5f, -0.25f, 0.0f}, s[6];
    float zero[3] = {0, 0, 0};
    ps_optim_init_state(&c, w, s, 3, 3);
    /* d = beta / alpha + l2 = 11. w = 0.5: z = -(0.5 * 11 + 1) = -6.5, and
     * -(-6.5 + 1) / 11 = 0.5. w = -0.25: z = -(-2.75 - 1) = 3.75. */
    assert_near(s[0], -6.5, RTOL);
    assert_near(s[1], 3.75, RTOL);
    assert_true(s[2] == 0.0f);
    assert_true(s[3] == 0 && s[4] == 0 && s[5] == 0);
    /* A zero gradient changes neither z nor n, so the formula recomputes w
     * from the initial state: the weights must come back. */
    ps_optim_apply(&c, w, s, 3, zero, 3, NULL);
    assert_near(w[0], 0.5, RTOL);
    assert_near(w[1], -0.25, RTOL);
    assert_true(w[2] == 0.0f);
}

/* ---- layout, fused copy, chunking ---- */

static void test_optim_apply_stride_subrange(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_ADAM, 0.01f);
    enum { N = 8, LO = 3, CNT = 3 };
    float w[N], s[3 * N], g[CNT] = {0.5f, -0.5f, 2.0f};
    for (int i = 0; i < N; i++)
        w[i] = 1.0f;
    ps_optim_init_state(&c, w, s, N, N);
    ps_optim_apply(&c, w + LO, s + LO, N, g, CNT, NULL);
    for (int i = 0; i < N; i++) {
        int in = i >= LO && i < LO + CNT;
        float gi = in ? g[i - LO] : 0.0f;
        /* slot 0 (m) = 0.1 g, slot 1 (v) = 0.001 g^2, slot 2 (t) = 1 */
        assert_near(s[i], 0.1 * gi, RTOL);
        assert_near(s[N + i], ONE_MINUS_B2 * gi * gi, RTOL);
        assert_true(s[2 * N + i] == (in ? 1.0f : 0.0f));
        /* first Adam step: w moves by lr against the gradient's sign */
        assert_near(w[i], in ? 1.0 - 0.01 * (gi > 0 ? 1 : -1) : 1.0, RTOL);
    }
}

static void test_optim_apply_fused_out_copy(void **st)
{
    (void)st;
    enum { N = 1037 }; /* several chunks, blocks and a ragged tail */
    ps_optim_cfg c = cfg_of(PS_OPTIM_SGD, 0.5f);
    static float w[N], g[N], out[N + 1];
    for (int i = 0; i < N; i++) {
        w[i] = (float)i;
        g[i] = 1.0f;
        out[i] = -1.0f;
    }
    out[N] = 12345.0f; /* sentinel past the end */
    ps_optim_apply(&c, w, NULL, 0, g, N, out);
    for (int i = 0; i < N; i++) {
        assert_true(w[i] == (float)i - 0.5f);
        assert_true(out[i] == w[i]);
    }
    assert_true(out[N] == 12345.0f);
    /* out == w is allowed: the weights are the reply. */
    ps_optim_apply(&c, w, NULL, 0, g, N, w);
    assert_true(w[N - 1] == (float)(N - 1) - 1.0f);
}

/* A long apply must give each element what a one-element apply gives: the
 * chunk, block and tail paths compute the same rule. */
static void check_long_matches_single(ps_optim_cfg c)
{
    enum { N = 1100 };
    static float w[N], w1[N], s[3 * N], s1[3], g[N], out[N];
    int width = ps_optim_state_width(&c);
    for (int i = 0; i < N; i++) {
        w[i] = w1[i] = 0.01f * (float)(i % 97) - 0.3f;
        g[i] = 0.05f * (float)(i % 41) - 1.0f; /* some beyond clip */
    }
    ps_optim_init_state(&c, w, s, N, N);
    for (int rep = 0; rep < 2; rep++)
        ps_optim_apply(&c, w, s, N, g, N, out);
    for (int i = 0; i < N; i++) {
        ps_optim_init_state(&c, &w1[i], s1, 1, 1);
        for (int rep = 0; rep < 2; rep++)
            ps_optim_apply(&c, &w1[i], s1, 1, &g[i], 1, NULL);
        assert_true(w[i] == w1[i]);
        assert_true(out[i] == w[i]);
        for (int k = 0; k < width; k++)
            assert_true(s[(size_t)k * N + (size_t)i] == s1[k]);
    }
}

static void test_optim_apply_long_equals_elementwise(void **st)
{
    (void)st;
    int kinds[] = {PS_OPTIM_SGD, PS_OPTIM_ADAGRAD, PS_OPTIM_ADAM,
                   PS_OPTIM_FTRL};
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        for (int opts = 0; opts < 2; opts++) {
            ps_optim_cfg c = cfg_of(kinds[k], 0.05f);
            if (opts) {
                c.clip = 0.5f;
                c.weight_decay = 0.01f;
                c.momentum = kinds[k] == PS_OPTIM_SGD ? 0.9f : 0.0f;
                c.l1 = 0.1f;
                c.l2 = 0.2f;
            }
            check_long_matches_single(c);
        }
    }
}

/* ---- state width, init_state, defaults, check ---- */

static void test_optim_state_width_per_kind(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_SGD, 0.1f);
    assert_int_equal(ps_optim_state_width(&c), 0);
    c.momentum = 0.5f;
    assert_int_equal(ps_optim_state_width(&c), 1);
    c = cfg_of(PS_OPTIM_ADAGRAD, 0.1f);
    assert_int_equal(ps_optim_state_width(&c), 1);
    c = cfg_of(PS_OPTIM_ADAM, 0.1f);
    assert_int_equal(ps_optim_state_width(&c), 3);
    c = cfg_of(PS_OPTIM_FTRL, 0.1f);
    assert_int_equal(ps_optim_state_width(&c), 2);
}

static void test_optim_init_state_respects_stride(void **st)
{
    (void)st;
    ps_optim_cfg c = cfg_of(PS_OPTIM_ADAGRAD, 0.1f);
    c.initial_accumulator = 0.25f;
    float w[2] = {1, 2}, s[4] = {9, 9, 9, 9};
    ps_optim_init_state(&c, w, s + 1, 4, 2);
    assert_true(s[0] == 9 && s[1] == 0.25f && s[2] == 0.25f && s[3] == 9);

    c = cfg_of(PS_OPTIM_ADAM, 0.1f);
    float s3[9];
    for (int i = 0; i < 9; i++)
        s3[i] = 9;
    ps_optim_init_state(&c, w, s3, 3, 2); /* slots at 0, 3, 6 */
    for (int i = 0; i < 9; i++)
        assert_true(s3[i] == (i % 3 == 2 ? 9.0f : 0.0f));
}

static void test_optim_fill_defaults_keeps_set_values(void **st)
{
    (void)st;
    ps_optim_cfg c;
    memset(&c, 0, sizeof(c));
    c.kind = PS_OPTIM_ADAM;
    c.beta1 = 0.5f;
    ps_optim_fill_defaults(&c);
    assert_true(c.beta1 == 0.5f && c.beta2 == 0.999f && c.eps == 1e-8f);

    memset(&c, 0, sizeof(c));
    c.kind = PS_OPTIM_ADAGRAD;
    ps_optim_fill_defaults(&c);
    assert_true(c.eps == 1e-10f && c.initial_accumulator == 0.1f);

    memset(&c, 0, sizeof(c));
    c.kind = PS_OPTIM_FTRL;
    c.ftrl_beta = 2.0f;
    ps_optim_fill_defaults(&c);
    assert_true(c.ftrl_beta == 2.0f);

    memset(&c, 0, sizeof(c)); /* SGD has no hidden defaults */
    ps_optim_fill_defaults(&c);
    assert_true(c.eps == 0 && c.beta1 == 0 && c.momentum == 0);
}

static void expect_rejected(ps_optim_cfg c, const char *field)
{
    char err[256] = "";
    assert_int_equal(ps_optim_check(&c, err, sizeof(err)), PS_EINVAL);
    if (strstr(err, field) == NULL) {
        print_error("message '%s' does not name '%s'\n", err, field);
        fail();
    }
}

static void test_optim_check_rejects_bad_values(void **st)
{
    (void)st;
    char err[256];
    ps_optim_cfg ok = cfg_of(PS_OPTIM_ADAM, 0.01f);
    assert_int_equal(ps_optim_check(&ok, err, sizeof(err)), PS_OK);
    ps_optim_cfg sgd = cfg_of(PS_OPTIM_SGD, 0.01f); /* eps 0 is fine here */
    assert_int_equal(ps_optim_check(&sgd, err, sizeof(err)), PS_OK);
    ps_optim_cfg c;

    c = ok, c.kind = 4;
    expect_rejected(c, "kind");
    c = ok, c.kind = -1;
    expect_rejected(c, "kind");
    c = ok, c.lr = 0;
    expect_rejected(c, "lr");
    c = ok, c.lr = -1;
    expect_rejected(c, "lr");
    c = ok, c.lr = NAN;
    expect_rejected(c, "lr");
    c = ok, c.lr = INFINITY;
    expect_rejected(c, "lr");
    c = ok, c.momentum = 1.0f;
    expect_rejected(c, "momentum");
    c = ok, c.momentum = -0.1f;
    expect_rejected(c, "momentum");
    c = ok, c.beta1 = 1.0f;
    expect_rejected(c, "beta1");
    c = ok, c.beta2 = 1.0f;
    expect_rejected(c, "beta2");
    c = ok, c.beta2 = 1.5f;
    expect_rejected(c, "beta2");
    c = ok, c.beta2 = NAN;
    expect_rejected(c, "beta2");
    c = ok, c.eps = 0;
    expect_rejected(c, "eps");
    c = ok, c.l1 = -1;
    expect_rejected(c, "l1");
    c = ok, c.l2 = -1;
    expect_rejected(c, "l2");
    c = ok, c.weight_decay = -0.1f;
    expect_rejected(c, "weight_decay");
    c = ok, c.clip = -1;
    expect_rejected(c, "clip");
    c = ok, c.clip = NAN;
    expect_rejected(c, "clip");
    c = ok, c.initial_accumulator = -1;
    expect_rejected(c, "initial_accumulator");
    c = cfg_of(PS_OPTIM_FTRL, 0.1f), c.ftrl_beta = 0;
    expect_rejected(c, "ftrl_beta");
    c.l2 = 1.0f; /* the denominator is positive again */
    assert_int_equal(ps_optim_check(&c, err, sizeof(err)), PS_OK);
}

/* ---- all_finite ---- */

static void test_optim_all_finite_detects_nan_inf(void **st)
{
    (void)st;
    enum { N = 37 }; /* two blocks of 16 and a tail of 5 */
    float v[N];
    for (int i = 0; i < N; i++)
        v[i] = (float)i - 10.0f;
    v[3] = FLT_MAX;
    v[4] = -FLT_MAX;
    v[5] = FLT_MIN / 4; /* subnormal */
    assert_true(ps_all_finite(v, N));
    assert_true(ps_all_finite(v, 0));
    float bad[] = {NAN, INFINITY, -INFINITY, -NAN};
    int where[] = {0, 17, 31, 32, 36};
    for (size_t b = 0; b < sizeof(bad) / sizeof(bad[0]); b++) {
        for (size_t k = 0; k < sizeof(where) / sizeof(where[0]); k++) {
            float keep = v[where[k]];
            v[where[k]] = bad[b];
            assert_false(ps_all_finite(v, N));
            /* Outside the range looked at, it does not count. */
            assert_true(ps_all_finite(v, (size_t)where[k]));
            v[where[k]] = keep;
        }
    }
}

/* Every exponent, both signs, the mantissa's extremes: the bit trick in
 * ps_all_finite agrees with isfinite on each, alone and inside a block. */
static void test_optim_all_finite_every_exponent(void **st)
{
    (void)st;
    const uint32_t mantissas[] = {0, 1, 0x400000, 0x7fffff};
    float block[40];
    for (uint32_t e = 0; e < 256; e++)
        for (uint32_t sign = 0; sign < 2; sign++)
            for (size_t m = 0; m < 4; m++) {
                uint32_t u = sign << 31 | e << 23 | mantissas[m];
                float x;
                memcpy(&x, &u, sizeof(x));
                int want = isfinite(x) != 0;
                if (ps_all_finite(&x, 1) != want)
                    fail_msg("bits 0x%08x: got %d, want %d", u, !want, want);
                for (size_t i = 0; i < 40; i++)
                    block[i] = 1.0f;
                block[e % 40] = x;
                assert_int_equal(ps_all_finite(block, 40), want);
            }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_optim_apply_sgd_plain),
        cmocka_unit_test(test_optim_apply_sgd_momentum_two_steps),
        cmocka_unit_test(test_optim_apply_sgd_weight_decay_coupled),
        cmocka_unit_test(test_optim_apply_sgd_momentum_weight_decay),
        cmocka_unit_test(test_optim_apply_clip_both_signs),
        cmocka_unit_test(test_optim_apply_clip_before_weight_decay),
        cmocka_unit_test(test_optim_apply_adagrad_initial_accumulator),
        cmocka_unit_test(test_optim_apply_adagrad_zero_accumulator),
        cmocka_unit_test(test_optim_apply_adam_two_steps),
        cmocka_unit_test(test_optim_apply_adamw_decoupled_decay),
        cmocka_unit_test(test_optim_apply_adam_partial_push_step_counts),
        cmocka_unit_test(test_optim_apply_ftrl_l1_makes_exact_zero),
        cmocka_unit_test(test_optim_apply_ftrl_nonzero_two_steps),
        cmocka_unit_test(test_optim_init_state_ftrl_gives_back_w),
        cmocka_unit_test(test_optim_apply_stride_subrange),
        cmocka_unit_test(test_optim_apply_fused_out_copy),
        cmocka_unit_test(test_optim_apply_long_equals_elementwise),
        cmocka_unit_test(test_optim_state_width_per_kind),
        cmocka_unit_test(test_optim_init_state_respects_stride),
        cmocka_unit_test(test_optim_fill_defaults_keeps_set_values),
        cmocka_unit_test(test_optim_check_rejects_bad_values),
        cmocka_unit_test(test_optim_all_finite_detects_nan_inf),
        cmocka_unit_test(test_optim_all_finite_every_exponent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
