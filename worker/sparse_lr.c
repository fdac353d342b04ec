/* Hashed sparse logistic regression; see sparse_lr.h.
 *
 * A batch build maps every feature id to its key, gives each distinct key
 * a position (an open-addressing hash, cleared slot by slot afterwards so a
 * build costs O(entries), not O(table)), and writes a CSR matrix whose
 * columns are those positions. The model then needs only nuniq weights per
 * step, whatever the hash space: forward is one csr_mm with k = 1, backward
 * one csr_mm_t into a zeroed gradient. Single-threaded. */
#include "sparse_lr.h"

#include "common/errmsg.h"
#include "common/rng.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LR_MAX_BATCH ((size_t)1 << 20)
/* Entries per row the device buffers start with; a batch with more makes
 * them grow (doubling), so the steady state reallocates nothing. */
#define LR_START_NNZ_PER_ROW 16

struct ps_logreg {
    ps_backend *be; /* borrowed */
    unsigned bits;
    size_t cap_rows, cap_nnz;   /* device buffer capacities */
    ps_buf *rowptr, *col, *val; /* the batch's CSR */
    ps_buf *labels, *z;         /* cap_rows floats: labels, logits/dz */
    ps_buf *w, *g;              /* cap_nnz floats: nuniq <= nnz */
    ps_buf *stats;              /* loss, correct */
    ps_logreg_batch scratch;    /* predict's batch */
    float *scratch_w;           /* predict's weights, scratch.cap_nnz
                                   (be's host memory: uploaded) */
    size_t scratch_w_cap;
};

int ps_logreg_is_spec(const char *spec)
{
    return spec != NULL &&
           (strcmp(spec, "logreg") == 0 || strncmp(spec, "logreg:", 7) == 0);
}

int ps_logreg_parse_spec(const char *spec, unsigned *bits, char *err,
                         size_t errlen)
{
    char *end;
    unsigned long v;

    if (!ps_logreg_is_spec(spec)) {
        ps_errf(err, errlen, PS_OK, "model spec \"%s\" is not logreg[:BITS]",
                spec ? spec : "(null)");
        return PS_EINVAL;
    }
    if (spec[6] == '\0') {
        *bits = PS_LOGREG_DEFAULT_BITS;
        return PS_OK;
    }
    errno = 0;
    v = strtoul(spec + 7, &end, 10);
    if (spec[7] < '0' || spec[7] > '9' || *end != '\0' || errno != 0 || v < 1 ||
        v > PS_LOGREG_MAX_BITS) {
        ps_errf(err, errlen, PS_OK,
                "model spec \"%s\": want logreg:BITS with BITS in 1..%d "
                "(hash space 2^BITS keys)",
                spec, PS_LOGREG_MAX_BITS);
        return PS_EINVAL;
    }
    *bits = (unsigned)v;
    return PS_OK;
}

uint64_t ps_logreg_key(unsigned bits, uint64_t feature)
{
    return ps_mix64(feature) >> (64 - bits);
}

uint64_t ps_logreg_bias_key(unsigned bits)
{
    return (uint64_t)1 << bits;
}

/* ---- device buffers ---- */

static void free_dev(ps_logreg *m)
{
    ps_buf **bufs[] = {&m->rowptr, &m->col, &m->val, &m->labels,
                       &m->z,      &m->w,   &m->g};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
        ps_backend_buf_free(m->be, *bufs[i]);
        *bufs[i] = NULL;
    }
}

/* Makes the device buffers hold rows and nnz; reallocates (doubling) only
 * past the current capacity. */
static int ensure_dev(ps_logreg *m, size_t rows, size_t nnz)
{
    ps_backend *be = m->be;
    size_t cr = m->cap_rows, cn = m->cap_nnz;
    int rc;

    if (rows <= cr && nnz <= cn && m->rowptr != NULL)
        return PS_OK;
    while (cr < rows)
        cr *= 2;
    while (cn < nnz)
        cn *= 2;
    free_dev(m); /* on failure rowptr stays NULL: the next call retries */
    if ((rc = ps_backend_buf_alloc(be, (cr + 1) * sizeof(uint32_t),
                                   &m->rowptr)) != PS_OK ||
        (rc = ps_backend_buf_alloc(be, cn * sizeof(uint32_t), &m->col)) !=
            PS_OK ||
        (rc = ps_backend_buf_alloc(be, cn * sizeof(float), &m->val)) != PS_OK ||
        (rc = ps_backend_buf_alloc(be, cr * sizeof(float), &m->labels)) !=
            PS_OK ||
        (rc = ps_backend_buf_alloc(be, cr * sizeof(float), &m->z)) != PS_OK ||
        (rc = ps_backend_buf_alloc(be, cn * sizeof(float), &m->w)) != PS_OK ||
        (rc = ps_backend_buf_alloc(be, cn * sizeof(float), &m->g)) != PS_OK) {
        free_dev(m);
        return rc;
    }
    m->cap_rows = cr;
    m->cap_nnz = cn;
    return PS_OK;
}

