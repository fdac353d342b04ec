/* Unit tests for the deferred CPU backend (worker/backend_deferred.c): it
 * really defers (an upload reads its host array at sync, a download writes
 * its host array only at sync, operations run in issue order, errors come
 * back from sync), its host memory starts as NaN, the device string is
 * parsed and malformed ones refused, and a model gives bit-identical
 * step / gradient / eval / predict results on "cpu" and "cpu-deferred",
 * also through the trainer's one-wait calls (set_params_async,
 * step_grads). The copy stream (upload_ahead, copy_fence, download_ahead)
 * gives in-order results used by its rules, and each breach of them shows
 * in the deferred backend's results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "unit/ps_test.h"
#include "worker/backend.h"
#include "worker/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static ps_backend *open_dev(const char *device)
{
    ps_backend *be = NULL;
    char err[256] = "";

    if (ps_backend_open(device, &be, err, sizeof(err)) != PS_OK)
        fail_msg("open %s: %s", device, err);
    return be;
}

static void test_deferred_parse_and_name(void **state)
{
    ps_device_kind kind = PS_DEVICE_CUDA;
    int num = -1;
    ps_backend *be;
    char err[256] = "";

    (void)state;
    assert_int_equal(ps_backend_parse_device("cpu-deferred", &kind, &num, err,
                                             sizeof(err)),
                     PS_OK);
    assert_int_equal(kind, PS_DEVICE_CPU_DEFERRED);
    assert_int_equal(num, 1);
    const char *bad[] = {"cpu-deferred:2", "cpu-deferred ", "cpu-defer",
                         "CPU-DEFERRED", "cpu-deferred,"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(ps_backend_parse_device(bad[i], &kind, &num, err,
                                                 sizeof(err)),
                         PS_EINVAL);
        assert_non_null(strstr(err, "cpu-deferred"));
    }
    be = open_dev("cpu-deferred");
    assert_string_equal(ps_backend_name(be), "cpu-deferred");
    ps_backend_free(be);
}

/* The host array is read when the upload executes (at sync), not when it
 * is issued; a download's destination is untouched until sync. */
static void test_deferred_copies_wait_for_sync(void **state)
{
    ps_backend *be = open_dev("cpu-deferred");
    ps_buf *b = NULL;
    float src[4] = {1, 2, 3, 4}, dst[4] = {-1, -1, -1, -1};

    (void)state;
    assert_int_equal(ps_backend_buf_alloc(be, sizeof(src), &b), PS_OK);
    assert_int_equal(ps_backend_upload(be, b, 0, src, sizeof(src)), PS_OK);
    src[2] = 30; /* a contract breach: changed before sync */
    assert_int_equal(ps_backend_scale(be, b, 0, 4, 2.0f), PS_OK);
    assert_int_equal(ps_backend_download(be, b, 0, dst, sizeof(dst)), PS_OK);
    for (size_t i = 0; i < 4; i++)
        assert_true(dst[i] == -1.0f);
    assert_int_equal(ps_backend_sync(be), PS_OK);
    assert_true(dst[0] == 2.0f && dst[1] == 4.0f && dst[3] == 8.0f);
    assert_true(dst[2] == 60.0f); /* the value at sync time, scaled */
    ps_backend_buf_free(be, b);
    ps_backend_free(be);
}

