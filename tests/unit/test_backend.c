/* Unit tests for worker/backend.c and worker/backend_cpu.c: the registry,
 * the operand checks, and every CPU operation against a naive double
 * precision reference on small random inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "unit/ps_test.h"
#include "worker/backend.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TOL 1e-5

/* Deterministic uniform floats in [-1, 1). */
static uint64_t rng_state = 88172645463325252ULL;

static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill_rand(float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = frand();
}

static int setup(void **state)
{
    ps_backend *be = NULL;
    char err[256];

    rng_state = 88172645463325252ULL;
    if (ps_backend_open("cpu", &be, err, sizeof(err)) != PS_OK)
        return -1;
    *state = be;
    return 0;
}

static int teardown(void **state)
{
    ps_backend_free(*state);
    return 0;
}

/* A device buffer holding a copy of host floats. */
static ps_buf *dev_from(ps_backend *be, const float *x, size_t n)
{
    ps_buf *b = NULL;

    assert_int_equal(ps_backend_buf_alloc(be, n * sizeof(float), &b), PS_OK);
    assert_int_equal(ps_backend_upload(be, b, 0, x, n * sizeof(float)), PS_OK);
    return b;
}

static void dev_to(ps_backend *be, const ps_buf *b, float *x, size_t n)
{
    assert_int_equal(ps_backend_download(be, b, 0, x, n * sizeof(float)),
                     PS_OK);
    assert_int_equal(ps_backend_sync(be), PS_OK);
}

/* ---- registry ---- */

static void test_backend_open_cpu_names(void **state)
{
    ps_backend *be = NULL;
    char err[256];

    (void)state;
    assert_int_equal(ps_backend_open("cpu", &be, err, sizeof(err)), PS_OK);
    assert_string_equal(ps_backend_name(be), "cpu");
    ps_backend_free(be);
    be = NULL;
    assert_int_equal(ps_backend_open(NULL, &be, err, sizeof(err)), PS_OK);
    assert_string_equal(ps_backend_name(be), "cpu");
    ps_backend_free(be);
    be = NULL;
    assert_int_equal(ps_backend_open("cpu:2", &be, err, sizeof(err)), PS_OK);
    assert_string_equal(ps_backend_name(be), "cpu:2");
    ps_backend_free(be);
    /* Back to one thread for the other tests. */
    assert_int_equal(ps_backend_open("cpu:1", &be, err, sizeof(err)), PS_OK);
    ps_backend_free(be);
    ps_backend_free(NULL);
}

static void test_backend_open_bad_device_einval(void **state)
{
    static const char *bad[] = {
        "cpu:", "cpu:0", "cpu:x",   "cpu:2x", "cpu:-1", "cpu:9999",
        "gpu",  "cuda:", "cuda:-1", "cuda:a", "CPU"};
    ps_backend *be = (ps_backend *)state; /* must stay untouched */
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(ps_backend_open(bad[i], &be, err, sizeof(err)),
                         PS_EINVAL);
        assert_ptr_equal(be, (ps_backend *)state);
        assert_non_null(strstr(err, bad[i]));
    }
}

static void test_backend_open_cuda_without_cuda_ecuda(void **state)
{
    ps_backend *be = NULL;
    char err[256] = "";
    int rc = ps_backend_open("cuda:0", &be, err, sizeof(err));

    (void)state;
    if (rc == PS_OK) { /* a CUDA build on a machine with a GPU */
        ps_backend_free(be);
        skip();
    }
    assert_int_equal(rc, PS_ECUDA);
    assert_null(be);
    assert_non_null(strstr(err, "CUDA"));
}

/* ---- buffers and copies ---- */

static void test_backend_copy_offsets_roundtrip(void **state)
{
    ps_backend *be = *state;
    ps_buf *b = NULL;
    unsigned char in[100], out[100];

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (unsigned char)i;
    assert_int_equal(ps_backend_buf_alloc(be, 100, &b), PS_OK);
    assert_int_equal(ps_backend_buf_size(b), 100);
    assert_int_equal(ps_backend_upload(be, b, 0, in, 100), PS_OK);
    assert_int_equal(ps_backend_upload(be, b, 10, in + 50, 20), PS_OK);
    memset(out, 0xff, sizeof(out));
    assert_int_equal(ps_backend_download(be, b, 5, out, 30), PS_OK);
    assert_int_equal(ps_backend_sync(be), PS_OK);
    assert_memory_equal(out, in + 5, 5);
    assert_memory_equal(out + 5, in + 50, 20);
    assert_memory_equal(out + 25, in + 30, 5);
    assert_int_equal(out[30], 0xff);
    ps_backend_buf_free(be, b);
}

