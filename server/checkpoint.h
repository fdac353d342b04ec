/* The checkpoint format of one shard: a writer and a reader.
 *
 * A checkpoint holds what a restarted shard needs to carry on: its identity
 * (cluster id, shard, shards), every table at its original id (spec,
 * counters, weights and optimizer state, dense and sparse), the workers
 * (clock, reported progress, evaluation history) and the dedup windows, so
 * that a push retried across a restart is not applied twice.
 *
 * Format version 1. Integers are little-endian; f32/f64 are IEEE-754
 * binary32/binary64, little-endian; str is u32 length + bytes (no NUL).
 *
 *   header   "SPKPCKPT" (8 bytes), u32 version = 1, u32 flags = 0
 *   records  each u32 tag + body, in this order:
 *     META (1), once:  str cluster_id, u32 shard, u32 shards,
 *                      i64 time_ms (snapshot, Unix ms), u64 seq (the
 *                      checkpoint's number), u64 table_ids (ids handed out)
 *     TABLE (2), one per table, ids increasing:
 *                      u32 id, str job, str name, str meta, u32 kind
 *                      (0 dense, 1 sparse), u64 len, u32 dim, u32 nshape,
 *                      u64 shape[nshape], init {u32 kind, f64 a, f64 b,
 *                      u64 seed, u64 fan_in, u64 fan_out}, optim {u32 kind,
 *                      f32 lr, momentum, beta1, beta2, eps, l1, l2,
 *                      ftrl_beta, weight_decay, clip, initial_accumulator},
 *                      u32 width (state floats per parameter), u64 pushes,
 *                      u64 pulls, u64 applied, then
 *                      dense:  u64 lo, u64 hi, f32[(1 + width) * (hi - lo)]
 *                              (weights, then state slot-major)
 *                      sparse: u64 rows, rows x {u64 key,
 *                              f32[(1 + width) * dim]} (weights, state)
 *     WORKERS (3), once: u32 n, n x {u32 id, i64 clock, u32 attempt,
 *                      u64 superseded, u32 has_progress, u64 samples, f64 loss, u32 epoch, f64 accuracy,
 *                      u32 nhistory, nhistory x {u32 epoch, u64 samples,
 *                      f64 loss, accuracy, train_loss, train_accuracy, auc,
 *                      i64 time_ms}}
 *     DEDUP (4), once: u32 clients, clients x {u64 client, u32 n,
 *                      n x {u64 seq, i32 status}}
 *     END (5), once, empty
 *   trailer  u64 covered (= the trailer's offset), u32 crc32 (zlib) of
 *            bytes [0, covered), "KEND" (4 bytes)
 *
 * Writing streams through a fixed buffer on the stack and allocates
 * nothing, so it may run in a child forked from the event loop (see
 * ckpt_saver.h). Reading works on a buffer in memory (a mapped file) and
 * trusts nothing in it: every length and count is checked against the
 * bytes left before anything is allocated, and values against the limits
 * of the store (names, dims, the shard's key ownership, memory limit). */
#ifndef PS_CHECKPOINT_H
#define PS_CHECKPOINT_H

#include "common/codec.h"
#include "consistency.h"
#include "dedup.h"
#include "history.h"
#include "table.h"

#include <stddef.h>
#include <stdint.h>

#define PS_CKPT_VERSION 1u
#define PS_CKPT_MAGIC "SPKPCKPT"
#define PS_CKPT_HEADER_BYTES 16u
#define PS_CKPT_TRAILER_BYTES 16u

/* What a checkpoint is written from or loaded into (borrowed). */
typedef struct ps_ckpt_state {
    const char *cluster_id;
    uint32_t shard, shards;
    ps_tables *tables;
    ps_dedup *dedup;
    ps_consist *consist;
    ps_history *history;
} ps_ckpt_state;

/* A checkpoint's META record. */
typedef struct ps_ckpt_meta {
    char cluster_id[PS_MAX_NAME + 1];
    uint32_t shard, shards;
    int64_t time_ms; /* snapshot time, Unix ms */
    uint64_t seq;    /* its number in the directory */
} ps_ckpt_meta;

/* Writes the checkpoint of st to fd (from its current offset): time_ms is
 * the snapshot time, seq its number. *bytes receives the bytes written.
 * Allocates nothing and reads st only. PS_EIO with the reason (errno text)
 * in err. Blocks on the writes; the caller fsyncs. */
int ps_ckpt_write(int fd, const ps_ckpt_state *st, int64_t time_ms,
                  uint64_t seq, uint64_t *bytes, char *err, size_t errlen);

/* Checks the envelope of a checkpoint in buf: magic, format version,
 * trailer, checksum, and reads its META record into *meta. Errors (err says
 * which, e.g. "checksum mismatch", "truncated", "not a sparkps checkpoint",
 * "format version 2, this server reads 1"): PS_EPROTO, PS_EVERSION. */
int ps_ckpt_verify(const void *buf, size_t len, ps_ckpt_meta *meta, char *err,
                   size_t errlen);

/* Loads the records of the checkpoint in buf into st's store, dedup,
 * workers and history, which must be fresh (empty) and made for
 * st->shard of st->shards. The checksum is not looked at (verify first);
 * everything else is checked, so any bytes are safe to feed. Restored
 * workers count as alive from now_ms. On error (PS_EPROTO, PS_EVERSION,
 * PS_ENOMEM, ...; err names the record) the objects may hold part of the
 * checkpoint: discard them. */
int ps_ckpt_load(const void *buf, size_t len, const ps_ckpt_state *st,
                 int64_t now_ms, char *err, size_t errlen);

#endif
