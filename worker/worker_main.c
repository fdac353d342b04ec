/* ps-worker: trains one model replica on its share of the data by
 * asynchronous SGD against the servers. Settings come from one table
 * (flags, SPARKPS_* environment variables and --help); progress is JSON
 * lines on stdout, logs go to stderr. */
#include "common/config.h"
#include "common/curve_client.h"
#include "common/log.h"
#include "common/secret_file.h"
#include "common/sparkps_err.h"
#include "lr_schedule.h"
#include "predict.h"
#include "sparse_lr.h"
#include "trainer.h"
#include "worker_http.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Exit status of a worker stopped because a newer attempt of its worker id
 * joined the servers: distinct from failures (1) and usage errors (2), so a
 * launcher can tell a stale process from a broken one. */
#define EXIT_SUPERSEDED 3

typedef struct worker_opts {
    const char *servers;
    const char *job;
    int64_t worker_id;
    int64_t attempt;
    const char *model;
    int64_t classes;
    const char *device;
    const char *data;
    const char *labels;
    const char *format;
    const char *eval;
    const char *eval_labels;
    const char *cache_dir;
    const char *part;
    int64_t csv_label_col;
    int csv_header;
    int zero_based;
    int64_t epochs;
    int64_t batch;
    const char *optimizer;
    double lr, momentum, weight_decay;
    const char *lr_schedule;
    int64_t warmup_steps;
    int64_t push_every;
    double l1, l2, ftrl_beta;
    int64_t pull_every;
    int overlap;
    int64_t seed;
    int64_t shuffle_rows;
    double progress_every;
    int64_t timeout_ms;
    int compute_only;
    const char *init_from;
    const char *curve_secret_key, *curve_server_key;
    const char *http;
    const char *http_token_file;
    const char *log_level;
} worker_opts;

