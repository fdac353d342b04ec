/* Reading small files that may hold secrets (CurveZMQ secret keys, the
 * HTTP bearer token): bounded size, regular files only, and optionally
 * refused when other users may access them. Errors name the file, never
 * its content. */
#ifndef PS_SECRET_FILE_H
#define PS_SECRET_FILE_H

#include <stddef.h>

/* Reads all of `path` (at most `max` bytes) into *out, NUL-terminated, the
 * caller's to wipe (ps_secret_wipe) and free; *len gets its length.
 * `private_only`: refuse a file whose mode grants other users any access
 * (mode & 007), naming the fix. PS_EIO: cannot open; PS_EINVAL: not a
 * regular file, too large, permissions; PS_ENOMEM. */
int ps_secret_file_read(const char *path, size_t max, int private_only,
                        char **out, size_t *len, char *err, size_t errlen);

/* PS_OK when other users have no access to `path` (mode & 007 == 0),
 * else PS_EINVAL naming the fix (PS_EIO: cannot stat it). */
int ps_secret_file_private(const char *path, char *err, size_t errlen);

/* Overwrites secret material before its memory is released. */
void ps_secret_wipe(void *p, size_t n);

/* Equality of two byte strings in time that depends only on their
 * lengths, not on where they differ (for secrets sent by peers). */
int ps_secret_equal(const void *a, size_t alen, const void *b, size_t blen);

#endif
