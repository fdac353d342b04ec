/* Unit tests for the checkpoint format (server/checkpoint.c), its files
 * (server/ckpt_dir.c) and the forked writer (server/ckpt_saver.c): a round
 * trip of dense and sparse tables under every optimizer with workers and
 * dedup windows; every kind of damage refused with its reason; another
 * format version refused; falling back to the previous valid checkpoint;
 * keeping the newest K; identity checks; and mutated checkpoints fed to the
 * loader, which must refuse or load them without a crash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/partition.h"
#include "common/rng.h"
#include "common/sparkps_err.h"
#include "server/checkpoint.h"
#include "server/ckpt_dir.h"
#include "server/ckpt_saver.h"
#include "unit/ps_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SHARD 1u
#define SHARDS 2u
#define CLUSTER "ckpt-test"
#define DENSE_LEN 1000u
#define DIM 3u
#define NKEYS 40
#define NOW_MS 1000000
#define MUTATIONS 3000

/* One shard's state, as the server holds it. */
typedef struct shard {
    ps_tables *tables;
    ps_dedup *dedup;
    ps_consist *consist;
    ps_history *history;
    uint32_t ids[6]; /* tables defined by fill(); ids[2] was dropped */
} shard;

typedef struct fx {
    char dir[64];
    shard a; /* the original */
} fx;

static void shard_new(shard *s)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(ps_tables_new(&s->tables, SHARD, SHARDS, 0, 0), PS_OK);
    assert_int_equal(ps_dedup_new(&s->dedup, 1024), PS_OK);
    ps_consist_cfg cc = {PS_CONS_SSP, 2, 0, 10000};
    assert_int_equal(ps_consist_new(&s->consist, &cc, 0), PS_OK);
    assert_int_equal(
        ps_history_new(&s->history, PS_HISTORY_PER_WORKER, PS_HISTORY_TOTAL),
        PS_OK);
}

static void shard_free(shard *s)
{
    ps_tables_free(s->tables);
    ps_dedup_free(s->dedup);
    ps_consist_free(s->consist);
    ps_history_free(s->history);
    memset(s, 0, sizeof(*s));
}

static ps_ckpt_state state_of(shard *s)
{
    return (ps_ckpt_state){CLUSTER,  SHARD,      SHARDS,    s->tables,
                           s->dedup, s->consist, s->history};
}

static ps_table_def def(const char *name, int kind, int optim)
{
    ps_table_def d;
    memset(&d, 0, sizeof(d));
    d.job = "job";
    d.name = name;
    d.kind = kind;
    if (kind == PS_TABLE_DENSE) {
        d.len = DENSE_LEN;
        d.shape[0] = 10;
        d.shape[1] = 100;
        d.nshape = 2;
    } else {
        d.dim = DIM;
    }
    d.init.kind = PS_INITK_UNIFORM;
    d.init.a = -0.5;
    d.init.b = 0.5;
    d.init.seed = 11;
    d.optim.kind = optim;
    d.optim.lr = 0.1f;
    if (optim == PS_OPTIM_SGD)
        d.optim.momentum = 0.9f;
    if (optim == PS_OPTIM_FTRL) {
        d.optim.l1 = 0.01f;
        d.optim.l2 = 0.1f;
    }
    d.meta = "model=test";
    return d;
}

/* Keys of this shard. */
static void shard_keys(uint64_t *keys, size_t n)
{
    size_t m = 0;
    for (uint64_t k = 1; m < n; k++) {
        uint64_t key = ps_mix64(k);
        if (ps_key_shard(key, SHARDS) == SHARD)
            keys[m++] = key;
    }
}

/* Pushes `rounds` gradients to every table so optimizer state moves. */
static void train(shard *s, int rounds, float scale)
{
    uint64_t keys[NKEYS];
    shard_keys(keys, NKEYS);
    float g[DENSE_LEN];
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < DENSE_LEN; i++)
            g[i] = scale * (float)((int)((i * 7 + (size_t)r) % 11) - 5) / 10;
        for (uint32_t t = 0; t < ps_tables_slots(s->tables); t++) {
            ps_table *tab = ps_tables_get(s->tables, t);
            if (tab == NULL)
                continue;
            if (ps_table_kind(tab) == PS_TABLE_DENSE) {
                uint64_t lo, hi;
                ps_table_range(tab, &lo, &hi);
                ps_table_dense_push(tab, lo + 1, hi - lo - 1, g, 1.0f, NULL);
            } else {
                assert_int_equal(ps_table_sparse_push(tab, keys + r % 3,
                                                      NKEYS - 3, g, 0.5f, NULL),
                                 PS_OK);
            }
        }
    }
}

