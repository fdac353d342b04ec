/* GPU tests of gpu/ (ctest label gpu): every operation of the CUDA backend
 * against the CPU backend on the same random inputs, each with its stated
 * tolerance; errors a kernel finds (index, label, CSR structure) reported
 * by sync; the copy stream's ordering; the MLP (one-call and pipelined
 * steps) and sparse logistic regression forward/backward on both
 * backends; short training runs on the GPU reaching the CPU's accuracy;
 * and device groups (worker/replicas.h): one GPU through NCCL with a
 * single rank, and every visible GPU when there are two or more, against
 * one model on the CPU.
 *
 * Without a usable device (no driver, none visible) it prints what is
 * missing and exits 77, which ctest counts as skipped.
 * SPARKPS_TEST_GPU_DEVICE names the device under test (default cuda:0);
 * "cpu" runs the whole file CPU against CPU, which checks the test itself
 * on a machine without a GPU; "cpu-deferred" runs it against the CPU
 * backend queued like a stream, which also checks that the tests keep the
 * copy rules (backend.h) a GPU needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "gpu/backend_cuda.h"
#include "unit/ps_test.h"
#include "unit/replicas_check.h"
#include "worker/backend.h"
#include "worker/data.h"
#include "worker/model.h"
#include "worker/sparse_lr.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SKIP_EXIT 77

/* CUDA maps device memory where ASan keeps its shadow gap; without this
 * an ASan build cannot initialise a GPU (the hook is unused otherwise). */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "protect_shadow_gap=0";
}

static const char *gpu_device = "cuda:0";

enum { CPU = 0, DEV = 1 };

typedef struct fixture {
    ps_backend *be[2]; /* the reference (CPU) and the device under test */
} fixture;

static uint64_t rng_state;

