/* A hung peer (its process stopped with SIGSTOP: the kernel still answers
 * TCP, so only the application can tell) is found by ZeroMQ heartbeats,
 * not by a request timing out:
 * - server side: a raw client that has said HELLO as worker 0 is stopped;
 *   the server's peers_disconnected counter rises while the worker still
 *   counts as alive (its --worker-timeout is ten minutes) and no request
 *   is pending;
 * - client side: the server is stopped while a pull is in flight with a
 *   two-minute request timeout; ps_client_disconnects() rises while the
 *   pull is still waiting.
 * Heartbeats are 200 ms (timeout 600 ms); each wait is for the condition,
 * with a 60 s bound far below the other timeouts, and the time it took is
 * printed, not asserted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/codec.h"
#include "common/timeutil.h"
#include "harness.h"
#include "sparkps.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#define HEARTBEAT_MS "200"
#define WAIT_MS 60000          /* bound on every wait for a condition */
#define REQUEST_TIMEOUT 120000 /* the client's, far above WAIT_MS */

static char *status_of(ps_client *c)
{
    char *json = NULL;
    int rc = ps_client_status_json(c, 0, &json);
    if (rc != PS_OK)
        fail_msg("status: %s (%s)", ps_errname(rc), ps_client_errmsg(c));
    return json;
}

/* The server's count of dropped peers, and whether worker 0 still counts
 * as alive (not yet dropped by the worker timeout). */
static void poll_status(ps_client *c, uint64_t *disconnected, int *alive)
{
    char *json = status_of(c);
    *disconnected = ps_harness_json_u64(json, NULL, "peers_disconnected");
    *alive = strstr(json, "\"id\":0,\"clock\":0,\"alive\":true") != NULL;
    free(json);
}

/* The child: a raw DEALER saying HELLO as worker 0, then idle until
 * stopped and killed. Writes one byte on `ready` once answered. */
static void raw_worker(const char *endpoint, int ready)
{
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (s == NULL || zmq_connect(s, endpoint) != 0)
        _exit(2);
    ps_header h;
    ps_header_init(&h);
    h.has_type = h.has_request_id = h.has_worker_id = 1;
    h.type = SPARKPS__MSG_TYPE__HELLO;
    h.request_id = 1;
    h.worker_id = 0;
    uint8_t buf[128];
    size_t n = ps_header_pack(&h, buf);
    char reply[4096];
    if (zmq_send(s, buf, n, 0) < 0 || zmq_recv(s, reply, sizeof(reply), 0) < 0)
        _exit(3);
    if (write(ready, "r", 1) != 1)
        _exit(4);
    for (;;)
        pause();
}

static void test_heartbeat_server_drops_stopped_client(void **state)
{
    (void)state;
    static const char *const args[] = {"--heartbeat", HEARTBEAT_MS,
                                       "--worker-timeout", "600000", NULL};
    ps_test_server srv;
    assert_int_equal(ps_server_start(&srv, args), 0);
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        close(fds[0]);
        raw_worker(srv.endpoint, fds[1]);
    }
    close(fds[1]);
    struct pollfd pfd = {fds[0], POLLIN, 0};
    char b;
    assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
    assert_int_equal(read(fds[0], &b, 1), 1);
    close(fds[0]);

    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = srv.endpoint;
    ps_client *c = ps_harness_connect(&cfg);
    assert_non_null(c);
    char *json = status_of(c);
    uint64_t before = ps_harness_json_u64(json, NULL, "peers_disconnected");
    /* The child and us. */
    assert_true(ps_harness_json_u64(json, NULL, "peers_accepted") >= 2);
    free(json);
    assert_int_equal(before, 0);

    assert_int_equal(kill(child, SIGSTOP), 0);
    int64_t t0 = ps_now_ms();
    uint64_t now = before;
    int alive = 0;
    while (now == before && ps_now_ms() - t0 < WAIT_MS) {
        usleep(50000);
        poll_status(c, &now, &alive);
    }
    int64_t took = ps_now_ms() - t0;
    print_message("server dropped the stopped client after %lld ms "
                  "(heartbeat %s ms)\n",
                  (long long)took, HEARTBEAT_MS);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    assert_true(now >= before + 1);
    /* Dropped by the heartbeat, not by the worker timeout. */
    assert_true(alive);
    ps_client_free(c);
    assert_int_equal(ps_server_stop(&srv, 10000), 0);
}

static void test_heartbeat_client_sees_stopped_server(void **state)
{
    (void)state;
    ps_test_server srv;
    assert_int_equal(ps_server_start(&srv, NULL), 0);
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = srv.endpoint;
    cfg.heartbeat_ms = 200;
    cfg.timeout_ms = REQUEST_TIMEOUT;
    ps_client *c = ps_harness_connect(&cfg);
    assert_non_null(c);
    ps_table_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.name = "w";
    spec.kind = PS_DENSE;
    spec.len = 16;
    spec.optim.kind = PS_OPT_SGD;
    spec.optim.lr = 0.1;
    int t;
    assert_int_equal(ps_client_define(c, &spec, &t), PS_OK);
    assert_int_equal(ps_client_disconnects(c), 0);

    assert_int_equal(kill(srv.pid, SIGSTOP), 0);
    float out[16];
    ps_request *r;
    assert_int_equal(ps_client_pull(c, t, 0, 16, out, &r), PS_OK);
    int64_t t0 = ps_now_ms();
    int rc = PS_ETIMEDOUT;
    while (ps_client_disconnects(c) == 0 && ps_now_ms() - t0 < WAIT_MS &&
           rc == PS_ETIMEDOUT)
        rc = ps_client_wait(c, r, 100);
    int64_t took = ps_now_ms() - t0;
    print_message("client saw the stopped server after %lld ms "
                  "(heartbeat 200 ms, request timeout %d ms)\n",
                  (long long)took, REQUEST_TIMEOUT);
    /* The pull is still pending: its timeout did not fire. */
    assert_int_equal(rc, PS_ETIMEDOUT);
    assert_true(ps_client_disconnects(c) >= 1);
    assert_int_equal(ps_client_retries(c), 0);
    ps_client_free(c); /* abandons the pull */
    assert_int_equal(kill(srv.pid, SIGCONT), 0);
    assert_int_equal(ps_server_stop(&srv, 10000), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_heartbeat_server_drops_stopped_client,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_heartbeat_client_sees_stopped_server,
                                  ps_harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
