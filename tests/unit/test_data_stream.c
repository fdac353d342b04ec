/* Unit tests for worker/data_stream.c, the connector's stream format
 * (spark-connector/FORMAT.md): streams made by the test writer
 * (stream_writer.c) read back bit-exact from files, pipes and stdin,
 * across batch sizes and shares; rewind through the cache, including a
 * rewind before the end; every malformed case with its message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "data.h"
#include "ps_test.h"
#include "unit/stream_writer.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define ERRLEN 512

typedef struct fixture {
    char dir[64];
    char path[256];
    char err[ERRLEN];
} fixture;

static int setup(void **st)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    if (ps_test_mkdtemp(f->dir, sizeof(f->dir), "ps_test_stream") != 0) {
        free(f);
        return -1;
    }
    *st = f;
    return 0;
}

static int teardown(void **st)
{
    fixture *f = *st;
    int rc = ps_test_rmtree(f->dir);
    free(f);
    return rc;
}

static const char *put(fixture *f, const char *name, const sw_buf *b)
{
    snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    if (b->len > 0)
        assert_int_equal(fwrite(b->p, 1, b->len, fp), b->len);
    assert_int_equal(fclose(fp), 0);
    return f->path;
}

/* Entries in the fixture's directory (the cache must not stay there). */
static int dir_entries(const fixture *f)
{
    DIR *dp = opendir(f->dir);
    assert_non_null(dp);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dp);
    return n;
}

static ps_data_cfg stream_cfg(const char *path)
{
    ps_data_cfg c;
    memset(&c, 0, sizeof(c));
    c.path = path;
    c.format = PS_DATA_STREAM;
    return c;
}

/* ---- a writer thread on a pipe ----------------------------------------- */

typedef struct feeder {
    int fd; /* write end, closed by the thread */
    const sw_buf *b;
    pthread_t th;
} feeder;

static void *feed_main(void *arg)
{
    feeder *fe = arg;
    (void)sw_write_all(fe->fd, fe->b->p, fe->b->len); /* EPIPE is fine */
    close(fe->fd);
    return NULL;
}

/* Starts a thread writing b into a new pipe; returns the read end. */
static int feed_start(feeder *fe, const sw_buf *b)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fe->fd = p[1];
    fe->b = b;
    assert_int_equal(pthread_create(&fe->th, NULL, feed_main, fe), 0);
    return p[0];
}

static void feed_join(feeder *fe)
{
    assert_int_equal(pthread_join(fe->th, NULL), 0);
}

/* ---- rows to write and to expect --------------------------------------- */

/* Bit patterns a lossy reader would get wrong. */
static const uint32_t odd_bits[] = {
    0x80000000u, /* -0.0 */
    0x00000001u, /* smallest denormal */
    0x807fffffu, /* largest negative denormal */
    0x7f7fffffu, /* FLT_MAX */
    0xff7fffffu, /* -FLT_MAX */
    0x00800000u, /* FLT_MIN */
    0x3dcccccdu, /* 0.1f */
    0x4b800001u, /* 16777217 rounds; this is 16777218 */
};
#define NODD (sizeof(odd_bits) / sizeof(odd_bits[0]))

static float from_bits(uint32_t u)
{
    float v;
    memcpy(&v, &u, sizeof(v));
    return v;
}

static float dval(size_t r, size_t j)
{
    if ((r * 3 + j) % 4 == 0)
        return from_bits(odd_bits[(r * 5 + j) % NODD]);
    return (float)((double)r * 1.25 - (double)j * 0.5);
}

static float label(size_t r)
{
    return r % 3 == 1 ? from_bits(odd_bits[(r / 3) % NODD]) : (float)(r % 10);
}

typedef struct rows {
    size_t n, dim, nnz;
    float *y, *x;     /* dense */
    uint32_t *counts; /* sparse */
    uint64_t *ids;
    float *vals;
} rows;

static void rows_free(rows *r)
{
    free(r->y);
    free(r->x);
    free(r->counts);
    free(r->ids);
    free(r->vals);
    memset(r, 0, sizeof(*r));
}

