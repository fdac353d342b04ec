/* Counter-based random numbers: value i of a stream depends only on (seed, i),
 * so a table's initial values do not depend on how it is sharded or which
 * worker defined it first. */
#ifndef PS_RNG_H
#define PS_RNG_H

#include <stdint.h>

/* SplitMix64 finaliser: a bijective 64-bit mix. */
static inline uint64_t ps_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Uniform double in (0, 1) for element `i` of stream (seed, salt). */
static inline double ps_rng_unit(uint64_t seed, uint64_t salt, uint64_t i)
{
    uint64_t r = ps_mix64(ps_mix64(seed ^ ps_mix64(salt)) ^ i);
    return ((double)(r >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

#endif
