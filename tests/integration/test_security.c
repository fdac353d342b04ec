/* CurveZMQ end to end against a real ps-server: an allowed client pushes
 * and pulls (its heartbeat thread's sockets too); a client whose key is not
 * allowed, a client without CURVE and a client with a wrong server key are
 * each refused with PS_EAUTH and a message saying why, and counted by the
 * server (refused_unknown_key from the ZAP handler, refused_handshake from
 * the socket monitor) in its status; no secret key appears in the server's
 * log or its status. A plaintext server and a CURVE client refuse each
 * other too, and bad key files fail the client at once with PS_EINVAL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/curve.h"
#include "harness.h"
#include "unit/ps_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fx {
    char dir[64];
    char log[128];
    char key[4][160];  /* server, client, stranger, other server: NAME.key */
    char pub[4][160];  /* the matching NAME.pub */
    ps_curve_key secret[4];
    ps_test_server srv;
} fx;

enum { SERVER, CLIENT, STRANGER, OTHER_SERVER };
static const char *const names[] = {"server", "client", "stranger", "other"};

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (f == NULL || ps_test_mkdtemp(f->dir, sizeof(f->dir), "ps-sec") != 0)
        return -1;
    char err[512];
    for (int i = 0; i < 4; i++) {
        char base[128];
        ps_curve_key pub;
        snprintf(base, sizeof(base), "%s/%s", f->dir, names[i]);
        snprintf(f->key[i], sizeof(f->key[i]), "%s.key", base);
        snprintf(f->pub[i], sizeof(f->pub[i]), "%s.pub", base);
        if (ps_curve_keygen(base, 0, &pub, err, sizeof(err)) != PS_OK ||
            ps_curve_read_key(f->key[i], 1, &f->secret[i], err,
                              sizeof(err)) != PS_OK) {
            fprintf(stderr, "setup: %s\n", err);
            return -1;
        }
    }
    snprintf(f->log, sizeof(f->log), "%s/server.log", f->dir);
    const char *args[] = {"--listen",         "tcp://127.0.0.1:0",
                          "--curve-secret-key", f->key[SERVER],
                          "--curve-allow",    f->pub[CLIENT],
                          "--log-level",      "debug",
                          NULL};
    if (ps_server_start_log(&f->srv, args, f->log) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    int st = ps_server_stop(&f->srv, 10000);
    ps_harness_kill_all();
    ps_test_rmtree(f->dir);
    free(f);
    assert_int_equal(st, 0);
    return 0;
}

static void cfg_with(ps_client_cfg *cfg, const fx *f, const char *key,
                     const char *server_key)
{
    ps_client_cfg_init(cfg);
    cfg->servers = f->srv.endpoint;
    cfg->timeout_ms = 3000;
    cfg->retries = 1;
    cfg->curve_secret_key = key;
    cfg->curve_server_key = server_key;
}

static ps_client *allowed_client(const fx *f)
{
    ps_client_cfg cfg;
    cfg_with(&cfg, f, f->key[CLIENT], f->pub[SERVER]);
    return ps_harness_connect(&cfg);
}

/* A number in the status JSON: "name":N. */
static uint64_t json_u64(const char *json, const char *name)
{
    uint64_t n = ps_harness_json_u64(json, NULL, name);
    if (n == UINT64_MAX)
        fail_msg("%s not in the status: %s", name, json);
    return n;
}

static char *status_of(const fx *f)
{
    ps_client *c = allowed_client(f);
    assert_non_null(c);
    char *json = NULL;
    assert_int_equal(ps_client_status_json(c, 0, &json), PS_OK);
    ps_client_free(c);
    return json;
}

/* ps_client_new with these keys fails with PS_EAUTH and a message holding
 * `why`. */
static void refused(const fx *f, const char *key, const char *server_key,
                    const char *why)
{
    ps_client_cfg cfg;
    cfg_with(&cfg, f, key, server_key);
    ps_client *c = NULL;
    char err[512] = "";
    assert_int_equal(ps_client_new(&c, &cfg, err, sizeof(err)), PS_EAUTH);
    assert_null(c);
    if (strstr(err, why) == NULL)
        fail_msg("'%s' not in '%s'", why, err);
    assert_non_null(strstr(err, "EAUTH"));
}

static void test_security_allowed_client_pushes_and_pulls(void **state)
{
    fx *f = *state;
    ps_client_cfg cfg;
    cfg_with(&cfg, f, f->key[CLIENT], f->pub[SERVER]);
    cfg.worker_id = 0; /* with a heartbeat thread, whose sockets use CURVE */
    cfg.heartbeat_ms = 100;
    ps_client *c = ps_harness_connect(&cfg);
    assert_non_null(c);
    ps_table_spec spec = {.name = "w", .kind = PS_DENSE, .len = 1000};
    spec.optim = (ps_optim){.kind = PS_OPT_SGD, .lr = 1.0};
    int t;
    assert_int_equal(ps_client_define(c, &spec, &t), PS_OK);
    float grad[1000], out[1000];
    for (int i = 0; i < 1000; i++)
        grad[i] = (float)(i % 7);
    ps_request *r;
    assert_int_equal(ps_client_pushpull(c, t, 0, 1000, grad, out, &r), PS_OK);
    assert_int_equal(ps_client_wait(c, r, -1), PS_OK);
    for (int i = 0; i < 1000; i++)
        assert_true(out[i] == -(float)(i % 7)); /* zeros - lr * grad */
    usleep(500 * 1000); /* five heartbeat periods */
    char *json = NULL;
    assert_int_equal(ps_client_status_json(c, 0, &json), PS_OK);
    assert_non_null(strstr(json, "\"curve\":true"));
    assert_non_null(strstr(json, "\"insecure\":false"));
    assert_int_equal(json_u64(json, "allowed_keys"), 1);
    assert_int_equal(json_u64(json, "refused_unknown_key"), 0);
    assert_int_equal(json_u64(json, "refused_handshake"), 0);
    assert_non_null(strstr(json, "{\"id\":0,"));
    assert_non_null(strstr(json, "\"alive\":true"));
    free(json);
    ps_client_free(c);
}

