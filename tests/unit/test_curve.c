/* Unit tests for common/curve.c, common/curve_client.c and
 * common/secret_file.c: key files (good and every kind of bad), key
 * generation, allow-lists, the bearer-token comparison. Files live in a
 * fresh directory per test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/curve.h"
#include "common/curve_client.h"
#include "common/secret_file.h"
#include "common/sparkps_err.h"
#include "unit/ps_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

typedef struct fx {
    char dir[64];
    char path[256];
    char err[512];
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    if (f == NULL || ps_test_mkdtemp(f->dir, sizeof(f->dir), "ps-curve") != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    int rc = ps_test_rmtree(f->dir);
    free(f);
    return rc;
}

/* Writes text to DIR/name with mode; returns the path (in f->path). */
static const char *put(fx *f, const char *name, const char *text, mode_t mode)
{
    snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, name);
    FILE *out = fopen(f->path, "w");
    assert_non_null(out);
    fputs(text, out);
    fclose(out);
    assert_int_equal(chmod(f->path, mode), 0);
    return f->path;
}

#define assert_contains(hay, needle)                                           \
    do {                                                                       \
        if (strstr((hay), (needle)) == NULL)                                   \
            fail_msg("'%s' not in '%s'", (needle), (hay));                     \
    } while (0)

static void keypair(char pub[41], char sec[41])
{
    assert_int_equal(zmq_curve_keypair(pub, sec), 0);
}

static void test_curve_available(void **state)
{
    (void)state;
    assert_true(ps_curve_available()); /* Debian's libzmq5 has it */
}

static void test_curve_read_key_good_with_comments(void **state)
{
    fx *f = *state;
    char pub[41], sec[41], text[200];
    keypair(pub, sec);
    snprintf(text, sizeof(text), "# a comment\n\n  %s  \r\n", sec);
    put(f, "a.key", text, 0600);
    ps_curve_key k, p;
    assert_int_equal(ps_curve_read_key(f->path, 1, &k, f->err, 512), PS_OK);
    assert_string_equal(k.z85, sec);
    assert_int_equal(ps_curve_public_of(&k, &p), PS_OK);
    assert_string_equal(p.z85, pub);
}

static void test_curve_read_key_errors_name_file_not_content(void **state)
{
    fx *f = *state;
    char pub[41], sec[41], text[200];
    keypair(pub, sec);
    ps_curve_key k;
    struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"", "no key in the file"},
        {"# only a comment\n", "no key in the file"},
        {"abc\n", "found 3 characters"},
        {"0123456789012345678901234567890123456789X\n", "found 41"},
        {"012345678901234567890123456789012345678\"\n", "outside Z85"},
        {"0123456789 123456789012345678901234567890\n", "not a CurveZMQ key"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        put(f, "bad.key", cases[i].text, 0600);
        f->err[0] = '\0';
        assert_int_equal(ps_curve_read_key(f->path, 1, &k, f->err, 512),
                         PS_EINVAL);
        assert_contains(f->err, f->path);
        assert_contains(f->err, cases[i].want);
    }
    snprintf(text, sizeof(text), "%s\n%s\n", sec, sec);
    put(f, "two.key", text, 0600);
    assert_int_equal(ps_curve_read_key(f->path, 1, &k, f->err, 512),
                     PS_EINVAL);
    assert_contains(f->err, ":2: more than one key");
    assert_null(strstr(f->err, sec)); /* never the key itself */

    snprintf(f->path, sizeof(f->path), "%s/missing.key", f->dir);
    assert_int_equal(ps_curve_read_key(f->path, 1, &k, f->err, 512), PS_EIO);
    assert_contains(f->err, "cannot open");
    assert_int_equal(ps_curve_read_key(f->dir, 0, &k, f->err, 512),
                     PS_EINVAL);
    assert_contains(f->err, "not a regular file");

    char *big = malloc(PS_CURVE_MAX_FILE + 2);
    assert_non_null(big);
    memset(big, '#', PS_CURVE_MAX_FILE + 1);
    big[PS_CURVE_MAX_FILE + 1] = '\0';
    put(f, "big.key", big, 0600);
    free(big);
    assert_int_equal(ps_curve_read_key(f->path, 1, &k, f->err, 512),
                     PS_EINVAL);
    assert_contains(f->err, "bytes, more than");
}

