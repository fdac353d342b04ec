/* Integration tests of ps-server's HTTP endpoint (--http) on real
 * processes: the pages and their types, /status equal to the wire STATUS
 * JSON (history included), bad HTTP input that must never hurt the server
 * or the wire, and scrapers hammering /metrics and /status while clients
 * push known integer gradients (SGD, lr 1): the tables must still hold the
 * exact sums and the request counters must account for every push. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "exact_load.h"
#include "harness.h"
#include "http_client.h"
#include "sparkps.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_MS 20000 /* a reply must come within this */
#define STOP_MS 10000

static const char *const http_args[] = {"--listen", "tcp://127.0.0.1:0",
                                        "--http", "127.0.0.1:0", NULL};

/* ---- helpers ---- */

static void get(const char *url, const char *method, const char *path,
                hc_reply *r)
{
    char err[256];
    if (hc_request(url, method, path, HTTP_MS, r, err, sizeof(err)) != 0)
        fail_msg("%s %s%s: %s", method, url, path, err);
}

static void expect_header(const hc_reply *r, const char *name, const char *want)
{
    char buf[256];
    const char *v = hc_header(r, name, buf, sizeof(buf));
    if (v == NULL || strcmp(v, want) != 0)
        fail_msg("header %s: got '%s', want '%s'\n%s", name, v ? v : "(none)",
                 want, r->head);
}

static ps_client *connect_as(const char *servers, int worker, const char *job)
{
    ps_client_cfg cfg;
    ps_client_cfg_init(&cfg);
    cfg.servers = servers;
    cfg.job = job;
    cfg.worker_id = worker;
    return ps_harness_connect(&cfg);
}

/* The wire still answers: a fresh client's handshake and a STATUS. */
static void wire_alive(const char *servers, int shard)
{
    ps_client *c = connect_as(servers, -1, "alive");
    assert_non_null(c);
    char *json = NULL;
    assert_int_equal(ps_client_status_json(c, shard, &json), PS_OK);
    assert_non_null(strstr(json, "\"cluster_id\""));
    free(json);
    ps_client_free(c);
}

/* Sets the number after "key": to 0 everywhere (fields that change between
 * two reads of an idle shard). */
static void zero_field(char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":", key);
    for (char *p = json; (p = strstr(p, pat)) != NULL;) {
        p += strlen(pat);
        size_t n = strspn(p, "0123456789");
        if (n > 0) {
            *p = '0';
            memmove(p + 1, p + n, strlen(p + n) + 1);
        }
    }
}

static void normalise(char *json)
{
    static const char *const volatile_keys[] = {
        "uptime_ms", "idle_ms", "bytes_in", "bytes_out", "STATUS"};
    for (size_t i = 0; i < 5; i++)
        zero_field(json, volatile_keys[i]);
}

/* The value of an unlabelled or labelled sample line "name{...} value". */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; (p = strstr(p, series)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    fail_msg("no sample %s in:\n%.2000s", series, text);
    return NAN;
}

/* ---- pages ---- */

