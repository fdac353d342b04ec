/* Checkpoint files in a directory; see ckpt_dir.h. Listings read the
 * directory each time (a shard keeps a handful of files), so files removed
 * or added by hand are seen. */
#include "ckpt_dir.h"

#include "common/log.h"
#include "common/sparkps_err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct ps_ckdir {
    char path[PS_CKPT_PATH_MAX - 64]; /* room for a file name after it */
    uint32_t shard;
    int keep;
    uint64_t next_seq;
};

/* One checkpoint file of a listing. */
typedef struct entry {
    uint64_t seq;
    char name[64];
} entry;

/* Parses "shard-<I>-<N>.ckpt" (tmp: ".shard-<I>-<N>.ckpt.tmp"); 1 when
 * name is one, with *shard and *seq set. */
static int parse_name(const char *name, int tmp, uint32_t *shard, uint64_t *seq)
{
    const char *p = name;
    if (tmp && *p++ != '.')
        return 0;
    if (strncmp(p, "shard-", 6) != 0)
        return 0;
    p += 6;
    char *end;
    if (*p < '0' || *p > '9')
        return 0;
    unsigned long long i = strtoull(p, &end, 10);
    if (*end != '-' || end[1] < '0' || end[1] > '9' || i > UINT32_MAX)
        return 0;
    unsigned long long n = strtoull(end + 1, &end, 10);
    if (strcmp(end, tmp ? ".ckpt.tmp" : ".ckpt") != 0)
        return 0;
    *shard = (uint32_t)i;
    *seq = n;
    return 1;
}

static int by_seq_desc(const void *a, const void *b)
{
    uint64_t x = ((const entry *)a)->seq, y = ((const entry *)b)->seq;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* This shard's checkpoints in dir, newest first (*list: the caller's to
 * free). *others: checkpoint files of other shards. ENOENT is an empty
 * listing. */
static int list_dir(const char *dir, uint32_t shard, entry **list, size_t *n,
                    size_t *others, char *err, size_t errlen)
{
    *list = NULL;
    *n = 0;
    if (others)
        *others = 0;
    DIR *dp = opendir(dir);
    if (dp == NULL) {
        if (errno == ENOENT)
            return PS_OK;
        snprintf(err, errlen, "cannot read directory %s: %s", dir,
                 strerror(errno));
        return PS_EIO;
    }
    size_t cap = 0;
    int rc = PS_OK;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        uint32_t s;
        uint64_t seq;
        if (!parse_name(de->d_name, 0, &s, &seq) ||
            strlen(de->d_name) >= sizeof((*list)->name))
            continue;
        if (s != shard) {
            if (others)
                (*others)++;
            continue;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 16;
            entry *grown = realloc(*list, cap * sizeof(*grown));
            if (grown == NULL) {
                rc = PS_ENOMEM;
                snprintf(err, errlen, "out of memory listing %s", dir);
                break;
            }
            *list = grown;
        }
        (*list)[*n].seq = seq;
        memcpy((*list)[*n].name, de->d_name, strlen(de->d_name) + 1);
        (*n)++;
    }
    closedir(dp);
    if (rc != PS_OK) {
        free(*list);
        *list = NULL;
        *n = 0;
        return rc;
    }
    if (*n > 1)
        qsort(*list, *n, sizeof(**list), by_seq_desc);
    return PS_OK;
}

/* Removes this shard's temp files: writes a crash cut short. */
static void remove_temps(const ps_ckdir *d)
{
    DIR *dp = opendir(d->path);
    if (dp == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        uint32_t s;
        uint64_t seq;
        if (parse_name(de->d_name, 1, &s, &seq) && s == d->shard &&
            unlinkat(dirfd(dp), de->d_name, 0) == 0)
            ps_log(PS_LOG_INFO, "removed an unfinished checkpoint file=%s/%s",
                   d->path, de->d_name);
    }
    closedir(dp);
}

/* Creates and removes a probe file: permission checks by access(2) are
 * meaningless for root, and a read-only mount only shows on a write. */
static int probe_writable(const ps_ckdir *d, char *err, size_t errlen)
{
    char probe[PS_CKPT_PATH_MAX + 64];
    snprintf(probe, sizeof(probe), "%s/.shard-%u-probe.tmp", d->path, d->shard);
    int fd = open(probe, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot write in checkpoint directory %s: %s",
                 d->path, strerror(errno));
        return PS_EIO;
    }
    close(fd);
    unlink(probe);
    return PS_OK;
}

