/* Unit tests for server/table.c: defining tables (shard ranges, initial
 * values, idempotence, conflicts, bad specs, the memory limit), dense and
 * sparse pushes and pulls, dropping tables and iterating over them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "server/table.h"
#include "unit/ps_test.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RTOL 1e-6
#define LR 0.5f

/* Sparse growth is charged per step: the first row allocates an index of
 * 1024 slots (a uint64 key and a uint32 row each) and a chunk of 4096 rows;
 * the index doubles when it would pass 70% full (row 717). */
#define INDEX0_BYTES (1024u * (sizeof(uint64_t) + sizeof(uint32_t)))
#define CHUNK_ROWS 4096u

static ps_table_def dense_def(const char *job, const char *name, uint64_t len)
{
    ps_table_def d;
    memset(&d, 0, sizeof(d));
    d.job = job;
    d.name = name;
    d.kind = PS_TABLE_DENSE;
    d.len = len;
    d.init.kind = PS_INITK_UNIFORM;
    d.init.a = -1.0;
    d.init.b = 1.0;
    d.init.seed = 42;
    d.optim.kind = PS_OPTIM_SGD;
    d.optim.lr = LR;
    return d;
}

static ps_table_def sparse_def(const char *job, const char *name, uint32_t dim)
{
    ps_table_def d = dense_def(job, name, 0);
    d.kind = PS_TABLE_SPARSE;
    d.dim = dim;
    d.init.seed = 7;
    return d;
}

static ps_tables *new_store_rows(uint32_t shard, uint32_t nshards,
                                 uint64_t limit, uint64_t max_rows)
{
    ps_tables *ts = NULL;
    assert_int_equal(ps_tables_new(&ts, shard, nshards, limit, max_rows),
                     PS_OK);
    assert_non_null(ts);
    return ts;
}

static ps_tables *new_store(uint32_t shard, uint32_t nshards, uint64_t limit)
{
    return new_store_rows(shard, nshards, limit, 0);
}

static uint32_t define_ok(ps_tables *ts, const ps_table_def *d)
{
    char err[256] = "";
    uint32_t id = UINT32_MAX;
    int rc = ps_tables_define(ts, d, &id, err, sizeof(err));
    if (rc != PS_OK)
        fail_msg("define '%s' failed with %d: %s", d->name, rc, err);
    return id;
}

static ps_table_info info_of(ps_tables *ts, uint32_t id)
{
    ps_table_info info;
    memset(&info, 0, sizeof(info));
    assert_int_equal(ps_tables_info_at(ts, id, &info), 1);
    assert_int_equal(info.id, id);
    return info;
}

/* Whether err names `field` as a whole word ("len", not "length"). */
static int names_field(const char *err, const char *field)
{
    size_t n = strlen(field);
    for (const char *p = strstr(err, field); p != NULL;
         p = strstr(p + 1, field)) {
        int before =
            p == err || !(isalnum((unsigned char)p[-1]) || p[-1] == '_');
        int after = !(isalnum((unsigned char)p[n]) || p[n] == '_');
        if (before && after)
            return 1;
    }
    return 0;
}

static int setup(void **st)
{
    ps_tables *ts = NULL;
    if (ps_tables_new(&ts, 0, 1, 0, 0) != PS_OK)
        return -1;
    *st = ts;
    return 0;
}

static int teardown(void **st)
{
    ps_tables_free(*st);
    return 0;
}

/* ---- define ---- */

static void test_table_define_dense_shard_range_and_init(void **st)
{
    (void)st;
    enum { LEN = 31 };
    ps_tables *ts = new_store(1, 3, 0);
    ps_table_def d = dense_def("j", "w", LEN);
    uint32_t id = define_ok(ts, &d);
    ps_table *t = ps_tables_get(ts, id);
    assert_non_null(t);
    assert_int_equal(ps_table_kind(t), PS_TABLE_DENSE);

    uint64_t lo, hi;
    ps_table_range(t, &lo, &hi);
    assert_int_equal(lo, LEN / 3);     /* 10 */
    assert_int_equal(hi, 2 * LEN / 3); /* 20 */
    ps_table_info info = info_of(ts, id);
    assert_int_equal(info.lo, lo);
    assert_int_equal(info.hi, hi);
    assert_int_equal(info.len, LEN);
    assert_int_equal(info.kind, PS_TABLE_DENSE);
    assert_int_equal(info.bytes, (hi - lo) * sizeof(float));
    assert_int_equal(ps_tables_bytes(ts), (hi - lo) * sizeof(float));

    /* The values are the global elements lo..hi-1 of the init stream, the
     * same whichever shard holds them. */
    float got[LEN], want[LEN];
    ps_table_dense_read(t, lo, hi - lo, got);
    ps_init_fill(&d.init, 0, lo, want, (size_t)(hi - lo));
    for (size_t i = 0; i < hi - lo; i++)
        assert_true(got[i] == want[i]);
    /* ... and not those of the start of the stream. */
    ps_init_fill(&d.init, 0, 0, want, (size_t)(hi - lo));
    assert_true(memcmp(got, want, (size_t)(hi - lo) * sizeof(float)) != 0);
    ps_tables_free(ts);
}