/* Tables under every optimizer, dense and sparse, one dropped (a hole in
 * the ids), workers with clocks, progress and history, two dedup clients. */
static void fill(shard *s)
{
    char err[256];
    static const struct {
        const char *name;
        int kind, optim;
    } spec[6] = {{"d.sgd", PS_TABLE_DENSE, PS_OPTIM_SGD},
                 {"d.adam", PS_TABLE_DENSE, PS_OPTIM_ADAM},
                 {"dropped", PS_TABLE_DENSE, PS_OPTIM_SGD},
                 {"s.adagrad", PS_TABLE_SPARSE, PS_OPTIM_ADAGRAD},
                 {"s.ftrl", PS_TABLE_SPARSE, PS_OPTIM_FTRL},
                 {"s.adam", PS_TABLE_SPARSE, PS_OPTIM_ADAM}};
    for (int i = 0; i < 6; i++) {
        ps_table_def d = def(spec[i].name, spec[i].kind, spec[i].optim);
        assert_int_equal(
            ps_tables_define(s->tables, &d, &s->ids[i], err, sizeof(err)),
            PS_OK);
    }
    assert_int_equal(ps_tables_drop(s->tables, "job", "dropped"), PS_OK);
    train(s, 5, 1.0f);
    uint64_t keys[NKEYS];
    shard_keys(keys, NKEYS);
    float row[DIM];
    ps_table_sparse_read(ps_tables_get(s->tables, s->ids[3]), keys, 1, row);

    for (uint32_t w = 0; w < 3; w++) {
        assert_int_equal(ps_consist_touch(s->consist, w * 2, 0), PS_OK);
        uint32_t before;
        assert_int_equal(ps_consist_admit(s->consist, w * 2, 7 + w, 0, &before),
                         PS_OK);
        ps_consist_set_clock(s->consist, w * 2, 10 + w);
        ps_consist_set_progress(s->consist, w * 2, 1000 * w, 0.5 / (w + 1),
                                w + 1, 0.25 * w);
        for (uint32_t e = 1; e <= w + 1; e++) {
            ps_epoch_eval ev = {e,   100 * e, 0.1 * e, 0.8,
                                0.2, 0.7,     NAN,     1700000000000LL + e};
            assert_int_equal(ps_history_add(s->history, w * 2, &ev),
                             PS_HISTORY_ADDED);
        }
    }
    for (uint64_t seq = 1; seq <= 5000; seq++)
        assert_int_equal(ps_dedup_record(s->dedup, 0xabc, seq, PS_OK), PS_OK);
    assert_int_equal(ps_dedup_record(s->dedup, 0xdef, 7, PS_OK), PS_OK);
}

static int setup(void **state)
{
    fx *x = calloc(1, sizeof(*x));
    assert_int_equal(ps_test_mkdtemp(x->dir, sizeof(x->dir), "ckpt"), 0);
    shard_new(&x->a);
    fill(&x->a);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    shard_free(&x->a);
    ps_test_rmtree(x->dir);
    free(x);
    return 0;
}

/* Writes s as checkpoint seq into dir/shard-1-<seq>.ckpt; returns its path
 * in path (PS_CKPT_PATH_MAX). */
static void write_ckpt(const char *dir, shard *s, uint64_t seq, int keep,
                       char *path)
{
    ps_ckdir *d;
    char err[512];
    assert_int_equal(ps_ckdir_open(&d, dir, SHARD, keep, err, sizeof(err)),
                     PS_OK);
    while (ps_ckdir_next_seq(d) < seq)
        ;
    ps_ckpt_state st = state_of(s);
    uint64_t bytes = 0;
    int rc =
        ps_ckdir_write(d, seq, &st, NOW_MS, path, &bytes, err, sizeof(err));
    if (rc != PS_OK)
        print_error("%s\n", err);
    assert_int_equal(rc, PS_OK);
    assert_true(bytes > 2 * DENSE_LEN * sizeof(float));
    ps_ckdir_free(d);
}

static unsigned char *slurp(const char *path, size_t *len);

/* Writes x's shard as checkpoint 1 and returns the file's bytes. */
static unsigned char *ckpt_bytes(fx *x, size_t *len)
{
    char path[PS_CKPT_PATH_MAX];
    write_ckpt(x->dir, &x->a, 1, 3, path);
    return slurp(path, len);
}

