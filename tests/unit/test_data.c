/* Unit tests for worker/data.c: the IDX, CSV and libsvm readers on small
 * files written into a temporary directory: exact rows, every kind of bad
 * record with its file:line (or record), .gz against plain, part/parts
 * splits, rewind and batches across max_rows boundaries. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "data.h"
#include "ps_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define ERRLEN 512

typedef struct fixture {
    char dir[64];
    char path[256]; /* scratch for the test's main file */
    char err[ERRLEN];
} fixture;

static int setup(void **st)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    if (ps_test_mkdtemp(f->dir, sizeof(f->dir), "ps_test_data") != 0) {
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

/* Writes len bytes to dir/name (gzip-compressed when gz); returns the path
 * in f->path. */
static const char *put(fixture *f, const char *name, const void *data,
                       size_t len, int gz)
{
    snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
    if (gz) {
        gzFile z = gzopen(f->path, "wb");
        assert_non_null(z);
        if (len > 0)
            assert_int_equal(gzwrite(z, data, (unsigned)len), (int)len);
        assert_int_equal(gzclose(z), Z_OK);
    } else {
        FILE *fp = fopen(f->path, "wb");
        assert_non_null(fp);
        assert_int_equal(fwrite(data, 1, len, fp), len);
        assert_int_equal(fclose(fp), 0);
    }
    return f->path;
}

static const char *put_text(fixture *f, const char *name, const char *text)
{
    return put(f, name, text, strlen(text), 0);
}

/* ---- IDX --------------------------------------------------------------- */

static unsigned char pixel(unsigned r, unsigned j)
{
    return (unsigned char)((r * 37u + j * 11u) % 256u);
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

typedef struct idx_spec {
    uint32_t n, rows, cols;
    uint32_t img_magic, lab_magic; /* 0: the right one */
    uint32_t lab_n;                /* labels count; 0: n */
    size_t img_cut, lab_cut;       /* bytes dropped from the end */
    int gz;
} idx_spec;

/* Writes <prefix>-images-idx3-ubyte[.gz] and the labels file beside it;
 * record r has pixels pixel(r, j) and label r % 251. Returns the images
 * path (static buffer). */
static const char *put_idx(fixture *f, const char *prefix, idx_spec s)
{
    static char img_path[256];
    uint32_t lab_n = s.lab_n ? s.lab_n : s.n;
    size_t dim = (size_t)s.rows * s.cols;
    size_t ilen = 16 + (size_t)s.n * dim, llen = 8 + (size_t)lab_n;
    unsigned char *img = malloc(ilen), *lab = malloc(llen);
    assert_non_null(img);
    assert_non_null(lab);
    be32(img, s.img_magic ? s.img_magic : 0x00000803);
    be32(img + 4, s.n);
    be32(img + 8, s.rows);
    be32(img + 12, s.cols);
    for (uint32_t r = 0; r < s.n; r++)
        for (size_t j = 0; j < dim; j++)
            img[16 + r * dim + j] = pixel(r, (unsigned)j);
    be32(lab, s.lab_magic ? s.lab_magic : 0x00000801);
    be32(lab + 4, lab_n);
    for (uint32_t r = 0; r < lab_n; r++)
        lab[8 + r] = (unsigned char)(r % 251);
    char name[128];
    snprintf(name, sizeof(name), "%s-labels-idx1-ubyte%s", prefix,
             s.gz ? ".gz" : "");
    put(f, name, lab, llen - s.lab_cut, s.gz);
    snprintf(name, sizeof(name), "%s-images-idx3-ubyte%s", prefix,
             s.gz ? ".gz" : "");
    put(f, name, img, ilen - s.img_cut, s.gz);
    snprintf(img_path, sizeof(img_path), "%s", f->path);
    free(img);
    free(lab);
    return img_path;
}

static ps_data_cfg idx_cfg(const char *path)
{
    ps_data_cfg c = {0};
    c.path = path;
    c.format = PS_DATA_IDX;
    return c;
}

/* Checks that a batch holds records first, first + step, ... */
static void check_idx_rows(const ps_batch *b, size_t dim, unsigned first,
                           unsigned step)
{
    for (size_t i = 0; i < b->n; i++) {
        unsigned r = first + (unsigned)i * step;
        assert_true(b->y[i] == (float)(r % 251));
        for (size_t j = 0; j < dim; j++)
            assert_true(b->x[i * dim + j] ==
                        (float)pixel(r, (unsigned)j) / 255.0f);
    }
}

static void test_data_next_idx_good(void **st)
{
    fixture *f = *st;
    const char *p =
        put_idx(f, "train", (idx_spec){.n = 5, .rows = 3, .cols = 2});
    ps_data_cfg c = idx_cfg(p);
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    assert_int_equal(ps_data_dim(d), 6);
    assert_int_equal(ps_data_rows_hint(d), 5);
    ps_batch b;
    assert_int_equal(ps_data_next(d, &b, 16, f->err, ERRLEN), PS_OK);
    assert_int_equal(b.n, 5);
    assert_int_equal(b.dim, 6);
    assert_null(b.rowptr);
    check_idx_rows(&b, 6, 0, 1);
    for (size_t i = 0; i < b.n * b.dim; i++)
        assert_true(b.x[i] >= 0.0f && b.x[i] <= 1.0f);
    assert_int_equal(ps_data_next(d, &b, 16, f->err, ERRLEN), PS_OK);
    assert_int_equal(b.n, 0);
    ps_data_close(d);
}

static void test_data_next_idx_batches_cross_max_rows(void **st)
{
    fixture *f = *st;
    const char *p = put_idx(f, "b", (idx_spec){.n = 7, .rows = 2, .cols = 2});
    ps_data_cfg c = idx_cfg(p);
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    size_t want[] = {3, 3, 1, 0};
    unsigned first = 0;
    for (size_t k = 0; k < 4; k++) {
        ps_batch b;
        assert_int_equal(ps_data_next(d, &b, 3, f->err, ERRLEN), PS_OK);
        assert_int_equal(b.n, want[k]);
        check_idx_rows(&b, 4, first, 1);
        first += (unsigned)b.n;
    }
    ps_data_close(d);
}

static void test_data_next_idx_gz_equals_plain(void **st)
{
    fixture *f = *st;
    idx_spec s = {.n = 40, .rows = 28, .cols = 28};
    char plain[256];
    snprintf(plain, sizeof(plain), "%s", put_idx(f, "plain", s));
    s.gz = 1;
    const char *gz = put_idx(f, "t10k", s);
    assert_non_null(strstr(gz, "t10k-images-idx3-ubyte.gz"));
    ps_dataset *a = NULL, *z = NULL;
    ps_data_cfg ca = idx_cfg(plain), cz = idx_cfg(gz);
    assert_int_equal(ps_data_open(&a, &ca, f->err, ERRLEN), PS_OK);
    assert_int_equal(ps_data_open(&z, &cz, f->err, ERRLEN), PS_OK);
    assert_int_equal(ps_data_dim(z), 784);
    assert_int_equal(ps_data_rows_hint(z), 40);
    size_t total = 0;
    for (;;) {
        ps_batch ba, bz;
        assert_int_equal(ps_data_next(a, &ba, 7, f->err, ERRLEN), PS_OK);
        assert_int_equal(ps_data_next(z, &bz, 7, f->err, ERRLEN), PS_OK);
        assert_int_equal(ba.n, bz.n);
        if (ba.n == 0)
            break;
        assert_memory_equal(ba.x, bz.x, ba.n * 784 * sizeof(float));
        assert_memory_equal(ba.y, bz.y, ba.n * sizeof(float));
        check_idx_rows(&bz, 784, (unsigned)total, 1);
        total += ba.n;
    }
    assert_int_equal(total, 40);
    ps_data_close(a);
    ps_data_close(z);
}

static void test_data_open_idx_labels_path(void **st)
{
    fixture *f = *st;
    const char *p = put_idx(f, "x", (idx_spec){.n = 3, .rows = 1, .cols = 1});
    char img[256], lab[256];
    snprintf(img, sizeof(img), "%s", p);
    /* Explicit labels_path, images under a name that cannot be derived. */
    snprintf(lab, sizeof(lab), "%s/x-labels-idx1-ubyte", f->dir);
    char moved[300];
    snprintf(moved, sizeof(moved), "%s/images.bin", f->dir);
    assert_int_equal(rename(img, moved), 0);
    ps_data_cfg c = idx_cfg(moved);
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_EINVAL);
    assert_null(d);
    assert_non_null(strstr(f->err, "images.bin: cannot derive the labels"));
    c.labels_path = lab;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    ps_batch b;
    assert_int_equal(ps_data_next(d, &b, 8, f->err, ERRLEN), PS_OK);
    assert_int_equal(b.n, 3);
    check_idx_rows(&b, 1, 0, 1);
    ps_data_close(d);
}

static void expect_open_fails(fixture *f, const ps_data_cfg *c, int code,
                              const char *msg)
{
    ps_dataset *d = NULL;
    f->err[0] = '\0';
    assert_int_equal(ps_data_open(&d, c, f->err, ERRLEN), code);
    assert_null(d);
    assert_string_equal(f->err, msg);
}

/* Opens c, reads batches of 4 until an error; checks code and message. */
static void expect_next_fails(fixture *f, const ps_data_cfg *c, int code,
                              const char *msg)
{
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, c, f->err, ERRLEN), PS_OK);
    ps_batch b;
    int rc;
    f->err[0] = '\0';
    while ((rc = ps_data_next(d, &b, 4, f->err, ERRLEN)) == PS_OK)
        assert_int_not_equal(b.n, 0);
    assert_int_equal(rc, code);
    assert_string_equal(f->err, msg);
    ps_data_close(d);
}

