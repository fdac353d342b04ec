/* Checkpoint writer and reader; the format is described in checkpoint.h.
 *
 * The writer fills a buffer on its own stack and hands it to write(2) when
 * full (large float arrays go out directly), folding every byte into the
 * CRC on the way, so it needs no heap and no lock: it runs in a child
 * forked from the event loop. The reader is a cursor over a read-only
 * buffer: each get_* checks the bytes left first, and a failed read latches
 * an error message, so the parsing code reads straight through and checks
 * once per record. */
#include "checkpoint.h"

#include "common/partition.h"
#include "common/sparkps_err.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the checkpoint format is little-endian; this code copies it as is"
#endif

enum {
    TAG_META = 1,
    TAG_TABLE = 2,
    TAG_WORKERS = 3,
    TAG_DEDUP = 4,
    TAG_END = 5
};

#define TAIL_MAGIC "KEND"
#define WBUF_BYTES 65536u
#define CRC_CHUNK ((size_t)1 << 30) /* zlib's crc32 takes a uInt length */

static uint32_t crc_update(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0) {
        size_t k = n < CRC_CHUNK ? n : CRC_CHUNK;
        crc = (uint32_t)crc32(crc, b, (uInt)k);
        b += k;
        n -= k;
    }
    return crc;
}

/* ---- writer ---- */

typedef struct writer {
    int fd;
    unsigned char buf[WBUF_BYTES];
    size_t n;       /* bytes in buf */
    uint64_t total; /* bytes passed to put(): the file offset */
    uint32_t crc;
    int err; /* errno of the first failed write; 0 while fine */
} writer;

static void write_all(writer *w, const void *p, size_t n)
{
    const unsigned char *b = p;
    while (n > 0 && w->err == 0) {
        ssize_t k = write(w->fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            w->err = k < 0 ? errno : EIO;
            return;
        }
        b += k;
        n -= (size_t)k;
    }
}

static void flush(writer *w)
{
    write_all(w, w->buf, w->n);
    w->n = 0;
}

static void put(writer *w, const void *p, size_t n)
{
    w->crc = crc_update(w->crc, p, n);
    w->total += n;
    if (n > WBUF_BYTES / 2) { /* bulk floats: straight from the table */
        flush(w);
        write_all(w, p, n);
        return;
    }
    if (w->n + n > WBUF_BYTES)
        flush(w);
    memcpy(w->buf + w->n, p, n);
    w->n += n;
}

static void put_u32(writer *w, uint32_t v)
{
    put(w, &v, 4);
}

static void put_u64(writer *w, uint64_t v)
{
    put(w, &v, 8);
}

static void put_i64(writer *w, int64_t v)
{
    put(w, &v, 8);
}

static void put_f32(writer *w, float v)
{
    put(w, &v, 4);
}

static void put_f64(writer *w, double v)
{
    put(w, &v, 8);
}

static void put_str(writer *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_u32(w, (uint32_t)n);
    put(w, s, n);
}

static void write_optim(writer *w, const ps_optim_cfg *o)
{
    put_u32(w, (uint32_t)o->kind);
    const float v[] = {o->lr,
                       o->momentum,
                       o->beta1,
                       o->beta2,
                       o->eps,
                       o->l1,
                       o->l2,
                       o->ftrl_beta,
                       o->weight_decay,
                       o->clip,
                       o->initial_accumulator};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        put_f32(w, v[i]);
}

