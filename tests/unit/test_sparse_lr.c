/* Unit tests for worker/sparse_lr.c on the CPU backend: spec parsing, the
 * feature hash, batch building (distinct keys, bias entry, label check,
 * growth past the first capacity), analytic gradients against central
 * finite differences of the evaluated loss, predict through a lookup,
 * a batch moving to another model's backend (its uploaded arrays are that
 * backend's host memory), and plain SGD fitting a separable problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "unit/ps_test.h"
#include "worker/backend.h"
#include "worker/data.h"
#include "worker/sparse_lr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;

/* Uniform in [-1, 1). */
static double urand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static int setup(void **state)
{
    ps_backend *be = NULL;

    rng_state = 0x9e3779b97f4a7c15ULL;
    if (ps_backend_open("cpu", &be, NULL, 0) != PS_OK)
        return -1;
    *state = be;
    return 0;
}

static int teardown(void **state)
{
    ps_backend_free(*state);
    return 0;
}

static ps_logreg *new_model(ps_backend *be, const char *spec, size_t batch)
{
    ps_logreg *m = NULL;
    char err[256] = "";
    int rc = ps_logreg_new(&m, spec, be, batch, err, sizeof(err));

    if (rc != PS_OK)
        print_error("ps_logreg_new(%s): %s\n", spec, err);
    assert_int_equal(rc, PS_OK);
    return m;
}

/* A random sparse batch: n rows of `per_row` increasing feature ids below
 * nfeat (values in [-1, 1)), labels alternating 0/1. Owned arrays. */
typedef struct host_batch {
    ps_batch b;
    size_t rowptr[64];
    uint64_t idx[4096];
    float val[4096], y[64];
} host_batch;

static void random_batch(host_batch *h, size_t n, size_t per_row,
                         uint64_t nfeat)
{
    size_t e = 0;

    assert_true(n < 64 && n * per_row <= 4096 && per_row <= nfeat);
    h->rowptr[0] = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t f = 0;
        for (size_t k = 0; k < per_row; k++) {
            /* Increasing ids with random gaps, leaving room for the rest. */
            uint64_t room = nfeat - f - (per_row - k);
            f += (uint64_t)((urand() + 1.0) * 0.5 * (double)(room / 2 + 1));
            h->idx[e] = f++;
            h->val[e++] = (float)urand();
        }
        h->rowptr[i + 1] = e;
        h->y[i] = (float)(i % 2);
    }
    h->b = (ps_batch){n, 0, NULL, h->y, h->rowptr, h->idx, h->val};
}

/* ---- spec and hash ---- */

static void test_logreg_parse_spec_bits(void **state)
{
    unsigned bits = 0;
    char err[256];

    (void)state;
    assert_int_equal(ps_logreg_parse_spec("logreg", &bits, NULL, 0), PS_OK);
    assert_int_equal(bits, PS_LOGREG_DEFAULT_BITS);
    assert_int_equal(ps_logreg_parse_spec("logreg:20", &bits, NULL, 0), PS_OK);
    assert_int_equal(bits, 20);
    static const char *bad[] = {"logreg:",   "logreg:0",  "logreg:49",
                                "logreg:2x", "logreg:-3", "logreg20"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(ps_logreg_parse_spec(bad[i], &bits, err, sizeof(err)),
                         PS_EINVAL);
        assert_non_null(strstr(err, bad[i]));
    }
    assert_true(ps_logreg_is_spec("logreg:x"));
    assert_false(ps_logreg_is_spec("softmax"));
    assert_false(ps_logreg_is_spec(NULL));
}

static void test_logreg_key_in_range_and_stable(void **state)
{
    (void)state;
    for (unsigned bits = 1; bits <= PS_LOGREG_MAX_BITS; bits += 7)
        for (uint64_t f = 0; f < 1000; f++)
            assert_true(ps_logreg_key(bits, f) < ps_logreg_bias_key(bits));
    /* Pinned values: a changed hash would silently break saved models. */
    assert_int_equal(ps_logreg_key(24, 0), 0xe220a8ULL);
    assert_int_equal(ps_logreg_bias_key(24), 1ULL << 24);
    /* Spread: 1000 ids into 2^20 keys collide rarely. */
    size_t dup = 0;
    static uint8_t seen[1 << 20];
    memset(seen, 0, sizeof(seen));
    for (uint64_t f = 0; f < 1000; f++)
        dup += seen[ps_logreg_key(20, f)]++ != 0;
    assert_true(dup < 5);
}