int ps_logreg_new(ps_logreg **out, const char *spec, ps_backend *be,
                  size_t max_batch, char *err, size_t errlen)
{
    ps_logreg *m;
    unsigned bits;
    int rc;

    if (out == NULL || be == NULL) {
        ps_errf(err, errlen, PS_OK,
                "ps_logreg_new: out and backend are required");
        return PS_EINVAL;
    }
    if ((rc = ps_logreg_parse_spec(spec, &bits, err, errlen)) != PS_OK)
        return rc;
    if (max_batch < 1 || max_batch > LR_MAX_BATCH) {
        ps_errf(err, errlen, PS_OK, "logreg: max_batch %zu outside 1..%zu",
                max_batch, LR_MAX_BATCH);
        return PS_EINVAL;
    }
    m = calloc(1, sizeof(*m));
    if (m == NULL) {
        ps_errf(err, errlen, PS_OK, "logreg: out of memory");
        return PS_ENOMEM;
    }
    m->be = be;
    m->bits = bits;
    m->cap_rows = max_batch;
    m->cap_nnz = max_batch * LR_START_NNZ_PER_ROW;
    ps_logreg_batch_init(&m->scratch);
    if ((rc = ps_backend_buf_alloc(be, 2 * sizeof(float), &m->stats)) !=
            PS_OK ||
        (rc = ensure_dev(m, max_batch, m->cap_nnz)) != PS_OK) {
        ps_errf(err, errlen, PS_OK,
                "logreg: cannot allocate device buffers on %s (batch %zu): "
                "%s",
                ps_backend_name(be), max_batch, ps_strerror(rc));
        ps_logreg_free(m);
        return rc;
    }
    *out = m;
    return PS_OK;
}

void ps_logreg_free(ps_logreg *m)
{
    if (m == NULL)
        return;
    free_dev(m);
    ps_backend_buf_free(m->be, m->stats);
    ps_logreg_batch_free(&m->scratch);
    ps_backend_host_free(m->be, m->scratch_w);
    free(m);
}

unsigned ps_logreg_bits(const ps_logreg *m)
{
    return m->bits;
}

/* ---- batches ---- */

void ps_logreg_batch_init(ps_logreg_batch *lb)
{
    memset(lb, 0, sizeof(*lb));
}

/* Frees the arrays the device reads (allocated only once be is set). */
static void free_uploaded(ps_logreg_batch *lb)
{
    if (lb->be == NULL)
        return;
    ps_backend_host_free(lb->be, lb->rowptr);
    ps_backend_host_free(lb->be, lb->col);
    ps_backend_host_free(lb->be, lb->val);
    ps_backend_host_free(lb->be, lb->y);
    lb->rowptr = lb->col = NULL;
    lb->val = lb->y = NULL;
    lb->cap_rows = 0;
}

void ps_logreg_batch_free(ps_logreg_batch *lb)
{
    free_uploaded(lb);
    free(lb->keys);
    free(lb->slot_key);
    free(lb->slot_pos);
    free(lb->used);
    ps_logreg_batch_init(lb);
}

static int grow(void **p, size_t n, size_t size)
{
    void *q = realloc(*p, n * size);
    if (q == NULL)
        return PS_ENOMEM;
    *p = q;
    return PS_OK;
}

/* An array the device reads, in be's host memory, replaced by a larger
 * one; its contents are not kept (a build rewrites them all). */
static int regrow_host(ps_backend *be, void **p, size_t n, size_t size)
{
    void *q = ps_backend_host_alloc(be, n * size);
    if (q == NULL)
        return PS_ENOMEM;
    ps_backend_host_free(be, *p);
    *p = q;
    return PS_OK;
}

/* Capacity for rows and nnz entries; the hash gets >= 2 slots per entry
 * (a power of two, all empty). */