/* Uniform floats in [-1, 1). */
static float frand(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static uint32_t urand(uint32_t below)
{
    return (uint32_t)((frand() + 1.0f) * 0.5f * (float)below) % below;
}

static void fill_rand(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = scale * frand();
}

static float *alloc_f(size_t n)
{
    float *p = malloc((n > 0 ? n : 1) * sizeof(float));

    assert_non_null(p);
    return p;
}

/* True when the device under test is a GPU (it reports kernel errors at
 * sync instead of at the call). */
static int is_gpu(const fixture *f)
{
    return strncmp(ps_backend_name(f->be[DEV]), "cuda", 4) == 0;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char err[256] = "";

    rng_state = 0x9e3779b97f4a7c15ULL;
    if (f == NULL || ps_backend_open("cpu", &f->be[CPU], err, sizeof(err)) ||
        ps_backend_open(gpu_device, &f->be[DEV], err, sizeof(err))) {
        print_error("setup: %s\n", err);
        if (f != NULL)
            ps_backend_free(f->be[CPU]);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;

    ps_backend_free(f->be[DEV]);
    ps_backend_free(f->be[CPU]);
    free(f);
    return 0;
}

static ps_buf *dev_from(ps_backend *be, const void *x, size_t bytes)
{
    ps_buf *b = NULL;

    assert_int_equal(ps_backend_buf_alloc(be, bytes, &b), PS_OK);
    assert_int_equal(ps_backend_upload(be, b, 0, x, bytes), PS_OK);
    return b;
}

static ps_buf *dev_alloc(ps_backend *be, size_t bytes)
{
    ps_buf *b = NULL;

    assert_int_equal(ps_backend_buf_alloc(be, bytes, &b), PS_OK);
    return b;
}

static void dev_to(ps_backend *be, const ps_buf *b, void *x, size_t bytes)
{
    assert_int_equal(ps_backend_download(be, b, 0, x, bytes), PS_OK);
    assert_int_equal(ps_backend_sync(be), PS_OK);
}

/* Fails unless |got - want| <= atol + rtol * |want| everywhere (NaN fails);
 * names the first element that is off. */
static void check_close(const char *what, const float *got, const float *want,
                        size_t n, double rtol, double atol)
{
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        if (!(fabs(g - w) <= atol + rtol * fabs(w))) {
            print_error("%s[%zu]: device %.9g, cpu %.9g (rtol %g, atol %g)\n",
                        what, i, g, w, rtol, atol);
            fail();
        }
    }
}

/* ---- device, buffers, copies ---- */

static void test_cuda_open_name_and_bad_device(void **state)
{
    fixture *f = *state;
    ps_backend *be = NULL;
    char err[256] = "", dev[32];
    int count = 0;

    if (!is_gpu(f))
        skip();
    /* "cuda" alone names cuda:0. */
    assert_string_equal(ps_backend_name(f->be[DEV]),
                        strcmp(gpu_device, "cuda") == 0 ? "cuda:0"
                                                        : gpu_device);
    assert_int_equal(ps_cuda_device_count(&count, err, sizeof(err)), PS_OK);
    snprintf(dev, sizeof(dev), "cuda:%d", count);
    assert_int_equal(ps_backend_open(dev, &be, err, sizeof(err)), PS_ECUDA);
    assert_null(be);
    assert_non_null(strstr(err, "only"));
}

/* Copies with offsets, from ordinary and from pinned host memory. */
static void test_cuda_copy_offsets_roundtrip(void **state)
{
    fixture *f = *state;
    ps_backend *be = f->be[DEV];
    enum { SZ = 1000 };
    unsigned char plain_in[SZ], plain_out[SZ];
    unsigned char *pin_in = ps_backend_host_alloc(be, SZ);
    unsigned char *pin_out = ps_backend_host_alloc(be, SZ);
    unsigned char *ins[2] = {plain_in, pin_in}, *outs[2] = {plain_out, pin_out};

    assert_non_null(pin_in);
    assert_non_null(pin_out);
    assert_null(ps_backend_host_alloc(be, 0));
    for (int k = 0; k < 2; k++) {
        unsigned char *in = ins[k], *out = outs[k];
        ps_buf *b = dev_alloc(be, SZ);

        for (size_t i = 0; i < SZ; i++)
            in[i] = (unsigned char)(i * 7 + (size_t)k);
        assert_int_equal(ps_backend_upload(be, b, 0, in, SZ), PS_OK);
        assert_int_equal(ps_backend_upload(be, b, 10, in + 500, 20), PS_OK);
        memset(out, 0xff, SZ);
        assert_int_equal(ps_backend_download(be, b, 5, out, 30), PS_OK);
        assert_int_equal(ps_backend_sync(be), PS_OK);
        assert_memory_equal(out, in + 5, 5);
        assert_memory_equal(out + 5, in + 500, 20);
        assert_memory_equal(out + 25, in + 30, 5);
        assert_int_equal(out[30], 0xff);
        ps_backend_buf_free(be, b);
    }
    ps_backend_host_free(be, pin_in);
    ps_backend_host_free(be, pin_out);
    ps_backend_host_free(be, NULL);
}

/* The copy streams on 4 MiB buffers (long enough for the copies to really
 * run beside the kernels): an upload_ahead seen after its fence, a
 * download_ahead bringing the value at its point of issue while a later
 * kernel runs, and the trainer's order (a gradient's download_ahead, then
 * the next batch's upload_ahead and its fence) with both directions in
 * flight. Exact: doubling, halving, tripling and adding small integers. */
static void test_cuda_copy_stream_orders_copies(void **state)
{
    fixture *f = *state;
    ps_backend *be = f->be[DEV];
    enum { N = 1 << 20 };
    float *va = ps_backend_host_alloc(be, N * sizeof(float));
    float *vb = ps_backend_host_alloc(be, N * sizeof(float));
    float *ha = ps_backend_host_alloc(be, N * sizeof(float));
    float *hb = ps_backend_host_alloc(be, N * sizeof(float));
    float *vc = ps_backend_host_alloc(be, N * sizeof(float));
    float *hc = ps_backend_host_alloc(be, N * sizeof(float));
    ps_buf *a = dev_alloc(be, N * sizeof(float));
    ps_buf *b = dev_alloc(be, N * sizeof(float));
    ps_buf *c = dev_alloc(be, N * sizeof(float));

    assert_true(va && vb && ha && hb && vc && hc);
    for (size_t i = 0; i < N; i++) {
        va[i] = (float)(i % 1000);
        vb[i] = (float)(i % 777);
        vc[i] = (float)(i % 555);
    }
    assert_int_equal(ps_backend_upload(be, a, 0, va, N * sizeof(float)), PS_OK);
    assert_int_equal(ps_backend_upload_ahead(be, b, 0, vb, N * sizeof(float)),
                     PS_OK);
    assert_int_equal(ps_backend_scale(be, a, 0, N, 2.0f), PS_OK);
    assert_int_equal(ps_backend_copy_fence(be), PS_OK);
    assert_int_equal(ps_backend_axpy(be, N, 1.0f, a, 0, b, 0), PS_OK);
    assert_int_equal(ps_backend_download_ahead(be, b, 0, hb, N * sizeof(float)),
                     PS_OK);
    assert_int_equal(ps_backend_upload_ahead(be, c, 0, vc, N * sizeof(float)),
                     PS_OK);
    assert_int_equal(ps_backend_scale(be, a, 0, N, 0.5f), PS_OK);
    assert_int_equal(ps_backend_copy_fence(be), PS_OK);
    assert_int_equal(ps_backend_scale(be, c, 0, N, 3.0f), PS_OK);
    assert_int_equal(ps_backend_download(be, a, 0, ha, N * sizeof(float)),
                     PS_OK);
    assert_int_equal(ps_backend_download(be, c, 0, hc, N * sizeof(float)),
                     PS_OK);
    assert_int_equal(ps_backend_sync(be), PS_OK);
    for (size_t i = 0; i < N; i++) {
        if (hb[i] != 2.0f * va[i] + vb[i] || ha[i] != va[i] ||
            hc[i] != 3.0f * vc[i]) {
            print_error("element %zu: b %g (want %g), a %g (want %g), "
                        "c %g (want %g)\n",
                        i, (double)hb[i], (double)(2.0f * va[i] + vb[i]),
                        (double)ha[i], (double)va[i], (double)hc[i],
                        (double)(3.0f * vc[i]));
            fail();
        }
    }
    ps_backend_buf_free(be, a);
    ps_backend_buf_free(be, b);
    ps_backend_buf_free(be, c);
    ps_backend_host_free(be, va);
    ps_backend_host_free(be, vb);
    ps_backend_host_free(be, ha);
    ps_backend_host_free(be, hb);
    ps_backend_host_free(be, vc);
    ps_backend_host_free(be, hc);
}

/* ---- sgemm: all transposes, offsets, leading dimensions wider than the
 * matrices; the padding must stay untouched. Tolerance: |d| <= 1e-4 +
 * 1e-5 |c| (k = 53 float products of magnitude <= 1, summed in a different
 * order). ---- */

static void gemm_on(ps_backend *be, int ta, int tb, size_t m, size_t n,
                    size_t k, float alpha, const float *a, size_t asz,
                    ps_mat ma, const float *b, size_t bsz, ps_mat mb,
                    float beta, float *c, size_t csz, ps_mat mc)
{
    ma.buf = dev_from(be, a, asz * sizeof(float));
    mb.buf = dev_from(be, b, bsz * sizeof(float));
    mc.buf = dev_from(be, c, csz * sizeof(float));
    assert_int_equal(
        ps_backend_sgemm(be, ta, tb, m, n, k, alpha, ma, mb, beta, mc), PS_OK);
    dev_to(be, mc.buf, c, csz * sizeof(float));
    ps_backend_buf_free(be, ma.buf);
    ps_backend_buf_free(be, mb.buf);
    ps_backend_buf_free(be, mc.buf);
}

static void test_cuda_sgemm_all_transposes_match_cpu(void **state)
{
    fixture *f = *state;
    const size_t m = 37, n = 29, k = 53;

    for (int ta = 0; ta <= 1; ta++) {
        for (int tb = 0; tb <= 1; tb++) {
            for (int beta0 = 0; beta0 <= 1; beta0++) {
                size_t arows = ta ? k : m, acols = ta ? m : k;
                size_t brows = tb ? n : k, bcols = tb ? k : n;
                ps_mat ma = {NULL, 3, acols + 2}, mb = {NULL, 11, bcols + 5};
                ps_mat mc = {NULL, 4, n + 3};
                size_t asz = ma.off + arows * ma.ld;
                size_t bsz = mb.off + brows * mb.ld, csz = mc.off + m * mc.ld;
                float *a = alloc_f(asz), *b = alloc_f(bsz);
                float *c[2] = {alloc_f(csz), alloc_f(csz)};
                float beta = beta0 ? 0.0f : -0.5f;

                fill_rand(a, asz, 1.0f);
                fill_rand(b, bsz, 1.0f);
                fill_rand(c[CPU], csz, 1.0f);
                if (beta0) /* beta 0 overwrites, NaN included */
                    for (size_t i = 0; i < m; i++)
                        c[CPU][mc.off + i * mc.ld] = NAN;
                memcpy(c[DEV], c[CPU], csz * sizeof(float));
                for (int d = 0; d < 2; d++)
                    gemm_on(f->be[d], ta, tb, m, n, k, 0.75f, a, asz, ma, b,
                            bsz, mb, beta, c[d], csz, mc);
                print_message("sgemm ta=%d tb=%d beta=%g\n", ta, tb, beta);
                check_close("sgemm C", c[DEV], c[CPU], csz, 1e-5, 1e-4);
                free(a);
                free(b);
                free(c[0]);
                free(c[1]);
            }
        }
    }
}

/* ---- element-wise and row-wise ---- */

/* add_bias: one float add per element, so exact. */
static void test_cuda_add_bias_exact(void **state)
{
    fixture *f = *state;
    enum { ROWS = 33, COLS = 70, LD = 75, OFF = 3, BOFF = 2 };
    const size_t ysz = OFF + ROWS * LD;
    float y0[OFF + ROWS * LD], bias[BOFF + COLS], got[2][OFF + ROWS * LD];

    fill_rand(y0, ysz, 2.0f);
    fill_rand(bias, BOFF + COLS, 1.0f);
    for (int d = 0; d < 2; d++) {
        ps_backend *be = f->be[d];
        ps_buf *y = dev_from(be, y0, sizeof(y0));
        ps_buf *b = dev_from(be, bias, sizeof(bias));
        ps_mat my = {y, OFF, LD};
        assert_int_equal(ps_backend_add_bias(be, my, ROWS, COLS, b, BOFF),
                         PS_OK);
        dev_to(be, y, got[d], sizeof(y0));
        ps_backend_buf_free(be, y);
        ps_backend_buf_free(be, b);
    }
    check_close("add_bias", got[DEV], got[CPU], ysz, 0.0, 0.0);
}

/* relu forward and backward: selections, so exact; in place too. */
static void test_cuda_relu_fwd_bwd_exact(void **state)
{
    fixture *f = *state;
    enum { N = 4099 };
    float *x = alloc_f(N), *dy = alloc_f(N);
    float *y[2] = {alloc_f(N), alloc_f(N)}, *dx[2] = {alloc_f(N), alloc_f(N)};
    float *ip[2] = {alloc_f(N), alloc_f(N)};

    fill_rand(x, N, 1.0f);
    fill_rand(dy, N, 1.0f);
    for (size_t i = 0; i < N; i += 17)
        x[i] = 0.0f; /* the kink is inactive */
    for (int d = 0; d < 2; d++) {
        ps_backend *be = f->be[d];
        ps_buf *bx = dev_from(be, x, N * sizeof(float));
        ps_buf *bdy = dev_from(be, dy, N * sizeof(float));
        ps_buf *by = dev_alloc(be, N * sizeof(float));
        assert_int_equal(ps_backend_relu_fwd(be, bx, 0, by, 0, N), PS_OK);
        assert_int_equal(ps_backend_relu_bwd(be, bdy, 0, by, 0, bdy, 0, N),
                         PS_OK);
        assert_int_equal(ps_backend_relu_fwd(be, bx, 1, bx, 1, N - 1), PS_OK);
        dev_to(be, by, y[d], N * sizeof(float));
        dev_to(be, bdy, dx[d], N * sizeof(float));
        dev_to(be, bx, ip[d], N * sizeof(float));
        ps_backend_buf_free(be, bx);
        ps_backend_buf_free(be, bdy);
        ps_backend_buf_free(be, by);
    }
    check_close("relu_fwd", y[DEV], y[CPU], N, 0.0, 0.0);
    check_close("relu_bwd", dx[DEV], dx[CPU], N, 0.0, 0.0);
    check_close("relu_fwd in place", ip[DEV], ip[CPU], N, 0.0, 0.0);
    for (int d = 0; d < 2; d++) {
        free(y[d]);
        free(dx[d]);
        free(ip[d]);
    }
    free(x);
    free(dy);
}

/* softmax_xent on both; out holds [loss, correct], g the gradient. */
static void xent_on(ps_backend *be, const float *x, const float *lab, size_t n,
                    size_t c, int in_place, float *out, float *g)
{
    ps_buf *bx = dev_from(be, x, n * c * sizeof(float));
    ps_buf *bl = dev_from(be, lab, n * sizeof(float));
    ps_buf *bg = in_place ? bx : dev_alloc(be, n * c * sizeof(float));
    ps_buf *bo = dev_alloc(be, 4 * sizeof(float));

    assert_int_equal(
        ps_backend_softmax_xent(be, bx, 0, bl, 0, n, c, bg, 0, bo, 2), PS_OK);
    /* Without a gradient: the same statistics at another offset. */
    if (!in_place)
        assert_int_equal(
            ps_backend_softmax_xent(be, bx, 0, bl, 0, n, c, NULL, 0, bo, 0),
            PS_OK);
    dev_to(be, bo, out, 4 * sizeof(float));
    dev_to(be, bg, g, n * c * sizeof(float));
    if (!in_place)
        ps_backend_buf_free(be, bg);
    ps_backend_buf_free(be, bx);
    ps_backend_buf_free(be, bl);
    ps_backend_buf_free(be, bo);
}

/* Loss: relative 1e-5 (double sums in another order); correct: exact;
 * gradient: 1e-5 relative + 1e-8 absolute (values are O(1/n)). */
static void check_xent(fixture *f, const float *x, const float *lab, size_t n,
                       size_t c)
{
    float out[2][4], *g[2] = {alloc_f(n * c), alloc_f(n * c)};

    for (int in_place = 0; in_place <= 1; in_place++) {
        for (int d = 0; d < 2; d++)
            xent_on(f->be[d], x, lab, n, c, in_place, out[d], g[d]);
        print_message("softmax_xent n=%zu classes=%zu in_place=%d: loss %g "
                      "correct %g\n",
                      n, c, in_place, out[CPU][2], out[CPU][3]);
        assert_true(isfinite(out[DEV][2]));
        check_close("softmax_xent loss", &out[DEV][2], &out[CPU][2], 1, 1e-5,
                    0.0);
        assert_true(out[DEV][3] == out[CPU][3]);
        if (!in_place) {
            check_close("softmax_xent loss (no grad)", &out[DEV][0],
                        &out[CPU][0], 1, 1e-5, 0.0);
            assert_true(out[DEV][1] == out[CPU][1]);
        }
        check_close("softmax_xent grad", g[DEV], g[CPU], n * c, 1e-5, 1e-8);
    }
    free(g[0]);
    free(g[1]);
}

static void test_cuda_softmax_xent_matches_cpu(void **state)
{
    /* 10 classes (the MLP), and 300 (several columns per thread). */
    static const size_t classes[] = {10, 300};

    for (size_t t = 0; t < 2; t++) {
        const size_t n = 70, c = classes[t];
        float *x = alloc_f(n * c), lab[70];

        fill_rand(x, n * c, 5.0f);
        for (size_t i = 0; i < n; i++)
            lab[i] = (float)urand((uint32_t)c);
        /* Ties: the first maximum is the argmax. */
        for (size_t j = 0; j < c; j++)
            x[j] = 0.25f;
        lab[0] = 0.0f;
        x[c + 3] = x[c + 7] = 50.0f;
        lab[1] = 7.0f;
        check_xent(*state, x, lab, n, c);
        free(x);
    }
}

static void test_cuda_softmax_xent_large_logits_stable(void **state)
{
    enum { N = 4, C = 3 };
    /* exp() of any of these overflows float without the max shift. */
    float x[N * C] = {1000.0f, 990.0f, -1000.0f, -5000.0f, -5001.0f, -4999.0f,
                      3e4f,    3e4f,   -3e4f,    88.0f,    200.0f,   89.0f};
    float lab[N] = {0, 2, 1, 1};

    check_xent(*state, x, lab, N, C);
}

/* softmax: relative 1e-6 + absolute 1e-9 (expf may differ by an ulp or
 * two); in place too. */
static void test_cuda_softmax_matches_cpu(void **state)
{
    fixture *f = *state;
    enum { N = 50, C = 300 };
    float *x = alloc_f(N * C), *y[2] = {alloc_f(N * C), alloc_f(N * C)};
    float *ip[2] = {alloc_f(N * C), alloc_f(N * C)};

    fill_rand(x, N * C, 20.0f);
    for (int d = 0; d < 2; d++) {
        ps_backend *be = f->be[d];
        ps_buf *bx = dev_from(be, x, N * C * sizeof(float));
        ps_buf *by = dev_alloc(be, N * C * sizeof(float));
        /* 10 classes on the first rows, then all 300 in place. */
        assert_int_equal(ps_backend_softmax(be, bx, 0, by, 0, N, 10), PS_OK);
        dev_to(be, by, y[d], N * 10 * sizeof(float));
        assert_int_equal(ps_backend_softmax(be, bx, 0, bx, 0, N, C), PS_OK);
        dev_to(be, bx, ip[d], N * C * sizeof(float));
        ps_backend_buf_free(be, bx);
        ps_backend_buf_free(be, by);
    }
    check_close("softmax", y[DEV], y[CPU], N * 10, 1e-6, 1e-9);
    check_close("softmax in place", ip[DEV], ip[CPU], N * C, 1e-6, 1e-9);
    for (int d = 0; d < 2; d++) {
        free(y[d]);
        free(ip[d]);
    }
    free(x);
}

/* col_sum with alpha 0 (NaN in y ignored), 1 and 0.5: the same float sums
 * in the same order, so 1e-6 relative + 1e-6 absolute covers contraction
 * into FMA. */
static void test_cuda_col_sum_alphas_match_cpu(void **state)
{
    fixture *f = *state;
    enum { ROWS = 64, COLS = 300, LD = 310, OFF = 5 };
    const float alphas[] = {0.0f, 1.0f, 0.5f};
    float *x = alloc_f(OFF + ROWS * LD), y0[COLS], got[2][COLS];

    fill_rand(x, OFF + ROWS * LD, 1.0f);
    for (size_t a = 0; a < 3; a++) {
        fill_rand(y0, COLS, 1.0f);
        if (alphas[a] == 0.0f)
            y0[7] = NAN;
        for (int d = 0; d < 2; d++) {
            ps_backend *be = f->be[d];
            ps_buf *bx = dev_from(be, x, (OFF + ROWS * LD) * sizeof(float));
            ps_buf *by = dev_from(be, y0, sizeof(y0));
            ps_mat mx = {bx, OFF, LD};
            assert_int_equal(
                ps_backend_col_sum(be, mx, ROWS, COLS, alphas[a], by, 0),
                PS_OK);
            dev_to(be, by, got[d], sizeof(y0));
            ps_backend_buf_free(be, bx);
            ps_backend_buf_free(be, by);
        }
        check_close("col_sum", got[DEV], got[CPU], COLS, 1e-6, 1e-6);
    }
    free(x);
}

/* scale and fill: exact; axpy: 1e-6 relative + 1e-7 absolute (FMA). */
static void test_cuda_scale_axpy_fill_match_cpu(void **state)
{
    fixture *f = *state;
    enum { N = 10007 };
    float *x = alloc_f(N), *y = alloc_f(N);
    float *gs[2] = {alloc_f(N), alloc_f(N)}, *ga[2] = {alloc_f(N), alloc_f(N)};
    float *gf[2] = {alloc_f(N), alloc_f(N)};

    fill_rand(x, N, 3.0f);
    fill_rand(y, N, 3.0f);
    for (int d = 0; d < 2; d++) {
        ps_backend *be = f->be[d];
        ps_buf *bx = dev_from(be, x, N * sizeof(float));
        ps_buf *by = dev_from(be, y, N * sizeof(float));
        assert_int_equal(ps_backend_scale(be, bx, 2, N - 3, -0.37f), PS_OK);
        dev_to(be, bx, gs[d], N * sizeof(float));
        assert_int_equal(ps_backend_axpy(be, N - 1, 0.61f, bx, 0, by, 1),
                         PS_OK);
        dev_to(be, by, ga[d], N * sizeof(float));
        assert_int_equal(ps_backend_fill(be, by, 5, N - 10, 2.5f), PS_OK);
        dev_to(be, by, gf[d], N * sizeof(float));
        ps_backend_buf_free(be, bx);
        ps_backend_buf_free(be, by);
    }
    check_close("scale", gs[DEV], gs[CPU], N, 0.0, 0.0);
    check_close("axpy", ga[DEV], ga[CPU], N, 1e-6, 1e-7);
    check_close("fill", gf[DEV], gf[CPU], N, 1e-6, 1e-7);
    for (int d = 0; d < 2; d++) {
        free(gs[d]);
        free(ga[d]);
        free(gf[d]);
    }
    free(x);
    free(y);
}

/* ---- sparse rows ---- */

/* gather: copies, exact. scatter_add: ~27 repeats per row summed with
 * atomicAdd in any order: 1e-5 relative + 3e-5 absolute. */
static void test_cuda_gather_scatter_repeated_match_cpu(void **state)
{
    fixture *f = *state;
    enum { ROWS = 500, DIM = 33, NIDX = 2000 };
    float *w = alloc_f(ROWS * DIM), *g = alloc_f(NIDX * DIM);
    float *go[2] = {alloc_f(NIDX * DIM), alloc_f(NIDX * DIM)};
    float *gw[2] = {alloc_f(ROWS * DIM), alloc_f(ROWS * DIM)};
    uint32_t idx[NIDX + 1];

    fill_rand(w, ROWS * DIM, 1.0f);
    fill_rand(g, NIDX * DIM, 1.0f);
    idx[0] = ROWS + 7; /* before the used range */
    for (size_t i = 1; i <= NIDX; i++)
        idx[i] = i % 3 ? urand(50) : urand(ROWS); /* many repeats */
    for (int d = 0; d < 2; d++) {
        ps_backend *be = f->be[d];
        ps_buf *bw = dev_from(be, w, ROWS * DIM * sizeof(float));
        ps_buf *bg = dev_from(be, g, NIDX * DIM * sizeof(float));
        ps_buf *bi = dev_from(be, idx, sizeof(idx));
        ps_buf *bo = dev_alloc(be, NIDX * DIM * sizeof(float));
        assert_int_equal(
            ps_backend_gather(be, bw, 0, ROWS, DIM, bi, 1, NIDX, bo, 0), PS_OK);
        dev_to(be, bo, go[d], NIDX * DIM * sizeof(float));
        assert_int_equal(
            ps_backend_scatter_add(be, bg, 0, bi, 1, NIDX, DIM, bw, 0, ROWS),
            PS_OK);
        dev_to(be, bw, gw[d], ROWS * DIM * sizeof(float));
        ps_backend_buf_free(be, bw);
        ps_backend_buf_free(be, bg);
        ps_backend_buf_free(be, bi);
        ps_backend_buf_free(be, bo);
    }
    check_close("gather", go[DEV], go[CPU], NIDX * DIM, 0.0, 0.0);
    check_close("scatter_add", gw[DEV], gw[CPU], ROWS * DIM, 1e-5, 3e-5);
    for (int d = 0; d < 2; d++) {
        free(go[d]);
        free(gw[d]);
    }
    free(w);
    free(g);
}

/* A random CSR matrix: rows of 0..20 entries, columns drawn with repeats. */
typedef struct csr_host {
    size_t rows, cols, nnz;
    uint32_t *rowptr, *col;
    float *val;
} csr_host;

static void csr_random(csr_host *h, size_t rows, size_t cols)
{
    h->rows = rows;
    h->cols = cols;
    h->rowptr = malloc((rows + 1) * sizeof(uint32_t));
    h->col = malloc(rows * 20 * sizeof(uint32_t));
    h->val = alloc_f(rows * 20);
    assert_non_null(h->rowptr);
    assert_non_null(h->col);
    h->nnz = 0;
    h->rowptr[0] = 0;
    for (size_t i = 0; i < rows; i++) {
        size_t len = i % 7 == 3 ? 0 : urand(21);
        for (size_t p = 0; p < len; p++) {
            h->col[h->nnz] = urand((uint32_t)cols);
            h->val[h->nnz++] = frand();
        }
        h->rowptr[i + 1] = (uint32_t)h->nnz;
    }
}

static void csr_host_free(csr_host *h)
{
    free(h->rowptr);
    free(h->col);
    free(h->val);
}

typedef struct csr_dev {
    ps_buf *rowptr, *col, *val;
    ps_csr x;
} csr_dev;

static void csr_up(ps_backend *be, const csr_host *h, csr_dev *d)
{
    d->rowptr = dev_from(be, h->rowptr, (h->rows + 1) * sizeof(uint32_t));
    d->col = dev_from(be, h->col, (h->nnz + 1) * sizeof(uint32_t));
    d->val = dev_from(be, h->val, (h->nnz + 1) * sizeof(float));
    d->x =
        (ps_csr){d->rowptr, 0, d->col, 0, d->val, 0, h->rows, h->cols, h->nnz};
}

static void csr_dev_free(ps_backend *be, csr_dev *d)
{
    ps_backend_buf_free(be, d->rowptr);
    ps_backend_buf_free(be, d->col);
    ps_backend_buf_free(be, d->val);
}

/* csr_mm (k = 1, the double-accumulated dot product, and k = 17) and
 * csr_mm_t (atomicAdd): 1e-5 relative + 1e-5 absolute. */
static void test_cuda_csr_mm_and_transpose_match_cpu(void **state)
{
    fixture *f = *state;
    enum { ROWS = 64, COLS = 300, KMAX = 17 };
    static const size_t ks[] = {1, KMAX};
    csr_host h;

    csr_random(&h, ROWS, COLS);
    for (size_t t = 0; t < 2; t++) {
        const size_t k = ks[t], ldw = k + 3, ldy = k + 1;
        const size_t wsz = COLS * ldw, ysz = ROWS * ldy;
        float *w = alloc_f(wsz), *dy = alloc_f(ysz), *g0 = alloc_f(wsz);
        float *y[2] = {alloc_f(ysz), alloc_f(ysz)};
        float *g[2] = {alloc_f(wsz), alloc_f(wsz)};

        fill_rand(w, wsz, 1.0f);
        fill_rand(dy, ysz, 1.0f);
        fill_rand(g0, wsz, 1.0f);
        for (int d = 0; d < 2; d++) {
            ps_backend *be = f->be[d];
            csr_dev cd;
            csr_up(be, &h, &cd);
            ps_buf *bw = dev_from(be, w, wsz * sizeof(float));
            ps_buf *bdy = dev_from(be, dy, ysz * sizeof(float));
            ps_buf *by = dev_from(be, dy, ysz * sizeof(float));
            ps_buf *bg = dev_from(be, g0, wsz * sizeof(float));
            ps_mat mw = {bw, 0, ldw}, my = {by, 0, ldy};
            ps_mat mdy = {bdy, 0, ldy}, mg = {bg, 0, ldw};
            assert_int_equal(ps_backend_csr_mm(be, cd.x, k, mw, my), PS_OK);
            assert_int_equal(ps_backend_csr_mm_t(be, cd.x, k, mdy, mg), PS_OK);
            dev_to(be, by, y[d], ysz * sizeof(float));
            dev_to(be, bg, g[d], wsz * sizeof(float));
            ps_backend_buf_free(be, bw);
            ps_backend_buf_free(be, bdy);
            ps_backend_buf_free(be, by);
            ps_backend_buf_free(be, bg);
            csr_dev_free(be, &cd);
        }
        print_message("csr k=%zu nnz=%zu\n", k, h.nnz);
        check_close("csr_mm", y[DEV], y[CPU], ysz, 1e-5, 1e-5);
        check_close("csr_mm_t", g[DEV], g[CPU], wsz, 1e-5, 1e-5);
        free(w);
        free(dy);
        free(g0);
        for (int d = 0; d < 2; d++) {
            free(y[d]);
            free(g[d]);
        }
    }
    csr_host_free(&h);
}

/* sigmoid_xent: loss 1e-6 relative, correct exact, gradient and sigmoid
 * 1e-6 relative (double formulas on both sides); in place too. */
static void test_cuda_sigmoid_xent_and_sigmoid_match_cpu(void **state)
{
    fixture *f = *state;
    enum { N = 5000 };
    float *z = alloc_f(N), lab[N], out[2][2];
    float *g[2] = {alloc_f(N), alloc_f(N)}, *ip[2] = {alloc_f(N), alloc_f(N)};
    float *p[2] = {alloc_f(N), alloc_f(N)};

    fill_rand(z, N, 10.0f);
    z[0] = 100.0f;
    z[1] = -100.0f;
    z[2] = 0.0f;
    for (size_t i = 0; i < N; i++)
        lab[i] = (float)(urand(2));
    for (int d = 0; d < 2; d++) {
        ps_backend *be = f->be[d];
        ps_buf *bz = dev_from(be, z, N * sizeof(float));
        ps_buf *bl = dev_from(be, lab, sizeof(lab));
        ps_buf *bg = dev_alloc(be, N * sizeof(float));
        ps_buf *bo = dev_alloc(be, 2 * sizeof(float));
        assert_int_equal(
            ps_backend_sigmoid_xent(be, bz, 0, bl, 0, N, bg, 0, bo, 0), PS_OK);
        dev_to(be, bo, out[d], sizeof(out[d]));
        dev_to(be, bg, g[d], N * sizeof(float));
        assert_int_equal(ps_backend_sigmoid(be, bz, 0, bg, 0, N), PS_OK);
        dev_to(be, bg, p[d], N * sizeof(float));
        assert_int_equal(
            ps_backend_sigmoid_xent(be, bz, 0, bl, 0, N, bz, 0, bo, 0), PS_OK);
        dev_to(be, bz, ip[d], N * sizeof(float));
        ps_backend_buf_free(be, bz);
        ps_backend_buf_free(be, bl);
        ps_backend_buf_free(be, bg);
        ps_backend_buf_free(be, bo);
    }
    check_close("sigmoid_xent loss", &out[DEV][0], &out[CPU][0], 1, 1e-6, 0.0);
    assert_true(out[DEV][1] == out[CPU][1]);
    check_close("sigmoid_xent grad", g[DEV], g[CPU], N, 1e-6, 1e-12);
    check_close("sigmoid_xent grad in place", ip[DEV], ip[CPU], N, 1e-6, 1e-12);
    check_close("sigmoid", p[DEV], p[CPU], N, 1e-6, 1e-38);
    for (int d = 0; d < 2; d++) {
        free(g[d]);
        free(ip[d]);
        free(p[d]);
    }
    free(z);
}

/* ---- errors found by kernels: reported by sync, then cleared ---- */

/* The CPU refuses at the call; the GPU skips the bad rows and its sync
 * returns the code (so does "cpu-deferred", whose calls run at sync); the
 * next sync is clean and the backend still works. */
static void expect_deferred(fixture *f, int call_rc, int want)
{
    ps_backend *be = f->be[DEV];
    float one = 0.0f;
    ps_buf *b;

    if (!is_gpu(f) && strcmp(ps_backend_name(be), "cpu-deferred") != 0) {
        assert_int_equal(call_rc, want);
        return;
    }
    assert_int_equal(call_rc, PS_OK);
    assert_int_equal(ps_backend_sync(be), want);
    assert_int_equal(ps_backend_sync(be), PS_OK);
    b = dev_alloc(be, sizeof(float));
    assert_int_equal(ps_backend_fill(be, b, 0, 1, 4.0f), PS_OK);
    dev_to(be, b, &one, sizeof(one));
    assert_true(one == 4.0f);
    ps_backend_buf_free(be, b);
}

static void test_cuda_bad_index_label_csr_reported_at_sync(void **state)
{
    fixture *f = *state;
    ps_backend *be = f->be[DEV];
    enum { ROWS = 6, DIM = 3 };
    float w[ROWS * DIM], x[2 * 3] = {0}, lab[2] = {0, 3}, zl[2] = {0, 2};
    uint32_t idx[3] = {1, ROWS, 2}, rowptr[3] = {0, 2, 3}, col[3] = {0, 5, 1};
    ps_buf *bw, *bi, *bo, *bx, *bl, *bz, *bs, *brp, *bc, *bv;

    fill_rand(w, ROWS * DIM, 1.0f);
    bw = dev_from(be, w, sizeof(w));
    bi = dev_from(be, idx, sizeof(idx));
    bo = dev_alloc(be, 3 * DIM * sizeof(float));
    expect_deferred(f, ps_backend_gather(be, bw, 0, ROWS, DIM, bi, 0, 3, bo, 0),
                    PS_ERANGE);
    expect_deferred(
        f, ps_backend_scatter_add(be, bo, 0, bi, 0, 3, DIM, bw, 0, ROWS),
        PS_ERANGE);

    /* Labels: 3 is no class of 3; 2 is not 0 or 1. */
    bx = dev_from(be, x, sizeof(x));
    bl = dev_from(be, lab, sizeof(lab));
    bz = dev_from(be, zl, sizeof(zl));
    bs = dev_alloc(be, 2 * sizeof(float));
    expect_deferred(
        f, ps_backend_softmax_xent(be, bx, 0, bl, 0, 2, 3, NULL, 0, bs, 0),
        PS_EINVAL);
    expect_deferred(
        f, ps_backend_sigmoid_xent(be, bx, 0, bz, 0, 2, NULL, 0, bs, 0),
        PS_EINVAL);

    /* CSR [2, 5]: column 5 is out of range; then rowptr[rows] != nnz. */
    brp = dev_from(be, rowptr, sizeof(rowptr));
    bc = dev_from(be, col, sizeof(col));
    bv = dev_from(be, x, 3 * sizeof(float));
    ps_csr cx = {brp, 0, bc, 0, bv, 0, 2, 5, 3};
    ps_mat mw = {bw, 0, DIM}, my = {bo, 0, DIM};
    expect_deferred(f, ps_backend_csr_mm(be, cx, DIM, mw, my), PS_ERANGE);
    expect_deferred(f, ps_backend_csr_mm_t(be, cx, DIM, my, mw), PS_ERANGE);
    col[1] = 4;
    assert_int_equal(ps_backend_upload(be, bc, 0, col, sizeof(col)), PS_OK);
    cx.nnz = 2;
    expect_deferred(f, ps_backend_csr_mm(be, cx, DIM, mw, my), PS_ERANGE);

    ps_backend_buf_free(be, bw);
    ps_backend_buf_free(be, bi);
    ps_backend_buf_free(be, bo);
    ps_backend_buf_free(be, bx);
    ps_backend_buf_free(be, bl);
    ps_backend_buf_free(be, bz);
    ps_backend_buf_free(be, bs);
    ps_backend_buf_free(be, brp);
    ps_backend_buf_free(be, bc);
    ps_backend_buf_free(be, bv);
}

/* ---- models on both backends ---- */

static ps_model *model_on(ps_backend *be, const char *spec, size_t in,
                          size_t classes, size_t batch)
{
    ps_model *m = NULL;
    char err[256] = "";
    int rc = ps_model_new(&m, spec, in, classes, be, batch, err, sizeof(err));

    if (rc != PS_OK)
        print_error("ps_model_new(%s) on %s: %s\n", spec, ps_backend_name(be),
                    err);
    assert_int_equal(rc, PS_OK);
    return m;
}

/* He-scaled random weights, small random biases. */
static float *model_params(const ps_model *m)
{
    float *p = alloc_f(ps_model_num_params(m));

    for (size_t t = 0; t < ps_model_num_tables(m); t++) {
        const ps_model_table *tb = ps_model_table_at(m, t);
        float r = tb->rows > 1 ? (float)sqrt(6.0 / (double)tb->rows) : 0.1f;
        fill_rand(p + tb->offset, tb->len, r);
    }
    return p;
}

/* One step, eval and predict of mlp:784-256-128-10 on a batch of 64 on
 * both backends. Loss 1e-5 relative; correct exact; gradients within
 * 1e-3 relative + 1e-4 of the largest CPU gradient (three chained sgemms
 * of up to 784 terms); probabilities 1e-5 absolute. */
static void test_cuda_mlp_step_matches_cpu(void **state)
{
    fixture *f = *state;
    enum { N = 64, IN = 784, C = 10 };
    ps_model *m[2];
    float *x = alloc_f(N * IN), y[N], *p, *g[2], probs[2][N * C];
    double loss[2], eloss[2], gmax = 0.0;
    size_t correct[2], ecorrect[2], np;

    for (size_t i = 0; i < N * IN; i++)
        x[i] = 0.5f * (frand() + 1.0f); /* pixels in [0, 1) */
    for (size_t i = 0; i < N; i++)
        y[i] = (float)urand(C);
    for (int d = 0; d < 2; d++)
        m[d] = model_on(f->be[d], "mlp:784-256-128-10", IN, C, N);
    p = model_params(m[CPU]);
    np = ps_model_num_params(m[CPU]);
    for (int d = 0; d < 2; d++) {
        g[d] = alloc_f(np);
        assert_int_equal(ps_model_set_params(m[d], p), PS_OK);
        assert_int_equal(ps_model_step(m[d], x, y, N, &loss[d], &correct[d]),
                         PS_OK);
        assert_int_equal(ps_model_get_grads(m[d], g[d]), PS_OK);
        assert_int_equal(ps_model_eval(m[d], x, y, N, &eloss[d], &ecorrect[d]),
                         PS_OK);
        assert_int_equal(ps_model_predict(m[d], x, N, probs[d]), PS_OK);
    }
    print_message("mlp: loss cpu %.6f device %.6f, correct %zu / %zu\n",
                  loss[CPU], loss[DEV], correct[CPU], correct[DEV]);
    assert_near(loss[DEV], loss[CPU], 1e-5);
    assert_near(eloss[DEV], eloss[CPU], 1e-5);
    assert_int_equal(correct[DEV], correct[CPU]);
    assert_int_equal(ecorrect[DEV], ecorrect[CPU]);
    for (size_t i = 0; i < np; i++)
        gmax = fmax(gmax, fabs(g[CPU][i]));
    check_close("mlp grads", g[DEV], g[CPU], np, 1e-3, 1e-4 * gmax);
    check_close("mlp probs", probs[DEV], probs[CPU], N * C, 0.0, 1e-5);
    for (int d = 0; d < 2; d++) {
        free(g[d]);
        ps_model_free(m[d]);
    }
    free(p);
    free(x);
}

/* Pipelined steps on the device (the next batch staged on the copy stream
 * while a step computes, the gradient coming down layer by layer, all
 * through pinned memory) against one-call steps on the CPU, over five
 * batches with the weights moving between them; tolerances as above. */
static void test_cuda_mlp_pipelined_steps_match_cpu(void **state)
{
    fixture *f = *state;
    enum { N = 64, IN = 784, C = 10, STEPS = 5 };
    ps_backend *be = f->be[DEV];
    ps_model *m[2];
    float *x[2], *y[2], *p, *g[2];
    size_t np;

    for (int d = 0; d < 2; d++)
        m[d] = model_on(f->be[d], "mlp:784-256-128-10", IN, C, N);
    p = model_params(m[CPU]);
    np = ps_model_num_params(m[CPU]);
    g[CPU] = alloc_f(np);
    g[DEV] = ps_backend_host_alloc(be, np * sizeof(float));
    for (int s = 0; s < 2; s++) {
        x[s] = ps_backend_host_alloc(be, N * IN * sizeof(float));
        y[s] = ps_backend_host_alloc(be, N * sizeof(float));
        assert_true(x[s] && y[s]);
    }
    assert_non_null(g[DEV]);
    /* Batch i sits in host slot i % 2; batch i + 1 is written there while
     * step i computes. */
    for (size_t i = 0; i < STEPS; i++) {
        int slot = (int)(i % 2);
        double loss[2], gmax = 0.0;
        size_t correct[2];

        if (i == 0) {
            for (size_t k = 0; k < N * IN; k++)
                x[0][k] = 0.5f * (frand() + 1.0f);
            for (size_t k = 0; k < N; k++)
                y[0][k] = (float)urand(C);
            assert_int_equal(ps_model_set_params(m[DEV], p), PS_OK);
            assert_int_equal(ps_model_stage(m[DEV], 0, x[0], y[0], N), PS_OK);
        }
        assert_int_equal(ps_model_set_params(m[CPU], p), PS_OK);
        assert_int_equal(ps_model_step_grads(m[CPU], x[slot], y[slot], N,
                                             g[CPU], &loss[CPU], &correct[CPU]),
                         PS_OK);
        assert_int_equal(ps_model_step_staged_begin(m[DEV], slot, g[DEV]),
                         PS_OK);
        if (i + 1 < STEPS) {
            int next = 1 - slot;
            for (size_t k = 0; k < N * IN; k++)
                x[next][k] = 0.5f * (frand() + 1.0f);
            for (size_t k = 0; k < N; k++)
                y[next][k] = (float)urand(C);
            assert_int_equal(ps_model_stage(m[DEV], next, x[next], y[next], N),
                             PS_OK);
        }
        assert_int_equal(ps_model_step_end(m[DEV], &loss[DEV], &correct[DEV]),
                         PS_OK);
        assert_near(loss[DEV], loss[CPU], 1e-5);
        assert_int_equal(correct[DEV], correct[CPU]);
        for (size_t k = 0; k < np; k++)
            gmax = fmax(gmax, fabs(g[CPU][k]));
        check_close("pipelined grads", g[DEV], g[CPU], np, 1e-3, 1e-4 * gmax);
        for (size_t k = 0; k < np; k++)
            p[k] -= 0.1f * g[CPU][k];
        assert_int_equal(ps_model_set_params(m[DEV], p), PS_OK);
    }
    for (int s = 0; s < 2; s++) {
        ps_backend_host_free(be, x[s]);
        ps_backend_host_free(be, y[s]);
    }
    ps_backend_host_free(be, g[DEV]);
    free(g[CPU]);
    free(p);
    for (int d = 0; d < 2; d++)
        ps_model_free(m[d]);
}

static ps_logreg *logreg_on(ps_backend *be, const char *spec, size_t batch)
{
    ps_logreg *m = NULL;
    char err[256] = "";
    int rc = ps_logreg_new(&m, spec, be, batch, err, sizeof(err));

    if (rc != PS_OK)
        print_error("ps_logreg_new(%s): %s\n", spec, err);
    assert_int_equal(rc, PS_OK);
    return m;
}

/* A sparse batch of n rows with `per` increasing feature ids each. */
typedef struct sparse_host {
    ps_batch b;
    size_t rowptr[129];
    uint64_t idx[128 * 16];
    float val[128 * 16], y[128];
} sparse_host;

static void sparse_random(sparse_host *h, size_t n, size_t per, uint32_t nfeat)
{
    size_t e = 0;

    assert_true(n <= 128 && per <= 16);
    h->rowptr[0] = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t fid = 0;
        for (size_t k = 0; k < per; k++) {
            fid += 1 + urand(nfeat / (uint32_t)per);
            h->idx[e] = fid;
            h->val[e++] = frand();
        }
        h->rowptr[i + 1] = e;
        h->y[i] = (float)(i % 2);
    }
    h->b = (ps_batch){n, 0, NULL, h->y, h->rowptr, h->idx, h->val};
}

