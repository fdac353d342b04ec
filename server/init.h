/* Deterministic, seeded initial values for table elements.
 *
 * Element values depend only on (rule, seed, salt, index): a dense table uses
 * salt 0 and the element's global index, so its values do not depend on the
 * number of shards; a sparse row uses its key as salt and the column as the
 * index, so a row is the same whichever shard or worker creates it first.
 * Pure computation, thread-safe. */
#ifndef PS_INIT_H
#define PS_INIT_H

#include <stddef.h>
#include <stdint.h>

enum {
    PS_INITK_ZEROS = 0,
    PS_INITK_CONSTANT = 1, /* a */
    PS_INITK_UNIFORM = 2,  /* U(a, b), a < b */
    PS_INITK_NORMAL = 3,   /* N(a, b^2), b >= 0 */
    PS_INITK_XAVIER = 4,   /* U(-r, r), r = sqrt(6 / (fan_in + fan_out)) */
    PS_INITK_HE = 5        /* N(0, 2 / fan_in) */
};

typedef struct ps_init_cfg {
    int kind;
    double a, b;
    uint64_t seed;
    uint64_t fan_in, fan_out; /* resolved by the caller, >= 1 for XAVIER/HE */
} ps_init_cfg;

/* Checks kind and parameters (finite, a < b for uniform, b >= 0 for normal,
 * fans >= 1 where used); 0 or PS_EINVAL with a message in err. */
int ps_init_check(const ps_init_cfg *c, char *err, size_t errlen);

/* Writes values first .. first+n-1 of stream (seed, salt) into out. */
void ps_init_fill(const ps_init_cfg *c, uint64_t salt, uint64_t first,
                  float *out, size_t n);

#endif