static int batch_reserve(ps_logreg_batch *lb, ps_backend *be, size_t rows,
                         size_t nnz)
{
    if (lb->be != be) { /* a batch moved to another model's backend */
        free_uploaded(lb);
        lb->be = be;
        lb->cap_nnz = 0;
    }
    if (rows > lb->cap_rows) {
        if (regrow_host(be, (void **)&lb->rowptr, rows + 1, sizeof(uint32_t)) ||
            regrow_host(be, (void **)&lb->y, rows, sizeof(float)))
            return PS_ENOMEM;
        lb->cap_rows = rows;
    }
    if (nnz > lb->cap_nnz) {
        size_t cap = lb->cap_nnz ? lb->cap_nnz : 64, slots = 1;
        while (cap < nnz)
            cap *= 2;
        while (slots < 2 * cap)
            slots *= 2;
        if (grow((void **)&lb->keys, cap, sizeof(uint64_t)) ||
            regrow_host(be, (void **)&lb->col, cap, sizeof(uint32_t)) ||
            regrow_host(be, (void **)&lb->val, cap, sizeof(float)) ||
            grow((void **)&lb->used, cap, sizeof(uint32_t)) ||
            grow((void **)&lb->slot_key, slots, sizeof(uint64_t)))
            return PS_ENOMEM;
        free(lb->slot_pos);
        lb->slot_pos = calloc(slots, sizeof(uint32_t));
        if (lb->slot_pos == NULL) {
            lb->cap_nnz = lb->nslots = 0; /* the hash is gone */
            return PS_ENOMEM;
        }
        lb->cap_nnz = cap;
        lb->nslots = slots;
    }
    return PS_OK;
}

/* Position of key in lb->keys, adding it when new. */
static uint32_t key_pos(ps_logreg_batch *lb, uint64_t key)
{
    size_t mask = lb->nslots - 1, s = (size_t)ps_mix64(key) & mask;

    while (lb->slot_pos[s] != 0) {
        if (lb->slot_key[s] == key)
            return lb->slot_pos[s] - 1;
        s = (s + 1) & mask;
    }
    lb->slot_key[s] = key;
    lb->slot_pos[s] = (uint32_t)lb->nuniq + 1;
    lb->used[lb->nuniq] = (uint32_t)s;
    lb->keys[lb->nuniq] = key;
    return (uint32_t)lb->nuniq++;
}

int ps_logreg_batch_build(const ps_logreg *m, ps_logreg_batch *lb,
                          const ps_batch *b, int check_labels, char *err,
                          size_t errlen)
{
    size_t nnz;
    int rc;

    if (m == NULL || lb == NULL || b == NULL || b->rowptr == NULL ||
        (b->n > 0 && b->y == NULL)) {
        ps_errf(err, errlen, PS_OK, "logreg needs sparse rows (libsvm data)");
        return PS_EINVAL;
    }
    nnz = b->rowptr[b->n] - b->rowptr[0] + b->n; /* + one bias per row */
    if (nnz >= UINT32_MAX || b->n >= UINT32_MAX) {
        ps_errf(err, errlen, PS_OK, "logreg: batch of %zu entries is too large",
                nnz);
        return PS_EINVAL;
    }
    if (check_labels)
        for (size_t i = 0; i < b->n; i++)
            if (b->y[i] != 0.0f && b->y[i] != 1.0f) {
                ps_errf(err, errlen, PS_OK,
                        "data: label %g is not 0 or 1 (logreg trains binary "
                        "labels; libsvm's -1 reads as 0)",
                        (double)b->y[i]);
                return PS_EINVAL;
            }
    if ((rc = batch_reserve(lb, m->be, b->n, nnz + 1)) != PS_OK) {
        ps_errf(err, errlen, PS_OK,
                "logreg: out of memory for a batch of %zu entries", nnz);
        return rc;
    }
    lb->n = b->n;
    lb->nuniq = 0;
    uint32_t bias = key_pos(lb, ps_logreg_bias_key(m->bits));
    size_t e = 0;
    lb->rowptr[0] = 0;
    for (size_t i = 0; i < b->n; i++) {
        for (size_t p = b->rowptr[i]; p < b->rowptr[i + 1]; p++) {
            lb->col[e] = key_pos(lb, ps_logreg_key(m->bits, b->idx[p]));
            lb->val[e++] = b->val[p];
        }
        lb->col[e] = bias;
        lb->val[e++] = 1.0f;
        lb->rowptr[i + 1] = (uint32_t)e;
        lb->y[i] = b->y[i];
    }
    lb->nnz = e;
    for (size_t k = 0; k < lb->nuniq; k++)
        lb->slot_pos[lb->used[k]] = 0;
    return PS_OK;
}

/* ---- compute ---- */

/* Waits for what was issued (the caller's host arrays are borrowed until
 * then) and passes rc on. */
static int drain(ps_logreg *m, int rc)
{
    (void)ps_backend_sync(m->be);
    return rc;
}