/* logreg step and eval on both: loss 1e-6 relative, correct exact,
 * gradients 1e-5 relative + 1e-7 absolute (atomicAdd order), logits 1e-6
 * relative + 1e-6 absolute. */
static void test_cuda_logreg_step_matches_cpu(void **state)
{
    fixture *f = *state;
    enum { N = 100 };
    ps_logreg *m[2];
    ps_logreg_batch lb;
    sparse_host h;
    float w[N * 16 + 1], g[2][N * 16 + 1], z[2][N];
    double loss[2], eloss[2];
    size_t correct[2], ecorrect[2];
    char err[256];

    sparse_random(&h, N, 12, 3000);
    for (int d = 0; d < 2; d++)
        m[d] = logreg_on(f->be[d], "logreg:12", N);
    ps_logreg_batch_init(&lb);
    /* Keys depend on the spec only, so one build serves both models. */
    assert_int_equal(
        ps_logreg_batch_build(m[CPU], &lb, &h.b, 1, err, sizeof(err)), PS_OK);
    fill_rand(w, lb.nuniq, 0.5f);
    for (int d = 0; d < 2; d++) {
        assert_int_equal(
            ps_logreg_step(m[d], &lb, w, g[d], &loss[d], &correct[d]), PS_OK);
        assert_int_equal(
            ps_logreg_eval(m[d], &lb, w, &eloss[d], &ecorrect[d], z[d]), PS_OK);
    }
    print_message("logreg: %zu keys, loss %.6f / %.6f\n", lb.nuniq, loss[CPU],
                  loss[DEV]);
    assert_near(loss[DEV], loss[CPU], 1e-6);
    assert_near(eloss[DEV], eloss[CPU], 1e-6);
    assert_int_equal(correct[DEV], correct[CPU]);
    assert_int_equal(ecorrect[DEV], ecorrect[CPU]);
    check_close("logreg grads", g[DEV], g[CPU], lb.nuniq, 1e-5, 1e-7);
    check_close("logreg logits", z[DEV], z[CPU], N, 1e-6, 1e-6);
    ps_logreg_batch_free(&lb);
    for (int d = 0; d < 2; d++)
        ps_logreg_free(m[d]);
}

