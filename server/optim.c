/* Server-side optimizer update rules; see optim.h for the rules and the
 * state layout.
 *
 * This is the server's hot path. ps_optim_apply walks the parameters in
 * chunks of CHUNK floats; per chunk it (1) clips the gradient and adds the
 * coupled weight decay into a stack buffer, only when those options are on,
 * (2) runs one branch-free loop for the rule, (3) copies the chunk's new
 * weights to `out` while they are still in L1. Rule loops are written once
 * as static inline "span" functions over restrict pointers and called on
 * BLOCK-sized pieces plus a tail: a constant trip count is what lets GCC
 * vectorise them at -O2, whose cost model refuses loops that would need a
 * scalar epilogue.
 *
 * Callers guarantee that g and out overlap neither w nor state (out may be
 * g itself: a chunk of g is consumed before that chunk of out is written), and
 * that n <= stride when there is state. Pure computation, no allocation,
 * thread-safe on disjoint data. */
#include "server/optim.h"

#include "common/sparkps_err.h"

#include <assert.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BLOCK 16  /* floats per vectorised piece */
#define CHUNK 512 /* floats per pass; a multiple of BLOCK, fits in L1 */

#define ADAM_BETA1 0.9f
#define ADAM_BETA2 0.999f
#define ADAM_EPS 1e-8f
#define ADAGRAD_EPS 1e-10f
#define ADAGRAD_ACC 0.1f /* TensorFlow's default initial accumulator */
#define FTRL_BETA 1.0f   /* McMahan et al. 2013 */

typedef struct adam_params {
    float lr, b1, b2, eps;
    float lrwd; /* lr * weight_decay: decoupled decay, 0 when off */
} adam_params;

/* ---- rule spans: one loop each, no branches on the configuration ---- */

static inline void clip_span(float *restrict dst, const float *restrict g,
                             size_t n, float clip)
{
    for (size_t i = 0; i < n; i++) {
        float x = g[i];
        x = x < -clip ? -clip : x;
        dst[i] = x > clip ? clip : x;
    }
}

static inline void decay_span(float *restrict dst, const float *restrict w,
                              size_t n, float wd)
{
    for (size_t i = 0; i < n; i++)
        dst[i] += wd * w[i];
}

static inline void sgd_span(float *restrict w, const float *restrict g,
                            size_t n, float lr)
{
    for (size_t i = 0; i < n; i++)
        w[i] -= lr * g[i];
}

static inline void momentum_span(float *restrict w, float *restrict v,
                                 const float *restrict g, size_t n, float lr,
                                 float mom)
{
    for (size_t i = 0; i < n; i++) {
        float vi = mom * v[i] + g[i];
        v[i] = vi;
        w[i] -= lr * vi;
    }
}

static inline void adagrad_span(float *restrict w, float *restrict a,
                                const float *restrict g, size_t n, float lr,
                                float eps)
{
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float ai = a[i] + gi * gi;
        a[i] = ai;
        w[i] -= lr * gi / (sqrtf(ai) + eps);
    }
}

/* Parameters all at step count t (after this step), with the bias
 * corrections' inverses computed once by the caller. */
static inline void adam_span(const adam_params *p, float *restrict w,
                             float *restrict m, float *restrict v,
                             float *restrict ts, const float *restrict g,
                             size_t n, float t, float inv_bc1, float inv_bc2)
{
    const float lr = p->lr, b1 = p->b1, b2 = p->b2, eps = p->eps;
    const float lrwd = p->lrwd;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        ts[i] = t;
        float wi = w[i];
        wi -= lrwd * wi;
        w[i] = wi - lr * (mi * inv_bc1) / (sqrtf(vi * inv_bc2) + eps);
    }
}

static inline void ftrl_span(const ps_optim_cfg *c, float *restrict w,
                             float *restrict z, float *restrict nacc,
                             const float *restrict g, size_t n)
{
    const float alpha = c->lr, l1 = c->l1, l2 = c->l2, beta = c->ftrl_beta;
    for (size_t i = 0; i < n; i++) {
        float gi = g[i];
        float ni = nacc[i];
        float nn = ni + gi * gi;
        float sqrt_nn = sqrtf(nn);
        float sigma = (sqrt_nn - sqrtf(ni)) / alpha;
        float zi = z[i] + gi - sigma * w[i];
        z[i] = zi;
        nacc[i] = nn;
        w[i] = fabsf(zi) <= l1 ? 0.0f
                               : -(zi - copysignf(l1, zi)) /
                                     ((beta + sqrt_nn) / alpha + l2);
    }
}

/* ---- per-chunk drivers: BLOCK-sized calls give constant trip counts ---- */

static void prep_grad(const ps_optim_cfg *c, float *restrict dst,
                      const float *restrict g, const float *restrict w,
                      size_t n)
{
    size_t i = 0;
    if (c->clip > 0) {
        for (; i + BLOCK <= n; i += BLOCK)
            clip_span(dst + i, g + i, BLOCK, c->clip);
        clip_span(dst + i, g + i, n - i, c->clip);
    } else {
        memcpy(dst, g, n * sizeof(float));
    }
    /* Adam's decay is decoupled (AdamW) and happens in adam_span. */
    if (c->weight_decay > 0 && c->kind != PS_OPTIM_ADAM) {
        for (i = 0; i + BLOCK <= n; i += BLOCK)
            decay_span(dst + i, w + i, BLOCK, c->weight_decay);
        decay_span(dst + i, w + i, n - i, c->weight_decay);
    }
}

