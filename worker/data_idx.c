/* IDX reader (the MNIST family): an images file (magic 0x00000803: unsigned
 * bytes, 3 dims n, rows, cols; big-endian) and a labels file (0x00000801,
 * n). Both go through zlib, so plain and .gz files read alike; records of
 * other shares are skipped with gzseek (a real seek on plain files). Pixels
 * become floats in [0, 1]; labels are the class ids. */
#include "data_int.h"

#include "common/sparkps_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_IMAGES_HEADER 16
#define IDX_LABELS_HEADER 8
/* Largest image (rows * cols bytes) accepted from a header. */
#define IDX_MAX_IMAGE ((size_t)1 << 24)

typedef struct idx_state {
    gzFile img, lab;
    uint64_t n;         /* records, from the headers */
    uint64_t pos;       /* record both files are positioned at;
                           UINT64_MAX: unknown, seek before reading */
    unsigned char *rec; /* one image, d->dim bytes */
} idx_state;

/* The labels file beside an images file, per the MNIST naming; NULL when the
 * name does not follow it (errno = EINVAL) or out of memory. */
static char *derive_labels_path(const char *path)
{
    static const struct {
        const char *img, *lab; /* same length */
    } names[] = {
        {"-images-idx3-ubyte", "-labels-idx1-ubyte"},
        {"-images.idx3-ubyte", "-labels.idx1-ubyte"},
    };
    size_t len = strlen(path);
    size_t gz = len >= 3 && strcmp(path + len - 3, ".gz") == 0 ? 3 : 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t plen = strlen(names[i].img);
        if (len - gz < plen ||
            memcmp(path + len - gz - plen, names[i].img, plen) != 0)
            continue;
        char *out = strdup(path);
        if (out)
            memcpy(out + len - gz - plen, names[i].lab, plen);
        return out;
    }
    errno = EINVAL;
    return NULL;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static int open_file(gzFile *gz, const char *path, char *err, size_t errlen)
{
    errno = 0;
    *gz = gzopen(path, "rb");
    if (!*gz) {
        ps__data_err(err, errlen, "%s: cannot open: %s", path,
                     errno ? strerror(errno) : "out of memory");
        return errno ? PS_EIO : PS_ENOMEM;
    }
    gzbuffer(*gz, 1u << 17);
    return PS_OK;
}

/* Reads exactly len bytes; a short read is PS_EINVAL ("truncated", the data
 * ended) unless zlib reports a real read error (PS_EIO). *why is set to the
 * reason for the caller to place in its message. */
static int read_exact(gzFile gz, const char *path, void *buf, size_t len,
                      const char **why)
{
    int got = gzread(gz, buf, (unsigned)len);
    if (got >= 0 && (size_t)got == len)
        return PS_OK;
    int zerr = Z_OK;
    gzerror(gz, &zerr);
    if (got >= 0 && (zerr == Z_OK || zerr == Z_BUF_ERROR)) {
        *why = "truncated";
        return PS_EINVAL;
    }
    *why = ps__data_gzwhy(gz, path);
    return PS_EIO;
}

static int idx_open(ps_dataset *d, char *err, size_t errlen)
{
    int rc;
    const char *why = NULL;
    unsigned char h[IDX_IMAGES_HEADER];
    idx_state *st = calloc(1, sizeof(*st));
    if (!st) {
        ps__data_err(err, errlen, "%s: out of memory", d->path);
        return PS_ENOMEM;
    }
    d->fmt = st;
    st->pos = UINT64_MAX;

    if (!d->labels_path) {
        d->labels_path = derive_labels_path(d->path);
        if (!d->labels_path) {
            if (errno != EINVAL) {
                ps__data_err(err, errlen, "%s: out of memory", d->path);
                return PS_ENOMEM;
            }
            ps__data_err(err, errlen,
                         "%s: cannot derive the labels file (name does not "
                         "end in -images-idx3-ubyte[.gz]); give its path",
                         d->path);
            return PS_EINVAL;
        }
        d->cfg.labels_path = d->labels_path;
    }

    rc = open_file(&st->img, d->path, err, errlen);
    if (rc != PS_OK)
        return rc;
    rc = read_exact(st->img, d->path, h, IDX_IMAGES_HEADER, &why);
    if (rc != PS_OK) {
        ps__data_err(err, errlen, "%s: header: %s", d->path, why);
        return rc;
    }
    uint32_t magic = be32(h);
    if (magic != IDX_IMAGES_MAGIC) {
        ps__data_err(err, errlen,
                     "%s: bad magic 0x%08x (want 0x%08x: unsigned-byte "
                     "images with 3 dimensions)",
                     d->path, (unsigned)magic, IDX_IMAGES_MAGIC);
        return PS_EINVAL;
    }
    uint64_t n = be32(h + 4);
    size_t rows = be32(h + 8), cols = be32(h + 12);
    if (rows == 0 || cols == 0 || rows > IDX_MAX_IMAGE / cols) {
        ps__data_err(err, errlen,
                     "%s: bad image size %zu x %zu (at most %zu "
                     "pixels)",
                     d->path, rows, cols, IDX_MAX_IMAGE);
        return PS_EINVAL;
    }

    rc = open_file(&st->lab, d->labels_path, err, errlen);
    if (rc != PS_OK)
        return rc;
    rc = read_exact(st->lab, d->labels_path, h, IDX_LABELS_HEADER, &why);
    if (rc != PS_OK) {
        ps__data_err(err, errlen, "%s: header: %s", d->labels_path, why);
        return rc;
    }
    magic = be32(h);
    if (magic != IDX_LABELS_MAGIC) {
        ps__data_err(err, errlen,
                     "%s: bad magic 0x%08x (want 0x%08x: unsigned-byte "
                     "labels with 1 dimension)",
                     d->labels_path, (unsigned)magic, IDX_LABELS_MAGIC);
        return PS_EINVAL;
    }
    uint64_t nlab = be32(h + 4);
    if (nlab != n) {
        ps__data_err(err, errlen, "%s: %llu images but %s: %llu labels",
                     d->path, (unsigned long long)n, d->labels_path,
                     (unsigned long long)nlab);
        return PS_EINVAL;
    }

    st->n = n;
    st->pos = 0;
    d->dim = rows * cols;
    d->rows_hint = n > d->part ? (n - d->part + d->parts - 1) / d->parts : 0;
    st->rec = malloc(d->dim);
    if (!st->rec) {
        ps__data_err(err, errlen, "%s: out of memory", d->path);
        return PS_ENOMEM;
    }
    return PS_OK;
}