#define OPT(f) offsetof(worker_opts, f)
static const ps_setting settings[] = {
    {"servers", PS_SET_STR, NULL, 0, 0, OPT(servers), "LIST",
     "shard endpoints in shard order (required)"},
    {"job", PS_SET_STR, "default", 0, 0, OPT(job), "NAME",
     "job namespace of the model's tables"},
    {"worker-id", PS_SET_INT, "0", 0, 65535, OPT(worker_id), "I",
     "this worker's id (its clock under SSP/BSP)"},
    {"attempt", PS_SET_INT, "0", 0, 2147483647, OPT(attempt), "N",
     "which attempt of this worker id this run is, growing with each retry "
     "(the Spark connector passes the task attempt id); while a newer "
     "attempt of the id is alive the servers refuse this one, which then "
     "exits with status 3"},
    {"model", PS_SET_STR, "mlp:784-256-128-10", 0, 0, OPT(model), "SPEC",
     "softmax, mlp:IN-H1-...-CLASSES (ReLU hidden layers), or logreg[:BITS] "
     "(sparse logistic regression, 2^BITS hashed keys, default 24; libsvm "
     "data)"},
    {"classes", PS_SET_INT, "10", 1, 1e6, OPT(classes), "C",
     "label classes (softmax; an mlp takes them from its spec)"},
    {"device", PS_SET_STR, "cpu", 0, 0, OPT(device), "DEV",
     "cpu, cpu:THREADS or cuda:N; or a comma-separated list of up to 16 "
     "(cuda:0,cuda:1): one model replica per device, each batch split "
     "between them, gradients summed (NCCL on GPUs), one push (softmax and "
     "mlp models); cpu-deferred is a testing device (the CPU run like a GPU "
     "stream: copies and operations wait for the sync point)"},
    {"data", PS_SET_STR, NULL, 0, 0, OPT(data), "PATH",
     "training data (idx: the images file; stream: - is stdin) (required)"},
    {"labels", PS_SET_STR, NULL, 0, 0, OPT(labels), "PATH",
     "idx: labels file (default: derived from --data)"},
    {"format", PS_SET_STR, "idx", 0, 0, OPT(format), "FMT",
     "idx, csv, libsvm or stream (spark-connector/FORMAT.md)"},
    {"eval", PS_SET_STR, NULL, 0, 0, OPT(eval), "PATH",
     "held-out data evaluated after every epoch"},
    {"eval-labels", PS_SET_STR, NULL, 0, 0, OPT(eval_labels), "PATH",
     "idx: labels of --eval (default: derived)"},
    {"cache-dir", PS_SET_STR, NULL, 0, 0, OPT(cache_dir), "DIR",
     "stream on a pipe, epochs > 1: where epoch 1 is cached "
     "(default: $TMPDIR, else /tmp)"},
    {"part", PS_SET_STR, "0/1", 0, 0, OPT(part), "I/M",
     "read every M-th record starting at I (this worker's share)"},
    {"csv-label-col", PS_SET_INT, "-1", -1, 1e6, OPT(csv_label_col), "K",
     "csv: label column, 0-based (-1: last)"},
    {"csv-header", PS_SET_BOOL, "false", 0, 1, OPT(csv_header), NULL,
     "csv: skip the first line"},
    {"zero-based", PS_SET_BOOL, "false", 0, 1, OPT(zero_based), NULL,
     "libsvm: feature indices start at 0 (default 1)"},
    {"epochs", PS_SET_INT, "1", 1, 1e6, OPT(epochs), "E",
     "passes over the data"},
    {"batch", PS_SET_INT, "64", 1, 1e6, OPT(batch), "B", "mini-batch rows"},
    {"optimizer", PS_SET_STR, NULL, 0, 0, OPT(optimizer), "NAME",
     "server-side optimizer: sgd, momentum, adagrad, adam, ftrl (logreg); "
     "default adam, ftrl for logreg"},
    {"lr", PS_SET_DOUBLE, "0", 0, 1e6, OPT(lr), "X",
     "learning rate (FTRL: alpha); 0: 0.001, 0.05 for logreg"},
    {"momentum", PS_SET_DOUBLE, "0", 0, 0.999999, OPT(momentum), "M",
     "sgd momentum (momentum optimizer: default 0.9)"},
    {"weight-decay", PS_SET_DOUBLE, "0", 0, 1e6, OPT(weight_decay), "WD",
     "L2 weight decay applied by the servers"},
    {"lr-schedule", PS_SET_STR, "constant", 0, 0, OPT(lr_schedule), "SPEC",
     "constant, step:EPOCHS:GAMMA (lr *= GAMMA every EPOCHS) or "
     "cosine[:FLOOR] (down to FLOOR * lr at the end); sent with each push"},
    {"warmup-steps", PS_SET_INT, "0", 0, 1e12, OPT(warmup_steps), "N",
     "ramp the lr up linearly over this worker's first N steps"},
    {"push-every", PS_SET_INT, "1", 1, 1e6, OPT(push_every), "K",
     "push the mean gradient of K mini-batches (one push per K steps)"},
    {"l1", PS_SET_DOUBLE, "0", 0, 1e6, OPT(l1), "X", "ftrl: L1 strength"},
    {"l2", PS_SET_DOUBLE, "0", 0, 1e6, OPT(l2), "X", "ftrl: L2 strength"},
    {"ftrl-beta", PS_SET_DOUBLE, "1", 0, 1e6, OPT(ftrl_beta), "X",
     "ftrl: beta of the per-key learning rate"},
    {"pull-every", PS_SET_INT, "1", 1, 1e6, OPT(pull_every), "K",
     "fetch fresh weights with every K-th push (pushpull)"},
    {"overlap", PS_SET_BOOL, "true", 0, 1, OPT(overlap), NULL,
     "overlap each step's exchange with the next step's compute"},
    {"seed", PS_SET_INT, "1", 0, 9e18, OPT(seed), "S",
     "seed of the shuffle and of the tables' init"},
    {"shuffle-rows", PS_SET_INT, "65536", 1, 1e9, OPT(shuffle_rows), "N",
     "rows held and shuffled at a time"},
    {"progress-every", PS_SET_DOUBLE, "1", 0, 86400, OPT(progress_every), "S",
     "seconds between progress lines"},
    {"timeout", PS_SET_INT, "0", 0, 3600000, OPT(timeout_ms), "MS",
     "client timeout per attempt (0: 5000)"},
    {"compute-only", PS_SET_BOOL, "false", 0, 1, OPT(compute_only), NULL,
     "benchmark baseline: no servers, compute only (weights stay fixed)"},
    {"init-from", PS_SET_STR, NULL, 0, 0, OPT(init_from), "FILE",
     "warm start: a safetensors file from ps-ctl export; applied to tables "
     "no push has reached yet"},
    PS_CURVE_CLIENT_SETTINGS(OPT(curve_secret_key), OPT(curve_server_key)),
    {"http", PS_SET_STR, "", 0, 0, OPT(http), "HOST:PORT",
     "serve this worker's /metrics (Prometheus) and /status (JSON): step "
     "time by phase, samples, loss, client retries; a bare PORT or :PORT "
     "binds 127.0.0.1; port 0 picks a free port (the URL goes to stderr "
     "as a log line: http url=...); off when empty"},
    {"http-token-file", PS_SET_STR, NULL, 0, 0, OPT(http_token_file), "FILE",
     "/metrics and /status need \"Authorization: Bearer TOKEN\", TOKEN "
     "being this file's content (mode 0600)"},
    {"log-level", PS_SET_STR, "info", 0, 0, OPT(log_level), "LEVEL",
     "error, warn, info or debug"},
};
#undef OPT

