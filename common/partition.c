/* Range partitioning and jump consistent hashing; see partition.h. */
#include "common/partition.h"

#include "common/rng.h"

/* GCC/Clang extension, marked so -Wpedantic accepts it. */
__extension__ typedef unsigned __int128 u128;

uint64_t ps_dense_lo(uint64_t len, uint32_t shard, uint32_t n)
{
    /* 128-bit product: len * shard overflows 64 bits for huge tables. */
    return (uint64_t)(((u128)len * shard) / n);
}

uint32_t ps_dense_shard_of(uint64_t len, uint32_t n, uint64_t index)
{
    /* Start from the proportional guess, then correct for rounding. */
    uint32_t s = (uint32_t)(((u128)index * n) / len);
    while (s + 1 < n && ps_dense_lo(len, s + 1, n) <= index)
        s++;
    while (s > 0 && ps_dense_lo(len, s, n) > index)
        s--;
    return s;
}

uint32_t ps_key_shard(uint64_t key, uint32_t n)
{
    /* Keys are often small consecutive integers: mix first so the LCG below
     * sees well-spread bits. */
    uint64_t k = ps_mix64(key);
    int64_t b = -1, j = 0;
    while (j < (int64_t)n) {
        b = j;
        k = k * 2862933555777941757ULL + 1;
        j = (int64_t)((double)(b + 1) *
                      ((double)(1LL << 31) / (double)((k >> 33) + 1)));
    }
    return (uint32_t)b;
}
