/* The CUDA backend: the ps_backend_ops table over device buffers, copies,
 * cuBLAS sgemm and the launchers in kernels.cu (contract in
 * gpu/backend_cuda.h and worker/backend.h).
 *
 * Threading: a backend is used by one host thread at a time, but not
 * always the same one, and a thread may drive backends on several GPUs, so
 * every entry point first makes the backend's device current. All work
 * goes to the backend's compute stream, in issue order, but for the ahead
 * copies, which have a stream each way so that the next batch's upload
 * never queues behind this step's gradient download (a stream runs in
 * issue order, and the download waits for the backward pass). Events order
 * them against compute: a fence makes the compute stream wait for the
 * uploads issued so far, and a download_ahead makes the down stream wait
 * for the compute issued so far. All three are non-blocking streams; sync
 * waits for them all. Errors of kernels are a device int (the first ps_err
 * a kernel raised) that sync copies back, reports and clears; errors of
 * CUDA calls are returned at once and logged with CUDA's text, because the
 * ps_err code alone would lose it. */
#include "backend_cuda.h"
#include "kernels.h"

extern "C" {
#include "common/log.h"
}

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

namespace
{

struct cuda_ctx {
    int device;
    cudaStream_t stream; /* compute, and the in-order copies */
    cudaStream_t up;     /* upload_ahead */
    cudaStream_t down;   /* download_ahead */
    cudaEvent_t copied;  /* recorded on up by a fence */
    cudaEvent_t issued;  /* recorded on stream by a download_ahead */
    cublasHandle_t blas;
    int *flag;       /* device: first ps_err a kernel raised, 0 if none */
    int *flag_host;  /* pinned: where sync copies flag to */
    double *partial; /* device: 2 * PS_CUDA_STAT_BLOCKS loss partials */
    int pending;     /* first error of a call that could not return it */
};

cuda_ctx *ctx_of(ps_backend *be)
{
    return (cuda_ctx *)be->ctx;
}

cudaStream_t stream_of(ps_backend *be)
{
    return ctx_of(be)->stream;
}

float *fptr(const ps_buf *b, size_t off)
{
    return (float *)b->data + off;
}

const uint32_t *uptr(const ps_buf *b, size_t off)
{
    return (const uint32_t *)b->data + off;
}

/* Translates a CUDA result; a failure is logged with CUDA's text and the
 * runtime's last-error slot is cleared so the next launch check is not
 * blamed for it. */
int check(cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return PS_OK;
    (void)cudaGetLastError();
    ps_log(PS_LOG_ERROR, "cuda call failed call=%s err=\"%s\"", what,
           cudaGetErrorString(e));
    return PS_ECUDA;
}

int check_blas(cublasStatus_t st, const char *what)
{
    if (st == CUBLAS_STATUS_SUCCESS)
        return PS_OK;
    ps_log(PS_LOG_ERROR, "cublas call failed call=%s err=\"%s\"", what,
           cublasGetStatusString(st));
    return PS_ECUDA;
}

/* Makes the backend's device current for this host thread. */
int enter(ps_backend *be)
{
    int cur = -1;
    cudaError_t e = cudaGetDevice(&cur);

    if (e == cudaSuccess && cur != ctx_of(be)->device)
        e = cudaSetDevice(ctx_of(be)->device);
    return check(e, "cudaSetDevice");
}

void keep_first(cuda_ctx *c, int rc)
{
    if (c->pending == PS_OK)
        c->pending = rc;
}

/* Waits for one stream, if it was made; a failure is kept unless an
 * earlier one was. */
void wait_stream(cudaStream_t s, const char *what, int *rc)
{
    int r;

    if (s != NULL && (r = check(cudaStreamSynchronize(s), what)) != PS_OK &&
        *rc == PS_OK)
        *rc = r;
}

/* Waits for all three streams; the first failure wins. */
int wait_streams(cuda_ctx *c)
{
    int rc = PS_OK;

    wait_stream(c->stream, "cudaStreamSynchronize", &rc);
    wait_stream(c->up, "cudaStreamSynchronize(up)", &rc);
    wait_stream(c->down, "cudaStreamSynchronize(down)", &rc);
    return rc;
}

/* Frees what ctx holds; each field may be unset (a half-built backend). */
void release(cuda_ctx *c)
{
    (void)wait_streams(c);
    if (c->blas != NULL)
        (void)check_blas(cublasDestroy(c->blas), "cublasDestroy");
    if (c->copied != NULL)
        (void)check(cudaEventDestroy(c->copied), "cudaEventDestroy");
    if (c->issued != NULL)
        (void)check(cudaEventDestroy(c->issued), "cudaEventDestroy");
    if (c->up != NULL)
        (void)check(cudaStreamDestroy(c->up), "cudaStreamDestroy");
    if (c->down != NULL)
        (void)check(cudaStreamDestroy(c->down), "cudaStreamDestroy");
    if (c->stream != NULL)
        (void)check(cudaStreamDestroy(c->stream), "cudaStreamDestroy");
    if (c->flag != NULL)
        (void)check(cudaFree(c->flag), "cudaFree");
    if (c->partial != NULL)
        (void)check(cudaFree(c->partial), "cudaFree");
    if (c->flag_host != NULL)
        (void)check(cudaFreeHost(c->flag_host), "cudaFreeHost");
    free(c);
}

void cuda_destroy(ps_backend *be)
{
    (void)enter(be);
    release(ctx_of(be));
    free(be);
}

int cuda_buf_alloc(ps_backend *be, size_t bytes, ps_buf **out)
{
    ps_buf *b;
    void *p = NULL;
    cudaError_t e;
    int rc;

    if ((rc = enter(be)) != PS_OK)
        return rc;
    b = (ps_buf *)malloc(sizeof(*b));
    if (b == NULL)
        return PS_ENOMEM;
    e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
        rc = check(e, "cudaMalloc");
        free(b);
        return e == cudaErrorMemoryAllocation ? PS_ENOMEM : rc;
    }
    b->data = p;
    b->bytes = bytes;
    *out = b;
    return PS_OK;
}

