/* The worker's compute backend: a small table of operations over opaque
 * device buffers, in the manner of ggml's backend interface.
 *
 * A backend owns a device (the CPU with OpenBLAS, or one CUDA GPU) and the
 * buffers allocated on it. Callers allocate their buffers once, copy host
 * data in and out explicitly with ps_backend_upload / ps_backend_download,
 * and chain operations on (buffer, offset) operands; no operation reads or
 * writes host memory except those two copies.
 *
 * Asynchrony: every operation may merely enqueue its work and return (the
 * CUDA backend does, on one stream; the CPU backend runs it at once, its
 * "cpu-deferred" mode only at sync, so tests catch contract breaches). Work
 * runs in the order it was issued. A host array given to upload must stay
 * valid and unchanged, and one given to download must not be read, until
 * ps_backend_sync() returns. Errors an operation can only detect while
 * running (a CUDA launch failure) are reported by a later call or by sync.
 *
 * Checks: the ps_backend_* wrappers check every operand against its
 * buffer's size (PS_ERANGE) and every shape (PS_EINVAL) before calling the
 * backend, so implementations only compute. On an error nothing is issued.
 *
 * Units: buffers are sized in bytes and copies take byte offsets and
 * lengths (like memcpy); compute operations take offsets and counts in
 * elements: floats, or uint32_t for the index operands of gather/scatter.
 * Matrices are row-major with a leading dimension (floats between rows).
 *
 * Threads: a backend and its buffers are used by one thread at a time.
 * "cpu:T" sets OpenBLAS's thread count, which is process-wide.
 *
 * Registry: ps_backend_open() maps a device string to an implementation;
 * the CUDA backend (gpu/) registers itself there when sparkps is built with
 * CUDA. Implementations fill in a ps_backend_ops table (bottom of this
 * file). */
#ifndef PS_BACKEND_H
#define PS_BACKEND_H

#include "common/sparkps_err.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ps_backend ps_backend;
typedef struct ps_buf ps_buf;
typedef struct ps_backend_ops ps_backend_ops;

/* Largest buffer a backend hands out (16 GiB). */
#define PS_BACKEND_MAX_BYTES ((size_t)1 << 34)

/* ---- Registry ---- */

/* Opens the backend for `device`: "cpu" (OpenBLAS with 1 thread), "cpu:T"
 * (T OpenBLAS threads, 1..256), "cpu-deferred" (a testing device: the CPU
 * backend run like a GPU stream, every copy and operation queued until
 * sync; see backend_deferred.c), "cuda" / "cuda:N" (GPU N; PS_ECUDA when
 * sparkps was built without CUDA or the GPU cannot be used). NULL or ""
 * means "cpu". On failure *out is untouched and err (when not NULL) holds
 * the reason. Not thread-safe against other opens ("cpu:T" changes a
 * process-wide setting). */
int ps_backend_open(const char *device, ps_backend **out, char *err,
                    size_t errlen);

typedef enum ps_device_kind {
    PS_DEVICE_CPU,
    PS_DEVICE_CPU_DEFERRED,
    PS_DEVICE_CUDA
} ps_device_kind;

/* Checks a device string's syntax without opening anything: *kind and
 * *num (threads for the CPU, 1 for cpu-deferred, the GPU number for CUDA)
 * on PS_OK; PS_EINVAL
 * with err naming the string otherwise. NULL or "" is "cpu". */
int ps_backend_parse_device(const char *device, ps_device_kind *kind,
                            int *num, char *err, size_t errlen);

/* Frees the backend; every buffer must have been freed first. Waits for
 * outstanding work. Accepts NULL. */
void ps_backend_free(ps_backend *be);

/* "cpu", "cpu:4", "cuda:0", ... (borrowed, lives as long as be). */
const char *ps_backend_name(const ps_backend *be);

/* ---- Buffers and copies ---- */

/* Allocates `bytes` (1..PS_BACKEND_MAX_BYTES) of device memory, contents
 * undefined. PS_ENOMEM / PS_ECUDA when the device has no room. */
int ps_backend_buf_alloc(ps_backend *be, size_t bytes, ps_buf **out);
/* Frees a buffer of this backend after outstanding work. Accepts NULL. */
void ps_backend_buf_free(ps_backend *be, ps_buf *buf);
/* Size in bytes. */
size_t ps_backend_buf_size(const ps_buf *buf);

/* Copies bytes host -> device and device -> host (see Asynchrony). */
int ps_backend_upload(ps_backend *be, ps_buf *dst, size_t dst_off,
                      const void *src, size_t bytes);
int ps_backend_download(ps_backend *be, const ps_buf *src, size_t src_off,
                        void *dst, size_t bytes);

