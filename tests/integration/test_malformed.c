/* Integration tests: malformed and hostile requests to a real ps-server.
 *
 * A raw DEALER socket sends hand-built multipart messages (headers packed by
 * the codec, bulk frames as plain bytes) so the tests can say things the
 * client library never would; the client library defines the tables and
 * reads them back. Every case checks the exact error code, a non-empty
 * message and the echoed request id in the reply, then that the server still
 * answers a HELLO and that no table changed (values, push counters and rows
 * as the status reply reports them). Each test gets fresh servers from its
 * fixture; the teardown fails the test unless every server exited 0 on
 * SIGTERM, so a crash anywhere shows up. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include "common/codec.h"
#include "common/partition.h"
#include "harness.h"
#include "sparkps.h"

#include <math.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define JOB "malformed"
#define DENSE "w"
#define SPARSE "s"
#define DENSE_LEN 64u
#define BIG_LEN 32768u /* the oversize fixture's dense table */
#define SPARSE_DIM 4u
#define NKEYS 8
#define PREP_LEN 64u /* elements the setup pushes once */
#define RECV_MS 5000 /* a reply slower than this counts as none */
#define LR 0.5       /* SGD: w -= 0.5 * g, exact for g = 1 */
#define FUZZ_ROUNDS 2000
#define FUZZ_SEED 0x5eed0f5a11ed5eedULL
#define FUZZ_HELLO_TAG 0x4845000000000000ULL /* request ids of probes */

typedef struct frame {
    const void *p;
    size_t n;
} frame;

typedef struct fx_cfg {
    int shards;
    const char *const *extra; /* extra ps-server arguments */
    uint64_t dense_len;
} fx_cfg;

/* One test's servers, connections and the state the tables must keep. */
typedef struct fx {
    ps_cluster cl;
    int shards;
    void *zctx;
    void *sock; /* raw DEALER to shard 0 */
    ps_client *c;
    int dense, sparse;            /* client handles */
    uint32_t dense_id, sparse_id; /* table ids on shard 0 */
    uint64_t dense_len;
    uint64_t keys[NKEYS]; /* sparse keys held by shard 0 */
    float *dense_snap;    /* the whole dense table */
    float sparse_snap[NKEYS * SPARSE_DIM];
    uint64_t dense_pushes, sparse_pushes, sparse_rows; /* shard 0 */
    uint64_t rid;        /* last request id sent on sock */
    uint64_t expect_rid; /* request id the next reply must echo */
    int expect_type;     /* type it must echo; -1: not checked */
    unsigned char *bulk; /* last reply's last bulk frame */
    size_t bulk_len;
} fx;

/* ---- raw wire helpers ---- */

static void *raw_open(void *ctx, const char *endpoint)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (s == NULL)
        return NULL;
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    if (zmq_connect(s, endpoint) != 0) {
        zmq_close(s);
        return NULL;
    }
    return s;
}

static int send_frames(void *sock, const frame *f, int n)
{
    for (int i = 0; i < n; i++)
        if (zmq_send(sock, f[i].p, f[i].n, i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
            return -1;
    return 0;
}

/* Receives one whole reply within timeout_ms and decodes its header (NULL
 * when none came or frame 0 is not a Header). The last bulk frame, if any,
 * is kept in x->bulk. */
static ps_header *recv_reply(fx *x, void *sock, int timeout_ms)
{
    zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) <= 0)
        return NULL;
    ps_header *h = NULL;
    free(x->bulk);
    x->bulk = NULL;
    x->bulk_len = 0;
    for (int i = 0;; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, sock, 0) < 0) {
            zmq_msg_close(&m);
            break;
        }
        size_t n = zmq_msg_size(&m);
        if (i == 0) {
            h = sparkps__header__unpack(NULL, n, zmq_msg_data(&m));
        } else {
            free(x->bulk);
            x->bulk = malloc(n ? n : 1);
            if (x->bulk != NULL) {
                memcpy(x->bulk, zmq_msg_data(&m), n);
                x->bulk_len = n;
            }
        }
        int more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        if (!more)
            break;
    }
    return h;
}

/* Sends frame 0 as given plus bulk frames and returns the reply; fails the
 * test when none comes. */
static ps_header *exchange_bytes(fx *x, const void *hdr, size_t hlen,
                                 const frame *bulk, int nbulk)
{
    frame f[8];
    assert_true(nbulk < 8);
    f[0] = (frame){hdr, hlen};
    for (int i = 0; i < nbulk; i++)
        f[i + 1] = bulk[i];
    assert_int_equal(send_frames(x->sock, f, nbulk + 1), 0);
    ps_header *rep = recv_reply(x, x->sock, RECV_MS);
    if (rep == NULL)
        fail_msg("no decodable reply within %d ms", RECV_MS);
    return rep;
}

/* Packs h, sends it with the bulk frames, and remembers its request id and
 * type for expect_error(). */
static ps_header *exchange(fx *x, const ps_header *h, const frame *bulk,
                           int nbulk)
{
    uint8_t buf[4096];
    size_t n = ps_header_packed_size(h);
    assert_true(n <= sizeof(buf));
    ps_header_pack(h, buf);
    ps_header *rep = exchange_bytes(x, buf, n, bulk, nbulk);
    x->expect_rid = h->request_id;
    x->expect_type = (int)h->type;
    return rep;
}

/* Checks that rep carries exactly `code` with a message (naming `needle`
 * when not NULL) and echoes the request (after exchange(); exchange_bytes()
 * replies are checked for the code and message only). Frees rep first, so
 * a failed check leaks nothing. */
static void expect_error_naming(fx *x, ps_header *rep, int code,
                                const char *needle)
{
    assert_non_null(rep);
    int got = rep->has_error_code ? rep->error_code : PS_OK;
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", rep->error_msg ? rep->error_msg : "");
    uint64_t rid = rep->request_id;
    int type = (int)rep->type;
    ps_header_free(rep);
    if (got != code)
        print_error("expected %s, got %s: \"%s\"\n", ps_errname(code),
                    ps_errname(got), msg);
    assert_int_equal(got, code);
    if (code != PS_OK && msg[0] == '\0')
        fail_msg("%s reply without an error message", ps_errname(code));
    if (needle != NULL && strstr(msg, needle) == NULL)
        fail_msg("message \"%s\" does not name '%s'", msg, needle);
    if (x->expect_type >= 0) {
        assert_int_equal(rid, x->expect_rid);
        assert_int_equal(type, x->expect_type);
    }
}

static void expect_error(fx *x, ps_header *rep, int code)
{
    expect_error_naming(x, rep, code, NULL);
}

static ps_header *send_bytes(fx *x, const void *hdr, size_t hlen,
                             const frame *bulk, int nbulk)
{
    x->expect_type = -1;
    return exchange_bytes(x, hdr, hlen, bulk, nbulk);
}

static void hdr_base(fx *x, ps_header *h, int type)
{
    ps_header_init(h);
    h->has_type = h->has_request_id = 1;
    h->type = (Sparkps__MsgType)type;
    h->request_id = ++x->rid;
}

static void hdr_data(fx *x, ps_header *h, int type, uint32_t table,
                     uint64_t offset, uint64_t count)
{
    hdr_base(x, h, type);
    h->has_table_id = h->has_offset = h->has_count = 1;
    h->table_id = table;
    h->offset = offset;
    h->count = count;
}

/* A table spec as the client library builds it for the fixture tables, so
 * a raw DEFINE_TABLE of the same table is the idempotent case. */
typedef struct spec_parts {
    Sparkps__TableSpec ts;
    Sparkps__Init init;
    Sparkps__Optim optim;
} spec_parts;

static void spec_fill(spec_parts *p, const char *name, int kind, uint64_t len,
                      uint32_t dim, uint64_t seed)
{
    sparkps__table_spec__init(&p->ts);
    sparkps__init__init(&p->init);
    sparkps__optim__init(&p->optim);
    p->init.has_kind = p->init.has_a = p->init.has_b = p->init.has_seed = 1;
    p->init.kind = SPARKPS__INIT_KIND__INIT_UNIFORM;
    p->init.a = -1.0;
    p->init.b = 1.0;
    p->init.seed = seed;
    p->optim.has_kind = p->optim.has_lr = 1;
    p->optim.kind = SPARKPS__OPTIM_KIND__OPT_SGD;
    p->optim.lr = LR;
    p->ts.job = (char *)JOB;
    p->ts.name = (char *)name;
    p->ts.has_kind = p->ts.has_len = p->ts.has_dim = 1;
    p->ts.kind = (Sparkps__TableKind)kind;
    p->ts.len = len;
    p->ts.dim = dim;
    p->ts.init = &p->init;
    p->ts.optim = &p->optim;
}