/* ps-worker predict: its own settings (no servers, a model file). */
typedef struct predict_opts {
    const char *model_file;
    const char *data;
    const char *labels;
    const char *format;
    int64_t csv_label_col;
    int csv_header;
    int zero_based;
    const char *out;
    const char *device;
    int64_t batch;
    const char *log_level;
} predict_opts;

#define OPT(f) offsetof(predict_opts, f)
static const ps_setting predict_settings[] = {
    {"model-file", PS_SET_STR, NULL, 0, 0, OPT(model_file), "FILE",
     "safetensors model from ps-ctl export (required)"},
    {"data", PS_SET_STR, NULL, 0, 0, OPT(data), "PATH",
     "rows to score (idx: the images file) (required)"},
    {"labels", PS_SET_STR, NULL, 0, 0, OPT(labels), "PATH",
     "idx: labels file (default: derived from --data)"},
    {"format", PS_SET_STR, "idx", 0, 0, OPT(format), "FMT",
     "idx, csv or libsvm"},
    {"csv-label-col", PS_SET_INT, "-1", -1, 1e6, OPT(csv_label_col), "K",
     "csv: label column, 0-based (-1: last); not a feature"},
    {"csv-header", PS_SET_BOOL, "false", 0, 1, OPT(csv_header), NULL,
     "csv: skip the first line"},
    {"zero-based", PS_SET_BOOL, "false", 0, 1, OPT(zero_based), NULL,
     "libsvm: feature indices start at 0 (default 1)"},
    {"out", PS_SET_STR, "-", 0, 0, OPT(out), "FILE",
     "where the predictions go (-: stdout)"},
    {"device", PS_SET_STR, "cpu", 0, 0, OPT(device), "DEV",
     "cpu, cpu:THREADS, cpu-deferred (testing) or cuda:N"},
    {"batch", PS_SET_INT, "256", 1, 1e6, OPT(batch), "B",
     "rows per forward pass"},
    {"log-level", PS_SET_STR, "info", 0, 0, OPT(log_level), "LEVEL",
     "error, warn, info or debug"},
};
#undef OPT

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ps-worker --servers LIST --data PATH [options]\n"
            "       ps-worker predict --model-file FILE --data PATH "
            "[options]\n\n"
            "Trains one model replica on this worker's share of the data by\n"
            "asynchronous SGD against running ps-server shards; the\n"
            "optimizer runs on the servers. Example (Fashion-MNIST, worker\n"
            "0 of 2):\n"
            "  ps-worker --servers tcp://h:7000,tcp://h:7001 --part 0/2 \\\n"
            "    --data /usr/share/datasets/fashion-mnist/"
            "train-images-idx3-ubyte.gz \\\n"
            "    --eval /usr/share/datasets/fashion-mnist/"
            "t10k-images-idx3-ubyte.gz \\\n"
            "    --model mlp:784-256-128-10 --epochs 5 --batch 64\n\n"
            "Progress: JSON lines on stdout ({\"event\": \"progress\" | "
            "\"epoch\" | \"done\", ...}).\n"
            "Exit status: 0 done, 1 failed, 2 bad usage, 3 superseded (a\n"
            "newer --attempt of this --worker-id joined the servers).\n\n"
            "options:\n");
    ps_config_usage(out, settings, sizeof(settings) / sizeof(settings[0]));
}

