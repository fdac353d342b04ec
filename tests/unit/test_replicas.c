/* Unit tests for the device group (worker/replicas.c, worker/comm.c) on
 * CPU backends, where the communicator is the host fallback, and for the
 * --device list parser (worker/device_list.c). A group of 2 and of 3
 * replicas must give the loss, correct count and gradient of one model on
 * the whole batch (tolerance in replicas_check.h), for even and odd splits
 * and batches smaller than the group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/sparkps_err.h"
#include "unit/ps_test.h"
#include "unit/replicas_check.h"
#include "worker/comm.h"
#include "worker/device_list.h"

#include <string.h>

#define MAX_BATCH 9

/* The group's devices: argv[1] ("cpu" by default; ctest also runs the file
 * on "cpu-deferred"); the single model it is compared with is on "cpu". */
static const char *device = "cpu";

typedef struct fixture {
    ps_backend *bes[4]; /* bes[3]: the single model's */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    for (size_t i = 0; i < 4; i++)
        if (ps_backend_open(i < 3 ? device : "cpu", &f->bes[i], NULL, 0) !=
            PS_OK)
            return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ps_device_list_close(f->bes, 4);
    free(f);
    return 0;
}

static void compare_on(fixture *f, const char *spec, size_t in, size_t classes,
                       size_t nrep, const size_t *batches, size_t nb)
{
    ps_replicas *g = NULL;
    ps_model *one = NULL;
    char err[256] = "";

    assert_int_equal(ps_replicas_new(&g, spec, in, classes, f->bes, nrep,
                                     MAX_BATCH, err, sizeof(err)),
                     PS_OK);
    assert_string_equal(ps_replicas_comm_kind(g), "host");
    assert_int_equal(ps_replicas_count(g), nrep);
    assert_int_equal(ps_model_new(&one, spec, in, classes, f->bes[3],
                                  MAX_BATCH, err, sizeof(err)),
                     PS_OK);
    for (size_t i = 0; i < nb; i++)
        rc_compare(g, one, batches[i], RC_TOL);
    ps_model_free(one);
    ps_replicas_free(g);
}

/* 9 rows: 5+4 over two; 7: 3+2+2 over three; 2 and 1 leave replicas idle
 * (after a full batch, so an idle replica holds an older gradient). */
static void test_group_of_two_matches_one(void **state)
{
    const size_t batches[] = {9, 8, 1, 9};
    compare_on(*state, "mlp:5-7-3", 5, 0, 2, batches, 4);
}

/* A group of one still goes through its communicator (the path a single
 * GPU tests with NCCL). */
static void test_group_of_one_matches_one(void **state)
{
    const size_t batches[] = {9, 1};
    compare_on(*state, "mlp:5-7-3", 5, 0, 1, batches, 2);
}

static void test_group_of_three_matches_one(void **state)
{
    const size_t batches[] = {7, 9, 2, 1, 3};
    compare_on(*state, "mlp:5-6-4-3", 5, 0, 3, batches, 5);
    compare_on(*state, "softmax", 4, 3, 3, batches, 5);
}

static void test_group_refuses_bad_input(void **state)
{
    fixture *f = *state;
    ps_replicas *g = NULL;
    char err[256] = "";
    float x[40] = {0}, y[10] = {0}, out[200];
    double l;
    size_t c;

    assert_int_equal(ps_replicas_new(&g, "mlp:4-9", 4, 0, f->bes, 2, 4, err,
                                     sizeof(err)),
                     PS_OK);
    /* more rows than the batch, none, a label outside the classes */
    assert_int_equal(ps_replicas_step(g, x, y, 5, &l, &c), PS_EINVAL);
    assert_int_equal(ps_replicas_step(g, x, y, 0, &l, &c), PS_EINVAL);
    y[3] = 9;
    assert_int_equal(ps_replicas_step(g, x, y, 4, &l, &c), PS_EINVAL);
    assert_int_equal(ps_replicas_get_grads(g, out), PS_EINVAL);
    assert_int_equal(ps_replicas_eval(g, x, y, 4, &l, &c), PS_EINVAL);
    assert_int_equal(ps_replicas_predict(g, NULL, 4, out), PS_EINVAL);
    /* Pipelined calls: a bad slot, nothing staged or begun, a slot staged
     * twice; a label refused at staging stages nothing. */
    y[3] = 0;
    assert_int_equal(ps_replicas_stage(g, 2, x, y, 4), PS_EINVAL);
    assert_int_equal(ps_replicas_step_begin(g, 0, NULL), PS_EINVAL);
    assert_int_equal(ps_replicas_step_end(g, &l, &c), PS_EINVAL);
    assert_int_equal(ps_replicas_stage(g, 0, x, y, 4), PS_OK);
    assert_int_equal(ps_replicas_stage(g, 0, x, y, 4), PS_EINVAL);
    float bad[4] = {0, 0, 0, -1}; /* y is staged: unchanged until sync */
    assert_int_equal(ps_replicas_stage(g, 1, x, bad, 4), PS_EINVAL);
    assert_int_equal(ps_replicas_step_begin(g, 1, out), PS_EINVAL);
    assert_int_equal(ps_replicas_step_begin(g, 0, NULL), PS_OK);
    assert_int_equal(ps_replicas_step_end(g, &l, &c), PS_OK);
    /* Replica 0 had staged its slice of the refused batch: dropped. */
    assert_int_equal(ps_replicas_stage(g, 1, x, y, 4), PS_OK);
    assert_int_equal(ps_replicas_step_begin(g, 1, out), PS_OK);
    assert_int_equal(ps_replicas_step_end(g, &l, &c), PS_OK);
    ps_replicas_free(g);
    g = NULL;

    /* The same backend twice, none, too many, a bad spec. */
    ps_backend *twice[2] = {f->bes[0], f->bes[0]};
    assert_int_equal(ps_replicas_new(&g, "mlp:4-9", 4, 0, twice, 2, 4, err,
                                     sizeof(err)),
                     PS_EINVAL);
    assert_non_null(strstr(err, "repeated"));
    assert_int_equal(ps_replicas_new(&g, "mlp:4-9", 4, 0, f->bes, 0, 4, err,
                                     sizeof(err)),
                     PS_EINVAL);
    assert_int_equal(ps_replicas_new(&g, "mlp:4-9", 4, 0, f->bes,
                                     PS_COMM_MAX_RANKS + 1, 4, err,
                                     sizeof(err)),
                     PS_EINVAL);
    assert_int_equal(ps_replicas_new(&g, "cnn", 4, 0, f->bes, 2, 4, err,
                                     sizeof(err)),
                     PS_EINVAL);
    assert_non_null(strstr(err, "cnn"));
    assert_null(g);
}