static void client_spec(ps_table_spec *s, const char *name, int kind,
                        uint64_t len, uint32_t dim, uint64_t seed)
{
    memset(s, 0, sizeof(*s));
    s->name = name;
    s->kind = (ps_table_kind)kind;
    s->len = len;
    s->dim = dim;
    s->init.kind = PS_INIT_UNIFORM;
    s->init.a = -1.0;
    s->init.b = 1.0;
    s->init.seed = seed;
    s->optim.kind = PS_OPT_SGD;
    s->optim.lr = LR;
}

/* Raw DEFINE_TABLE on sock; returns the reply (NULL if none). */
static ps_header *raw_define(fx *x, const Sparkps__TableSpec *ts)
{
    ps_header h;
    hdr_base(x, &h, SPARKPS__MSG_TYPE__DEFINE_TABLE);
    h.table = (Sparkps__TableSpec *)ts;
    uint8_t buf[4096];
    size_t n = ps_header_packed_size(&h);
    if (n > sizeof(buf))
        return NULL;
    ps_header_pack(&h, buf);
    frame f = {buf, n};
    if (send_frames(x->sock, &f, 1) != 0)
        return NULL;
    x->expect_rid = h.request_id;
    x->expect_type = (int)h.type;
    return recv_reply(x, x->sock, RECV_MS);
}

/* ---- reading state back ---- */

static uint64_t json_table_u64(const char *json, const char *table,
                               const char *field)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"name\":\"%s\"", table);
    return ps_harness_json_u64(json, pat, field);
}

/* An error counter of the status JSON; 0 when absent. */
static uint64_t json_error_count(const char *json, const char *name)
{
    uint64_t n = ps_harness_json_u64(json, "\"errors\":{", name);
    return n == UINT64_MAX ? 0 : n;
}

static int pull_dense(fx *x, float *out)
{
    ps_request *r;
    int rc = ps_client_pull(x->c, x->dense, 0, x->dense_len, out, &r);
    return rc == PS_OK ? ps_client_wait(x->c, r, -1) : rc;
}

static int pull_sparse(fx *x, float *out)
{
    ps_request *r;
    int rc = ps_client_pull_sparse(x->c, x->sparse, x->keys, NKEYS, out, &r);
    return rc == PS_OK ? ps_client_wait(x->c, r, -1) : rc;
}

static int read_counters(fx *x, uint64_t *dp, uint64_t *sp, uint64_t *rows)
{
    char *json = NULL;
    int rc = ps_client_status_json(x->c, 0, &json);
    if (rc != PS_OK)
        return rc;
    *dp = json_table_u64(json, DENSE, "pushes");
    *sp = json_table_u64(json, SPARSE, "pushes");
    *rows = json_table_u64(json, SPARSE, "rows");
    free(json);
    return PS_OK;
}

static char *status_json(fx *x)
{
    char *json = NULL;
    int rc = ps_client_status_json(x->c, 0, &json);
    if (rc != PS_OK)
        fail_msg("status: %s (%s)", ps_errname(rc), ps_client_errmsg(x->c));
    return json;
}

/* A HELLO on sock is answered by shard 0. */
static void hello_ok(fx *x, void *sock)
{
    ps_header h;
    hdr_base(x, &h, SPARKPS__MSG_TYPE__HELLO);
    uint8_t buf[256];
    size_t n = ps_header_pack(&h, buf);
    frame f = {buf, n};
    assert_int_equal(send_frames(sock, &f, 1), 0);
    ps_header *rep = recv_reply(x, sock, RECV_MS);
    if (rep == NULL)
        fail_msg("server did not answer a HELLO within %d ms", RECV_MS);
    assert_false(rep->has_error_code && rep->error_code != PS_OK);
    assert_int_equal(rep->request_id, h.request_id);
    assert_non_null(rep->hello);
    assert_int_equal(rep->hello->shard, 0);
    assert_int_equal(rep->hello->shards, (unsigned)x->shards);
    ps_header_free(rep);
}

/* The dense table equals `want` and has seen `pushes` pushes on shard 0. */
static void assert_dense(fx *x, const float *want, uint64_t pushes)
{
    float *got = calloc(x->dense_len, sizeof(float));
    assert_non_null(got);
    int rc = pull_dense(x, got);
    if (rc != PS_OK)
        fail_msg("pull: %s (%s)", ps_errname(rc), ps_client_errmsg(x->c));
    for (uint64_t i = 0; i < x->dense_len; i++) {
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
            print_error("dense[%llu] = %.9g, want %.9g\n",
                        (unsigned long long)i, got[i], want[i]);
            free(got);
            fail_msg("dense table changed");
        }
    }
    free(got);
    uint64_t dp, sp, rows;
    assert_int_equal(read_counters(x, &dp, &sp, &rows), PS_OK);
    assert_int_equal(dp, pushes);
}

/* The server still serves and neither table changed since the setup. */
static void check_intact(fx *x)
{
    hello_ok(x, x->sock);
    assert_dense(x, x->dense_snap, x->dense_pushes);
    float got[NKEYS * SPARSE_DIM];
    int rc = pull_sparse(x, got);
    if (rc != PS_OK)
        fail_msg("pull: %s (%s)", ps_errname(rc), ps_client_errmsg(x->c));
    assert_memory_equal(got, x->sparse_snap, sizeof(got));
    uint64_t dp, sp, rows;
    assert_int_equal(read_counters(x, &dp, &sp, &rows), PS_OK);
    assert_int_equal(sp, x->sparse_pushes);
    assert_int_equal(rows, x->sparse_rows);
}

/* ---- fixtures ---- */

/* Stops everything; returns how many servers did not exit 0 on SIGTERM. */
static int fx_free(fx *x)
{
    ps_client_free(x->c);
    if (x->sock != NULL)
        zmq_close(x->sock);
    if (x->zctx != NULL)
        zmq_ctx_term(x->zctx);
    int bad = 0;
    for (int i = 0; i < x->cl.n; i++) {
        if (x->cl.srv[i].pid <= 0)
            continue;
        int st = ps_server_stop(&x->cl.srv[i], 10000);
        if (st != 0) {
            fprintf(stderr, "shard %d exited with status %d on SIGTERM\n", i,
                    st);
            bad++;
        }
    }
    free(x->dense_snap);
    free(x->bulk);
    free(x);
    return bad;
}

static int fx_prepare(fx *x)
{
    char err[512];
    ps_client_cfg cc;
    ps_client_cfg_init(&cc);
    cc.servers = x->cl.servers;
    cc.job = JOB;
    cc.timeout_ms = 3000;
    cc.retries = -1;
    int rc = ps_client_new(&x->c, &cc, err, sizeof(err));
    if (rc != PS_OK) {
        fprintf(stderr, "setup: client: %s\n", err);
        return -1;
    }
    ps_table_spec ds, ss;
    client_spec(&ds, DENSE, PS_DENSE, x->dense_len, 0, 42);
    client_spec(&ss, SPARSE, PS_SPARSE, 0, SPARSE_DIM, 43);
    if (ps_client_define(x->c, &ds, &x->dense) != PS_OK ||
        ps_client_define(x->c, &ss, &x->sparse) != PS_OK) {
        fprintf(stderr, "setup: define: %s\n", ps_client_errmsg(x->c));
        return -1;
    }
    /* The same specs, raw: idempotent, and tells us shard 0's table ids. */
    spec_parts p;
    uint32_t *ids[2] = {&x->dense_id, &x->sparse_id};
    for (int i = 0; i < 2; i++) {
        if (i == 0)
            spec_fill(&p, DENSE, PS_DENSE, x->dense_len, 0, 42);
        else
            spec_fill(&p, SPARSE, PS_SPARSE, 0, SPARSE_DIM, 43);
        ps_header *rep = raw_define(x, &p.ts);
        int ok = rep != NULL && !(rep->has_error_code && rep->error_code) &&
                 rep->has_table_id;
        if (ok)
            *ids[i] = rep->table_id;
        else
            fprintf(stderr, "setup: raw define: %s\n",
                    rep && rep->error_msg ? rep->error_msg : "no reply");
        ps_header_free(rep);
        if (!ok)
            return -1;
    }
    for (uint64_t k = 1000, n = 0; n < NKEYS; k++)
        if (ps_key_shard(k, (uint32_t)x->shards) == 0)
            x->keys[n++] = k;
    /* One push each, so the tables hold more than their init values. */
    float g[PREP_LEN], sg[NKEYS * SPARSE_DIM];
    for (unsigned i = 0; i < PREP_LEN; i++)
        g[i] = 0.01f * (float)(i + 1);
    for (unsigned i = 0; i < NKEYS * SPARSE_DIM; i++)
        sg[i] = -0.02f * (float)(i + 1);
    ps_request *r1, *r2;
    rc = ps_client_push(x->c, x->dense, 0, PREP_LEN, g, &r1);
    if (rc == PS_OK)
        rc = ps_client_wait(x->c, r1, -1);
    if (rc == PS_OK)
        rc = ps_client_push_sparse(x->c, x->sparse, x->keys, NKEYS, sg, &r2);
    if (rc == PS_OK)
        rc = ps_client_wait(x->c, r2, -1);
    if (rc == PS_OK)
        rc = pull_dense(x, x->dense_snap);
    if (rc == PS_OK)
        rc = pull_sparse(x, x->sparse_snap);
    if (rc == PS_OK)
        rc = read_counters(x, &x->dense_pushes, &x->sparse_pushes,
                           &x->sparse_rows);
    if (rc != PS_OK) {
        fprintf(stderr, "setup: prepare: %s\n", ps_client_errmsg(x->c));
        return -1;
    }
    return 0;
}