/* Positions both files at record r. */
static int seek_to(ps_dataset *d, idx_state *st, uint64_t r, char *err,
                   size_t errlen)
{
    if (st->pos == r)
        return PS_OK;
    z_off_t img_off = (z_off_t)(IDX_IMAGES_HEADER + r * d->dim);
    z_off_t lab_off = (z_off_t)(IDX_LABELS_HEADER + r);
    if (gzseek(st->img, img_off, SEEK_SET) < 0) {
        ps__data_gzerr(st->img, d->path, "seek failed", err, errlen);
        return PS_EIO;
    }
    if (gzseek(st->lab, lab_off, SEEK_SET) < 0) {
        ps__data_gzerr(st->lab, d->labels_path, "seek failed", err, errlen);
        return PS_EIO;
    }
    st->pos = r;
    return PS_OK;
}

static int idx_next(ps_dataset *d, ps_batch *b, size_t max_rows, char *err,
                    size_t errlen)
{
    idx_state *st = d->fmt;
    const char *why = NULL;
    /* No bigger buffers than the whole share needs (full-batch training). */
    if (max_rows > d->rows_hint)
        max_rows = d->rows_hint ? (size_t)d->rows_hint : 1;
    int rc = ps__data_reserve_rows(d, max_rows, d->dim, err, errlen);
    if (rc != PS_OK)
        return rc;

    size_t n = 0;
    while (n < max_rows && d->record < st->n) {
        uint64_t r = d->record;
        if (!ps__data_mine(d, r)) {
            /* The first record of the share at or after r. */
            uint64_t mine = r - r % d->parts + d->part;
            d->record = mine < r ? mine + d->parts : mine;
            continue;
        }
        rc = seek_to(d, st, r, err, errlen);
        if (rc != PS_OK)
            return rc;
        /* A failed read leaves the position unknown. */
        st->pos = UINT64_MAX;
        rc = read_exact(st->img, d->path, st->rec, d->dim, &why);
        if (rc != PS_OK) {
            ps__data_err(err, errlen, "%s: record %llu: %s", d->path,
                         (unsigned long long)r, why);
            return rc;
        }
        unsigned char label;
        rc = read_exact(st->lab, d->labels_path, &label, 1, &why);
        if (rc != PS_OK) {
            ps__data_err(err, errlen, "%s: record %llu: %s", d->labels_path,
                         (unsigned long long)r, why);
            return rc;
        }
        st->pos = r + 1;
        float *x = d->x + n * d->dim;
        for (size_t j = 0; j < d->dim; j++)
            x[j] = (float)st->rec[j] / 255.0f;
        d->y[n] = (float)label;
        n++;
        d->record = r + 1;
    }
    b->n = n;
    b->dim = d->dim;
    b->x = d->x;
    b->y = d->y;
    return PS_OK;
}

static int idx_rewind(ps_dataset *d, char *err, size_t errlen)
{
    idx_state *st = d->fmt;
    st->pos = UINT64_MAX;
    if (gzrewind(st->img) != 0) {
        ps__data_gzerr(st->img, d->path, "cannot rewind", err, errlen);
        return PS_EIO;
    }
    if (gzrewind(st->lab) != 0) {
        ps__data_gzerr(st->lab, d->labels_path, "cannot rewind", err, errlen);
        return PS_EIO;
    }
    return PS_OK;
}

static void idx_close(ps_dataset *d)
{
    idx_state *st = d->fmt;
    if (!st)
        return;
    if (st->img)
        gzclose(st->img);
    if (st->lab)
        gzclose(st->lab);
    free(st->rec);
    free(st);
    d->fmt = NULL;
}

const ps__data_ops ps__data_idx_ops = {idx_open, idx_next, idx_rewind,
                                       idx_close};