static void test_http_pages_and_types(void **state)
{
    (void)state;
    ps_test_server s;
    assert_int_equal(ps_server_start(&s, http_args), 0);
    hc_reply r;
    get(s.http, "GET", "/metrics", &r);
    assert_int_equal(r.status, 200);
    expect_header(&r, "Content-Type",
                  "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(r.body, "# TYPE sparkps_requests_total counter\n"));
    assert_non_null(strstr(r.body, "sparkps_shard_info{cluster_id=\"sparkps\","
                                   "shard=\"0\",shards=\"1\","
                                   "consistency=\"asp\"} 1\n"));
    size_t metrics_len = r.body_len;
    hc_reply_free(&r);
    get(s.http, "GET", "/status", &r);
    assert_int_equal(r.status, 200);
    expect_header(&r, "Content-Type", "application/json");
    assert_true(
        strncmp(r.body, "{\"cluster_id\":\"sparkps\",\"shard\":0,", 34) == 0);
    hc_reply_free(&r);
    get(s.http, "GET", "/", &r);
    assert_int_equal(r.status, 200);
    expect_header(&r, "Content-Type", "text/html; charset=utf-8");
    assert_non_null(strcasestr(r.body, "<html"));
    hc_reply_free(&r);
    /* HEAD: the headers of GET, no body. */
    get(s.http, "HEAD", "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    expect_header(&r, "Content-Type",
                  "text/plain; version=0.0.4; charset=utf-8");
    char len[32];
    assert_non_null(hc_header(&r, "Content-Length", len, sizeof(len)));
    assert_true(llabs(atoll(len) - (long long)metrics_len) < 64);
    hc_reply_free(&r);
    assert_int_equal(ps_server_stop(&s, STOP_MS), 0);
}

/* ---- /status equals the wire ---- */

static void train_a_little(const char *servers, int worker, int epochs)
{
    ps_client *w = connect_as(servers, worker, "hist");
    assert_non_null(w);
    ps_table_spec spec;
    memset(&spec, 0, sizeof(spec));
    spec.name = "w";
    spec.kind = PS_DENSE;
    spec.len = 10;
    spec.optim.kind = PS_OPT_SGD;
    spec.optim.lr = 0.5;
    int t;
    assert_int_equal(ps_client_define(w, &spec, &t), PS_OK);
    float g[10];
    for (int i = 0; i < 10; i++)
        g[i] = (float)i;
    for (int e = 1; e <= epochs; e++) {
        ps_client_set_progress(w, 100u * (unsigned)e, 1.0 / e, (uint32_t)e,
                               0.5);
        ps_request *r;
        assert_int_equal(ps_client_push(w, t, 0, 10, g, &r), PS_OK);
        assert_int_equal(ps_client_wait(w, r, -1), PS_OK);
        /* The evaluation rides on the next push; the last one is sent. */
        ps_eval ev = {(uint32_t)e, 100u * (unsigned)e,
                      0.5 / e,     0.5 + 0.1 * e,
                      1.0 / e,     NAN,
                      NAN};
        ps_client_set_eval(w, &ev);
    }
    assert_int_equal(ps_client_send_progress(w), PS_OK);
    ps_client_free(w);
}

static void test_http_status_equals_wire_status(void **state)
{
    (void)state;
    ps_cluster cl;
    const char *extra[] = {"--http", "127.0.0.1:0", NULL};
    assert_int_equal(ps_cluster_start(&cl, 2, extra), 0);
    train_a_little(cl.servers, 3, 3);
    ps_client *tool = connect_as(cl.servers, -1, "hist");
    assert_non_null(tool);
    for (int shard = 0; shard < 2; shard++) {
        hc_reply r;
        get(cl.srv[shard].http, "GET", "/status", &r);
        assert_int_equal(r.status, 200);
        char *wire = NULL;
        assert_int_equal(ps_client_status_json(tool, shard, &wire), PS_OK);
        normalise(r.body);
        normalise(wire);
        if (strcmp(r.body, wire) != 0)
            fail_msg("shard %d:\nhttp: %s\nwire: %s", shard, r.body, wire);
        /* Three evaluations, in order, on every shard. */
        const char *h = strstr(wire, "\"history\":[{\"epoch\":1,");
        assert_non_null(h);
        assert_non_null(strstr(h, "{\"epoch\":2,\"samples\":200,"));
        assert_non_null(strstr(h, "{\"epoch\":3,\"samples\":300,"));
        assert_null(strstr(h, "\"epoch\":4"));
        free(wire);
        hc_reply_free(&r);
        /* /metrics shows the last evaluation. */
        get(cl.srv[shard].http, "GET", "/metrics", &r);
        assert_true(sample(r.body, "sparkps_worker_accuracy{worker=\"3\"}") ==
                    0.5 + 0.1 * 3);
        assert_true(
            sample(r.body, "sparkps_worker_samples_total{worker=\"3\"}") ==
            300);
        hc_reply_free(&r);
    }
    ps_client_free(tool);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

/* ---- bad input ---- */

static void expect_status(const char *url, const char *method, const char *path,
                          int want)
{
    hc_reply r;
    get(url, method, path, &r);
    if (r.status != want)
        fail_msg("%s %s: status %d, want %d\n%s", method, path, r.status, want,
                 r.head);
    if (want == 405)
        expect_header(&r, "Allow", "GET, HEAD");
    if (want >= 400)
        assert_true(r.body_len > 0 && r.body_len < 200); /* a short text */
    hc_reply_free(&r);
}

static void test_http_bad_requests_server_survives(void **state)
{
    (void)state;
    ps_test_server s;
    assert_int_equal(ps_server_start(&s, http_args), 0);
    char err[256];
    expect_status(s.http, "POST", "/metrics", 405);
    expect_status(s.http, "PUT", "/status", 405);
    expect_status(s.http, "DELETE", "/", 405);
    expect_status(s.http, "OPTIONS", "/", 405);
    expect_status(s.http, "GET", "/nope", 404);
    expect_status(s.http, "GET", "/metrics/", 404);
    expect_status(s.http, "GET", "/status?x=1", 200); /* query ignored */

    /* A POST with a body it will never read. */
    static const char post[] = "POST /status HTTP/1.1\r\nHost: x\r\n"
                               "Content-Length: 11\r\nConnection: close\r\n"
                               "\r\nhello world";
    hc_reply r;
    assert_int_equal(
        hc_raw(s.http, post, sizeof(post) - 1, HTTP_MS, &r, err, sizeof(err)),
        0);
    assert_int_equal(r.status, 405);
    hc_reply_free(&r);

    /* A URL far past the request buffer: refused (4xx) or cut off. */
    size_t n = 200000;
    char *big = malloc(n + 64);
    assert_non_null(big);
    memcpy(big, "GET /", 5);
    memset(big + 5, 'a', n);
    strcpy(big + 5 + n, " HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_int_equal(
        hc_raw(s.http, big, strlen(big), HTTP_MS, &r, err, sizeof(err)), 0);
    print_message("long URL: status %d\n", r.status);
    assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
    hc_reply_free(&r);
    free(big);

    /* Garbage bytes, a binary request line, an unknown HTTP version; the
     * sending side is closed after them, so that an incomplete request
     * ends at once instead of at the server's idle timeout. */
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 131 + 7);
    memcpy(junk + sizeof(junk) - 4, "\r\n\r\n", 4);
    /* (A request that never completes is only closed at the server's
     * idle timeout, PS_HTTP_TIMEOUT_S: the held connections below.) */
    static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"
                              "\r\n\r\n";
    static const struct {
        const char *p;
        size_t n;
    } raws[] = {{tls, sizeof(tls) - 1}, /* a TLS client hello, NULs included */
                {"GET /metrics HTTP/9.9\r\nHost: x\r\n\r\n", 0},
                {"GET\r\n\r\n", 0},
                {"GET /metrics HTTP/1.1\r\nHost x no colon\r\n\r\n", 0},
                {"\r\n\r\nBREW /pot HTCPCP/1.0\r\n\r\n", 0}};
    assert_int_equal(
        hc_raw_eof(s.http, junk, sizeof(junk), HTTP_MS, &r, err, sizeof(err)),
        0);
    assert_true(r.status == 0 || r.status >= 400);
    hc_reply_free(&r);
    for (size_t i = 0; i < sizeof(raws) / sizeof(*raws); i++) {
        size_t len = raws[i].n ? raws[i].n : strlen(raws[i].p);
        assert_int_equal(
            hc_raw_eof(s.http, raws[i].p, len, HTTP_MS, &r, err, sizeof(err)),
            0);
        print_message("raw %zu: status %d\n", i, r.status);
        assert_true(r.status == 0 || r.status >= 400);
        hc_reply_free(&r);
    }

    /* Half-open and idle connections past the connection limit: the wire
     * keeps answering while HTTP is saturated ... */
    int held[40];
    for (int i = 0; i < 40; i++) {
        held[i] = hc_connect(s.http, err, sizeof(err));
        assert_true(held[i] >= 0);
    }
    static const char part[] = "GET /metrics HTTP/1.1\r\nHost:";
    assert_int_equal(send(held[0], part, sizeof(part) - 1, MSG_NOSIGNAL),
                     (ssize_t)(sizeof(part) - 1));
    shutdown(held[1], SHUT_WR); /* half-closed before a request */
    wire_alive(s.endpoint, 0);
    /* ... and HTTP serves again once they are gone (the loop sees the
     * closes while it answers the wire). */
    for (int i = 0; i < 40; i++)
        close(held[i]);
    wire_alive(s.endpoint, 0);
    expect_status(s.http, "GET", "/metrics", 200);
    assert_int_equal(ps_server_stop(&s, STOP_MS), 0);
}

/* ---- scraping under exact-sum traffic ---- */

#define SCRAPERS 4

typedef struct scraper {
    const char *url;
    const char *path;
    atomic_int *stop;
    atomic_int *started; /* scrapers that finished their first scrape */
    int scrapes, failures;
} scraper;

static void *scraper_main(void *arg)
{
    scraper *s = arg;
    while (!atomic_load(s->stop)) {
        hc_reply r;
        memset(&r, 0, sizeof(r));
        char err[256] = "";
        if (hc_request(s->url, "GET", s->path, HTTP_MS, &r, err, sizeof(err)) !=
                0 ||
            r.status != 200 || r.body_len == 0) {
            fprintf(stderr, "scrape %s%s failed: %s\n", s->url, s->path, err);
            s->failures++;
        } else {
            s->scrapes++;
        }
        if (r.head)
            hc_reply_free(&r);
        if (s->scrapes == 1)
            atomic_fetch_add(s->started, 1);
    }
    return NULL;
}

static void test_http_scrapes_under_exact_sum_traffic(void **state)
{
    (void)state;
    ps_cluster cl;
    const char *extra[] = {"--http", "127.0.0.1:0", NULL};
    assert_int_equal(ps_cluster_start(&cl, 2, extra), 0);
    atomic_int stop = 0, started = 0;
    scraper sc[SCRAPERS];
    pthread_t st[SCRAPERS];
    for (int i = 0; i < SCRAPERS; i++) {
        sc[i] = (scraper){cl.srv[i % 2].http,
                          i < 2 ? "/metrics" : "/status",
                          &stop,
                          &started,
                          0,
                          0};
        pthread_create(&st[i], NULL, scraper_main, &sc[i]);
    }
    /* Pushes start once every scraper is under way, so they overlap. */
    while (atomic_load(&started) < SCRAPERS) {
        int failed = 0;
        for (int i = 0; i < SCRAPERS; i++)
            failed += sc[i].failures;
        if (failed)
            break;
        usleep(1000);
    }
    exact_load load;
    exact_load_start(&load, cl.servers, 0);
    int load_failures = exact_load_join(&load, NULL);
    atomic_store(&stop, 1);
    for (int i = 0; i < SCRAPERS; i++) {
        pthread_join(st[i], NULL);
        print_message("scraper %d (%s): %d scrapes\n", i, sc[i].path,
                      sc[i].scrapes);
        assert_int_equal(sc[i].failures, 0);
        assert_true(sc[i].scrapes >= 1);
    }
    assert_int_equal(load_failures, 0);
    exact_load_check(cl.servers);
    /* Every shard took part in every dense request (the range spans both)
     * and counted each: EXACT_STEPS/2 pushes and as many pushpulls per client,
     * plus the sparse pushes holding its keys. */
    double sparse_pushes = 0;
    for (int shard = 0; shard < 2; shard++) {
        hc_reply r;
        get(cl.srv[shard].http, "GET", "/metrics", &r);
        assert_int_equal(r.status, 200);
        double push = sample(r.body, "sparkps_requests_total{type=\"push\"}");
        double pushpull =
            sample(r.body, "sparkps_requests_total{type=\"pushpull\"}");
        print_message("shard %d: push %.0f pushpull %.0f\n", shard, push,
                      pushpull);
        assert_true(pushpull >= EXACT_CLIENTS * EXACT_STEPS / 2);
        assert_true(push >= EXACT_CLIENTS * EXACT_STEPS / 2);
        sparse_pushes += push - EXACT_CLIENTS * EXACT_STEPS / 2;
        assert_true(
            sample(r.body,
                   "sparkps_request_duration_seconds_count{type=\"push\"}") ==
            push);
        assert_true(sample(r.body, "sparkps_errors_total{code=\"EPROTO\"}") ==
                    0);
        hc_reply_free(&r);
    }
    /* Each sparse push reached at least one shard. */
    assert_true(sparse_pushes >= EXACT_CLIENTS * EXACT_STEPS);
    assert_int_equal(ps_cluster_stop(&cl), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_http_pages_and_types,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_http_status_equals_wire_status,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_http_bad_requests_server_survives,
                                  ps_harness_teardown),
        cmocka_unit_test_teardown(test_http_scrapes_under_exact_sum_traffic,
                                  ps_harness_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