/* ps_ckpt_load() of buf into a fresh shard, discarded after. */
static int load_fresh(const void *buf, size_t len, char *err, size_t errlen)
{
    shard b;
    shard_new(&b);
    ps_ckpt_state st = state_of(&b);
    int rc = ps_ckpt_load(buf, len, &st, NOW_MS, err, errlen);
    shard_free(&b);
    return rc;
}

static unsigned char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
}

/* Loads the checkpoint in path into a fresh shard b. */
static void load_into(const char *path, shard *b)
{
    ps_ckpt_pick pick;
    char err[1024];
    int rc = ps_ckpt_pick_source(path, SHARD, SHARDS, CLUSTER, &pick, err,
                                 sizeof(err));
    if (rc != PS_OK)
        print_error("%s\n", err);
    assert_int_equal(rc, PS_OK);
    shard_new(b);
    ps_ckpt_state st = state_of(b);
    rc = ps_ckpt_load(pick.buf, pick.len, &st, NOW_MS, err, sizeof(err));
    if (rc != PS_OK)
        print_error("%s\n", err);
    assert_int_equal(rc, PS_OK);
    ps_ckpt_pick_release(&pick);
}

static void assert_tables_equal(shard *a, shard *b)
{
    assert_int_equal(ps_tables_slots(a->tables), ps_tables_slots(b->tables));
    assert_int_equal(ps_tables_bytes(a->tables), ps_tables_bytes(b->tables));
    for (uint32_t id = 0; id < ps_tables_slots(a->tables); id++) {
        ps_table *x = ps_tables_get(a->tables, id);
        ps_table *y = ps_tables_get(b->tables, id);
        assert_true((x == NULL) == (y == NULL));
        if (x == NULL)
            continue;
        const ps_table_def *dx = ps_table_spec(x), *dy = ps_table_spec(y);
        assert_string_equal(dx->job, dy->job);
        assert_string_equal(dx->name, dy->name);
        assert_string_equal(dx->meta, dy->meta);
        assert_int_equal(dx->kind, dy->kind);
        assert_int_equal(dx->len, dy->len);
        assert_int_equal(dx->dim, dy->dim);
        assert_int_equal(dx->nshape, dy->nshape);
        assert_memory_equal(dx->shape, dy->shape, sizeof(dx->shape));
        assert_memory_equal(&dx->init, &dy->init, sizeof(dx->init));
        assert_memory_equal(&dx->optim, &dy->optim, sizeof(dx->optim));
        uint64_t c1[3], c2[3];
        ps_table_counters(x, &c1[0], &c1[1], &c1[2]);
        ps_table_counters(y, &c2[0], &c2[1], &c2[2]);
        assert_memory_equal(c1, c2, sizeof(c1));
        if (dx->kind == PS_TABLE_DENSE) {
            size_t n1, n2;
            float *b1 = ps_table_dense_block(x, &n1);
            float *b2 = ps_table_dense_block(y, &n2);
            assert_int_equal(n1, n2);
            assert_memory_equal(b1, b2, n1 * sizeof(float));
            continue;
        }
        assert_int_equal(ps_table_rows(x), ps_table_rows(y));
        size_t rf = dx->dim * (size_t)(1 + ps_table_state_width(x));
        uint64_t cur = 0, key;
        const float *row;
        float *other = malloc(rf * sizeof(float));
        while (ps_table_sparse_next(x, &cur, &key, &row)) {
            /* The row of the same key in y: its position may differ. */
            uint64_t c = 0, k2;
            const float *r2 = NULL;
            while (ps_table_sparse_next(y, &c, &k2, &r2) && k2 != key)
                r2 = NULL;
            assert_non_null(r2);
            memcpy(other, r2, rf * sizeof(float));
            assert_memory_equal(row, other, rf * sizeof(float));
        }
        free(other);
    }
}