/* ---- The copy stream ----
 *
 * Copies that run beside compute, the way a GPU's copy streams do (one
 * each way on CUDA, so neither direction queues behind the other): the
 * next batch goes up while this one computes, and a layer's gradient comes
 * down while the layers below it still run backwards. Rules:
 *   upload_ahead   may write dst at any moment from this call until the
 *                  next copy_fence, so no operation issued before that
 *                  fence may read or write the range (double-buffer the
 *                  input); src must stay unchanged until the next sync.
 *   copy_fence     operations issued after it see every upload_ahead
 *                  issued before it.
 *   download_ahead copies the range as the operations issued before it
 *                  left it, while later ones run: those must not write the
 *                  range, and dst must not be read, until the next sync
 *                  (no fence orders a download).
 * Sync waits for the copy streams too. Backends without one (the CPU) make
 * these plain in-order copies; "cpu-deferred" runs them at the latest
 * moment allowed and fills an upload_ahead's range with NaN at once, so a
 * breach of the rules shows in its results. */
int ps_backend_upload_ahead(ps_backend *be, ps_buf *dst, size_t dst_off,
                            const void *src, size_t bytes);
int ps_backend_copy_fence(ps_backend *be);
int ps_backend_download_ahead(ps_backend *be, const ps_buf *src,
                              size_t src_off, void *dst, size_t bytes);

/* Waits until all issued work is done; returns its first error. */
int ps_backend_sync(ps_backend *be);

/* Downloads the (mean loss, correct count) pair a *_xent op wrote at
 * stats[off], waits for all issued work, and returns them (either pointer
 * may be NULL). */
int ps_backend_fetch_stats(ps_backend *be, const ps_buf *stats, size_t off,
                           double *loss, size_t *correct);

/* Host memory suited to this backend's copies: page-locked (pinned) on a
 * GPU, so upload/download from it are truly asynchronous; plain memory
 * otherwise. bytes 1..PS_BACKEND_MAX_BYTES; NULL when out of memory. Free
 * it with ps_backend_host_free on the same backend once no copy that uses
 * it is outstanding (after sync); free accepts NULL. */
void *ps_backend_host_alloc(ps_backend *be, size_t bytes);
void ps_backend_host_free(ps_backend *be, void *p);

/* ---- Compute (all operands float unless said otherwise) ---- */

/* A float matrix operand: buffer, first element, leading dimension. */
typedef struct ps_mat {
    ps_buf *buf;
    size_t off; /* floats */
    size_t ld;  /* floats between consecutive rows; >= stored columns */
} ps_mat;

/* C[m,n] = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T
 * (trans_a != 0: A is stored [k,m]; trans_b != 0: B is stored [n,k]).
 * beta 0 overwrites C (NaN in C is not propagated). C must not overlap A
 * or B. */
int ps_backend_sgemm(ps_backend *be, int trans_a, int trans_b, size_t m,
                     size_t n, size_t k, float alpha, ps_mat a, ps_mat b,
                     float beta, ps_mat c);

/* Y[i,:] += bias for every row of Y [rows, cols] (bias: cols floats). */
int ps_backend_add_bias(ps_backend *be, ps_mat y, size_t rows, size_t cols,
                        const ps_buf *bias, size_t bias_off);

/* y = max(x, 0) over n floats; x and y may be the same range. */
int ps_backend_relu_fwd(ps_backend *be, const ps_buf *x, size_t x_off,
                        ps_buf *y, size_t y_off, size_t n);

/* dx = dy where the forward OUTPUT y > 0, else 0; dx may be dy. */
int ps_backend_relu_bwd(ps_backend *be, const ps_buf *dy, size_t dy_off,
                        const ps_buf *y, size_t y_off, ps_buf *dx,
                        size_t dx_off, size_t n);

/* Softmax cross-entropy over n rows of `classes` logits (contiguous,
 * [n, classes]) with integer labels stored as floats (0..classes-1; the
 * caller checks them). Writes out[out_off] = mean loss over the rows and
 * out[out_off + 1] = rows whose argmax (first maximum) equals the label.
 * When grad is not NULL also writes grad [n, classes] = (softmax - onehot)
 * / n, the gradient of the mean loss w.r.t. the logits; grad may be the
 * logits' own range. Stable for any finite logits (max subtracted). */
int ps_backend_softmax_xent(ps_backend *be, const ps_buf *logits,
                            size_t logits_off, const ps_buf *labels,
                            size_t labels_off, size_t n, size_t classes,
                            ps_buf *grad, size_t grad_off, ps_buf *out,
                            size_t out_off);

/* Row-wise softmax of x [n, classes] into y (may be the same range). */
int ps_backend_softmax(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                       size_t y_off, size_t n, size_t classes);