static void test_backend_copy_out_of_range_erange(void **state)
{
    ps_backend *be = *state;
    ps_buf *b = NULL;
    char tmp[64] = {0};

    assert_int_equal(ps_backend_buf_alloc(be, 0, &b), PS_EINVAL);
    assert_int_equal(ps_backend_buf_alloc(be, PS_BACKEND_MAX_BYTES + 1, &b),
                     PS_EINVAL);
    assert_int_equal(ps_backend_buf_alloc(be, 32, &b), PS_OK);
    assert_int_equal(ps_backend_upload(be, b, 1, tmp, 32), PS_ERANGE);
    assert_int_equal(ps_backend_upload(be, b, 33, tmp, 0), PS_OK);
    assert_int_equal(ps_backend_upload(be, b, SIZE_MAX, tmp, 2), PS_ERANGE);
    assert_int_equal(ps_backend_download(be, b, 16, tmp, 17), PS_ERANGE);
    assert_int_equal(ps_backend_upload(be, b, 0, NULL, 4), PS_EINVAL);
    ps_backend_buf_free(be, b);
    ps_backend_buf_free(be, NULL);
}

static void test_backend_host_alloc_plain_memory(void **state)
{
    ps_backend *be = *state;
    unsigned char *p = ps_backend_host_alloc(be, 64);

    assert_non_null(p);
    memset(p, 0xab, 64);
    assert_null(ps_backend_host_alloc(be, 0));
    assert_null(ps_backend_host_alloc(be, PS_BACKEND_MAX_BYTES + 1));
    ps_backend_host_free(be, p);
    ps_backend_host_free(be, NULL);
}

/* ---- sgemm ---- */

/* C[m,n] = alpha op(A) op(B) + beta C in double. */
static void ref_gemm(int ta, int tb, size_t m, size_t n, size_t k, float alpha,
                     const float *a, size_t lda, const float *b, size_t ldb,
                     float beta, float *c, size_t ldc)
{
    for (size_t i = 0; i < m; i++) {
        for (size_t j = 0; j < n; j++) {
            double s = 0.0;
            for (size_t p = 0; p < k; p++) {
                double av = ta ? a[p * lda + i] : a[i * lda + p];
                double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                s += av * bv;
            }
            c[i * ldc + j] = (float)(alpha * s + (double)beta * c[i * ldc + j]);
        }
    }
}

static void test_backend_sgemm_all_transposes_offsets(void **state)
{
    ps_backend *be = *state;
    const size_t m = 5, n = 7, k = 3, pad = 2;
    const size_t aoff = 3, boff = 11, coff = 4;

    for (int ta = 0; ta <= 1; ta++) {
        for (int tb = 0; tb <= 1; tb++) {
            /* Stored shapes and leading dimensions wider than needed. */
            size_t arows = ta ? k : m, acols = ta ? m : k;
            size_t brows = tb ? n : k, bcols = tb ? k : n;
            size_t lda = acols + pad, ldb = bcols + 1, ldc = n + 3;
            size_t asz = aoff + arows * lda, bsz = boff + brows * ldb;
            size_t csz = coff + m * ldc;
            float *a = malloc(asz * sizeof(float));
            float *b = malloc(bsz * sizeof(float));
            float *c = malloc(csz * sizeof(float));
            float *want = malloc(csz * sizeof(float));

            fill_rand(a, asz);
            fill_rand(b, bsz);
            fill_rand(c, csz);
            memcpy(want, c, csz * sizeof(float));
            ref_gemm(ta, tb, m, n, k, 0.75f, a + aoff, lda, b + boff, ldb,
                     -0.5f, want + coff, ldc);

            ps_buf *da = dev_from(be, a, asz), *db = dev_from(be, b, bsz);
            ps_buf *dc = dev_from(be, c, csz);
            ps_mat ma = {da, aoff, lda}, mb = {db, boff, ldb};
            ps_mat mc = {dc, coff, ldc};
            assert_int_equal(
                ps_backend_sgemm(be, ta, tb, m, n, k, 0.75f, ma, mb, -0.5f, mc),
                PS_OK);
            dev_to(be, dc, c, csz);
            for (size_t i = 0; i < csz; i++)
                assert_near(c[i], want[i], TOL);
            ps_backend_buf_free(be, da);
            ps_backend_buf_free(be, db);
            ps_backend_buf_free(be, dc);
            free(a);
            free(b);
            free(c);
            free(want);
        }
    }
}

static void test_backend_sgemm_beta0_ignores_nan(void **state)
{
    ps_backend *be = *state;
    float a[6], b[6], c[4], want[4] = {0};

    fill_rand(a, 6);
    fill_rand(b, 6);
    for (size_t i = 0; i < 4; i++)
        c[i] = NAN;
    ref_gemm(0, 0, 2, 2, 3, 1.0f, a, 3, b, 2, 0.0f, want, 2);
    ps_buf *da = dev_from(be, a, 6), *db = dev_from(be, b, 6);
    ps_buf *dc = dev_from(be, c, 4);
    ps_mat ma = {da, 0, 3}, mb = {db, 0, 2}, mc = {dc, 0, 2};
    assert_int_equal(
        ps_backend_sgemm(be, 0, 0, 2, 2, 3, 1.0f, ma, mb, 0.0f, mc), PS_OK);
    dev_to(be, dc, c, 4);
    for (size_t i = 0; i < 4; i++)
        assert_near(c[i], want[i], TOL);
    ps_backend_buf_free(be, da);
    ps_backend_buf_free(be, db);
    ps_backend_buf_free(be, dc);
}

