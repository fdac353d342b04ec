/* Real-process harness for integration tests; see harness.h. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* pids of servers started and not yet stopped, for cleanup after a failed
 * assertion (cmocka longjmps out of the test). */
static pid_t live[64];
static int live_registered;

static void track(pid_t pid)
{
    if (!live_registered) {
        atexit(ps_harness_kill_all);
        live_registered = 1;
    }
    for (int i = 0; i < 64; i++) {
        if (live[i] == 0) {
            live[i] = pid;
            return;
        }
    }
}

static void untrack(pid_t pid)
{
    for (int i = 0; i < 64; i++)
        if (live[i] == pid)
            live[i] = 0;
}

void ps_harness_kill_all(void)
{
    for (int i = 0; i < 64; i++) {
        if (live[i] > 0) {
            kill(live[i], SIGKILL);
            waitpid(live[i], NULL, 0);
            live[i] = 0;
        }
    }
}

int ps_harness_teardown(void **state)
{
    (void)state;
    ps_harness_kill_all();
    return 0;
}

static const char *server_bin(void)
{
    const char *b = getenv("PS_SERVER_BIN");
    return b && *b ? b : "ps-server";
}

static void build_argv(const char **argv, size_t max, const char *const *args)
{
    size_t n = 0;
    argv[n++] = server_bin();
    for (size_t i = 0; args && args[i] && n + 1 < max; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
}

/* Reads one line from fd within timeout_ms. */
static int read_line(int fd, char *buf, size_t len, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < len) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0)
            return -1;
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0)
            return -1;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return 0;
}

int ps_server_start(ps_test_server *s, const char *const *args)
{
    return ps_server_start_log(s, args, NULL);
}

int ps_server_start_log(ps_test_server *s, const char *const *args,
                        const char *log)
{
    int out[2];
    int err = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0600) : -1;
    if ((log && err < 0) || pipe(out) != 0) {
        if (err >= 0)
            close(err);
        return -1;
    }
    const char *argv[64];
    build_argv(argv, 64, args);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        if (err >= 0)
            dup2(err, STDERR_FILENO);
        close(out[0]);
        close(out[1]);
        execvp(argv[0], (char *const *)argv);
        perror("exec ps-server");
        _exit(127);
    }
    if (err >= 0)
        close(err);
    close(out[1]);
    memset(s, 0, sizeof(*s));
    s->pid = pid;
    track(pid);
    int rc = read_line(out[0], s->endpoint, sizeof(s->endpoint), 10000);
    int http = 0;
    for (size_t i = 0; args && args[i]; i++)
        http |= strcmp(args[i], "--http") == 0;
    if (rc == 0 && http)
        rc = read_line(out[0], s->http, sizeof(s->http), 10000);
    close(out[0]);
    if (rc != 0 || strncmp(s->endpoint, "tcp://", 6) != 0 ||
        (http && strncmp(s->http, "http://", 7) != 0)) {
        fprintf(stderr, "harness: ps-server gave no endpoint%s line\n",
                http ? " or URL" : "");
        ps_server_kill(s);
        return -1;
    }
    if (http) {
        const char *c = strrchr(s->http, ':');
        s->http_port = c ? atoi(c + 1) : 0;
    }
    const char *colon = strrchr(s->endpoint, ':');
    s->port = colon ? atoi(colon + 1) : 0;
    return 0;
}

int ps_server_wait(ps_test_server *s, int timeout_ms)
{
    if (s->pid <= 0)
        return -1;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            untrack(s->pid);
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    return -1;
}

int ps_server_stop(ps_test_server *s, int timeout_ms)
{
    if (s->pid <= 0)
        return 0;
    kill(s->pid, SIGTERM);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        int st;
        pid_t r = waitpid(s->pid, &st, WNOHANG);
        if (r == s->pid) {
            untrack(s->pid);
            s->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        usleep(10000);
    }
    ps_server_kill(s);
    return -1;
}

void ps_server_kill(ps_test_server *s)
{
    if (s->pid <= 0)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    untrack(s->pid);
    s->pid = 0;
}

int ps_cluster_start(ps_cluster *c, int n, const char *const *extra)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < n; i++) {
        char shard[16], shards[16];
        snprintf(shard, sizeof(shard), "%d", i);
        snprintf(shards, sizeof(shards), "%d", n);
        const char *args[48] = {"--listen", "tcp://127.0.0.1:0", "--shard",
                                shard,      "--shards",          shards};
        size_t k = 6;
        for (size_t j = 0; extra && extra[j] && k + 1 < 48; j++)
            args[k++] = extra[j];
        args[k] = NULL;
        if (ps_server_start(&c->srv[i], args) != 0) {
            ps_cluster_stop(c);
            return -1;
        }
        c->n++;
        size_t len = strlen(c->servers);
        snprintf(c->servers + len, sizeof(c->servers) - len, "%s%s",
                 i ? "," : "", c->srv[i].endpoint);
    }
    return 0;
}

int ps_cluster_stop(ps_cluster *c)
{
    int bad = 0;
    for (int i = 0; i < c->n; i++)
        if (c->srv[i].pid > 0 && ps_server_stop(&c->srv[i], 10000) != 0)
            bad = 1;
    c->n = 0;
    return bad ? -1 : 0;
}

int ps_server_run_capture(const char *const *args, char *buf, size_t len,
                          int timeout_ms)
{
    int err[2];
    if (pipe(err) != 0)
        return -1;
    const char *argv[64];
    build_argv(argv, 64, args);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(err[1], STDERR_FILENO);
        dup2(err[1], STDOUT_FILENO);
        close(err[0]);
        close(err[1]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(err[1]);
    size_t n = 0;
    for (;;) {
        struct pollfd p = {err[0], POLLIN, 0};
        if (poll(&p, 1, timeout_ms) <= 0)
            break;
        ssize_t r = read(err[0], buf + n, len - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
        if (n + 1 >= len)
            break;
    }
    buf[n] = '\0';
    close(err[0]);
    int st;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

ps_client *ps_harness_connect(const ps_client_cfg *cfg)
{
    char err[256];
    ps_client *c = NULL;
    if (ps_client_new(&c, cfg, err, sizeof(err)) != PS_OK)
        fprintf(stderr, "connect to %s: %s\n",
                cfg->servers ? cfg->servers : "$SPARKPS_SERVERS", err);
    return c;
}

int ps_harness_define_sgd(ps_client *c, const char *name, uint64_t len,
                          double lr)
{
    ps_table_spec s;
    memset(&s, 0, sizeof(s));
    s.name = name;
    s.kind = PS_DENSE;
    s.len = len;
    s.optim.kind = PS_OPT_SGD;
    s.optim.lr = lr;
    int t = -1;
    if (ps_client_define(c, &s, &t) != PS_OK) {
        fprintf(stderr, "define %s: %s\n", name, ps_client_errmsg(c));
        return -1;
    }
    return t;
}

uint64_t ps_harness_json_u64(const char *json, const char *after,
                             const char *key)
{
    const char *p = after != NULL ? strstr(json, after) : json;
    char pat[128];
    if (p == NULL)
        return UINT64_MAX;
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    p = strstr(p, pat);
    return p != NULL ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
}
