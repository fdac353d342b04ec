/* Backend registry and the checked entry points of every operation.
 *
 * ps_backend_open() parses the device string and calls the matching
 * constructor; this is the only place that knows which backends were built
 * (SPARKPS_HAVE_CUDA is defined by the build when gpu/ is linked in). The
 * ps_backend_* wrappers check operands against buffer sizes and shapes once
 * here, so no implementation repeats it. No state of its own: thread safety
 * is that of the backend called. */
#include "backend.h"

#include "common/errmsg.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PS_BACKEND_MAX_THREADS 256

/* Parses a decimal integer in [lo, hi] that spans all of s. */
static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    if (*s < '0' || *s > '9')
        return PS_EINVAL;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return PS_EINVAL;
    *out = v;
    return PS_OK;
}

static int open_cuda(long device, ps_backend **out, char *err, size_t errlen)
{
#ifdef SPARKPS_HAVE_CUDA
    return ps_backend_cuda_new((int)device, out, err, errlen);
#else
    (void)out;
    ps_errf(err, errlen, PS_OK,
            "device cuda:%ld: sparkps was built without CUDA "
            "(configure with -DSPARKPS_CUDA=ON on a machine with nvcc)",
            device);
    return PS_ECUDA;
#endif
}

int ps_backend_parse_device(const char *device, ps_device_kind *kind,
                            int *num, char *err, size_t errlen)
{
    long v = 1;

    if (device == NULL || device[0] == '\0' || strcmp(device, "cpu") == 0) {
        *kind = PS_DEVICE_CPU;
    } else if (strcmp(device, "cpu-deferred") == 0) {
        *kind = PS_DEVICE_CPU_DEFERRED;
    } else if (strncmp(device, "cpu:", 4) == 0) {
        if (parse_int(device + 4, 1, PS_BACKEND_MAX_THREADS, &v) != PS_OK) {
            ps_errf(err, errlen, PS_OK,
                    "device \"%s\": want cpu:T with T threads in 1..%d", device,
                    PS_BACKEND_MAX_THREADS);
            return PS_EINVAL;
        }
        *kind = PS_DEVICE_CPU;
    } else if (strcmp(device, "cuda") == 0) {
        *kind = PS_DEVICE_CUDA;
        v = 0;
    } else if (strncmp(device, "cuda:", 5) == 0) {
        if (parse_int(device + 5, 0, INT_MAX, &v) != PS_OK) {
            ps_errf(err, errlen, PS_OK, "device \"%s\": want cuda:N, N >= 0",
                    device);
            return PS_EINVAL;
        }
        *kind = PS_DEVICE_CUDA;
    } else {
        ps_errf(err, errlen, PS_OK,
                "unknown device \"%s\" (want cpu, cpu:T, cpu-deferred or "
                "cuda:N)", device);
        return PS_EINVAL;
    }
    *num = (int)v;
    return PS_OK;
}

int ps_backend_open(const char *device, ps_backend **out, char *err,
                    size_t errlen)
{
    ps_device_kind kind;
    int num, rc;

    if (out == NULL) {
        ps_errf(err, errlen, PS_OK, "ps_backend_open: out is NULL");
        return PS_EINVAL;
    }
    if ((rc = ps_backend_parse_device(device, &kind, &num, err, errlen)) !=
        PS_OK)
        return rc;
    if (kind == PS_DEVICE_CPU)
        return ps_backend_cpu_new(num, out, err, errlen);
    if (kind == PS_DEVICE_CPU_DEFERRED)
        return ps_backend_cpu_deferred_new(out, err, errlen);
    return open_cuda(num, out, err, errlen);
}

void ps_backend_free(ps_backend *be)
{
    if (be == NULL)
        return;
    if (be->stats_host != NULL)
        ps_backend_host_free(be, be->stats_host);
    be->ops->destroy(be);
}

const char *ps_backend_name(const ps_backend *be)
{
    return be->name;
}

/* ---- Operand checks ---- */

/* True when [off, off + count) elements of `size` bytes fit in buf. */
static int fits(const ps_buf *buf, size_t off, size_t count, size_t size)
{
    size_t elems;

    if (buf == NULL)
        return 0;
    elems = buf->bytes / size;
    return off <= elems && count <= elems - off;
}

static int fits_f(const ps_buf *buf, size_t off, size_t count)
{
    return fits(buf, off, count, sizeof(float));
}

/* Product of two sizes, or SIZE_MAX on overflow (which then fits nothing). */
static size_t mul(size_t a, size_t b)
{
    if (a != 0 && b > SIZE_MAX / a)
        return SIZE_MAX;
    return a * b;
}

