/* Which shard holds what.
 *
 * Dense tables: shard i of n holds the contiguous range
 * [i*len/n, (i+1)*len/n). Sparse keys: jump consistent hash (Lamping & Veach)
 * of the mixed key, so moving from n to n+1 shards moves only 1/(n+1) of
 * the keys. Pure functions, thread-safe. */
#ifndef PS_PARTITION_H
#define PS_PARTITION_H

#include <stdint.h>

/* First element of shard `shard` (shard may equal n: returns len). */
uint64_t ps_dense_lo(uint64_t len, uint32_t shard, uint32_t n);

/* Shard holding element `index` (< len). */
uint32_t ps_dense_shard_of(uint64_t len, uint32_t n, uint64_t index);

/* Shard of a sparse key among n shards (n >= 1). */
uint32_t ps_key_shard(uint64_t key, uint32_t n);

#endif
