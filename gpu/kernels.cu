/* The CUDA backend's kernels, one per operation of worker/backend.h, each
 * written against the CPU backend (worker/backend_cpu.c) as its reference:
 * same formulas, same precision choices (double for the loss reductions,
 * softmax denominators and the k = 1 CSR dot product), same treatment of
 * aliasing (grad may be the logits, y may be x).
 *
 * Element-wise kernels use grid-stride loops over size_t indices, so any
 * size works with a capped grid. Row-wise kernels (softmax, the softmax
 * loss) give each row to one block and reduce in shared memory. The losses
 * are two-pass: each block sums its rows into partial[block] in a fixed
 * order, then one block sums the partials, so the result is deterministic.
 * Kernels never return errors; a bad index or label is skipped and reported
 * through *flag (see kernels.h). */
#include "kernels.h"

#include "common/sparkps_err.h"

#include <float.h>
#include <math.h>

namespace
{

constexpr unsigned kThreads = 256;    /* element-wise and loss kernels */
constexpr unsigned kRowThreads = 128; /* one block per softmax row */
constexpr size_t kMaxBlocks = 65535;  /* grid-stride loops cover the rest */

unsigned grid_for(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b < kMaxBlocks ? b : kMaxBlocks);
}

/* Blocks for the two-pass losses: at most one per row, and never more
 * partial sums than the scratch buffer holds. */
unsigned stat_grid(size_t rows)
{
    return (unsigned)(rows < PS_CUDA_STAT_BLOCKS ? rows : PS_CUDA_STAT_BLOCKS);
}

__device__ size_t first_index()
{
    return (size_t)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ size_t grid_stride()
{
    return (size_t)gridDim.x * blockDim.x;
}

/* Keeps the first error: later ones describe the same failed call. */
__device__ void flag_error(int *flag, int code)
{
    atomicCAS(flag, 0, code);
}

/* Sums v over the block (blockDim.x a power of two, sh holding blockDim.x
 * doubles) in a fixed tree order; every thread gets the result, and sh is
 * free again when it returns. */
__device__ double block_sum(double v, double *sh)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half)
            sh[threadIdx.x] += sh[threadIdx.x + half];
        __syncthreads();
    }
    double r = sh[0];
    __syncthreads();
    return r;
}

/* Row maximum and its first index, as the CPU's row_max: a strict > while
 * each thread walks its columns in increasing order, and the lower index on
 * ties when threads combine. */
__device__ float block_argmax(const float *x, size_t classes, size_t *argmax,
                              float *shv, size_t *shi)
{
    float v = -INFINITY;
    size_t at = SIZE_MAX;

    for (size_t j = threadIdx.x; j < classes; j += blockDim.x) {
        if (at == SIZE_MAX || x[j] > v) {
            v = x[j];
            at = j;
        }
    }
    shv[threadIdx.x] = v;
    shi[threadIdx.x] = at;
    __syncthreads();
    for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
        if (threadIdx.x < half) {
            float ov = shv[threadIdx.x + half];
            size_t oi = shi[threadIdx.x + half];
            float mv = shv[threadIdx.x];
            size_t mi = shi[threadIdx.x];
            /* An empty thread (index SIZE_MAX) loses every comparison. */
            if (oi != SIZE_MAX &&
                (mi == SIZE_MAX || ov > mv || (ov == mv && oi < mi))) {
                shv[threadIdx.x] = ov;
                shi[threadIdx.x] = oi;
            }
        }
        __syncthreads();
    }
    float mx = shv[0];
    *argmax = shi[0];
    __syncthreads();
    return mx;
}