/* ---- training on the device ---- */

/* Four Gaussian blobs in 20-D; plain SGD (batch 64, lr 0.5) for 3 epochs
 * from the same start on both backends. Held-out accuracy must reach 0.95
 * on both and agree within 0.02. */
static double train_blobs(ps_backend *be, const float *x, const float *y,
                          size_t ntrain, const float *tx, const float *ty,
                          size_t ntest, const float *p0)
{
    enum { D = 20, C = 4, B = 64 };
    ps_model *m = model_on(be, "mlp:20-32-4", D, C, B);
    size_t np = ps_model_num_params(m), correct, right = 0;
    float *p = alloc_f(np), *g = alloc_f(np);
    double loss;

    memcpy(p, p0, np * sizeof(float));
    for (int epoch = 0; epoch < 3; epoch++) {
        for (size_t i = 0; i + B <= ntrain; i += B) {
            assert_int_equal(ps_model_set_params(m, p), PS_OK);
            assert_int_equal(
                ps_model_step(m, x + i * D, y + i, B, &loss, &correct), PS_OK);
            assert_int_equal(ps_model_get_grads(m, g), PS_OK);
            for (size_t j = 0; j < np; j++)
                p[j] -= 0.5f * g[j];
        }
    }
    assert_int_equal(ps_model_set_params(m, p), PS_OK);
    for (size_t i = 0; i < ntest; i += B) {
        size_t n = ntest - i < B ? ntest - i : B;
        assert_int_equal(
            ps_model_eval(m, tx + i * D, ty + i, n, &loss, &correct), PS_OK);
        right += correct;
    }
    free(p);
    free(g);
    ps_model_free(m);
    return (double)right / (double)ntest;
}