static void test_checkpoint_round_trip_restores_everything(void **state)
{
    fx *x = *state;
    char path[PS_CKPT_PATH_MAX];
    write_ckpt(x->dir, &x->a, 1, 3, path);
    shard b;
    load_into(path, &b);
    assert_tables_equal(&x->a, &b);

    /* Workers: clocks, progress and history; alive again. */
    for (size_t i = 0; i < 3; i++) {
        const ps_worker_state *w1 = ps_consist_worker_at(x->a.consist, i);
        const ps_worker_state *w2 = ps_consist_worker_at(b.consist, i);
        assert_non_null(w2);
        assert_int_equal(w1->id, w2->id);
        assert_int_equal(w1->clock, w2->clock);
        assert_int_equal(w2->attempt, 7 + i); /* stale attempts stay refused */
        assert_int_equal(w1->samples, w2->samples);
        assert_int_equal(w1->epoch, w2->epoch);
        assert_true(w1->loss == w2->loss && w1->accuracy == w2->accuracy);
        assert_true(w2->alive);
        assert_int_equal(w2->last_seen_ms, NOW_MS);
        assert_int_equal(ps_history_len(b.history, w2->id), i + 1);
        for (size_t k = 0; k <= i; k++) {
            const ps_epoch_eval *e1 = ps_history_at(x->a.history, w1->id, k);
            const ps_epoch_eval *e2 = ps_history_at(b.history, w2->id, k);
            assert_int_equal(e1->epoch, e2->epoch);
            assert_int_equal(e1->time_ms, e2->time_ms);
            assert_true(e1->loss == e2->loss && isnan(e2->auc));
        }
    }
    assert_null(ps_consist_worker_at(b.consist, 3));
    assert_int_equal(ps_consist_min_clock(b.consist), 10);

    /* Dedup: recorded pushes are duplicates, the window's edge is kept. */
    int st = -1;
    assert_int_equal(ps_dedup_check(b.dedup, 0xabc, 5000, &st), PS_DEDUP_DUP);
    assert_int_equal(st, PS_OK);
    assert_int_equal(
        ps_dedup_check(b.dedup, 0xabc, 5000 - PS_DEDUP_WINDOW + 1, &st),
        PS_DEDUP_DUP);
    assert_int_equal(
        ps_dedup_check(b.dedup, 0xabc, 5000 - PS_DEDUP_WINDOW, &st),
        PS_DEDUP_STALE);
    assert_int_equal(ps_dedup_check(b.dedup, 0xabc, 5001, &st), PS_DEDUP_NEW);
    assert_int_equal(ps_dedup_check(b.dedup, 0xdef, 7, &st), PS_DEDUP_DUP);
    assert_int_equal(ps_dedup_check(b.dedup, 0xdef, 8, &st), PS_DEDUP_NEW);

    /* The optimizer state came back: the same pushes give the same
     * weights (Adam's step counts, momentum, accumulators, FTRL z/n). */
    train(&x->a, 3, -0.7f);
    train(&b, 3, -0.7f);
    assert_tables_equal(&x->a, &b);

    /* The restored store goes on handing out fresh ids after the last. */
    ps_table_def d = def("new", PS_TABLE_DENSE, PS_OPTIM_SGD);
    uint32_t id;
    char err[256];
    assert_int_equal(ps_tables_define(b.tables, &d, &id, err, sizeof(err)),
                     PS_OK);
    assert_int_equal(id, 6);
    shard_free(&b);
}

/* The same table twice, or an id taken, is refused by define_at. */
static void test_checkpoint_define_at_refuses_taken(void **state)
{
    fx *x = *state;
    char err[256];
    ps_table_def d = def("d.sgd", PS_TABLE_DENSE, PS_OPTIM_SGD);
    assert_int_equal(ps_tables_define_at(x->a.tables, &d, 9, err, sizeof(err)),
                     PS_ECONFLICT);
    d.name = "other";
    assert_int_equal(ps_tables_define_at(x->a.tables, &d, 0, err, sizeof(err)),
                     PS_ECONFLICT);
    assert_int_equal(ps_tables_define_at(x->a.tables, &d, 9, err, sizeof(err)),
                     PS_OK);
    assert_non_null(ps_tables_get(x->a.tables, 9));
    assert_null(ps_tables_get(x->a.tables, 7));
}

/* Verifies buf and expects code and a reason containing `want`. */
static void expect_refused(const void *buf, size_t len, int code,
                           const char *want)
{
    ps_ckpt_meta m;
    char err[512] = "";
    static const unsigned char none = 0;
    int rc = ps_ckpt_verify(len ? buf : &none, len, &m, err, sizeof(err));
    if (rc != code || strstr(err, want) == NULL)
        print_error("got %d '%s', want %d '%s'\n", rc, err, code, want);
    assert_int_equal(rc, code);
    assert_non_null(strstr(err, want));
}

