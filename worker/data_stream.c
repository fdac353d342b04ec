/* Stream reader: the connector's framed binary format (the contract is
 * spark-connector/FORMAT.md). A 16-byte header, then batches of column
 * blocks (labels, values or counts/ids/values), then a 16-byte all-zero
 * end marker. Memory is one read buffer plus the largest batch (capped);
 * each batch is checked whole before any of its rows is handed out.
 *
 * The source is a file descriptor read with read(2): path "-" is stdin.
 * A regular file rewinds with lseek. Anything else (a pipe) can be read
 * once, so with cfg.multi_pass every byte read from it is also appended to
 * an unlinked mkstemp file, and a rewind first drains the rest of the pipe
 * into that file, then reads the file from its start like any stream
 * file. Single-threaded, like every reader. */
#include "data_int.h"

#include "common/sparkps_err.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define STREAM_HEADER 16
#define STREAM_BATCH_HEADER 16
#define STREAM_VERSION 1
#define STREAM_DENSE 1
#define STREAM_SPARSE 2
#define STREAM_MAX_ROWS ((uint32_t)1 << 20)
#define STREAM_MAX_PAYLOAD ((uint64_t)1 << 28)
#define STREAM_MAX_DENSE_DIM ((uint64_t)1 << 24)
#define STREAM_READ_CHUNK ((size_t)1 << 16)

static const unsigned char stream_magic[4] = {'S', 'P', 'K', 'S'};

typedef struct stream_state {
    const char *name; /* "stdin" or the path, for messages */
    int in_fd;        /* the source; -1 once replaced by the cache */
    int own_in;       /* we opened in_fd (not stdin): close it */
    int fd;           /* what is read now: in_fd, or cache_fd on replay */
    off_t start;      /* offset of the header in a seekable fd */
    int seekable;
    int cache_fd;       /* -1: no cache */
    char *cache_path;   /* for messages; the file itself is unlinked */
    int replay;         /* reading the cache, no longer writing it */
    unsigned char *buf; /* STREAM_READ_CHUNK bytes */
    size_t buf_pos, buf_len;
    int eof; /* fd reached its end */
    int kind;
    uint64_t hdr_dim;   /* the header's dim (sparse: 0 = unknown) */
    uint64_t batch;     /* index of the next batch header to read */
    uint32_t rows, pos; /* rows in the loaded batch, next to hand out */
    uint64_t nnz;       /* sparse: nonzeros of the loaded batch */
    int ended;          /* end marker read and checked */
    unsigned char *pay; /* payload of the loaded batch */
    size_t pay_cap;
    size_t *off;    /* sparse: rows + 1 row starts into ids/vals */
    size_t off_cap; /* entries */
} stream_state;

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static float lef32(const unsigned char *p)
{
    uint32_t u = le32(p);
    float f;
    memcpy(&f, &u, sizeof(f)); /* bit-exact: -0.0, denormals pass */
    return f;
}

/* ---- source: buffered read(2), teeing into the cache ---- */

/* Appends bytes just read from the pipe to the cache file. */
static int cache_append(stream_state *st, const void *p, size_t n, char *err,
                        size_t errlen)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = write(st->cache_fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            ps__data_err(err, errlen, "%s: cache %s: write failed: %s",
                         st->name, st->cache_path,
                         w < 0 ? strerror(errno) : "no progress");
            return PS_EIO;
        }
        s += w;
        n -= (size_t)w;
    }
    return PS_OK;
}

/* Reads up to n bytes from fd into p (*got = 0 at the end). */
static int raw_read(stream_state *st, void *p, size_t n, size_t *got, char *err,
                    size_t errlen)
{
    ssize_t r;
    do
        r = read(st->fd, p, n);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        ps__data_err(err, errlen, "%s: read failed: %s",
                     st->replay ? st->cache_path : st->name, strerror(errno));
        return PS_EIO;
    }
    *got = (size_t)r;
    if (r == 0)
        st->eof = 1;
    else if (st->cache_fd >= 0 && !st->replay)
        return cache_append(st, p, (size_t)r, err, errlen);
    return PS_OK;
}