static void test_cuda_mlp_trains_blobs_like_cpu(void **state)
{
    fixture *f = *state;
    enum { D = 20, C = 4, NTRAIN = 2048, NTEST = 512 };
    float centers[C][D], *x = alloc_f((NTRAIN + NTEST) * D);
    float y[NTRAIN + NTEST], *p0;
    double acc[2];
    ps_model *shape = model_on(f->be[CPU], "mlp:20-32-4", D, C, 64);

    fill_rand(&centers[0][0], C * D, 1.0f);
    for (size_t i = 0; i < NTRAIN + NTEST; i++) {
        y[i] = (float)urand(C);
        for (size_t k = 0; k < D; k++)
            x[i * D + k] = centers[(size_t)y[i]][k] + 0.3f * frand();
    }
    p0 = model_params(shape);
    ps_model_free(shape);
    for (int d = 0; d < 2; d++)
        acc[d] = train_blobs(f->be[d], x, y, NTRAIN, x + NTRAIN * D, y + NTRAIN,
                             NTEST, p0);
    print_message("blobs: test accuracy cpu %.4f, %s %.4f\n", acc[CPU],
                  ps_backend_name(f->be[DEV]), acc[DEV]);
    assert_true(acc[CPU] >= 0.95);
    assert_true(acc[DEV] >= 0.95);
    assert_true(fabs(acc[DEV] - acc[CPU]) <= 0.02);
    free(p0);
    free(x);
}

