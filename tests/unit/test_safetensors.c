/* safetensors writer/reader and the model <-> file mapping: a round trip
 * keeps every byte, shape and metadata entry; each kind of malformed file
 * is refused with its own message; a file that does not fit the model says
 * which tensor is wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backend.h"
#include "common/sparkps_err.h"
#include "model.h"
#include "model_file.h"
#include "safetensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ps_st_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* A file image: 8-byte length, the JSON as given, then dlen data bytes. */
static unsigned char *image(const char *json, const void *data, size_t dlen,
                            size_t *len)
{
    size_t h = strlen(json);
    *len = 8 + h + dlen;
    unsigned char *b = malloc(*len);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, json, h);
    if (dlen)
        memcpy(b + 8 + h, data, dlen);
    return b;
}

/* Parses json + data and expects PS_EINVAL with `needle` in the message. */
static void expect_bad(const char *json, size_t dlen, const char *needle)
{
    static const unsigned char zeros[256];
    size_t len;
    unsigned char *b = image(json, zeros, dlen, &len);
    ps_st_file *f = NULL;
    char err[512] = "";
    int rc = ps_st_parse(&f, b, len, "x.safetensors", err, sizeof(err));
    free(b);
    if (rc != PS_EINVAL || strstr(err, needle) == NULL)
        fail_msg("json %s: rc %d, err \"%s\", wanted \"%s\"", json, rc, err,
                 needle);
    assert_null(f);
    assert_non_null(strstr(err, "x.safetensors"));
}