static void test_table_define_same_spec_returns_same_id(void **st)
{
    ps_tables *ts = *st;
    ps_table_def d = dense_def("j", "w", 12);
    uint32_t id = define_ok(ts, &d);
    uint64_t bytes = ps_tables_bytes(ts);
    assert_int_equal(define_ok(ts, &d), id);
    assert_int_equal(ps_tables_slots(ts), 1);
    assert_int_equal(ps_tables_bytes(ts), bytes);

    /* Same name in another job, or another name: another table. */
    ps_table_def other_job = dense_def("k", "w", 12);
    ps_table_def other_name = dense_def("j", "v", 12);
    uint32_t id2 = define_ok(ts, &other_job);
    uint32_t id3 = define_ok(ts, &other_name);
    assert_int_not_equal(id2, id);
    assert_int_not_equal(id3, id);
    assert_int_not_equal(id3, id2);
    assert_int_equal(ps_tables_slots(ts), 3);
    assert_null(ps_tables_get(ts, 3));
    assert_null(ps_tables_get(ts, UINT32_MAX));

    ps_table_def s = sparse_def("j", "emb", 8);
    uint32_t sid = define_ok(ts, &s);
    assert_int_equal(define_ok(ts, &s), sid);
    assert_int_equal(ps_tables_slots(ts), 4);
}

static void test_table_define_conflict_names_field(void **st)
{
    ps_tables *ts = *st;
    ps_table_def dense = dense_def("j", "w", 12);
    dense.nshape = 2;
    dense.shape[0] = 3;
    dense.shape[1] = 4;
    ps_table_def sparse = sparse_def("j", "emb", 4);
    uint32_t did = define_ok(ts, &dense);
    uint32_t sid = define_ok(ts, &sparse);

    struct {
        ps_table_def d;
        const char *want;
    } cases[7];
    size_t n = 0;
    cases[n].d = dense; /* len 24 with shape 6x4 */
    cases[n].d.len = 24;
    cases[n].d.shape[0] = 6;
    cases[n++].want = "len";
    cases[n].d = sparse;
    cases[n].d.dim = 8;
    cases[n++].want = "dim";
    cases[n].d = dense;
    cases[n].d.shape[0] = 4;
    cases[n].d.shape[1] = 3;
    cases[n++].want = "shape";
    cases[n].d = dense;
    cases[n].d.init.seed = 43;
    cases[n++].want = "init";
    cases[n].d = sparse;
    cases[n].d.init.b = 2.0;
    cases[n++].want = "init";
    cases[n].d = dense;
    cases[n].d.optim.lr = 0.25f;
    cases[n++].want = "optimizer";
    cases[n].d = sparse;
    cases[n].d.kind = PS_TABLE_DENSE;
    cases[n].d.len = 4;
    cases[n++].want = "kind";

    for (size_t k = 0; k < n; k++) {
        char err[256] = "";
        uint32_t id = UINT32_MAX;
        int rc = ps_tables_define(ts, &cases[k].d, &id, err, sizeof(err));
        if (rc != PS_ECONFLICT || !names_field(err, cases[k].want))
            fail_msg("case %zu: rc %d err \"%s\", want ECONFLICT \"%s\"", k, rc,
                     err, cases[k].want);
        assert_int_equal(id, UINT32_MAX);
    }
    /* The originals are untouched. */
    assert_int_equal(ps_tables_slots(ts), 2);
    assert_int_equal(define_ok(ts, &dense), did);
    assert_int_equal(define_ok(ts, &sparse), sid);
    assert_int_equal(info_of(ts, did).len, 12);
    assert_int_equal(info_of(ts, sid).dim, 4);
}