static void test_security_unknown_key_refused_and_counted(void **state)
{
    fx *f = *state;
    refused(f, f->key[STRANGER], f->pub[SERVER], "--curve-allow");
    char *json = status_of(f);
    assert_true(json_u64(json, "refused_unknown_key") >= 1);
    free(json);
}

static void test_security_plaintext_client_refused_and_counted(void **state)
{
    fx *f = *state;
    refused(f, "", "", "require");
    char *json = status_of(f);
    assert_true(json_u64(json, "refused_handshake") >= 1);
    assert_int_equal(json_u64(json, "refused_unknown_key"), 0);
    free(json);
}

static void test_security_wrong_server_key_refused_and_counted(void **state)
{
    fx *f = *state;
    refused(f, f->key[CLIENT], f->pub[OTHER_SERVER], "--curve-server-key");
    char *json = status_of(f);
    assert_true(json_u64(json, "refused_handshake") >= 1);
    assert_int_equal(json_u64(json, "refused_unknown_key"), 0);
    free(json);
}

/* After every kind of client, neither the log nor the status holds a
 * secret key (public keys may appear: they identify, not authenticate). */
static void test_security_no_secret_in_log_or_status(void **state)
{
    fx *f = *state;
    ps_client *c = allowed_client(f);
    assert_non_null(c);
    ps_client_free(c);
    refused(f, f->key[STRANGER], f->pub[SERVER], "--curve-allow");
    refused(f, "", "", "require");
    refused(f, f->key[CLIENT], f->pub[OTHER_SERVER], "--curve-server-key");
    char *json = status_of(f);
    assert_int_equal(ps_server_stop(&f->srv, 10000), 0);
    FILE *in = fopen(f->log, "r");
    assert_non_null(in);
    static char log[1 << 20];
    size_t n = fread(log, 1, sizeof(log) - 1, in);
    fclose(in);
    log[n] = '\0';
    assert_non_null(strstr(log, "security=curve")); /* it did log */
    assert_non_null(strstr(log, "refused a client"));
    for (int i = 0; i < 4; i++) {
        if (strstr(log, f->secret[i].z85) != NULL)
            fail_msg("the %s secret key is in the server's log", names[i]);
        if (strstr(json, f->secret[i].z85) != NULL)
            fail_msg("the %s secret key is in the status", names[i]);
    }
    free(json);
}

/* A CURVE client against a plaintext server is refused as well, with the
 * reason; bad key files fail before any connection. */
static void test_security_curve_client_plaintext_server(void **state)
{
    fx *f = *state;
    ps_test_server plain;
    const char *args[] = {"--listen", "tcp://127.0.0.1:0", NULL};
    assert_int_equal(ps_server_start(&plain, args), 0);
    ps_client_cfg cfg;
    cfg_with(&cfg, f, f->key[CLIENT], f->pub[SERVER]);
    cfg.servers = plain.endpoint;
    ps_client *c = NULL;
    char err[512];
    assert_int_equal(ps_client_new(&c, &cfg, err, sizeof(err)), PS_EAUTH);
    assert_non_null(strstr(err, "does not"));
    assert_int_equal(ps_server_stop(&plain, 10000), 0);

    cfg_with(&cfg, f, f->key[CLIENT], NULL);
    unsetenv("SPARKPS_CURVE_SERVER_KEY");
    assert_int_equal(ps_client_new(&c, &cfg, err, sizeof(err)), PS_EINVAL);
    assert_non_null(strstr(err, "only the secret key"));
    cfg_with(&cfg, f, f->pub[CLIENT], f->pub[SERVER]);
    assert_int_equal(ps_client_new(&c, &cfg, err, sizeof(err)), PS_EINVAL);
    assert_non_null(strstr(err, "holds a public key, not a secret key"));
    cfg_with(&cfg, f, "/nonexistent/client.key", f->pub[SERVER]);
    assert_int_equal(ps_client_new(&c, &cfg, err, sizeof(err)), PS_EINVAL);
    assert_non_null(strstr(err, "/nonexistent/client.key: cannot open"));
    assert_null(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_security_allowed_client_pushes_and_pulls, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_security_unknown_key_refused_and_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_security_plaintext_client_refused_and_counted, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_security_wrong_server_key_refused_and_counted, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_security_no_secret_in_log_or_status, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_security_curve_client_plaintext_server, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