/* Reads n bytes into dst; *got < n only at the end of the input. */
static int src_read(stream_state *st, void *dst, size_t n, size_t *got,
                    char *err, size_t errlen)
{
    unsigned char *out = dst;
    *got = 0;
    while (*got < n) {
        size_t avail = st->buf_len - st->buf_pos, want = n - *got, k;
        if (avail > 0) {
            size_t take = avail < want ? avail : want;
            memcpy(out + *got, st->buf + st->buf_pos, take);
            st->buf_pos += take;
            *got += take;
            continue;
        }
        if (st->eof)
            break;
        if (want >= STREAM_READ_CHUNK) { /* big payloads skip the copy */
            int rc = raw_read(st, out + *got, want, &k, err, errlen);
            if (rc != PS_OK)
                return rc;
            *got += k;
            continue;
        }
        int rc = raw_read(st, st->buf, STREAM_READ_CHUNK, &k, err, errlen);
        if (rc != PS_OK)
            return rc;
        st->buf_pos = 0;
        st->buf_len = k;
    }
    return PS_OK;
}

/* ---- header and batches ---- */

static int read_header(ps_dataset *d, stream_state *st, char *err,
                       size_t errlen)
{
    unsigned char h[STREAM_HEADER];
    size_t got;
    int rc = src_read(st, h, sizeof(h), &got, err, errlen);
    if (rc != PS_OK)
        return rc;
    if (got == 0) {
        ps__data_err(err, errlen, "%s: empty input (no stream header)",
                     st->name);
        return PS_EINVAL;
    }
    if (got < sizeof(h)) {
        ps__data_err(err, errlen,
                     "%s: truncated stream header (got %zu of %d bytes)",
                     st->name, got, STREAM_HEADER);
        return PS_EINVAL;
    }
    if (memcmp(h, stream_magic, sizeof(stream_magic)) != 0) {
        ps__data_err(err, errlen,
                     "%s: bad magic %02x %02x %02x %02x (want 53 50 4b 53 "
                     "\"SPKS\": not a sparkps stream)",
                     st->name, h[0], h[1], h[2], h[3]);
        return PS_EINVAL;
    }
    unsigned version = (unsigned)h[4] | (unsigned)h[5] << 8;
    if (version != STREAM_VERSION) {
        ps__data_err(err, errlen,
                     "%s: unsupported stream version %u (this reader speaks "
                     "%d)",
                     st->name, version, STREAM_VERSION);
        return PS_EINVAL;
    }
    if (h[6] != STREAM_DENSE && h[6] != STREAM_SPARSE) {
        ps__data_err(err, errlen,
                     "%s: unknown row kind %u (1: dense, 2: sparse)", st->name,
                     (unsigned)h[6]);
        return PS_EINVAL;
    }
    if (h[7] != 0) {
        ps__data_err(err, errlen,
                     "%s: reserved header byte is 0x%02x, must be 0", st->name,
                     (unsigned)h[7]);
        return PS_EINVAL;
    }
    uint64_t dim = le64(h + 8);
    uint64_t max =
        h[6] == STREAM_DENSE ? STREAM_MAX_DENSE_DIM : PS_DATA_MAX_FEATURE;
    if (h[6] == STREAM_DENSE && dim == 0) {
        ps__data_err(err, errlen, "%s: dense stream with dim 0", st->name);
        return PS_EINVAL;
    }
    if (dim > max) {
        ps__data_err(err, errlen, "%s: dim %llu too large (at most %llu)",
                     st->name, (unsigned long long)dim,
                     (unsigned long long)max);
        return PS_EINVAL;
    }
    /* A replayed cache holds the same bytes; anything else is a bug. */
    if (st->kind && (st->kind != h[6] || st->hdr_dim != dim)) {
        ps__data_err(err, errlen, "%s: header changed on rewind", st->name);
        return PS_EIO;
    }
    st->kind = h[6];
    st->hdr_dim = dim;
    d->sparse = st->kind == STREAM_SPARSE;
    if (st->kind == STREAM_DENSE || dim > d->dim)
        d->dim = (size_t)dim;
    return PS_OK;
}

/* After the end marker only the end of the input may follow. */
static int check_trailing(stream_state *st, char *err, size_t errlen)
{
    unsigned char c;
    size_t got;
    int rc = src_read(st, &c, 1, &got, err, errlen);
    if (rc != PS_OK)
        return rc;
    if (got != 0) {
        ps__data_err(err, errlen,
                     "%s: trailing data after the end marker (batch %llu)",
                     st->name, (unsigned long long)st->batch);
        return PS_EINVAL;
    }
    st->ended = 1;
    return PS_OK;
}