/* ---- device groups (NCCL) ---- */

/* Group tolerance: the CPU's 1e-5 (replicas_check.h) widened for cuBLAS
 * against OpenBLAS on these small layers (at most 7 terms per sum). */
#define GROUP_TOL 1e-4

/* Groups over bes[0..n-1] against one model on the CPU: a batch split
 * unevenly, one smaller than the group, and one row. */
static void group_matches_cpu(fixture *f, ps_backend *const *bes, size_t n,
                              const char *kind)
{
    const size_t batches[] = {9, n > 1 ? n - 1 : 1, 1, 8};
    ps_replicas *g = NULL;
    ps_model *one = model_on(f->be[CPU], "mlp:5-7-3", 5, 0, 9);
    char err[256] = "";

    if (ps_replicas_new(&g, "mlp:5-7-3", 5, 0, bes, n, 9, err, sizeof(err)) !=
        PS_OK)
        print_error("ps_replicas_new: %s\n", err);
    assert_non_null(g);
    assert_string_equal(ps_replicas_comm_kind(g), kind);
    for (size_t i = 0; i < 4; i++)
        rc_compare(g, one, batches[i], GROUP_TOL);
    ps_replicas_free(g);
    ps_model_free(one);
}

/* One GPU: NCCL with a single rank (what a one-GPU machine can run). */
static void test_cuda_group_of_one_nccl_matches_cpu(void **state)
{
    fixture *f = *state;
    const char *kind = is_gpu(f) ? "nccl" : "host";

    rc_check_comm(&f->be[DEV], 1, kind);
    group_matches_cpu(f, &f->be[DEV], 1, kind);
}