/* Checks a stored [rows, cols] row-major matrix operand. */
static int check_mat(const ps_mat *x, size_t rows, size_t cols)
{
    size_t need;

    if (x->buf == NULL || x->ld < cols || x->ld == 0)
        return PS_EINVAL;
    if (rows == 0 || cols == 0)
        return PS_OK;
    need = mul(rows - 1, x->ld);
    if (need == SIZE_MAX || need > SIZE_MAX - cols)
        return PS_ERANGE;
    return fits_f(x->buf, x->off, need + cols) ? PS_OK : PS_ERANGE;
}

/* ---- Buffers and copies ---- */

int ps_backend_buf_alloc(ps_backend *be, size_t bytes, ps_buf **out)
{
    if (out == NULL || bytes == 0 || bytes > PS_BACKEND_MAX_BYTES)
        return PS_EINVAL;
    return be->ops->buf_alloc(be, bytes, out);
}

void ps_backend_buf_free(ps_backend *be, ps_buf *buf)
{
    if (buf != NULL)
        be->ops->buf_free(be, buf);
}

size_t ps_backend_buf_size(const ps_buf *buf)
{
    return buf->bytes;
}

/* The checks every copy shares; 1 when there is nothing to copy. */
static int copy_args(const ps_buf *buf, size_t off, const void *host,
                     size_t bytes, int *rc)
{
    *rc = PS_OK;
    if (bytes == 0)
        return 1;
    if (host == NULL)
        *rc = PS_EINVAL;
    else if (!fits(buf, off, bytes, 1))
        *rc = PS_ERANGE;
    return *rc != PS_OK;
}

int ps_backend_upload(ps_backend *be, ps_buf *dst, size_t dst_off,
                      const void *src, size_t bytes)
{
    int rc;
    if (copy_args(dst, dst_off, src, bytes, &rc))
        return rc;
    return be->ops->upload(be, dst, dst_off, src, bytes);
}

int ps_backend_download(ps_backend *be, const ps_buf *src, size_t src_off,
                        void *dst, size_t bytes)
{
    int rc;
    if (copy_args(src, src_off, dst, bytes, &rc))
        return rc;
    return be->ops->download(be, src, src_off, dst, bytes);
}

int ps_backend_upload_ahead(ps_backend *be, ps_buf *dst, size_t dst_off,
                            const void *src, size_t bytes)
{
    int rc;
    if (be->ops->upload_ahead == NULL)
        return ps_backend_upload(be, dst, dst_off, src, bytes);
    if (copy_args(dst, dst_off, src, bytes, &rc))
        return rc;
    return be->ops->upload_ahead(be, dst, dst_off, src, bytes);
}

int ps_backend_copy_fence(ps_backend *be)
{
    return be->ops->copy_fence == NULL ? PS_OK : be->ops->copy_fence(be);
}

int ps_backend_download_ahead(ps_backend *be, const ps_buf *src,
                              size_t src_off, void *dst, size_t bytes)
{
    int rc;
    if (be->ops->download_ahead == NULL)
        return ps_backend_download(be, src, src_off, dst, bytes);
    if (copy_args(src, src_off, dst, bytes, &rc))
        return rc;
    return be->ops->download_ahead(be, src, src_off, dst, bytes);
}

int ps_backend_sync(ps_backend *be)
{
    return be->ops->sync(be);
}

int ps_backend_fetch_stats(ps_backend *be, const ps_buf *stats, size_t off,
                           double *loss, size_t *correct)
{
    float local[2];
    if (be->stats_host == NULL)
        be->stats_host = ps_backend_host_alloc(be, sizeof(local));
    /* Without host memory of the backend's, ordinary memory still works. */
    float *v = be->stats_host != NULL ? be->stats_host : local;
    int rc = ps_backend_download(be, stats, off * sizeof(float), v,
                                 sizeof(local));
    if (rc == PS_OK)
        rc = ps_backend_sync(be);
    if (rc != PS_OK)
        return rc;
    if (loss != NULL)
        *loss = v[0];
    if (correct != NULL)
        *correct = (size_t)v[1];
    return PS_OK;
}

void *ps_backend_host_alloc(ps_backend *be, size_t bytes)
{
    if (bytes == 0 || bytes > PS_BACKEND_MAX_BYTES)
        return NULL;
    if (be->ops->host_alloc == NULL)
        return malloc(bytes);
    return be->ops->host_alloc(be, bytes);
}

void ps_backend_host_free(ps_backend *be, void *p)
{
    if (p == NULL)
        return;
    if (be->ops->host_free == NULL)
        free(p);
    else
        be->ops->host_free(be, p);
}

/* ---- Compute ---- */