/* Waits for the streams first: queued work may still use the buffer. */
void cuda_buf_free(ps_backend *be, ps_buf *buf)
{
    cuda_ctx *c = ctx_of(be);
    int rc = enter(be);

    if (rc == PS_OK)
        rc = wait_streams(c);
    keep_first(c, rc);
    keep_first(c, check(cudaFree(buf->data), "cudaFree"));
    free(buf);
}

int cuda_upload(ps_backend *be, ps_buf *dst, size_t dst_off, const void *src,
                size_t bytes)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(cudaMemcpyAsync((char *)dst->data + dst_off, src, bytes,
                                 cudaMemcpyHostToDevice, stream_of(be)),
                 "cudaMemcpyAsync(upload)");
}

int cuda_download(ps_backend *be, const ps_buf *src, size_t src_off, void *dst,
                  size_t bytes)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(cudaMemcpyAsync(dst, (const char *)src->data + src_off, bytes,
                                 cudaMemcpyDeviceToHost, stream_of(be)),
                 "cudaMemcpyAsync(download)");
}

int cuda_upload_ahead(ps_backend *be, ps_buf *dst, size_t dst_off,
                      const void *src, size_t bytes)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(cudaMemcpyAsync((char *)dst->data + dst_off, src, bytes,
                                 cudaMemcpyHostToDevice, ctx_of(be)->up),
                 "cudaMemcpyAsync(upload_ahead)");
}

int cuda_copy_fence(ps_backend *be)
{
    cuda_ctx *c = ctx_of(be);
    int rc = enter(be);

    if (rc == PS_OK)
        rc = check(cudaEventRecord(c->copied, c->up), "cudaEventRecord");
    if (rc == PS_OK)
        rc = check(cudaStreamWaitEvent(c->stream, c->copied, 0),
                   "cudaStreamWaitEvent");
    return rc;
}

int cuda_download_ahead(ps_backend *be, const ps_buf *src, size_t src_off,
                        void *dst, size_t bytes)
{
    cuda_ctx *c = ctx_of(be);
    int rc = enter(be);

    if (rc == PS_OK)
        rc = check(cudaEventRecord(c->issued, c->stream), "cudaEventRecord");
    if (rc == PS_OK)
        rc = check(cudaStreamWaitEvent(c->down, c->issued, 0),
                   "cudaStreamWaitEvent");
    if (rc == PS_OK)
        rc = check(cudaMemcpyAsync(dst, (const char *)src->data + src_off,
                                   bytes, cudaMemcpyDeviceToHost, c->down),
                   "cudaMemcpyAsync(download_ahead)");
    return rc;
}

