/* Unit tests for worker/model.c on the CPU backend: table layout, spec
 * errors, analytic gradients against central finite differences of the
 * evaluated loss, predicted probabilities, plain SGD fitting a small
 * separable problem, and pipelined steps (staging the next batch into the
 * other input slot) matching one-call steps bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "unit/ps_test.h"
#include "worker/backend.h"
#include "worker/model.h"
#include "worker/sparkps.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state;
/* The device under test: argv[1] ("cpu" by default; ctest also runs the
 * file on "cpu-deferred", where every copy waits for sync). */
static const char *device = "cpu";

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

    rng_state = 0x2545f4914f6cdd1dULL;
    if (ps_backend_open(device, &be, NULL, 0) != PS_OK)
        return -1;
    *state = be;
    return 0;
}

static int teardown(void **state)
{
    ps_backend_free(*state);
    return 0;
}

static ps_model *new_model(ps_backend *be, const char *spec, size_t in,
                           size_t classes, size_t max_batch)
{
    ps_model *m = NULL;
    char err[256] = "";
    int rc =
        ps_model_new(&m, spec, in, classes, be, max_batch, err, sizeof(err));

    if (rc != PS_OK)
        print_error("ps_model_new(%s): %s\n", spec, err);
    assert_int_equal(rc, PS_OK);
    return m;
}

/* Random weights of the Xavier scale and small non-zero biases, so the
 * gradient check sees every term. */
static float *random_params(const ps_model *m)
{
    float *p = malloc(ps_model_num_params(m) * sizeof(float));

    assert_non_null(p);
    for (size_t t = 0; t < ps_model_num_tables(m); t++) {
        const ps_model_table *tb = ps_model_table_at(m, t);
        double r =
            tb->rows > 1 ? sqrt(6.0 / (double)(tb->rows + tb->cols)) : 0.3;
        for (uint64_t i = 0; i < tb->len; i++)
            p[tb->offset + i] = (float)(r * urand());
    }
    return p;
}

/* ---- layout and specs ---- */

static void check_table(const ps_model *m, size_t i, const char *name,
                        uint64_t offset, uint64_t rows, uint64_t cols,
                        int init_kind)
{
    const ps_model_table *t = ps_model_table_at(m, i);

    assert_non_null(t);
    assert_string_equal(t->name, name);
    assert_int_equal(t->offset, offset);
    assert_int_equal(t->rows, rows);
    assert_int_equal(t->cols, cols);
    assert_int_equal(t->len, rows * cols);
    assert_int_equal(t->init_kind, init_kind);
}

static void test_model_new_softmax_tables(void **state)
{
    ps_model *m = new_model(*state, "softmax", 5, 3, 4);

    assert_int_equal(ps_model_num_tables(m), 2);
    check_table(m, 0, "fc1.weight", 0, 5, 3, PS_INIT_XAVIER);
    check_table(m, 1, "fc1.bias", 15, 1, 3, PS_INIT_ZEROS);
    assert_null(ps_model_table_at(m, 2));
    assert_int_equal(ps_model_num_params(m), 18);
    assert_int_equal(ps_model_input_dim(m), 5);
    assert_int_equal(ps_model_classes(m), 3);
    ps_model_free(m);
    ps_model_free(NULL);
}

static void test_model_new_mlp_tables(void **state)
{
    /* classes 0: from the spec. */
    ps_model *m = new_model(*state, "mlp:5-7-4-3", 5, 0, 4);

    assert_int_equal(ps_model_num_tables(m), 6);
    check_table(m, 0, "fc1.weight", 0, 5, 7, PS_INIT_HE);
    check_table(m, 1, "fc1.bias", 35, 1, 7, PS_INIT_ZEROS);
    check_table(m, 2, "fc2.weight", 42, 7, 4, PS_INIT_HE);
    check_table(m, 3, "fc2.bias", 70, 1, 4, PS_INIT_ZEROS);
    check_table(m, 4, "fc3.weight", 74, 4, 3, PS_INIT_XAVIER);
    check_table(m, 5, "fc3.bias", 86, 1, 3, PS_INIT_ZEROS);
    assert_int_equal(ps_model_num_params(m), 89);
    assert_int_equal(ps_model_classes(m), 3);
    ps_model_free(m);
}