/* 1 / (1 + exp(-z)) without overflow for either sign of z. */
__device__ double sigmoid_d(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

__global__ void add_bias_k(float *y, size_t ld, size_t rows, size_t cols,
                           const float *bias)
{
    size_t total = rows * cols;
    for (size_t t = first_index(); t < total; t += grid_stride()) {
        size_t i = t / cols, j = t % cols;
        y[i * ld + j] += bias[j];
    }
}

__global__ void relu_fwd_k(const float *x, float *y, size_t n)
{
    for (size_t i = first_index(); i < n; i += grid_stride())
        y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

__global__ void relu_bwd_k(const float *dy, const float *y, float *dx, size_t n)
{
    for (size_t i = first_index(); i < n; i += grid_stride())
        dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

/* One block per row (grid-stride over rows). Thread 0 accumulates its
 * block's rows in row order into partial[block] (loss) and
 * partial[gridDim.x + block] (correct). */
__global__ void softmax_xent_k(const float *x, const float *labels, size_t n,
                               size_t classes, float *grad, double *partial,
                               int *flag)
{
    __shared__ double shd[kRowThreads];
    __shared__ float shv[kRowThreads];
    __shared__ size_t shi[kRowThreads];
    const float inv_n = 1.0f / (float)n;
    double loss = 0.0, correct = 0.0;

    for (size_t row = blockIdx.x; row < n; row += gridDim.x) {
        const float *xr = x + row * classes;
        float lab = labels[row];
        /* Same value for the whole block, so the block skips together. */
        if (!(lab >= 0.0f && lab < (float)classes)) {
            if (threadIdx.x == 0)
                flag_error(flag, PS_EINVAL);
            continue;
        }
        size_t y = (size_t)lab, am;
        float mx = block_argmax(xr, classes, &am, shv, shi);
        double sum = 0.0;
        for (size_t j = threadIdx.x; j < classes; j += blockDim.x)
            sum += exp((double)xr[j] - (double)mx);
        sum = block_sum(sum, shd);
        if (threadIdx.x == 0) {
            /* -log softmax(x)[y] = log(sum) - (x[y] - max) */
            loss += log(sum) - ((double)xr[y] - (double)mx);
            correct += am == y ? 1.0 : 0.0;
        }
        if (grad != NULL) {
            /* x[y] above is read before anyone writes g (grad may be x). */
            __syncthreads();
            float *gr = grad + row * classes;
            float inv_sum = (float)(1.0 / sum);
            for (size_t j = threadIdx.x; j < classes; j += blockDim.x) {
                float g = expf(xr[j] - mx) * inv_sum * inv_n;
                if (j == y)
                    g -= inv_n;
                gr[j] = g;
            }
        }
    }
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = loss;
        partial[gridDim.x + blockIdx.x] = correct;
    }
}

/* The second pass of the losses: out[0] = sum(loss partials) / n,
 * out[1] = sum(correct partials), in a fixed order (one block). */
__global__ void finish_stats_k(const double *partial, unsigned blocks, size_t n,
                               float *out)
{
    __shared__ double sh[kThreads];
    double loss = 0.0, correct = 0.0;

    for (unsigned b = threadIdx.x; b < blocks; b += blockDim.x) {
        loss += partial[b];
        correct += partial[blocks + b];
    }
    loss = block_sum(loss, sh);
    correct = block_sum(correct, sh);
    if (threadIdx.x == 0) {
        out[0] = (float)(loss / (double)n);
        out[1] = (float)correct;
    }
}

__global__ void softmax_k(const float *x, float *y, size_t n, size_t classes)
{
    __shared__ double shd[kRowThreads];
    __shared__ float shv[kRowThreads];
    __shared__ size_t shi[kRowThreads];

    for (size_t row = blockIdx.x; row < n; row += gridDim.x) {
        const float *xr = x + row * classes;
        float *yr = y + row * classes;
        size_t am;
        /* Every read of the row ends here, before any y (maybe x) write. */
        float mx = block_argmax(xr, classes, &am, shv, shi);
        double sum = 0.0;
        /* Each thread rewrites only the columns it read itself. */
        for (size_t j = threadIdx.x; j < classes; j += blockDim.x) {
            float e = expf(xr[j] - mx);
            yr[j] = e;
            sum += e;
        }
        sum = block_sum(sum, shd);
        float inv = (float)(1.0 / sum);
        for (size_t j = threadIdx.x; j < classes; j += blockDim.x)
            yr[j] *= inv;
    }
}

/* One thread per column, rows in order: the CPU's float sums exactly. */
__global__ void col_sum_k(const float *x, size_t ld, size_t rows, size_t cols,
                          float alpha, float *y)
{
    for (size_t j = first_index(); j < cols; j += grid_stride()) {
        float acc = alpha == 0.0f ? 0.0f : alpha == 1.0f ? y[j] : y[j] * alpha;
        for (size_t i = 0; i < rows; i++)
            acc += x[i * ld + j];
        y[j] = acc;
    }
}

__global__ void scale_k(float *x, size_t n, float alpha)
{
    for (size_t i = first_index(); i < n; i += grid_stride())
        x[i] *= alpha;
}

__global__ void axpy_k(size_t n, float alpha, const float *x, float *y)
{
    for (size_t i = first_index(); i < n; i += grid_stride())
        y[i] += alpha * x[i];
}

__global__ void fill_k(float *x, size_t n, float value)
{
    for (size_t i = first_index(); i < n; i += grid_stride())
        x[i] = value;
}

__global__ void gather_k(const float *w, size_t rows, size_t dim,
                         const uint32_t *idx, size_t nidx, float *out,
                         int *flag)
{
    size_t total = nidx * dim;
    for (size_t t = first_index(); t < total; t += grid_stride()) {
        size_t i = t / dim, d = t % dim;
        uint32_t r = idx[i];
        if (r >= rows) {
            flag_error(flag, PS_ERANGE);
            continue;
        }
        out[i * dim + d] = w[(size_t)r * dim + d];
    }
}

__global__ void scatter_add_k(const float *g, const uint32_t *idx, size_t nidx,
                              size_t dim, float *w, size_t rows, int *flag)
{
    size_t total = nidx * dim;
    for (size_t t = first_index(); t < total; t += grid_stride()) {
        size_t i = t / dim, d = t % dim;
        uint32_t r = idx[i];
        if (r >= rows) {
            flag_error(flag, PS_ERANGE);
            continue;
        }
        atomicAdd(&w[(size_t)r * dim + d], g[i * dim + d]);
    }
}

/* Row i's entries [*begin, *end), or false (and the flag) when rowptr is
 * not a valid CSR structure there; the CPU refuses the same matrices. */
__device__ bool csr_row(const ps__cuda_csr &x, size_t i, bool report,
                        uint32_t *begin, uint32_t *end, int *flag)
{
    uint32_t b = x.rowptr[i], e = x.rowptr[i + 1];
    if (report && ((i == 0 && b != 0) || (i == x.rows - 1 && e != x.nnz)))
        flag_error(flag, PS_ERANGE);
    if (e < b || e > x.nnz) {
        if (report)
            flag_error(flag, PS_ERANGE);
        return false;
    }
    *begin = b;
    *end = e;
    return true;
}

/* Y[i, j] = sum_p val[p] * W[col[p], j], one thread per (i, j), entries in
 * order. Acc is double for k = 1 (the CPU's logistic-regression dot
 * product) and float otherwise, as on the CPU. A bad row is left as it was
 * (the CPU writes nothing at all). */
template <typename Acc>
__global__ void csr_mm_k(ps__cuda_csr x, size_t k, const float *w, size_t ldw,
                         float *y, size_t ldy, int *flag)
{
    size_t total = x.rows * k;
    for (size_t t = first_index(); t < total; t += grid_stride()) {
        size_t i = t / k, j = t % k;
        uint32_t b, e;
        if (!csr_row(x, i, j == 0, &b, &e, flag))
            continue;
        Acc acc = 0;
        for (uint32_t p = b; p < e; p++) {
            uint32_t c = x.col[p];
            if (c >= x.cols) {
                flag_error(flag, PS_ERANGE);
                continue;
            }
            acc += (Acc)x.val[p] * (Acc)w[(size_t)c * ldw + j];
        }
        y[i * ldy + j] = (float)acc;
    }
}

/* G[col[p], j] += val[p] * dY[i, j], one thread per (i, j). */
__global__ void csr_mm_t_k(ps__cuda_csr x, size_t k, const float *dy,
                           size_t lddy, float *g, size_t ldg, int *flag)
{
    size_t total = x.rows * k;
    for (size_t t = first_index(); t < total; t += grid_stride()) {
        size_t i = t / k, j = t % k;
        uint32_t b, e;
        if (!csr_row(x, i, j == 0, &b, &e, flag))
            continue;
        float d = dy[i * lddy + j];
        for (uint32_t p = b; p < e; p++) {
            uint32_t c = x.col[p];
            if (c >= x.cols) {
                flag_error(flag, PS_ERANGE);
                continue;
            }
            atomicAdd(&g[(size_t)c * ldg + j], x.val[p] * d);
        }
    }
}

/* Per element loss and gradient; each block sums its threads' loss and
 * correct counts into partial[block] / partial[gridDim.x + block]. */
__global__ void sigmoid_xent_k(const float *z, const float *labels, size_t n,
                               float *grad, double *partial, int *flag)
{
    __shared__ double sh[kThreads];
    const double inv_n = 1.0 / (double)n;
    double loss = 0.0, correct = 0.0;

    for (size_t i = first_index(); i < n; i += grid_stride()) {
        double zi = z[i], y = labels[i];
        if (labels[i] != 0.0f && labels[i] != 1.0f) {
            flag_error(flag, PS_EINVAL);
            continue;
        }
        loss += (zi > 0 ? zi : 0.0) - zi * y + log1p(exp(-fabs(zi)));
        correct += (zi >= 0) == (y == 1.0) ? 1.0 : 0.0;
        if (grad != NULL) /* z[i] is read before g[i] is written */
            grad[i] = (float)((sigmoid_d(zi) - y) * inv_n);
    }
    loss = block_sum(loss, sh);
    correct = block_sum(correct, sh);
    if (threadIdx.x == 0) {
        partial[blockIdx.x] = loss;
        partial[gridDim.x + blockIdx.x] = correct;
    }
}

__global__ void sigmoid_k(const float *x, float *y, size_t n)
{
    for (size_t i = first_index(); i < n; i += grid_stride())
        y[i] = (float)sigmoid_d(x[i]);
}

} // namespace

cudaError_t ps__cuda_add_bias(cudaStream_t s, float *y, size_t ld, size_t rows,
                              size_t cols, const float *bias)
{
    if (rows == 0 || cols == 0)
        return cudaSuccess;
    add_bias_k<<<grid_for(rows * cols, kThreads), kThreads, 0, s>>>(y, ld, rows,
                                                                    cols, bias);
    return cudaGetLastError();
}

cudaError_t ps__cuda_relu_fwd(cudaStream_t s, const float *x, float *y,
                              size_t n)
{
    if (n == 0)
        return cudaSuccess;
    relu_fwd_k<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, y, n);
    return cudaGetLastError();
}

