/* "cpu-deferred": the CPU backend run the way a GPU stream runs, for tests.
 *
 * Every copy and operation is queued (its arguments copied, never the host
 * data) and only executed, in issue order, by sync (fetch_stats syncs, and
 * so do buf_free and destroy, which wait for outstanding work). An upload
 * reads its host array, and a download writes its host array, when it
 * executes: exactly what cudaMemcpyAsync from pinned memory does. Code that
 * breaks the contract in backend.h (reuses an uploaded array, or reads a
 * downloaded one, before sync) gets wrong numbers here instead of only on a
 * GPU. Host memory from host_alloc starts as all-ones bytes (a float NaN),
 * so reading a never-written staging buffer shows too. The arithmetic is
 * the CPU backend's (it runs inside), so results match "cpu" bit for bit.
 *
 * The ahead copies, a stream each way as on CUDA: upload_ahead fills its
 * device range with NaN at once (the earliest moment a real copy may write
 * it) and reads its host array only when the next fence runs (the latest);
 * download_ahead runs at the end of sync (the latest), after every later
 * operation. An operation that reads a staged range too early, one that
 * writes a range still coming down, or a caller that refills a staged host
 * array or reads a downloaded one too soon, gets wrong numbers. */
#include "backend.h"

#include "common/errmsg.h"

#include <stdlib.h>
#include <string.h>

typedef enum op_kind {
    OP_UPLOAD,
    OP_DOWNLOAD,
    OP_SGEMM,
    OP_ADD_BIAS,
    OP_RELU_FWD,
    OP_RELU_BWD,
    OP_SOFTMAX_XENT,
    OP_SOFTMAX,
    OP_COL_SUM,
    OP_SCALE,
    OP_AXPY,
    OP_FILL,
    OP_GATHER,
    OP_SCATTER_ADD,
    OP_CSR_MM,
    OP_CSR_MM_T,
    OP_SIGMOID_XENT,
    OP_SIGMOID,
    OP_FENCE, /* runs the up stream's calls issued before it */
} op_kind;

/* One queued call: the union of every operation's arguments; which fields
 * mean what is fixed by the enqueue function and run_call below. */
typedef struct call {
    op_kind op;
    ps_buf *b[4];
    size_t z[8];
    float f[2]; /* alpha or value; beta */
    int t[2];
    ps_mat m[3];
    ps_csr x;
    const void *src;
    void *dst;
} call;

typedef struct queue {
    call *q;
    size_t n, cap;
} queue;

typedef struct deferred {
    ps_backend *cpu; /* does the arithmetic */
    queue main;      /* the compute stream */
    queue up;        /* upload_ahead's stream */
    size_t up_run;   /* up calls already run */
    queue down;      /* download_ahead's stream */
    int err;         /* first error of work run outside sync (buf_free) */
} deferred;

static deferred *ctx_of(ps_backend *be)
{
    return be->ctx;
}

/* The ops take const buffers where they only read; the queue stores them
 * all alike. */
static ps_buf *mut(const ps_buf *b)
{
    return (ps_buf *)(uintptr_t)b;
}

static int push_to(queue *qu, const call *c)
{
    if (qu->n == qu->cap) {
        size_t cap = qu->cap ? 2 * qu->cap : 64;
        call *q = realloc(qu->q, cap * sizeof(*q));
        if (q == NULL)
            return PS_ENOMEM;
        qu->q = q;
        qu->cap = cap;
    }
    qu->q[qu->n++] = *c;
    return PS_OK;
}

static int push(ps_backend *be, const call *c)
{
    return push_to(&ctx_of(be)->main, c);
}