static void test_table_define_ignores_other_kind_fields(void **st)
{
    ps_tables *ts = *st;
    ps_table_def dense = dense_def("j", "w", 6);
    dense.dim = 5;
    uint32_t did = define_ok(ts, &dense);
    assert_int_equal(info_of(ts, did).dim, 0);
    dense.dim = 0;
    assert_int_equal(define_ok(ts, &dense), did);
    dense.dim = 9;
    assert_int_equal(define_ok(ts, &dense), did);
    /* Shape entries past nshape are not part of the spec either. */
    dense.shape[3] = 77;
    assert_int_equal(define_ok(ts, &dense), did);

    ps_table_def sparse = sparse_def("j", "emb", 4);
    sparse.len = 7;
    sparse.nshape = 1;
    sparse.shape[0] = 7;
    uint32_t sid = define_ok(ts, &sparse);
    assert_int_equal(info_of(ts, sid).len, 0);
    sparse.len = 0;
    sparse.nshape = 0;
    sparse.shape[0] = 0;
    assert_int_equal(define_ok(ts, &sparse), sid);
    sparse.len = 1000;
    assert_int_equal(define_ok(ts, &sparse), sid);
    assert_int_equal(ps_tables_slots(ts), 2);
}

static void test_table_define_rejects_bad_spec(void **st)
{
    ps_tables *ts = *st;
    struct {
        ps_table_def d;
        const char *what;
    } cases[8];
    size_t n = 0;
    cases[n].d = dense_def("j", "w", 0);
    cases[n++].what = "dense len 0";
    cases[n].d = sparse_def("j", "w", 0);
    cases[n++].what = "sparse dim 0";
    cases[n].d = sparse_def("j", "w", PS_TABLE_MAX_DIM + 1);
    cases[n++].what = "sparse dim > PS_TABLE_MAX_DIM";
    cases[n].d = dense_def("j", "w", 12);
    cases[n].d.nshape = 2;
    cases[n].d.shape[0] = 3;
    cases[n].d.shape[1] = 5;
    cases[n++].what = "shape product 15 != len 12";
    cases[n].d = dense_def("j", "w", 1);
    cases[n].d.nshape = PS_TABLE_MAX_SHAPE + 1;
    cases[n++].what = "nshape > PS_TABLE_MAX_SHAPE";
    cases[n].d = dense_def("j", "w", 12);
    cases[n].d.optim.lr = 0;
    cases[n++].what = "lr 0";
    cases[n].d = sparse_def("j", "w", 4);
    cases[n].d.optim.lr = -1.0f;
    cases[n++].what = "lr -1";
    cases[n].d = dense_def("j", "", 12);
    cases[n++].what = "empty name";

    for (size_t k = 0; k < n; k++) {
        char err[256] = "";
        uint32_t id = UINT32_MAX;
        int rc = ps_tables_define(ts, &cases[k].d, &id, err, sizeof(err));
        if (rc != PS_EINVAL || err[0] == '\0')
            fail_msg("%s: rc %d err \"%s\", want EINVAL with a message",
                     cases[k].what, rc, err);
    }
    assert_int_equal(ps_tables_slots(ts), 0);
    assert_int_equal(ps_tables_bytes(ts), 0);

    /* The limits themselves are allowed. */
    ps_table_def d = sparse_def("j", "wide", PS_TABLE_MAX_DIM);
    define_ok(ts, &d);
    d = dense_def("j", "deep", 1);
    d.nshape = PS_TABLE_MAX_SHAPE;
    for (size_t i = 0; i < PS_TABLE_MAX_SHAPE; i++)
        d.shape[i] = 1;
    define_ok(ts, &d);
}

/* ---- memory limit ---- */

