/* Private to the data readers (data*.c): the dataset struct, the per-format
 * operations table and the helpers the formats share. */
#ifndef PS_DATA_INT_H
#define PS_DATA_INT_H

#include "data.h"

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

/* Longest text line accepted (libsvm rows with many features are long, but
 * anything past this is not a training record). */
#define PS_DATA_MAX_LINE ((size_t)1 << 24)
/* Largest dense batch (max_rows * dim floats), in bytes. */
#define PS_DATA_MAX_BATCH_BYTES ((size_t)1 << 30)
/* Most nonzeros in one sparse batch. */
#define PS_DATA_MAX_NNZ ((size_t)1 << 28)
/* Feature ids are below this (ids travel as uint64 keys; this keeps
 * dim = id + 1 far from overflow and rejects garbage indices). */
#define PS_DATA_MAX_FEATURE ((uint64_t)1 << 48)
/* Raw read size for text formats. */
#define PS_DATA_READ_CHUNK ((size_t)1 << 16)

typedef struct ps__data_ops {
    /* Opens the format's files and checks headers; fills d->dim and
     * d->rows_hint. On failure leaves nothing for close to do beyond what
     * d->fmt holds (close is always called). */
    int (*open)(ps_dataset *d, char *err, size_t errlen);
    /* Fills d's batch buffers with up to max_rows rows of the share and
     * sets b. */
    int (*next)(ps_dataset *d, ps_batch *b, size_t max_rows, char *err,
                size_t errlen);
    int (*rewind)(ps_dataset *d, char *err, size_t errlen);
    void (*close)(ps_dataset *d); /* frees d->fmt; accepts d->fmt == NULL */
} ps__data_ops;

/* Text files line by line, through zlib (plain or gzip), with a fixed read
 * buffer and a line buffer capped at PS_DATA_MAX_LINE. */
typedef struct ps__lines {
    gzFile gz;
    const char *path;  /* borrowed from the dataset */
    unsigned char *in; /* raw read buffer, PS_DATA_READ_CHUNK bytes */
    size_t in_pos, in_len;
    int in_eof;
    char *line; /* current line, NUL-terminated, '\n' and '\r' removed */
    size_t line_cap;
    uint64_t lineno; /* 1-based number of the line last returned */
} ps__lines;

struct ps_dataset {
    ps_data_cfg cfg;   /* copy; path and labels_path point at our strings */
    char *path;        /* owned */
    char *labels_path; /* owned; IDX only */
    const ps__data_ops *ops;
    size_t dim;           /* dense width, or libsvm's max feature id + 1 */
    uint64_t rows_hint;   /* 0: unknown */
    uint64_t record;      /* index of the next data record (all parts) */
    unsigned part, parts; /* normalised: parts >= 1, part < parts */
    /* Batch buffers, reused by every ps_data_next call. */
    float *x;
    size_t x_cap; /* floats */
    float *y;
    size_t *rowptr;
    size_t rows_cap; /* y holds rows_cap, rowptr rows_cap + 1 */
    uint64_t *idx;
    float *val;
    size_t nnz_cap;
    void *fmt;  /* per-format state */
    int sparse; /* set by formats other than libsvm that hand out CSR */
};

extern const ps__data_ops ps__data_idx_ops;
extern const ps__data_ops ps__data_csv_ops;
extern const ps__data_ops ps__data_libsvm_ops;
extern const ps__data_ops ps__data_stream_ops;

/* snprintf into err when err is non-NULL and errlen > 0. */
void ps__data_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether data record `record` belongs to this reader's share. */
static inline int ps__data_mine(const ps_dataset *d, uint64_t record)
{
    return record % d->parts == d->part;
}

/* Makes room for rows rows (y, rowptr) and, when dim > 0, rows * dim
 * floats of x. PS_EINVAL past PS_DATA_MAX_BATCH_BYTES, PS_ENOMEM. */
int ps__data_reserve_rows(ps_dataset *d, size_t rows, size_t dim, char *err,
                          size_t errlen);
/* Makes room for at least nnz nonzeros in idx/val (grows geometrically). */
int ps__data_reserve_nnz(ps_dataset *d, size_t nnz, char *err, size_t errlen);

int ps__lines_open(ps__lines *r, const char *path, char *err, size_t errlen);
/* Sets *line to the next line (without its terminator; owned by r, valid
 * until the next call) and *len to its length, or *line = NULL at the end of
 * the file. A NUL byte inside a line or a line over PS_DATA_MAX_LINE is
 * PS_EINVAL; read errors (including a truncated .gz) are PS_EIO. */
int ps__lines_next(ps__lines *r, char **line, size_t *len, char *err,
                   size_t errlen);
int ps__lines_rewind(ps__lines *r, char *err, size_t errlen);
void ps__lines_close(ps__lines *r);

/* The reason a gzread/gzseek on path failed (zlib's message without its
 * path prefix, or errno's text); borrowed, valid until the next call on gz
 * or errno change. */
const char *ps__data_gzwhy(gzFile gz, const char *path);
/* Writes "path: what: reason" for a failed gzread/gzseek into err. */
void ps__data_gzerr(gzFile gz, const char *path, const char *what, char *err,
                    size_t errlen);

#endif