static void test_data_open_idx_bad_headers(void **st)
{
    fixture *f = *st;
    char want[600], img[256];
    ps_data_cfg c;

    snprintf(
        img, sizeof(img), "%s",
        put_idx(
            f, "m1",
            (idx_spec){.n = 2, .rows = 2, .cols = 2, .img_magic = 0x00000801}));
    c = idx_cfg(img);
    snprintf(want, sizeof(want),
             "%s: bad magic 0x00000801 (want 0x00000803: unsigned-byte "
             "images with 3 dimensions)",
             img);
    expect_open_fails(f, &c, PS_EINVAL, want);

    snprintf(
        img, sizeof(img), "%s",
        put_idx(
            f, "m2",
            (idx_spec){.n = 2, .rows = 2, .cols = 2, .lab_magic = 0x00000803}));
    c = idx_cfg(img);
    snprintf(want, sizeof(want),
             "%s/m2-labels-idx1-ubyte: bad magic 0x00000803 (want "
             "0x00000801: unsigned-byte labels with 1 dimension)",
             f->dir);
    expect_open_fails(f, &c, PS_EINVAL, want);

    snprintf(
        img, sizeof(img), "%s",
        put_idx(f, "cnt",
                (idx_spec){.n = 4, .rows = 2, .cols = 2, .lab_n = 3, .gz = 1}));
    c = idx_cfg(img);
    snprintf(want, sizeof(want),
             "%s: 4 images but %s/cnt-labels-idx1-ubyte.gz: 3 labels", img,
             f->dir);
    expect_open_fails(f, &c, PS_EINVAL, want);

    snprintf(img, sizeof(img), "%s",
             put_idx(f, "hdr",
                     (idx_spec){.n = 0, .rows = 2, .cols = 2, .img_cut = 5}));
    c = idx_cfg(img);
    snprintf(want, sizeof(want), "%s: header: truncated", img);
    expect_open_fails(f, &c, PS_EINVAL, want);

    snprintf(img, sizeof(img), "%s",
             put_idx(f, "zero", (idx_spec){.n = 1, .rows = 0, .cols = 2}));
    c = idx_cfg(img);
    snprintf(want, sizeof(want),
             "%s: bad image size 0 x 2 (at most 16777216 pixels)", img);
    expect_open_fails(f, &c, PS_EINVAL, want);

    /* Images present, labels missing. */
    snprintf(img, sizeof(img), "%s/lonely-images-idx3-ubyte", f->dir);
    put(f, "lonely-images-idx3-ubyte", "\0\0\x08\x03\0\0\0\0\0\0\0\1\0\0\0\1",
        16, 0);
    c = idx_cfg(img);
    snprintf(want, sizeof(want),
             "%s/lonely-labels-idx1-ubyte: cannot open: No such file or "
             "directory",
             f->dir);
    expect_open_fails(f, &c, PS_EIO, want);

    snprintf(img, sizeof(img), "%s/none-images-idx3-ubyte", f->dir);
    c = idx_cfg(img);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory",
             img);
    expect_open_fails(f, &c, PS_EIO, want);
}