static void test_safetensors_write_read_round_trip(void **state)
{
    (void)state;
    float w[6] = {1.5f, -2, 3, 4, 5, 6.25f};
    uint64_t keys[4] = {1, UINT64_MAX, 42, 7};
    float vals[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    ps_st_writer *wr;
    assert_int_equal(ps_st_writer_new(&wr), PS_OK);
    uint64_t s23[2] = {2, 3}, s4[1] = {4}, s42[2] = {4, 2}, s0[1] = {0};
    assert_int_equal(ps_st_add(wr, "fc1.weight", PS_ST_F32, s23, 2, w), PS_OK);
    assert_int_equal(ps_st_add(wr, "emb.keys", PS_ST_U64, s4, 1, keys), PS_OK);
    assert_int_equal(ps_st_add(wr, "emb.values", PS_ST_F32, s42, 2, vals),
                     PS_OK);
    assert_int_equal(ps_st_add(wr, "empty", PS_ST_F32, s0, 1, NULL), PS_OK);
    /* Refused: duplicate, reserved name, unknown dtype, missing data. */
    assert_int_equal(ps_st_add(wr, "emb.keys", PS_ST_U64, s4, 1, keys),
                     PS_EINVAL);
    assert_int_equal(ps_st_add(wr, "__metadata__", PS_ST_F32, s4, 1, w),
                     PS_EINVAL);
    assert_int_equal(ps_st_add(wr, "z", (ps_st_dtype)9, s4, 1, w), PS_EINVAL);
    assert_int_equal(ps_st_add(wr, "z", PS_ST_F32, s4, 1, NULL), PS_EINVAL);
    assert_int_equal(ps_st_set_meta(wr, "format", "sparkps"), PS_OK);
    assert_int_equal(ps_st_set_meta(wr, "model", "old"), PS_OK);
    assert_int_equal(ps_st_set_meta(wr, "model", "mlp:3-2 \"quoted\"\n"),
                     PS_OK);
    char path[128], err[512];
    snprintf(path, sizeof(path), "%s/m.safetensors", tmpdir);
    assert_int_equal(ps_st_write(wr, path, err, sizeof(err)), PS_OK);
    ps_st_writer_free(wr);

    /* The data section starts 8-byte aligned. */
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    unsigned char n8[8];
    assert_int_equal(fread(n8, 1, 8, fp), 8);
    fclose(fp);
    assert_int_equal(n8[0] % 8, 0);

    ps_st_file *f;
    assert_int_equal(ps_st_open(&f, path, err, sizeof(err)), PS_OK);
    assert_int_equal(ps_st_count(f), 4);
    const ps_st_tensor *t = ps_st_find(f, "fc1.weight");
    assert_non_null(t);
    assert_int_equal(t->dtype, PS_ST_F32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_memory_equal(t->data, w, sizeof(w));
    t = ps_st_find(f, "emb.keys");
    assert_int_equal(t->dtype, PS_ST_U64);
    assert_memory_equal(t->data, keys, sizeof(keys));
    t = ps_st_find(f, "emb.values");
    assert_memory_equal(t->data, vals, sizeof(vals));
    t = ps_st_find(f, "empty");
    assert_int_equal(t->elems, 0);
    assert_null(ps_st_find(f, "nope"));
    assert_string_equal(ps_st_meta(f, "format"), "sparkps");
    assert_string_equal(ps_st_meta(f, "model"), "mlp:3-2 \"quoted\"\n");
    assert_null(ps_st_meta(f, "nope"));
    /* Data-offset order: the order they were added. */
    assert_string_equal(ps_st_at(f, 0)->name, "fc1.weight");
    assert_null(ps_st_at(f, 4));
    ps_st_close(f);
    ps_st_close(NULL);
    ps_st_writer_free(NULL);
}

static void test_safetensors_malformed_each_refused(void **state)
{
    (void)state;
    char err[256];
    ps_st_file *f = NULL;
    unsigned char shortf[4] = {1, 0, 0, 0};
    assert_int_equal(
        ps_st_parse(&f, shortf, 4, "x.safetensors", err, sizeof(err)),
        PS_EINVAL);
    assert_non_null(strstr(err, "too short"));
    /* Header length beyond the file. */
    unsigned char big[16] = {0xff, 0xff, 0, 0, 0, 0, 0, 0, '{', '}'};
    assert_int_equal(
        ps_st_parse(&f, big, 16, "x.safetensors", err, sizeof(err)), PS_EINVAL);
    assert_non_null(strstr(err, "header length"));
    unsigned char huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    assert_int_equal(
        ps_st_parse(&f, huge, 16, "x.safetensors", err, sizeof(err)),
        PS_EINVAL);
    assert_non_null(strstr(err, "header length"));

    expect_bad("{\"a\":", 0, "not valid JSON");
    expect_bad("[1,2]   ", 0, "not a JSON object");
    expect_bad("{}  xyz", 0, "unexpected bytes");
    expect_bad("{\"a\":{\"dtype\":\"F99\",\"shape\":[1],"
               "\"data_offsets\":[0,4]}}",
               4, "unsupported dtype 'F99'");
    expect_bad("{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
               "needs dtype");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[0,8]}}",
               4, "run past");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],"
               "\"data_offsets\":[0,8]}}",
               8, "need 12");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[4,0]}}",
               8, "begin <= end");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[0]}}",
               8, "begin <= end");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],"
               "\"data_offsets\":[0,4]}}",
               8, "shape[0]");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],"
               "\"data_offsets\":[0,4]}}",
               8, "shape[0]");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
               "\"data_offsets\":[0,4]}}",
               8, "9 dims");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
               "\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[4,8]}}",
               8, "overlap");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[4,8]}}",
               8, "appears twice");
    expect_bad("{\"__metadata__\":{\"k\":1}}", 0, "not a string");
    expect_bad("{\"__metadata__\":[]}", 0, "not an object");
    expect_bad("{\"a\":3}", 0, "not an object");
    expect_bad("{\"\":{\"dtype\":\"F32\",\"shape\":[1],"
               "\"data_offsets\":[0,4]}}",
               4, "empty");
    /* Overflowing shape product. */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
               "\"data_offsets\":[0,4]}}",
               4, "need");

    assert_int_equal(
        ps_st_open(&f, "/nonexistent/x.safetensors", err, sizeof(err)), PS_EIO);
    assert_non_null(strstr(err, "/nonexistent/x.safetensors"));
}

static void test_safetensors_write_unwritable_dir_eio(void **state)
{
    (void)state;
    ps_st_writer *wr;
    assert_int_equal(ps_st_writer_new(&wr), PS_OK);
    char err[256];
    assert_int_equal(
        ps_st_write(wr, "/nonexistent/dir/m.safetensors", err, sizeof(err)),
        PS_EIO);
    assert_non_null(strstr(err, "cannot create"));
    ps_st_writer_free(wr);
}