/* ---- batches ---- */

static void test_logreg_batch_build_keys_and_bias(void **state)
{
    ps_logreg *m = new_model(*state, "logreg:4", 4); /* 16 keys: collisions */
    ps_logreg_batch lb;
    size_t rowptr[4] = {0, 3, 3, 5};
    uint64_t idx[5] = {1, 7, 9, 7, 100};
    float val[5] = {1, 2, 3, 4, 5}, y[3] = {1, 0, 1};
    ps_batch b = {3, 0, NULL, y, rowptr, idx, val};
    char err[256];

    ps_logreg_batch_init(&lb);
    assert_int_equal(ps_logreg_batch_build(m, &lb, &b, 1, err, sizeof(err)),
                     PS_OK);
    assert_int_equal(lb.n, 3);
    assert_int_equal(lb.nnz, 8); /* 5 + one bias per row */
    assert_int_equal(lb.keys[0], ps_logreg_bias_key(4));
    uint32_t want_rowptr[4] = {0, 4, 5, 8};
    assert_memory_equal(lb.rowptr, want_rowptr, sizeof(want_rowptr));
    /* Every entry points at its feature's key; keys are distinct. */
    size_t e = 0;
    for (size_t i = 0; i < 3; i++) {
        for (size_t p = rowptr[i]; p < rowptr[i + 1]; p++, e++) {
            assert_int_equal(lb.keys[lb.col[e]], ps_logreg_key(4, idx[p]));
            assert_true(lb.val[e] == val[p]);
        }
        assert_int_equal(lb.col[e], 0);
        assert_true(lb.val[e++] == 1.0f);
    }
    for (size_t i = 0; i < lb.nuniq; i++)
        for (size_t j = i + 1; j < lb.nuniq; j++)
            assert_true(lb.keys[i] != lb.keys[j]);
    assert_true(lb.nuniq <= 5); /* bias, 1, 7, 9, 100 (7 repeated) */

    /* Rebuilding reuses the hash: same result. */
    size_t nuniq = lb.nuniq;
    assert_int_equal(ps_logreg_batch_build(m, &lb, &b, 1, err, sizeof(err)),
                     PS_OK);
    assert_int_equal(lb.nuniq, nuniq);

    y[1] = 2.0f;
    err[0] = '\0';
    assert_int_equal(ps_logreg_batch_build(m, &lb, &b, 1, err, sizeof(err)),
                     PS_EINVAL);
    assert_non_null(strstr(err, "label 2"));
    assert_int_equal(ps_logreg_batch_build(m, &lb, &b, 0, err, sizeof(err)),
                     PS_OK); /* predict ignores labels */
    b.rowptr = NULL;         /* dense data */
    assert_int_equal(ps_logreg_batch_build(m, &lb, &b, 1, err, sizeof(err)),
                     PS_EINVAL);
    ps_logreg_batch_free(&lb);
    ps_logreg_batch_free(&lb);
    ps_logreg_free(m);
    ps_logreg_free(NULL);
}

/* ---- gradients ---- */

