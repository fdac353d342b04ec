/* CurveZMQ key files and allow-lists; see curve.h.
 *
 * Everything read from a file is checked (size before reading, each line's
 * length and alphabet before decoding); errors name the file and line,
 * never what the line held, since it may be a secret key. */
#include "common/curve.h"

#include "common/errmsg.h"
#include "common/secret_file.h"
#include "common/sparkps_err.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define MAX_ALLOW_FILE (8u << 20) /* bytes of one allow-list file */
#define SECRET_TAG "secret key"
#define PUBLIC_TAG "public key"

static const char z85_chars[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                ".-:+=^!/*?&<>()[]{}@%$#";

struct ps_curve_allow {
    uint8_t (*keys)[PS_CURVE_KEY_BYTES]; /* sorted, unique */
    size_t n, cap;
};

int ps_curve_available(void)
{
    return zmq_has("curve");
}

const char *ps_curve_missing_msg(void)
{
    return "this libzmq was built without CURVE (zmq_has(\"curve\") is "
           "false): install a libzmq built with libsodium, such as Debian's "
           "libzmq5";
}

void ps_curve_wipe(void *p, size_t n)
{
    ps_secret_wipe(p, n);
}

/* One line, trimmed: NULL at the end of the text. */
static char *next_line(char **cursor, size_t *len)
{
    char *p = *cursor;
    if (*p == '\0')
        return NULL;
    char *end = strchr(p, '\n');
    *cursor = end ? end + 1 : p + strlen(p);
    size_t n = end ? (size_t)(end - p) : strlen(p);
    while (n && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
        n--;
    *len = n;
    return p;
}

/* Checks one trimmed line as a Z85 key; on success decodes it. */
static int parse_key(const char *line, size_t len, uint8_t *bin)
{
    if (len != PS_CURVE_Z85_LEN)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\0' || strchr(z85_chars, line[i]) == NULL)
            return 0;
    char z[PS_CURVE_Z85_LEN + 1];
    memcpy(z, line, len);
    z[len] = '\0';
    int ok = zmq_z85_decode(bin, z) != NULL;
    ps_curve_wipe(z, sizeof(z));
    return ok;
}

static const char *kind_name(int secret)
{
    return secret ? SECRET_TAG : PUBLIC_TAG;
}

/* A comment naming the other kind of key: the wrong file was given. */
static int says_other_kind(const char *line, size_t len, int secret)
{
    const char *tag = kind_name(!secret);
    size_t tl = strlen(tag);
    for (size_t i = 0; i + tl <= len; i++)
        if (memcmp(line + i, tag, tl) == 0)
            return 1;
    return 0;
}

int ps_curve_read_key(const char *path, int secret, ps_curve_key *out,
                      char *err, size_t errlen)
{
    char *text = NULL;
    size_t total, len, keys = 0, lineno = 0;
    /* Permissions are checked after the content, so a public key given
     * as the secret one is named as such rather than as too open. */
    int rc = ps_secret_file_read(path, PS_CURVE_MAX_FILE, 0, &text, &total,
                                 err, errlen);
    if (rc != PS_OK)
        return rc;
    char *cursor = text, *line;
    uint8_t bin[PS_CURVE_KEY_BYTES];
    ps_curve_key k;
    while ((line = next_line(&cursor, &len)) != NULL) {
        lineno++;
        if (len == 0)
            continue;
        if (line[0] == '#') {
            if (says_other_kind(line, len, secret)) {
                rc = ps_errf(err, errlen, PS_EINVAL,
                             "%s holds a %s, not a %s (ps-keygen writes "
                             "the secret key to NAME.key, the public one to "
                             "NAME.pub)",
                             path, kind_name(!secret), kind_name(secret));
                goto out;
            }
            continue;
        }
        if (!parse_key(line, len, bin)) {
            rc = ps_errf(err, errlen, PS_EINVAL,
                         "%s:%zu: not a CurveZMQ key (expected %d Z85 "
                         "characters on the line, found %zu characters%s)",
                         path, lineno, PS_CURVE_Z85_LEN, len,
                         len == PS_CURVE_Z85_LEN ? " outside Z85" : "");
            goto out;
        }
        if (++keys > 1) {
            rc = ps_errf(err, errlen, PS_EINVAL,
                         "%s:%zu: more than one key in a key file", path,
                         lineno);
            goto out;
        }
        memcpy(k.z85, line, PS_CURVE_Z85_LEN);
        k.z85[PS_CURVE_Z85_LEN] = '\0';
    }
    if (keys == 0) {
        rc = ps_errf(err, errlen, PS_EINVAL, "%s: no key in the file", path);
        goto out;
    }
    if (secret && (rc = ps_secret_file_private(path, err, errlen)) != PS_OK)
        goto out;
    *out = k;
out:
    ps_curve_wipe(bin, sizeof(bin));
    ps_curve_wipe(&k, sizeof(k));
    ps_curve_wipe(text, total);
    free(text);
    return rc;
}

int ps_curve_public_of(const ps_curve_key *secret, ps_curve_key *pub)
{
    if (!ps_curve_available() ||
        zmq_curve_public(pub->z85, secret->z85) != 0)
        return PS_EINVAL;
    return PS_OK;
}

/* ---- key generation ---- */

/* Writes `text` to a fresh temporary file beside `dst` with `mode`, then
 * links it to `dst` (fails if dst exists) or, with `force`, renames it
 * over dst. */
static int write_key_file(const char *dst, const char *text, mode_t mode,
                          int force, char *err, size_t errlen)
{
    size_t n = strlen(dst) + 16;
    char *tmp = malloc(n);
    if (tmp == NULL)
        return PS_ENOMEM;
    snprintf(tmp, n, "%s.tmpXXXXXX", dst);
    int rc = PS_OK;
    int fd = mkstemp(tmp); /* 0600 */
    if (fd < 0) {
        rc = ps_errf(err, errlen, PS_EIO, "%s: cannot create: %s", dst,
                     strerror(errno));
        free(tmp);
        return rc;
    }
    size_t len = strlen(text);
    if (fchmod(fd, mode) != 0 || write(fd, text, len) != (ssize_t)len ||
        fsync(fd) != 0) {
        rc = ps_errf(err, errlen, PS_EIO, "%s: cannot write: %s", dst,
                     strerror(errno));
        close(fd);
        goto out;
    }
    close(fd);
    if (force ? rename(tmp, dst) != 0 : link(tmp, dst) != 0)
        rc = ps_errf(err, errlen, errno == EEXIST ? PS_EINVAL : PS_EIO,
                     "%s: %s%s", dst, strerror(errno),
                     errno == EEXIST ? " (--force overwrites it)" : "");
out:
    unlink(tmp); /* after link() or a failure; gone already after rename */
    free(tmp);
    return rc;
}

int ps_curve_keygen(const char *base, int force, ps_curve_key *pub,
                    char *err, size_t errlen)
{
    if (!ps_curve_available())
        return ps_errf(err, errlen, PS_EINVAL, "%s", ps_curve_missing_msg());
    size_t n = strlen(base) + 8;
    char *key_path = malloc(n), *pub_path = malloc(n);
    char text[2][160];
    ps_curve_key sec;
    int rc = PS_OK;
    if (key_path == NULL || pub_path == NULL) {
        rc = PS_ENOMEM;
        goto out;
    }
    snprintf(key_path, n, "%s.key", base);
    snprintf(pub_path, n, "%s.pub", base);
    struct stat st;
    for (int i = 0; !force && i < 2; i++) {
        const char *p = i ? pub_path : key_path;
        if (lstat(p, &st) == 0) {
            rc = ps_errf(err, errlen, PS_EINVAL,
                         "%s exists: not overwritten (--force overwrites "
                         "it)",
                         p);
            goto out;
        }
    }
    if (zmq_curve_keypair(pub->z85, sec.z85) != 0) {
        rc = ps_errf(err, errlen, PS_EINVAL, "zmq_curve_keypair failed: %s",
                     zmq_strerror(zmq_errno()));
        goto out;
    }
    snprintf(text[0], sizeof(text[0]),
             "# sparkps CurveZMQ %s: keep it private (ps-keygen)\n%s\n",
             SECRET_TAG, sec.z85);
    snprintf(text[1], sizeof(text[1]),
             "# sparkps CurveZMQ %s (ps-keygen)\n%s\n", PUBLIC_TAG, pub->z85);
    rc = write_key_file(key_path, text[0], 0600, force, err, errlen);
    if (rc == PS_OK) {
        rc = write_key_file(pub_path, text[1], 0644, force, err, errlen);
        if (rc != PS_OK)
            unlink(key_path); /* no half pair left behind */
    }
out:
    ps_curve_wipe(&sec, sizeof(sec));
    ps_curve_wipe(text, sizeof(text));
    free(key_path);
    free(pub_path);
    return rc;
}

/* ---- allow-list ---- */

static int key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, PS_CURVE_KEY_BYTES);
}

