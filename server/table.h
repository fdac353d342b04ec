/* The shard's table store: tables by (job, name), their weights and
 * optimizer state, and the apply/read operations on them.
 *
 * Dense tables hold this shard's contiguous range [lo, hi) of the global
 * element space. Sparse tables map uint64 keys to rows of `dim` floats,
 * created on first push from the table's init rule; a pull of a key never
 * pushed returns the init values without storing a row.
 *
 * Memory is accounted against a limit given at creation, so a DefineTable
 * asking for more than the shard may use fails with PS_ENOMEM instead of
 * the process being killed later. Single-threaded: the shard's event loop
 * owns the store. */
#ifndef PS_TABLE_H
#define PS_TABLE_H

#include "init.h"
#include "optim.h"

#include <stddef.h>
#include <stdint.h>

enum { PS_TABLE_DENSE = 0, PS_TABLE_SPARSE = 1 };

#define PS_TABLE_MAX_SHAPE 8
#define PS_TABLE_MAX_DIM 1048576u /* floats per sparse row */

typedef struct ps_table_def {
    const char *job;
    const char *name;
    int kind;
    uint64_t len;                       /* dense: whole-table elements */
    uint32_t dim;                       /* sparse: floats per row */
    uint64_t shape[PS_TABLE_MAX_SHAPE]; /* dense, optional */
    size_t nshape;
    ps_init_cfg init;   /* fans 0: derived from shape / dim */
    ps_optim_cfg optim; /* zero fields: documented defaults */
    const char *meta;   /* informative; not compared on re-define */
} ps_table_def;

typedef struct ps_table_info {
    const char *job, *name;
    uint32_t id;
    int kind;
    uint64_t len;
    uint32_t dim;
    uint64_t lo, hi; /* dense: this shard's range */
    uint64_t rows;   /* sparse: rows stored here */
    uint64_t bytes;  /* weights + optimizer state */
    int optim;
    uint64_t pushes, pulls;
    uint64_t values_applied; /* floats updated by the optimizer */
    const char *meta;        /* "" when none */
    const uint64_t *shape;
    size_t nshape;
} ps_table_info;

typedef struct ps_table ps_table;
typedef struct ps_tables ps_tables;

/* An empty store for shard `shard` of `nshards`, allowed memory_limit bytes
 * of table data (0: no limit) and max_rows rows in each sparse table (0: no
 * limit). */
int ps_tables_new(ps_tables **out, uint32_t shard, uint32_t nshards,
                  uint64_t memory_limit, uint64_t max_rows);
void ps_tables_free(ps_tables *ts);

/* Creates the table, or checks that an existing one of the same job and name
 * has the same spec (meta aside: the first definer's text is kept). *id
 * receives its id. Errors: PS_EINVAL (bad spec), PS_ECONFLICT (exists with
 * another spec; err names the field), PS_ENOMEM (over the memory limit). */
int ps_tables_define(ps_tables *ts, const ps_table_def *def, uint32_t *id,
                     char *err, size_t errlen);

/* NULL when id is unknown (never defined, or dropped). */
ps_table *ps_tables_get(ps_tables *ts, uint32_t id);

/* PS_ENOTABLE when no such table. */
int ps_tables_drop(ps_tables *ts, const char *job, const char *name);
/* Frees every table of job; *dropped receives how many (may be 0). */
void ps_tables_drop_job(ps_tables *ts, const char *job, int *dropped);

/* Iteration for status: tables in id order; returns 0 past the end. */
int ps_tables_info_at(ps_tables *ts, size_t i, ps_table_info *info);
size_t ps_tables_slots(const ps_tables *ts);
uint64_t ps_tables_bytes(const ps_tables *ts);

int ps_table_kind(const ps_table *t);
uint32_t ps_table_dim(const ps_table *t);
void ps_table_range(const ps_table *t, uint64_t *lo, uint64_t *hi);

/* Dense, [offset, offset + count) within [lo, hi) (checked by the caller):
 * applies gradient g through the optimizer with its lr times lr_scale (the
 * pushing worker's schedule; 1: as defined); out (nullable) receives the
 * updated values. */
