/* Hello handshake: the client refuses a misordered server list, servers of
 * different clusters or shard counts, a consistency model it did not ask
 * for, and a server speaking another protocol version; the server refuses a
 * client speaking another version. Real ps-server processes throughout,
 * plus one stand-in server (a bare ROUTER) for the "future version" side,
 * since no real server of another version exists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/codec.h"
#include "common/transport.h"
#include "harness.h"
#include "sparkps.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int connect_client(const char *servers, int expect, int staleness,
                          char *err, size_t len)
{
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = servers;
    cfg.timeout_ms = 2000;
    cfg.retries = 1;
    cfg.expect_consistency = expect;
    cfg.expect_staleness = staleness;
    ps_client *c = NULL;
    int rc = ps_client_new(&c, &cfg, err, len);
    ps_client_free(c);
    return rc;
}

static void test_handshake_connect_in_order_succeeds(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    char err[512];
    assert_int_equal(connect_client(cl.servers, -1, 0, err, sizeof(err)),
                     PS_OK);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

static void test_handshake_connect_misordered_refused(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    char list[300], err[512];
    snprintf(list, sizeof(list), "%s,%s", cl.srv[1].endpoint,
             cl.srv[0].endpoint);
    assert_int_equal(connect_client(list, -1, 0, err, sizeof(err)),
                     PS_EMISMATCH);
    /* The message names the position in the list and what the server says. */
    assert_non_null(strstr(err, "server 0 of the list"));
    assert_non_null(strstr(err, "says it is shard 1"));
    assert_non_null(strstr(err, cl.srv[1].endpoint));
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

static void test_handshake_connect_shard_count_mismatch_refused(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 2, NULL), 0);
    char err[512];
    assert_int_equal(
        connect_client(cl.srv[0].endpoint, -1, 0, err, sizeof(err)),
        PS_EMISMATCH);
    assert_non_null(strstr(err, "2-shard cluster"));
    assert_non_null(strstr(err, "1 servers were listed"));
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

static void test_handshake_connect_other_cluster_refused(void **state)
{
    (void)state;
    ps_test_server a, b;
    const char *args_a[] = {"--shard",      "0",     "--shards", "2",
                            "--cluster-id", "alpha", NULL};
    const char *args_b[] = {"--shard",      "1",    "--shards", "2",
                            "--cluster-id", "beta", NULL};
    assert_int_equal(ps_server_start(&a, args_a), 0);
    assert_int_equal(ps_server_start(&b, args_b), 0);
    char list[300], err[512];
    snprintf(list, sizeof(list), "%s,%s", a.endpoint, b.endpoint);
    assert_int_equal(connect_client(list, -1, 0, err, sizeof(err)),
                     PS_EMISMATCH);
    assert_non_null(strstr(err, "'beta'"));
    assert_non_null(strstr(err, "'alpha'"));
    assert_int_equal(ps_server_stop(&a, 5000), 0);
    assert_int_equal(ps_server_stop(&b, 5000), 0);
}

