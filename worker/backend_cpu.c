/* The CPU compute backend: OpenBLAS sgemm and plain C loops.
 *
 * "Device" buffers are 64-byte aligned host allocations; every operation
 * runs to completion before it returns, so sync has nothing to wait for.
 * The thread count given at creation goes to openblas_set_num_threads(),
 * which is process-wide: the last CPU backend opened wins. Loops are
 * written so the compiler can vectorise them; reductions (loss, softmax
 * denominators) accumulate in double. */
#include "backend.h"

#include <cblas.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Declared by OpenBLAS's cblas.h, but not by every cblas.h the alternatives
 * system may point at; an identical redeclaration is harmless. */
void openblas_set_num_threads(int num_threads);

#define CPU_ALIGN 64

static float *fptr(const ps_buf *b, size_t off)
{
    return (float *)b->data + off;
}

static void cpu_destroy(ps_backend *be)
{
    free(be);
}

static int cpu_buf_alloc(ps_backend *be, size_t bytes, ps_buf **out)
{
    ps_buf *b;
    size_t rounded = (bytes + CPU_ALIGN - 1) / CPU_ALIGN * CPU_ALIGN;

    (void)be;
    b = malloc(sizeof(*b));
    if (b == NULL)
        return PS_ENOMEM;
    b->data = aligned_alloc(CPU_ALIGN, rounded);
    if (b->data == NULL) {
        free(b);
        return PS_ENOMEM;
    }
    b->bytes = bytes;
    *out = b;
    return PS_OK;
}

static void cpu_buf_free(ps_backend *be, ps_buf *buf)
{
    (void)be;
    free(buf->data);
    free(buf);
}

static int cpu_upload(ps_backend *be, ps_buf *dst, size_t dst_off,
                      const void *src, size_t bytes)
{
    (void)be;
    memmove((char *)dst->data + dst_off, src, bytes);
    return PS_OK;
}

static int cpu_download(ps_backend *be, const ps_buf *src, size_t src_off,
                        void *dst, size_t bytes)
{
    (void)be;
    memmove(dst, (const char *)src->data + src_off, bytes);
    return PS_OK;
}

static int cpu_sync(ps_backend *be)
{
    (void)be;
    return PS_OK;
}

static int cpu_sgemm(ps_backend *be, int trans_a, int trans_b, size_t m,
                     size_t n, size_t k, float alpha, ps_mat a, ps_mat b,
                     float beta, ps_mat c)
{
    (void)be;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
                alpha, fptr(a.buf, a.off), (int)a.ld, fptr(b.buf, b.off),
                (int)b.ld, beta, fptr(c.buf, c.off), (int)c.ld);
    return PS_OK;
}

static int cpu_add_bias(ps_backend *be, ps_mat y, size_t rows, size_t cols,
                        const ps_buf *bias, size_t bias_off)
{
    const float *bv = fptr(bias, bias_off);

    (void)be;
    for (size_t i = 0; i < rows; i++) {
        float *row = fptr(y.buf, y.off + i * y.ld);
        for (size_t j = 0; j < cols; j++)
            row[j] += bv[j];
    }
    return PS_OK;
}

static int cpu_relu_fwd(ps_backend *be, const ps_buf *x, size_t x_off,
                        ps_buf *y, size_t y_off, size_t n)
{
    const float *xv = fptr(x, x_off);
    float *yv = fptr(y, y_off);

    (void)be;
    for (size_t i = 0; i < n; i++)
        yv[i] = xv[i] > 0.0f ? xv[i] : 0.0f;
    return PS_OK;
}

static int cpu_relu_bwd(ps_backend *be, const ps_buf *dy, size_t dy_off,
                        const ps_buf *y, size_t y_off, ps_buf *dx,
                        size_t dx_off, size_t n)
{
    const float *dyv = fptr(dy, dy_off);
    const float *yv = fptr(y, y_off);
    float *dxv = fptr(dx, dx_off);

    (void)be;
    for (size_t i = 0; i < n; i++)
        dxv[i] = yv[i] > 0.0f ? dyv[i] : 0.0f;
    return PS_OK;
}