static void test_checkpoint_damage_refused_with_reason(void **state)
{
    fx *x = *state;
    char path[PS_CKPT_PATH_MAX];
    write_ckpt(x->dir, &x->a, 1, 3, path);
    size_t len;
    unsigned char *buf = slurp(path, &len);
    ps_ckpt_meta m;
    char err[512];
    assert_int_equal(ps_ckpt_verify(buf, len, &m, err, sizeof(err)), PS_OK);
    assert_string_equal(m.cluster_id, CLUSTER);
    assert_int_equal(m.shard, SHARD);
    assert_int_equal(m.shards, SHARDS);
    assert_int_equal(m.seq, 1);
    assert_int_equal(m.time_ms, NOW_MS);

    /* One flipped bit anywhere in the body: checksum. */
    size_t spots[] = {16, 40, len / 2, len - 17};
    for (size_t i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
        buf[spots[i]] ^= 0x10;
        expect_refused(buf, len, PS_EPROTO, "checksum mismatch");
        buf[spots[i]] ^= 0x10;
    }
    /* Cut short anywhere: truncated. */
    size_t cuts[] = {0, 5, 12, 20, len / 3, len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        expect_refused(buf, cuts[i], PS_EPROTO, "truncated");
    /* Garbage appended: the trailer is not at the end. */
    unsigned char *longer = malloc(len + 3);
    memcpy(longer, buf, len);
    memcpy(longer + len, "xyz", 3);
    expect_refused(longer, len + 3, PS_EPROTO, "truncated or damaged");
    free(longer);
    /* Wrong magic. */
    buf[0] = 'X';
    expect_refused(buf, len, PS_EPROTO, "not a sparkps checkpoint");
    buf[0] = 'S';
    /* Another format version, refused as such before the checksum. */
    buf[8] = 2;
    expect_refused(buf, len, PS_EVERSION, "format version 2");
    buf[8] = 1;
    assert_int_equal(ps_ckpt_verify(buf, len, &m, err, sizeof(err)), PS_OK);
    free(buf);
}

/* Through files: the refusal names the file and its reason. */
static void test_checkpoint_pick_file_names_file_and_reason(void **state)
{
    fx *x = *state;
    char path[PS_CKPT_PATH_MAX], err[1024];
    write_ckpt(x->dir, &x->a, 1, 3, path);
    size_t len;
    unsigned char *buf = slurp(path, &len);
    buf[len / 2] ^= 1;
    spit(path, buf, len);
    free(buf);
    ps_ckpt_pick pick;
    assert_int_equal(
        ps_ckpt_pick_source(path, SHARD, SHARDS, NULL, &pick, err, sizeof(err)),
        PS_EPROTO);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "checksum mismatch"));
    char missing[PS_CKPT_PATH_MAX + 16];
    snprintf(missing, sizeof(missing), "%s/none", x->dir);
    assert_int_equal(ps_ckpt_pick_source(missing, SHARD, SHARDS, NULL, &pick,
                                         err, sizeof(err)),
                     PS_EIO);
    assert_true(pick.none);
    assert_non_null(strstr(err, "no such directory"));
}

/* A checkpoint whose path is too long to keep in the pick is refused by
 * its length, not opened under a path cut short. */
static void test_checkpoint_pick_refuses_overlong_path(void **state)
{
    fx *x = *state;
    static const char part[] = "/dddddddddddddddddddddddddddddddddddddddddddddd"
                               "dddddddddddddddddddddddddddddddddddddddddddddd"
                               "dddddddddddddddddddddddddddddddddddddddddddddd";
    char dir[2 * PS_CKPT_PATH_MAX], file[PS_CKPT_PATH_MAX], err[1024];
    char target[3 * PS_CKPT_PATH_MAX];
    size_t n = (size_t)snprintf(dir, sizeof(dir), "%s", x->dir), len;
    while (n < PS_CKPT_PATH_MAX) { /* of components a name may be */
        n += (size_t)snprintf(dir + n, sizeof(dir) - n, "%s", part);
        assert_int_equal(mkdir(dir, 0700), 0);
    }
    write_ckpt(x->dir, &x->a, 1, 3, file);
    unsigned char *buf = slurp(file, &len);
    snprintf(target, sizeof(target), "%s%s", dir, strrchr(file, '/'));
    assert_true(strlen(target) >= PS_CKPT_PATH_MAX);
    spit(target, buf, len);
    free(buf);
    ps_ckpt_pick pick;
    assert_int_equal(ps_ckpt_pick_source(target, SHARD, SHARDS, NULL, &pick,
                                         err, sizeof(err)),
                     PS_EINVAL);
    assert_non_null(strstr(err, "is longer than 1023"));
}

