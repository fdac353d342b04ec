/* Unit tests for common/codec.c: header round trip through protobuf with
 * every kind of field, and every refusal of ps_header_decode. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/codec.h"

#include <stdlib.h>
#include <string.h>

/* Packs h into a new buffer (the caller frees) and reports its length. */
static uint8_t *pack_new(const ps_header *h, size_t *len)
{
    *len = ps_header_packed_size(h);
    uint8_t *buf = malloc(*len ? *len : 1);
    assert_non_null(buf);
    assert_int_equal(ps_header_pack(h, buf), *len);
    return buf;
}

/* Packs h, decodes it and checks the code; returns the decoded header. */
static ps_header *round_trip(const ps_header *h, int want_rc)
{
    size_t len;
    uint8_t *buf = pack_new(h, &len);
    ps_header *out = NULL;
    char err[256] = "";
    int rc = ps_header_decode(buf, len, &out, err, sizeof(err));
    free(buf);
    if (rc != want_rc) {
        print_error("decode gave %d (%s), want %d\n", rc, err, want_rc);
        fail();
    }
    if (rc != PS_OK)
        assert_true(strlen(err) > 0);
    return out;
}

static char *string_of(size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, 'x', n);
    s[n] = '\0';
    return s;
}

static void test_codec_header_round_trip_all_fields(void **st)
{
    (void)st;
    ps_header h;
    ps_header_init(&h);
    h.has_type = 1;
    h.type = SPARKPS__MSG_TYPE__DEFINE_TABLE;
    h.has_request_id = 1;
    h.request_id = UINT64_MAX - 5;
    h.has_client_id = 1;
    h.client_id = 0x0123456789abcdefull;
    h.has_seq = 1;
    h.seq = 77;
    h.has_worker_id = 1;
    h.worker_id = -1;
    h.has_clock = 1;
    h.clock = -42;
    h.has_table_id = 1;
    h.table_id = 9;
    h.has_dtype = 1;
    h.dtype = SPARKPS__DTYPE__BF16;
    h.has_offset = 1;
    h.offset = 1ull << 40;
    h.has_count = 1;
    h.count = 12345;
    h.has_error_code = 1;
    h.error_code = PS_ERANGE;
    h.error_msg = "offset out of range: \"quoted\"";
    h.job = "job-1";
    h.name = "fc1.weight";
    h.has_min_clock = 1;
    h.min_clock = -3;
    h.has_deferred = 1;
    h.deferred = 1;
    h.has_lo = 1;
    h.lo = 100;
    h.has_hi = 1;
    h.hi = 200;

    Sparkps__Hello hello;
    sparkps__hello__init(&hello);
    hello.cluster_id = "c1";
    hello.has_shards = 1;
    hello.shards = 4;
    hello.has_consistency = 1;
    hello.consistency = SPARKPS__CONSISTENCY__SSP;
    hello.has_max_message_bytes = 1;
    hello.max_message_bytes = 1ull << 33;
    h.hello = &hello;

    Sparkps__Init init;
    sparkps__init__init(&init);
    init.has_kind = 1;
    init.kind = SPARKPS__INIT_KIND__INIT_NORMAL;
    init.has_b = 1;
    init.b = 0.125;
    init.has_seed = 1;
    init.seed = 99;
    Sparkps__Optim optim;
    sparkps__optim__init(&optim);
    optim.has_kind = 1;
    optim.kind = SPARKPS__OPTIM_KIND__OPT_ADAM;
    optim.has_lr = 1;
    optim.lr = 1e-3;
    uint64_t shape[2] = {784, 256};
    Sparkps__TableSpec spec;
    sparkps__table_spec__init(&spec);
    spec.job = "job-1";
    spec.name = "fc1.weight";
    spec.has_len = 1;
    spec.len = 784 * 256;
    spec.n_shape = 2;
    spec.shape = shape;
    spec.init = &init;
    spec.optim = &optim;
    h.table = &spec;

    Sparkps__Counter ctr;
    sparkps__counter__init(&ctr);
    ctr.name = "PUSH";
    ctr.has_value = 1;
    ctr.value = 5;
    Sparkps__Counter *ctrs[1] = {&ctr};
    Sparkps__Status status;
    sparkps__status__init(&status);
    status.n_requests = 1;
    status.requests = ctrs;
    status.has_uptime_ms = 1;
    status.uptime_ms = 1000;
    h.status = &status;

    Sparkps__Progress prog;
    sparkps__progress__init(&prog);
    prog.has_loss = 1;
    prog.loss = 0.693;
    prog.has_samples = 1;
    prog.samples = 60000;
    h.progress = &prog;

    ps_header *d = round_trip(&h, PS_OK);
    assert_non_null(d);
    assert_int_equal(d->version, PS_PROTOCOL_VERSION);
    assert_int_equal(d->type, SPARKPS__MSG_TYPE__DEFINE_TABLE);
    assert_true(d->request_id == UINT64_MAX - 5);
    assert_true(d->client_id == 0x0123456789abcdefull);
    assert_true(d->seq == 77);
    assert_int_equal(d->worker_id, -1);
    assert_true(d->clock == -42);
    assert_int_equal(d->table_id, 9);
    assert_int_equal(d->dtype, SPARKPS__DTYPE__BF16);
    assert_true(d->offset == 1ull << 40);
    assert_true(d->count == 12345);
    assert_int_equal(d->error_code, PS_ERANGE);
    assert_string_equal(d->error_msg, h.error_msg);
    assert_string_equal(d->job, "job-1");
    assert_string_equal(d->name, "fc1.weight");
    assert_true(d->has_min_clock && d->min_clock == -3);
    assert_true(d->has_deferred && d->deferred);
    assert_true(d->lo == 100 && d->hi == 200);
    assert_non_null(d->hello);
    assert_string_equal(d->hello->cluster_id, "c1");
    assert_int_equal(d->hello->shards, 4);
    assert_int_equal(d->hello->consistency, SPARKPS__CONSISTENCY__SSP);
    assert_true(d->hello->max_message_bytes == 1ull << 33);
    assert_non_null(d->table);
    assert_int_equal(d->table->n_shape, 2);
    assert_true(d->table->shape[0] == 784 && d->table->shape[1] == 256);
    assert_true(d->table->len == 784 * 256);
    assert_int_equal(d->table->init->kind, SPARKPS__INIT_KIND__INIT_NORMAL);
    assert_true(d->table->init->b == 0.125 && d->table->init->seed == 99);
    assert_int_equal(d->table->optim->kind, SPARKPS__OPTIM_KIND__OPT_ADAM);
    assert_true(d->table->optim->lr == 1e-3);
    assert_false(d->table->optim->has_momentum);
    assert_non_null(d->status);
    assert_int_equal(d->status->n_requests, 1);
    assert_string_equal(d->status->requests[0]->name, "PUSH");
    assert_true(d->status->requests[0]->value == 5);
    assert_true(d->status->uptime_ms == 1000);
    assert_non_null(d->progress);
    assert_true(d->progress->loss == 0.693 && d->progress->samples == 60000);
    ps_header_free(d);
}