static void test_backend_sgemm_bad_operands_rejected(void **state)
{
    ps_backend *be = *state;
    ps_buf *b = NULL;

    assert_int_equal(ps_backend_buf_alloc(be, 16 * sizeof(float), &b), PS_OK);
    ps_mat x = {b, 0, 4}, shifted = {b, 1, 4}, narrow = {b, 0, 3};
    /* 4x4 fits exactly; one float further does not. */
    assert_int_equal(ps_backend_sgemm(be, 0, 0, 4, 4, 4, 1.0f, x, x, 0.0f, x),
                     PS_OK);
    assert_int_equal(
        ps_backend_sgemm(be, 0, 0, 4, 4, 4, 1.0f, shifted, x, 0.0f, x),
        PS_ERANGE);
    assert_int_equal(
        ps_backend_sgemm(be, 0, 0, 4, 4, 4, 1.0f, x, x, 0.0f, narrow),
        PS_EINVAL);
    assert_int_equal(ps_backend_sgemm(be, 0, 0, 5, 4, 4, 1.0f, x, x, 0.0f, x),
                     PS_ERANGE);
    ps_mat null = {NULL, 0, 4};
    assert_int_equal(
        ps_backend_sgemm(be, 0, 0, 4, 4, 4, 1.0f, null, x, 0.0f, x), PS_EINVAL);
    ps_backend_buf_free(be, b);
}

/* ---- element-wise and row-wise ---- */

static void test_backend_add_bias_rows(void **state)
{
    ps_backend *be = *state;
    float y[3 * 5], bias[8], want[3 * 5];

    fill_rand(y, 15);
    fill_rand(bias, 8);
    memcpy(want, y, sizeof(y));
    /* Y is [3, 4] with ld 5 at offset 0; bias at offset 2. */
    for (size_t i = 0; i < 3; i++)
        for (size_t j = 0; j < 4; j++)
            want[i * 5 + j] += bias[2 + j];
    ps_buf *dy = dev_from(be, y, 15), *db = dev_from(be, bias, 8);
    ps_mat my = {dy, 0, 5};
    assert_int_equal(ps_backend_add_bias(be, my, 3, 4, db, 2), PS_OK);
    assert_int_equal(ps_backend_add_bias(be, my, 3, 4, db, 5), PS_ERANGE);
    dev_to(be, dy, y, 15);
    for (size_t i = 0; i < 15; i++)
        assert_near(y[i], want[i], TOL);
    ps_backend_buf_free(be, dy);
    ps_backend_buf_free(be, db);
}

static void test_backend_relu_forward_and_mask(void **state)
{
    ps_backend *be = *state;
    float x[20], y[20], dy[20], dx[20];

    fill_rand(x, 20);
    x[3] = 0.0f; /* the kink counts as inactive */
    fill_rand(dy, 20);
    ps_buf *dxb = dev_from(be, x, 20), *dyb = NULL, *dgrad = NULL;
    assert_int_equal(ps_backend_buf_alloc(be, 20 * sizeof(float), &dyb), PS_OK);
    assert_int_equal(ps_backend_relu_fwd(be, dxb, 0, dyb, 0, 20), PS_OK);
    dev_to(be, dyb, y, 20);
    for (size_t i = 0; i < 20; i++)
        assert_true(y[i] == (x[i] > 0.0f ? x[i] : 0.0f));

    /* Backward in place on dy, masked by the forward output. */
    dgrad = dev_from(be, dy, 20);
    assert_int_equal(ps_backend_relu_bwd(be, dgrad, 0, dyb, 0, dgrad, 0, 20),
                     PS_OK);
    dev_to(be, dgrad, dx, 20);
    for (size_t i = 0; i < 20; i++)
        assert_true(dx[i] == (y[i] > 0.0f ? dy[i] : 0.0f));

    /* In-place forward with an offset. */
    assert_int_equal(ps_backend_relu_fwd(be, dxb, 10, dxb, 10, 10), PS_OK);
    assert_int_equal(ps_backend_relu_fwd(be, dxb, 11, dxb, 11, 10), PS_ERANGE);
    dev_to(be, dxb, y, 20);
    for (size_t i = 0; i < 20; i++)
        assert_true(y[i] == (i < 10 || x[i] > 0.0f ? x[i] : 0.0f));
    ps_backend_buf_free(be, dxb);
    ps_backend_buf_free(be, dyb);
    ps_backend_buf_free(be, dgrad);
}

