/* Learning-rate schedules. A worker computes the factor for its own
 * progress and sends it with every push (ps_client_set_lr_scale); the
 * servers' optimizers step with the table's lr times that factor, so the
 * schedule needs no coordination between workers.
 *
 * Specs (--lr-schedule):
 *   constant        factor 1
 *   step:E:G        multiplied by G after every E epochs (E > 0, 0 < G <= 1)
 *   cosine[:F]      from 1 down to F (default 0, 0 <= F < 1) over the run,
 *                   following half a cosine
 * and a linear warm-up over the first W steps (--warmup-steps), which
 * multiplies whichever schedule: step s (from 1) gets s / W. */
#ifndef PS_LR_SCHEDULE_H
#define PS_LR_SCHEDULE_H

#include <stddef.h>
#include <stdint.h>

typedef enum ps_lr_kind {
    PS_LR_CONSTANT = 0,
    PS_LR_STEP = 1,
    PS_LR_COSINE = 2
} ps_lr_kind;

typedef struct ps_lr_schedule {
    ps_lr_kind kind;
    double every;  /* step: epochs between decays */
    double gamma;  /* step: decay factor */
    double floor;  /* cosine: final factor */
    double epochs; /* length of the run, for cosine */
    uint64_t warmup_steps;
} ps_lr_schedule;

/* Parses spec (NULL or "": constant) for a run of `epochs` epochs. PS_EINVAL
 * with the reason in err for an unknown kind or a value out of range. */
int ps_lr_schedule_parse(ps_lr_schedule *s, const char *spec, int epochs,
                         uint64_t warmup_steps, char *err, size_t errlen);

/* The factor after `progress` epochs (fractional: 2.5 is the middle of the
 * third epoch) at step `step` (counted from 1). Always in (0, 1]: a factor
 * of 0 would stall FTRL and Adam, so it is kept above a small floor. */
double ps_lr_schedule_factor(const ps_lr_schedule *s, double progress,
                             uint64_t step);

#endif