static void test_model_new_bad_spec_einval(void **state)
{
    static const struct {
        const char *spec;
        size_t in, classes, max_batch;
        const char *says; /* part of the message */
    } bad[] = {
        {"mlp:", 784, 10, 8, "mlp:"},
        {"mlp:784-x-10", 784, 10, 8, "mlp:784-x-10"},
        {"mlp:10", 10, 10, 8, "two widths"},
        {"mlp:784-256-10", 780, 10, 8, "first width 784"},
        {"mlp:784-256-10", 784, 5, 8, "last width 10"},
        {"cnn", 784, 10, 8, "unknown model spec \"cnn\""},
        {"mlp:784-0-10", 784, 10, 8, "width 0"},
        {"mlp:784--10", 784, 10, 8, "mlp:784--10"},
        {"mlp:784-10-", 784, 10, 8, "mlp:784-10-"},
        {"mlp:784-10x", 784, 10, 8, "'x'"},
        {"mlp:784-99999999999999999999-10", 784, 10, 8, "width"},
        {"mlp:2-2-2-2-2-2-2-2-2-2-2-2-2-2-2-2-2-2", 2, 2, 8, "layers"},
        {"softmax", 784, 0, 8, "classes"},
        {"softmax", 0, 10, 8, "input_dim"},
        {"softmax", 784, 10, 0, "max_batch"},
        {"", 784, 10, 8, "unknown"},
    };
    ps_model *sentinel = (ps_model *)&rng_state, *m = sentinel;
    char err[256];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        assert_int_equal(ps_model_new(&m, bad[i].spec, bad[i].in,
                                      bad[i].classes, *state, bad[i].max_batch,
                                      err, sizeof(err)),
                         PS_EINVAL);
        assert_ptr_equal(m, sentinel);
        if (strstr(err, bad[i].says) == NULL)
            fail_msg("spec \"%s\": message \"%s\" lacks \"%s\"", bad[i].spec,
                     err, bad[i].says);
    }
    assert_int_equal(ps_model_new(&m, NULL, 5, 3, *state, 8, NULL, 0),
                     PS_EINVAL);
}

static void test_model_step_bad_input_einval(void **state)
{
    ps_model *m = new_model(*state, "softmax", 2, 3, 2);
    float *p = random_params(m), x[6] = {0}, y[3] = {0, 1, 2}, g[9];
    double loss;
    size_t correct;

    assert_int_equal(ps_model_get_grads(m, g), PS_EINVAL); /* no step yet */
    assert_int_equal(ps_model_set_params(m, p), PS_OK);
    assert_int_equal(ps_model_step(m, x, y, 3, &loss, &correct), PS_EINVAL);
    assert_int_equal(ps_model_step(m, x, y, 0, &loss, &correct), PS_EINVAL);
    y[1] = 3.0f; /* == classes */
    assert_int_equal(ps_model_step(m, x, y, 2, &loss, &correct), PS_EINVAL);
    y[1] = 0.5f;
    assert_int_equal(ps_model_eval(m, x, y, 2, &loss, &correct), PS_EINVAL);
    y[1] = -1.0f;
    assert_int_equal(ps_model_step(m, x, y, 2, &loss, &correct), PS_EINVAL);
    assert_int_equal(ps_model_get_grads(m, g), PS_EINVAL);
    y[1] = NAN;
    assert_int_equal(ps_model_step(m, x, y, 2, &loss, &correct), PS_EINVAL);
    y[1] = 1.0f;
    assert_int_equal(ps_model_step(m, x, y, 2, &loss, &correct), PS_OK);
    assert_int_equal(ps_model_get_grads(m, g), PS_OK);
    assert_int_equal(ps_model_predict(m, x, 3, g), PS_EINVAL);
    free(p);
    ps_model_free(m);
}

/* ---- pipelined steps (input slots) ---- */

enum { PIPE_STEPS = 5, PIPE_IN = 6, PIPE_CLASSES = 3, PIPE_BATCH = 4 };

/* Batch i of the pipeline tests: sizes vary, the last one short. */
static size_t pipe_batch(size_t i, float *x, float *y)
{
    static const size_t rows[PIPE_STEPS] = {4, 3, 4, 2, 1};
    for (size_t r = 0; r < rows[i]; r++) {
        for (size_t j = 0; j < PIPE_IN; j++)
            x[r * PIPE_IN + j] = (float)urand();
        y[r] = (float)((r + i) % PIPE_CLASSES);
    }
    return rows[i];
}

/* Staging the next batch while a step computes, the gradient coming down
 * during the step, gives bit for bit what one-call steps give, step after
 * step with the weights moving between them. */