static int allow_add(ps_curve_allow *a, const uint8_t *key)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 16;
        void *k = realloc(a->keys, cap * sizeof(*a->keys));
        if (k == NULL)
            return PS_ENOMEM;
        a->keys = k;
        a->cap = cap;
    }
    memcpy(a->keys[a->n++], key, PS_CURVE_KEY_BYTES);
    return PS_OK;
}

/* Adds every key of one file (same line rules as a key file). */
static int allow_file(ps_curve_allow *a, const char *path, char *err,
                      size_t errlen)
{
    char *text = NULL;
    size_t total, len, lineno = 0;
    int rc = ps_secret_file_read(path, MAX_ALLOW_FILE, 0, &text, &total, err,
                                 errlen);
    if (rc != PS_OK)
        return rc;
    char *cursor = text, *line;
    uint8_t bin[PS_CURVE_KEY_BYTES];
    while (rc == PS_OK && (line = next_line(&cursor, &len)) != NULL) {
        lineno++;
        if (len == 0)
            continue;
        if (line[0] == '#') {
            if (says_other_kind(line, len, 0))
                rc = ps_errf(err, errlen, PS_EINVAL,
                             "%s holds a secret key: an allow-list takes "
                             "public keys (NAME.pub)",
                             path);
            continue;
        }
        if (!parse_key(line, len, bin))
            rc = ps_errf(err, errlen, PS_EINVAL,
                         "%s:%zu: not a CurveZMQ public key (expected %d Z85 "
                         "characters on the line, found %zu)",
                         path, lineno, PS_CURVE_Z85_LEN, len);
        else if (a->n >= PS_CURVE_MAX_ALLOW)
            rc = ps_errf(err, errlen, PS_EINVAL,
                         "%s:%zu: more than %d keys in the allow-list", path,
                         lineno, PS_CURVE_MAX_ALLOW);
        else
            rc = allow_add(a, bin);
    }
    free(text);
    return rc;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && strcmp(s + n - k, suffix) == 0;
}