/* Checks a batch header against the stream's header and the limits. */
static int check_batch_header(stream_state *st, uint32_t rows, uint32_t width,
                              uint64_t payload, char *err, size_t errlen)
{
    unsigned long long b = (unsigned long long)st->batch;
    if (rows > STREAM_MAX_ROWS) {
        ps__data_err(err, errlen,
                     "%s: batch %llu: %u rows (at most %u per "
                     "batch)",
                     st->name, b, rows, STREAM_MAX_ROWS);
        return PS_EINVAL;
    }
    uint64_t want;
    if (st->kind == STREAM_DENSE) {
        if (width != st->hdr_dim) {
            ps__data_err(err, errlen,
                         "%s: batch %llu: %u features per row, the stream "
                         "header says %llu",
                         st->name, b, width, (unsigned long long)st->hdr_dim);
            return PS_EINVAL;
        }
        want = 4 * (uint64_t)rows * (1 + st->hdr_dim);
    } else {
        want = 8 * (uint64_t)rows + 12 * (uint64_t)width;
    }
    if (payload != want) {
        ps__data_err(err, errlen,
                     "%s: batch %llu: payload_bytes %llu does not match %u "
                     "rows and %u %s (want %llu)",
                     st->name, b, (unsigned long long)payload, rows, width,
                     st->kind == STREAM_DENSE ? "features" : "nonzeros",
                     (unsigned long long)want);
        return PS_EINVAL;
    }
    if (payload > STREAM_MAX_PAYLOAD) {
        ps__data_err(err, errlen,
                     "%s: batch %llu: payload of %llu bytes "
                     "exceeds %llu",
                     st->name, b, (unsigned long long)payload,
                     (unsigned long long)STREAM_MAX_PAYLOAD);
        return PS_EINVAL;
    }
    return PS_OK;
}

/* Every label, and every value from byte offset from on, is finite. */
static int check_floats(stream_state *st, size_t from, size_t nvals,
                        size_t per_row, char *err, size_t errlen)
{
    for (uint32_t r = 0; r < st->rows; r++) {
        float y = lef32(st->pay + 4 * (size_t)r);
        if (!isfinite(y)) {
            ps__data_err(err, errlen,
                         "%s: batch %llu: row %u: label is not finite (%g)",
                         st->name, (unsigned long long)st->batch, r, (double)y);
            return PS_EINVAL;
        }
    }
    for (size_t j = 0; j < nvals; j++) {
        float v = lef32(st->pay + from + 4 * j);
        if (!isfinite(v)) {
            /* Sparse rows are found through off; dense by division. */
            size_t r = 0;
            if (per_row)
                r = j / per_row;
            else
                while (st->off[r + 1] <= j)
                    r++;
            size_t k = per_row ? j % per_row : j - st->off[r];
            ps__data_err(err, errlen,
                         "%s: batch %llu: row %zu: value %zu is not finite "
                         "(%g)",
                         st->name, (unsigned long long)st->batch, r, k,
                         (double)v);
            return PS_EINVAL;
        }
    }
    return PS_OK;
}

/* Feature id j (of row r) is above the row's previous one and below dim
 * (or the feature limit). */
static int check_id(stream_state *st, uint32_t r, const unsigned char *ids,
                    size_t j, char *err, size_t errlen)
{
    uint64_t id = le64(ids + 8 * j);
    const char *why = NULL;
    uint64_t other = 0;
    if (j > st->off[r] && id <= (other = le64(ids + 8 * (j - 1))))
        why = "not above the previous one";
    else if (st->hdr_dim && id >= st->hdr_dim)
        why = "not below dim", other = st->hdr_dim;
    else if (id >= PS_DATA_MAX_FEATURE)
        why = "too large, at most", other = PS_DATA_MAX_FEATURE - 1;
    if (!why)
        return PS_OK;
    ps__data_err(err, errlen,
                 "%s: batch %llu: row %u: feature id %llu %s (%llu)", st->name,
                 (unsigned long long)st->batch, r, (unsigned long long)id, why,
                 (unsigned long long)other);
    return PS_EINVAL;
}

/* Sparse: counts add up to nnz, ids increase within each row and stay
 * below the limits; fills st->off. */
