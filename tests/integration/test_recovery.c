/* Integration tests: checkpoints and restores of real ps-server processes.
 *
 * `ps-ctl save` (ps_client_save) then SIGKILL then a restart with
 * --restore latest on the same port gives back every value, the cluster id
 * (a client's Hello check passes) and the dedup windows (a replayed push is
 * not applied again); a client whose push is in flight while its shard is
 * down retries it against the restarted shard, logging a warning per retry
 * round, not per piece; SIGTERM writes a last checkpoint; periodic ones
 * appear and show in /status and /metrics; SAVE without a checkpoint
 * directory is refused; bad flags and directories give clear errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include "common/codec.h"
#include "common/partition.h"
#include "common/transport.h"
#include "harness.h"
#include "http_client.h"
#include "sparkps.h"

#include <cmocka.h>

#include "unit/ps_test.h"
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define CLUSTER "ckpt-it"
#define JOB "ckpt"
#define DENSE_LEN 4096u
#define DIM 4u
#define NKEYS 64
#define LR 0.5 /* SGD: w -= 0.5 * g, exact for g = 1 */
#define WAIT_MS 60000

typedef struct fx {
    char dir[64];
    ps_cluster cl;
    ps_client *c;
    int dense, sparse;
    uint64_t keys[NKEYS];
} fx;

static int setup(void **state)
{
    fx *x = calloc(1, sizeof(*x));
    assert_int_equal(ps_test_mkdtemp(x->dir, sizeof(x->dir), "ckpt-it"), 0);
    for (int i = 0; i < NKEYS; i++)
        x->keys[i] = 0x1000u + (uint64_t)i * 7919u;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    ps_client_free(x->c);
    ps_harness_kill_all();
    ps_test_rmtree(x->dir);
    free(x);
    return 0;
}

/* Starts shard i of n on port (0: a free one) with the checkpoint flags and
 * extra arguments (NULL-terminated). */
static int start_shard(fx *x, ps_test_server *s, int i, int n, int port,
                       const char *const *extra)
{
    char listen[64], shard[16], shards[16];
    snprintf(listen, sizeof(listen), "tcp://127.0.0.1:%d", port);
    snprintf(shard, sizeof(shard), "%d", i);
    snprintf(shards, sizeof(shards), "%d", n);
    const char *args[32] = {"--listen",         listen, "--shard",      shard,
                            "--shards",         shards, "--cluster-id", CLUSTER,
                            "--checkpoint-dir", x->dir};
    size_t k = 10;
    for (size_t j = 0; extra && extra[j] && k + 1 < 32; j++)
        args[k++] = extra[j];
    args[k] = NULL;
    return ps_server_start(s, args);
}

static void start_cluster(fx *x, int n, const char *const *extra)
{
    memset(&x->cl, 0, sizeof(x->cl));
    for (int i = 0; i < n; i++) {
        assert_int_equal(start_shard(x, &x->cl.srv[i], i, n, 0, extra), 0);
        x->cl.n++;
        size_t len = strlen(x->cl.servers);
        snprintf(x->cl.servers + len, sizeof(x->cl.servers) - len, "%s%s",
                 i ? "," : "", x->cl.srv[i].endpoint);
    }
}

static void client_cfg(fx *x, ps_client_cfg *cfg)
{
    ps_client_cfg_init(cfg);
    cfg->servers = x->cl.servers;
    cfg->job = JOB;
    cfg->cluster_id = CLUSTER;
    cfg->timeout_ms = 1000;
    cfg->retries = 30;
}