static void test_comm_host_sums_and_broadcasts(void **state)
{
    fixture *f = *state;

    rc_check_comm(f->bes, 1, "host");
    rc_check_comm(f->bes, 3, "host");
    ps_comm_free(NULL);
}

static void expect_list(const char *spec, size_t n, const char *last)
{
    ps_device_list l;
    char err[256] = "";

    if (ps_device_list_parse(spec, &l, err, sizeof(err)) != PS_OK)
        print_error("%s: %s\n", spec, err);
    assert_int_equal(l.n, n);
    assert_string_equal(l.names[n - 1], last);
}

static void expect_bad_list(const char *spec, const char *msg)
{
    ps_device_list l = {.n = 99};
    char err[256] = "";

    assert_int_equal(ps_device_list_parse(spec, &l, err, sizeof(err)),
                     PS_EINVAL);
    if (strstr(err, msg) == NULL)
        print_error("%s: error \"%s\" lacks \"%s\"\n", spec, err, msg);
    assert_non_null(strstr(err, msg));
    assert_int_equal(l.n, 99); /* untouched */
}

static void test_device_list_parse(void **state)
{
    (void)state;
    expect_list(NULL, 1, "cpu");
    expect_list("", 1, "cpu");
    expect_list("cuda:0", 1, "cuda:0");
    expect_list("cuda:0,cuda:1", 2, "cuda:1");
    expect_list("cpu,cpu,cpu:2", 3, "cpu:2");
    expect_list("cuda:1,cpu,cuda:0", 3, "cuda:0");
    expect_list("cpu-deferred,cpu-deferred", 2, "cpu-deferred");
    expect_list("cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,"
                "cpu,cpu",
                16, "cpu");

    expect_bad_list("cuda:0,cuda:0", "cuda:0 is listed twice (entries 1 and 2)");
    expect_bad_list("cuda,cuda:0", "cuda:0 is listed twice");
    expect_bad_list("cpu,cuda:2,cuda:2", "entries 2 and 3");
    expect_bad_list("cpu,", "entry 2 is empty");
    expect_bad_list(",cpu", "entry 1 is empty");
    expect_bad_list("cpu,,cpu", "entry 2 is empty");
    expect_bad_list("cpu,cpu-deferred:2", "entry 2: unknown device");
    expect_bad_list("cpu,gpu:1", "entry 2: unknown device \"gpu:1\"");
    expect_bad_list("cuda:0,cuda:x", "entry 2: device \"cuda:x\"");
    expect_bad_list("cuda:-1", "want cuda:N");
    expect_bad_list("cpu:0,cpu", "entry 1: device \"cpu:0\"");
    expect_bad_list("cpu,cuda:0 ", "entry 2");
    expect_bad_list("cuda:000000000000000000000000000000001", "too long");
    expect_bad_list("cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,cpu,"
                    "cpu,cpu,cpu",
                    "more than 16 devices");
}

/* Opening: every entry opened, or none left open and the bad one named. */
static void test_device_list_open(void **state)
{
    ps_device_list l;
    ps_backend *bes[PS_COMM_MAX_RANKS];
    char err[256] = "";

    (void)state;
    assert_int_equal(ps_device_list_parse("cpu,cpu", &l, err, sizeof(err)),
                     PS_OK);
    assert_int_equal(ps_device_list_open(&l, bes, err, sizeof(err)), PS_OK);
    assert_string_equal(ps_backend_name(bes[1]), "cpu");
    ps_device_list_close(bes, l.n);
    assert_null(bes[0]);
    /* No build, driver or machine here has a GPU 99. */
    assert_int_equal(ps_device_list_parse("cpu,cuda:99", &l, err, sizeof(err)),
                     PS_OK);
    assert_int_not_equal(ps_device_list_open(&l, bes, err, sizeof(err)),
                         PS_OK);
    assert_non_null(strstr(err, "cuda:99"));
    assert_null(bes[0]);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        device = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group_of_two_matches_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_group_of_one_matches_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_group_of_three_matches_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_group_refuses_bad_input, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_comm_host_sums_and_broadcasts,
                                        setup, teardown),
        cmocka_unit_test(test_device_list_parse),
        cmocka_unit_test(test_device_list_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
