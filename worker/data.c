/* Training data readers: the public entry points of data.h, which check
 * arguments and dispatch to one file per format (data_idx.c, data_csv.c,
 * data_libsvm.c, data_stream.c) through a table of operations, plus the
 * batch buffers they share. A dataset is used by one thread; nothing here is
 * global. */
#include "data_int.h"

#include "common/sparkps_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ps__data_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int ps__data_reserve_rows(ps_dataset *d, size_t rows, size_t dim, char *err,
                          size_t errlen)
{
    if (dim > 0) {
        if (rows > PS_DATA_MAX_BATCH_BYTES / sizeof(float) / dim) {
            ps__data_err(err, errlen,
                         "%s: batch of %zu rows x %zu features exceeds %zu "
                         "bytes",
                         d->path, rows, dim, PS_DATA_MAX_BATCH_BYTES);
            return PS_EINVAL;
        }
        if (rows * dim > d->x_cap) {
            float *x = realloc(d->x, rows * dim * sizeof(*x));
            if (!x)
                goto nomem;
            d->x = x;
            d->x_cap = rows * dim;
        }
    }
    if (rows > d->rows_cap) {
        if (rows > PS_DATA_MAX_BATCH_BYTES / sizeof(size_t) - 1) {
            ps__data_err(err, errlen, "%s: batch of %zu rows is too large",
                         d->path, rows);
            return PS_EINVAL;
        }
        float *y = realloc(d->y, rows * sizeof(*y));
        if (!y)
            goto nomem;
        d->y = y;
        size_t *rowptr = realloc(d->rowptr, (rows + 1) * sizeof(*rowptr));
        if (!rowptr)
            goto nomem; /* y grown alone is harmless: rows_cap unchanged */
        d->rowptr = rowptr;
        d->rows_cap = rows;
    }
    return PS_OK;
nomem:
    ps__data_err(err, errlen, "%s: out of memory for a batch of %zu rows",
                 d->path, rows);
    return PS_ENOMEM;
}

int ps__data_reserve_nnz(ps_dataset *d, size_t nnz, char *err, size_t errlen)
{
    if (nnz <= d->nnz_cap)
        return PS_OK;
    if (nnz > PS_DATA_MAX_NNZ) {
        ps__data_err(err, errlen,
                     "%s: more than %zu nonzeros in one batch; use smaller "
                     "batches",
                     d->path, PS_DATA_MAX_NNZ);
        return PS_EINVAL;
    }
    size_t cap = d->nnz_cap ? d->nnz_cap : 1024;
    while (cap < nnz)
        cap *= 2;
    if (cap > PS_DATA_MAX_NNZ)
        cap = PS_DATA_MAX_NNZ;
    uint64_t *idx = realloc(d->idx, cap * sizeof(*idx));
    if (!idx)
        goto nomem;
    d->idx = idx;
    float *val = realloc(d->val, cap * sizeof(*val));
    if (!val)
        goto nomem; /* idx grown alone is harmless: nnz_cap unchanged */
    d->val = val;
    d->nnz_cap = cap;
    return PS_OK;
nomem:
    ps__data_err(err, errlen, "%s: out of memory for %zu nonzeros", d->path,
                 nnz);
    return PS_ENOMEM;
}

int ps_data_open(ps_dataset **out, const ps_data_cfg *cfg, char *err,
                 size_t errlen)
{
    int rc = PS_OK;
    ps_dataset *d = NULL;

    if (!out || !cfg || !cfg->path || !cfg->path[0]) {
        ps__data_err(err, errlen, "data: no path given");
        return PS_EINVAL;
    }
    const ps__data_ops *ops;
    switch (cfg->format) {
    case PS_DATA_LIBSVM:
        ops = &ps__data_libsvm_ops;
        break;
    case PS_DATA_CSV:
        ops = &ps__data_csv_ops;
        break;
    case PS_DATA_IDX:
        ops = &ps__data_idx_ops;
        break;
    case PS_DATA_STREAM:
        ops = &ps__data_stream_ops;
        break;
    default:
        ps__data_err(err, errlen, "%s: unknown data format %d", cfg->path,
                     (int)cfg->format);
        return PS_EINVAL;
    }
    unsigned parts = cfg->parts ? cfg->parts : 1;
    if (cfg->part >= parts) {
        ps__data_err(err, errlen, "%s: part %u is not below parts %u",
                     cfg->path, cfg->part, parts);
        return PS_EINVAL;
    }

    d = calloc(1, sizeof(*d));
    if (!d)
        goto nomem;
    d->cfg = *cfg;
    d->ops = ops;
    d->part = cfg->part;
    d->parts = parts;
    d->path = strdup(cfg->path);
    if (!d->path)
        goto nomem;
    d->cfg.path = d->path;
    if (cfg->labels_path) {
        d->labels_path = strdup(cfg->labels_path);
        if (!d->labels_path)
            goto nomem;
    }
    d->cfg.labels_path = d->labels_path;

    rc = ops->open(d, err, errlen);
    if (rc != PS_OK)
        goto out;
    *out = d;
    d = NULL;
out:
    ps_data_close(d);
    return rc;
nomem:
    ps__data_err(err, errlen, "%s: out of memory", cfg->path);
    rc = PS_ENOMEM;
    goto out;
}

void ps_data_close(ps_dataset *d)
{
    if (!d)
        return;
    d->ops->close(d);
    free(d->x);
    free(d->y);
    free(d->rowptr);
    free(d->idx);
    free(d->val);
    free(d->labels_path);
    free(d->path);
    free(d);
}

size_t ps_data_dim(const ps_dataset *d)
{
    return d ? d->dim : 0;
}

int ps_data_sparse(const ps_dataset *d)
{
    return d && (d->cfg.format == PS_DATA_LIBSVM || d->sparse);
}

uint64_t ps_data_rows_hint(const ps_dataset *d)
{
    return d ? d->rows_hint : 0;
}

int ps_data_next(ps_dataset *d, ps_batch *b, size_t max_rows, char *err,
                 size_t errlen)
{
    if (!d || !b) {
        ps__data_err(err, errlen, "data: no dataset or batch");
        return PS_EINVAL;
    }
    memset(b, 0, sizeof(*b));
    if (max_rows == 0) {
        ps__data_err(err, errlen, "%s: max_rows must be at least 1", d->path);
        return PS_EINVAL;
    }
    return d->ops->next(d, b, max_rows, err, errlen);
}

int ps_data_rewind(ps_dataset *d, char *err, size_t errlen)
{
    if (!d) {
        ps__data_err(err, errlen, "data: no dataset");
        return PS_EINVAL;
    }
    d->record = 0;
    return d->ops->rewind(d, err, errlen);
}