static int run_call(ps_backend *cpu, const call *c)
{
    const ps_backend_ops *o = cpu->ops;
    ps_buf *const *b = c->b;
    const size_t *z = c->z;

    switch (c->op) {
    case OP_UPLOAD:
        return o->upload(cpu, b[0], z[0], c->src, z[1]);
    case OP_DOWNLOAD:
        return o->download(cpu, b[0], z[0], c->dst, z[1]);
    case OP_SGEMM:
        return o->sgemm(cpu, c->t[0], c->t[1], z[0], z[1], z[2], c->f[0], c->m[0],
                        c->m[1], c->f[1], c->m[2]);
    case OP_ADD_BIAS:
        return o->add_bias(cpu, c->m[0], z[0], z[1], b[0], z[2]);
    case OP_RELU_FWD:
        return o->relu_fwd(cpu, b[0], z[0], b[1], z[1], z[2]);
    case OP_RELU_BWD:
        return o->relu_bwd(cpu, b[0], z[0], b[1], z[1], b[2], z[2], z[3]);
    case OP_SOFTMAX_XENT:
        return o->softmax_xent(cpu, b[0], z[0], b[1], z[1], z[2], z[3], b[2],
                               z[4], b[3], z[5]);
    case OP_SOFTMAX:
        return o->softmax(cpu, b[0], z[0], b[1], z[1], z[2], z[3]);
    case OP_COL_SUM:
        return o->col_sum(cpu, c->m[0], z[0], z[1], c->f[0], b[0], z[2]);
    case OP_SCALE:
        return o->scale(cpu, b[0], z[0], z[1], c->f[0]);
    case OP_AXPY:
        return o->axpy(cpu, z[0], c->f[0], b[0], z[1], b[1], z[2]);
    case OP_FILL:
        return o->fill(cpu, b[0], z[0], z[1], c->f[0]);
    case OP_GATHER:
        return o->gather(cpu, b[0], z[0], z[1], z[2], b[1], z[3], z[4], b[2],
                         z[5]);
    case OP_SCATTER_ADD:
        return o->scatter_add(cpu, b[0], z[0], b[1], z[1], z[2], z[3], b[2],
                              z[4], z[5]);
    case OP_CSR_MM:
        return o->csr_mm(cpu, c->x, z[0], c->m[0], c->m[1]);
    case OP_CSR_MM_T:
        return o->csr_mm_t(cpu, c->x, z[0], c->m[0], c->m[1]);
    case OP_SIGMOID_XENT:
        return o->sigmoid_xent(cpu, b[0], z[0], b[1], z[1], z[2], b[2], z[3],
                               b[3], z[4]);
    case OP_SIGMOID:
        return o->sigmoid(cpu, b[0], z[0], b[1], z[1], z[2]);
    case OP_FENCE: /* run by run_queue */
        break;
    }
    return PS_EINVAL;
}

static void keep_first(int *first, int rc)
{
    if (rc != PS_OK && *first == PS_OK)
        *first = rc;
}

/* Runs the up stream's calls up to (not including) call `upto`. */
static void run_up(deferred *d, size_t upto, int *first)
{
    for (; d->up_run < upto; d->up_run++)
        keep_first(first, run_call(d->cpu, &d->up.q[d->up_run]));
}

/* Runs the compute queue in order, the up stream at its fences, then the
 * rest of the up stream and the whole down stream; the first error wins,
 * later work still runs (as on a stream, where a failed kernel does not
 * stop the next one). */
static int def_sync(ps_backend *be)
{
    deferred *d = ctx_of(be);
    int first = d->err;

    for (size_t i = 0; i < d->main.n; i++) {
        const call *c = &d->main.q[i];
        if (c->op == OP_FENCE)
            run_up(d, c->z[0], &first);
        else
            keep_first(&first, run_call(d->cpu, c));
    }
    run_up(d, d->up.n, &first);
    for (size_t i = 0; i < d->down.n; i++)
        keep_first(&first, run_call(d->cpu, &d->down.q[i]));
    d->main.n = d->up.n = d->up_run = d->down.n = 0;
    d->err = PS_OK;
    return first;
}

static void def_destroy(ps_backend *be)
{
    deferred *d = ctx_of(be);

    (void)def_sync(be);
    ps_backend_free(d->cpu);
    free(d->main.q);
    free(d->up.q);
    free(d->down.q);
    free(d);
    free(be);
}

static int def_buf_alloc(ps_backend *be, size_t bytes, ps_buf **out)
{
    return ps_backend_buf_alloc(ctx_of(be)->cpu, bytes, out);
}

/* Frees after outstanding work, as cudaFree does; an error of that work is
 * kept for the next sync. */
static void def_buf_free(ps_backend *be, ps_buf *buf)
{
    deferred *d = ctx_of(be);
    int rc = def_sync(be);

    if (d->err == PS_OK)
        d->err = rc;
    ps_backend_buf_free(d->cpu, buf);
}

static void *def_host_alloc(ps_backend *be, size_t bytes)
{
    void *p = malloc(bytes);

    (void)be;
    if (p != NULL)
        memset(p, 0xff, bytes); /* every float a NaN until written */
    return p;
}

static void def_host_free(ps_backend *be, void *p)
{
    (void)be;
    free(p);
}