/* A file for mlp:3-4-2 with fc1/fc2 weights and biases, minus `skip`. */
static void write_mlp(const char *path, const char *skip, int bad_shape,
                      const char *model)
{
    static float buf[64];
    for (int i = 0; i < 64; i++)
        buf[i] = 0.01f * (float)i;
    ps_st_writer *wr;
    assert_int_equal(ps_st_writer_new(&wr), PS_OK);
    uint64_t w1[2] = {3, 4}, b1[2] = {1, 4}, w2[2] = {4, 2}, b2[1] = {2};
    if (bad_shape)
        w2[0] = 2, w2[1] = 4;
    const char *names[4] = {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"};
    const uint64_t *shapes[4] = {w1, b1, w2, b2};
    size_t nd[4] = {2, 2, 2, 1};
    for (int i = 0; i < 4; i++)
        if (skip == NULL || strcmp(skip, names[i]) != 0)
            assert_int_equal(
                ps_st_add(wr, names[i], PS_ST_F32, shapes[i], nd[i], buf),
                PS_OK);
    if (model)
        assert_int_equal(ps_st_set_meta(wr, "model", model), PS_OK);
    assert_int_equal(ps_st_set_meta(wr, "classes", "2"), PS_OK);
    char err[256];
    assert_int_equal(ps_st_write(wr, path, err, sizeof(err)), PS_OK);
    ps_st_writer_free(wr);
}

static void test_model_file_checks_tables(void **state)
{
    (void)state;
    char path[128], err[512];
    snprintf(path, sizeof(path), "%s/mlp.safetensors", tmpdir);
    ps_backend *be;
    assert_int_equal(ps_backend_open("cpu", &be, err, sizeof(err)), PS_OK);
    ps_model *m;
    assert_int_equal(
        ps_model_new(&m, "mlp:3-4-2", 3, 0, be, 8, err, sizeof(err)), PS_OK);
    float params[64];
    ps_st_file *f;
    const char *spec;
    size_t in, classes;

    write_mlp(path, NULL, 0, "mlp:3-4-2");
    assert_int_equal(ps_st_open(&f, path, err, sizeof(err)), PS_OK);
    assert_int_equal(
        ps_model_file_spec(f, path, &spec, &in, &classes, err, sizeof(err)),
        PS_OK);
    assert_string_equal(spec, "mlp:3-4-2");
    assert_int_equal(in, 3); /* from fc1.weight: no input_dim entry */
    assert_int_equal(classes, 2);
    assert_int_equal(ps_model_file_params(f, path, m, params, err, sizeof(err)),
                     PS_OK);
    assert_true(params[ps_model_table_at(m, 3)->offset + 1] == 0.01f);
    ps_st_close(f);

    write_mlp(path, "fc2.bias", 0, "mlp:3-4-2");
    assert_int_equal(ps_st_open(&f, path, err, sizeof(err)), PS_OK);
    assert_int_equal(ps_model_file_params(f, path, m, params, err, sizeof(err)),
                     PS_EINVAL);
    assert_non_null(strstr(err, "no tensor 'fc2.bias'"));
    ps_st_close(f);

    write_mlp(path, NULL, 1, "mlp:3-4-2");
    assert_int_equal(ps_st_open(&f, path, err, sizeof(err)), PS_OK);
    assert_int_equal(ps_model_file_params(f, path, m, params, err, sizeof(err)),
                     PS_EINVAL);
    assert_non_null(strstr(err, "'fc2.weight' has shape [2,4]"));
    ps_st_close(f);

    write_mlp(path, NULL, 0, NULL);
    assert_int_equal(ps_st_open(&f, path, err, sizeof(err)), PS_OK);
    assert_int_equal(
        ps_model_file_spec(f, path, &spec, &in, &classes, err, sizeof(err)),
        PS_EINVAL);
    assert_non_null(strstr(err, "no \"model\""));
    ps_st_close(f);

    char meta[128];
    ps_model_file_meta("mlp:3-4-2", 2, 3, meta, sizeof(meta));
    assert_string_equal(meta, "model=mlp:3-4-2;classes=2;input_dim=3");
    ps_model_free(m);
    ps_backend_free(be);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safetensors_write_read_round_trip),
        cmocka_unit_test(test_safetensors_malformed_each_refused),
        cmocka_unit_test(test_safetensors_write_unwritable_dir_eio),
        cmocka_unit_test(test_model_file_checks_tables),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