static void test_table_define_dense_over_memory_limit(void **st)
{
    (void)st;
    ps_tables *ts = new_store(0, 1, 100);
    char err[256] = "";
    uint32_t id = UINT32_MAX;

    ps_table_def big = dense_def("j", "big", 26); /* 104 bytes */
    assert_int_equal(ps_tables_define(ts, &big, &id, err, sizeof(err)),
                     PS_ENOMEM);
    assert_non_null(strstr(err, "--memory-limit"));
    assert_int_equal(ps_tables_slots(ts), 0);
    assert_int_equal(ps_tables_bytes(ts), 0);

    /* Optimizer state counts: 13 weights with momentum need 104 bytes. */
    ps_table_def mom = dense_def("j", "mom", 13);
    mom.optim.momentum = 0.9f;
    err[0] = '\0';
    assert_int_equal(ps_tables_define(ts, &mom, &id, err, sizeof(err)),
                     PS_ENOMEM);
    assert_non_null(strstr(err, "--memory-limit"));
    mom.len = 5; /* 40 bytes */
    define_ok(ts, &mom);
    assert_int_equal(ps_tables_bytes(ts), 40);

    /* Up to the limit exactly, then nothing more. */
    ps_table_def rest = dense_def("j", "rest", 15); /* 60 bytes */
    define_ok(ts, &rest);
    assert_int_equal(ps_tables_bytes(ts), 100);
    ps_table_def one = dense_def("j", "one", 1);
    err[0] = '\0';
    assert_int_equal(ps_tables_define(ts, &one, &id, err, sizeof(err)),
                     PS_ENOMEM);
    assert_non_null(strstr(err, "--memory-limit"));
    assert_int_equal(ps_tables_slots(ts), 2);

    /* Dropping gives the room back. */
    assert_int_equal(ps_tables_drop(ts, "j", "rest"), PS_OK);
    define_ok(ts, &one);
    assert_int_equal(ps_tables_bytes(ts), 44);
    ps_tables_free(ts);
}

static void test_table_sparse_push_over_memory_limit_unchanged(void **st)
{
    (void)st;
    enum { DIM = 4, NEW = 1000 };
    const uint64_t chunk_bytes = CHUNK_ROWS * DIM * sizeof(float);
    /* Room for the first index and chunk, not for the index to double. */
    const uint64_t limit = INDEX0_BYTES + chunk_bytes + 100;
    ps_tables *ts = new_store(0, 1, limit);
    ps_table_def d = sparse_def("j", "emb", DIM);
    uint32_t id = define_ok(ts, &d);
    ps_table *t = ps_tables_get(ts, id);
    assert_int_equal(ps_tables_bytes(ts), 0);

    const uint64_t first[2] = {1, 2};
    const float g0[2 * DIM] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_int_equal(ps_table_sparse_push(t, first, 2, g0, 1.0f, NULL), PS_OK);
    assert_int_equal(ps_tables_bytes(ts), INDEX0_BYTES + chunk_bytes);
    assert_int_equal(info_of(ts, id).rows, 2);

    /* Key 1 again plus NEW fresh keys: the index would have to grow. */
    uint64_t *keys = malloc((NEW + 1) * sizeof(*keys));
    float *g = malloc((NEW + 1) * DIM * sizeof(float));
    float *before = malloc((NEW + 1) * DIM * sizeof(float));
    float *after = malloc((NEW + 1) * DIM * sizeof(float));
    assert_true(keys && g && before && after);
    keys[0] = 1;
    for (size_t i = 1; i <= NEW; i++)
        keys[i] = 1000 + i;
    for (size_t i = 0; i < (NEW + 1) * DIM; i++)
        g[i] = 0.25f;
    ps_table_sparse_read(t, keys, NEW + 1, before);
    assert_int_equal(ps_table_sparse_push(t, keys, NEW + 1, g, 1.0f, NULL),
                     PS_ENOMEM);
    assert_true(ps_tables_bytes(ts) <= limit);
    ps_table_sparse_read(t, keys, NEW + 1, after);
    for (size_t i = 0; i < (NEW + 1) * DIM; i++)
        if (after[i] != before[i])
            fail_msg("key %llu col %zu changed: %.9g -> %.9g",
                     (unsigned long long)keys[i / DIM], i % DIM,
                     (double)before[i], (double)after[i]);

    /* Rows already there can still be pushed. */
    float out[DIM];
    assert_int_equal(ps_table_sparse_push(t, first, 1, g, 1.0f, out), PS_OK);
    for (size_t c = 0; c < DIM; c++)
        assert_near(out[c], before[c] - LR * 0.25f, RTOL);
    free(keys);
    free(g);
    free(before);
    free(after);
    ps_tables_free(ts);
}