static int def_upload(ps_backend *be, ps_buf *dst, size_t dst_off,
                      const void *src, size_t bytes)
{
    call c = {.op = OP_UPLOAD, .b = {dst}, .z = {dst_off, bytes}, .src = src};
    return push(be, &c);
}

static int def_download(ps_backend *be, const ps_buf *src, size_t src_off,
                        void *dst, size_t bytes)
{
    call c = {
        .op = OP_DOWNLOAD, .b = {mut(src)}, .z = {src_off, bytes}, .dst = dst};
    return push(be, &c);
}

static int def_upload_ahead(ps_backend *be, ps_buf *dst, size_t dst_off,
                            const void *src, size_t bytes)
{
    call c = {.op = OP_UPLOAD, .b = {dst}, .z = {dst_off, bytes}, .src = src};
    int rc = push_to(&ctx_of(be)->up, &c);

    if (rc == PS_OK) /* a CPU buffer's data is host memory */
        memset((char *)dst->data + dst_off, 0xff, bytes);
    return rc;
}

static int def_copy_fence(ps_backend *be)
{
    call c = {.op = OP_FENCE, .z = {ctx_of(be)->up.n}};
    return push(be, &c);
}

static int def_download_ahead(ps_backend *be, const ps_buf *src,
                              size_t src_off, void *dst, size_t bytes)
{
    call c = {
        .op = OP_DOWNLOAD, .b = {mut(src)}, .z = {src_off, bytes}, .dst = dst};
    return push_to(&ctx_of(be)->down, &c);
}

static int def_sgemm(ps_backend *be, int trans_a, int trans_b, size_t m,
                     size_t n, size_t k, float alpha, ps_mat a, ps_mat b,
                     float beta, ps_mat cm)
{
    call c = {.op = OP_SGEMM,
              .t = {trans_a, trans_b},
              .z = {m, n, k},
              .f = {alpha, beta},
              .m = {a, b, cm}};
    return push(be, &c);
}

static int def_add_bias(ps_backend *be, ps_mat y, size_t rows, size_t cols,
                        const ps_buf *bias, size_t bias_off)
{
    call c = {.op = OP_ADD_BIAS,
              .m = {y},
              .z = {rows, cols, bias_off},
              .b = {mut(bias)}};
    return push(be, &c);
}

static int def_relu_fwd(ps_backend *be, const ps_buf *x, size_t x_off,
                        ps_buf *y, size_t y_off, size_t n)
{
    call c = {.op = OP_RELU_FWD, .b = {mut(x), y}, .z = {x_off, y_off, n}};
    return push(be, &c);
}

static int def_relu_bwd(ps_backend *be, const ps_buf *dy, size_t dy_off,
                        const ps_buf *y, size_t y_off, ps_buf *dx,
                        size_t dx_off, size_t n)
{
    call c = {.op = OP_RELU_BWD,
              .b = {mut(dy), mut(y), dx},
              .z = {dy_off, y_off, dx_off, n}};
    return push(be, &c);
}

static int def_softmax_xent(ps_backend *be, const ps_buf *logits,
                            size_t logits_off, const ps_buf *labels,
                            size_t labels_off, size_t n, size_t classes,
                            ps_buf *grad, size_t grad_off, ps_buf *out,
                            size_t out_off)
{
    call c = {.op = OP_SOFTMAX_XENT,
              .b = {mut(logits), mut(labels), grad, out},
              .z = {logits_off, labels_off, n, classes, grad_off, out_off}};
    return push(be, &c);
}

static int def_softmax(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                       size_t y_off, size_t n, size_t classes)
{
    call c = {
        .op = OP_SOFTMAX, .b = {mut(x), y}, .z = {x_off, y_off, n, classes}};
    return push(be, &c);
}

static int def_col_sum(ps_backend *be, ps_mat x, size_t rows, size_t cols,
                       float alpha, ps_buf *y, size_t y_off)
{
    call c = {.op = OP_COL_SUM,
              .m = {x},
              .z = {rows, cols, y_off},
              .f = {alpha},
              .b = {y}};
    return push(be, &c);
}

static int def_scale(ps_backend *be, ps_buf *x, size_t x_off, size_t n,
                     float alpha)
{
    call c = {.op = OP_SCALE, .b = {x}, .z = {x_off, n}, .f = {alpha}};
    return push(be, &c);
}

