/* Private to gpu/: launchers of the CUDA backend's kernels.
 *
 * Each launcher enqueues one or two kernels on `s` and returns the launch
 * error (cudaGetLastError), cudaSuccess otherwise; nothing here waits.
 * Pointers are device addresses already offset to the operand's first
 * element; shapes were checked by worker/backend.c. Contents a kernel can
 * only judge while running (indices, labels, CSR structure) are checked
 * there: a bad row or entry is skipped and the first such error (a ps_err
 * code) is stored in *flag with atomicCAS, for sync to report. */
#ifndef PS_GPU_KERNELS_H
#define PS_GPU_KERNELS_H

#include <cuda_runtime.h>

#include <stddef.h>
#include <stdint.h>

/* Blocks of the loss kernels, and so the per-block partial sums they leave
 * in the `partial` scratch buffer (2 * PS_CUDA_STAT_BLOCKS doubles). */
#define PS_CUDA_STAT_BLOCKS 1024

cudaError_t ps__cuda_add_bias(cudaStream_t s, float *y, size_t ld, size_t rows,
                              size_t cols, const float *bias);
cudaError_t ps__cuda_relu_fwd(cudaStream_t s, const float *x, float *y,
                              size_t n);
cudaError_t ps__cuda_relu_bwd(cudaStream_t s, const float *dy, const float *y,
                              float *dx, size_t n);
cudaError_t ps__cuda_softmax_xent(cudaStream_t s, const float *x,
                                  const float *labels, size_t n, size_t classes,
                                  float *grad, float *out, double *partial,
                                  int *flag);
cudaError_t ps__cuda_softmax(cudaStream_t s, const float *x, float *y, size_t n,
                             size_t classes);
cudaError_t ps__cuda_col_sum(cudaStream_t s, const float *x, size_t ld,
                             size_t rows, size_t cols, float alpha, float *y);
cudaError_t ps__cuda_scale(cudaStream_t s, float *x, size_t n, float alpha);
cudaError_t ps__cuda_axpy(cudaStream_t s, size_t n, float alpha, const float *x,
                          float *y);
cudaError_t ps__cuda_fill(cudaStream_t s, float *x, size_t n, float value);
cudaError_t ps__cuda_gather(cudaStream_t s, const float *w, size_t rows,
                            size_t dim, const uint32_t *idx, size_t nidx,
                            float *out, int *flag);
cudaError_t ps__cuda_scatter_add(cudaStream_t s, const float *g,
                                 const uint32_t *idx, size_t nidx, size_t dim,
                                 float *w, size_t rows, int *flag);

/* A CSR operand in device addresses (see ps_csr). */
typedef struct ps__cuda_csr {
    const uint32_t *rowptr;
    const uint32_t *col;
    const float *val;
    size_t rows, cols, nnz;
} ps__cuda_csr;

cudaError_t ps__cuda_csr_mm(cudaStream_t s, ps__cuda_csr x, size_t k,
                            const float *w, size_t ldw, float *y, size_t ldy,
                            int *flag);
cudaError_t ps__cuda_csr_mm_t(cudaStream_t s, ps__cuda_csr x, size_t k,
                              const float *dy, size_t lddy, float *g,
                              size_t ldg, int *flag);
cudaError_t ps__cuda_sigmoid_xent(cudaStream_t s, const float *z,
                                  const float *labels, size_t n, float *grad,
                                  float *out, double *partial, int *flag);
cudaError_t ps__cuda_sigmoid(cudaStream_t s, const float *x, float *y,
                             size_t n);

/* cudaSuccess when the current device can run this build's kernels;
 * cudaErrorNoKernelImageForDevice when none of the architectures compiled
 * in suits it (cuBLAS, which ships its own, would still work). */
cudaError_t ps__cuda_kernels_loadable(void);

#endif