static void test_model_staged_pipeline_matches_one_call_steps(void **state)
{
    const char *spec = "mlp:6-5-4-3";
    ps_model *a = new_model(*state, spec, PIPE_IN, PIPE_CLASSES, PIPE_BATCH);
    ps_model *b = new_model(*state, spec, PIPE_IN, PIPE_CLASSES, PIPE_BATCH);
    size_t np = (size_t)ps_model_num_params(a);
    float *p = random_params(a), *ga = malloc(np * sizeof(float)),
          *gb = malloc(np * sizeof(float));
    float x[PIPE_STEPS][PIPE_BATCH * PIPE_IN], y[PIPE_STEPS][PIPE_BATCH];
    size_t n[PIPE_STEPS];

    assert_non_null(ga);
    assert_non_null(gb);
    for (size_t i = 0; i < PIPE_STEPS; i++)
        n[i] = pipe_batch(i, x[i], y[i]);
    assert_int_equal(ps_model_set_params(a, p), PS_OK);
    assert_int_equal(ps_model_set_params(b, p), PS_OK);
    assert_int_equal(ps_model_stage(b, 0, x[0], y[0], n[0]), PS_OK);
    for (size_t i = 0; i < PIPE_STEPS; i++) {
        int slot = (int)(i % 2);
        double la, lb;
        size_t ca, cb;

        assert_int_equal(ps_model_step_grads(a, x[i], y[i], n[i], ga, &la, &ca),
                         PS_OK);
        assert_int_equal(ps_model_step_staged_begin(b, slot, gb), PS_OK);
        if (i + 1 < PIPE_STEPS)
            assert_int_equal(
                ps_model_stage(b, 1 - slot, x[i + 1], y[i + 1], n[i + 1]),
                PS_OK);
        assert_int_equal(ps_model_step_end(b, &lb, &cb), PS_OK);
        assert_true(la == lb);
        assert_int_equal(ca, cb);
        assert_memory_equal(ga, gb, np * sizeof(float));
        for (size_t k = 0; k < np; k++)
            p[k] -= 0.5f * ga[k];
        assert_int_equal(ps_model_set_params(a, p), PS_OK);
        assert_int_equal(ps_model_set_params(b, p), PS_OK);
    }
    free(p);
    free(ga);
    free(gb);
    ps_model_free(a);
    ps_model_free(b);
}

/* A slot holds one staged batch and is not restaged while a step on it
 * runs; the one-call forms keep off a staged slot 0; bad batches are
 * refused at staging. Refusals lose nothing already staged. */
static void test_model_stage_refusals(void **state)
{
    ps_model *m = new_model(*state, "softmax", PIPE_IN, PIPE_CLASSES, 4);
    float *p = random_params(m), x[2][4 * PIPE_IN], y[2][4], g[64];
    double loss, want_loss;
    size_t correct, n0 = pipe_batch(0, x[0], y[0]);

    (void)pipe_batch(1, x[1], y[1]);
    assert_true(ps_model_num_params(m) <= 64);
    assert_int_equal(ps_model_set_params(m, p), PS_OK);
    assert_int_equal(
        ps_model_step_grads(m, x[0], y[0], n0, g, &want_loss, &correct), PS_OK);
    assert_int_equal(ps_model_stage(m, 2, x[0], y[0], n0), PS_EINVAL);
    assert_int_equal(ps_model_stage(m, -1, x[0], y[0], n0), PS_EINVAL);
    assert_int_equal(ps_model_stage(m, 0, x[0], NULL, n0), PS_EINVAL);
    assert_int_equal(ps_model_stage(m, 0, x[0], y[0], 5), PS_EINVAL);
    assert_int_equal(ps_model_stage(m, 0, x[0], y[0], 0), PS_EINVAL);
    y[1][0] = 3.0f; /* == classes */
    assert_int_equal(ps_model_stage(m, 1, x[1], y[1], 2), PS_EINVAL);
    y[1][0] = 1.0f;
    assert_int_equal(ps_model_step_staged_begin(m, 0, g), PS_EINVAL);
    assert_int_equal(ps_model_step_staged_begin(m, 3, g), PS_EINVAL);

    assert_int_equal(ps_model_stage(m, 0, x[0], y[0], n0), PS_OK);
    assert_int_equal(ps_model_stage(m, 0, x[1], y[1], 2), PS_EINVAL);
    assert_int_equal(ps_model_eval(m, x[1], y[1], 2, &loss, &correct),
                     PS_EINVAL);
    assert_int_equal(ps_model_step(m, x[1], y[1], 2, &loss, &correct),
                     PS_EINVAL);
    assert_int_equal(ps_model_step_staged_begin(m, 0, NULL), PS_OK);
    assert_int_equal(ps_model_stage(m, 0, x[1], y[1], 2), PS_EINVAL); /* busy */
    assert_int_equal(ps_model_stage(m, 1, x[1], y[1], 2), PS_OK);
    assert_int_equal(ps_model_step_end(m, &loss, &correct), PS_OK);
    assert_true(loss == want_loss); /* the batch staged first */
    assert_int_equal(ps_model_step_staged_begin(m, 1, NULL), PS_OK);
    assert_int_equal(ps_model_step_end(m, &loss, &correct), PS_OK);
    assert_int_equal(ps_model_eval(m, x[0], y[0], n0, &loss, &correct), PS_OK);
    assert_true(loss == want_loss);
    free(p);
    ps_model_free(m);
}