static void test_codec_header_init_defaults(void **st)
{
    (void)st;
    ps_header h;
    ps_header_init(&h);
    assert_true(h.has_version && h.version == PS_PROTOCOL_VERSION);
    h.has_type = 1;
    h.type = SPARKPS__MSG_TYPE__PULL;
    ps_header *d = round_trip(&h, PS_OK);
    /* Defaults from the .proto: F32, worker -1, nothing else set. */
    assert_int_equal(d->dtype, SPARKPS__DTYPE__F32);
    assert_int_equal(d->worker_id, -1);
    assert_false(d->has_request_id);
    assert_null(d->table);
    ps_header_free(d);
}

static void test_codec_decode_rejects_empty_frame(void **st)
{
    (void)st;
    static ps_header sentinel;
    ps_header *out = &sentinel; /* must be reset to NULL */
    char err[128] = "";
    uint8_t byte = 0;
    assert_int_equal(ps_header_decode(&byte, 0, &out, err, sizeof(err)),
                     PS_EPROTO);
    assert_null(out);
    assert_true(strlen(err) > 0);
}

static void test_codec_decode_rejects_oversized_frame(void **st)
{
    (void)st;
    ps_header h;
    ps_header_init(&h);
    h.has_type = 1;
    h.type = SPARKPS__MSG_TYPE__STATUS;
    /* Grow error_msg until the frame is exactly the limit: accepted. */
    size_t base = ps_header_packed_size(&h);
    size_t n = PS_MAX_HEADER_BYTES - base - 4; /* tag + 3-byte length */
    char *msg = string_of(n);
    h.error_msg = msg;
    assert_int_equal(ps_header_packed_size(&h), PS_MAX_HEADER_BYTES);
    ps_header_free(round_trip(&h, PS_OK));
    /* One byte more: refused before any parsing, *out stays NULL. */
    char *longer = string_of(n + 1);
    h.error_msg = longer;
    assert_int_equal(ps_header_packed_size(&h), PS_MAX_HEADER_BYTES + 1);
    ps_header *out = round_trip(&h, PS_EPROTO);
    assert_null(out);
    free(msg);
    free(longer);
}