static void write_table(writer *w, ps_table *t, uint32_t id)
{
    const ps_table_def *d = ps_table_spec(t);
    put_u32(w, TAG_TABLE);
    put_u32(w, id);
    put_str(w, d->job);
    put_str(w, d->name);
    put_str(w, d->meta);
    put_u32(w, (uint32_t)d->kind);
    put_u64(w, d->len);
    put_u32(w, d->dim);
    put_u32(w, (uint32_t)d->nshape);
    for (size_t i = 0; i < d->nshape; i++)
        put_u64(w, d->shape[i]);
    put_u32(w, (uint32_t)d->init.kind);
    put_f64(w, d->init.a);
    put_f64(w, d->init.b);
    put_u64(w, d->init.seed);
    put_u64(w, d->init.fan_in);
    put_u64(w, d->init.fan_out);
    write_optim(w, &d->optim);
    put_u32(w, (uint32_t)ps_table_state_width(t));
    uint64_t pushes, pulls, applied;
    ps_table_counters(t, &pushes, &pulls, &applied);
    put_u64(w, pushes);
    put_u64(w, pulls);
    put_u64(w, applied);
    if (d->kind == PS_TABLE_DENSE) {
        uint64_t lo, hi;
        size_t n;
        ps_table_range(t, &lo, &hi);
        const float *block = ps_table_dense_block(t, &n);
        put_u64(w, lo);
        put_u64(w, hi);
        put(w, block, n * sizeof(float));
        return;
    }
    size_t row_bytes =
        (size_t)d->dim * (size_t)(1 + ps_table_state_width(t)) * sizeof(float);
    put_u64(w, ps_table_rows(t));
    uint64_t cursor = 0, key;
    const float *row;
    while (ps_table_sparse_next(t, &cursor, &key, &row)) {
        put_u64(w, key);
        put(w, row, row_bytes);
    }
}

static void write_workers(writer *w, const ps_consist *c, const ps_history *h)
{
    uint32_t n = 0;
    while (ps_consist_worker_at(c, n) != NULL)
        n++;
    put_u32(w, TAG_WORKERS);
    put_u32(w, n);
    for (uint32_t i = 0; i < n; i++) {
        const ps_worker_state *x = ps_consist_worker_at(c, i);
        put_u32(w, x->id);
        put_i64(w, x->clock);
        put_u32(w, x->attempt); /* a restored shard still refuses stale ones */
        put_u64(w, x->superseded);
        put_u32(w, x->has_progress ? 1 : 0);
        put_u64(w, x->samples);
        put_f64(w, x->loss);
        put_u32(w, x->epoch);
        put_f64(w, x->accuracy);
        size_t nh = ps_history_len(h, x->id);
        put_u32(w, (uint32_t)nh);
        for (size_t k = 0; k < nh; k++) {
            const ps_epoch_eval *e = ps_history_at(h, x->id, k);
            put_u32(w, e->epoch);
            put_u64(w, e->samples);
            put_f64(w, e->loss);
            put_f64(w, e->accuracy);
            put_f64(w, e->train_loss);
            put_f64(w, e->train_accuracy);
            put_f64(w, e->auc);
            put_i64(w, e->time_ms);
        }
    }
}

static void write_dedup(writer *w, const ps_dedup *d)
{
    size_t n = ps_dedup_clients(d);
    put_u32(w, TAG_DEDUP);
    put_u32(w, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        uint64_t seq;
        int status;
        uint32_t used = 0;
        for (size_t k = 0; k < PS_DEDUP_WINDOW; k++)
            used += (uint32_t)ps_dedup_entry_at(d, i, k, &seq, &status);
        put_u64(w, ps_dedup_client_at(d, i));
        put_u32(w, used);
        for (size_t k = 0; k < PS_DEDUP_WINDOW; k++) {
            if (!ps_dedup_entry_at(d, i, k, &seq, &status))
                continue;
            put_u64(w, seq);
            put_u32(w, (uint32_t)status);
        }
    }
}

