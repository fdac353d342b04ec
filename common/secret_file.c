/* Small secret files; see secret_file.h. */
#include "common/secret_file.h"

#include "common/errmsg.h"
#include "common/sparkps_err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void ps_secret_wipe(void *p, size_t n)
{
    if (p != NULL)
        explicit_bzero(p, n);
}

int ps_secret_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    const unsigned char *x = a, *y = b;
    size_t n = alen > blen ? alen : blen;
    unsigned diff = alen != blen;
    for (size_t i = 0; i < n; i++)
        diff |= (unsigned)((i < alen ? x[i] : 0) ^ (i < blen ? y[i] : 0));
    return diff == 0;
}

static int check_mode(const char *path, const struct stat *st, char *err,
                      size_t errlen)
{
    if ((st->st_mode & 007) == 0)
        return PS_OK;
    return ps_errf(err, errlen, PS_EINVAL,
                   "%s: other users may access it (mode %04o), so it cannot "
                   "hold a secret: chmod 600 %s",
                   path, (unsigned)(st->st_mode & 07777), path);
}

int ps_secret_file_private(const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return ps_errf(err, errlen, PS_EIO, "%s: %s", path, strerror(errno));
    return check_mode(path, &st, err, errlen);
}

int ps_secret_file_read(const char *path, size_t max, int private_only,
                        char **out, size_t *len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ps_errf(err, errlen, PS_EIO, "%s: cannot open: %s", path,
                       strerror(errno));
    struct stat st;
    int rc = PS_OK;
    char *buf = NULL;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = ps_errf(err, errlen, PS_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    if (private_only && (rc = check_mode(path, &st, err, errlen)) != PS_OK)
        goto out;
    if ((uint64_t)st.st_size > max) {
        rc = ps_errf(err, errlen, PS_EINVAL,
                     "%s: %lld bytes, more than the %zu such a file may hold",
                     path, (long long)st.st_size, max);
        goto out;
    }
    buf = malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = PS_ENOMEM;
        goto out;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = ps_errf(err, errlen, PS_EIO, "%s: cannot read: %s", path,
                         strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    buf[got] = '\0';
    *out = buf;
    *len = got;
    buf = NULL;
out:
    free(buf);
    close(fd);
    return rc;
}