static int fx_setup(void **state, const fx_cfg *cfg)
{
    fx *x = calloc(1, sizeof(*x));
    if (x == NULL)
        return -1;
    x->shards = cfg->shards;
    x->dense_len = cfg->dense_len;
    x->expect_type = -1;
    x->dense_snap = calloc(cfg->dense_len, sizeof(float));
    if (x->dense_snap == NULL ||
        ps_cluster_start(&x->cl, cfg->shards, cfg->extra) != 0)
        goto fail;
    x->zctx = zmq_ctx_new();
    if (x->zctx == NULL ||
        (x->sock = raw_open(x->zctx, x->cl.srv[0].endpoint)) == NULL)
        goto fail;
    if (fx_prepare(x) != 0)
        goto fail;
    *state = x;
    return 0;
fail:
    fx_free(x);
    return -1;
}

static int setup_one(void **state)
{
    fx_cfg cfg = {1, NULL, DENSE_LEN};
    return fx_setup(state, &cfg);
}

static int setup_two(void **state)
{
    fx_cfg cfg = {2, NULL, DENSE_LEN};
    return fx_setup(state, &cfg);
}

static int setup_small_limit(void **state)
{
    static const char *const extra[] = {"--max-message-bytes", "65536", NULL};
    fx_cfg cfg = {1, extra, BIG_LEN};
    return fx_setup(state, &cfg);
}

static int teardown(void **state)
{
    int bad = fx_free(*state);
    assert_int_equal(bad, 0); /* every server exited 0 on SIGTERM */
    return 0;
}

/* ---- header-level cases ---- */

static void test_server_header_empty_eproto(void **state)
{
    fx *x = *state;
    expect_error(x, send_bytes(x, "", 0, NULL, 0), PS_EPROTO);
    check_intact(x);
}

static void test_server_header_garbage_eproto(void **state)
{
    fx *x = *state;
    /* A varint tag longer than 10 bytes: never a valid protobuf. */
    unsigned char junk[16];
    memset(junk, 0xff, sizeof(junk));
    expect_error(x, send_bytes(x, junk, sizeof(junk), NULL, 0), PS_EPROTO);
    float v[4] = {1, 2, 3, 4};
    frame bulk = {v, sizeof(v)};
    expect_error(x, send_bytes(x, junk, sizeof(junk), &bulk, 1), PS_EPROTO);
    /* Frame 0 over the header cap, though the message is within limits. */
    size_t big = PS_MAX_HEADER_BYTES + 1;
    unsigned char *huge = malloc(big);
    assert_non_null(huge);
    memset(huge, 0xff, big);
    expect_error(x, send_bytes(x, huge, big, NULL, 0), PS_EPROTO);
    free(huge);
    check_intact(x);
}

static void test_server_header_version99_eversion(void **state)
{
    fx *x = *state;
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 0, 4);
    h.version = 99;
    h.request_id = 0xfeedbeef12345ULL;
    float g[4] = {1, 1, 1, 1};
    frame bulk = {g, sizeof(g)};
    /* expect_error checks that the reply echoes the request id. */
    expect_error(x, exchange(x, &h, &bulk, 1), PS_EVERSION);
    h.has_version = 0; /* absent version: not ours either */
    expect_error(x, exchange(x, &h, &bulk, 1), PS_EVERSION);
    check_intact(x);
}

static void test_server_header_unknown_type_eunknown(void **state)
{
    fx *x = *state;
    ps_header h;
    hdr_data(x, &h, 42, x->dense_id, 0, 4);
    float g[4] = {1, 1, 1, 1};
    frame bulk = {g, sizeof(g)};
    expect_error(x, exchange(x, &h, &bulk, 1), PS_EUNKNOWN);
    hdr_base(x, &h, SPARKPS__MSG_TYPE__MSG_NONE);
    expect_error(x, exchange(x, &h, NULL, 0), PS_EUNKNOWN);
    check_intact(x);
}

static void test_server_header_bad_dtype_eproto(void **state)
{
    fx *x = *state;
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 0, 4);
    h.has_dtype = 1;
    h.dtype = (Sparkps__DType)7;
    float g[4] = {1, 1, 1, 1};
    frame bulk = {g, sizeof(g)};
    expect_error(x, exchange(x, &h, &bulk, 1), PS_EPROTO);
    check_intact(x);
}

static void test_server_header_worker_id_70000_einval(void **state)
{
    fx *x = *state;
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 0, 4);
    h.has_worker_id = 1;
    h.worker_id = 70000;
    float g[4] = {1, 1, 1, 1};
    frame bulk = {g, sizeof(g)};
    expect_error(x, exchange(x, &h, &bulk, 1), PS_EINVAL);
    hdr_base(x, &h, SPARKPS__MSG_TYPE__CLOCK);
    h.has_worker_id = h.has_clock = 1;
    h.worker_id = 70000;
    h.clock = 1;
    expect_error(x, exchange(x, &h, NULL, 0), PS_EINVAL);
    check_intact(x);
}

/* ---- data requests ---- */

static void test_server_push_unknown_table_enotable(void **state)
{
    fx *x = *state;
    float g[4] = {1, 1, 1, 1};
    frame bulk = {g, sizeof(g)};
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, 999, 0, 4);
    expect_error(x, exchange(x, &h, &bulk, 1), PS_ENOTABLE);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PULL, UINT32_MAX, 0, 4);
    expect_error(x, exchange(x, &h, NULL, 0), PS_ENOTABLE);
    check_intact(x);
}

static void test_server_push_dense_out_of_range_erange(void **state)
{
    fx *x = *state;
    static const struct {
        uint64_t offset, count;
    } bad[] = {
        {DENSE_LEN - 4, 8},   /* runs past the end */
        {DENSE_LEN, 1},       /* starts at the end */
        {DENSE_LEN + 100, 1}, /* starts past the end */
        {UINT64_MAX, 2},      /* offset + count wraps */
        {1, UINT64_MAX},      /* count wraps */
        {0, 0},               /* empty */
    };
    float g[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ps_header h;
        size_t n = bad[i].count < 8 ? (size_t)bad[i].count : 8;
        frame bulk = {g, n * sizeof(float)};
        hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, bad[i].offset,
                 bad[i].count);
        expect_error(x, exchange(x, &h, &bulk, 1), PS_ERANGE);
        hdr_data(x, &h, SPARKPS__MSG_TYPE__PULL, x->dense_id, bad[i].offset,
                 bad[i].count);
        expect_error(x, exchange(x, &h, NULL, 0), PS_ERANGE);
        hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSHPULL, x->dense_id, bad[i].offset,
                 bad[i].count);
        expect_error(x, exchange(x, &h, &bulk, 1), PS_ERANGE);
    }
    check_intact(x);
}