static int check_sparse(stream_state *st, char *err, size_t errlen)
{
    unsigned long long b = (unsigned long long)st->batch;
    const unsigned char *counts = st->pay + 4 * (size_t)st->rows;
    const unsigned char *ids = st->pay + 8 * (size_t)st->rows;
    uint64_t total = 0;
    st->off[0] = 0;
    for (uint32_t r = 0; r < st->rows; r++) {
        total += le32(counts + 4 * (size_t)r); /* < 2^52: no overflow */
        st->off[r + 1] = (size_t)(total < st->nnz ? total : st->nnz);
    }
    if (total != st->nnz) {
        ps__data_err(err, errlen,
                     "%s: batch %llu: row nonzero counts add up to %llu, the "
                     "batch header says nnz %llu",
                     st->name, b, (unsigned long long)total,
                     (unsigned long long)st->nnz);
        return PS_EINVAL;
    }
    for (uint32_t r = 0; r < st->rows; r++) {
        for (size_t j = st->off[r]; j < st->off[r + 1]; j++) {
            int rc = check_id(st, r, ids, j, err, errlen);
            if (rc != PS_OK)
                return rc;
        }
    }
    return check_floats(st, 8 * (size_t)st->rows + 8 * st->nnz, st->nnz, 0, err,
                        errlen);
}

/* Grows the payload (and, sparse, row offset) buffers for one batch. */
static int reserve_batch(stream_state *st, size_t payload, char *err,
                         size_t errlen)
{
    if (payload > st->pay_cap) {
        unsigned char *p = realloc(st->pay, payload);
        if (!p)
            goto nomem;
        st->pay = p;
        st->pay_cap = payload;
    }
    if (st->kind == STREAM_SPARSE && (size_t)st->rows + 1 > st->off_cap) {
        size_t *o = realloc(st->off, ((size_t)st->rows + 1) * sizeof(*o));
        if (!o)
            goto nomem;
        st->off = o;
        st->off_cap = (size_t)st->rows + 1;
    }
    return PS_OK;
nomem:
    ps__data_err(err, errlen, "%s: batch %llu: out of memory for %zu bytes",
                 st->name, (unsigned long long)st->batch, payload);
    return PS_ENOMEM;
}

/* Reads the next batch (or the end marker) and checks it whole. */
static int load_batch(stream_state *st, char *err, size_t errlen)
{
    unsigned char h[STREAM_BATCH_HEADER];
    unsigned long long b = (unsigned long long)st->batch;
    size_t got;
    st->rows = st->pos = 0;
    int rc = src_read(st, h, sizeof(h), &got, err, errlen);
    if (rc != PS_OK)
        return rc;
    if (got == 0) {
        ps__data_err(err, errlen,
                     "%s: batch %llu: input ended without the end marker "
                     "(writer stopped early?)",
                     st->name, b);
        return PS_EINVAL;
    }
    if (got < sizeof(h)) {
        ps__data_err(err, errlen,
                     "%s: batch %llu: truncated batch header (got %zu of %d "
                     "bytes)",
                     st->name, b, got, STREAM_BATCH_HEADER);
        return PS_EINVAL;
    }
    uint32_t rows = le32(h), width = le32(h + 4);
    uint64_t payload = le64(h + 8);
    if (rows == 0) {
        if (width != 0 || payload != 0) {
            ps__data_err(err, errlen,
                         "%s: batch %llu: rows 0 (end marker) with width %u "
                         "and payload_bytes %llu; both must be 0",
                         st->name, b, width, (unsigned long long)payload);
            return PS_EINVAL;
        }
        return check_trailing(st, err, errlen);
    }
    rc = check_batch_header(st, rows, width, payload, err, errlen);
    if (rc != PS_OK)
        return rc;
    st->nnz = st->kind == STREAM_SPARSE ? width : 0;
    st->rows = rows;
    rc = reserve_batch(st, (size_t)payload, err, errlen);
    if (rc == PS_OK)
        rc = src_read(st, st->pay, (size_t)payload, &got, err, errlen);
    if (rc == PS_OK && got < payload) {
        ps__data_err(err, errlen,
                     "%s: batch %llu: truncated payload (got %zu of %llu "
                     "bytes)",
                     st->name, b, got, (unsigned long long)payload);
        rc = PS_EINVAL;
    }
    if (rc == PS_OK)
        rc = st->kind == STREAM_DENSE
                 ? check_floats(st, 4 * (size_t)rows,
                                (size_t)rows * (size_t)st->hdr_dim,
                                (size_t)st->hdr_dim, err, errlen)
                 : check_sparse(st, err, errlen);
    if (rc != PS_OK) {
        st->rows = 0; /* nothing of a bad batch is handed out */
        return rc;
    }
    st->batch++;
    return PS_OK;
}

