/* ps-train: the local launcher. Starts N ps-server shards and M ps-worker
 * processes on this machine (free ports, each worker on its share of the
 * data), shows one live progress line, stops everything on exit or Ctrl-C
 * and prints a summary (--json: a machine-readable last line).
 *
 * Single-threaded: a poll loop over the workers' stdout pipes, which carry
 * their JSON-lines progress. Children are started with fork/exec and
 * tracked by pid; nothing is left running on any exit path. */
#include "common/config.h"
#include "common/curve.h"
#include "common/log.h"
#include "common/sparkps_err.h"
#include "common/timeutil.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PROCS 64
#define FMNIST "/usr/share/datasets/fashion-mnist"

typedef struct train_opts {
    int64_t shards, workers;
    const char *model, *data, *labels, *eval, *eval_labels, *format;
    const char *optimizer, *consistency, *device;
    int64_t epochs, batch, pull_every, push_every, warmup_steps, seed;
    double lr;
    const char *lr_schedule;
    int json;
    const char *bin_dir;
    const char *init_from;
    int curve;
    const char *http;
} train_opts;

#define OPT(f) offsetof(train_opts, f)
static const ps_setting settings[] = {
    {"shards", PS_SET_INT, "2", 1, 64, OPT(shards), "N",
     "ps-server shards to start (one process each)"},
    {"workers", PS_SET_INT, "2", 1, 64, OPT(workers), "M", "worker processes"},
    {"model", PS_SET_STR, "mlp:784-256-128-10", 0, 0, OPT(model), "SPEC",
     "model to train (see ps-worker --help)"},
    {"data", PS_SET_STR, FMNIST "/train-images-idx3-ubyte.gz", 0, 0, OPT(data),
     "PATH", "training data (default: Fashion-MNIST train set)"},
    {"labels", PS_SET_STR, NULL, 0, 0, OPT(labels), "PATH",
     "idx: labels of --data (default: derived)"},
    {"eval", PS_SET_STR, FMNIST "/t10k-images-idx3-ubyte.gz", 0, 0, OPT(eval),
     "PATH", "test data evaluated after every epoch (\"\": none)"},
    {"eval-labels", PS_SET_STR, NULL, 0, 0, OPT(eval_labels), "PATH",
     "idx: labels of --eval (default: derived)"},
    {"format", PS_SET_STR, "idx", 0, 0, OPT(format), "FMT",
     "idx, csv or libsvm"},
    {"epochs", PS_SET_INT, "15", 1, 1e6, OPT(epochs), "E", "epochs"},
    {"batch", PS_SET_INT, "64", 1, 1e6, OPT(batch), "B", "mini-batch rows"},
    {"optimizer", PS_SET_STR, NULL, 0, 0, OPT(optimizer), "NAME",
     "sgd, momentum, adagrad, adam or ftrl (on the servers); default adam, "
     "ftrl for logreg"},
    {"lr", PS_SET_DOUBLE, "0", 0, 1e6, OPT(lr), "X",
     "learning rate; 0: 0.0005, ps-worker's default for logreg"},
    {"lr-schedule", PS_SET_STR, NULL, 0, 0, OPT(lr_schedule), "SPEC",
     "constant, step:EPOCHS:GAMMA or cosine[:FLOOR] (see ps-worker --help); "
     "default cosine, constant for logreg"},
    {"warmup-steps", PS_SET_INT, "0", 0, 1e12, OPT(warmup_steps), "N",
     "linear lr warm-up over each worker's first N steps"},
    {"push-every", PS_SET_INT, "1", 1, 1e6, OPT(push_every), "K",
     "workers push the mean gradient of K mini-batches"},
    {"pull-every", PS_SET_INT, "1", 1, 1e6, OPT(pull_every), "K",
     "workers fetch fresh weights with every K-th push"},
    {"consistency", PS_SET_STR, "asp", 0, 0, OPT(consistency), "MODEL",
     "asp, ssp:S or bsp"},
    {"device", PS_SET_STR, "cpu", 0, 0, OPT(device), "DEV",
     "each worker's compute device (ps-worker --device: cpu, cpu:T, "
     "cpu-deferred, cuda:N or a list like cuda:0,cuda:1)"},
    {"seed", PS_SET_INT, "1", 0, 9e18, OPT(seed), "S", "seed"},
    {"json", PS_SET_BOOL, "false", 0, 1, OPT(json), NULL,
     "print the summary as one JSON line on stdout"},
    {"bin-dir", PS_SET_STR, NULL, 0, 0, OPT(bin_dir), "DIR",
     "where ps-server and ps-worker are (default: beside ps-train)"},
    {"init-from", PS_SET_STR, NULL, 0, 0, OPT(init_from), "FILE",
     "warm start the workers from a ps-ctl export file (safetensors)"},
    {"curve", PS_SET_BOOL, "false", 0, 1, OPT(curve), NULL,
     "CurveZMQ between workers and servers, with a throwaway key set made "
     "for this run (a private temporary directory, removed at exit)"},
    {"http", PS_SET_STR, NULL, 0, 0, OPT(http), "HOST:PORT",
     "shard 0 serves /metrics, /status and the live dashboard page here "
     "(port 0: a free one; its URL is printed); it shows every worker"},
};
#undef OPT

