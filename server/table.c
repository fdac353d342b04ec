/* Table store of one shard; see table.h.
 *
 * Dense storage: one block of `n` weights followed by width*n state floats
 * (slot-major, stride n), so a push over a sub-range is one call of the
 * optimizer with pointers offset into the block.
 *
 * Sparse storage: an open-addressing hash index (linear probing, load <= 0.7)
 * from key to row number, and rows in fixed-size chunks so growth never moves
 * existing rows. A row is dim weights then width*dim state floats. */
#include "table.h"

#include "common/partition.h"
#include "common/rng.h"
#include "common/sparkps_err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROWS_PER_CHUNK 4096u
#define EMPTY_ROW UINT32_MAX

struct ps_table {
    ps_tables *owner; /* for memory accounting of sparse growth */
    char *job;
    char *name;
    char *meta; /* "" when none */
    uint32_t id;
    ps_table_def def; /* job/name point at the strings above */
    int width;        /* optimizer state floats per parameter */
    uint64_t bytes;   /* accounted memory */
    uint64_t pushes, pulls;
    uint64_t applied; /* floats updated by the optimizer */

    /* dense */
    uint64_t lo, hi;
    float *block; /* (1 + width) * (hi - lo) floats */

    /* sparse */
    uint64_t *keys;   /* hash index: keys */
    uint32_t *slots;  /* hash index: row numbers, EMPTY_ROW when free */
    size_t index_cap; /* power of two */
    uint32_t nrows;
    float **chunks; /* ROWS_PER_CHUNK rows each */
    size_t nchunks;
};

struct ps_tables {
    uint32_t shard, nshards;
    uint64_t memory_limit;
    uint64_t max_rows; /* per sparse table; 0: none */
    uint64_t bytes;
    ps_table **slot; /* by id; NULL after a drop (ids are never reused) */
    size_t nslots;
};

int ps_tables_new(ps_tables **out, uint32_t shard, uint32_t nshards,
                  uint64_t memory_limit, uint64_t max_rows)
{
    if (nshards == 0 || shard >= nshards)
        return PS_EINVAL;
    ps_tables *ts = calloc(1, sizeof(*ts));
    if (ts == NULL)
        return PS_ENOMEM;
    ts->shard = shard;
    ts->nshards = nshards;
    ts->memory_limit = memory_limit;
    ts->max_rows = max_rows;
    *out = ts;
    return PS_OK;
}

static void table_free(ps_table *t)
{
    if (t == NULL)
        return;
    free(t->job);
    free(t->name);
    free(t->meta);
    free(t->block);
    free(t->keys);
    free(t->slots);
    for (size_t i = 0; i < t->nchunks; i++)
        free(t->chunks[i]);
    free(t->chunks);
    free(t);
}

void ps_tables_free(ps_tables *ts)
{
    if (ts == NULL)
        return;
    for (size_t i = 0; i < ts->nslots; i++)
        table_free(ts->slot[i]);
    free(ts->slot);
    free(ts);
}

static size_t row_floats(const ps_table *t)
{
    return (size_t)t->def.dim * (size_t)(1 + t->width);
}

/* Fans for Xavier/He when the client left them 0: a dense [in, out, ...]
 * shape gives fan_in = shape[0], fan_out = len / shape[0]; otherwise both
 * are the row length. */
static void resolve_fans(ps_table_def *d)
{
    uint64_t in = d->kind == PS_TABLE_SPARSE ? d->dim : d->len;
    uint64_t out = in;
    if (d->kind == PS_TABLE_DENSE && d->nshape >= 2 && d->shape[0] > 0) {
        in = d->shape[0];
        out = d->len / d->shape[0];
    }
    if (d->init.fan_in == 0)
        d->init.fan_in = in;
    if (d->init.fan_out == 0)
        d->init.fan_out = out;
}