/* ---- gradients ---- */

/* ReLU pre-activations of the hidden layers for params p, in double; the
 * smallest |z| over the batch (HUGE_VAL for softmax). A finite difference
 * is only meaningful away from the kinks. */
static double min_abs_preact(const ps_model *m, const float *p, const float *x,
                             size_t n)
{
    size_t nl = ps_model_num_tables(m) / 2;
    double best = HUGE_VAL, a[64], z[64];

    for (size_t r = 0; r < n; r++) {
        size_t in = ps_model_input_dim(m);
        for (size_t i = 0; i < in; i++)
            a[i] = x[r * in + i];
        for (size_t l = 0; l + 1 < nl; l++) {
            const ps_model_table *w = ps_model_table_at(m, 2 * l);
            const ps_model_table *b = ps_model_table_at(m, 2 * l + 1);
            for (size_t j = 0; j < w->cols; j++) {
                z[j] = p[b->offset + j];
                for (size_t i = 0; i < w->rows; i++)
                    z[j] += a[i] * p[w->offset + i * w->cols + j];
                best = fmin(best, fabs(z[j]));
            }
            for (size_t j = 0; j < w->cols; j++)
                a[j] = z[j] > 0.0 ? z[j] : 0.0;
        }
    }
    return best;
}

static void gradcheck(ps_backend *be, const char *spec, size_t in,
                      size_t classes)
{
    enum { N = 8 };
    const double eps = 1e-2;
    ps_model *m = new_model(be, spec, in, classes, N);
    size_t np = ps_model_num_params(m), correct, correct2;
    float *p = NULL, *g = malloc(np * sizeof(float));
    float x[N * 16], y[N];
    double loss, loss2, worst = 0.0;
    int tries = 0;

    assert_true(in <= 16);
    /* Draw until no hidden unit sits within reach of its kink: moving one
     * parameter by eps moves a pre-activation by at most ~3 eps here. */
    do {
        free(p);
        p = random_params(m);
        for (size_t i = 0; i < N * in; i++)
            x[i] = (float)urand();
        assert_true(++tries < 100000);
    } while (min_abs_preact(m, p, x, N) < 3.0 * eps);
    for (size_t i = 0; i < N; i++)
        y[i] = (float)(i % classes);

    assert_int_equal(ps_model_set_params(m, p), PS_OK);
    assert_int_equal(ps_model_step(m, x, y, N, &loss, &correct), PS_OK);
    assert_int_equal(ps_model_get_grads(m, g), PS_OK);
    assert_int_equal(ps_model_eval(m, x, y, N, &loss2, &correct2), PS_OK);
    assert_near(loss2, loss, 1e-6);
    assert_int_equal(correct2, correct);
    assert_true(loss > 0.0 && correct <= N);

    for (size_t i = 0; i < np; i++) {
        float saved = p[i];
        double lp, lm, num, den, rel;

        p[i] = (float)(saved + eps);
        assert_int_equal(ps_model_set_params(m, p), PS_OK);
        assert_int_equal(ps_model_eval(m, x, y, N, &lp, NULL), PS_OK);
        p[i] = (float)(saved - eps);
        assert_int_equal(ps_model_set_params(m, p), PS_OK);
        assert_int_equal(ps_model_eval(m, x, y, N, &lm, NULL), PS_OK);
        p[i] = saved;
        /* The step actually taken, as float rounded it. */
        num = (lp - lm) /
              ((double)(float)(saved + eps) - (double)(float)(saved - eps));
        /* Relative error, with a floor so gradients near zero are judged
         * against the float noise of the loss (~1e-7 / eps). */
        den = fmax(fmax(fabs(num), fabs((double)g[i])), 1e-2);
        rel = fabs(num - (double)g[i]) / den;
        if (rel >= 1e-2)
            fail_msg("%s param %zu: analytic %.7g numeric %.7g rel %.3g", spec,
                     i, (double)g[i], num, rel);
        worst = fmax(worst, rel);
    }
    print_message("%s: %zu params, worst relative error %.2e (%d draws)\n",
                  spec, np, worst, tries);
    free(p);
    free(g);
    ps_model_free(m);
}