int ps_ckdir_open(ps_ckdir **out, const char *dir, uint32_t shard, int keep,
                  char *err, size_t errlen)
{
    if (dir == NULL || dir[0] == '\0' ||
        strlen(dir) >= sizeof(((ps_ckdir *)0)->path)) {
        snprintf(err, errlen,
                 "checkpoint directory path empty or longer "
                 "than %d bytes",
                 PS_CKPT_PATH_MAX - 64);
        return PS_EINVAL;
    }
    if (keep < 1) {
        snprintf(err, errlen, "keep %d checkpoints: must be at least 1", keep);
        return PS_EINVAL;
    }
    struct stat sb;
    if (stat(dir, &sb) != 0) {
        /* EEXIST: another shard sharing the directory created it first. */
        if (errno != ENOENT || (mkdir(dir, 0755) != 0 && errno != EEXIST) ||
            stat(dir, &sb) != 0) {
            snprintf(err, errlen, "cannot create checkpoint directory %s: %s",
                     dir, strerror(errno));
            return PS_EIO;
        }
        ps_log(PS_LOG_INFO, "created checkpoint directory dir=%s", dir);
    }
    if (!S_ISDIR(sb.st_mode)) {
        snprintf(err, errlen, "checkpoint directory %s is not a directory",
                 dir);
        return PS_EIO;
    }
    ps_ckdir *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return PS_ENOMEM;
    snprintf(d->path, sizeof(d->path), "%s", dir);
    d->shard = shard;
    d->keep = keep;
    int rc = probe_writable(d, err, errlen);
    entry *list = NULL;
    size_t n = 0;
    if (rc == PS_OK)
        rc = list_dir(dir, shard, &list, &n, NULL, err, errlen);
    if (rc != PS_OK) {
        free(d);
        return rc;
    }
    d->next_seq = n ? list[0].seq + 1 : 1;
    free(list);
    remove_temps(d);
    *out = d;
    return PS_OK;
}

void ps_ckdir_free(ps_ckdir *d)
{
    free(d);
}

const char *ps_ckdir_path(const ps_ckdir *d)
{
    return d->path;
}

uint64_t ps_ckdir_next_seq(ps_ckdir *d)
{
    return d->next_seq++;
}

static int sys_fail(const char *step, const char *path, char *err,
                    size_t errlen)
{
    snprintf(err, errlen, "%s %s: %s", step, path, strerror(errno));
    return PS_EIO;
}