static void predict_usage(FILE *out)
{
    fprintf(out,
            "usage: ps-worker predict --model-file FILE --data PATH "
            "[options]\n\n"
            "Scores every row of --data with a model exported by ps-ctl\n"
            "export (no servers). One line per input row, in order:\n"
            "  CLASS,P0,P1,...   (argmax class, then each class's "
            "probability)\n"
            "The rows read and their accuracy against the data's labels go "
            "to\nstderr.\n\noptions:\n");
    ps_config_usage(out, predict_settings,
                    sizeof(predict_settings) / sizeof(predict_settings[0]));
}

static int parse_format(const char *s, ps_data_format *f);

static void free_token(char *token)
{
    if (token != NULL)
        ps_secret_wipe(token, strlen(token));
    free(token);
}

static int predict_main(int argc, char **argv)
{
    predict_opts o;
    memset(&o, 0, sizeof(o));
    int done =
        ps_config_main(predict_settings,
                       sizeof(predict_settings) / sizeof(predict_settings[0]),
                       &o, argc, argv, "ps-worker predict", predict_usage);
    if (done >= 0)
        return done;
    int level = ps_log_parse_level(o.log_level);
    if (level < 0 || o.model_file == NULL || o.data == NULL) {
        fprintf(stderr, "ps-worker predict: %s (see --help)\n",
                level < 0 ? "--log-level: unknown level"
                          : "--model-file and --data are required");
        return 2;
    }
    ps_log_set_level((ps_log_level)level);
    ps_predict_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (parse_format(o.format, &cfg.data.format) != 0) {
        fprintf(stderr,
                "ps-worker predict: --format: expected idx, csv, libsvm or "
                "stream, "
                "got '%s'\n",
                o.format);
        return 2;
    }
    cfg.model_file = o.model_file;
    cfg.data.path = o.data;
    cfg.data.labels_path = o.labels;
    cfg.data.csv_label_col = (int)o.csv_label_col;
    cfg.data.csv_header = o.csv_header;
    cfg.data.libsvm_one_based = !o.zero_based;
    cfg.device = o.device;
    cfg.batch = (size_t)o.batch;
    /* A file is written beside its final name and renamed when complete,
     * so a failed run never leaves half the predictions behind. */
    int to_stdout = strcmp(o.out, "-") == 0;
    char tmp[2048];
    FILE *out = stdout;
    if (!to_stdout && strlen(o.out) > sizeof(tmp) - 32) {
        fprintf(stderr, "ps-worker predict: --out: path too long\n");
        return 2;
    }
    if (!to_stdout) {
        snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", o.out, (long)getpid());
        out = fopen(tmp, "w");
        if (out == NULL) {
            fprintf(stderr, "ps-worker predict: %s: %s\n", tmp,
                    strerror(errno));
            return 1;
        }
    }
    char err[4200];
    ps_predict_result r;
    int rc = ps_predict_run(&cfg, out, &r, err, sizeof(err));
    if (!to_stdout) {
        if (fclose(out) != 0 && rc == PS_OK) {
            snprintf(err, sizeof(err), "%s: %s", tmp, strerror(errno));
            rc = PS_EIO;
        }
        if (rc == PS_OK && rename(tmp, o.out) != 0) {
            snprintf(err, sizeof(err), "%s: %s", o.out, strerror(errno));
            rc = PS_EIO;
        }
        if (rc != PS_OK)
            unlink(tmp);
    }
    if (rc != PS_OK) {
        fprintf(stderr, "ps-worker predict: %s\n", err);
        return 1;
    }
    ps_log(PS_LOG_INFO, "predicted rows=%llu accuracy=%.4f",
           (unsigned long long)r.rows, r.accuracy);
    return 0;
}