static void test_model_grads_softmax_match_finite_differences(void **state)
{
    gradcheck(*state, "softmax", 6, 4);
}

static void test_model_grads_mlp_match_finite_differences(void **state)
{
    gradcheck(*state, "mlp:5-7-4-3", 5, 3);
}

/* ---- predict and training ---- */

static void test_model_predict_probabilities_sum_to_one(void **state)
{
    static const char *specs[] = {"softmax", "mlp:4-6-5"};

    for (size_t s = 0; s < 2; s++) {
        ps_model *m = new_model(*state, specs[s], 4, 5, 3);
        float *p = random_params(m), x[12], probs[15];

        for (size_t i = 0; i < 12; i++)
            x[i] = (float)(10.0 * urand()); /* large logits too */
        assert_int_equal(ps_model_set_params(m, p), PS_OK);
        assert_int_equal(ps_model_predict(m, x, 3, probs), PS_OK);
        for (size_t r = 0; r < 3; r++) {
            double sum = 0.0;
            for (size_t c = 0; c < 5; c++) {
                assert_true(probs[r * 5 + c] >= 0.0f &&
                            probs[r * 5 + c] <= 1.0f);
                sum += probs[r * 5 + c];
            }
            assert_near(sum, 1.0, 1e-5);
        }
        free(p);
        ps_model_free(m);
    }
}

/* Four well separated clusters in 3-D; plain SGD on the full batch. */
static void fit_separable(ps_backend *be, const char *spec)
{
    enum { N = 32, D = 3, C = 4 };
    static const float centers[C][D] = {
        {2, 0, 0}, {-2, 0, 0}, {0, 2, 0}, {0, -2, 1}};
    ps_model *m = new_model(be, spec, D, C, N);
    size_t np = ps_model_num_params(m), correct = 0;
    float *p = random_params(m), *g = malloc(np * sizeof(float));
    float x[N * D], y[N];
    double loss = 0.0, first = 0.0;
    int step;

    for (size_t i = 0; i < N; i++) {
        y[i] = (float)(i % C);
        for (size_t d = 0; d < D; d++)
            x[i * D + d] = centers[i % C][d] + (float)(0.3 * urand());
    }
    for (step = 0; step < 200; step++) {
        assert_int_equal(ps_model_set_params(m, p), PS_OK);
        assert_int_equal(ps_model_step(m, x, y, N, &loss, &correct), PS_OK);
        if (step == 0)
            first = loss;
        if (correct == N)
            break;
        assert_int_equal(ps_model_get_grads(m, g), PS_OK);
        for (size_t i = 0; i < np; i++)
            p[i] -= 0.5f * g[i];
    }
    print_message("%s: 100%% after %d steps, loss %.3f -> %.3f\n", spec, step,
                  first, loss);
    assert_int_equal(correct, N);
    assert_true(step < 200);
    assert_int_equal(ps_model_eval(m, x, y, N, &loss, &correct), PS_OK);
    assert_int_equal(correct, N);
    free(p);
    free(g);
    ps_model_free(m);
}

static void test_model_sgd_softmax_fits_separable(void **state)
{
    fit_separable(*state, "softmax");
}

static void test_model_sgd_mlp_fits_separable(void **state)
{
    fit_separable(*state, "mlp:3-16-8-4");
}

int main(int argc, char **argv)
{
    if (argc > 1)
        device = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_model_new_softmax_tables, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_model_new_mlp_tables, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_model_new_bad_spec_einval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_model_step_bad_input_einval, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_model_staged_pipeline_matches_one_call_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_stage_refusals, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_model_grads_softmax_match_finite_differences, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_model_grads_mlp_match_finite_differences, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_model_predict_probabilities_sum_to_one, setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_sgd_softmax_fits_separable,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_model_sgd_mlp_fits_separable,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