int ps_ckdir_write(const ps_ckdir *d, uint64_t seq, const ps_ckpt_state *st,
                   int64_t time_ms, char *file, uint64_t *bytes, char *err,
                   size_t errlen)
{
    char tmp[PS_CKPT_PATH_MAX];
    snprintf(tmp, sizeof(tmp), "%s/.shard-%u-%010llu.ckpt.tmp", d->path,
             d->shard, (unsigned long long)seq);
    snprintf(file, PS_CKPT_PATH_MAX, "%s/shard-%u-%010llu.ckpt", d->path,
             d->shard, (unsigned long long)seq);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return sys_fail("cannot create", tmp, err, errlen);
    char why[256];
    int rc = ps_ckpt_write(fd, st, time_ms, seq, bytes, why, sizeof(why));
    if (rc != PS_OK)
        snprintf(err, errlen, "writing %s: %s", tmp, why);
    else if (fsync(fd) != 0)
        rc = sys_fail("cannot fsync", tmp, err, errlen);
    if (close(fd) != 0 && rc == PS_OK)
        rc = sys_fail("cannot close", tmp, err, errlen);
    if (rc == PS_OK && rename(tmp, file) != 0)
        rc = sys_fail("cannot rename to", file, err, errlen);
    if (rc != PS_OK) {
        unlink(tmp);
        return rc;
    }
    /* The rename is durable only once the directory is. */
    int dfd = open(d->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        rc = sys_fail("cannot fsync directory", d->path, err, errlen);
    if (dfd >= 0)
        close(dfd);
    return rc;
}

int ps_ckdir_rotate(ps_ckdir *d)
{
    entry *list;
    size_t n;
    char err[256];
    if (list_dir(d->path, d->shard, &list, &n, NULL, err, sizeof(err)) !=
        PS_OK) {
        ps_log(PS_LOG_WARN, "cannot rotate checkpoints: %s", err);
        return 0;
    }
    int deleted = 0;
    for (size_t i = (size_t)d->keep; i < n; i++) {
        char path[PS_CKPT_PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/%s", d->path, list[i].name);
        if (unlink(path) == 0)
            deleted++;
        else
            ps_log(PS_LOG_WARN, "cannot delete an old checkpoint file=%s: %s",
                   path, strerror(errno));
    }
    free(list);
    return deleted;
}

/* ---- restore ---- */

static int map_file(const char *path, ps_ckpt_pick *pick, char *err,
                    size_t errlen)
{
    size_t len = strlen(path);
    if (len >= sizeof(pick->path)) {
        snprintf(err, errlen,
                 "checkpoint path of %zu bytes is longer than %zu: %.64s...",
                 len, sizeof(pick->path) - 1, path);
        return PS_EINVAL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_fail("cannot open", path, err, errlen);
    struct stat sb;
    int rc = PS_OK;
    if (fstat(fd, &sb) != 0) {
        rc = sys_fail("cannot stat", path, err, errlen);
    } else if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s is not a regular file", path);
        rc = PS_EIO;
    } else if (sb.st_size == 0) {
        pick->buf = NULL; /* mmap refuses 0 bytes; verify says "truncated" */
        pick->len = 0;
    } else {
        void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
            rc = sys_fail("cannot map", path, err, errlen);
        else {
            pick->buf = p;
            pick->len = (size_t)sb.st_size;
        }
    }
    close(fd);
    memcpy(pick->path, path, len + 1);
    return rc;
}

void ps_ckpt_pick_release(ps_ckpt_pick *pick)
{
    if (pick->buf != NULL)
        munmap((void *)pick->buf, pick->len);
    pick->buf = NULL;
    pick->len = 0;
}

/* Maps and verifies one file. PS_OK; PS_EMISMATCH (a wrong setting:
 * stop); anything else: this file is unusable (damaged, unreadable). */
static int try_file(const char *path, uint32_t shard, uint32_t shards,
                    const char *cluster_id, ps_ckpt_pick *pick, char *err,
                    size_t errlen)
{
    int rc = map_file(path, pick, err, errlen);
    if (rc != PS_OK)
        return rc;
    static const unsigned char empty = 0;
    char why[256];
    rc = ps_ckpt_verify(pick->buf ? pick->buf : &empty, pick->len, &pick->meta,
                        why, sizeof(why));
    if (rc != PS_OK) {
        snprintf(err, errlen, "checkpoint %s refused: %s", path, why);
    } else if (pick->meta.shard != shard || pick->meta.shards != shards) {
        snprintf(err, errlen,
                 "checkpoint %s is of shard %u of %u; this server is shard "
                 "%u of %u (--shard, --shards): refusing to restore it",
                 path, pick->meta.shard, pick->meta.shards, shard, shards);
        rc = PS_EMISMATCH;
    } else if (cluster_id != NULL &&
               strcmp(cluster_id, pick->meta.cluster_id) != 0) {
        snprintf(err, errlen,
                 "checkpoint %s is of cluster '%s'; this server is of "
                 "cluster '%s' (--cluster-id): refusing to restore it",
                 path, pick->meta.cluster_id, cluster_id);
        rc = PS_EMISMATCH;
    }
    if (rc != PS_OK)
        ps_ckpt_pick_release(pick);
    return rc;
}

int ps_ckpt_pick_source(const char *source, uint32_t shard, uint32_t shards,
                        const char *cluster_id, ps_ckpt_pick *pick, char *err,
                        size_t errlen)
{
    memset(pick, 0, sizeof(*pick));
    struct stat sb;
    int found = stat(source, &sb) == 0;
    if (!found && errno != ENOENT)
        return sys_fail("cannot read", source, err, errlen);
    if (found && !S_ISDIR(sb.st_mode))
        return try_file(source, shard, shards, cluster_id, pick, err, errlen);
    entry *list;
    size_t n, others;
    int rc = list_dir(source, shard, &list, &n, &others, err, errlen);
    if (rc != PS_OK)
        return rc;
    if (n == 0) {
        pick->none = 1;
        if (others > 0)
            snprintf(err, errlen,
                     "%s holds no checkpoint of shard %u (%zu of other "
                     "shards: check --shard)",
                     source, shard, others);
        else
            snprintf(err, errlen, "no checkpoint of shard %u in %s%s", shard,
                     source, found ? "" : " (no such directory)");
        free(list);
        return PS_EIO;
    }
    rc = PS_EIO;
    for (size_t i = 0; i < n; i++) {
        char path[PS_CKPT_PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/%s", source, list[i].name);
        rc = try_file(path, shard, shards, cluster_id, pick, err, errlen);
        if (rc == PS_OK || rc == PS_EMISMATCH)
            break;
        ps_log(PS_LOG_ERROR, "%s%s", err,
               i + 1 < n ? "; trying the previous one" : "");
        pick->skipped++;
    }
    if (rc != PS_OK && rc != PS_EMISMATCH) {
        rc = PS_EIO;
        snprintf(err, errlen,
                 "none of the %zu checkpoint(s) of shard %u in %s is valid "
                 "(each refusal is logged above)",
                 n, shard, source);
    }
    free(list);
    return rc;
}
