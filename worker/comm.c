/* The communicator registry and its host fallback; see comm.h.
 *
 * Host fallback: one host buffer per rank, max_floats each, allocated
 * once from that rank's backend (pinned on a GPU: its copies then run at
 * full speed, with no staging copy in the driver). A reduction downloads every rank's buffer, adds them in rank order
 * into rank 0's copy (so the result does not depend on timing) and uploads
 * it to rank 0; a broadcast downloads rank 0 once and uploads to the rest.
 * Each waits for its copies (the host buffers are reused at once). */
#include "comm.h"

#include "common/errmsg.h"

#include <stdlib.h>
#include <string.h>

typedef struct host_ctx {
    float *scratch[PS_COMM_MAX_RANKS];
} host_ctx;

/* Every rank's buffer present and holding count floats. */
static int check_bufs(const ps_comm *c, ps_buf *const *bufs, size_t count)
{
    if (bufs == NULL || count < 1 || count > c->max_floats)
        return PS_EINVAL;
    for (size_t i = 0; i < c->n; i++)
        if (bufs[i] == NULL ||
            ps_backend_buf_size(bufs[i]) < count * sizeof(float))
            return PS_ERANGE;
    return PS_OK;
}

static int host_reduce_sum(ps_comm *c, ps_buf *const *bufs, size_t count)
{
    host_ctx *h = c->ctx;
    size_t bytes = count * sizeof(float);
    int rc = PS_OK;

    for (size_t i = 0; rc == PS_OK && i < c->n; i++)
        if ((rc = ps_backend_download(c->bes[i], bufs[i], 0, h->scratch[i],
                                      bytes)) == PS_OK)
            rc = ps_backend_sync(c->bes[i]);
    if (rc != PS_OK)
        return rc;
    for (size_t i = 1; i < c->n; i++)
        for (size_t k = 0; k < count; k++)
            h->scratch[0][k] += h->scratch[i][k];
    if ((rc = ps_backend_upload(c->bes[0], bufs[0], 0, h->scratch[0],
                                bytes)) != PS_OK)
        return rc;
    return ps_backend_sync(c->bes[0]);
}

static int host_broadcast(ps_comm *c, ps_buf *const *bufs, size_t count)
{
    host_ctx *h = c->ctx;
    size_t bytes = count * sizeof(float);
    int rc = ps_backend_download(c->bes[0], bufs[0], 0, h->scratch[0], bytes);

    if (rc == PS_OK)
        rc = ps_backend_sync(c->bes[0]);
    for (size_t i = 1; rc == PS_OK && i < c->n; i++)
        rc = ps_backend_upload(c->bes[i], bufs[i], 0, h->scratch[0], bytes);
    for (size_t i = 1; i < c->n; i++) {
        int s = ps_backend_sync(c->bes[i]); /* scratch reused next call */
        if (rc == PS_OK)
            rc = s;
    }
    return rc;
}

static void host_destroy(ps_comm *c)
{
    host_ctx *h = c->ctx;

    for (size_t i = 0; h != NULL && i < c->n; i++)
        if (h->scratch[i] != NULL)
            ps_backend_host_free(c->bes[i], h->scratch[i]);
    free(h);
}

static const ps_comm_ops host_ops = {host_reduce_sum, host_broadcast,
                                     host_destroy};

static int host_init(ps_comm *c, char *err, size_t errlen)
{
    host_ctx *h = calloc(1, sizeof(*h));
    int failed = h == NULL;

    c->ops = &host_ops;
    c->ctx = h; /* host_destroy frees what was allocated */
    c->kind = "host";
    for (size_t i = 0; !failed && i < c->n; i++)
        failed = (h->scratch[i] = ps_backend_host_alloc(
                      c->bes[i], c->max_floats * sizeof(float))) == NULL;
    if (failed) {
        ps_errf(err, errlen, PS_OK,
                "device group: out of memory for %zu host buffers of %zu "
                "floats",
                c->n, c->max_floats);
        return PS_ENOMEM;
    }
    return PS_OK;
}

int ps_comm_new(ps_backend *const *bes, size_t n, size_t max_floats,
                ps_comm **out, char *err, size_t errlen)
{
    ps_comm *c;
    int used = 0, rc = PS_OK;

    if (bes == NULL || out == NULL || n < 1 || n > PS_COMM_MAX_RANKS ||
        max_floats < 1 || max_floats > PS_BACKEND_MAX_BYTES / sizeof(float)) {
        ps_errf(err, errlen, PS_OK,
                "device group: want 1..%d backends and 1..%zu floats",
                PS_COMM_MAX_RANKS, PS_BACKEND_MAX_BYTES / sizeof(float));
        return PS_EINVAL;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            if (bes[i] == NULL || bes[i] == bes[j]) {
                ps_errf(err, errlen, PS_OK,
                        "device group: backend %zu is missing or repeated", i);
                return PS_EINVAL;
            }
    if (bes[0] == NULL) {
        ps_errf(err, errlen, PS_OK, "device group: backend 0 is missing");
        return PS_EINVAL;
    }
    if ((c = calloc(1, sizeof(*c))) == NULL) {
        ps_errf(err, errlen, PS_OK, "device group: out of memory");
        return PS_ENOMEM;
    }
    memcpy(c->bes, bes, n * sizeof(*bes));
    c->n = n;
    c->max_floats = max_floats;
#ifdef SPARKPS_HAVE_CUDA
    rc = ps_comm_nccl_init(c, &used, err, errlen);
#endif
    if (rc == PS_OK && !used)
        rc = host_init(c, err, errlen);
    if (rc != PS_OK) {
        ps_comm_free(c);
        return rc;
    }
    *out = c;
    return PS_OK;
}

void ps_comm_free(ps_comm *c)
{
    if (c == NULL)
        return;
    if (c->ops != NULL)
        c->ops->destroy(c);
    free(c);
}

const char *ps_comm_kind(const ps_comm *c)
{
    return c->kind;
}

int ps_comm_reduce_sum(ps_comm *c, ps_buf *const *bufs, size_t count)
{
    int rc = check_bufs(c, bufs, count);

    return rc == PS_OK ? c->ops->reduce_sum(c, bufs, count) : rc;
}

int ps_comm_broadcast(ps_comm *c, ps_buf *const *bufs, size_t count)
{
    int rc = check_bufs(c, bufs, count);

    return rc == PS_OK ? c->ops->broadcast(c, bufs, count) : rc;
}