int ps_ckpt_write(int fd, const ps_ckpt_state *st, int64_t time_ms,
                  uint64_t seq, uint64_t *bytes, char *err, size_t errlen)
{
    writer w;
    w.fd = fd;
    w.n = 0;
    w.total = 0;
    w.crc = (uint32_t)crc32(0L, Z_NULL, 0);
    w.err = 0;
    put(&w, PS_CKPT_MAGIC, 8);
    put_u32(&w, PS_CKPT_VERSION);
    put_u32(&w, 0);

    size_t slots = ps_tables_slots(st->tables);
    put_u32(&w, TAG_META);
    put_str(&w, st->cluster_id);
    put_u32(&w, st->shard);
    put_u32(&w, st->shards);
    put_i64(&w, time_ms);
    put_u64(&w, seq);
    put_u64(&w, slots);
    for (size_t i = 0; i < slots && w.err == 0; i++) {
        ps_table *t = ps_tables_get(st->tables, (uint32_t)i);
        if (t != NULL)
            write_table(&w, t, (uint32_t)i);
    }
    write_workers(&w, st->consist, st->history);
    write_dedup(&w, st->dedup);
    put_u32(&w, TAG_END);

    uint64_t covered = w.total;
    uint32_t crc = w.crc;
    put_u64(&w, covered);
    put_u32(&w, crc);
    put(&w, TAIL_MAGIC, 4);
    flush(&w);
    if (w.err != 0) {
        snprintf(err, errlen, "write failed: %s", strerror(w.err));
        return PS_EIO;
    }
    *bytes = w.total;
    return PS_OK;
}

/* ---- reader ---- */

typedef struct reader {
    const unsigned char *p;
    size_t n, at;
    int bad; /* a read failed; msg says why */
    char msg[160];
} reader;