/* y[j] = alpha * y[j] + sum_i X[i,j] over X [rows, cols] (the bias
 * gradient with alpha 0). */
int ps_backend_col_sum(ps_backend *be, ps_mat x, size_t rows, size_t cols,
                       float alpha, ps_buf *y, size_t y_off);

/* x *= alpha over n floats. */
int ps_backend_scale(ps_backend *be, ps_buf *x, size_t x_off, size_t n,
                     float alpha);

/* y += alpha * x over n floats; the ranges must not overlap. */
int ps_backend_axpy(ps_backend *be, size_t n, float alpha, const ps_buf *x,
                    size_t x_off, ps_buf *y, size_t y_off);

/* x = value over n floats. */
int ps_backend_fill(ps_backend *be, ps_buf *x, size_t x_off, size_t n,
                    float value);

/* Sparse rows of a dense block W [rows, dim]: idx holds nidx uint32_t row
 * numbers (offset idx_off in uint32_t). The caller makes sure every index
 * is < rows (hashed keys are reduced modulo rows before upload): the CPU
 * backend returns PS_ERANGE, writing nothing, but a device backend may
 * only skip such rows, and only sync can report it.
 *   gather:  out[i, :] = W[idx[i], :]        (out: [nidx, dim])
 *   scatter: W[idx[i], :] += g[i, :]         (repeated indices add up) */
int ps_backend_gather(ps_backend *be, const ps_buf *w, size_t w_off,
                      size_t rows, size_t dim, const ps_buf *idx,
                      size_t idx_off, size_t nidx, ps_buf *out, size_t out_off);
int ps_backend_scatter_add(ps_backend *be, const ps_buf *g, size_t g_off,
                           const ps_buf *idx, size_t idx_off, size_t nidx,
                           size_t dim, ps_buf *w, size_t w_off, size_t rows);

/* ---- Sparse rows (CSR) and the logistic loss ---- */

/* A CSR matrix X [rows, cols] in three device buffers: rowptr holds rows + 1
 * uint32_t offsets into col/val (rowptr[0] = 0, non-decreasing, rowptr[rows]
 * = nnz), col holds nnz uint32_t column numbers (< cols; repeats within a
 * row add up), val nnz floats. Offsets in elements of each buffer, as for
 * gather. The wrappers check the three ranges; only the implementation
 * reads the contents: the CPU backend checks rowptr and col and returns
 * PS_ERANGE writing nothing, a device backend may only skip bad entries
 * (reported by sync at best), so callers build valid matrices. */
typedef struct ps_csr {
    const ps_buf *rowptr;
    size_t rowptr_off; /* uint32_t */
    const ps_buf *col;
    size_t col_off; /* uint32_t */
    const ps_buf *val;
    size_t val_off; /* floats */
    size_t rows, cols, nnz;
} ps_csr;

/* Y[rows, k] = X · W with W [x.cols, k] dense (row-major, leading dims as
 * for sgemm); Y is overwritten and must not overlap W or X's values. */
int ps_backend_csr_mm(ps_backend *be, ps_csr x, size_t k, ps_mat w, ps_mat y);

/* G[x.cols, k] += X^T · dY with dY [x.rows, k]: the gradient of csr_mm
 * w.r.t. W (fill G with zeros first for a fresh gradient). G must not
 * overlap dY or X's values. */
int ps_backend_csr_mm_t(ps_backend *be, ps_csr x, size_t k, ps_mat dy,
                        ps_mat g);

/* Binary logistic loss over n logits z with labels 0 or 1 stored as floats
 * (anything else: PS_EINVAL, nothing written, on the CPU backend; the
 * caller checks them). Writes out[out_off] = mean log-loss, computed as
 * max(z, 0) - z*y + log1p(exp(-|z|)) (stable for any finite z), and
 * out[out_off + 1] = rows predicted right, predicting 1 when sigmoid(z) >=
 * 0.5 (z >= 0). When grad is not NULL also writes grad[i] = (sigmoid(z_i)
 * - y_i) / n, the gradient of the mean loss; grad may be the logits' own
 * range. */
int ps_backend_sigmoid_xent(ps_backend *be, const ps_buf *logits,
                            size_t logits_off, const ps_buf *labels,
                            size_t labels_off, size_t n, ps_buf *grad,
                            size_t grad_off, ps_buf *out, size_t out_off);

/* y = 1 / (1 + exp(-x)) over n floats (stable for large |x|); y may be x. */
int ps_backend_sigmoid(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                       size_t y_off, size_t n);

/* ---- For backend implementations (worker/backend_cpu.c, gpu/) ----
 *
 * A backend is a ps_backend whose ops point at its table and whose ctx is
 * its own state. The wrappers above have checked every argument (ranges,
 * shapes, non-NULL) before an op runs. Ops return a ps_err. */