void *cuda_host_alloc(ps_backend *be, size_t bytes)
{
    void *p = NULL;

    if (enter(be) != PS_OK ||
        check(cudaMallocHost(&p, bytes), "cudaMallocHost") != PS_OK)
        return NULL;
    return p;
}

void cuda_host_free(ps_backend *be, void *p)
{
    (void)enter(be);
    (void)check(cudaFreeHost(p), "cudaFreeHost");
}

/* The first error in issue order: a failure recorded by buf_free, then the
 * stream's own (a kernel fault), then what the kernels flagged. The flag is
 * cleared on the stream so the next sync starts afresh. */
int cuda_sync(ps_backend *be)
{
    cuda_ctx *c = ctx_of(be);
    int rc = enter(be), copy_rc, wait_rc;

    if (rc != PS_OK)
        return rc;
    copy_rc = check(cudaMemcpyAsync(c->flag_host, c->flag, sizeof(int),
                                    cudaMemcpyDeviceToHost, c->stream),
                    "cudaMemcpyAsync(flag)");
    wait_rc = wait_streams(c);
    rc = c->pending;
    c->pending = PS_OK;
    if (rc == PS_OK)
        rc = wait_rc != PS_OK ? wait_rc : copy_rc;
    if (copy_rc == PS_OK && wait_rc == PS_OK && *c->flag_host != 0) {
        if (rc == PS_OK)
            rc = *c->flag_host;
        *c->flag_host = 0;
        keep_first(c, check(cudaMemsetAsync(c->flag, 0, sizeof(int), c->stream),
                            "cudaMemsetAsync(flag)"));
    }
    return rc;
}

/* Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS
 * gets B first, the dimensions n and m swapped, and each operand's own
 * transpose flag. A row-major leading dimension is the column-major one of
 * the transposed matrix, so the ld values pass through unchanged. */
int cuda_sgemm(ps_backend *be, int trans_a, int trans_b, size_t m, size_t n,
               size_t k, float alpha, ps_mat a, ps_mat b, float beta, ps_mat c)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check_blas(
        cublasSgemm(ctx_of(be)->blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
                    trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k,
                    &alpha, fptr(b.buf, b.off), (int)b.ld, fptr(a.buf, a.off),
                    (int)a.ld, &beta, fptr(c.buf, c.off), (int)c.ld),
        "cublasSgemm");
}

int cuda_add_bias(ps_backend *be, ps_mat y, size_t rows, size_t cols,
                  const ps_buf *bias, size_t bias_off)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(ps__cuda_add_bias(stream_of(be), fptr(y.buf, y.off), y.ld,
                                   rows, cols, fptr(bias, bias_off)),
                 "add_bias");
}

int cuda_relu_fwd(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                  size_t y_off, size_t n)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(
        ps__cuda_relu_fwd(stream_of(be), fptr(x, x_off), fptr(y, y_off), n),
        "relu_fwd");
}

int cuda_relu_bwd(ps_backend *be, const ps_buf *dy, size_t dy_off,
                  const ps_buf *y, size_t y_off, ps_buf *dx, size_t dx_off,
                  size_t n)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(ps__cuda_relu_bwd(stream_of(be), fptr(dy, dy_off),
                                   fptr(y, y_off), fptr(dx, dx_off), n),
                 "relu_bwd");
}

int cuda_softmax_xent(ps_backend *be, const ps_buf *logits, size_t logits_off,
                      const ps_buf *labels, size_t labels_off, size_t n,
                      size_t classes, ps_buf *grad, size_t grad_off,
                      ps_buf *out, size_t out_off)
{
    cuda_ctx *c = ctx_of(be);
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(
        ps__cuda_softmax_xent(c->stream, fptr(logits, logits_off),
                              fptr(labels, labels_off), n, classes,
                              grad != NULL ? fptr(grad, grad_off) : NULL,
                              fptr(out, out_off), c->partial, c->flag),
        "softmax_xent");
}

int cuda_softmax(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                 size_t y_off, size_t n, size_t classes)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(ps__cuda_softmax(stream_of(be), fptr(x, x_off), fptr(y, y_off),
                                  n, classes),
                 "softmax");
}