typedef struct proc {
    pid_t pid;
    int out;         /* read end of its stdout; -1 when closed */
    char line[4096]; /* partial line */
    size_t len;
    /* latest progress of a worker */
    int epoch;
    double samples, loss, rate, test_acc, test_loss, test_auc;
    int done;
    int64_t done_ms; /* when its "done" line arrived: the last one to finish
                        evaluated the final model */
    int status;
} proc;

/* The children, global so every exit path can stop them. */
static proc servers[MAX_PROCS], workers[MAX_PROCS];
static int nservers, nworkers;

/* SIGTERM to a group of children, then wait up to grace_ms for each before
 * SIGKILL: nothing outlives ps-train. */
static void terminate(proc *p, int n, int grace_ms)
{
    for (int i = 0; i < n; i++)
        if (p[i].pid > 0)
            kill(p[i].pid, SIGTERM);
    int64_t deadline = ps_now_ms() + grace_ms;
    for (int i = 0; i < n; i++) {
        while (p[i].pid > 0) {
            if (waitpid(p[i].pid, NULL, WNOHANG) == p[i].pid) {
                p[i].pid = 0;
            } else if (ps_now_ms() >= deadline) {
                kill(p[i].pid, SIGKILL);
                waitpid(p[i].pid, NULL, 0);
                p[i].pid = 0;
            } else {
                usleep(10000);
            }
        }
    }
}

/* Workers first, while the servers still answer their last exchange. */
static void stop_all(void)
{
    terminate(workers, nworkers, 10000);
    terminate(servers, nservers, 10000);
}

/* --curve: a throwaway key set in a private directory (mkdtemp: 0700),
 * one pair for the servers and one for every worker. */
typedef struct keyset {
    char dir[PATH_MAX];
    char server_key[PATH_MAX + 16], server_pub[PATH_MAX + 16];
    char worker_key[PATH_MAX + 16], worker_pub[PATH_MAX + 16];
} keyset;

static int keyset_make(keyset *k)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(k->dir, sizeof(k->dir), "%s/ps-train-keys-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(k->dir) == NULL) {
        fprintf(stderr, "ps-train: --curve: cannot make %s: %s\n", k->dir,
                strerror(errno));
        k->dir[0] = '\0';
        return -1;
    }
    snprintf(k->server_key, sizeof(k->server_key), "%s/server.key", k->dir);
    snprintf(k->server_pub, sizeof(k->server_pub), "%s/server.pub", k->dir);
    snprintf(k->worker_key, sizeof(k->worker_key), "%s/worker.key", k->dir);
    snprintf(k->worker_pub, sizeof(k->worker_pub), "%s/worker.pub", k->dir);
    char base[PATH_MAX + 16], err[512];
    ps_curve_key pub;
    for (int i = 0; i < 2; i++) {
        snprintf(base, sizeof(base), "%s/%s", k->dir, i ? "worker" : "server");
        if (ps_curve_keygen(base, 0, &pub, err, sizeof(err)) != PS_OK) {
            fprintf(stderr, "ps-train: --curve: %s\n", err);
            return -1;
        }
    }
    return 0;
}

static void keyset_remove(keyset *k)
{
    if (k->dir[0] == '\0')
        return;
    const char *files[] = {k->server_key, k->server_pub, k->worker_key,
                           k->worker_pub};
    for (size_t i = 0; i < 4; i++)
        if (files[i][0])
            unlink(files[i]);
    if (rmdir(k->dir) != 0)
        fprintf(stderr, "ps-train: cannot remove %s: %s\n", k->dir,
                strerror(errno));
    k->dir[0] = '\0';
}

/* Starts argv with stdout on a pipe; returns 0 or -1. */
/* A worker's command line, built flag by flag; numbers are formatted into
 * the buffer's own storage. */
typedef struct argv_buf {
    char *v[64];
    int n;
    char num[24][64];
    int nnum;
} argv_buf;