int ps_backend_sgemm(ps_backend *be, int trans_a, int trans_b, size_t m,
                     size_t n, size_t k, float alpha, ps_mat a, ps_mat b,
                     float beta, ps_mat c)
{
    int rc;

    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || a.ld > INT_MAX ||
        b.ld > INT_MAX || c.ld > INT_MAX)
        return PS_EINVAL;
    if ((rc = check_mat(&a, trans_a ? k : m, trans_a ? m : k)) != PS_OK ||
        (rc = check_mat(&b, trans_b ? n : k, trans_b ? k : n)) != PS_OK ||
        (rc = check_mat(&c, m, n)) != PS_OK)
        return rc;
    if (m == 0 || n == 0)
        return PS_OK;
    return be->ops->sgemm(be, trans_a != 0, trans_b != 0, m, n, k, alpha, a, b,
                          beta, c);
}

int ps_backend_add_bias(ps_backend *be, ps_mat y, size_t rows, size_t cols,
                        const ps_buf *bias, size_t bias_off)
{
    int rc;

    if ((rc = check_mat(&y, rows, cols)) != PS_OK)
        return rc;
    if (!fits_f(bias, bias_off, cols))
        return bias == NULL ? PS_EINVAL : PS_ERANGE;
    if (rows == 0 || cols == 0)
        return PS_OK;
    return be->ops->add_bias(be, y, rows, cols, bias, bias_off);
}

int ps_backend_relu_fwd(ps_backend *be, const ps_buf *x, size_t x_off,
                        ps_buf *y, size_t y_off, size_t n)
{
    if (x == NULL || y == NULL)
        return PS_EINVAL;
    if (!fits_f(x, x_off, n) || !fits_f(y, y_off, n))
        return PS_ERANGE;
    if (n == 0)
        return PS_OK;
    return be->ops->relu_fwd(be, x, x_off, y, y_off, n);
}

int ps_backend_relu_bwd(ps_backend *be, const ps_buf *dy, size_t dy_off,
                        const ps_buf *y, size_t y_off, ps_buf *dx,
                        size_t dx_off, size_t n)
{
    if (dy == NULL || y == NULL || dx == NULL)
        return PS_EINVAL;
    if (!fits_f(dy, dy_off, n) || !fits_f(y, y_off, n) ||
        !fits_f(dx, dx_off, n))
        return PS_ERANGE;
    if (n == 0)
        return PS_OK;
    return be->ops->relu_bwd(be, dy, dy_off, y, y_off, dx, dx_off, n);
}

int ps_backend_softmax_xent(ps_backend *be, const ps_buf *logits,
                            size_t logits_off, const ps_buf *labels,
                            size_t labels_off, size_t n, size_t classes,
                            ps_buf *grad, size_t grad_off, ps_buf *out,
                            size_t out_off)
{
    size_t total = mul(n, classes);

    if (logits == NULL || labels == NULL || out == NULL || n == 0 ||
        classes == 0)
        return PS_EINVAL;
    if (!fits_f(logits, logits_off, total) || !fits_f(labels, labels_off, n) ||
        !fits_f(out, out_off, 2) ||
        (grad != NULL && !fits_f(grad, grad_off, total)))
        return PS_ERANGE;
    return be->ops->softmax_xent(be, logits, logits_off, labels, labels_off, n,
                                 classes, grad, grad_off, out, out_off);
}

int ps_backend_softmax(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                       size_t y_off, size_t n, size_t classes)
{
    size_t total = mul(n, classes);

    if (x == NULL || y == NULL || classes == 0)
        return PS_EINVAL;
    if (!fits_f(x, x_off, total) || !fits_f(y, y_off, total))
        return PS_ERANGE;
    if (n == 0)
        return PS_OK;
    return be->ops->softmax(be, x, x_off, y, y_off, n, classes);
}

int ps_backend_col_sum(ps_backend *be, ps_mat x, size_t rows, size_t cols,
                       float alpha, ps_buf *y, size_t y_off)
{
    int rc;

    if ((rc = check_mat(&x, rows, cols)) != PS_OK)
        return rc;
    if (!fits_f(y, y_off, cols))
        return y == NULL ? PS_EINVAL : PS_ERANGE;
    if (cols == 0)
        return PS_OK;
    return be->ops->col_sum(be, x, rows, cols, alpha, y, y_off);
}

int ps_backend_scale(ps_backend *be, ps_buf *x, size_t x_off, size_t n,
                     float alpha)
{
    if (!fits_f(x, x_off, n))
        return x == NULL ? PS_EINVAL : PS_ERANGE;
    if (n == 0)
        return PS_OK;
    return be->ops->scale(be, x, x_off, n, alpha);
}

int ps_backend_axpy(ps_backend *be, size_t n, float alpha, const ps_buf *x,
                    size_t x_off, ps_buf *y, size_t y_off)
{
    if (x == NULL || y == NULL)
        return PS_EINVAL;
    if (!fits_f(x, x_off, n) || !fits_f(y, y_off, n))
        return PS_ERANGE;
    if (n == 0)
        return PS_OK;
    return be->ops->axpy(be, n, alpha, x, x_off, y, y_off);
}