/* --max-rows: a push or assign that would create rows past the limit is
 * refused whole (EFULL): no row created, no weight changed; new keys
 * repeated within one batch count once; filling up to the limit works. */
static void test_table_sparse_push_past_max_rows_unchanged(void **st)
{
    (void)st;
    enum { DIM = 2, MAX = 4 };
    ps_tables *ts = new_store_rows(0, 1, 0, MAX);
    ps_table_def d = sparse_def("j", "emb", DIM);
    ps_table *t = ps_tables_get(ts, define_ok(ts, &d));
    const uint64_t first[3] = {1, 2, 3};
    float g[5 * DIM];
    for (size_t i = 0; i < 5 * DIM; i++)
        g[i] = 1.0f;
    assert_int_equal(ps_table_sparse_push(t, first, 3, g, 1.0f, NULL), PS_OK);
    assert_int_equal(ps_table_rows(t), 3);

    /* Two new keys (4, 5) and an old one: one row too many. */
    const uint64_t over[3] = {1, 4, 5};
    float before[3 * DIM], after[3 * DIM];
    ps_table_sparse_read(t, over, 3, before);
    assert_int_equal(ps_table_sparse_push(t, over, 3, g, 1.0f, NULL), PS_EFULL);
    assert_int_equal(ps_table_sparse_assign(t, over, 3, g), PS_EFULL);
    assert_int_equal(ps_table_rows(t), 3);
    ps_table_sparse_read(t, over, 3, after);
    assert_memory_equal(before, after, sizeof(before));

    /* Key 4 five times is one new row: fits exactly. */
    const uint64_t same[5] = {4, 4, 4, 4, 4};
    assert_int_equal(ps_table_sparse_push(t, same, 5, g, 1.0f, NULL), PS_OK);
    assert_int_equal(ps_table_rows(t), MAX);
    /* Full: existing rows still take pushes, a new key does not. */
    assert_int_equal(ps_table_sparse_push(t, first, 3, g, 1.0f, NULL), PS_OK);
    const uint64_t fresh[1] = {99};
    assert_int_equal(ps_table_sparse_push(t, fresh, 1, g, 1.0f, NULL),
                     PS_EFULL);
    assert_int_equal(ps_table_rows(t), MAX);
    ps_tables_free(ts);
}

/* ---- push / pull ---- */

/* A push's lr_scale multiplies the table's learning rate for that push
 * only (dense and sparse). */
static void test_table_push_lr_scale(void **st)
{
    (void)st;
    ps_tables *ts = new_store(0, 1, 0);
    ps_table_def d = dense_def("j", "w", 4);
    ps_table *t = ps_tables_get(ts, define_ok(ts, &d));
    float before[4], after[4];
    const float g[4] = {1.0f, 1.0f, 1.0f, 1.0f};
    ps_table_dense_read(t, 0, 4, before);
    ps_table_dense_push(t, 0, 4, g, 0.25f, NULL);
    ps_table_dense_read(t, 0, 4, after);
    for (size_t i = 0; i < 4; i++)
        assert_near(after[i], before[i] - 0.25f * LR, RTOL);
    ps_table_dense_push(t, 0, 4, g, 1.0f, NULL); /* not sticky */
    ps_table_dense_read(t, 0, 4, before);
    for (size_t i = 0; i < 4; i++)
        assert_near(before[i], after[i] - LR, RTOL);
    ps_tables_free(ts);
}

static void test_table_dense_push_subrange_sgd(void **st)
{
    (void)st;
    enum { LEN = 31 };
    ps_tables *ts = new_store(1, 3, 0); /* holds [10, 20) */
    ps_table_def d = dense_def("j", "w", LEN);
    ps_table *t = ps_tables_get(ts, define_ok(ts, &d));
    float before[10], after[10], out[3];
    ps_table_dense_read(t, 10, 10, before);

    /* Global offset 12, count 3: local elements 2..4. */
    const float g[3] = {1.0f, 2.0f, -4.0f};
    memset(out, 0, sizeof(out));
    ps_table_dense_push(t, 12, 3, g, 1.0f, out);
    ps_table_dense_read(t, 10, 10, after);
    for (size_t i = 0; i < 10; i++) {
        if (i >= 2 && i < 5)
            assert_near(after[i], before[i] - LR * g[i - 2], RTOL);
        else
            assert_true(after[i] == before[i]);
    }
    for (size_t i = 0; i < 3; i++)
        assert_true(out[i] == after[2 + i]);

    /* A read of a sub-range sees the same; out may be NULL. */
    float mid[2];
    ps_table_dense_push(t, 19, 1, g, 1.0f, NULL);
    ps_table_dense_read(t, 18, 2, mid);
    assert_true(mid[0] == after[8]);
    assert_near(mid[1], before[9] - LR * g[0], RTOL);
    assert_int_equal(info_of(ts, 0).pushes, 2);
    ps_tables_free(ts);
}