/* Packs a header carrying st, checks it fits in max, decodes it with that
 * limit and returns the code (err says why). */
static int decode_status(Sparkps__Status *st, size_t max, char *err,
                         size_t errlen)
{
    ps_header h;
    ps_header_init(&h);
    h.has_type = 1;
    h.type = SPARKPS__MSG_TYPE__STATUS;
    h.status = st;
    size_t len;
    uint8_t *buf = pack_new(&h, &len);
    assert_true(len <= max);
    ps_header *out = NULL;
    int rc = ps_header_decode_max(buf, len, max, &out, err, errlen);
    if (rc == PS_OK)
        assert_int_equal(out->status->n_workers, st->n_workers);
    else
        assert_null(out); /* refused by the budget: nothing decoded */
    ps_header_free(out);
    free(buf);
    return rc;
}

/* A Status reply as dense as the server makes them (idle workers whose
 * fields are all small, tables with one-letter names) decodes within the
 * budget: real messages must never hit it. */
static void test_codec_decode_dense_status_within_budget(void **st)
{
    (void)st;
    enum { NW = 1000, NT = 200 };
    Sparkps__WorkerInfo *w = calloc(NW, sizeof(*w));
    Sparkps__WorkerInfo **wp = calloc(NW, sizeof(*wp));
    Sparkps__TableInfo *t = calloc(NT, sizeof(*t));
    Sparkps__TableInfo **tp = calloc(NT, sizeof(*tp));
    assert_true(w && wp && t && tp);
    for (size_t i = 0; i < NW; i++) {
        sparkps__worker_info__init(&w[i]);
        w[i].has_id = w[i].has_clock = w[i].has_alive = w[i].has_idle_ms = 1;
        w[i].id = (uint32_t)i;
        wp[i] = &w[i];
    }
    for (size_t i = 0; i < NT; i++) {
        sparkps__table_info__init(&t[i]);
        t[i].job = t[i].name = "t";
        t[i].meta = "";
        t[i].has_id = t[i].has_kind = t[i].has_len = t[i].has_dim = 1;
        t[i].has_lo = t[i].has_hi = t[i].has_rows = t[i].has_bytes = 1;
        t[i].has_optim = t[i].has_pushes = t[i].has_pulls = 1;
        t[i].has_values_applied = 1;
        tp[i] = &t[i];
    }
    Sparkps__Status status;
    sparkps__status__init(&status);
    status.workers = wp;
    status.n_workers = NW;
    status.tables = tp;
    status.n_tables = NT;
    char err[256] = "";
    assert_int_equal(
        decode_status(&status, PS_MAX_REPLY_HEADER_BYTES, err, sizeof(err)),
        PS_OK);
    free(w);
    free(wp);
    free(t);
    free(tp);
}

/* Empty submessages cost two bytes on the wire and a struct each once
 * decoded: a frame within the size cap that would allocate far more than
 * its size is refused with PS_ETOOBIG before it can exhaust memory. */