static rows dense_rows(size_t n, size_t dim)
{
    rows r = {.n = n, .dim = dim};
    r.y = malloc(n * sizeof(float));
    r.x = malloc(n * dim * sizeof(float));
    assert_non_null(r.y);
    assert_non_null(r.x);
    for (size_t i = 0; i < n; i++) {
        r.y[i] = label(i);
        for (size_t j = 0; j < dim; j++)
            r.x[i * dim + j] = dval(i, j);
    }
    return r;
}

/* Row i has i % 5 features (some rows none); ids increase, up to 2^40. */
static rows sparse_rows(size_t n)
{
    rows r = {.n = n};
    for (size_t i = 0; i < n; i++)
        r.nnz += i % 5;
    r.y = malloc(n * sizeof(float));
    r.counts = malloc(n * sizeof(uint32_t));
    r.ids = malloc((r.nnz + 1) * sizeof(uint64_t));
    r.vals = malloc((r.nnz + 1) * sizeof(float));
    assert_non_null(r.y);
    assert_non_null(r.counts);
    assert_non_null(r.ids);
    assert_non_null(r.vals);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        r.y[i] = label(i);
        r.counts[i] = (uint32_t)(i % 5);
        for (size_t j = 0; j < i % 5; j++, k++) {
            r.ids[k] = (uint64_t)i * 7 + j * j * 13 + (j == 3 ? 1ull << 40 : 0);
            r.vals[k] = dval(i, j);
        }
    }
    return r;
}

/* All rows of r as batches of up to per rows. */
static void write_rows(sw_buf *b, const rows *r, size_t per)
{
    size_t k = 0;
    for (size_t s = 0; s < r->n; s += per) {
        uint32_t m = (uint32_t)(r->n - s < per ? r->n - s : per);
        if (r->x) {
            sw_dense_batch(b, m, (uint32_t)r->dim, r->y + s, r->x + s * r->dim);
            continue;
        }
        size_t nz = 0;
        for (size_t i = s; i < s + m; i++)
            nz += r->counts[i];
        sw_sparse_batch(b, m, r->y + s, r->counts + s, r->ids + k, r->vals + k);
        k += nz;
    }
}

static void write_stream(sw_buf *b, const rows *r, size_t per, uint64_t dim)
{
    sw_header(b, r->x ? SW_DENSE : SW_SPARSE, dim);
    write_rows(b, r, per);
    sw_end(b);
}

/* Reads everything left (in batches of max_rows) into got, which is sized
 * like want. Returns the reader's code. */
static int read_rows(ps_dataset *d, size_t max_rows, const rows *want,
                     rows *got, char *err)
{
    memset(got, 0, sizeof(*got));
    got->y = calloc(want->n + 1, sizeof(float));
    if (want->x)
        got->x = calloc(want->n * want->dim + 1, sizeof(float));
    else {
        got->counts = calloc(want->n + 1, sizeof(uint32_t));
        got->ids = calloc(want->nnz + 1, sizeof(uint64_t));
        got->vals = calloc(want->nnz + 1, sizeof(float));
    }
    for (;;) {
        ps_batch b;
        int rc = ps_data_next(d, &b, max_rows, err, ERRLEN);
        if (rc != PS_OK)
            return rc;
        if (b.n == 0)
            return PS_OK;
        assert_true(b.n <= max_rows);
        assert_true(got->n + b.n <= want->n);
        memcpy(got->y + got->n, b.y, b.n * sizeof(float));
        if (want->x) {
            assert_int_equal(b.dim, want->dim);
            memcpy(got->x + got->n * want->dim, b.x,
                   b.n * want->dim * sizeof(float));
        } else {
            assert_null(b.x);
            assert_int_equal(b.rowptr[0], 0);
            for (size_t i = 0; i < b.n; i++)
                got->counts[got->n + i] =
                    (uint32_t)(b.rowptr[i + 1] - b.rowptr[i]);
            size_t nz = b.rowptr[b.n];
            assert_true(got->nnz + nz <= want->nnz);
            memcpy(got->ids + got->nnz, b.idx, nz * sizeof(uint64_t));
            memcpy(got->vals + got->nnz, b.val, nz * sizeof(float));
            got->nnz += nz;
        }
        got->n += b.n;
    }
}