static void gradcheck(ps_backend *be, size_t n, size_t per_row)
{
    const double eps = 1e-2;
    ps_logreg *m = new_model(be, "logreg:10", 4); /* grows for n > 4 */
    ps_logreg_batch lb;
    host_batch h;
    float *w, *g;
    double loss, loss2, worst = 0.0;
    size_t correct, correct2;
    char err[256];

    random_batch(&h, n, per_row, 200);
    ps_logreg_batch_init(&lb);
    assert_int_equal(ps_logreg_batch_build(m, &lb, &h.b, 1, err, sizeof(err)),
                     PS_OK);
    w = malloc(lb.nuniq * sizeof(float));
    g = malloc(lb.nuniq * sizeof(float));
    for (size_t i = 0; i < lb.nuniq; i++)
        w[i] = (float)(0.5 * urand());
    assert_int_equal(ps_logreg_step(m, &lb, w, g, &loss, &correct), PS_OK);
    assert_int_equal(ps_logreg_eval(m, &lb, w, &loss2, &correct2, NULL), PS_OK);
    assert_near(loss2, loss, 1e-6);
    assert_int_equal(correct2, correct);
    assert_true(loss > 0.0 && correct <= n);

    for (size_t i = 0; i < lb.nuniq; i++) {
        float saved = w[i];
        double lp, lm, num, den, rel;

        w[i] = (float)(saved + eps);
        assert_int_equal(ps_logreg_eval(m, &lb, w, &lp, NULL, NULL), PS_OK);
        w[i] = (float)(saved - eps);
        assert_int_equal(ps_logreg_eval(m, &lb, w, &lm, NULL, NULL), PS_OK);
        w[i] = saved;
        num = (lp - lm) /
              ((double)(float)(saved + eps) - (double)(float)(saved - eps));
        den = fmax(fmax(fabs(num), fabs((double)g[i])), 1e-2);
        rel = fabs(num - (double)g[i]) / den;
        if (rel >= 1e-2)
            fail_msg("key %zu: analytic %.7g numeric %.7g rel %.3g", i,
                     (double)g[i], num, rel);
        worst = fmax(worst, rel);
    }
    print_message("logreg n=%zu: %zu keys, worst relative error %.2e\n", n,
                  lb.nuniq, worst);
    free(w);
    free(g);
    ps_logreg_batch_free(&lb);
    ps_logreg_free(m);
}

static void test_logreg_grads_match_finite_differences(void **state)
{
    gradcheck(*state, 8, 5);
    /* More rows and entries than the first device buffers hold. */
    gradcheck(*state, 40, 60);
}

/* ---- predict and training ---- */

typedef struct weights {
    const uint64_t *keys;
    const float *w;
    size_t n;
} weights;

static int lookup(void *ctx, const uint64_t *keys, size_t n, float *w)
{
    const weights *t = ctx;
    for (size_t i = 0; i < n; i++) {
        w[i] = 0.0f;
        for (size_t j = 0; j < t->n; j++)
            if (t->keys[j] == keys[i])
                w[i] = t->w[j];
    }
    return PS_OK;
}

static void test_logreg_predict_matches_eval(void **state)
{
    ps_logreg *m = new_model(*state, "logreg:12", 8);
    ps_logreg_batch lb;
    host_batch h;
    float w[256], logits[8], probs[8];
    double loss;
    char err[256];

    random_batch(&h, 8, 6, 300);
    ps_logreg_batch_init(&lb);
    assert_int_equal(ps_logreg_batch_build(m, &lb, &h.b, 1, err, sizeof(err)),
                     PS_OK);
    assert_true(lb.nuniq <= 256);
    for (size_t i = 0; i < lb.nuniq; i++)
        w[i] = (float)(4.0 * urand());
    assert_int_equal(ps_logreg_eval(m, &lb, w, &loss, NULL, logits), PS_OK);
    /* The lookup holds all but the last key: predict sees 0 there. */
    weights t = {lb.keys, w, lb.nuniq - 1};
    float saved = w[lb.nuniq - 1];
    w[lb.nuniq - 1] = 0.0f;
    float zero_logits[8];
    assert_int_equal(ps_logreg_eval(m, &lb, w, &loss, NULL, zero_logits),
                     PS_OK);
    w[lb.nuniq - 1] = saved;
    assert_int_equal(ps_logreg_predict(m, &h.b, lookup, &t, probs), PS_OK);
    for (size_t i = 0; i < 8; i++)
        assert_near(probs[i], 1.0 / (1.0 + exp(-(double)zero_logits[i])), 1e-5);
    (void)logits;
    assert_int_equal(ps_logreg_predict(m, &h.b, NULL, &t, probs), PS_EINVAL);
    ps_logreg_batch_free(&lb);
    ps_logreg_free(m);
}

