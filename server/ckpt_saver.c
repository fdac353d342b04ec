/* Background checkpoints by fork(); see ckpt_saver.h for why fork. */
#include "ckpt_saver.h"

#include "common/log.h"
#include "common/sparkps_err.h"
#include "common/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define CHILD_FD 3 /* the result pipe, moved here in the child */

struct ps_saver {
    ps_ckdir *dir;
    pid_t pid;          /* the writing child; 0: none */
    int fd;             /* read end of its result pipe; -1: none */
    size_t got;         /* result bytes received so far */
    ps_ckpt_result res; /* being received, or ready (ready = 1) */
    int ready;          /* a result waits for collect (written inline) */
};

int ps_saver_new(ps_saver **out, ps_ckdir *dir)
{
    ps_saver *sv = calloc(1, sizeof(*sv));
    if (sv == NULL)
        return PS_ENOMEM;
    sv->dir = dir;
    sv->fd = -1;
    *out = sv;
    return PS_OK;
}

void ps_saver_free(ps_saver *sv)
{
    if (sv == NULL)
        return;
    ps_ckpt_result res;
    if (sv->pid > 0)
        ps_saver_collect(sv, 1, &res);
    free(sv);
}

int ps_saver_busy(const ps_saver *sv)
{
    return sv->pid > 0 || sv->ready;
}

int ps_saver_fd(const ps_saver *sv)
{
    return sv->pid > 0 ? sv->fd : -1;
}

/* Writes the checkpoint and fills res; the work of the child (or of the
 * caller when fork failed or was not wanted). */
static void write_now(ps_saver *sv, const ps_ckpt_state *st, uint64_t seq,
                      int64_t t0_ns, ps_ckpt_result *res)
{
    res->status = ps_ckdir_write(sv->dir, seq, st, res->time_ms, res->file,
                                 &res->bytes, res->err, sizeof(res->err));
    res->duration_us = (ps_now_ns() - t0_ns) / 1000;
}

/* The child: a descriptor table holding only stdio and the pipe (it must
 * not keep the shard's port open should the parent die), no ZeroMQ, and
 * _exit() so no handler of the parent's runs here. */
static void child_main(ps_saver *sv, const ps_ckpt_state *st, uint64_t seq,
                       int64_t t0_ns, pid_t parent, int wfd)
{
    if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
        _exit(2);
    if (wfd != CHILD_FD && dup2(wfd, CHILD_FD) < 0)
        _exit(2);
    close_range(CHILD_FD + 1, ~0U, 0);
    ps_ckpt_result *res = &sv->res;
    write_now(sv, st, seq, t0_ns, res);
    const char *p = (const char *)res;
    size_t left = sizeof(*res);
    while (left > 0) {
        ssize_t k = write(CHILD_FD, p, left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            _exit(3);
        p += k;
        left -= (size_t)k;
    }
    _exit(res->status == PS_OK ? 0 : 1);
}

int ps_saver_start(ps_saver *sv, const ps_ckpt_state *st, int background)
{
    if (ps_saver_busy(sv))
        return PS_EINVAL;
    uint64_t seq = ps_ckdir_next_seq(sv->dir);
    memset(&sv->res, 0, sizeof(sv->res));
    sv->got = 0;
    sv->res.time_ms = ps_wall_ms();
    int64_t t0 = ps_now_ns();
    int pfd[2] = {-1, -1};
    pid_t pid = -1, parent = getpid();
    if (background && pipe2(pfd, O_CLOEXEC) == 0) {
        pid = fork();
        if (pid == 0)
            child_main(sv, st, seq, t0, parent, pfd[1]);
    }
    if (pid < 0) {
        if (background)
            ps_log(PS_LOG_WARN,
                   "cannot fork a checkpoint writer (%s): writing it in the "
                   "event loop, which stops serving meanwhile",
                   strerror(errno));
        if (pfd[0] >= 0) {
            close(pfd[0]);
            close(pfd[1]);
        }
        write_now(sv, st, seq, t0, &sv->res);
        sv->ready = 1;
        return PS_OK;
    }
    close(pfd[1]);
    fcntl(pfd[0], F_SETFL, fcntl(pfd[0], F_GETFL) | O_NONBLOCK);
    sv->pid = pid;
    sv->fd = pfd[0];
    return PS_OK;
}

/* Reads what the child sent; 1 at end of file (the child is done). */
static int drain_pipe(ps_saver *sv, int block)
{
    for (;;) {
        char *dst = (char *)&sv->res + sv->got;
        size_t room = sizeof(sv->res) - sv->got;
        char sink[256];
        ssize_t k =
            room ? read(sv->fd, dst, room) : read(sv->fd, sink, sizeof(sink));
        if (k > 0) {
            if (room)
                sv->got += (size_t)k;
            continue;
        }
        if (k == 0)
            return 1;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN)
            return 1; /* judged by what arrived and the exit status */
        if (!block)
            return 0;
        struct pollfd p = {sv->fd, POLLIN, 0};
        poll(&p, 1, -1);
    }
}

int ps_saver_collect(ps_saver *sv, int block, ps_ckpt_result *res)
{
    if (sv->pid <= 0 && !sv->ready)
        return 0;
    if (sv->pid > 0) {
        if (!drain_pipe(sv, block))
            return 0;
        int st = 0;
        while (waitpid(sv->pid, &st, 0) < 0 && errno == EINTR)
            ;
        close(sv->fd);
        if (sv->got != sizeof(sv->res)) {
            int64_t time_ms = sv->res.time_ms;
            memset(&sv->res, 0, sizeof(sv->res));
            sv->res.time_ms = time_ms;
            sv->res.status = PS_EIO;
            if (WIFSIGNALED(st))
                snprintf(sv->res.err, sizeof(sv->res.err),
                         "the checkpoint writer (pid %d) was killed by "
                         "signal %d",
                         (int)sv->pid, WTERMSIG(st));
            else
                snprintf(sv->res.err, sizeof(sv->res.err),
                         "the checkpoint writer (pid %d) exited %d without "
                         "a result",
                         (int)sv->pid, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        }
        sv->pid = 0;
        sv->fd = -1;
    }
    sv->ready = 0;
    *res = sv->res;
    if (res->status == PS_OK)
        ps_ckdir_rotate(sv->dir);
    return 1;
}