/* Reference softmax cross-entropy in double: mean loss, correct, grad. */
static void ref_xent(const float *x, const float *lab, size_t n, size_t c,
                     double *loss, size_t *correct, double *grad)
{
    *loss = 0.0;
    *correct = 0;
    for (size_t i = 0; i < n; i++) {
        const float *r = x + i * c;
        size_t y = (size_t)lab[i], am = 0;
        double mx = r[0], s = 0.0;
        for (size_t j = 1; j < c; j++)
            if (r[j] > mx) {
                mx = r[j];
                am = j;
            }
        for (size_t j = 0; j < c; j++)
            s += exp(r[j] - mx);
        *loss += -(r[y] - mx - log(s));
        *correct += am == y;
        for (size_t j = 0; j < c; j++)
            grad[i * c + j] =
                (exp(r[j] - mx) / s - (j == y ? 1.0 : 0.0)) / (double)n;
    }
    *loss /= (double)n;
}

static void check_xent(ps_backend *be, const float *x, const float *lab,
                       size_t n, size_t c, int in_place)
{
    double want_loss, *want_grad = malloc(n * c * sizeof(double));
    size_t want_correct;
    float *g = malloc(n * c * sizeof(float)), out[4];
    ps_buf *dx = dev_from(be, x, n * c), *dl = dev_from(be, lab, n);
    ps_buf *dg = NULL, *dout = NULL;

    ref_xent(x, lab, n, c, &want_loss, &want_correct, want_grad);
    assert_int_equal(ps_backend_buf_alloc(be, 4 * sizeof(float), &dout), PS_OK);
    if (in_place)
        dg = dx;
    else
        assert_int_equal(ps_backend_buf_alloc(be, n * c * sizeof(float), &dg),
                         PS_OK);
    assert_int_equal(
        ps_backend_softmax_xent(be, dx, 0, dl, 0, n, c, dg, 0, dout, 2), PS_OK);
    dev_to(be, dout, out, 4);
    dev_to(be, dg, g, n * c);
    assert_true(isfinite(out[2]));
    assert_near(out[2], want_loss, 1e-5);
    assert_int_equal((size_t)out[3], want_correct);
    for (size_t i = 0; i < n * c; i++)
        assert_true(fabs(g[i] - want_grad[i]) < 1e-6);

    /* Without a gradient: same stats (the logits are intact unless the
     * gradient overwrote them). */
    if (!in_place) {
        assert_int_equal(
            ps_backend_softmax_xent(be, dx, 0, dl, 0, n, c, NULL, 0, dout, 0),
            PS_OK);
        dev_to(be, dout, out, 2);
        assert_near(out[0], want_loss, 1e-5);
        assert_int_equal((size_t)out[1], want_correct);
    }
    if (!in_place)
        ps_backend_buf_free(be, dg);
    ps_backend_buf_free(be, dx);
    ps_backend_buf_free(be, dl);
    ps_backend_buf_free(be, dout);
    free(g);
    free(want_grad);
}

static void test_backend_softmax_xent_matches_reference(void **state)
{
    const size_t n = 6, c = 5;
    float x[6 * 5], lab[6];

    fill_rand(x, n * c);
    for (size_t i = 0; i < n; i++)
        lab[i] = (float)(i % c);
    check_xent(*state, x, lab, n, c, 0);
    check_xent(*state, x, lab, n, c, 1);
}

static void test_backend_softmax_xent_large_logits_stable(void **state)
{
    const size_t n = 4, c = 3;
    /* exp() of any of these overflows float without the max shift. */
    float x[12] = {1000.0f, 990.0f, -1000.0f, -5000.0f, -5001.0f, -4999.0f,
                   3e4f,    3e4f,   -3e4f,    88.0f,    200.0f,   89.0f};
    float lab[4] = {0, 2, 1, 1};

    check_xent(*state, x, lab, n, c, 0);
}

static void test_backend_softmax_xent_bad_label_einval(void **state)
{
    ps_backend *be = *state;
    float x[6] = {0}, lab[2] = {0.0f, 3.0f}, out[2];
    ps_buf *dx = dev_from(be, x, 6), *dl = dev_from(be, lab, 2);
    ps_buf *dout = dev_from(be, out, 2);

    assert_int_equal(
        ps_backend_softmax_xent(be, dx, 0, dl, 0, 2, 3, NULL, 0, dout, 0),
        PS_EINVAL);
    assert_int_equal(
        ps_backend_softmax_xent(be, dx, 0, dl, 0, 2, 3, NULL, 0, dout, 1),
        PS_ERANGE);
    ps_backend_buf_free(be, dx);
    ps_backend_buf_free(be, dl);
    ps_backend_buf_free(be, dout);
}

static void test_backend_softmax_rows_sum_to_one(void **state)
{
    ps_backend *be = *state;
    float x[4 * 6], y[4 * 6];

    fill_rand(x, 24);
    x[0] = 500.0f;
    ps_buf *dx = dev_from(be, x, 24);
    assert_int_equal(ps_backend_softmax(be, dx, 0, dx, 0, 4, 6), PS_OK);
    dev_to(be, dx, y, 24);
    for (size_t i = 0; i < 4; i++) {
        double s = 0.0, mx = x[i * 6];
        for (size_t j = 1; j < 6; j++)
            mx = fmax(mx, x[i * 6 + j]);
        for (size_t j = 0; j < 6; j++)
            s += exp(x[i * 6 + j] - mx);
        double t = 0.0;
        for (size_t j = 0; j < 6; j++) {
            assert_true(fabs(y[i * 6 + j] - exp(x[i * 6 + j] - mx) / s) < 1e-6);
            t += y[i * 6 + j];
        }
        assert_near(t, 1.0, 1e-6);
    }
    ps_backend_buf_free(be, dx);
}