struct ps_buf {
    void *data;   /* device address; never a host pointer for callers */
    size_t bytes; /* size */
};

struct ps_backend_ops {
    void (*destroy)(ps_backend *be); /* also frees be itself */
    int (*buf_alloc)(ps_backend *be, size_t bytes, ps_buf **out);
    void (*buf_free)(ps_backend *be, ps_buf *buf);
    int (*upload)(ps_backend *be, ps_buf *dst, size_t dst_off, const void *src,
                  size_t bytes);
    int (*download)(ps_backend *be, const ps_buf *src, size_t src_off,
                    void *dst, size_t bytes);
    int (*sync)(ps_backend *be);
    int (*sgemm)(ps_backend *be, int trans_a, int trans_b, size_t m, size_t n,
                 size_t k, float alpha, ps_mat a, ps_mat b, float beta,
                 ps_mat c);
    int (*add_bias)(ps_backend *be, ps_mat y, size_t rows, size_t cols,
                    const ps_buf *bias, size_t bias_off);
    int (*relu_fwd)(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                    size_t y_off, size_t n);
    int (*relu_bwd)(ps_backend *be, const ps_buf *dy, size_t dy_off,
                    const ps_buf *y, size_t y_off, ps_buf *dx, size_t dx_off,
                    size_t n);
    int (*softmax_xent)(ps_backend *be, const ps_buf *logits, size_t logits_off,
                        const ps_buf *labels, size_t labels_off, size_t n,
                        size_t classes, ps_buf *grad, size_t grad_off,
                        ps_buf *out, size_t out_off);
    int (*softmax)(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                   size_t y_off, size_t n, size_t classes);
    int (*col_sum)(ps_backend *be, ps_mat x, size_t rows, size_t cols,
                   float alpha, ps_buf *y, size_t y_off);
    int (*scale)(ps_backend *be, ps_buf *x, size_t x_off, size_t n,
                 float alpha);
    int (*axpy)(ps_backend *be, size_t n, float alpha, const ps_buf *x,
                size_t x_off, ps_buf *y, size_t y_off);
    int (*fill)(ps_backend *be, ps_buf *x, size_t x_off, size_t n, float value);
    int (*gather)(ps_backend *be, const ps_buf *w, size_t w_off, size_t rows,
                  size_t dim, const ps_buf *idx, size_t idx_off, size_t nidx,
                  ps_buf *out, size_t out_off);
    int (*scatter_add)(ps_backend *be, const ps_buf *g, size_t g_off,
                       const ps_buf *idx, size_t idx_off, size_t nidx,
                       size_t dim, ps_buf *w, size_t w_off, size_t rows);
    int (*csr_mm)(ps_backend *be, ps_csr x, size_t k, ps_mat w, ps_mat y);
    int (*csr_mm_t)(ps_backend *be, ps_csr x, size_t k, ps_mat dy, ps_mat g);
    int (*sigmoid_xent)(ps_backend *be, const ps_buf *logits, size_t logits_off,
                        const ps_buf *labels, size_t labels_off, size_t n,
                        ps_buf *grad, size_t grad_off, ps_buf *out,
                        size_t out_off);
    int (*sigmoid)(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                   size_t y_off, size_t n);
    /* Optional (NULL: upload/download in order, fence a no-op): the copy
     * stream. */
    int (*upload_ahead)(ps_backend *be, ps_buf *dst, size_t dst_off,
                        const void *src, size_t bytes);
    int (*copy_fence)(ps_backend *be);
    int (*download_ahead)(ps_backend *be, const ps_buf *src, size_t src_off,
                          void *dst, size_t bytes);
    /* Optional (NULL: malloc/free): host memory for fast copies. */
    void *(*host_alloc)(ps_backend *be, size_t bytes);
    void (*host_free)(ps_backend *be, void *p);
};

struct ps_backend {
    const ps_backend_ops *ops;
    void *ctx;     /* the implementation's state */
    char name[32]; /* what ps_backend_name returns */
    /* Host memory (pinned on a GPU) fetch_stats downloads into, made on
     * first use: a copy into ordinary memory would make the host wait
     * for the stream before sync does, a second wait in every step. */
    float *stats_host;
};

/* Constructors the registry calls. `threads` >= 1. */
int ps_backend_cpu_new(int threads, ps_backend **out, char *err, size_t errlen);
/* The deferred CPU backend ("cpu-deferred", one OpenBLAS thread). */
int ps_backend_cpu_deferred_new(ps_backend **out, char *err, size_t errlen);
/* Provided by gpu/ only when sparkps is built with CUDA. */
int ps_backend_cuda_new(int device, ps_backend **out, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif
