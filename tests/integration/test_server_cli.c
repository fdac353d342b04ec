/* Integration tests: the ps-server command line, environment and signals.
 *
 * Bad settings are run through ps_server_run_capture() (exit status plus
 * stdout and stderr); servers that should come up are started by fixtures
 * with ps_server_start(), and the teardown fails the test unless the server
 * exited 0 on SIGTERM. Inherited SPARKPS_* variables are cleared first so
 * the caller's environment cannot change what the tests see. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include "common/codec.h"
#include "harness.h"
#include "sparkps.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define RUN_MS 10000  /* a CLI error must be reported within this */
#define STOP_MS 10000 /* a signalled server must exit within this */
#define STREAM_LEN 4096u
#define STREAM_DEPTH 4    /* pushes the streaming thread keeps in flight */
#define STREAM_BEFORE 200 /* pushes completed before SIGTERM is sent */

extern char **environ;

typedef struct srv_fx {
    ps_test_server srv;
} srv_fx;

/* ---- helpers ---- */

static int run(const char *const *args, char *out, size_t len)
{
    int st = ps_server_run_capture(args, out, len, RUN_MS);
    print_message("exit %d: %s", st, out);
    return st;
}

static void assert_contains(const char *text, const char *what)
{
    if (strstr(text, what) == NULL)
        fail_msg("output does not contain \"%s\":\n%s", what, text);
}

/* Sends sig and waits for the exit status (-1: still running after
 * timeout_ms, then killed). The exit is observed without reaping
 * (WNOWAIT), so that ps_server_stop() reaps it and the harness forgets the
 * pid; its own SIGTERM then reaches a zombie and changes nothing. */
static int signal_and_wait(ps_test_server *s, int sig, int timeout_ms)
{
    if (kill(s->pid, sig) != 0)
        return -1;
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        siginfo_t info;
        memset(&info, 0, sizeof(info));
        if (waitid(P_PID, (id_t)s->pid, &info, WEXITED | WNOHANG | WNOWAIT) ==
                0 &&
            info.si_pid == s->pid)
            return ps_server_stop(s, timeout_ms);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    ps_server_kill(s);
    return -1;
}

static ps_client *client_for(const char *servers, char *err, size_t errlen,
                             int *rc)
{
    ps_client_cfg cc;
    ps_client_cfg_init(&cc);
    cc.servers = servers;
    cc.job = "cli";
    cc.timeout_ms = 2000;
    cc.retries = -1;
    ps_client *c = NULL;
    *rc = ps_client_new(&c, &cc, err, errlen);
    return c;
}

/* A raw HELLO: what the server says it is, without the client's checks. */
static Sparkps__Hello *raw_hello(const char *endpoint, ps_header **keep)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    *keep = NULL;
    if (zmq_connect(s, endpoint) == 0) {
        ps_header h;
        ps_header_init(&h);
        h.has_type = h.has_request_id = 1;
        h.type = SPARKPS__MSG_TYPE__HELLO;
        h.request_id = 1;
        uint8_t buf[64];
        size_t n = ps_header_pack(&h, buf);
        zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_send(s, buf, n, 0) == (int)n && zmq_poll(&it, 1, 5000) > 0) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, s, 0) >= 0)
                *keep = sparkps__header__unpack(NULL, zmq_msg_size(&m),
                                                zmq_msg_data(&m));
            zmq_msg_close(&m);
        }
    }
    zmq_close(s);
    zmq_ctx_term(ctx);
    return *keep ? (*keep)->hello : NULL;
}

/* ---- fixtures ---- */

static int start_with(void **state, const char *const *args)
{
    srv_fx *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    if (ps_server_start(&f->srv, args) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int setup_default(void **state)
{
    static const char *const args[] = {"--listen", "tcp://127.0.0.1:0", NULL};
    return start_with(state, args);
}

static int setup_env_shards(void **state)
{
    static const char *const args[] = {"--listen", "tcp://127.0.0.1:0", NULL};
    setenv("SPARKPS_SHARDS", "3", 1);
    setenv("SPARKPS_SHARD", "2", 1);
    int rc = start_with(state, args);
    unsetenv("SPARKPS_SHARDS");
    unsetenv("SPARKPS_SHARD");
    return rc;
}

static int setup_env_overridden(void **state)
{
    static const char *const args[] = {
        "--listen", "tcp://127.0.0.1:0", "--shards", "1", "--shard", "0", NULL};
    setenv("SPARKPS_SHARDS", "3", 1);
    setenv("SPARKPS_SHARD", "2", 1);
    int rc = start_with(state, args);
    unsetenv("SPARKPS_SHARDS");
    unsetenv("SPARKPS_SHARD");
    return rc;
}

static int setup_wildcard(void **state)
{
    static const char *const args[] = {"--listen", "tcp://0.0.0.0:0",
                                       "--insecure", NULL};
    return start_with(state, args);
}

static int teardown(void **state)
{
    srv_fx *f = *state;
    int st = f->srv.pid > 0 ? ps_server_stop(&f->srv, STOP_MS) : 0;
    free(f);
    assert_int_equal(st, 0); /* exited 0 on SIGTERM */
    return 0;
}

/* Removes inherited SPARKPS_* variables (collected first: unsetenv changes
 * environ under the loop). */
static int clear_sparkps_env(void **state)
{
    (void)state;
    char names[64][128];
    int n = 0;
    for (char **e = environ; e && *e && n < 64; e++) {
        const char *eq = strchr(*e, '=');
        if (strncmp(*e, "SPARKPS_", 8) == 0 && eq &&
            (size_t)(eq - *e) < sizeof(names[0])) {
            memcpy(names[n], *e, (size_t)(eq - *e));
            names[n][eq - *e] = '\0';
            n++;
        }
    }
    for (int i = 0; i < n; i++)
        unsetenv(names[i]);
    return 0;
}

/* ---- flags that must be refused ---- */

static void test_server_main_help_lists_settings(void **state)
{
    (void)state;
    static const char *const args[] = {"--help", NULL};
    char out[16384];
    assert_int_equal(run(args, out, sizeof(out)), 0);
    assert_contains(out, "--listen");
    assert_contains(out, "--shard ");
    assert_contains(out, "--shards ");
    assert_contains(out, "--consistency");
    assert_contains(out, "SPARKPS_");
    assert_contains(out, "SPARKPS_SHARDS");
}

static void test_server_main_unknown_flag_exits_2(void **state)
{
    (void)state;
    static const char *const args[] = {"--no-such-flag", "1", NULL};
    char out[4096];
    assert_int_equal(run(args, out, sizeof(out)), 2);
    assert_contains(out, "--no-such-flag");
    static const char *const stray[] = {"positional", NULL};
    assert_int_equal(run(stray, out, sizeof(out)), 2);
    assert_contains(out, "positional");
}

static void test_server_main_shard_not_below_shards_fails(void **state)
{
    (void)state;
    static const char *const args[] = {"--shard", "2", "--shards", "2", NULL};
    char out[4096];
    int st = run(args, out, sizeof(out));
    assert_true(st != 0 && st != -1);
    assert_contains(out, "--shard");
    assert_contains(out, "2");
}

static void test_server_main_bad_consistency_exits_2(void **state)
{
    (void)state;
    static const char *const bad[][3] = {
        {"--consistency", "ssp:x", NULL}, {"--consistency", "foo", NULL},
        {"--consistency", "ssp:", NULL},  {"--consistency", "ssp:-1", NULL},
        {"--consistency", "", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[4096];
        assert_int_equal(run(bad[i], out, sizeof(out)), 2);
        assert_contains(out, "--consistency");
        assert_contains(out, bad[i][1]);
    }
}

static void test_server_main_shards_out_of_range_exits_2(void **state)
{
    (void)state;
    static const char *const bad[][3] = {
        {"--shards", "0", NULL},
        {"--shards", "65537", NULL},
        {"--shard", "-1", NULL},
        {"--max-message-bytes", "10", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[4096];
        assert_int_equal(run(bad[i], out, sizeof(out)), 2);
        assert_contains(out, bad[i][0]);
        assert_contains(out, "outside");
    }
}

static void test_server_main_non_integer_exits_2(void **state)
{
    (void)state;
    static const char *const bad[][3] = {
        {"--workers", "abc", NULL},
        {"--workers", "3x", NULL},
        {"--shards", "", NULL},
        {"--heartbeat", "99999999999999999999999", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[4096];
        assert_int_equal(run(bad[i], out, sizeof(out)), 2);
        assert_contains(out, bad[i][0]);
        assert_contains(out, "integer");
    }
    static const char *const missing[] = {"--workers", NULL};
    char out[4096];
    assert_int_equal(run(missing, out, sizeof(out)), 2);
    assert_contains(out, "--workers");
}

static void test_server_main_env_bad_value_exits_2(void **state)
{
    (void)state;
    static const char *const args[] = {NULL};
    char out[4096];
    setenv("SPARKPS_WORKERS", "many", 1);
    int st = run(args, out, sizeof(out));
    unsetenv("SPARKPS_WORKERS");
    assert_int_equal(st, 2);
    assert_contains(out, "SPARKPS_WORKERS");
}

static void test_server_main_unbindable_listen_exits_1(void **state)
{
    (void)state;
    static const char *const bad[][4] = {
        {"--listen", "tcp://256.1.1.1:0", "--insecure", NULL},
        {"--listen", "bogus://x", "--insecure", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[4096];
        assert_int_equal(run(bad[i], out, sizeof(out)), 1);
        assert_contains(out, "cannot listen");
        assert_contains(out, bad[i][1]);
        /* Nothing that looks like an endpoint line was printed. */
        assert_null(strstr(out, "\ntcp://"));
        assert_true(strncmp(out, "tcp://", 6) != 0);
    }
}

/* libzmq would wrap an out-of-range port silently (99999 -> 34463). */
static void test_server_main_listen_port_out_of_range_exits_2(void **state)
{
    (void)state;
    static const char *const bad[][3] = {
        {"--listen", "tcp://127.0.0.1:99999", NULL},
        {"--listen", "tcp://127.0.0.1:7x", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[4096];
        assert_int_equal(run(bad[i], out, sizeof(out)), 2);
        assert_contains(out, "not 0..65535");
    }
}

static void test_server_main_bad_http_exits_2(void **state)
{
    (void)state;
    static const char *const bad[][3] = {
        {"127.0.0.1", "has no port", NULL},
        {"127.0.0.1:", "is not a number 0..65535", NULL},
        {"127.0.0.1:65536", "is not a number 0..65535", NULL},
        {"127.0.0.1:-1", "is not a number 0..65535", NULL},
        {"127.0.0.1:80x", "is not a number 0..65535", NULL},
        {":", "no host", NULL}, /* ":9100" and "9100" mean 127.0.0.1 */
        {"::1:9100", "in brackets", NULL},
        {"[::1:9100", "HOST:PORT", NULL},
        {"no-such-host.invalid:9100", "cannot resolve host", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *args[] = {"--http", bad[i][0], NULL};
        char out[4096];
        assert_int_equal(run(args, out, sizeof(out)), 2);
        assert_contains(out, "ps-server: --http: ");
        assert_contains(out, bad[i][1]);
        assert_null(strstr(out, "tcp://")); /* nothing started */
    }
    /* The same check through the environment. */
    static const char *const none[] = {NULL};
    char out[4096];
    setenv("SPARKPS_HTTP", "localhost:99999", 1);
    int st = run(none, out, sizeof(out));
    unsetenv("SPARKPS_HTTP");
    assert_int_equal(st, 2);
    assert_contains(out, "is not a number 0..65535");
}

static void test_server_main_http_port_in_use_exits_1(void **state)
{
    (void)state;
    ps_test_server a;
    static const char *const first[] = {"--http", "127.0.0.1:0", NULL};
    assert_int_equal(ps_server_start(&a, first), 0);
    char addr[64], out[4096];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", a.http_port);
    const char *args[] = {"--http", addr, NULL};
    int st = run(args, out, sizeof(out));
    assert_int_equal(ps_server_stop(&a, STOP_MS), 0);
    assert_int_equal(st, 1);
    assert_contains(out, "cannot serve HTTP on 127.0.0.1:");
    assert_null(strstr(out, "tcp://"));
}

/* ---- servers that come up ---- */

static void test_server_main_env_shards_client_mismatch(void **state)
{
    srv_fx *f = *state;
    /* The server took shard 2 of 3 from SPARKPS_SHARD / SPARKPS_SHARDS. */
    ps_header *keep;
    Sparkps__Hello *hello = raw_hello(f->srv.endpoint, &keep);
    assert_non_null(hello);
    assert_int_equal(hello->shard, 2);
    assert_int_equal(hello->shards, 3);
    ps_header_free(keep);
    /* A client given this one server refuses the list. */
    char err[512] = "";
    int rc;
    ps_client *c = client_for(f->srv.endpoint, err, sizeof(err), &rc);
    print_message("client: %s\n", err);
    assert_null(c);
    assert_int_equal(rc, PS_EMISMATCH);
    assert_contains(err, "3-shard");
    assert_contains(err, "1 server");
}

static void test_server_main_flag_overrides_env(void **state)
{
    srv_fx *f = *state;
    char err[512] = "";
    int rc;
    ps_client *c = client_for(f->srv.endpoint, err, sizeof(err), &rc);
    if (c == NULL)
        fail_msg("client: %s: %s", ps_errname(rc), err);
    char *json = NULL;
    assert_int_equal(ps_client_status_json(c, 0, &json), PS_OK);
    assert_contains(json, "\"shard\":0,");
    assert_contains(json, "\"shards\":1,");
    free(json);
    ps_client_free(c);
}

static void test_server_main_wildcard_prints_hostname(void **state)
{
    srv_fx *f = *state;
    char host[256];
    assert_int_equal(gethostname(host, sizeof(host)), 0);
    host[sizeof(host) - 1] = '\0';
    char want[300];
    snprintf(want, sizeof(want), "tcp://%s:%d", host, f->srv.port);
    print_message("endpoint line: %s\n", f->srv.endpoint);
    assert_null(strstr(f->srv.endpoint, "0.0.0.0"));
    assert_null(strstr(f->srv.endpoint, "*"));
    assert_true(f->srv.port > 0 && f->srv.port < 65536);
    assert_string_equal(f->srv.endpoint, want);
    char ep[64];
    snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", f->srv.port);
    char err[512] = "";
    int rc;
    ps_client *c = client_for(ep, err, sizeof(err), &rc);
    if (c == NULL)
        fail_msg("client on %s: %s: %s", ep, ps_errname(rc), err);
    char *json = NULL;
    assert_int_equal(ps_client_status_json(c, 0, &json), PS_OK);
    assert_contains(json, "\"shards\":1,");
    free(json);
    ps_client_free(c);
}

static int setup_http_env(void **state)
{
    static const char *const args[] = {"--listen", "tcp://127.0.0.1:0",
                                       "--http", "127.0.0.1:0", NULL};
    setenv("SPARKPS_HTTP", "127.0.0.1:1", 1); /* the flag wins */
    int rc = start_with(state, args);
    unsetenv("SPARKPS_HTTP");
    return rc;
}

/* The URL is the second stdout line; the first stays the endpoint. */
static void test_server_main_http_url_second_line(void **state)
{
    srv_fx *f = *state;
    print_message("lines: %s | %s\n", f->srv.endpoint, f->srv.http);
    assert_true(strncmp(f->srv.endpoint, "tcp://127.0.0.1:", 16) == 0);
    assert_true(strncmp(f->srv.http, "http://127.0.0.1:", 17) == 0);
    assert_true(f->srv.http_port > 1 && f->srv.http_port < 65536);
    assert_int_not_equal(f->srv.http_port, f->srv.port);
    assert_int_equal(signal_and_wait(&f->srv, SIGTERM, STOP_MS), 0);
}

static void test_server_main_sigterm_exits_0(void **state)
{
    srv_fx *f = *state;
    assert_int_equal(signal_and_wait(&f->srv, SIGTERM, STOP_MS), 0);
}

static void test_server_main_sigint_exits_0(void **state)
{
    srv_fx *f = *state;
    /* Serving a client first, so the signal finds a live connection. */
    char err[512] = "";
    int rc;
    ps_client *c = client_for(f->srv.endpoint, err, sizeof(err), &rc);
    if (c == NULL)
        fail_msg("client: %s: %s", ps_errname(rc), err);
    assert_int_equal(signal_and_wait(&f->srv, SIGINT, STOP_MS), 0);
    ps_client_free(c);
}

/* A client thread that pushes without pause until the server stops
 * answering, then, once told the server has exited, makes one more push
 * that must fail within the client's timeout. */
typedef struct streamer {
    const char *servers;
    pthread_mutex_t mu; /* guards everything below */
    pthread_cond_t cv;
    long done;       /* pushes answered OK */
    int server_gone; /* set by the test once the server has exited */
    int finished;    /* the thread has freed its client */
    int setup_rc;    /* connect/define outcome */
    int stream_rc;   /* the error that ended the stream */
    int final_rc;    /* the push after the server exited */
} streamer;

static void streamer_set(streamer *st, long done, int finished)
{
    pthread_mutex_lock(&st->mu);
    st->done = done;
    st->finished |= finished;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

/* Waits (up to deadline) until *flag is set; returns it. */
static int streamer_wait(streamer *st, const int *flag,
                         const struct timespec *deadline)
{
    pthread_mutex_lock(&st->mu);
    int late = 0;
    while (!*flag && !late)
        late = pthread_cond_timedwait(&st->cv, &st->mu, deadline) != 0;
    int v = *flag;
    pthread_mutex_unlock(&st->mu);
    return v;
}

static int push_wait(ps_client *c, int t, const float *g)
{
    ps_request *r;
    int rc = ps_client_push(c, t, 0, STREAM_LEN, g, &r);
    return rc == PS_OK ? ps_client_wait(c, r, -1) : rc;
}

static void *stream_pushes(void *arg)
{
    streamer *st = arg;
    static float g[STREAM_LEN];
    for (unsigned i = 0; i < STREAM_LEN; i++)
        g[i] = 1e-3f;
    char err[512];
    int rc;
    ps_client *c = client_for(st->servers, err, sizeof(err), &rc);
    int t = -1;
    if (c != NULL) {
        ps_table_spec spec;
        memset(&spec, 0, sizeof(spec));
        spec.name = "stream";
        spec.kind = PS_DENSE;
        spec.len = STREAM_LEN;
        spec.optim.kind = PS_OPT_ADAM;
        spec.optim.lr = 1e-3;
        rc = ps_client_define(c, &spec, &t);
    }
    st->setup_rc = rc;
    long done = 0;
    while (rc == PS_OK) {
        ps_request *r[STREAM_DEPTH];
        int n = 0;
        for (; n < STREAM_DEPTH && rc == PS_OK; n++)
            rc = ps_client_push(c, t, 0, STREAM_LEN, g, &r[n]);
        if (rc != PS_OK)
            n--;
        for (int i = 0; i < n; i++) {
            int w = ps_client_wait(c, r[i], -1);
            if (w == PS_OK)
                done++;
            else if (rc == PS_OK)
                rc = w;
        }
        streamer_set(st, done, 0);
    }
    st->stream_rc = rc;
    if (c != NULL) {
        struct timespec dl;
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 60;
        if (streamer_wait(st, &st->server_gone, &dl))
            st->final_rc = push_wait(c, t, g);
    }
    ps_client_free(c);
    streamer_set(st, done, 1);
    return NULL;
}

static void test_server_main_sigterm_with_inflight_pushes_exits_0(void **state)
{
    srv_fx *f = *state;
    /* Heap, and leaked if the thread never finishes: it may still be
     * using it when this test gives up on it. */
    streamer *st = calloc(1, sizeof(*st));
    assert_non_null(st);
    st->servers = f->srv.endpoint;
    pthread_mutex_init(&st->mu, NULL);
    pthread_cond_init(&st->cv, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, stream_pushes, st), 0);

    /* Wait until the stream is well under way (or broke). */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 30;
    pthread_mutex_lock(&st->mu);
    int late = 0;
    while (st->done < STREAM_BEFORE && !st->finished && !late)
        late = pthread_cond_timedwait(&st->cv, &st->mu, &dl) != 0;
    long before = st->done;
    pthread_mutex_unlock(&st->mu);

    /* SIGTERM while pushes are in flight; the stream keeps going. */
    int exit_st = signal_and_wait(&f->srv, SIGTERM, STOP_MS);
    pthread_mutex_lock(&st->mu);
    st->server_gone = 1;
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);

    /* Client timeout 2 s, no retries: the stream's last batch and the
     * final push must each fail within a few seconds. */
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 30;
    int finished = streamer_wait(st, &st->finished, &dl);
    if (!finished)
        pthread_detach(th); /* hung in the client: abandon it */
    else
        pthread_join(th, NULL);
    if (finished)
        print_message("pushes before SIGTERM: %ld, in all: %ld, stream "
                      "ended by %s, push after exit: %s\n",
                      before, st->done, ps_errname(st->stream_rc),
                      ps_errname(st->final_rc));
    else
        print_message("pushes before SIGTERM: %ld; the client thread hangs "
                      "in ps_client_wait\n",
                      before);
    int setup_rc = st->setup_rc, final_rc = st->final_rc;
    if (finished) {
        pthread_cond_destroy(&st->cv);
        pthread_mutex_destroy(&st->mu);
        free(st);
    }
    assert_int_equal(setup_rc, PS_OK);
    assert_true(before >= STREAM_BEFORE);
    assert_int_equal(exit_st, 0); /* the server: clean exit under load */
    /* The client: ps_client_wait(-1) returns once retries are spent, also
     * when the server is gone. */
    if (!finished)
        fail_msg("client thread still blocked in ps_client_wait 30 s after "
                 "the server exited (timeout 2 s, no retries)");
    assert_int_equal(final_rc, PS_ETIMEDOUT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_main_help_lists_settings),
        cmocka_unit_test(test_server_main_unknown_flag_exits_2),
        cmocka_unit_test(test_server_main_shard_not_below_shards_fails),
        cmocka_unit_test(test_server_main_bad_consistency_exits_2),
        cmocka_unit_test(test_server_main_shards_out_of_range_exits_2),
        cmocka_unit_test(test_server_main_non_integer_exits_2),
        cmocka_unit_test(test_server_main_env_bad_value_exits_2),
        cmocka_unit_test(test_server_main_unbindable_listen_exits_1),
        cmocka_unit_test(test_server_main_listen_port_out_of_range_exits_2),
        cmocka_unit_test(test_server_main_bad_http_exits_2),
        cmocka_unit_test_teardown(test_server_main_http_port_in_use_exits_1,
                                  ps_harness_teardown),
        cmocka_unit_test_setup_teardown(test_server_main_http_url_second_line,
                                        setup_http_env, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_main_env_shards_client_mismatch, setup_env_shards,
            teardown),
        cmocka_unit_test_setup_teardown(test_server_main_flag_overrides_env,
                                        setup_env_overridden, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_main_wildcard_prints_hostname, setup_wildcard,
            teardown),
        cmocka_unit_test_setup_teardown(test_server_main_sigterm_exits_0,
                                        setup_default, teardown),
        cmocka_unit_test_setup_teardown(test_server_main_sigint_exits_0,
                                        setup_default, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_main_sigterm_with_inflight_pushes_exits_0,
            setup_default, teardown),
    };
    return cmocka_run_group_tests(tests, clear_sparkps_env, NULL);
}