/* ---- rows out ---- */

static void copy_dense(ps_dataset *d, stream_state *st, uint32_t r, size_t n)
{
    size_t dim = d->dim;
    const unsigned char *x = st->pay + 4 * (size_t)st->rows + 4 * r * dim;
    d->y[n] = lef32(st->pay + 4 * (size_t)r);
    for (size_t j = 0; j < dim; j++)
        d->x[n * dim + j] = lef32(x + 4 * j);
}

static int copy_sparse(ps_dataset *d, stream_state *st, uint32_t r, size_t n,
                       char *err, size_t errlen)
{
    size_t a = st->off[r], k = st->off[r + 1] - a, at = d->rowptr[n];
    int rc = ps__data_reserve_nnz(d, at + k, err, errlen);
    if (rc != PS_OK)
        return rc;
    const unsigned char *ids = st->pay + 8 * (size_t)st->rows + 8 * a;
    const unsigned char *vals =
        st->pay + 8 * (size_t)st->rows + 8 * st->nnz + 4 * a;
    for (size_t j = 0; j < k; j++) {
        d->idx[at + j] = le64(ids + 8 * j);
        d->val[at + j] = lef32(vals + 4 * j);
    }
    d->y[n] = lef32(st->pay + 4 * (size_t)r);
    d->rowptr[n + 1] = at + k;
    if (k > 0 && d->idx[at + k - 1] + 1 > d->dim)
        d->dim = (size_t)(d->idx[at + k - 1] + 1);
    return PS_OK;
}

/* ---- the reader ---- */

/* An unlinked file in the cache dir, so a crash leaves nothing behind. */
static int open_cache(stream_state *st, const char *dir, char *err,
                      size_t errlen)
{
    if (!dir || !dir[0])
        dir = getenv("TMPDIR");
    if (!dir || !dir[0])
        dir = "/tmp";
    size_t len = strlen(dir) + sizeof("/sparkps-stream-XXXXXX");
    st->cache_path = malloc(len);
    if (!st->cache_path) {
        ps__data_err(err, errlen, "%s: out of memory", st->name);
        return PS_ENOMEM;
    }
    snprintf(st->cache_path, len, "%s/sparkps-stream-XXXXXX", dir);
    st->cache_fd = mkstemp(st->cache_path);
    if (st->cache_fd < 0) {
        ps__data_err(err, errlen, "%s: cannot create a cache file in %s: %s",
                     st->name, dir, strerror(errno));
        return PS_EIO;
    }
    (void)fcntl(st->cache_fd, F_SETFD, FD_CLOEXEC);
    (void)unlink(st->cache_path);
    return PS_OK;
}

/* Opens the source: stdin for "-", else the file. */
static int open_source(ps_dataset *d, stream_state *st, char *err,
                       size_t errlen)
{
    if (strcmp(d->path, "-") == 0) {
        st->name = "stdin";
        st->in_fd = STDIN_FILENO;
    } else {
        st->name = d->path;
        st->in_fd = open(d->path, O_RDONLY | O_CLOEXEC);
        if (st->in_fd < 0) {
            ps__data_err(err, errlen, "%s: cannot open: %s", d->path,
                         strerror(errno));
            return PS_EIO;
        }
        st->own_in = 1;
    }
    st->fd = st->in_fd;
    struct stat sb;
    if (fstat(st->fd, &sb) == 0 && S_ISREG(sb.st_mode)) {
        st->start = lseek(st->fd, 0, SEEK_CUR);
        st->seekable = st->start >= 0;
    }
    return PS_OK;
}

/* Opens the source, creates the cache when later passes will need one,
 * reads the header. */