static void connect_and_define(fx *x)
{
    ps_client_cfg cfg;
    client_cfg(x, &cfg);
    x->c = ps_harness_connect(&cfg);
    assert_non_null(x->c);
    ps_table_spec d = {.name = "w", .kind = PS_DENSE, .len = DENSE_LEN};
    d.init = (ps_init){.kind = PS_INIT_UNIFORM, .a = -1, .b = 1, .seed = 3};
    d.optim = (ps_optim){.kind = PS_OPT_SGD, .lr = LR, .momentum = 0.5};
    assert_int_equal(ps_client_define(x->c, &d, &x->dense), PS_OK);
    ps_table_spec sp = {.name = "emb", .kind = PS_SPARSE, .dim = DIM};
    sp.init = (ps_init){.kind = PS_INIT_NORMAL, .a = 0, .b = 0.1, .seed = 5};
    sp.optim = (ps_optim){.kind = PS_OPT_ADAM, .lr = 0.01};
    assert_int_equal(ps_client_define(x->c, &sp, &x->sparse), PS_OK);
}

static void wait_ok(ps_client *c, ps_request *r)
{
    int rc = ps_client_wait(c, r, -1);
    if (rc != PS_OK)
        print_error("%s\n", ps_client_errmsg(c));
    assert_int_equal(rc, PS_OK);
}

/* Rounds of pushes to both tables, with varying gradients. */
static void train(fx *x, int rounds)
{
    static float g[DENSE_LEN], sg[NKEYS * DIM];
    for (int r = 0; r < rounds; r++) {
        for (size_t i = 0; i < DENSE_LEN; i++)
            g[i] = (float)((int)((i + (size_t)r) % 5) - 2);
        for (size_t i = 0; i < NKEYS * DIM; i++)
            sg[i] = (float)((int)((i * 3 + (size_t)r) % 7) - 3) / 4;
        ps_request *a, *b;
        assert_int_equal(ps_client_push(x->c, x->dense, 0, DENSE_LEN, g, &a),
                         PS_OK);
        assert_int_equal(
            ps_client_push_sparse(x->c, x->sparse, x->keys, NKEYS / 2, sg, &b),
            PS_OK);
        wait_ok(x->c, a);
        wait_ok(x->c, b);
    }
}

/* Every value: the dense table and all keys (half of them never pushed). */
static void pull_all(fx *x, float *dense, float *sparse)
{
    ps_request *a, *b;
    assert_int_equal(ps_client_pull(x->c, x->dense, 0, DENSE_LEN, dense, &a),
                     PS_OK);
    assert_int_equal(
        ps_client_pull_sparse(x->c, x->sparse, x->keys, NKEYS, sparse, &b),
        PS_OK);
    wait_ok(x->c, a);
    wait_ok(x->c, b);
}

static void expect_same_values(fx *x, const float *dense, const float *sparse)
{
    static float d2[DENSE_LEN], s2[NKEYS * DIM];
    pull_all(x, d2, s2);
    assert_memory_equal(dense, d2, sizeof(d2));
    assert_memory_equal(sparse, s2, sizeof(s2));
}

/* ---- raw pushes with a chosen (client id, sequence number) ---- */

/* Sends a dense PUSH of `count` ones at `offset` to table id 0 of the
 * server at endpoint; returns the reply's error code (-1: no reply). */
static int raw_push(const char *endpoint, uint64_t client, uint64_t seq,
                    uint64_t offset, uint64_t count)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    assert_int_equal(zmq_connect(s, endpoint), 0);
    ps_header h;
    ps_header_init(&h);
    h.has_type = h.has_request_id = h.has_client_id = h.has_seq = 1;
    h.type = SPARKPS__MSG_TYPE__PUSH;
    h.request_id = seq;
    h.client_id = client;
    h.seq = seq;
    h.has_table_id = h.has_offset = h.has_count = 1;
    h.table_id = 0;
    h.offset = offset;
    h.count = count;
    float *g = malloc(count * sizeof(float));
    for (uint64_t i = 0; i < count; i++)
        g[i] = 1;
    assert_int_equal(ps_send_header(s, &h, 1), PS_OK);
    assert_int_equal(ps_send_copy(s, g, count * sizeof(float), 0), PS_OK);
    free(g);
    int code = -1;
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    ps_frames f;
    if (zmq_poll(&it, 1, 10000) == 1 && ps_frames_recv(s, &f, 0) == PS_OK) {
        ps_header *rep = NULL;
        char err[256];
        if (ps_header_decode_max(ps_frame_data(&f, 0), ps_frame_size(&f, 0),
                                 PS_MAX_REPLY_HEADER_BYTES, &rep, err,
                                 sizeof(err)) == PS_OK)
            code = rep->has_error_code ? rep->error_code : PS_OK;
        ps_header_free(rep);
        ps_frames_close(&f);
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return code;
}