/* Label = feature 0 present: SGD on the keys' weights must separate it. */
static void test_logreg_sgd_fits_separable(void **state)
{
    enum { N = 32 };
    ps_logreg *m = new_model(*state, "logreg:16", N);
    ps_logreg_batch lb;
    size_t rowptr[N + 1], e = 0, correct = 0;
    uint64_t idx[N * 3];
    float val[N * 3], y[N], w[N * 3 + 1] = {0}, g[N * 3 + 1];
    double loss = 0, first = 0;
    char err[256];
    int step;

    rowptr[0] = 0;
    for (size_t i = 0; i < N; i++) {
        y[i] = (float)(i % 2);
        if (i % 2)
            idx[e] = 0, val[e++] = 1.0f;
        idx[e] = 1 + i % 5, val[e++] = 1.0f; /* noise features */
        idx[e] = 10 + i % 3, val[e++] = 1.0f;
        rowptr[i + 1] = e;
    }
    ps_batch b = {N, 0, NULL, y, rowptr, idx, val};
    ps_logreg_batch_init(&lb);
    assert_int_equal(ps_logreg_batch_build(m, &lb, &b, 1, err, sizeof(err)),
                     PS_OK);
    for (step = 0; step < 500; step++) {
        assert_int_equal(ps_logreg_step(m, &lb, w, g, &loss, &correct), PS_OK);
        if (step == 0)
            first = loss;
        if (correct == N && loss < 0.1)
            break;
        for (size_t i = 0; i < lb.nuniq; i++)
            w[i] -= 2.0f * g[i];
    }
    print_message("logreg: 100%% after %d steps, loss %.3f -> %.3f\n", step,
                  first, loss);
    assert_near(first, log(2.0), 1e-6); /* zero weights: p = 0.5 */
    assert_int_equal(correct, N);
    assert_true(step < 500);
    ps_logreg_batch_free(&lb);
    ps_logreg_free(m);
}

/* A batch's uploaded arrays are its model backend's host memory; built
 * again for a model on another backend they move there, and both models
 * compute the same step from it (the deferred backend reads them at
 * sync, so a freed or stale array would show). */
static void test_logreg_batch_follows_its_backend(void **state)
{
    ps_backend *other = NULL;
    enum { N = 6 };
    size_t rowptr[N + 1], e = 0;
    uint64_t idx[2 * N];
    float val[2 * N], y[N], w[64], g[2][64];
    double loss[2];
    size_t correct[2];
    char err[256] = "";
    ps_logreg_batch lb;

    assert_int_equal(ps_backend_open("cpu-deferred", &other, NULL, 0), PS_OK);
    ps_backend *bes[2] = {*state, other};
    ps_logreg *m[2] = {new_model(bes[0], "logreg:8", N),
                       new_model(bes[1], "logreg:8", N)};
    rowptr[0] = 0;
    for (size_t i = 0; i < N; i++) {
        y[i] = (float)(i % 2);
        idx[e] = i, val[e++] = 1.0f;
        idx[e] = 100 + i % 3, val[e++] = 0.5f;
        rowptr[i + 1] = e;
    }
    ps_batch b = {N, 0, NULL, y, rowptr, idx, val};
    for (size_t i = 0; i < 64; i++)
        w[i] = (float)urand();
    ps_logreg_batch_init(&lb);
    for (int d = 0; d < 2; d++) {
        assert_int_equal(
            ps_logreg_batch_build(m[d], &lb, &b, 1, err, sizeof(err)), PS_OK);
        assert_ptr_equal(lb.be, bes[d]);
        assert_true(lb.nuniq <= 64);
        assert_int_equal(
            ps_logreg_step(m[d], &lb, w, g[d], &loss[d], &correct[d]), PS_OK);
    }
    assert_true(loss[0] == loss[1]);
    assert_int_equal(correct[0], correct[1]);
    assert_memory_equal(g[0], g[1], lb.nuniq * sizeof(float));
    ps_logreg_batch_free(&lb);
    ps_logreg_batch_free(&lb); /* twice is harmless */
    ps_logreg_free(m[0]);
    ps_logreg_free(m[1]);
    ps_backend_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_logreg_parse_spec_bits),
        cmocka_unit_test(test_logreg_key_in_range_and_stable),
        cmocka_unit_test_setup_teardown(test_logreg_batch_build_keys_and_bias,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_logreg_grads_match_finite_differences, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logreg_predict_matches_eval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_logreg_batch_follows_its_backend,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_logreg_sgd_fits_separable, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