static void test_server_push_value_size_mismatch_eproto(void **state)
{
    fx *x = *state;
    float g[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    static const size_t sizes[] = {0, 4, 31, 33, 36}; /* count 8: 32 */
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        ps_header h;
        frame bulk = {g, sizes[i]};
        hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 0, 8);
        expect_error(x, exchange(x, &h, &bulk, 1), PS_EPROTO);
        hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSHPULL, x->dense_id, 0, 8);
        expect_error(x, exchange(x, &h, &bulk, 1), PS_EPROTO);
    }
    /* An f16 push needs 2 bytes per value, not 4. */
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 0, 8);
    h.has_dtype = 1;
    h.dtype = SPARKPS__DTYPE__F16;
    frame bulk = {g, 32};
    expect_error(x, exchange(x, &h, &bulk, 1), PS_EPROTO);
    /* Sparse: values for 2 keys of dim 4 are 32 bytes. */
    frame sp[2] = {{x->keys, 2 * sizeof(uint64_t)}, {g, 28}};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->sparse_id, 0, 2);
    expect_error(x, exchange(x, &h, sp, 2), PS_EPROTO);
    check_intact(x);
}

static void test_server_push_bad_lr_scale_einval(void **state)
{
    fx *x = *state;
    float g[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    static const double bad[] = {0.0, -1.0, 2e6, NAN, INFINITY};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ps_header h;
        frame bulk = {g, sizeof(g)};
        hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSHPULL, x->dense_id, 0, 8);
        h.has_lr_scale = 1;
        h.lr_scale = bad[i];
        expect_error_naming(x, exchange(x, &h, &bulk, 1), PS_EINVAL,
                            "lr_scale");
    }
    check_intact(x);
}

static void test_server_push_missing_value_frame_eproto(void **state)
{
    fx *x = *state;
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 0, 4);
    expect_error(x, exchange(x, &h, NULL, 0), PS_EPROTO);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSHPULL, x->dense_id, 0, 4);
    expect_error(x, exchange(x, &h, NULL, 0), PS_EPROTO);
    /* Sparse push with keys but no values, and a sparse pull without keys. */
    frame keys = {x->keys, 2 * sizeof(uint64_t)};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->sparse_id, 0, 2);
    expect_error(x, exchange(x, &h, &keys, 1), PS_EPROTO);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PULL, x->sparse_id, 0, 2);
    expect_error(x, exchange(x, &h, NULL, 0), PS_EPROTO);
    /* A dense pull with a stray frame is malformed too. */
    float g[4] = {1, 1, 1, 1};
    frame extra = {g, sizeof(g)};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PULL, x->dense_id, 0, 4);
    expect_error(x, exchange(x, &h, &extra, 1), PS_EPROTO);
    check_intact(x);
}

static void test_server_push_too_many_frames_eproto(void **state)
{
    fx *x = *state;
    float g[4] = {1, 1, 1, 1};
    /* routing id + header + 3 bulk = 5 frames, and far more. */
    frame bulk[6] = {{g, sizeof(g)}, {g, sizeof(g)}, {g, sizeof(g)},
                     {g, sizeof(g)}, {g, sizeof(g)}, {g, sizeof(g)}};
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 0, 4);
    expect_error(x, exchange(x, &h, bulk, 3), PS_EPROTO);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 0, 4);
    expect_error(x, exchange(x, &h, bulk, 6), PS_EPROTO);
    frame sp[3] = {{x->keys, 8}, {g, sizeof(g)}, {g, sizeof(g)}};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->sparse_id, 0, 1);
    expect_error(x, exchange(x, &h, sp, 3), PS_EPROTO);
    check_intact(x);
}

static void test_server_push_nan_inf_ebadgrad(void **state)
{
    fx *x = *state;
    float bad[3] = {NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 3; i++) {
        float g[8] = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f, 0.8f};
        g[5] = bad[i];
        frame bulk = {g, sizeof(g)};
        ps_header h;
        hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 8, 8);
        expect_error(x, exchange(x, &h, &bulk, 1), PS_EBADGRAD);
        hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSHPULL, x->dense_id, 8, 8);
        expect_error(x, exchange(x, &h, &bulk, 1), PS_EBADGRAD);
    }
    /* Sparse: a NaN for the last key; no key of the push may change, and
     * a key not seen before must not get a row. */
    uint64_t keys[3] = {x->keys[0], x->keys[1], 0};
    for (uint64_t k = 5000; keys[2] == 0; k++)
        if (ps_key_shard(k, (uint32_t)x->shards) == 0)
            keys[2] = k;
    float sg[3 * SPARSE_DIM];
    for (unsigned i = 0; i < 3 * SPARSE_DIM; i++)
        sg[i] = 1.0f;
    sg[3 * SPARSE_DIM - 1] = NAN;
    frame sp[2] = {{keys, sizeof(keys)}, {sg, sizeof(sg)}};
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->sparse_id, 0, 3);
    expect_error(x, exchange(x, &h, sp, 2), PS_EBADGRAD);
    /* f16 Inf (0x7c00) after conversion. */
    uint16_t hg[4] = {0x3c00, 0x7c00, 0x3c00, 0x3c00};
    frame hb = {hg, sizeof(hg)};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 0, 4);
    h.has_dtype = 1;
    h.dtype = SPARKPS__DTYPE__F16;
    expect_error(x, exchange(x, &h, &hb, 1), PS_EBADGRAD);
    check_intact(x);
    char *json = status_json(x);
    uint64_t n = json_error_count(json, "EBADGRAD");
    if (n != 8)
        print_error("status: %s\n", json);
    free(json);
    assert_int_equal(n, 8);
}

static void test_server_push_oversized_etoobig(void **state)
{
    fx *x = *state;
    /* 100 KiB of values: over the 64 KiB limit, under libzmq's cut-off. */
    size_t count = 100 * 1024 / sizeof(float);
    float *g = calloc(count, sizeof(float));
    assert_non_null(g);
    frame bulk = {g, count * sizeof(float)};
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 0, count);
    expect_error(x, exchange(x, &h, &bulk, 1), PS_ETOOBIG);
    free(g);
    check_intact(x);

    /* 1 MiB is over twice the limit: libzmq drops the connection without a
     * reply. The server must live on and accept a new connection. */
    size_t big = 1024 * 1024;
    unsigned char *huge = calloc(1, big);
    assert_non_null(huge);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 0, big / 4);
    uint8_t buf[256];
    size_t n = ps_header_pack(&h, buf);
    frame f[2] = {{buf, n}, {huge, big}};
    assert_int_equal(send_frames(x->sock, f, 2), 0);
    void *fresh = raw_open(x->zctx, x->cl.srv[0].endpoint);
    assert_non_null(fresh);
    hello_ok(x, fresh);
    zmq_close(x->sock);
    x->sock = fresh;
    free(huge);
    check_intact(x);
}

static void test_server_push_sparse_wrong_shard_erange(void **state)
{
    fx *x = *state;
    uint64_t other = 0;
    for (uint64_t k = 1; other == 0; k++)
        if (ps_key_shard(k, 2) == 1)
            other = k;
    float g[2 * SPARSE_DIM] = {1, 1, 1, 1, 1, 1, 1, 1};
    frame one[2] = {{&other, sizeof(other)}, {g, SPARSE_DIM * sizeof(float)}};
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->sparse_id, 0, 1);
    expect_error(x, exchange(x, &h, one, 2), PS_ERANGE);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PULL, x->sparse_id, 0, 1);
    expect_error(x, exchange(x, &h, one, 1), PS_ERANGE);
    /* One good key and one foreign: nothing of the push is applied. */
    uint64_t mixed[2] = {x->keys[0], other};
    frame two[2] = {{mixed, sizeof(mixed)}, {g, sizeof(g)}};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSHPULL, x->sparse_id, 0, 2);
    expect_error(x, exchange(x, &h, two, 2), PS_ERANGE);
    check_intact(x);
}

static void test_server_push_sparse_key_frame_size_eproto(void **state)
{
    fx *x = *state;
    float g[2 * SPARSE_DIM] = {1, 1, 1, 1, 1, 1, 1, 1};
    /* 12 bytes: not a multiple of 8; 24: 3 keys where count says 2; 8: 1. */
    static const size_t sizes[] = {12, 24, 8, 0};
    uint64_t keys[3] = {x->keys[0], x->keys[1], x->keys[2]};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        frame sp[2] = {{keys, sizes[i]}, {g, sizeof(g)}};
        ps_header h;
        hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->sparse_id, 0, 2);
        expect_error(x, exchange(x, &h, sp, 2), PS_EPROTO);
        hdr_data(x, &h, SPARKPS__MSG_TYPE__PULL, x->sparse_id, 0, 2);
        expect_error(x, exchange(x, &h, sp, 1), PS_EPROTO);
    }
    /* A count so large that count * 8 * dim would wrap: the key limit
     * refuses it before any size is computed. */
    ps_header h;
    frame sp[2] = {{keys, 16}, {g, sizeof(g)}};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->sparse_id, 0,
             (UINT64_MAX / 8) + 3);
    expect_error_naming(x, exchange(x, &h, sp, 2), PS_ETOOBIG, "--max-keys");
    check_intact(x);
}