/* Checkpoint files of shard i in dir. */
static int count_ckpts(const char *dir, int shard)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "ls '%s' | grep -c '^shard-%d-.*\\.ckpt$'", dir,
             shard);
    FILE *p = popen(cmd, "r");
    int n = 0;
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

/* Not inlined: GCC's -Wdangling-pointer then mistakes the returned text
 * for a pointer to the local that received it. */
__attribute__((noinline)) static char *status_json(fx *x, int shard)
{
    char *json = NULL;
    assert_int_equal(ps_client_status_json(x->c, shard, &json), PS_OK);
    return json;
}

/* ps-ctl save, SIGKILL, restart with --restore latest: identical values,
 * the Hello check passes, a replayed push is not applied again. */
static void test_checkpoint_save_kill_restore_identical(void **state)
{
    fx *x = *state;
    static const char *const extra[] = {"--restore", "latest", NULL};
    start_cluster(x, 2, extra);
    connect_and_define(x);
    train(x, 4);
    /* A push with a known (client, seq) on shard 1's part of the table. */
    uint64_t lo = ps_dense_lo(DENSE_LEN, 1, 2);
    assert_int_equal(raw_push(x->cl.srv[1].endpoint, 0xfeed, 1, lo, 16), PS_OK);
    static float dense[DENSE_LEN], sparse[NKEYS * DIM];
    pull_all(x, dense, sparse);

    ps_client_cfg cfg;
    client_cfg(x, &cfg);
    ps_shard_result *res = NULL;
    size_t n = 0;
    char err[512];
    assert_int_equal(ps_client_save(&cfg, &res, &n, err, sizeof(err)), PS_OK);
    assert_int_equal(n, 2);
    for (size_t i = 0; i < n; i++) {
        char want[128];
        snprintf(want, sizeof(want), "%s/shard-%zu-", x->dir, i);
        assert_int_equal(res[i].status, PS_OK);
        assert_non_null(strstr(res[i].file, want));
        assert_true(res[i].bytes > DENSE_LEN / 2 * 8);
        assert_int_equal(access(res[i].file, R_OK), 0);
    }
    free(res);

    int port = x->cl.srv[1].port;
    ps_server_kill(&x->cl.srv[1]);
    assert_int_equal(start_shard(x, &x->cl.srv[1], 1, 2, port, extra), 0);
    /* The same client goes on (its sockets reconnect to the same port)... */
    expect_same_values(x, dense, sparse);
    /* ...and a new one passes the Hello check: the cluster id came back. */
    ps_client *c2 = ps_harness_connect(&cfg);
    assert_non_null(c2);
    ps_client_free(c2);
    char *json = status_json(x, 1);
    assert_non_null(strstr(json, "\"restored_from\":\""));
    assert_non_null(strstr(json, "\"cluster_id\":\"" CLUSTER "\""));
    free(json);

    /* The push of (0xfeed, 1) was in the checkpoint: a replay is answered
     * OK and not applied; the next sequence number is. */
    assert_int_equal(raw_push(x->cl.srv[1].endpoint, 0xfeed, 1, lo, 16), PS_OK);
    expect_same_values(x, dense, sparse);
    assert_int_equal(raw_push(x->cl.srv[1].endpoint, 0xfeed, 2, lo, 16), PS_OK);
    static float d2[DENSE_LEN], s2[NKEYS * DIM];
    pull_all(x, d2, s2);
    assert_true(d2[lo] != dense[lo]);
    assert_int_equal(ps_cluster_stop(&x->cl), 0);
}