static void test_backend_col_sum_alpha(void **state)
{
    ps_backend *be = *state;
    float x[5 * 4], y[6], want[6];

    fill_rand(x, 20);
    fill_rand(y, 6);
    for (int pass = 0; pass < 2; pass++) {
        float alpha = pass == 0 ? 0.0f : 0.5f;
        memcpy(want, y, sizeof(y));
        /* X [5, 3] with ld 4 at offset 1, into y[2..4]. */
        for (size_t j = 0; j < 3; j++) {
            double s = alpha * (double)y[2 + j];
            for (size_t i = 0; i < 5; i++)
                s += x[1 + i * 4 + j];
            want[2 + j] = (float)s;
        }
        ps_buf *dx = dev_from(be, x, 20), *dy = dev_from(be, y, 6);
        ps_mat mx = {dx, 1, 4};
        assert_int_equal(ps_backend_col_sum(be, mx, 5, 3, alpha, dy, 2), PS_OK);
        assert_int_equal(ps_backend_col_sum(be, mx, 5, 3, alpha, dy, 4),
                         PS_ERANGE);
        dev_to(be, dy, y, 6);
        for (size_t i = 0; i < 6; i++)
            assert_near(y[i], want[i], TOL);
        ps_backend_buf_free(be, dx);
        ps_backend_buf_free(be, dy);
    }
}

static void test_backend_scale_axpy_fill(void **state)
{
    ps_backend *be = *state;
    float x[10], y[10], want[10], got[10];

    fill_rand(x, 10);
    fill_rand(y, 10);
    ps_buf *dx = dev_from(be, x, 10), *dy = dev_from(be, y, 10);
    /* y[3..7] += -2 x[1..5]; x[0..4] *= 3; x[8..9] = 7 */
    assert_int_equal(ps_backend_axpy(be, 5, -2.0f, dx, 1, dy, 3), PS_OK);
    assert_int_equal(ps_backend_scale(be, dx, 0, 5, 3.0f), PS_OK);
    assert_int_equal(ps_backend_fill(be, dx, 8, 2, 7.0f), PS_OK);
    assert_int_equal(ps_backend_fill(be, dx, 9, 2, 7.0f), PS_ERANGE);
    assert_int_equal(ps_backend_axpy(be, 5, 1.0f, dx, 6, dy, 0), PS_ERANGE);
    memcpy(want, y, sizeof(y));
    for (size_t i = 0; i < 5; i++)
        want[3 + i] = y[3 + i] + -2.0f * x[1 + i];
    dev_to(be, dy, got, 10);
    for (size_t i = 0; i < 10; i++)
        assert_near(got[i], want[i], TOL);
    memcpy(want, x, sizeof(x));
    for (size_t i = 0; i < 5; i++)
        want[i] = 3.0f * x[i];
    want[8] = want[9] = 7.0f;
    dev_to(be, dx, got, 10);
    for (size_t i = 0; i < 10; i++)
        assert_near(got[i], want[i], TOL);
    ps_backend_buf_free(be, dx);
    ps_backend_buf_free(be, dy);
}

/* ---- sparse rows ---- */

static void test_backend_gather_scatter_repeated_indices(void **state)
{
    ps_backend *be = *state;
    enum { ROWS = 6, DIM = 3, NIDX = 4 };
    float w[ROWS * DIM], g[NIDX * DIM], got[ROWS * DIM], want[ROWS * DIM];
    uint32_t idx[NIDX + 1] = {99, 4, 1, 4, 0}; /* used from offset 1 */
    ps_buf *dw = NULL, *di = NULL, *dout = NULL, *dg = NULL;

    fill_rand(w, ROWS * DIM);
    fill_rand(g, NIDX * DIM);
    dw = dev_from(be, w, ROWS * DIM);
    dg = dev_from(be, g, NIDX * DIM);
    assert_int_equal(ps_backend_buf_alloc(be, sizeof(idx), &di), PS_OK);
    assert_int_equal(ps_backend_upload(be, di, 0, idx, sizeof(idx)), PS_OK);
    assert_int_equal(
        ps_backend_buf_alloc(be, NIDX * DIM * sizeof(float), &dout), PS_OK);

    assert_int_equal(
        ps_backend_gather(be, dw, 0, ROWS, DIM, di, 1, NIDX, dout, 0), PS_OK);
    dev_to(be, dout, got, NIDX * DIM);
    for (size_t i = 0; i < NIDX; i++)
        assert_memory_equal(got + i * DIM, w + idx[1 + i] * DIM,
                            DIM * sizeof(float));

    assert_int_equal(
        ps_backend_scatter_add(be, dg, 0, di, 1, NIDX, DIM, dw, 0, ROWS),
        PS_OK);
    memcpy(want, w, sizeof(w));
    for (size_t i = 0; i < NIDX; i++)
        for (size_t d = 0; d < DIM; d++)
            want[idx[1 + i] * DIM + d] += g[i * DIM + d];
    dev_to(be, dw, got, ROWS * DIM);
    for (size_t i = 0; i < ROWS * DIM; i++)
        assert_near(got[i], want[i], TOL);

    /* Index 99 >= ROWS: refused, nothing written. */
    assert_int_equal(
        ps_backend_gather(be, dw, 0, ROWS, DIM, di, 0, NIDX, dout, 0),
        PS_ERANGE);
    assert_int_equal(
        ps_backend_scatter_add(be, dg, 0, di, 0, NIDX, DIM, dw, 0, ROWS),
        PS_ERANGE);
    dev_to(be, dw, w, ROWS * DIM);
    assert_memory_equal(w, got, sizeof(w));
    /* Operand ranges. */
    assert_int_equal(
        ps_backend_gather(be, dw, 1, ROWS, DIM, di, 1, NIDX, dout, 0),
        PS_ERANGE);
    assert_int_equal(
        ps_backend_gather(be, dw, 0, ROWS, DIM, di, 2, NIDX, dout, 0),
        PS_ERANGE);
    ps_backend_buf_free(be, dw);
    ps_backend_buf_free(be, dg);
    ps_backend_buf_free(be, di);
    ps_backend_buf_free(be, dout);
}