cudaError_t ps__cuda_relu_bwd(cudaStream_t s, const float *dy, const float *y,
                              float *dx, size_t n)
{
    if (n == 0)
        return cudaSuccess;
    relu_bwd_k<<<grid_for(n, kThreads), kThreads, 0, s>>>(dy, y, dx, n);
    return cudaGetLastError();
}

cudaError_t ps__cuda_softmax_xent(cudaStream_t s, const float *x,
                                  const float *labels, size_t n, size_t classes,
                                  float *grad, float *out, double *partial,
                                  int *flag)
{
    unsigned blocks = stat_grid(n);
    cudaError_t e;

    if (n == 0 || classes == 0)
        return cudaSuccess;
    softmax_xent_k<<<blocks, kRowThreads, 0, s>>>(x, labels, n, classes, grad,
                                                  partial, flag);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    finish_stats_k<<<1, kThreads, 0, s>>>(partial, blocks, n, out);
    return cudaGetLastError();
}

cudaError_t ps__cuda_softmax(cudaStream_t s, const float *x, float *y, size_t n,
                             size_t classes)
{
    if (n == 0 || classes == 0)
        return cudaSuccess;
    softmax_k<<<grid_for(n, 1), kRowThreads, 0, s>>>(x, y, n, classes);
    return cudaGetLastError();
}