int cuda_col_sum(ps_backend *be, ps_mat x, size_t rows, size_t cols,
                 float alpha, ps_buf *y, size_t y_off)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(ps__cuda_col_sum(stream_of(be), fptr(x.buf, x.off), x.ld, rows,
                                  cols, alpha, fptr(y, y_off)),
                 "col_sum");
}

int cuda_scale(ps_backend *be, ps_buf *x, size_t x_off, size_t n, float alpha)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(ps__cuda_scale(stream_of(be), fptr(x, x_off), n, alpha),
                 "scale");
}

int cuda_axpy(ps_backend *be, size_t n, float alpha, const ps_buf *x,
              size_t x_off, ps_buf *y, size_t y_off)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(
        ps__cuda_axpy(stream_of(be), n, alpha, fptr(x, x_off), fptr(y, y_off)),
        "axpy");
}

int cuda_fill(ps_backend *be, ps_buf *x, size_t x_off, size_t n, float value)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(ps__cuda_fill(stream_of(be), fptr(x, x_off), n, value),
                 "fill");
}

int cuda_gather(ps_backend *be, const ps_buf *w, size_t w_off, size_t rows,
                size_t dim, const ps_buf *idx, size_t idx_off, size_t nidx,
                ps_buf *out, size_t out_off)
{
    cuda_ctx *c = ctx_of(be);
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(ps__cuda_gather(c->stream, fptr(w, w_off), rows, dim,
                                 uptr(idx, idx_off), nidx, fptr(out, out_off),
                                 c->flag),
                 "gather");
}

int cuda_scatter_add(ps_backend *be, const ps_buf *g, size_t g_off,
                     const ps_buf *idx, size_t idx_off, size_t nidx, size_t dim,
                     ps_buf *w, size_t w_off, size_t rows)
{
    cuda_ctx *c = ctx_of(be);
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(ps__cuda_scatter_add(c->stream, fptr(g, g_off),
                                      uptr(idx, idx_off), nidx, dim,
                                      fptr(w, w_off), rows, c->flag),
                 "scatter_add");
}

ps__cuda_csr dev_csr(const ps_csr &x)
{
    ps__cuda_csr d;

    d.rowptr = uptr(x.rowptr, x.rowptr_off);
    d.col = uptr(x.col, x.col_off);
    d.val = fptr(x.val, x.val_off);
    d.rows = x.rows;
    d.cols = x.cols;
    d.nnz = x.nnz;
    return d;
}

int cuda_csr_mm(ps_backend *be, ps_csr x, size_t k, ps_mat w, ps_mat y)
{
    cuda_ctx *c = ctx_of(be);
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(ps__cuda_csr_mm(c->stream, dev_csr(x), k, fptr(w.buf, w.off),
                                 w.ld, fptr(y.buf, y.off), y.ld, c->flag),
                 "csr_mm");
}

int cuda_csr_mm_t(ps_backend *be, ps_csr x, size_t k, ps_mat dy, ps_mat g)
{
    cuda_ctx *c = ctx_of(be);
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(ps__cuda_csr_mm_t(c->stream, dev_csr(x), k,
                                   fptr(dy.buf, dy.off), dy.ld,
                                   fptr(g.buf, g.off), g.ld, c->flag),
                 "csr_mm_t");
}

int cuda_sigmoid_xent(ps_backend *be, const ps_buf *logits, size_t logits_off,
                      const ps_buf *labels, size_t labels_off, size_t n,
                      ps_buf *grad, size_t grad_off, ps_buf *out,
                      size_t out_off)
{
    cuda_ctx *c = ctx_of(be);
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(
        ps__cuda_sigmoid_xent(c->stream, fptr(logits, logits_off),
                              fptr(labels, labels_off), n,
                              grad != NULL ? fptr(grad, grad_off) : NULL,
                              fptr(out, out_off), c->partial, c->flag),
        "sigmoid_xent");
}

int cuda_sigmoid(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                 size_t y_off, size_t n)
{
    int rc = enter(be);

    if (rc != PS_OK)
        return rc;
    return check(
        ps__cuda_sigmoid(stream_of(be), fptr(x, x_off), fptr(y, y_off), n),
        "sigmoid");
}