/* Uploads the batch and w, then z = X·w (bias included). */
static int forward(ps_logreg *m, const ps_logreg_batch *lb, const float *w,
                   ps_csr *x)
{
    ps_backend *be = m->be;
    int rc;

    if (lb == NULL || w == NULL || lb->n == 0)
        return PS_EINVAL;
    if ((rc = ensure_dev(m, lb->n, lb->nnz)) != PS_OK)
        return rc;
    *x =
        (ps_csr){m->rowptr, 0, m->col, 0, m->val, 0, lb->n, lb->nuniq, lb->nnz};
    ps_mat wm = {m->w, 0, 1}, zm = {m->z, 0, 1};
    if ((rc = ps_backend_upload(be, m->rowptr, 0, lb->rowptr,
                                (lb->n + 1) * sizeof(uint32_t))) != PS_OK ||
        (rc = ps_backend_upload(be, m->col, 0, lb->col,
                                lb->nnz * sizeof(uint32_t))) != PS_OK ||
        (rc = ps_backend_upload(be, m->val, 0, lb->val,
                                lb->nnz * sizeof(float))) != PS_OK ||
        (rc = ps_backend_upload(be, m->labels, 0, lb->y,
                                lb->n * sizeof(float))) != PS_OK ||
        (rc = ps_backend_upload(be, m->w, 0, w, lb->nuniq * sizeof(float))) !=
            PS_OK)
        return rc;
    return ps_backend_csr_mm(be, *x, 1, wm, zm);
}

int ps_logreg_step(ps_logreg *m, const ps_logreg_batch *lb, const float *w,
                   float *grad, double *loss, size_t *correct)
{
    ps_backend *be = m->be;
    ps_csr x;
    int rc;

    if (grad == NULL)
        return PS_EINVAL;
    if ((rc = forward(m, lb, w, &x)) != PS_OK)
        return drain(m, rc);
    ps_mat dz = {m->z, 0, 1}, gm = {m->g, 0, 1};
    /* dLoss/dz overwrites z, then G = X^T dz. */
    if ((rc = ps_backend_sigmoid_xent(be, m->z, 0, m->labels, 0, lb->n, m->z, 0,
                                      m->stats, 0)) != PS_OK ||
        (rc = ps_backend_fill(be, m->g, 0, lb->nuniq, 0.0f)) != PS_OK ||
        (rc = ps_backend_csr_mm_t(be, x, 1, dz, gm)) != PS_OK ||
        (rc = ps_backend_download(be, m->g, 0, grad,
                                  lb->nuniq * sizeof(float))) != PS_OK ||
        (rc = ps_backend_fetch_stats(m->be, m->stats, 0, loss, correct)) !=
            PS_OK)
        return drain(m, rc);
    return PS_OK;
}

int ps_logreg_eval(ps_logreg *m, const ps_logreg_batch *lb, const float *w,
                   double *loss, size_t *correct, float *logits)
{
    ps_csr x;
    int rc;

    if ((rc = forward(m, lb, w, &x)) != PS_OK ||
        (logits != NULL &&
         (rc = ps_backend_download(m->be, m->z, 0, logits,
                                   lb->n * sizeof(float))) != PS_OK) ||
        (rc = ps_backend_sigmoid_xent(m->be, m->z, 0, m->labels, 0, lb->n, NULL,
                                      0, m->stats, 0)) != PS_OK ||
        (rc = ps_backend_fetch_stats(m->be, m->stats, 0, loss, correct)) !=
            PS_OK)
        return drain(m, rc);
    return PS_OK;
}

int ps_logreg_predict(ps_logreg *m, const ps_batch *b, ps_logreg_lookup lookup,
                      void *ctx, float *probs)
{
    ps_logreg_batch *lb = &m->scratch;
    ps_csr x;
    int rc;

    if (b == NULL || lookup == NULL || probs == NULL || b->n == 0)
        return PS_EINVAL;
    if ((rc = ps_logreg_batch_build(m, lb, b, 0, NULL, 0)) != PS_OK)
        return rc;
    if (lb->nuniq > m->scratch_w_cap) {
        if (regrow_host(m->be, (void **)&m->scratch_w, lb->cap_nnz,
                        sizeof(float)))
            return PS_ENOMEM;
        m->scratch_w_cap = lb->cap_nnz;
    }
    if ((rc = lookup(ctx, lb->keys, lb->nuniq, m->scratch_w)) != PS_OK)
        return rc;
    if ((rc = forward(m, lb, m->scratch_w, &x)) != PS_OK ||
        (rc = ps_backend_sigmoid(m->be, m->z, 0, m->z, 0, lb->n)) != PS_OK ||
        (rc = ps_backend_download(m->be, m->z, 0, probs,
                                  lb->n * sizeof(float))) != PS_OK)
        return drain(m, rc);
    return ps_backend_sync(m->be);
}