static int count_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, needle) != NULL;
    fclose(f);
    return n;
}

/* A push in flight while its shard is down (killed) is retried against the
 * restarted shard and applied exactly once, with a warning per retry round
 * on stderr, not one per piece. */
static void test_checkpoint_client_survives_restart(void **state)
{
    fx *x = *state;
    static const char *const extra[] = {"--restore", "latest", NULL};
    start_cluster(x, 2, extra);
    ps_client_cfg cfg;
    client_cfg(x, &cfg);
    cfg.max_piece_bytes = 1024; /* many pieces wait on the dead shard */
    x->c = ps_harness_connect(&cfg);
    assert_non_null(x->c);
    ps_table_spec d = {.name = "once", .kind = PS_DENSE, .len = DENSE_LEN};
    d.optim = (ps_optim){.kind = PS_OPT_SGD, .lr = LR};
    int t;
    assert_int_equal(ps_client_define(x->c, &d, &t), PS_OK);
    ps_shard_result *res = NULL;
    size_t n = 0;
    char err[512];
    assert_int_equal(ps_client_save(&cfg, &res, &n, err, sizeof(err)), PS_OK);
    free(res);
    int port = x->cl.srv[1].port;
    ps_server_kill(&x->cl.srv[1]);

    static float ones[DENSE_LEN], after[DENSE_LEN];
    for (size_t i = 0; i < DENSE_LEN; i++)
        ones[i] = 1;
    char log[96];
    snprintf(log, sizeof(log), "%s/client.log", x->dir);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
    ps_request *r;
    int rc = ps_client_push(x->c, t, 0, DENSE_LEN, ones, &r);
    /* Shard 1 is down: its pieces time out (1 s) and are re-sent. */
    int early = rc == PS_OK ? ps_client_wait(x->c, r, 2500) : rc;
    int started = start_shard(x, &x->cl.srv[1], 1, 2, port, extra);
    int late = early == PS_ETIMEDOUT ? ps_client_wait(x->c, r, -1) : early;
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    assert_int_equal(rc, PS_OK);
    assert_int_equal(early, PS_ETIMEDOUT);
    assert_int_equal(started, 0);
    if (late != PS_OK)
        print_error("%s\n", ps_client_errmsg(x->c));
    assert_int_equal(late, PS_OK);
    int warnings = count_lines(log, "reconnecting shard=1");
    size_t pieces = (DENSE_LEN / 2) * sizeof(float) / 1024;
    print_message("retries=%llu warnings=%d pieces on shard 1=%zu\n",
                  (unsigned long long)ps_client_retries(x->c), warnings,
                  pieces);
    assert_true(ps_client_retries(x->c) >= pieces);
    assert_true(warnings >= 1);
    assert_true((size_t)warnings < pieces);
    /* Exactly once everywhere: 0 - 0.5 * 1. */
    assert_int_equal(ps_client_pull(x->c, t, 0, DENSE_LEN, after, &r), PS_OK);
    wait_ok(x->c, r);
    for (size_t i = 0; i < DENSE_LEN; i++)
        assert_true(after[i] == -0.5f);
    assert_int_equal(ps_cluster_stop(&x->cl), 0);
}

/* SIGTERM writes a last checkpoint that holds every push answered. */
static void test_checkpoint_sigterm_writes_last(void **state)
{
    fx *x = *state;
    start_cluster(x, 1, NULL);
    connect_and_define(x);
    assert_int_equal(count_ckpts(x->dir, 0), 0);
    train(x, 3);
    static float dense[DENSE_LEN], sparse[NKEYS * DIM];
    pull_all(x, dense, sparse);
    int port = x->cl.srv[0].port;
    assert_int_equal(ps_server_stop(&x->cl.srv[0], 30000), 0);
    assert_int_equal(count_ckpts(x->dir, 0), 1);
    static const char *const extra[] = {"--restore", "latest", NULL};
    assert_int_equal(start_shard(x, &x->cl.srv[0], 0, 1, port, extra), 0);
    expect_same_values(x, dense, sparse);
    assert_int_equal(ps_cluster_stop(&x->cl), 0);
    assert_int_equal(count_ckpts(x->dir, 0), 2);
}

