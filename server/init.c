/* Seeded initial values for table elements; see init.h.
 *
 * Element k of a stream is a function of (seed, salt, k) only: uniform rules
 * use ps_rng_unit(seed, salt, k), normal rules use Box-Muller on the two
 * uniforms at 2k and 2k+1 (keeping the cosine branch), so how a range is
 * split across calls or shards never changes a value. Pure computation,
 * thread-safe. */
#include "server/init.h"

#include "common/rng.h"
#include "common/sparkps_err.h"

#include <float.h>
#include <math.h>
#include <stdio.h>

#define TWO_PI 6.283185307179586476925286766559

/* A standard normal for element k of stream (seed, salt). */
static double std_normal(uint64_t seed, uint64_t salt, uint64_t k)
{
    double u1 = ps_rng_unit(seed, salt, 2 * k);
    double u2 = ps_rng_unit(seed, salt, 2 * k + 1);
    /* u1 is in (0, 1), so the log is finite. */
    return sqrt(-2.0 * log(u1)) * cos(TWO_PI * u2);
}

static int in_float_range(double x)
{
    return isfinite(x) && fabs(x) <= FLT_MAX;
}

int ps_init_check(const ps_init_cfg *c, char *err, size_t errlen)
{
    if (c->kind < PS_INITK_ZEROS || c->kind > PS_INITK_HE) {
        snprintf(err, errlen,
                 "init kind %d is not zeros, constant, uniform, "
                 "normal, xavier or he",
                 c->kind);
        return PS_EINVAL;
    }
    if (!in_float_range(c->a) || !in_float_range(c->b)) {
        snprintf(err, errlen, "init a=%g b=%g: must be finite floats", c->a,
                 c->b);
        return PS_EINVAL;
    }
    if (c->kind == PS_INITK_UNIFORM && !(c->a < c->b)) {
        snprintf(err, errlen, "init uniform needs a < b, got a=%g b=%g", c->a,
                 c->b);
        return PS_EINVAL;
    }
    if (c->kind == PS_INITK_NORMAL && !(c->b >= 0)) {
        snprintf(err, errlen, "init normal needs stddev b >= 0, got b=%g",
                 c->b);
        return PS_EINVAL;
    }
    if ((c->kind == PS_INITK_XAVIER || c->kind == PS_INITK_HE) &&
        c->fan_in < 1) {
        snprintf(err, errlen, "init %s needs fan_in >= 1",
                 c->kind == PS_INITK_HE ? "he" : "xavier");
        return PS_EINVAL;
    }
    if (c->kind == PS_INITK_XAVIER && c->fan_out < 1) {
        snprintf(err, errlen, "init xavier needs fan_out >= 1");
        return PS_EINVAL;
    }
    return PS_OK;
}

void ps_init_fill(const ps_init_cfg *c, uint64_t salt, uint64_t first,
                  float *out, size_t n)
{
    double lo, width, mean, sd;
    switch (c->kind) {
    case PS_INITK_CONSTANT:
        for (size_t i = 0; i < n; i++)
            out[i] = (float)c->a;
        break;
    case PS_INITK_UNIFORM:
    case PS_INITK_XAVIER:
        if (c->kind == PS_INITK_UNIFORM) {
            lo = c->a;
            width = c->b - c->a;
        } else {
            double r = sqrt(6.0 / ((double)c->fan_in + (double)c->fan_out));
            lo = -r;
            width = 2 * r;
        }
        for (size_t i = 0; i < n; i++)
            out[i] =
                (float)(lo + width * ps_rng_unit(c->seed, salt, first + i));
        break;
    case PS_INITK_NORMAL:
    case PS_INITK_HE:
        mean = c->kind == PS_INITK_NORMAL ? c->a : 0.0;
        sd = c->kind == PS_INITK_NORMAL ? c->b : sqrt(2.0 / (double)c->fan_in);
        for (size_t i = 0; i < n; i++)
            out[i] = (float)(mean + sd * std_normal(c->seed, salt, first + i));
        break;
    default: /* PS_INITK_ZEROS; other kinds were refused by the check */
        for (size_t i = 0; i < n; i++)
            out[i] = 0.0f;
        break;
    }
}