/* Row max and first argmax. */
static float row_max(const float *x, size_t classes, size_t *argmax)
{
    float mx = x[0];
    size_t am = 0;

    for (size_t j = 1; j < classes; j++) {
        if (x[j] > mx) {
            mx = x[j];
            am = j;
        }
    }
    *argmax = am;
    return mx;
}

static int cpu_softmax_xent(ps_backend *be, const ps_buf *logits,
                            size_t logits_off, const ps_buf *labels,
                            size_t labels_off, size_t n, size_t classes,
                            ps_buf *grad, size_t grad_off, ps_buf *out,
                            size_t out_off)
{
    const float *lab = fptr(labels, labels_off);
    double loss = 0.0;
    size_t correct = 0;
    float inv_n = 1.0f / (float)n;

    (void)be;
    /* A bad label would index outside the row: refuse before writing. */
    for (size_t i = 0; i < n; i++)
        if (!(lab[i] >= 0.0f && lab[i] < (float)classes))
            return PS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        const float *x = fptr(logits, logits_off + i * classes);
        size_t y = (size_t)lab[i], am;
        float mx = row_max(x, classes, &am);
        double sum = 0.0;

        for (size_t j = 0; j < classes; j++)
            sum += exp((double)x[j] - (double)mx);
        /* -log softmax(x)[y] = log(sum) - (x[y] - max) */
        loss += log(sum) - ((double)x[y] - (double)mx);
        correct += am == y;
        if (grad != NULL) {
            float *g = fptr(grad, grad_off + i * classes);
            float inv_sum = (float)(1.0 / sum);
            /* x[y] is read before g[y] is written when grad aliases x. */
            for (size_t j = 0; j < classes; j++)
                g[j] = expf(x[j] - mx) * inv_sum * inv_n;
            g[y] -= inv_n;
        }
    }
    fptr(out, out_off)[0] = (float)(loss / (double)n);
    fptr(out, out_off)[1] = (float)correct;
    return PS_OK;
}

static int cpu_softmax(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                       size_t y_off, size_t n, size_t classes)
{
    (void)be;
    for (size_t i = 0; i < n; i++) {
        const float *xr = fptr(x, x_off + i * classes);
        float *yr = fptr(y, y_off + i * classes);
        size_t am;
        float mx = row_max(xr, classes, &am);
        double sum = 0.0;

        for (size_t j = 0; j < classes; j++) {
            yr[j] = expf(xr[j] - mx);
            sum += yr[j];
        }
        float inv = (float)(1.0 / sum);
        for (size_t j = 0; j < classes; j++)
            yr[j] *= inv;
    }
    return PS_OK;
}

static int cpu_col_sum(ps_backend *be, ps_mat x, size_t rows, size_t cols,
                       float alpha, ps_buf *y, size_t y_off)
{
    float *yv = fptr(y, y_off);

    (void)be;
    if (alpha == 0.0f)
        memset(yv, 0, cols * sizeof(float));
    else if (alpha != 1.0f)
        for (size_t j = 0; j < cols; j++)
            yv[j] *= alpha;
    for (size_t i = 0; i < rows; i++) {
        const float *row = fptr(x.buf, x.off + i * x.ld);
        for (size_t j = 0; j < cols; j++)
            yv[j] += row[j];
    }
    return PS_OK;
}

static int cpu_scale(ps_backend *be, ps_buf *x, size_t x_off, size_t n,
                     float alpha)
{
    float *xv = fptr(x, x_off);

    (void)be;
    for (size_t i = 0; i < n; i++)
        xv[i] *= alpha;
    return PS_OK;
}

static int cpu_axpy(ps_backend *be, size_t n, float alpha, const ps_buf *x,
                    size_t x_off, ps_buf *y, size_t y_off)
{
    const float *xv = fptr(x, x_off);
    float *yv = fptr(y, y_off);

    (void)be;
    for (size_t i = 0; i < n; i++)
        yv[i] += alpha * xv[i];
    return PS_OK;
}