/* Bit-exact comparison (memcmp: -0.0 is not 0.0). */
static void assert_same_rows(const rows *got, const rows *want)
{
    assert_int_equal(got->n, want->n);
    assert_memory_equal(got->y, want->y, want->n * sizeof(float));
    if (want->x) {
        assert_memory_equal(got->x, want->x,
                            want->n * want->dim * sizeof(float));
        return;
    }
    assert_int_equal(got->nnz, want->nnz);
    assert_memory_equal(got->counts, want->counts, want->n * sizeof(uint32_t));
    if (want->nnz) {
        assert_memory_equal(got->ids, want->ids, want->nnz * sizeof(uint64_t));
        assert_memory_equal(got->vals, want->vals, want->nnz * sizeof(float));
    }
}

/* Reads all of d and checks it against want. */
static void expect_rows(ps_dataset *d, size_t max_rows, const rows *want,
                        char *err)
{
    rows got;
    int rc = read_rows(d, max_rows, want, &got, err);
    if (rc != PS_OK)
        print_error("reader: %s\n", err);
    assert_int_equal(rc, PS_OK);
    assert_same_rows(&got, want);
    rows_free(&got);
}

/* ---- the worked examples of FORMAT.md ---------------------------------- */

static const unsigned char doc_dense[72] = {
    0x53, 0x50, 0x4b, 0x53, 0x01, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x00, 0xc0,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x40, 0x40,
};

static const unsigned char doc_sparse[88] = {
    0x53, 0x50, 0x4b, 0x53, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
    0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x3f,
    0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x80, 0x3f,
};

static void test_data_stream_doc_examples(void **st)
{
    fixture *f = *st;
    float y[2] = {1.0f, 0.0f}, x[4] = {0.5f, -2.0f, 0.0f, 3.0f};
    sw_buf b = {0};
    sw_header(&b, SW_DENSE, 2);
    sw_dense_batch(&b, 2, 2, y, x);
    sw_end(&b);
    assert_int_equal(b.len, sizeof(doc_dense));
    assert_memory_equal(b.p, doc_dense, sizeof(doc_dense));
    ps_data_cfg c = stream_cfg(put(f, "dense.sps", &b));
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    assert_int_equal(ps_data_dim(d), 2);
    assert_false(ps_data_sparse(d));
    rows want = {.n = 2, .dim = 2, .y = y, .x = x};
    expect_rows(d, 8, &want, f->err);
    ps_data_close(d);
    sw_free(&b);

    uint32_t counts[2] = {2, 0};
    uint64_t ids[2] = {3, 7};
    float vals[2] = {0.5f, 1.0f};
    sw_header(&b, SW_SPARSE, 0);
    sw_sparse_batch(&b, 2, y, counts, ids, vals);
    sw_end(&b);
    assert_int_equal(b.len, sizeof(doc_sparse));
    assert_memory_equal(b.p, doc_sparse, sizeof(doc_sparse));
    c = stream_cfg(put(f, "sparse.sps", &b));
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    assert_true(ps_data_sparse(d));
    assert_int_equal(ps_data_dim(d), 0);
    rows swant = {
        .n = 2, .nnz = 2, .y = y, .counts = counts, .ids = ids, .vals = vals};
    expect_rows(d, 1, &swant, f->err);
    assert_int_equal(ps_data_dim(d), 8); /* grows like libsvm */
    ps_data_close(d);
    sw_free(&b);
}

/* ---- bit-exact reads ---------------------------------------------------- */

static void test_data_next_stream_dense_bit_exact(void **st)
{
    fixture *f = *st;
    rows want = dense_rows(103, 5);
    const size_t per[] = {1, 7, 50, 200};
    const size_t max_rows[] = {1, 3, 7, 64, 1000};
    for (size_t i = 0; i < sizeof(per) / sizeof(per[0]); i++) {
        sw_buf b = {0};
        write_stream(&b, &want, per[i], 5);
        ps_data_cfg c = stream_cfg(put(f, "d.sps", &b));
        for (size_t k = 0; k < sizeof(max_rows) / sizeof(max_rows[0]); k++) {
            ps_dataset *d = NULL;
            assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
            assert_int_equal(ps_data_dim(d), 5);
            assert_int_equal(ps_data_rows_hint(d), 0);
            expect_rows(d, max_rows[k], &want, f->err);
            ps_data_close(d);
        }
        sw_free(&b);
    }
    rows_free(&want);
}