static void test_curve_read_key_secret_permissions(void **state)
{
    fx *f = *state;
    char pub[41], sec[41], text[100];
    keypair(pub, sec);
    snprintf(text, sizeof(text), "%s\n", sec);
    ps_curve_key k;
    put(f, "open.key", text, 0644);
    assert_int_equal(ps_curve_read_key(f->path, 1, &k, f->err, 512),
                     PS_EINVAL);
    assert_contains(f->err, "mode 0644");
    assert_contains(f->err, "chmod 600");
    /* Group access is what a Kubernetes Secret with fsGroup gives. */
    put(f, "group.key", text, 0640);
    assert_int_equal(ps_curve_read_key(f->path, 1, &k, f->err, 512), PS_OK);
    /* A public key file may be world-readable. */
    snprintf(text, sizeof(text), "%s\n", pub);
    put(f, "a.pub", text, 0644);
    assert_int_equal(ps_curve_read_key(f->path, 0, &k, f->err, 512), PS_OK);
    assert_string_equal(k.z85, pub);
}

static void test_curve_keygen_files_modes_and_kinds(void **state)
{
    fx *f = *state;
    char base[128], key[140], pubf[140];
    snprintf(base, sizeof(base), "%s/node", f->dir);
    snprintf(key, sizeof(key), "%s.key", base);
    snprintf(pubf, sizeof(pubf), "%s.pub", base);
    ps_curve_key pub, sec, readpub, derived;
    assert_int_equal(ps_curve_keygen(base, 0, &pub, f->err, 512), PS_OK);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(pubf, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(ps_curve_read_key(key, 1, &sec, f->err, 512), PS_OK);
    assert_int_equal(ps_curve_read_key(pubf, 0, &readpub, f->err, 512),
                     PS_OK);
    assert_string_equal(readpub.z85, pub.z85);
    assert_int_equal(ps_curve_public_of(&sec, &derived), PS_OK);
    assert_string_equal(derived.z85, pub.z85);

    /* Each file says what it is: the wrong one is named as such. */
    assert_int_equal(ps_curve_read_key(pubf, 1, &sec, f->err, 512),
                     PS_EINVAL);
    assert_contains(f->err, "holds a public key, not a secret key");
    assert_int_equal(ps_curve_read_key(key, 0, &sec, f->err, 512),
                     PS_EINVAL);
    assert_contains(f->err, "holds a secret key, not a public key");

    /* No overwrite without force; nothing changed. */
    ps_curve_key again;
    assert_int_equal(ps_curve_keygen(base, 0, &again, f->err, 512),
                     PS_EINVAL);
    assert_contains(f->err, "exists");
    assert_contains(f->err, "--force");
    assert_int_equal(ps_curve_read_key(pubf, 0, &readpub, f->err, 512),
                     PS_OK);
    assert_string_equal(readpub.z85, pub.z85);
    assert_int_equal(ps_curve_keygen(base, 1, &again, f->err, 512), PS_OK);
    assert_string_not_equal(again.z85, pub.z85);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* A directory that does not exist. */
    snprintf(base, sizeof(base), "%s/nodir/x", f->dir);
    assert_int_equal(ps_curve_keygen(base, 0, &again, f->err, 512), PS_EIO);
    assert_contains(f->err, "nodir/x.key");
}

static void test_curve_allow_file_and_dir(void **state)
{
    fx *f = *state;
    char p[3][41], s[3][41], text[400];
    for (int i = 0; i < 3; i++)
        keypair(p[i], s[i]);
    snprintf(text, sizeof(text), "# clients\n%s\n\n%s\n%s\n", p[0], p[1],
             p[0]);
    put(f, "allow.txt", text, 0644);
    ps_curve_allow *a;
    assert_int_equal(ps_curve_allow_load(&a, f->path, f->err, 512), PS_OK);
    assert_int_equal(ps_curve_allow_count(a), 2); /* duplicate once */
    uint8_t bin[32];
    for (int i = 0; i < 3; i++) {
        assert_non_null(zmq_z85_decode(bin, p[i]));
        assert_int_equal(ps_curve_allow_has(a, bin, 32), i < 2);
    }
    assert_false(ps_curve_allow_has(a, bin, 31));
    ps_curve_allow_free(a);

    /* A directory: *.pub files only. */
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/keys", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(text, sizeof(text), "%s\n", p[2]);
    put(f, "keys/c.pub", text, 0644);
    put(f, "keys/notes.txt", "not a key\n", 0644);
    snprintf(text, sizeof(text), "%s\n", s[1]);
    put(f, "keys/c.key", text, 0600); /* ignored: not .pub */
    assert_int_equal(ps_curve_allow_load(&a, dir, f->err, 512), PS_OK);
    assert_int_equal(ps_curve_allow_count(a), 1);
    assert_non_null(zmq_z85_decode(bin, p[2]));
    assert_true(ps_curve_allow_has(a, bin, 32));
    ps_curve_allow_free(a);
}

static void test_curve_allow_errors(void **state)
{
    fx *f = *state;
    ps_curve_allow *a = NULL;
    put(f, "empty.txt", "# nobody\n", 0644);
    assert_int_equal(ps_curve_allow_load(&a, f->path, f->err, 512),
                     PS_EINVAL);
    assert_contains(f->err, "no public keys");
    put(f, "bad.txt", "# fine\nnot-a-key\n", 0644);
    assert_int_equal(ps_curve_allow_load(&a, f->path, f->err, 512),
                     PS_EINVAL);
    assert_contains(f->err, "bad.txt:2: not a CurveZMQ public key");
    char base[128];
    snprintf(base, sizeof(base), "%s/x", f->dir);
    ps_curve_key pub;
    assert_int_equal(ps_curve_keygen(base, 0, &pub, f->err, 512), PS_OK);
    snprintf(base, sizeof(base), "%s/x.key", f->dir);
    assert_int_equal(ps_curve_allow_load(&a, base, f->err, 512), PS_EINVAL);
    assert_contains(f->err, "holds a secret key");
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/none", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(ps_curve_allow_load(&a, dir, f->err, 512), PS_EINVAL);
    assert_contains(f->err, "no public keys");
    snprintf(dir, sizeof(dir), "%s/missing", f->dir);
    assert_int_equal(ps_curve_allow_load(&a, dir, f->err, 512), PS_EIO);
    assert_null(a);
}

static void test_curve_client_load_pairs_and_env(void **state)
{
    fx *f = *state;
    char base[128], key[140], pubf[140];
    ps_curve_key pub;
    snprintf(base, sizeof(base), "%s/c", f->dir);
    assert_int_equal(ps_curve_keygen(base, 0, &pub, f->err, 512), PS_OK);
    snprintf(key, sizeof(key), "%s.key", base);
    snprintf(pubf, sizeof(pubf), "%s.pub", base);
    ps_curve_client k;
    unsetenv("SPARKPS_CURVE_SECRET_KEY");
    unsetenv("SPARKPS_CURVE_SERVER_KEY");
    assert_int_equal(ps_curve_client_load(&k, NULL, NULL, f->err, 512),
                     PS_OK);
    assert_false(k.on);
    assert_int_equal(ps_curve_client_load(&k, key, pubf, f->err, 512), PS_OK);
    assert_true(k.on);
    assert_string_equal(k.pub.z85, pub.z85);
    assert_int_equal(ps_curve_client_load(&k, key, NULL, f->err, 512),
                     PS_EINVAL);
    assert_contains(f->err, "only the secret key was given");
    /* The environment names files; "" switches CURVE off. */
    setenv("SPARKPS_CURVE_SECRET_KEY", key, 1);
    setenv("SPARKPS_CURVE_SERVER_KEY", pubf, 1);
    assert_int_equal(ps_curve_client_load(&k, NULL, NULL, f->err, 512),
                     PS_OK);
    assert_true(k.on);
    assert_int_equal(ps_curve_client_load(&k, "", "", f->err, 512), PS_OK);
    assert_false(k.on);
    setenv("SPARKPS_CURVE_SERVER_KEY", key, 1); /* a secret as the server's */
    assert_int_equal(ps_curve_client_load(&k, NULL, NULL, f->err, 512),
                     PS_EINVAL);
    assert_contains(f->err, "holds a secret key");
    assert_false(k.on);
    unsetenv("SPARKPS_CURVE_SECRET_KEY");
    unsetenv("SPARKPS_CURVE_SERVER_KEY");
}

static void test_secret_equal_and_file_limits(void **state)
{
    fx *f = *state;
    assert_true(ps_secret_equal("abc", 3, "abc", 3));
    assert_false(ps_secret_equal("abc", 3, "abd", 3));
    assert_false(ps_secret_equal("abc", 3, "abcd", 4));
    assert_false(ps_secret_equal("", 0, "a", 1));
    assert_true(ps_secret_equal("", 0, "", 0));
    char *text;
    size_t len;
    put(f, "t", "0123456789", 0600);
    assert_int_equal(
        ps_secret_file_read(f->path, 10, 1, &text, &len, f->err, 512), PS_OK);
    assert_int_equal(len, 10);
    assert_string_equal(text, "0123456789");
    ps_secret_wipe(text, len);
    free(text);
    assert_int_equal(
        ps_secret_file_read(f->path, 9, 1, &text, &len, f->err, 512),
        PS_EINVAL);
    put(f, "t2", "0123456789", 0604);
    assert_int_equal(
        ps_secret_file_read(f->path, 10, 1, &text, &len, f->err, 512),
        PS_EINVAL);
    assert_contains(f->err, "mode 0604");
    assert_int_equal(
        ps_secret_file_read(f->path, 10, 0, &text, &len, f->err, 512), PS_OK);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_curve_available),
        cmocka_unit_test_setup_teardown(test_curve_read_key_good_with_comments,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_curve_read_key_errors_name_file_not_content, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curve_read_key_secret_permissions,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_curve_keygen_files_modes_and_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_curve_allow_file_and_dir, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_curve_allow_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_curve_client_load_pairs_and_env,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_secret_equal_and_file_limits,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