/* Every visible GPU (up to 3 for the communicator check, 16 for the
 * group); skipped with fewer than two. With SPARKPS_TEST_GPU_DEVICE=cpu
 * two CPU backends stand in (the host communicator). */
static void test_cuda_group_all_devices_matches_cpu(void **state)
{
    fixture *f = *state;
    ps_backend *bes[PS_COMM_MAX_RANKS] = {NULL};
    char name[32], err[256] = "";
    int count = 2;

    if (is_gpu(f)) {
        assert_int_equal(ps_cuda_device_count(&count, err, sizeof(err)), PS_OK);
        if (count < 2) {
            print_message("group of all GPUs: skipped, %d GPU visible "
                          "(UNVERIFIED until a machine with two is used)\n",
                          count);
            skip();
        }
        if (count > PS_COMM_MAX_RANKS)
            count = PS_COMM_MAX_RANKS;
    }
    for (int i = 0; i < count; i++) {
        snprintf(name, sizeof(name), "cuda:%d", i);
        if (ps_backend_open(is_gpu(f) ? name : "cpu", &bes[i], err,
                            sizeof(err)) != PS_OK)
            print_error("%s: %s\n", name, err);
        assert_non_null(bes[i]);
    }
    rc_check_comm(bes, count < 3 ? (size_t)count : 3,
                  is_gpu(f) ? "nccl" : "host");
    group_matches_cpu(f, bes, (size_t)count, is_gpu(f) ? "nccl" : "host");
    for (int i = 0; i < count; i++)
        ps_backend_free(bes[i]);
}