static int parse_format(const char *s, ps_data_format *f)
{
    static const char *names[] = {"libsvm", "csv", "idx", "stream"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *f = (ps_data_format)i;
            return 0;
        }
    }
    return -1;
}

int main(int argc, char **argv)
{
    ps_log_set_name("ps-worker");
    if (argc >= 2 && strcmp(argv[1], "predict") == 0)
        return predict_main(argc - 1, argv + 1);
    worker_opts o;
    memset(&o, 0, sizeof(o));
    int done = ps_config_main(settings, sizeof(settings) / sizeof(settings[0]),
                              &o, argc, argv, "ps-worker", usage);
    if (done >= 0)
        return done;
    char err[1024];
    int level = ps_log_parse_level(o.log_level);
    if (level < 0 || (o.servers == NULL && !o.compute_only) || o.data == NULL) {
        fprintf(stderr, "ps-worker: %s (see --help)\n",
                level < 0 ? "--log-level: unknown level"
                          : "--servers and --data are required");
        return 2;
    }
    ps_log_set_level((ps_log_level)level);
    ps_train_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    unsigned part, parts;
    char tail;
    if (sscanf(o.part, "%u/%u%c", &part, &parts, &tail) != 2 || parts == 0 ||
        part >= parts) {
        fprintf(stderr,
                "ps-worker: --part: expected I/M with I < M, got "
                "'%s'\n",
                o.part);
        return 2;
    }
    if (parse_format(o.format, &cfg.data.format) != 0) {
        fprintf(stderr,
                "ps-worker: --format: expected idx, csv, libsvm or "
                "stream, got '%s'\n",
                o.format);
        return 2;
    }
    ps_lr_schedule sched;
    if (ps_lr_schedule_parse(&sched, o.lr_schedule, (int)o.epochs,
                             (uint64_t)o.warmup_steps, err,
                             sizeof(err)) != PS_OK) {
        fprintf(stderr, "ps-worker: %s\n", err);
        return 2;
    }
    if (o.eval && strcmp(o.eval, "-") == 0) {
        fprintf(stderr, "ps-worker: --eval: stdin (-) is not accepted; "
                        "give a file (it is read every epoch)\n");
        return 2;
    }
    cfg.servers = o.servers;
    cfg.job = o.job;
    cfg.worker_id = (int)o.worker_id;
    cfg.attempt = (int)o.attempt;
    cfg.model = o.model;
    cfg.classes = strncmp(o.model, "mlp:", 4) == 0 ? 0 : (size_t)o.classes;
    cfg.device = o.device;
    cfg.data.path = o.data;
    cfg.data.labels_path = o.labels;
    cfg.data.part = part;
    cfg.data.parts = parts;
    cfg.data.csv_label_col = (int)o.csv_label_col;
    cfg.data.csv_header = o.csv_header;
    cfg.data.libsvm_one_based = !o.zero_based;
    cfg.data.cache_dir = o.cache_dir;
    if (o.eval) {
        cfg.eval = cfg.data;
        cfg.eval.path = o.eval;
        cfg.eval.labels_path = o.eval_labels;
        cfg.eval.part = 0;
        cfg.eval.parts = 1;
    }
    cfg.epochs = (int)o.epochs;
    cfg.batch = (size_t)o.batch;
    int logreg = ps_logreg_is_spec(o.model);
    cfg.optimizer = o.optimizer ? o.optimizer : logreg ? "ftrl" : "adam";
    cfg.lr = o.lr > 0 ? o.lr : logreg ? 0.05 : 0.001;
    cfg.l1 = o.l1;
    cfg.l2 = o.l2;
    cfg.ftrl_beta = o.ftrl_beta;
    cfg.momentum = o.momentum;
    cfg.weight_decay = o.weight_decay;
    cfg.lr_schedule = o.lr_schedule;
    cfg.warmup_steps = (uint64_t)o.warmup_steps;
    cfg.push_every = (int)o.push_every;
    cfg.pull_every = (int)o.pull_every;
    cfg.overlap = o.overlap;
    cfg.seed = (uint64_t)o.seed;
    cfg.shuffle_rows = (size_t)o.shuffle_rows;
    cfg.progress_every_s = o.progress_every;
    cfg.timeout_ms = (int)o.timeout_ms;
    cfg.compute_only = o.compute_only;
    cfg.init_from = o.init_from;
    cfg.curve_secret_key = o.curve_secret_key;
    cfg.curve_server_key = o.curve_server_key;

    ps_http_addr http_addr;
    int http_on;
    char *token = NULL;
    if (ps_http_flags(o.http, o.http_token_file, &http_on, &http_addr, &token,
                      err, sizeof(err)) != PS_OK) {
        fprintf(stderr, "ps-worker: %s\n", err);
        return 2;
    }
    ps_worker_http *http = NULL;
    if (http_on) {
        ps_worker_stats initial;
        ps_worker_stats_init(&initial, cfg.worker_id, cfg.attempt, cfg.device,
                             cfg.model);
        int hrc = ps_worker_http_new(&http, &http_addr, token, &initial, err,
                                     sizeof(err));
        if (hrc != PS_OK) {
            fprintf(stderr, "ps-worker: --http: %s\n", err);
            free_token(token);
            return 1;
        }
        if (!ps_http_addr_is_loopback(&http_addr))
            ps_log(PS_LOG_WARN,
                   "serving HTTP on a non-loopback address http=%s: anyone "
                   "who can reach it can read this worker's figures%s",
                   o.http, token ? " if they have the token" : "");
        /* stderr, not stdout: stdout is the JSON-lines progress contract
         * the Spark connector parses. */
        ps_log(PS_LOG_INFO, "http url=%s", ps_worker_http_url(http));
        cfg.publish = ps_worker_http_publish_cb;
        cfg.publish_arg = http;
    }

    ps_config_stop_signals();
    ps_train_result r;
    int rc =
        ps_train_run(&cfg, stdout, &ps_stop_requested, &r, err, sizeof(err));
    ps_worker_http_free(http);
    free_token(token);
    if (rc == PS_ESUPERSEDED) {
        /* The servers' message names both attempts: "a newer attempt N of
         * worker W has joined; this attempt M stops". */
        fprintf(stderr, "ps-worker: superseded: %s\n", err);
        return EXIT_SUPERSEDED;
    }
    if (rc != PS_OK) {
        /* A signal cuts a request short (ECANCELED) or ends the loop
         * between steps: either way the reason to report is the signal. */
        fprintf(stderr, "ps-worker: %s\n",
                ps_stop_requested ? "stopped by a signal" : err);
        return 1;
    }
    ps_log(PS_LOG_INFO, "finished samples=%llu seconds=%.1f test_accuracy=%.4f",
           (unsigned long long)r.samples, r.seconds, r.test_accuracy);
    if (!isnan(r.test_auc))
        ps_log(PS_LOG_INFO, "finished test_auc=%.4f", r.test_auc);
    return 0;
}