static void test_data_next_stream_sparse_bit_exact(void **st)
{
    fixture *f = *st;
    rows want = sparse_rows(57);
    uint64_t max_id = 0;
    for (size_t k = 0; k < want.nnz; k++)
        max_id = want.ids[k] > max_id ? want.ids[k] : max_id;
    const size_t per[] = {1, 8, 100};
    const size_t max_rows[] = {1, 5, 64};
    for (size_t i = 0; i < sizeof(per) / sizeof(per[0]); i++) {
        for (int given = 0; given < 2; given++) {
            uint64_t dim = given ? max_id + 10 : 0;
            sw_buf b = {0};
            write_stream(&b, &want, per[i], dim);
            ps_data_cfg c = stream_cfg(put(f, "s.sps", &b));
            for (size_t k = 0; k < sizeof(max_rows) / sizeof(max_rows[0]);
                 k++) {
                ps_dataset *d = NULL;
                assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
                assert_true(ps_data_sparse(d));
                assert_int_equal(ps_data_dim(d), dim);
                expect_rows(d, max_rows[k], &want, f->err);
                assert_int_equal(ps_data_dim(d), given ? dim : max_id + 1);
                ps_data_close(d);
            }
            sw_free(&b);
        }
    }
    rows_free(&want);
}

static void test_data_next_stream_parts_split(void **st)
{
    fixture *f = *st;
    rows all = dense_rows(50, 3);
    sw_buf b = {0};
    write_stream(&b, &all, 7, 3);
    ps_data_cfg c = stream_cfg(put(f, "p.sps", &b));
    c.parts = 3;
    for (unsigned p = 0; p < 3; p++) {
        rows want = {.dim = 3};
        want.y = malloc(50 * sizeof(float));
        want.x = malloc(50 * 3 * sizeof(float));
        assert_non_null(want.y);
        assert_non_null(want.x);
        for (size_t r = p; r < 50; r += 3, want.n++) {
            want.y[want.n] = all.y[r];
            memcpy(want.x + want.n * 3, all.x + r * 3, 3 * sizeof(float));
        }
        c.part = p;
        ps_dataset *d = NULL;
        assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
        expect_rows(d, 4, &want, f->err);
        assert_int_equal(ps_data_rewind(d, f->err, ERRLEN), PS_OK);
        expect_rows(d, 100, &want, f->err);
        ps_data_close(d);
        rows_free(&want);
    }
    sw_free(&b);
    rows_free(&all);
}

/* ---- rewind: files, pipes (cache), stdin -------------------------------- */

static void test_data_rewind_stream_file_same_rows(void **st)
{
    fixture *f = *st;
    rows want = sparse_rows(40);
    sw_buf b = {0};
    write_stream(&b, &want, 6, 0);
    ps_data_cfg c = stream_cfg(put(f, "r.sps", &b));
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    for (int pass = 0; pass < 3; pass++) {
        expect_rows(d, 9, &want, f->err);
        assert_int_equal(ps_data_rewind(d, f->err, ERRLEN), PS_OK);
    }
    ps_data_close(d);
    assert_int_equal(dir_entries(f), 1); /* a file needs no cache */
    sw_free(&b);
    rows_free(&want);
}

static void test_data_rewind_stream_pipe_replays_cache(void **st)
{
    fixture *f = *st;
    rows want = dense_rows(3000, 20); /* 250 KB: more than a pipe holds */
    sw_buf b = {0};
    write_stream(&b, &want, 128, 20);
    feeder fe;
    int rfd = feed_start(&fe, &b);
    char path[64];
    snprintf(path, sizeof(path), "/dev/fd/%d", rfd);
    ps_data_cfg c = stream_cfg(path);
    c.multi_pass = 1;
    c.cache_dir = f->dir;
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    expect_rows(d, 500, &want, f->err);
    feed_join(&fe);
    close(rfd);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(ps_data_rewind(d, f->err, ERRLEN), PS_OK);
        expect_rows(d, 77, &want, f->err);
    }
    assert_int_equal(dir_entries(f), 0); /* the cache is unlinked */
    ps_data_close(d);
    sw_free(&b);
    rows_free(&want);
}