static void adam_chunk(const adam_params *p, float *w, float *state,
                       size_t stride, const float *g, size_t n)
{
    float *m = state, *v = state + stride, *ts = state + 2 * stride;
    size_t i = 0;
    /* A dense table's parameters usually share one step count, so walk runs
     * of equal counts and pay for pow() once per run. */
    while (i < n) {
        size_t j = i + 1;
        while (j < n && ts[j] == ts[i])
            j++;
        /* A float counts exactly to 2^24 steps; past that t stops growing,
         * which is harmless: the bias corrections are 1 long before. */
        float t = ts[i] + 1.0f;
        float inv_bc1 = (float)(1.0 / (1.0 - pow(p->b1, t)));
        float inv_bc2 = (float)(1.0 / (1.0 - pow(p->b2, t)));
        for (; i + BLOCK <= j; i += BLOCK)
            adam_span(p, w + i, m + i, v + i, ts + i, g + i, BLOCK, t, inv_bc1,
                      inv_bc2);
        adam_span(p, w + i, m + i, v + i, ts + i, g + i, j - i, t, inv_bc1,
                  inv_bc2);
        i = j;
    }
}

static void apply_chunk(const ps_optim_cfg *c, const adam_params *ap, float *w,
                        float *state, size_t stride, const float *g, size_t n)
{
    size_t i = 0;
    switch (c->kind) {
    case PS_OPTIM_SGD:
        if (c->momentum == 0) {
            for (; i + BLOCK <= n; i += BLOCK)
                sgd_span(w + i, g + i, BLOCK, c->lr);
            sgd_span(w + i, g + i, n - i, c->lr);
        } else {
            for (; i + BLOCK <= n; i += BLOCK)
                momentum_span(w + i, state + i, g + i, BLOCK, c->lr,
                              c->momentum);
            momentum_span(w + i, state + i, g + i, n - i, c->lr, c->momentum);
        }
        break;
    case PS_OPTIM_ADAGRAD:
        for (; i + BLOCK <= n; i += BLOCK)
            adagrad_span(w + i, state + i, g + i, BLOCK, c->lr, c->eps);
        adagrad_span(w + i, state + i, g + i, n - i, c->lr, c->eps);
        break;
    case PS_OPTIM_ADAM:
        adam_chunk(ap, w, state, stride, g, n);
        break;
    case PS_OPTIM_FTRL:
        for (; i + BLOCK <= n; i += BLOCK)
            ftrl_span(c, w + i, state + i, state + stride + i, g + i, BLOCK);
        ftrl_span(c, w + i, state + i, state + stride + i, g + i, n - i);
        break;
    default:
        assert(!"optimizer kind not checked");
    }
}

/* ---- public functions ---- */

void ps_optim_fill_defaults(ps_optim_cfg *c)
{
    switch (c->kind) {
    case PS_OPTIM_ADAGRAD:
        if (c->eps == 0)
            c->eps = ADAGRAD_EPS;
        if (c->initial_accumulator == 0)
            c->initial_accumulator = ADAGRAD_ACC;
        break;
    case PS_OPTIM_ADAM:
        if (c->beta1 == 0)
            c->beta1 = ADAM_BETA1;
        if (c->beta2 == 0)
            c->beta2 = ADAM_BETA2;
        if (c->eps == 0)
            c->eps = ADAM_EPS;
        break;
    case PS_OPTIM_FTRL:
        if (c->ftrl_beta == 0)
            c->ftrl_beta = FTRL_BETA;
        break;
    default:
        break;
    }
}

static int nonneg(float x)
{
    return isfinite(x) && x >= 0;
}

static int field_error(char *err, size_t errlen, const char *field,
                       const char *want, float got)
{
    snprintf(err, errlen, "optimizer %s must be finite and %s, got %g", field,
             want, (double)got);
    return PS_EINVAL;
}