/* ---- limits (--max-message-bytes, --max-keys, --max-rows) ---- */

#define LIMIT_BYTES 65536 /* --max-message-bytes of the limits fixture */
#define LIMIT_KEYS 16     /* --max-keys */
#define LIMIT_ROWS 12     /* --max-rows: the setup's NKEYS rows + 4 */

static int setup_limits(void **state)
{
    static const char *const extra[] = {
        "--max-message-bytes", "65536", "--max-keys", "16",
        "--max-rows",          "12",    NULL};
    fx_cfg cfg = {1, extra, DENSE_LEN};
    return fx_setup(state, &cfg);
}

/* An error counter of shard 0's status. */
static uint64_t error_count(fx *x, const char *name)
{
    char *json = status_json(x);
    uint64_t n = json_error_count(json, name);
    free(json);
    return n;
}

/* Sends [header][n frames of len bytes] without waiting. */
static void send_many_frames(fx *x, const ps_header *h, int n, size_t len)
{
    uint8_t buf[256];
    size_t hn = ps_header_pack(h, buf);
    unsigned char *blob = calloc(1, len ? len : 1);
    assert_non_null(blob);
    assert_int_equal(zmq_send(x->sock, buf, hn, ZMQ_SNDMORE), (int)hn);
    for (int i = 0; i < n; i++)
        assert_int_equal(
            zmq_send(x->sock, blob, len, i + 1 < n ? ZMQ_SNDMORE : 0),
            (int)len);
    free(blob);
    x->expect_rid = h->request_id;
    x->expect_type = (int)h->type;
}

/* ZMQ_MAXMSGSIZE bounds each frame only: a message of many frames, or of
 * a few frames each under the cap but together over it, is read to its
 * end, answered and counted, and the connection stays usable. */
static void test_server_limits_frames_and_total_bytes(void **state)
{
    fx *x = *state;
    uint64_t proto0 = error_count(x, "EPROTO");
    uint64_t big0 = error_count(x, "ETOOBIG");
    ps_header h;
    /* 5000 frames of 100 bytes: far more frames than any request has. */
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->dense_id, 0, 4);
    send_many_frames(x, &h, 5000, 100);
    expect_error_naming(x, recv_reply(x, x->sock, RECV_MS), PS_EPROTO,
                        "frames");
    /* 2000 empty frames: the count alone is refused. */
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PULL, x->sparse_id, 0, 1);
    send_many_frames(x, &h, 2000, 0);
    expect_error_naming(x, recv_reply(x, x->sock, RECV_MS), PS_EPROTO,
                        "frames");
    /* A sparse push of keys + values, each frame under the byte limit,
     * together over it. */
    size_t nk = (LIMIT_BYTES / 2) / 8;
    uint64_t *keys = calloc(nk, 8);
    float *g = calloc(nk * SPARSE_DIM, sizeof(float));
    assert_true(keys && g);
    frame two[2] = {{keys, nk * 8}, {g, nk * SPARSE_DIM * sizeof(float)}};
    assert_true(two[0].n < LIMIT_BYTES && two[1].n < 2 * LIMIT_BYTES);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->sparse_id, 0, nk);
    expect_error_naming(x, exchange(x, &h, two, 2), PS_ETOOBIG, "all frames");
    free(keys);
    free(g);
    check_intact(x);
    assert_int_equal(error_count(x, "EPROTO"), proto0 + 2);
    assert_int_equal(error_count(x, "ETOOBIG"), big0 + 1);
}

/* More keys than --max-keys: refused with ETOOBIG naming the flag, for
 * pushes and pulls alike; exactly the limit is served. */
static void test_server_limits_max_keys(void **state)
{
    fx *x = *state;
    uint64_t keys[LIMIT_KEYS + 1];
    for (int i = 0; i <= LIMIT_KEYS; i++)
        keys[i] = x->keys[i % NKEYS];
    float g[(LIMIT_KEYS + 1) * SPARSE_DIM];
    for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++)
        g[i] = 1.0f;
    frame sp[2] = {{keys, sizeof(keys)}, {g, sizeof(g)}};
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->sparse_id, 0, LIMIT_KEYS + 1);
    expect_error_naming(x, exchange(x, &h, sp, 2), PS_ETOOBIG, "--max-keys");
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PULL, x->sparse_id, 0, LIMIT_KEYS + 1);
    expect_error_naming(x, exchange(x, &h, sp, 1), PS_ETOOBIG, "--max-keys");
    check_intact(x);
    assert_int_equal(error_count(x, "ETOOBIG"), 2);
    frame ok[1] = {{keys, LIMIT_KEYS * 8}};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PULL, x->sparse_id, 0, LIMIT_KEYS);
    expect_error(x, exchange(x, &h, ok, 1), PS_OK);
    assert_int_equal(x->bulk_len, LIMIT_KEYS * SPARSE_DIM * sizeof(float));
}

/* Sparse rows past --max-rows: a push or assign that would create them is
 * refused whole with EFULL (no row created, the pushed old key unchanged),
 * the table still takes pushes to its rows and fills up to the limit. */
static void test_server_limits_max_rows_efull(void **state)
{
    fx *x = *state;
    assert_int_equal(x->sparse_rows, NKEYS);
    uint64_t fresh[LIMIT_ROWS - NKEYS + 1];
    size_t nf = sizeof(fresh) / sizeof(fresh[0]);
    for (uint64_t k = 9000, n = 0; n < nf; k++)
        fresh[n++] = k; /* one shard: every key is shard 0's */
    /* An old key and one row more than fits. */
    uint64_t keys[1 + sizeof(fresh) / sizeof(fresh[0])];
    keys[0] = x->keys[0];
    memcpy(keys + 1, fresh, sizeof(fresh));
    float g[sizeof(keys) / 8 * SPARSE_DIM];
    for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++)
        g[i] = 1.0f;
    frame sp[2] = {{keys, sizeof(keys)}, {g, sizeof(g)}};
    int types[3] = {SPARKPS__MSG_TYPE__PUSH, SPARKPS__MSG_TYPE__PUSHPULL,
                    SPARKPS__MSG_TYPE__ASSIGN};
    for (int i = 0; i < 3; i++) {
        ps_header h;
        hdr_data(x, &h, types[i], x->sparse_id, 0, sizeof(keys) / 8);
        expect_error_naming(x, exchange(x, &h, sp, 2), PS_EFULL, "--max-rows");
    }
    check_intact(x);
    assert_int_equal(error_count(x, "EFULL"), 3);
    /* Without the last key the push fits exactly; then the table is full
     * for new keys but not for its own. */
    ps_header h;
    frame fit[2] = {{keys, sizeof(keys) - 8},
                    {g, sizeof(g) - SPARSE_DIM * sizeof(float)}};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->sparse_id, 0,
             sizeof(keys) / 8 - 1);
    expect_error(x, exchange(x, &h, fit, 2), PS_OK);
    uint64_t dp, spu, rows;
    assert_int_equal(read_counters(x, &dp, &spu, &rows), PS_OK);
    assert_int_equal(rows, LIMIT_ROWS);
    frame last[2] = {{&fresh[nf - 1], 8}, {g, SPARSE_DIM * sizeof(float)}};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->sparse_id, 0, 1);
    expect_error_naming(x, exchange(x, &h, last, 2), PS_EFULL, "table full");
    frame old[2] = {{x->keys, 8}, {g, SPARSE_DIM * sizeof(float)}};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH, x->sparse_id, 0, 1);
    expect_error(x, exchange(x, &h, old, 2), PS_OK);
    hello_ok(x, x->sock);
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    for (; v >= 0x80; v >>= 7)
        p[n++] = (uint8_t)(v | 0x80);
    p[n++] = (uint8_t)v;
    return n;
}

/* A header within the 64 KiB frame cap that would decode into megabytes
 * is refused by the decoder's memory budget: ETOOBIG, counted, nothing
 * else happens. Encoded by hand: PUSH, version 1, then a Status (field 18)
 * of thousands of empty TableInfo (field 2, "12 00" each), two bytes on
 * the wire and a struct of some 200 bytes each once decoded. */