/* The newest checkpoint is damaged: the previous one is restored. */
static void test_checkpoint_dir_falls_back_to_previous_valid(void **state)
{
    fx *x = *state;
    char p1[PS_CKPT_PATH_MAX], p2[PS_CKPT_PATH_MAX], p3[PS_CKPT_PATH_MAX];
    write_ckpt(x->dir, &x->a, 1, 10, p1);
    train(&x->a, 1, 0.3f);
    write_ckpt(x->dir, &x->a, 2, 10, p2);
    shard at2;
    load_into(p2, &at2);
    train(&x->a, 1, 0.3f);
    write_ckpt(x->dir, &x->a, 3, 10, p3);
    /* Damage the newest: truncate it. */
    size_t len;
    unsigned char *buf = slurp(p3, &len);
    spit(p3, buf, len / 2);
    free(buf);

    ps_ckpt_pick pick;
    char err[1024];
    assert_int_equal(ps_ckpt_pick_source(x->dir, SHARD, SHARDS, CLUSTER, &pick,
                                         err, sizeof(err)),
                     PS_OK);
    assert_string_equal(pick.path, p2);
    assert_int_equal(pick.meta.seq, 2);
    assert_int_equal(pick.skipped, 1);
    shard b;
    shard_new(&b);
    ps_ckpt_state st = state_of(&b);
    assert_int_equal(
        ps_ckpt_load(pick.buf, pick.len, &st, NOW_MS, err, sizeof(err)), PS_OK);
    ps_ckpt_pick_release(&pick);
    assert_tables_equal(&at2, &b);
    shard_free(&b);
    shard_free(&at2);

    /* Every one damaged: an error naming the directory. */
    for (int i = 0; i < 2; i++) {
        const char *p = i ? p1 : p2;
        buf = slurp(p, &len);
        buf[0] = 'Z';
        spit(p, buf, len);
        free(buf);
    }
    assert_int_equal(ps_ckpt_pick_source(x->dir, SHARD, SHARDS, CLUSTER, &pick,
                                         err, sizeof(err)),
                     PS_EIO);
    assert_false(pick.none);
    assert_non_null(strstr(err, "none of the 3 checkpoint(s)"));
    assert_non_null(strstr(err, x->dir));
}

/* A checkpoint of another shard, shard count or cluster is refused, not
 * skipped; an empty directory has none. */
static void test_checkpoint_identity_mismatch_refused(void **state)
{
    fx *x = *state;
    char path[PS_CKPT_PATH_MAX], err[1024];
    ps_ckpt_pick pick;
    assert_int_equal(ps_ckpt_pick_source(x->dir, SHARD, SHARDS, NULL, &pick,
                                         err, sizeof(err)),
                     PS_EIO);
    assert_true(pick.none);
    write_ckpt(x->dir, &x->a, 1, 3, path);
    assert_int_equal(
        ps_ckpt_pick_source(path, 0, SHARDS, NULL, &pick, err, sizeof(err)),
        PS_EMISMATCH);
    assert_non_null(strstr(err, "shard 1 of 2"));
    assert_non_null(strstr(err, "shard 0 of 2"));
    assert_int_equal(
        ps_ckpt_pick_source(path, SHARD, 3, NULL, &pick, err, sizeof(err)),
        PS_EMISMATCH);
    assert_non_null(strstr(err, "shard 1 of 3"));
    assert_int_equal(ps_ckpt_pick_source(x->dir, SHARD, SHARDS, "other", &pick,
                                         err, sizeof(err)),
                     PS_EMISMATCH);
    assert_non_null(strstr(err, "cluster 'ckpt-test'"));
    /* A directory of another shard's files says so. */
    assert_int_equal(
        ps_ckpt_pick_source(x->dir, 0, SHARDS, NULL, &pick, err, sizeof(err)),
        PS_EIO);
    assert_true(pick.none);
    assert_non_null(strstr(err, "no checkpoint of shard 0"));

    /* Loading into a store of another layout is refused too. */
    size_t len;
    unsigned char *buf = slurp(path, &len);
    shard b;
    shard_new(&b);
    ps_ckpt_state st = state_of(&b);
    st.shard = 0;
    assert_int_equal(ps_ckpt_load(buf, len, &st, NOW_MS, err, sizeof(err)),
                     PS_EPROTO);
    assert_non_null(strstr(err, "written by shard 1 of 2"));
    shard_free(&b);
    free(buf);
}

