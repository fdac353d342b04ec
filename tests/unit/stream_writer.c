/* Test-only writer of the stream format; see stream_writer.h. Scalars are
 * encoded byte by byte so the bytes are little-endian on any host. */
#include "stream_writer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void grow(sw_buf *b, size_t n)
{
    if (b->len + n <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    unsigned char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "stream_writer: out of memory\n");
        abort();
    }
    b->p = p;
    b->cap = cap;
}

void sw_bytes(sw_buf *b, const void *p, size_t n)
{
    grow(b, n);
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
}

void sw_u8(sw_buf *b, uint8_t v)
{
    sw_bytes(b, &v, 1);
}

void sw_u16(sw_buf *b, uint16_t v)
{
    unsigned char p[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    sw_bytes(b, p, 2);
}

void sw_u32(sw_buf *b, uint32_t v)
{
    unsigned char p[4];
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    sw_bytes(b, p, 4);
}

void sw_u64(sw_buf *b, uint64_t v)
{
    sw_u32(b, (uint32_t)v);
    sw_u32(b, (uint32_t)(v >> 32));
}

void sw_f32(sw_buf *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof(u));
    sw_u32(b, u);
}

void sw_header(sw_buf *b, unsigned kind, uint64_t dim)
{
    sw_bytes(b, "SPKS", 4);
    sw_u16(b, 1);
    sw_u8(b, (uint8_t)kind);
    sw_u8(b, 0);
    sw_u64(b, dim);
}

void sw_dense_batch(sw_buf *b, uint32_t rows, uint32_t dim, const float *y,
                    const float *x)
{
    sw_u32(b, rows);
    sw_u32(b, dim);
    sw_u64(b, 4 * (uint64_t)rows * (1 + (uint64_t)dim));
    for (uint32_t i = 0; i < rows; i++)
        sw_f32(b, y[i]);
    for (size_t i = 0; i < (size_t)rows * dim; i++)
        sw_f32(b, x[i]);
}

void sw_sparse_batch(sw_buf *b, uint32_t rows, const float *y,
                     const uint32_t *counts, const uint64_t *ids,
                     const float *vals)
{
    uint64_t nnz = 0;
    for (uint32_t i = 0; i < rows; i++)
        nnz += counts[i];
    sw_u32(b, rows);
    sw_u32(b, (uint32_t)nnz);
    sw_u64(b, 8 * (uint64_t)rows + 12 * nnz);
    for (uint32_t i = 0; i < rows; i++)
        sw_f32(b, y[i]);
    for (uint32_t i = 0; i < rows; i++)
        sw_u32(b, counts[i]);
    for (uint64_t i = 0; i < nnz; i++)
        sw_u64(b, ids[i]);
    for (uint64_t i = 0; i < nnz; i++)
        sw_f32(b, vals[i]);
}

void sw_end(sw_buf *b)
{
    sw_u32(b, 0);
    sw_u32(b, 0);
    sw_u64(b, 0);
}

void sw_free(sw_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

int sw_write_all(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}