static void test_server_limits_header_over_budget(void **state)
{
    fx *x = *state;
    size_t n = 30000, len = 0;
    uint8_t *buf = malloc(16 + 2 * n);
    assert_non_null(buf);
    buf[len++] = 0x08; /* type */
    buf[len++] = SPARKPS__MSG_TYPE__PUSH;
    buf[len++] = 0x10; /* version */
    buf[len++] = PS_PROTOCOL_VERSION;
    buf[len++] = 0x92; /* field 18, length-delimited */
    buf[len++] = 0x01;
    len += put_varint(buf + len, 2 * n);
    for (size_t i = 0; i < n; i++) {
        buf[len++] = 0x12;
        buf[len++] = 0x00;
    }
    assert_true(len <= PS_MAX_HEADER_BYTES);
    float g[4] = {1, 1, 1, 1};
    frame bulk = {g, sizeof(g)};
    expect_error_naming(x, send_bytes(x, buf, len, &bulk, 1), PS_ETOOBIG,
                        "memory to decode");
    free(buf);
    check_intact(x);
    assert_int_equal(error_count(x, "ETOOBIG"), 1);
}

/* ---- DEFINE_TABLE / DROP_TABLE / CLOCK ---- */

static int table_listed(fx *x, const char *name)
{
    char *json = status_json(x);
    char pat[64];
    snprintf(pat, sizeof(pat), "\"name\":\"%s\"", name);
    int found = strstr(json, pat) != NULL;
    free(json);
    return found;
}

static void test_server_define_no_spec_eproto(void **state)
{
    fx *x = *state;
    ps_header h;
    hdr_base(x, &h, SPARKPS__MSG_TYPE__DEFINE_TABLE);
    expect_error(x, exchange(x, &h, NULL, 0), PS_EPROTO);
    /* A spec without a name, and one without a job. */
    spec_parts p;
    spec_fill(&p, DENSE, PS_DENSE, DENSE_LEN, 0, 42);
    p.ts.name = NULL;
    expect_error(x, raw_define(x, &p.ts), PS_EPROTO);
    spec_fill(&p, "nojob", PS_DENSE, DENSE_LEN, 0, 42);
    p.ts.job = NULL;
    expect_error(x, raw_define(x, &p.ts), PS_EPROTO);
    assert_false(table_listed(x, "nojob"));
    check_intact(x);
}

static void test_server_define_len0_einval(void **state)
{
    fx *x = *state;
    spec_parts p;
    spec_fill(&p, "bad_len", PS_DENSE, 0, 0, 1);
    expect_error(x, raw_define(x, &p.ts), PS_EINVAL);
    spec_fill(&p, "bad_dim", PS_SPARSE, 0, 0, 1);
    expect_error(x, raw_define(x, &p.ts), PS_EINVAL);
    spec_fill(&p, "bad_kind", 5, 10, 0, 1);
    expect_error(x, raw_define(x, &p.ts), PS_EINVAL);
    assert_false(table_listed(x, "bad_len"));
    assert_false(table_listed(x, "bad_dim"));
    assert_false(table_listed(x, "bad_kind"));
    check_intact(x);
}

static void test_server_define_unknown_optimizer_einval(void **state)
{
    fx *x = *state;
    spec_parts p;
    spec_fill(&p, "bad_opt", PS_DENSE, 16, 0, 1);
    p.optim.kind = (Sparkps__OptimKind)9;
    expect_error_naming(x, raw_define(x, &p.ts), PS_EINVAL, "9");
    assert_false(table_listed(x, "bad_opt"));
    check_intact(x);
}

static void test_server_define_negative_lr_einval(void **state)
{
    fx *x = *state;
    spec_parts p;
    spec_fill(&p, "bad_lr", PS_DENSE, 16, 0, 1);
    p.optim.lr = -0.1;
    expect_error_naming(x, raw_define(x, &p.ts), PS_EINVAL, "lr");
    p.optim.lr = NAN;
    expect_error(x, raw_define(x, &p.ts), PS_EINVAL);
    assert_false(table_listed(x, "bad_lr"));
    check_intact(x);
}

static void expect_conflict(fx *x, const Sparkps__TableSpec *ts,
                            const char *field)
{
    expect_error_naming(x, raw_define(x, ts), PS_ECONFLICT, field);
}

static void test_server_define_conflict_econflict(void **state)
{
    fx *x = *state;
    spec_parts p;
    spec_fill(&p, DENSE, PS_DENSE, DENSE_LEN + 1, 0, 42);
    expect_conflict(x, &p.ts, "len");
    spec_fill(&p, DENSE, PS_DENSE, DENSE_LEN, 0, 42);
    p.optim.lr = 0.25;
    expect_conflict(x, &p.ts, "optimizer");
    spec_fill(&p, DENSE, PS_DENSE, DENSE_LEN, 0, 42);
    p.optim.kind = SPARKPS__OPTIM_KIND__OPT_ADAGRAD;
    expect_conflict(x, &p.ts, "optimizer");
    spec_fill(&p, DENSE, PS_DENSE, DENSE_LEN, 0, 7);
    expect_conflict(x, &p.ts, "init");
    spec_fill(&p, DENSE, PS_SPARSE, 0, SPARSE_DIM, 42);
    expect_conflict(x, &p.ts, "kind");
    spec_fill(&p, SPARSE, PS_SPARSE, 0, SPARSE_DIM + 1, 43);
    expect_conflict(x, &p.ts, "dim");

    /* The same spec again succeeds with the same id and range. */
    spec_fill(&p, DENSE, PS_DENSE, DENSE_LEN, 0, 42);
    ps_header *rep = raw_define(x, &p.ts);
    assert_non_null(rep);
    int has_id = rep->has_table_id;
    uint32_t id = rep->table_id;
    uint64_t lo = rep->lo, hi = rep->hi;
    expect_error(x, rep, PS_OK);
    assert_true(has_id);
    assert_int_equal(id, x->dense_id);
    assert_int_equal(lo, 0);
    assert_int_equal(hi, DENSE_LEN);
    /* And through the client, which keeps its handle working. */
    ps_table_spec ds;
    client_spec(&ds, DENSE, PS_DENSE, DENSE_LEN, 0, 42);
    int handle;
    assert_int_equal(ps_client_define(x->c, &ds, &handle), PS_OK);
    assert_int_equal(handle, x->dense);
    ds.len = DENSE_LEN * 2;
    assert_int_equal(ps_client_define(x->c, &ds, &handle), PS_ECONFLICT);
    /* The client passes the server's reason on. */
    if (strstr(ps_client_errmsg(x->c), "len") == NULL)
        fail_msg("client message \"%s\" does not name 'len'",
                 ps_client_errmsg(x->c));
    check_intact(x);
}

static void test_server_drop_unknown_table_enotable(void **state)
{
    fx *x = *state;
    ps_header h;
    hdr_base(x, &h, SPARKPS__MSG_TYPE__DROP_TABLE);
    h.job = (char *)JOB;
    h.name = (char *)"no_such_table";
    expect_error(x, exchange(x, &h, NULL, 0), PS_ENOTABLE);
    /* The right name in another job is not ours to drop. */
    hdr_base(x, &h, SPARKPS__MSG_TYPE__DROP_TABLE);
    h.job = (char *)"other_job";
    h.name = (char *)DENSE;
    expect_error(x, exchange(x, &h, NULL, 0), PS_ENOTABLE);
    /* No job / no name: malformed. */
    hdr_base(x, &h, SPARKPS__MSG_TYPE__DROP_TABLE);
    h.name = (char *)DENSE;
    expect_error(x, exchange(x, &h, NULL, 0), PS_EPROTO);
    hdr_base(x, &h, SPARKPS__MSG_TYPE__DROP_TABLE);
    h.job = (char *)JOB;
    expect_error(x, exchange(x, &h, NULL, 0), PS_EPROTO);
    check_intact(x);
}

/* SHUTDOWN is exactly [Header]: with data frames or with the fields of a
 * table request it is refused and the shard keeps serving (the teardown
 * then proves it still stops cleanly on SIGTERM). */