/* Points stdin at fd for a test; returns the saved stdin. */
static int stdin_from(int fd)
{
    int saved = dup(STDIN_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fd, STDIN_FILENO) >= 0);
    close(fd);
    return saved;
}

static void stdin_restore(int saved)
{
    assert_true(dup2(saved, STDIN_FILENO) >= 0);
    close(saved);
}

static void test_data_rewind_stream_stdin_early_drains(void **st)
{
    fixture *f = *st;
    rows want = sparse_rows(2000);
    sw_buf b = {0};
    write_stream(&b, &want, 33, 0);
    feeder fe;
    int saved = stdin_from(feed_start(&fe, &b));
    ps_data_cfg c = stream_cfg("-");
    c.multi_pass = 1;
    c.cache_dir = f->dir;
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    ps_batch bt;
    assert_int_equal(ps_data_next(d, &bt, 10, f->err, ERRLEN), PS_OK);
    assert_int_equal(bt.n, 10);
    /* Rewind long before the end: the rest of the pipe goes to the cache. */
    assert_int_equal(ps_data_rewind(d, f->err, ERRLEN), PS_OK);
    feed_join(&fe);
    expect_rows(d, 64, &want, f->err);
    assert_int_equal(ps_data_rewind(d, f->err, ERRLEN), PS_OK);
    expect_rows(d, 3000, &want, f->err);
    ps_data_close(d);
    stdin_restore(saved);
    sw_free(&b);
    rows_free(&want);
}

static void test_data_rewind_stream_stdin_file_seeks(void **st)
{
    fixture *f = *st;
    rows want = dense_rows(30, 2);
    sw_buf b = {0};
    write_stream(&b, &want, 4, 2);
    int fd = open(put(f, "in.sps", &b), O_RDONLY);
    assert_true(fd >= 0);
    int saved = stdin_from(fd);
    ps_data_cfg c = stream_cfg("-");
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    expect_rows(d, 8, &want, f->err);
    /* `< file` is seekable: a rewind needs no cache nor multi_pass. */
    assert_int_equal(ps_data_rewind(d, f->err, ERRLEN), PS_OK);
    expect_rows(d, 8, &want, f->err);
    ps_data_close(d);
    stdin_restore(saved);
    sw_free(&b);
    rows_free(&want);
}

static void test_data_next_stream_stdin_cut_off(void **st)
{
    fixture *f = *st;
    rows want = dense_rows(10, 2);
    sw_buf b = {0};
    sw_header(&b, SW_DENSE, 2);
    write_rows(&b, &want, 4); /* no end marker: the writer died */
    feeder fe;
    int saved = stdin_from(feed_start(&fe, &b));
    ps_data_cfg c = stream_cfg("-");
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    rows got;
    assert_int_equal(read_rows(d, 100, &want, &got, f->err), PS_EINVAL);
    assert_string_equal(f->err, "stdin: batch 3: input ended without the end "
                                "marker (writer stopped early?)");
    rows_free(&got);
    feed_join(&fe);
    ps_data_close(d);
    stdin_restore(saved);
    sw_free(&b);
    rows_free(&want);
}

static void test_data_rewind_stream_pipe_one_pass(void **st)
{
    fixture *f = *st;
    rows want = dense_rows(5, 2);
    sw_buf b = {0};
    write_stream(&b, &want, 2, 2);
    feeder fe;
    int rfd = feed_start(&fe, &b);
    char path[64];
    snprintf(path, sizeof(path), "/dev/fd/%d", rfd);
    ps_data_cfg c = stream_cfg(path);
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    expect_rows(d, 3, &want, f->err);
    feed_join(&fe);
    assert_int_equal(ps_data_rewind(d, f->err, ERRLEN), PS_EINVAL);
    assert_non_null(strstr(f->err, "cannot rewind: the input is not "
                                   "seekable"));
    assert_int_equal(strncmp(f->err, path, strlen(path)), 0);
    ps_data_close(d);
    close(rfd);
    sw_free(&b);
    rows_free(&want);
}