/* Adds "flag value"; a NULL value adds nothing (the worker's default). */
static void arg(argv_buf *a, const char *flag, const char *value)
{
    if (value == NULL || a->n + 3 > (int)(sizeof(a->v) / sizeof(a->v[0])))
        return;
    a->v[a->n++] = (char *)flag;
    a->v[a->n++] = (char *)value;
}

static void arg_fmt(argv_buf *a, const char *flag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void arg_fmt(argv_buf *a, const char *flag, const char *fmt, ...)
{
    if (a->nnum == (int)(sizeof(a->num) / sizeof(a->num[0])))
        return;
    char *s = a->num[a->nnum++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s, sizeof(a->num[0]), fmt, ap);
    va_end(ap);
    arg(a, flag, s);
}

static void arg_int(argv_buf *a, const char *flag, int64_t v)
{
    arg_fmt(a, flag, "%lld", (long long)v);
}

static int spawn(proc *p, char *const *argv)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        dup2(fd[1], STDOUT_FILENO);
        close(fd[0]);
        close(fd[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "ps-train: cannot run %s: %s\n", argv[0],
                strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    memset(p, 0, sizeof(*p));
    p->pid = pid;
    p->out = fd[0];
    p->test_acc = NAN;
    p->test_auc = NAN;
    return 0;
}

static int read_line(proc *p, char *buf, size_t len, int timeout_ms)
{
    size_t n = 0;
    while (n + 1 < len) {
        struct pollfd pf = {p->out, POLLIN, 0};
        if (poll(&pf, 1, timeout_ms) <= 0 || read(p->out, buf + n, 1) != 1)
            return -1;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = '\0';
    return 0;
}

static double json_num(const char *line, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *at = strstr(line, pat);
    return at ? strtod(at + strlen(pat), NULL) : NAN;
}

static void take_line(proc *w, const char *line)
{
    if (strstr(line, "\"event\":") == NULL)
        return;
    w->epoch = (int)json_num(line, "epoch");
    w->samples = json_num(line, "samples");
    w->loss = json_num(line, "loss");
    if (strstr(line, "\"event\":\"progress\""))
        w->rate = json_num(line, "samples_per_s");
    double ta = json_num(line, "test_accuracy");
    if (!isnan(ta)) {
        w->test_acc = ta;
        w->test_loss = json_num(line, "test_loss");
        w->test_auc = json_num(line, "test_auc"); /* logreg only */
    }
    if (strstr(line, "\"event\":\"done\"")) {
        w->done = 1;
        w->done_ms = ps_now_ms();
    }
}

/* Reads what a worker wrote; returns 0 at EOF. */
static int pump(proc *w)
{
    char buf[4096];
    ssize_t n = read(w->out, buf, sizeof(buf));
    if (n <= 0) {
        close(w->out);
        w->out = -1;
        return 0;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || w->len + 1 >= sizeof(w->line)) {
            w->line[w->len] = '\0';
            take_line(w, w->line);
            w->len = 0;
        } else {
            w->line[w->len++] = buf[i];
        }
    }
    return 1;
}

static void find_bin(const train_opts *o, const char *name, char *out,
                     size_t len)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    self[n > 0 ? n : 0] = '\0';
    char *slash = strrchr(self, '/');
    if (slash)
        *slash = '\0';
    const char *dirs[3] = {o->bin_dir, self, NULL};
    char cand[PATH_MAX + 64];
    for (int i = 0; i < 2; i++) {
        if (dirs[i] == NULL)
            continue;
        snprintf(cand, sizeof(cand), "%s/%s", dirs[i], name);
        if (access(cand, X_OK) == 0)
            goto found;
        /* the build tree: build/worker/ps-train, build/server/ps-server */
        snprintf(cand, sizeof(cand), "%s/../server/%s", dirs[i], name);
        if (access(cand, X_OK) == 0)
            goto found;
    }
    snprintf(cand, sizeof(cand), "%s", name); /* from PATH (execvp) */
found:
    snprintf(out, len, "%s", cand);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: ps-train [options]\n\n"
                 "Trains a model on this machine with N ps-server shards and "
                 "M ps-worker\nprocesses. With no options: the MLP "
                 "784-256-128-10 on Fashion-MNIST\n(Debian package "
                 "dataset-fashion-mnist).\n\noptions:\n");
    ps_config_usage(out, settings, sizeof(settings) / sizeof(settings[0]));
}

static int file_exists(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0;
}

