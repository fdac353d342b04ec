/* Checks a device group (worker/replicas.h) against one model on one
 * backend: shared by the CPU unit test (groups of CPU backends) and the
 * GPU test (groups of CUDA devices), so both hold the group to the same
 * contract. Include after <cmocka.h> and unit/ps_test.h.
 *
 * Tolerance: every gradient entry within 1e-5 of the single model's,
 * relative to the gradient's largest entry (max-norm): the group adds the
 * replicas' partial sums in another order, and an entry whose row terms
 * nearly cancel (a bias gradient of 3e-3 from terms of 0.3) keeps only the
 * terms' precision, so per-entry relative error reaches 1e-5 there; a wrong
 * weight or a missing replica is off by the entries' own size. Loss and
 * probabilities within 1e-5 relative; correct counts equal. The GPU
 * test passes a looser tolerance (cuBLAS against OpenBLAS). */
#ifndef PS_REPLICAS_CHECK_H
#define PS_REPLICAS_CHECK_H

#include "worker/backend.h"
#include "worker/comm.h"
#include "worker/model.h"
#include "worker/replicas.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define RC_TOL 1e-5 /* on the CPU */

static uint64_t rc_rng = 0x9e3779b97f4a7c15ULL;

/* Uniform in [-1, 1). */
static inline float rc_rand(void)
{
    rc_rng ^= rc_rng << 13;
    rc_rng ^= rc_rng >> 7;
    rc_rng ^= rc_rng << 17;
    return (float)((double)(rc_rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static inline float *rc_floats(size_t n, float scale)
{
    float *p = malloc(n * sizeof(float));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = scale * rc_rand();
    return p;
}

static inline void rc_check_grads(const float *got, const float *want,
                                  size_t n, double tol)
{
    double top = 0;
    for (size_t i = 0; i < n; i++)
        top = fmax(top, fabs(want[i]));
    for (size_t i = 0; i < n; i++) {
        if (!(fabs(got[i] - want[i]) <= tol * top)) {
            print_error("gradient %zu: got %.9g, want %.9g\n", i,
                        (double)got[i], (double)want[i]);
            fail();
        }
    }
}

/* Steps group g and model one (same spec, max_batch >= n) on the same n
 * rows with the same weights; compares loss, correct count, gradient
 * (one-call and pipelined steps), eval and predict within tol (RC_TOL on
 * the CPU). */
static inline void rc_compare(ps_replicas *g, ps_model *one, size_t n,
                              double tol)
{
    const ps_model *m = ps_replicas_model(g);
    size_t dim = ps_model_input_dim(m), classes = ps_model_classes(m);
    size_t np = (size_t)ps_model_num_params(m);
    float *params = rc_floats(np, 0.3f), *x = rc_floats(n * dim, 1.0f);
    float *y = malloc(n * sizeof(float)), *g1 = malloc(np * sizeof(float));
    float *g2 = malloc(np * sizeof(float));
    float *p1 = malloc(n * classes * sizeof(float));
    float *p2 = malloc(n * classes * sizeof(float));
    double l1 = 0, l2 = 0;
    size_t c1 = 0, c2 = 0;

    assert_true(y && g1 && g2 && p1 && p2);
    for (size_t i = 0; i < n; i++)
        y[i] = (float)(i * 7 % classes);
    assert_int_equal(ps_model_set_params(one, params), PS_OK);
    assert_int_equal(ps_replicas_set_params(g, params), PS_OK);
    /* No step since set_params: there is no gradient to hand out. */
    assert_int_equal(ps_replicas_get_grads(g, g2), PS_EINVAL);

    assert_int_equal(ps_model_step(one, x, y, n, &l1, &c1), PS_OK);
    assert_int_equal(ps_model_get_grads(one, g1), PS_OK);
    assert_int_equal(ps_replicas_step(g, x, y, n, &l2, &c2), PS_OK);
    assert_int_equal(ps_replicas_get_grads(g, g2), PS_OK);
    assert_near(l2, l1, tol);
    assert_int_equal(c2, c1);
    rc_check_grads(g2, g1, np, tol);
    /* A second download hands out the same sum (not summed again). */
    assert_int_equal(ps_replicas_get_grads(g, g2), PS_OK);
    rc_check_grads(g2, g1, np, tol);
    /* The pipelined calls give the same step, here through input slot 1:
     * the sum fetched after step_end, then coming down behind the step
     * into a buffer that holds NaN until then. */
    assert_int_equal(ps_replicas_stage(g, 1, x, y, n), PS_OK);
    assert_int_equal(ps_replicas_step_begin(g, 1, NULL), PS_OK);
    assert_int_equal(ps_replicas_step_end(g, &l2, &c2), PS_OK);
    assert_int_equal(ps_replicas_get_grads(g, g2), PS_OK);
    assert_near(l2, l1, tol);
    assert_int_equal(c2, c1);
    rc_check_grads(g2, g1, np, tol);
    for (size_t i = 0; i < np; i++)
        g2[i] = NAN;
    assert_int_equal(ps_replicas_stage(g, 1, x, y, n), PS_OK);
    assert_int_equal(ps_replicas_step_begin(g, 1, g2), PS_OK);
    assert_int_equal(ps_replicas_step_end(g, &l2, &c2), PS_OK);
    assert_near(l2, l1, tol);
    assert_int_equal(c2, c1);
    rc_check_grads(g2, g1, np, tol);
    /* ... and get_grads hands out that sum again, not a second one, also
     * after a step_end with no step begun. */
    assert_int_equal(ps_replicas_get_grads(g, g2), PS_OK);
    rc_check_grads(g2, g1, np, tol);
    assert_int_equal(ps_replicas_step_end(g, &l2, &c2), PS_EINVAL);
    assert_int_equal(ps_replicas_get_grads(g, g2), PS_OK);
    rc_check_grads(g2, g1, np, tol);

    assert_int_equal(ps_model_eval(one, x, y, n, &l1, &c1), PS_OK);
    assert_int_equal(ps_replicas_eval(g, x, y, n, &l2, &c2), PS_OK);
    assert_near(l2, l1, tol);
    assert_int_equal(c2, c1);
    assert_int_equal(ps_model_predict(one, x, n, p1), PS_OK);
    assert_int_equal(ps_replicas_predict(g, x, n, p2), PS_OK);
    for (size_t i = 0; i < n * classes; i++)
        assert_true(fabs(p2[i] - p1[i]) <= tol * fmax(p1[i], 1e-3));

    /* The weights reached every replica: each predicts what one does. */
    for (size_t r = 0; r < ps_replicas_count(g); r++) {
        assert_int_equal(ps_model_predict(ps_replicas_at(g, r), x, 1, p2),
                         PS_OK);
        for (size_t k = 0; k < classes; k++)
            assert_true(fabs(p2[k] - p1[k]) <= tol * fmax(p1[k], 1e-3));
    }
    free(params);
    free(x);
    free(y);
    free(g1);
    free(g2);
    free(p1);
    free(p2);
}

/* A communicator over bes[0..n-1] (n <= 3) of the expected kind sums and
 * broadcasts exactly (small integers), and refuses bad counts. */
static inline void rc_check_comm(ps_backend *const *bes, size_t n,
                                 const char *kind)
{
    ps_comm *c = NULL;
    ps_buf *bufs[3];
    float v[3][4] = {{1, 2, 3, 4}, {10, 20, 30, 40}, {100, 200, 300, 400}};
    float got[4], want[4] = {0, 0, 0, 0};
    char err[256] = "";

    if (ps_comm_new(bes, n, 4, &c, err, sizeof(err)) != PS_OK)
        print_error("ps_comm_new: %s\n", err);
    assert_non_null(c);
    assert_string_equal(ps_comm_kind(c), kind);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ps_backend_buf_alloc(bes[i], sizeof(v[i]), &bufs[i]),
                         PS_OK);
        assert_int_equal(
            ps_backend_upload(bes[i], bufs[i], 0, v[i], sizeof(v[i])), PS_OK);
        assert_int_equal(ps_backend_sync(bes[i]), PS_OK);
        for (size_t k = 0; k < 4; k++)
            want[k] += v[i][k];
    }
    assert_int_equal(ps_comm_reduce_sum(c, bufs, 4), PS_OK);
    assert_int_equal(ps_comm_broadcast(c, bufs, 4), PS_OK);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(
            ps_backend_download(bes[i], bufs[i], 0, got, sizeof(got)), PS_OK);
        assert_int_equal(ps_backend_sync(bes[i]), PS_OK);
        for (size_t k = 0; k < 4; k++)
            assert_true(got[k] == want[k]);
    }
    /* counts outside 1..max, a missing buffer */
    assert_int_equal(ps_comm_reduce_sum(c, bufs, 5), PS_EINVAL);
    assert_int_equal(ps_comm_broadcast(c, bufs, 0), PS_EINVAL);
    ps_buf *keep = bufs[n - 1];
    bufs[n - 1] = NULL;
    assert_int_equal(ps_comm_reduce_sum(c, bufs, 4), PS_ERANGE);
    bufs[n - 1] = keep;
    for (size_t i = 0; i < n; i++)
        ps_backend_buf_free(bes[i], bufs[i]);
    ps_comm_free(c);
}

#endif
