/* Training data readers: libsvm, CSV, IDX (MNIST family). Every format is
 * read through zlib, so any file may also be gzip-compressed (.gz); all
 * but the connector's binary stream (spark-connector/FORMAT.md; path "-":
 * stdin), which is read as it comes.
 *
 * A reader streams its file (memory does not grow with the file's size)
 * and hands out batches of rows. With part/parts set it yields only its
 * share: record r (data records counted from 0, header and empty or
 * comment-only lines not counted) belongs to part r % parts, so every
 * worker can be given the same path. Bad input fails with
 * "file:line: reason" (text formats, lines counted from 1) or
 * "file: record N: reason" (IDX, records from 0) or "file: batch B: row
 * R: reason" (stream; "stdin" for "-"; both from 0) in err, never a crash;
 * text formats only parse the rows of their own share. One reader is used
 * by one thread; readers share nothing.
 *
 * Rows are dense (x: n*dim floats, row-major) for CSV and IDX, and sparse
 * (CSR: rowptr/idx/val) for libsvm. Labels are floats (class ids for
 * classification, 0/1 for logistic regression: libsvm's -1 reads as 0).
 * IDX pixels are scaled to [0, 1]. Feature ids in idx are 0-based whatever
 * the file's convention.
 *
 * Errors: PS_EINVAL for bad arguments or bad data, PS_EIO when a file
 * cannot be opened or read (including a cut-off .gz stream of a text file;
 * a short IDX file is "truncated", PS_EINVAL), PS_ENOMEM. err may be NULL;
 * otherwise it holds the message, truncated to errlen. */
#ifndef PS_DATA_H
#define PS_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef enum ps_data_format {
    PS_DATA_LIBSVM = 0,
    PS_DATA_CSV = 1,
    PS_DATA_IDX = 2,
    PS_DATA_STREAM = 3 /* spark-connector/FORMAT.md; dense or sparse */
} ps_data_format;

typedef struct ps_data_cfg {
    const char *path;        /* data file; IDX: the images file */
    const char *labels_path; /* IDX: labels file; NULL: derived from path
                                ("...-images-idx3-ubyte[.gz]" ->
                                "...-labels-idx1-ubyte[.gz]") */
    ps_data_format format;
    unsigned part, parts; /* this reader's share; parts 0 or 1: all;
                             part must be below parts */
    int csv_label_col;    /* CSV: label column (0-based; -1: last) */
    int csv_header;       /* CSV: skip the first non-empty line */
    int libsvm_one_based; /* libsvm: file indices start at 1 (the
                             standard; index 0 is an error); 0: from 0 */
    int multi_pass;       /* stream: ps_data_rewind will be called, so a
                             source that cannot seek (stdin, a pipe) is
                             copied to a cache file while it is read */
    /* stream: where that cache goes; NULL or "": $TMPDIR, else /tmp */
    const char *cache_dir;
} ps_data_cfg;

typedef struct ps_batch {
    size_t n;       /* rows in this batch */
    size_t dim;     /* dense: features per row; sparse: 0 */
    float *x;       /* dense rows (NULL for sparse) */
    float *y;       /* n labels */
    size_t *rowptr; /* sparse: n + 1 offsets into idx/val */
    uint64_t *idx;  /* sparse: 0-based feature ids, increasing per row */
    float *val;     /* sparse: values */
} ps_batch;

typedef struct ps_dataset ps_dataset;

/* Opens and checks the header (IDX magics, dims and matching counts; CSV
 * column count and label column from the first data line, so an empty CSV
 * is an error). The cfg strings are copied. Sets *out only on success and
 * leaks nothing on failure. PS_EINVAL / PS_EIO / PS_ENOMEM with the reason
 * in err. */
int ps_data_open(ps_dataset **out, const ps_data_cfg *cfg, char *err,
                 size_t errlen);
/* Closes the files and frees the dataset and its batch buffers; NULL is
 * fine. */
void ps_data_close(ps_dataset *d);

/* Dense: features per row (IDX: rows*cols of an image; CSV: columns - 1).
 * libsvm: the largest feature id seen so far + 1 (grows while reading). */
size_t ps_data_dim(const ps_dataset *d);

/* Whether rows come as CSR (libsvm, a sparse stream), not dense x. */
int ps_data_sparse(const ps_dataset *d);

/* Rows in this reader's share, when the format says so without reading it
 * all (IDX); 0 when unknown. */
uint64_t ps_data_rows_hint(const ps_dataset *d);

/* Reads up to max_rows (>= 1) rows into b (buffers owned by the dataset,
 * sized for max_rows once and reused, valid until the next call or close).
 * Blocks on file I/O. Returns PS_OK with b->n == 0 at the end of the share;
 * PS_EINVAL with "file:line: reason" in err on a bad record. After an error
 * only ps_data_rewind and ps_data_close are meaningful. */
int ps_data_next(ps_dataset *d, ps_batch *b, size_t max_rows, char *err,
                 size_t errlen);

/* Starts the share again from its first record (next epoch): same rows in
 * the same order, line numbers from 1 again. libsvm's dim is kept. A
 * stream from a pipe replays its cache (the rest of the pipe is drained
 * into it first); without cfg.multi_pass it cannot rewind (PS_EINVAL). */
int ps_data_rewind(ps_dataset *d, char *err, size_t errlen);

#endif