static void test_table_dense_push_momentum_state_per_element(void **st)
{
    ps_tables *ts = *st;
    ps_table_def d = dense_def("j", "w", 8);
    d.init.kind = PS_INITK_ZEROS;
    d.optim.momentum = 0.5f;
    ps_table *t = ps_tables_get(ts, define_ok(ts, &d));
    const float one[2] = {1.0f, 1.0f};
    /* Element 4 gets two pushes, element 3 one: each has its own velocity
     * (state offset like the weights, not from the start of the block). */
    ps_table_dense_push(t, 4, 1, one, 1.0f, NULL); /* v4 = 1, w4 = -0.5 */
    ps_table_dense_push(t, 3, 2, one, 1.0f, NULL); /* v3 = 1, w3 = -0.5;
                                                v4 = 1.5, w4 = -1.25 */
    float w[8];
    ps_table_dense_read(t, 0, 8, w);
    assert_near(w[3], -0.5, RTOL);
    assert_near(w[4], -1.25, RTOL);
    for (size_t i = 0; i < 8; i++)
        if (i != 3 && i != 4)
            assert_true(w[i] == 0.0f);
}

static void test_table_sparse_push_creates_rows_pull_absent(void **st)
{
    ps_tables *ts = *st;
    enum { DIM = 3 };
    ps_table_def d = sparse_def("j", "emb", DIM);
    uint32_t id = define_ok(ts, &d);
    ps_table *t = ps_tables_get(ts, id);
    assert_int_equal(ps_table_kind(t), PS_TABLE_SPARSE);
    assert_int_equal(ps_table_dim(t), DIM);
    assert_int_equal(info_of(ts, id).rows, 0);

    /* A pull of an absent key gives its init row and stores nothing. */
    const uint64_t k42 = 42;
    float got[2 * DIM], init42[DIM], init7[DIM];
    ps_init_fill(&d.init, 42, 0, init42, DIM);
    ps_init_fill(&d.init, 7, 0, init7, DIM);
    assert_true(memcmp(init42, init7, sizeof(init7)) != 0);
    ps_table_sparse_read(t, &k42, 1, got);
    assert_true(memcmp(got, init42, sizeof(init42)) == 0);
    assert_int_equal(info_of(ts, id).rows, 0);
    assert_int_equal(info_of(ts, id).bytes, 0);

    const uint64_t keys[2] = {42, 7};
    const float g[2 * DIM] = {1, 2, 3, -1, -2, -3};
    float out[2 * DIM];
    assert_int_equal(ps_table_sparse_push(t, keys, 2, g, 1.0f, out), PS_OK);
    assert_int_equal(info_of(ts, id).rows, 2);
    assert_true(info_of(ts, id).bytes > 0);
    for (size_t c = 0; c < DIM; c++) {
        assert_near(out[c], init42[c] - LR * g[c], RTOL);
        assert_near(out[DIM + c], init7[c] - LR * g[DIM + c], RTOL);
    }
    ps_table_sparse_read(t, keys, 2, got);
    assert_true(memcmp(got, out, sizeof(out)) == 0);

    /* Another absent key: init values, still two rows. */
    const uint64_t k8 = 8;
    float init8[DIM];
    ps_init_fill(&d.init, 8, 0, init8, DIM);
    ps_table_sparse_read(t, &k8, 1, got);
    assert_true(memcmp(got, init8, sizeof(init8)) == 0);
    assert_int_equal(info_of(ts, id).rows, 2);

    /* Pushing a known key again adds no row. */
    assert_int_equal(ps_table_sparse_push(t, keys, 1, g, 1.0f, NULL), PS_OK);
    assert_int_equal(info_of(ts, id).rows, 2);
}

