/* Unit tests for common/config.c: defaults < SPARKPS_* environment <
 * command line, both flag spellings, booleans, every refusal, the first
 * positional argument, --help and the usage text. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* setenv, unsetenv, open_memstream */
#endif

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/config.h"
#include "common/sparkps_err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct tcfg {
    const char *listen;
    const char *cluster_id;
    int64_t worker_timeout;
    int64_t shift;
    int64_t big;
    double lr;
    int verbose;
} tcfg;

static const ps_setting tab[] = {
    {"listen", PS_SET_STR, "tcp://127.0.0.1:0", 0, 0, offsetof(tcfg, listen),
     "ENDPOINT", "where to bind"},
    {"cluster-id", PS_SET_STR, NULL, 0, 0, offsetof(tcfg, cluster_id), "ID",
     "cluster identifier"},
    {"worker-timeout", PS_SET_INT, "5000", 1, 600000,
     offsetof(tcfg, worker_timeout), "MS", "drop a silent worker after MS"},
    {"shift", PS_SET_INT, "0", -10, 10, offsetof(tcfg, shift), "N",
     "a signed setting"},
    {"big", PS_SET_INT, "0", -1e19, 1e19, offsetof(tcfg, big), "N",
     "a range wider than int64"},
    {"lr", PS_SET_DOUBLE, "0.1", 0, 10, offsetof(tcfg, lr), "RATE",
     "learning rate"},
    {"verbose", PS_SET_BOOL, "false", 0, 1, offsetof(tcfg, verbose), NULL,
     "log more"},
};
#define NTAB (sizeof(tab) / sizeof(tab[0]))

static const char *const env_vars[] = {
    "SPARKPS_LISTEN",  "SPARKPS_CLUSTER_ID", "SPARKPS_WORKER_TIMEOUT",
    "SPARKPS_SHIFT",   "SPARKPS_BIG",        "SPARKPS_LR",
    "SPARKPS_VERBOSE",
};

/* Fixtures: no SPARKPS_* variable leaks in from outside or between tests. */
static int clear_env(void **st)
{
    (void)st;
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
    return 0;
}

typedef struct parsed {
    int rc;
    tcfg cfg;
    ps_config_result res;
    char err[256];
} parsed;

/* Parses a NULL-terminated argument list (program name first). */
static parsed parse(const char *arg0, ...)
{
    char *argv[32];
    int argc = 0;
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a != NULL; a = va_arg(ap, const char *)) {
        assert_true(argc < 31);
        argv[argc++] = (char *)a;
    }
    va_end(ap);
    argv[argc] = NULL;
    parsed p;
    memset(&p, 0, sizeof(p));
    p.rc = ps_config_parse(tab, NTAB, &p.cfg, argc, argv, &p.res, p.err,
                           sizeof(p.err));
    return p;
}

static void assert_fails_naming(const parsed *p, const char *what)
{
    assert_int_equal(p->rc, PS_EINVAL);
    if (strstr(p->err, what) == NULL) {
        print_error("message '%s' does not name '%s'\n", p->err, what);
        fail();
    }
}

static void test_config_parse_defaults(void **st)
{
    (void)st;
    parsed p = parse("prog", NULL);
    assert_int_equal(p.rc, PS_OK);
    assert_string_equal(p.cfg.listen, "tcp://127.0.0.1:0");
    assert_null(p.cfg.cluster_id); /* no default: left as it was */
    assert_true(p.cfg.worker_timeout == 5000);
    assert_true(p.cfg.lr == 0.1);
    assert_int_equal(p.cfg.verbose, 0);
    assert_int_equal(p.res.help, 0);
    assert_int_equal(p.res.positional, 1); /* argc: none */
}

static void test_config_parse_env_overrides_default(void **st)
{
    (void)st;
    setenv("SPARKPS_WORKER_TIMEOUT", "7000", 1);
    setenv("SPARKPS_LR", "0.5", 1);
    setenv("SPARKPS_CLUSTER_ID", "blue", 1);
    setenv("SPARKPS_VERBOSE", "yes", 1);
    parsed p = parse("prog", NULL);
    assert_int_equal(p.rc, PS_OK);
    assert_true(p.cfg.worker_timeout == 7000);
    assert_true(p.cfg.lr == 0.5);
    assert_string_equal(p.cfg.cluster_id, "blue");
    assert_int_equal(p.cfg.verbose, 1);
    assert_string_equal(p.cfg.listen, "tcp://127.0.0.1:0");
}