/* "ok" of the status JSON's checkpoint object; -1 when absent. */
static int checkpoints_ok(const char *json)
{
    const char *key = "\"checkpoint\":{\"ok\":";
    const char *p = strstr(json, key);
    return p ? atoi(p + strlen(key)) : -1;
}

/* Periodic checkpoints appear, the newest K stay, /status and /metrics
 * report them. */
static void test_checkpoint_periodic_and_reported(void **state)
{
    fx *x = *state;
    static const char *const extra[] = {
        "--checkpoint-every", "1", "--checkpoint-keep", "2", "--http",
        "127.0.0.1:0",        NULL};
    start_cluster(x, 1, extra);
    connect_and_define(x);
    int ok = -1;
    for (int waited = 0; ok < 3 && waited < WAIT_MS; waited += 100) {
        train(x, 1);
        char *j = status_json(x, 0);
        ok = checkpoints_ok(j);
        free(j);
        if (ok < 3)
            usleep(100000);
    }
    assert_true(ok >= 3);
    char *json = status_json(x, 0);
    assert_non_null(strstr(json, "\"failed\":0"));
    assert_non_null(strstr(json, "\"last_file\":\""));
    assert_non_null(strstr(json, "\"last_bytes\":"));
    free(json);
    assert_int_equal(count_ckpts(x->dir, 0), 2);

    hc_reply rep;
    char err[256];
    assert_int_equal(hc_request(x->cl.srv[0].http, "GET", "/metrics", 10000,
                                &rep, err, sizeof(err)),
                     0);
    assert_int_equal(rep.status, 200);
    assert_non_null(
        strstr(rep.body, "sparkps_checkpoints_total{result=\"ok\"}"));
    assert_non_null(
        strstr(rep.body, "sparkps_checkpoints_total{result=\"failed\"} 0"));
    assert_non_null(
        strstr(rep.body, "sparkps_checkpoint_last_timestamp_seconds "));
    assert_non_null(strstr(rep.body, "sparkps_checkpoint_duration_seconds "));
    assert_non_null(strstr(rep.body, "sparkps_checkpoint_last_bytes "));
    hc_reply_free(&rep);
    assert_int_equal(ps_cluster_stop(&x->cl), 0);
}

/* SAVE to a server without --checkpoint-dir: EINVAL naming the flag. */
static void test_checkpoint_save_without_dir_einval(void **state)
{
    fx *x = *state;
    assert_int_equal(ps_cluster_start(&x->cl, 1, NULL), 0);
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = x->cl.servers;
    ps_shard_result *res = NULL;
    size_t n = 0;
    char err[512];
    assert_int_equal(ps_client_save(&cfg, &res, &n, err, sizeof(err)),
                     PS_EINVAL);
    assert_int_equal(n, 1);
    assert_int_equal(res[0].status, PS_EINVAL);
    assert_non_null(strstr(res[0].errmsg, "--checkpoint-dir"));
    assert_non_null(strstr(err, "--checkpoint-dir"));
    free(res);
    assert_int_equal(ps_cluster_stop(&x->cl), 0);
}

/* Runs ps-server with args; expects exit status `code` and `needle` in
 * its output. */
static void expect_cli(const char *const *args, int code, const char *needle)
{
    char out[8192];
    int st = ps_server_run_capture(args, out, sizeof(out), 30000);
    if (st != code || strstr(out, needle) == NULL)
        print_error("exit %d, want %d; output:\n%s\nwant: %s\n", st, code, out,
                    needle);
    assert_int_equal(st, code);
    assert_non_null(strstr(out, needle));
}