static void test_data_open_stream_bad_cache_dir(void **st)
{
    fixture *f = *st;
    int p[2];
    assert_int_equal(pipe(p), 0);
    char path[64];
    snprintf(path, sizeof(path), "/dev/fd/%d", p[0]);
    ps_data_cfg c = stream_cfg(path);
    c.multi_pass = 1;
    c.cache_dir = "/nonexistent/ps_cache";
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_EIO);
    assert_null(d);
    assert_non_null(strstr(f->err, "cannot create a cache file in "
                                   "/nonexistent/ps_cache: "));
    close(p[0]);
    close(p[1]);
}

static void test_data_next_stream_cache_write_fails(void **st)
{
    fixture *f = *st;
    rows want = dense_rows(2000, 8); /* 72 KB */
    sw_buf b = {0};
    write_stream(&b, &want, 100, 8);
    feeder fe;
    int rfd = feed_start(&fe, &b);
    char path[64];
    snprintf(path, sizeof(path), "/dev/fd/%d", rfd);
    ps_data_cfg c = stream_cfg(path);
    c.multi_pass = 1;
    c.cache_dir = f->dir;
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    /* A full disk, as far as write(2) can tell: EFBIG past 16 KiB. */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 16384;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    rows got;
    int rc = read_rows(d, 64, &want, &got, f->err);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, prev);
    assert_int_equal(rc, PS_EIO);
    char want_text[128];
    snprintf(want_text, sizeof(want_text), ": cache %s/sparkps-stream-",
             f->dir);
    assert_non_null(strstr(f->err, want_text));
    assert_non_null(strstr(f->err, "write failed: "));
    rows_free(&got);
    ps_data_close(d);
    close(rfd); /* the writer gets EPIPE and ends */
    feed_join(&fe);
    sw_free(&b);
    rows_free(&want);
}

/* ---- malformed streams --------------------------------------------------- */

/* Writes b to a file, reads it all and expects rc with text in the error,
 * which starts with the path. */
static void expect_bad(fixture *f, const sw_buf *b, int want_rc,
                       const char *text)
{
    ps_data_cfg c = stream_cfg(put(f, "bad.sps", b));
    ps_dataset *d = NULL;
    f->err[0] = '\0';
    int rc = ps_data_open(&d, &c, f->err, ERRLEN);
    while (rc == PS_OK) {
        ps_batch bt;
        rc = ps_data_next(d, &bt, 64, f->err, ERRLEN);
        if (rc == PS_OK && bt.n == 0)
            break;
    }
    ps_data_close(d);
    if (rc != want_rc || !strstr(f->err, text) ||
        strncmp(f->err, f->path, strlen(f->path)) != 0) {
        print_error("want %d '%s', got %d '%s'\n", want_rc, text, rc, f->err);
        fail();
    }
}

static void header_raw(sw_buf *b, const char *magic, unsigned version,
                       unsigned kind, unsigned reserved, uint64_t dim)
{
    sw_bytes(b, magic, 4);
    sw_u16(b, (uint16_t)version);
    sw_u8(b, (uint8_t)kind);
    sw_u8(b, (uint8_t)reserved);
    sw_u64(b, dim);
}

static void batch_header(sw_buf *b, uint32_t rows_, uint32_t width,
                         uint64_t payload)
{
    sw_u32(b, rows_);
    sw_u32(b, width);
    sw_u64(b, payload);
}