/* ---- CSR products and the logistic loss ---- */

/* A 4x5 CSR matrix with an empty row and a column repeated within a row. */
enum { CR = 4, CC = 5, CNNZ = 7 };
static const uint32_t csr_rowptr[CR + 1] = {0, 3, 3, 5, 7};
static const uint32_t csr_col[CNNZ] = {0, 4, 0, 2, 3, 1, 4};

typedef struct csr_dev {
    ps_buf *rowptr, *col, *val;
    ps_csr x;
} csr_dev;

static void csr_upload(ps_backend *be, csr_dev *d, const float *val)
{
    assert_int_equal(ps_backend_buf_alloc(be, sizeof(csr_rowptr), &d->rowptr),
                     PS_OK);
    assert_int_equal(ps_backend_buf_alloc(be, sizeof(csr_col), &d->col), PS_OK);
    assert_int_equal(
        ps_backend_upload(be, d->rowptr, 0, csr_rowptr, sizeof(csr_rowptr)),
        PS_OK);
    assert_int_equal(ps_backend_upload(be, d->col, 0, csr_col, sizeof(csr_col)),
                     PS_OK);
    d->val = dev_from(be, val, CNNZ);
    d->x = (ps_csr){d->rowptr, 0, d->col, 0, d->val, 0, CR, CC, CNNZ};
}

static void csr_free(ps_backend *be, csr_dev *d)
{
    ps_backend_buf_free(be, d->rowptr);
    ps_backend_buf_free(be, d->col);
    ps_backend_buf_free(be, d->val);
}

/* The dense form of the CSR matrix, repeats summed. */
static void csr_dense(const float *val, double *xd)
{
    memset(xd, 0, CR * CC * sizeof(double));
    for (size_t i = 0; i < CR; i++)
        for (uint32_t p = csr_rowptr[i]; p < csr_rowptr[i + 1]; p++)
            xd[i * CC + csr_col[p]] += val[p];
}

static void test_backend_csr_mm_and_transpose_match_dense(void **state)
{
    ps_backend *be = *state;
    enum { K = 3 };
    float val[CNNZ], w[CC * K], dy[CR * K], g0[CC * K], got[CC * K];
    double xd[CR * CC];
    csr_dev d;
    ps_buf *dw, *dyb, *dyo = NULL, *dg;

    fill_rand(val, CNNZ);
    fill_rand(w, CC * K);
    fill_rand(dy, CR * K);
    fill_rand(g0, CC * K);
    csr_dense(val, xd);
    csr_upload(be, &d, val);
    dw = dev_from(be, w, CC * K);
    dyb = dev_from(be, dy, CR * K);
    dg = dev_from(be, g0, CC * K);
    assert_int_equal(ps_backend_buf_alloc(be, CR * K * sizeof(float), &dyo),
                     PS_OK);

    for (size_t k = 1; k <= K; k += K - 1) { /* the k = 1 fast path too */
        ps_mat wm = {dw, 0, K}, ym = {dyo, 0, k};
        assert_int_equal(ps_backend_csr_mm(be, d.x, k, wm, ym), PS_OK);
        dev_to(be, dyo, got, CR * k);
        for (size_t i = 0; i < CR; i++)
            for (size_t j = 0; j < k; j++) {
                double want = 0.0;
                for (size_t c = 0; c < CC; c++)
                    want += xd[i * CC + c] * w[c * K + j];
                assert_true(fabs(got[i * k + j] - want) <= TOL);
            }
    }

    ps_mat dym = {dyb, 0, K}, gm = {dg, 0, K};
    assert_int_equal(ps_backend_csr_mm_t(be, d.x, K, dym, gm), PS_OK);
    dev_to(be, dg, got, CC * K);
    for (size_t c = 0; c < CC; c++)
        for (size_t j = 0; j < K; j++) {
            double want = g0[c * K + j];
            for (size_t i = 0; i < CR; i++)
                want += xd[i * CC + c] * dy[i * K + j];
            assert_true(fabs(got[c * K + j] - want) <= TOL);
        }
    ps_backend_buf_free(be, dw);
    ps_backend_buf_free(be, dyb);
    ps_backend_buf_free(be, dyo);
    ps_backend_buf_free(be, dg);
    csr_free(be, &d);
}