static void test_table_sparse_push_duplicate_keys_applied_twice(void **st)
{
    ps_tables *ts = *st;
    enum { DIM = 2 };
    ps_table_def d = sparse_def("j", "emb", DIM);
    uint32_t id = define_ok(ts, &d);
    ps_table *t = ps_tables_get(ts, id);
    float init5[DIM];
    ps_init_fill(&d.init, 5, 0, init5, DIM);

    const uint64_t keys[3] = {5, 9, 5};
    const float g[3 * DIM] = {1, 2, 10, 20, 0.5f, -4};
    float out[3 * DIM], w[DIM];
    assert_int_equal(ps_table_sparse_push(t, keys, 3, g, 1.0f, out), PS_OK);
    assert_int_equal(info_of(ts, id).rows, 2);
    ps_table_sparse_read(t, keys, 1, w);
    for (size_t c = 0; c < DIM; c++) {
        assert_near(w[c], init5[c] - LR * (g[c] + g[2 * DIM + c]), RTOL);
        /* out holds each copy's result in order. */
        assert_near(out[c], init5[c] - LR * g[c], RTOL);
        assert_true(out[2 * DIM + c] == w[c]);
    }
}

static void test_table_define_ftrl_nonzero_init_keeps_w(void **st)
{
    ps_tables *ts = *st;
    enum { LEN = 16, DIM = 4 };
    ps_table_def d = dense_def("j", "ftrl", LEN);
    d.optim.kind = PS_OPTIM_FTRL;
    d.optim.lr = 0.1f;
    d.optim.l1 = 0.05f;
    d.optim.l2 = 0.2f;
    ps_table *t = ps_tables_get(ts, define_ok(ts, &d));
    float init[LEN], w[LEN];
    ps_init_fill(&d.init, 0, 0, init, LEN);
    ps_table_dense_read(t, 0, LEN, w);
    assert_true(memcmp(w, init, sizeof(init)) == 0);
    /* A zero gradient recomputes w from the state: it must give w back,
     * not the 0 a zeroed state would give. */
    const float zero[LEN] = {0};
    ps_table_dense_push(t, 0, LEN, zero, 1.0f, NULL);
    ps_table_dense_read(t, 0, LEN, w);
    for (size_t i = 0; i < LEN; i++)
        assert_near(w[i], init[i], 1e-4);

    ps_table_def s = sparse_def("j", "ftrl_emb", DIM);
    s.init.kind = PS_INITK_CONSTANT;
    s.init.a = 0.5;
    s.optim = d.optim;
    t = ps_tables_get(ts, define_ok(ts, &s));
    const uint64_t key = 3;
    float out[DIM];
    assert_int_equal(ps_table_sparse_push(t, &key, 1, zero, 1.0f, out), PS_OK);
    for (size_t c = 0; c < DIM; c++)
        assert_near(out[c], 0.5, 1e-4);
}

/* ---- drop and iteration ---- */

static void test_table_drop_frees_bytes_id_not_reused(void **st)
{
    ps_tables *ts = *st;
    ps_table_def a = dense_def("j", "a", 10);
    ps_table_def b = sparse_def("j", "b", 2);
    uint32_t ida = define_ok(ts, &a);
    uint32_t idb = define_ok(ts, &b);
    assert_int_equal(ps_tables_bytes(ts), 40);
    const uint64_t key = 11;
    const float g[2] = {1, 1};
    assert_int_equal(
        ps_table_sparse_push(ps_tables_get(ts, idb), &key, 1, g, 1.0f, NULL), PS_OK);
    uint64_t with_b = ps_tables_bytes(ts);
    assert_true(with_b > 40);

    assert_int_equal(ps_tables_drop(ts, "j", "a"), PS_OK);
    assert_null(ps_tables_get(ts, ida));
    assert_int_equal(ps_tables_bytes(ts), with_b - 40);
    assert_int_equal(ps_tables_drop(ts, "j", "a"), PS_ENOTABLE);
    assert_int_equal(ps_tables_drop(ts, "k", "b"), PS_ENOTABLE);

    assert_int_equal(ps_tables_drop(ts, "j", "b"), PS_OK);
    assert_null(ps_tables_get(ts, idb));
    assert_int_equal(ps_tables_bytes(ts), 0);

    /* The same name again is a new table with a new id. */
    uint32_t ida2 = define_ok(ts, &a);
    assert_int_not_equal(ida2, ida);
    assert_int_not_equal(ida2, idb);
    assert_null(ps_tables_get(ts, ida));
    assert_non_null(ps_tables_get(ts, ida2));
    assert_int_equal(ps_tables_slots(ts), 3);
    assert_int_equal(ps_tables_bytes(ts), 40);
    assert_null(ps_tables_get(ts, 99));
}

