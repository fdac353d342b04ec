/* Collective operations over one float buffer per device: rank i's buffer
 * lives on backend i of the group the communicator was made for.
 *
 * Two implementations behind one table: NCCL (gpu/nccl_comm.cu) when
 * sparkps is built with CUDA and every backend is a CUDA GPU, and a host
 * fallback for any other mix (each buffer downloaded, summed on the host
 * in rank order, uploaded), which is what lets the same group code run
 * with "cpu,cpu". Both enqueue on each backend's own stream after the work
 * already issued there, so callers need no extra synchronisation; the
 * host fallback waits for its copies before returning, NCCL does not.
 *
 * Threads: a communicator and its backends are used by one thread. */
#ifndef PS_COMM_H
#define PS_COMM_H

#include "backend.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PS_COMM_MAX_RANKS 16

typedef struct ps_comm ps_comm;

/* A communicator over bes[0..n-1] (1..PS_COMM_MAX_RANKS distinct
 * backends, borrowed: they must outlive it) for buffers of up to
 * max_floats floats. PS_EINVAL / PS_ENOMEM / PS_ECUDA (NCCL refused) with
 * err saying why; *out untouched on failure. */
int ps_comm_new(ps_backend *const *bes, size_t n, size_t max_floats,
                ps_comm **out, char *err, size_t errlen);
void ps_comm_free(ps_comm *c);

/* "nccl" or "host". */
const char *ps_comm_kind(const ps_comm *c);

/* bufs[0][0..count) = sum over ranks of bufs[i][0..count); the other
 * ranks' buffers are left undefined (NCCL may use them). */
int ps_comm_reduce_sum(ps_comm *c, ps_buf *const *bufs, size_t count);

/* bufs[i][0..count) = bufs[0][0..count) for every rank. */
int ps_comm_broadcast(ps_comm *c, ps_buf *const *bufs, size_t count);

/* ---- For implementations ---- */

typedef struct ps_comm_ops {
    int (*reduce_sum)(ps_comm *c, ps_buf *const *bufs, size_t count);
    int (*broadcast)(ps_comm *c, ps_buf *const *bufs, size_t count);
    void (*destroy)(ps_comm *c); /* frees ctx, not c */
} ps_comm_ops;

struct ps_comm {
    const ps_comm_ops *ops;
    void *ctx;
    const char *kind;
    ps_backend *bes[PS_COMM_MAX_RANKS];
    size_t n;
    size_t max_floats;
};

/* Provided by gpu/ only when sparkps is built with CUDA: fills c->ops,
 * c->ctx and c->kind for NCCL when every backend of c is a CUDA GPU
 * (*used = 1), or leaves c alone (*used = 0) when one is not. */
int ps_comm_nccl_init(ps_comm *c, int *used, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
