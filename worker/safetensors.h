/* safetensors files: the format ps-ctl export writes and ps-worker predict /
 * --init-from read, chosen because numpy and PyTorch users open it with a
 * few lines (or the `safetensors` package).
 *
 * Layout: an 8-byte little-endian u64 N, then N bytes of JSON
 *   {"NAME":{"dtype":"F32","shape":[..],"data_offsets":[begin,end]},...,
 *    "__metadata__":{"key":"value",...}}
 * padded with spaces so the data starts 8-byte aligned, then the data:
 * every tensor's bytes, little-endian, row-major, at [begin, end) of the
 * data section. Supported dtypes: F32, U64, I64.
 *
 * The writer borrows the tensors' data until ps_st_write() returns and
 * writes atomically (temp file, fsync, rename, directory fsync). The reader
 * loads the whole file and checks everything before handing out a tensor:
 * header length against the file size, JSON syntax, known dtypes, shapes,
 * offsets inside the data and equal to dtype size x shape, no overlapping
 * tensors, no duplicate names, string-only metadata. Errors: PS_EIO (file),
 * PS_EINVAL (malformed, with "FILE: reason" in err), PS_ENOMEM. One thread
 * per object. */
#ifndef PS_SAFETENSORS_H
#define PS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define PS_ST_MAX_DIMS 8
#define PS_ST_MAX_HEADER (100u << 20) /* the format's own limit */
#define PS_ST_MAX_NAME 256u

typedef enum ps_st_dtype {
    PS_ST_F32 = 0,
    PS_ST_U64 = 1,
    PS_ST_I64 = 2
} ps_st_dtype;

typedef struct ps_st_tensor {
    const char *name;
    ps_st_dtype dtype;
    uint64_t shape[PS_ST_MAX_DIMS];
    size_t ndim;
    uint64_t elems;   /* product of shape (1 for a scalar) */
    const void *data; /* elems values; maybe unaligned in a read file */
    uint64_t nbytes;
} ps_st_tensor;

/* "F32", "U64", "I64"; "?" otherwise. */
const char *ps_st_dtype_name(ps_st_dtype d);
size_t ps_st_dtype_size(ps_st_dtype d);

/* ---- writing ---- */

typedef struct ps_st_writer ps_st_writer;

int ps_st_writer_new(ps_st_writer **out);
void ps_st_writer_free(ps_st_writer *w);

/* Adds a tensor (name copied, data borrowed until ps_st_write returns).
 * PS_EINVAL: empty/long/duplicate name, "__metadata__", ndim over the limit,
 * unknown dtype. */
int ps_st_add(ps_st_writer *w, const char *name, ps_st_dtype dtype,
              const uint64_t *shape, size_t ndim, const void *data);

/* Sets a metadata entry (both strings copied; a key set again is
 * replaced). */
int ps_st_set_meta(ps_st_writer *w, const char *key, const char *value);

/* Writes the file atomically; on failure nothing is left at path (an
 * existing file there is untouched) and err says why. */
int ps_st_write(ps_st_writer *w, const char *path, char *err, size_t errlen);

/* ---- reading ---- */

typedef struct ps_st_file ps_st_file;

int ps_st_open(ps_st_file **out, const char *path, char *err, size_t errlen);
/* Same checks on a file image in memory (copied); path names it in errors. */
int ps_st_parse(ps_st_file **out, const void *buf, size_t len, const char *path,
                char *err, size_t errlen);
void ps_st_close(ps_st_file *f);

size_t ps_st_count(const ps_st_file *f);
/* Tensors in data-offset order. */
const ps_st_tensor *ps_st_at(const ps_st_file *f, size_t i);
/* NULL when absent. */
const ps_st_tensor *ps_st_find(const ps_st_file *f, const char *name);
/* A metadata value (borrowed), NULL when absent. */
const char *ps_st_meta(const ps_st_file *f, const char *key);

#endif