static void test_data_next_idx_truncated_record(void **st)
{
    fixture *f = *st;
    char want[600], img[256];
    ps_data_cfg c;
    for (int gz = 0; gz <= 1; gz++) {
        /* 10 records of 4 bytes; the last 3 and a bit are missing: record 6
         * is the first one cut. */
        snprintf(
            img, sizeof(img), "%s",
            put_idx(
                f, gz ? "ti" : "pi",
                (idx_spec){
                    .n = 10, .rows = 2, .cols = 2, .img_cut = 13, .gz = gz}));
        c = idx_cfg(img);
        snprintf(want, sizeof(want), "%s: record 6: truncated", img);
        expect_next_fails(f, &c, PS_EINVAL, want);

        snprintf(
            img, sizeof(img), "%s",
            put_idx(
                f, gz ? "tl" : "pl",
                (idx_spec){
                    .n = 10, .rows = 2, .cols = 2, .lab_cut = 2, .gz = gz}));
        c = idx_cfg(img);
        snprintf(want, sizeof(want),
                 "%s/%s-labels-idx1-ubyte%s: record 8: "
                 "truncated",
                 f->dir, gz ? "tl" : "pl", gz ? ".gz" : "");
        expect_next_fails(f, &c, PS_EINVAL, want);
    }
    /* A share that skips the cut records still sees the truncation when it
     * reaches them. */
    snprintf(img, sizeof(img), "%s",
             put_idx(f, "ps",
                     (idx_spec){.n = 10, .rows = 2, .cols = 2, .img_cut = 13}));
    c = idx_cfg(img);
    c.part = 1;
    c.parts = 4;
    snprintf(want, sizeof(want), "%s: record 9: truncated", img);
    expect_next_fails(f, &c, PS_EINVAL, want);
}