static int allow_dir(ps_curve_allow *a, const char *path, char *err,
                     size_t errlen)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return ps_errf(err, errlen, PS_EIO, "%s: cannot open: %s", path,
                       strerror(errno));
    int rc = PS_OK;
    struct dirent *e;
    while (rc == PS_OK && (e = readdir(d)) != NULL) {
        if (!ends_with(e->d_name, ".pub"))
            continue;
        size_t n = strlen(path) + strlen(e->d_name) + 2;
        char *file = malloc(n);
        if (file == NULL) {
            rc = PS_ENOMEM;
            break;
        }
        snprintf(file, n, "%s/%s", path, e->d_name);
        rc = allow_file(a, file, err, errlen);
        free(file);
    }
    closedir(d);
    return rc;
}

int ps_curve_allow_load(ps_curve_allow **out, const char *path, char *err,
                        size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return ps_errf(err, errlen, PS_EIO, "%s: %s", path, strerror(errno));
    ps_curve_allow *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return PS_ENOMEM;
    int rc = S_ISDIR(st.st_mode) ? allow_dir(a, path, err, errlen)
                                 : allow_file(a, path, err, errlen);
    if (rc == PS_OK && a->n == 0)
        rc = ps_errf(err, errlen, PS_EINVAL,
                     "%s: no public keys (%s)", path,
                     S_ISDIR(st.st_mode) ? "a directory of NAME.pub files"
                                         : "one Z85 key per line");
    if (rc != PS_OK) {
        ps_curve_allow_free(a);
        return rc;
    }
    qsort(a->keys, a->n, sizeof(*a->keys), key_cmp);
    size_t u = 0;
    for (size_t i = 0; i < a->n; i++)
        if (u == 0 || key_cmp(a->keys[u - 1], a->keys[i]) != 0)
            memmove(a->keys[u++], a->keys[i], PS_CURVE_KEY_BYTES);
    a->n = u;
    *out = a;
    return PS_OK;
}

size_t ps_curve_allow_count(const ps_curve_allow *a)
{
    return a ? a->n : 0;
}

int ps_curve_allow_has(const ps_curve_allow *a, const uint8_t *key,
                       size_t len)
{
    if (a == NULL || len != PS_CURVE_KEY_BYTES || a->n == 0)
        return 0;
    return bsearch(key, a->keys, a->n, sizeof(*a->keys), key_cmp) != NULL;
}

void ps_curve_allow_free(ps_curve_allow *a)
{
    if (a == NULL)
        return;
    free(a->keys);
    free(a);
}