static void test_handshake_connect_consistency_mismatch_refused(void **state)
{
    (void)state;
    ps_cluster cl;
    const char *extra[] = {"--consistency", "ssp:2", NULL};
    assert_int_equal(ps_cluster_start(&cl, 1, extra), 0);
    char err[512];
    assert_int_equal(connect_client(cl.servers, PS_BSP, 0, err, sizeof(err)),
                     PS_ECONSIST);
    assert_non_null(strstr(err, "asked for bsp"));
    assert_non_null(strstr(err, "run ssp:2"));
    assert_int_equal(connect_client(cl.servers, PS_SSP, 3, err, sizeof(err)),
                     PS_ECONSIST);
    assert_int_equal(connect_client(cl.servers, PS_SSP, 2, err, sizeof(err)),
                     PS_OK);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

/* The server side: a request of another protocol version gets PS_EVERSION
 * with its request id echoed. */
static void test_handshake_server_refuses_other_version(void **state)
{
    (void)state;
    ps_cluster cl;
    assert_int_equal(ps_cluster_start(&cl, 1, NULL), 0);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    assert_int_equal(zmq_connect(s, cl.srv[0].endpoint), 0);
    ps_header h;
    ps_header_init(&h);
    h.version = PS_PROTOCOL_VERSION + 1;
    h.has_type = h.has_request_id = 1;
    h.type = SPARKPS__MSG_TYPE__HELLO;
    h.request_id = 4242;
    assert_int_equal(ps_send_header(s, &h, 0), PS_OK);
    ps_frames f;
    int timeout = 5000;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
    assert_int_equal(ps_frames_recv(s, &f, 0), PS_OK);
    ps_header *r = NULL;
    char err[128];
    assert_int_equal(ps_header_decode(ps_frame_data(&f, 0),
                                      ps_frame_size(&f, 0), &r, err,
                                      sizeof(err)),
                     PS_OK);
    assert_int_equal(r->error_code, PS_EVERSION);
    assert_int_equal(r->request_id, 4242);
    assert_non_null(strstr(r->error_msg, "version"));
    ps_header_free(r);
    ps_frames_close(&f);
    zmq_close(s);
    zmq_ctx_term(ctx);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

/* A stand-in for a server of a newer protocol: answers one HELLO, claiming
 * version PS_PROTOCOL_VERSION + 1 (the header itself stays decodable, as a
 * real newer server would answer an older client). With `hostile` it is a
 * hostile server instead: a correct Hello whose header also carries a
 * Status of HOSTILE_WORKERS empty workers, 2 bytes each on the wire and
 * some 100 in memory once decoded. */
#define HOSTILE_WORKERS 200000
typedef struct fake_server {
    void *ctx, *sock;
    char endpoint[128];
    int hostile;
} fake_server;

static void *fake_main(void *arg)
{
    fake_server *fs = arg;
    ps_frames f;
    if (ps_frames_recv(fs->sock, &f, 0) != PS_OK)
        return NULL;
    ps_header *req = NULL;
    char err[128];
    ps_header_decode(ps_frame_data(&f, 1), ps_frame_size(&f, 1), &req, err,
                     sizeof(err));
    ps_header h;
    ps_header_init(&h);
    Sparkps__Hello hello = SPARKPS__HELLO__INIT;
    hello.cluster_id = "sparkps";
    hello.has_shard = hello.has_shards = hello.has_protocol_version = 1;
    hello.shards = 1;
    hello.protocol_version = PS_PROTOCOL_VERSION + !fs->hostile;
    h.hello = &hello;
    Sparkps__WorkerInfo empty = SPARKPS__WORKER_INFO__INIT;
    Sparkps__WorkerInfo **wp = NULL;
    Sparkps__Status status = SPARKPS__STATUS__INIT;
    if (fs->hostile && (wp = calloc(HOSTILE_WORKERS, sizeof(*wp))) != NULL) {
        for (size_t i = 0; i < HOSTILE_WORKERS; i++)
            wp[i] = &empty;
        status.workers = wp;
        status.n_workers = HOSTILE_WORKERS;
        h.status = &status;
    }
    h.has_type = h.has_request_id = 1;
    h.type = SPARKPS__MSG_TYPE__HELLO;
    h.request_id = req ? req->request_id : 0;
    zmq_msg_send(&f.part[0], fs->sock, ZMQ_SNDMORE); /* routing id */
    ps_send_header(fs->sock, &h, 0);
    free(wp);
    ps_header_free(req);
    ps_frames_close(&f);
    return NULL;
}

static void fake_start(fake_server *fs, pthread_t *t, int hostile)
{
    memset(fs, 0, sizeof(*fs));
    fs->hostile = hostile;
    fs->ctx = zmq_ctx_new();
    fs->sock = zmq_socket(fs->ctx, ZMQ_ROUTER);
    assert_int_equal(zmq_bind(fs->sock, "tcp://127.0.0.1:0"), 0);
    ps_bound_endpoint(fs->sock, fs->endpoint, sizeof(fs->endpoint));
    pthread_create(t, NULL, fake_main, fs);
}

static void fake_stop(fake_server *fs, pthread_t t)
{
    pthread_join(t, NULL);
    int linger = 0;
    zmq_setsockopt(fs->sock, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_close(fs->sock);
    zmq_ctx_term(fs->ctx);
}

/* A hostile server cannot exhaust a client: a reply header that would
 * decode into far more memory than its size is dropped by the decoder's
 * budget (logged), so the handshake times out instead of accepting it. */
static void test_handshake_client_drops_reply_over_budget(void **state)
{
    (void)state;
    fake_server fs;
    pthread_t t;
    fake_start(&fs, &t, 1);
    char err[512];
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = fs.endpoint;
    cfg.timeout_ms = 2000;
    cfg.retries = -1;
    ps_client *c = NULL;
    assert_int_equal(ps_client_new(&c, &cfg, err, sizeof(err)), PS_ETIMEDOUT);
    assert_null(c);
    fake_stop(&fs, t);
}

static void test_handshake_client_refuses_other_version(void **state)
{
    (void)state;
    fake_server fs;
    pthread_t t;
    fake_start(&fs, &t, 0);
    char err[512];
    assert_int_equal(connect_client(fs.endpoint, -1, 0, err, sizeof(err)),
                     PS_EVERSION);
    assert_non_null(strstr(err, "speaks protocol version 2"));
    assert_non_null(strstr(err, "this client speaks 1"));
    fake_stop(&fs, t);
}

static void test_handshake_connect_nobody_listening_times_out(void **state)
{
    (void)state;
    char err[512];
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = "tcp://127.0.0.1:1"; /* nothing listens on port 1 */
    cfg.timeout_ms = 200;
    cfg.retries = 1;
    ps_client *c = NULL;
    assert_int_equal(ps_client_new(&c, &cfg, err, sizeof(err)), PS_ETIMEDOUT);
    assert_null(c);
    assert_non_null(strstr(err, "tcp://127.0.0.1:1"));
}

static void test_handshake_connect_bad_list_refused(void **state)
{
    (void)state;
    char err[512];
    assert_int_equal(
        connect_client("tcp://127.0.0.1:5,,x", -1, 0, err, sizeof(err)),
        PS_EINVAL);
    assert_non_null(strstr(err, "empty"));
    assert_int_equal(connect_client("nonsense", -1, 0, err, sizeof(err)),
                     PS_EINVAL);
    assert_non_null(strstr(err, "nonsense"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_handshake_connect_in_order_succeeds,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_handshake_connect_misordered_refused,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(
            test_handshake_connect_shard_count_mismatch_refused,
            ps_harness_teardown),
        cmocka_unit_test_teardown(test_handshake_connect_other_cluster_refused,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(
            test_handshake_connect_consistency_mismatch_refused,
            ps_harness_teardown),
        cmocka_unit_test_teardown(test_handshake_server_refuses_other_version,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_handshake_client_refuses_other_version,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_handshake_client_drops_reply_over_budget,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(
            test_handshake_connect_nobody_listening_times_out,
            ps_harness_teardown),
        cmocka_unit_test_teardown(test_handshake_connect_bad_list_refused,
                                  ps_harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