static size_t count_files(const char *dir, const char *suffix)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls -a '%s' | grep -c '%s$'", dir, suffix);
    FILE *p = popen(cmd, "r");
    unsigned n = 0;
    assert_int_equal(fscanf(p, "%u", &n), 1);
    pclose(p);
    return n;
}

/* The saver writes in a child (and inline), numbers go up, only the newest
 * K stay, and a leftover temp file goes at the next open. */
static void test_checkpoint_saver_keeps_newest_k(void **state)
{
    fx *x = *state;
    char tmp[PS_CKPT_PATH_MAX + 64], err[512];
    snprintf(tmp, sizeof(tmp), "%s/.shard-1-0000000009.ckpt.tmp", x->dir);
    spit(tmp, "partial", 7);
    ps_ckdir *d;
    assert_int_equal(ps_ckdir_open(&d, x->dir, SHARD, 2, err, sizeof(err)),
                     PS_OK);
    assert_int_equal(count_files(x->dir, ".tmp"), 0);
    ps_saver *sv;
    assert_int_equal(ps_saver_new(&sv, d), PS_OK);
    ps_ckpt_state st = state_of(&x->a);
    ps_ckpt_result res;
    for (int i = 1; i <= 5; i++) {
        int background = i % 2;
        assert_int_equal(ps_saver_start(sv, &st, background), PS_OK);
        assert_true(ps_saver_busy(sv));
        assert_int_equal(ps_saver_start(sv, &st, background), PS_EINVAL);
        assert_int_equal(ps_saver_collect(sv, 1, &res), 1);
        assert_int_equal(res.status, PS_OK);
        char want[64];
        snprintf(want, sizeof(want), "shard-1-%010d.ckpt", i);
        assert_non_null(strstr(res.file, want));
        assert_true(res.bytes > 0 && res.time_ms > 0);
        assert_false(ps_saver_busy(sv));
        assert_int_equal(ps_saver_collect(sv, 0, &res), 0);
    }
    assert_int_equal(count_files(x->dir, ".ckpt"), 2);
    ps_ckpt_pick pick;
    assert_int_equal(ps_ckpt_pick_source(x->dir, SHARD, SHARDS, CLUSTER, &pick,
                                         err, sizeof(err)),
                     PS_OK);
    assert_int_equal(pick.meta.seq, 5);
    ps_ckpt_pick_release(&pick);
    ps_saver_free(sv);
    ps_ckdir_free(d);
    /* Numbering continues after a reopen. */
    assert_int_equal(ps_ckdir_open(&d, x->dir, SHARD, 2, err, sizeof(err)),
                     PS_OK);
    assert_int_equal(ps_ckdir_next_seq(d), 6);
    ps_ckdir_free(d);
}

/* A write that cannot finish reports the step and the reason. */
static void test_checkpoint_write_failure_reported(void **state)
{
    fx *x = *state;
    ps_ckdir *d;
    char err[512], file[PS_CKPT_PATH_MAX];
    assert_int_equal(ps_ckdir_open(&d, x->dir, SHARD, 2, err, sizeof(err)),
                     PS_OK);
    /* A directory where the temp file should go. */
    char blocker[PS_CKPT_PATH_MAX + 64];
    snprintf(blocker, sizeof(blocker), "%s/.shard-1-0000000001.ckpt.tmp",
             x->dir);
    assert_int_equal(mkdir(blocker, 0755), 0);
    ps_ckpt_state st = state_of(&x->a);
    uint64_t bytes;
    assert_int_equal(ps_ckdir_write(d, ps_ckdir_next_seq(d), &st, NOW_MS, file,
                                    &bytes, err, sizeof(err)),
                     PS_EIO);
    assert_non_null(strstr(err, "cannot create"));
    assert_non_null(strstr(err, blocker));
    rmdir(blocker);
    ps_ckdir_free(d);
    /* And writing to a descriptor that refuses. */
    int fd = open("/dev/full", O_WRONLY);
    if (fd >= 0) {
        assert_int_equal(
            ps_ckpt_write(fd, &st, NOW_MS, 1, &bytes, err, sizeof(err)),
            PS_EIO);
        assert_non_null(strstr(err, "write failed"));
        close(fd);
    }
}