static void test_table_drop_job_only_that_job(void **st)
{
    ps_tables *ts = *st;
    ps_table_def j1a = dense_def("j1", "a", 4);
    ps_table_def j2a = dense_def("j2", "a", 8);
    ps_table_def j1b = dense_def("j1", "b", 2);
    uint32_t id1a = define_ok(ts, &j1a);
    uint32_t id2a = define_ok(ts, &j2a);
    uint32_t id1b = define_ok(ts, &j1b);
    assert_int_equal(ps_tables_bytes(ts), 56);

    int dropped = -1;
    ps_tables_drop_job(ts, "j1", &dropped);
    assert_int_equal(dropped, 2);
    assert_null(ps_tables_get(ts, id1a));
    assert_null(ps_tables_get(ts, id1b));
    assert_non_null(ps_tables_get(ts, id2a));
    assert_int_equal(ps_tables_bytes(ts), 32);

    dropped = -1;
    ps_tables_drop_job(ts, "j1", &dropped);
    assert_int_equal(dropped, 0);
    dropped = -1;
    ps_tables_drop_job(ts, "nope", &dropped);
    assert_int_equal(dropped, 0);
    assert_non_null(ps_tables_get(ts, id2a));
}

static void test_table_info_at_skips_dropped(void **st)
{
    ps_tables *ts = *st;
    ps_table_def a = dense_def("j", "a", 4);
    ps_table_def b = dense_def("j", "b", 4);
    ps_table_def c = sparse_def("j", "c", 6);
    c.optim.kind = PS_OPTIM_ADAGRAD;
    define_ok(ts, &a);
    define_ok(ts, &b);
    define_ok(ts, &c);
    assert_int_equal(ps_tables_drop(ts, "j", "b"), PS_OK);
    assert_int_equal(ps_tables_slots(ts), 3);

    static const char *const want[] = {"a", NULL, "c"};
    size_t seen = 0;
    for (size_t i = 0; i < ps_tables_slots(ts); i++) {
        ps_table_info info;
        memset(&info, 0, sizeof(info));
        int have = ps_tables_info_at(ts, i, &info);
        if (want[i] == NULL) {
            assert_int_equal(have, 0);
            continue;
        }
        assert_int_equal(have, 1);
        assert_string_equal(info.name, want[i]);
        assert_string_equal(info.job, "j");
        assert_int_equal(info.id, i);
        seen++;
    }
    assert_int_equal(seen, 2);
    ps_table_info info = info_of(ts, 2);
    assert_int_equal(info.kind, PS_TABLE_SPARSE);
    assert_int_equal(info.dim, 6);
    assert_int_equal(info.optim, PS_OPTIM_ADAGRAD);
    assert_int_equal(ps_tables_info_at(ts, 3, &info), 0);
    assert_int_equal(ps_tables_info_at(ts, 1000, &info), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_define_dense_shard_range_and_init),
        T(test_table_define_same_spec_returns_same_id),
        T(test_table_define_conflict_names_field),
        T(test_table_define_ignores_other_kind_fields),
        T(test_table_define_rejects_bad_spec),
        cmocka_unit_test(test_table_define_dense_over_memory_limit),
        cmocka_unit_test(test_table_sparse_push_over_memory_limit_unchanged),
        cmocka_unit_test(test_table_sparse_push_past_max_rows_unchanged),
        cmocka_unit_test(test_table_dense_push_subrange_sgd),
        cmocka_unit_test(test_table_push_lr_scale),
        T(test_table_dense_push_momentum_state_per_element),
        T(test_table_sparse_push_creates_rows_pull_absent),
        T(test_table_sparse_push_duplicate_keys_applied_twice),
        T(test_table_define_ftrl_nonzero_init_keeps_w),
        T(test_table_drop_frees_bytes_id_not_reused),
        T(test_table_drop_job_only_that_job),
        T(test_table_info_at_skips_dropped),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