static void test_config_parse_argv_overrides_env(void **st)
{
    (void)st;
    setenv("SPARKPS_WORKER_TIMEOUT", "7000", 1);
    setenv("SPARKPS_VERBOSE", "1", 1);
    parsed p =
        parse("prog", "--worker-timeout", "9000", "--verbose=false", NULL);
    assert_int_equal(p.rc, PS_OK);
    assert_true(p.cfg.worker_timeout == 9000);
    assert_int_equal(p.cfg.verbose, 0);
}

static void test_config_parse_both_spellings(void **st)
{
    (void)st;
    parsed p = parse("prog", "--listen=tcp://*:7000", "--lr", "0.25", "--shift",
                     "-5", "--cluster-id=", NULL);
    assert_int_equal(p.rc, PS_OK);
    assert_string_equal(p.cfg.listen, "tcp://*:7000");
    assert_true(p.cfg.lr == 0.25);
    /* `--name value` takes the next argument even when it looks like a
     * negative number. */
    assert_true(p.cfg.shift == -5);
    assert_string_equal(p.cfg.cluster_id, ""); /* an empty value is a value */
    /* A later flag wins. */
    p = parse("prog", "--lr=1", "--lr=2", NULL);
    assert_true(p.cfg.lr == 2.0);
}

static void test_config_parse_bool_flags(void **st)
{
    (void)st;
    parsed p = parse("prog", "--verbose", NULL);
    assert_int_equal(p.rc, PS_OK);
    assert_int_equal(p.cfg.verbose, 1);
    p = parse("prog", "--verbose=true", NULL);
    assert_int_equal(p.cfg.verbose, 1);
    p = parse("prog", "--verbose=no", NULL);
    assert_int_equal(p.cfg.verbose, 0);
    p = parse("prog", "--verbose=0", NULL);
    assert_int_equal(p.cfg.verbose, 0);
    /* A bare bool never takes the next argument: it is positional. */
    p = parse("prog", "--verbose", "data.txt", NULL);
    assert_int_equal(p.rc, PS_OK);
    assert_int_equal(p.cfg.verbose, 1);
    assert_int_equal(p.res.positional, 2);
    p = parse("prog", "--verbose=maybe", NULL);
    assert_fails_naming(&p, "--verbose");
    setenv("SPARKPS_VERBOSE", "2", 1);
    p = parse("prog", NULL);
    assert_fails_naming(&p, "SPARKPS_VERBOSE");
}

static void test_config_parse_unknown_flag(void **st)
{
    (void)st;
    parsed p = parse("prog", "--bogus=1", NULL);
    assert_fails_naming(&p, "--bogus");
    /* A prefix of a real name is not that name. */
    p = parse("prog", "--worker", "5", NULL);
    assert_fails_naming(&p, "--worker");
    p = parse("prog", "--lrx", "5", NULL);
    assert_fails_naming(&p, "--lrx");
}

static void test_config_parse_missing_value(void **st)
{
    (void)st;
    parsed p = parse("prog", "--worker-timeout", NULL);
    assert_fails_naming(&p, "--worker-timeout");
    p = parse("prog", "--listen", NULL);
    assert_fails_naming(&p, "--listen");
}

static void test_config_parse_not_a_number(void **st)
{
    (void)st;
    const char *bad_ints[] = {"12abc", "",     "1.5",
                              "abc",   "0x10", "99999999999999999999"};
    for (size_t i = 0; i < sizeof(bad_ints) / sizeof(bad_ints[0]); i++) {
        parsed p = parse("prog", "--worker-timeout", bad_ints[i], NULL);
        assert_fails_naming(&p, "--worker-timeout");
    }
    const char *bad_doubles[] = {"fast", "", "1e", "nan", "inf", "0.5x"};
    for (size_t i = 0; i < sizeof(bad_doubles) / sizeof(bad_doubles[0]); i++) {
        parsed p = parse("prog", "--lr", bad_doubles[i], NULL);
        assert_fails_naming(&p, "--lr");
    }
    /* Overflowing int64 is refused even where the range would allow it. */
    parsed p = parse("prog", "--big", "9223372036854775807", NULL);
    assert_int_equal(p.rc, PS_OK);
    assert_true(p.cfg.big == INT64_MAX);
    p = parse("prog", "--big", "99999999999999999999", NULL);
    assert_fails_naming(&p, "--big");
    p = parse("prog", "--big", "-99999999999999999999", NULL);
    assert_fails_naming(&p, "--big");
    setenv("SPARKPS_WORKER_TIMEOUT", "soon", 1);
    p = parse("prog", NULL);
    assert_fails_naming(&p, "SPARKPS_WORKER_TIMEOUT");
}