static void bad(reader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void bad(reader *r, const char *fmt, ...)
{
    if (r->bad)
        return; /* the first reason is the one worth reporting */
    r->bad = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
    va_end(ap);
}

/* The next n bytes, or NULL (and the reader marked bad) past the end. */
static const void *take(reader *r, size_t n, const char *what)
{
    if (r->bad)
        return NULL;
    if (n > r->n - r->at) {
        bad(r, "truncated: %s at offset %zu needs %zu bytes, %zu left", what,
            r->at, n, r->n - r->at);
        return NULL;
    }
    const void *p = r->p + r->at;
    r->at += n;
    return p;
}

/* n bytes into dst (zeros past the end: the reader is then bad). */
static void get(reader *r, void *dst, size_t n, const char *what)
{
    const void *p = take(r, n, what);
    if (p)
        memcpy(dst, p, n);
    else
        memset(dst, 0, n);
}

static uint32_t get_u32(reader *r, const char *what)
{
    uint32_t v;
    get(r, &v, 4, what);
    return v;
}

static uint64_t get_u64(reader *r, const char *what)
{
    uint64_t v;
    get(r, &v, 8, what);
    return v;
}

static int64_t get_i64(reader *r, const char *what)
{
    return (int64_t)get_u64(r, what);
}

static float get_f32(reader *r, const char *what)
{
    float v;
    get(r, &v, 4, what);
    return v;
}

static double get_f64(reader *r, const char *what)
{
    double v;
    get(r, &v, 8, what);
    return v;
}

/* A string of at most max bytes into buf (max + 1 bytes), NUL-terminated;
 * embedded NULs are refused (names are C strings everywhere else). */
static void get_str(reader *r, char *buf, size_t max, const char *what)
{
    buf[0] = '\0';
    uint32_t n = get_u32(r, what);
    if (r->bad)
        return;
    if (n > max) {
        bad(r, "%s of %u bytes (at most %zu)", what, n, max);
        return;
    }
    const char *p = take(r, n, what);
    if (p == NULL)
        return;
    if (memchr(p, '\0', n) != NULL) {
        bad(r, "%s holds a NUL byte", what);
        return;
    }
    memcpy(buf, p, n);
    buf[n] = '\0';
}

/* A count of items of at least min_bytes each, checked against the bytes
 * left so no allocation follows a forged count. */
static uint64_t get_count(reader *r, size_t min_bytes, const char *what)
{
    uint64_t n = r->bad ? 0 : get_u64(r, what);
    if (!r->bad && min_bytes > 0 && n > (r->n - r->at) / min_bytes) {
        bad(r, "%s: %llu items cannot fit in the %zu bytes left", what,
            (unsigned long long)n, r->n - r->at);
        return 0;
    }
    return n;
}

static uint32_t get_count32(reader *r, size_t min_bytes, const char *what)
{
    uint32_t n = get_u32(r, what);
    if (!r->bad && min_bytes > 0 && n > (r->n - r->at) / min_bytes) {
        bad(r, "%s: %u items cannot fit in the %zu bytes left", what, n,
            r->n - r->at);
        return 0;
    }
    return n;
}

/* Parses the envelope: magic, version and trailer; *body_end receives the
 * trailer's offset and *crc the recorded checksum. */
static int envelope(const void *buf, size_t len, size_t *body_end,
                    uint32_t *crc, char *err, size_t errlen)
{
    const unsigned char *p = buf;
    if (len == 0) {
        snprintf(err, errlen, "truncated: empty file");
        return PS_EPROTO;
    }
    if (memcmp(p, PS_CKPT_MAGIC, len < 8 ? len : 8) != 0) {
        snprintf(err, errlen, "not a sparkps checkpoint (wrong magic)");
        return PS_EPROTO;
    }
    if (len < PS_CKPT_HEADER_BYTES + PS_CKPT_TRAILER_BYTES) {
        snprintf(err, errlen,
                 "truncated: %zu bytes, shorter than a header "
                 "and trailer",
                 len);
        return PS_EPROTO;
    }
    uint32_t version;
    memcpy(&version, p + 8, 4);
    if (version != PS_CKPT_VERSION) {
        snprintf(err, errlen, "format version %u, this server reads version %u",
                 version, PS_CKPT_VERSION);
        return PS_EVERSION;
    }
    const unsigned char *tail = p + len - PS_CKPT_TRAILER_BYTES;
    uint64_t covered;
    memcpy(&covered, tail, 8);
    memcpy(crc, tail + 8, 4);
    if (memcmp(tail + 12, TAIL_MAGIC, 4) != 0 ||
        covered != len - PS_CKPT_TRAILER_BYTES) {
        snprintf(err, errlen,
                 "truncated or damaged: no trailer at the end of the %zu "
                 "bytes",
                 len);
        return PS_EPROTO;
    }
    *body_end = (size_t)covered;
    return PS_OK;
}

static void read_meta(reader *r, ps_ckpt_meta *m, uint64_t *ids)
{
    if (get_u32(r, "first record tag") != TAG_META && !r->bad) {
        bad(r, "the first record is not META");
        return;
    }
    get_str(r, m->cluster_id, PS_MAX_NAME, "cluster id");
    m->shard = get_u32(r, "shard");
    m->shards = get_u32(r, "shards");
    m->time_ms = get_i64(r, "time");
    m->seq = get_u64(r, "sequence number");
    *ids = get_u64(r, "table ids");
    if (!r->bad && (m->shards == 0 || m->shard >= m->shards))
        bad(r, "META says shard %u of %u", m->shard, m->shards);
}

int ps_ckpt_verify(const void *buf, size_t len, ps_ckpt_meta *meta, char *err,
                   size_t errlen)
{
    size_t end;
    uint32_t crc;
    int rc = envelope(buf, len, &end, &crc, err, errlen);
    if (rc != PS_OK)
        return rc;
    uint32_t got = crc_update((uint32_t)crc32(0L, Z_NULL, 0), buf, end);
    if (got != crc) {
        snprintf(err, errlen,
                 "checksum mismatch (crc32 %08x, the trailer says %08x): "
                 "damaged",
                 got, crc);
        return PS_EPROTO;
    }
    reader r = {buf, end, PS_CKPT_HEADER_BYTES, 0, ""};
    uint64_t ids;
    memset(meta, 0, sizeof(*meta));
    read_meta(&r, meta, &ids);
    if (r.bad) {
        snprintf(err, errlen, "%s", r.msg);
        return PS_EPROTO;
    }
    return PS_OK;
}

/* ---- loading ---- */

typedef struct loader {
    reader r;
    const ps_ckpt_state *st;
    int64_t now_ms;
    int rc;          /* error other than a parse error (PS_ENOMEM, ...) */
    uint64_t ids;    /* META's table ids */
    int64_t last_id; /* ids must increase */
    char job[PS_MAX_NAME + 1], name[PS_MAX_NAME + 1];
    char meta[PS_MAX_META + 1];
} loader;

/* A failure of the store: the code is kept, the message goes with it. */
static void fail_rc(loader *l, int rc, const char *why)
{
    if (l->r.bad)
        return;
    l->rc = rc;
    bad(&l->r, "%s", why);
}

static void read_def(loader *l, ps_table_def *d)
{
    reader *r = &l->r;
    memset(d, 0, sizeof(*d));
    get_str(r, l->job, PS_MAX_NAME, "table job");
    get_str(r, l->name, PS_MAX_NAME, "table name");
    get_str(r, l->meta, PS_MAX_META, "table meta");
    d->job = l->job;
    d->name = l->name;
    d->meta = l->meta;
    d->kind = (int)get_u32(r, "table kind");
    d->len = get_u64(r, "table len");
    d->dim = get_u32(r, "table dim");
    uint32_t nshape = get_u32(r, "table shape dims");
    if (!r->bad && nshape > PS_TABLE_MAX_SHAPE)
        bad(r, "table '%s': %u shape dims (at most %d)", l->name, nshape,
            PS_TABLE_MAX_SHAPE);
    for (uint32_t i = 0; !r->bad && i < nshape; i++)
        d->shape[i] = get_u64(r, "table shape");
    d->nshape = r->bad ? 0 : nshape;
    d->init.kind = (int)get_u32(r, "init kind");
    d->init.a = get_f64(r, "init a");
    d->init.b = get_f64(r, "init b");
    d->init.seed = get_u64(r, "init seed");
    d->init.fan_in = get_u64(r, "init fan_in");
    d->init.fan_out = get_u64(r, "init fan_out");
    ps_optim_cfg *o = &d->optim;
    o->kind = (int)get_u32(r, "optimizer kind");
    float *v[] = {&o->lr,
                  &o->momentum,
                  &o->beta1,
                  &o->beta2,
                  &o->eps,
                  &o->l1,
                  &o->l2,
                  &o->ftrl_beta,
                  &o->weight_decay,
                  &o->clip,
                  &o->initial_accumulator};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        *v[i] = get_f32(r, "optimizer field");
}

static void load_dense(loader *l, ps_table *t)
{
    reader *r = &l->r;
    uint64_t lo = get_u64(r, "dense lo"), hi = get_u64(r, "dense hi");
    uint64_t want_lo, want_hi;
    ps_table_range(t, &want_lo, &want_hi);
    if (!r->bad && (lo != want_lo || hi != want_hi)) {
        bad(r,
            "table '%s': range [%llu, %llu) where shard %u of %u holds "
            "[%llu, %llu)",
            l->name, (unsigned long long)lo, (unsigned long long)hi,
            l->st->shard, l->st->shards, (unsigned long long)want_lo,
            (unsigned long long)want_hi);
        return;
    }
    size_t n;
    float *block = ps_table_dense_block(t, &n);
    const void *p = take(r, n * sizeof(float), "dense values");
    if (p != NULL && n > 0)
        memcpy(block, p, n * sizeof(float));
}

static void load_sparse(loader *l, ps_table *t)
{
    reader *r = &l->r;
    size_t row_floats =
        (size_t)ps_table_dim(t) * (size_t)(1 + ps_table_state_width(t));
    size_t row_bytes = row_floats * sizeof(float);
    uint64_t rows = get_count(r, 8 + row_bytes, "sparse rows");
    /* Rows hold floats only: an aligned copy per row (the mapped file's
     * offsets are not aligned for floats). */
    float *row = rows ? malloc(row_bytes) : NULL;
    if (rows && row == NULL) {
        fail_rc(l, PS_ENOMEM, "out of memory");
        return;
    }
    for (uint64_t i = 0; i < rows && !r->bad; i++) {
        uint64_t key = get_u64(r, "sparse key");
        const void *p = take(r, row_bytes, "sparse row");
        if (p == NULL)
            break;
        if (ps_key_shard(key, l->st->shards) != l->st->shard) {
            bad(r, "table '%s': key %llu belongs to shard %u, not %u", l->name,
                (unsigned long long)key, ps_key_shard(key, l->st->shards),
                l->st->shard);
            break;
        }
        memcpy(row, p, row_bytes);
        int rc = ps_table_sparse_put_row(t, key, row);
        if (rc == PS_EINVAL)
            bad(r, "table '%s': key %llu appears twice", l->name,
                (unsigned long long)key);
        else if (rc != PS_OK)
            fail_rc(l, rc,
                    "out of memory or over --memory-limit restoring "
                    "sparse rows");
    }
    free(row);
}

static void load_table(loader *l)
{
    reader *r = &l->r;
    uint32_t id = get_u32(r, "table id");
    ps_table_def d;
    read_def(l, &d);
    uint32_t width = get_u32(r, "optimizer state width");
    uint64_t pushes = get_u64(r, "table pushes");
    uint64_t pulls = get_u64(r, "table pulls");
    uint64_t applied = get_u64(r, "table values applied");
    if (r->bad)
        return;
    if ((int64_t)id <= l->last_id || id >= l->ids) {
        bad(r, "table '%s': id %u out of order or not below %llu", l->name, id,
            (unsigned long long)l->ids);
        return;
    }
    l->last_id = id;
    if (d.kind == PS_TABLE_DENSE) {
        /* The block must be in the file before it is allocated: a forged
         * len must not make the store reserve (and initialise) gigabytes. */
        const ps_ckpt_state *st = l->st;
        uint64_t n = ps_dense_lo(d.len, st->shard + 1, st->shards) -
                     ps_dense_lo(d.len, st->shard, st->shards);
        size_t left = r->n - r->at;
        if (width > 16 || n > left / sizeof(float) / (1 + width)) {
            bad(r,
                "table '%s': %llu values of %u floats cannot fit in the "
                "%zu bytes left",
                l->name, (unsigned long long)n, 1 + width, left);
            return;
        }
    }
    char why[256] = "";
    int rc = ps_tables_define_at(l->st->tables, &d, id, why, sizeof(why));
    if (rc != PS_OK) {
        if (rc == PS_ENOMEM)
            fail_rc(l, rc, why[0] ? why : "out of memory");
        else
            bad(r, "table '%s': %s", l->name, why);
        return;
    }
    ps_table *t = ps_tables_get(l->st->tables, id);
    if ((int)width != ps_table_state_width(t)) {
        bad(r,
            "table '%s': %u state floats per parameter, its optimizer "
            "keeps %d",
            l->name, width, ps_table_state_width(t));
        return;
    }
    ps_table_set_counters(t, pushes, pulls, applied);
    if (d.kind == PS_TABLE_DENSE)
        load_dense(l, t);
    else
        load_sparse(l, t);
}

static void load_workers(loader *l)
{
    reader *r = &l->r;
    /* A worker record is at least 60 bytes, an evaluation 60. */
    uint32_t n = get_count32(r, 60, "workers");
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        ps_worker_state w;
        memset(&w, 0, sizeof(w));
        w.id = get_u32(r, "worker id");
        w.clock = get_i64(r, "worker clock");
        w.attempt = get_u32(r, "worker attempt");
        w.superseded = get_u64(r, "worker superseded");
        w.has_progress = get_u32(r, "worker has_progress") != 0;
        w.samples = get_u64(r, "worker samples");
        w.loss = get_f64(r, "worker loss");
        w.epoch = get_u32(r, "worker epoch");
        w.accuracy = get_f64(r, "worker accuracy");
        uint32_t nh = get_count32(r, 60, "worker history");
        if (r->bad)
            return;
        if (w.id > PS_MAX_WORKER_ID || w.clock < 0) {
            bad(r, "worker id %u above %d or clock %lld negative", w.id,
                PS_MAX_WORKER_ID, (long long)w.clock);
            return;
        }
        if (ps_consist_restore(l->st->consist, &w, l->now_ms) != PS_OK) {
            fail_rc(l, PS_ENOMEM, "out of memory restoring workers");
            return;
        }
        for (uint32_t k = 0; k < nh && !r->bad; k++) {
            ps_epoch_eval e;
            e.epoch = get_u32(r, "evaluation epoch");
            e.samples = get_u64(r, "evaluation samples");
            e.loss = get_f64(r, "evaluation loss");
            e.accuracy = get_f64(r, "evaluation accuracy");
            e.train_loss = get_f64(r, "evaluation train_loss");
            e.train_accuracy = get_f64(r, "evaluation train_accuracy");
            e.auc = get_f64(r, "evaluation auc");
            e.time_ms = get_i64(r, "evaluation time");
            /* Past the history's bounds an entry is simply not kept, as
             * when it was recorded. */
            if (!r->bad)
                ps_history_add(l->st->history, w.id, &e);
        }
    }
}