static void test_checkpoint_dir_open_bad_paths(void **state)
{
    fx *x = *state;
    ps_ckdir *d = NULL;
    char err[512], file[PS_CKPT_PATH_MAX + 16];
    snprintf(file, sizeof(file), "%s/afile", x->dir);
    spit(file, "x", 1);
    assert_int_equal(ps_ckdir_open(&d, file, 0, 3, err, sizeof(err)), PS_EIO);
    assert_non_null(strstr(err, "not a directory"));
    char deep[PS_CKPT_PATH_MAX + 32];
    snprintf(deep, sizeof(deep), "%s/no/such", x->dir);
    assert_int_equal(ps_ckdir_open(&d, deep, 0, 3, err, sizeof(err)), PS_EIO);
    assert_non_null(strstr(err, "cannot create"));
    assert_non_null(strstr(err, deep));
    assert_int_equal(ps_ckdir_open(&d, x->dir, 0, 0, err, sizeof(err)),
                     PS_EINVAL);
    assert_int_equal(ps_ckdir_open(&d, "", 0, 3, err, sizeof(err)), PS_EINVAL);
    assert_null(d);
}

/* A forged dense length is refused before anything is allocated for it:
 * the values it promises are not in the file. */
static void test_checkpoint_forged_dense_len_refused(void **state)
{
    fx *x = *state;
    size_t len;
    unsigned char *buf = ckpt_bytes(x, &len);
    unsigned char *name = memmem(buf, len, "d.sgd", 5);
    assert_non_null(name);
    /* name, then meta (u32 length + "model=test"), then u32 kind, u64 len */
    unsigned char *at = name + 5 + 4 + strlen("model=test") + 4;
    uint64_t was;
    memcpy(&was, at, 8);
    assert_int_equal(was, DENSE_LEN);
    uint64_t forged = (uint64_t)1 << 40;
    memcpy(at, &forged, 8);
    char err[512];
    assert_int_equal(load_fresh(buf, len, err, sizeof(err)), PS_EPROTO);
    assert_non_null(strstr(err, "table 'd.sgd'"));
    assert_non_null(strstr(err, "cannot fit"));
    free(buf);
}

/* Mutated checkpoints (bytes flipped, counts forged, cut short, the
 * checksum ignored) go straight to the loader: each is loaded or refused
 * with a reason, never a crash (ASan watches in the sanitizer build). */
static void test_checkpoint_load_mutations_never_crash(void **state)
{
    fx *x = *state;
    size_t len;
    unsigned char *orig = ckpt_bytes(x, &len);
    unsigned char *buf = malloc(len);
    uint64_t rng = 0x5eedc0de;
    size_t refused = 0;
    for (int i = 0; i < MUTATIONS; i++) {
        memcpy(buf, orig, len);
        size_t n = len;
        rng = ps_mix64(rng + (uint64_t)i);
        int kind = (int)(rng % 4);
        size_t at = PS_CKPT_HEADER_BYTES +
                    (size_t)((rng >> 8) % (len - PS_CKPT_HEADER_BYTES -
                                           PS_CKPT_TRAILER_BYTES));
        if (kind == 0) {
            buf[at] ^= (unsigned char)(1u << ((rng >> 40) % 8));
        } else if (kind == 1 && at + 4 <= len - PS_CKPT_TRAILER_BYTES) {
            uint32_t v = (uint32_t)(rng >> 32); /* a forged count */
            memcpy(buf + at, &v, 4);
        } else if (kind == 2 && at + 8 <= len - PS_CKPT_TRAILER_BYTES) {
            uint64_t v = UINT64_MAX - (rng >> 50);
            memcpy(buf + at, &v, 8);
        } else {
            /* Cut at `at` and move the trailer there. */
            n = at + PS_CKPT_TRAILER_BYTES;
            uint64_t covered = at;
            memcpy(buf + at, &covered, 8);
            memcpy(buf + at + 8, orig + len - 8, 8);
        }
        char err[512] = "";
        if (load_fresh(buf, n, err, sizeof(err)) != PS_OK) {
            assert_true(err[0] != '\0');
            refused++;
        }
    }
    /* Most mutations hit float data and load; structure hits are refused. */
    assert_true(refused > 0);
    free(buf);
    free(orig);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_checkpoint_round_trip_restores_everything, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_define_at_refuses_taken,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_checkpoint_damage_refused_with_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_checkpoint_pick_file_names_file_and_reason, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_checkpoint_dir_falls_back_to_previous_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_checkpoint_identity_mismatch_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_saver_keeps_newest_k,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_write_failure_reported,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_checkpoint_pick_refuses_overlong_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_dir_open_bad_paths,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_checkpoint_forged_dense_len_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_checkpoint_load_mutations_never_crash, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
