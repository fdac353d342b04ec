/* The NCCL communicator behind worker/comm.h: used when every backend of a
 * device group is a CUDA GPU.
 *
 * One NCCL communicator per GPU, made together by ncclCommInitAll in this
 * one process (rank i = backend i). A reduction is ncclReduce(sum, root 0)
 * and a broadcast ncclBroadcast(root 0), both in place (each rank passes
 * its own buffer; NCCL reads the root's, or writes it, as the call says),
 * each rank's call on its backend's
 * own stream, all inside one ncclGroupStart/End so a single thread can
 * drive every GPU without deadlock. Nothing waits: the collectives follow
 * the work already on each stream and the backend's next download (or
 * sync) sees their result. NCCL errors are PS_ECUDA, logged with NCCL's
 * text. A group of one GPU is a valid single-rank communicator (what a
 * one-GPU machine can test). */
#include "backend_cuda.h"

extern "C" {
#include "common/errmsg.h"
#include "common/log.h"
#include "worker/comm.h"
}

#include <cuda_runtime.h>
#include <nccl.h>

#include <stdlib.h>

namespace
{

struct nccl_ctx {
    ncclComm_t comms[PS_COMM_MAX_RANKS];
    cudaStream_t streams[PS_COMM_MAX_RANKS];
    int devices[PS_COMM_MAX_RANKS];
};

int check_nccl(ncclResult_t r, const char *what)
{
    if (r == ncclSuccess)
        return PS_OK;
    ps_log(PS_LOG_ERROR, "nccl call failed call=%s err=\"%s\"", what,
           ncclGetErrorString(r));
    return PS_ECUDA;
}

/* Ends a group started by the caller; the first failure wins. */
int end_group(int rc)
{
    int end = check_nccl(ncclGroupEnd(), "ncclGroupEnd");
    return rc != PS_OK ? rc : end;
}

int nccl_reduce_sum(ps_comm *c, ps_buf *const *bufs, size_t count)
{
    nccl_ctx *n = (nccl_ctx *)c->ctx;
    int rc = check_nccl(ncclGroupStart(), "ncclGroupStart");

    if (rc != PS_OK)
        return rc;
    for (size_t i = 0; rc == PS_OK && i < c->n; i++)
        rc = check_nccl(ncclReduce(bufs[i]->data, bufs[i]->data, count,
                                   ncclFloat, ncclSum, 0, n->comms[i],
                                   n->streams[i]),
                        "ncclReduce");
    return end_group(rc);
}

int nccl_broadcast(ps_comm *c, ps_buf *const *bufs, size_t count)
{
    nccl_ctx *n = (nccl_ctx *)c->ctx;
    int rc = check_nccl(ncclGroupStart(), "ncclGroupStart");

    if (rc != PS_OK)
        return rc;
    for (size_t i = 0; rc == PS_OK && i < c->n; i++)
        rc = check_nccl(ncclBroadcast(bufs[i]->data, bufs[i]->data, count,
                                      ncclFloat, 0, n->comms[i],
                                      n->streams[i]),
                        "ncclBroadcast");
    return end_group(rc);
}

void nccl_destroy(ps_comm *c)
{
    nccl_ctx *n = (nccl_ctx *)c->ctx;

    if (n == NULL)
        return;
    for (size_t i = 0; i < c->n; i++)
        if (n->comms[i] != NULL) {
            (void)cudaSetDevice(n->devices[i]);
            (void)cudaStreamSynchronize(n->streams[i]);
            (void)ncclCommDestroy(n->comms[i]);
        }
    /* The unchecked calls above must not leave an error for the next
     * launch check to report as its own. */
    (void)cudaGetLastError();
    free(n);
}

const ps_comm_ops nccl_ops = {nccl_reduce_sum, nccl_broadcast, nccl_destroy};

} // namespace

extern "C" int ps_comm_nccl_init(ps_comm *c, int *used, char *err,
                                 size_t errlen)
{
    nccl_ctx *n;
    ncclResult_t r;

    *used = 0;
    for (size_t i = 0; i < c->n; i++)
        if (ps_backend_cuda_stream(c->bes[i], NULL, NULL) != PS_OK)
            return PS_OK; /* not all GPUs: the host fallback */
    if ((n = (nccl_ctx *)calloc(1, sizeof(*n))) == NULL) {
        ps_errf(err, errlen, PS_OK, "device group: out of memory");
        return PS_ENOMEM;
    }
    for (size_t i = 0; i < c->n; i++) {
        void *stream = NULL;
        (void)ps_backend_cuda_stream(c->bes[i], &n->devices[i], &stream);
        n->streams[i] = (cudaStream_t)stream;
    }
    if ((r = ncclCommInitAll(n->comms, (int)c->n, n->devices)) !=
        ncclSuccess) {
        /* The last-error text names the cause (a /dev/shm too small in
         * a container, say); the result code's alone rarely does. */
        ps_errf(err, errlen, PS_OK,
                "device group: NCCL could not set up %zu GPU(s) "
                "(ncclCommInitAll: %s: %s)",
                c->n, ncclGetErrorString(r), ncclGetLastError(NULL));
        free(n);
        return PS_ECUDA;
    }
    c->ops = &nccl_ops;
    c->ctx = n;
    c->kind = "nccl";
    *used = 1;
    return PS_OK;
}