cudaError_t ps__cuda_col_sum(cudaStream_t s, const float *x, size_t ld,
                             size_t rows, size_t cols, float alpha, float *y)
{
    if (cols == 0)
        return cudaSuccess;
    col_sum_k<<<grid_for(cols, kThreads), kThreads, 0, s>>>(x, ld, rows, cols,
                                                            alpha, y);
    return cudaGetLastError();
}

cudaError_t ps__cuda_scale(cudaStream_t s, float *x, size_t n, float alpha)
{
    if (n == 0)
        return cudaSuccess;
    scale_k<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, n, alpha);
    return cudaGetLastError();
}

cudaError_t ps__cuda_axpy(cudaStream_t s, size_t n, float alpha, const float *x,
                          float *y)
{
    if (n == 0)
        return cudaSuccess;
    axpy_k<<<grid_for(n, kThreads), kThreads, 0, s>>>(n, alpha, x, y);
    return cudaGetLastError();
}

cudaError_t ps__cuda_fill(cudaStream_t s, float *x, size_t n, float value)
{
    if (n == 0)
        return cudaSuccess;
    fill_k<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, n, value);
    return cudaGetLastError();
}

cudaError_t ps__cuda_gather(cudaStream_t s, const float *w, size_t rows,
                            size_t dim, const uint32_t *idx, size_t nidx,
                            float *out, int *flag)
{
    if (nidx == 0 || dim == 0)
        return cudaSuccess;
    gather_k<<<grid_for(nidx * dim, kThreads), kThreads, 0, s>>>(
        w, rows, dim, idx, nidx, out, flag);
    return cudaGetLastError();
}