static int cpu_fill(ps_backend *be, ps_buf *x, size_t x_off, size_t n,
                    float value)
{
    float *xv = fptr(x, x_off);

    (void)be;
    for (size_t i = 0; i < n; i++)
        xv[i] = value;
    return PS_OK;
}

static int check_idx(const uint32_t *idx, size_t nidx, size_t rows)
{
    for (size_t i = 0; i < nidx; i++)
        if (idx[i] >= rows)
            return PS_ERANGE;
    return PS_OK;
}

static int cpu_gather(ps_backend *be, const ps_buf *w, size_t w_off,
                      size_t rows, size_t dim, const ps_buf *idx,
                      size_t idx_off, size_t nidx, ps_buf *out, size_t out_off)
{
    const uint32_t *iv = (const uint32_t *)idx->data + idx_off;
    int rc;

    (void)be;
    if ((rc = check_idx(iv, nidx, rows)) != PS_OK)
        return rc;
    for (size_t i = 0; i < nidx; i++)
        memcpy(fptr(out, out_off + i * dim), fptr(w, w_off + iv[i] * dim),
               dim * sizeof(float));
    return PS_OK;
}

static int cpu_scatter_add(ps_backend *be, const ps_buf *g, size_t g_off,
                           const ps_buf *idx, size_t idx_off, size_t nidx,
                           size_t dim, ps_buf *w, size_t w_off, size_t rows)
{
    const uint32_t *iv = (const uint32_t *)idx->data + idx_off;
    int rc;

    (void)be;
    if ((rc = check_idx(iv, nidx, rows)) != PS_OK)
        return rc;
    for (size_t i = 0; i < nidx; i++) {
        const float *gr = fptr(g, g_off + i * dim);
        float *wr = fptr(w, w_off + iv[i] * dim);
        for (size_t d = 0; d < dim; d++)
            wr[d] += gr[d];
    }
    return PS_OK;
}

/* Refuses a CSR matrix whose structure would index outside its operands. */
static int check_csr_data(const ps_csr *x)
{
    const uint32_t *rp = (const uint32_t *)x->rowptr->data + x->rowptr_off;
    const uint32_t *col = (const uint32_t *)x->col->data + x->col_off;

    if (rp[0] != 0 || rp[x->rows] != x->nnz)
        return PS_ERANGE;
    for (size_t i = 0; i < x->rows; i++)
        if (rp[i + 1] < rp[i])
            return PS_ERANGE;
    return check_idx(col, x->nnz, x->cols);
}

static int cpu_csr_mm(ps_backend *be, ps_csr x, size_t k, ps_mat w, ps_mat y)
{
    const uint32_t *rp = (const uint32_t *)x.rowptr->data + x.rowptr_off;
    const uint32_t *col = (const uint32_t *)x.col->data + x.col_off;
    const float *val = fptr(x.val, x.val_off);
    int rc;

    (void)be;
    if ((rc = check_csr_data(&x)) != PS_OK)
        return rc;
    for (size_t i = 0; i < x.rows; i++) {
        float *yr = fptr(y.buf, y.off + i * y.ld);
        if (k == 1) { /* logistic regression: one dot product per row */
            double acc = 0.0;
            for (uint32_t p = rp[i]; p < rp[i + 1]; p++)
                acc += (double)val[p] * fptr(w.buf, w.off + col[p] * w.ld)[0];
            yr[0] = (float)acc;
            continue;
        }
        memset(yr, 0, k * sizeof(float));
        for (uint32_t p = rp[i]; p < rp[i + 1]; p++) {
            const float *wr = fptr(w.buf, w.off + col[p] * w.ld);
            for (size_t j = 0; j < k; j++)
                yr[j] += val[p] * wr[j];
        }
    }
    return PS_OK;
}