int ps_backend_fill(ps_backend *be, ps_buf *x, size_t x_off, size_t n,
                    float value)
{
    if (!fits_f(x, x_off, n))
        return x == NULL ? PS_EINVAL : PS_ERANGE;
    if (n == 0)
        return PS_OK;
    return be->ops->fill(be, x, x_off, n, value);
}

int ps_backend_gather(ps_backend *be, const ps_buf *w, size_t w_off,
                      size_t rows, size_t dim, const ps_buf *idx,
                      size_t idx_off, size_t nidx, ps_buf *out, size_t out_off)
{
    if (w == NULL || idx == NULL || out == NULL || dim == 0)
        return PS_EINVAL;
    if (!fits_f(w, w_off, mul(rows, dim)) ||
        !fits(idx, idx_off, nidx, sizeof(uint32_t)) ||
        !fits_f(out, out_off, mul(nidx, dim)))
        return PS_ERANGE;
    if (nidx == 0)
        return PS_OK;
    return be->ops->gather(be, w, w_off, rows, dim, idx, idx_off, nidx, out,
                           out_off);
}

int ps_backend_scatter_add(ps_backend *be, const ps_buf *g, size_t g_off,
                           const ps_buf *idx, size_t idx_off, size_t nidx,
                           size_t dim, ps_buf *w, size_t w_off, size_t rows)
{
    if (g == NULL || idx == NULL || w == NULL || dim == 0)
        return PS_EINVAL;
    if (!fits_f(g, g_off, mul(nidx, dim)) ||
        !fits(idx, idx_off, nidx, sizeof(uint32_t)) ||
        !fits_f(w, w_off, mul(rows, dim)))
        return PS_ERANGE;
    if (nidx == 0)
        return PS_OK;
    return be->ops->scatter_add(be, g, g_off, idx, idx_off, nidx, dim, w, w_off,
                                rows);
}

/* Checks a CSR operand's three ranges; its contents are the backend's to
 * check (they live on the device). */
static int check_csr(const ps_csr *x)
{
    if (x->rowptr == NULL || x->col == NULL || x->val == NULL ||
        x->rows >= UINT32_MAX || x->nnz > UINT32_MAX)
        return PS_EINVAL;
    if (!fits(x->rowptr, x->rowptr_off, x->rows + 1, sizeof(uint32_t)) ||
        !fits(x->col, x->col_off, x->nnz, sizeof(uint32_t)) ||
        !fits_f(x->val, x->val_off, x->nnz))
        return PS_ERANGE;
    return PS_OK;
}

int ps_backend_csr_mm(ps_backend *be, ps_csr x, size_t k, ps_mat w, ps_mat y)
{
    int rc;

    if (k == 0)
        return PS_EINVAL;
    if ((rc = check_csr(&x)) != PS_OK ||
        (rc = check_mat(&w, x.cols, k)) != PS_OK ||
        (rc = check_mat(&y, x.rows, k)) != PS_OK)
        return rc;
    if (x.rows == 0)
        return PS_OK;
    return be->ops->csr_mm(be, x, k, w, y);
}

int ps_backend_csr_mm_t(ps_backend *be, ps_csr x, size_t k, ps_mat dy, ps_mat g)
{
    int rc;

    if (k == 0)
        return PS_EINVAL;
    if ((rc = check_csr(&x)) != PS_OK ||
        (rc = check_mat(&dy, x.rows, k)) != PS_OK ||
        (rc = check_mat(&g, x.cols, k)) != PS_OK)
        return rc;
    if (x.rows == 0 || x.cols == 0)
        return PS_OK;
    return be->ops->csr_mm_t(be, x, k, dy, g);
}

int ps_backend_sigmoid_xent(ps_backend *be, const ps_buf *logits,
                            size_t logits_off, const ps_buf *labels,
                            size_t labels_off, size_t n, ps_buf *grad,
                            size_t grad_off, ps_buf *out, size_t out_off)
{
    if (logits == NULL || labels == NULL || out == NULL || n == 0)
        return PS_EINVAL;
    if (!fits_f(logits, logits_off, n) || !fits_f(labels, labels_off, n) ||
        !fits_f(out, out_off, 2) ||
        (grad != NULL && !fits_f(grad, grad_off, n)))
        return PS_ERANGE;
    return be->ops->sigmoid_xent(be, logits, logits_off, labels, labels_off, n,
                                 grad, grad_off, out, out_off);
}

int ps_backend_sigmoid(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                       size_t y_off, size_t n)
{
    if (x == NULL || y == NULL)
        return PS_EINVAL;
    if (!fits_f(x, x_off, n) || !fits_f(y, y_off, n))
        return PS_ERANGE;
    if (n == 0)
        return PS_OK;
    return be->ops->sigmoid(be, x, x_off, y, y_off, n);
}