static void test_data_open_stream_bad_headers(void **st)
{
    fixture *f = *st;
    sw_buf b = {0};
    expect_bad(f, &b, PS_EINVAL, ": empty input (no stream header)");
    sw_bytes(&b, "SPKS\x01\x00\x01\x00\x04\x00", 10);
    expect_bad(f, &b, PS_EINVAL,
               ": truncated stream header (got 10 of 16 "
               "bytes)");
    b.len = 0;
    header_raw(&b, "\x1f\x8b\x08\x00", 1, 1, 0, 4);
    expect_bad(f, &b, PS_EINVAL, ": bad magic 1f 8b 08 00 (want 53 50 4b 53");
    b.len = 0;
    header_raw(&b, "SPKS", 2, 1, 0, 4);
    expect_bad(f, &b, PS_EINVAL,
               ": unsupported stream version 2 (this reader speaks 1)");
    b.len = 0;
    header_raw(&b, "SPKS", 1, 3, 0, 4);
    expect_bad(f, &b, PS_EINVAL, ": unknown row kind 3 (1: dense, 2: sparse)");
    b.len = 0;
    header_raw(&b, "SPKS", 1, 1, 1, 4);
    expect_bad(f, &b, PS_EINVAL, ": reserved header byte is 0x01, must be 0");
    b.len = 0;
    header_raw(&b, "SPKS", 1, 1, 0, 0);
    expect_bad(f, &b, PS_EINVAL, ": dense stream with dim 0");
    b.len = 0;
    header_raw(&b, "SPKS", 1, 1, 0, 1u << 25);
    expect_bad(f, &b, PS_EINVAL, ": dim 33554432 too large (at most 16777216)");
    b.len = 0;
    header_raw(&b, "SPKS", 1, 2, 0, (uint64_t)1 << 49);
    expect_bad(f, &b, PS_EINVAL, "too large (at most 281474976710656)");
    sw_free(&b);
}

static void test_data_next_stream_bad_framing(void **st)
{
    fixture *f = *st;
    float y[4] = {0, 1, 2, 3}, x[16] = {0};
    sw_buf b = {0};

    sw_header(&b, SW_DENSE, 4);
    sw_dense_batch(&b, 2, 4, y, x);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 1: input ended without the end marker");
    sw_bytes(&b, "\x02\x00\x00\x00\x04", 5);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 1: truncated batch header (got 5 of 16 bytes)");
    b.len -= 5;
    batch_header(&b, 3, 4, 60);
    sw_bytes(&b, x, 10);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 1: truncated payload (got 10 of 60 bytes)");

    b.len = 0;
    sw_header(&b, SW_DENSE, 4);
    batch_header(&b, (1u << 20) + 1, 4, 0);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 0: 1048577 rows (at most 1048576 per batch)");

    b.len = 0;
    sw_header(&b, SW_DENSE, 4);
    sw_dense_batch(&b, 2, 4, y, x);
    sw_dense_batch(&b, 2, 3, y, x);
    sw_end(&b);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 1: 3 features per row, the stream header says 4");

    b.len = 0;
    sw_header(&b, SW_DENSE, 4);
    batch_header(&b, 2, 4, 99);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 0: payload_bytes 99 does not match 2 rows and 4 "
               "features (want 40)");

    b.len = 0;
    sw_header(&b, SW_SPARSE, 0);
    batch_header(&b, 1, 3, 8 + 12 * 2);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 0: payload_bytes 32 does not match 1 rows and 3 "
               "nonzeros (want 44)");

    b.len = 0;
    sw_header(&b, SW_SPARSE, 0);
    batch_header(&b, 1, 1u << 25, 8 + 12 * ((uint64_t)1 << 25));
    expect_bad(f, &b, PS_EINVAL,
               ": batch 0: payload of 402653192 bytes exceeds 268435456");

    b.len = 0;
    sw_header(&b, SW_DENSE, 4);
    sw_dense_batch(&b, 1, 4, y, x);
    batch_header(&b, 0, 1, 0);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 1: rows 0 (end marker) with width 1 and "
               "payload_bytes 0; both must be 0");

    b.len = 0;
    sw_header(&b, SW_DENSE, 4);
    sw_dense_batch(&b, 1, 4, y, x);
    sw_end(&b);
    sw_u8(&b, 0);
    expect_bad(f, &b, PS_EINVAL,
               ": trailing data after the end marker "
               "(batch 1)");
    sw_free(&b);
}