int ps_optim_check(const ps_optim_cfg *c, char *err, size_t errlen)
{
    int eps_used = c->kind == PS_OPTIM_ADAGRAD || c->kind == PS_OPTIM_ADAM;

    if (c->kind < PS_OPTIM_SGD || c->kind > PS_OPTIM_FTRL) {
        snprintf(err, errlen,
                 "optimizer kind %d is not sgd (0), adagrad (1), adam (2) "
                 "or ftrl (3)",
                 c->kind);
        return PS_EINVAL;
    }
    if (!(isfinite(c->lr) && c->lr > 0))
        return field_error(err, errlen, "lr", "> 0", c->lr);
    if (!(c->momentum >= 0 && c->momentum < 1))
        return field_error(err, errlen, "momentum", "in [0, 1)", c->momentum);
    if (!(c->beta1 >= 0 && c->beta1 < 1))
        return field_error(err, errlen, "beta1", "in [0, 1)", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1))
        return field_error(err, errlen, "beta2", "in [0, 1)", c->beta2);
    if (eps_used ? !(isfinite(c->eps) && c->eps > 0) : !nonneg(c->eps))
        return field_error(err, errlen, "eps", eps_used ? "> 0" : ">= 0",
                           c->eps);
    if (!nonneg(c->l1))
        return field_error(err, errlen, "l1", ">= 0", c->l1);
    if (!nonneg(c->l2))
        return field_error(err, errlen, "l2", ">= 0", c->l2);
    if (!nonneg(c->ftrl_beta))
        return field_error(err, errlen, "ftrl_beta", ">= 0", c->ftrl_beta);
    /* FTRL divides by (ftrl_beta + sqrt(n)) / lr + l2, with n = 0 at first. */
    if (c->kind == PS_OPTIM_FTRL && c->ftrl_beta == 0 && c->l2 == 0)
        return field_error(err, errlen, "ftrl_beta", "> 0 when l2 is 0",
                           c->ftrl_beta);
    if (!nonneg(c->weight_decay))
        return field_error(err, errlen, "weight_decay", ">= 0",
                           c->weight_decay);
    if (!nonneg(c->clip))
        return field_error(err, errlen, "clip", ">= 0 (0: off)", c->clip);
    if (!nonneg(c->initial_accumulator))
        return field_error(err, errlen, "initial_accumulator", ">= 0",
                           c->initial_accumulator);
    return PS_OK;
}

int ps_optim_state_width(const ps_optim_cfg *c)
{
    switch (c->kind) {
    case PS_OPTIM_SGD:
        return c->momentum != 0 ? 1 : 0;
    case PS_OPTIM_ADAGRAD:
        return 1;
    case PS_OPTIM_ADAM:
        return 3;
    case PS_OPTIM_FTRL:
        return 2;
    default:
        return 0;
    }
}

void ps_optim_init_state(const ps_optim_cfg *c, const float *w, float *state,
                         size_t stride, size_t n)
{
    int width = ps_optim_state_width(c);
    assert(width == 0 || n <= stride);
    for (int k = 0; k < width; k++)
        memset(state + (size_t)k * stride, 0, n * sizeof(float));
    if (c->kind == PS_OPTIM_ADAGRAD) {
        for (size_t i = 0; i < n; i++)
            state[i] = c->initial_accumulator;
    } else if (c->kind == PS_OPTIM_FTRL) {
        /* With n = 0 the weight is -(z - sign(z) l1) / d, d = beta/lr + l2;
         * z = -(w d + sign(w) l1) inverts it (|z| > l1 whenever w != 0). */
        float d = c->ftrl_beta / c->lr + c->l2;
        for (size_t i = 0; i < n; i++)
            state[i] = w[i] == 0 ? 0.0f : -(w[i] * d + copysignf(c->l1, w[i]));
    }
}

void ps_optim_apply(const ps_optim_cfg *c, float *w, float *state,
                    size_t stride, const float *g, size_t n, float *out)
{
    float gbuf[CHUNK];
    int prep = c->clip > 0 || (c->weight_decay > 0 && c->kind != PS_OPTIM_ADAM);
    adam_params ap = {c->lr, c->beta1, c->beta2, c->eps,
                      c->lr * c->weight_decay};

    assert(ps_optim_state_width(c) == 0 || n <= stride);
    if (out == w) /* the weights are the reply already */
        out = NULL;
    for (size_t base = 0; base < n; base += CHUNK) {
        size_t m = n - base < CHUNK ? n - base : CHUNK;
        const float *gc = g + base;
        if (prep) {
            prep_grad(c, gbuf, gc, w + base, m);
            gc = gbuf;
        }
        apply_chunk(c, &ap, w + base, state ? state + base : NULL, stride, gc,
                    m);
        if (out != NULL)
            memcpy(out + base, w + base, m * sizeof(float));
    }
}

/* Non-zero when a value's exponent is all ones (Inf or NaN). Adding the
 * lowest exponent bit to the exponent carries into bit 31 exactly then, so
 * the loop is and, add and or, which GCC vectorises; the obvious compare
 * it leaves scalar (a compare-and-or reduction), and that made the check a
 * sixth of a 1 MiB pushpull's server time. */
static inline uint32_t nonfinite_span(const float *restrict v, size_t n)
{
    uint32_t carry = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof(u));
        carry |= (u & 0x7f800000u) + 0x00800000u;
    }
    return carry & 0x80000000u;
}

/* Floats per check: a constant trip count too long for GCC to unroll
 * whole, so it vectorises the loop instead (unrolled to BLOCK, it tried to
 * vectorise the straight-line code and gave up on the reduction). */
#define FINITE_SPAN 256

int ps_all_finite(const float *v, size_t n)
{
    size_t i = 0;
    for (; i + FINITE_SPAN <= n; i += FINITE_SPAN)
        if (nonfinite_span(v + i, FINITE_SPAN)) /* one branch per span */
            return 0;
    return nonfinite_span(v + i, n - i) == 0;
}