static void test_codec_decode_refuses_header_over_budget(void **st)
{
    (void)st;
    size_t n = PS_MAX_HEADER_BYTES / 2 - 64;
    Sparkps__WorkerInfo empty;
    sparkps__worker_info__init(&empty);
    Sparkps__WorkerInfo **wp = calloc(n, sizeof(*wp));
    assert_non_null(wp);
    for (size_t i = 0; i < n; i++)
        wp[i] = &empty;
    Sparkps__Status status;
    sparkps__status__init(&status);
    status.workers = wp;
    status.n_workers = n;
    char err[256] = "";
    assert_int_equal(
        decode_status(&status, PS_MAX_HEADER_BYTES, err, sizeof(err)),
        PS_ETOOBIG);
    assert_non_null(strstr(err, "memory to decode"));
    free(wp);
}

static void test_codec_decode_rejects_garbage(void **st)
{
    (void)st;
    static const uint8_t garbage[][6] = {
        {0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, /* endless varint tag */
        {0x08, 0x80, 0x80, 0x80, 0x80, 0x80}, /* truncated varint value */
        {0x0f, 0x01, 0x02, 0x03, 0x04, 0x05}, /* wire type 7 */
        {0x6a, 0x05, 'a', 'b', 0, 0},         /* string runs past the end */
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        ps_header *out = NULL;
        char err[128] = "";
        size_t len = i == 3 ? 4 : sizeof(garbage[i]);
        assert_int_equal(
            ps_header_decode(garbage[i], len, &out, err, sizeof(err)),
            PS_EPROTO);
        assert_null(out);
        assert_true(strlen(err) > 0);
    }
    /* A valid header cut short is garbage too. */
    ps_header h;
    ps_header_init(&h);
    h.has_type = 1;
    h.type = SPARKPS__MSG_TYPE__PUSH;
    h.name = "a-table-name";
    size_t len;
    uint8_t *buf = pack_new(&h, &len);
    ps_header *out = NULL;
    char err[128];
    assert_int_equal(ps_header_decode(buf, len - 3, &out, err, sizeof(err)),
                     PS_EPROTO);
    assert_null(out);
    free(buf);
}

static void test_codec_decode_wrong_version_keeps_request_id(void **st)
{
    (void)st;
    ps_header h;
    ps_header_init(&h);
    h.version = PS_PROTOCOL_VERSION + 1;
    h.has_type = 1;
    h.type = SPARKPS__MSG_TYPE__HELLO;
    h.has_request_id = 1;
    h.request_id = 31337;
    ps_header *out = round_trip(&h, PS_EVERSION);
    assert_non_null(out); /* so the error reply can echo the id */
    assert_true(out->request_id == 31337);
    ps_header_free(out);
    /* No version at all is not version 1 either. */
    h.has_version = 0;
    out = round_trip(&h, PS_EVERSION);
    assert_non_null(out);
    assert_true(out->request_id == 31337);
    ps_header_free(out);
}

static void test_codec_decode_unknown_type(void **st)
{
    (void)st;
    int bad[] = {SPARKPS__MSG_TYPE__MSG_NONE, PS_MSG_TYPE_MAX + 1, 1000};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ps_header h;
        ps_header_init(&h);
        h.has_type = 1;
        h.type = (Sparkps__MsgType)bad[i];
        h.has_request_id = 1;
        h.request_id = 8;
        ps_header *out = round_trip(&h, PS_EUNKNOWN);
        assert_non_null(out);
        assert_true(out->request_id == 8);
        ps_header_free(out);
    }
    /* A header without a type at all is MSG_NONE. */
    ps_header h;
    ps_header_init(&h);
    ps_header_free(round_trip(&h, PS_EUNKNOWN));
    /* Every real type decodes. */
    for (int t = SPARKPS__MSG_TYPE__HELLO; t <= PS_MSG_TYPE_MAX; t++) {
        h.has_type = 1;
        h.type = (Sparkps__MsgType)t;
        ps_header_free(round_trip(&h, PS_OK));
    }
}

static void test_codec_decode_unknown_dtype(void **st)
{
    (void)st;
    ps_header h;
    ps_header_init(&h);
    h.has_type = 1;
    h.type = SPARKPS__MSG_TYPE__PUSH;
    h.has_dtype = 1;
    h.dtype = (Sparkps__DType)3;
    h.has_request_id = 1;
    h.request_id = 5;
    ps_header *out = round_trip(&h, PS_EPROTO);
    assert_non_null(out);
    assert_true(out->request_id == 5);
    ps_header_free(out);
    h.dtype = SPARKPS__DTYPE__F16;
    ps_header_free(round_trip(&h, PS_OK));
}