static void test_checkpoint_bad_flags_and_dirs(void **state)
{
    fx *x = *state;
    char file[96], sub[96], other[96];
    snprintf(file, sizeof(file), "%s/plain", x->dir);
    snprintf(sub, sizeof(sub), "%s/no/such", x->dir);
    snprintf(other, sizeof(other), "%s/other", x->dir);
    FILE *f = fopen(file, "w");
    fputs("not a checkpoint", f);
    fclose(f);
    {
        const char *a[] = {"--restore", "latest", NULL};
        expect_cli(a, 2, "--restore latest needs --checkpoint-dir");
    }
    {
        const char *a[] = {"--checkpoint-every", "5", NULL};
        expect_cli(a, 2, "--checkpoint-every needs --checkpoint-dir");
    }
    {
        const char *a[] = {"--checkpoint-dir", x->dir, "--checkpoint-keep", "0",
                           NULL};
        expect_cli(a, 2, "--checkpoint-keep");
    }
    {
        const char *a[] = {"--checkpoint-dir", file, NULL};
        expect_cli(a, 1, "is not a directory");
    }
    {
        const char *a[] = {"--checkpoint-dir", sub, NULL};
        expect_cli(a, 1, "cannot create checkpoint directory");
    }
    {
        const char *a[] = {"--restore", other, NULL};
        expect_cli(a, 1, "no checkpoint of shard 0 in");
    }
    {
        const char *a[] = {"--restore", file, NULL};
        expect_cli(a, 1, "not a sparkps checkpoint");
    }
    /* A damaged newest one falls back; all damaged is an error. */
    mkdir(other, 0755);
    char bad[128];
    snprintf(bad, sizeof(bad), "%s/shard-0-0000000007.ckpt", other);
    f = fopen(bad, "w");
    fputs("SPKPCKPT\1\0\0\0garbage that is no checkpoint", f);
    fclose(f);
    {
        const char *a[] = {"--restore", other, NULL};
        expect_cli(a, 1, "none of the 1 checkpoint(s) of shard 0");
    }
    {
        const char *a[] = {"--checkpoint-dir", other, "--restore", "latest",
                           NULL};
        expect_cli(a, 1, "shard-0-0000000007.ckpt refused: truncated");
    }
    /* A checkpoint of shard 0 of 1, restored as shard 1 of 2. */
    start_cluster(x, 1, NULL);
    assert_int_equal(ps_cluster_stop(&x->cl), 0);
    {
        char ck[128];
        snprintf(ck, sizeof(ck), "%s/shard-0-0000000001.ckpt", x->dir);
        const char *a[] = {"--restore", ck,  "--shard", "1",
                           "--shards",  "2", NULL};
        expect_cli(a, 1, "is of shard 0 of 1; this server is shard 1 of 2");
        const char *b[] = {"--restore", ck, "--cluster-id", "other", NULL};
        expect_cli(b, 1, "is of cluster '" CLUSTER "'");
    }
}

/* --restore latest on an empty directory starts fresh (the same command
 * line serves the first start and every restart). */
static void test_checkpoint_restore_latest_empty_starts_fresh(void **state)
{
    fx *x = *state;
    static const char *const extra[] = {"--restore", "latest", NULL};
    start_cluster(x, 1, extra);
    connect_and_define(x);
    char *json = status_json(x, 0);
    assert_non_null(strstr(json, "\"restored_from\":null"));
    free(json);
    assert_int_equal(ps_cluster_stop(&x->cl), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_checkpoint_save_kill_restore_identical, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_client_survives_restart,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_sigterm_writes_last,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_periodic_and_reported,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_save_without_dir_einval,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_bad_flags_and_dirs,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_checkpoint_restore_latest_empty_starts_fresh, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