static void test_backend_csr_mm_bad_structure_rejected(void **state)
{
    ps_backend *be = *state;
    float val[CNNZ], w[CC], y[CR] = {7, 7, 7, 7}, got[CC];
    csr_dev d;
    ps_buf *dw, *dy;
    uint32_t bad = CC;

    fill_rand(val, CNNZ);
    fill_rand(w, CC);
    csr_upload(be, &d, val);
    dw = dev_from(be, w, CC);
    dy = dev_from(be, y, CR);
    ps_mat wm = {dw, 0, 1}, ym = {dy, 0, 1};
    ps_csr x = d.x;

    /* Ranges and shapes, checked by the wrapper. */
    x.nnz = CNNZ + 1;
    assert_int_equal(ps_backend_csr_mm(be, x, 1, wm, ym), PS_ERANGE);
    x = d.x;
    x.rows = CR + 1;
    assert_int_equal(ps_backend_csr_mm(be, x, 1, wm, ym), PS_ERANGE);
    x = d.x;
    x.cols = CC + 1; /* W has CC rows */
    assert_int_equal(ps_backend_csr_mm(be, x, 1, wm, ym), PS_ERANGE);
    assert_int_equal(ps_backend_csr_mm_t(be, x, 1, ym, wm), PS_ERANGE);
    assert_int_equal(ps_backend_csr_mm(be, d.x, 0, wm, ym), PS_EINVAL);
    x = d.x;
    x.val = NULL;
    assert_int_equal(ps_backend_csr_mm(be, x, 1, wm, ym), PS_EINVAL);
    /* Contents, checked by the CPU backend: nothing written. */
    x = d.x;
    x.nnz = CNNZ - 1; /* rowptr[rows] != nnz */
    assert_int_equal(ps_backend_csr_mm(be, x, 1, wm, ym), PS_ERANGE);
    assert_int_equal(
        ps_backend_upload(be, d.col, 2 * sizeof(uint32_t), &bad, sizeof(bad)),
        PS_OK);
    assert_int_equal(ps_backend_csr_mm(be, d.x, 1, wm, ym), PS_ERANGE);
    assert_int_equal(ps_backend_csr_mm_t(be, d.x, 1, ym, wm), PS_ERANGE);
    dev_to(be, dy, got, CR);
    assert_memory_equal(got, y, sizeof(y));
    dev_to(be, dw, got, CC);
    assert_memory_equal(got, w, sizeof(w));
    ps_backend_buf_free(be, dw);
    ps_backend_buf_free(be, dy);
    csr_free(be, &d);
}

/* Mean log-loss in double, the reference. */
static double ref_logloss(const float *z, const float *y, size_t n)
{
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        double p = 1.0 / (1.0 + exp(-(double)z[i]));
        sum -= y[i] == 1.0f ? log(p) : log1p(-p);
    }
    return sum / (double)n;
}

static void test_backend_sigmoid_xent_matches_reference_and_fd(void **state)
{
    ps_backend *be = *state;
    enum { N = 9 };
    float z[N], y[N], g[N], out[2], zp[N];
    ps_buf *dz, *dy, *dg = NULL, *dout = NULL;
    size_t want_correct = 0;

    for (size_t i = 0; i < N; i++) {
        z[i] = 3.0f * frand();
        y[i] = (float)(i % 2);
        want_correct += (z[i] >= 0) == (y[i] == 1.0f);
    }
    dz = dev_from(be, z, N);
    dy = dev_from(be, y, N);
    assert_int_equal(ps_backend_buf_alloc(be, N * sizeof(float), &dg), PS_OK);
    assert_int_equal(ps_backend_buf_alloc(be, 2 * sizeof(float), &dout), PS_OK);
    assert_int_equal(
        ps_backend_sigmoid_xent(be, dz, 0, dy, 0, N, dg, 0, dout, 0), PS_OK);
    dev_to(be, dout, out, 2);
    dev_to(be, dg, g, N);
    assert_near(out[0], ref_logloss(z, y, N), 1e-5);
    assert_int_equal((size_t)out[1], want_correct);
    /* The gradient against central differences of the reference loss. */
    for (size_t i = 0; i < N; i++) {
        const double eps = 1e-3;
        memcpy(zp, z, sizeof(z));
        zp[i] = (float)(z[i] + eps);
        double lp = ref_logloss(zp, y, N);
        zp[i] = (float)(z[i] - eps);
        double lm = ref_logloss(zp, y, N);
        double num = (lp - lm) / ((double)(float)(z[i] + eps) -
                                  (double)(float)(z[i] - eps));
        assert_true(fabs(num - g[i]) <= 1e-5);
    }
    /* grad may alias the logits. */
    assert_int_equal(
        ps_backend_sigmoid_xent(be, dz, 0, dy, 0, N, dz, 0, dout, 0), PS_OK);
    dev_to(be, dz, zp, N);
    assert_memory_equal(zp, g, sizeof(g));
    ps_backend_buf_free(be, dz);
    ps_backend_buf_free(be, dy);
    ps_backend_buf_free(be, dg);
    ps_backend_buf_free(be, dout);
}