static void test_server_shutdown_malformed_refused(void **state)
{
    fx *x = *state;
    ps_header h;
    uint64_t k = 1;
    frame extra[2] = {{&k, sizeof(k)}, {&k, sizeof(k)}};
    hdr_base(x, &h, SPARKPS__MSG_TYPE__SHUTDOWN);
    expect_error_naming(x, exchange(x, &h, extra, 1), PS_EPROTO,
                        "no data frames");
    hdr_base(x, &h, SPARKPS__MSG_TYPE__SHUTDOWN);
    expect_error(x, exchange(x, &h, extra, 2), PS_EPROTO);
    hdr_base(x, &h, SPARKPS__MSG_TYPE__SHUTDOWN);
    expect_error(x, exchange(x, &h, (frame[]){{"", 0}}, 1), PS_EPROTO);
    /* A data request's header with its type turned into SHUTDOWN (what a
     * flipped bit makes of a PUSH: 5 ^ 8 = 13). */
    hdr_data(x, &h, SPARKPS__MSG_TYPE__SHUTDOWN, x->dense_id, 0, 4);
    expect_error_naming(x, exchange(x, &h, NULL, 0), PS_EPROTO, "SHUTDOWN");
    hdr_base(x, &h, SPARKPS__MSG_TYPE__SHUTDOWN);
    h.has_count = 1; /* count 0, present */
    expect_error(x, exchange(x, &h, NULL, 0), PS_EPROTO);
    hdr_base(x, &h, SPARKPS__MSG_TYPE__SHUTDOWN);
    h.job = (char *)JOB;
    expect_error(x, exchange(x, &h, NULL, 0), PS_EPROTO);
    hdr_base(x, &h, SPARKPS__MSG_TYPE__SHUTDOWN);
    h.name = (char *)DENSE;
    expect_error(x, exchange(x, &h, NULL, 0), PS_EPROTO);
    hdr_base(x, &h, SPARKPS__MSG_TYPE__SHUTDOWN);
    h.has_client_id = h.has_seq = 1;
    h.client_id = 0xf022;
    h.seq = 1;
    expect_error(x, exchange(x, &h, NULL, 0), PS_EPROTO);
    check_intact(x);
    /* Refused attempts are counted like any other bad request. */
    char *json = status_json(x);
    uint64_t refused = json_error_count(json, "EPROTO");
    free(json);
    assert_true(refused >= 8);
}

static void test_server_clock_no_worker_einval(void **state)
{
    fx *x = *state;
    ps_header h;
    hdr_base(x, &h, SPARKPS__MSG_TYPE__CLOCK);
    h.has_clock = 1;
    h.clock = 1;
    expect_error(x, exchange(x, &h, NULL, 0), PS_EINVAL);
    hdr_base(x, &h, SPARKPS__MSG_TYPE__CLOCK);
    h.has_worker_id = h.has_clock = 1;
    h.worker_id = -7;
    h.clock = 1;
    expect_error(x, exchange(x, &h, NULL, 0), PS_EINVAL);
    hdr_base(x, &h, SPARKPS__MSG_TYPE__CLOCK);
    h.has_worker_id = h.has_clock = 1;
    h.worker_id = 3;
    h.clock = -1;
    expect_error(x, exchange(x, &h, NULL, 0), PS_EINVAL);
    check_intact(x);
}

/* ---- deduplication ---- */

static ps_header *push_seq(fx *x, int type, uint64_t client, uint64_t seq,
                           uint64_t offset, uint64_t count, const float *g)
{
    ps_header h;
    hdr_data(x, &h, type, x->dense_id, offset, count);
    h.has_client_id = h.has_seq = 1;
    h.client_id = client;
    h.seq = seq;
    frame bulk = {g, count * sizeof(float)};
    return exchange(x, &h, &bulk, 1);
}

static void test_server_push_stale_seq_estale(void **state)
{
    fx *x = *state;
    float g[4] = {1, 1, 1, 1};
    expect_error(x,
                 push_seq(x, SPARKPS__MSG_TYPE__PUSH, 0xc0ffee, 5000, 0, 4, g),
                 PS_OK);
    expect_error(x, push_seq(x, SPARKPS__MSG_TYPE__PUSH, 0xc0ffee, 1, 0, 4, g),
                 PS_ESTALE);
    expect_error(x,
                 push_seq(x, SPARKPS__MSG_TYPE__PUSHPULL, 0xc0ffee, 2, 0, 4, g),
                 PS_ESTALE);
    /* Moved once, by the seq 5000 push only. */
    float *want = malloc(DENSE_LEN * sizeof(float));
    assert_non_null(want);
    memcpy(want, x->dense_snap, DENSE_LEN * sizeof(float));
    for (int i = 0; i < 4; i++)
        want[i] -= (float)LR;
    assert_dense(x, want, x->dense_pushes + 1);
    free(want);
    hello_ok(x, x->sock);
}

static void test_server_push_duplicate_seq_applied_once(void **state)
{
    fx *x = *state;
    float g[4] = {1, 1, 1, 1};
    expect_error(x, push_seq(x, SPARKPS__MSG_TYPE__PUSH, 0xd00d, 7, 4, 4, g),
                 PS_OK);
    expect_error(x, push_seq(x, SPARKPS__MSG_TYPE__PUSH, 0xd00d, 7, 4, 4, g),
                 PS_OK);
    /* A retried PUSHPULL answers with the values, applied once too. */
    expect_error(
        x, push_seq(x, SPARKPS__MSG_TYPE__PUSHPULL, 0xd00d, 8, 4, 4, g), PS_OK);
    assert_int_equal(x->bulk_len, 4 * sizeof(float));
    float first[4];
    memcpy(first, x->bulk, sizeof(first));
    expect_error(
        x, push_seq(x, SPARKPS__MSG_TYPE__PUSHPULL, 0xd00d, 8, 4, 4, g), PS_OK);
    assert_int_equal(x->bulk_len, 4 * sizeof(float));
    assert_memory_equal(x->bulk, first, sizeof(first));
    float *want = malloc(DENSE_LEN * sizeof(float));
    assert_non_null(want);
    memcpy(want, x->dense_snap, DENSE_LEN * sizeof(float));
    for (int i = 4; i < 8; i++)
        want[i] = (want[i] - (float)LR) - (float)LR;
    for (int i = 0; i < 4; i++)
        assert_memory_equal(&first[i], &want[4 + i], sizeof(float));
    assert_dense(x, want, x->dense_pushes + 2);
    free(want);
    hello_ok(x, x->sock);
}

/* ---- fuzz ---- */

static uint64_t rng_next(uint64_t *s)
{
    /* xorshift64*: repeatable on every platform, unlike rand(). */
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* Packs a valid PUSH header (dense or sparse) into buf. */
static size_t fuzz_base(fx *x, int sparse, uint8_t *buf)
{
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__PUSH,
             sparse ? x->sparse_id : x->dense_id, sparse ? 0 : 8,
             sparse ? 2 : 8);
    h.has_client_id = h.has_seq = 1;
    h.client_id = 0xf022;
    h.seq = 1;
    return ps_header_pack(&h, buf);
}

/* ---- ASSIGN and SCAN ---- */

static void test_server_assign_malformed_refused(void **state)
{
    fx *x = *state;
    float v[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    frame bulk = {v, sizeof(v)};
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, 999, 0, 8);
    expect_error(x, exchange(x, &h, &bulk, 1), PS_ENOTABLE);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, x->dense_id, DENSE_LEN - 4, 8);
    expect_error(x, exchange(x, &h, &bulk, 1), PS_ERANGE);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, x->dense_id, UINT64_MAX, 2);
    expect_error(x, exchange(x, &h, &bulk, 1), PS_ERANGE);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, x->dense_id, 0, 0);
    expect_error(x, exchange(x, &h, &bulk, 1), PS_ERANGE);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, x->dense_id, 0, 9);
    expect_error(x, exchange(x, &h, &bulk, 1), PS_EPROTO); /* 32 != 36 */
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, x->dense_id, 0, 8);
    expect_error(x, exchange(x, &h, NULL, 0), PS_EPROTO); /* no values */
    frame two[2] = {bulk, bulk};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, x->dense_id, 0, 8);
    expect_error(x, exchange(x, &h, two, 2), PS_EPROTO); /* extra frame */
    v[3] = NAN;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, x->dense_id, 0, 8);
    expect_error_naming(x, exchange(x, &h, &bulk, 1), PS_EBADGRAD, "values");
    v[3] = INFINITY;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, x->dense_id, 0, 8);
    h.has_if_untouched = h.if_untouched = 1;
    expect_error(x, exchange(x, &h, &bulk, 1), PS_EBADGRAD);
    v[3] = 4;
    /* Sparse: key frame of the wrong size, values for the wrong count. */
    frame sp[2] = {{x->keys, 3}, {v, 2 * SPARSE_DIM * 4}};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, x->sparse_id, 0, 2);
    expect_error(x, exchange(x, &h, sp, 2), PS_EPROTO);
    sp[0] = (frame){x->keys, 2 * sizeof(uint64_t)};
    sp[1] = (frame){v, 28};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, x->sparse_id, 0, 2);
    expect_error(x, exchange(x, &h, sp, 2), PS_EPROTO);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, x->sparse_id, 0, 2);
    expect_error(x, exchange(x, &h, sp, 1), PS_EPROTO); /* values missing */
    check_intact(x);
}