static void test_data_next_idx_parts_split(void **st)
{
    fixture *f = *st;
    for (int gz = 0; gz <= 1; gz++) {
        const char *p =
            put_idx(f, gz ? "pz" : "pp",
                    (idx_spec){.n = 23, .rows = 2, .cols = 3, .gz = gz});
        int seen[23] = {0};
        for (unsigned part = 0; part < 5; part++) {
            ps_data_cfg c = idx_cfg(p);
            c.part = part;
            c.parts = 5;
            ps_dataset *d = NULL;
            assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
            assert_int_equal(ps_data_rows_hint(d), part < 3 ? 5 : 4);
            uint64_t rows = 0;
            ps_batch b;
            while (ps_data_next(d, &b, 2, f->err, ERRLEN) == PS_OK && b.n > 0) {
                check_idx_rows(&b, 6, part + (unsigned)rows * 5, 5);
                for (size_t i = 0; i < b.n; i++)
                    seen[(int)b.y[i]]++;
                rows += b.n;
            }
            assert_int_equal(rows, ps_data_rows_hint(d));
            ps_data_close(d);
        }
        for (int r = 0; r < 23; r++)
            assert_int_equal(seen[r], 1);
    }
}

static void test_data_rewind_idx_same_rows(void **st)
{
    fixture *f = *st;
    const char *p =
        put_idx(f, "rw", (idx_spec){.n = 9, .rows = 2, .cols = 2, .gz = 1});
    ps_data_cfg c = idx_cfg(p);
    c.part = 2;
    c.parts = 3;
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    for (int epoch = 0; epoch < 3; epoch++) {
        ps_batch b;
        assert_int_equal(ps_data_next(d, &b, 2, f->err, ERRLEN), PS_OK);
        assert_int_equal(b.n, 2);
        check_idx_rows(&b, 4, 2, 3);
        if (epoch > 0) { /* read to the end on later epochs */
            assert_int_equal(ps_data_next(d, &b, 2, f->err, ERRLEN), PS_OK);
            assert_int_equal(b.n, 1);
            check_idx_rows(&b, 4, 8, 3);
            assert_int_equal(ps_data_next(d, &b, 2, f->err, ERRLEN), PS_OK);
            assert_int_equal(b.n, 0);
        }
        assert_int_equal(ps_data_rewind(d, f->err, ERRLEN), PS_OK);
    }
    ps_data_close(d);
}

/* ---- CSV --------------------------------------------------------------- */

static ps_data_cfg csv_cfg(const char *path, int label_col, int header)
{
    ps_data_cfg c = {0};
    c.path = path;
    c.format = PS_DATA_CSV;
    c.csv_label_col = label_col;
    c.csv_header = header;
    return c;
}

static void test_data_next_csv_good(void **st)
{
    fixture *f = *st;
    const char *p = put_text(f, "good.csv",
                             "a,b,label\r\n"
                             "1,2,0\r\n"
                             "\n"
                             " 3.5 , -4e2 ,1\n"
                             "0x10,0.25,7\n"
                             "\n");
    ps_data_cfg c = csv_cfg(p, -1, 1);
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    assert_int_equal(ps_data_dim(d), 2);
    assert_int_equal(ps_data_rows_hint(d), 0);
    ps_batch b;
    assert_int_equal(ps_data_next(d, &b, 10, f->err, ERRLEN), PS_OK);
    assert_int_equal(b.n, 3);
    assert_int_equal(b.dim, 2);
    float x[] = {1, 2, 3.5f, -400, 16, 0.25f}, y[] = {0, 1, 7};
    assert_memory_equal(b.x, x, sizeof(x));
    assert_memory_equal(b.y, y, sizeof(y));
    assert_int_equal(ps_data_next(d, &b, 10, f->err, ERRLEN), PS_OK);
    assert_int_equal(b.n, 0);
    ps_data_close(d);

    /* Label first, no header, no final newline, gzip-compressed. */
    const char *text = "9,1,2,3\n8,4,5,6";
    p = put(f, "first.csv.gz", text, strlen(text), 1);
    c = csv_cfg(p, 0, 0);
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    assert_int_equal(ps_data_dim(d), 3);
    assert_int_equal(ps_data_next(d, &b, 10, f->err, ERRLEN), PS_OK);
    assert_int_equal(b.n, 2);
    float x2[] = {1, 2, 3, 4, 5, 6}, y2[] = {9, 8};
    assert_memory_equal(b.x, x2, sizeof(x2));
    assert_memory_equal(b.y, y2, sizeof(y2));
    ps_data_close(d);

    /* Label in the middle. */
    p = put_text(f, "mid.csv", "1,5,2\n3,6,4\n");
    c = csv_cfg(p, 1, 0);
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    assert_int_equal(ps_data_next(d, &b, 1, f->err, ERRLEN), PS_OK);
    assert_int_equal(b.n, 1);
    assert_true(b.x[0] == 1 && b.x[1] == 2 && b.y[0] == 5);
    assert_int_equal(ps_data_next(d, &b, 1, f->err, ERRLEN), PS_OK);
    assert_int_equal(b.n, 1);
    assert_true(b.x[0] == 3 && b.x[1] == 4 && b.y[0] == 6);
    ps_data_close(d);
}