void ps_table_dense_push(ps_table *t, uint64_t offset, uint64_t count,
                         const float *g, float lr_scale, float *out);
void ps_table_dense_read(ps_table *t, uint64_t offset, uint64_t count,
                         float *out);

/* Sparse, keys owned by this shard (checked by the caller): g holds dim
 * floats per key. Rows are created as needed: PS_EFULL when they would
 * take the table past max_rows (no row created then), PS_ENOMEM if memory
 * runs out; in either case no row of this push was changed. */
int ps_table_sparse_push(ps_table *t, const uint64_t *keys, size_t n,
                         const float *g, float lr_scale, float *out);
void ps_table_sparse_read(ps_table *t, const uint64_t *keys, size_t n,
                          float *out);

/* Whether any push ever reached this table (ASSIGN if_untouched). */
int ps_table_touched(const ps_table *t);

/* Overwrite weights, bypassing the optimizer (its state is kept). Dense:
 * [offset, offset + count) within [lo, hi) (checked by the caller). Sparse:
 * keys owned by this shard, dim floats each, rows created as needed
 * (PS_EFULL / PS_ENOMEM as for a push, nothing changed then). */
void ps_table_dense_assign(ps_table *t, uint64_t offset, uint64_t count,
                           const float *v);
int ps_table_sparse_assign(ps_table *t, const uint64_t *keys, size_t n,
                           const float *v);

/* Sparse: up to max rows (keys and dim weights each) in hash-index order,
 * from index position *cursor (0 first) on; *cursor receives where the next
 * page starts, ps_table_scan_end() when nothing is left. The order is stable
 * while the table does not grow: rows created during a scan may be missed,
 * and growth of the index reorders it (a scan is meant for a table training
 * no longer updates: export). */
size_t ps_table_sparse_scan(const ps_table *t, uint64_t *cursor, size_t max,
                            uint64_t *keys, float *vals);
uint64_t ps_table_scan_end(const ps_table *t);
uint64_t ps_table_rows(const ps_table *t);

/* ---- checkpoints (server/checkpoint.c) ----
 * Nothing here allocates except the restore calls, so a checkpoint writer
 * may read the store in a forked child. */

/* The table's spec as stored: defaults filled in, fans resolved, the other
 * kind's fields zero; strings borrowed from the table. */
const ps_table_def *ps_table_spec(const ps_table *t);
/* Optimizer state floats per parameter. */
int ps_table_state_width(const ps_table *t);
/* Pushes, pulls and floats applied, as status reports them. */
void ps_table_counters(const ps_table *t, uint64_t *pushes, uint64_t *pulls,
                       uint64_t *applied);
void ps_table_set_counters(ps_table *t, uint64_t pushes, uint64_t pulls,
                           uint64_t applied);

/* Dense: the shard's whole block, (1 + width) * (hi - lo) floats (weights,
 * then the optimizer state slot-major); NULL when the shard holds none. */
float *ps_table_dense_block(ps_table *t, size_t *nfloats);

/* Sparse: the row after position *cursor (0 first) in index order, with
 * its dim weights and width * dim state floats; 0 when none is left. */
int ps_table_sparse_next(const ps_table *t, uint64_t *cursor, uint64_t *key,
                         const float **row);
/* Sparse: adds the row of key with its weights and state, (1 + width) * dim
 * floats. PS_EINVAL when the key has a row already, PS_ENOMEM. */
int ps_table_sparse_put_row(ps_table *t, uint64_t key, const float *row);

/* Defines a table at a given id (restoring a checkpoint: ids must not
 * change under clients that cached them): id must not be below
 * ps_tables_slots(); the ids between stay unused, as after drops. Same
 * errors as ps_tables_define(), and PS_ECONFLICT when the job and name are
 * taken or the id is. */
int ps_tables_define_at(ps_tables *ts, const ps_table_def *def, uint32_t id,
                        char *err, size_t errlen);
/* Raises the number of ids ever handed out to n (a checkpoint's tables
 * dropped last keep their ids unused). PS_ENOMEM. */
int ps_tables_reserve_ids(ps_tables *ts, size_t n);

#endif