static int check_def(const ps_table_def *d, char *err, size_t errlen)
{
    if (d->job == NULL || d->name == NULL || d->name[0] == '\0') {
        snprintf(err, errlen, "table needs a job and a non-empty name");
        return PS_EINVAL;
    }
    if (d->kind == PS_TABLE_DENSE) {
        if (d->len == 0) {
            snprintf(err, errlen, "dense table '%s' has length 0", d->name);
            return PS_EINVAL;
        }
        if (d->nshape > 0) {
            uint64_t prod = 1;
            for (size_t i = 0; i < d->nshape; i++) {
                if (d->shape[i] == 0 || prod > UINT64_MAX / d->shape[i]) {
                    snprintf(err, errlen, "table '%s': bad shape", d->name);
                    return PS_EINVAL;
                }
                prod *= d->shape[i];
            }
            if (prod != d->len) {
                snprintf(err, errlen,
                         "table '%s': shape product %llu != len %llu", d->name,
                         (unsigned long long)prod, (unsigned long long)d->len);
                return PS_EINVAL;
            }
        }
    } else if (d->kind == PS_TABLE_SPARSE) {
        if (d->dim == 0 || d->dim > PS_TABLE_MAX_DIM) {
            snprintf(err, errlen, "sparse table '%s': dim %u not in 1..%u",
                     d->name, d->dim, PS_TABLE_MAX_DIM);
            return PS_EINVAL;
        }
    } else {
        snprintf(err, errlen, "table '%s': unknown kind %d", d->name, d->kind);
        return PS_EINVAL;
    }
    int rc = ps_optim_check(&d->optim, err, errlen);
    if (rc == PS_OK)
        rc = ps_init_check(&d->init, err, errlen);
    return rc;
}

/* Names the first field where an existing table differs from a new spec. */
static const char *spec_difference(const ps_table_def *a, const ps_table_def *b)
{
    if (a->kind != b->kind)
        return "kind";
    if (a->len != b->len)
        return "len";
    if (a->dim != b->dim)
        return "dim";
    if (a->nshape != b->nshape ||
        memcmp(a->shape, b->shape, a->nshape * sizeof(a->shape[0])) != 0)
        return "shape";
    const ps_init_cfg *x = &a->init, *y = &b->init;
    if (x->kind != y->kind || x->a != y->a || x->b != y->b ||
        x->seed != y->seed || x->fan_in != y->fan_in ||
        x->fan_out != y->fan_out)
        return "init";
    if (memcmp(&a->optim, &b->optim, sizeof(a->optim)) != 0)
        return "optimizer";
    return NULL;
}