static void load_dedup(loader *l)
{
    reader *r = &l->r;
    uint32_t n = get_count32(r, 12, "dedup clients");
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint64_t client = get_u64(r, "dedup client");
        uint32_t k = get_count32(r, 12, "dedup entries");
        if (!r->bad && (client == 0 || k > PS_DEDUP_WINDOW)) {
            bad(r, "dedup client %016llx with %u entries (at most %u)",
                (unsigned long long)client, k, PS_DEDUP_WINDOW);
            return;
        }
        for (uint32_t j = 0; j < k && !r->bad; j++) {
            uint64_t seq = get_u64(r, "dedup sequence number");
            int status = (int)get_u32(r, "dedup status");
            if (r->bad)
                return;
            if (seq == 0) {
                bad(r, "dedup sequence number 0");
                return;
            }
            if (ps_dedup_record(l->st->dedup, client, seq, status) != PS_OK) {
                fail_rc(l, PS_ENOMEM, "out of memory restoring dedup windows");
                return;
            }
        }
    }
}

int ps_ckpt_load(const void *buf, size_t len, const ps_ckpt_state *st,
                 int64_t now_ms, char *err, size_t errlen)
{
    size_t end;
    uint32_t crc;
    int rc = envelope(buf, len, &end, &crc, err, errlen);
    if (rc != PS_OK)
        return rc;
    loader *l = calloc(1, sizeof(*l));
    if (l == NULL) {
        snprintf(err, errlen, "out of memory");
        return PS_ENOMEM;
    }
    l->r = (reader){buf, end, PS_CKPT_HEADER_BYTES, 0, ""};
    l->st = st;
    l->now_ms = now_ms;
    l->last_id = -1;
    ps_ckpt_meta m;
    read_meta(&l->r, &m, &l->ids);
    if (!l->r.bad && (m.shard != st->shard || m.shards != st->shards))
        bad(&l->r, "written by shard %u of %u, loading into shard %u of %u",
            m.shard, m.shards, st->shard, st->shards);
    if (!l->r.bad && l->ids > UINT32_MAX)
        bad(&l->r, "%llu table ids", (unsigned long long)l->ids);
    int seen_workers = 0, seen_dedup = 0, done = 0;
    while (!l->r.bad && !done) {
        uint32_t tag = get_u32(&l->r, "record tag");
        if (l->r.bad)
            break;
        if (tag == TAG_TABLE && !seen_workers) {
            load_table(l);
        } else if (tag == TAG_WORKERS && !seen_workers) {
            seen_workers = 1;
            load_workers(l);
        } else if (tag == TAG_DEDUP && seen_workers && !seen_dedup) {
            seen_dedup = 1;
            load_dedup(l);
        } else if (tag == TAG_END && seen_dedup) {
            done = 1;
        } else {
            bad(&l->r, "unexpected record tag %u at offset %zu", tag,
                l->r.at - 4);
        }
    }
    if (!l->r.bad && l->r.at != end)
        bad(&l->r, "%zu bytes after the END record", end - l->r.at);
    if (!l->r.bad && ps_tables_reserve_ids(st->tables, (size_t)l->ids) != PS_OK)
        fail_rc(l, PS_ENOMEM, "out of memory");
    rc = l->r.bad ? (l->rc != PS_OK ? l->rc : PS_EPROTO) : PS_OK;
    if (rc != PS_OK)
        snprintf(err, errlen, "%s", l->r.msg);
    free(l);
    return rc;
}