static void test_server_assign_sparse_wrong_shard_erange(void **state)
{
    fx *x = *state;
    uint64_t k = 1000;
    while (ps_key_shard(k, 2) == 0)
        k++;
    float v[SPARSE_DIM] = {1, 2, 3, 4};
    frame sp[2] = {{&k, sizeof(k)}, {v, sizeof(v)}};
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__ASSIGN, x->sparse_id, 0, 1);
    expect_error(x, exchange(x, &h, sp, 2), PS_ERANGE);
    check_intact(x);
}

static void test_server_scan_malformed_refused(void **state)
{
    fx *x = *state;
    ps_header h;
    hdr_data(x, &h, SPARKPS__MSG_TYPE__SCAN, 999, 0, 10);
    expect_error(x, exchange(x, &h, NULL, 0), PS_ENOTABLE);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__SCAN, x->dense_id, 0, 10);
    expect_error_naming(x, exchange(x, &h, NULL, 0), PS_EINVAL, "sparse");
    hdr_data(x, &h, SPARKPS__MSG_TYPE__SCAN, x->sparse_id, 0, 0);
    expect_error(x, exchange(x, &h, NULL, 0), PS_ERANGE);
    hdr_data(x, &h, SPARKPS__MSG_TYPE__SCAN, x->sparse_id, UINT64_MAX, 10);
    expect_error(x, exchange(x, &h, NULL, 0), PS_ERANGE);
    uint64_t k = 1;
    frame extra = {&k, sizeof(k)};
    hdr_data(x, &h, SPARKPS__MSG_TYPE__SCAN, x->sparse_id, 0, 10);
    expect_error(x, exchange(x, &h, &extra, 1), PS_EPROTO);
    /* A good scan, one row per page: every stored row once, then done. */
    uint64_t cursor = 0, seen = 0;
    for (int page = 0; page < 10000; page++) {
        hdr_data(x, &h, SPARKPS__MSG_TYPE__SCAN, x->sparse_id, cursor, 1);
        ps_header *rep = exchange(x, &h, NULL, 0);
        assert_false(rep->has_error_code && rep->error_code != PS_OK);
        assert_true(rep->count <= 1);
        assert_int_equal(x->bulk_len, rep->count * SPARSE_DIM * 4);
        seen += rep->count;
        cursor = rep->offset;
        int done = rep->done;
        ps_header_free(rep);
        if (done)
            break;
    }
    assert_int_equal(seen, x->sparse_rows);
    check_intact(x);
}

static void test_server_fuzz_random_frames_survives(void **state)
{
    fx *x = *state;
    uint64_t rs = FUZZ_SEED;
    uint8_t base[2][256];
    size_t blen[2] = {fuzz_base(x, 0, base[0]), fuzz_base(x, 1, base[1])};
    /* Bulk frames are all 0xff bytes: NaN in every dtype, so no mutation of
     * the header can turn one into a gradient the server would apply. */
    static uint8_t bulk[3][512];
    memset(bulk, 0xff, sizeof(bulk));
    static const size_t sizes[] = {0, 1, 4, 8, 16, 24, 32, 64, 100, 512};
    uint8_t hdr[512];
    int answered = 0, silent = 0;
    int codes[PS_ERR_COUNT_ + 1] = {0}; /* replies by code, last: others */
    for (int i = 0; i < FUZZ_ROUNDS; i++) {
        size_t hlen;
        int b = -1; /* the base header mutated, if any */
        int mode = (int)(rng_next(&rs) % 4);
        if (mode == 0) {
            hlen = rng_next(&rs) % 300;
            for (size_t k = 0; k < hlen; k++)
                hdr[k] = (uint8_t)rng_next(&rs);
        } else {
            b = mode == 3 ? (int)(rng_next(&rs) % 2) : mode - 1;
            hlen = blen[b];
            memcpy(hdr, base[b], hlen);
            int flips = 1 + (int)(rng_next(&rs) % 4);
            for (int k = 0; k < flips; k++) {
                uint64_t r = rng_next(&rs);
                hdr[(r >> 8) % hlen] ^= (uint8_t)(1u << (r % 8));
            }
            if (mode == 3 && rng_next(&rs) % 4 == 0)
                hlen = rng_next(&rs) % (hlen + 1);
        }
        int nbulk;
        frame f[4];
        f[0] = (frame){hdr, hlen};
        if (b >= 0 && rng_next(&rs) % 2 == 0) {
            /* The frames the unmutated header asks for, so mutations reach
             * the checks behind the frame layout. */
            nbulk = b + 1;
            f[1] = (frame){bulk[0], b ? 2 * sizeof(uint64_t) : 8 * 4};
            f[2] = (frame){bulk[1], 2 * SPARSE_DIM * 4};
        } else {
            nbulk = (int)(rng_next(&rs) % 4);
            for (int k = 0; k < nbulk; k++)
                f[k + 1] = (frame){bulk[k], sizes[rng_next(&rs) % 10]};
        }
        assert_int_equal(send_frames(x->sock, f, nbulk + 1), 0);

        /* A HELLO behind it: its answer proves the fuzz message was
         * handled (answered or dropped) and the server lives. */
        ps_header h;
        hdr_base(x, &h, SPARKPS__MSG_TYPE__HELLO);
        h.request_id = FUZZ_HELLO_TAG + (uint64_t)i;
        uint8_t hb[64];
        frame hf = {hb, ps_header_pack(&h, hb)};
        assert_int_equal(send_frames(x->sock, &hf, 1), 0);
        int others = 0;
        for (;;) {
            ps_header *rep = recv_reply(x, x->sock, RECV_MS);
            if (rep == NULL)
                fail_msg("fuzz round %d (seed %#llx): no reply in %d ms", i,
                         (unsigned long long)FUZZ_SEED, RECV_MS);
            int probe = rep->hello != NULL && rep->request_id == h.request_id;
            int code = rep->has_error_code ? rep->error_code : PS_OK;
            ps_header_free(rep);
            if (probe)
                break;
            codes[code >= 0 && code < PS_ERR_COUNT_ ? code : PS_ERR_COUNT_]++;
            others++;
        }
        assert_true(others <= 1);
        if (others)
            answered++;
        else
            silent++;
    }
    print_message("fuzz: %d rounds, %d answered, %d dropped silently\n",
                  FUZZ_ROUNDS, answered, silent);
    for (int c = 0; c <= PS_ERR_COUNT_; c++)
        if (codes[c] > 0)
            print_message("fuzz: %s x%d\n",
                          c < PS_ERR_COUNT_ ? ps_errname(c) : "other",
                          codes[c]);
    check_intact(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_server_header_empty_eproto,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_header_garbage_eproto,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_header_version99_eversion,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_header_unknown_type_eunknown, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_header_bad_dtype_eproto,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_header_worker_id_70000_einval, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_push_unknown_table_enotable,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_push_dense_out_of_range_erange, setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_push_value_size_mismatch_eproto, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_push_bad_lr_scale_einval,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_push_missing_value_frame_eproto, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_push_too_many_frames_eproto,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_push_nan_inf_ebadgrad,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_push_oversized_etoobig,
                                        setup_small_limit, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_push_sparse_wrong_shard_erange, setup_two, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_push_sparse_key_frame_size_eproto, setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_limits_frames_and_total_bytes, setup_limits, teardown),
        cmocka_unit_test_setup_teardown(test_server_limits_max_keys,
                                        setup_limits, teardown),
        cmocka_unit_test_setup_teardown(test_server_limits_max_rows_efull,
                                        setup_limits, teardown),
        cmocka_unit_test_setup_teardown(test_server_limits_header_over_budget,
                                        setup_limits, teardown),
        cmocka_unit_test_setup_teardown(test_server_define_no_spec_eproto,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_define_len0_einval,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_define_unknown_optimizer_einval, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_define_negative_lr_einval,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_define_conflict_econflict,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_drop_unknown_table_enotable,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_shutdown_malformed_refused,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_clock_no_worker_einval,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_push_stale_seq_estale,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_push_duplicate_seq_applied_once, setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_assign_malformed_refused,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(
            test_server_assign_sparse_wrong_shard_erange, setup_two, teardown),
        cmocka_unit_test_setup_teardown(test_server_scan_malformed_refused,
                                        setup_one, teardown),
        cmocka_unit_test_setup_teardown(test_server_fuzz_random_frames_survives,
                                        setup_one, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
