/* Line reader for the text formats. Goes through zlib so that plain and
 * gzip-compressed files read the same way; memory is one fixed read buffer
 * plus a line buffer that grows to the longest line (capped). */
#include "data_int.h"

#include "common/sparkps_err.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *ps__data_gzwhy(gzFile gz, const char *path)
{
    int zerr = Z_OK;
    const char *msg = gz ? gzerror(gz, &zerr) : NULL;
    if (zerr == Z_ERRNO || !msg || !msg[0])
        return strerror(errno);
    /* zlib prefixes its messages with the path; ours already name it. */
    size_t plen = strlen(path);
    if (strncmp(msg, path, plen) == 0 && strncmp(msg + plen, ": ", 2) == 0)
        msg += plen + 2;
    return msg;
}

void ps__data_gzerr(gzFile gz, const char *path, const char *what, char *err,
                    size_t errlen)
{
    ps__data_err(err, errlen, "%s: %s: %s", path, what,
                 ps__data_gzwhy(gz, path));
}

int ps__lines_open(ps__lines *r, const char *path, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    r->path = path;
    r->in = malloc(PS_DATA_READ_CHUNK);
    if (!r->in) {
        ps__data_err(err, errlen, "%s: out of memory", path);
        return PS_ENOMEM;
    }
    errno = 0;
    r->gz = gzopen(path, "rb");
    if (!r->gz) {
        ps__data_err(err, errlen, "%s: cannot open: %s", path,
                     errno ? strerror(errno) : "out of memory");
        return errno ? PS_EIO : PS_ENOMEM;
    }
    return PS_OK;
}

/* Fills the read buffer; sets in_eof at the end of the file. */
static int fill(ps__lines *r, char *err, size_t errlen)
{
    int got = gzread(r->gz, r->in, (unsigned)PS_DATA_READ_CHUNK);
    if (got < 0) {
        ps__data_gzerr(r->gz, r->path, "read failed", err, errlen);
        return PS_EIO;
    }
    if (got == 0) {
        int zerr = Z_OK;
        gzerror(r->gz, &zerr);
        if (zerr != Z_OK) { /* Z_BUF_ERROR: the gzip stream was cut short */
            ps__data_gzerr(r->gz, r->path, "read failed", err, errlen);
            return PS_EIO;
        }
        r->in_eof = 1;
    }
    r->in_pos = 0;
    r->in_len = (size_t)got;
    return PS_OK;
}

int ps__lines_next(ps__lines *r, char **line, size_t *len, char *err,
                   size_t errlen)
{
    size_t n = 0;
    int found = 0;
    *line = NULL;
    *len = 0;
    while (!found) {
        if (r->in_pos == r->in_len) {
            if (r->in_eof)
                break;
            int rc = fill(r, err, errlen);
            if (rc != PS_OK)
                return rc;
            continue;
        }
        const unsigned char *s = r->in + r->in_pos;
        size_t avail = r->in_len - r->in_pos;
        const unsigned char *nl = memchr(s, '\n', avail);
        size_t take = nl ? (size_t)(nl - s) : avail;
        if (n + take > PS_DATA_MAX_LINE) {
            ps__data_err(err, errlen, "%s:%llu: line longer than %zu bytes",
                         r->path, (unsigned long long)r->lineno + 1,
                         PS_DATA_MAX_LINE);
            return PS_EINVAL;
        }
        if (n + take + 1 > r->line_cap) {
            size_t cap = r->line_cap ? r->line_cap : 4096;
            while (cap < n + take + 1)
                cap *= 2;
            char *p = realloc(r->line, cap);
            if (!p) {
                ps__data_err(err, errlen, "%s: out of memory for a line",
                             r->path);
                return PS_ENOMEM;
            }
            r->line = p;
            r->line_cap = cap;
        }
        memcpy(r->line + n, s, take);
        n += take;
        r->in_pos += take + (nl ? 1 : 0);
        found = nl != NULL;
    }
    if (!found && n == 0)
        return PS_OK; /* end of file; a final '\n' ends no empty line */
    r->lineno++;
    if (n > 0 && r->line[n - 1] == '\r')
        n--;
    if (memchr(r->line, '\0', n)) {
        ps__data_err(err, errlen, "%s:%llu: NUL byte in line", r->path,
                     (unsigned long long)r->lineno);
        return PS_EINVAL;
    }
    r->line[n] = '\0';
    *line = r->line;
    *len = n;
    return PS_OK;
}

int ps__lines_rewind(ps__lines *r, char *err, size_t errlen)
{
    if (gzrewind(r->gz) != 0) {
        ps__data_gzerr(r->gz, r->path, "cannot rewind", err, errlen);
        return PS_EIO;
    }
    r->in_pos = r->in_len = 0;
    r->in_eof = 0;
    r->lineno = 0;
    return PS_OK;
}

void ps__lines_close(ps__lines *r)
{
    if (r->gz)
        gzclose(r->gz);
    free(r->in);
    free(r->line);
    memset(r, 0, sizeof(*r));
}