static void test_backend_sigmoid_xent_large_logits_stable(void **state)
{
    ps_backend *be = *state;
    float z[4] = {100.0f, -100.0f, 100.0f, -100.0f}, y[4] = {1, 0, 0, 1};
    float g[4], out[2], p[4];
    ps_buf *dz = dev_from(be, z, 4), *dy = dev_from(be, y, 4), *dout = NULL;
    ps_buf *dg = NULL;

    assert_int_equal(ps_backend_buf_alloc(be, 4 * sizeof(float), &dg), PS_OK);
    assert_int_equal(ps_backend_buf_alloc(be, 2 * sizeof(float), &dout), PS_OK);
    assert_int_equal(
        ps_backend_sigmoid_xent(be, dz, 0, dy, 0, 4, dg, 0, dout, 0), PS_OK);
    dev_to(be, dout, out, 2);
    dev_to(be, dg, g, 4);
    assert_near(out[0], 50.0, 1e-6); /* two right (~0), two off by 100 */
    assert_int_equal(out[1], 2);
    assert_true(fabsf(g[0]) < 1e-6f && fabsf(g[1]) < 1e-6f);
    assert_near(g[2], 0.25, 1e-6);
    assert_near(g[3], -0.25, 1e-6);
    assert_int_equal(ps_backend_sigmoid(be, dz, 0, dg, 0, 4), PS_OK);
    dev_to(be, dg, p, 4);
    assert_true(p[0] == 1.0f && p[1] >= 0.0f && p[1] < 1e-40f);
    for (size_t i = 0; i < 4; i++)
        assert_false(isnan(g[i]) || isnan(p[i]));
    ps_backend_buf_free(be, dz);
    ps_backend_buf_free(be, dy);
    ps_backend_buf_free(be, dg);
    ps_backend_buf_free(be, dout);
}

static void test_backend_sigmoid_xent_bad_label_einval(void **state)
{
    ps_backend *be = *state;
    float z[3] = {0.5f, -0.5f, 1.0f}, y[3] = {1, 2, 0}, out[2] = {9, 9};
    ps_buf *dz = dev_from(be, z, 3), *dy = dev_from(be, y, 3);
    ps_buf *dout = dev_from(be, out, 2);

    assert_int_equal(
        ps_backend_sigmoid_xent(be, dz, 0, dy, 0, 3, NULL, 0, dout, 0),
        PS_EINVAL);
    dev_to(be, dout, out, 2);
    assert_true(out[0] == 9.0f && out[1] == 9.0f);
    assert_int_equal(
        ps_backend_sigmoid_xent(be, dz, 0, dy, 0, 0, NULL, 0, dout, 0),
        PS_EINVAL);
    assert_int_equal(
        ps_backend_sigmoid_xent(be, dz, 1, dy, 0, 3, NULL, 0, dout, 0),
        PS_ERANGE);
    assert_int_equal(
        ps_backend_sigmoid_xent(be, dz, 0, dy, 0, 3, NULL, 0, dout, 1),
        PS_ERANGE);
    ps_backend_buf_free(be, dz);
    ps_backend_buf_free(be, dy);
    ps_backend_buf_free(be, dout);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backend_open_cpu_names),
        cmocka_unit_test(test_backend_open_bad_device_einval),
        cmocka_unit_test(test_backend_open_cuda_without_cuda_ecuda),
        cmocka_unit_test_setup_teardown(test_backend_copy_offsets_roundtrip,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_copy_out_of_range_erange,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_host_alloc_plain_memory,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_backend_sgemm_all_transposes_offsets, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_sgemm_beta0_ignores_nan,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_backend_sgemm_bad_operands_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_add_bias_rows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_backend_relu_forward_and_mask,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_backend_softmax_xent_matches_reference, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_backend_softmax_xent_large_logits_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_backend_softmax_xent_bad_label_einval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_softmax_rows_sum_to_one,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_backend_col_sum_alpha, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_backend_scale_axpy_fill, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_backend_gather_scatter_repeated_indices, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_backend_csr_mm_and_transpose_match_dense, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_backend_csr_mm_bad_structure_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_backend_sigmoid_xent_matches_reference_and_fd, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_backend_sigmoid_xent_large_logits_stable, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_backend_sigmoid_xent_bad_label_einval, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