/* fetch_stats syncs; buf_free waits for the work that uses the buffer. */
static void test_deferred_fetch_stats_and_free_sync(void **state)
{
    ps_backend *be = open_dev("cpu-deferred");
    ps_buf *b = NULL;
    float out[2] = {0, 0};
    double loss = 0;
    size_t correct = 0;

    (void)state;
    assert_int_equal(ps_backend_buf_alloc(be, 2 * sizeof(float), &b), PS_OK);
    assert_int_equal(ps_backend_fill(be, b, 0, 2, 3.0f), PS_OK);
    assert_int_equal(ps_backend_fetch_stats(be, b, 0, &loss, &correct), PS_OK);
    assert_true(loss == 3.0 && correct == 3);
    assert_int_equal(ps_backend_fill(be, b, 0, 2, 5.0f), PS_OK);
    assert_int_equal(ps_backend_download(be, b, 0, out, sizeof(out)), PS_OK);
    ps_backend_buf_free(be, b); /* runs the fill and the download first */
    assert_true(out[0] == 5.0f && out[1] == 5.0f);
    assert_int_equal(ps_backend_sync(be), PS_OK);
    ps_backend_free(be);
}

/* An operation that fails while running reports at sync; later work still
 * runs, and the error is reported once. */
static void test_deferred_error_at_sync(void **state)
{
    ps_backend *be = open_dev("cpu-deferred");
    ps_buf *w = NULL, *idx = NULL, *out = NULL;
    uint32_t bad[1] = {7};
    float got = 0;

    (void)state;
    assert_int_equal(ps_backend_buf_alloc(be, 4 * sizeof(float), &w), PS_OK);
    assert_int_equal(ps_backend_buf_alloc(be, sizeof(bad), &idx), PS_OK);
    assert_int_equal(ps_backend_buf_alloc(be, sizeof(float), &out), PS_OK);
    assert_int_equal(ps_backend_fill(be, w, 0, 4, 1.0f), PS_OK);
    assert_int_equal(ps_backend_upload(be, idx, 0, bad, sizeof(bad)), PS_OK);
    /* row 7 of a 4-row block: issued fine, fails when it runs */
    assert_int_equal(ps_backend_gather(be, w, 0, 4, 1, idx, 0, 1, out, 0),
                     PS_OK);
    assert_int_equal(ps_backend_fill(be, out, 0, 1, 9.0f), PS_OK);
    assert_int_equal(ps_backend_download(be, out, 0, &got, sizeof(got)),
                     PS_OK);
    assert_int_equal(ps_backend_sync(be), PS_ERANGE);
    assert_true(got == 9.0f);
    assert_int_equal(ps_backend_sync(be), PS_OK);
    ps_backend_buf_free(be, w);
    ps_backend_buf_free(be, idx);
    ps_backend_buf_free(be, out);
    ps_backend_free(be);
}

/* The copy stream used by the rules gives the in-order results on the
 * CPU backend (plain copies) and the deferred one (copies at the fence and
 * at the end of sync). */
static void test_copy_stream_rules_give_in_order_results(void **state)
{
    const char *devices[] = {"cpu", "cpu-deferred"};

    (void)state;
    for (size_t d = 0; d < 2; d++) {
        ps_backend *be = open_dev(devices[d]);
        ps_buf *a = NULL, *b = NULL;
        float va[4] = {1, 2, 3, 4}, vb[4] = {10, 20, 30, 40};
        float ha[4] = {0}, hb[4] = {0};

        assert_int_equal(ps_backend_buf_alloc(be, sizeof(va), &a), PS_OK);
        assert_int_equal(ps_backend_buf_alloc(be, sizeof(vb), &b), PS_OK);
        assert_int_equal(ps_backend_upload(be, a, 0, va, sizeof(va)), PS_OK);
        assert_int_equal(ps_backend_upload_ahead(be, b, 0, vb, sizeof(vb)),
                         PS_OK);
        assert_int_equal(ps_backend_scale(be, a, 0, 4, 2.0f), PS_OK);
        assert_int_equal(ps_backend_copy_fence(be), PS_OK);
        assert_int_equal(ps_backend_axpy(be, 4, 1.0f, a, 0, b, 0), PS_OK);
        assert_int_equal(ps_backend_download_ahead(be, b, 0, hb, sizeof(hb)),
                         PS_OK);
        assert_int_equal(ps_backend_scale(be, a, 0, 4, 0.5f), PS_OK);
        assert_int_equal(ps_backend_download(be, a, 0, ha, sizeof(ha)), PS_OK);
        assert_int_equal(ps_backend_sync(be), PS_OK);
        for (size_t i = 0; i < 4; i++) {
            assert_true(hb[i] == 12.0f * (float)(i + 1));
            assert_true(ha[i] == va[i]);
        }
        /* The wrappers check copy-stream operands like the in-order ones. */
        assert_int_equal(ps_backend_upload_ahead(be, b, 4, vb, sizeof(vb)),
                         PS_ERANGE);
        assert_int_equal(ps_backend_upload_ahead(be, b, 0, NULL, 4), PS_EINVAL);
        assert_int_equal(ps_backend_download_ahead(be, b, 0, hb, 17),
                         PS_ERANGE);
        assert_int_equal(ps_backend_download_ahead(be, b, 0, NULL, 4),
                         PS_EINVAL);
        assert_int_equal(ps_backend_upload_ahead(be, b, 0, NULL, 0), PS_OK);
        ps_backend_buf_free(be, a);
        ps_backend_buf_free(be, b);
        ps_backend_free(be);
    }
}