static int cpu_csr_mm_t(ps_backend *be, ps_csr x, size_t k, ps_mat dy, ps_mat g)
{
    const uint32_t *rp = (const uint32_t *)x.rowptr->data + x.rowptr_off;
    const uint32_t *col = (const uint32_t *)x.col->data + x.col_off;
    const float *val = fptr(x.val, x.val_off);
    int rc;

    (void)be;
    if ((rc = check_csr_data(&x)) != PS_OK)
        return rc;
    for (size_t i = 0; i < x.rows; i++) {
        const float *dr = fptr(dy.buf, dy.off + i * dy.ld);
        for (uint32_t p = rp[i]; p < rp[i + 1]; p++) {
            float *gr = fptr(g.buf, g.off + col[p] * g.ld);
            for (size_t j = 0; j < k; j++)
                gr[j] += val[p] * dr[j];
        }
    }
    return PS_OK;
}

/* 1 / (1 + exp(-z)) without overflow for either sign of z. */
static double sigmoid_d(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

static int cpu_sigmoid_xent(ps_backend *be, const ps_buf *logits,
                            size_t logits_off, const ps_buf *labels,
                            size_t labels_off, size_t n, ps_buf *grad,
                            size_t grad_off, ps_buf *out, size_t out_off)
{
    const float *z = fptr(logits, logits_off);
    const float *lab = fptr(labels, labels_off);
    float *g = grad != NULL ? fptr(grad, grad_off) : NULL;
    double loss = 0.0, inv_n = 1.0 / (double)n;
    size_t correct = 0;

    (void)be;
    for (size_t i = 0; i < n; i++)
        if (lab[i] != 0.0f && lab[i] != 1.0f)
            return PS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        double zi = z[i], y = lab[i];
        loss += (zi > 0 ? zi : 0.0) - zi * y + log1p(exp(-fabs(zi)));
        correct += (zi >= 0) == (y == 1.0);
        if (g != NULL) /* z[i] is read before g[i] is written */
            g[i] = (float)((sigmoid_d(zi) - y) * inv_n);
    }
    fptr(out, out_off)[0] = (float)(loss * inv_n);
    fptr(out, out_off)[1] = (float)correct;
    return PS_OK;
}

static int cpu_sigmoid(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                       size_t y_off, size_t n)
{
    const float *xv = fptr(x, x_off);
    float *yv = fptr(y, y_off);

    (void)be;
    for (size_t i = 0; i < n; i++)
        yv[i] = (float)sigmoid_d(xv[i]);
    return PS_OK;
}

static const ps_backend_ops cpu_ops = {
    .destroy = cpu_destroy,
    .buf_alloc = cpu_buf_alloc,
    .buf_free = cpu_buf_free,
    .upload = cpu_upload,
    .download = cpu_download,
    .sync = cpu_sync,
    .sgemm = cpu_sgemm,
    .add_bias = cpu_add_bias,
    .relu_fwd = cpu_relu_fwd,
    .relu_bwd = cpu_relu_bwd,
    .softmax_xent = cpu_softmax_xent,
    .softmax = cpu_softmax,
    .col_sum = cpu_col_sum,
    .scale = cpu_scale,
    .axpy = cpu_axpy,
    .fill = cpu_fill,
    .gather = cpu_gather,
    .scatter_add = cpu_scatter_add,
    .csr_mm = cpu_csr_mm,
    .csr_mm_t = cpu_csr_mm_t,
    .sigmoid_xent = cpu_sigmoid_xent,
    .sigmoid = cpu_sigmoid,
};

int ps_backend_cpu_new(int threads, ps_backend **out, char *err, size_t errlen)
{
    ps_backend *be;

    if (threads < 1) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "cpu backend: threads must be >= 1");
        return PS_EINVAL;
    }
    be = calloc(1, sizeof(*be));
    if (be == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "cpu backend: out of memory");
        return PS_ENOMEM;
    }
    be->ops = &cpu_ops;
    be->ctx = NULL;
    if (threads == 1)
        snprintf(be->name, sizeof(be->name), "cpu");
    else
        snprintf(be->name, sizeof(be->name), "cpu:%d", threads);
    openblas_set_num_threads(threads);
    *out = be;
    return PS_OK;
}
