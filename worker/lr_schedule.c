/* Learning-rate schedules; see lr_schedule.h. */
#include "lr_schedule.h"

#include "common/sparkps_err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Smallest factor handed out (the wire accepts anything above 0). */
#define MIN_FACTOR 1e-6

static int bad(char *err, size_t errlen, const char *spec, const char *why)
{
    if (err)
        snprintf(err, errlen, "--lr-schedule '%s': %s", spec, why);
    return PS_EINVAL;
}

/* Parses a finite double that fills the whole of [s, end). */
static int number(const char *s, const char *end, double *out)
{
    char buf[64];
    size_t n = (size_t)(end - s);
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *e;
    *out = strtod(buf, &e);
    return *e == '\0' && isfinite(*out) ? 0 : -1;
}

int ps_lr_schedule_parse(ps_lr_schedule *s, const char *spec, int epochs,
                         uint64_t warmup_steps, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->epochs = epochs > 0 ? epochs : 1;
    s->warmup_steps = warmup_steps;
    if (spec == NULL || *spec == '\0' || strcmp(spec, "constant") == 0)
        return PS_OK;
    const char *end = spec + strlen(spec);
    if (strncmp(spec, "step:", 5) == 0) {
        const char *colon = strchr(spec + 5, ':');
        if (colon == NULL || number(spec + 5, colon, &s->every) != 0 ||
            number(colon + 1, end, &s->gamma) != 0)
            return bad(err, errlen, spec, "expected step:EPOCHS:GAMMA");
        if (!(s->every > 0) || !(s->gamma > 0 && s->gamma <= 1))
            return bad(err, errlen, spec,
                       "step needs EPOCHS > 0 and 0 < GAMMA <= 1");
        s->kind = PS_LR_STEP;
        return PS_OK;
    }
    if (strcmp(spec, "cosine") == 0 || strncmp(spec, "cosine:", 7) == 0) {
        if (spec[6] == ':' && number(spec + 7, end, &s->floor) != 0)
            return bad(err, errlen, spec, "expected cosine[:FLOOR]");
        if (!(s->floor >= 0 && s->floor < 1))
            return bad(err, errlen, spec, "cosine needs 0 <= FLOOR < 1");
        s->kind = PS_LR_COSINE;
        return PS_OK;
    }
    return bad(err, errlen, spec,
               "expected constant, step:EPOCHS:GAMMA or cosine[:FLOOR]");
}

double ps_lr_schedule_factor(const ps_lr_schedule *s, double progress,
                             uint64_t step)
{
    double f = 1.0;
    if (progress < 0)
        progress = 0;
    switch (s->kind) {
    case PS_LR_STEP:
        f = pow(s->gamma, floor(progress / s->every));
        break;
    case PS_LR_COSINE: {
        double t = progress / s->epochs;
        t = t > 1 ? 1 : t;
        f = s->floor + (1 - s->floor) * 0.5 * (1 + cos(M_PI * t));
        break;
    }
    case PS_LR_CONSTANT:
        break;
    }
    if (s->warmup_steps > 0 && step < s->warmup_steps)
        f *= (double)(step ? step : 1) / (double)s->warmup_steps;
    return f > MIN_FACTOR ? f : MIN_FACTOR;
}
