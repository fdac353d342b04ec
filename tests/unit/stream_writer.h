/* A writer of the connector's stream format (spark-connector/FORMAT.md),
 * for tests only: it builds the bytes in memory so a test can write them
 * to a file or a pipe, or damage them first. Out of memory aborts. */
#ifndef PS_STREAM_WRITER_H
#define PS_STREAM_WRITER_H

#include <stddef.h>
#include <stdint.h>

#define SW_DENSE 1
#define SW_SPARSE 2

typedef struct sw_buf {
    unsigned char *p;
    size_t len, cap;
} sw_buf;

/* Little-endian scalars and raw bytes, appended. */
void sw_u8(sw_buf *b, uint8_t v);
void sw_u16(sw_buf *b, uint16_t v);
void sw_u32(sw_buf *b, uint32_t v);
void sw_u64(sw_buf *b, uint64_t v);
void sw_f32(sw_buf *b, float v);
void sw_bytes(sw_buf *b, const void *p, size_t n);

/* The 16-byte stream header: "SPKS", version 1, kind, 0, dim. */
void sw_header(sw_buf *b, unsigned kind, uint64_t dim);
/* One dense batch: rows labels y, then rows * dim values x (row-major). */
void sw_dense_batch(sw_buf *b, uint32_t rows, uint32_t dim, const float *y,
                    const float *x);
/* One sparse batch: counts[i] nonzeros for row i; ids/vals hold them all,
 * row after row. */
void sw_sparse_batch(sw_buf *b, uint32_t rows, const float *y,
                     const uint32_t *counts, const uint64_t *ids,
                     const float *vals);
/* The end marker (16 zero bytes). */
void sw_end(sw_buf *b);
void sw_free(sw_buf *b);

/* Writes all n bytes to fd; 0 or -1 (errno set). */
int sw_write_all(int fd, const void *p, size_t n);

#endif