/* Each breach of the copy stream's rules changes the deferred backend's
 * results, so tests of code built on it catch them without a GPU. */
static void test_deferred_copy_stream_shows_breaches(void **state)
{
    ps_backend *be = open_dev("cpu-deferred");
    ps_buf *a = NULL, *b = NULL;
    float va[2] = {1, 2}, vb[2] = {10, 20}, ha[2] = {0}, hb[2] = {0};

    (void)state;
    assert_int_equal(ps_backend_buf_alloc(be, sizeof(va), &a), PS_OK);
    assert_int_equal(ps_backend_buf_alloc(be, sizeof(vb), &b), PS_OK);

    /* Read before the fence: the staged range is NaN until it. */
    assert_int_equal(ps_backend_upload(be, a, 0, va, sizeof(va)), PS_OK);
    assert_int_equal(ps_backend_upload_ahead(be, b, 0, vb, sizeof(vb)), PS_OK);
    assert_int_equal(ps_backend_axpy(be, 2, 1.0f, b, 0, a, 0), PS_OK);
    assert_int_equal(ps_backend_copy_fence(be), PS_OK);
    assert_int_equal(ps_backend_download(be, a, 0, ha, sizeof(ha)), PS_OK);
    assert_int_equal(ps_backend_sync(be), PS_OK);
    assert_true(isnan(ha[0]) && isnan(ha[1]));

    /* The host array refilled before sync: the copy reads it at the fence. */
    assert_int_equal(ps_backend_upload_ahead(be, b, 0, vb, sizeof(vb)), PS_OK);
    vb[0] = 99;
    assert_int_equal(ps_backend_copy_fence(be), PS_OK);
    assert_int_equal(ps_backend_download(be, b, 0, hb, sizeof(hb)), PS_OK);
    assert_int_equal(ps_backend_sync(be), PS_OK);
    assert_true(hb[0] == 99.0f && hb[1] == 20.0f);

    /* A range written after its download_ahead, before sync: the download
     * runs last and brings the later value. */
    assert_int_equal(ps_backend_download_ahead(be, b, 0, hb, sizeof(hb)),
                     PS_OK);
    assert_int_equal(ps_backend_fill(be, b, 0, 2, 7.0f), PS_OK);
    assert_true(hb[0] == 99.0f); /* nothing written before sync */
    assert_int_equal(ps_backend_sync(be), PS_OK);
    assert_true(hb[0] == 7.0f && hb[1] == 7.0f);
    /* Also past a later fence: downloads have their own stream, which no
     * fence orders, so the next batch's upload never waits behind them. */
    assert_int_equal(ps_backend_download_ahead(be, b, 0, hb, sizeof(hb)),
                     PS_OK);
    assert_int_equal(ps_backend_copy_fence(be), PS_OK);
    assert_int_equal(ps_backend_fill(be, b, 0, 2, 5.0f), PS_OK);
    assert_int_equal(ps_backend_sync(be), PS_OK);
    assert_true(hb[0] == 5.0f && hb[1] == 5.0f);
    ps_backend_buf_free(be, a);
    ps_backend_buf_free(be, b);
    ps_backend_free(be);
}