static void test_data_next_csv_bad_rows(void **st)
{
    fixture *f = *st;
    static const struct {
        const char *text;
        const char *msg; /* after "path:" */
    } cases[] = {
        {"h1,h2\n1,2\n\n3,x\n", "4: column 2: bad number 'x'"},
        {"1,2\n3,4,5\n", "2: 3 columns, expected 2"},
        {"1,2,3\n4,5\n", "2: 2 columns, expected 3"},
        {"1,2\n,4\n", "2: column 1: empty field"},
        {"1,2\n3, \n", "2: column 2: empty field"},
        {"1,2\n3,4\n \n", "3: 1 columns, expected 2"},
        {"1,2\n3,nan\n", "2: column 2: 'nan' is not a finite float"},
        {"1,2\n3,1e99\n", "2: column 2: '1e99' is not a finite float"},
        {"1,2\n3,4 5\n", "2: column 2: bad number '4 5'"},
        {"1,2\n3,\"4\"\n", "2: column 2: bad number '\"4\"'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32], want[600];
        snprintf(name, sizeof(name), "bad%zu.csv", i);
        const char *p = put_text(f, name, cases[i].text);
        ps_data_cfg c = csv_cfg(p, -1, i == 0);
        snprintf(want, sizeof(want), "%s:%s", p, cases[i].msg);
        expect_next_fails(f, &c, PS_EINVAL, want);
    }
}

static void test_data_open_csv_bad(void **st)
{
    fixture *f = *st;
    char want[600];
    const char *p = put_text(f, "empty.csv", "\n\n");
    ps_data_cfg c = csv_cfg(p, -1, 0);
    snprintf(want, sizeof(want), "%s: no data rows", p);
    expect_open_fails(f, &c, PS_EINVAL, want);

    p = put_text(f, "hdr.csv", "a,b\n");
    c = csv_cfg(p, -1, 1);
    snprintf(want, sizeof(want), "%s: no data rows", p);
    expect_open_fails(f, &c, PS_EINVAL, want);

    p = put_text(f, "one.csv", "\n5\n6\n");
    c = csv_cfg(p, -1, 0);
    snprintf(want, sizeof(want),
             "%s:2: 1 column; need a label and at least one feature", p);
    expect_open_fails(f, &c, PS_EINVAL, want);

    p = put_text(f, "lc.csv", "1,2,3\n");
    c = csv_cfg(p, 3, 0);
    snprintf(want, sizeof(want),
             "%s:1: label column 3, but rows have 3 columns (0-based; -1: "
             "last)",
             p);
    expect_open_fails(f, &c, PS_EINVAL, want);

    p = put(f, "nul.csv", "1,2\n3\0,4\n", 9, 0);
    c = csv_cfg(p, -1, 0);
    snprintf(want, sizeof(want), "%s:2: NUL byte in line", p);
    expect_next_fails(f, &c, PS_EINVAL, want);

    snprintf(want, sizeof(want), "%s/missing.csv", f->dir);
    c = csv_cfg(want, -1, 0);
    char msg[700];
    snprintf(msg, sizeof(msg), "%s: cannot open: No such file or directory",
             want);
    expect_open_fails(f, &c, PS_EIO, msg);
}

static void test_data_next_csv_truncated_gz(void **st)
{
    fixture *f = *st;
    /* Enough rows that the cut lands inside the compressed data. */
    size_t cap = 1 << 16, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (int i = 0; i < 2000; i++)
        len += (size_t)snprintf(text + len, cap - len, "%d,%d\n", i, i * 7);
    const char *p = put(f, "cut.csv.gz", text, len, 1);
    free(text);
    FILE *fp = fopen(p, "rb");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    long size = ftell(fp);
    fclose(fp);
    assert_int_equal(truncate(p, size / 2), 0);
    ps_data_cfg c = csv_cfg(p, -1, 0);
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    ps_batch b;
    int rc;
    while ((rc = ps_data_next(d, &b, 100, f->err, ERRLEN)) == PS_OK)
        assert_int_not_equal(b.n, 0);
    assert_int_equal(rc, PS_EIO);
    char want[600];
    snprintf(want, sizeof(want), "%s: read failed: unexpected end of file", p);
    assert_string_equal(f->err, want);
    ps_data_close(d);
}

/* Reads a whole share; writes each row's label into seen[label]++ and
 * checks that x[0] == 10 * label. Returns the rows read. */
static size_t read_share_dense(fixture *f, ps_dataset *d, size_t max_rows,
                               int *seen, size_t nseen)
{
    size_t rows = 0;
    ps_batch b;
    for (;;) {
        assert_int_equal(ps_data_next(d, &b, max_rows, f->err, ERRLEN), PS_OK);
        if (b.n == 0)
            break;
        assert_true(b.n <= max_rows);
        for (size_t i = 0; i < b.n; i++) {
            size_t lab = (size_t)b.y[i];
            assert_true(lab < nseen);
            assert_true(b.x[i * b.dim] == 10.0f * b.y[i]);
            seen[lab]++;
        }
        rows += b.n;
    }
    return rows;
}

static void test_data_next_csv_parts_split(void **st)
{
    fixture *f = *st;
    /* 11 records, a header and empty lines that do not count. */
    const char *p = put_text(f, "parts.csv",
                             "x,y\n\n0,0\n10,1\n\n\n20,2\n30,3\n40,4\n50,5\n"
                             "60,6\n\n70,7\n80,8\n90,9\n100,10\n\n");
    for (unsigned parts = 1; parts <= 4; parts++) {
        int seen[11] = {0};
        for (unsigned part = 0; part < parts; part++) {
            ps_data_cfg c = csv_cfg(p, -1, 1);
            c.part = part;
            c.parts = parts;
            ps_dataset *d = NULL;
            assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
            int mine[11] = {0};
            size_t rows = read_share_dense(f, d, 2, mine, 11);
            assert_int_equal(rows, (11 - part + parts - 1) / parts);
            for (unsigned r = 0; r < 11; r++) {
                assert_int_equal(mine[r], r % parts == part);
                seen[r] += mine[r];
            }
            ps_data_close(d);
        }
        for (int r = 0; r < 11; r++)
            assert_int_equal(seen[r], 1);
    }
}

static void test_data_rewind_csv_same_rows(void **st)
{
    fixture *f = *st;
    const char *p = put_text(f, "rw.csv", "h\n0,0\n10,1\n20,2\n30,3\n40,4\n");
    ps_data_cfg c = csv_cfg(p, -1, 1);
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    for (int epoch = 0; epoch < 3; epoch++) {
        int seen[5] = {0};
        assert_int_equal(read_share_dense(f, d, 3, seen, 5), 5);
        for (int r = 0; r < 5; r++)
            assert_int_equal(seen[r], 1);
        assert_int_equal(ps_data_rewind(d, f->err, ERRLEN), PS_OK);
    }
    ps_data_close(d);

    /* Line numbers start again after a rewind. */
    p = put_text(f, "rwbad.csv", "1,2\n3,4\nx,5\n");
    c = csv_cfg(p, -1, 0);
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    char want[600];
    snprintf(want, sizeof(want), "%s:3: column 1: bad number 'x'", p);
    for (int epoch = 0; epoch < 2; epoch++) {
        ps_batch b;
        assert_int_equal(ps_data_next(d, &b, 2, f->err, ERRLEN), PS_OK);
        assert_int_equal(b.n, 2);
        assert_int_equal(ps_data_next(d, &b, 2, f->err, ERRLEN), PS_EINVAL);
        assert_string_equal(f->err, want);
        assert_int_equal(ps_data_rewind(d, f->err, ERRLEN), PS_OK);
    }
    ps_data_close(d);
}

/* ---- libsvm ------------------------------------------------------------ */

static ps_data_cfg svm_cfg(const char *path, int one_based)
{
    ps_data_cfg c = {0};
    c.path = path;
    c.format = PS_DATA_LIBSVM;
    c.libsvm_one_based = one_based;
    return c;
}

static void test_data_next_libsvm_good(void **st)
{
    fixture *f = *st;
    const char *p = put_text(f, "good.svm",
                             "# a comment line\n"
                             "+1 1:0.5 3:2 # trailing comment\n"
                             "\n"
                             "-1\t2:1e-3\r\n"
                             "   \n"
                             "0\n"
                             "1 qid:3 4:-1 10:7\n"
                             "3 1:1\n");
    ps_data_cfg c = svm_cfg(p, 1);
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    assert_int_equal(ps_data_dim(d), 0);
    ps_batch b;
    assert_int_equal(ps_data_next(d, &b, 100, f->err, ERRLEN), PS_OK);
    assert_int_equal(b.n, 5);
    assert_int_equal(b.dim, 0);
    assert_null(b.x);
    float y[] = {1, 0, 0, 1, 3};
    assert_memory_equal(b.y, y, sizeof(y));
    size_t rowptr[] = {0, 2, 3, 3, 5, 6};
    assert_memory_equal(b.rowptr, rowptr, sizeof(rowptr));
    uint64_t idx[] = {0, 2, 1, 3, 9, 0};
    assert_memory_equal(b.idx, idx, sizeof(idx));
    float val[] = {0.5f, 2, 1e-3f, -1, 7, 1};
    assert_memory_equal(b.val, val, sizeof(val));
    assert_int_equal(ps_data_dim(d), 10);
    assert_int_equal(ps_data_next(d, &b, 100, f->err, ERRLEN), PS_OK);
    assert_int_equal(b.n, 0);
    ps_data_close(d);

    /* 0-based indices. */
    p = put_text(f, "zero.svm", "1 0:1 2:3\n0 5:2\n");
    c = svm_cfg(p, 0);
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    assert_int_equal(ps_data_next(d, &b, 100, f->err, ERRLEN), PS_OK);
    assert_int_equal(b.n, 2);
    uint64_t idx0[] = {0, 2, 5};
    assert_memory_equal(b.idx, idx0, sizeof(idx0));
    assert_int_equal(b.rowptr[2], 3);
    assert_int_equal(ps_data_dim(d), 6);
    ps_data_close(d);
}

static void test_data_next_libsvm_bad_rows(void **st)
{
    fixture *f = *st;
    static const struct {
        const char *text;
        int one_based;
        const char *msg; /* after "path:" */
    } cases[] = {
        {"1 1:1\n1 2 3:1\n", 1, "2: missing ':' in '2'"},
        {"1 1:1\n\n# c\n1 0:1\n", 1, "4: feature index 0 in a 1-based file"},
        {"1 3:1 3:2\n", 1, "1: feature index 3 not above the previous one"},
        {"1 3:1 2:2\n", 0, "1: feature index 2 not above the previous one"},
        {"1 1:x\n", 1, "1: bad value in '1:x'"},
        {"1 1:\n", 1, "1: bad value in '1:'"},
        {"1 1:inf\n", 1, "1: bad value in '1:inf'"},
        {"1 1:1:1\n", 1, "1: bad value in '1:1:1'"},
        {"1 a:1\n", 1, "1: bad feature index in 'a:1'"},
        {"1 -1:1\n", 0, "1: bad feature index in '-1:1'"},
        {"1 :1\n", 1, "1: bad feature index in ':1'"},
        {"1 99999999999999999999:1\n", 1,
         "1: bad feature index in '99999999999999999999:1'"},
        {"1 281474976710657:1\n", 1,
         "1: feature index 281474976710657 too large (max 281474976710656)"},
        {"yes 1:1\n", 1, "1: bad label 'yes'"},
        {"1:1 2:1\n", 1, "1: bad label '1:1'"},
        {"nan 1:1\n", 1, "1: bad label 'nan'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char name[32], want[600];
        snprintf(name, sizeof(name), "bad%zu.svm", i);
        const char *p = put_text(f, name, cases[i].text);
        ps_data_cfg c = svm_cfg(p, cases[i].one_based);
        snprintf(want, sizeof(want), "%s:%s", p, cases[i].msg);
        expect_next_fails(f, &c, PS_EINVAL, want);
    }
}

/* Row r of the generated file: label r, features (r % 5) + 1 ... with
 * value r + k. */
static void check_svm_row(const ps_batch *b, size_t i)
{
    unsigned r = (unsigned)b->y[i];
    size_t nnz = b->rowptr[i + 1] - b->rowptr[i];
    assert_int_equal(nnz, r % 4);
    for (size_t k = 0; k < nnz; k++) {
        assert_int_equal(b->idx[b->rowptr[i] + k], r % 5 + 2 * k);
        assert_true(b->val[b->rowptr[i] + k] == (float)(r + k));
    }
}

static const char *put_svm_rows(fixture *f, const char *name, unsigned n)
{
    size_t cap = 64 * (size_t)n + 64, len = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    for (unsigned r = 0; r < n; r++) {
        len += (size_t)snprintf(text + len, cap - len, "%u", r);
        for (unsigned k = 0; k < r % 4; k++)
            len += (size_t)snprintf(text + len, cap - len, " %u:%u",
                                    r % 5 + 2 * k + 1, r + k);
        len += (size_t)snprintf(text + len, cap - len,
                                r % 3 ? "\n" : "\n# skip me\n\n");
    }
    const char *p = put(f, name, text, len, 0);
    free(text);
    return p;
}

static void test_data_next_libsvm_batches_and_parts(void **st)
{
    fixture *f = *st;
    const char *p = put_svm_rows(f, "rows.svm", 50);
    for (unsigned parts = 1; parts <= 3; parts++) {
        int seen[50] = {0};
        for (unsigned part = 0; part < parts; part++) {
            ps_data_cfg c = svm_cfg(p, 1);
            c.part = part;
            c.parts = parts;
            ps_dataset *d = NULL;
            assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
            size_t rows = 0;
            ps_batch b;
            for (;;) {
                assert_int_equal(ps_data_next(d, &b, 7, f->err, ERRLEN), PS_OK);
                if (b.n == 0)
                    break;
                assert_true(b.n <= 7);
                assert_int_equal(b.rowptr[0], 0);
                for (size_t i = 0; i < b.n; i++) {
                    unsigned r = (unsigned)b.y[i];
                    assert_true(r < 50);
                    assert_int_equal(r % parts, part);
                    check_svm_row(&b, i);
                    seen[r]++;
                }
                rows += b.n;
            }
            assert_int_equal(rows, (50 - part + parts - 1) / parts);
            ps_data_close(d);
        }
        for (int r = 0; r < 50; r++)
            assert_int_equal(seen[r], 1);
    }
}

static void test_data_rewind_libsvm_same_rows(void **st)
{
    fixture *f = *st;
    const char *p = put_svm_rows(f, "rw.svm", 20);
    ps_data_cfg c = svm_cfg(p, 1);
    c.part = 1;
    c.parts = 2;
    ps_dataset *d = NULL;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    float first[10];
    for (int epoch = 0; epoch < 3; epoch++) {
        ps_batch b;
        assert_int_equal(ps_data_next(d, &b, 10, f->err, ERRLEN), PS_OK);
        assert_int_equal(b.n, 10);
        if (epoch == 0)
            memcpy(first, b.y, sizeof(first));
        else
            assert_memory_equal(b.y, first, sizeof(first));
        for (size_t i = 0; i < b.n; i++)
            check_svm_row(&b, i);
        assert_int_equal(ps_data_rewind(d, f->err, ERRLEN), PS_OK);
    }
    assert_int_equal(ps_data_dim(d), 9); /* row 19: ids 4, 6, 8 */
    ps_data_close(d);
}

/* ---- arguments --------------------------------------------------------- */

static void test_data_open_bad_args(void **st)
{
    fixture *f = *st;
    const char *p = put_text(f, "a.csv", "1,2\n");
    ps_data_cfg c = csv_cfg(p, -1, 0);
    ps_dataset *d = NULL;
    c.part = 2;
    c.parts = 2;
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_EINVAL);
    assert_null(d);
    c.part = 0;
    c.format = (ps_data_format)7;
    assert_int_equal(ps_data_open(&d, &c, NULL, 0), PS_EINVAL);
    c = csv_cfg(NULL, -1, 0);
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_EINVAL);
    assert_null(d);

    c = csv_cfg(p, -1, 0);
    assert_int_equal(ps_data_open(&d, &c, f->err, ERRLEN), PS_OK);
    ps_batch b;
    assert_int_equal(ps_data_next(d, &b, 0, f->err, ERRLEN), PS_EINVAL);
    ps_data_close(d);
    ps_data_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        T(test_data_next_idx_good),
        T(test_data_next_idx_batches_cross_max_rows),
        T(test_data_next_idx_gz_equals_plain),
        T(test_data_open_idx_labels_path),
        T(test_data_open_idx_bad_headers),
        T(test_data_next_idx_truncated_record),
        T(test_data_next_idx_parts_split),
        T(test_data_rewind_idx_same_rows),
        T(test_data_next_csv_good),
        T(test_data_next_csv_bad_rows),
        T(test_data_open_csv_bad),
        T(test_data_next_csv_truncated_gz),
        T(test_data_next_csv_parts_split),
        T(test_data_rewind_csv_same_rows),
        T(test_data_next_libsvm_good),
        T(test_data_next_libsvm_bad_rows),
        T(test_data_next_libsvm_batches_and_parts),
        T(test_data_rewind_libsvm_same_rows),
        T(test_data_open_bad_args),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
