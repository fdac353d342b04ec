/* The CUDA backend's C entry points beyond the registry's constructor.
 *
 * ps_backend_cuda_new() (declared in worker/backend.h, reached through
 * ps_backend_open("cuda:N")) builds a backend on GPU N: one CUDA stream,
 * one cuBLAS handle bound to it, and every operation enqueued on that
 * stream; sync waits for the stream and reports the first error, including
 * the ones kernels can only find while running (an index out of range, a
 * bad label: PS_ERANGE / PS_EINVAL, the offending rows skipped). Errors of
 * CUDA or cuBLAS calls are PS_ECUDA (PS_ENOMEM when a buffer does not fit)
 * and are logged once with CUDA's own text.
 *
 * Copies: upload/download use cudaMemcpyAsync on the stream. From pinned
 * host memory (ps_backend_host_alloc, which is cudaMallocHost here, or
 * cudaHostRegister) they are truly asynchronous and the host array must stay untouched until sync, as the
 * interface says; from ordinary pageable memory the runtime stages the
 * copy, so an upload returns once the data is staged and a download once it
 * has arrived (correct, but the host waits).
 *
 * Summation order: scatter_add and csr_mm_t add with atomicAdd, so their
 * float sums may differ in the last bits from run to run; the loss
 * reductions of softmax_xent and sigmoid_xent are two-pass and
 * deterministic; sgemm is cuBLAS in plain FP32 (no TF32).
 *
 * Devices are numbered as CUDA numbers them, after CUDA_VISIBLE_DEVICES:
 * with CUDA_VISIBLE_DEVICES=3, "cuda:0" is physical GPU 3. */
#ifndef PS_BACKEND_CUDA_H
#define PS_BACKEND_CUDA_H

#include "worker/backend.h"

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* How many CUDA devices this process sees. PS_OK with *count >= 1, or
 * PS_ECUDA with err naming what is missing: "no CUDA driver ...", "no CUDA
 * device visible (CUDA_VISIBLE_DEVICES=...) ...", each with CUDA's own
 * text. Tests call it to decide whether to skip. */
int ps_cuda_device_count(int *count, char *err, size_t errlen);

/* A CUDA backend's GPU number and stream (a cudaStream_t), for the NCCL
 * communicator (gpu/nccl_comm.cu), which enqueues on the same stream so
 * its collectives follow the backend's work in order. PS_EINVAL when be
 * is not a CUDA backend (how callers tell); either pointer may be NULL. */
int ps_backend_cuda_stream(ps_backend *be, int *device, void **stream);

#ifdef __cplusplus
}
#endif
#endif