static void test_deferred_host_alloc_is_nan(void **state)
{
    ps_backend *be = open_dev("cpu-deferred");
    float *h = ps_backend_host_alloc(be, 16 * sizeof(float));

    (void)state;
    assert_non_null(h);
    for (size_t i = 0; i < 16; i++)
        assert_true(isnan(h[i]));
    ps_backend_host_free(be, h);
    ps_backend_host_free(be, NULL);
    ps_backend_free(be);
}

/* ---- a model on both: bit-identical ---- */

#define IN 6
#define CLASSES 4
#define ROWS 7

typedef struct run {
    double loss[3], eval_loss;
    size_t correct[3], eval_correct;
    float grads[3][IN * 5 + 5 + 5 * CLASSES + CLASSES];
    float probs[ROWS * CLASSES];
} run;

/* Three steps of plain SGD on the host weights, then eval and predict. The
 * host arrays are rewritten right after each call returns, as the trainer
 * does, so a model that returned before its copies ran would differ.
 * `fused`: the trainer's calls, set_params_async (the weights rewritten
 * only after the step) and step_grads (one wait), instead of set_params,
 * step and get_grads. */
static void train_on(const char *device, int fused, run *r)
{
    ps_backend *be = open_dev(device);
    ps_model *m = NULL;
    char err[256] = "";
    size_t np;
    float *p, *g, x[ROWS * IN], y[ROWS];

    assert_int_equal(ps_model_new(&m, "mlp:6-5-4", IN, CLASSES, be, ROWS, err,
                                  sizeof(err)),
                     PS_OK);
    np = (size_t)ps_model_num_params(m);
    assert_int_equal(np, sizeof(r->grads[0]) / sizeof(float));
    p = ps_backend_host_alloc(be, np * sizeof(float));
    g = ps_backend_host_alloc(be, np * sizeof(float));
    assert_non_null(p);
    assert_non_null(g);
    for (size_t i = 0; i < np; i++)
        p[i] = (float)((int)(i * 37 % 23) - 11) / 20.0f;
    for (size_t s = 0; s < 3; s++) {
        for (size_t i = 0; i < ROWS * IN; i++)
            x[i] = (float)((int)((i + s) * 53 % 19) - 9) / 9.0f;
        for (size_t i = 0; i < ROWS; i++)
            y[i] = (float)((i + s) % CLASSES);
        if (fused) {
            assert_int_equal(ps_model_set_params_async(m, p), PS_OK);
            assert_int_equal(ps_model_step_grads(m, x, y, ROWS, g,
                                                 &r->loss[s], &r->correct[s]),
                             PS_OK);
            /* read at once: the gradient must be there on return */
            memcpy(r->grads[s], g, np * sizeof(float));
            memset(g, 0xff, np * sizeof(float));
            memset(p, 0xff, np * sizeof(float));
        } else {
            assert_int_equal(ps_model_set_params(m, p), PS_OK);
            memset(p, 0xff, np * sizeof(float)); /* reuse at once */
            assert_int_equal(
                ps_model_step(m, x, y, ROWS, &r->loss[s], &r->correct[s]),
                PS_OK);
        }
        memset(x, 0xff, sizeof(x));
        memset(y, 0xff, sizeof(y));
        if (!fused)
            assert_int_equal(ps_model_get_grads(m, r->grads[s]), PS_OK);
        assert_int_equal(ps_model_get_grads(m, p), PS_OK);
        for (size_t i = 0; i < np; i++) /* p = 0.1 * (-g) + old: rebuild */
            p[i] = (float)((int)(i * 37 % 23) - 11) / 20.0f - 0.1f * p[i];
    }
    for (size_t i = 0; i < ROWS * IN; i++)
        x[i] = (float)((int)(i * 29 % 17) - 8) / 8.0f;
    for (size_t i = 0; i < ROWS; i++)
        y[i] = (float)(i % CLASSES);
    assert_int_equal(ps_model_set_params(m, p), PS_OK);
    assert_int_equal(
        ps_model_eval(m, x, y, ROWS, &r->eval_loss, &r->eval_correct), PS_OK);
    assert_int_equal(ps_model_predict(m, x, ROWS, r->probs), PS_OK);
    ps_backend_host_free(be, p);
    ps_backend_host_free(be, g);
    ps_model_free(m);
    ps_backend_free(be);
}