ps_backend_ops make_ops()
{
    ps_backend_ops o = {};

    o.destroy = cuda_destroy;
    o.buf_alloc = cuda_buf_alloc;
    o.buf_free = cuda_buf_free;
    o.upload = cuda_upload;
    o.download = cuda_download;
    o.sync = cuda_sync;
    o.sgemm = cuda_sgemm;
    o.add_bias = cuda_add_bias;
    o.relu_fwd = cuda_relu_fwd;
    o.relu_bwd = cuda_relu_bwd;
    o.softmax_xent = cuda_softmax_xent;
    o.softmax = cuda_softmax;
    o.col_sum = cuda_col_sum;
    o.scale = cuda_scale;
    o.axpy = cuda_axpy;
    o.fill = cuda_fill;
    o.gather = cuda_gather;
    o.scatter_add = cuda_scatter_add;
    o.csr_mm = cuda_csr_mm;
    o.csr_mm_t = cuda_csr_mm_t;
    o.sigmoid_xent = cuda_sigmoid_xent;
    o.sigmoid = cuda_sigmoid;
    o.upload_ahead = cuda_upload_ahead;
    o.copy_fence = cuda_copy_fence;
    o.download_ahead = cuda_download_ahead;
    o.host_alloc = cuda_host_alloc;
    o.host_free = cuda_host_free;
    return o;
}

const ps_backend_ops cuda_ops = make_ops();

void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

const char *visible_devices()
{
    const char *v = getenv("CUDA_VISIBLE_DEVICES");
    return v != NULL ? v : "unset";
}

/* The current device can run our kernels, or err says which architecture
 * it is and which ones this build has: without the check, opening works
 * (cuBLAS ships its own kernels) and the first step fails obscurely. */
int check_kernel_image(int device, char *err, size_t errlen)
{
    int major = 0, minor = 0;
    cudaError_t e = ps__cuda_kernels_loadable();

    if (e == cudaSuccess)
        return PS_OK;
    (void)cudaGetLastError();
    if (e != cudaErrorNoKernelImageForDevice &&
        e != cudaErrorInvalidDeviceFunction) {
        set_err(err, errlen, "device cuda:%d: loading the kernels: %s", device,
                cudaGetErrorString(e));
        return PS_ECUDA;
    }
    (void)cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor,
                                 device);
    (void)cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor,
                                 device);
    set_err(err, errlen,
            "device cuda:%d is compute capability %d.%d, but this sparkps "
            "was built for CUDA architectures %s only: rebuild with "
            "-DCMAKE_CUDA_ARCHITECTURES=%d%d (%s)",
            device, major, minor, PS_CUDA_ARCHS, major, minor,
            cudaGetErrorString(e));
    return PS_ECUDA;
}

} // namespace

extern "C" int ps_cuda_device_count(int *count, char *err, size_t errlen)
{
    int n = 0, rt = 0;
    cudaError_t e = cudaGetDeviceCount(&n);

    if (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice ||
        (e == cudaSuccess && n == 0)) {
        (void)cudaGetLastError();
        (void)cudaRuntimeGetVersion(&rt);
    }
    if (e == cudaErrorInsufficientDriver) {
        set_err(err, errlen,
                "no CUDA driver, or one older than the CUDA %d.%d runtime "
                "sparkps was built with (cudaGetDeviceCount: %s)",
                rt / 1000, rt % 1000 / 10, cudaGetErrorString(e));
        return PS_ECUDA;
    }
    if (e == cudaErrorStubLibrary) {
        (void)cudaGetLastError();
        set_err(err, errlen,
                "no CUDA driver: the libcuda found is the CUDA toolkit's "
                "stub, which only links (install the NVIDIA driver, or take "
                "the stubs directory off LD_LIBRARY_PATH) "
                "(cudaGetDeviceCount: %s)",
                cudaGetErrorString(e));
        return PS_ECUDA;
    }
    if (e == cudaErrorNoDevice || (e == cudaSuccess && n == 0)) {
        set_err(err, errlen,
                "no CUDA device visible (CUDA_VISIBLE_DEVICES=%s) "
                "(cudaGetDeviceCount: %s)",
                visible_devices(),
                e == cudaSuccess ? "0 devices" : cudaGetErrorString(e));
        return PS_ECUDA;
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        set_err(err, errlen, "CUDA unavailable (cudaGetDeviceCount: %s)",
                cudaGetErrorString(e));
        return PS_ECUDA;
    }
    *count = n;
    return PS_OK;
}