static ps_table *find(ps_tables *ts, const char *job, const char *name)
{
    for (size_t i = 0; i < ts->nslots; i++) {
        ps_table *t = ts->slot[i];
        if (t && strcmp(t->job, job) == 0 && strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

static int alloc_dense(ps_table *t)
{
    uint64_t n = t->hi - t->lo;
    uint64_t floats = n * (uint64_t)(1 + t->width);
    if (n == 0)
        return PS_OK; /* more shards than elements: this one holds none */
    if (floats / (uint64_t)(1 + t->width) != n || floats > SIZE_MAX / 4)
        return PS_ENOMEM;
    t->block = malloc((size_t)floats * sizeof(float));
    if (t->block == NULL)
        return PS_ENOMEM;
    ps_init_fill(&t->def.init, 0, t->lo, t->block, (size_t)n);
    ps_optim_init_state(&t->def.optim, t->block, t->block + n, (size_t)n,
                        (size_t)n);
    t->bytes = floats * sizeof(float);
    return PS_OK;
}

int ps_tables_reserve_ids(ps_tables *ts, size_t n)
{
    if (n <= ts->nslots)
        return PS_OK;
    if (n > UINT32_MAX)
        return PS_EINVAL;
    ps_table **slots = realloc(ts->slot, n * sizeof(*slots));
    if (slots == NULL)
        return PS_ENOMEM;
    for (size_t i = ts->nslots; i < n; i++)
        slots[i] = NULL;
    ts->slot = slots;
    ts->nslots = n;
    return PS_OK;
}

/* Defines a table at id `at`, or at the next id when at < 0; see
 * ps_tables_define() and ps_tables_define_at(). */
static int define_table(ps_tables *ts, const ps_table_def *def, int64_t at,
                        uint32_t *id, char *err, size_t errlen)
{
    if (def->nshape > PS_TABLE_MAX_SHAPE) {
        snprintf(err, errlen, "shape has more than %d dims",
                 PS_TABLE_MAX_SHAPE);
        return PS_EINVAL;
    }
    ps_table_def d = *def;
    /* Fields of the other kind do not take part in the spec comparison. */
    if (d.kind == PS_TABLE_SPARSE) {
        d.len = 0;
        d.nshape = 0;
    } else {
        d.dim = 0;
    }
    memset(d.shape + d.nshape, 0,
           (PS_TABLE_MAX_SHAPE - d.nshape) * sizeof(d.shape[0]));
    ps_optim_fill_defaults(&d.optim);
    resolve_fans(&d);
    int rc = check_def(&d, err, errlen);
    if (rc != PS_OK)
        return rc;
    ps_table *old = find(ts, d.job, d.name);
    if (old != NULL && at >= 0) {
        snprintf(err, errlen, "table '%s' of job '%s' is there already", d.name,
                 d.job);
        return PS_ECONFLICT;
    }
    if (at >= 0 && ((size_t)at < ts->nslots || at >= UINT32_MAX)) {
        snprintf(err, errlen, "table id %lld is taken or out of range",
                 (long long)at);
        return PS_ECONFLICT;
    }
    if (old != NULL) {
        const char *diff = spec_difference(&old->def, &d);
        if (diff != NULL) {
            snprintf(err, errlen,
                     "table '%s' of job '%s' exists with a different %s",
                     d.name, d.job, diff);
            return PS_ECONFLICT;
        }
        *id = old->id;
        return PS_OK;
    }

    ps_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return PS_ENOMEM;
    t->job = strdup(d.job);
    t->name = strdup(d.name);
    t->meta = strdup(d.meta ? d.meta : "");
    if (t->job == NULL || t->name == NULL || t->meta == NULL) {
        rc = PS_ENOMEM;
        goto out;
    }
    t->owner = ts;
    t->def = d;
    t->def.job = t->job;
    t->def.name = t->name;
    t->def.meta = t->meta;
    t->width = ps_optim_state_width(&d.optim);
    if (d.kind == PS_TABLE_DENSE) {
        t->lo = ps_dense_lo(d.len, ts->shard, ts->nshards);
        t->hi = ps_dense_lo(d.len, ts->shard + 1, ts->nshards);
        uint64_t need = (t->hi - t->lo) * (uint64_t)(1 + t->width) * 4u;
        if (ts->memory_limit && need > ts->memory_limit - ts->bytes) {
            snprintf(err, errlen,
                     "table '%s' needs %llu bytes on this shard; %llu of the "
                     "%llu-byte limit are free (--memory-limit)",
                     d.name, (unsigned long long)need,
                     (unsigned long long)(ts->memory_limit - ts->bytes),
                     (unsigned long long)ts->memory_limit);
            rc = PS_ENOMEM;
            goto out;
        }
        rc = alloc_dense(t);
        if (rc != PS_OK) {
            snprintf(err, errlen, "cannot allocate table '%s'", d.name);
            goto out;
        }
    }
    size_t slot = at >= 0 ? (size_t)at : ts->nslots;
    if ((rc = ps_tables_reserve_ids(ts, slot + 1)) != PS_OK)
        goto out;
    t->id = (uint32_t)slot;
    ts->slot[slot] = t;
    ts->bytes += t->bytes; /* dense block; sparse tables charge as they grow */
    *id = t->id;
    return PS_OK;
out:
    table_free(t);
    return rc;
}

int ps_tables_define(ps_tables *ts, const ps_table_def *def, uint32_t *id,
                     char *err, size_t errlen)
{
    return define_table(ts, def, -1, id, err, errlen);
}

int ps_tables_define_at(ps_tables *ts, const ps_table_def *def, uint32_t id,
                        char *err, size_t errlen)
{
    uint32_t got;
    return define_table(ts, def, id, &got, err, errlen);
}

ps_table *ps_tables_get(ps_tables *ts, uint32_t id)
{
    return id < ts->nslots ? ts->slot[id] : NULL;
}

int ps_tables_drop(ps_tables *ts, const char *job, const char *name)
{
    ps_table *t = find(ts, job, name);
    if (t == NULL)
        return PS_ENOTABLE;
    ts->bytes -= t->bytes;
    ts->slot[t->id] = NULL;
    table_free(t);
    return PS_OK;
}

void ps_tables_drop_job(ps_tables *ts, const char *job, int *dropped)
{
    *dropped = 0;
    for (size_t i = 0; i < ts->nslots; i++) {
        ps_table *t = ts->slot[i];
        if (t && strcmp(t->job, job) == 0) {
            ts->bytes -= t->bytes;
            ts->slot[i] = NULL;
            table_free(t);
            (*dropped)++;
        }
    }
}

size_t ps_tables_slots(const ps_tables *ts)
{
    return ts->nslots;
}

uint64_t ps_tables_bytes(const ps_tables *ts)
{
    return ts->bytes;
}

int ps_tables_info_at(ps_tables *ts, size_t i, ps_table_info *info)
{
    if (i >= ts->nslots || ts->slot[i] == NULL)
        return 0;
    const ps_table *t = ts->slot[i];
    info->job = t->job;
    info->name = t->name;
    info->id = t->id;
    info->kind = t->def.kind;
    info->len = t->def.len;
    info->dim = t->def.dim;
    info->lo = t->lo;
    info->hi = t->hi;
    info->rows = t->nrows;
    info->bytes = t->bytes;
    info->optim = t->def.optim.kind;
    info->pushes = t->pushes;
    info->pulls = t->pulls;
    info->values_applied = t->applied;
    info->meta = t->meta;
    info->shape = t->def.shape;
    info->nshape = t->def.nshape;
    return 1;
}

int ps_table_kind(const ps_table *t)
{
    return t->def.kind;
}

uint32_t ps_table_dim(const ps_table *t)
{
    return t->def.dim;
}

void ps_table_range(const ps_table *t, uint64_t *lo, uint64_t *hi)
{
    *lo = t->lo;
    *hi = t->hi;
}

/* The table's optimizer with the push's learning-rate scale applied. */
static ps_optim_cfg scaled_optim(const ps_table *t, float lr_scale)
{
    ps_optim_cfg c = t->def.optim;
    c.lr *= lr_scale;
    return c;
}

void ps_table_dense_push(ps_table *t, uint64_t offset, uint64_t count,
                         const float *g, float lr_scale, float *out)
{
    size_t n = (size_t)(t->hi - t->lo);
    size_t at = (size_t)(offset - t->lo);
    ps_optim_cfg oc = scaled_optim(t, lr_scale);
    ps_optim_apply(&oc, t->block + at, t->block + n + at, n, g,
                   (size_t)count, out);
    t->pushes++;
    t->applied += count;
}

void ps_table_dense_read(ps_table *t, uint64_t offset, uint64_t count,
                         float *out)
{
    memcpy(out, t->block + (offset - t->lo), (size_t)count * sizeof(float));
    t->pulls++;
}

/* ---- sparse rows ---- */

static float *row_at(const ps_table *t, uint32_t row)
{
    return t->chunks[row / ROWS_PER_CHUNK] +
           (size_t)(row % ROWS_PER_CHUNK) * row_floats(t);
}

static size_t index_probe(const ps_table *t, uint64_t key)
{
    size_t mask = t->index_cap - 1;
    size_t i = (size_t)ps_mix64(key ^ 0x5bd1e995u) & mask;
    while (t->slots[i] != EMPTY_ROW && t->keys[i] != key)
        i = (i + 1) & mask;
    return i;
}

static uint32_t lookup(const ps_table *t, uint64_t key)
{
    if (t->index_cap == 0)
        return EMPTY_ROW;
    return t->slots[index_probe(t, key)];
}

/* Charges bytes to the shard's memory limit; PS_ENOMEM when over it. */
static int charge(ps_table *t, uint64_t bytes)
{
    ps_tables *ts = t->owner;
    if (ts->memory_limit && bytes > ts->memory_limit - ts->bytes)
        return PS_ENOMEM;
    ts->bytes += bytes;
    t->bytes += bytes;
    return PS_OK;
}

static int index_grow(ps_table *t)
{
    size_t cap = t->index_cap ? t->index_cap * 2 : 1024;
    size_t grown = (cap - t->index_cap) * (sizeof(uint64_t) + sizeof(uint32_t));
    if (charge(t, grown) != PS_OK)
        return PS_ENOMEM;
    uint64_t *keys = malloc(cap * sizeof(*keys));
    uint32_t *slots = malloc(cap * sizeof(*slots));
    if (keys == NULL || slots == NULL) {
        free(keys);
        free(slots);
        t->owner->bytes -= grown;
        t->bytes -= grown;
        return PS_ENOMEM;
    }
    for (size_t i = 0; i < cap; i++)
        slots[i] = EMPTY_ROW;
    uint64_t *old_keys = t->keys;
    uint32_t *old_slots = t->slots;
    size_t old_cap = t->index_cap;
    t->keys = keys;
    t->slots = slots;
    t->index_cap = cap;
    for (size_t i = 0; i < old_cap; i++) {
        if (old_slots[i] == EMPTY_ROW)
            continue;
        size_t j = index_probe(t, old_keys[i]);
        t->keys[j] = old_keys[i];
        t->slots[j] = old_slots[i];
    }
    free(old_keys);
    free(old_slots);
    return PS_OK;
}

static int add_row(ps_table *t, uint64_t key, uint32_t *row)
{
    if (t->nrows == EMPTY_ROW - 1)
        return PS_ENOMEM;
    if ((size_t)(t->nrows + 1) * 10 > t->index_cap * 7 &&
        index_grow(t) != PS_OK)
        return PS_ENOMEM;
    if (t->nrows / ROWS_PER_CHUNK == t->nchunks) {
        float **chunks = realloc(t->chunks, (t->nchunks + 1) * sizeof(*chunks));
        if (chunks == NULL)
            return PS_ENOMEM;
        t->chunks = chunks;
        size_t bytes = (size_t)ROWS_PER_CHUNK * row_floats(t) * sizeof(float);
        if (charge(t, bytes) != PS_OK)
            return PS_ENOMEM;
        chunks[t->nchunks] = malloc(bytes);
        if (chunks[t->nchunks] == NULL) {
            t->owner->bytes -= bytes;
            t->bytes -= bytes;
            return PS_ENOMEM;
        }
        t->nchunks++;
    }
    uint32_t r = t->nrows++;
    float *w = row_at(t, r);
    ps_init_fill(&t->def.init, key, 0, w, t->def.dim);
    ps_optim_init_state(&t->def.optim, w, w + t->def.dim, t->def.dim,
                        t->def.dim);
    size_t i = index_probe(t, key);
    t->keys[i] = key;
    t->slots[i] = r;
    *row = r;
    return PS_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* PS_EFULL when the keys not stored yet would take the table past the row
 * limit. Counting with repeats is enough in the common case; only a batch
 * near the limit pays for sorting to count distinct new keys. */
static int check_room(const ps_table *t, const uint64_t *keys, size_t n)
{
    uint64_t max = t->owner->max_rows;
    if (max == 0)
        return PS_OK;
    size_t fresh = 0;
    for (size_t i = 0; i < n; i++)
        fresh += lookup(t, keys[i]) == EMPTY_ROW;
    if (t->nrows + (uint64_t)fresh <= max)
        return PS_OK;
    uint64_t *k = malloc(fresh * sizeof(*k));
    if (k == NULL)
        return PS_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (lookup(t, keys[i]) == EMPTY_ROW)
            k[m++] = keys[i];
    qsort(k, m, sizeof(*k), cmp_u64);
    size_t distinct = 0;
    for (size_t i = 0; i < m; i++)
        distinct += i == 0 || k[i] != k[i - 1];
    free(k);
    return t->nrows + (uint64_t)distinct <= max ? PS_OK : PS_EFULL;
}

/* Creates every missing row of keys before anything is written, so a
 * refusal leaves the table as it was (a fresh row holds only its init
 * values, which a pull of an absent key returns anyway). */
static int add_rows(ps_table *t, const uint64_t *keys, size_t n)
{
    int rc = check_room(t, keys, n);
    for (size_t i = 0; rc == PS_OK && i < n; i++) {
        uint32_t row;
        if (lookup(t, keys[i]) == EMPTY_ROW &&
            add_row(t, keys[i], &row) != PS_OK)
            rc = PS_ENOMEM;
    }
    return rc;
}

int ps_table_sparse_push(ps_table *t, const uint64_t *keys, size_t n,
                         const float *g, float lr_scale, float *out)
{
    size_t dim = t->def.dim;
    int rc = add_rows(t, keys, n);
    if (rc != PS_OK)
        return rc;
    ps_optim_cfg oc = scaled_optim(t, lr_scale);
    for (size_t i = 0; i < n; i++) {
        float *w = row_at(t, lookup(t, keys[i]));
        ps_optim_apply(&oc, w, w + dim, dim, g + i * dim, dim,
                       out ? out + i * dim : NULL);
    }
    t->pushes++;
    t->applied += (uint64_t)n * dim;
    return PS_OK;
}

void ps_table_sparse_read(ps_table *t, const uint64_t *keys, size_t n,
                          float *out)
{
    size_t dim = t->def.dim;
    for (size_t i = 0; i < n; i++) {
        uint32_t row = lookup(t, keys[i]);
        if (row == EMPTY_ROW)
            ps_init_fill(&t->def.init, keys[i], 0, out + i * dim, dim);
        else
            memcpy(out + i * dim, row_at(t, row), dim * sizeof(float));
    }
    t->pulls++;
}

int ps_table_touched(const ps_table *t)
{
    return t->pushes > 0;
}

void ps_table_dense_assign(ps_table *t, uint64_t offset, uint64_t count,
                           const float *v)
{
    memcpy(t->block + (offset - t->lo), v, (size_t)count * sizeof(float));
}

int ps_table_sparse_assign(ps_table *t, const uint64_t *keys, size_t n,
                           const float *v)
{
    size_t dim = t->def.dim;
    int rc =
        add_rows(t, keys, n); /* as in a push: a failure changes no weight */
    if (rc != PS_OK)
        return rc;
    for (size_t i = 0; i < n; i++)
        memcpy(row_at(t, lookup(t, keys[i])), v + i * dim, dim * sizeof(float));
    return PS_OK;
}

uint64_t ps_table_rows(const ps_table *t)
{
    return t->nrows;
}

uint64_t ps_table_scan_end(const ps_table *t)
{
    return t->index_cap;
}

size_t ps_table_sparse_scan(const ps_table *t, uint64_t *cursor, size_t max,
                            uint64_t *keys, float *vals)
{
    size_t dim = t->def.dim, n = 0;
    uint64_t i = *cursor;
    for (; i < t->index_cap && n < max; i++) {
        if (t->slots[i] == EMPTY_ROW)
            continue;
        keys[n] = t->keys[i];
        memcpy(vals + n * dim, row_at(t, t->slots[i]), dim * sizeof(float));
        n++;
    }
    *cursor = i;
    return n;
}

/* ---- checkpoints ---- */

const ps_table_def *ps_table_spec(const ps_table *t)
{
    return &t->def;
}

int ps_table_state_width(const ps_table *t)
{
    return t->width;
}

void ps_table_counters(const ps_table *t, uint64_t *pushes, uint64_t *pulls,
                       uint64_t *applied)
{
    *pushes = t->pushes;
    *pulls = t->pulls;
    *applied = t->applied;
}

void ps_table_set_counters(ps_table *t, uint64_t pushes, uint64_t pulls,
                           uint64_t applied)
{
    t->pushes = pushes;
    t->pulls = pulls;
    t->applied = applied;
}

float *ps_table_dense_block(ps_table *t, size_t *nfloats)
{
    *nfloats = t->block ? (size_t)(t->hi - t->lo) * (size_t)(1 + t->width) : 0;
    return t->block;
}

int ps_table_sparse_next(const ps_table *t, uint64_t *cursor, uint64_t *key,
                         const float **row)
{
    for (uint64_t i = *cursor; i < t->index_cap; i++) {
        if (t->slots[i] == EMPTY_ROW)
            continue;
        *key = t->keys[i];
        *row = row_at(t, t->slots[i]);
        *cursor = i + 1;
        return 1;
    }
    *cursor = t->index_cap;
    return 0;
}

int ps_table_sparse_put_row(ps_table *t, uint64_t key, const float *row)
{
    uint32_t r;
    if (lookup(t, key) != EMPTY_ROW)
        return PS_EINVAL;
    if (add_row(t, key, &r) != PS_OK)
        return PS_ENOMEM;
    memcpy(row_at(t, r), row, row_floats(t) * sizeof(float));
    return PS_OK;
}