static int def_axpy(ps_backend *be, size_t n, float alpha, const ps_buf *x,
                    size_t x_off, ps_buf *y, size_t y_off)
{
    call c = {
        .op = OP_AXPY, .b = {mut(x), y}, .z = {n, x_off, y_off}, .f = {alpha}};
    return push(be, &c);
}

static int def_fill(ps_backend *be, ps_buf *x, size_t x_off, size_t n,
                    float value)
{
    call c = {.op = OP_FILL, .b = {x}, .z = {x_off, n}, .f = {value}};
    return push(be, &c);
}

static int def_gather(ps_backend *be, const ps_buf *w, size_t w_off,
                      size_t rows, size_t dim, const ps_buf *idx,
                      size_t idx_off, size_t nidx, ps_buf *out, size_t out_off)
{
    call c = {.op = OP_GATHER,
              .b = {mut(w), mut(idx), out},
              .z = {w_off, rows, dim, idx_off, nidx, out_off}};
    return push(be, &c);
}

static int def_scatter_add(ps_backend *be, const ps_buf *g, size_t g_off,
                           const ps_buf *idx, size_t idx_off, size_t nidx,
                           size_t dim, ps_buf *w, size_t w_off, size_t rows)
{
    call c = {.op = OP_SCATTER_ADD,
              .b = {mut(g), mut(idx), w},
              .z = {g_off, idx_off, nidx, dim, w_off, rows}};
    return push(be, &c);
}

static int def_csr_mm(ps_backend *be, ps_csr x, size_t k, ps_mat w, ps_mat y)
{
    call c = {.op = OP_CSR_MM, .x = x, .z = {k}, .m = {w, y}};
    return push(be, &c);
}

static int def_csr_mm_t(ps_backend *be, ps_csr x, size_t k, ps_mat dy,
                        ps_mat g)
{
    call c = {.op = OP_CSR_MM_T, .x = x, .z = {k}, .m = {dy, g}};
    return push(be, &c);
}

static int def_sigmoid_xent(ps_backend *be, const ps_buf *logits,
                            size_t logits_off, const ps_buf *labels,
                            size_t labels_off, size_t n, ps_buf *grad,
                            size_t grad_off, ps_buf *out, size_t out_off)
{
    call c = {.op = OP_SIGMOID_XENT,
              .b = {mut(logits), mut(labels), grad, out},
              .z = {logits_off, labels_off, n, grad_off, out_off}};
    return push(be, &c);
}

static int def_sigmoid(ps_backend *be, const ps_buf *x, size_t x_off, ps_buf *y,
                       size_t y_off, size_t n)
{
    call c = {.op = OP_SIGMOID, .b = {mut(x), y}, .z = {x_off, y_off, n}};
    return push(be, &c);
}

static const ps_backend_ops deferred_ops = {
    .destroy = def_destroy,
    .buf_alloc = def_buf_alloc,
    .buf_free = def_buf_free,
    .upload = def_upload,
    .download = def_download,
    .sync = def_sync,
    .sgemm = def_sgemm,
    .add_bias = def_add_bias,
    .relu_fwd = def_relu_fwd,
    .relu_bwd = def_relu_bwd,
    .softmax_xent = def_softmax_xent,
    .softmax = def_softmax,
    .col_sum = def_col_sum,
    .scale = def_scale,
    .axpy = def_axpy,
    .fill = def_fill,
    .gather = def_gather,
    .scatter_add = def_scatter_add,
    .csr_mm = def_csr_mm,
    .csr_mm_t = def_csr_mm_t,
    .sigmoid_xent = def_sigmoid_xent,
    .sigmoid = def_sigmoid,
    .upload_ahead = def_upload_ahead,
    .copy_fence = def_copy_fence,
    .download_ahead = def_download_ahead,
    .host_alloc = def_host_alloc,
    .host_free = def_host_free,
};

int ps_backend_cpu_deferred_new(ps_backend **out, char *err, size_t errlen)
{
    ps_backend *be = calloc(1, sizeof(*be));
    deferred *d = calloc(1, sizeof(*d));
    int rc = PS_ENOMEM;

    if (be != NULL && d != NULL &&
        (rc = ps_backend_cpu_new(1, &d->cpu, err, errlen)) == PS_OK) {
        be->ops = &deferred_ops;
        be->ctx = d;
        strcpy(be->name, "cpu-deferred");
        *out = be;
        return PS_OK;
    }
    if (rc == PS_ENOMEM)
        ps_errf(err, errlen, PS_OK, "cpu-deferred backend: out of memory");
    free(d);
    free(be);
    return rc;
}