static void same_run(const run *a, const run *b)
{
    for (size_t s = 0; s < 3; s++) {
        if (!(a->loss[s] == b->loss[s] && isfinite(a->loss[s])))
            fail_msg("step %zu: loss %.9g on cpu, %.9g deferred", s,
                     a->loss[s], b->loss[s]);
        assert_int_equal(a->correct[s], b->correct[s]);
        assert_memory_equal(a->grads[s], b->grads[s], sizeof(a->grads[s]));
    }
    assert_true(a->eval_loss == b->eval_loss && isfinite(a->eval_loss));
    assert_int_equal(a->eval_correct, b->eval_correct);
    assert_memory_equal(a->probs, b->probs, sizeof(a->probs));
}

static void test_deferred_model_matches_cpu_bitwise(void **state)
{
    run *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));

    (void)state;
    assert_non_null(a);
    assert_non_null(b);
    train_on("cpu", 0, a);
    train_on("cpu-deferred", 0, b);
    same_run(a, b);
    memset(b, 0, sizeof(*b));
    train_on("cpu-deferred", 1, b); /* the trainer's one-wait calls */
    same_run(a, b);
    memset(b, 0, sizeof(*b));
    train_on("cpu", 1, b);
    same_run(a, b);
    free(a);
    free(b);
}

/* Malformed input to the one-wait calls. */
static void test_model_fused_calls_refuse_bad_input(void **state)
{
    ps_backend *be = open_dev("cpu-deferred");
    ps_model *m = NULL;
    float x[IN] = {0}, y[1] = {5}, g[64];
    double l;
    size_t c;

    (void)state;
    assert_int_equal(ps_model_new(&m, "softmax", IN, CLASSES, be, 1, NULL, 0),
                     PS_OK);
    assert_int_equal(ps_model_set_params_async(m, NULL), PS_EINVAL);
    assert_int_equal(ps_model_step_grads(m, x, y, 1, NULL, &l, &c), PS_EINVAL);
    assert_int_equal(ps_model_step_grads(m, x, y, 1, g, &l, &c), PS_EINVAL);
    y[0] = 1;
    assert_int_equal(ps_model_step_grads(m, x, y, 2, g, &l, &c), PS_EINVAL);
    assert_int_equal(ps_model_step_grads(m, NULL, y, 1, g, &l, &c), PS_EINVAL);
    ps_model_free(m);
    ps_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deferred_parse_and_name),
        cmocka_unit_test(test_copy_stream_rules_give_in_order_results),
        cmocka_unit_test(test_deferred_copy_stream_shows_breaches),
        cmocka_unit_test(test_deferred_copies_wait_for_sync),
        cmocka_unit_test(test_deferred_fetch_stats_and_free_sync),
        cmocka_unit_test(test_deferred_error_at_sync),
        cmocka_unit_test(test_deferred_host_alloc_is_nan),
        cmocka_unit_test(test_deferred_model_matches_cpu_bitwise),
        cmocka_unit_test(test_model_fused_calls_refuse_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