static int stream_open(ps_dataset *d, char *err, size_t errlen)
{
    stream_state *st = calloc(1, sizeof(*st));
    if (!st) {
        ps__data_err(err, errlen, "%s: out of memory", d->path);
        return PS_ENOMEM;
    }
    d->fmt = st;
    st->in_fd = st->fd = st->cache_fd = -1;
    /* Borrowed from the caller and used only here: not kept. */
    const char *cache_dir = d->cfg.cache_dir;
    d->cfg.cache_dir = NULL;
    st->buf = malloc(STREAM_READ_CHUNK);
    if (!st->buf) {
        ps__data_err(err, errlen, "%s: out of memory", d->path);
        return PS_ENOMEM;
    }
    int rc = open_source(d, st, err, errlen);
    if (rc == PS_OK && !st->seekable && d->cfg.multi_pass)
        rc = open_cache(st, cache_dir, err, errlen);
    if (rc == PS_OK)
        rc = read_header(d, st, err, errlen);
    return rc;
}

static int stream_next(ps_dataset *d, ps_batch *b, size_t max_rows, char *err,
                       size_t errlen)
{
    stream_state *st = d->fmt;
    int dense = st->kind == STREAM_DENSE;
    int rc =
        ps__data_reserve_rows(d, max_rows, dense ? d->dim : 0, err, errlen);
    if (rc == PS_OK && !dense) /* idx/val non-NULL even for empty rows */
        rc = ps__data_reserve_nnz(d, 1, err, errlen);
    if (rc != PS_OK)
        return rc;
    size_t n = 0;
    d->rowptr[0] = 0;
    while (n < max_rows) {
        if (st->pos == st->rows) {
            if (st->ended)
                break;
            rc = load_batch(st, err, errlen);
            if (rc != PS_OK)
                return rc;
            continue;
        }
        uint32_t r = st->pos++;
        if (!ps__data_mine(d, d->record++))
            continue;
        if (dense)
            copy_dense(d, st, r, n);
        else if ((rc = copy_sparse(d, st, r, n, err, errlen)) != PS_OK)
            return rc;
        n++;
    }
    b->n = n;
    b->y = d->y;
    if (dense) {
        b->dim = d->dim;
        b->x = d->x;
    } else {
        b->rowptr = d->rowptr;
        b->idx = d->idx;
        b->val = d->val;
    }
    return PS_OK;
}

/* Copies the rest of the pipe into the cache and reads from the cache. */
static int switch_to_cache(stream_state *st, char *err, size_t errlen)
{
    while (!st->eof) {
        size_t got;
        int rc = raw_read(st, st->buf, STREAM_READ_CHUNK, &got, err, errlen);
        if (rc != PS_OK)
            return rc;
    }
    if (st->own_in)
        close(st->in_fd);
    st->in_fd = -1;
    st->own_in = 0;
    st->fd = st->cache_fd;
    st->start = 0;
    st->seekable = 1;
    st->replay = 1;
    return PS_OK;
}

static int stream_rewind(ps_dataset *d, char *err, size_t errlen)
{
    stream_state *st = d->fmt;
    int rc;
    if (st->cache_fd >= 0 && !st->replay) {
        if ((rc = switch_to_cache(st, err, errlen)) != PS_OK)
            return rc;
    } else if (!st->seekable) {
        ps__data_err(err, errlen,
                     "%s: cannot rewind: the input is not seekable and was "
                     "opened for one pass (no cache)",
                     st->name);
        return PS_EINVAL;
    }
    if (lseek(st->fd, st->start, SEEK_SET) < 0) {
        ps__data_err(err, errlen, "%s: cannot rewind: %s",
                     st->replay ? st->cache_path : st->name, strerror(errno));
        return PS_EIO;
    }
    st->buf_pos = st->buf_len = 0;
    st->eof = st->ended = 0;
    st->rows = st->pos = 0;
    st->batch = 0;
    return read_header(d, st, err, errlen);
}

static void stream_close(ps_dataset *d)
{
    stream_state *st = d->fmt;
    if (!st)
        return;
    if (st->own_in && st->in_fd >= 0)
        close(st->in_fd);
    if (st->cache_fd >= 0)
        close(st->cache_fd);
    free(st->cache_path);
    free(st->buf);
    free(st->pay);
    free(st->off);
    free(st);
    d->fmt = NULL;
}

const ps__data_ops ps__data_stream_ops = {stream_open, stream_next,
                                          stream_rewind, stream_close};