extern "C" int ps_backend_cuda_stream(ps_backend *be, int *device,
                                      void **stream)
{
    if (be == NULL || be->ops != &cuda_ops)
        return PS_EINVAL;
    if (device != NULL)
        *device = ctx_of(be)->device;
    if (stream != NULL)
        *stream = (void *)ctx_of(be)->stream;
    return PS_OK;
}

extern "C" int ps_backend_cuda_new(int device, ps_backend **out, char *err,
                                   size_t errlen)
{
    char why[256];
    ps_backend *be = NULL;
    cuda_ctx *c = NULL;
    const char *call = NULL;
    cudaError_t e = cudaSuccess;
    cublasStatus_t st;
    int count = 0, rc;

    if ((rc = ps_cuda_device_count(&count, why, sizeof(why))) != PS_OK) {
        set_err(err, errlen, "device cuda:%d: %s", device, why);
        return rc;
    }
    if (device < 0 || device >= count) {
        set_err(err, errlen,
                "device cuda:%d but only %d CUDA device%s visible "
                "(CUDA_VISIBLE_DEVICES=%s; numbering starts at 0 within it)",
                device, count, count == 1 ? " is" : "s are", visible_devices());
        return PS_ECUDA;
    }
    be = (ps_backend *)calloc(1, sizeof(*be));
    c = (cuda_ctx *)calloc(1, sizeof(*c));
    if (be == NULL || c == NULL) {
        set_err(err, errlen, "device cuda:%d: out of memory", device);
        rc = PS_ENOMEM;
        goto out;
    }
    c->device = device;
    rc = PS_ECUDA;
    if ((e = cudaSetDevice(device)) != cudaSuccess) {
        call = "cudaSetDevice";
        goto out;
    }
    if ((rc = check_kernel_image(device, err, errlen)) != PS_OK)
        goto out;
    rc = PS_ECUDA;
    if ((e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking)) !=
            cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&c->up, cudaStreamNonBlocking)) !=
            cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&c->down, cudaStreamNonBlocking)) !=
            cudaSuccess) {
        call = "cudaStreamCreateWithFlags";
        goto out;
    }
    /* Ordering only: no timing, which keeps record and wait cheap. */
    if ((e = cudaEventCreateWithFlags(&c->copied, cudaEventDisableTiming)) !=
            cudaSuccess ||
        (e = cudaEventCreateWithFlags(&c->issued, cudaEventDisableTiming)) !=
            cudaSuccess) {
        call = "cudaEventCreateWithFlags";
        goto out;
    }
    if ((e = cudaMalloc((void **)&c->flag, sizeof(int))) != cudaSuccess ||
        (e = cudaMalloc((void **)&c->partial,
                        2 * PS_CUDA_STAT_BLOCKS * sizeof(double))) !=
            cudaSuccess ||
        (e = cudaMallocHost((void **)&c->flag_host, sizeof(int))) !=
            cudaSuccess) {
        call = "cudaMalloc";
        goto out;
    }
    *c->flag_host = 0;
    if ((e = cudaMemsetAsync(c->flag, 0, sizeof(int), c->stream)) !=
            cudaSuccess ||
        (e = cudaStreamSynchronize(c->stream)) != cudaSuccess) {
        call = "cudaMemsetAsync";
        goto out;
    }
    if ((st = cublasCreate(&c->blas)) != CUBLAS_STATUS_SUCCESS ||
        (st = cublasSetStream(c->blas, c->stream)) != CUBLAS_STATUS_SUCCESS) {
        set_err(err, errlen, "device cuda:%d: cuBLAS setup: %s", device,
                cublasGetStatusString(st));
        goto out;
    }
    be->ops = &cuda_ops;
    be->ctx = c;
    snprintf(be->name, sizeof(be->name), "cuda:%d", device);
    *out = be;
    return PS_OK;

out:
    if (call != NULL) {
        (void)cudaGetLastError();
        set_err(err, errlen, "device cuda:%d: %s: %s", device, call,
                cudaGetErrorString(e));
    }
    if (c != NULL)
        release(c);
    free(be);
    return rc;
}
