/* Writes a shard's checkpoints without stopping its event loop.
 *
 * ps_saver_start() forks: the child sees the tables exactly as they were at
 * fork() (copy-on-write, as Redis's BGSAVE does) and writes that snapshot
 * while the parent goes on serving. Why fork rather than a copy taken in
 * the loop: the loop pauses only for fork() itself (copying page tables,
 * about a millisecond per GiB of tables) instead of a memcpy of every
 * weight and optimizer state, and memory grows only by the pages pushes
 * change while the child writes, not by a whole second copy. Either way no
 * table is ever serialised while it changes.
 *
 * The child touches no ZeroMQ socket, closes every descriptor but its
 * result pipe (so it never holds the listening port), dies with its parent
 * (PR_SET_PDEATHSIG), allocates nothing while writing, and leaves with
 * _exit(). It reports a fixed-size result over the pipe; the pipe's end of
 * file (the child is done) makes ps_saver_fd() readable, which the loop
 * polls beside its socket. Should fork() fail, the checkpoint is written in
 * the calling process instead (blocking), with a warning.
 *
 * One checkpoint at a time. Single-threaded: the event loop owns it. */
#ifndef PS_CKPT_SAVER_H
#define PS_CKPT_SAVER_H

#include "checkpoint.h"
#include "ckpt_dir.h"

#include <stdint.h>

typedef struct ps_ckpt_result {
    int status;                  /* PS_OK or the failure's ps_err */
    char file[PS_CKPT_PATH_MAX]; /* the file written */
    uint64_t bytes;              /* its size */
    int64_t time_ms;             /* snapshot time, Unix ms */
    int64_t duration_us;         /* from the snapshot to the file durable */
    char err[512];               /* the reason, when status is not PS_OK */
} ps_ckpt_result;

typedef struct ps_saver ps_saver;

/* A saver writing into dir (borrowed; outlives the saver). PS_ENOMEM. */
int ps_saver_new(ps_saver **out, ps_ckdir *dir);

/* Waits for a running checkpoint, then frees. Accepts NULL. */
void ps_saver_free(ps_saver *sv);

/* Starts a checkpoint of st as it is now: in a forked child when
 * `background`, else written before this returns (the last one, when the
 * loop has stopped). PS_EINVAL when one is running. */
int ps_saver_start(ps_saver *sv, const ps_ckpt_state *st, int background);

int ps_saver_busy(const ps_saver *sv);

/* Readable once the running child is done; -1 when none runs. */
int ps_saver_fd(const ps_saver *sv);

/* Collects the finished checkpoint into *res and returns 1, or returns 0
 * while it runs (or none was started); with `block` it waits for it. After
 * a success the directory keeps only the newest checkpoints. */
int ps_saver_collect(ps_saver *sv, int block, ps_ckpt_result *res);

#endif
