/* Error messages for functions that report through a caller's buffer
 * (char *err, size_t errlen): one formatter instead of a copy per module. */
#ifndef PS_ERRMSG_H
#define PS_ERRMSG_H

#include <stdarg.h>
#include <stddef.h>

/* Formats the reason into err (nothing when err is NULL or errlen 0) and
 * returns rc, so an error path reads
 *   return ps_errf(err, errlen, PS_EINVAL, "bad %s", what); */
int ps_errf(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The same with a va_list, for modules' own variadic wrappers. */
int ps_verrf(char *err, size_t errlen, int rc, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#endif