static void test_codec_decode_name_too_long(void **st)
{
    (void)st;
    char *at_limit = string_of(PS_MAX_NAME);
    char *over = string_of(PS_MAX_NAME + 1);
    Sparkps__TableSpec spec;
    ps_header h;
    /* Each of the four name fields, at the limit and one over. */
    for (int field = 0; field < 4; field++) {
        for (int big = 0; big < 2; big++) {
            char *s = big ? over : at_limit;
            ps_header_init(&h);
            h.has_type = 1;
            h.type = SPARKPS__MSG_TYPE__DEFINE_TABLE;
            h.has_request_id = 1;
            h.request_id = 6;
            sparkps__table_spec__init(&spec);
            h.table = &spec;
            if (field == 0)
                h.job = s;
            else if (field == 1)
                h.name = s;
            else if (field == 2)
                spec.job = s;
            else
                spec.name = s;
            ps_header *out = round_trip(&h, big ? PS_EPROTO : PS_OK);
            assert_non_null(out);
            assert_true(out->request_id == 6);
            ps_header_free(out);
        }
    }
    free(at_limit);
    free(over);
}

static void test_codec_decode_shape_too_many_dims(void **st)
{
    (void)st;
    uint64_t shape[PS_MAX_SHAPE + 1];
    for (size_t i = 0; i < PS_MAX_SHAPE + 1; i++)
        shape[i] = 2;
    Sparkps__TableSpec spec;
    sparkps__table_spec__init(&spec);
    spec.shape = shape;
    ps_header h;
    ps_header_init(&h);
    h.has_type = 1;
    h.type = SPARKPS__MSG_TYPE__DEFINE_TABLE;
    h.table = &spec;
    spec.n_shape = PS_MAX_SHAPE;
    ps_header_free(round_trip(&h, PS_OK));
    spec.n_shape = PS_MAX_SHAPE + 1;
    ps_header *out = round_trip(&h, PS_EPROTO);
    assert_non_null(out);
    ps_header_free(out);
}

static void test_codec_msg_type_name(void **st)
{
    (void)st;
    assert_string_equal(ps_msg_type_name(SPARKPS__MSG_TYPE__PUSH), "PUSH");
    assert_string_equal(ps_msg_type_name(SPARKPS__MSG_TYPE__HEARTBEAT),
                        "HEARTBEAT");
    assert_string_equal(ps_msg_type_name(SPARKPS__MSG_TYPE__ASSIGN), "ASSIGN");
    assert_string_equal(ps_msg_type_name(SPARKPS__MSG_TYPE__SCAN), "SCAN");
    assert_string_equal(ps_msg_type_name(SPARKPS__MSG_TYPE__SHUTDOWN),
                        "SHUTDOWN");
    assert_string_equal(ps_msg_type_name(PS_MSG_TYPE_MAX + 1), "?");
    assert_string_equal(ps_msg_type_name(-1), "?");
    ps_header_free(NULL); /* accepted, like free() */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codec_header_round_trip_all_fields),
        cmocka_unit_test(test_codec_header_init_defaults),
        cmocka_unit_test(test_codec_decode_rejects_empty_frame),
        cmocka_unit_test(test_codec_decode_rejects_oversized_frame),
        cmocka_unit_test(test_codec_decode_rejects_garbage),
        cmocka_unit_test(test_codec_decode_dense_status_within_budget),
        cmocka_unit_test(test_codec_decode_refuses_header_over_budget),
        cmocka_unit_test(test_codec_decode_wrong_version_keeps_request_id),
        cmocka_unit_test(test_codec_decode_unknown_type),
        cmocka_unit_test(test_codec_decode_unknown_dtype),
        cmocka_unit_test(test_codec_decode_name_too_long),
        cmocka_unit_test(test_codec_decode_shape_too_many_dims),
        cmocka_unit_test(test_codec_msg_type_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