cudaError_t ps__cuda_scatter_add(cudaStream_t s, const float *g,
                                 const uint32_t *idx, size_t nidx, size_t dim,
                                 float *w, size_t rows, int *flag)
{
    if (nidx == 0 || dim == 0)
        return cudaSuccess;
    scatter_add_k<<<grid_for(nidx * dim, kThreads), kThreads, 0, s>>>(
        g, idx, nidx, dim, w, rows, flag);
    return cudaGetLastError();
}

cudaError_t ps__cuda_csr_mm(cudaStream_t s, ps__cuda_csr x, size_t k,
                            const float *w, size_t ldw, float *y, size_t ldy,
                            int *flag)
{
    unsigned blocks = grid_for(x.rows * k, kThreads);

    if (x.rows == 0 || k == 0)
        return cudaSuccess;
    if (k == 1)
        csr_mm_k<double>
            <<<blocks, kThreads, 0, s>>>(x, k, w, ldw, y, ldy, flag);
    else
        csr_mm_k<float><<<blocks, kThreads, 0, s>>>(x, k, w, ldw, y, ldy, flag);
    return cudaGetLastError();
}

cudaError_t ps__cuda_csr_mm_t(cudaStream_t s, ps__cuda_csr x, size_t k,
                              const float *dy, size_t lddy, float *g,
                              size_t ldg, int *flag)
{
    if (x.rows == 0 || k == 0)
        return cudaSuccess;
    csr_mm_t_k<<<grid_for(x.rows * k, kThreads), kThreads, 0, s>>>(
        x, k, dy, lddy, g, ldg, flag);
    return cudaGetLastError();
}

cudaError_t ps__cuda_sigmoid_xent(cudaStream_t s, const float *z,
                                  const float *labels, size_t n, float *grad,
                                  float *out, double *partial, int *flag)
{
    unsigned blocks = stat_grid(grid_for(n, kThreads));
    cudaError_t e;

    if (n == 0)
        return cudaSuccess;
    sigmoid_xent_k<<<blocks, kThreads, 0, s>>>(z, labels, n, grad, partial,
                                               flag);
    if ((e = cudaGetLastError()) != cudaSuccess)
        return e;
    finish_stats_k<<<1, kThreads, 0, s>>>(partial, blocks, n, out);
    return cudaGetLastError();
}

cudaError_t ps__cuda_sigmoid(cudaStream_t s, const float *x, float *y, size_t n)
{
    if (n == 0)
        return cudaSuccess;
    sigmoid_k<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, y, n);
    return cudaGetLastError();
}

cudaError_t ps__cuda_kernels_loadable(void)
{
    cudaFuncAttributes attr;

    /* Loading one kernel is enough: all were compiled for the same
     * architectures. */
    return cudaFuncGetAttributes(&attr, relu_fwd_k);
}