int main(int argc, char **argv)
{
    ps_log_set_name("ps-train");
    train_opts o;
    memset(&o, 0, sizeof(o));
    int done = ps_config_main(settings, sizeof(settings) / sizeof(settings[0]),
                              &o, argc, argv, "ps-train", usage);
    if (done >= 0)
        return done;
    if (!file_exists(o.data)) {
        fprintf(stderr, "ps-train: training data %s not found.%s\n", o.data,
                strncmp(o.data, FMNIST, strlen(FMNIST)) == 0
                    ? " Install Fashion-MNIST with: sudo apt-get install "
                      "dataset-fashion-mnist"
                    : "");
        return 1;
    }
    if (o.eval && *o.eval && !file_exists(o.eval)) {
        fprintf(stderr, "ps-train: eval data %s not found\n", o.eval);
        return 1;
    }
    char server_bin[PATH_MAX + 64], worker_bin[PATH_MAX + 64];
    find_bin(&o, "ps-server", server_bin, sizeof(server_bin));
    find_bin(&o, "ps-worker", worker_bin, sizeof(worker_bin));

    ps_config_stop_signals();

    keyset keys;
    memset(&keys, 0, sizeof(keys));
    char list[MAX_PROCS * 64] = "";
    char shards[16];
    snprintf(shards, sizeof(shards), "%lld", (long long)o.shards);
    int rc = 1;
    if (o.curve && keyset_make(&keys) != 0)
        goto out;
    for (int i = 0; i < o.shards; i++) {
        char shard[16];
        snprintf(shard, sizeof(shard), "%d", i);
        argv_buf sa = {.n = 0};
        sa.v[sa.n++] = server_bin;
        arg(&sa, "--listen", "tcp://127.0.0.1:0");
        arg(&sa, "--shard", shard);
        arg(&sa, "--shards", shards);
        arg(&sa, "--consistency", o.consistency);
        if (o.curve) {
            arg(&sa, "--curve-secret-key", keys.server_key);
            arg(&sa, "--curve-allow", keys.worker_pub);
        }
        if (i == 0)
            arg(&sa, "--http", o.http);
        sa.v[sa.n] = NULL;
        char ep[256];
        if (spawn(&servers[nservers], sa.v) != 0)
            goto out;
        nservers++;
        if (read_line(&servers[i], ep, sizeof(ep), 10000) != 0) {
            fprintf(stderr, "ps-train: server %d did not start (%s)\n", i,
                    server_bin);
            goto out;
        }
        size_t l = strlen(list);
        snprintf(list + l, sizeof(list) - l, "%s%s", i ? "," : "", ep);
        /* With --http the server's second line is the page's URL. */
        char url[256];
        if (i == 0 && o.http) {
            if (read_line(&servers[0], url, sizeof(url), 10000) != 0) {
                fprintf(stderr, "ps-train: server 0 did not say its HTTP "
                                "address\n");
                goto out;
            }
            fprintf(stderr, "ps-train: dashboard %s/ (metrics %s/metrics)\n",
                    url, url);
        }
    }
    fprintf(stderr, "ps-train: %d servers (%s), %d workers, model %s%s\n",
            nservers, list, (int)o.workers, o.model,
            o.curve ? ", CurveZMQ" : "");
    int64_t start = ps_now_ms();
    for (int i = 0; i < o.workers; i++) {
        /* lr 0 and no optimizer or schedule: the dense models' measured
         * defaults; ps-worker picks logreg's. */
        int logreg = strncmp(o.model, "logreg", 6) == 0;
        const char *sched = o.lr_schedule ? o.lr_schedule
                            : logreg      ? NULL
                                          : "cosine";
        argv_buf a = {.n = 0};
        a.v[a.n++] = worker_bin;
        arg(&a, "--servers", list);
        arg_int(&a, "--worker-id", i);
        arg_fmt(&a, "--part", "%d/%d", i, (int)o.workers);
        arg(&a, "--model", o.model);
        arg(&a, "--data", o.data);
        arg(&a, "--format", o.format);
        arg_int(&a, "--epochs", o.epochs);
        arg_int(&a, "--batch", o.batch);
        arg(&a, "--optimizer", o.optimizer);
        if (o.lr > 0 || !logreg)
            arg_fmt(&a, "--lr", "%g", o.lr > 0 ? o.lr : 0.0005);
        arg(&a, "--lr-schedule", sched);
        if (o.warmup_steps > 0)
            arg_int(&a, "--warmup-steps", o.warmup_steps);
        if (o.push_every > 1)
            arg_int(&a, "--push-every", o.push_every);
        arg_int(&a, "--pull-every", o.pull_every);
        arg_int(&a, "--seed", o.seed);
        arg(&a, "--device", o.device);
        arg(&a, "--labels", o.labels);
        arg(&a, "--eval", o.eval && *o.eval ? o.eval : NULL);
        arg(&a, "--eval-labels", o.eval_labels);
        arg(&a, "--init-from", o.init_from);
        if (o.curve) {
            arg(&a, "--curve-secret-key", keys.worker_key);
            arg(&a, "--curve-server-key", keys.server_pub);
        }
        a.v[a.n] = NULL;
        if (spawn(&workers[nworkers], a.v) != 0)
            goto out;
        nworkers++;
    }

    int tty = isatty(STDERR_FILENO);
    int64_t last = 0;
    for (;;) {
        struct pollfd pf[MAX_PROCS];
        int open = 0;
        for (int i = 0; i < nworkers; i++) {
            pf[i] = (struct pollfd){workers[i].out, POLLIN, 0};
            open += workers[i].out >= 0;
        }
        if (open == 0 || ps_stop_requested)
            break;
        poll(pf, (nfds_t)nworkers, 200);
        int failed = 0;
        for (int i = 0; i < nworkers; i++)
            if (workers[i].out >= 0 && (pf[i].revents & (POLLIN | POLLHUP)) &&
                !pump(&workers[i]) && !workers[i].done)
                failed = 1; /* output ended without "done": it failed */
        if (failed) {
            stop_all(); /* the others would train on without it */
            break;
        }
        int64_t now = ps_now_ms();
        if (now - last >= 1000) {
            double samples = 0, rate = 0, loss = 0, acc = NAN;
            int epoch = 0;
            for (int i = 0; i < nworkers; i++) {
                samples += workers[i].samples;
                rate += workers[i].rate;
                loss += workers[i].loss / nworkers;
                epoch = workers[i].epoch > epoch ? workers[i].epoch : epoch;
                if (!isnan(workers[i].test_acc))
                    acc = workers[i].test_acc;
            }
            char accs[32] = "-";
            if (!isnan(acc))
                snprintf(accs, sizeof(accs), "%.4f", acc);
            fprintf(stderr,
                    "%sepoch %d/%lld  %.0f samples  %.0f samples/s  loss "
                    "%.4f  test accuracy %s%s",
                    tty ? "\r" : "", epoch, (long long)o.epochs, samples, rate,
                    loss, accs, tty ? "  " : "\n");
            last = now;
        }
    }
    if (tty)
        fprintf(stderr, "\n");
    if (ps_stop_requested)
        stop_all(); /* Ctrl-C: workers and servers stop now, not later */
    for (int i = 0; i < nworkers; i++) {
        int st = 0;
        if (workers[i].pid > 0)
            waitpid(workers[i].pid, &st, 0);
        workers[i].pid = 0;
        workers[i].status = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
    }
    rc = ps_stop_requested ? 130 : 0;
    for (int i = 0; i < nworkers; i++)
        if (workers[i].status != 0 || !workers[i].done)
            rc = rc ? rc : 1;
    if (rc == 0) {
        double secs = (double)(ps_now_ms() - start) / 1000.0;
        double samples = 0, acc = NAN, auc = NAN;
        int64_t latest = -1;
        for (int i = 0; i < nworkers; i++) {
            samples += workers[i].samples;
            if (workers[i].done_ms > latest) {
                latest = workers[i].done_ms;
                acc = workers[i].test_acc;
                auc = workers[i].test_auc;
            }
        }
        char aucs[32] = "";
        if (!isnan(auc))
            snprintf(aucs, sizeof(aucs), ", test AUC %.4f", auc);
        fprintf(stderr,
                "ps-train: done in %.1f s, %.0f samples (%.0f samples/s), "
                "test accuracy %.4f%s\n",
                secs, samples, samples / secs, acc, aucs);
        if (o.json) /* test_auc first: the line's other fields stay as is */
            printf(isnan(auc) ? "{" : "{\"test_auc\":%.6g,", auc);
        if (o.json)
            printf("\"test_accuracy\":%.6g,\"seconds\":%.3f,"
                   "\"samples_per_s\":%.1f,\"samples\":%.0f,\"epochs\":%lld,"
                   "\"servers\":%d,\"workers\":%d}\n",
                   acc, secs, samples / secs, samples, (long long)o.epochs,
                   nservers, nworkers);
    } else {
        fprintf(stderr, "ps-train: %s\n",
                ps_stop_requested ? "interrupted"
                                  : "a worker failed (see above)");
    }
out:
    stop_all();
    keyset_remove(&keys);
    return rc;
}