static void test_config_parse_out_of_range(void **st)
{
    (void)st;
    /* The range is inclusive. */
    parsed p = parse("prog", "--worker-timeout=1", "--shift=-10", NULL);
    assert_int_equal(p.rc, PS_OK);
    p = parse("prog", "--worker-timeout=600000", "--lr=10", NULL);
    assert_int_equal(p.rc, PS_OK);
    p = parse("prog", "--worker-timeout=0", NULL);
    assert_fails_naming(&p, "--worker-timeout");
    p = parse("prog", "--worker-timeout=600001", NULL);
    assert_fails_naming(&p, "--worker-timeout");
    p = parse("prog", "--shift=-11", NULL);
    assert_fails_naming(&p, "--shift");
    p = parse("prog", "--lr=10.5", NULL);
    assert_fails_naming(&p, "--lr");
    p = parse("prog", "--lr=-0.1", NULL);
    assert_fails_naming(&p, "--lr");
    setenv("SPARKPS_SHIFT", "11", 1);
    p = parse("prog", NULL);
    assert_fails_naming(&p, "SPARKPS_SHIFT");
}

static void test_config_parse_positional(void **st)
{
    (void)st;
    /* Parsing stops at the first positional argument. */
    parsed p = parse("prog", "--lr", "0.2", "data.txt", "--verbose", NULL);
    assert_int_equal(p.rc, PS_OK);
    assert_int_equal(p.res.positional, 3);
    assert_true(p.cfg.lr == 0.2);
    assert_int_equal(p.cfg.verbose, 0);
    /* "--" ends the flags: what follows is positional even if it looks
     * like a flag. */
    p = parse("prog", "--", "--lr", "3", NULL);
    assert_int_equal(p.rc, PS_OK);
    assert_int_equal(p.res.positional, 2);
    assert_true(p.cfg.lr == 0.1);
}

static void test_config_parse_help(void **st)
{
    (void)st;
    parsed p = parse("prog", "--help", NULL);
    assert_int_equal(p.rc, PS_OK);
    assert_int_equal(p.res.help, 1);
    p = parse("prog", "--lr", "0.3", "-h", NULL);
    assert_int_equal(p.rc, PS_OK);
    assert_int_equal(p.res.help, 1);
    assert_true(p.cfg.lr == 0.3);
}

static void test_config_usage_lists_every_setting(void **st)
{
    (void)st;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    ps_config_usage(f, tab, NTAB);
    fclose(f);
    const char *want[] = {"--listen ENDPOINT",      "where to bind",
                          "SPARKPS_LISTEN",         "default: 5000",
                          "SPARKPS_WORKER_TIMEOUT", "--verbose",
                          "SPARKPS_CLUSTER_ID",     "--worker-timeout MS"};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        if (strstr(text, want[i]) == NULL) {
            print_error("usage lacks '%s':\n%s", want[i], text);
            fail();
        }
    }
    free(text);
}

#define T(f) cmocka_unit_test_setup_teardown(f, clear_env, clear_env)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_config_parse_defaults),
        T(test_config_parse_env_overrides_default),
        T(test_config_parse_argv_overrides_env),
        T(test_config_parse_both_spellings),
        T(test_config_parse_bool_flags),
        T(test_config_parse_unknown_flag),
        T(test_config_parse_missing_value),
        T(test_config_parse_not_a_number),
        T(test_config_parse_out_of_range),
        T(test_config_parse_positional),
        T(test_config_parse_help),
        T(test_config_usage_lists_every_setting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