static void test_data_next_stream_bad_values(void **st)
{
    fixture *f = *st;
    float y[4] = {0, 1, 2, 3}, x[16] = {0};
    sw_buf b = {0};

    sw_header(&b, SW_DENSE, 4);
    sw_dense_batch(&b, 4, 4, y, x);
    y[2] = from_bits(0x7fc00000u); /* NaN */
    sw_dense_batch(&b, 4, 4, y, x);
    sw_end(&b);
    expect_bad(f, &b, PS_EINVAL, ": batch 1: row 2: label is not finite (nan)");
    y[2] = 2;

    b.len = 0;
    x[7] = from_bits(0x7f800000u); /* +inf: row 1, value 3 */
    sw_header(&b, SW_DENSE, 4);
    sw_dense_batch(&b, 4, 4, y, x);
    sw_end(&b);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 0: row 1: value 3 is not finite "
               "(inf)");
    x[7] = 0;

    uint32_t counts[3] = {1, 0, 2};
    uint64_t ids[3] = {4, 2, 9};
    float vals[3] = {1, 2, from_bits(0xff800000u)}; /* -inf: row 2, val 1 */
    b.len = 0;
    sw_header(&b, SW_SPARSE, 0);
    sw_sparse_batch(&b, 3, y, counts, ids, vals);
    sw_end(&b);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 0: row 2: value 1 is not finite "
               "(-inf)");
    vals[2] = 3;

    /* The counts say 3 nonzeros, the batch header 4 (payload sized to 4). */
    b.len = 0;
    sw_header(&b, SW_SPARSE, 0);
    batch_header(&b, 3, 4, 8 * 3 + 12 * 4);
    for (int i = 0; i < 3; i++)
        sw_f32(&b, y[i]);
    for (int i = 0; i < 3; i++)
        sw_u32(&b, counts[i]);
    for (int i = 0; i < 4; i++)
        sw_u64(&b, (uint64_t)i);
    for (int i = 0; i < 4; i++)
        sw_f32(&b, 1.0f);
    sw_end(&b);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 0: row nonzero counts add up to 3, the batch header "
               "says nnz 4");

    ids[1] = 5;
    ids[2] = 5;
    counts[0] = 0;
    counts[1] = 3;
    counts[2] = 0;
    b.len = 0;
    sw_header(&b, SW_SPARSE, 0);
    sw_sparse_batch(&b, 3, y, counts, ids, vals);
    sw_end(&b);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 0: row 1: feature id 5 not above the previous one "
               "(5)");

    uint64_t ids2[3] = {1, 9, 10};
    b.len = 0;
    sw_header(&b, SW_SPARSE, 10);
    sw_sparse_batch(&b, 3, y, counts, ids2, vals);
    sw_end(&b);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 0: row 1: feature id 10 not below dim (10)");

    ids2[2] = (uint64_t)1 << 48;
    b.len = 0;
    sw_header(&b, SW_SPARSE, 0);
    sw_sparse_batch(&b, 3, y, counts, ids2, vals);
    sw_end(&b);
    expect_bad(f, &b, PS_EINVAL,
               ": batch 0: row 1: feature id 281474976710656 too large, at "
               "most (281474976710655)");
    sw_free(&b);
}

static void test_data_open_stream_missing_file(void **st)
{
    fixture *f = *st;
    ps_data_cfg c = stream_cfg("/nonexistent/x.sps");
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_EIO);
    assert_null(d);
    assert_non_null(strstr(f->err, "/nonexistent/x.sps: cannot open: "));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* writer threads see EPIPE instead */
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_data_stream_doc_examples),
        T(test_data_next_stream_dense_bit_exact),
        T(test_data_next_stream_sparse_bit_exact),
        T(test_data_next_stream_parts_split),
        T(test_data_rewind_stream_file_same_rows),
        T(test_data_rewind_stream_pipe_replays_cache),
        T(test_data_rewind_stream_stdin_early_drains),
        T(test_data_rewind_stream_stdin_file_seeks),
        T(test_data_next_stream_stdin_cut_off),
        T(test_data_rewind_stream_pipe_one_pass),
        T(test_data_open_stream_bad_cache_dir),
        T(test_data_next_stream_cache_write_fails),
        T(test_data_open_stream_bad_headers),
        T(test_data_next_stream_bad_framing),
        T(test_data_next_stream_bad_values),
        T(test_data_open_stream_missing_file),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
