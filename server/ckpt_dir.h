/* A shard's checkpoint files in a directory: their names, the atomic
 * write, keeping the newest K, and picking the one to restore from.
 *
 * Files are named shard-<I>-<N>.ckpt (N: the checkpoint's number, 10
 * digits, increasing), so the shards of a cluster may share a directory
 * and a listing sorts by number. A write goes to .shard-<I>-<N>.ckpt.tmp,
 * which is fsynced, renamed to its name, and the directory fsynced: a crash
 * at any point leaves the earlier checkpoints intact and at most a temp
 * file, which the next open removes.
 *
 * Threads: ps_ckdir_write() allocates nothing and may run in a child forked
 * from the event loop; everything else runs on the loop (or at start). */
#ifndef PS_CKPT_DIR_H
#define PS_CKPT_DIR_H

#include "checkpoint.h"

#include <stddef.h>
#include <stdint.h>

#define PS_CKPT_PATH_MAX 1024

typedef struct ps_ckdir ps_ckdir;

/* Opens dir for shard's checkpoints, creating it (one level) when missing,
 * and checks that a file can be created there; removes this shard's
 * leftover temp files. Numbers continue after the highest one there. keep:
 * checkpoints to keep (>= 1). On failure (PS_EINVAL: path too long or keep
 * < 1; PS_EIO: err names the path and the system's reason) *out is
 * untouched. */
int ps_ckdir_open(ps_ckdir **out, const char *dir, uint32_t shard, int keep,
                  char *err, size_t errlen);
void ps_ckdir_free(ps_ckdir *d);

/* The directory as given; borrowed. */
const char *ps_ckdir_path(const ps_ckdir *d);

/* Hands out the next checkpoint number. */
uint64_t ps_ckdir_next_seq(ps_ckdir *d);

/* Writes checkpoint number seq of st (snapshot time time_ms) atomically as
 * above. file (PS_CKPT_PATH_MAX bytes) receives its path, *bytes its size.
 * PS_EIO with the step and the reason in err; the temp file is removed. */
int ps_ckdir_write(const ps_ckdir *d, uint64_t seq, const ps_ckpt_state *st,
                   int64_t time_ms, char *file, uint64_t *bytes, char *err,
                   size_t errlen);

/* Deletes this shard's checkpoints except the newest `keep`; returns how
 * many were deleted (a failure is logged, not returned). */
int ps_ckdir_rotate(ps_ckdir *d);

/* The checkpoint chosen for a restore, mapped read-only. */
typedef struct ps_ckpt_pick {
    char path[PS_CKPT_PATH_MAX];
    const void *buf; /* the file's bytes; ps_ckpt_pick_release() */
    size_t len;
    ps_ckpt_meta meta;
    int none;       /* failure because the directory holds no checkpoint
                       of this shard (not even a damaged one) */
    size_t skipped; /* newer checkpoints refused as damaged */
} ps_ckpt_pick;

/* Picks what to restore from `source`: a checkpoint file, or a directory's
 * newest checkpoint of `shard` that verifies (ps_ckpt_verify()); a damaged
 * one or one of another format version is logged (file and reason) and the
 * next older one tried. A checkpoint of another shard index or count, or
 * of another cluster id when cluster_id is not NULL, stops the search with
 * an error: it is a wrong setting, not damage. Errors (err names the file
 * or directory and why): PS_EIO (unreadable; none of them valid; none at
 * all: pick->none set), PS_EMISMATCH (identity). */
int ps_ckpt_pick_source(const char *source, uint32_t shard, uint32_t shards,
                        const char *cluster_id, ps_ckpt_pick *pick, char *err,
                        size_t errlen);
void ps_ckpt_pick_release(ps_ckpt_pick *pick);

#endif