int main(void)
{
    const char *dev = getenv("SPARKPS_TEST_GPU_DEVICE");
    char err[256] = "";
    int count = 0;

    if (dev != NULL && dev[0] != '\0')
        gpu_device = dev;
    if (strncmp(gpu_device, "cuda", 4) == 0 &&
        ps_cuda_device_count(&count, err, sizeof(err)) != PS_OK) {
        printf("test_backend_cuda: skipped: %s\n", err);
        return SKIP_EXIT;
    }
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_cuda_open_name_and_bad_device),
        T(test_cuda_copy_offsets_roundtrip),
        T(test_cuda_copy_stream_orders_copies),
        T(test_cuda_sgemm_all_transposes_match_cpu),
        T(test_cuda_add_bias_exact),
        T(test_cuda_relu_fwd_bwd_exact),
        T(test_cuda_softmax_xent_matches_cpu),
        T(test_cuda_softmax_xent_large_logits_stable),
        T(test_cuda_softmax_matches_cpu),
        T(test_cuda_col_sum_alphas_match_cpu),
        T(test_cuda_scale_axpy_fill_match_cpu),
        T(test_cuda_gather_scatter_repeated_match_cpu),
        T(test_cuda_csr_mm_and_transpose_match_cpu),
        T(test_cuda_sigmoid_xent_and_sigmoid_match_cpu),
        T(test_cuda_bad_index_label_csr_reported_at_sync),
        T(test_cuda_mlp_step_matches_cpu),
        T(test_cuda_mlp_pipelined_steps_match_cpu),
        T(test_cuda_logreg_step_matches_cpu),
        T(test_cuda_mlp_trains_blobs_like_cpu),
        T(test_cuda_group_of_one_nccl_matches_cpu),
        T(test_cuda_group_all_devices_matches_cpu),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
